//! A syslog receiver on a loopback UDP port, for tests that run one
//! haproxy.cfg in both proxies and compare their log lines; and the split of
//! an `option httplog` line into fields, with the ones two runs cannot share
//! (client port, dates, measured timers, the program's tag) masked.

use std::net::UdpSocket;
use std::time::{Duration, Instant};

/// Datagrams received on 127.0.0.1:`port()`, one log line each.
pub struct Syslog {
    sock: UdpSocket,
}

impl Syslog {
    pub fn new() -> Syslog {
        let sock = UdpSocket::bind("127.0.0.1:0").unwrap();
        Syslog { sock }
    }

    pub fn port(&self) -> u16 {
        self.sock.local_addr().unwrap().port()
    }

    /// The next line that contains `needle`, waiting at most `wait` (lines
    /// without it are skipped).
    pub fn next_with(&self, needle: &str, wait: Duration) -> Option<String> {
        let end = Instant::now() + wait;
        let mut buf = [0u8; 8192];
        loop {
            let left = end.checked_duration_since(Instant::now())?;
            self.sock
                .set_read_timeout(Some(left.max(Duration::from_millis(1))))
                .unwrap();
            let Ok(n) = self.sock.recv(&mut buf) else {
                continue;
            };
            let line = String::from_utf8_lossy(&buf[..n]).trim_end().to_string();
            if line.contains(needle) {
                return Some(line);
            }
        }
    }

    /// Every line that arrives within `wait`.
    pub fn drain(&self, wait: Duration) -> Vec<String> {
        let mut out = Vec::new();
        while let Some(l) = self.next_with("", wait) {
            out.push(l);
        }
        out
    }
}

/// An RFC3164 line's fields: `<PRI>`, then the message split at spaces
/// (a quoted request line kept whole). The date and the tag
/// (`haproxy[PID]`, `ringlb[PID]`) are left out.
pub fn fields(line: &str) -> Vec<String> {
    let pri = line.split('>').next().unwrap_or("").to_string() + ">";
    let msg = line.split_once("]: ").map_or(line, |(_, m)| m);
    let (words, quoted) = match msg.find(" \"") {
        Some(i) => (&msg[..i], Some(&msg[i + 1..])),
        None => (msg, None),
    };
    let mut out = vec![pri];
    out.extend(words.split(' ').map(str::to_string));
    out.extend(quoted.map(str::to_string));
    out
}

/// The fields of an `option httplog` line ([`fields`]) with what two runs
/// legitimately differ in masked: the client port, the request date, and
/// the measured timers `%TR` and `%Ta` (`%Tw`, `%Tc` and `%Tr` are kept:
/// they say which phases happened). `%B` (index 7) is masked too unless
/// `bytes` is set.
pub fn httplog_masked(line: &str, bytes: bool) -> Vec<String> {
    let mut f = fields(line);
    if f.len() < 13 {
        return f;
    }
    if let Some((ip, _)) = f[1].rsplit_once(':') {
        f[1] = format!("{ip}:PORT");
    }
    f[2] = "[DATE]".into();
    let t: Vec<&str> = f[5].split('/').collect();
    if t.len() == 5 {
        let m = |v: &str| if v == "-1" { "-1" } else { "T" };
        f[5] = format!("{}/{}/{}/{}/{}", m(t[0]), t[1], t[2], t[3], m(t[4]));
    }
    if !bytes {
        f[7] = "BYTES".into();
    }
    f
}
