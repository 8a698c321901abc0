//! `connrate`: new connection, one exchange (1 byte echoed), close — connections/s
//! and latency, with `--conns` attempts in flight at once on one event loop.
//! Clients close with a reset (SO_LINGER 0) so loopback source ports are not
//! exhausted by TIME_WAIT on the client side.

use std::cell::Cell;
use std::io::{self, Read, Write};
use std::net::{SocketAddr, ToSocketAddrs};
use std::os::fd::OwnedFd;
use std::time::{Duration, Instant};

use hdrhistogram::Histogram;
use mio::net::TcpStream;
use mio::{Interest, Registry, Token};
use ringlb::sys::socket::Socket;

use crate::evloop::EventLoop;
use crate::progress::Progress;
use crate::report::Report;

pub struct Options {
    pub addr: String,
    pub concurrency: usize,
    pub duration: Duration,
}

/// One connection attempt in flight.
struct Attempt {
    s: TcpStream,
    started: Instant,
    sent: bool,
}

pub fn run(o: &Options, progress: &Progress) -> Result<Report, String> {
    let addr: SocketAddr = o
        .addr
        .to_socket_addrs()
        .map_err(|e| format!("bad address {}: {e}", o.addr))?
        .next()
        .ok_or_else(|| format!("{} resolves to nothing", o.addr))?;
    let mut ev = EventLoop::new()?;
    let mut hist =
        Histogram::<u64>::new_with_bounds(1, 60_000_000, 3).map_err(|e| e.to_string())?;
    let failed = Cell::new(0u64);
    let done = Cell::new(0u64);
    let t0 = Instant::now();
    let deadline = t0 + o.duration;
    let mut slots: Vec<Option<Attempt>> = Vec::with_capacity(o.concurrency);
    for i in 0..o.concurrency {
        slots.push(start(ev.poll.registry(), addr, i, &failed));
    }
    ev.run(
        deadline,
        || false,
        |secs| {
            progress.update(&format!(
                "connrate {secs:>4.0}s  {:>8.0} conn/s",
                done.get() as f64 / secs
            ))
        },
        |registry, e| {
            let i = e.token().0;
            let Some(slot) = slots.get_mut(i) else {
                return;
            };
            let Some(a) = slot.as_mut() else {
                return;
            };
            match step(a) {
                Ok(false) => return,
                Ok(true) => {
                    let us = a.started.elapsed().as_micros().max(1) as u64;
                    hist.record(us.min(60_000_000)).expect("within bounds");
                    done.set(done.get() + 1);
                }
                Err(_) => failed.set(failed.get() + 1),
            }
            if let Some(mut a) = slot.take() {
                let _ = registry.deregister(&mut a.s);
                // Close with a reset: no TIME_WAIT left on this side.
                let _ = Socket::from(OwnedFd::from(a.s)).set_reset_on_close();
            }
            *slot = start(registry, addr, i, &failed);
        },
    )?;
    progress.done();
    let elapsed = t0.elapsed().as_secs_f64();
    let mut r = Report::new("connrate");
    r.text("addr", o.addr.clone())
        .int("concurrency", o.concurrency as u64)
        .float("seconds", elapsed)
        .int("connections", hist.len())
        .int("failed", failed.get())
        .float("connections_per_s", hist.len() as f64 / elapsed)
        .latencies(&hist);
    Ok(r)
}

/// Opens a connection for slot `i`; a connect that fails at once is counted.
fn start(registry: &Registry, addr: SocketAddr, i: usize, failed: &Cell<u64>) -> Option<Attempt> {
    let attempt = || -> io::Result<Attempt> {
        let mut s = TcpStream::connect(addr)?;
        s.set_nodelay(true)?;
        registry.register(&mut s, Token(i), Interest::READABLE | Interest::WRITABLE)?;
        Ok(Attempt {
            s,
            started: Instant::now(),
            sent: false,
        })
    };
    match attempt() {
        Ok(a) => Some(a),
        Err(_) => {
            failed.set(failed.get() + 1);
            None
        }
    }
}

/// Advances one attempt: connected → send the byte → read it back. `Ok(true)`
/// when the exchange is complete, `Ok(false)` to wait for the next event.
fn step(a: &mut Attempt) -> io::Result<bool> {
    if !a.sent {
        // mio's rule for a non-blocking connect: on the first event, a pending
        // error means it failed; no peer address yet means it is still going.
        if let Some(e) = a.s.take_error()? {
            return Err(e);
        }
        match a.s.peer_addr() {
            Ok(_) => {}
            Err(e) if e.kind() == io::ErrorKind::NotConnected => return Ok(false),
            Err(e) => return Err(e),
        }
        match a.s.write(b"x") {
            Ok(1) => a.sent = true,
            Ok(_) => return Err(io::ErrorKind::WriteZero.into()),
            Err(e) if e.kind() == io::ErrorKind::WouldBlock => return Ok(false),
            Err(e) => return Err(e),
        }
    }
    let mut b = [0u8; 1];
    match a.s.read(&mut b) {
        Ok(1) if b[0] == b'x' => Ok(true),
        Ok(0) => Err(io::ErrorKind::UnexpectedEof.into()),
        Ok(_) => Err(io::ErrorKind::InvalidData.into()),
        Err(e) if e.kind() == io::ErrorKind::WouldBlock => Ok(false),
        Err(e) => Err(e),
    }
}
