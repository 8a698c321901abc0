//! `throughput`: N parallel streams for D seconds; Gbit/s each way, sampled every
//! second, and whether a target rate (`--target 10gbit`) was sustained.
//! `up` sends to a sink, `down` reads from a source, `both` sends to an echo
//! server and reads everything back (then bytes up == bytes down, exactly).

use std::io::{Read, Write};
use std::net::{Shutdown, TcpStream};
use std::sync::atomic::{AtomicBool, AtomicU64, Ordering};
use std::sync::Arc;
use std::time::{Duration, Instant};

use crate::progress::Progress;
use crate::report::Report;

#[derive(Clone, Copy, PartialEq, Eq, Debug)]
pub enum Direction {
    Up,
    Down,
    Both,
}

pub struct Options {
    pub addr: String,
    pub streams: usize,
    pub duration: Duration,
    pub direction: Direction,
    /// Target rate in Gbit/s (each way measured separately).
    pub target_gbit: Option<f64>,
}

const CHUNK: usize = 256 * 1024;

pub fn run(o: &Options, progress: &Progress) -> Result<Report, String> {
    let up = Arc::new(AtomicU64::new(0));
    let down = Arc::new(AtomicU64::new(0));
    let stop = Arc::new(AtomicBool::new(false));
    let mut threads = Vec::new();
    for _ in 0..o.streams {
        let s = TcpStream::connect(&o.addr).map_err(|e| format!("connect {}: {e}", o.addr))?;
        let _ = s.set_nodelay(true);
        let (up, down, stop, dir) = (up.clone(), down.clone(), stop.clone(), o.direction);
        threads.push(std::thread::spawn(move || {
            stream(s, dir, &up, &down, &stop)
        }));
    }
    let t0 = Instant::now();
    let mut samples: Vec<(f64, f64)> = Vec::new();
    let (mut last_up, mut last_down, mut last_t) = (0u64, 0u64, t0);
    while t0.elapsed() < o.duration {
        std::thread::sleep(
            Duration::from_secs(1)
                .min(o.duration.saturating_sub(t0.elapsed()))
                .max(Duration::from_millis(10)),
        );
        let (u, d, now) = (
            up.load(Ordering::Relaxed),
            down.load(Ordering::Relaxed),
            Instant::now(),
        );
        let secs = now.duration_since(last_t).as_secs_f64();
        let s = (gbit(u - last_up, secs), gbit(d - last_down, secs));
        progress.update(&format!(
            "throughput {:>4.0}s  up {:6.2} Gbit/s  down {:6.2} Gbit/s",
            t0.elapsed().as_secs_f64(),
            s.0,
            s.1
        ));
        samples.push(s);
        (last_up, last_down, last_t) = (u, d, now);
    }
    stop.store(true, Ordering::Relaxed);
    let elapsed = t0.elapsed().as_secs_f64();
    let mut errors = 0u64;
    for t in threads {
        if !matches!(t.join(), Ok(Ok(()))) {
            errors += 1;
        }
    }
    progress.done();
    let (u, d) = (up.load(Ordering::Relaxed), down.load(Ordering::Relaxed));
    let mut r = Report::new("throughput");
    r.text("addr", o.addr.clone())
        .int("streams", o.streams as u64)
        .text("direction", format!("{:?}", o.direction).to_lowercase())
        .float("seconds", elapsed)
        .int("bytes_up", u)
        .int("bytes_down", d)
        .float("gbit_up", gbit(u, elapsed))
        .float("gbit_down", gbit(d, elapsed))
        .int("stream_errors", errors);
    if let Some(target) = o.target_gbit {
        let measured = |s: &(f64, f64)| match o.direction {
            Direction::Down => s.1,
            _ => s.0,
        };
        let at_target = samples.iter().filter(|s| measured(s) >= target).count();
        let longest = samples.iter().fold((0usize, 0usize), |(best, run), s| {
            let run = if measured(s) >= target { run + 1 } else { 0 };
            (best.max(run), run)
        });
        r.float("target_gbit", target)
            .bool(
                "target_sustained",
                !samples.is_empty() && at_target == samples.len(),
            )
            .int("seconds_at_target", at_target as u64)
            .int("longest_run_at_target_s", longest.0 as u64);
    }
    Ok(r)
}

fn gbit(bytes: u64, secs: f64) -> f64 {
    if secs <= 0.0 {
        0.0
    } else {
        bytes as f64 * 8.0 / secs / 1e9
    }
}

fn stream(
    s: TcpStream,
    dir: Direction,
    up: &AtomicU64,
    down: &AtomicU64,
    stop: &AtomicBool,
) -> std::io::Result<()> {
    let payload = vec![0x5au8; CHUNK];
    match dir {
        Direction::Up => {
            let mut s = s;
            while !stop.load(Ordering::Relaxed) {
                s.write_all(&payload)?;
                up.fetch_add(CHUNK as u64, Ordering::Relaxed);
            }
            s.shutdown(Shutdown::Write)?;
            let mut b = [0u8; 64];
            while s.read(&mut b)? > 0 {}
        }
        Direction::Down => {
            let mut s = s;
            let mut buf = vec![0u8; CHUNK];
            while !stop.load(Ordering::Relaxed) {
                let n = s.read(&mut buf)?;
                if n == 0 {
                    break;
                }
                down.fetch_add(n as u64, Ordering::Relaxed);
            }
        }
        Direction::Both => {
            let mut w = s.try_clone()?;
            let mut r = s;
            std::thread::scope(|sc| -> std::io::Result<()> {
                let reader = sc.spawn(move || -> std::io::Result<()> {
                    let mut buf = vec![0u8; CHUNK];
                    loop {
                        let n = r.read(&mut buf)?;
                        if n == 0 {
                            return Ok(());
                        }
                        down.fetch_add(n as u64, Ordering::Relaxed);
                    }
                });
                while !stop.load(Ordering::Relaxed) {
                    w.write_all(&payload)?;
                    up.fetch_add(CHUNK as u64, Ordering::Relaxed);
                }
                w.shutdown(Shutdown::Write)?;
                reader.join().unwrap_or(Ok(()))
            })?;
        }
    }
    Ok(())
}
