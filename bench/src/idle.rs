//! `idle`: holds K idle connections through a proxy and reports how much the
//! proxy's resident memory grew per connection (VmRSS from /proc/PID/status), and
//! what holding them costs: the proxy's CPU time and how often its threads woke
//! up (voluntary context switches of every thread) while nothing was sent.
//! Each connection first completes one echoed byte, so it is established end to
//! end (client, proxy, server) before anything is read.

use std::io::{Read, Write};
use std::net::TcpStream;
use std::time::Duration;

use crate::progress::Progress;
use crate::report::Report;

pub struct Options {
    pub addr: String,
    pub conns: usize,
    pub pid: u32,
    pub hold: Duration,
}

/// Resident set size of `pid` in bytes.
pub fn rss(pid: u32) -> Result<u64, String> {
    let s = std::fs::read_to_string(format!("/proc/{pid}/status"))
        .map_err(|e| format!("/proc/{pid}/status: {e}"))?;
    s.lines()
        .find_map(|l| l.strip_prefix("VmRSS:"))
        .and_then(|v| v.split_whitespace().next()?.parse::<u64>().ok())
        .map(|kb| kb * 1024)
        .ok_or_else(|| format!("no VmRSS in /proc/{pid}/status"))
}

/// User plus system CPU time of `pid` in milliseconds (/proc/PID/stat counts in
/// USER_HZ, 100 per second on Linux).
fn cpu_ms(pid: u32) -> Result<u64, String> {
    let s = std::fs::read_to_string(format!("/proc/{pid}/stat"))
        .map_err(|e| format!("/proc/{pid}/stat: {e}"))?;
    // Fields after the command name, which is in parentheses and may hold spaces.
    let rest = s.rsplit_once(')').map(|(_, r)| r).unwrap_or("");
    let f: Vec<&str> = rest.split_whitespace().collect();
    let tick = |i: usize| f.get(i).and_then(|v| v.parse::<u64>().ok());
    // utime and stime are fields 14 and 15 of the line, 12 and 13 after ')'.
    match (tick(11), tick(12)) {
        (Some(u), Some(k)) => Ok((u + k) * 10),
        _ => Err(format!("cannot read CPU times from /proc/{pid}/stat")),
    }
}

/// Voluntary context switches of every thread of `pid`: each is a sleep that
/// something had to end.
fn wakeups(pid: u32) -> Result<u64, String> {
    let dir = std::fs::read_dir(format!("/proc/{pid}/task"))
        .map_err(|e| format!("/proc/{pid}/task: {e}"))?;
    let mut n = 0;
    for t in dir.flatten() {
        let Ok(s) = std::fs::read_to_string(t.path().join("status")) else {
            continue;
        };
        n += s
            .lines()
            .find_map(|l| l.strip_prefix("voluntary_ctxt_switches:"))
            .and_then(|v| v.trim().parse::<u64>().ok())
            .unwrap_or(0);
    }
    Ok(n)
}

pub fn run(o: &Options, progress: &Progress) -> Result<Report, String> {
    let _ = ringlb::sys::process::raise_nofile(o.conns as u64 * 2 + 64);
    let before = rss(o.pid)?;
    let mut conns = Vec::with_capacity(o.conns);
    for i in 0..o.conns {
        let mut s = TcpStream::connect(&o.addr).map_err(|e| format!("connection {i}: {e}"))?;
        s.set_read_timeout(Some(Duration::from_secs(10)))
            .map_err(|e| e.to_string())?;
        s.write_all(b"i").map_err(|e| e.to_string())?;
        let mut b = [0u8; 1];
        s.read_exact(&mut b)
            .map_err(|e| format!("connection {i}: {e}"))?;
        conns.push(s);
        if i % 500 == 0 {
            progress.update(&format!("idle: {i}/{} connections", o.conns));
        }
    }
    let (cpu0, woke0, t0) = (cpu_ms(o.pid)?, wakeups(o.pid)?, std::time::Instant::now());
    std::thread::sleep(o.hold);
    let (cpu1, woke1, held) = (cpu_ms(o.pid)?, wakeups(o.pid)?, t0.elapsed().as_secs_f64());
    let after = rss(o.pid)?;
    progress.done();
    let per = after.saturating_sub(before) as f64 / o.conns.max(1) as f64;
    let mut r = Report::new("idle");
    r.text("addr", o.addr.clone())
        .int("conns", o.conns as u64)
        .int("pid", o.pid as u64)
        .int("rss_before", before)
        .int("rss_after", after)
        .float("bytes_per_conn", per)
        .float("hold_seconds", held)
        .int("hold_cpu_ms", cpu1.saturating_sub(cpu0))
        .float(
            "hold_wakeups_per_s",
            woke1.saturating_sub(woke0) as f64 / held.max(1e-3),
        );
    drop(conns);
    Ok(r)
}
