//! Thin safe wrappers over libc: sockets, pipes and splice, eventfds, signals,
//! resource limits. Every kernel object is an `OwnedFd`-backed type from the line it
//! is born, so closing is never anyone's job. This module and `ring` are the only
//! places with `unsafe`; every block says why it is sound.

pub mod eventfd;
pub mod fdpass;
pub mod notify;
pub mod pipe;
pub mod privs;
pub mod process;
pub mod seccomp;
pub mod signals;
pub mod socket;

use std::io;

/// Turns a libc return value of `-1` into the thread's `errno` as `io::Error`.
pub(crate) fn cvt<T: IsMinusOne>(ret: T) -> io::Result<T> {
    if ret.is_minus_one() {
        Err(io::Error::last_os_error())
    } else {
        Ok(ret)
    }
}

pub(crate) trait IsMinusOne {
    fn is_minus_one(&self) -> bool;
}

impl IsMinusOne for i32 {
    fn is_minus_one(&self) -> bool {
        *self == -1
    }
}

impl IsMinusOne for isize {
    fn is_minus_one(&self) -> bool {
        *self == -1
    }
}
