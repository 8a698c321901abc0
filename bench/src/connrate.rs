//! `connrate`: new connection, one exchange (1 byte echoed), close — connections/s
//! and latency. Clients close with a reset (SO_LINGER 0) so loopback source ports
//! are not exhausted by TIME_WAIT on the client side.

use std::io::{Read, Write};
use std::net::TcpStream;
use std::os::fd::OwnedFd;
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::Arc;
use std::time::{Duration, Instant};

use hdrhistogram::Histogram;
use ringlb::sys::socket::Socket;

use crate::progress::Progress;
use crate::report::Report;

pub struct Options {
    pub addr: String,
    pub concurrency: usize,
    pub duration: Duration,
}

pub fn run(o: &Options, progress: &Progress) -> Result<Report, String> {
    let done = Arc::new(AtomicU64::new(0));
    let failed = Arc::new(AtomicU64::new(0));
    let deadline = Instant::now() + o.duration;
    let t0 = Instant::now();
    let threads: Vec<_> = (0..o.concurrency)
        .map(|_| {
            let (addr, done, failed) = (o.addr.clone(), done.clone(), failed.clone());
            std::thread::spawn(move || {
                let mut h =
                    Histogram::<u64>::new_with_bounds(1, 60_000_000, 3).expect("valid bounds");
                while Instant::now() < deadline {
                    let t = Instant::now();
                    match once(&addr) {
                        Ok(()) => {
                            h.record((t.elapsed().as_micros() as u64).clamp(1, 60_000_000))
                                .expect("within bounds");
                            done.fetch_add(1, Ordering::Relaxed);
                        }
                        Err(_) => {
                            failed.fetch_add(1, Ordering::Relaxed);
                        }
                    }
                }
                h
            })
        })
        .collect();
    while Instant::now() < deadline {
        std::thread::sleep(
            Duration::from_millis(500).min(deadline.saturating_duration_since(Instant::now())),
        );
        let n = done.load(Ordering::Relaxed);
        progress.update(&format!(
            "connrate {:>4.0}s  {:>8.0} conn/s",
            t0.elapsed().as_secs_f64(),
            n as f64 / t0.elapsed().as_secs_f64()
        ));
    }
    let mut hist =
        Histogram::<u64>::new_with_bounds(1, 60_000_000, 3).map_err(|e| e.to_string())?;
    for t in threads {
        hist.add(&t.join().map_err(|_| "client thread panicked".to_string())?)
            .map_err(|e| e.to_string())?;
    }
    progress.done();
    let elapsed = t0.elapsed().as_secs_f64();
    let mut r = Report::new("connrate");
    r.text("addr", o.addr.clone())
        .int("concurrency", o.concurrency as u64)
        .float("seconds", elapsed)
        .int("connections", hist.len())
        .int("failed", failed.load(Ordering::Relaxed))
        .float("connections_per_s", hist.len() as f64 / elapsed)
        .latencies(&hist);
    Ok(r)
}

fn once(addr: &str) -> std::io::Result<()> {
    let mut s = TcpStream::connect(addr)?;
    s.set_nodelay(true)?;
    s.write_all(b"x")?;
    let mut b = [0u8; 1];
    s.read_exact(&mut b)?;
    // Close with a reset: no TIME_WAIT left on this side.
    let sock = Socket::from(OwnedFd::from(s));
    sock.set_reset_on_close()?;
    Ok(())
}
