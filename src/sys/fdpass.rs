//! Passing file descriptors between processes over a unix stream socket
//! (`SCM_RIGHTS`), and marking a descriptor inheritable for one spawned child.
//! This is how listening sockets change hands on a reload; the protocol spoken
//! around the descriptors is `crate::handover`'s.
//!
//! Kernel semantics that matter here: the descriptors travel with the first byte
//! of the `sendmsg` payload they were attached to, and a stream `recvmsg` never
//! returns bytes of two messages that carried descriptors in one call, so a
//! receiver that keeps descriptors in arrival order pairs them with the payload
//! correctly. A receiver whose control buffer is too small loses descriptors
//! (`MSG_CTRUNC`), so senders attach at most [`MAX_FDS`] per message and
//! receivers make room for that many. Received descriptors are close-on-exec
//! (`MSG_CMSG_CLOEXEC`).

use std::io;
use std::os::fd::{AsRawFd, BorrowedFd, FromRawFd, OwnedFd, RawFd};
use std::time::{Duration, Instant};

use super::cvt;

/// Descriptors attached to one message (the kernel's limit is 253).
pub const MAX_FDS: usize = 200;

/// Room for `MAX_FDS` descriptors in a control message, 8-byte aligned.
const CMSG_ROOM: usize = 8 * 256 + 64;

/// Sends `payload` with `fds` attached (at most [`MAX_FDS`]); waits for room in
/// the socket buffer (up to `timeout`) when the socket is non-blocking.
pub fn send_with_fds(
    sock: BorrowedFd<'_>,
    payload: &[u8],
    fds: &[BorrowedFd<'_>],
    timeout: Duration,
) -> io::Result<()> {
    if fds.len() > MAX_FDS || payload.is_empty() {
        return Err(io::Error::new(
            io::ErrorKind::InvalidInput,
            "fd message: empty payload or too many fds",
        ));
    }
    let raw: Vec<RawFd> = fds.iter().map(|f| f.as_raw_fd()).collect();
    let mut control = vec![0u64; CMSG_ROOM / 8];
    let deadline = Instant::now() + timeout;
    let mut sent = 0;
    while sent < payload.len() {
        let mut iov = libc::iovec {
            iov_base: payload[sent..].as_ptr() as *mut libc::c_void,
            iov_len: payload.len() - sent,
        };
        // SAFETY: msghdr is plain data; every pointer set below refers to a
        // buffer that outlives the sendmsg call.
        let mut msg: libc::msghdr = unsafe { std::mem::zeroed() };
        msg.msg_iov = &mut iov;
        msg.msg_iovlen = 1;
        // Descriptors ride with the first byte only.
        if sent == 0 && !raw.is_empty() {
            let data_len = std::mem::size_of_val(raw.as_slice());
            // SAFETY: CMSG_SPACE/CMSG_LEN are pure arithmetic.
            let space = unsafe { libc::CMSG_SPACE(data_len as u32) } as usize;
            msg.msg_control = control.as_mut_ptr().cast();
            msg.msg_controllen = space;
            // SAFETY: msg_control points at `space` writable, aligned bytes
            // (space <= CMSG_ROOM), so the first header and its data fit.
            unsafe {
                let cmsg = libc::CMSG_FIRSTHDR(&msg);
                (*cmsg).cmsg_level = libc::SOL_SOCKET;
                (*cmsg).cmsg_type = libc::SCM_RIGHTS;
                (*cmsg).cmsg_len = libc::CMSG_LEN(data_len as u32) as usize;
                std::ptr::copy_nonoverlapping(
                    raw.as_ptr().cast::<u8>(),
                    libc::CMSG_DATA(cmsg),
                    data_len,
                );
            }
        }
        // SAFETY: msg and everything it points to are live for the call.
        let r = unsafe { libc::sendmsg(sock.as_raw_fd(), &msg, libc::MSG_NOSIGNAL) };
        match cvt(r) {
            Ok(n) => sent += n as usize,
            Err(e) if e.kind() == io::ErrorKind::Interrupted => {}
            Err(e) if e.kind() == io::ErrorKind::WouldBlock => {
                if Instant::now() >= deadline {
                    return Err(io::Error::new(
                        io::ErrorKind::TimedOut,
                        "fd message: peer not reading",
                    ));
                }
                wait_fd(sock, libc::POLLOUT, Duration::from_millis(10))?;
            }
            Err(e) => return Err(e),
        }
    }
    Ok(())
}

/// Receives bytes into `buf` and any descriptors that came with them into
/// `fds` (in order). `Ok(0)` is end of stream. Waits up to `timeout` on a
/// non-blocking socket.
pub fn recv_with_fds(
    sock: BorrowedFd<'_>,
    buf: &mut [u8],
    fds: &mut Vec<OwnedFd>,
    timeout: Duration,
) -> io::Result<usize> {
    let deadline = Instant::now() + timeout;
    let mut control = vec![0u64; CMSG_ROOM / 8];
    loop {
        let mut iov = libc::iovec {
            iov_base: buf.as_mut_ptr().cast(),
            iov_len: buf.len(),
        };
        // SAFETY: plain data, filled in below with pointers to live buffers.
        let mut msg: libc::msghdr = unsafe { std::mem::zeroed() };
        msg.msg_iov = &mut iov;
        msg.msg_iovlen = 1;
        msg.msg_control = control.as_mut_ptr().cast();
        msg.msg_controllen = CMSG_ROOM;
        // SAFETY: msg points at `buf` and `control`, both live and writable.
        let r = unsafe { libc::recvmsg(sock.as_raw_fd(), &mut msg, libc::MSG_CMSG_CLOEXEC) };
        match cvt(r) {
            Ok(n) => {
                // SAFETY: the kernel filled msg_control up to msg_controllen;
                // the CMSG_* walk stays inside it, and each SCM_RIGHTS entry
                // holds descriptors that are now ours alone.
                unsafe {
                    let mut cmsg = libc::CMSG_FIRSTHDR(&msg);
                    while !cmsg.is_null() {
                        if (*cmsg).cmsg_level == libc::SOL_SOCKET
                            && (*cmsg).cmsg_type == libc::SCM_RIGHTS
                        {
                            let data = libc::CMSG_DATA(cmsg);
                            let len = (*cmsg).cmsg_len as usize - libc::CMSG_LEN(0) as usize;
                            for i in 0..len / std::mem::size_of::<RawFd>() {
                                let fd = std::ptr::read_unaligned(
                                    data.add(i * std::mem::size_of::<RawFd>()).cast::<RawFd>(),
                                );
                                fds.push(OwnedFd::from_raw_fd(fd));
                            }
                        }
                        cmsg = libc::CMSG_NXTHDR(&msg, cmsg);
                    }
                }
                if msg.msg_flags & libc::MSG_CTRUNC != 0 {
                    return Err(io::Error::other("fd message: descriptors truncated"));
                }
                return Ok(n as usize);
            }
            Err(e) if e.kind() == io::ErrorKind::Interrupted => {}
            Err(e) if e.kind() == io::ErrorKind::WouldBlock => {
                let now = Instant::now();
                if now >= deadline {
                    return Err(io::Error::new(
                        io::ErrorKind::TimedOut,
                        "fd message: no answer",
                    ));
                }
                wait_fd(
                    sock,
                    libc::POLLIN,
                    (deadline - now).min(Duration::from_millis(100)),
                )?;
            }
            Err(e) => return Err(e),
        }
    }
}

fn wait_fd(sock: BorrowedFd<'_>, events: i16, timeout: Duration) -> io::Result<()> {
    let mut p = libc::pollfd {
        fd: sock.as_raw_fd(),
        events,
        revents: 0,
    };
    // SAFETY: one live pollfd.
    let r = unsafe { libc::poll(&mut p, 1, timeout.as_millis() as i32) };
    match cvt(r) {
        Ok(_) => Ok(()),
        Err(e) if e.kind() == io::ErrorKind::Interrupted => Ok(()),
        Err(e) => Err(e),
    }
}

/// Makes `fd` survive `exec` in the child `cmd` spawns, under the same number,
/// without touching the parent's copy (which stays close-on-exec, so no other
/// child inherits it).
pub fn inherit_in_child(cmd: &mut std::process::Command, fd: RawFd) {
    use std::os::unix::process::CommandExt;
    // SAFETY: the closure runs in the forked child before exec and calls only
    // fcntl, which is async-signal-safe; it allocates nothing.
    unsafe {
        cmd.pre_exec(move || {
            cvt(libc::fcntl(fd, libc::F_SETFD, 0))?;
            Ok(())
        });
    }
}

/// Takes ownership of descriptor `fd`, inherited from the parent process
/// (which named it in the environment), after checking that it is open; it is
/// close-on-exec again from here on. Call once per inherited descriptor.
pub fn adopt_inherited(fd: RawFd) -> io::Result<OwnedFd> {
    if fd <= 2 {
        return Err(io::Error::new(
            io::ErrorKind::InvalidInput,
            "not an inherited descriptor",
        ));
    }
    // SAFETY: fcntl on a number we do not own changes only its close-on-exec
    // flag, and fails with EBADF when nothing is open there.
    cvt(unsafe { libc::fcntl(fd, libc::F_SETFD, libc::FD_CLOEXEC) })?;
    // SAFETY: the parent left this descriptor open for us alone, and the caller
    // wraps each inherited number once (read from the environment at startup).
    Ok(unsafe { OwnedFd::from_raw_fd(fd) })
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::os::fd::AsFd;
    use std::os::unix::net::UnixStream;

    #[test]
    fn descriptors_cross_in_order_with_their_payload() {
        let (a, b) = UnixStream::pair().unwrap();
        let (p1, p2) = UnixStream::pair().unwrap();
        send_with_fds(
            a.as_fd(),
            b"two\n",
            &[p1.as_fd(), p2.as_fd()],
            Duration::from_secs(1),
        )
        .unwrap();
        send_with_fds(a.as_fd(), b"END\n", &[], Duration::from_secs(1)).unwrap();
        let mut fds = Vec::new();
        let mut text = Vec::new();
        let mut buf = [0u8; 64];
        while !text.ends_with(b"END\n") {
            let n = recv_with_fds(b.as_fd(), &mut buf, &mut fds, Duration::from_secs(1)).unwrap();
            assert!(n > 0);
            text.extend_from_slice(&buf[..n]);
        }
        assert_eq!(text, b"two\nEND\n");
        assert_eq!(fds.len(), 2);
        // The received copies are the same sockets: what goes in one end of the
        // pair through the passed descriptor comes out of the other.
        use std::io::{Read, Write};
        let mut sent = UnixStream::from(fds.remove(0));
        sent.write_all(b"x").unwrap();
        let mut got = [0u8; 1];
        (&p2).read_exact(&mut got).unwrap();
        assert_eq!(&got, b"x");
    }
}
