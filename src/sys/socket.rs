//! TCP sockets as owned, non-blocking file descriptors: listeners with
//! `SO_REUSEPORT` (one per shard per bind, so the kernel spreads connections across
//! shards), non-blocking connects, and `recv`/`send` that never raise `SIGPIPE`.

use std::io;
use std::mem;
use std::net::{Ipv4Addr, Ipv6Addr, SocketAddr, SocketAddrV4, SocketAddrV6};
use std::os::fd::{AsRawFd, FromRawFd, OwnedFd, RawFd};

use super::cvt;

/// An owned non-blocking TCP socket (listener or stream).
#[derive(Debug)]
pub struct Socket {
    fd: OwnedFd,
}

impl AsRawFd for Socket {
    fn as_raw_fd(&self) -> RawFd {
        self.fd.as_raw_fd()
    }
}

impl std::os::fd::AsFd for Socket {
    fn as_fd(&self) -> std::os::fd::BorrowedFd<'_> {
        self.fd.as_fd()
    }
}

impl From<OwnedFd> for Socket {
    /// Wraps a connection the ring accepted (already non-blocking, close-on-exec).
    fn from(fd: OwnedFd) -> Socket {
        Socket { fd }
    }
}

impl From<Socket> for OwnedFd {
    fn from(s: Socket) -> OwnedFd {
        s.fd
    }
}

/// Whether a listener may bind an address the host does not hold.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum NonLocal {
    No,
    /// `IP_FREEBIND`.
    Freebind,
    /// `IP_TRANSPARENT` (CAP_NET_ADMIN).
    Transparent,
}

impl Socket {
    /// Another descriptor for the same kernel socket (`F_DUPFD_CLOEXEC`).
    pub fn try_clone(&self) -> io::Result<Socket> {
        Ok(Socket {
            fd: self.fd.try_clone()?,
        })
    }

    /// # Safety
    /// `fd` must be an open socket owned by nobody else.
    unsafe fn from_raw(fd: RawFd) -> Socket {
        // SAFETY: the caller guarantees sole ownership of an open fd.
        Socket {
            fd: unsafe { OwnedFd::from_raw_fd(fd) },
        }
    }

    fn new_tcp(addr: &SocketAddr) -> io::Result<Socket> {
        let domain = match addr {
            SocketAddr::V4(_) => libc::AF_INET,
            SocketAddr::V6(_) => libc::AF_INET6,
        };
        let ty = libc::SOCK_STREAM | libc::SOCK_NONBLOCK | libc::SOCK_CLOEXEC;
        // SAFETY: socket takes no pointers; the fd is checked and owned at once.
        let fd = cvt(unsafe { libc::socket(domain, ty, 0) })?;
        // SAFETY: fresh fd, sole owner.
        Ok(unsafe { Socket::from_raw(fd) })
    }

    /// A listening socket bound with `SO_REUSEADDR` and `SO_REUSEPORT`, with
    /// `TCP_NODELAY` set once here: accepted sockets inherit it from the listener,
    /// which saves a `setsockopt` per connection.
    pub fn listen(addr: &SocketAddr, backlog: u32) -> io::Result<Socket> {
        Socket::listen_with(addr, backlog, NonLocal::No)
    }

    /// [`Socket::listen`], allowed to bind an address this host does not hold
    /// (`bind ... freebind` / `transparent`).
    pub fn listen_with(addr: &SocketAddr, backlog: u32, nonlocal: NonLocal) -> io::Result<Socket> {
        let s = Socket::new_tcp(addr)?;
        let (level, free, transp) = if addr.is_ipv6() {
            (
                libc::IPPROTO_IPV6,
                libc::IPV6_FREEBIND,
                libc::IPV6_TRANSPARENT,
            )
        } else {
            (libc::IPPROTO_IP, libc::IP_FREEBIND, libc::IP_TRANSPARENT)
        };
        match nonlocal {
            NonLocal::No => {}
            NonLocal::Freebind => s.set_opt(level, free, 1)?,
            NonLocal::Transparent => s.set_opt(level, transp, 1)?,
        }
        s.set_opt(libc::SOL_SOCKET, libc::SO_REUSEADDR, 1)?;
        s.set_opt(libc::SOL_SOCKET, libc::SO_REUSEPORT, 1)?;
        s.set_opt(libc::IPPROTO_TCP, libc::TCP_NODELAY, 1)?;
        if addr.is_ipv6() {
            s.set_opt(libc::IPPROTO_IPV6, libc::IPV6_V6ONLY, 1)?;
        }
        let (raw, len) = to_raw(addr);
        // SAFETY: `raw` is a valid sockaddr of `len` bytes living across the call.
        cvt(unsafe {
            libc::bind(
                s.as_raw_fd(),
                (&raw as *const libc::sockaddr_storage).cast(),
                len,
            )
        })?;
        let backlog = backlog.min(i32::MAX as u32) as i32;
        // SAFETY: plain syscall on our own fd.
        cvt(unsafe { libc::listen(s.as_raw_fd(), backlog) })?;
        Ok(s)
    }

    /// One `accept4` on a non-blocking listener: `Ok(None)` when its queue is
    /// empty. The connection is non-blocking and close-on-exec.
    pub fn accept_now(&self) -> io::Result<Option<OwnedFd>> {
        // SAFETY: null address pointers are allowed; the fd is checked and
        // owned at once.
        let r = unsafe {
            libc::accept4(
                self.as_raw_fd(),
                std::ptr::null_mut(),
                std::ptr::null_mut(),
                libc::SOCK_NONBLOCK | libc::SOCK_CLOEXEC,
            )
        };
        match cvt(r) {
            // SAFETY: a fresh connection fd nobody else owns.
            Ok(fd) => Ok(Some(unsafe { OwnedFd::from_raw_fd(fd) })),
            Err(e) if e.kind() == io::ErrorKind::WouldBlock => Ok(None),
            Err(e) => Err(e),
        }
    }

    /// Starts a non-blocking connect. Returns the socket and whether the connect is
    /// still in progress (wait for POLLOUT: with POLLERR or POLLHUP beside it the
    /// connect failed).
    pub fn connect(addr: &SocketAddr) -> io::Result<(Socket, bool)> {
        let s = Socket::new_tcp(addr)?;
        s.set_opt(libc::IPPROTO_TCP, libc::TCP_NODELAY, 1)?;
        let (raw, len) = to_raw(addr);
        // SAFETY: `raw` is a valid sockaddr of `len` bytes living across the call.
        let r = unsafe {
            libc::connect(
                s.as_raw_fd(),
                (&raw as *const libc::sockaddr_storage).cast(),
                len,
            )
        };
        match cvt(r) {
            Ok(_) => Ok((s, false)),
            Err(e) if e.raw_os_error() == Some(libc::EINPROGRESS) => Ok((s, true)),
            Err(e) => Err(e),
        }
    }

    /// A *blocking* connect from a chosen source address (tools and tests that
    /// need to pick the client address, e.g. to exercise `balance source`).
    pub fn bind_connect(src: &SocketAddr, dst: &SocketAddr) -> io::Result<Socket> {
        let domain = if dst.is_ipv6() {
            libc::AF_INET6
        } else {
            libc::AF_INET
        };
        // SAFETY: socket takes no pointers; the fd is checked and owned at once.
        let fd = cvt(unsafe { libc::socket(domain, libc::SOCK_STREAM | libc::SOCK_CLOEXEC, 0) })?;
        // SAFETY: fresh fd, sole owner.
        let s = unsafe { Socket::from_raw(fd) };
        let (raw, len) = to_raw(src);
        // SAFETY: `raw` is a valid sockaddr of `len` bytes living across the call.
        cvt(unsafe {
            libc::bind(
                s.as_raw_fd(),
                (&raw as *const libc::sockaddr_storage).cast(),
                len,
            )
        })?;
        let (raw, len) = to_raw(dst);
        // SAFETY: as above.
        cvt(unsafe {
            libc::connect(
                s.as_raw_fd(),
                (&raw as *const libc::sockaddr_storage).cast(),
                len,
            )
        })?;
        Ok(s)
    }

    fn set_opt(&self, level: i32, name: i32, val: i32) -> io::Result<()> {
        // SAFETY: passes a pointer to a live i32 and its exact size.
        cvt(unsafe {
            libc::setsockopt(
                self.as_raw_fd(),
                level,
                name,
                (&val as *const i32).cast(),
                mem::size_of::<i32>() as libc::socklen_t,
            )
        })?;
        Ok(())
    }

    /// The pending socket error (`SO_ERROR`), cleared by reading it. Read only on
    /// failure paths (a connect whose poll reported POLLERR), to name the errno.
    pub fn take_error(&self) -> io::Result<Option<io::Error>> {
        let mut val: i32 = 0;
        let mut len = mem::size_of::<i32>() as libc::socklen_t;
        // SAFETY: val/len are live and sized for SO_ERROR's int result.
        cvt(unsafe {
            libc::getsockopt(
                self.as_raw_fd(),
                libc::SOL_SOCKET,
                libc::SO_ERROR,
                (&mut val as *mut i32).cast(),
                &mut len,
            )
        })?;
        Ok((val != 0).then(|| io::Error::from_raw_os_error(val)))
    }

    /// A connected pair of non-blocking local stream sockets (`socketpair(2)`,
    /// `AF_UNIX`): how a session that speaks to a plain socket is put behind a
    /// transport that is not one (TLS in front of mode http).
    pub fn pair() -> io::Result<(Socket, Socket)> {
        let mut fds = [0i32; 2];
        let ty = libc::SOCK_STREAM | libc::SOCK_NONBLOCK | libc::SOCK_CLOEXEC;
        // SAFETY: fds is a live array of two ints, as socketpair writes.
        cvt(unsafe { libc::socketpair(libc::AF_UNIX, ty, 0, fds.as_mut_ptr()) })?;
        // SAFETY: two fresh fds, each owned once.
        Ok(unsafe { (Socket::from_raw(fds[0]), Socket::from_raw(fds[1])) })
    }

    /// Non-blocking receive; `Ok(0)` is EOF.
    pub fn recv(&self, buf: &mut [u8]) -> io::Result<usize> {
        // SAFETY: writes at most buf.len() bytes into the live slice.
        let n = unsafe {
            libc::recv(
                self.as_raw_fd(),
                buf.as_mut_ptr().cast(),
                buf.len(),
                libc::MSG_DONTWAIT,
            )
        };
        cvt(n).map(|n| n as usize)
    }

    /// Non-blocking send that never raises `SIGPIPE`.
    pub fn send(&self, buf: &[u8]) -> io::Result<usize> {
        let flags = libc::MSG_DONTWAIT | libc::MSG_NOSIGNAL;
        // SAFETY: reads at most buf.len() bytes from the live slice.
        let n = unsafe { libc::send(self.as_raw_fd(), buf.as_ptr().cast(), buf.len(), flags) };
        cvt(n).map(|n| n as usize)
    }

    /// Half-close: no more bytes will be sent (FIN).
    pub fn shutdown_write(&self) -> io::Result<()> {
        // SAFETY: plain syscall on our own fd.
        cvt(unsafe { libc::shutdown(self.as_raw_fd(), libc::SHUT_WR) })?;
        Ok(())
    }

    /// Makes the coming close send an RST instead of a FIN (`SO_LINGER` 0), to
    /// propagate a reset from the other side.
    pub fn set_reset_on_close(&self) -> io::Result<()> {
        let l = libc::linger {
            l_onoff: 1,
            l_linger: 0,
        };
        // SAFETY: passes a pointer to a live linger struct and its exact size.
        cvt(unsafe {
            libc::setsockopt(
                self.as_raw_fd(),
                libc::SOL_SOCKET,
                libc::SO_LINGER,
                (&l as *const libc::linger).cast(),
                mem::size_of::<libc::linger>() as libc::socklen_t,
            )
        })?;
        Ok(())
    }

    pub fn local_addr(&self) -> io::Result<SocketAddr> {
        self.address(libc::getsockname)
    }

    /// `SO_RCVLOWAT`: readiness (poll's POLLIN) only once at least `n` bytes
    /// are waiting — how to wait for *more* bytes after a peek.
    pub fn set_rcvlowat(&self, n: usize) -> io::Result<()> {
        self.set_opt(
            libc::SOL_SOCKET,
            libc::SO_RCVLOWAT,
            n.min(i32::MAX as usize) as i32,
        )
    }

    /// Non-blocking look at what is waiting, without consuming it (MSG_PEEK).
    pub fn peek(&self, buf: &mut [u8]) -> io::Result<usize> {
        // SAFETY: writes at most buf.len() bytes into the live slice.
        let n = cvt(unsafe {
            libc::recv(
                self.as_raw_fd(),
                buf.as_mut_ptr().cast(),
                buf.len(),
                libc::MSG_PEEK | libc::MSG_DONTWAIT,
            )
        })?;
        Ok(n as usize)
    }

    pub fn peer_addr(&self) -> io::Result<SocketAddr> {
        self.address(libc::getpeername)
    }

    /// Asks the kernel for one of this socket's addresses (`getsockname` or
    /// `getpeername`, which share a signature).
    fn address(
        &self,
        call: unsafe extern "C" fn(i32, *mut libc::sockaddr, *mut libc::socklen_t) -> i32,
    ) -> io::Result<SocketAddr> {
        address_of(self.as_raw_fd(), call)
    }
}

/// The peer address of the socket behind descriptor `fd`, for a caller that
/// holds no `Socket` but knows the descriptor is open (a shard describing
/// its sessions for `show sess`). A descriptor closed or reused meanwhile
/// gives an error or another socket's address, never unsafety.
pub fn peer_addr_of(fd: RawFd) -> io::Result<SocketAddr> {
    address_of(fd, libc::getpeername)
}

/// The local address of the socket behind `fd` (see [`peer_addr_of`]).
pub fn local_addr_of(fd: RawFd) -> io::Result<SocketAddr> {
    address_of(fd, libc::getsockname)
}

fn address_of(
    fd: RawFd,
    call: unsafe extern "C" fn(i32, *mut libc::sockaddr, *mut libc::socklen_t) -> i32,
) -> io::Result<SocketAddr> {
    let mut raw: libc::sockaddr_storage = unsafe_zeroed_storage();
    let mut len = mem::size_of::<libc::sockaddr_storage>() as libc::socklen_t;
    // SAFETY: raw/len are live and sized for any socket address; `call` is one
    // of getsockname/getpeername, which write at most `len` bytes and only
    // read `fd` as a number.
    cvt(unsafe {
        call(
            fd,
            (&mut raw as *mut libc::sockaddr_storage).cast(),
            &mut len,
        )
    })?;
    from_raw(&raw)
        .ok_or_else(|| io::Error::new(io::ErrorKind::InvalidData, "unknown address family"))
}

fn unsafe_zeroed_storage() -> libc::sockaddr_storage {
    // SAFETY: sockaddr_storage is plain old data; all-zero is a valid value.
    unsafe { mem::zeroed() }
}

/// Encodes a `SocketAddr` for the kernel.
pub fn to_raw(addr: &SocketAddr) -> (libc::sockaddr_storage, libc::socklen_t) {
    let mut storage = unsafe_zeroed_storage();
    let len = match addr {
        SocketAddr::V4(a) => {
            let sin = libc::sockaddr_in {
                sin_family: libc::AF_INET as libc::sa_family_t,
                sin_port: a.port().to_be(),
                sin_addr: libc::in_addr {
                    s_addr: u32::from_ne_bytes(a.ip().octets()),
                },
                sin_zero: [0; 8],
            };
            // SAFETY: sockaddr_storage is larger than and aligned for sockaddr_in.
            unsafe { std::ptr::write((&mut storage as *mut libc::sockaddr_storage).cast(), sin) };
            mem::size_of::<libc::sockaddr_in>()
        }
        SocketAddr::V6(a) => {
            let sin6 = libc::sockaddr_in6 {
                sin6_family: libc::AF_INET6 as libc::sa_family_t,
                sin6_port: a.port().to_be(),
                sin6_flowinfo: a.flowinfo(),
                sin6_addr: libc::in6_addr {
                    s6_addr: a.ip().octets(),
                },
                sin6_scope_id: a.scope_id(),
            };
            // SAFETY: sockaddr_storage is larger than and aligned for sockaddr_in6.
            unsafe { std::ptr::write((&mut storage as *mut libc::sockaddr_storage).cast(), sin6) };
            mem::size_of::<libc::sockaddr_in6>()
        }
    };
    (storage, len as libc::socklen_t)
}

/// Decodes a kernel socket address; `None` for families other than IPv4/IPv6.
pub fn from_raw(raw: &libc::sockaddr_storage) -> Option<SocketAddr> {
    match raw.ss_family as i32 {
        libc::AF_INET => {
            // SAFETY: the family says the storage holds a sockaddr_in.
            let sin: &libc::sockaddr_in =
                unsafe { &*(raw as *const libc::sockaddr_storage).cast() };
            let ip = Ipv4Addr::from(sin.sin_addr.s_addr.to_ne_bytes());
            Some(SocketAddr::V4(SocketAddrV4::new(
                ip,
                u16::from_be(sin.sin_port),
            )))
        }
        libc::AF_INET6 => {
            // SAFETY: the family says the storage holds a sockaddr_in6.
            let sin6: &libc::sockaddr_in6 =
                unsafe { &*(raw as *const libc::sockaddr_storage).cast() };
            let ip = Ipv6Addr::from(sin6.sin6_addr.s6_addr);
            Some(SocketAddr::V6(SocketAddrV6::new(
                ip,
                u16::from_be(sin6.sin6_port),
                sin6.sin6_flowinfo,
                sin6.sin6_scope_id,
            )))
        }
        _ => None,
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::net::{TcpListener, TcpStream};

    fn nodelay(fd: RawFd) -> i32 {
        let mut val: i32 = -1;
        let mut len = mem::size_of::<i32>() as libc::socklen_t;
        // SAFETY: val/len are live and sized for TCP_NODELAY's int result.
        let r = unsafe {
            libc::getsockopt(
                fd,
                libc::IPPROTO_TCP,
                libc::TCP_NODELAY,
                (&mut val as *mut i32).cast(),
                &mut len,
            )
        };
        assert_eq!(r, 0);
        val
    }

    /// Sessions rely on accepted sockets inheriting TCP_NODELAY from the
    /// listener instead of setting it per connection.
    #[test]
    fn accepted_sockets_inherit_nodelay_from_the_listener() {
        let l = Socket::listen(&"127.0.0.1:0".parse().unwrap(), 16).unwrap();
        let addr = l.local_addr().unwrap();
        let fd = l.as_raw_fd();
        // A std listener on the same fd, borrowed only to accept once.
        // SAFETY: ManuallyDrop keeps the std listener from closing our fd.
        let std_l = mem::ManuallyDrop::new(unsafe { TcpListener::from_raw_fd(fd) });
        let _c = TcpStream::connect(addr).unwrap();
        let accepted = loop {
            match std_l.accept() {
                Ok((s, _)) => break s,
                Err(e) if e.kind() == io::ErrorKind::WouldBlock => std::thread::yield_now(),
                Err(e) => panic!("accept: {e}"),
            }
        };
        assert_eq!(nodelay(accepted.as_raw_fd()), 1);
    }
}
