//! Cluster mode end to end: a real `redis-server` started here on an
//! ephemeral loopback port, several real `wsbroadcaster serve --redis`
//! processes, clients on each, every ingress, `redis-cli`, the real
//! socket.io emitter (tests/socketio), and Redis failures: killed and
//! restarted, `CLIENT KILL TYPE pubsub`, `CLIENT PAUSE`.
//!
//! Every process is started here and ended by PID; every wait is bounded.

#[path = "../common/mod.rs"]
mod common;
#[path = "../redis_server/mod.rs"]
mod redis_server;

mod delivery;
mod half_open;
mod nodes;
mod redis_failures;
mod socketio;
