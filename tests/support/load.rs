//! Load that runs through a proxy while it is reloaded: a client loop opening
//! connection after connection to a Redis behind the proxy (`PING`/`+PONG`),
//! and one long-lived connection whose every byte is checked (`ECHO`). Each
//! failure carries `ss`'s view of the listeners (a connection stuck in an
//! accept queue shows as `Recv-Q`). Used by `tests/reload.rs`.

use std::io::{Read, Write};
use std::net::TcpStream;
use std::sync::atomic::{AtomicBool, AtomicU64, Ordering};
use std::sync::{Arc, Mutex};
use std::thread::JoinHandle;
use std::time::{Duration, Instant};

use super::{pattern, wait_until};

/// A client that opens a connection, sends `PING`, expects `+PONG`, closes,
/// and again, paced at about one connection per millisecond, until stopped
/// (or two minutes, whatever happens).
pub struct ConnLoop {
    stop: Arc<AtomicBool>,
    attempts: Arc<AtomicU64>,
    /// The slowest successful connection (connect to `+PONG`), microseconds.
    slowest_us: Arc<AtomicU64>,
    failures: Arc<Mutex<Vec<String>>>,
    thread: Option<JoinHandle<()>>,
}

impl ConnLoop {
    pub fn start(port: u16) -> ConnLoop {
        let stop = Arc::new(AtomicBool::new(false));
        let attempts = Arc::new(AtomicU64::new(0));
        let failures = Arc::new(Mutex::new(Vec::new()));
        let slowest_us = Arc::new(AtomicU64::new(0));
        let (s, a, f, w) = (
            stop.clone(),
            attempts.clone(),
            failures.clone(),
            slowest_us.clone(),
        );
        let thread = std::thread::spawn(move || {
            let end = Instant::now() + Duration::from_secs(120);
            while !s.load(Ordering::SeqCst) && Instant::now() < end {
                a.fetch_add(1, Ordering::SeqCst);
                let t = Instant::now();
                let r = ping_once(port);
                if r.is_ok() {
                    w.fetch_max(t.elapsed().as_micros() as u64, Ordering::SeqCst);
                }
                if let Err(e) = r {
                    f.lock().unwrap().push(format!("{e}\n{}", sockets(port)));
                }
                std::thread::sleep(Duration::from_millis(1));
            }
        });
        ConnLoop {
            stop,
            attempts,
            slowest_us,
            failures,
            thread: Some(thread),
        }
    }

    pub fn attempts(&self) -> u64 {
        self.attempts.load(Ordering::SeqCst)
    }

    /// Waits (at most 5 s) until `n` more connections were attempted: the
    /// proof that the current process serves before the next reload.
    pub fn wait_for(&self, n: u64) {
        let target = self.attempts() + n;
        assert!(
            wait_until(Duration::from_secs(15), || self.attempts() >= target),
            "the client loop stalled; failures so far: {:?}",
            self.failures.lock().unwrap()
        );
    }

    /// (attempts, failures, slowest success in ms).
    pub fn finish(mut self) -> (u64, Vec<String>, f64) {
        self.stop.store(true, Ordering::SeqCst);
        self.thread.take().unwrap().join().unwrap();
        let failures = std::mem::take(&mut *self.failures.lock().unwrap());
        let slowest = self.slowest_us.load(Ordering::SeqCst) as f64 / 1000.0;
        (self.attempts(), failures, slowest)
    }
}

/// Who holds what on `port` (`ss`), for a failure message: a connection
/// waiting in a listener's queue shows as its `Recv-Q`.
pub fn sockets(port: u16) -> String {
    let filter = format!("( sport = :{port} )");
    std::process::Command::new("ss")
        .args(["-tlnp", &filter])
        .output()
        .map(|o| String::from_utf8_lossy(&o.stdout).into_owned())
        .unwrap_or_default()
}

pub fn ping_once(port: u16) -> Result<(), String> {
    let mut s = TcpStream::connect_timeout(
        &format!("127.0.0.1:{port}").parse().unwrap(),
        Duration::from_secs(5),
    )
    .map_err(|e| format!("connect: {e}"))?;
    s.set_read_timeout(Some(Duration::from_secs(5))).unwrap();
    s.write_all(b"PING\r\n").map_err(|e| format!("send: {e}"))?;
    let mut b = [0u8; 7];
    s.read_exact(&mut b).map_err(|e| format!("recv: {e}"))?;
    if &b != b"+PONG\r\n" {
        return Err(format!("answer {:?}", String::from_utf8_lossy(&b)));
    }
    Ok(())
}

/// One connection kept open across every reload, sending `ECHO` with
/// pseudo-random payloads and checking every reply byte for byte.
pub struct Stream {
    stop: Arc<AtomicBool>,
    bytes: Arc<AtomicU64>,
    thread: Option<JoinHandle<Result<(), String>>>,
}

impl Stream {
    pub fn start(port: u16) -> Stream {
        let stop = Arc::new(AtomicBool::new(false));
        let bytes = Arc::new(AtomicU64::new(0));
        let mut s = TcpStream::connect(("127.0.0.1", port)).unwrap();
        s.set_read_timeout(Some(Duration::from_secs(10))).unwrap();
        let (st, by) = (stop.clone(), bytes.clone());
        let thread = std::thread::spawn(move || {
            let end = Instant::now() + Duration::from_secs(120);
            let mut seed = 1u64;
            while !st.load(Ordering::SeqCst) && Instant::now() < end {
                seed += 1;
                let payload = pattern(seed, 1000 + (seed as usize * 37) % 3000);
                let mut req = format!("*2\r\n$4\r\nECHO\r\n${}\r\n", payload.len()).into_bytes();
                req.extend_from_slice(&payload);
                req.extend_from_slice(b"\r\n");
                s.write_all(&req).map_err(|e| format!("stream send: {e}"))?;
                let mut want = format!("${}\r\n", payload.len()).into_bytes();
                want.extend_from_slice(&payload);
                want.extend_from_slice(b"\r\n");
                let mut got = vec![0u8; want.len()];
                s.read_exact(&mut got).map_err(|e| {
                    format!("stream recv after {} bytes: {e}", by.load(Ordering::SeqCst))
                })?;
                if got != want {
                    return Err(format!("stream corrupted at message {seed}"));
                }
                by.fetch_add(want.len() as u64, Ordering::SeqCst);
                std::thread::sleep(Duration::from_millis(2));
            }
            Ok(())
        });
        Stream {
            stop,
            bytes,
            thread: Some(thread),
        }
    }

    pub fn finish(mut self) -> (u64, Result<(), String>) {
        self.stop.store(true, Ordering::SeqCst);
        let r = self.thread.take().unwrap().join().unwrap();
        (self.bytes.load(Ordering::SeqCst), r)
    }
}
