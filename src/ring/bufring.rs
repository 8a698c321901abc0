//! A provided-buffer ring (`IORING_REGISTER_PBUF_RING`, kernel 5.19+): one per
//! shard, a pool of equal buffers the kernel picks from when a multishot `recv`
//! completes, so a socket with nothing to read holds no buffer, and many
//! sessions' reads complete in one `io_uring_enter` with no syscall of their own.
//!
//! Ownership: the kernel owns a buffer from the moment it is published in the
//! ring until a completion names it (`IORING_CQE_F_BUFFER`); then user space owns
//! it ([`Chunk`]) until it is given back. A `Chunk` dropped anywhere — even inside
//! the reactor, as part of a finished op's slot — queues its buffer id on a
//! thread-local list that the reactor publishes at its next reap, so returning a
//! buffer never needs the reactor borrowed.
//!
//! The ring's entries live in an anonymous page-aligned mapping; the buffers in
//! one boxed slice that is never reallocated. Both are freed only after the
//! reactor has drained every in-flight op (or leaked if it could not), so the
//! kernel never writes into freed memory.

use std::cell::RefCell;
use std::io;
use std::sync::atomic::{AtomicU16, Ordering};
use std::task::Waker;

use io_uring::types::BufRingEntry;
use io_uring::IoUring;

thread_local! {
    /// Buffer ids given back by dropped chunks, published at the next reap.
    static RETURNED: RefCell<Vec<u16>> = const { RefCell::new(Vec::new()) };
}

/// A received buffer owned by user space: bytes `[..len]` of buffer `bid`.
/// Dropping it gives the buffer back to the kernel (at the next reap).
#[derive(Debug)]
pub struct Chunk {
    pub(crate) bid: u16,
    pub(crate) len: usize,
}

impl Chunk {
    pub fn len(&self) -> usize {
        self.len
    }

    pub fn is_empty(&self) -> bool {
        self.len == 0
    }
}

impl Drop for Chunk {
    fn drop(&mut self) {
        let _ = RETURNED.try_with(|r| r.borrow_mut().push(self.bid));
    }
}

pub(crate) struct BufRing {
    entries: *mut BufRingEntry,
    map_len: usize,
    count: u16,
    /// Our copy of the tail we publish (the kernel reads it, never writes it).
    tail: u16,
    bufs: Box<[u8]>,
    size: usize,
    pub(crate) bgid: u16,
    /// Tasks whose multishot recv ended for lack of buffers.
    starved: Vec<Waker>,
}

impl BufRing {
    /// Maps, registers and fills a ring of `count` (a power of two, at most
    /// 32768) buffers of `size` bytes as buffer group `bgid`.
    pub(crate) fn new(ring: &IoUring, count: u16, size: usize, bgid: u16) -> io::Result<BufRing> {
        assert!(count.is_power_of_two() && count <= 32768 && size > 0);
        let map_len = count as usize * std::mem::size_of::<BufRingEntry>();
        // SAFETY: an anonymous private mapping with no address hint; the result
        // is checked before use.
        let p = unsafe {
            libc::mmap(
                std::ptr::null_mut(),
                map_len,
                libc::PROT_READ | libc::PROT_WRITE,
                libc::MAP_PRIVATE | libc::MAP_ANONYMOUS,
                -1,
                0,
            )
        };
        if p == libc::MAP_FAILED {
            return Err(io::Error::last_os_error());
        }
        let entries = p.cast::<BufRingEntry>();
        // SAFETY: the mapping is page-aligned, zeroed, `count` entries long and
        // stays mapped until `Drop`, after the ring is unregistered.
        if let Err(e) = unsafe {
            ring.submitter()
                .register_buf_ring_with_flags(entries as u64, count, bgid, 0)
        } {
            // SAFETY: unmapping what we mapped above, never handed to the kernel.
            unsafe { libc::munmap(p, map_len) };
            return Err(e);
        }
        let mut br = BufRing {
            entries,
            map_len,
            count,
            tail: 0,
            bufs: vec![0u8; count as usize * size].into_boxed_slice(),
            size,
            bgid,
            starved: Vec::new(),
        };
        for bid in 0..count {
            br.push(bid);
        }
        br.publish();
        Ok(br)
    }

    pub(crate) fn buf_size(&self) -> usize {
        self.size
    }

    /// Where buffer `bid` starts (stable for the ring's life).
    pub(crate) fn buf_ptr(&self, bid: u16) -> *const u8 {
        self.bufs[bid as usize * self.size..].as_ptr()
    }

    /// The received bytes of a chunk.
    pub(crate) fn data(&self, c: &Chunk) -> &[u8] {
        let start = c.bid as usize * self.size;
        &self.bufs[start..start + c.len.min(self.size)]
    }

    fn push(&mut self, bid: u16) {
        let idx = (self.tail & (self.count - 1)) as usize;
        let addr = self.buf_ptr(bid) as u64;
        // SAFETY: idx < count, inside the mapping; only this thread writes it,
        // and the kernel reads an entry only once the tail covers it.
        let e = unsafe { &mut *self.entries.add(idx) };
        e.set_addr(addr);
        e.set_len(self.size as u32);
        e.set_bid(bid);
        self.tail = self.tail.wrapping_add(1);
    }

    /// Makes pushed entries visible to the kernel.
    fn publish(&self) {
        // SAFETY: the tail field overlays entry 0's `resv`, inside the mapping;
        // the kernel reads it with acquire semantics, we store with release.
        unsafe {
            let tail = BufRingEntry::tail(self.entries) as *const AtomicU16;
            (*tail).store(self.tail, Ordering::Release);
        }
    }

    /// Gives back every buffer dropped since the last call; wakes tasks that
    /// were starved of buffers.
    pub(crate) fn reclaim(&mut self) {
        let ids = RETURNED
            .try_with(|r| std::mem::take(&mut *r.borrow_mut()))
            .unwrap_or_default();
        if ids.is_empty() {
            return;
        }
        for bid in ids {
            if bid < self.count {
                self.push(bid);
            }
        }
        self.publish();
        for w in self.starved.drain(..) {
            w.wake();
        }
    }

    /// Registers a task to wake once buffers come back.
    pub(crate) fn wait_for_buffers(&mut self, w: Waker) {
        self.starved.push(w);
    }

    /// Unregisters from `ring` and frees; call only when no op can still
    /// write into the buffers. `leak` keeps the memory (the kernel may still
    /// hold it).
    pub(crate) fn release(self, ring: &IoUring, leak: bool) {
        let _ = ring.submitter().unregister_buf_ring(self.bgid);
        if leak {
            std::mem::forget(self);
        }
    }
}

impl Drop for BufRing {
    fn drop(&mut self) {
        // SAFETY: the mapping made in `new`; by now unregistered (or the ring is
        // closed), so the kernel no longer reads it.
        unsafe { libc::munmap(self.entries.cast(), self.map_len) };
    }
}
