//! The control shard's timers, kept in one place so that it can say when it
//! will next wake by itself. Every sleep of its tasks (check intervals and
//! timeouts, slow-start steps, page and API deadlines) goes through [`sleep`],
//! which keeps the deadline registered while the sleep is pending;
//! `show activity` reports the nearest one (`control_next_timer_ms`). An idle
//! control shard has none, so only I/O or a message can wake it — a figure a
//! test reads at once, instead of watching the thread for a while.

use std::cell::RefCell;
use std::collections::BTreeSet;
use std::time::{Duration, Instant};

thread_local! {
    /// Pending deadlines with a serial number each (two sleeps may share one
    /// instant); the control shard is one thread.
    static PENDING: RefCell<(u64, BTreeSet<(Instant, u64)>)> = const {
        RefCell::new((0, BTreeSet::new()))
    };
}

/// A registered deadline; unregistered when the sleep ends or is dropped
/// (a timeout raced by the I/O it guards).
struct Due(Option<(Instant, u64)>);

impl Due {
    fn new(d: Duration) -> Due {
        // A deadline past `Instant`'s range is never due: nothing to register.
        Due(Instant::now().checked_add(d).map(|at| {
            PENDING.with(|p| {
                let mut p = p.borrow_mut();
                p.0 += 1;
                let key = (at, p.0);
                p.1.insert(key);
                key
            })
        }))
    }
}

impl Drop for Due {
    fn drop(&mut self) {
        if let Some(key) = self.0 {
            PENDING.with(|p| p.borrow_mut().1.remove(&key));
        }
    }
}

/// Sleeps for `d` on the control executor, registered while pending.
pub async fn sleep(d: Duration) {
    let _due = Due::new(d);
    glommio::timer::sleep(d).await;
}

/// How long until the nearest pending sleep of this thread ends (zero if one
/// is overdue), or `None` when no sleep is pending.
pub fn next_due() -> Option<Duration> {
    PENDING.with(|p| {
        p.borrow()
            .1
            .first()
            .map(|(at, _)| at.saturating_duration_since(Instant::now()))
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_nearest_pending_deadline_is_reported_and_dropped_ones_are_gone() {
        assert_eq!(next_due(), None);
        let far = Due::new(Duration::from_secs(60));
        let near = Due::new(Duration::from_secs(5));
        let twin = Due::new(Duration::from_secs(5));
        let left = next_due().unwrap();
        assert!(left <= Duration::from_secs(5) && left > Duration::from_secs(4));
        drop(near);
        assert!(next_due().unwrap() <= Duration::from_secs(5));
        drop(twin);
        assert!(next_due().unwrap() > Duration::from_secs(50));
        drop(far);
        assert_eq!(next_due(), None);
        // Past Instant's range: never due, never registered.
        let _never = Due::new(Duration::MAX);
        assert_eq!(next_due(), None);
    }
}
