//! Session and event logging that never blocks a data shard. A shard only moves a
//! small record into a bounded queue (`try_send`); one writer thread formats the
//! line (HAProxy's `tcplog`) and writes it to the frontend's targets. When the
//! queue is full the line is dropped and counted, and the writer reports the
//! drops once it catches up.

mod format;
mod logformat;
mod record;
mod sink;

use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::{Arc, Mutex};
use std::thread::JoinHandle;
use std::time::{Duration, SystemTime};

use crossbeam_channel::{Receiver, Sender, TrySendError};

pub(crate) use format::MONTHS;
pub use format::{civil, httplog, syslog_time, tcplog, Names};
pub use logformat::{LogFormat, LogFormatError, LogRecord, Var, HTTPLOG_FORMAT, TCPLOG_FORMAT};
pub use record::{HttpRecord, SessionRecord, Termination, PROMEX_APPLET, STATS_APPLET};

use crate::config::model::{Config, LogTarget};
use sink::Target;

/// syslog levels used by ringlb.
pub mod level {
    pub const ALERT: u8 = 1;
    pub const ERR: u8 = 3;
    pub const WARNING: u8 = 4;
    pub const NOTICE: u8 = 5;
    pub const INFO: u8 = 6;
}

/// HAProxy's foreground form of an alert or warning on stderr:
/// `[WARNING]  (PID) : text`. Server state changes count as warnings (HAProxy
/// prints them so); other notices and info lines stay off the terminal.
fn stderr_line(lvl: u8, text: &str) -> Option<String> {
    let label = match lvl {
        0..=2 => "[ALERT]",
        3 => "[ALERT]",
        4 => "[WARNING]",
        5 if text.starts_with("Server ") => "[WARNING]",
        _ => return None,
    };
    Some(format!("{label:<10} ({}) : {text}", std::process::id()))
}

/// Writes `line` and a newline to stderr in one `write`: `eprintln!` writes
/// its pieces one by one on unbuffered stderr, and a master and its worker
/// share that file, so their lines could interleave mid-line (a test reading
/// the worker's readiness line once saw it cut by the master's).
pub fn eprint_line(line: &str) {
    use std::io::Write;
    let mut buf = String::with_capacity(line.len() + 1);
    buf.push_str(line);
    buf.push('\n');
    let _ = std::io::stderr().lock().write_all(buf.as_bytes());
}

/// Lines the queue holds before new ones are dropped.
const QUEUE: usize = 8192;

enum Msg {
    Session(SessionRecord),
    Http(Box<HttpRecord>),
    Event(u8, String),
    Flush(Sender<()>),
    Stop,
}

struct Inner {
    tx: Option<Sender<Msg>>,
    dropped: AtomicU64,
    /// Lines a target failed to write (an unreachable syslog, a full disk).
    write_failures: AtomicU64,
    /// Per frontend: does it log at all (targets present, format not none)?
    frontend_logs: Vec<bool>,
    dontlognull: Vec<bool>,
    writer: Mutex<Option<JoinHandle<()>>>,
}

/// A cheap, cloneable handle to the log writer.
#[derive(Clone)]
pub struct Logger {
    inner: Arc<Inner>,
}

impl Logger {
    /// Opens every target and starts the writer thread. `stderr_alerts`: with
    /// no global log target, print alerts and warnings (server state changes,
    /// startup warnings) on stderr as HAProxy does in the foreground.
    pub fn start(config: &Config, stderr_alerts: bool) -> std::io::Result<Logger> {
        let open = |list: &[LogTarget]| {
            list.iter()
                .map(Target::open)
                .collect::<std::io::Result<Vec<_>>>()
        };
        let global = open(&config.global.log)?;
        let mut per_frontend = Vec::new();
        for fe in &config.frontends {
            per_frontend.push(open(&fe.log)?);
        }
        let frontend_logs = config
            .frontends
            .iter()
            .map(|f| !f.log.is_empty() && f.log_format != crate::config::model::LogFormat::None)
            .collect();
        let names = Names {
            frontends: config.frontends.iter().map(|f| f.name.clone()).collect(),
            backends: config
                .backends
                .iter()
                .map(|b| {
                    (
                        b.name.clone(),
                        b.servers.iter().map(|s| s.name.clone()).collect(),
                    )
                })
                .collect(),
        };
        let (tx, rx) = crossbeam_channel::bounded(QUEUE);
        let inner = Arc::new(Inner {
            tx: Some(tx),
            dropped: AtomicU64::new(0),
            write_failures: AtomicU64::new(0),
            frontend_logs,
            dontlognull: config.frontends.iter().map(|f| f.dontlognull).collect(),
            writer: Mutex::new(None),
        });
        let httplog = config
            .frontends
            .iter()
            .map(|f| f.log_format == crate::config::model::LogFormat::Http)
            .collect();
        let custom = config
            .frontends
            .iter()
            .map(|f| match &f.log_format {
                crate::config::model::LogFormat::Custom(c) => Some(c.clone()),
                _ => None,
            })
            .collect();
        let w = Writer {
            rx,
            httplog,
            custom,
            global,
            per_frontend,
            names,
            host: hostname(),
            tag: format!("ringlb[{}]", std::process::id()),
            inner: Arc::downgrade(&inner),
            reported_drops: 0,
            stderr_alerts: stderr_alerts && config.global.log.is_empty(),
        };
        let handle = std::thread::Builder::new()
            .name("ringlb-log".into())
            .spawn(move || w.run())?;
        *inner.writer.lock().unwrap_or_else(|e| e.into_inner()) = Some(handle);
        Ok(Logger { inner })
    }

    /// A logger that discards everything.
    pub fn disabled() -> Logger {
        Logger {
            inner: Arc::new(Inner {
                tx: None,
                dropped: AtomicU64::new(0),
                write_failures: AtomicU64::new(0),
                frontend_logs: Vec::new(),
                dontlognull: Vec::new(),
                writer: Mutex::new(None),
            }),
        }
    }

    fn send(&self, m: Msg) {
        if let Some(tx) = &self.inner.tx {
            match tx.try_send(m) {
                Ok(()) => {}
                Err(TrySendError::Full(_)) | Err(TrySendError::Disconnected(_)) => {
                    self.inner.dropped.fetch_add(1, Ordering::Relaxed);
                }
            }
        }
    }

    /// Does `frontend` log sessions at all? When it does not, a session need not
    /// gather what only its log line would show.
    pub fn logs_frontend(&self, frontend: usize) -> bool {
        self.inner
            .frontend_logs
            .get(frontend)
            .copied()
            .unwrap_or(false)
    }

    /// Queues a session line; never blocks.
    pub fn session(&self, r: SessionRecord) {
        if !self.logs_frontend(r.frontend) {
            return;
        }
        // `option dontlognull`: a connection that sent nothing is not logged.
        if self
            .inner
            .dontlognull
            .get(r.frontend)
            .copied()
            .unwrap_or(false)
            && r.bytes_up == 0
        {
            return;
        }
        self.send(Msg::Session(r));
    }

    /// Queues the line of one HTTP request (`option httplog`, or the session's
    /// `tcplog` line when the frontend asked for that); never blocks.
    pub fn http(&self, r: HttpRecord) {
        if !self.logs_frontend(r.session.frontend) {
            return;
        }
        if self
            .inner
            .dontlognull
            .get(r.session.frontend)
            .copied()
            .unwrap_or(false)
            && r.session.bytes_up == 0
        {
            return;
        }
        self.send(Msg::Http(Box::new(r)));
    }

    /// Queues a process or server event for the global targets; never blocks.
    pub fn event(&self, level: u8, msg: String) {
        self.send(Msg::Event(level, msg));
    }

    /// Lines a target failed to write.
    pub fn write_failures(&self) -> u64 {
        self.inner.write_failures.load(Ordering::Relaxed)
    }

    /// Lines dropped because the queue was full.
    pub fn dropped(&self) -> u64 {
        self.inner.dropped.load(Ordering::Relaxed)
    }

    /// Waits (at most `timeout`) until every line queued so far is written.
    pub fn flush(&self, timeout: Duration) -> bool {
        let Some(tx) = &self.inner.tx else {
            return true;
        };
        let (done_tx, done_rx) = crossbeam_channel::bounded(1);
        if tx.send_timeout(Msg::Flush(done_tx), timeout).is_err() {
            return false;
        }
        done_rx.recv_timeout(timeout).is_ok()
    }

    /// Flushes and stops the writer thread.
    pub fn shutdown(&self) {
        if let Some(tx) = &self.inner.tx {
            let _ = tx.send_timeout(Msg::Stop, Duration::from_secs(2));
        }
        let h = self
            .inner
            .writer
            .lock()
            .unwrap_or_else(|e| e.into_inner())
            .take();
        if let Some(h) = h {
            let _ = h.join();
        }
    }
}

fn hostname() -> String {
    std::fs::read_to_string("/proc/sys/kernel/hostname")
        .map(|s| s.trim().to_string())
        .ok()
        .filter(|s| !s.is_empty())
        .unwrap_or_else(|| "localhost".into())
}

struct Writer {
    rx: Receiver<Msg>,
    /// Per frontend: `option httplog` (else an HTTP request logs as tcplog).
    httplog: Vec<bool>,
    /// Per frontend: a `log-format` of its own.
    custom: Vec<Option<Arc<LogFormat>>>,
    global: Vec<Target>,
    per_frontend: Vec<Vec<Target>>,
    names: Names,
    host: String,
    tag: String,
    inner: std::sync::Weak<Inner>,
    reported_drops: u64,
    stderr_alerts: bool,
}

impl Writer {
    fn run(mut self) {
        while let Ok(m) = self.rx.recv() {
            if !self.handle(m) {
                break;
            }
            // Drain what is queued, then report drops once caught up.
            while let Ok(m) = self.rx.try_recv() {
                if !self.handle(m) {
                    return;
                }
            }
            self.report_drops();
        }
    }

    fn handle(&mut self, m: Msg) -> bool {
        match m {
            Msg::Session(r) => {
                let line = match self.custom.get(r.frontend) {
                    Some(Some(f)) => f.render(LogRecord::Tcp(&r), &self.names),
                    _ => tcplog(&r, &self.names),
                };
                let now = syslog_time(SystemTime::now());
                if let Some(targets) = self.per_frontend.get_mut(r.frontend) {
                    let f = write_all(targets, level::INFO, &now, &self.host, &self.tag, &line);
                    self.count_failures(f);
                }
            }
            Msg::Http(r) => {
                let fe = r.session.frontend;
                let line = if let Some(Some(f)) = self.custom.get(fe) {
                    f.render(LogRecord::Http(&r), &self.names)
                } else if self.httplog.get(fe).copied().unwrap_or(false) {
                    httplog(&r, &self.names)
                } else {
                    tcplog(&r.session, &self.names)
                };
                let lvl = r.log_level.unwrap_or(level::INFO);
                if lvl > 7 {
                    // `set-log-level silent` (8; debug is 7).
                    return true;
                }
                let now = syslog_time(SystemTime::now());
                if let Some(targets) = self.per_frontend.get_mut(fe) {
                    write_all(targets, lvl, &now, &self.host, &self.tag, &line);
                }
            }
            Msg::Event(lvl, text) => {
                let now = syslog_time(SystemTime::now());
                let f = write_all(&mut self.global, lvl, &now, &self.host, &self.tag, &text);
                self.count_failures(f);
                if self.stderr_alerts {
                    if let Some(line) = stderr_line(lvl, &text) {
                        eprint_line(&line);
                    }
                }
            }
            Msg::Flush(done) => {
                self.report_drops();
                let _ = done.send(());
            }
            Msg::Stop => {
                self.report_drops();
                return false;
            }
        }
        true
    }

    fn count_failures(&self, n: u64) {
        if n > 0 {
            if let Some(inner) = self.inner.upgrade() {
                inner.write_failures.fetch_add(n, Ordering::Relaxed);
            }
        }
    }

    fn report_drops(&mut self) {
        let Some(inner) = self.inner.upgrade() else {
            return;
        };
        let d = inner.dropped.load(Ordering::Relaxed);
        if d > self.reported_drops {
            let text = format!(
                "{} log lines dropped because the log queue was full",
                d - self.reported_drops
            );
            self.reported_drops = d;
            let now = syslog_time(SystemTime::now());
            let f = write_all(
                &mut self.global,
                level::WARNING,
                &now,
                &self.host,
                &self.tag,
                &text,
            );
            self.count_failures(f);
        }
    }
}

/// Writes `line` to every target that wants it; returns how many failed.
fn write_all(targets: &mut [Target], lvl: u8, now: &str, host: &str, tag: &str, line: &str) -> u64 {
    let mut failed = 0;
    for t in targets.iter_mut() {
        if let Some(l) = t.accepts(lvl) {
            // A target that cannot take the line loses it (counted); the
            // others still get it.
            if t.write(l, now, host, tag, line).is_err() {
                failed += 1;
            }
        }
    }
    failed
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::net::SocketAddr;
    use std::time::{Instant, UNIX_EPOCH};

    fn record() -> SessionRecord {
        let a: SocketAddr = "127.0.0.1:1".parse().unwrap();
        SessionRecord {
            frontend: 0,
            backend: None,
            server: None,
            client: a,
            accept_time: UNIX_EPOCH,
            tw_ms: 0,
            tc_ms: 0,
            tt_ms: 0,
            bytes_up: 1,
            bytes_down: 0,
            termination: Termination::NORMAL,
            retries: 0,
            redispatched: false,
            actconn: 0,
            feconn: 0,
            beconn: 0,
            srv_conn: 0,
            srv_queue: 0,
            backend_queue: 0,
            ssl: None,
        }
    }

    #[test]
    fn a_stalled_writer_makes_lines_drop_and_count_never_block() {
        // A queue nobody reads: the writer is stalled for good.
        let (tx, rx) = crossbeam_channel::bounded(QUEUE);
        let logger = Logger {
            inner: Arc::new(Inner {
                tx: Some(tx),
                dropped: AtomicU64::new(0),
                write_failures: AtomicU64::new(0),
                frontend_logs: vec![true],
                dontlognull: vec![false],
                writer: Mutex::new(None),
            }),
        };
        let t0 = Instant::now();
        for _ in 0..QUEUE + 1000 {
            logger.session(record());
        }
        assert!(
            t0.elapsed() < Duration::from_secs(5),
            "session() must never wait"
        );
        assert_eq!(logger.dropped(), 1000);
        assert_eq!(rx.len(), QUEUE);
    }

    #[test]
    fn a_target_that_cannot_write_counts_its_lost_lines() {
        // /dev/full refuses every write (ENOSPC), as a full disk would.
        let cfg = crate::config::parse_str(
            "[global]\nlog = [{ target = \"/dev/full\" }]\n",
            std::path::Path::new("t.toml"),
        )
        .unwrap();
        let logger = Logger::start(&cfg, false).unwrap();
        for i in 0..3 {
            logger.event(level::WARNING, format!("line {i}"));
        }
        assert!(logger.flush(std::time::Duration::from_secs(5)));
        assert_eq!(logger.write_failures(), 3);
        logger.shutdown();
    }

    #[test]
    fn dontlognull_skips_sessions_that_sent_nothing() {
        let (tx, rx) = crossbeam_channel::bounded(4);
        let logger = Logger {
            inner: Arc::new(Inner {
                tx: Some(tx),
                dropped: AtomicU64::new(0),
                write_failures: AtomicU64::new(0),
                frontend_logs: vec![true],
                dontlognull: vec![true],
                writer: Mutex::new(None),
            }),
        };
        logger.session(SessionRecord {
            bytes_up: 0,
            ..record()
        });
        assert_eq!(rx.len(), 0);
        logger.session(record());
        assert_eq!(rx.len(), 1);
    }
}
