//! Pipes and `splice(2)`, the zero-copy path. A pipe holds at most
//! `F_GETPIPE_SZ` bytes; `SPLICE_F_NONBLOCK` makes only the *pipe* side
//! non-blocking, so the sockets on the other side must be `O_NONBLOCK` too (all of
//! ours are). Splicing is done as a plain syscall from the shard thread after an
//! io_uring readiness event — never as `IORING_OP_SPLICE`, which the kernel cannot
//! poll and hands to an io-wq worker thread per blocked connection.

use std::io;
use std::os::fd::{AsRawFd, FromRawFd, OwnedFd, RawFd};

use super::cvt;

/// A non-blocking pipe: `read` end and `write` end.
#[derive(Debug)]
pub struct Pipe {
    read: OwnedFd,
    write: OwnedFd,
}

impl Pipe {
    /// Creates a pipe and asks the kernel for `size` bytes of capacity (rounded up
    /// to a power-of-two number of pages; may be refused above
    /// `fs.pipe-max-size`, in which case the default capacity stays).
    pub fn new(size: usize) -> io::Result<Pipe> {
        let mut fds = [0 as libc::c_int; 2];
        // SAFETY: pipe2 writes two fds into the live 2-element array.
        cvt(unsafe { libc::pipe2(fds.as_mut_ptr(), libc::O_NONBLOCK | libc::O_CLOEXEC) })?;
        // SAFETY: both fds are fresh and valid; each is owned exactly once.
        let pipe = unsafe {
            Pipe {
                read: OwnedFd::from_raw_fd(fds[0]),
                write: OwnedFd::from_raw_fd(fds[1]),
            }
        };
        if size > 0 {
            // SAFETY: fcntl with F_SETPIPE_SZ takes an int argument; no pointers.
            let _ = unsafe { libc::fcntl(pipe.write.as_raw_fd(), libc::F_SETPIPE_SZ, size as i32) };
        }
        Ok(pipe)
    }

    /// The pipe's capacity in bytes.
    pub fn capacity(&self) -> io::Result<usize> {
        // SAFETY: fcntl F_GETPIPE_SZ takes no argument.
        let n = cvt(unsafe { libc::fcntl(self.write.as_raw_fd(), libc::F_GETPIPE_SZ) })?;
        Ok(n as usize)
    }

    /// Moves up to `len` bytes from socket `src` into the pipe. `Ok(0)` is EOF.
    pub fn fill_from(&self, src: RawFd, len: usize) -> io::Result<usize> {
        splice(src, self.write.as_raw_fd(), len)
    }

    /// Moves up to `len` bytes from the pipe into socket `dst`.
    pub fn drain_to(&self, dst: RawFd, len: usize) -> io::Result<usize> {
        splice(self.read.as_raw_fd(), dst, len)
    }
}

fn splice(from: RawFd, to: RawFd, len: usize) -> io::Result<usize> {
    let flags = libc::SPLICE_F_NONBLOCK | libc::SPLICE_F_MOVE;
    // SAFETY: null offsets are valid for pipes and sockets; both fds are open.
    let n = unsafe {
        libc::splice(
            from,
            std::ptr::null_mut(),
            to,
            std::ptr::null_mut(),
            len,
            flags,
        )
    };
    cvt(n).map(|n| n as usize)
}
