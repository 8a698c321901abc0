//! Applying a server state event (from a health check or an operator) on one
//! shard: update the health replica, move sessions queued for a server that went
//! away, close its idle HTTP connections and (with `on-marked-down
//! shutdown-sessions`) its sessions, and give
//! freed capacity to the queue.

use std::rc::Rc;
use std::sync::atomic::Ordering;

use super::ctx::ShardCtx;
use crate::config::model::OnMarkedDown;
use crate::state::{ServerEvent, ServerReplica, ServerState};

impl ShardCtx {
    pub fn replica(&self, backend: usize, server: usize) -> ServerReplica {
        self.replica.borrow().get(backend, server)
    }

    /// Where new connections to server (b, s) go: the run-time address if one
    /// was set, else the configured one.
    pub fn server_addr(&self, backend: usize, server: usize) -> std::net::SocketAddr {
        self.replica
            .borrow()
            .get(backend, server)
            .addr
            .unwrap_or(self.config.backends[backend].servers[server].addr)
    }

    pub fn set_server_addr(&self, backend: usize, server: usize, addr: std::net::SocketAddr) {
        self.replica.borrow_mut().set_addr(backend, server, addr);
    }

    /// Applies a state change from the control shard.
    pub fn apply(self: &Rc<Self>, ev: &ServerEvent) {
        let known = self
            .config
            .backends
            .get(ev.backend)
            .is_some_and(|b| ev.server < b.servers.len());
        // Marked up: from DOWN (checks), not out of DRAIN or MAINT.
        let was_down = known && self.replica(ev.backend, ev.server).state == ServerState::Down;
        let applied = self.replica.borrow_mut().apply(ev);
        if applied.is_none() {
            return;
        }
        let be = &self.config.backends[ev.backend];
        if ev.state == ServerState::Up
            && was_down
            && be.servers[ev.server].shutdown_backup_sessions
            && !be.servers[ev.server].backup
        {
            // `on-marked-up shutdown-backup-sessions`.
            self.live.kill(false, |b, s| {
                b == ev.backend && s.is_some_and(|s| be.servers[s].backup)
            });
        }
        match ev.state {
            ServerState::Down | ServerState::Maint => {
                // Idle HTTP connections to it are not reused (HAProxy purges
                // them too).
                self.idle.clear_server(ev.backend, ev.server);
                // Sessions queued for this server specifically go to any server.
                for t in self.queues.borrow()[ev.backend].iter() {
                    if t.for_server.get() == Some(ev.server) {
                        t.for_server.set(None);
                    }
                }
                if self.config.backends[ev.backend].servers[ev.server].on_marked_down
                    == OnMarkedDown::ShutdownSessions
                {
                    self.live
                        .kill(false, |b, s| b == ev.backend && s == Some(ev.server));
                }
            }
            ServerState::Up | ServerState::Drain => {}
        }
        self.serve_queue(ev.backend);
        self.shared.events_applied[self.id]
            .0
            .fetch_add(1, Ordering::Release);
    }
}
