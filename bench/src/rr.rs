//! `rr`: request/response with small messages over M persistent connections, like
//! a Redis or database client, against an echo server. With `--pipeline P` each
//! connection sends P requests before reading P responses. Reports requests/s and
//! latency percentiles (per request; a pipelined batch counts its latency for each).

use std::io::{Read, Write};
use std::net::TcpStream;
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::Arc;
use std::time::{Duration, Instant};

use hdrhistogram::Histogram;

use crate::progress::Progress;
use crate::report::Report;

pub struct Options {
    pub addr: String,
    pub conns: usize,
    pub duration: Duration,
    pub size: usize,
    pub pipeline: usize,
}

pub fn run(o: &Options, progress: &Progress) -> Result<Report, String> {
    let done = Arc::new(AtomicU64::new(0));
    let deadline = Instant::now() + o.duration;
    let mut threads = Vec::new();
    for _ in 0..o.conns {
        let s = TcpStream::connect(&o.addr).map_err(|e| format!("connect {}: {e}", o.addr))?;
        s.set_nodelay(true).map_err(|e| e.to_string())?;
        let (done, size, pipeline) = (done.clone(), o.size.max(1), o.pipeline.max(1));
        threads.push(std::thread::spawn(move || {
            client(s, size, pipeline, deadline, &done)
        }));
    }
    let t0 = Instant::now();
    while Instant::now() < deadline {
        std::thread::sleep(
            Duration::from_millis(500).min(deadline.saturating_duration_since(Instant::now())),
        );
        let n = done.load(Ordering::Relaxed);
        progress.update(&format!(
            "rr {:>4.0}s  {:>10.0} req/s",
            t0.elapsed().as_secs_f64(),
            n as f64 / t0.elapsed().as_secs_f64()
        ));
    }
    let mut hist =
        Histogram::<u64>::new_with_bounds(1, 60_000_000, 3).map_err(|e| e.to_string())?;
    let mut errors = 0u64;
    for t in threads {
        match t.join() {
            Ok(Ok(h)) => hist.add(&h).map_err(|e| e.to_string())?,
            _ => errors += 1,
        }
    }
    progress.done();
    let elapsed = t0.elapsed().as_secs_f64();
    let requests = hist.len();
    let mut r = Report::new("rr");
    r.text("addr", o.addr.clone())
        .int("conns", o.conns as u64)
        .int("size", o.size as u64)
        .int("pipeline", o.pipeline as u64)
        .float("seconds", elapsed)
        .int("requests", requests)
        .float("requests_per_s", requests as f64 / elapsed)
        .int("bytes_each_way", requests * o.size as u64)
        .int("conn_errors", errors)
        .latencies(&hist);
    Ok(r)
}

fn client(
    mut s: TcpStream,
    size: usize,
    pipeline: usize,
    deadline: Instant,
    done: &AtomicU64,
) -> std::io::Result<Histogram<u64>> {
    let mut h = Histogram::<u64>::new_with_bounds(1, 60_000_000, 3).expect("valid bounds");
    let req = vec![b'r'; size * pipeline];
    let mut resp = vec![0u8; size * pipeline];
    while Instant::now() < deadline {
        let t = Instant::now();
        s.write_all(&req)?;
        s.read_exact(&mut resp)?;
        let us = t.elapsed().as_micros().max(1) as u64;
        h.record_n(us.min(60_000_000), pipeline as u64)
            .expect("within bounds");
        done.fetch_add(pipeline as u64, Ordering::Relaxed);
    }
    Ok(h)
}
