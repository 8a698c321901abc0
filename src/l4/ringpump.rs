//! `RingPump`: forwards a TCP session on io_uring proper. Each side has one
//! multishot `recv` into the shard's provided buffers; each chunk received is
//! sent on with a `send` SQE; many sessions' receives and sends complete in one
//! `io_uring_enter`, and a message costs no syscall of its own. An idle side holds
//! no buffer (the kernel picks one only when bytes arrive).
//!
//! A direction keeps at most [`MAX_QUEUED`] chunks waiting for a slow
//! destination: beyond that its recv is cancelled (its last chunks still taken,
//! none lost) and re-armed once the queue drains. Bulk traffic (full buffers in a
//! row) and a dry buffer ring both end in a *handover*: both recvs are cancelled,
//! every byte already received is sent, and the caller continues the session on
//! the poll + splice [`Pump`](super::Pump), which needs no provided buffer.
//!
//! One task per session; both directions are the same `Dir`; the session's fate
//! is decided once, in [`RingPump::run`].

use std::collections::VecDeque;
use std::future::{poll_fn, Future};
use std::io;
use std::os::fd::AsRawFd;
use std::pin::Pin;
use std::rc::Rc;
use std::task::{Context, Poll};
use std::time::Instant;

use super::pump::{wait_idle, Idle, KillSwitch, PumpEnd, PumpLimits};
use crate::ring::{self, Chunk, Received, RecvMulti, SendChunk, Sleep};
use crate::sys::socket::Socket;

/// Chunks a direction may hold for a destination that is not keeping up.
pub const MAX_QUEUED: usize = 4;
/// Full buffers in a row after which a direction is bulk: hand over to splice.
const BULK_AFTER_FULL: u8 = 4;

/// How a ring-pumped session ended.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum RingOutcome {
    Ended(PumpEnd),
    /// Continue on the poll + splice pump: bulk traffic or no buffer left.
    /// Every byte received so far has been sent.
    Handover,
}

#[derive(Debug, Clone, Copy)]
pub struct RingResult {
    pub outcome: RingOutcome,
    pub up: u64,
    pub down: u64,
    pub errno: Option<i32>,
}

enum Failure {
    Src(io::Error),
    Dst(io::Error),
}

/// Why a direction asks to move the session to the poll + splice pump.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Want {
    Nothing,
    /// Full buffers in a row: splice would do better (if allowed).
    Bulk,
    /// The buffer ring ran dry: the poll pump needs none.
    Dry,
}

struct Dir<'a> {
    src: &'a Socket,
    dst: &'a Socket,
    recv: RecvMulti,
    queue: VecDeque<Chunk>,
    sending: Option<SendChunk>,
    /// A send that hit `EAGAIN`: the chunk and offset, waiting for POLLOUT.
    blocked: Option<(ring::PollOnce, Chunk, usize)>,
    /// Recv cancelled for backpressure; re-armed when the queue drains.
    paused: bool,
    eof: bool,
    fin_sent: bool,
    full_streak: u8,
    bytes: u64,
    src_active: Instant,
    dst_active: Instant,
}

impl<'a> Dir<'a> {
    fn new(src: &'a Socket, dst: &'a Socket, now: Instant) -> Dir<'a> {
        Dir {
            src,
            dst,
            recv: ring::recv_multi(src.as_raw_fd()),
            queue: VecDeque::new(),
            sending: None,
            blocked: None,
            paused: false,
            eof: false,
            fin_sent: false,
            full_streak: 0,
            bytes: 0,
            src_active: now,
            dst_active: now,
        }
    }

    fn drained(&self) -> bool {
        self.queue.is_empty() && self.sending.is_none() && self.blocked.is_none()
    }

    /// Moves what can move. Returns whether anything happened, or the failure.
    /// `stopping`: a handover is under way: stop receiving, flush.
    fn step(
        &mut self,
        cx: &mut Context<'_>,
        now: Instant,
        buf_size: usize,
        stopping: bool,
        want: &mut Want,
    ) -> Result<bool, Failure> {
        let dst = self.dst.as_raw_fd();
        let mut progress = false;
        loop {
            let mut moved = false;
            // 1. Sends: finish the one in flight, start the next.
            if let Some((poll, _, _)) = self.blocked.as_mut() {
                if Pin::new(poll).poll(cx).is_ready() {
                    let (_, c, off) = self.blocked.take().expect("checked");
                    self.sending = Some(ring::send_chunk(dst, c, off));
                    moved = true;
                }
            }
            if let Some(s) = self.sending.as_mut() {
                if let Poll::Ready((res, chunk, off)) = Pin::new(s).poll(cx) {
                    self.sending = None;
                    moved = true;
                    match res {
                        Ok(n) => {
                            self.dst_active = now;
                            if off + n < chunk.len() {
                                self.sending = Some(ring::send_chunk(dst, chunk, off + n));
                            }
                        }
                        Err(e) if e.kind() == io::ErrorKind::WouldBlock => {
                            self.blocked =
                                Some((ring::poll_once(dst, ring::events::OUT), chunk, off));
                        }
                        Err(e) => return Err(Failure::Dst(e)),
                    }
                }
            }
            if self.sending.is_none() && self.blocked.is_none() {
                if let Some(c) = self.queue.pop_front() {
                    let mut s = ring::send_chunk(dst, c, 0);
                    // Polled now so the SQE goes out with this round's batch.
                    match Pin::new(&mut s).poll(cx) {
                        Poll::Pending => self.sending = Some(s),
                        Poll::Ready(_) => unreachable!("a new send completes later"),
                    }
                    moved = true;
                }
            }
            // 2. Receive, unless paused for a full queue or finished.
            if !self.eof && (self.recv.is_live() || self.paused || stopping) {
                match self.recv.poll_recv(cx) {
                    Poll::Ready(Some(Ok(Received::Data(c)))) => {
                        moved = true;
                        self.src_active = now;
                        self.bytes += c.len() as u64;
                        if c.len() >= buf_size {
                            self.full_streak = self.full_streak.saturating_add(1);
                            if self.full_streak >= BULK_AFTER_FULL && *want == Want::Nothing {
                                *want = Want::Bulk;
                            }
                        } else {
                            self.full_streak = 0;
                        }
                        self.queue.push_back(c);
                    }
                    Poll::Ready(Some(Ok(Received::Eof))) => {
                        moved = true;
                        self.eof = true;
                    }
                    Poll::Ready(Some(Err(e))) if e.raw_os_error() == Some(libc::ENOBUFS) => {
                        // The ring is dry: carry on without provided buffers.
                        *want = Want::Dry;
                        self.recv.cancel();
                        moved = true;
                    }
                    Poll::Ready(Some(Err(e))) => return Err(Failure::Src(e)),
                    Poll::Ready(None) => {
                        // Cancelled and drained: re-arm once the queue empties,
                        // unless the session is moving to the other pump.
                        if self.paused && !stopping && self.drained() {
                            self.recv = ring::recv_multi(self.src.as_raw_fd());
                            self.paused = false;
                            moved = true;
                        }
                    }
                    Poll::Pending => {}
                }
            }
            if self.queue.len() >= MAX_QUEUED && self.recv.is_live() {
                self.recv.cancel();
                self.paused = true;
            }
            if stopping && self.recv.is_live() {
                self.recv.cancel();
            }
            // 3. FIN once everything before it is out.
            if self.eof && !self.fin_sent && self.drained() {
                let _ = self.dst.shutdown_write();
                self.fin_sent = true;
                moved = true;
            }
            if !moved {
                return Ok(progress);
            }
            progress = true;
        }
    }

    /// Everything received has been sent and the recv is stopped for good.
    fn quiet(&self) -> bool {
        self.drained() && (self.eof || self.recv.is_finished())
    }
}

/// Forwards one session on the ring.
pub struct RingPump;

impl RingPump {
    pub async fn run(
        client: &Socket,
        server: &Socket,
        limits: PumpLimits,
        kill: Rc<KillSwitch>,
    ) -> RingResult {
        let now = ring::now_coarse();
        let buf_size = ring::buffer_size();
        let mut up = Dir::new(client, server, now);
        let mut down = Dir::new(server, client, now);
        let mut timer: Option<Sleep> = None;
        let mut errno = None;
        let mut handing_over = false;
        let outcome = poll_fn(|cx| loop {
            if kill.is_killed() {
                return Poll::Ready(RingOutcome::Ended(PumpEnd::Killed));
            }
            let now = ring::now_coarse();
            let mut want = Want::Nothing;
            let a = up.step(cx, now, buf_size, handing_over, &mut want);
            let b = down.step(cx, now, buf_size, handing_over, &mut want);
            let fail = match (a, b) {
                (Err(Failure::Src(e)), _) | (_, Err(Failure::Dst(e))) => {
                    Some((e, PumpEnd::ClientAborted))
                }
                (Err(Failure::Dst(e)), _) | (_, Err(Failure::Src(e))) => {
                    Some((e, PumpEnd::ServerAborted))
                }
                (Ok(pa), Ok(pb)) => {
                    let go = want == Want::Dry || (want == Want::Bulk && limits.splice);
                    if go && !handing_over {
                        handing_over = true;
                        continue;
                    }
                    if up.fin_sent && down.fin_sent {
                        return Poll::Ready(RingOutcome::Ended(PumpEnd::Closed));
                    }
                    if handing_over && up.quiet() && down.quiet() {
                        return Poll::Ready(RingOutcome::Handover);
                    }
                    if pa || pb {
                        continue;
                    }
                    None
                }
            };
            if let Some((e, who)) = fail {
                errno = e.raw_os_error();
                return Poll::Ready(RingOutcome::Ended(who));
            }
            // Idle: arm the inactivity timer, as the poll pump does.
            let client_last = up.src_active.max(down.dst_active);
            let server_last = down.src_active.max(up.dst_active);
            match wait_idle(
                &limits,
                up.fin_sent || down.fin_sent,
                (client_last, server_last),
                now,
                &mut timer,
                &kill,
                cx,
            ) {
                Idle::TimedOut(end) => return Poll::Ready(RingOutcome::Ended(end)),
                Idle::Again => continue,
                Idle::Sleep => return Poll::Pending,
            }
        })
        .await;
        match outcome {
            RingOutcome::Ended(PumpEnd::ClientAborted) => {
                let _ = server.set_reset_on_close();
            }
            RingOutcome::Ended(PumpEnd::ServerAborted) => {
                let _ = client.set_reset_on_close();
            }
            _ => {}
        }
        RingResult {
            outcome,
            up: up.bytes,
            down: down.bytes,
            errno,
        }
    }
}

#[cfg(test)]
mod tests {
    //! The ring pump between real loopback sockets: small and large transfers
    //! byte-exact both ways, backpressure without loss, and the handovers (bulk
    //! with splice allowed, a dry buffer ring) continued on the poll pump with
    //! nothing lost or duplicated.

    use super::*;
    use crate::l4::{BufferPool, PipePool, Pools, Pump};
    use std::io::{Read, Write};
    use std::net::{TcpListener, TcpStream};
    use std::os::fd::OwnedFd;

    fn pair() -> (TcpStream, Socket) {
        let l = TcpListener::bind("127.0.0.1:0").unwrap();
        let a = TcpStream::connect(l.local_addr().unwrap()).unwrap();
        let (b, _) = l.accept().unwrap();
        b.set_nonblocking(true).unwrap();
        (a, Socket::from(OwnedFd::from(b)))
    }

    /// Echo `len` bytes through the ring pump (then the poll pump if handed
    /// over); returns the ring pump's outcome and the total bytes each way.
    fn echo(len: usize, splice: bool, buffers: u16, chunk: usize) -> (RingOutcome, u64, u64) {
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
        });
        let data: Vec<u8> = (0..len).map(|i| (i % 251) as u8).collect();
        let sent = data.clone();
        let client_side = std::thread::spawn(move || {
            let mut w = client.try_clone().unwrap();
            let t = std::thread::spawn(move || {
                for part in sent.chunks(chunk) {
                    w.write_all(part).unwrap();
                }
                w.shutdown(std::net::Shutdown::Write).unwrap();
            });
            let mut back = Vec::new();
            client.read_to_end(&mut back).unwrap();
            t.join().unwrap();
            back
        });
        let (outcome, up, down) =
            crate::ring::block_on(crate::ring::RingConfig { entries: 256 }, async move {
                crate::ring::setup_buffers(buffers, 16384).unwrap();
                let limits = PumpLimits {
                    splice,
                    ..Default::default()
                };
                let kill = Rc::new(KillSwitch::default());
                let r = RingPump::run(&proxy_c, &proxy_s, limits, kill.clone()).await;
                let (mut up, mut down) = (r.up, r.down);
                if r.outcome == RingOutcome::Handover {
                    let pools = Pools {
                        buffers: BufferPool::new(16384),
                        pipes: PipePool::new(65536, 8),
                        pipe_size: 65536,
                    };
                    let p = Pump::run(&proxy_c, &proxy_s, &pools, limits, kill).await;
                    assert_eq!(p.end, PumpEnd::Closed, "{p:?}");
                    up += p.up;
                    down += p.down;
                }
                (r.outcome, up, down)
            })
            .unwrap();
        let back = client_side.join().unwrap();
        echo.join().unwrap();
        assert_eq!(back.len(), data.len());
        assert!(back == data, "bytes differ");
        (outcome, up, down)
    }

    #[test]
    fn request_response_stays_on_the_ring_byte_exact() {
        let (mut client, proxy_c) = pair();
        let (mut server, proxy_s) = pair();
        let echo = std::thread::spawn(move || {
            let mut buf = vec![0u8; 4096];
            loop {
                match server.read(&mut buf) {
                    Ok(0) | Err(_) => break,
                    Ok(n) => server.write_all(&buf[..n]).unwrap(),
                }
            }
        });
        let talk = std::thread::spawn(move || {
            for i in 0..2000u32 {
                let msg = [(i % 251) as u8; 100];
                client.write_all(&msg).unwrap();
                let mut back = [0u8; 100];
                client.read_exact(&mut back).unwrap();
                assert_eq!(back, msg);
            }
            client.shutdown(std::net::Shutdown::Write).unwrap();
            let mut rest = Vec::new();
            client.read_to_end(&mut rest).unwrap();
            assert!(rest.is_empty());
        });
        let r = crate::ring::block_on(crate::ring::RingConfig { entries: 256 }, async move {
            crate::ring::setup_buffers(64, 16384).unwrap();
            let limits = PumpLimits {
                splice: true,
                ..Default::default()
            };
            RingPump::run(&proxy_c, &proxy_s, limits, Rc::new(KillSwitch::default())).await
        })
        .unwrap();
        talk.join().unwrap();
        echo.join().unwrap();
        assert_eq!(r.outcome, RingOutcome::Ended(PumpEnd::Closed));
        assert_eq!((r.up, r.down), (200_000, 200_000));
    }

    #[test]
    fn a_stream_of_small_writes_is_byte_exact_whichever_pump_ends_it() {
        // Small writes may coalesce into full buffers (then: handover).
        for _ in 0..5 {
            let (_, up, down) = echo(200_000, true, 64, 100);
            assert_eq!((up, down), (200_000, 200_000));
        }
    }

    #[test]
    fn without_splice_bulk_stays_on_the_ring_with_backpressure() {
        let (o, up, down) = echo(16 << 20, false, 256, 1 << 20);
        assert_eq!(o, RingOutcome::Ended(PumpEnd::Closed));
        assert_eq!((up, down), (16 << 20, 16 << 20));
    }

    #[test]
    fn bulk_hands_over_to_splice_losing_nothing() {
        let (o, up, down) = echo(16 << 20, true, 256, 1 << 20);
        assert_eq!(o, RingOutcome::Handover);
        assert_eq!((up, down), (16 << 20, 16 << 20));
    }

    #[test]
    fn a_dry_ring_hands_over_losing_nothing() {
        // Two buffers for two directions and a big stream: the ring runs dry.
        let (o, up, down) = echo(4 << 20, false, 2, 1 << 20);
        assert_eq!(o, RingOutcome::Handover);
        assert_eq!((up, down), (4 << 20, 4 << 20));
    }
}
