//! A connection to a server as an HTTP session and the shard's idle pool
//! hold it: a plain socket, or a TLS session over one (`server ... ssl`).
//! Either is a transport for the session's reads, writes and splices (TLS
//! copies), and either can be probed before it is reused.

use std::io;
use std::os::fd::RawFd;

use crate::l4::Transport;
use crate::sys::socket::Socket;
use crate::tls::TlsTransport;

pub enum ServerConn {
    Plain(Socket),
    Tls(Box<TlsTransport>),
}

impl From<Socket> for ServerConn {
    fn from(s: Socket) -> ServerConn {
        ServerConn::Plain(s)
    }
}

impl ServerConn {
    /// The TCP socket underneath.
    pub fn socket(&self) -> &Socket {
        match self {
            ServerConn::Plain(s) => s,
            ServerConn::Tls(t) => t.socket(),
        }
    }

    /// Usable for another request: reading would block. EOF, an error or
    /// bytes nobody asked for mean the server is done with it. Over TLS the
    /// records that came meanwhile are processed first: a TLS 1.3 server's
    /// session tickets arrive after the handshake and are not a reason to
    /// drop the connection; a `close_notify` or application data are.
    pub fn still_open(&self) -> bool {
        match self {
            ServerConn::Plain(s) => super::idle::still_open(s),
            ServerConn::Tls(t) => {
                let mut probe = [0u8; 1];
                matches!(t.recv(&mut probe), Err(e) if e.kind() == io::ErrorKind::WouldBlock)
            }
        }
    }

    fn transport(&self) -> &dyn Transport {
        match self {
            ServerConn::Plain(s) => s,
            ServerConn::Tls(t) => &**t,
        }
    }
}

impl Transport for ServerConn {
    fn fd(&self) -> RawFd {
        self.transport().fd()
    }
    fn can_splice(&self) -> bool {
        self.transport().can_splice()
    }
    fn buffers_reads(&self) -> bool {
        self.transport().buffers_reads()
    }
    fn recv(&self, buf: &mut [u8]) -> io::Result<usize> {
        self.transport().recv(buf)
    }
    fn send(&self, buf: &[u8]) -> io::Result<usize> {
        self.transport().send(buf)
    }
    fn shutdown_write(&self) -> io::Result<()> {
        self.transport().shutdown_write()
    }
    fn set_reset_on_close(&self) -> io::Result<()> {
        self.transport().set_reset_on_close()
    }
    fn has_pending_output(&self) -> bool {
        self.transport().has_pending_output()
    }
    fn flush(&self) -> io::Result<()> {
        self.transport().flush()
    }
    fn has_buffered_input(&self) -> bool {
        self.transport().has_buffered_input()
    }
}

impl Drop for ServerConn {
    /// A TLS connection says `close_notify` before its FIN, as far as the
    /// socket takes it now (never waits: the shard may be stopping).
    fn drop(&mut self) {
        if let ServerConn::Tls(t) = self {
            let _ = t.shutdown_write();
        }
    }
}
