//! Adding a finished session (or HTTP request) to this shard's counters: the
//! frontend's, the backend's and the server's blocks in `Shared::counters`,
//! written by this shard only. Called once per log record, after the record is
//! final.

use std::sync::atomic::Ordering;

use super::ctx::ShardCtx;
use crate::log::SessionRecord;
use crate::state::Counters;

impl ShardCtx {
    /// A stats reader asked: latency histograms and activity figures out.
    pub fn publish(&self) {
        let st = crate::ring::stats();
        let a = &self.shared.activity[self.id];
        a.loops.store(st.loops, Ordering::Relaxed);
        a.waits.store(st.waits, Ordering::Relaxed);
        a.sqes.store(st.sqes, Ordering::Relaxed);
        a.cqes.store(st.cqes, Ordering::Relaxed);
        a.pipes_used
            .store(self.pools.pipes.in_use() as u64, Ordering::Relaxed);
        a.ring_bytes.store(self.ring_bytes.get(), Ordering::Relaxed);
        a.poll_bytes.store(self.poll_bytes.get(), Ordering::Relaxed);
        a.last_wait_ms.store(
            st.last_wait
                .map_or(crate::state::NO_TIMER, |d| d.as_millis() as u64),
            Ordering::Relaxed,
        );
        // Last: the reader waits on the publication count.
        self.shared
            .latency
            .publish(self.id, &mut self.latency.borrow_mut());
    }

    /// Counts `r`: a TCP session, or an HTTP request with its `status`.
    pub fn account(&self, r: &SessionRecord, status: Option<u16>) {
        self.account_with_response(r, status, -1);
    }

    /// As [`account`](Self::account), with the time the server took to send
    /// its response head (HTTP's `Tr`, ms; -1 when there is none).
    pub fn account_with_response(&self, r: &SessionRecord, status: Option<u16>, tr_ms: i64) {
        if !self.counting {
            return;
        }
        if let (Some(b), Some(s)) = (r.backend, r.server) {
            self.latency.borrow_mut().record(b, s, 2, tr_ms);
        }
        let c = &self.shared.counters[self.id];
        let now = r
            .accept_time
            .duration_since(std::time::UNIX_EPOCH)
            .map(|d| d.as_secs())
            .unwrap_or(0);
        let t = r.termination.0;
        let add = |k: &Counters| {
            if status.is_some() {
                k.add(&k.requests, 1);
            }
            k.add(&k.bytes_in, r.bytes_up);
            k.add(&k.bytes_out, r.bytes_down);
            if let Some(code) = status {
                k.status(code);
            }
            // HAProxy's cli_abrt / srv_abrt: data transfers aborted by a side.
            match (t[0], t[1]) {
                (b'C', b'D') => k.add(&k.cli_aborts, 1),
                (b'S', b'D' | b'H') => k.add(&k.srv_aborts, 1),
                _ => {}
            }
        };
        let fe = &c.frontends[r.frontend];
        add(fe);
        fe.add(&fe.sessions, 1);
        let Some(b) = r.backend else { return };
        let be = &c.backends[b];
        add(be);
        be.add(&be.sessions, 1);
        be.last_session.store(now, Ordering::Relaxed);
        if r.tw_ms >= 0 {
            be.add(&be.queue_ms, r.tw_ms as u64);
        }
        if r.tc_ms >= 0 {
            be.add(&be.connect_ms, r.tc_ms as u64);
        }
        be.add(&be.total_ms, r.tt_ms.max(0) as u64);
        let Some(s) = r.server else { return };
        let Some(srv) = c.servers.get(b).and_then(|v| v.get(s)) else {
            return;
        };
        add(srv);
        srv.add(&srv.sessions, 1);
        let mut lat = self.latency.borrow_mut();
        lat.record(b, s, 0, r.tw_ms);
        lat.record(b, s, 1, r.tc_ms);
        lat.record(b, s, 3, r.tt_ms);
        drop(lat);
        srv.last_session.store(now, Ordering::Relaxed);
        if r.tc_ms >= 0 {
            srv.add(&srv.connect_ms, r.tc_ms as u64);
        }
        srv.add(&srv.total_ms, r.tt_ms.max(0) as u64);
    }
}
