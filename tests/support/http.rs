//! HTTP peers for integration tests: the real `haproxy` (the oracle ringlb's
//! HTTP behaviour is compared with; see `servers::Haproxy`), and tiny origin
//! servers that answer a fixed response or record what they were sent.

use std::io::{Read, Write};
use std::net::{Shutdown, TcpStream};
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

/// The installed haproxy, run from a config text (one helper for every test).
#[allow(unused_imports)]
pub use super::servers::Haproxy;

/// A server that answers every request head with `200` and closes.
pub fn start_origin() -> u16 {
    start_origin_with(Arc::new(Mutex::new(
        b"HTTP/1.1 200 OK\r\nContent-Length: 2\r\nConnection: close\r\n\r\nok".to_vec(),
    )))
}

/// A server that answers every request head with the bytes in `reply` (read
/// when the head arrives) and closes.
pub fn start_origin_with(reply: Arc<Mutex<Vec<u8>>>) -> u16 {
    answer_each_head(Duration::from_millis(300), move |_| {
        reply.lock().unwrap().clone()
    })
}

/// A server that answers every request head with `reply(path)` and closes.
pub fn start_origin_by_path(reply: fn(&str) -> String) -> u16 {
    answer_each_head(Duration::from_millis(500), move |head| {
        let path = String::from_utf8_lossy(head)
            .split(' ')
            .nth(1)
            .unwrap_or("/")
            .to_string();
        reply(&path).into_bytes()
    })
}

/// A server that reads one request head per connection (giving up after
/// `read_timeout` of silence), answers `reply(head)`, closes its side and
/// reads what is left.
fn answer_each_head(
    read_timeout: Duration,
    reply: impl Fn(&[u8]) -> Vec<u8> + Send + Sync + 'static,
) -> u16 {
    let l = super::local_listener();
    let port = l.local_addr().unwrap().port();
    let reply = Arc::new(reply);
    std::thread::spawn(move || {
        for conn in l.incoming() {
            let Ok(mut s) = conn else { continue };
            let reply = reply.clone();
            std::thread::spawn(move || {
                let _ = s.set_read_timeout(Some(read_timeout));
                let mut buf = Vec::new();
                let mut chunk = [0u8; 4096];
                while !buf.windows(4).any(|w| w == b"\r\n\r\n") {
                    match s.read(&mut chunk) {
                        Ok(0) | Err(_) => return,
                        Ok(n) => buf.extend_from_slice(&chunk[..n]),
                    }
                }
                let _ = s.write_all(&reply(&buf));
                let _ = s.shutdown(Shutdown::Write);
                while matches!(s.read(&mut chunk), Ok(n) if n > 0) {}
            });
        }
    });
    port
}

/// A server that records each request head it gets and answers `204`.
pub fn start_recording_origin() -> (u16, Arc<Mutex<Vec<Vec<u8>>>>) {
    start_recording_origin_answering(b"HTTP/1.1 204 No Content\r\n\r\n", false)
}

/// A server that records each request head it gets and answers `reply`,
/// closing its side after each answer when `close` is set.
pub fn start_recording_origin_answering(
    reply: &'static [u8],
    close: bool,
) -> (u16, Arc<Mutex<Vec<Vec<u8>>>>) {
    let l = super::local_listener();
    let port = l.local_addr().unwrap().port();
    let seen = Arc::new(Mutex::new(Vec::new()));
    let log = seen.clone();
    std::thread::spawn(move || {
        for conn in l.incoming() {
            let Ok(mut s) = conn else { continue };
            let log = log.clone();
            std::thread::spawn(move || {
                let _ = s.set_read_timeout(Some(Duration::from_millis(500)));
                let mut buf = Vec::new();
                let mut chunk = [0u8; 4096];
                loop {
                    match s.read(&mut chunk) {
                        Ok(0) | Err(_) => return,
                        Ok(n) => buf.extend_from_slice(&chunk[..n]),
                    }
                    if let Some(end) = buf.windows(4).position(|w| w == b"\r\n\r\n") {
                        log.lock().unwrap().push(buf[..end + 4].to_vec());
                        buf.drain(..end + 4);
                        let _ = s.write_all(reply);
                        if close {
                            let _ = s.shutdown(Shutdown::Write);
                        }
                    }
                }
            });
        }
    });
    (port, seen)
}

/// Sends `raw` to 127.0.0.1:`port` and reads the answer until `enough` says
/// so, the peer closes, or 3 s pass; what came.
pub fn exchange_until(port: u16, raw: &[u8], enough: impl Fn(&[u8]) -> bool) -> Vec<u8> {
    let mut s = TcpStream::connect(("127.0.0.1", port)).unwrap();
    s.set_read_timeout(Some(Duration::from_secs(3))).unwrap();
    let _ = s.write_all(raw);
    let mut out = Vec::new();
    let mut chunk = [0u8; 4096];
    let end = Instant::now() + Duration::from_secs(3);
    while !enough(&out) && Instant::now() < end {
        match s.read(&mut chunk) {
            Ok(0) | Err(_) => break,
            Ok(n) => out.extend_from_slice(&chunk[..n]),
        }
    }
    out
}

/// The status haproxy answers to `raw` (0 if it closed without answering).
pub fn haproxy_status(port: u16, raw: &[u8]) -> u16 {
    let out = exchange_until(port, raw, |out| out.windows(2).any(|w| w == b"\r\n"));
    std::str::from_utf8(out.get(9..12).unwrap_or_default())
        .ok()
        .and_then(|c| c.parse().ok())
        .unwrap_or(0)
}

/// The response head haproxy sends back for `raw` (what came within 3 s).
pub fn haproxy_response_head(port: u16, raw: &[u8]) -> Vec<u8> {
    exchange_until(port, raw, |out| out.windows(4).any(|w| w == b"\r\n\r\n"))
}

/// The whole response haproxy sends for `raw`: its head and a
/// `Content-Length` body (what came within 3 s).
pub fn haproxy_response(port: u16, raw: &[u8]) -> Vec<u8> {
    exchange_until(port, raw, |out| {
        let Some(h) = out.windows(4).position(|w| w == b"\r\n\r\n") else {
            return false;
        };
        let head = String::from_utf8_lossy(&out[..h]).to_ascii_lowercase();
        let len = head
            .lines()
            .find_map(|l| l.strip_prefix("content-length: "))
            .and_then(|v| v.trim().parse::<usize>().ok())
            .unwrap_or(0);
        out.len() >= h + 4 + len
    })
}

/// What a [`KeepAliveOrigin`] does besides answering.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum OriginFault {
    None,
    /// Answers (announcing keep-alive), then closes the connection at once.
    CloseAfterResponse,
    /// Sends the head and part of the body, then closes.
    CloseMidResponse,
    /// Reads the request and closes without a byte.
    CloseBeforeResponse,
    /// Answers a connection's first request; at the second, closes without
    /// a byte (a keep-alive timeout racing with the request).
    DropSecondRequest,
}

/// An HTTP/1.1 server that counts: keep-alive, bodies by `Content-Length` or
/// chunked, `Expect: 100-continue`, WebSocket-style upgrade (101, then echo).
/// `GET /204` answers 204; a request with a body is echoed (chunked when the
/// path is `/chunked`); anything else answers the server's name.
pub struct KeepAliveOrigin {
    pub port: u16,
    pub accepted: Arc<std::sync::atomic::AtomicU64>,
    pub requests: Arc<std::sync::atomic::AtomicU64>,
}

impl KeepAliveOrigin {
    pub fn start(name: &'static str, fault: OriginFault) -> KeepAliveOrigin {
        use std::sync::atomic::{AtomicU64, Ordering};
        let l = super::local_listener();
        let port = l.local_addr().unwrap().port();
        let accepted = Arc::new(AtomicU64::new(0));
        let requests = Arc::new(AtomicU64::new(0));
        let (a, r) = (accepted.clone(), requests.clone());
        std::thread::spawn(move || {
            for conn in l.incoming() {
                let Ok(s) = conn else { continue };
                a.fetch_add(1, Ordering::SeqCst);
                let r = r.clone();
                std::thread::spawn(move || {
                    let _ = s.set_read_timeout(Some(Duration::from_secs(30)));
                    let _ = serve_origin(s, name, fault, &r);
                });
            }
        });
        KeepAliveOrigin {
            port,
            accepted,
            requests,
        }
    }

    pub fn accepted(&self) -> u64 {
        self.accepted.load(std::sync::atomic::Ordering::SeqCst)
    }

    pub fn requests(&self) -> u64 {
        self.requests.load(std::sync::atomic::Ordering::SeqCst)
    }
}

fn serve_origin(
    s: TcpStream,
    name: &str,
    fault: OriginFault,
    requests: &std::sync::atomic::AtomicU64,
) -> std::io::Result<()> {
    use std::io::BufRead;
    let mut w = s.try_clone()?;
    let mut r = std::io::BufReader::with_capacity(1 << 16, s);
    let mut nth = 0;
    loop {
        let mut head = Vec::new();
        loop {
            let mut line = Vec::new();
            if r.read_until(b'\n', &mut line)? == 0 {
                return Ok(());
            }
            let end = line == b"\r\n";
            head.extend_from_slice(&line);
            if end {
                break;
            }
        }
        nth += 1;
        if fault == OriginFault::DropSecondRequest && nth == 2 {
            return Ok(());
        }
        requests.fetch_add(1, std::sync::atomic::Ordering::SeqCst);
        let text = String::from_utf8_lossy(&head).to_ascii_lowercase();
        let path = text.split(' ').nth(1).unwrap_or("/").to_string();
        let header = |n: &str| {
            text.lines().find_map(|l| {
                l.strip_prefix(&format!("{n}:"))
                    .map(|v| v.trim().to_string())
            })
        };
        if header("upgrade").is_some() {
            w.write_all(b"HTTP/1.1 101 Switching Protocols\r\nConnection: Upgrade\r\nUpgrade: websocket\r\nSec-WebSocket-Accept: s3pPLMBiTxaQ9kYGzzhZRbK+xOo=\r\n\r\n")?;
            let mut buf = [0u8; 4096];
            loop {
                let n = match r.read(&mut buf) {
                    Err(e) if e.kind() == std::io::ErrorKind::Interrupted => continue,
                    other => other?,
                };
                if n == 0 {
                    return Ok(());
                }
                w.write_all(&buf[..n])?;
            }
        }
        if header("expect").as_deref() == Some("100-continue") {
            w.write_all(b"HTTP/1.1 100 Continue\r\n\r\n")?;
        }
        let mut body = Vec::new();
        if let Some(n) = header("content-length") {
            let n: usize = n.parse().unwrap();
            body.resize(n, 0);
            r.read_exact(&mut body)?;
        } else if header("transfer-encoding").as_deref() == Some("chunked") {
            loop {
                let mut line = String::new();
                r.read_line(&mut line)?;
                let n = usize::from_str_radix(line.trim().split(';').next().unwrap(), 16).unwrap();
                if n == 0 {
                    let mut end = String::new();
                    while end != "\r\n" {
                        end.clear();
                        r.read_line(&mut end)?;
                    }
                    break;
                }
                let at = body.len();
                body.resize(at + n, 0);
                r.read_exact(&mut body[at..])?;
                let mut crlf = [0u8; 2];
                r.read_exact(&mut crlf)?;
            }
        }
        if fault == OriginFault::CloseBeforeResponse {
            return Ok(());
        }
        let is_body = !body.is_empty() || text.starts_with("post");
        if path == "/204" {
            w.write_all(b"HTTP/1.1 204 No Content\r\n\r\n")?;
        } else if is_body && path == "/chunked" {
            w.write_all(b"HTTP/1.1 200 OK\r\nTransfer-Encoding: chunked\r\n\r\n")?;
            for part in body.chunks(100_000) {
                w.write_all(format!("{:x}\r\n", part.len()).as_bytes())?;
                w.write_all(part)?;
                w.write_all(b"\r\n")?;
            }
            w.write_all(b"0\r\n\r\n")?;
        } else {
            if !is_body {
                body = name.as_bytes().to_vec();
            }
            let head = format!(
                "HTTP/1.1 200 OK\r\nContent-Length: {}\r\nX-Server: {name}\r\n\r\n",
                body.len()
            );
            if fault == OriginFault::CloseMidResponse {
                let head = head.replace(&format!("Length: {}", body.len()), "Length: 100000");
                w.write_all(head.as_bytes())?;
                w.write_all(&[b'x'; 1000])?;
                return Ok(());
            }
            w.write_all(head.as_bytes())?;
            if !text.starts_with("head") {
                w.write_all(&body)?;
            }
        }
        if fault == OriginFault::CloseAfterResponse {
            return Ok(());
        }
    }
}
