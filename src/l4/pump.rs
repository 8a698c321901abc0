//! `Pump`: forwards a TCP session both ways until both directions are closed, a
//! side resets, a timeout expires or the session is killed.
//!
//! Readiness comes from one multishot poll per socket (armed once for the whole
//! session) plus a one-shot POLLOUT only while a destination is full. A read that
//! returns less than the buffer means the socket was drained at that moment, and
//! any later data produces a new poll completion, so the copy path never spends a
//! syscall on `EAGAIN`. A direction that keeps filling whole buffers switches to
//! splice through a pooled pipe (held only while bytes are in it).
//!
//! Both directions are the same `Flow`, parameterised only by which side is the
//! source; the session's fate is decided once, in `Pump::run`.
//!
//! The pump moves bytes between two [`Transport`]s, not two raw sockets: a plain
//! socket can splice; a transport that buffers (TLS) can only copy, and for it a
//! short read does not mean the socket was drained.

use std::cell::Cell;
use std::future::{poll_fn, Future};
use std::io;
use std::os::fd::{AsRawFd, RawFd};
use std::pin::Pin;
use std::rc::Rc;
use std::task::{Context, Poll, Waker};
use std::time::{Duration, Instant};

use super::pools::{BufferPool, PipePool};
use crate::ring::{self, events, PollMulti, Sleep};
use crate::sys::pipe::Pipe;
use crate::sys::socket::Socket;

/// Bytes a direction may move in one poll before yielding to other sessions.
const BUDGET: usize = 1 << 20;
/// Full buffer reads in a row after which a direction switches to splice.
const SPLICE_AFTER_FULL_READS: u8 = 2;

/// Inactivity limits for the data phase (HAProxy's `timeout client`, `server`,
/// `client-fin`, `server-fin`, `tunnel`).
#[derive(Debug, Clone, Copy, Default)]
pub struct PumpLimits {
    pub client: Option<Duration>,
    pub server: Option<Duration>,
    pub client_fin: Option<Duration>,
    pub server_fin: Option<Duration>,
    pub tunnel: Option<Duration>,
    pub splice: bool,
}

impl PumpLimits {
    /// When the client and server sides time out, given when each last moved a
    /// byte (read from or written to it). Half-closed sessions use the `-fin`
    /// timeouts; in a tunnel only inactivity in both directions counts, and it
    /// is reported as the client's.
    pub fn deadlines(
        &self,
        half_closed: bool,
        client_last: Instant,
        server_last: Instant,
    ) -> (Option<Instant>, Option<Instant>) {
        if let Some(t) = self.tunnel {
            return (client_last.max(server_last).checked_add(t), None);
        }
        let (c, s) = if half_closed {
            (
                self.client_fin.or(self.client),
                self.server_fin.or(self.server),
            )
        } else {
            (self.client, self.server)
        };
        (
            c.and_then(|l| client_last.checked_add(l)),
            s.and_then(|l| server_last.checked_add(l)),
        )
    }
}

/// One side of a forwarded session: a plain socket today, a TLS session later.
/// Every operation is non-blocking; readiness comes from polling [`fd`].
///
/// [`fd`]: Transport::fd
pub trait Transport {
    /// The socket whose readiness drives this transport.
    fn fd(&self) -> RawFd;
    /// Bytes can move with `splice(2)` straight from or to [`fd`](Transport::fd)
    /// (a plain socket, or kTLS).
    fn can_splice(&self) -> bool;
    /// The transport keeps bytes of its own (decrypted records): a short read
    /// does not mean the socket is drained, so keep reading until `WouldBlock`.
    fn buffers_reads(&self) -> bool;
    fn recv(&self, buf: &mut [u8]) -> io::Result<usize>;
    fn send(&self, buf: &[u8]) -> io::Result<usize>;
    /// Sends FIN after everything before it.
    fn shutdown_write(&self) -> io::Result<()>;
    /// Makes the close that follows send RST (abort propagation).
    fn set_reset_on_close(&self) -> io::Result<()>;
    /// The transport holds output of its own not yet on the socket (TLS records,
    /// a close_notify, a FIN queued behind them): the pump calls [`flush`] until
    /// this is false, waiting for POLLOUT in between, before it sends more or
    /// considers the direction finished.
    ///
    /// [`flush`]: Transport::flush
    fn has_pending_output(&self) -> bool {
        false
    }
    /// Writes what the transport holds; `WouldBlock` (or pending output left)
    /// means wait for POLLOUT.
    fn flush(&self) -> io::Result<()> {
        Ok(())
    }
    /// Bytes already read from the socket wait inside the transport (TLS
    /// plaintext decrypted with an earlier record): read them before waiting
    /// for the socket, which may never become readable again for them.
    fn has_buffered_input(&self) -> bool {
        false
    }
}

impl Transport for Socket {
    fn fd(&self) -> RawFd {
        self.as_raw_fd()
    }
    fn can_splice(&self) -> bool {
        true
    }
    fn buffers_reads(&self) -> bool {
        false
    }
    fn recv(&self, buf: &mut [u8]) -> io::Result<usize> {
        Socket::recv(self, buf)
    }
    fn send(&self, buf: &[u8]) -> io::Result<usize> {
        Socket::send(self, buf)
    }
    fn shutdown_write(&self) -> io::Result<()> {
        Socket::shutdown_write(self)
    }
    fn set_reset_on_close(&self) -> io::Result<()> {
        Socket::set_reset_on_close(self)
    }
}

/// What an idle session does next.
pub(super) enum Idle {
    TimedOut(PumpEnd),
    /// Its timer fired meanwhile: look again.
    Again,
    /// Asleep until readiness, the timer or the kill switch wakes it.
    Sleep,
}

/// Arms an idle session's inactivity timer (HAProxy's client/server/-fin/tunnel
/// timeouts) from when each side (client, server) last moved a byte; shared by
/// the poll pump and the ring pump.
pub(super) fn wait_idle(
    limits: &PumpLimits,
    half_closed: bool,
    (client_last, server_last): (Instant, Instant),
    now: Instant,
    timer: &mut Option<Sleep>,
    kill: &KillSwitch,
    cx: &mut Context<'_>,
) -> Idle {
    let (cd, sd) = limits.deadlines(half_closed, client_last, server_last);
    if cd.is_some_and(|d| now >= d) {
        return Idle::TimedOut(PumpEnd::ClientTimeout);
    }
    if sd.is_some_and(|d| now >= d) {
        return Idle::TimedOut(PumpEnd::ServerTimeout);
    }
    let next = match (cd, sd) {
        (Some(a), Some(b)) => Some(a.min(b)),
        (a, b) => a.or(b),
    };
    if let Some(next) = next {
        let t = timer.get_or_insert_with(|| ring::sleep_until(next));
        t.reset(next);
        if Pin::new(t).poll(cx).is_ready() {
            return Idle::Again;
        }
    }
    kill.set_waker(cx);
    Idle::Sleep
}

/// errnos that mean this process ran out of something (not the peer's doing).
fn is_local(e: &io::Error) -> bool {
    matches!(
        e.raw_os_error(),
        Some(libc::EMFILE | libc::ENFILE | libc::ENOBUFS | libc::ENOMEM)
    )
}

/// Why the pump stopped.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum PumpEnd {
    /// Both directions closed normally (FIN each way).
    Closed,
    ClientTimeout,
    ServerTimeout,
    /// The client reset or failed; the server got a reset too.
    ClientAborted,
    /// The server reset or failed; the client got a reset too.
    ServerAborted,
    /// Killed from outside (server marked down with shutdown-sessions, hard stop).
    Killed,
    /// This process ran out of memory or buffers while forwarding: neither
    /// side's fault.
    Local,
}

#[derive(Debug, Clone, Copy)]
pub struct PumpResult {
    pub end: PumpEnd,
    /// Client → server bytes.
    pub up: u64,
    /// Server → client bytes.
    pub down: u64,
    /// The errno of the failure that ended the session, if one did.
    pub errno: Option<i32>,
}

/// A flag other tasks set to end a session early; waking its task.
#[derive(Default)]
pub struct KillSwitch {
    killed: Cell<bool>,
    /// Thrown by an operator (`shutdown session[s]`): logged `K`, as
    /// HAProxy's SF_ERR_KILLED, rather than `D` (its server went down).
    operator: Cell<bool>,
    waker: Cell<Option<Waker>>,
}

impl KillSwitch {
    pub fn kill(&self) {
        self.killed.set(true);
        if let Some(w) = self.waker.take() {
            w.wake();
        }
    }

    /// `kill`, on an operator's command.
    pub fn kill_by_operator(&self) {
        self.operator.set(true);
        self.kill();
    }

    pub fn by_operator(&self) -> bool {
        self.operator.get()
    }

    pub fn is_killed(&self) -> bool {
        self.killed.get()
    }

    /// The task to wake when the switch is thrown (cloned only if it changed).
    pub fn set_waker(&self, cx: &Context<'_>) {
        let w = match self.waker.take() {
            Some(w) if w.will_wake(cx.waker()) => w,
            _ => cx.waker().clone(),
        };
        self.waker.set(Some(w));
    }

    /// Runs `fut` until it completes (`Some`) or the switch is thrown (`None`,
    /// and `fut` is dropped, which releases whatever it held: a queue ticket, a
    /// connecting socket).
    pub async fn guard<F: Future>(&self, fut: F) -> Option<F::Output> {
        let mut fut = std::pin::pin!(fut);
        poll_fn(|cx| {
            if self.is_killed() {
                return Poll::Ready(None);
            }
            if let Poll::Ready(v) = fut.as_mut().poll(cx) {
                return Poll::Ready(Some(v));
            }
            self.set_waker(cx);
            Poll::Pending
        })
        .await
    }
}

enum Step {
    /// Waiting for the source to become readable.
    Idle,
    /// Waiting for the destination to accept more.
    Blocked,
    /// Used its byte budget; more may be ready.
    Yield,
    /// EOF forwarded (FIN sent to the destination).
    Done,
    SrcFailed(io::Error),
    DstFailed(io::Error),
}

/// One direction of a session.
struct Flow {
    buf: Option<Vec<u8>>,
    start: usize,
    end: usize,
    pipe: Option<Pipe>,
    in_pipe: usize,
    splicing: bool,
    full_reads: u8,
    eof: bool,
    done: bool,
    bytes: u64,
}

/// Readiness of one socket as the pump tracks it.
/// How a side learns that it has bytes to read.
enum Readable {
    /// Armed once for the session; a completion per wakeup of the socket. Best for
    /// small messages: no re-arm per message.
    Multi(PollMulti),
    /// Armed only after the socket was drained, level-triggered. Best for bulk
    /// streams, where a multishot poll would post a completion for every arriving
    /// segment batch while the shard is still splicing the previous ones.
    Once(Option<ring::PollOnce>),
}

struct Side<'a, T: Transport + ?Sized> {
    sock: &'a T,
    poll: Readable,
    out: Option<ring::PollOnce>,
    readable: bool,
    /// The peer sent FIN or the socket failed: read until EOF/error, never assume
    /// drained on a short read.
    hup: bool,
    blocked: bool,
    last_active: Instant,
}

impl<'a, T: Transport + ?Sized> Side<'a, T> {
    /// `speaks_first`: bytes are likely waiting already (the client, which
    /// usually sent its request while we connected), so read before the poll
    /// reports. Otherwise the poll, which checks the socket when armed, says
    /// when there is something: no `recv` spent on an `EAGAIN`.
    fn new(sock: &'a T, now: Instant, speaks_first: bool) -> Side<'a, T> {
        Side {
            sock,
            poll: Readable::Multi(PollMulti::new(sock.fd(), events::IN | events::RDHUP)),
            out: None,
            // A buffering transport may hold bytes already (a server's first
            // message decrypted with its last handshake record): look first.
            readable: speaks_first || sock.buffers_reads(),
            hup: false,
            blocked: false,
            last_active: now,
        }
    }

    /// Collects readiness; `Err` if the poll itself failed.
    /// A one-shot side that was found drained must arm its poll before the task
    /// sleeps, or nothing would wake it.
    fn needs_arm(&self) -> bool {
        matches!(self.poll, Readable::Once(None)) && !self.readable
    }

    /// Switches to one-shot readiness (the multishot poll is cancelled).
    fn use_oneshot(&mut self) {
        if matches!(self.poll, Readable::Multi(_)) {
            self.poll = Readable::Once(None);
        }
    }

    fn poll_ready(&mut self, cx: &mut Context<'_>) -> Result<bool, ()> {
        let mut any = false;
        let fd = self.sock.fd();
        let ready = match &mut self.poll {
            Readable::Multi(p) => p.poll_events(cx),
            // Nothing to arm while we still believe there are bytes to read.
            Readable::Once(_) if self.readable => Poll::Pending,
            Readable::Once(slot) => {
                let fut =
                    slot.get_or_insert_with(|| ring::poll_once(fd, events::IN | events::RDHUP));
                let r = Pin::new(fut).poll(cx);
                if r.is_ready() {
                    *slot = None;
                }
                r
            }
        };
        match ready {
            Poll::Ready(Ok(ev)) => {
                self.readable = true;
                if ev & (events::RDHUP | events::HUP | events::ERR) != 0 {
                    self.hup = true;
                }
                any = true;
            }
            Poll::Ready(Err(_)) => return Err(()),
            Poll::Pending => {}
        }
        if let Some(out) = self.out.as_mut() {
            if Pin::new(out).poll(cx).is_ready() {
                self.out = None;
                self.blocked = false;
                any = true;
            }
        }
        if self.blocked && self.out.is_none() {
            let mut fut = ring::poll_once(self.sock.fd(), events::OUT);
            if Pin::new(&mut fut).poll(cx).is_ready() {
                self.blocked = false;
                any = true;
            } else {
                self.out = Some(fut);
            }
        }
        Ok(any)
    }
}

impl Flow {
    fn new() -> Flow {
        Flow {
            buf: None,
            start: 0,
            end: 0,
            pipe: None,
            in_pipe: 0,
            splicing: false,
            full_reads: 0,
            eof: false,
            done: false,
            bytes: 0,
        }
    }

    /// Moves bytes from `src` to `dst` until blocked, idle, done or over budget.
    fn step<A: Transport + ?Sized, B: Transport + ?Sized>(
        &mut self,
        src: &mut Side<A>,
        dst: &mut Side<B>,
        pools: &Pools,
        now: Instant,
        splice_ok: bool,
    ) -> Step {
        let splice_ok = splice_ok && src.sock.can_splice() && dst.sock.can_splice();
        let mut moved = 0usize;
        loop {
            // 0. The destination's own pending output (TLS records) goes first,
            // and a direction is not done until it is out.
            if dst.sock.has_pending_output() {
                if dst.blocked {
                    return Step::Blocked;
                }
                match dst.sock.flush() {
                    Ok(()) if !dst.sock.has_pending_output() => dst.last_active = now,
                    Ok(()) => {
                        dst.blocked = true;
                        return Step::Blocked;
                    }
                    Err(e) if e.kind() == io::ErrorKind::WouldBlock => {
                        dst.blocked = true;
                        return Step::Blocked;
                    }
                    Err(e) => return Step::DstFailed(e),
                }
            }
            if self.done {
                return Step::Done;
            }
            // 1. Flush what we hold.
            if self.end > self.start {
                if dst.blocked {
                    return Step::Blocked;
                }
                let buf = self.buf.as_ref().expect("bytes pending imply a buffer");
                match dst.sock.send(&buf[self.start..self.end]) {
                    Ok(n) => {
                        self.start += n;
                        moved += n;
                        dst.last_active = now;
                        if self.start < self.end {
                            dst.blocked = true;
                            return Step::Blocked;
                        }
                    }
                    Err(e) if e.kind() == io::ErrorKind::WouldBlock => {
                        dst.blocked = true;
                        return Step::Blocked;
                    }
                    Err(e) => return Step::DstFailed(e),
                }
            }
            if self.end > 0 && self.start == self.end {
                self.start = 0;
                self.end = 0;
                if let Some(b) = self.buf.take() {
                    pools.buffers.put(b);
                }
            }
            if self.in_pipe > 0 {
                if dst.blocked {
                    return Step::Blocked;
                }
                let pipe = self.pipe.as_ref().expect("bytes in pipe imply a pipe");
                match pipe.drain_to(dst.sock.fd(), self.in_pipe) {
                    Ok(n) => {
                        self.in_pipe -= n;
                        moved += n;
                        dst.last_active = now;
                        if self.in_pipe > 0 {
                            dst.blocked = true;
                            return Step::Blocked;
                        }
                    }
                    Err(e) if e.kind() == io::ErrorKind::WouldBlock => {
                        dst.blocked = true;
                        return Step::Blocked;
                    }
                    Err(e) => return Step::DstFailed(e),
                }
            }
            if self.in_pipe == 0 {
                if let Some(p) = self.pipe.take() {
                    pools.pipes.put(p);
                }
            }
            // 2. Forward EOF once everything before it has gone out.
            if self.eof {
                let _ = dst.sock.shutdown_write();
                self.done = true;
                // Through step 0: a transport may still hold what it queued.
                continue;
            }
            if moved >= BUDGET {
                return Step::Yield;
            }
            // 3. Read more.
            if !src.readable {
                return Step::Idle;
            }
            if self.splicing && splice_ok {
                if self.pipe.is_none() {
                    self.pipe = pools.pipes.take();
                }
                if let Some(pipe) = self.pipe.as_ref() {
                    let room = pools.pipe_size.saturating_sub(self.in_pipe).max(4096);
                    let was_empty = self.in_pipe == 0;
                    match pipe.fill_from(src.sock.fd(), room) {
                        Ok(0) => self.eof = true,
                        Ok(n) => {
                            self.in_pipe += n;
                            self.bytes += n as u64;
                            src.last_active = now;
                        }
                        // With an empty pipe, EAGAIN can only mean the socket is
                        // drained; with bytes in it the pipe may be full instead.
                        Err(e) if e.kind() == io::ErrorKind::WouldBlock => {
                            if was_empty {
                                src.readable = false;
                                return Step::Idle;
                            }
                        }
                        Err(e) => return Step::SrcFailed(e),
                    }
                    continue;
                }
                // No pipe to be had: copy this round.
            }
            let mut buf = self.buf.take().unwrap_or_else(|| pools.buffers.take());
            let cap = buf.len();
            match src.sock.recv(&mut buf) {
                Ok(0) => {
                    pools.buffers.put(buf);
                    self.eof = true;
                }
                Ok(n) => {
                    self.buf = Some(buf);
                    self.start = 0;
                    self.end = n;
                    self.bytes += n as u64;
                    src.last_active = now;
                    if n == cap {
                        self.full_reads = self.full_reads.saturating_add(1);
                        if self.full_reads >= SPLICE_AFTER_FULL_READS && splice_ok {
                            self.splicing = true;
                            src.use_oneshot();
                        }
                    } else {
                        self.full_reads = 0;
                        if !src.hup && !src.sock.buffers_reads() {
                            // Drained: the next byte to arrive re-arms readiness.
                            src.readable = false;
                        }
                    }
                }
                Err(e) if e.kind() == io::ErrorKind::WouldBlock => {
                    pools.buffers.put(buf);
                    src.readable = false;
                    return Step::Idle;
                }
                Err(e) => {
                    pools.buffers.put(buf);
                    return Step::SrcFailed(e);
                }
            }
        }
    }

    /// Gives pooled resources back at the end of the session.
    fn release(&mut self, pools: &Pools) {
        if let Some(b) = self.buf.take() {
            pools.buffers.put(b);
        }
        if let Some(p) = self.pipe.take() {
            if self.in_pipe == 0 {
                pools.pipes.put(p);
            } else {
                pools.pipes.discard(p);
            }
        }
    }
}

/// The pools a pump borrows from (shard-local).
pub struct Pools {
    pub buffers: BufferPool,
    pub pipes: PipePool,
    pub pipe_size: usize,
}

/// Forwards one session.
pub struct Pump;

impl Pump {
    pub async fn run<C: Transport + ?Sized, S: Transport + ?Sized>(
        client: &C,
        server: &S,
        pools: &Pools,
        limits: PumpLimits,
        kill: Rc<KillSwitch>,
    ) -> PumpResult {
        let now = ring::now_coarse();
        let mut c = Side::new(client, now, true);
        let mut s = Side::new(server, now, false);
        let mut up = Flow::new();
        let mut down = Flow::new();
        let mut timer: Option<Sleep> = None;
        let mut errno: Option<i32> = None;
        let end = poll_fn(|cx| {
            loop {
                if kill.is_killed() {
                    return Poll::Ready(PumpEnd::Killed);
                }
                let mut progress = false;
                match c.poll_ready(cx) {
                    Ok(p) => progress |= p,
                    Err(()) => return Poll::Ready(PumpEnd::ClientAborted),
                }
                match s.poll_ready(cx) {
                    Ok(p) => progress |= p,
                    Err(()) => return Poll::Ready(PumpEnd::ServerAborted),
                }
                let now = ring::now_coarse();
                let a = up.step(&mut c, &mut s, pools, now, limits.splice);
                let b = down.step(&mut s, &mut c, pools, now, limits.splice);
                // Who failed: the client side (its read up, or its write down)
                // or the server side; a local shortage is neither's fault.
                let failure = match (&a, &b) {
                    (Step::SrcFailed(e), _) | (_, Step::DstFailed(e)) => {
                        Some((e, PumpEnd::ClientAborted))
                    }
                    (Step::DstFailed(e), _) | (_, Step::SrcFailed(e)) => {
                        Some((e, PumpEnd::ServerAborted))
                    }
                    (Step::Done, Step::Done) => return Poll::Ready(PumpEnd::Closed),
                    _ => None,
                };
                if let Some((e, who)) = failure {
                    errno = e.raw_os_error();
                    return Poll::Ready(if is_local(e) { PumpEnd::Local } else { who });
                }
                if matches!(a, Step::Yield) || matches!(b, Step::Yield) {
                    cx.waker().wake_by_ref();
                    return Poll::Pending;
                }
                // A source marked readable again by the steps, or a newly blocked
                // destination, needs another turn to arm its wait.
                let rerun = (c.readable && matches!(a, Step::Idle) && !up.done)
                    || (s.readable && matches!(b, Step::Idle) && !down.done)
                    || (c.blocked && c.out.is_none())
                    || (s.blocked && s.out.is_none())
                    || c.needs_arm()
                    || s.needs_arm();
                if progress || rerun {
                    continue;
                }
                // Nothing to do: arm the inactivity timer and sleep.
                match wait_idle(
                    &limits,
                    up.done || down.done,
                    (c.last_active, s.last_active),
                    now,
                    &mut timer,
                    &kill,
                    cx,
                ) {
                    Idle::TimedOut(end) => return Poll::Ready(end),
                    Idle::Again => continue,
                    Idle::Sleep => return Poll::Pending,
                }
            }
        })
        .await;
        match end {
            PumpEnd::ClientAborted => {
                let _ = server.set_reset_on_close();
            }
            PumpEnd::ServerAborted => {
                let _ = client.set_reset_on_close();
            }
            _ => {}
        }
        up.release(pools);
        down.release(pools);
        PumpResult {
            end,
            up: up.bytes,
            down: down.bytes,
            errno,
        }
    }
}

#[cfg(test)]
mod tests {
    //! The pump between real loopback sockets on a real ring: bytes arrive
    //! byte-exact both ways on the copy and the splice path, half-close is
    //! forwarded, a reset is told apart, and a transport that buffers reads is
    //! read until `WouldBlock` rather than trusted on a short read.

    use super::*;
    use std::io::{Read, Write};
    use std::net::{TcpListener, TcpStream};
    use std::os::fd::OwnedFd;

    fn pools() -> Pools {
        Pools {
            buffers: BufferPool::new(16384),
            pipes: PipePool::new(65536, 8),
            pipe_size: 65536,
        }
    }

    /// (the test's end, the pump's end) of one loopback connection.
    fn pair() -> (TcpStream, Socket) {
        let l = TcpListener::bind("127.0.0.1:0").unwrap();
        let a = TcpStream::connect(l.local_addr().unwrap()).unwrap();
        let (b, _) = l.accept().unwrap();
        b.set_nonblocking(true).unwrap();
        (a, Socket::from(OwnedFd::from(b)))
    }

    fn pattern(len: usize, seed: u8) -> Vec<u8> {
        (0..len)
            .map(|i| (i as u8).wrapping_mul(31).wrapping_add(seed))
            .collect()
    }

    /// Runs a pump between a client and an echo server; returns the result and
    /// what the client read back.
    fn echo_through<T: Transport + 'static>(
        wrap: impl FnOnce(Socket) -> T,
        len: usize,
        splice: bool,
    ) -> (PumpResult, Vec<u8>) {
        let (mut client, proxy_c) = pair();
        let (mut server, proxy_s) = pair();
        let echo = std::thread::spawn(move || {
            let mut buf = vec![0u8; 65536];
            loop {
                match server.read(&mut buf) {
                    Ok(0) | Err(_) => break,
                    Ok(n) => server.write_all(&buf[..n]).unwrap(),
                }
            }
            // FIN back once the client's FIN arrived.
        });
        let data = pattern(len, 7);
        let sent = data.clone();
        let writer = std::thread::spawn(move || {
            let mut c2 = client.try_clone().unwrap();
            let w = std::thread::spawn(move || {
                c2.write_all(&sent).unwrap();
                c2.shutdown(std::net::Shutdown::Write).unwrap();
            });
            let mut back = Vec::new();
            client.read_to_end(&mut back).unwrap();
            w.join().unwrap();
            back
        });
        let proxy_c = wrap(proxy_c);
        let res = crate::ring::block_on(crate::ring::RingConfig { entries: 64 }, async move {
            let limits = PumpLimits {
                splice,
                ..Default::default()
            };
            Pump::run(
                &proxy_c,
                &proxy_s,
                &pools(),
                limits,
                Rc::new(KillSwitch::default()),
            )
            .await
        })
        .unwrap();
        let back = writer.join().unwrap();
        echo.join().unwrap();
        assert_eq!(back.len(), data.len());
        assert!(back == data, "bytes differ");
        (res, back)
    }

    #[test]
    fn copies_byte_exact_both_ways_and_forwards_half_close() {
        let (res, _) = echo_through(|s| s, 3 << 20, false);
        assert_eq!(res.end, PumpEnd::Closed);
        assert_eq!((res.up, res.down), (3 << 20, 3 << 20));
        assert_eq!(res.errno, None);
    }

    #[test]
    fn splices_byte_exact_both_ways() {
        let (res, _) = echo_through(|s| s, 8 << 20, true);
        assert_eq!(res.end, PumpEnd::Closed);
        assert_eq!((res.up, res.down), (8 << 20, 8 << 20));
    }

    /// A transport that hands out at most 100 bytes per read though more is
    /// waiting, like a TLS session holding decrypted bytes: a short read must
    /// not be taken to mean the socket is drained.
    struct Trickle(Socket);

    impl Transport for Trickle {
        fn fd(&self) -> RawFd {
            self.0.as_raw_fd()
        }
        fn can_splice(&self) -> bool {
            false
        }
        fn buffers_reads(&self) -> bool {
            true
        }
        fn recv(&self, buf: &mut [u8]) -> io::Result<usize> {
            let n = buf.len().min(100);
            self.0.recv(&mut buf[..n])
        }
        fn send(&self, buf: &[u8]) -> io::Result<usize> {
            self.0.send(buf)
        }
        fn shutdown_write(&self) -> io::Result<()> {
            self.0.shutdown_write()
        }
        fn set_reset_on_close(&self) -> io::Result<()> {
            self.0.set_reset_on_close()
        }
    }

    #[test]
    fn a_buffering_transport_is_read_until_would_block_and_never_spliced() {
        let (res, _) = echo_through(Trickle, 300_000, true);
        assert_eq!(res.end, PumpEnd::Closed);
        assert_eq!((res.up, res.down), (300_000, 300_000));
    }

    /// A transport that takes everything it is given but writes at most 1000
    /// bytes per call, like TLS holding records the socket has no room for:
    /// the pump must flush it before sending FIN, or the tail is lost.
    struct Laggy {
        sock: Socket,
        held: std::cell::RefCell<Vec<u8>>,
        fin: Cell<bool>,
    }

    impl Laggy {
        fn push(&self) -> io::Result<()> {
            let mut held = self.held.borrow_mut();
            if !held.is_empty() {
                let n = held.len().min(1000);
                let sent = self.sock.send(&held[..n])?;
                held.drain(..sent);
            }
            if held.is_empty() && self.fin.get() {
                self.fin.set(false);
                self.sock.shutdown_write()?;
            }
            Ok(())
        }
    }

    impl Transport for Laggy {
        fn fd(&self) -> RawFd {
            self.sock.as_raw_fd()
        }
        fn can_splice(&self) -> bool {
            false
        }
        fn buffers_reads(&self) -> bool {
            false
        }
        fn recv(&self, buf: &mut [u8]) -> io::Result<usize> {
            self.sock.recv(buf)
        }
        fn send(&self, buf: &[u8]) -> io::Result<usize> {
            self.push()?;
            if !self.held.borrow().is_empty() {
                return Err(io::ErrorKind::WouldBlock.into());
            }
            self.held.borrow_mut().extend_from_slice(buf);
            let _ = self.push();
            Ok(buf.len())
        }
        fn shutdown_write(&self) -> io::Result<()> {
            self.fin.set(true);
            match self.push() {
                Err(e) if e.kind() == io::ErrorKind::WouldBlock => Ok(()),
                r => r,
            }
        }
        fn set_reset_on_close(&self) -> io::Result<()> {
            self.sock.set_reset_on_close()
        }
        fn has_pending_output(&self) -> bool {
            !self.held.borrow().is_empty() || self.fin.get()
        }
        fn flush(&self) -> io::Result<()> {
            self.push()
        }
    }

    #[test]
    fn a_transports_pending_output_goes_out_before_its_fin() {
        let wrap = |sock| Laggy {
            sock,
            held: Default::default(),
            fin: Cell::new(false),
        };
        let (res, _) = echo_through(wrap, 500_000, false);
        assert_eq!(res.end, PumpEnd::Closed);
        assert_eq!((res.up, res.down), (500_000, 500_000));
    }

    #[test]
    fn a_reset_server_is_told_apart_from_the_client() {
        let (client, proxy_c) = pair();
        let (server, proxy_s) = pair();
        // The server resets at once (SO_LINGER 0 then close).
        let s = Socket::from(OwnedFd::from(server));
        s.set_reset_on_close().unwrap();
        drop(s);
        let res = crate::ring::block_on(crate::ring::RingConfig { entries: 64 }, async move {
            let limits = PumpLimits::default();
            Pump::run(
                &proxy_c,
                &proxy_s,
                &pools(),
                limits,
                Rc::new(KillSwitch::default()),
            )
            .await
        })
        .unwrap();
        assert_eq!(res.end, PumpEnd::ServerAborted, "{res:?}");
        drop(client);
    }
}
