//! The process lifecycle of `ringlb run`: open-file limits, binding (or taking
//! over a predecessor's listeners: `-x`, or a master's in master-worker mode),
//! shards, pidfile, readiness line, signals, graceful stop with `hard-stop-after`.
//! Everything that can fail does so before the first connection is accepted, with
//! exit code 2 and a message naming the numbers.

use std::fmt;
use std::io::Write;
use std::os::unix::net::UnixStream;
use std::path::PathBuf;
use std::sync::Arc;
use std::time::{Duration, Instant};

use crate::config::model::Config;
use crate::log::{level, Logger};
use crate::shard::{self, Shards, StartError};
use crate::sys::{process, signals};

/// How long after taking listeners over the accept loops keep an eye on the
/// queues themselves: the predecessor is asked to stop right after we are
/// ready, and its accepts are cancelled within milliseconds of that.
const HANDOVER_RECHECK: Duration = Duration::from_secs(10);

#[derive(Debug, Default, Clone)]
pub struct RunOptions {
    pub daemon: bool,
    pub pidfile: Option<PathBuf>,
    pub shards: Option<usize>,
    /// Signals to send once ready (HAProxy's `-sf`: SIGUSR1, `-st`: SIGTERM).
    pub signal_on_ready: Vec<(u32, i32)>,
    /// `-q`: no alerts or warnings on stderr.
    pub quiet: bool,
    /// `-x SOCKET`: take the listening sockets of the process behind this
    /// socket (its `stats socket ... expose-fd listeners`) instead of binding.
    pub listeners_from: Option<PathBuf>,
    /// Set in a master's worker: the socket pair to the master, which gives the
    /// listeners and hears `READY`. A worker writes no pidfile, never
    /// daemonizes and leaves systemd to the master.
    pub worker: Option<Arc<UnixStream>>,
}

#[derive(Debug)]
pub enum RunError {
    /// The fd limit cannot be raised to what `maxconn` needs.
    FdLimit {
        have: u64,
        need: u64,
        maxconn: u32,
    },
    Start(StartError),
    Io(&'static str, std::io::Error),
    /// A data shard died; the process stopped rather than run with a hole in
    /// its `SO_REUSEPORT` groups.
    ShardDied(Vec<(usize, String)>),
    /// Master-worker: the worker could not start, or failed.
    Worker(String),
}

impl fmt::Display for RunError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            RunError::FdLimit {
                have,
                need,
                maxconn,
            } => write!(
                f,
                "FD limit ({have}) too low for maxconn={maxconn} (needs {need} fds: 2 per session, \
                 listeners, pipes); raise 'ulimit -n' to {need} or more, or lower maxconn"
            ),
            RunError::Start(e) => write!(f, "{e}"),
            RunError::Io(what, e) => write!(f, "{what}: {e}"),
            RunError::Worker(e) => write!(f, "{e}"),
            RunError::ShardDied(list) => {
                let parts: Vec<String> = list
                    .iter()
                    .map(|(id, why)| format!("shard {id} died: {why}"))
                    .collect();
                write!(f, "{}; stopping", parts.join("; "))
            }
        }
    }
}

impl std::error::Error for RunError {}

/// File descriptors the configuration may use at once, HAProxy-style: two per
/// session, two per pipe, one per listener per shard, and a margin for logs,
/// checks, the ring and eventfds.
pub fn fds_needed(config: &Config, shards: usize) -> u64 {
    let maxconn = config.global.maxconn as u64;
    let listeners: u64 = config
        .frontends
        .iter()
        .map(|f| f.binds.len() as u64)
        .sum::<u64>()
        * shards as u64;
    let maxpipes = if config.global.tune.maxpipes > 0 {
        config.global.tune.maxpipes as u64
    } else {
        (maxconn / 4).max(16 * shards as u64)
    };
    let checks: u64 = config.backends.iter().map(|b| b.servers.len() as u64).sum();
    2 * maxconn + 2 * maxpipes + listeners + checks + 64 + 4 * shards as u64
}

/// What this build cannot run yet, as one message per offending section. A config
/// that uses these is valid (`ringlb check` accepts it) but `run` refuses it
/// rather than forwarding traffic in a way the user did not ask for.
pub fn unsupported(config: &Config) -> Vec<String> {
    let mut out = Vec::new();
    // `mode http` sessions apply every rule (`shard::http::rules`); TCP
    // sessions apply `tcp-request content` and `use-backend` when they start
    // and no http-request or http-response rule, so a TCP frontend with
    // those is refused. Stats
    // frontends are served by the control shard.
    let edits = |r: &crate::config::model::Rules| {
        r.get()
            .is_some_and(|r| !r.request.is_empty() || !r.response.is_empty())
    };
    for fe in config.frontends.iter().filter(|f| !f.disabled) {
        if fe.stats.is_some() && fe.binds.iter().any(|b| b.tls.is_some()) {
            out.push(format!(
                "frontend \"{}\": ssl on a stats frontend is not supported yet",
                fe.name
            ));
        }
        let tcp = fe.mode == crate::config::model::Mode::Tcp;
        if tcp && edits(&fe.rules) && fe.stats.is_none() {
            out.push(format!(
                "frontend \"{}\": http-request/http-response rules apply to mode http only",
                fe.name
            ));
        }
        // The rules read the bytes on the socket: on an `ssl` bind those are
        // TLS records, where HAProxy's read the decrypted stream.
        if tcp
            && fe.rules.get().is_some_and(|r| !r.tcp_content.is_empty())
            && fe.binds.iter().any(|b| b.tls.is_some())
        {
            out.push(format!(
                "frontend \"{}\": tcp-request content on an ssl bind is not supported yet",
                fe.name
            ));
        }
    }
    out
}

/// Runs until SIGTERM/SIGINT and the drain that follows.
pub fn run(mut config: Config, opts: RunOptions) -> Result<(), RunError> {
    // What the previous process saved (`show servers state` into
    // `server-state-file`) is where servers start.
    for w in crate::config::server_state::apply(&mut config) {
        if !opts.quiet {
            eprintln!("{w}");
        }
    }
    let config = Arc::new(config);
    let n = shard::shard_count(&config, opts.shards);
    let need = fds_needed(&config, n);
    let have =
        process::raise_nofile(need).map_err(|e| RunError::Io("cannot read RLIMIT_NOFILE", e))?;
    if have < need {
        return Err(RunError::FdLimit {
            have,
            need,
            maxconn: config.global.maxconn,
        });
    }
    // Unknown users and groups are startup errors, before anything is bound.
    let identity = crate::sys::privs::resolve(
        config.global.user.as_deref(),
        config.global.group.as_deref(),
    )
    .map_err(|e| RunError::Io("cannot resolve global user/group", e))?;
    signals::setup().map_err(|e| RunError::Io("cannot set up signals", e))?;
    let notifier = crate::sys::notify::Notifier::from_env()
        .map_err(|e| RunError::Io("cannot reach $NOTIFY_SOCKET", e))?;
    let inherited = take_listeners(&opts)?;
    let (listeners, report) =
        shard::bind_adopting(&config, n, inherited).map_err(RunError::Start)?;
    let worker = opts.worker.is_some();
    // After binding (sockets survive the fork) so a taken port reaches the
    // terminal and the exit code; before any thread or ring exists.
    if !worker && (opts.daemon || config.global.daemon) {
        process::daemonize().map_err(|e| RunError::Io("cannot daemonize", e))?;
    }
    let nlisteners: usize = listeners.iter().map(|l| l.len()).sum();
    // Copies for a successor, before the shards own the originals.
    let exposure = match (
        &config.global.admin_socket,
        config.global.expose_fd_listeners,
    ) {
        (Some(admin), true) => {
            let held =
                shard::exposed(&listeners).map_err(|e| RunError::Io("cannot copy listeners", e))?;
            let path = crate::handover::sibling_path(admin);
            Some(
                crate::handover::serve_at(&path, Arc::new(held))
                    .map_err(|e| RunError::Io("expose-fd listeners", e))?,
            )
        }
        (None, true) => {
            eprintln!(
                "ringlb: warning: expose-fd listeners needs a stats socket (global.admin-socket); not exposed"
            );
            None
        }
        _ => None,
    };
    let foreground = !(opts.daemon || config.global.daemon);
    let logger = Logger::start(&config, foreground && !opts.quiet)
        .map_err(|e| RunError::Io("cannot open log target", e))?;
    // Taken-over sockets: the predecessor stops accepting on them right after
    // our readiness (`-sf`, or its master's SIGUSR1); see `shard::accept`.
    let recheck = (report.adopted > 0).then_some(HANDOVER_RECHECK);
    let shards = Shards::start_with(config.clone(), listeners, logger.clone(), recheck)
        .map_err(RunError::Start)?;
    let control = crate::control::spawn(config.clone(), shards.shared.clone(), logger.clone())
        .map_err(|e| RunError::Io("control shard", e))?;
    for fe in config.frontends.iter().filter(|f| !f.disabled) {
        logger.event(level::NOTICE, format!("Proxy {} started.", fe.name));
    }
    if report.adopted > 0 || report.closed > 0 {
        logger.event(
            level::NOTICE,
            format!(
                "Listeners: {} taken over from the previous process, {} bound, {} closed (address no longer configured).",
                report.adopted, report.bound, report.closed
            ),
        );
    }
    let pidfile = match worker {
        true => None,
        false => opts
            .pidfile
            .clone()
            .or_else(|| config.global.pidfile.clone()),
    };
    if let Some(p) = &pidfile {
        std::fs::write(p, format!("{}\n", std::process::id()))
            .map_err(|e| RunError::Io("cannot write pidfile", e))?;
    }
    // Everything privileged is done (ports bound, logs and sockets open, pidfile
    // written): jail and drop privileges before serving (HAProxy's order).
    if let Some(dir) = &config.global.chroot {
        crate::sys::privs::chroot(dir).map_err(|e| RunError::Io("cannot chroot", e))?;
    }
    if let Some(id) = &identity {
        crate::sys::privs::become_(id)
            .map_err(|e| RunError::Io("cannot drop privileges (global user/group)", e))?;
    }
    // The master hears first: whoever reads the line below may act on the
    // worker at once (a test kills it), and the master must already count
    // it as serving.
    if let Some(ch) = &opts.worker {
        tell_master(ch.clone())?;
    }
    // Tests and scripts wait for this line: every listener is bound and every
    // shard's ring is running.
    crate::log::eprint_line(&format!(
        "ringlb ready: {n} shards, {nlisteners} listeners, pid {}",
        std::process::id()
    ));
    let _ = notifier.send(&format!(
        "READY=1\nMAINPID={}\nSTATUS=Ready: {n} shards, {nlisteners} listeners",
        std::process::id()
    ));
    for (pid, sig) in &opts.signal_on_ready {
        if let Err(e) = signals::send(*pid, *sig) {
            eprintln!("ringlb: cannot signal old process {pid}: {e}");
        }
    }
    // A dying shard raises its own signal, so the wait needs no timeout.
    let died = loop {
        match signals::wait(Duration::from_secs(3600)) {
            // SIGUSR1 is HAProxy's soft stop (what `-sf` sends): the same drain.
            Ok(Some(libc::SIGTERM | libc::SIGINT | libc::SIGUSR1)) => break false,
            Ok(Some(sig)) if sig == signals::shard_exit_signal() => {
                if !shards.failed().is_empty() {
                    break true;
                }
            }
            // Not ours: ringlb starts no children outside master-worker.
            Ok(Some(libc::SIGCHLD)) => {}
            Ok(Some(sig)) => {
                eprintln!(
                    "ringlb: signal {sig} ignored (to reload, run with -W / master-worker, \
                     or start a new process with -x SOCKET -sf PID)"
                );
            }
            Ok(None) => {}
            Err(e) => return Err(RunError::Io("sigtimedwait", e)),
        }
    };
    let _ = notifier.send(if died {
        "STOPPING=1\nSTATUS=A shard died; stopping"
    } else {
        "STOPPING=1\nSTATUS=Stopping: draining sessions"
    });
    control.stop();
    shards.stop();
    if let Some(e) = &exposure {
        e.withdraw();
    }
    if died {
        let failed = shards.failed();
        for (id, why) in &failed {
            logger.event(level::ALERT, format!("Shard {id} died: {why}. Stopping."));
        }
        shards.kill();
        shards.join(Some(Instant::now()));
        logger.shutdown();
        remove_own_pidfile(pidfile.as_deref());
        return Err(RunError::ShardDied(failed));
    }
    // `hard-stop-after` beyond what an Instant can hold means never.
    let hard_stop = config
        .global
        .hard_stop_after
        .and_then(|d| Instant::now().checked_add(d));
    shards.join(hard_stop);
    for fe in config.frontends.iter().filter(|f| !f.disabled) {
        logger.event(level::NOTICE, format!("Proxy {} stopped.", fe.name));
    }
    logger.shutdown();
    remove_own_pidfile(pidfile.as_deref());
    Ok(())
}

/// The listeners to adopt: the master's (worker), the old process's (`-x`), or
/// none. An unreachable `-x` socket is a warning, as in HAProxy: the process
/// binds new sockets beside the old ones (`SO_REUSEPORT`).
fn take_listeners(opts: &RunOptions) -> Result<Vec<crate::handover::Held>, RunError> {
    if let Some(ch) = &opts.worker {
        return crate::handover::take(ch)
            .map_err(|e| RunError::Worker(format!("cannot take the master's listeners: {e}")));
    }
    let Some(path) = &opts.listeners_from else {
        return Ok(Vec::new());
    };
    match crate::handover::take_from_path(path) {
        Ok(h) => Ok(h),
        Err(e) => {
            eprintln!(
                "ringlb: warning: -x {}: {e}; binding new sockets instead",
                path.display()
            );
            Ok(Vec::new())
        }
    }
}

/// A worker's `READY` to its master; then a thread waits for the master to
/// go away (the pair's end of stream) and finishes this worker gracefully, so
/// a killed master leaves no orphan serving stale configuration forever.
fn tell_master(ch: Arc<UnixStream>) -> Result<(), RunError> {
    (&*ch)
        .write_all(format!("READY {}\n", std::process::id()).as_bytes())
        .map_err(|e| RunError::Io("cannot tell the master", e))?;
    let _ = std::thread::Builder::new()
        .name("ringlb-master-watch".into())
        .spawn(move || {
            let mut b = [0u8; 64];
            let _ = ch.set_read_timeout(None);
            while matches!(std::io::Read::read(&mut &*ch, &mut b), Ok(n) if n > 0) {}
            let _ = signals::send(std::process::id(), libc::SIGUSR1);
        });
    Ok(())
}

/// Removes the pidfile if it still names this process: a successor started
/// with `-sf` may have written its own pid there already.
fn remove_own_pidfile(pidfile: Option<&std::path::Path>) {
    if let Some(p) = pidfile {
        let ours = std::process::id().to_string();
        if std::fs::read_to_string(p).is_ok_and(|s| s.trim() == ours) {
            let _ = std::fs::remove_file(p);
        }
    }
}
