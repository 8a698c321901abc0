//! The bench tool's own target server, so a benchmark needs nothing else:
//! `sink` reads and discards, `echo` writes back what it reads, `source` writes
//! without end. One thread and one event loop for every connection (mio, edge
//! triggered), like the servers users put behind a proxy: a thread per connection
//! would make the target, not the proxy, the cost being measured — every
//! connection a thread spawn, every request a context switch.

use std::io::{self, Read, Write};
use std::net::SocketAddr;

use mio::net::{TcpListener, TcpStream};
use mio::{Events, Interest, Poll, Token};

use slab::Slab;

#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Mode {
    Sink,
    Echo,
    Source,
}

impl Mode {
    pub fn parse(s: &str) -> Result<Mode, String> {
        match s {
            "sink" => Ok(Mode::Sink),
            "echo" => Ok(Mode::Echo),
            "source" => Ok(Mode::Source),
            _ => Err(format!("unknown serve mode \"{s}\" (sink, echo, source)")),
        }
    }
}

const LISTENER: Token = Token(usize::MAX);
const BUF: usize = 256 * 1024;

struct Conn {
    s: TcpStream,
    /// Echo bytes read but not yet written back (the peer is not reading).
    pending: Vec<u8>,
}

/// Serves forever; prints `ringlb-bench serving MODE on ADDR` to stderr once
/// listening (scripts wait for that line).
pub fn serve(listen: &str, mode: Mode) -> Result<(), String> {
    let addr: SocketAddr = listen
        .parse()
        .map_err(|e| format!("bad listen address {listen}: {e}"))?;
    let mut l = TcpListener::bind(addr).map_err(|e| format!("cannot listen on {listen}: {e}"))?;
    eprintln!(
        "ringlb-bench serving {mode:?} on {}",
        l.local_addr().map_err(|e| e.to_string())?
    );
    let mut poll = Poll::new().map_err(|e| e.to_string())?;
    poll.registry()
        .register(&mut l, LISTENER, Interest::READABLE)
        .map_err(|e| e.to_string())?;
    let mut events = Events::with_capacity(1024);
    let mut conns: Slab<Conn> = Slab::new();
    let mut buf = vec![0u8; BUF];
    loop {
        if let Err(e) = poll.poll(&mut events, None) {
            if e.kind() == io::ErrorKind::Interrupted {
                continue;
            }
            return Err(e.to_string());
        }
        for ev in events.iter() {
            if ev.token() == LISTENER {
                accept_all(&l, &poll, &mut conns, mode);
                continue;
            }
            let key = ev.token().0;
            let Some(c) = conns.get_mut(key) else {
                continue;
            };
            if drive(c, mode, &mut buf).is_err() {
                if let Some(mut c) = conns.try_remove(key) {
                    let _ = poll.registry().deregister(&mut c.s);
                }
            }
        }
    }
}

fn accept_all(l: &TcpListener, poll: &Poll, conns: &mut Slab<Conn>, mode: Mode) {
    loop {
        match l.accept() {
            Ok((mut s, _)) => {
                let _ = s.set_nodelay(true);
                let key = conns.vacant_key();
                let interest = match mode {
                    Mode::Sink => Interest::READABLE,
                    Mode::Echo => Interest::READABLE | Interest::WRITABLE,
                    Mode::Source => Interest::WRITABLE,
                };
                if poll
                    .registry()
                    .register(&mut s, Token(key), interest)
                    .is_ok()
                {
                    conns.insert(Conn {
                        s,
                        pending: Vec::new(),
                    });
                }
            }
            Err(e) if e.kind() == io::ErrorKind::WouldBlock => return,
            // Out of fds and the like: the connection stays in the backlog and the
            // next readiness edge retries.
            Err(_) => return,
        }
    }
}

/// Does everything the connection allows until the socket would block.
/// `Err` means the connection is finished (EOF or error) and must be dropped.
fn drive(c: &mut Conn, mode: Mode, buf: &mut [u8]) -> io::Result<()> {
    match mode {
        Mode::Sink => loop {
            match c.s.read(buf) {
                Ok(0) => return Err(io::ErrorKind::UnexpectedEof.into()),
                Ok(_) => {}
                Err(e) => return would_block(e),
            }
        },
        Mode::Source => loop {
            if let Err(e) = c.s.write(buf) {
                return would_block(e);
            }
        },
        Mode::Echo => loop {
            // Flush first: nothing new is read while the peer is not taking
            // what it was sent (edge triggered, so a later WRITABLE resumes).
            while !c.pending.is_empty() {
                match c.s.write(&c.pending) {
                    Ok(n) => {
                        c.pending.drain(..n);
                    }
                    Err(e) => return would_block(e),
                }
            }
            let n = match c.s.read(buf) {
                Ok(0) => return Err(io::ErrorKind::UnexpectedEof.into()),
                Ok(n) => n,
                Err(e) => return would_block(e),
            };
            match c.s.write(&buf[..n]) {
                Ok(w) => c.pending.extend_from_slice(&buf[w..n]),
                Err(e) if e.kind() == io::ErrorKind::WouldBlock => {
                    c.pending.extend_from_slice(&buf[..n])
                }
                Err(e) => return Err(e),
            }
        },
    }
}

/// `Ok` for "wait for the next edge", the error itself otherwise.
fn would_block(e: io::Error) -> io::Result<()> {
    if e.kind() == io::ErrorKind::WouldBlock {
        Ok(())
    } else {
        Err(e)
    }
}
