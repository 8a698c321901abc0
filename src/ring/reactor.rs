//! The reactor: one io_uring ring per shard and the slab of operation slots keyed
//! by `user_data`. A slot owns whatever the kernel may touch until the final CQE
//! arrives; only then is it freed, even if the future that wanted it is gone.

use std::cell::RefCell;
use std::collections::VecDeque;
use std::fmt;
use std::io;
use std::task::Waker;
use std::time::Duration;

use io_uring::{cqueue, opcode, squeue, types, IoUring};

/// `IORING_ENTER_GETEVENTS` (not re-exported by the io-uring crate): run deferred
/// completion work even when not waiting.
const ENTER_GETEVENTS: u32 = 1;

/// `user_data` of `AsyncCancel` requests, whose completions nobody awaits.
const CANCEL_UD: u64 = u64::MAX;

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
    pub(crate) results: VecDeque<(i32, u32)>,
    pub(crate) finished: bool,
    orphan: bool,
    /// Results are fds (accept): an orphaned slot must close them, not drop them.
    pub(crate) yields_fds: bool,
    pub(crate) waker: Option<Waker>,
}

pub(crate) struct Reactor {
    ring: IoUring,
    slots: Vec<Slot>,
    free: Vec<usize>,
}

thread_local! {
    pub(crate) static REACTOR: RefCell<Option<Reactor>> = const { RefCell::new(None) };
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
            ring,
            slots: Vec::new(),
            free: Vec::new(),
        })
    }

    fn alloc(&mut self) -> usize {
        let key = match self.free.pop() {
            Some(k) => k,
            None => {
                self.slots.push(Slot::default());
                self.slots.len() - 1
            }
        };
        let s = &mut self.slots[key];
        s.in_use = true;
        s.finished = false;
        s.orphan = false;
        s.yields_fds = false;
        s.results.clear();
        s.waker = None;
        key
    }

    pub(crate) fn slot(&mut self, key: usize) -> &mut Slot {
        &mut self.slots[key]
    }

    pub(crate) fn release(&mut self, key: usize) {
        let s = &mut self.slots[key];
        s.in_use = false;
        s.waker = None;
        self.free.push(key);
    }

    /// Queues `entry` with a fresh slot; returns the slot key.
    ///
    /// The entries we build reference no user memory (poll, accept without
    /// address, cancel), so nothing needs to be kept alive beyond the fd, which
    /// the owner keeps open until the slot is finished or orphaned-and-cancelled.
    pub(crate) fn submit(&mut self, entry: squeue::Entry) -> usize {
        let key = self.alloc();
        self.push(entry.user_data(key as u64));
        key
    }

    fn push(&mut self, entry: squeue::Entry) {
        loop {
            // SAFETY: our entries reference no user buffers (see `submit`), so the
            // kernel cannot touch freed memory whatever happens to the caller.
            if unsafe { self.ring.submission().push(&entry) }.is_ok() {
                return;
            }
            // Queue full: hand what we have to the kernel and retry.
            if let Err(e) = self.ring.submit() {
                if e.raw_os_error() != Some(libc::EBUSY) {
                    // Nothing sensible to do but retry after reaping.
                }
                self.reap();
            }
        }
    }

    /// Called when the future owning `key` is dropped.
    pub(crate) fn orphan(&mut self, key: usize) {
        let s = &mut self.slots[key];
        if s.finished {
            self.release(key);
        } else {
            s.orphan = true;
            s.waker = None;
            let yields_fds = s.yields_fds;
            for (res, _) in s.results.drain(..) {
                if yields_fds {
                    close_fd(res);
                }
            }
            self.push(
                opcode::AsyncCancel::new(key as u64)
                    .build()
                    .user_data(CANCEL_UD),
            );
        }
    }

    /// Asks the kernel to cancel the operation in slot `key`; its owner keeps
    /// consuming results until the final completion.
    pub(crate) fn cancel(&mut self, key: usize) {
        if !self.slots[key].finished {
            self.push(
                opcode::AsyncCancel::new(key as u64)
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
        let slots = &mut self.slots;
        let free = &mut self.free;
        for cqe in self.ring.completion() {
            let ud = cqe.user_data();
            if ud == CANCEL_UD {
                continue;
            }
            let key = ud as usize;
            let Some(s) = slots.get_mut(key) else {
                continue;
            };
            if !s.in_use {
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
                if s.finished {
                    s.in_use = false;
                    free.push(key);
                }
                continue;
            }
            s.results.push_back((cqe.result(), cqe.flags()));
            // Waking only touches the run queue, never the reactor, so it is
            // safe while the reactor is borrowed.
            if let Some(w) = s.waker.take() {
                w.wake();
            }
        }
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
