//! `handshake`: TLS handshakes per second with a rustls client, `--connections`
//! handshakes in flight at once on one event loop, so one client process can
//! keep a proxy's TLS shard busy (openssl `s_time` has one in flight).
//!
//! Each connection: TCP connect, handshake, `close_notify`, then wait for the
//! server to close. Waiting costs a round trip but makes every counted
//! handshake one the server finished too (in TLS 1.3 the client is done before
//! the server has read its Finished) and lets TLS 1.3 tickets, sent after the
//! handshake, arrive. At `--duration` no new connection starts and the ones in
//! flight finish, so the count is what the server completed. `--resume` keeps
//! the client's session cache (a TLS 1.2 ticket is reused; a TLS 1.3 one is
//! used once and replaced by the next connection's), without it every
//! handshake is full. The server's certificate is not verified (bench
//! certificates are self-signed) but its handshake signature is, as a real
//! client's would be: that is part of what a handshake costs the client.

use std::cell::Cell;
use std::io;
use std::net::{SocketAddr, ToSocketAddrs};
use std::os::fd::OwnedFd;
use std::sync::Arc;
use std::time::{Duration, Instant};

use hdrhistogram::Histogram;
use mio::net::TcpStream;
use mio::{Interest, Registry, Token};
use ringlb::sys::socket::Socket;
use rustls::client::Resumption;
use rustls::pki_types::ServerName;
use rustls::{ClientConfig, ClientConnection, HandshakeKind};

use crate::evloop::EventLoop;
use crate::progress::Progress;
use crate::report::Report;

pub struct Options {
    pub addr: String,
    pub connections: usize,
    pub duration: Duration,
    pub resume: bool,
    /// 12 or 13.
    pub version: u8,
    pub sni: String,
}

/// How long connections still in flight at `--duration` may take to finish.
const DRAIN: Duration = Duration::from_secs(10);

fn client_config(o: &Options) -> Result<Arc<ClientConfig>, String> {
    let provider = Arc::new(ringlb::tls::provider());
    let version = match o.version {
        12 => &rustls::version::TLS12,
        13 => &rustls::version::TLS13,
        v => return Err(format!("--tls: {v} (1.2 or 1.3)")),
    };
    let mut cfg = ClientConfig::builder_with_provider(provider.clone())
        .with_protocol_versions(&[version])
        .map_err(|e| e.to_string())?
        .dangerous()
        .with_custom_certificate_verifier(Arc::new(ringlb::tls::NoVerify(provider)))
        .with_no_client_auth();
    if !o.resume {
        cfg.resumption = Resumption::disabled();
    }
    Ok(Arc::new(cfg))
}

/// One handshake in flight.
struct Attempt {
    s: TcpStream,
    tls: ClientConnection,
    started: Instant,
    connected: bool,
    /// The handshake is over and `close_notify` queued: wait for the close.
    done: Option<(Duration, bool)>,
}

pub fn run(o: &Options, progress: &Progress) -> Result<Report, String> {
    let addr: SocketAddr = o
        .addr
        .to_socket_addrs()
        .map_err(|e| format!("bad address {}: {e}", o.addr))?
        .next()
        .ok_or_else(|| format!("{} resolves to nothing", o.addr))?;
    let sni = ServerName::try_from(o.sni.clone()).map_err(|_| format!("--sni {}", o.sni))?;
    let cfg = client_config(o)?;
    let mut ev = EventLoop::new()?;
    let mut hist =
        Histogram::<u64>::new_with_bounds(1, 60_000_000, 3).map_err(|e| e.to_string())?;
    let failed = Cell::new(0u64);
    let resumed = Cell::new(0u64);
    let count = Cell::new(0u64);
    let in_flight = Cell::new(0usize);
    let t0 = Instant::now();
    let stop = t0 + o.duration;
    let new = |registry: &Registry, i: usize| -> Option<Attempt> {
        let attempt = || -> Result<Attempt, String> {
            let mut s = TcpStream::connect(addr).map_err(|e| e.to_string())?;
            s.set_nodelay(true).map_err(|e| e.to_string())?;
            registry
                .register(&mut s, Token(i), Interest::READABLE | Interest::WRITABLE)
                .map_err(|e| e.to_string())?;
            let tls = ClientConnection::new(cfg.clone(), sni.clone()).map_err(|e| e.to_string())?;
            Ok(Attempt {
                s,
                tls,
                started: Instant::now(),
                connected: false,
                done: None,
            })
        };
        match attempt() {
            Ok(a) => {
                in_flight.set(in_flight.get() + 1);
                Some(a)
            }
            Err(_) => {
                failed.set(failed.get() + 1);
                None
            }
        }
    };
    let mut slots: Vec<Option<Attempt>> = Vec::with_capacity(o.connections);
    for i in 0..o.connections {
        slots.push(new(ev.poll.registry(), i));
    }
    ev.run(
        stop + DRAIN,
        || Instant::now() >= stop && in_flight.get() == 0,
        |secs| {
            progress.update(&format!(
                "handshake {secs:>4.0}s  {:>8.0} handshakes/s",
                count.get() as f64 / secs
            ))
        },
        |registry, e| {
            let i = e.token().0;
            let Some(a) = slots.get_mut(i).and_then(Option::as_mut) else {
                return;
            };
            match step(a) {
                Ok(None) => return,
                Ok(Some((took, was_resumed))) => {
                    let us = took.as_micros().max(1) as u64;
                    hist.record(us.min(60_000_000)).expect("within bounds");
                    count.set(count.get() + 1);
                    if was_resumed {
                        resumed.set(resumed.get() + 1);
                    }
                }
                Err(_) => failed.set(failed.get() + 1),
            }
            if let Some(mut a) = slots[i].take() {
                in_flight.set(in_flight.get() - 1);
                let _ = registry.deregister(&mut a.s);
                // Close with a reset: no TIME_WAIT left on this side.
                let _ = Socket::from(OwnedFd::from(a.s)).set_reset_on_close();
            }
            if Instant::now() < stop {
                slots[i] = new(registry, i);
            }
        },
    )?;
    progress.done();
    let elapsed = t0.elapsed().as_secs_f64();
    let mut r = Report::new("handshake");
    r.text("addr", o.addr.clone())
        .text("tls", if o.version == 12 { "1.2" } else { "1.3" })
        .bool("resume", o.resume)
        .int("connections", o.connections as u64)
        .float("seconds", elapsed)
        .int("handshakes", hist.len())
        .int("resumed", resumed.get())
        .int("failed", failed.get())
        .int("unfinished", in_flight.get() as u64)
        .float("handshakes_per_s", hist.len() as f64 / elapsed)
        .latencies(&hist);
    Ok(r)
}

/// Advances one connection: connect, handshake, `close_notify`, the server's
/// close. `Some((handshake time, resumed))` once the server has closed.
fn step(a: &mut Attempt) -> io::Result<Option<(Duration, bool)>> {
    if !a.connected {
        // mio's rule for a non-blocking connect: on the first event, a pending
        // error means it failed; no peer address yet means it is still going.
        if let Some(e) = a.s.take_error()? {
            return Err(e);
        }
        match a.s.peer_addr() {
            Ok(_) => a.connected = true,
            Err(e) if e.kind() == io::ErrorKind::NotConnected => return Ok(None),
            Err(e) => return Err(e),
        }
    }
    loop {
        // Edge-triggered: write until the socket is full, read until empty.
        while a.tls.wants_write() {
            match a.tls.write_tls(&mut a.s) {
                Ok(_) => {}
                Err(e) if e.kind() == io::ErrorKind::WouldBlock => break,
                Err(e) => return Err(e),
            }
        }
        if a.done.is_none() && !a.tls.is_handshaking() {
            let kind = a.tls.handshake_kind();
            a.done = Some((a.started.elapsed(), kind == Some(HandshakeKind::Resumed)));
            a.tls.send_close_notify();
            continue;
        }
        match a.tls.read_tls(&mut a.s) {
            Ok(0) => {
                return match a.done {
                    Some(d) => Ok(Some(d)),
                    None => Err(io::ErrorKind::UnexpectedEof.into()),
                }
            }
            Ok(_) => {
                let state = a.tls.process_new_packets().map_err(io::Error::other)?;
                if state.peer_has_closed() {
                    if let Some(d) = a.done {
                        return Ok(Some(d));
                    }
                }
            }
            Err(e) if e.kind() == io::ErrorKind::WouldBlock => return Ok(None),
            Err(e) => return Err(e),
        }
    }
}
