//! Log destinations, opened once by the writer thread: standard streams, files
//! (appended), and syslog over UDP or a unix datagram socket (RFC3164). A target
//! that fails to write drops that line and counts it; it never stops the writer.

use std::fs::{File, OpenOptions};
use std::io::Write;
use std::net::UdpSocket;
use std::os::unix::net::UnixDatagram;

use crate::config::model::{LogDest, LogTarget};

pub enum Sink {
    Stdout,
    Stderr,
    File(File),
    Udp(UdpSocket),
    Unix(UnixDatagram),
}

pub struct Target {
    pub sink: Sink,
    pub facility: u8,
    pub level: u8,
    pub min_level: Option<u8>,
}

impl Target {
    pub fn open(t: &LogTarget) -> std::io::Result<Target> {
        let sink = match &t.dest {
            LogDest::Stdout => Sink::Stdout,
            LogDest::Stderr => Sink::Stderr,
            LogDest::File(p) => Sink::File(OpenOptions::new().create(true).append(true).open(p)?),
            LogDest::Udp(addr) => {
                let local = if addr.is_ipv6() {
                    "[::]:0"
                } else {
                    "0.0.0.0:0"
                };
                let s = UdpSocket::bind(local)?;
                s.connect(addr)?;
                Sink::Udp(s)
            }
            LogDest::Unix(p) => {
                let s = UnixDatagram::unbound()?;
                s.connect(p)?;
                Sink::Unix(s)
            }
        };
        Ok(Target {
            sink,
            facility: t.facility,
            level: t.level,
            min_level: t.min_level,
        })
    }

    /// The level a line of `level` is sent at, or `None` if this target does not
    /// want it (less severe than its level).
    pub fn accepts(&self, level: u8) -> Option<u8> {
        if level > self.level {
            return None;
        }
        Some(match self.min_level {
            // HAProxy's minimum level caps severity: a more severe line is sent
            // at the minimum level instead.
            Some(min) if level < min => min,
            _ => level,
        })
    }

    /// Writes one line; `time` is the syslog timestamp, `host` this machine's name.
    pub fn write(
        &mut self,
        level: u8,
        time: &str,
        host: &str,
        tag: &str,
        line: &str,
    ) -> std::io::Result<()> {
        match &mut self.sink {
            Sink::Stdout => writeln!(std::io::stdout().lock(), "{time} {host} {tag}: {line}"),
            Sink::Stderr => std::io::stderr()
                .lock()
                .write_all(format!("{time} {host} {tag}: {line}\n").as_bytes()),
            Sink::File(f) => f.write_all(format!("{time} {host} {tag}: {line}\n").as_bytes()),
            Sink::Udp(s) => {
                let pri = self.facility as u32 * 8 + level as u32;
                // HAProxy ends each datagram with a line feed.
                s.send(format!("<{pri}>{time} {tag}: {line}\n").as_bytes())
                    .map(|_| ())
            }
            Sink::Unix(s) => {
                let pri = self.facility as u32 * 8 + level as u32;
                // HAProxy ends each datagram with a line feed.
                s.send(format!("<{pri}>{time} {tag}: {line}\n").as_bytes())
                    .map(|_| ())
            }
        }
    }
}
