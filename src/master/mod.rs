//! Master-worker mode (`-W`, `-Ws`, `master-worker` in `global`, TOML
//! `global.master-worker`), with HAProxy 2.6's semantics:
//!
//! - The master binds every listener, writes the pidfile, speaks to systemd
//!   (`READY=1`, `RELOADING=1`, `STATUS=`, when `$NOTIFY_SOCKET` is set) and runs
//!   the proxy in a worker: this same binary, re-executed, which receives the
//!   listeners over a socket pair inherited from the master (`crate::handover`)
//!   and answers `READY` on it once it serves. The master runs no shard and
//!   opens no connection.
//! - `SIGUSR2` (or `SIGHUP`) re-reads the configuration. A configuration that
//!   does not load, or a worker that does not come up, is reported (stderr, the
//!   log, the status file `ringlb reload` waits on, systemd's `STATUS=`) and
//!   changes nothing: the current worker keeps serving. Otherwise the new worker
//!   takes the listeners, and only once it is ready are the old workers sent
//!   `SIGUSR1` (finish your sessions, bounded by their `hard-stop-after`).
//! - `SIGTERM`/`SIGINT`/`SIGUSR1` are passed to every worker; the master exits
//!   once they all have.
//! - A former worker's exit is logged. The current worker dying on its own is an
//!   alert; as HAProxy's default (`exit-on-failure`), the master then stops the
//!   other workers and exits with failure, so a supervisor (systemd's
//!   `Restart=on-failure`) restarts the whole: nothing restarts silently.
//!
//! - `-S PATH` (HAProxy's master CLI, `cli`): `reload` there does the same and
//!   answers with the outcome; `show proc` lists the processes.
//!
//! Never forwards traffic; never blocks on a worker for longer than
//! [`READY_PATIENCE`].

pub mod cli;

use std::io::{BufRead, BufReader};
use std::os::fd::AsRawFd;
use std::os::unix::net::UnixStream;
use std::path::{Path, PathBuf};
use std::process::{Child, Command, Stdio};
use std::sync::mpsc::{Receiver, Sender};
use std::sync::Arc;
use std::time::{Duration, Instant};

use crate::config::model::Config;
use crate::handover::{self, Held};
use crate::log::{level, Logger};
use crate::run::RunError;
use crate::shard;
use crate::sys::{fdpass, notify::Notifier, process, signals};

/// The environment variable naming the worker's end of its socket pair.
pub const WORKER_FD_ENV: &str = "RINGLB_MASTER_FD";

/// How long a new worker may take to bind nothing and start its shards.
pub const READY_PATIENCE: Duration = Duration::from_secs(30);

pub struct MasterOptions {
    pub pidfile: Option<PathBuf>,
    pub daemon: bool,
    pub shards: Option<usize>,
    /// `ringlb` arguments that run one worker on the same files and options.
    pub worker_args: Vec<String>,
    pub quiet: bool,
    /// `-S PATH`: the master CLI socket.
    pub cli: Option<PathBuf>,
}

/// What the master shows its CLI: the last reload answer and the processes.
#[derive(Debug, Default, Clone)]
pub struct Board {
    /// Answers to reloads so far (a new one is the answer to the latest).
    pub answers: u32,
    pub ok: bool,
    pub message: String,
    /// (pid, generation, leaving) of every worker.
    pub workers: Vec<(u32, u32, bool)>,
    pub reloads: u32,
}

/// Loads and validates the configuration again; the error is the text to
/// report (`FILE:LINE:COL: ...`).
pub type Loader<'a> = &'a dyn Fn() -> Result<Config, String>;

/// The file next to the pidfile where the master reports each reload's outcome:
/// `N ok|error` on the first line (`N` counts the answers), the message after.
pub fn status_path(pidfile: &Path) -> PathBuf {
    let mut p = pidfile.as_os_str().to_owned();
    p.push(".reload");
    PathBuf::from(p)
}

/// The worker's end of the master's socket pair, when this process is a worker.
pub fn worker_channel_from_env() -> Option<std::io::Result<UnixStream>> {
    let v = std::env::var(WORKER_FD_ENV).ok()?;
    std::env::remove_var(WORKER_FD_ENV);
    let fd = match v.parse() {
        Ok(fd) => fd,
        Err(_) => {
            return Some(Err(std::io::Error::other(format!(
                "{WORKER_FD_ENV}={v}: not a descriptor number"
            ))))
        }
    };
    Some(fdpass::adopt_inherited(fd).map(UnixStream::from))
}

enum Event {
    Ready(u32),
    Gone(u32),
}

struct Worker {
    child: Child,
    generation: u32,
    leaving: bool,
}

struct Master<'a> {
    load: Loader<'a>,
    opts: MasterOptions,
    held: Arc<Vec<Held>>,
    workers: Vec<Worker>,
    generation: u32,
    events: (Sender<Event>, Receiver<Event>),
    notifier: Notifier,
    logger: Logger,
    status: Option<PathBuf>,
    board: Arc<std::sync::Mutex<Board>>,
    /// The binary workers run, by the path it had at startup: a binary
    /// upgraded in place is what the next reload runs (as HAProxy re-executes
    /// itself), where `/proc/self/exe` would name the deleted old file.
    exe: PathBuf,
}

pub fn run(load: Loader<'_>, config: Config, opts: MasterOptions) -> Result<(), RunError> {
    signals::setup().map_err(|e| RunError::Io("cannot set up signals", e))?;
    let exe = std::env::current_exe().map_err(|e| RunError::Io("cannot find own binary", e))?;
    let notifier =
        Notifier::from_env().map_err(|e| RunError::Io("cannot reach $NOTIFY_SOCKET", e))?;
    let n = shard::shard_count(&config, opts.shards);
    let (listeners, _) = shard::bind_adopting(&config, n, Vec::new()).map_err(RunError::Start)?;
    let held = shard::exposed(&listeners).map_err(|e| RunError::Io("cannot copy listeners", e))?;
    drop(listeners);
    if opts.daemon || config.global.daemon {
        process::daemonize().map_err(|e| RunError::Io("cannot daemonize", e))?;
    }
    let logger =
        Logger::start(&config, false).map_err(|e| RunError::Io("cannot open log target", e))?;
    let pidfile = opts
        .pidfile
        .clone()
        .or_else(|| config.global.pidfile.clone());
    if let Some(p) = &pidfile {
        std::fs::write(p, format!("{}\n", std::process::id()))
            .map_err(|e| RunError::Io("cannot write pidfile", e))?;
    }
    let mut m = Master {
        load,
        opts: MasterOptions { pidfile, ..opts },
        held: Arc::new(held),
        workers: Vec::new(),
        generation: 0,
        events: std::sync::mpsc::channel(),
        notifier,
        logger,
        status: None,
        board: Arc::default(),
        exe,
    };
    m.status = m.opts.pidfile.as_deref().map(status_path);
    if let Some(path) = &m.opts.cli {
        cli::serve(path, m.board.clone()).map_err(|e| RunError::Io("master CLI (-S)", e))?;
    }
    let first = m.start_worker().map_err(RunError::Worker)?;
    m.say(
        level::NOTICE,
        format!("master ready, worker {first} serving"),
    );
    // Answer 0: the master is up (no reload was asked yet).
    m.write_status(false, "ok", &format!("worker {first} serving"));
    let _ = m.notifier.send(&format!(
        "READY=1\nMAINPID={}\nSTATUS=Ready: worker {first}",
        std::process::id()
    ));
    let code = m.main_loop()?;
    m.logger.shutdown();
    if let Some(p) = &m.opts.pidfile {
        let _ = std::fs::remove_file(p);
    }
    if let Some(p) = &m.status {
        let _ = std::fs::remove_file(p);
    }
    match code {
        0 => Ok(()),
        c => Err(RunError::Worker(format!(
            "the current worker failed (exit code {c}); every worker was stopped"
        ))),
    }
}

impl Master<'_> {
    /// Stderr and the log, as `ringlb master: ...`.
    fn say(&self, lvl: u8, msg: String) {
        if !self.opts.quiet || lvl <= level::ERR {
            crate::log::eprint_line(&format!("ringlb master: {msg}"));
        }
        self.logger.event(lvl, msg);
    }

    /// Writes the status file; `answer`: this answers a reload (the answer
    /// count rises, which is what `ringlb reload` waits for).
    fn write_status(&self, answer: bool, verdict: &str, msg: &str) {
        let n = {
            let mut b = self.board.lock().unwrap_or_else(|e| e.into_inner());
            b.answers += u32::from(answer);
            b.ok = verdict == "ok";
            b.message = msg.to_string();
            b.answers
        };
        if let Some(p) = &self.status {
            let tmp = p.with_extension("reload.tmp");
            let body = format!("{n} {verdict}\n{msg}\n");
            if std::fs::write(&tmp, body).is_ok() {
                let _ = std::fs::rename(&tmp, p);
            }
        }
    }

    /// Shows the current workers to the CLI.
    fn publish(&self) {
        let mut b = self.board.lock().unwrap_or_else(|e| e.into_inner());
        b.workers = self
            .workers
            .iter()
            .map(|w| (w.child.id(), w.generation, w.leaving))
            .collect();
        b.reloads = self.generation.saturating_sub(1);
    }

    /// Runs until every worker has exited; the exit code to report.
    fn main_loop(&mut self) -> Result<i32, RunError> {
        let mut stopping = false;
        let mut failure = 0;
        loop {
            // Workers' exits arrive as SIGCHLD; the timeout is only a backstop.
            match signals::wait(Duration::from_secs(1)) {
                Ok(Some(libc::SIGUSR2 | libc::SIGHUP)) if !stopping => self.reload(),
                Ok(Some(sig @ (libc::SIGTERM | libc::SIGINT | libc::SIGUSR1))) => {
                    if !stopping {
                        self.say(level::NOTICE, "stopping every worker".into());
                        let _ = self.notifier.send("STOPPING=1\nSTATUS=Stopping");
                        // Our copies would keep the sockets listening, unserved,
                        // until the last worker is gone: close them now.
                        self.held = Arc::new(Vec::new());
                    }
                    stopping = true;
                    for w in &self.workers {
                        let _ = signals::send(w.child.id(), sig);
                    }
                }
                Ok(_) => {}
                Err(e) => return Err(RunError::Io("sigtimedwait", e)),
            }
            while self.events.1.try_recv().is_ok() {}
            let reaped = self.reap(stopping);
            self.publish();
            if let Some(code) = reaped {
                failure = code;
                stopping = true;
                self.held = Arc::new(Vec::new());
                let _ = self
                    .notifier
                    .send("STOPPING=1\nSTATUS=The worker failed; stopping");
            }
            if stopping && self.workers.is_empty() {
                return Ok(failure);
            }
        }
    }

    /// Collects exited workers; `Some(code)` when the current one failed.
    fn reap(&mut self, stopping: bool) -> Option<i32> {
        let mut failed = None;
        let mut i = 0;
        while i < self.workers.len() {
            let Ok(Some(st)) = self.workers[i].child.try_wait() else {
                i += 1;
                continue;
            };
            let w = self.workers.remove(i);
            let code = st.code().unwrap_or_else(|| 128 + signal_of(&st));
            if w.leaving || stopping {
                self.say(
                    level::NOTICE,
                    format!("former worker {} exited with code {code}", w.child.id()),
                );
            } else {
                self.say(
                    level::ALERT,
                    format!(
                        "current worker {} (generation {}) exited with code {code}; \
                         exit-on-failure: stopping every worker",
                        w.child.id(),
                        w.generation
                    ),
                );
                for o in &self.workers {
                    let _ = signals::send(o.child.id(), libc::SIGTERM);
                }
                failed = Some(code.max(1));
            }
        }
        failed
    }

    /// Starts a worker on the listeners in `self.held` and waits until it
    /// serves; its pid.
    fn start_worker(&mut self) -> Result<u32, String> {
        self.generation += 1;
        let generation = self.generation;
        let (mine, theirs) =
            UnixStream::pair().map_err(|e| format!("cannot create a socket pair: {e}"))?;
        let mut cmd = Command::new(&self.exe);
        cmd.args(&self.opts.worker_args)
            .env(WORKER_FD_ENV, theirs.as_raw_fd().to_string())
            .env_remove("NOTIFY_SOCKET")
            .stdin(Stdio::null());
        fdpass::inherit_in_child(&mut cmd, theirs.as_raw_fd());
        let child = cmd
            .spawn()
            .map_err(|e| format!("cannot start a worker: {e}"))?;
        drop(theirs);
        let pid = child.id();
        self.workers.push(Worker {
            child,
            generation,
            leaving: false,
        });
        let held = self.held.clone();
        let tx = self.events.0.clone();
        let _ = std::thread::Builder::new()
            .name(format!("ringlb-worker-{generation}"))
            .spawn(move || {
                let given = handover::answer(&mine, &held);
                // The worker has its own copies now; ours stay in `self.held`.
                drop(held);
                if given.is_ok() {
                    let _ = mine.set_read_timeout(None);
                    let mut lines = BufReader::new(&mine).lines();
                    while let Some(Ok(l)) = lines.next() {
                        if l.starts_with("READY") {
                            let _ = tx.send(Event::Ready(generation));
                        }
                    }
                }
                let _ = tx.send(Event::Gone(generation));
            });
        self.publish();
        let deadline = Instant::now() + READY_PATIENCE;
        loop {
            let left = deadline.saturating_duration_since(Instant::now());
            match self
                .events
                .1
                .recv_timeout(left.min(Duration::from_millis(100)))
            {
                Ok(Event::Ready(g)) if g == generation => return Ok(pid),
                Ok(Event::Gone(g)) if g == generation => {
                    let st = self.finish(pid);
                    return Err(format!("the new worker {pid} exited before serving ({st})"));
                }
                Ok(_) => {}
                Err(_) if Instant::now() >= deadline => {
                    let _ = signals::send(pid, libc::SIGKILL);
                    let st = self.finish(pid);
                    return Err(format!(
                        "the new worker {pid} was not ready within {}s ({st})",
                        READY_PATIENCE.as_secs()
                    ));
                }
                Err(_) => {}
            }
        }
    }

    /// Waits for worker `pid` (which ended or was killed) and forgets it.
    fn finish(&mut self, pid: u32) -> String {
        let Some(i) = self.workers.iter().position(|w| w.child.id() == pid) else {
            return "gone".into();
        };
        let mut w = self.workers.remove(i);
        let end = Instant::now() + Duration::from_secs(5);
        while Instant::now() < end {
            if let Ok(Some(st)) = w.child.try_wait() {
                return st.to_string();
            }
            std::thread::sleep(Duration::from_millis(5));
        }
        let _ = w.child.kill();
        w.child.wait().map(|s| s.to_string()).unwrap_or_default()
    }

    fn reload(&mut self) {
        let monotonic = process::monotonic_usec();
        let _ = self.notifier.send(&format!(
            "RELOADING=1\nMONOTONIC_USEC={monotonic}\nSTATUS=Reloading"
        ));
        self.say(
            level::NOTICE,
            "reloading the configuration (SIGUSR2)".into(),
        );
        match self.try_reload() {
            Ok(pid) => {
                let old: Vec<u32> = self
                    .workers
                    .iter_mut()
                    .filter(|w| w.child.id() != pid && !w.leaving)
                    .map(|w| {
                        w.leaving = true;
                        w.child.id()
                    })
                    .collect();
                for p in &old {
                    let _ = signals::send(*p, libc::SIGUSR1);
                }
                self.publish();
                let msg = format!(
                    "reload done: worker {pid} (generation {}) serving, {} former worker(s) finishing",
                    self.generation,
                    old.len()
                );
                self.say(level::NOTICE, msg.clone());
                self.write_status(true, "ok", &msg);
                let _ = self
                    .notifier
                    .send(&format!("READY=1\nSTATUS=Ready: worker {pid}"));
            }
            Err(e) => {
                let msg = format!("reload failed, the current worker keeps serving: {e}");
                self.say(level::ALERT, msg.clone());
                self.write_status(true, "error", &msg);
                let _ = self.notifier.send(&format!(
                    "READY=1\nSTATUS=Reload failed: {}",
                    first_line(&e)
                ));
            }
        }
    }

    fn try_reload(&mut self) -> Result<u32, String> {
        let config = (self.load)()?;
        let n = shard::shard_count(&config, self.opts.shards);
        let copies =
            handover::duplicate(&self.held).map_err(|e| format!("cannot copy listeners: {e}"))?;
        let (listeners, report) =
            shard::bind_adopting(&config, n, copies).map_err(|e| e.to_string())?;
        let held = shard::exposed(&listeners).map_err(|e| format!("cannot copy listeners: {e}"))?;
        drop(listeners);
        self.say(
            level::INFO,
            format!(
                "listeners: {} kept, {} bound, {} closed; {n} shards",
                report.adopted, report.bound, report.closed
            ),
        );
        let previous = std::mem::replace(&mut self.held, Arc::new(held));
        match self.start_worker() {
            Ok(pid) => Ok(pid),
            Err(e) => {
                self.held = previous;
                Err(e)
            }
        }
    }
}

fn first_line(s: &str) -> &str {
    s.lines().next().unwrap_or("")
}

fn signal_of(st: &std::process::ExitStatus) -> i32 {
    use std::os::unix::process::ExitStatusExt;
    st.signal().unwrap_or(0)
}

/// Asks the master behind `pidfile` to reload and waits (bounded) for its
/// verdict: `Ok(message)` or `Err(message)`.
pub fn request_reload(pidfile: &Path, timeout: Duration) -> Result<String, String> {
    let pid: u32 = std::fs::read_to_string(pidfile)
        .map_err(|e| format!("{}: {e}", pidfile.display()))?
        .trim()
        .parse()
        .map_err(|_| format!("{}: not a process id", pidfile.display()))?;
    let status = status_path(pidfile);
    let read = || -> Option<(u32, String, String)> {
        let t = std::fs::read_to_string(&status).ok()?;
        let (head, msg) = t.split_once('\n').unwrap_or((&t, ""));
        let (gen, verdict) = head.split_once(' ')?;
        Some((
            gen.parse().ok()?,
            verdict.to_string(),
            msg.trim().to_string(),
        ))
    };
    let end = Instant::now() + timeout;
    // A master that is still starting writes the file once its first worker
    // serves; a SIGUSR2 before that would be answered too, but not told apart.
    let before = loop {
        if let Some((n, _, _)) = read() {
            break n;
        }
        if Instant::now() >= end {
            return Err(format!(
                "{}: no status file; is process {pid} a ringlb master (-W)?",
                status.display()
            ));
        }
        std::thread::sleep(Duration::from_millis(20));
    };
    signals::send(pid, libc::SIGUSR2).map_err(|e| format!("cannot signal process {pid}: {e}"))?;
    loop {
        // The master numbers its answers: a new number is the answer to us
        // (or to a reload asked at the same moment, which read the same file).
        if let Some((gen, verdict, msg)) = read() {
            if gen != before {
                return if verdict == "ok" { Ok(msg) } else { Err(msg) };
            }
        }
        if Instant::now() >= end {
            return Err(format!(
                "no answer from process {pid} within {}s",
                timeout.as_secs()
            ));
        }
        std::thread::sleep(Duration::from_millis(20));
    }
}

impl Drop for Master<'_> {
    fn drop(&mut self) {
        // An error path leaves no worker behind.
        for w in &mut self.workers {
            let _ = w.child.kill();
            let _ = w.child.wait();
        }
    }
}
