//! One hashed timing wheel per shard (1 ms ticks, 1024 slots). A timer costs a
//! slab entry and a slot push — never an SQE; the event loop's wait timeout is the
//! time to the next occupied slot. Timers further than one revolution away stay in
//! their slot and are skipped until their tick comes round.

use std::cell::RefCell;
use std::future::Future;
use std::pin::Pin;
use std::task::{Context, Poll, Waker};
use std::time::{Duration, Instant};

const SLOTS: u64 = 1024;
const TICK: Duration = Duration::from_millis(1);

struct Entry {
    deadline_tick: u64,
    gen: u32,
    in_use: bool,
    waker: Option<Waker>,
}

struct Wheel {
    origin: Instant,
    /// Last tick whose slot has been processed.
    tick: u64,
    slots: Vec<Vec<(u32, u32)>>,
    entries: Vec<Entry>,
    free: Vec<u32>,
    active: usize,
}

impl Wheel {
    fn new() -> Wheel {
        Wheel {
            origin: Instant::now(),
            tick: 0,
            slots: (0..SLOTS).map(|_| Vec::new()).collect(),
            entries: Vec::new(),
            free: Vec::new(),
            active: 0,
        }
    }

    fn tick_of(&self, t: Instant) -> u64 {
        let d = t.saturating_duration_since(self.origin);
        // Round up so a timer never fires before its deadline.
        (d.as_nanos().div_ceil(TICK.as_nanos())) as u64
    }

    fn insert(&mut self, deadline: Instant, waker: Waker) -> (u32, u32) {
        let key = self.free.pop().unwrap_or_else(|| {
            self.entries.push(Entry {
                deadline_tick: 0,
                gen: 0,
                in_use: false,
                waker: None,
            });
            (self.entries.len() - 1) as u32
        });
        let dt = self.tick_of(deadline).max(self.tick + 1);
        let e = &mut self.entries[key as usize];
        e.deadline_tick = dt;
        e.in_use = true;
        e.waker = Some(waker);
        let gen = e.gen;
        self.slots[(dt % SLOTS) as usize].push((key, gen));
        self.active += 1;
        (key, gen)
    }

    fn remove(&mut self, (key, gen): (u32, u32)) {
        let e = &mut self.entries[key as usize];
        if e.in_use && e.gen == gen {
            e.in_use = false;
            e.gen = e.gen.wrapping_add(1);
            e.waker = None;
            self.free.push(key);
            self.active -= 1;
        }
    }

    fn fire(&mut self, now: Instant, wake: &mut Vec<Waker>) {
        let since = now.saturating_duration_since(self.origin);
        let target = ((since.as_nanos() / TICK.as_nanos()) as u64).max(self.tick);
        if self.active == 0 {
            self.tick = target;
            return;
        }
        let span = (target - self.tick).min(SLOTS);
        for t in (target + 1 - span)..=target {
            let slot = (t % SLOTS) as usize;
            let entries = &mut self.entries;
            let free = &mut self.free;
            let active = &mut self.active;
            self.slots[slot].retain(|&(key, gen)| {
                let e = &mut entries[key as usize];
                if !e.in_use || e.gen != gen {
                    return false;
                }
                if e.deadline_tick <= target {
                    if let Some(w) = e.waker.take() {
                        wake.push(w);
                    }
                    e.in_use = false;
                    e.gen = e.gen.wrapping_add(1);
                    free.push(key);
                    *active -= 1;
                    return false;
                }
                true
            });
        }
        self.tick = target;
    }

    fn next_wait(&self, now: Instant) -> Option<Duration> {
        if self.active == 0 {
            return None;
        }
        for i in 1..=SLOTS {
            let t = self.tick + i;
            if !self.slots[(t % SLOTS) as usize].is_empty() {
                let at = self.origin + TICK * (t as u32);
                return Some(at.saturating_duration_since(now));
            }
        }
        Some(TICK * SLOTS as u32)
    }
}

thread_local! {
    static WHEEL: RefCell<Option<Wheel>> = const { RefCell::new(None) };
}

fn with<R>(f: impl FnOnce(&mut Wheel) -> R) -> R {
    WHEEL.with(|w| f(w.borrow_mut().get_or_insert_with(Wheel::new)))
}

/// Wakes every timer whose deadline has passed.
pub(crate) fn fire_expired() {
    let mut wake = Vec::new();
    with(|w| w.fire(Instant::now(), &mut wake));
    for w in wake {
        w.wake();
    }
}

/// How long the event loop may sleep before the next timer is due.
pub(crate) fn next_wait() -> Option<Duration> {
    with(|w| w.next_wait(Instant::now()))
}

pub(crate) fn reset() {
    WHEEL.with(|w| *w.borrow_mut() = None);
}

/// The current time; cheap enough to call per event (vDSO).
pub fn now_coarse() -> Instant {
    Instant::now()
}

/// A timer that completes at `deadline`. Its deadline can be moved with
/// [`Sleep::reset`] without touching the wheel: a timer that fires early simply
/// re-registers, which keeps "refresh on every byte" timeouts free.
pub struct Sleep {
    deadline: Instant,
    key: Option<(u32, u32)>,
}

pub fn sleep_until(deadline: Instant) -> Sleep {
    Sleep {
        deadline,
        key: None,
    }
}

impl Sleep {
    pub fn deadline(&self) -> Instant {
        self.deadline
    }

    pub fn reset(&mut self, deadline: Instant) {
        if deadline < self.deadline {
            // Must fire earlier than registered: re-register on next poll.
            if let Some(k) = self.key.take() {
                with(|w| w.remove(k));
            }
        }
        self.deadline = deadline;
    }
}

impl Future for Sleep {
    type Output = ();

    fn poll(mut self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<()> {
        if Instant::now() >= self.deadline {
            if let Some(k) = self.key.take() {
                with(|w| w.remove(k));
            }
            return Poll::Ready(());
        }
        let deadline = self.deadline;
        let key = self.key.take();
        let new_key = with(|w| {
            if let Some(k) = key {
                let e = &mut w.entries[k.0 as usize];
                if e.in_use && e.gen == k.1 {
                    e.waker = Some(cx.waker().clone());
                    return k;
                }
            }
            w.insert(deadline, cx.waker().clone())
        });
        self.key = Some(new_key);
        Poll::Pending
    }
}

impl Drop for Sleep {
    fn drop(&mut self) {
        if let Some(k) = self.key.take() {
            let _ = WHEEL.try_with(|w| {
                if let Some(w) = w.borrow_mut().as_mut() {
                    w.remove(k)
                }
            });
        }
    }
}

/// Runs `fut` until `deadline` (`None` = no limit); `None` if the deadline came
/// first, in which case `fut` is dropped (cancelling its in-flight operations).
pub async fn with_deadline<F: Future>(deadline: Option<Instant>, fut: F) -> Option<F::Output> {
    let mut fut = std::pin::pin!(fut);
    let mut sleep = deadline.map(sleep_until);
    std::future::poll_fn(|cx| {
        if let Poll::Ready(v) = fut.as_mut().poll(cx) {
            return Poll::Ready(Some(v));
        }
        if let Some(s) = sleep.as_mut() {
            if Pin::new(s).poll(cx).is_ready() {
                return Poll::Ready(None);
            }
        }
        Poll::Pending
    })
    .await
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::sync::Arc;
    use std::task::Wake;

    struct Flag(std::sync::atomic::AtomicBool);
    impl Wake for Flag {
        fn wake(self: Arc<Self>) {
            self.0.store(true, std::sync::atomic::Ordering::SeqCst);
        }
    }

    #[test]
    fn fires_only_after_deadline_and_far_timers_survive_a_revolution() {
        let mut w = Wheel::new();
        let origin = w.origin;
        let near = Arc::new(Flag(false.into()));
        let far = Arc::new(Flag(false.into()));
        w.insert(origin + Duration::from_millis(5), Waker::from(near.clone()));
        w.insert(
            origin + Duration::from_millis(5 + 1024 * 2),
            Waker::from(far.clone()),
        );
        let mut wake = Vec::new();
        w.fire(origin + Duration::from_millis(4), &mut wake);
        assert!(wake.is_empty());
        w.fire(origin + Duration::from_millis(7), &mut wake);
        assert_eq!(wake.len(), 1);
        wake.clear();
        w.fire(origin + Duration::from_millis(1500), &mut wake);
        assert!(
            wake.is_empty(),
            "far timer must not fire after one revolution"
        );
        assert_eq!(w.active, 1);
        w.fire(origin + Duration::from_millis(5 + 2048 + 2), &mut wake);
        assert_eq!(wake.len(), 1);
        assert_eq!(w.active, 0);
    }

    #[test]
    fn removed_timer_never_fires_and_its_entry_is_reused() {
        let mut w = Wheel::new();
        let origin = w.origin;
        let f = Arc::new(Flag(false.into()));
        let k = w.insert(origin + Duration::from_millis(3), Waker::from(f.clone()));
        w.remove(k);
        let mut wake = Vec::new();
        w.fire(origin + Duration::from_millis(10), &mut wake);
        assert!(wake.is_empty());
        let k2 = w.insert(origin + Duration::from_millis(20), Waker::from(f));
        assert_eq!(k2.0, k.0);
        assert_ne!(k2.1, k.1);
    }
}
