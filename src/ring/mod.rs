//! The ring runtime: a single-threaded executor whose tasks are futures, and a
//! reactor over one io_uring ring, per data shard.
//!
//! Everything above this module awaits [`accept_multi`], [`PollMulti`],
//! [`poll_once`] and [`Sleep`]; nothing above builds an SQE. Each in-flight
//! operation owns a slot in the reactor's slab keyed by `user_data`; dropping an
//! operation's future before its completion orphans the slot (and submits
//! `AsyncCancel`), and the slot is freed only when the kernel's final CQE arrives,
//! which is what makes cancellation — timeouts, a client gone — memory-safe.
//! Timers live in one hashed timing wheel per shard, driven by the wait timeout of
//! `io_uring_enter`, so per-connection timeouts cost no SQE.
//!
//! Never call into the runtime from another thread: cross-thread wake-ups go
//! through an eventfd the shard polls.

mod bufring;
mod executor;
mod ops;
mod reactor;
mod timer;

#[cfg(test)]
mod tests;

pub use bufring::Chunk;
pub use executor::{block_on, spawn, yield_now};
pub use ops::{
    accept_multi, buffer_size, poll_once, recv_multi, recv_owned, send_chunk, setup_buffers,
    wait_for_buffers, with_chunk, AcceptMulti, PollMulti, PollOnce, Received, RecvMulti, RecvOwned,
    SendChunk,
};
pub use reactor::{RingConfig, RingError, RingStats};

/// This thread's ring activity so far.
pub fn stats() -> RingStats {
    reactor::with(|r| r.stats)
}
pub use timer::{now_coarse, sleep_until, unix_now_coarse, with_deadline, Sleep};

/// `poll(2)` event bits used by callers.
pub mod events {
    pub const IN: u32 = libc::POLLIN as u32;
    pub const OUT: u32 = libc::POLLOUT as u32;
    pub const ERR: u32 = libc::POLLERR as u32;
    pub const HUP: u32 = libc::POLLHUP as u32;
    pub const RDHUP: u32 = libc::POLLRDHUP as u32;
}
