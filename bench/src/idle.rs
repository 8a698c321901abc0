//! `idle`: holds K idle connections through a proxy and reports how much the
//! proxy's resident memory grew per connection (VmRSS from /proc/PID/status).
//! Each connection first completes one echoed byte, so it is established end to
//! end (client, proxy, server) before memory is read.

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
    std::thread::sleep(o.hold);
    let after = rss(o.pid)?;
    progress.done();
    let per = after.saturating_sub(before) as f64 / o.conns.max(1) as f64;
    let mut r = Report::new("idle");
    r.text("addr", o.addr.clone())
        .int("conns", o.conns as u64)
        .int("pid", o.pid as u64)
        .int("rss_before", before)
        .int("rss_after", after)
        .float("bytes_per_conn", per);
    drop(conns);
    Ok(r)
}
