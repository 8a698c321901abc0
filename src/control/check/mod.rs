//! Health-check probes, one per protocol family, run on the control shard's
//! glommio executor: connect, talk, judge. Every outcome is a `CheckResult` with
//! HAProxy's status names (`L4OK`, `L4CON`, `L7STS`, …), mapped to their long
//! reasons in one place (`CheckStatus::reason`). A probe never panics on what a
//! server sends; it reports it.

mod http;
mod proto;
mod tls;

use std::net::SocketAddr;
use std::time::{Duration, Instant};

use futures_lite::{AsyncRead, AsyncReadExt, AsyncWrite, AsyncWriteExt};
use glommio::net::TcpStream;

use crate::config::model::CheckSpec;

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum CheckStatus {
    L4Ok,
    L4Con,
    L4Tout,
    /// Over TLS (`check-ssl`): the handshake passed, timed out, failed.
    L6Ok,
    L6Tout,
    L6Rsp,
    L7Ok,
    L7Rsp,
    L7Sts,
    L7Tout,
    SockErr,
}

impl CheckStatus {
    pub fn is_ok(self) -> bool {
        matches!(
            self,
            CheckStatus::L4Ok | CheckStatus::L6Ok | CheckStatus::L7Ok
        )
    }

    /// HAProxy's short name, as on its stats page.
    pub fn name(self) -> &'static str {
        match self {
            CheckStatus::L4Ok => "L4OK",
            CheckStatus::L4Con => "L4CON",
            CheckStatus::L4Tout => "L4TOUT",
            CheckStatus::L6Ok => "L6OK",
            CheckStatus::L6Tout => "L6TOUT",
            CheckStatus::L6Rsp => "L6RSP",
            CheckStatus::L7Ok => "L7OK",
            CheckStatus::L7Rsp => "L7RSP",
            CheckStatus::L7Sts => "L7STS",
            CheckStatus::L7Tout => "L7TOUT",
            CheckStatus::SockErr => "SOCKERR",
        }
    }

    /// HAProxy's long reason, as in its "Server … is DOWN, reason: …" lines.
    pub fn reason(self) -> &'static str {
        match self {
            CheckStatus::L4Ok => "Layer4 check passed",
            CheckStatus::L4Con => "Layer4 connection problem",
            CheckStatus::L4Tout => "Layer4 timeout",
            CheckStatus::L6Ok => "Layer6 check passed",
            CheckStatus::L6Tout => "Layer6 timeout",
            CheckStatus::L6Rsp => "Layer6 invalid response",
            CheckStatus::L7Ok => "Layer7 check passed",
            CheckStatus::L7Rsp => "Layer7 invalid response",
            CheckStatus::L7Sts => "Layer7 wrong status",
            CheckStatus::L7Tout => "Layer7 timeout",
            CheckStatus::SockErr => "Socket error",
        }
    }
}

#[derive(Debug, Clone, PartialEq, Eq)]
pub struct CheckResult {
    pub status: CheckStatus,
    /// HTTP status (or protocol code) when there is one.
    pub code: Option<u16>,
    pub duration: Duration,
    /// Detail, e.g. the OS error or the content that did not match.
    pub info: String,
}

impl CheckResult {
    /// HAProxy's last-check cell: `L7OK/200 in 1ms`, `L4CON in 0ms`.
    pub fn summary(&self) -> String {
        match self.code {
            Some(c) => format!(
                "{}/{c} in {}ms",
                self.status.name(),
                self.duration.as_millis()
            ),
            None => format!("{} in {}ms", self.status.name(), self.duration.as_millis()),
        }
    }
}

/// What a protocol probe concluded (before timing is attached).
pub(crate) struct Verdict {
    pub status: CheckStatus,
    pub code: Option<u16>,
    pub info: String,
}

impl Verdict {
    pub fn new(status: CheckStatus, code: Option<u16>, info: impl Into<String>) -> Verdict {
        Verdict {
            status,
            code,
            info: info.into(),
        }
    }
}

/// What a probe talks through: the TCP socket, or TLS over it.
pub(crate) trait Stream: AsyncRead + AsyncWrite + Unpin {}
impl<S: AsyncRead + AsyncWrite + Unpin> Stream for S {}

/// Runs one check of `spec` against `addr`, bounded by `timeout` in total;
/// over TLS when `tls` is given (`check-ssl`).
pub async fn probe(
    spec: &CheckSpec,
    addr: SocketAddr,
    timeout: Duration,
    tls: Option<&crate::tls::ServerTls>,
) -> CheckResult {
    let t0 = Instant::now();
    let deadline = t0 + timeout;
    let v = run(spec, addr, deadline, tls).await;
    CheckResult {
        status: v.status,
        code: v.code,
        duration: t0.elapsed(),
        info: v.info,
    }
}

async fn run(
    spec: &CheckSpec,
    addr: SocketAddr,
    deadline: Instant,
    tls: Option<&crate::tls::ServerTls>,
) -> Verdict {
    let left = deadline.saturating_duration_since(Instant::now());
    let conn = within(left, async {
        TcpStream::connect(addr).await.map_err(std::io::Error::from)
    })
    .await;
    let mut s = match conn {
        Ok(s) => s,
        Err(e) if e.kind() == std::io::ErrorKind::TimedOut => {
            return Verdict::new(CheckStatus::L4Tout, None, "connect timeout")
        }
        // Out of fds or memory here, not a server fault: a socket error, which
        // the health state machine does not count against the server.
        Err(e) if is_local_failure(&e) => {
            return Verdict::new(CheckStatus::SockErr, None, connect_error(&e))
        }
        Err(e) => return Verdict::new(CheckStatus::L4Con, None, connect_error(&e)),
    };
    // `check-ssl`: the handshake is layer 6 (L6OK, L6TOUT, L6RSP as HAProxy).
    let mut tls_stream;
    let (s, connected): (&mut dyn Stream, CheckStatus) = match tls {
        None => (&mut s, CheckStatus::L4Ok),
        Some(tls) => {
            let left = deadline.saturating_duration_since(Instant::now());
            match within(left, tls::TlsStream::connect(tls, &mut s, addr)).await {
                Ok(t) => {
                    tls_stream = t;
                    (&mut tls_stream, CheckStatus::L6Ok)
                }
                Err(e) if e.kind() == std::io::ErrorKind::TimedOut => {
                    return Verdict::new(CheckStatus::L6Tout, None, "SSL handshake timeout")
                }
                Err(e) => {
                    return Verdict::new(
                        CheckStatus::L6Rsp,
                        None,
                        format!("SSL handshake failure: {e}"),
                    )
                }
            }
        }
    };
    let talk = async {
        Ok::<Verdict, std::io::Error>(match spec {
            CheckSpec::Tcp => Verdict::new(connected, None, ""),
            CheckSpec::Http { .. } => http::check(s, spec).await?,
            CheckSpec::Redis => proto::redis(s).await,
            CheckSpec::Pgsql { user } => proto::pgsql(s, user).await,
            CheckSpec::Mysql { user } => proto::mysql(s, user.as_deref()).await,
            CheckSpec::TcpCheck { steps } => proto::tcp_check(s, steps).await,
        })
    };
    let left = deadline.saturating_duration_since(Instant::now());
    match within(left, talk).await {
        Ok(v) => v,
        Err(e) if e.kind() == std::io::ErrorKind::TimedOut => Verdict::new(
            CheckStatus::L7Tout,
            None,
            "timeout waiting for the server's answer",
        ),
        Err(e) => Verdict::new(CheckStatus::L7Rsp, None, e.to_string()),
    }
}

/// `fut`, or a `TimedOut` error after `left`.
async fn within<T>(
    left: Duration,
    fut: impl std::future::Future<Output = std::io::Result<T>>,
) -> std::io::Result<T> {
    futures_lite::future::or(fut, async move {
        crate::control::timers::sleep(left).await;
        Err(std::io::Error::new(std::io::ErrorKind::TimedOut, "timeout"))
    })
    .await
}

/// The check could not even try: this process is out of fds, memory or ports.
fn is_local_failure(e: &std::io::Error) -> bool {
    let local = [
        libc::EMFILE,
        libc::ENFILE,
        libc::ENOBUFS,
        libc::ENOMEM,
        libc::EADDRNOTAVAIL,
    ];
    // glommio may wrap the OS error; its text still names the errno.
    e.raw_os_error().is_some_and(|c| local.contains(&c))
        || local.iter().any(|&c| {
            let name = std::io::Error::from_raw_os_error(c).to_string();
            let name = name.split(" (os error").next().unwrap_or(&name).to_string();
            e.to_string().contains(&name)
        })
}

/// The OS error of a failed connect, e.g. "Connection refused".
fn connect_error(e: &std::io::Error) -> String {
    let t = e.to_string();
    match t.find(" (os error") {
        Some(i) => t[..i].rsplit(": ").next().unwrap_or(&t).to_string(),
        None => t,
    }
}

/// Sends `data`.
pub(crate) async fn send(s: &mut dyn Stream, data: &[u8]) -> std::io::Result<()> {
    s.write_all(data).await?;
    s.flush().await
}

/// Reads until `enough(buf)` holds, EOF, or `max` bytes; returns what was read.
pub(crate) async fn read_until(
    s: &mut dyn Stream,
    max: usize,
    enough: impl Fn(&[u8]) -> bool,
) -> std::io::Result<Vec<u8>> {
    let mut buf = Vec::new();
    let mut chunk = [0u8; 4096];
    while buf.len() < max && !enough(&buf) {
        let n = s.read(&mut chunk).await?;
        if n == 0 {
            break;
        }
        buf.extend_from_slice(&chunk[..n]);
    }
    Ok(buf)
}
