//! The bench tool's own target server, so a benchmark needs nothing else:
//! `sink` reads and discards, `echo` writes back what it reads, `source` writes
//! without end. One thread per connection (enough for thousands of connections).

use std::io::{Read, Write};
use std::net::{TcpListener, TcpStream};

#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Mode {
    Sink,
    Echo,
    Source,
}

impl Mode {
    pub fn parse(s: &str) -> Result<Mode, String> {
        match s {
            "sink" => Ok(Mode::Sink),
            "echo" => Ok(Mode::Echo),
            "source" => Ok(Mode::Source),
            _ => Err(format!("unknown serve mode \"{s}\" (sink, echo, source)")),
        }
    }
}

/// Serves forever; prints `ringlb-bench serving MODE on ADDR` to stderr once
/// listening (scripts wait for that line).
pub fn serve(listen: &str, mode: Mode) -> Result<(), String> {
    let l = TcpListener::bind(listen).map_err(|e| format!("cannot listen on {listen}: {e}"))?;
    eprintln!(
        "ringlb-bench serving {mode:?} on {}",
        l.local_addr().map_err(|e| e.to_string())?
    );
    for conn in l.incoming() {
        let Ok(s) = conn else { continue };
        let _ = s.set_nodelay(true);
        std::thread::spawn(move || handle(s, mode));
    }
    Ok(())
}

fn handle(mut s: TcpStream, mode: Mode) {
    let mut buf = vec![0u8; 256 * 1024];
    match mode {
        Mode::Sink => while matches!(s.read(&mut buf), Ok(n) if n > 0) {},
        Mode::Echo => loop {
            match s.read(&mut buf) {
                Ok(0) | Err(_) => break,
                Ok(n) => {
                    if s.write_all(&buf[..n]).is_err() {
                        break;
                    }
                }
            }
        },
        Mode::Source => while s.write_all(&buf).is_ok() {},
    }
}
