//! The admin HTTP endpoint (`--admin ADDR`): a few HTTP/1.1 requests,
//! handled by hand in the loop (httparse for the head), one request per
//! connection (docs/operations.md, "Admin endpoint").
//!
//! | request | answer |
//! | --- | --- |
//! | `GET /metrics` | Prometheus text format |
//! | `GET /stats` | the `stats` JSON object |
//! | `GET /connections` | a JSON array, one object per connection |
//! | `POST /publish[?channel=NAME \| ?id=CONNID]` | publishes the body; the receipt as JSON |
//!
//! The head is searched for its end as bytes arrive and parsed once, when
//! complete (never re-parsed from byte 0); it may take
//! `--max-header-bytes`, the body `--max-message` (with a
//! `Content-Length`). `Expect: 100-continue` is answered, so `curl` sends a
//! large body at once instead of waiting a second.

use std::time::Instant;

use log::debug;

use super::Role;
use super::control::receipt_json;
use crate::protocol::handshake::server::reason_phrase;
use crate::server::auth::percent_decode;
use crate::server::ingress::kind_of;
use crate::server::route::{ConnId, Route, valid_channel_name};
use crate::server::{Entry, Server};

/// Header fields parsed in a request (more get 431).
const MAX_HEADERS: usize = 32;

const INDEX: &str = "wsbroadcaster admin endpoint
  GET  /metrics                      Prometheus text format
  GET  /stats                        counters, connections and channels (JSON)
  GET  /connections                  every connection: id, peer, channels, queued bytes (JSON)
  POST /publish                      the body to everyone; the receipt (JSON)
  POST /publish?channel=NAME         to one channel
  POST /publish?id=CONNID            to one connection
";

/// Where an admin request stands.
#[derive(Debug, Default)]
pub(crate) struct AdminState {
    /// Input bytes already searched for the head's end.
    scanned: usize,
    /// The parsed head, once complete.
    head: Option<Head>,
    /// `100 Continue` has been sent.
    continued: bool,
}

#[derive(Debug)]
struct Head {
    method: String,
    target: String,
    len: usize,
    body_len: usize,
}

/// A response to queue.
struct Response {
    status: u16,
    content_type: &'static str,
    body: String,
    allow: Option<&'static str>,
}

impl Response {
    fn new(status: u16, content_type: &'static str, body: String) -> Response {
        Response {
            status,
            content_type,
            body,
            allow: None,
        }
    }

    fn text(status: u16, body: impl Into<String>) -> Response {
        let mut body = body.into();
        if status >= 400 {
            body = format!("{}: {body}\n", reason_phrase(status));
        }
        Response::new(status, "text/plain; charset=utf-8", body)
    }

    fn bytes(&self) -> Vec<u8> {
        let mut out = format!(
            "HTTP/1.1 {} {}\r\nContent-Type: {}\r\nContent-Length: {}\r\nConnection: close\r\n",
            self.status,
            reason_phrase(self.status),
            self.content_type,
            self.body.len()
        );
        if let Some(allow) = self.allow {
            out.push_str("Allow: ");
            out.push_str(allow);
            out.push_str("\r\n");
        }
        out.push_str("\r\n");
        out.push_str(&self.body);
        out.into_bytes()
    }
}

impl Server {
    /// Handles an admin connection's input so far: waits for the head and
    /// the body, then answers once.
    pub(crate) fn admin_input(&mut self, key: usize, now: Instant) {
        let max_head = self.cfg.handshake_limits.max_header_bytes;
        let max_body = self.cfg.limits.max_message;
        let Some(Entry::Ops(c)) = self.entries.get_mut(key) else {
            return;
        };
        let Role::Admin(st) = &mut c.role else {
            return;
        };
        if st.head.is_none() {
            let from = st.scanned.saturating_sub(3);
            let Some(end) = c.input[from..].windows(4).position(|w| w == b"\r\n\r\n") else {
                st.scanned = c.input.len();
                if c.input.len() > max_head {
                    let r = Response::text(
                        431,
                        format!("the request head is over {max_head} bytes (--max-header-bytes)"),
                    );
                    self.admin_respond(key, r);
                }
                return;
            };
            let len = from + end + 4;
            if len > max_head {
                let r = Response::text(
                    431,
                    format!("the request head is over {max_head} bytes (--max-header-bytes)"),
                );
                return self.admin_respond(key, r);
            }
            match parse_head(&c.input[..len], max_body) {
                Ok(head) => st.head = Some(head),
                Err(r) => return self.admin_respond(key, r),
            }
        }
        let Some(head) = &st.head else { return };
        if c.input.len() < head.len + head.body_len {
            if !st.continued && expects_continue(&c.input[..head.len]) {
                st.continued = true;
                c.out.push(super::Chunk::Owned(
                    b"HTTP/1.1 100 Continue\r\n\r\n".to_vec(),
                ));
            }
            return;
        }
        let input = std::mem::take(&mut c.input);
        let Some(head) = st.head.take() else { return };
        let body = &input[head.len..head.len + head.body_len];
        let response = self.admin_route(&head, body, now);
        debug!(
            "admin {} {} -> {}",
            head.method, head.target, response.status
        );
        self.admin_respond(key, response);
    }

    /// Queues the one response and finishes the connection.
    fn admin_respond(&mut self, key: usize, r: Response) {
        self.stats.admin_requests += 1;
        if r.status >= 400 {
            self.stats.admin_errors += 1;
        }
        if let Some(Entry::Ops(c)) = self.entries.get_mut(key) {
            c.queue(r.bytes());
            c.finished = true;
            c.input = Vec::new();
        }
    }

    fn admin_route(&mut self, head: &Head, body: &[u8], now: Instant) -> Response {
        let (path, query) = match head.target.split_once('?') {
            Some((p, q)) => (p, Some(q)),
            None => (head.target.as_str(), None),
        };
        let method = head.method.as_str();
        let allow = match path {
            "/" | "/metrics" | "/stats" | "/connections" => "GET",
            "/publish" => "POST",
            _ => {
                return Response::text(404, format!("no {path} here (GET / lists the endpoints)"));
            }
        };
        if method != allow {
            let mut r = Response::text(405, format!("{path} takes {allow}"));
            r.allow = Some(allow);
            return r;
        }
        match path {
            "/metrics" => Response::new(
                200,
                "text/plain; version=0.0.4; charset=utf-8",
                self.snapshot().prometheus(),
            ),
            "/stats" => Response::new(200, "application/json", self.snapshot().json() + "\n"),
            "/connections" => Response::new(
                200,
                "application/json",
                self.connections_report(true) + "\n",
            ),
            "/publish" => match publish_route(query, self.cfg.channels.max_name_bytes) {
                Ok(route) => {
                    let receipt = self.publish(&route, kind_of(body), body, now);
                    Response::new(200, "application/json", receipt_json(&receipt) + "\n")
                }
                Err(e) => Response::text(400, e),
            },
            _ => Response::new(200, "text/plain; charset=utf-8", INDEX.to_owned()),
        }
    }
}

/// The head's method, target and body length, or the error response.
fn parse_head(bytes: &[u8], max_body: usize) -> Result<Head, Response> {
    let mut headers = [httparse::EMPTY_HEADER; MAX_HEADERS];
    let mut req = httparse::Request::new(&mut headers);
    match req.parse(bytes) {
        Ok(httparse::Status::Complete(_)) => {}
        Ok(httparse::Status::Partial) => {
            return Err(Response::text(400, "incomplete request head"));
        }
        Err(httparse::Error::TooManyHeaders) => {
            return Err(Response::text(
                431,
                format!("more than {MAX_HEADERS} header fields"),
            ));
        }
        Err(e) => return Err(Response::text(400, format!("malformed HTTP request: {e}"))),
    }
    let mut body_len: Option<usize> = None;
    for h in req.headers.iter() {
        if h.name.eq_ignore_ascii_case("transfer-encoding") {
            return Err(Response::text(
                411,
                "send the body with a Content-Length (curl --data-binary does), not chunked",
            ));
        }
        if h.name.eq_ignore_ascii_case("content-length") {
            let n = std::str::from_utf8(h.value)
                .ok()
                .filter(|v| !v.is_empty() && v.bytes().all(|b| b.is_ascii_digit()))
                .and_then(|v| v.parse::<usize>().ok())
                .ok_or_else(|| Response::text(400, "bad Content-Length"))?;
            if body_len.is_some_and(|m| m != n) {
                return Err(Response::text(400, "conflicting Content-Length headers"));
            }
            body_len = Some(n);
        }
    }
    let body_len = body_len.unwrap_or(0);
    if body_len > max_body {
        return Err(Response::text(
            413,
            format!("the body is {body_len} bytes, over --max-message ({max_body})"),
        ));
    }
    Ok(Head {
        method: req.method.unwrap_or("").to_owned(),
        target: req.path.unwrap_or("").to_owned(),
        len: bytes.len(),
        body_len,
    })
}

fn expects_continue(head: &[u8]) -> bool {
    let mut headers = [httparse::EMPTY_HEADER; MAX_HEADERS];
    let mut req = httparse::Request::new(&mut headers);
    if req.parse(head).is_err() {
        return false;
    }
    req.headers.iter().any(|h| {
        h.name.eq_ignore_ascii_case("expect") && h.value.eq_ignore_ascii_case(b"100-continue")
    })
}

/// `/publish`'s route: `?channel=NAME`, `?id=CONNID`, or nothing
/// (everyone). Anything else is refused, so a typo never broadcasts.
fn publish_route(query: Option<&str>, max_name: usize) -> Result<Route, String> {
    let mut route = None;
    for param in query.unwrap_or("").split('&').filter(|p| !p.is_empty()) {
        let (k, v) = param.split_once('=').unwrap_or((param, ""));
        let v = percent_decode(v).ok_or_else(|| format!("{k}: bad percent-encoding"))?;
        let r = match k {
            "channel" if valid_channel_name(v.as_bytes(), max_name) => Route::Channel(v),
            "channel" => {
                return Err(format!(
                    "channel {v:?} is not a channel name (1 to {max_name} bytes of A-Z a-z 0-9 _ . -)"
                ));
            }
            "id" => Route::Conn(v.parse::<ConnId>().map_err(|e| format!("id {v:?}: {e}"))?),
            other => {
                return Err(format!(
                    "unknown parameter {other:?}: /publish takes channel=NAME or id=CONNID (or nothing, for everyone)"
                ));
            }
        };
        if route.replace(r).is_some() {
            return Err("one channel= or one id= per publish".into());
        }
    }
    Ok(route.unwrap_or(Route::All))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn publish_routes() {
        assert_eq!(publish_route(None, 64), Ok(Route::All));
        assert_eq!(publish_route(Some(""), 64), Ok(Route::All));
        assert_eq!(
            publish_route(Some("channel=news"), 64),
            Ok(Route::Channel("news".into()))
        );
        assert_eq!(
            publish_route(Some("channel=a%2Db"), 64),
            Ok(Route::Channel("a-b".into()))
        );
        assert_eq!(
            publish_route(Some("id=k3j9x2.1f"), 64),
            Ok(Route::Conn("k3j9x2.1f".parse().unwrap()))
        );
        for bad in [
            "channel=bad%20name",
            "channel=",
            "id=nope",
            "chanel=news",
            "channel=a&channel=b",
            "channel=a&id=k3j9x2.1f",
            "channel=%zz",
        ] {
            assert!(publish_route(Some(bad), 64).is_err(), "{bad}");
        }
    }

    #[test]
    fn heads() {
        let h = parse_head(
            b"POST /publish?channel=x HTTP/1.1\r\nHost: a\r\nContent-Length: 5\r\n\r\n",
            10,
        )
        .map_err(|r| r.status)
        .unwrap();
        assert_eq!(
            (h.method.as_str(), h.target.as_str(), h.body_len),
            ("POST", "/publish?channel=x", 5)
        );
        let status = |b: &[u8]| parse_head(b, 10).err().map(|r| r.status);
        assert_eq!(
            status(b"POST / HTTP/1.1\r\nContent-Length: 11\r\n\r\n"),
            Some(413)
        );
        assert_eq!(
            status(b"POST / HTTP/1.1\r\nContent-Length: x\r\n\r\n"),
            Some(400)
        );
        assert_eq!(
            status(b"POST / HTTP/1.1\r\nContent-Length: +1\r\n\r\n"),
            Some(400)
        );
        assert_eq!(
            status(b"POST / HTTP/1.1\r\nContent-Length: 1\r\nContent-Length: 2\r\n\r\n"),
            Some(400)
        );
        assert_eq!(
            status(b"POST / HTTP/1.1\r\nTransfer-Encoding: chunked\r\n\r\n"),
            Some(411)
        );
        assert_eq!(status(b"GARBAGE\r\n\r\n"), Some(400));
        assert!(expects_continue(
            b"POST / HTTP/1.1\r\nExpect: 100-continue\r\n\r\n"
        ));
        assert!(!expects_continue(b"POST / HTTP/1.1\r\n\r\n"));
    }
}
