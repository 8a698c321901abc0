//! Operator actions on one server, shared by the runtime API and the stats
//! page's admin form so both change the same state the same way: the admin
//! state (READY / DRAIN / MAINT, logged in HAProxy's words), health checks on
//! or off, and killing the server's sessions on every shard. Every change
//! goes through `StatusTable::set`, which broadcasts it to the data shards.

use super::status::Admin;
use super::Table;
use crate::config::model::Config;
use crate::log::{level, Logger};
use crate::state::{ServerState, ShardMsg, Shared};

/// What an operator action needs.
pub struct Ops<'a> {
    pub config: &'a Config,
    pub shared: &'a Shared,
    pub table: &'a Table,
    pub logger: &'a Logger,
}

impl Ops<'_> {
    /// Sets server (b, s)'s admin state (`set server … state`: HAProxy's
    /// `srv_adm_set_*`, which set one flag and clear the other).
    pub fn set_admin(&self, b: usize, s: usize, to: Admin) {
        let flags = match to {
            Admin::Ready => (false, false),
            Admin::Drain => (false, true),
            Admin::Maint => (true, false),
        };
        self.set_flags(b, s, Some(flags.0), Some(flags.1));
    }

    /// Sets or clears HAProxy's forced MAINT and DRAIN flags one by one
    /// (`disable|enable server` touch only MAINT, so a server drained then
    /// disabled is back in DRAIN when enabled), logging the transition as
    /// HAProxy does. False when nothing changed.
    pub fn set_flags(&self, b: usize, s: usize, maint: Option<bool>, drain: Option<bool>) -> bool {
        let mut table = self.table.borrow_mut();
        let (m0, d0) = table.servers[b][s].admin_flags();
        let (m1, d1) = (maint.unwrap_or(m0), drain.unwrap_or(d0));
        if (m0, d0) == (m1, d1) {
            return false;
        }
        let from = table.servers[b][s].admin;
        let to = match (m1, d1) {
            (true, _) => Admin::Maint,
            (false, true) => Admin::Drain,
            (false, false) => Admin::Ready,
        };
        let Some((_, after)) = table.set(self.shared, b, s, |st| {
            st.admin = to;
            st.drain_under_maint = m1 && d1;
        }) else {
            return true;
        };
        let (act, bck) = table.usable_counts(self.config, b);
        drop(table);
        let name = format!(
            "{}/{}",
            self.config.backends[b].name, self.config.backends[b].servers[s].name
        );
        let line = match (from, to) {
            (_, Admin::Maint) if from != Admin::Maint => Some(format!(
                "Server {name} is going DOWN for maintenance. {act} active and {bck} backup servers left. \
                 {} sessions active, 0 requeued, 0 remaining in queue.",
                self.shared.backends[b].servers[s].active.get()
            )),
            (Admin::Maint, Admin::Ready) => Some(format!(
                "Server {name} is {} (leaving forced maintenance).",
                if after == ServerState::Down { "DOWN" } else { "UP/READY" }
            )),
            (Admin::Maint, Admin::Drain) => Some(format!(
                "Server {name} is UP/DRAIN (leaving forced maintenance)."
            )),
            (Admin::Ready, Admin::Drain) => Some(format!("Server {name} remains in forced drain mode.")),
            (Admin::Drain, Admin::Ready) => Some(format!("Server {name} is UP (leaving forced drain).")),
            _ => None,
        };
        if let Some(l) = line {
            self.logger.event(level::WARNING, l);
        }
        true
    }

    /// Server (b, s)'s forced (MAINT, DRAIN) flags.
    pub fn flags(&self, b: usize, s: usize) -> (bool, bool) {
        self.table.borrow().servers[b][s].admin_flags()
    }

    /// Turns server (b, s)'s health checks on or off (off: UP assumed, as
    /// HAProxy does).
    pub fn set_checks(&self, b: usize, s: usize, on: bool) {
        self.table.borrow_mut().set(self.shared, b, s, |st| {
            st.checks_enabled = on && st.checked;
            if !on {
                st.up = true;
            }
        });
    }

    /// Whether server (b, s) has health checks configured.
    pub fn has_checks(&self, b: usize, s: usize) -> bool {
        self.table.borrow().servers[b][s].checked
    }

    /// Closes every session on server (b, s), on every shard.
    pub fn kill_sessions(&self, backend: usize, server: usize) {
        for inbox in &self.shared.inboxes {
            inbox.send(ShardMsg::KillServerSessions { backend, server });
        }
    }
}
