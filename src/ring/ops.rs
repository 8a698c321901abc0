//! Futures over io_uring operations: one-shot and multishot poll, multishot
//! accept. Each holds a reactor slot key; dropping it before the final completion
//! orphans the slot and cancels the operation in the kernel.

use std::future::Future;
use std::io;
use std::os::fd::{FromRawFd, OwnedFd, RawFd};
use std::pin::Pin;
use std::task::{Context, Poll};

use io_uring::{opcode, types};

use super::bufring::Chunk;
use super::reactor::{self, OpKey};

fn result_to_io(res: i32) -> io::Result<u32> {
    if res < 0 {
        Err(io::Error::from_raw_os_error(-res))
    } else {
        Ok(res as u32)
    }
}

/// An owned op key; orphans the op on drop unless already released (later,
/// at the next reap, if the reactor is busy right now).
struct SlotKey(Option<OpKey>);

impl Drop for SlotKey {
    fn drop(&mut self) {
        if let Some(k) = self.0.take() {
            reactor::orphan_later_if_busy(k);
        }
    }
}

/// Waits once for `mask` events on `fd` (`IORING_OP_POLL_ADD`); returns the events.
pub fn poll_once(fd: RawFd, mask: u32) -> PollOnce {
    PollOnce {
        fd,
        mask,
        key: SlotKey(None),
    }
}

pub struct PollOnce {
    fd: RawFd,
    mask: u32,
    key: SlotKey,
}

impl Future for PollOnce {
    type Output = io::Result<u32>;

    fn poll(mut self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<io::Result<u32>> {
        let this = &mut *self;
        match this.key.0 {
            None => {
                let entry = opcode::PollAdd::new(types::Fd(this.fd), this.mask).build();
                let k = reactor::with(|r| {
                    // SAFETY: a poll entry references no memory.
                    let k = unsafe { r.submit(entry) };
                    reactor::set_waker(&mut r.slot(k).waker, cx);
                    k
                });
                this.key.0 = Some(k);
                Poll::Pending
            }
            Some(k) => reactor::with(|r| {
                let s = r.slot(k);
                match s.results.pop_front() {
                    Some((res, _)) => {
                        r.release(k);
                        this.key.0 = None;
                        Poll::Ready(result_to_io(res))
                    }
                    None => {
                        reactor::set_waker(&mut s.waker, cx);
                        Poll::Pending
                    }
                }
            }),
        }
    }
}

/// A multishot poll on one fd: armed once, it reports every readiness edge. Events
/// are OR-ed together until taken. If the kernel ends the multishot (it may, e.g.
/// under memory pressure) it is re-armed transparently.
pub struct PollMulti {
    fd: RawFd,
    mask: u32,
    key: SlotKey,
}

impl PollMulti {
    pub fn new(fd: RawFd, mask: u32) -> PollMulti {
        PollMulti {
            fd,
            mask,
            key: SlotKey(None),
        }
    }

    fn arm(&mut self) -> OpKey {
        let entry = opcode::PollAdd::new(types::Fd(self.fd), self.mask)
            .multi(true)
            .build();
        // SAFETY: a poll entry references no memory.
        let k = reactor::with(|r| unsafe { r.submit(entry) });
        self.key.0 = Some(k);
        k
    }

    /// Returns the events seen since the last call, or registers the waker.
    pub fn poll_events(&mut self, cx: &mut Context<'_>) -> Poll<io::Result<u32>> {
        let k = match self.key.0 {
            Some(k) => k,
            None => self.arm(),
        };
        let (events, ended, err) = reactor::with(|r| {
            let s = r.slot(k);
            let mut ev = 0u32;
            let mut err = None;
            while let Some((res, _)) = s.results.pop_front() {
                if res < 0 {
                    err = Some(res);
                } else {
                    ev |= res as u32;
                }
            }
            let ended = s.finished;
            if !ended && ev == 0 && err.is_none() {
                reactor::set_waker(&mut s.waker, cx);
            }
            if ended {
                r.release(k);
            }
            (ev, ended, err)
        });
        if ended {
            self.key.0 = None;
        }
        if let Some(e) = err {
            if -e != libc::ECANCELED {
                return Poll::Ready(Err(io::Error::from_raw_os_error(-e)));
            }
        }
        if events != 0 {
            return Poll::Ready(Ok(events));
        }
        if ended {
            // Re-arm and register interest on the new slot.
            let k = self.arm();
            reactor::with(|r| reactor::set_waker(&mut r.slot(k).waker, cx));
        }
        Poll::Pending
    }

    /// Awaits the next batch of events.
    pub async fn next(&mut self) -> io::Result<u32> {
        std::future::poll_fn(|cx| self.poll_events(cx)).await
    }
}

/// Multishot accept on a listening socket: every connection the kernel accepts
/// arrives as a non-blocking, close-on-exec fd.
pub fn accept_multi(listener: RawFd) -> AcceptMulti {
    AcceptMulti {
        fd: listener,
        key: SlotKey(None),
        cancelled: false,
    }
}

pub struct AcceptMulti {
    fd: RawFd,
    key: SlotKey,
    cancelled: bool,
}

impl AcceptMulti {
    fn arm(&mut self) -> OpKey {
        let entry = opcode::AcceptMulti::new(types::Fd(self.fd))
            .flags(libc::SOCK_NONBLOCK | libc::SOCK_CLOEXEC)
            .build();
        let k = reactor::with(|r| {
            // SAFETY: an accept without an address buffer references no memory.
            let k = unsafe { r.submit(entry) };
            r.slot(k).yields_fds = true;
            k
        });
        self.key.0 = Some(k);
        k
    }

    /// The next accepted fd; `None` once cancelled and drained. Transient accept
    /// errors (`ECONNABORTED`, `EMFILE`, …) come back as `Some(Err)`; the accept
    /// stays armed or is re-armed.
    pub fn poll_accept(&mut self, cx: &mut Context<'_>) -> Poll<Option<io::Result<OwnedFd>>> {
        let k = match self.key.0 {
            Some(k) => k,
            None if self.cancelled => return Poll::Ready(None),
            None => self.arm(),
        };
        let r = reactor::with(|r| {
            let s = r.slot(k);
            if let Some((res, _)) = s.results.pop_front() {
                return Some(res);
            }
            if s.finished {
                r.release(k);
                return None;
            }
            reactor::set_waker(&mut s.waker, cx);
            Some(i32::MIN)
        });
        match r {
            Some(i32::MIN) => Poll::Pending,
            // SAFETY: a non-negative accept completion is a new fd that only
            // this completion refers to.
            Some(res) if res >= 0 => Poll::Ready(Some(Ok(unsafe { OwnedFd::from_raw_fd(res) }))),
            Some(res) if -res == libc::ECANCELED => {
                self.cancelled = true;
                cx.waker().wake_by_ref();
                Poll::Pending
            }
            Some(res) => Poll::Ready(Some(Err(io::Error::from_raw_os_error(-res)))),
            None => {
                // Multishot ended: either cancelled (stream done) or the kernel
                // stopped it (re-arm on the next poll).
                self.key.0 = None;
                if self.cancelled {
                    Poll::Ready(None)
                } else {
                    cx.waker().wake_by_ref();
                    Poll::Pending
                }
            }
        }
    }

    pub fn is_cancelled(&self) -> bool {
        self.cancelled
    }

    pub async fn next(&mut self) -> Option<io::Result<OwnedFd>> {
        std::future::poll_fn(|cx| self.poll_accept(cx)).await
    }

    /// Asks the kernel to stop accepting; keep calling `next` until `None` to
    /// collect fds accepted before the cancel took effect.
    pub fn cancel(&mut self) {
        if self.cancelled {
            return;
        }
        self.cancelled = true;
        if let Some(k) = self.key.0 {
            reactor::with(|r| r.cancel(k));
        }
    }
}

/// One `recv` into a buffer the op owns (`IORING_OP_RECV`): the buffer moves into
/// the reactor slot when submitted and comes back with the result, so dropping
/// the future early can never leave the kernel writing into freed memory.
pub fn recv_owned(fd: RawFd, buf: Vec<u8>) -> RecvOwned {
    RecvOwned {
        fd,
        buf: Some(buf),
        key: SlotKey(None),
    }
}

pub struct RecvOwned {
    fd: RawFd,
    buf: Option<Vec<u8>>,
    key: SlotKey,
}

impl Future for RecvOwned {
    /// The bytes received (`Ok(0)` at EOF) and the buffer back.
    type Output = (io::Result<usize>, Vec<u8>);

    fn poll(mut self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<Self::Output> {
        let this = &mut *self;
        let k = match this.key.0 {
            Some(k) => k,
            None => {
                let buf = this.buf.take().expect("polled after completion");
                let fd = this.fd;
                let k = reactor::with(|r| {
                    let k = r.submit_owning(Box::new(buf), |b| {
                        opcode::Recv::new(types::Fd(fd), b.as_mut_ptr(), b.len() as u32).build()
                    });
                    reactor::set_waker(&mut r.slot(k).waker, cx);
                    k
                });
                this.key.0 = Some(k);
                return Poll::Pending;
            }
        };
        reactor::with(|r| {
            let res = r.slot(k).results.pop_front();
            match res {
                Some((res, _)) => {
                    let buf = r
                        .owned_mut::<Vec<u8>>(k)
                        .map(std::mem::take)
                        .unwrap_or_default();
                    r.release(k);
                    this.key.0 = None;
                    Poll::Ready((result_to_io(res).map(|n| n as usize), buf))
                }
                None => {
                    reactor::set_waker(&mut r.slot(k).waker, cx);
                    Poll::Pending
                }
            }
        })
    }
}

/// What a multishot recv produced.
#[derive(Debug)]
pub enum Received {
    /// Bytes in a provided buffer, now owned by the caller.
    Data(Chunk),
    /// The peer sent FIN; the op has ended.
    Eof,
}

/// Sets up this shard's provided-buffer ring: `count` buffers (a power of two)
/// of `size` bytes. Without it, [`recv_multi`] cannot be used.
pub fn setup_buffers(count: u16, size: usize) -> io::Result<()> {
    reactor::with(|r| r.setup_bufring(count, size))
}

/// Size of one provided buffer (0 without a buffer ring).
pub fn buffer_size() -> usize {
    reactor::with(|r| r.bufring.as_ref().map_or(0, |b| b.buf_size()))
}

/// Runs `f` on the bytes of a received chunk.
pub fn with_chunk<R>(c: &Chunk, f: impl FnOnce(&[u8]) -> R) -> R {
    reactor::with(|r| f(r.bufring.as_ref().map_or(&[][..], |b| b.data(c))))
}

/// Wakes the task once buffers are given back to the ring (after a recv ended
/// with `ENOBUFS`).
pub fn wait_for_buffers(cx: &mut Context<'_>) {
    reactor::with(|r| {
        if let Some(b) = r.bufring.as_mut() {
            b.wait_for_buffers(cx.waker().clone());
        }
    })
}

/// A multishot `recv` into the shard's provided buffers (`IORING_OP_RECV` with
/// `IORING_RECV_MULTISHOT`, kernel 6.0+): armed once, it completes every time
/// the socket has bytes, each time in a buffer the kernel picks, with no
/// syscall of its own. An idle socket holds no buffer.
pub fn recv_multi(fd: RawFd) -> RecvMulti {
    RecvMulti {
        fd,
        key: SlotKey(None),
        cancelled: false,
        done: false,
    }
}

pub struct RecvMulti {
    fd: RawFd,
    key: SlotKey,
    cancelled: bool,
    /// EOF or an error ended it for good.
    done: bool,
}

impl RecvMulti {
    fn arm(&mut self) -> OpKey {
        let entry = opcode::RecvMulti::new(types::Fd(self.fd), reactor::BUF_GROUP).build();
        // SAFETY: the entry names a buffer group, not memory of ours; the
        // buffers belong to the reactor's ring, which outlives every op.
        let k = reactor::with(|r| unsafe { r.submit(entry) });
        self.key.0 = Some(k);
        k
    }

    /// The next chunk, EOF or error; `None` once cancelled (or done) and drained.
    /// `Err(ENOBUFS)`: the ring ran dry and the op ended; call
    /// [`wait_for_buffers`], then poll again to re-arm.
    pub fn poll_recv(&mut self, cx: &mut Context<'_>) -> Poll<Option<io::Result<Received>>> {
        loop {
            let k = match self.key.0 {
                Some(k) => k,
                None if self.cancelled || self.done => return Poll::Ready(None),
                None => self.arm(),
            };
            let next = reactor::with(|r| {
                let s = r.slot(k);
                if let Some((res, flags)) = s.results.pop_front() {
                    // The op's last completion: free its slot now, so a caller
                    // that stops polling after EOF leaves nothing behind.
                    let last = s.finished && s.results.is_empty();
                    if last {
                        r.release(k);
                    }
                    return Some(Some((res, flags, last)));
                }
                if s.finished {
                    r.release(k);
                    return Some(None);
                }
                reactor::set_waker(&mut s.waker, cx);
                None
            });
            match next {
                None => return Poll::Pending,
                // Ended: by our cancel, or by the kernel (re-armed on the loop).
                Some(None) => self.key.0 = None,
                Some(Some((res, flags, last))) => {
                    if last {
                        self.key.0 = None;
                    }
                    let chunk = io_uring::cqueue::buffer_select(flags).map(|bid| Chunk {
                        bid,
                        len: res.max(0) as usize,
                    });
                    if res > 0 {
                        if let Some(c) = chunk {
                            return Poll::Ready(Some(Ok(Received::Data(c))));
                        }
                        continue;
                    }
                    drop(chunk);
                    if res == 0 {
                        self.done = true;
                        return Poll::Ready(Some(Ok(Received::Eof)));
                    }
                    if -res == libc::ECANCELED {
                        self.cancelled = true;
                        continue;
                    }
                    if -res != libc::ENOBUFS {
                        self.done = true;
                    }
                    return Poll::Ready(Some(Err(io::Error::from_raw_os_error(-res))));
                }
            }
        }
    }

    /// Asks the kernel to stop; keep polling until `None` to take the chunks
    /// received before the cancel took effect (they hold the stream's bytes).
    pub fn cancel(&mut self) {
        if self.cancelled {
            return;
        }
        self.cancelled = true;
        if let Some(k) = self.key.0 {
            reactor::with(|r| r.cancel(k));
        }
    }

    /// Armed, or will arm on the next poll (neither cancelled nor done).
    pub fn is_live(&self) -> bool {
        !self.cancelled && !self.done
    }

    /// Cancelled or done, and its last completion taken: no byte can still
    /// arrive through it.
    pub fn is_finished(&self) -> bool {
        self.key.0.is_none() && (self.cancelled || self.done)
    }
}

/// Sends bytes `[offset..]` of a received chunk (`IORING_OP_SEND`). The chunk
/// rides in the op's slot until the final completion, so its buffer cannot go
/// back to the kernel while being read; it is handed back with the result.
pub fn send_chunk(fd: RawFd, chunk: Chunk, offset: usize) -> SendChunk {
    SendChunk {
        fd,
        chunk: Some(chunk),
        offset,
        key: SlotKey(None),
    }
}

pub struct SendChunk {
    fd: RawFd,
    chunk: Option<Chunk>,
    offset: usize,
    key: SlotKey,
}

impl Future for SendChunk {
    /// Bytes sent from the offset asked (maybe fewer than the rest), the chunk
    /// back, and that offset.
    type Output = (io::Result<usize>, Chunk, usize);

    fn poll(mut self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<Self::Output> {
        let this = &mut *self;
        let k = match this.key.0 {
            Some(k) => k,
            None => {
                let chunk = this.chunk.take().expect("polled after completion");
                let (fd, offset) = (this.fd, this.offset);
                let k = reactor::with(|r| {
                    let k = r.submit_send_chunk(fd, chunk, offset);
                    reactor::set_waker(&mut r.slot(k).waker, cx);
                    k
                });
                this.key.0 = Some(k);
                return Poll::Pending;
            }
        };
        reactor::with(|r| {
            let res = r.slot(k).results.pop_front();
            match res {
                Some((res, _)) => {
                    let chunk = r.slot(k).chunk.take().expect("the chunk rides in the slot");
                    r.release(k);
                    this.key.0 = None;
                    Poll::Ready((result_to_io(res).map(|n| n as usize), chunk, this.offset))
                }
                None => {
                    reactor::set_waker(&mut r.slot(k).waker, cx);
                    Poll::Pending
                }
            }
        })
    }
}
