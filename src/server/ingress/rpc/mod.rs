//! MessagePack-RPC ingress (`serve --rpc ADDR`): a TCP listener in the same
//! mio loop. Each connection buffers its input, decodes MessagePack values
//! with `rmpv`, answers requests in order and accepts notifications
//! (docs/ingress.md, "MessagePack-RPC").
//!
//! Responses go out through the same [`Outbound`] queue as WebSocket frames:
//! written until `WouldBlock`, WRITABLE interest only while bytes wait.

mod call;

use std::io;
use std::net::SocketAddr;
use std::time::Instant;

use log::{debug, error, warn};
use mio::net::TcpStream;
use mio::{Interest, Token};
use rmpv::Value;

use crate::server::outbound::{Chunk, Outbound};
use crate::server::route::Route;
use crate::server::stats::Receipt;
use crate::server::{Entry, Server};

use call::{Incoming, Method, classify, map, write_response};

/// Bytes an RPC request may take beyond `--max-message` (the array, msgid,
/// method name and the other parameters around the data).
const ENVELOPE: usize = 1024;

/// Nesting accepted in a request (requests are flat; this bounds recursion).
const MAX_DEPTH: usize = 32;

/// One RPC client connection.
#[derive(Debug)]
pub(crate) struct RpcConn {
    pub(crate) stream: TcpStream,
    addr: SocketAddr,
    /// Received bytes not yet decoded (an incomplete value, at most
    /// `--max-message` + 1 KiB plus one read).
    input: Vec<u8>,
    pub(crate) out: Outbound,
    pub(crate) dirty: bool,
    pub(crate) writable_interest: bool,
    /// No more requests will be handled (the client closed its side, or
    /// sent something we cannot answer): the connection is removed once its
    /// responses are written.
    pub(crate) finished: bool,
}

impl Server {
    /// Accepts every waiting RPC connection.
    pub(crate) fn accept_rpc(&mut self) {
        loop {
            let Some(listener) = self.rpc.as_ref() else {
                return;
            };
            match listener.accept() {
                Ok((mut stream, addr)) => {
                    let _ = stream.set_nodelay(true);
                    let entry = self.entries.vacant_entry();
                    if let Err(e) = self.poll.registry().register(
                        &mut stream,
                        Token(entry.key()),
                        Interest::READABLE,
                    ) {
                        warn!("cannot register RPC connection {addr}: {e}");
                        continue;
                    }
                    debug!("RPC connection from {addr} ({})", entry.key());
                    entry.insert(Entry::Rpc(RpcConn {
                        stream,
                        addr,
                        input: Vec::new(),
                        out: Outbound::default(),
                        dirty: false,
                        writable_interest: false,
                        finished: false,
                    }));
                }
                Err(e) if e.kind() == io::ErrorKind::WouldBlock => return,
                Err(e) if e.kind() == io::ErrorKind::Interrupted => {}
                Err(e) => {
                    error!("RPC accept failed: {e}");
                    return;
                }
            }
        }
    }

    fn rpc_limit(&self) -> usize {
        self.cfg.limits.max_message + ENVELOPE
    }

    /// Buffers `n` bytes from the scratch buffer. Decoding waits for the
    /// socket to be drained ([`Server::rpc_process`] on `WouldBlock`) unless
    /// the buffer passes the request limit. False when the entry is gone.
    pub(crate) fn on_rpc_data(&mut self, key: usize, n: usize) -> bool {
        let limit = self.rpc_limit();
        let Some(Entry::Rpc(c)) = self.entries.get_mut(key) else {
            return false;
        };
        if c.finished {
            return true; // discarded: nothing more is handled
        }
        c.input.extend_from_slice(&self.scratch[..n]);
        if c.input.len() > limit {
            return self.rpc_process(key);
        }
        true
    }

    /// The client closed its side: answer what it sent, then close.
    pub(crate) fn on_rpc_eof(&mut self, key: usize) {
        if !self.rpc_process(key) {
            return;
        }
        if let Some(Entry::Rpc(c)) = self.entries.get_mut(key) {
            if !c.finished && !c.input.is_empty() {
                debug!("RPC {}: closed in the middle of a request", c.addr);
            }
            c.finished = true;
            c.input = Vec::new();
            if c.out.is_empty() {
                self.remove(key);
            }
        }
    }

    /// Decodes and handles every complete value in the connection's input.
    /// False when the entry is gone.
    ///
    /// An incomplete value is decoded again from its first byte when more
    /// bytes have arrived (once per readable event, or when the buffer
    /// passes the limit), not on every byte. `rmpv`'s borrowing decoder
    /// copies nothing, so a retry over a large, still incomplete `bin` costs
    /// only its header; a retry over many small elements costs their count.
    /// With the input bounded by `--max-message` + 1 KiB, this worst case
    /// (a client trickling a huge array byte by byte) is bounded work per
    /// read, which is acceptable for an ingress meant for trusted local
    /// programs.
    pub(crate) fn rpc_process(&mut self, key: usize) -> bool {
        let limit = self.rpc_limit();
        let (input, addr) = match self.entries.get_mut(key) {
            Some(Entry::Rpc(c)) if !c.finished => (std::mem::take(&mut c.input), c.addr),
            Some(Entry::Rpc(_)) => return true,
            _ => return false,
        };
        let mut responses = Vec::new();
        let mut pos = 0;
        let mut fatal: Option<String> = None;
        while pos < input.len() {
            let mut cur = io::Cursor::new(&input[pos..]);
            match rmpv::decode::read_value_ref_with_max_depth(&mut cur, MAX_DEPTH) {
                Ok(value) => {
                    let used = cur.position() as usize;
                    if used > limit {
                        fatal = Some(format!(
                            "a request of {used} bytes, over --max-message + 1 KiB ({limit})"
                        ));
                        break;
                    }
                    pos += used;
                    if let Err(reason) = self.rpc_message(value, &mut responses, key) {
                        fatal = Some(reason);
                        break;
                    }
                }
                Err(e) if e.kind() == io::ErrorKind::UnexpectedEof => {
                    if input.len() - pos > limit {
                        fatal = Some(format!(
                            "an incomplete request already over --max-message + 1 KiB ({limit} bytes)"
                        ));
                    }
                    break;
                }
                Err(e) => {
                    fatal = Some(format!("undecodable MessagePack ({e})"));
                    break;
                }
            }
        }
        let Some(Entry::Rpc(c)) = self.entries.get_mut(key) else {
            return false;
        };
        c.out.push(Chunk::Owned(responses));
        if let Some(reason) = fatal {
            self.stats.rpc_errors += 1;
            error!("RPC {addr}: {reason}; closing that RPC connection");
            c.finished = true;
            if c.out.is_empty() {
                self.remove(key);
                return false;
            }
        } else {
            let mut input = input;
            input.drain(..pos);
            if input.is_empty() {
                input = Vec::new(); // an idle connection holds no buffer
            }
            c.input = input;
        }
        self.mark_dirty(key);
        true
    }

    /// Handles one decoded value: appends the response for a request. An
    /// `Err` closes the connection (nothing we could answer).
    fn rpc_message(
        &mut self,
        value: rmpv::ValueRef<'_>,
        responses: &mut Vec<u8>,
        key: usize,
    ) -> Result<(), String> {
        let queued = match self.entries.get(key) {
            Some(Entry::Rpc(c)) => c.out.queued_bytes() + responses.len(),
            _ => 0,
        };
        if queued > self.cfg.max_queued_bytes {
            return Err(format!(
                "{queued} bytes of responses unread (over --max-queued-bytes): the client does not read its responses"
            ));
        }
        self.stats.rpc_calls += 1;
        match classify(value, self.cfg.channels.max_name_bytes) {
            Ok(Incoming::Request { msgid, method }) => {
                let result = method.map(|m| self.rpc_call(m));
                if let Err(e) = &result {
                    self.stats.rpc_errors += 1;
                    debug!("RPC request {msgid}: {e}");
                }
                write_response(responses, msgid, result);
                Ok(())
            }
            Ok(Incoming::Notification { method }) => {
                match method {
                    Ok(m) => {
                        self.rpc_call(m);
                    }
                    Err(e) => {
                        self.stats.rpc_errors += 1;
                        warn!("RPC notification dropped: {e}");
                    }
                }
                Ok(())
            }
            Err(invalid) => {
                match invalid.msgid {
                    Some(msgid) => {
                        self.stats.rpc_errors += 1;
                        debug!("RPC request {msgid}: {}", invalid.reason);
                        write_response(responses, msgid, Err(invalid.reason));
                        Ok(())
                    }
                    // Counted by the caller, which closes the connection.
                    None => Err(format!("not a request: {}", invalid.reason)),
                }
            }
        }
    }

    /// Runs a method; its result value.
    fn rpc_call(&mut self, method: Method<'_>) -> Value {
        let now = Instant::now();
        match method {
            Method::PushData(d) => receipt(self.publish(&Route::All, d.kind, d.bytes, now)),
            Method::Publish(channel, d) => {
                receipt(self.publish(&Route::Channel(channel), d.kind, d.bytes, now))
            }
            Method::Send(id, d) => receipt(self.publish(&Route::Conn(id), d.kind, d.bytes, now)),
            Method::Connections => self.connections_value(),
            Method::Stats => map(self.stats.fields().map(|(k, v)| (k, Value::from(v)))),
        }
    }

    /// `connections()`: one map per open connection, in slab order.
    fn connections_value(&self) -> Value {
        let mut list = Vec::with_capacity(self.routes.len());
        for (key, entry) in self.entries.iter() {
            let Entry::Ws(p) = entry else { continue };
            if self.routes.conn(&p.id) != Some(key) {
                continue; // not upgraded (yet), or refused
            }
            list.push(map([
                ("id", Value::from(p.id.to_string())),
                ("peer", Value::from(p.addr.to_string())),
                (
                    "channels",
                    Value::Array(p.channels.iter().map(|c| Value::from(&**c)).collect()),
                ),
                ("queued_bytes", Value::from(p.out.queued_bytes())),
            ]));
        }
        Value::Array(list)
    }

    /// Writes an RPC connection's responses; removes a finished connection
    /// once everything is written.
    pub(crate) fn flush_rpc(&mut self, key: usize) {
        let Some(Entry::Rpc(c)) = self.entries.get_mut(key) else {
            return;
        };
        c.dirty = false;
        match c.out.write_to(&mut c.stream) {
            Ok(drained) => {
                if drained && c.finished {
                    self.remove(key);
                    return;
                }
                crate::server::sockets::set_write_interest(
                    self.poll.registry(),
                    &mut c.stream,
                    key,
                    &mut c.writable_interest,
                    drained,
                );
            }
            Err(e) => {
                debug!("RPC {}: write error: {e}", c.addr);
                self.remove(key);
            }
        }
    }
}

/// A publish's receipt as the RPC result map.
fn receipt(r: Receipt) -> Value {
    map([
        ("queued", Value::from(r.queued)),
        ("skipped_slow", Value::from(r.skipped_slow)),
        ("skipped_closing", Value::from(r.skipped_closing)),
        ("relayed", Value::from(r.relayed)),
    ])
}
