//! Traffic counters per frontend, backend and server, kept per shard: each shard
//! adds to its own cache-line-aligned blocks (relaxed atomics, never contended),
//! and readers — the stats page, the CSV, the runtime API, on the control shard —
//! sum the shards' blocks. Current sessions and queues are the exact gauges in
//! `Shared`; these are the totals.

use std::sync::atomic::{AtomicU64, Ordering};

/// One proxy's or server's totals on one shard.
#[repr(align(64))]
#[derive(Default, Debug)]
pub struct Counters {
    /// Sessions (or HTTP requests, for `req_tot`) ended here.
    pub sessions: AtomicU64,
    pub requests: AtomicU64,
    /// Client → server bytes.
    pub bytes_in: AtomicU64,
    /// Server → client bytes.
    pub bytes_out: AtomicU64,
    pub denied_req: AtomicU64,
    pub denied_resp: AtomicU64,
    pub req_errors: AtomicU64,
    pub resp_errors: AtomicU64,
    pub cli_aborts: AtomicU64,
    pub srv_aborts: AtomicU64,
    /// HTTP responses by class: 1xx, 2xx, 3xx, 4xx, 5xx, other.
    pub hrsp: [AtomicU64; 6],
    /// Unix time (s) of the last session, 0 = none.
    pub last_session: AtomicU64,
    /// Session rate, HAProxy's frequency counter: sessions started in the
    /// current second (`rate_sec`, Unix time) and in the one before, and the
    /// highest per-second count seen (`rate_max`).
    pub rate_sec: AtomicU64,
    pub rate_cur: AtomicU64,
    pub rate_prev: AtomicU64,
    pub rate_max: AtomicU64,
    /// Sums of the session phases, ms, for HAProxy's averages.
    pub queue_ms: AtomicU64,
    pub connect_ms: AtomicU64,
    pub response_ms: AtomicU64,
    pub total_ms: AtomicU64,
}

impl Counters {
    pub fn add(&self, field: &AtomicU64, n: u64) {
        let _ = self;
        field.fetch_add(n, Ordering::Relaxed);
    }

    /// Counts one session start at Unix second `now` in the rate counter.
    /// Only the owning shard writes these fields.
    pub fn tick(&self, now: u64) {
        let sec = self.rate_sec.load(Ordering::Relaxed);
        if sec != now {
            let cur = self.rate_cur.load(Ordering::Relaxed);
            // The second that ended becomes "previous" only if it was the last one.
            self.rate_prev
                .store(if sec + 1 == now { cur } else { 0 }, Ordering::Relaxed);
            self.rate_cur.store(0, Ordering::Relaxed);
            self.rate_sec.store(now, Ordering::Relaxed);
        }
        let c = self.rate_cur.fetch_add(1, Ordering::Relaxed) + 1;
        if c > self.rate_max.load(Ordering::Relaxed) {
            self.rate_max.store(c, Ordering::Relaxed);
        }
    }

    /// Sessions per second now, as HAProxy reads its counter: this second's
    /// count plus the previous second's, weighted by what is left of this one.
    pub fn rate(&self, now: u64, frac: f64) -> u64 {
        let sec = self.rate_sec.load(Ordering::Relaxed);
        let cur = self.rate_cur.load(Ordering::Relaxed) as f64;
        let prev = self.rate_prev.load(Ordering::Relaxed) as f64;
        let r = if sec == now {
            cur + prev * (1.0 - frac)
        } else if sec + 1 == now {
            cur * (1.0 - frac)
        } else {
            0.0
        };
        r.round() as u64
    }

    /// `clear counters all`: every total back to zero (a reader's store may
    /// race with a shard's increment; HAProxy's clear is no more exact).
    pub fn clear_all(&self) {
        for a in [
            &self.sessions,
            &self.requests,
            &self.bytes_in,
            &self.bytes_out,
            &self.denied_req,
            &self.denied_resp,
            &self.req_errors,
            &self.resp_errors,
            &self.cli_aborts,
            &self.srv_aborts,
            &self.last_session,
            &self.rate_max,
            &self.queue_ms,
            &self.connect_ms,
            &self.response_ms,
            &self.total_ms,
        ] {
            a.store(0, Ordering::Relaxed);
        }
        for h in &self.hrsp {
            h.store(0, Ordering::Relaxed);
        }
    }

    /// Counts an HTTP status in its class.
    pub fn status(&self, code: u16) {
        let class = match code {
            100..=199 => 0,
            200..=299 => 1,
            300..=399 => 2,
            400..=499 => 3,
            500..=599 => 4,
            _ => 5,
        };
        self.hrsp[class].fetch_add(1, Ordering::Relaxed);
    }
}

/// The sum of several shards' [`Counters`], as plain numbers.
#[derive(Default, Debug, Clone, Copy, PartialEq, Eq)]
pub struct Totals {
    pub sessions: u64,
    pub requests: u64,
    pub bytes_in: u64,
    pub bytes_out: u64,
    pub denied_req: u64,
    pub denied_resp: u64,
    pub req_errors: u64,
    pub resp_errors: u64,
    pub cli_aborts: u64,
    pub srv_aborts: u64,
    pub hrsp: [u64; 6],
    pub last_session: u64,
    pub queue_ms: u64,
    pub connect_ms: u64,
    pub response_ms: u64,
    pub total_ms: u64,
}

impl Totals {
    pub fn sum<'a>(blocks: impl Iterator<Item = &'a Counters>) -> Totals {
        let l = |a: &AtomicU64| a.load(Ordering::Relaxed);
        let mut t = Totals::default();
        for c in blocks {
            t.sessions += l(&c.sessions);
            t.requests += l(&c.requests);
            t.bytes_in += l(&c.bytes_in);
            t.bytes_out += l(&c.bytes_out);
            t.denied_req += l(&c.denied_req);
            t.denied_resp += l(&c.denied_resp);
            t.req_errors += l(&c.req_errors);
            t.resp_errors += l(&c.resp_errors);
            t.cli_aborts += l(&c.cli_aborts);
            t.srv_aborts += l(&c.srv_aborts);
            for (i, h) in c.hrsp.iter().enumerate() {
                t.hrsp[i] += l(h);
            }
            t.last_session = t.last_session.max(l(&c.last_session));
            t.queue_ms += l(&c.queue_ms);
            t.connect_ms += l(&c.connect_ms);
            t.response_ms += l(&c.response_ms);
            t.total_ms += l(&c.total_ms);
        }
        t
    }
}

/// Every block of one shard: by frontend, by backend, by backend then server.
#[derive(Debug)]
pub struct ShardCounters {
    pub frontends: Vec<Counters>,
    pub backends: Vec<Counters>,
    pub servers: Vec<Vec<Counters>>,
}

impl ShardCounters {
    pub fn new(config: &crate::config::model::Config) -> ShardCounters {
        ShardCounters {
            frontends: config
                .frontends
                .iter()
                .map(|_| Counters::default())
                .collect(),
            backends: config
                .backends
                .iter()
                .map(|_| Counters::default())
                .collect(),
            servers: config
                .backends
                .iter()
                .map(|b| b.servers.iter().map(|_| Counters::default()).collect())
                .collect(),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn session_rate_per_second_and_its_max() {
        let c = Counters::default();
        for _ in 0..10 {
            c.tick(100);
        }
        assert_eq!(c.rate(100, 0.5), 10);
        for _ in 0..4 {
            c.tick(101);
        }
        // 4 this second, plus half of the previous second's 10.
        assert_eq!(c.rate(101, 0.5), 9);
        assert_eq!(c.rate(102, 0.5), 2, "the last second fades");
        assert_eq!(c.rate(110, 0.0), 0);
        assert_eq!(c.rate_max.load(Ordering::Relaxed), 10);
        c.tick(105);
        assert_eq!(
            c.rate_prev.load(Ordering::Relaxed),
            0,
            "a gap resets the previous second"
        );
    }

    #[test]
    fn blocks_are_cache_line_aligned_and_sum_across_shards() {
        assert_eq!(std::mem::align_of::<Counters>(), 64);
        let a = Counters::default();
        let b = Counters::default();
        a.add(&a.sessions, 2);
        b.add(&b.sessions, 3);
        a.add(&a.bytes_in, 100);
        b.status(503);
        b.status(200);
        a.status(99);
        b.last_session.store(50, Ordering::Relaxed);
        a.last_session.store(40, Ordering::Relaxed);
        let t = Totals::sum([&a, &b].into_iter());
        assert_eq!(t.sessions, 5);
        assert_eq!(t.bytes_in, 100);
        assert_eq!(t.hrsp, [0, 1, 0, 0, 1, 1]);
        assert_eq!(t.last_session, 50, "the latest of the shards");
    }
}
