//! `serve`'s flags turned into a [`ServerConfig`], with the checks that
//! involve more than one flag.

use std::path::PathBuf;

use super::{ClientMessagesArg, DeflateArg, ServeArgs};
use crate::protocol::Limits;
use crate::server::{ClientMessages, ClusterConfig, ServerConfig, valid_redis_prefix};

fn off_or<T: std::str::FromStr>(v: &str, what: &str) -> Result<Option<T>, String> {
    if v == "off" {
        return Ok(None);
    }
    v.parse()
        .map(Some)
        .map_err(|_| format!("--{what} {v:?}: expected an address or `off`"))
}

impl ServeArgs {
    pub(in crate::cli) fn config(&self) -> Result<ServerConfig, String> {
        let unix_mode = u32::from_str_radix(&self.unix_mode, 8)
            .map_err(|_| format!("--unix-mode {:?}: expected octal, e.g. 660", self.unix_mode))?;
        let usize_of =
            |v: u64, what: &str| usize::try_from(v).map_err(|_| format!("--{what} is too large"));
        Ok(ServerConfig {
            ws: self.ws,
            udp: off_or(&self.udp, "udp")?,
            udp_allow: self.udp_allow.clone(),
            unix: if self.unix == "off" {
                None
            } else {
                Some(PathBuf::from(&self.unix))
            },
            unix_mode,
            client_messages: match self.client_messages {
                ClientMessagesArg::Broadcast => ClientMessages::Broadcast,
                ClientMessagesArg::Echo => ClientMessages::Echo,
                ClientMessagesArg::Ignore => ClientMessages::Ignore,
            },
            limits: Limits {
                max_frame: self.max_frame,
                max_message: usize_of(self.max_message, "max-message")?,
                max_fragments: self.max_fragments,
            },
            handshake_limits: crate::protocol::HandshakeLimits {
                max_header_bytes: usize_of(self.max_header_bytes, "max-header-bytes")?,
                ..Default::default()
            },
            max_connections: self.max_connections,
            max_queued_bytes: usize_of(self.max_queued_bytes, "max-queued-bytes")?,
            handshake_timeout: self.handshake_timeout,
            ping_interval: self.ping_interval,
            idle_timeout: self.idle_timeout,
            channels: crate::server::ChannelLimits {
                max_name_bytes: self.max_channel_name,
                max_per_connection: self.max_channels_per_connection,
            },
            announce_id: self.announce_id,
            stdin: self.stdin,
            listen_backlog: self.listen_backlog,
            deflate: match self.deflate {
                DeflateArg::Off => crate::protocol::deflate::ServerDeflate::Off,
                DeflateArg::Shared => crate::protocol::deflate::ServerDeflate::Shared,
                DeflateArg::PerConnection => crate::protocol::deflate::ServerDeflate::PerConnection,
            },
            deflate_min_size: usize_of(self.deflate_min_size, "deflate-min-size")?,
            rpc: off_or(&self.rpc, "rpc")?,
            auth: self.auth()?,
            tls: match (&self.tls_cert, &self.tls_key) {
                (Some(cert), Some(key)) => Some(crate::server::TlsFiles {
                    cert: cert.clone(),
                    key: key.clone(),
                }),
                _ => None,
            },
            ops: crate::server::OpsConfig {
                admin: off_or(&self.admin, "admin")?,
                control: (self.control != "off").then(|| PathBuf::from(&self.control)),
                control_mode: u32::from_str_radix(&self.control_mode, 8).map_err(|_| {
                    format!(
                        "--control-mode {:?}: expected octal, e.g. 600",
                        self.control_mode
                    )
                })?,
                max_connections: self.ops_max_connections,
                max_queued_bytes: usize_of(self.ops_max_queued, "ops-max-queued")?,
                admin_timeout: self.admin_timeout,
                max_channels_listed: self.stats_channels,
            },
            cluster: self.cluster()?,
            history: crate::server::HistoryLimits {
                per_stream: self.history,
                max_bytes: usize_of(self.history_memory, "history-memory")?,
                max_age: (!self.history_max_age.is_zero()).then_some(self.history_max_age),
            },
            slow_consumer: self.slow_consumer,
            channel_policies: self
                .channel_policy
                .iter()
                .map(|(n, p)| (Box::from(n.as_str()), *p))
                .collect(),
            write_delay: self.write_delay,
            ..ServerConfig::default()
        })
    }
}

impl ServeArgs {
    fn auth(&self) -> Result<crate::server::AuthConfig, String> {
        let channel_secret = match &self.channel_secret_file {
            Some(path) => {
                let (secret, warning) = crate::server::ChannelSecret::from_file(path)?;
                if let Some(w) = warning {
                    log::warn!("{w}");
                }
                Some(secret)
            }
            None => None,
        };
        Ok(crate::server::AuthConfig {
            allowed_origins: self.allow_origin.clone(),
            channel_secret,
        })
    }

    pub(super) fn cluster(&self) -> Result<Option<ClusterConfig>, String> {
        let Some(url) = &self.redis else {
            if self.socketio_emitter {
                log::warn!("--socketio-emitter has no effect without --redis");
            }
            if self.redis_history || self.local_history {
                log::warn!("--redis-history and --local-history have no effect without --redis");
            }
            return Ok(None);
        };
        let mut c = ClusterConfig::new(url).map_err(|e| format!("--redis {e}"))?;
        if !valid_redis_prefix(&self.redis_prefix) {
            return Err(format!(
                "--redis-prefix {:?}: expected 1 to 64 bytes of A-Z a-z 0-9 _ . - :",
                self.redis_prefix
            ));
        }
        c.prefix = self.redis_prefix.clone();
        if self.socketio_emitter {
            if !valid_redis_prefix(&self.socketio_key) {
                return Err(format!(
                    "--socketio-key {:?}: expected 1 to 64 bytes of A-Z a-z 0-9 _ . - :",
                    self.socketio_key
                ));
            }
            c.socketio_key = Some(self.socketio_key.clone());
        }
        if self.cluster_heartbeat.is_zero() || self.cluster_stall_timeout <= self.cluster_heartbeat
        {
            return Err(
                "--cluster-stall-timeout must be longer than --cluster-heartbeat (which must be more than 0)"
                    .into(),
            );
        }
        c.heartbeat = self.cluster_heartbeat;
        c.stall_timeout = self.cluster_stall_timeout;
        let buffer = usize::try_from(self.cluster_buffer)
            .map_err(|_| "--cluster-buffer is too large".to_owned())?;
        c.relay_bytes = buffer;
        c.inflight_bytes = buffer;
        if (self.redis_history || self.local_history) && self.history == 0 {
            log::warn!("--redis-history and --local-history have no effect without --history");
        }
        if !self.local_history {
            // Shared history is the default with --redis and --history.
            c.shared_history = self.history;
        }
        if self.redis_history_timeout.is_zero() {
            return Err("--redis-history-timeout must be more than 0".into());
        }
        c.catch_up_timeout = self.redis_history_timeout;
        Ok(Some(c))
    }
}
