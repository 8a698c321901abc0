//! The reactor: one io_uring ring per shard and the slab of operation slots keyed
//! by `user_data`. A slot owns whatever the kernel may touch until the final CQE
//! arrives; only then is it freed, even if the future that wanted it is gone.
//!
//! Safety by construction:
//! - `user_data` carries the slot index and the slot's generation, bumped on every
//!   reuse, so a completion can never be delivered to a later occupant of its slot.
//! - [`Reactor::submit`] is `unsafe`: its caller promises the entry references no
//!   memory. An entry that does (a buffer, an address) goes through
//!   [`Reactor::submit_owning`], which moves that memory into the slot, where it
//!   stays until the final completion — whoever drops the op's future meanwhile.
//! - An op future dropped while the reactor is borrowed queues its orphaning,
//!   done at the next reap: nothing leaks silently.
//! - A submission queue that cannot be flushed for long is an error (a panic that
//!   stops the shard and, through it, the process), not an endless loop.

use std::cell::RefCell;
use std::collections::VecDeque;
use std::fmt;
use std::io;
use std::task::Waker;
use std::time::Duration;

use io_uring::{cqueue, opcode, squeue, types, IoUring};

use super::bufring::{BufRing, Chunk};

/// `IORING_ENTER_GETEVENTS` (not re-exported by the io-uring crate): run deferred
/// completion work even when not waiting.
const ENTER_GETEVENTS: u32 = 1;

/// `user_data` of `AsyncCancel` requests, whose completions nobody awaits.
const CANCEL_UD: u64 = u64::MAX;

/// Consecutive failed flushes of a full submission queue after which the ring
/// is declared broken.
const MAX_FLUSH_FAILURES: u32 = 10_000;

/// The `user_data` of an operation: slot index (low 32 bits) and the slot's
/// generation (high 32 bits). Never equal to [`CANCEL_UD`] (generations wrap
/// before reaching `u32::MAX`).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) struct OpKey {
    pub(crate) index: u32,
    pub(crate) gen: u32,
}

impl OpKey {
    pub(crate) fn user_data(self) -> u64 {
        (self.gen as u64) << 32 | self.index as u64
    }

    pub(crate) fn from_user_data(ud: u64) -> OpKey {
        OpKey {
            index: ud as u32,
            gen: (ud >> 32) as u32,
        }
    }
}

#[derive(Debug, Clone, Copy)]
pub struct RingConfig {
    /// Submission queue entries (the completion queue gets twice as many).
    pub entries: u32,
}

impl Default for RingConfig {
    fn default() -> Self {
        RingConfig { entries: 4096 }
    }
}

/// Why a ring could not be set up.
#[derive(Debug)]
pub enum RingError {
    /// `kernel.io_uring_disabled`, a seccomp filter, or an old kernel.
    Unavailable(io::Error),
}

impl fmt::Display for RingError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            RingError::Unavailable(e) => write!(
                f,
                "io_uring is unavailable ({e}); check kernel.io_uring_disabled, seccomp \
                 filters (containers) and that the kernel is 5.19 or newer"
            ),
        }
    }
}

impl std::error::Error for RingError {}

/// One operation's slot. `results` keeps completions not yet consumed (several for
/// multishot operations); `finished` is set by the final CQE (no `MORE` flag).
#[derive(Default)]
pub(crate) struct Slot {
    in_use: bool,
    /// Bumped on every allocation; part of the op's `user_data`.
    gen: u32,
    /// Memory the kernel may read or write for this op, kept until its final CQE.
    owned: Option<Box<dyn std::any::Any>>,
    /// A provided buffer a send op reads from (no allocation: the buffer is
    /// the ring's), given back to the ring when the slot is released.
    pub(crate) chunk: Option<Chunk>,
    pub(crate) results: VecDeque<(i32, u32)>,
    pub(crate) finished: bool,
    orphan: bool,
    /// Results are fds (accept): an orphaned slot must close them, not drop them.
    pub(crate) yields_fds: bool,
    pub(crate) waker: Option<Waker>,
}

/// What one ring has done, for `show activity` and the metrics: executor
/// rounds, rounds that slept in `io_uring_enter`, SQEs queued, CQEs reaped,
/// and how long the last sleep was allowed to last (`None`: until I/O, no
/// timer due).
#[derive(Debug, Default, Clone, Copy, PartialEq, Eq)]
pub struct RingStats {
    pub loops: u64,
    pub waits: u64,
    pub sqes: u64,
    pub cqes: u64,
    pub last_wait: Option<std::time::Duration>,
}

pub(crate) struct Reactor {
    pub(crate) stats: RingStats,
    ring: IoUring,
    slots: Vec<Slot>,
    free: Vec<usize>,
    /// The shard's provided-buffer ring, once set up (`setup_bufring`).
    pub(crate) bufring: Option<BufRing>,
}

/// The buffer group id of the shard's provided-buffer ring.
pub(crate) const BUF_GROUP: u16 = 1;

thread_local! {
    pub(crate) static REACTOR: RefCell<Option<Reactor>> = const { RefCell::new(None) };
    /// Ops whose futures were dropped while the reactor was borrowed; orphaned
    /// at the next reap.
    static PENDING_ORPHANS: RefCell<Vec<OpKey>> = const { RefCell::new(Vec::new()) };
}

/// Orphans `key`'s op now, or at the next reap when the reactor is busy (an op
/// future dropped from inside a reactor call).
pub(crate) fn orphan_later_if_busy(key: OpKey) {
    let done = REACTOR
        .try_with(|r| match r.try_borrow_mut() {
            Ok(mut r) => match r.as_mut() {
                Some(r) => {
                    r.orphan(key);
                    true
                }
                // The runtime is gone: its ring, and the ops with it, too.
                None => true,
            },
            Err(_) => false,
        })
        .unwrap_or(true);
    if !done {
        let _ = PENDING_ORPHANS.try_with(|p| p.borrow_mut().push(key));
    }
}

/// Runs `f` on this thread's reactor. Panics if called outside `block_on`, which
/// is a programming error, not an input error.
pub(crate) fn with<R>(f: impl FnOnce(&mut Reactor) -> R) -> R {
    REACTOR.with(|r| {
        f(r.borrow_mut()
            .as_mut()
            .expect("ring runtime not running on this thread"))
    })
}

impl Reactor {
    pub(crate) fn new(cfg: RingConfig) -> Result<Reactor, RingError> {
        // Prefer the flags that let the kernel defer completion work to our own
        // io_uring_enter calls; fall back on kernels that refuse them.
        let ring = IoUring::builder()
            .setup_single_issuer()
            .setup_defer_taskrun()
            .setup_coop_taskrun()
            .setup_cqsize(cfg.entries * 2)
            .build(cfg.entries)
            .or_else(|_| IoUring::builder().setup_coop_taskrun().build(cfg.entries))
            .or_else(|_| IoUring::new(cfg.entries))
            .map_err(RingError::Unavailable)?;
        Ok(Reactor {
            stats: RingStats::default(),
            ring,
            slots: Vec::new(),
            free: Vec::new(),
            bufring: None,
        })
    }

    /// Registers a provided-buffer ring of `count` buffers of `size` bytes.
    pub(crate) fn setup_bufring(&mut self, count: u16, size: usize) -> io::Result<()> {
        if self.bufring.is_none() {
            self.bufring = Some(BufRing::new(&self.ring, count, size, BUF_GROUP)?);
        }
        Ok(())
    }

    /// Before the ring goes away: waits (at most `within`) for every op still
    /// in flight to finish, so no kernel write can land in memory we free. If
    /// some never finish, their memory and the buffer ring are leaked instead.
    pub(crate) fn drain(&mut self, within: Duration) {
        let end = std::time::Instant::now() + within;
        while self.ops_in_flight() > 0 && std::time::Instant::now() < end {
            let _ = self.submit_and_wait(Some(Duration::from_millis(10)));
            self.reap();
        }
        let stuck = self.ops_in_flight() > 0;
        if stuck {
            for s in self.slots.iter_mut().filter(|s| s.in_use) {
                if let Some(m) = s.owned.take() {
                    std::mem::forget(m);
                }
            }
        }
        if let Some(b) = self.bufring.take() {
            b.release(&self.ring, stuck);
        }
    }

    fn alloc(&mut self) -> OpKey {
        let index = match self.free.pop() {
            Some(k) => k,
            None => {
                self.slots.push(Slot::default());
                self.slots.len() - 1
            }
        };
        let s = &mut self.slots[index];
        s.in_use = true;
        // Wraps before u32::MAX so no user_data ever equals CANCEL_UD.
        s.gen = if s.gen >= u32::MAX - 1 { 0 } else { s.gen + 1 };
        s.finished = false;
        s.orphan = false;
        s.yields_fds = false;
        s.owned = None;
        s.chunk = None;
        s.results.clear();
        s.waker = None;
        OpKey {
            index: index as u32,
            gen: s.gen,
        }
    }

    /// The slot of a live op. Panics on a stale key, which would be a bug in
    /// this module (an op future never outlives its slot).
    pub(crate) fn slot(&mut self, key: OpKey) -> &mut Slot {
        let s = &mut self.slots[key.index as usize];
        assert!(s.in_use && s.gen == key.gen, "stale op key {key:?}");
        s
    }

    pub(crate) fn release(&mut self, key: OpKey) {
        let s = &mut self.slots[key.index as usize];
        if !s.in_use || s.gen != key.gen {
            return;
        }
        s.in_use = false;
        s.waker = None;
        s.owned = None;
        s.chunk = None;
        self.free.push(key.index as usize);
    }

    /// Queues `entry` with a fresh slot; returns its key.
    ///
    /// # Safety
    /// `entry` must reference no memory (poll, accept without an address,
    /// cancel): nothing but its fd, which the op's owner keeps open until the op
    /// is finished or orphaned. An entry with buffers must use
    /// [`Reactor::submit_owning`].
    pub(crate) unsafe fn submit(&mut self, entry: squeue::Entry) -> OpKey {
        let key = self.alloc();
        self.push(entry.user_data(key.user_data()));
        key
    }

    /// Queues the entry `build` makes from `owned` — memory it points into (a
    /// buffer, an address) — and keeps `owned` in the op's slot until the final
    /// completion, so the kernel never touches freed memory, whenever the op's
    /// future is dropped. `build` receives the boxed memory at its final address.
    pub(crate) fn submit_owning<T: 'static>(
        &mut self,
        owned: Box<T>,
        build: impl FnOnce(&mut T) -> squeue::Entry,
    ) -> OpKey {
        let key = self.alloc();
        let mut owned = owned;
        let entry = build(&mut owned);
        // The box's heap allocation does not move when the box itself does.
        self.slots[key.index as usize].owned = Some(owned);
        self.push(entry.user_data(key.user_data()));
        key
    }

    /// Slots held by ops not yet finished (or finished and not yet released).
    pub(crate) fn ops_in_flight(&self) -> usize {
        self.slots.iter().filter(|s| s.in_use).count()
    }

    /// Queues a `send` of bytes `[offset..]` of a received chunk; the chunk
    /// stays in the op's slot (so its buffer cannot be handed back to the
    /// kernel while being read) until the final completion.
    pub(crate) fn submit_send_chunk(&mut self, fd: i32, chunk: Chunk, offset: usize) -> OpKey {
        let base = self
            .bufring
            .as_ref()
            .expect("send_chunk needs the buffer ring")
            .buf_ptr(chunk.bid);
        let len = chunk.len.saturating_sub(offset) as u32;
        // The pointer is inside buffer `bid` of the ring's boxed slice, which
        // outlives every op (see `drain`); the chunk held below keeps that
        // buffer from being reused before the send completes.
        let entry = opcode::Send::new(types::Fd(fd), base.wrapping_add(offset), len)
            .flags(libc::MSG_NOSIGNAL)
            .build();
        let key = self.alloc();
        self.slots[key.index as usize].chunk = Some(chunk);
        self.push(entry.user_data(key.user_data()));
        key
    }

    /// The memory an owning op holds, once its results are in.
    pub(crate) fn owned_mut<T: 'static>(&mut self, key: OpKey) -> Option<&mut T> {
        self.slot(key).owned.as_mut()?.downcast_mut::<T>()
    }

    fn push(&mut self, entry: squeue::Entry) {
        self.stats.sqes += 1;
        let mut failures = 0u32;
        loop {
            // SAFETY: every entry comes from `submit` (no memory, by its
            // contract) or `submit_owning` (memory held by the slot until the
            // final completion), so the kernel cannot touch freed memory.
            if unsafe { self.ring.submission().push(&entry) }.is_ok() {
                return;
            }
            // Queue full: hand what we have to the kernel, reap, retry.
            match self.ring.submit() {
                Ok(_) => failures = 0,
                Err(e) if e.raw_os_error() == Some(libc::EBUSY) => {}
                Err(e) => {
                    failures += 1;
                    assert!(
                        failures < MAX_FLUSH_FAILURES,
                        "io_uring submission keeps failing: {e}"
                    );
                }
            }
            self.reap();
        }
    }

    /// Called when the future owning `key` is dropped.
    pub(crate) fn orphan(&mut self, key: OpKey) {
        let Some(s) = self.slots.get_mut(key.index as usize) else {
            return;
        };
        if !s.in_use || s.gen != key.gen {
            return;
        }
        // Results nobody will take: accepted fds among them are closed (those
        // clients see a close), provided buffers given back, whether or not the
        // op has finished.
        let yields_fds = s.yields_fds;
        for (res, flags) in s.results.drain(..) {
            if yields_fds {
                close_fd(res);
            }
            give_back(flags);
        }
        if s.finished {
            self.release(key);
        } else {
            s.orphan = true;
            s.waker = None;
            self.push(
                opcode::AsyncCancel::new(key.user_data())
                    .build()
                    .user_data(CANCEL_UD),
            );
        }
    }

    /// Asks the kernel to cancel the operation `key`; its owner keeps consuming
    /// results until the final completion.
    pub(crate) fn cancel(&mut self, key: OpKey) {
        if !self.slot(key).finished {
            self.push(
                opcode::AsyncCancel::new(key.user_data())
                    .build()
                    .user_data(CANCEL_UD),
            );
        }
    }

    /// Submits queued entries and runs pending completion work without waiting.
    pub(crate) fn submit_nowait(&mut self) -> io::Result<()> {
        let len = self.ring.submission().len() as u32;
        // SAFETY: plain io_uring_enter with no argument pointer.
        let r = unsafe {
            self.ring
                .submitter()
                .enter::<libc::sigset_t>(len, 0, ENTER_GETEVENTS, None)
        };
        ignore_transient(r)
    }

    /// Submits and waits for at least one completion or until `timeout`.
    pub(crate) fn submit_and_wait(&mut self, timeout: Option<Duration>) -> io::Result<()> {
        let r = match timeout {
            Some(t) => {
                let ts = types::Timespec::new()
                    .sec(t.as_secs())
                    .nsec(t.subsec_nanos());
                let args = types::SubmitArgs::new().timespec(&ts);
                self.ring.submitter().submit_with_args(1, &args)
            }
            None => self.ring.submit_and_wait(1),
        };
        ignore_transient(r)
    }

    /// Moves every available completion into its slot and wakes its owner.
    pub(crate) fn reap(&mut self) {
        let pending = PENDING_ORPHANS
            .try_with(|p| std::mem::take(&mut *p.borrow_mut()))
            .unwrap_or_default();
        for key in pending {
            self.orphan(key);
        }
        if let Some(b) = self.bufring.as_mut() {
            b.reclaim();
        }
        let slots = &mut self.slots;
        let free = &mut self.free;
        let stats = &mut self.stats;
        for cqe in self.ring.completion() {
            stats.cqes += 1;
            let ud = cqe.user_data();
            if ud == CANCEL_UD {
                continue;
            }
            let key = OpKey::from_user_data(ud);
            let Some(s) = slots.get_mut(key.index as usize) else {
                continue;
            };
            // A completion for an earlier occupant of the slot cannot happen
            // (slots are freed only by their final completion), but if it did it
            // must not reach the new op.
            if !s.in_use || s.gen != key.gen {
                continue;
            }
            let more = cqueue::more(cqe.flags());
            if !more {
                s.finished = true;
            }
            if s.orphan {
                // A multishot accept may still deliver fds after its cancel: close
                // them so they do not leak (those clients see a close).
                if s.yields_fds {
                    close_fd(cqe.result());
                }
                give_back(cqe.flags());
                if s.finished {
                    s.in_use = false;
                    s.owned = None;
                    s.chunk = None;
                    free.push(key.index as usize);
                }
                continue;
            }
            s.results.push_back((cqe.result(), cqe.flags()));
            // Waking only touches the run queue, never the reactor, so it is
            // safe while the reactor is borrowed. The waker stays registered:
            // the same task polls this op again and need not clone it anew.
            if let Some(w) = s.waker.as_ref() {
                w.wake_by_ref();
            }
        }
    }
}

/// Registers the polling task's waker in an op's slot, cloning it only when a
/// different task polls (a session's task polls its ops many times).
pub(crate) fn set_waker(slot: &mut Option<Waker>, cx: &std::task::Context<'_>) {
    match slot {
        Some(w) if w.will_wake(cx.waker()) => {}
        _ => *slot = Some(cx.waker().clone()),
    }
}

/// A completion that carried a provided buffer nobody will read: back to the ring.
fn give_back(flags: u32) {
    if let Some(bid) = cqueue::buffer_select(flags) {
        drop(Chunk { bid, len: 0 });
    }
}

fn close_fd(res: i32) {
    if res >= 0 {
        // SAFETY: a non-negative accept result is a fresh fd nobody else owns.
        unsafe { libc::close(res) };
    }
}

fn ignore_transient(r: io::Result<usize>) -> io::Result<()> {
    match r {
        Ok(_) => Ok(()),
        Err(e)
            if matches!(
                e.raw_os_error(),
                Some(libc::ETIME) | Some(libc::EINTR) | Some(libc::EBUSY)
            ) =>
        {
            Ok(())
        }
        Err(e) => Err(e),
    }
}
