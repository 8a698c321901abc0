//! systemd's readiness protocol (`Type=notify`), spoken directly: datagrams like
//! `READY=1` to the unix socket named by `$NOTIFY_SOCKET` (a path, or `@name` in
//! the abstract namespace). No libsystemd. The socket is connected at startup,
//! before any `chroot`, and kept.

use std::io;
use std::os::unix::net::UnixDatagram;

pub struct Notifier {
    sock: Option<UnixDatagram>,
}

impl Notifier {
    /// Connects to `$NOTIFY_SOCKET` if it is set; a notifier without one
    /// sends nothing.
    pub fn from_env() -> io::Result<Notifier> {
        let Some(target) = std::env::var_os("NOTIFY_SOCKET") else {
            return Ok(Notifier { sock: None });
        };
        let sock = UnixDatagram::unbound()?;
        let bytes = target.as_encoded_bytes();
        if let Some(name) = bytes.strip_prefix(b"@") {
            use std::os::linux::net::SocketAddrExt;
            let addr = std::os::unix::net::SocketAddr::from_abstract_name(name)?;
            sock.connect_addr(&addr)?;
        } else {
            sock.connect(std::path::Path::new(&target))?;
        }
        Ok(Notifier { sock: Some(sock) })
    }

    /// Sends one state message (`READY=1\nSTATUS=...`); no-op without a socket.
    pub fn send(&self, state: &str) -> io::Result<()> {
        if let Some(s) = &self.sock {
            s.send(state.as_bytes())?;
        }
        Ok(())
    }
}
