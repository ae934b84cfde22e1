//! Starting up: every listener opened and registered, the threads that
//! feed the loop started, and the [`Server`] built around them.

use std::net::SocketAddr;
use std::path::PathBuf;
use std::sync::Arc;

use log::warn;
use mio::net::UdpSocket;
use mio::{Events, Interest, Poll, Waker};
use signal_hook::consts::{SIGHUP, SIGINT, SIGTERM};
use signal_hook_mio::v1_0::Signals;
use slab::Slab;

use super::error::bind_err;
use super::history::HistoryStore;
use super::history::memory::MemoryHistory;
use super::hub::{self, Routes};
use super::ops::Ops;
use super::route::{IdGen, NodeId};
use super::sockets::listen_tcp;
use super::timers::Timers;
use super::{
    RPC_LISTENER, SCRATCH, SIGNALS, Server, ServerConfig, ServerError, Stats, TlsError, TlsFiles,
    UDP, UNIX_LISTENER, WAKER, WS_LISTENER, cluster, ingress, notify, tls,
};

/// Reads and checks a certificate and key exactly as `serve` does at start
/// (for `check-config`).
pub fn check_tls(files: &TlsFiles) -> Result<(), TlsError> {
    tls::load(files).map(|_| ())
}

/// The addresses the server actually bound (port 0 resolved).
#[derive(Clone, Debug)]
pub struct BoundAddrs {
    /// The WebSocket listener.
    pub ws: SocketAddr,
    /// The UDP ingress, if on.
    pub udp: Option<SocketAddr>,
    /// The Unix socket path, if on.
    pub unix: Option<PathBuf>,
    /// The MessagePack-RPC listener, if on.
    pub rpc: Option<SocketAddr>,
    /// The admin HTTP listener, if on.
    pub admin: Option<SocketAddr>,
    /// The control socket path, if on.
    pub control: Option<PathBuf>,
    /// This process's connection-id prefix.
    pub node: NodeId,
    /// The WebSocket listener speaks TLS (`wss://`).
    pub tls: bool,
}

impl Server {
    /// Opens the listeners named in `cfg`.
    pub fn bind(cfg: ServerConfig) -> Result<Server, ServerError> {
        let poll = Poll::new().map_err(ServerError::Poll)?;
        // Certificates first: a bad file fails before any port is taken.
        let tls = match &cfg.tls {
            Some(files) => Some(tls::Acceptor::new(files.clone()).map_err(ServerError::Tls)?),
            None => None,
        };
        let mut ws_listener = listen_tcp(cfg.ws, cfg.listen_backlog)
            .map_err(bind_err(format!("WebSocket listener {}", cfg.ws)))?;
        let ws_addr = ws_listener.local_addr().map_err(ServerError::Poll)?;
        poll.registry()
            .register(&mut ws_listener, WS_LISTENER, Interest::READABLE)
            .map_err(ServerError::Poll)?;
        let mut udp = match cfg.udp {
            Some(addr) => {
                Some(UdpSocket::bind(addr).map_err(bind_err(format!("UDP ingress {addr}")))?)
            }
            None => None,
        };
        let udp_addr = match udp.as_mut() {
            Some(sock) => {
                poll.registry()
                    .register(sock, UDP, Interest::READABLE)
                    .map_err(ServerError::Poll)?;
                Some(sock.local_addr().map_err(ServerError::Poll)?)
            }
            None => None,
        };
        let unix = match &cfg.unix {
            Some(path) => {
                let mut l = ingress::unix::bind(path, cfg.unix_mode)?;
                poll.registry()
                    .register(&mut l, UNIX_LISTENER, Interest::READABLE)
                    .map_err(ServerError::Poll)?;
                Some((l, path.clone()))
            }
            None => None,
        };
        let rpc = match cfg.rpc {
            Some(addr) => {
                let mut l = listen_tcp(addr, cfg.listen_backlog)
                    .map_err(bind_err(format!("MessagePack-RPC listener {addr}")))?;
                poll.registry()
                    .register(&mut l, RPC_LISTENER, Interest::READABLE)
                    .map_err(ServerError::Poll)?;
                Some(l)
            }
            None => None,
        };
        let rpc_addr = match &rpc {
            Some(l) => Some(l.local_addr().map_err(ServerError::Poll)?),
            None => None,
        };
        let waker = Arc::new(Waker::new(poll.registry(), WAKER).map_err(ServerError::Poll)?);
        let stdin = if cfg.stdin {
            Some(
                ingress::stdin::spawn(Arc::clone(&waker), cfg.limits.max_message)
                    .map_err(bind_err("the stdin reader"))?,
            )
        } else {
            None
        };
        let ops = Ops::bind(&cfg.ops, cfg.listen_backlog, poll.registry())?;
        let node = NodeId::random();
        let cluster = match &cfg.cluster {
            Some(c) => {
                let mut c = c.clone();
                c.max_message = cfg.limits.max_message;
                c.max_channel_name = cfg.channels.max_name_bytes;
                c.history_max_age = cfg.history.max_age.unwrap_or_default();
                Some(
                    cluster::Cluster::start(&c, node, Arc::clone(&waker))
                        .map_err(ServerError::Cluster)?,
                )
            }
            None => None,
        };
        let mut signals =
            Signals::new([SIGINT, SIGTERM, SIGHUP]).map_err(bind_err("signal handlers"))?;
        poll.registry()
            .register(&mut signals, SIGNALS, Interest::READABLE)
            .map_err(ServerError::Poll)?;
        let bound = BoundAddrs {
            ws: ws_addr,
            udp: udp_addr,
            unix: unix.as_ref().map(|(_, p)| p.clone()),
            rpc: rpc_addr,
            admin: ops.admin_addr().map_err(ServerError::Poll)?,
            control: ops.control_path(),
            node,
            tls: tls.is_some(),
        };
        Ok(Server {
            poll,
            bound,
            ws_listener,
            tls,
            udp,
            unix,
            rpc,
            stdin,
            cluster,
            signals,
            entries: Slab::new(),
            ws_count: 0,
            timers: Timers::default(),
            scratch: vec![0; SCRATCH],
            events: Vec::new(),
            publish_queue: Vec::new(),
            dirty: Vec::new(),
            slice_events: Some(Events::with_capacity(256)),
            write_due: None,
            last_fanout: None,
            stats: Stats::default(),
            routes: Routes::new(node),
            targets: Vec::new(),
            deflaters: hub::SharedDeflaters::default(),
            ids: IdGen::new(node),
            malformed_warned: None,
            history: (cfg.history.per_stream > 0)
                .then(|| Box::new(MemoryHistory::new(cfg.history)) as Box<dyn HistoryStore>),
            publish_seq: 0,
            shutdown_deadline: None,
            notifier: notify::Notifier::from_env().unwrap_or_else(|e| {
                warn!("no readiness notification: {e}");
                None
            }),
            ops,
            cfg,
        })
    }
}
