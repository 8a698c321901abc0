//! `rr`: request/response with small messages over M persistent connections, like
//! a Redis or database client, against an echo server. With `--pipeline P` each
//! connection sends P requests before reading P responses. Reports requests/s and
//! latency percentiles (per request; a pipelined batch counts its latency for each).
//! Every echoed byte is checked; a connection that gets anything else, or loses
//! its peer, stops and is counted in `conn_errors`.

use std::cell::Cell;
use std::io::{self, Read, Write};
use std::time::{Duration, Instant};

use hdrhistogram::Histogram;
use mio::net::TcpStream;
use mio::{Interest, Token};

use crate::evloop::EventLoop;
use crate::progress::Progress;
use crate::report::Report;

pub struct Options {
    pub addr: String,
    pub conns: usize,
    pub duration: Duration,
    pub size: usize,
    pub pipeline: usize,
}

/// The byte every request is made of, so a response can be checked in place.
const FILL: u8 = b'r';

struct Client {
    s: TcpStream,
    to_write: usize,
    to_read: usize,
    started: Instant,
    /// Requests completed on this connection (fairness: see `per_conn_min`).
    completed: u64,
    /// Stopped: failed, or finished its last exchange after the deadline.
    stopped: bool,
}

pub fn run(o: &Options, progress: &Progress) -> Result<Report, String> {
    let pipeline = o.pipeline.max(1);
    let batch = o.size.max(1) * pipeline;
    let req = vec![FILL; batch];
    let mut rbuf = vec![0u8; batch.min(1 << 20)];
    let mut ev = EventLoop::new()?;
    let mut clients = Vec::with_capacity(o.conns);
    for i in 0..o.conns {
        let std = std::net::TcpStream::connect(&o.addr)
            .map_err(|e| format!("connect {}: {e}", o.addr))?;
        std.set_nodelay(true).map_err(|e| e.to_string())?;
        std.set_nonblocking(true).map_err(|e| e.to_string())?;
        let mut s = TcpStream::from_std(std);
        ev.poll
            .registry()
            .register(&mut s, Token(i), Interest::READABLE | Interest::WRITABLE)
            .map_err(|e| e.to_string())?;
        clients.push(Client {
            s,
            to_write: batch,
            to_read: batch,
            started: Instant::now(),
            completed: 0,
            stopped: false,
        });
    }
    let mut hist =
        Histogram::<u64>::new_with_bounds(1, 60_000_000, 3).map_err(|e| e.to_string())?;
    let requests = Cell::new(0u64);
    let errors = Cell::new(0u64);
    let stopped = Cell::new(0usize);
    let t0 = Instant::now();
    let deadline = t0 + o.duration;
    let n_clients = clients.len();
    let mut drive = |c: &mut Client, hist: &mut Histogram<u64>| {
        if c.stopped {
            return;
        }
        let r = exchange(c, &req, &mut rbuf, pipeline as u64, deadline, hist);
        match r {
            Ok(n) => {
                c.completed += n;
                requests.set(requests.get() + n);
            }
            Err(_) => {
                errors.set(errors.get() + 1);
                c.stopped = true;
            }
        }
        if c.stopped {
            stopped.set(stopped.get() + 1);
        }
    };
    // Start every client; from then on readiness drives them.
    for c in clients.iter_mut() {
        c.started = Instant::now();
        drive(c, &mut hist);
    }
    // Clients finish the exchange in flight at the deadline, so the loop runs a
    // little past it (bounded: a second at most).
    ev.run(
        deadline + Duration::from_secs(1),
        || stopped.get() == n_clients,
        |secs| {
            progress.update(&format!(
                "rr {secs:>4.0}s  {:>10.0} req/s",
                requests.get() as f64 / secs
            ))
        },
        |_, e| {
            if let Some(c) = clients.get_mut(e.token().0) {
                drive(c, &mut hist);
            }
        },
    )?;
    progress.done();
    let elapsed = t0.elapsed().as_secs_f64();
    let requests = hist.len();
    let per_conn = |f: fn(u64, u64) -> u64| clients.iter().map(|c| c.completed).reduce(f);
    let mut r = Report::new("rr");
    r.text("addr", o.addr.clone())
        .int("conns", o.conns as u64)
        .int("size", o.size as u64)
        .int("pipeline", o.pipeline as u64)
        .float("seconds", elapsed)
        .int("requests", requests)
        .float("requests_per_s", requests as f64 / elapsed)
        .int("bytes_each_way", requests * o.size as u64)
        .int("conn_errors", errors.get())
        // A proxy that serves some connections far more often than others shows
        // here before it shows in the percentiles.
        .int("per_conn_min", per_conn(u64::min).unwrap_or(0))
        .int("per_conn_max", per_conn(u64::max).unwrap_or(0))
        .latencies(&hist);
    Ok(r)
}

/// Writes and reads until the socket would block; returns the requests
/// completed. Stops the client after the first exchange that ends past the
/// deadline.
fn exchange(
    c: &mut Client,
    req: &[u8],
    rbuf: &mut [u8],
    pipeline: u64,
    deadline: Instant,
    hist: &mut Histogram<u64>,
) -> io::Result<u64> {
    let batch = req.len();
    let mut completed = 0;
    loop {
        if c.to_write > 0 {
            match c.s.write(&req[batch - c.to_write..]) {
                Ok(n) => c.to_write -= n,
                Err(e) if e.kind() == io::ErrorKind::WouldBlock => return Ok(completed),
                Err(e) => return Err(e),
            }
            continue;
        }
        let want = c.to_read.min(rbuf.len());
        match c.s.read(&mut rbuf[..want]) {
            Ok(0) => return Err(io::ErrorKind::UnexpectedEof.into()),
            Ok(n) => {
                if rbuf[..n].iter().any(|&b| b != FILL) {
                    return Err(io::ErrorKind::InvalidData.into());
                }
                c.to_read -= n;
                if c.to_read == 0 {
                    let now = Instant::now();
                    let us = now.duration_since(c.started).as_micros().max(1) as u64;
                    hist.record_n(us.min(60_000_000), pipeline)
                        .expect("within bounds");
                    completed += pipeline;
                    if now >= deadline {
                        c.stopped = true;
                        return Ok(completed);
                    }
                    c.to_write = batch;
                    c.to_read = batch;
                    c.started = now;
                }
            }
            Err(e) if e.kind() == io::ErrorKind::WouldBlock => return Ok(completed),
            Err(e) => return Err(e),
        }
    }
}
