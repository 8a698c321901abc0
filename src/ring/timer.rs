//! One hashed timing wheel per shard (1 ms ticks, 1024 slots). A timer costs a
//! slab entry and a slot push — never an SQE. Timers further than one revolution
//! away stay in their slot and are skipped until their tick comes round. Each slot
//! remembers the earliest tick any of its timers is due, so the event loop sleeps
//! until a timer is really due: idle sessions with minute-long timeouts must not
//! wake the shard every time the wheel passes an occupied slot.

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
    /// Per slot, the earliest `deadline_tick` of its timers (`u64::MAX` when it
    /// has none). Removing a timer leaves it as it is: at worst one early wakeup,
    /// after which `fire` recomputes it from the timers the slot still holds.
    due: Vec<u64>,
    entries: Vec<Entry>,
    free: Vec<u32>,
    active: usize,
    /// Slots given a timer since the wheel was last swept empty (each once, as
    /// marked in `listed`): when no timer is active, only these may still hold
    /// removed timers or a stale `due`, so only these are cleared.
    touched: Vec<u32>,
    listed: Vec<bool>,
    /// The smallest `due` over all slots, when known (`None`: recompute).
    /// Every slot's `due` is ahead of `tick` and in its own slot, so the next
    /// tick a timer is due is simply this minimum: no scan of 1,024 slots per
    /// event-loop round (it was the biggest user-space cost under load).
    earliest: std::cell::Cell<Option<u64>>,
}

impl Wheel {
    fn new() -> Wheel {
        Wheel {
            origin: Instant::now(),
            tick: 0,
            slots: (0..SLOTS).map(|_| Vec::new()).collect(),
            due: vec![u64::MAX; SLOTS as usize],
            entries: Vec::new(),
            free: Vec::new(),
            active: 0,
            touched: Vec::new(),
            listed: vec![false; SLOTS as usize],
            earliest: std::cell::Cell::new(None),
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
        let slot = (dt % SLOTS) as usize;
        self.slots[slot].push((key, gen));
        self.due[slot] = self.due[slot].min(dt);
        if let Some(e) = self.earliest.get() {
            self.earliest.set(Some(e.min(dt)));
        }
        self.active += 1;
        if !self.listed[slot] {
            self.listed[slot] = true;
            self.touched.push(slot as u32);
        }
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
            self.earliest.set(None);
            for slot in self.touched.drain(..) {
                self.slots[slot as usize].clear();
                self.due[slot as usize] = u64::MAX;
                self.listed[slot as usize] = false;
            }
            self.tick = target;
            return;
        }
        let span = (target - self.tick).min(SLOTS);
        for t in (target + 1 - span)..=target {
            let slot = (t % SLOTS) as usize;
            let entries = &mut self.entries;
            let free = &mut self.free;
            let active = &mut self.active;
            let mut due = u64::MAX;
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
                due = due.min(e.deadline_tick);
                true
            });
            self.set_due(slot, due);
        }
        self.tick = target;
    }

    /// Recomputes one slot's `due` from the timers it still holds (dropping
    /// removed ones), keeping `earliest` right.
    fn recompute(&mut self, slot: usize) {
        let entries = &self.entries;
        let mut due = u64::MAX;
        self.slots[slot].retain(|&(key, gen)| {
            let e = &entries[key as usize];
            if !e.in_use || e.gen != gen {
                return false;
            }
            due = due.min(e.deadline_tick);
            true
        });
        self.set_due(slot, due);
    }

    /// Sets a slot's earliest due tick, keeping the cached minimum right
    /// (unknown again when the slot that held it moved later).
    fn set_due(&mut self, slot: usize, due: u64) {
        let old = self.due[slot];
        if old != due {
            match self.earliest.get() {
                Some(e) if e == old => self.earliest.set(None),
                Some(e) => self.earliest.set(Some(e.min(due))),
                None => {}
            }
        }
        self.due[slot] = due;
    }

    fn next_wait(&mut self, now: Instant) -> Option<Duration> {
        if self.active == 0 {
            return None;
        }
        // Every slot's `due` is after `tick`, in its own slot: the next tick a
        // timer is due is the smallest of them (cached between changes). A
        // removed timer leaves its slot's `due` behind (a connect timeout
        // once connected, say): before sleeping on it, the slot it names is
        // checked, so an idle shard does not wake for a timer that is gone.
        // A few stale slots in a row at most; beyond, one early wakeup.
        let mut earliest = u64::MAX;
        for _ in 0..8 {
            earliest = match self.earliest.get() {
                Some(e) => e,
                None => {
                    let e = self.due.iter().copied().min().unwrap_or(u64::MAX);
                    self.earliest.set(Some(e));
                    e
                }
            };
            if earliest == u64::MAX {
                break;
            }
            self.recompute((earliest % SLOTS) as usize);
            if self.earliest.get() == Some(earliest) {
                break;
            }
        }
        if self.active == 0 {
            return None;
        }
        if earliest == u64::MAX {
            // Cannot happen while a timer is active; sleep a revolution regardless.
            return Some(TICK * SLOTS as u32);
        }
        let at = self.origin + TICK.saturating_mul(earliest.min(u32::MAX as u64) as u32);
        Some(at.saturating_duration_since(now))
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
    let now = Instant::now();
    NOW.with(|n| n.set(Some(now)));
    with(|w| w.fire(now, &mut wake));
    for w in wake {
        w.wake();
    }
}

/// How long the event loop may sleep before the next timer is due.
pub(crate) fn next_wait() -> Option<Duration> {
    with(|w| w.next_wait(Instant::now()))
}

pub(crate) fn reset() {
    NOW.with(|n| n.set(None));
    WHEEL.with(|w| *w.borrow_mut() = None);
}

thread_local! {
    /// The time the executor read at the start of this round of tasks.
    static NOW: std::cell::Cell<Option<Instant>> = const { std::cell::Cell::new(None) };
}

/// Unix seconds at the start of the executor's current round (derived from
/// [`now_coarse`], no extra clock read).
pub fn unix_now_coarse() -> u64 {
    thread_local! {
        static ORIGIN: (Instant, Duration) = (
            Instant::now(),
            std::time::SystemTime::now()
                .duration_since(std::time::UNIX_EPOCH)
                .unwrap_or_default(),
        );
    }
    ORIGIN.with(|(i, epoch)| (*epoch + now_coarse().saturating_duration_since(*i)).as_secs())
}

/// The time at the start of the executor's current round (read once per round,
/// when timers are fired): what sessions stamp activity and compare deadlines
/// with, without a clock read per event. At most one round behind the clock.
pub fn now_coarse() -> Instant {
    NOW.with(|n| n.get()).unwrap_or_else(Instant::now)
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
        if now_coarse() >= self.deadline {
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

    /// Minute-long timeouts on idle sessions: the loop sleeps until the first one
    /// is due, not until the wheel reaches an occupied slot.
    #[test]
    fn waits_for_the_earliest_deadline_not_the_next_occupied_slot() {
        let mut w = Wheel::new();
        let origin = w.origin;
        let f = Arc::new(Flag(false.into()));
        for ms in [60_000u64, 60_500, 61_000, 90_000] {
            w.insert(origin + Duration::from_millis(ms), Waker::from(f.clone()));
        }
        let wait = w.next_wait(origin).unwrap();
        assert_eq!(wait, Duration::from_millis(60_000));
        // Asleep until then, the first timer fires on time and only it.
        let mut wake = Vec::new();
        w.fire(origin + Duration::from_millis(59_999), &mut wake);
        assert!(wake.is_empty());
        w.fire(origin + Duration::from_millis(60_000), &mut wake);
        assert_eq!(wake.len(), 1);
        let wait = w.next_wait(origin + Duration::from_millis(60_000)).unwrap();
        assert_eq!(wait, Duration::from_millis(500));
    }

    /// A removed timer (a connect timeout once connected) does not wake the
    /// loop: the sleep lasts until the next live timer, even when several
    /// removed ones were due earlier.
    #[test]
    fn removed_timers_cost_no_early_wakeup() {
        let mut w = Wheel::new();
        let origin = w.origin;
        let f = Arc::new(Flag(false.into()));
        let gone: Vec<_> = [10u64, 20, 2_000, 2_001]
            .iter()
            .map(|ms| w.insert(origin + Duration::from_millis(*ms), Waker::from(f.clone())))
            .collect();
        // Two timers in one slot: only the removed one goes.
        w.insert(
            origin + Duration::from_millis(5_000),
            Waker::from(f.clone()),
        );
        w.insert(
            origin + Duration::from_millis(5_000 + 1_024),
            Waker::from(f),
        );
        for k in gone {
            w.remove(k);
        }
        assert_eq!(w.next_wait(origin), Some(Duration::from_millis(5_000)));
        let mut wake = Vec::new();
        w.fire(origin + Duration::from_millis(5_000), &mut wake);
        assert_eq!(wake.len(), 1);
        assert_eq!(
            w.next_wait(origin + Duration::from_millis(5_000)),
            Some(Duration::from_millis(1_024))
        );
    }
}
