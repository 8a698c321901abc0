//! Process signals: `SIGPIPE` ignored process-wide (a peer that vanished is an
//! error value, never a death), and SIGTERM/SIGINT/SIGUSR1/SIGUSR2/SIGHUP/SIGCHLD plus
//! ringlb's own shard-exit signal blocked in every thread so that only the main
//! thread receives them, synchronously, with `sigtimedwait`.

use std::io;
use std::time::Duration;

use super::cvt;

/// The signal a dying data shard raises so the main thread notices at once: the
/// first real-time signal after the libc-reserved ones, never sent by anyone else.
pub fn shard_exit_signal() -> i32 {
    libc::SIGRTMIN() + 1
}

fn handled_set() -> libc::sigset_t {
    let handled = [
        libc::SIGTERM,
        libc::SIGINT,
        libc::SIGUSR1,
        libc::SIGUSR2,
        libc::SIGHUP,
        // A master-worker master waits for its workers' exits this way; ringlb
        // has no other children, and blocking it does not affect `waitpid`.
        libc::SIGCHLD,
        shard_exit_signal(),
    ];
    // SAFETY: sigset_t is plain data; sigemptyset/sigaddset initialise it fully.
    unsafe {
        let mut set: libc::sigset_t = std::mem::zeroed();
        libc::sigemptyset(&mut set);
        for s in handled {
            libc::sigaddset(&mut set, s);
        }
        set
    }
}

/// Tells the main thread that a shard ended (it waits for this signal).
pub fn notify_shard_exit() -> io::Result<()> {
    send(std::process::id(), shard_exit_signal())
}

/// Ignores SIGPIPE and blocks the handled signals in the calling thread; threads
/// spawned afterwards inherit the mask. Call first thing in `main`.
pub fn setup() -> io::Result<()> {
    // SAFETY: SIG_IGN is a valid disposition for SIGPIPE.
    if unsafe { libc::signal(libc::SIGPIPE, libc::SIG_IGN) } == libc::SIG_ERR {
        return Err(io::Error::last_os_error());
    }
    let set = handled_set();
    // SAFETY: `set` is initialised; a null old-set pointer is allowed.
    let r = unsafe { libc::pthread_sigmask(libc::SIG_BLOCK, &set, std::ptr::null_mut()) };
    if r != 0 {
        return Err(io::Error::from_raw_os_error(r));
    }
    Ok(())
}

/// Waits up to `timeout` for one of the handled signals; `Ok(None)` on timeout.
pub fn wait(timeout: Duration) -> io::Result<Option<i32>> {
    let set = handled_set();
    let ts = libc::timespec {
        tv_sec: timeout.as_secs() as libc::time_t,
        tv_nsec: timeout.subsec_nanos() as libc::c_long,
    };
    // SAFETY: set and ts are live and initialised; info may be null.
    let r = unsafe { libc::sigtimedwait(&set, std::ptr::null_mut(), &ts) };
    match cvt(r) {
        Ok(sig) => Ok(Some(sig)),
        Err(e) if matches!(e.raw_os_error(), Some(libc::EAGAIN) | Some(libc::EINTR)) => Ok(None),
        Err(e) => Err(e),
    }
}

/// Sends `sig` to process `pid` (used by `ringlb` tooling and tests to stop a
/// running instance gracefully).
pub fn send(pid: u32, sig: i32) -> io::Result<()> {
    // SAFETY: kill takes no pointers; an invalid pid is reported as an error.
    cvt(unsafe { libc::kill(pid as libc::pid_t, sig) })?;
    Ok(())
}
