//! Listening sockets changing hands on a reload: the protocol a new process uses
//! to take over an old process's listeners (HAProxy's `stats socket ...
//! expose-fd listeners` + `-x SOCKET`), and that a master uses to give its
//! listeners to each new worker.
//!
//! The taker sends `_getsocks\n`; the giver answers with lines `L ADDR INDEX\n`,
//! each line's socket attached (`SCM_RIGHTS`, in order, at most
//! [`fdpass::MAX_FDS`] per message), then `END\n`. `INDEX` is the socket's place
//! in its address's `SO_REUSEPORT` group as the giver numbered it (shard `i`
//! holds index `i`; indexes past the shard count are extra sockets adopted
//! earlier). The taker trusts `getsockname` over the line for the address.
//!
//! Why the same sockets and not new ones: every socket in a `SO_REUSEPORT` group
//! has its own accept queue, and connections waiting in the queue of a socket
//! that is closed are reset (unless `net.ipv4.tcp_migrate_req=1` moves them).
//! A taken-over socket is never closed: its queue is served by the old process
//! until it stops accepting, and by the new one from the moment it starts.
//!
//! Depends on `sys` only; used by `run` (taker and giver), the master and the
//! binding code in `shard`.

use std::fmt;
use std::io::{self, Write};
use std::net::SocketAddr;
use std::os::fd::{AsFd, OwnedFd};
use std::os::unix::net::{UnixListener, UnixStream};
use std::path::{Path, PathBuf};
use std::sync::Arc;
use std::time::Duration;

use crate::sys::fdpass::{self, MAX_FDS};
use crate::sys::socket::Socket;

/// How long either side waits for the other.
const PATIENCE: Duration = Duration::from_secs(10);

/// One listening socket as it changes hands.
#[derive(Debug)]
pub struct Held {
    pub addr: SocketAddr,
    pub index: usize,
    pub sock: Socket,
}

#[derive(Debug)]
pub enum HandoverError {
    Connect(PathBuf, io::Error),
    Io(io::Error),
    /// The giver answered something else than listeners (e.g. "Permission
    /// denied": its socket does not expose them).
    Refused(String),
    /// Lines and descriptors do not pair up.
    Protocol(String),
}

impl fmt::Display for HandoverError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            HandoverError::Connect(p, e) => write!(f, "cannot connect to {}: {e}", p.display()),
            HandoverError::Io(e) => write!(f, "listener hand-over: {e}"),
            HandoverError::Refused(t) => write!(f, "listeners refused: {}", t.trim()),
            HandoverError::Protocol(t) => write!(f, "listener hand-over: {t}"),
        }
    }
}

impl std::error::Error for HandoverError {}

/// The socket that serves listeners beside an admin socket `admin` (the
/// control shard's runtime API cannot pass descriptors, so a small thread of
/// ours serves `_getsocks` on a sibling path).
pub fn sibling_path(admin: &Path) -> PathBuf {
    let mut p = admin.as_os_str().to_owned();
    p.push(".listeners");
    PathBuf::from(p)
}

/// Sends every socket in `held` on `conn` (the giver's answer to `_getsocks`).
pub fn give(conn: &UnixStream, held: &[Held]) -> io::Result<()> {
    for chunk in held.chunks(MAX_FDS) {
        let text: String = chunk
            .iter()
            .map(|h| format!("L {} {}\n", h.addr, h.index))
            .collect();
        let fds: Vec<_> = chunk.iter().map(|h| h.sock.as_fd()).collect();
        fdpass::send_with_fds(conn.as_fd(), text.as_bytes(), &fds, PATIENCE)?;
    }
    fdpass::send_with_fds(conn.as_fd(), b"END\n", &[], PATIENCE)
}

/// Reads one request line and answers it: `_getsocks` gets the listeners,
/// anything else an error line.
pub fn answer(conn: &UnixStream, held: &[Held]) -> io::Result<()> {
    conn.set_read_timeout(Some(PATIENCE))?;
    let mut conn = conn;
    let mut line = Vec::new();
    let mut b = [0u8; 1];
    while line.len() < 256 {
        match io::Read::read(&mut conn, &mut b)? {
            0 => break,
            _ if b[0] == b'\n' => break,
            _ => line.push(b[0]),
        }
    }
    if line.trim_ascii() == b"_getsocks" {
        give(conn, held)
    } else {
        conn.write_all(b"Unknown command: this socket only answers _getsocks\n")
    }
}

/// The listeners a process exposes, until it withdraws them.
pub struct Exposure {
    held: Arc<std::sync::Mutex<Option<Arc<Vec<Held>>>>>,
}

impl Exposure {
    /// Closes our copies once this process stops accepting: a copy kept open
    /// would keep a socket in its `SO_REUSEPORT` group that nobody accepts on,
    /// and the connections the kernel queues there would be reset when the
    /// process exits. A successor that took the sockets holds its own copies.
    pub fn withdraw(&self) {
        let taken = self.held.lock().map(|mut h| h.take());
        drop(taken);
    }
}

/// Serves `_getsocks` on a unix socket at `path` (mode 600) from a thread of
/// its own, for as long as the process lives (no listeners once withdrawn).
pub fn serve_at(path: &Path, held: Arc<Vec<Held>>) -> io::Result<Exposure> {
    let slot = Arc::new(std::sync::Mutex::new(Some(held)));
    let exposure = Exposure { held: slot.clone() };
    let _ = std::fs::remove_file(path);
    let l = UnixListener::bind(path).map_err(|e| {
        io::Error::other(format!(
            "cannot bind listeners socket {}: {e}",
            path.display()
        ))
    })?;
    use std::os::unix::fs::PermissionsExt;
    std::fs::set_permissions(path, std::fs::Permissions::from_mode(0o600))?;
    std::thread::Builder::new()
        .name("ringlb-handover".into())
        .spawn(move || {
            for conn in l.incoming().map_while(Result::ok) {
                let held = slot.lock().ok().and_then(|h| h.clone());
                let _ = answer(&conn, held.as_deref().map_or(&[], |h| h.as_slice()));
            }
        })?;
    Ok(exposure)
}

/// Takes the listeners of the process behind the socket at `path` (or its
/// `.listeners` sibling, which is what a ringlb admin socket exposes).
pub fn take_from_path(path: &Path) -> Result<Vec<Held>, HandoverError> {
    let sibling = sibling_path(path);
    let target = if sibling.exists() {
        sibling
    } else {
        path.to_path_buf()
    };
    let conn = UnixStream::connect(&target).map_err(|e| HandoverError::Connect(target, e))?;
    take(&conn)
}

/// Asks for and receives the listeners on a connected stream.
pub fn take(conn: &UnixStream) -> Result<Vec<Held>, HandoverError> {
    (&*conn)
        .write_all(b"_getsocks\n")
        .map_err(HandoverError::Io)?;
    let mut text = Vec::new();
    let mut fds: Vec<OwnedFd> = Vec::new();
    let mut buf = vec![0u8; 64 << 10];
    loop {
        let n = fdpass::recv_with_fds(conn.as_fd(), &mut buf, &mut fds, PATIENCE)
            .map_err(HandoverError::Io)?;
        text.extend_from_slice(&buf[..n]);
        if n == 0 || text.ends_with(b"END\n") || text.len() > 1 << 20 {
            break;
        }
    }
    let text = String::from_utf8_lossy(&text).into_owned();
    if !text.starts_with("L ") && !text.starts_with("END\n") {
        return Err(HandoverError::Refused(text));
    }
    if !text.ends_with("END\n") {
        return Err(HandoverError::Protocol("answer cut short".into()));
    }
    let lines: Vec<&str> = text.lines().filter(|l| l.starts_with("L ")).collect();
    if lines.len() != fds.len() {
        return Err(HandoverError::Protocol(format!(
            "{} listeners announced, {} received",
            lines.len(),
            fds.len()
        )));
    }
    let mut out = Vec::new();
    for (line, fd) in lines.into_iter().zip(fds) {
        let index = line
            .rsplit(' ')
            .next()
            .and_then(|i| i.parse().ok())
            .ok_or_else(|| HandoverError::Protocol(format!("bad line \"{line}\"")))?;
        let sock = Socket::from(fd);
        let addr = sock.local_addr().map_err(HandoverError::Io)?;
        out.push(Held { addr, index, sock });
    }
    Ok(out)
}

/// Copies of `held` for another holder (`dup`: the same kernel sockets).
pub fn duplicate(held: &[Held]) -> io::Result<Vec<Held>> {
    held.iter()
        .map(|h| {
            Ok(Held {
                addr: h.addr,
                index: h.index,
                sock: h.sock.try_clone()?,
            })
        })
        .collect()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn listeners_cross_with_their_address_and_index() {
        let a = Socket::listen(&"127.0.0.1:0".parse().unwrap(), 16).unwrap();
        let addr = a.local_addr().unwrap();
        let b = Socket::listen(&addr, 16).unwrap();
        let held = vec![
            Held {
                addr,
                index: 0,
                sock: a,
            },
            Held {
                addr,
                index: 1,
                sock: b,
            },
        ];
        let (giver, taker) = UnixStream::pair().unwrap();
        let t = std::thread::spawn(move || answer(&giver, &held));
        let got = take(&taker).unwrap();
        t.join().unwrap().unwrap();
        assert_eq!(got.len(), 2);
        assert_eq!((got[0].addr, got[0].index), (addr, 0));
        assert_eq!((got[1].addr, got[1].index), (addr, 1));
    }

    #[test]
    fn a_socket_without_listeners_is_a_clear_refusal() {
        let (giver, taker) = UnixStream::pair().unwrap();
        let t = std::thread::spawn(move || {
            let mut g = giver;
            let mut line = [0u8; 10];
            io::Read::read_exact(&mut g, &mut line).unwrap();
            g.write_all(b"Permission denied\n").unwrap();
        });
        let e = take(&taker).unwrap_err();
        t.join().unwrap();
        assert!(e.to_string().contains("Permission denied"), "{e}");
    }
}
