//! State every shard shares: the exact limits (`global.maxconn`, frontend
//! `maxconn`, server `maxconn`) as cache-line-padded atomics, and each shard's
//! inbox (a channel plus an eventfd that wakes its ring). Only the slow paths —
//! a limit reached, a slot freed while others wait — send messages.

use std::sync::atomic::{AtomicBool, AtomicU32, AtomicU64, Ordering};
use std::sync::Arc;

use crossbeam_channel::{Receiver, Sender};

use super::event::ServerEvent;
use crate::config::model::Config;
use crate::sys::eventfd::EventFd;

/// An atomic counter alone on its cache line, so shards bumping different
/// counters never contend.
#[repr(align(64))]
#[derive(Default, Debug)]
pub struct Padded<T>(pub T);

/// A counter with a ceiling (0 = none) that is never exceeded, whatever the
/// number of shards racing for it.
#[derive(Default, Debug)]
pub struct Gauge {
    pub cur: Padded<AtomicU32>,
}

impl Gauge {
    /// Takes one unit if below `max` (0 = unlimited).
    pub fn try_acquire(&self, max: u32) -> bool {
        if max == 0 {
            self.cur.0.fetch_add(1, Ordering::AcqRel);
            return true;
        }
        let mut cur = self.cur.0.load(Ordering::Acquire);
        loop {
            if cur >= max {
                return false;
            }
            match self.cur.0.compare_exchange_weak(
                cur,
                cur + 1,
                Ordering::AcqRel,
                Ordering::Acquire,
            ) {
                Ok(_) => return true,
                Err(now) => cur = now,
            }
        }
    }

    pub fn release(&self) {
        self.cur.0.fetch_sub(1, Ordering::AcqRel);
    }

    pub fn get(&self) -> u32 {
        self.cur.0.load(Ordering::Relaxed)
    }
}

#[derive(Default, Debug)]
pub struct ServerShared {
    /// Sessions on this server now (server `maxconn` is exact on this).
    pub active: Gauge,
    pub total: Padded<AtomicU64>,
    pub connect_errors: AtomicU64,
    pub retries: AtomicU64,
    pub redispatches: AtomicU64,
    /// Highest `active` ever seen.
    pub max_active: AtomicU32,
}

#[derive(Default, Debug)]
pub struct BackendShared {
    pub servers: Vec<ServerShared>,
    pub active: Gauge,
    /// Highest `active` / `queued` ever seen (HAProxy's smax / qmax).
    pub max_active: AtomicU32,
    pub max_queued: AtomicU32,
    /// Sessions waiting in any shard's queue for this backend.
    pub queued: Padded<AtomicU32>,
    pub queue_timeouts: AtomicU64,
    /// Connects that failed for lack of a local resource (fds, memory, ports):
    /// the proxy's fault, never counted on a server.
    pub local_errors: AtomicU64,
    pub queue_full: AtomicU64,
    pub no_server: AtomicU64,
    pub total: AtomicU64,
}

#[derive(Default, Debug)]
pub struct FrontendShared {
    pub active: Gauge,
    /// Highest `active` ever seen.
    pub max_active: AtomicU32,
    pub total: AtomicU64,
    /// accept(2) failures (out of fds or memory, aborted connections).
    pub accept_errors: AtomicU64,
}

/// One shard's activity as last published (`show activity`, `ringlb_shard_*`).
#[repr(align(64))]
#[derive(Default, Debug)]
pub struct Activity {
    pub loops: AtomicU64,
    pub waits: AtomicU64,
    pub sqes: AtomicU64,
    pub cqes: AtomicU64,
    pub pipes_used: AtomicU64,
    /// Bytes forwarded on the ring copy path, and on the poll + splice path.
    pub ring_bytes: AtomicU64,
    pub poll_bytes: AtomicU64,
    /// How long the shard's last sleep in `io_uring_enter` could last, ms
    /// (the next timer then); [`NO_TIMER`]: no timer, woken only by I/O.
    pub last_wait_ms: AtomicU64,
}

/// [`Activity::last_wait_ms`] of a sleep with no timeout.
pub const NO_TIMER: u64 = u64::MAX;

/// What one shard may be told by the others and by the control shard.
#[derive(Debug, Clone)]
pub enum ShardMsg {
    /// A server changed state or weight.
    Server(ServerEvent),
    /// A global or frontend slot was freed while this shard was waiting for one.
    LimitFreed,
    /// A server slot of this backend was freed while sessions were queued.
    SlotFreed { backend: usize },
    /// Stop accepting and drain.
    Stop,
    /// Close every session now (hard-stop-after reached).
    Kill,
    /// Add this shard's latency histograms to `Shared::latency` and copy its
    /// activity figures to `Shared::activity` (a stats reader wants fresh ones).
    Publish,
    /// New connections to this server go to `addr` (`set server B/S addr`).
    ServerAddr {
        backend: usize,
        server: usize,
        addr: std::net::SocketAddr,
    },
    /// Close every session on this server now (`shutdown sessions server`).
    KillServerSessions { backend: usize, server: usize },
    /// Describe every live session (`show sess`): the shard answers once, on
    /// `reply`, with its id and its sessions.
    ListSessions {
        reply: Sender<(usize, Vec<super::SessionInfo>)>,
    },
    /// Close session `id` now (`shutdown session`); the answer says whether
    /// the shard had it.
    KillSession { id: u64, reply: Sender<bool> },
}

pub struct Inbox {
    pub tx: Sender<ShardMsg>,
    pub wake: EventFd,
}

impl Inbox {
    pub fn send(&self, msg: ShardMsg) {
        if self.tx.send(msg).is_ok() {
            let _ = self.wake.wake();
        }
    }
}

pub struct Shared {
    pub config: Arc<Config>,
    pub actconn: Gauge,
    pub frontends: Vec<FrontendShared>,
    pub backends: Vec<BackendShared>,
    pub inboxes: Vec<Inbox>,
    /// Per shard: server events applied so far (the control shard's broadcasts
    /// as each shard has taken them in).
    pub events_applied: Vec<Padded<AtomicU64>>,
    /// Bit per shard: that shard has an accept loop waiting for a free slot.
    pub limit_waiters: Padded<AtomicU64>,
    pub stopping: AtomicBool,
    /// Traffic totals, one block set per shard (summed when read).
    pub counters: Vec<super::counters::ShardCounters>,
    /// Latency histograms, published by each shard when a reader asks.
    pub latency: super::latency::SharedLatency,
    /// Each shard's activity (ring rounds, waits, SQEs, CQEs, pipes, bytes by
    /// path), published with the latency figures.
    pub activity: Vec<Activity>,
    /// The last malformed request and response per proxy (`show errors`).
    pub errors: super::errors::ErrorLog,
    /// Times any shard ran out of fds, memory or ports (accept or connect).
    pub local_exhaustion: AtomicU64,
    /// When the last alert about it was logged (seconds since the epoch), so
    /// an exhausted process logs once per interval, not once per connection.
    last_exhaustion_alert: AtomicU64,
    /// Until when accept loops also look at their listeners' queues on a
    /// timer: set for a while after listeners were taken over from another
    /// process (`shard::accept` says why). Unset, an idle shard never wakes.
    pub recheck_accept_until: std::sync::OnceLock<std::time::Instant>,
}

/// At most one alert about resource exhaustion per this many seconds.
const EXHAUSTION_ALERT_EVERY_S: u64 = 10;

impl Shared {
    pub fn new(
        config: Arc<Config>,
        shards: usize,
    ) -> std::io::Result<(Arc<Shared>, Vec<Receiver<ShardMsg>>)> {
        let mut inboxes = Vec::new();
        let mut rxs = Vec::new();
        for _ in 0..shards {
            let (tx, rx) = crossbeam_channel::unbounded();
            inboxes.push(Inbox {
                tx,
                wake: EventFd::new()?,
            });
            rxs.push(rx);
        }
        let backends = config
            .backends
            .iter()
            .map(|b| BackendShared {
                servers: b.servers.iter().map(|_| ServerShared::default()).collect(),
                ..Default::default()
            })
            .collect();
        let frontends = config
            .frontends
            .iter()
            .map(|_| FrontendShared::default())
            .collect();
        let latency = super::latency::SharedLatency::new(&config, shards);
        let errors = super::errors::ErrorLog::new(&config);
        let counters = (0..shards)
            .map(|_| super::counters::ShardCounters::new(&config))
            .collect();
        Ok((
            Arc::new(Shared {
                config,
                actconn: Gauge::default(),
                frontends,
                backends,
                events_applied: (0..shards).map(|_| Padded(AtomicU64::new(0))).collect(),
                inboxes,
                limit_waiters: Padded(AtomicU64::new(0)),
                stopping: AtomicBool::new(false),
                counters,
                latency,
                activity: (0..shards).map(|_| Activity::default()).collect(),
                errors,
                local_exhaustion: AtomicU64::new(0),
                last_exhaustion_alert: AtomicU64::new(0),
                recheck_accept_until: std::sync::OnceLock::new(),
            }),
            rxs,
        ))
    }

    /// Tells every other shard in `mask` that a slot is free.
    pub fn notify_limit_waiters(&self, me: usize) {
        let mask = self.limit_waiters.0.load(Ordering::Acquire) & !(1u64 << me);
        if mask == 0 {
            return;
        }
        for (i, inbox) in self.inboxes.iter().enumerate() {
            if mask & (1u64 << i) != 0 {
                inbox.send(ShardMsg::LimitFreed);
            }
        }
    }

    /// Counts one local resource failure; `true` when the caller should log an
    /// alert about it now (rate-limited across shards).
    pub fn local_exhaustion(&self) -> bool {
        self.local_exhaustion.fetch_add(1, Ordering::Relaxed);
        let now = std::time::SystemTime::now()
            .duration_since(std::time::UNIX_EPOCH)
            .map(|d| d.as_secs())
            .unwrap_or(0);
        let last = self.last_exhaustion_alert.load(Ordering::Relaxed);
        now >= last + EXHAUSTION_ALERT_EVERY_S
            && self
                .last_exhaustion_alert
                .compare_exchange(last, now, Ordering::Relaxed, Ordering::Relaxed)
                .is_ok()
    }

    pub fn broadcast_except(&self, me: usize, msg: ShardMsg) {
        for (i, inbox) in self.inboxes.iter().enumerate() {
            if i != me {
                inbox.send(msg.clone());
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn gauge_never_exceeds_its_max_under_contention() {
        let g = Arc::new(Gauge::default());
        let peak = Arc::new(AtomicU32::new(0));
        let threads: Vec<_> = (0..4)
            .map(|_| {
                let g = g.clone();
                let peak = peak.clone();
                std::thread::spawn(move || {
                    for _ in 0..20_000 {
                        if g.try_acquire(5) {
                            peak.fetch_max(g.get(), Ordering::Relaxed);
                            g.release();
                        }
                    }
                })
            })
            .collect();
        for t in threads {
            t.join().unwrap();
        }
        assert!(peak.load(Ordering::Relaxed) <= 5);
        assert_eq!(g.get(), 0);
    }

    #[test]
    fn exhaustion_alerts_are_rate_limited_but_every_failure_counts() {
        let cfg = crate::config::parse_str("", std::path::Path::new("t.toml")).unwrap();
        let (shared, _rx) = Shared::new(Arc::new(cfg), 1).unwrap();
        assert!(shared.local_exhaustion(), "the first failure alerts");
        assert!(
            !shared.local_exhaustion(),
            "the next ones within the interval do not"
        );
        assert!(!shared.local_exhaustion());
        assert_eq!(shared.local_exhaustion.load(Ordering::Relaxed), 3);
    }
}
