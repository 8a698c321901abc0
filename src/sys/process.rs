//! Process-wide settings: the open-file limit a configuration needs, and the CPUs
//! this process may run on.

use std::io;

use super::cvt;

/// Current (soft, hard) `RLIMIT_NOFILE`.
pub fn nofile_limit() -> io::Result<(u64, u64)> {
    let mut rl = libc::rlimit {
        rlim_cur: 0,
        rlim_max: 0,
    };
    // SAFETY: writes into the live rlimit struct.
    cvt(unsafe { libc::getrlimit(libc::RLIMIT_NOFILE, &mut rl) })?;
    Ok((rl.rlim_cur, rl.rlim_max))
}

/// Raises the soft `RLIMIT_NOFILE` to `want` (and the hard one too when we are
/// allowed to). Returns the new soft limit, which is lower than `want` only when
/// the hard limit could not be raised.
pub fn raise_nofile(want: u64) -> io::Result<u64> {
    let (soft, hard) = nofile_limit()?;
    if soft >= want {
        return Ok(soft);
    }
    let try_set = |cur: u64, max: u64| {
        let rl = libc::rlimit {
            rlim_cur: cur,
            rlim_max: max,
        };
        // SAFETY: reads the live rlimit struct.
        cvt(unsafe { libc::setrlimit(libc::RLIMIT_NOFILE, &rl) })
    };
    if want > hard && try_set(want, want).is_ok() {
        return Ok(want);
    }
    let cur = want.min(hard);
    try_set(cur, hard)?;
    Ok(cur)
}

/// Detaches from the terminal (`daemon(3)`): call before any thread is started.
pub fn daemonize() -> io::Result<()> {
    // SAFETY: called while the process is single-threaded; no pointers.
    cvt(unsafe { libc::daemon(1, 0) })?;
    Ok(())
}

/// Moves the calling thread (and the threads and processes it creates after
/// this) into a new, empty network namespace (`unshare(CLONE_NEWNET)`); its
/// loopback interface is down until brought up. For tests that need kernel
/// settings of their own (per-namespace sysctls) without touching the host.
pub fn unshare_network() -> io::Result<()> {
    // SAFETY: unshare takes no pointers; CLONE_NEWNET affects only this thread.
    cvt(unsafe { libc::unshare(libc::CLONE_NEWNET) })?;
    Ok(())
}

/// `CLOCK_MONOTONIC` in microseconds (what systemd wants in `MONOTONIC_USEC=`
/// beside `RELOADING=1`).
pub fn monotonic_usec() -> u64 {
    let mut ts = libc::timespec {
        tv_sec: 0,
        tv_nsec: 0,
    };
    // SAFETY: writes into the live timespec; CLOCK_MONOTONIC always exists.
    unsafe { libc::clock_gettime(libc::CLOCK_MONOTONIC, &mut ts) };
    ts.tv_sec as u64 * 1_000_000 + ts.tv_nsec as u64 / 1000
}
