//! The control shard's view of every server: health (from checks), the
//! operator's admin state (READY / DRAIN / MAINT, from the runtime API), the
//! current weight, and the history the stats show (last change, downtime, check
//! failures). It is the only writer of server state: every change goes through
//! [`StatusTable::set`], which broadcasts the effective state to every data shard.

use std::time::{Instant, SystemTime};

use super::check::CheckResult;
use crate::config::model::Config;
use crate::state::{ServerEvent, ServerState, ShardMsg, Shared};

/// What the operator asked for a server (HAProxy's `set server … state`).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Admin {
    Ready,
    /// Keeps its sessions, takes no new balanced ones.
    Drain,
    /// Takes nothing.
    Maint,
}

#[derive(Debug, Clone)]
pub struct ServerStatus {
    /// Health as the checks see it (UP without checks).
    pub up: bool,
    pub admin: Admin,
    /// In MAINT with a forced drain under it (HAProxy's FMAINT and FDRAIN
    /// are two flags: `enable server` clears only the first).
    pub drain_under_maint: bool,
    /// Health checks running (`disable health` turns them off: UP assumed).
    pub checks_enabled: bool,
    pub weight: u32,
    pub last_change: Instant,
    /// Time spent DOWN before the current state (seconds), plus since the last
    /// DOWN transition if DOWN now.
    pub down_total: u64,
    pub down_since: Option<Instant>,
    /// Failed checks, and UP→DOWN transitions.
    pub check_failures: u64,
    pub check_downs: u64,
    pub last_check: Option<CheckResult>,
    /// Health checks are configured for the server.
    pub checked: bool,
    /// Where the server is now (`set server B/S addr` may move it).
    pub addr: std::net::SocketAddr,
    /// `slowstart`: percent of the weight in effect while warming up after
    /// DOWN→UP (`None`: not warming up).
    pub ramp: Option<u32>,
}

impl ServerStatus {
    /// HAProxy's forced admin flags: (FMAINT, FDRAIN).
    pub fn admin_flags(&self) -> (bool, bool) {
        match self.admin {
            Admin::Ready => (false, false),
            Admin::Drain => (false, true),
            Admin::Maint => (true, self.drain_under_maint),
        }
    }

    /// What the data shards apply.
    pub fn effective(&self) -> ServerState {
        match self.admin {
            Admin::Maint => ServerState::Maint,
            _ if !self.up => ServerState::Down,
            Admin::Drain => ServerState::Drain,
            Admin::Ready => ServerState::Up,
        }
    }

    /// HAProxy's status column: UP, DOWN, MAINT, DRAIN, `UP 1/3`, `DOWN 1/2`, no check.
    pub fn status_text(&self) -> String {
        match self.effective() {
            ServerState::Maint => "MAINT".into(),
            ServerState::Drain => "DRAIN".into(),
            ServerState::Down => "DOWN".into(),
            ServerState::Up if !self.checked || !self.checks_enabled => "no check".into(),
            ServerState::Up => "UP".into(),
        }
    }

    /// The weight the data shards use: the operator's weight, scaled while a
    /// `slowstart` ramp runs (never below 1 while the server takes traffic).
    pub fn effective_weight(&self) -> u32 {
        match self.ramp {
            Some(p) if self.weight > 0 => (self.weight * p).div_ceil(100).max(1),
            _ => self.weight,
        }
    }

    pub fn downtime(&self, now: Instant) -> u64 {
        self.down_total
            + self
                .down_since
                .map_or(0, |t| now.duration_since(t).as_secs())
    }
}

pub struct StatusTable {
    pub servers: Vec<Vec<ServerStatus>>,
    /// When the process started (uptime, and HAProxy's lastchg origin).
    pub started: Instant,
    pub started_wall: SystemTime,
}

impl StatusTable {
    pub fn new(config: &Config) -> StatusTable {
        let now = Instant::now();
        StatusTable {
            servers: config
                .backends
                .iter()
                .map(|b| {
                    b.servers
                        .iter()
                        .map(|s| ServerStatus {
                            up: s.saved.is_none_or(|st| st.up),
                            admin: match s.saved {
                                _ if s.disabled => Admin::Maint,
                                Some(st) if st.maint => Admin::Maint,
                                Some(st) if st.drain => Admin::Drain,
                                _ => Admin::Ready,
                            },
                            drain_under_maint: s.saved.is_some_and(|st| st.maint && st.drain),
                            checks_enabled: s.check,
                            weight: s.saved.map_or(s.weight, |st| st.weight),
                            last_change: now,
                            down_total: 0,
                            down_since: None,
                            check_failures: 0,
                            check_downs: 0,
                            last_check: None,
                            checked: s.check,
                            addr: s.addr,
                            ramp: None,
                        })
                        .collect()
                })
                .collect(),
            started: now,
            started_wall: SystemTime::now(),
        }
    }

    /// Applies `change` to server (b, s) and, if its effective state or weight
    /// moved, broadcasts the new view to every data shard. Returns the state
    /// before and after.
    pub fn set(
        &mut self,
        shared: &Shared,
        b: usize,
        s: usize,
        change: impl FnOnce(&mut ServerStatus),
    ) -> Option<(ServerState, ServerState)> {
        let st = self.servers.get_mut(b)?.get_mut(s)?;
        let (before, w0) = (st.effective(), st.effective_weight());
        let was_up = st.up;
        change(st);
        let now = Instant::now();
        if was_up && !st.up {
            st.down_since = Some(now);
            st.check_downs += 1;
        } else if !was_up && st.up {
            if let Some(t) = st.down_since.take() {
                st.down_total += now.duration_since(t).as_secs();
            }
        }
        let after = st.effective();
        let w1 = st.effective_weight();
        if after != before || w1 != w0 {
            if after != before {
                st.last_change = now;
            }
            let ev = ServerEvent {
                backend: b,
                server: s,
                state: after,
                weight: (w1 != w0).then_some(w1),
            };
            for inbox in &shared.inboxes {
                inbox.send(ShardMsg::Server(ev.clone()));
            }
        }
        Some((before, after))
    }

    /// Usable (UP, not in maintenance) active and backup servers of a backend.
    pub fn usable_counts(&self, config: &Config, b: usize) -> (usize, usize) {
        config.backends[b]
            .servers
            .iter()
            .zip(&self.servers[b])
            .filter(|(_, st)| matches!(st.effective(), ServerState::Up | ServerState::Drain))
            .fold(
                (0, 0),
                |(a, k), (s, _)| if s.backup { (a, k + 1) } else { (a + 1, k) },
            )
    }
}
