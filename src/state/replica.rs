//! `HealthReplica`: one data shard's copy of every server's state and weight.
//! The control shard broadcasts [`ServerEvent`]s; each shard applies them here, in
//! order, and its balancer reads from here. Shard-local: never shared, never locked.

use super::event::{ServerEvent, ServerState};
use crate::config::model::Config;

/// One server as a shard sees it.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct ServerReplica {
    pub state: ServerState,
    pub weight: u32,
    /// An address set at run time (`set server B/S addr`), replacing the
    /// configured one for new connections.
    pub addr: Option<std::net::SocketAddr>,
}

impl ServerReplica {
    /// Takes new balanced sessions (UP with a non-zero weight).
    pub fn usable(&self) -> bool {
        self.state == ServerState::Up && self.weight > 0
    }
}

/// Every server of every backend, indexed as `Config::backends[b].servers[s]`.
#[derive(Debug, Clone)]
pub struct HealthReplica {
    servers: Vec<Vec<ServerReplica>>,
}

impl HealthReplica {
    /// The state at startup: configured weights, `disabled` servers in MAINT, every
    /// other server UP (HAProxy: a checked server is UP until `fall` failures).
    pub fn new(config: &Config) -> HealthReplica {
        let servers = config
            .backends
            .iter()
            .map(|b| {
                b.servers
                    .iter()
                    .map(|s| ServerReplica {
                        state: match s.saved {
                            _ if s.disabled => ServerState::Maint,
                            // As the previous process left it (a reload
                            // with `load-server-state-from-file`).
                            Some(st) if st.maint => ServerState::Maint,
                            Some(st) if !st.up => ServerState::Down,
                            Some(st) if st.drain => ServerState::Drain,
                            _ => ServerState::Up,
                        },
                        weight: s.saved.map_or(s.weight, |st| st.weight),
                        addr: None,
                    })
                    .collect()
            })
            .collect();
        HealthReplica { servers }
    }

    pub fn get(&self, backend: usize, server: usize) -> ServerReplica {
        self.servers[backend][server]
    }

    /// Records a run-time address for server (b, s); unknown servers ignored.
    pub fn set_addr(&mut self, b: usize, s: usize, addr: std::net::SocketAddr) {
        if let Some(r) = self.servers.get_mut(b).and_then(|v| v.get_mut(s)) {
            r.addr = Some(addr);
        }
    }

    /// Applies one event; returns the server's new view, or `None` when the event
    /// names no known server (ignored: a stale event must never panic a shard).
    pub fn apply(&mut self, ev: &ServerEvent) -> Option<ServerReplica> {
        let r = self.servers.get_mut(ev.backend)?.get_mut(ev.server)?;
        r.state = ev.state;
        if let Some(w) = ev.weight {
            r.weight = w;
        }
        Some(*r)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn config() -> Config {
        crate::config::parse_str(
            r#"
[[backend]]
name = "b"
servers = [
  { name = "a", address = "127.0.0.1:1", weight = 3 },
  { name = "m", address = "127.0.0.1:2", disabled = true },
]
"#,
            std::path::Path::new("t.toml"),
        )
        .unwrap()
    }

    #[test]
    fn starts_from_config_and_applies_events_in_order() {
        let mut r = HealthReplica::new(&config());
        assert_eq!(r.get(0, 0).state, ServerState::Up);
        assert_eq!(r.get(0, 0).weight, 3);
        assert_eq!(r.get(0, 1).state, ServerState::Maint);
        assert!(!r.get(0, 1).usable());
        let down = ServerEvent {
            backend: 0,
            server: 0,
            state: ServerState::Down,
            weight: None,
        };
        assert_eq!(r.apply(&down).unwrap().state, ServerState::Down);
        let up0 = ServerEvent {
            state: ServerState::Up,
            weight: Some(0),
            ..down.clone()
        };
        let now = r.apply(&up0).unwrap();
        assert_eq!((now.state, now.weight), (ServerState::Up, 0));
        assert!(!now.usable(), "weight 0 takes no balanced sessions");
    }

    #[test]
    fn an_event_for_an_unknown_server_is_ignored() {
        let mut r = HealthReplica::new(&config());
        let ev = ServerEvent {
            backend: 7,
            server: 0,
            state: ServerState::Down,
            weight: None,
        };
        assert!(r.apply(&ev).is_none());
        let ev = ServerEvent {
            backend: 0,
            server: 9,
            ..ev
        };
        assert!(r.apply(&ev).is_none());
    }
}
