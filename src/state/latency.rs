//! Latency histograms per server (HdrHistogram, milliseconds): time queued,
//! connecting, waiting for the response, and in total. Each shard records into
//! its own book, with no lock; on request (a stats reader sends
//! `ShardMsg::Publish`) it adds its book into its slot here and clears it,
//! so an idle shard is never woken to publish and readers see fresh figures.
//! Readers merge the shards' slots and read percentiles.

use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::Mutex;

use hdrhistogram::Histogram;

use crate::config::model::Config;

/// The phases recorded, in order.
pub const PHASES: [&str; 4] = ["queue", "connect", "response", "total"];

/// Longest duration recorded (ms); longer ones are clamped to it.
const MAX_MS: u64 = 3_600_000;

fn histogram() -> Histogram<u64> {
    Histogram::new_with_bounds(1, MAX_MS, 2).expect("static bounds are valid")
}

/// One server's four histograms.
#[derive(Clone)]
pub struct Phases(pub [Histogram<u64>; 4]);

impl Phases {
    fn new() -> Phases {
        Phases([histogram(), histogram(), histogram(), histogram()])
    }

    /// Percentile `q` (0–100) of a phase, ms; `None` when nothing was recorded.
    pub fn percentile(&self, phase: usize, q: f64) -> Option<u64> {
        let h = &self.0[phase];
        (!h.is_empty()).then(|| h.value_at_quantile(q / 100.0))
    }

    pub fn count(&self, phase: usize) -> u64 {
        self.0[phase].len()
    }

    /// Approximate sum of the recorded values (mean × count), ms.
    pub fn sum_ms(&self, phase: usize) -> u64 {
        let h = &self.0[phase];
        (h.mean() * h.len() as f64).round() as u64
    }
}

/// Every server's histograms, as one shard (or a merge of shards) has them.
#[derive(Clone)]
pub struct LatencyBook {
    pub servers: Vec<Vec<Phases>>,
    dirty: bool,
}

impl LatencyBook {
    pub fn new(config: &Config) -> LatencyBook {
        LatencyBook {
            servers: config
                .backends
                .iter()
                .map(|b| b.servers.iter().map(|_| Phases::new()).collect())
                .collect(),
            dirty: false,
        }
    }

    /// Records `ms` for `phase` of server (b, s); negative = phase never ran.
    pub fn record(&mut self, b: usize, s: usize, phase: usize, ms: i64) {
        if ms < 0 {
            return;
        }
        if let Some(p) = self.servers.get_mut(b).and_then(|v| v.get_mut(s)) {
            let _ = p.0[phase].record((ms as u64).clamp(1, MAX_MS));
            self.dirty = true;
        }
    }

    /// Adds `other` into this book.
    pub fn add(&mut self, other: &LatencyBook) {
        for (mine, theirs) in self.servers.iter_mut().zip(&other.servers) {
            for (m, t) in mine.iter_mut().zip(theirs) {
                for (mh, th) in m.0.iter_mut().zip(&t.0) {
                    let _ = mh.add(th);
                }
            }
        }
    }

    pub fn clear(&mut self) {
        if !self.dirty {
            return;
        }
        for s in self.servers.iter_mut().flatten() {
            for h in s.0.iter_mut() {
                h.reset();
            }
        }
        self.dirty = false;
    }

    pub fn is_dirty(&self) -> bool {
        self.dirty
    }
}

/// The shards' published books, and how many publications each has made.
pub struct SharedLatency {
    pub shards: Vec<Mutex<LatencyBook>>,
    pub published: Vec<AtomicU64>,
}

impl SharedLatency {
    pub fn new(config: &Config, shards: usize) -> SharedLatency {
        SharedLatency {
            shards: (0..shards)
                .map(|_| Mutex::new(LatencyBook::new(config)))
                .collect(),
            published: (0..shards).map(|_| AtomicU64::new(0)).collect(),
        }
    }

    /// A shard adds its local book here (on a reader's request) and clears it.
    pub fn publish(&self, shard: usize, local: &mut LatencyBook) {
        if local.is_dirty() {
            if let Ok(mut b) = self.shards[shard].lock() {
                b.add(local);
            }
            local.clear();
        }
        self.published[shard].fetch_add(1, Ordering::Release);
    }

    /// Every shard's published figures, merged.
    pub fn merged(&self, config: &Config) -> LatencyBook {
        let mut out = LatencyBook::new(config);
        for s in &self.shards {
            if let Ok(b) = s.lock() {
                out.add(&b);
            }
        }
        out
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn shards_publish_and_merge_into_percentiles() {
        let cfg = crate::config::parse_str(
            "[[backend]]\nname = \"b\"\nservers = [{ name = \"s\", address = \"127.0.0.1:1\" }]\n",
            std::path::Path::new("t.toml"),
        )
        .unwrap();
        let shared = SharedLatency::new(&cfg, 2);
        let mut a = LatencyBook::new(&cfg);
        let mut b = LatencyBook::new(&cfg);
        for ms in 1..=90 {
            a.record(0, 0, 3, ms);
        }
        for ms in 91..=100 {
            b.record(0, 0, 3, ms);
        }
        b.record(0, 0, 1, -1);
        shared.publish(0, &mut a);
        assert!(!a.is_dirty(), "the local book is cleared once published");
        shared.publish(1, &mut b);
        let m = shared.merged(&cfg);
        let p = &m.servers[0][0];
        assert_eq!(p.count(3), 100);
        assert_eq!(p.count(1), 0, "a phase that never ran records nothing");
        assert_eq!(p.percentile(3, 50.0), Some(50));
        assert_eq!(p.percentile(3, 99.0), Some(99));
        assert_eq!(p.percentile(1, 50.0), None);
        assert_eq!(shared.published[1].load(Ordering::Relaxed), 1);
    }
}
