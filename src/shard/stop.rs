//! Stopping a shard: count its sessions, stop accepting on SIGTERM (sessions
//! drain), and at `hard-stop-after` kill every session whatever its state —
//! queued, connecting or forwarding — so a stopping process always ends.

use super::ctx::ShardCtx;
use std::task::Waker;

impl ShardCtx {
    pub fn session_started(&self) {
        self.sessions.set(self.sessions.get() + 1);
    }

    pub fn session_ended(&self) {
        self.sessions.set(self.sessions.get() - 1);
        if self.sessions.get() == 0 && self.stopping.get() {
            if let Some(w) = self.stop_waker.borrow_mut().take() {
                w.wake();
            }
        }
    }

    /// Stops accepting; live sessions go on until they end.
    pub fn begin_stop(&self) {
        self.stopping.set(true);
        self.wake_limit_waiters();
        // Keep-alive connections waiting for a request close now; one with a
        // request in flight closes after its response.
        self.live.kill_idle();
        let wakers: Vec<Waker> = self
            .accept_wakers
            .borrow_mut()
            .iter_mut()
            .filter_map(|w| w.take())
            .collect();
        for w in wakers {
            w.wake();
        }
        if let Some(w) = self.stop_waker.borrow_mut().take() {
            w.wake();
        }
    }

    /// `hard-stop-after`: stop, and end every session now.
    pub fn hard_stop(&self) {
        self.begin_stop();
        self.killed.set(true);
        self.live.kill_all();
    }
}
