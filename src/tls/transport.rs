//! [`TlsTransport`]: a server-side TLS session over a non-blocking client
//! socket, as an [`l4::Transport`] for the pump. Records are read and written
//! with plain `recv`/`send` on the socket; readiness comes from the ring (the
//! pump's polls, and [`handshake`]'s), so a TLS session never blocks a shard.

use std::cell::{Cell, RefCell};
use std::io::{self, Read, Write};
use std::os::fd::{AsRawFd, RawFd};
use std::sync::Arc;
use std::time::Instant;

use rustls::pki_types::ServerName;
use rustls::{ClientConfig, ClientConnection, Connection, ServerConfig, ServerConnection};

use super::info::{self, TlsInfo};
use crate::l4::Transport;
use crate::ring::{self, events};
use crate::sys::socket::Socket;

/// `io::Read`/`io::Write` over a borrowed socket, for rustls' `read_tls`/`write_tls`.
struct Io<'a>(&'a Socket);

impl Read for Io<'_> {
    fn read(&mut self, buf: &mut [u8]) -> io::Result<usize> {
        self.0.recv(buf)
    }
}

impl Write for Io<'_> {
    fn write(&mut self, buf: &[u8]) -> io::Result<usize> {
        self.0.send(buf)
    }
    fn flush(&mut self) -> io::Result<()> {
        Ok(())
    }
}

/// Why a handshake failed.
#[derive(Debug)]
pub enum HandshakeError {
    /// `timeout client` expired first.
    Timeout,
    /// The client closed or reset before finishing.
    Closed,
    /// Not TLS, or TLS we refuse (no common version or suite, bad record).
    Protocol(rustls::Error),
    Io(io::Error),
}

impl std::fmt::Display for HandshakeError {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        match self {
            HandshakeError::Timeout => write!(f, "timeout during SSL handshake"),
            HandshakeError::Closed => write!(f, "connection closed during SSL handshake"),
            HandshakeError::Protocol(e) => write!(f, "SSL handshake failure: {e}"),
            HandshakeError::Io(e) => write!(f, "SSL handshake failure: {e}"),
        }
    }
}

pub struct TlsTransport {
    sock: Socket,
    conn: RefCell<Connection>,
    /// The socket returned EOF: no more records will come.
    eof: Cell<bool>,
    /// `shutdown(SHUT_WR)` waits for the queued records (close_notify) to go out.
    shut_pending: Cell<bool>,
}

impl TlsTransport {
    pub fn socket(&self) -> &Socket {
        &self.sock
    }

    /// The SNI the client sent, if any.
    pub fn sni(&self) -> Option<String> {
        match &*self.conn.borrow() {
            Connection::Server(c) => c.server_name().map(String::from),
            Connection::Client(_) => None,
        }
    }

    /// The connection's facts for rules and logs (after the handshake);
    /// `auth`: the bind's client-certificate policy, for `ssl_c_verify`.
    pub fn info(&self, auth: Option<&super::ClientAuth>) -> TlsInfo {
        let conn = self.conn.borrow();
        let client_cert = match (&*conn, auth) {
            (Connection::Server(c), Some(auth)) => c
                .peer_certificates()
                .and_then(|chain| info::ClientCert::new(chain, auth.verify_code(chain))),
            _ => None,
        };
        TlsInfo {
            client_cert,
            alpn: conn
                .alpn_protocol()
                .map(|p| String::from_utf8_lossy(p).into()),
            resumed: conn.handshake_kind() == Some(rustls::HandshakeKind::Resumed),
            sni: self.sni().map(String::into_boxed_str),
            version: conn.protocol_version().map_or("", info::version_name),
            cipher: conn
                .negotiated_cipher_suite()
                .map_or("", |s| info::cipher_name(s.suite())),
        }
    }

    /// Writes queued records until done or the socket is full.
    fn write_out(&self) -> io::Result<()> {
        let mut conn = self.conn.borrow_mut();
        while conn.wants_write() {
            conn.write_tls(&mut Io(&self.sock))?;
        }
        drop(conn);
        if self.shut_pending.get() {
            self.shut_pending.set(false);
            self.sock.shutdown_write()?;
        }
        Ok(())
    }
}

/// Runs the server side of a handshake on `sock` until it completes, fails or
/// `deadline` passes; the session's first application bytes may already be
/// buffered in the returned transport.
pub async fn handshake(
    config: Arc<ServerConfig>,
    sock: Socket,
    deadline: Option<Instant>,
) -> Result<TlsTransport, (Socket, HandshakeError)> {
    match ServerConnection::new(config) {
        Ok(c) => run_handshake(Connection::Server(c), sock, deadline).await,
        Err(e) => Err((sock, HandshakeError::Protocol(e))),
    }
}

/// Runs the client side of a handshake with a server on `sock` (connected),
/// sending `sni` (none: the server's address is the name, and no SNI is sent).
pub async fn connect(
    config: Arc<ClientConfig>,
    sni: Option<ServerName<'static>>,
    sock: Socket,
    deadline: Option<Instant>,
) -> Result<TlsTransport, (Socket, HandshakeError)> {
    let name = match sni {
        Some(n) => n,
        None => match sock.peer_addr() {
            Ok(a) => ServerName::IpAddress(a.ip().into()),
            Err(e) => return Err((sock, HandshakeError::Io(e))),
        },
    };
    match ClientConnection::new(config, name) {
        Ok(c) => run_handshake(Connection::Client(c), sock, deadline).await,
        Err(e) => Err((sock, HandshakeError::Protocol(e))),
    }
}

async fn run_handshake(
    conn: Connection,
    sock: Socket,
    deadline: Option<Instant>,
) -> Result<TlsTransport, (Socket, HandshakeError)> {
    let t = TlsTransport {
        sock,
        conn: RefCell::new(conn),
        eof: Cell::new(false),
        shut_pending: Cell::new(false),
    };
    match ring::with_deadline(deadline, drive(&t)).await {
        Some(Ok(())) => Ok(t),
        Some(Err(e)) => Err((t.sock, e)),
        None => Err((t.sock, HandshakeError::Timeout)),
    }
}

async fn drive(t: &TlsTransport) -> Result<(), HandshakeError> {
    let fd = t.sock.as_raw_fd();
    loop {
        // Flush what rustls has to say (the server flight, or an alert).
        loop {
            let r = {
                let mut conn = t.conn.borrow_mut();
                if !conn.wants_write() {
                    break;
                }
                conn.write_tls(&mut Io(&t.sock))
            };
            match r {
                Ok(_) => {}
                Err(e) if e.kind() == io::ErrorKind::WouldBlock => {
                    ring::poll_once(fd, events::OUT)
                        .await
                        .map_err(HandshakeError::Io)?;
                }
                Err(e) => return Err(HandshakeError::Io(e)),
            }
        }
        if !t.conn.borrow().is_handshaking() {
            return Ok(());
        }
        let r = t.conn.borrow_mut().read_tls(&mut Io(&t.sock));
        match r {
            Ok(0) => return Err(HandshakeError::Closed),
            Ok(_) => {
                let p = t.conn.borrow_mut().process_new_packets().map(|_| ());
                if let Err(e) = p {
                    // Best effort: tell the client why (an alert), then close.
                    let _ = t.write_out();
                    return Err(HandshakeError::Protocol(e));
                }
            }
            Err(e) if e.kind() == io::ErrorKind::WouldBlock => {
                ring::poll_once(fd, events::IN | events::RDHUP)
                    .await
                    .map_err(HandshakeError::Io)?;
            }
            Err(e) => return Err(HandshakeError::Io(e)),
        }
    }
}

impl Transport for TlsTransport {
    fn fd(&self) -> RawFd {
        self.sock.as_raw_fd()
    }
    fn can_splice(&self) -> bool {
        false
    }
    fn buffers_reads(&self) -> bool {
        true
    }

    fn recv(&self, buf: &mut [u8]) -> io::Result<usize> {
        loop {
            {
                let mut conn = self.conn.borrow_mut();
                match conn.reader().read(buf) {
                    Ok(n) => return Ok(n),
                    Err(e) if e.kind() == io::ErrorKind::WouldBlock => {}
                    // TCP EOF without close_notify: most clients end so.
                    Err(e) if e.kind() == io::ErrorKind::UnexpectedEof => return Ok(0),
                    Err(e) => return Err(e),
                }
                if self.eof.get() {
                    return Ok(0);
                }
                if conn.read_tls(&mut Io(&self.sock))? == 0 {
                    self.eof.set(true);
                }
                if let Err(e) = conn.process_new_packets() {
                    drop(conn);
                    let _ = self.write_out();
                    return Err(io::Error::new(io::ErrorKind::InvalidData, e));
                }
            }
            // Anything rustls must answer (a key update, an alert) goes out
            // now or through the pump's `flush`.
            if self.conn.borrow().wants_write() {
                match self.write_out() {
                    Ok(()) => {}
                    Err(e) if e.kind() == io::ErrorKind::WouldBlock => {}
                    Err(e) => return Err(e),
                }
            }
        }
    }

    fn send(&self, buf: &[u8]) -> io::Result<usize> {
        self.write_out()?;
        if self.conn.borrow().wants_write() {
            return Err(io::ErrorKind::WouldBlock.into());
        }
        let n = self.conn.borrow_mut().writer().write(buf)?;
        if n == 0 && !buf.is_empty() {
            return Err(io::ErrorKind::WouldBlock.into());
        }
        match self.write_out() {
            Ok(()) => {}
            // The rest goes out through `flush` once the socket has room.
            Err(e) if e.kind() == io::ErrorKind::WouldBlock => {}
            Err(e) => return Err(e),
        }
        Ok(n)
    }

    fn shutdown_write(&self) -> io::Result<()> {
        self.conn.borrow_mut().send_close_notify();
        self.shut_pending.set(true);
        match self.write_out() {
            Err(e) if e.kind() == io::ErrorKind::WouldBlock => Ok(()),
            r => r,
        }
    }

    fn set_reset_on_close(&self) -> io::Result<()> {
        self.sock.set_reset_on_close()
    }

    fn has_pending_output(&self) -> bool {
        self.shut_pending.get() || self.conn.borrow().wants_write()
    }

    fn flush(&self) -> io::Result<()> {
        self.write_out()
    }

    fn has_buffered_input(&self) -> bool {
        // Processing with nothing new read only reports the state. A
        // close_notify already read (with the client's Finished, say) is input
        // too: the socket will not become readable again to report it.
        self.eof.get()
            || self
                .conn
                .borrow_mut()
                .process_new_packets()
                .is_ok_and(|s| s.plaintext_bytes_to_read() > 0 || s.peer_has_closed())
    }
}

#[cfg(test)]
mod tests {
    //! The transport against an in-process rustls client on loopback: the
    //! handshake runs on a real ring, and output the socket has no room for is
    //! held, reported and flushed, close_notify and FIN last.

    use super::*;
    use rustls::{ClientConfig, ClientConnection};
    use std::net::{TcpListener, TcpStream};
    use std::os::fd::OwnedFd;

    fn server_config() -> Arc<ServerConfig> {
        let dir = std::env::temp_dir().join(format!("ringlb-tls-unit-{}", std::process::id()));
        std::fs::create_dir_all(&dir).unwrap();
        let f = dir.join("unit.pem");
        std::fs::write(&f, include_str!("testdata/unit.pem")).unwrap();
        let b = crate::tls::build(crate::tls::TlsOptions {
            crt: vec![f],
            ..Default::default()
        })
        .unwrap();
        b.server.clone()
    }

    #[test]
    fn held_records_are_reported_and_flushed_before_close_notify_and_fin() {
        let l = TcpListener::bind("127.0.0.1:0").unwrap();
        let addr = l.local_addr().unwrap();
        let (go_tx, go_rx) = std::sync::mpsc::channel::<()>();
        let len = 64 << 20;
        let client = std::thread::spawn(move || {
            // `verify none` as toward servers: the record flow is what is tested.
            let provider = Arc::new(crate::tls::provider());
            let cfg = ClientConfig::builder_with_provider(provider.clone())
                .with_safe_default_protocol_versions()
                .unwrap()
                .dangerous()
                .with_custom_certificate_verifier(Arc::new(crate::tls::NoVerify(provider)))
                .with_no_client_auth();
            let conn =
                ClientConnection::new(Arc::new(cfg), "unit.test".try_into().unwrap()).unwrap();
            let sock = TcpStream::connect(addr).unwrap();
            let mut tls = rustls::StreamOwned::new(conn, sock);
            tls.write_all(b"hello").unwrap();
            tls.flush().unwrap();
            // Read nothing until the server has filled the socket.
            go_rx.recv().unwrap();
            let mut got = Vec::new();
            tls.read_to_end(&mut got).unwrap();
            got
        });
        let (s, _) = l.accept().unwrap();
        s.set_nonblocking(true).unwrap();
        let sock = Socket::from(OwnedFd::from(s));
        let cfg = server_config();
        let sent = crate::ring::block_on(crate::ring::RingConfig { entries: 64 }, async move {
            let t = handshake(cfg, sock, None)
                .await
                .map_err(|(_, e)| e)
                .unwrap();
            let fd = t.fd();
            // The client's first bytes, maybe already decrypted with the handshake.
            let mut buf = [0u8; 64];
            let n = loop {
                match t.recv(&mut buf) {
                    Ok(n) => break n,
                    Err(e) if e.kind() == io::ErrorKind::WouldBlock => {
                        crate::ring::poll_once(fd, events::IN).await.unwrap();
                    }
                    Err(e) => panic!("{e}"),
                }
            };
            assert_eq!(&buf[..n], b"hello");
            let data: Vec<u8> = (0..len).map(|i| (i % 251) as u8).collect();
            let mut off = 0;
            while off < len {
                match t.send(&data[off..]) {
                    Ok(n) => off += n,
                    Err(e) if e.kind() == io::ErrorKind::WouldBlock => break,
                    Err(e) => panic!("{e}"),
                }
            }
            assert!(off < len, "the socket never filled");
            assert!(t.has_pending_output(), "full socket, nothing held");
            go_tx.send(()).unwrap();
            loop {
                if !t.has_pending_output() {
                    if off == len {
                        break;
                    }
                    match t.send(&data[off..]) {
                        Ok(n) => {
                            off += n;
                            if off == len {
                                t.shutdown_write().unwrap();
                            }
                            continue;
                        }
                        Err(e) if e.kind() == io::ErrorKind::WouldBlock => {}
                        Err(e) => panic!("{e}"),
                    }
                }
                match t.flush() {
                    Ok(()) if !t.has_pending_output() => continue,
                    Ok(()) => {}
                    Err(e) if e.kind() == io::ErrorKind::WouldBlock => {}
                    Err(e) => panic!("{e}"),
                }
                crate::ring::poll_once(fd, events::OUT).await.unwrap();
            }
            data
        })
        .unwrap();
        let got = client.join().unwrap();
        assert_eq!(got.len(), sent.len());
        assert!(got == sent, "bytes differ");
    }
}
