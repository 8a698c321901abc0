//! Shard-local pools of copy buffers and splice pipes. A session holds a buffer or
//! a pipe only while bytes are in flight, so an idle connection costs neither.
//! Pipes are capped by `tune.maxpipes`; when the pool is exhausted the pump falls
//! back to copying.

use std::cell::{Cell, RefCell};

use crate::sys::pipe::Pipe;

pub struct BufferPool {
    size: usize,
    free: RefCell<Vec<Vec<u8>>>,
}

impl BufferPool {
    pub fn new(size: usize) -> BufferPool {
        BufferPool {
            size,
            free: RefCell::new(Vec::new()),
        }
    }

    pub fn take(&self) -> Vec<u8> {
        self.free
            .borrow_mut()
            .pop()
            .unwrap_or_else(|| vec![0; self.size])
    }

    pub fn put(&self, buf: Vec<u8>) {
        let mut free = self.free.borrow_mut();
        // Keep a bounded reserve; beyond it, give memory back.
        if free.len() < 1024 {
            free.push(buf);
        }
    }
}

pub struct PipePool {
    size: usize,
    max: usize,
    /// Pipes created and not yet destroyed (in the pool or in use).
    live: Cell<usize>,
    free: RefCell<Vec<Pipe>>,
    /// Times a session wanted a pipe and none could be had.
    pub exhausted: Cell<u64>,
}

impl PipePool {
    pub fn new(size: usize, max: usize) -> PipePool {
        PipePool {
            size,
            max,
            live: Cell::new(0),
            free: RefCell::new(Vec::new()),
            exhausted: Cell::new(0),
        }
    }

    /// An empty pipe, or `None` when the cap is reached or the kernel refuses.
    pub fn take(&self) -> Option<Pipe> {
        if let Some(p) = self.free.borrow_mut().pop() {
            return Some(p);
        }
        if self.live.get() >= self.max {
            self.exhausted.set(self.exhausted.get() + 1);
            return None;
        }
        match Pipe::new(self.size) {
            Ok(p) => {
                self.live.set(self.live.get() + 1);
                Some(p)
            }
            Err(_) => {
                self.exhausted.set(self.exhausted.get() + 1);
                None
            }
        }
    }

    /// Returns an empty pipe to the pool.
    pub fn put(&self, p: Pipe) {
        self.free.borrow_mut().push(p);
    }

    /// Destroys a pipe that still holds bytes (its session ended abnormally).
    pub fn discard(&self, p: Pipe) {
        drop(p);
        self.live.set(self.live.get() - 1);
    }

    /// Pipes currently held by sessions.
    pub fn in_use(&self) -> usize {
        self.live.get() - self.free.borrow().len()
    }
}
