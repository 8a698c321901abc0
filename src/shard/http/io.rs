//! The socket work of an HTTP session, kept apart from its decisions: a read
//! buffer per side (`Inbuf`), a non-blocking read that waits for readiness on
//! the ring with a deadline, a send that waits for room, and moving a run of
//! raw body bytes from one socket to the other through a pooled pipe (splice),
//! the way the L4 pump does. Never blocks the shard; every wait has a deadline
//! (or none, where HAProxy's timeout is unset).

use std::future::Future;
use std::io;
use std::time::{Duration, Instant};

use crate::l4::{Pools, Transport};
use crate::ring::{self, events};

/// Bytes read from one side and not consumed yet: `buf[start..end]`.
pub struct Inbuf {
    pub buf: Vec<u8>,
    start: usize,
    end: usize,
}

impl Inbuf {
    pub fn new(mut buf: Vec<u8>) -> Inbuf {
        let cap = buf.capacity().max(1024);
        buf.resize(cap, 0);
        Inbuf {
            buf,
            start: 0,
            end: 0,
        }
    }

    pub fn data(&self) -> &[u8] {
        &self.buf[self.start..self.end]
    }

    pub fn is_empty(&self) -> bool {
        self.start == self.end
    }

    pub fn consume(&mut self, n: usize) {
        self.start = (self.start + n).min(self.end);
        if self.start == self.end {
            self.start = 0;
            self.end = 0;
        }
    }

    pub fn clear(&mut self) {
        self.start = 0;
        self.end = 0;
    }

    pub fn into_vec(self) -> Vec<u8> {
        self.buf
    }
}

/// How a read ended.
#[derive(Debug)]
pub enum Read {
    /// Some bytes were appended.
    Data,
    Eof,
    Timeout,
    /// The buffer is full of unconsumed bytes.
    Full,
    /// The peer reset or the socket failed.
    Failed,
}

/// How a send ended.
#[derive(Debug)]
pub enum Sent {
    Done,
    Timeout,
    /// The peer reset or the socket failed.
    Failed,
}

/// Reads what `sock` has into `ib`, waiting for readiness until `deadline`.
pub async fn fill(sock: &dyn Transport, ib: &mut Inbuf, deadline: Option<Instant>) -> Read {
    if ib.end == ib.buf.len() {
        if ib.start == 0 {
            return Read::Full;
        }
        ib.buf.copy_within(ib.start..ib.end, 0);
        ib.end -= ib.start;
        ib.start = 0;
    }
    loop {
        match sock.recv(&mut ib.buf[ib.end..]) {
            Ok(0) => return Read::Eof,
            Ok(n) => {
                ib.end += n;
                return Read::Data;
            }
            Err(e) if e.kind() == io::ErrorKind::WouldBlock => {}
            Err(e) if e.kind() == io::ErrorKind::Interrupted => continue,
            Err(_) => return Read::Failed,
        }
        let ready = ring::poll_once(sock.fd(), events::IN | events::RDHUP);
        match ring::with_deadline(deadline, ready).await {
            None => return Read::Timeout,
            Some(Err(_)) => return Read::Failed,
            Some(Ok(_)) => {}
        }
    }
}

/// As [`fill`], when the bytes cannot be there yet (a response just asked
/// for, the next request of an idle client): waits for readiness first
/// rather than spend a `recv` on `EAGAIN`.
pub async fn fill_ready(sock: &dyn Transport, ib: &mut Inbuf, deadline: Option<Instant>) -> Read {
    if sock.has_buffered_input() {
        return fill(sock, ib, deadline).await;
    }
    let ready = ring::poll_once(sock.fd(), events::IN | events::RDHUP);
    match ring::with_deadline(deadline, ready).await {
        None => return Read::Timeout,
        Some(Err(_)) => return Read::Failed,
        Some(Ok(_)) => {}
    }
    fill(sock, ib, deadline).await
}

/// Sends all of `data`, waiting for room until `deadline`. A transport that
/// holds output of its own (TLS records) has it all on the socket on `Done`.
pub async fn send_all(sock: &dyn Transport, mut data: &[u8], deadline: Option<Instant>) -> Sent {
    loop {
        let r = if !data.is_empty() {
            sock.send(data).map(|n| data = &data[n..])
        } else if sock.has_pending_output() {
            sock.flush()
        } else {
            return Sent::Done;
        };
        match r {
            // Held output is flushed before the next send: no wait needed
            // unless the socket said so.
            Ok(()) if data.is_empty() && sock.has_pending_output() => {}
            Ok(()) => continue,
            Err(e) if e.kind() == io::ErrorKind::WouldBlock => {}
            Err(e) if e.kind() == io::ErrorKind::Interrupted => continue,
            Err(_) => return Sent::Failed,
        }
        let room = ring::poll_once(sock.fd(), events::OUT);
        match ring::with_deadline(deadline, room).await {
            None => return Sent::Timeout,
            Some(Err(_)) => return Sent::Failed,
            Some(Ok(_)) => {}
        }
    }
}

/// Ends a connection whose request may not have been read to its end (an
/// error answered early): FIN first, then whatever the client still sends is
/// read and dropped, for at most `limit` and 1 MiB, so that the close is not a
/// reset that could destroy the answer on its way (HAProxy and nginx linger
/// the same way).
pub async fn linger_close(sock: &dyn Transport, limit: Duration) {
    if sock.shutdown_write().is_err() {
        return;
    }
    let end = Instant::now() + limit;
    let mut scratch = [0u8; 4096];
    let mut budget: usize = 1 << 20;
    while budget > 0 {
        // Held output (a TLS close_notify the socket had no room for).
        if sock.has_pending_output() {
            let _ = sock.flush();
        }
        match sock.recv(&mut scratch) {
            Ok(0) => return,
            Ok(n) => {
                budget = budget.saturating_sub(n);
                continue;
            }
            Err(e) if e.kind() == io::ErrorKind::WouldBlock => {}
            Err(e) if e.kind() == io::ErrorKind::Interrupted => continue,
            Err(_) => return,
        }
        let ready = ring::poll_once(sock.fd(), events::IN | events::RDHUP);
        match ring::with_deadline(Some(end), ready).await {
            Some(Ok(_)) => {}
            None | Some(Err(_)) => return,
        }
    }
}

/// Which side a spliced run stopped on.
#[derive(Debug)]
pub enum Spliced {
    Done,
    /// The source closed before the run's end.
    SrcEof,
    SrcTimeout,
    DstTimeout,
    SrcFailed,
    DstFailed,
    /// No pipe to be had: the caller copies instead.
    NoPipe,
}

/// Moves exactly `len` bytes from `src` to `dst` through a pooled pipe, never
/// through user space. `src_deadline`/`dst_deadline` are computed afresh for
/// each wait (inactivity timeouts). `moved` counts bytes delivered to `dst`.
pub async fn splice_exact(
    src: &dyn Transport,
    dst: &dyn Transport,
    len: u64,
    pools: &Pools,
    src_deadline: impl Fn() -> Option<Instant>,
    dst_deadline: impl Fn() -> Option<Instant>,
    moved: &mut u64,
) -> Spliced {
    if !src.can_splice() || !dst.can_splice() {
        return Spliced::NoPipe;
    }
    let Some(pipe) = pools.pipes.take() else {
        return Spliced::NoPipe;
    };
    let mut left = len;
    let mut in_pipe = 0usize;
    let chunk = pools.pipe_size;
    let end = loop {
        if left == 0 && in_pipe == 0 {
            break Spliced::Done;
        }
        if in_pipe == 0 {
            let want = left.min(chunk as u64) as usize;
            match pipe.fill_from(src.fd(), want) {
                Ok(0) => break Spliced::SrcEof,
                Ok(n) => {
                    in_pipe = n;
                    left -= n as u64;
                }
                Err(e) if e.kind() == io::ErrorKind::WouldBlock => {
                    let ready = ring::poll_once(src.fd(), events::IN | events::RDHUP);
                    match ring::with_deadline(src_deadline(), ready).await {
                        None => break Spliced::SrcTimeout,
                        Some(Err(_)) => break Spliced::SrcFailed,
                        Some(Ok(_)) => continue,
                    }
                }
                Err(e) if e.kind() == io::ErrorKind::Interrupted => continue,
                Err(_) => break Spliced::SrcFailed,
            }
        }
        match pipe.drain_to(dst.fd(), in_pipe) {
            Ok(n) => {
                in_pipe -= n;
                *moved += n as u64;
            }
            Err(e) if e.kind() == io::ErrorKind::WouldBlock => {
                let room = ring::poll_once(dst.fd(), events::OUT);
                match ring::with_deadline(dst_deadline(), room).await {
                    None => break Spliced::DstTimeout,
                    Some(Err(_)) => break Spliced::DstFailed,
                    Some(Ok(_)) => {}
                }
            }
            Err(e) if e.kind() == io::ErrorKind::Interrupted => {}
            Err(_) => break Spliced::DstFailed,
        }
    };
    if in_pipe == 0 {
        pools.pipes.put(pipe);
    } else {
        pools.pipes.discard(pipe);
    }
    end
}

/// Which of two sockets became readable first.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum First {
    A,
    B,
    Timeout,
}

/// Waits until `a` or `b` is readable (or closed), until `deadline`.
pub async fn readable_either(
    a: &dyn Transport,
    b: &dyn Transport,
    deadline: Option<Instant>,
) -> First {
    if a.has_buffered_input() {
        return First::A;
    }
    if b.has_buffered_input() {
        return First::B;
    }
    let mask = events::IN | events::RDHUP;
    let mut pa = std::pin::pin!(ring::poll_once(a.fd(), mask));
    let mut pb = std::pin::pin!(ring::poll_once(b.fd(), mask));
    let race = std::future::poll_fn(|cx| {
        if pa.as_mut().poll(cx).is_ready() {
            return std::task::Poll::Ready(First::A);
        }
        if pb.as_mut().poll(cx).is_ready() {
            return std::task::Poll::Ready(First::B);
        }
        std::task::Poll::Pending
    });
    ring::with_deadline(deadline, race)
        .await
        .unwrap_or(First::Timeout)
}
