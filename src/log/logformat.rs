//! HAProxy's `log-format`: a format string compiled once, at configuration load,
//! into a list of nodes (text, separators, `%` variables), then rendered for
//! each finished session on the log writer thread. Compiling refuses unknown
//! variables, so a typo is a config error, not a silent `-`. Pure: no I/O.
//!
//! Rendering follows HAProxy 2.6 (`sess_build_logline`): each run of spaces is
//! a separator written only after something else was, so a variable that prints
//! nothing (`%hr` with no capture declared) takes its space with it; `%{+Q}`
//! quotes a value; `%%` is a literal `%`. The predefined formats below render
//! exactly what `tcplog` and `httplog` do (tested).

use std::fmt::Write;

use super::format::{civil, push_captures_block, push_request_line, session_names, Names, MONTHS};
use super::record::{HttpRecord, SessionRecord};

/// HAProxy 2.6's `option httplog` format.
pub const HTTPLOG_FORMAT: &str = "%ci:%cp [%tr] %ft %b/%s %TR/%Tw/%Tc/%Tr/%Ta %ST %B %CC %CS %tsc %ac/%fc/%bc/%sc/%rc %sq/%bq %hr %hs %{+Q}r";

/// HAProxy 2.6's `option tcplog` format.
pub const TCPLOG_FORMAT: &str =
    "%ci:%cp [%t] %ft %b/%s %Tw/%Tc/%Tt %B %ts %ac/%fc/%bc/%sc/%rc %sq/%bq";

/// The variables ringlb knows, by HAProxy name.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Var {
    ClientIp,
    ClientPort,
    AcceptDate,
    RequestDate,
    Frontend,
    Backend,
    Server,
    TimeRequest,
    TimeWait,
    TimeConnect,
    TimeResponse,
    TimeActive,
    TimeTotal,
    Status,
    BytesRead,
    BytesUploaded,
    Termination,
    TerminationCookie,
    ActConn,
    FeConn,
    BeConn,
    SrvConn,
    Retries,
    SrvQueue,
    BackendQueue,
    RequestLine,
    RequestCaptures,
    ResponseCaptures,
    RequestCookie,
    ResponseCookie,
    /// `%sslv`, `%sslc`: the client connection's TLS version and suite.
    SslVersion,
    SslCipher,
}

impl Var {
    /// Text values, the ones `%{+Q}` quotes; HAProxy writes numbers, dates and
    /// termination states bare even with `+Q`.
    fn is_text(self) -> bool {
        matches!(
            self,
            Var::ClientIp
                | Var::Frontend
                | Var::Backend
                | Var::Server
                | Var::RequestLine
                | Var::RequestCaptures
                | Var::ResponseCaptures
                | Var::RequestCookie
                | Var::ResponseCookie
                | Var::SslVersion
                | Var::SslCipher
        )
    }

    fn from_name(name: &str) -> Option<Var> {
        Some(match name {
            "ci" => Var::ClientIp,
            "cp" => Var::ClientPort,
            "t" => Var::AcceptDate,
            "tr" => Var::RequestDate,
            "ft" | "f" => Var::Frontend,
            "b" => Var::Backend,
            "s" => Var::Server,
            "TR" => Var::TimeRequest,
            "Tw" => Var::TimeWait,
            "Tc" => Var::TimeConnect,
            "Tr" => Var::TimeResponse,
            "Ta" => Var::TimeActive,
            "Tt" => Var::TimeTotal,
            "ST" => Var::Status,
            "B" => Var::BytesRead,
            "U" => Var::BytesUploaded,
            "ts" => Var::Termination,
            "tsc" => Var::TerminationCookie,
            "ac" => Var::ActConn,
            "fc" => Var::FeConn,
            "bc" => Var::BeConn,
            "sc" => Var::SrvConn,
            "rc" => Var::Retries,
            "sq" => Var::SrvQueue,
            "bq" => Var::BackendQueue,
            "r" => Var::RequestLine,
            "hr" => Var::RequestCaptures,
            "hs" => Var::ResponseCaptures,
            "CC" => Var::RequestCookie,
            "CS" => Var::ResponseCookie,
            "sslv" => Var::SslVersion,
            "sslc" => Var::SslCipher,
            _ => return None,
        })
    }
}

#[derive(Debug, Clone, PartialEq, Eq)]
enum Node {
    /// `%[...]`: the value the shard rendered for sample `index`.
    Sample {
        index: usize,
        quote: bool,
    },
    Text(String),
    Separator,
    Var {
        var: Var,
        quote: bool,
    },
}

/// Why a format string was refused.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum LogFormatError {
    /// `%name` that ringlb does not know.
    UnknownVariable(String),
    /// `%` followed by a blank, a digit or the end of the string.
    DanglingPercent(usize),
    /// `%{` without its `}` or without a variable after it.
    BadArgument(usize),
}

impl std::fmt::Display for LogFormatError {
    fn fmt(&self, f: &mut std::fmt::Formatter) -> std::fmt::Result {
        match self {
            LogFormatError::UnknownVariable(v) => write!(f, "unknown log-format variable '%{v}'"),
            LogFormatError::DanglingPercent(at) => {
                write!(
                    f,
                    "'%' without a variable name at position {at} (write '%%' for a '%')"
                )
            }
            LogFormatError::BadArgument(at) => {
                write!(
                    f,
                    "'%{{...}}' without '}}' or variable name at position {at}"
                )
            }
        }
    }
}

/// A compiled `log-format`.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct LogFormat {
    nodes: Vec<Node>,
    /// The `%[...]` sample expressions, in order, with their offset in the
    /// format: compiled by the frontend's rules (`http::rules`) and evaluated
    /// by the shard when the request ends (their values travel in
    /// `HttpRecord::samples`).
    pub samples: Vec<(String, usize)>,
}

/// What a line is rendered from.
#[derive(Debug, Clone, Copy)]
pub enum LogRecord<'a> {
    Tcp(&'a SessionRecord),
    Http(&'a HttpRecord),
}

impl LogRecord<'_> {
    fn session(&self) -> &SessionRecord {
        match self {
            LogRecord::Tcp(s) => s,
            LogRecord::Http(h) => &h.session,
        }
    }
}

impl LogFormat {
    pub fn parse(fmt: &str) -> Result<LogFormat, LogFormatError> {
        let b = fmt.as_bytes();
        let mut nodes = Vec::new();
        let mut samples = Vec::new();
        let mut text = String::new();
        let mut i = 0;
        let flush = |text: &mut String, nodes: &mut Vec<Node>| {
            if !text.is_empty() {
                nodes.push(Node::Text(std::mem::take(text)));
            }
        };
        while i < b.len() {
            match b[i] {
                b' ' => {
                    flush(&mut text, &mut nodes);
                    nodes.push(Node::Separator);
                    i += 1;
                }
                b'%' if b.get(i + 1) == Some(&b'%') => {
                    text.push('%');
                    i += 2;
                }
                b'%' => {
                    let at = i;
                    i += 1;
                    let mut quote = false;
                    if b.get(i) == Some(&b'{') {
                        let close = b[i..]
                            .iter()
                            .position(|&c| c == b'}')
                            .ok_or(LogFormatError::BadArgument(at))?;
                        let args = &fmt[i + 1..i + close];
                        for a in args.split(',') {
                            match a {
                                "+Q" => quote = true,
                                "-Q" => quote = false,
                                // Other options (+X, +E, ...) change nothing here yet.
                                _ => {}
                            }
                        }
                        i += close + 1;
                    }
                    if b.get(i) == Some(&b'[') {
                        let close = fmt[i..].find(']').ok_or(LogFormatError::BadArgument(at))?;
                        samples.push((fmt[i + 1..i + close].to_string(), i + 1));
                        i += close + 1;
                        flush(&mut text, &mut nodes);
                        nodes.push(Node::Sample {
                            index: samples.len() - 1,
                            quote,
                        });
                        continue;
                    }
                    let start = i;
                    while i < b.len() && b[i].is_ascii_alphanumeric() {
                        i += 1;
                    }
                    if start == i {
                        return Err(if quote || b.get(at + 1) == Some(&b'{') {
                            LogFormatError::BadArgument(at)
                        } else {
                            LogFormatError::DanglingPercent(at)
                        });
                    }
                    let name = &fmt[start..i];
                    let var = Var::from_name(name)
                        .ok_or_else(|| LogFormatError::UnknownVariable(name.to_string()))?;
                    flush(&mut text, &mut nodes);
                    nodes.push(Node::Var { var, quote });
                }
                _ => {
                    let start = i;
                    while i < b.len() && b[i] != b' ' && b[i] != b'%' {
                        i += 1;
                    }
                    text.push_str(&fmt[start..i]);
                }
            }
        }
        flush(&mut text, &mut nodes);
        Ok(LogFormat { nodes, samples })
    }

    /// The line for one record.
    pub fn render(&self, r: LogRecord, names: &Names) -> String {
        let mut out = String::with_capacity(200);
        let mut last_space = true;
        for node in &self.nodes {
            match node {
                Node::Separator => {
                    if !last_space {
                        out.push(' ');
                        last_space = true;
                    }
                }
                Node::Text(t) => {
                    out.push_str(t);
                    last_space = false;
                }
                Node::Var { var, quote } => {
                    let before = out.len();
                    let quote = *quote && var.is_text();
                    if quote {
                        out.push('"');
                    }
                    let wrote = render_var(&mut out, *var, quote, r, names);
                    if !wrote {
                        out.truncate(before);
                        continue;
                    }
                    if quote {
                        out.push('"');
                    }
                    last_space = false;
                }
                Node::Sample { index, quote } => {
                    // HAProxy writes `-` for a sample with no value, `""`
                    // when quoted.
                    let v = match r {
                        LogRecord::Http(h) => h.samples.get(*index).map_or(&b""[..], |v| &v[..]),
                        LogRecord::Tcp(_) => b"",
                    };
                    if *quote {
                        out.push('"');
                    }
                    if v.is_empty() && !*quote {
                        out.push('-');
                    } else {
                        push_escaped_sample(&mut out, v, *quote);
                    }
                    if *quote {
                        out.push('"');
                    }
                    last_space = false;
                }
            }
        }
        out
    }
}

/// A sample's bytes in a log line: printable ASCII as is, the rest (and
/// `"` when quoted) as `#XX`, as HAProxy escapes log values.
fn push_escaped_sample(out: &mut String, v: &[u8], quoted: bool) {
    for &c in v {
        if (0x20..0x7f).contains(&c) && c != b'#' && !(quoted && c == b'"') {
            out.push(c as char);
        } else {
            let _ = write!(out, "#{c:02X}");
        }
    }
}

fn date(out: &mut String, t: std::time::SystemTime) {
    let (y, mo, d, h, mi, s, ms) = civil(t);
    let _ = write!(
        out,
        "{d:02}/{}/{y}:{h:02}:{mi:02}:{s:02}.{ms:03}",
        MONTHS[(mo - 1) as usize]
    );
}

/// Writes one variable; false when it prints nothing at all.
fn render_var(out: &mut String, var: Var, quoted: bool, r: LogRecord, names: &Names) -> bool {
    let s = r.session();
    let http = match r {
        LogRecord::Http(h) => Some(h),
        LogRecord::Tcp(_) => None,
    };
    let (fe, be, srv) = session_names(s, names);
    match var {
        Var::ClientIp => {
            let _ = write!(out, "{}", s.client.ip());
        }
        Var::ClientPort => {
            let _ = write!(out, "{}", s.client.port());
        }
        Var::AcceptDate => date(out, s.accept_time),
        Var::RequestDate => date(out, http.map_or(s.accept_time, |h| h.request_time)),
        Var::Frontend => out.push_str(fe),
        Var::Backend => out.push_str(be),
        Var::Server => out.push_str(srv),
        Var::TimeRequest => {
            let _ = write!(out, "{}", http.map_or(-1, |h| h.tr_request_ms));
        }
        Var::TimeWait => {
            let _ = write!(out, "{}", s.tw_ms);
        }
        Var::TimeConnect => {
            let _ = write!(out, "{}", s.tc_ms);
        }
        Var::TimeResponse => {
            let _ = write!(out, "{}", http.map_or(-1, |h| h.tr_response_ms));
        }
        Var::TimeActive => {
            let _ = write!(out, "{}", http.map_or(s.tt_ms, |h| h.ta_ms));
        }
        Var::TimeTotal => {
            let _ = write!(out, "{}", s.tt_ms);
        }
        Var::Status => {
            let _ = write!(out, "{}", http.map_or(0, |h| h.status));
        }
        Var::BytesRead => {
            let _ = write!(out, "{}", s.bytes_down);
        }
        Var::BytesUploaded => {
            let _ = write!(out, "{}", s.bytes_up);
        }
        Var::Termination => out.push_str(s.termination.as_str()),
        Var::TerminationCookie => {
            out.push_str(s.termination.as_str());
            let p = http.map_or(*b"--", |h| h.persistence);
            out.push(p[0] as char);
            out.push(p[1] as char);
        }
        Var::ActConn => {
            let _ = write!(out, "{}", s.actconn);
        }
        Var::FeConn => {
            let _ = write!(out, "{}", s.feconn);
        }
        Var::BeConn => {
            let _ = write!(out, "{}", s.beconn);
        }
        Var::SrvConn => {
            let _ = write!(out, "{}", s.srv_conn);
        }
        Var::Retries => {
            // HAProxy's %rc: "+" when a retry went to another server.
            let plus = if s.redispatched { "+" } else { "" };
            let _ = write!(out, "{plus}{}", s.retries);
        }
        Var::SrvQueue => {
            let _ = write!(out, "{}", s.srv_queue);
        }
        Var::BackendQueue => {
            let _ = write!(out, "{}", s.backend_queue);
        }
        Var::RequestLine => push_request_line(out, http.and_then(|h| h.request_line.as_deref())),
        Var::RequestCaptures | Var::ResponseCaptures => {
            let caps = match (http, var) {
                (Some(h), Var::RequestCaptures) => &h.request_captures[..],
                (Some(h), _) => &h.response_captures[..],
                (None, _) => &[][..],
            };
            if caps.is_empty() {
                return false;
            }
            push_captures_block(out, caps);
        }
        // No cookie capture yet: `-`, or nothing between the quotes.
        Var::RequestCookie | Var::ResponseCookie => {
            if !quoted {
                out.push('-');
            }
        }
        // As HAProxy's `lf_text`: `-` for a plain connection, `""` quoted.
        Var::SslVersion | Var::SslCipher => match s.ssl {
            Some((v, c)) => out.push_str(if var == Var::SslVersion { v } else { c }),
            None if !quoted => out.push('-'),
            None => {}
        },
    }
    true
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::log::format::{httplog, tcplog};
    use crate::log::record::Termination;
    use std::time::{Duration, UNIX_EPOCH};

    fn names() -> Names {
        Names {
            frontends: vec!["fe".into()],
            backends: vec![("be".into(), vec!["s1".into()])],
        }
    }

    fn session() -> SessionRecord {
        SessionRecord {
            frontend: 0,
            backend: Some(0),
            server: Some(0),
            client: "127.0.0.1:57088".parse().unwrap(),
            accept_time: UNIX_EPOCH + Duration::from_millis(1_795_675_441_828),
            tw_ms: 0,
            tc_ms: 0,
            tt_ms: 12,
            bytes_up: 78,
            bytes_down: 452,
            termination: Termination::NORMAL,
            retries: 0,
            redispatched: false,
            actconn: 1,
            feconn: 1,
            beconn: 0,
            srv_conn: 0,
            srv_queue: 0,
            backend_queue: 0,
            ssl: None,
        }
    }

    fn http() -> HttpRecord {
        HttpRecord {
            session: session(),
            request_time: UNIX_EPOCH + Duration::from_millis(1_795_675_441_828),
            tr_request_ms: 0,
            tr_response_ms: 1,
            ta_ms: 1,
            status: 200,
            request_line: Some(Box::from(&b"GET / HTTP/1.1"[..])),
            request_captures: Vec::new(),
            response_captures: Vec::new(),
            persistence: *b"--",
            log_level: None,
            samples: Vec::new(),
        }
    }

    #[test]
    fn predefined_formats_render_like_the_fixed_formatters() {
        let httplog_fmt = LogFormat::parse(HTTPLOG_FORMAT).unwrap();
        let mut r = http();
        assert_eq!(
            httplog_fmt.render(LogRecord::Http(&r), &names()),
            httplog(&r, &names())
        );
        assert_eq!(
            httplog_fmt.render(LogRecord::Http(&r), &names()),
            r#"127.0.0.1:57088 [26/Nov/2026:06:44:01.828] fe be/s1 0/0/0/1/1 200 452 - - ---- 1/1/0/0/0 0/0 "GET / HTTP/1.1""#
        );
        r.request_captures = vec![Box::from(&b"ex|am{ple}"[..]), Box::from(&b""[..])];
        r.response_captures = vec![Box::from(&b"1"[..])];
        r.request_line = None;
        r.session.server = None;
        r.session.backend = None;
        assert_eq!(
            httplog_fmt.render(LogRecord::Http(&r), &names()),
            httplog(&r, &names())
        );
        assert!(httplog(&r, &names()).ends_with(r#" 0/0 {ex#7Cam#7Bple#7D|} {1} "<BADREQ>""#));

        let tcplog_fmt = LogFormat::parse(TCPLOG_FORMAT).unwrap();
        let mut s = session();
        assert_eq!(
            tcplog_fmt.render(LogRecord::Tcp(&s), &names()),
            tcplog(&s, &names())
        );
        // A redispatched retry prints `+` before the count, in every format.
        (s.retries, s.redispatched) = (1, true);
        assert!(tcplog(&s, &names()).contains(" 1/1/0/0/+1 "));
        assert_eq!(
            tcplog_fmt.render(LogRecord::Tcp(&s), &names()),
            tcplog(&s, &names())
        );
        let mut r = http();
        r.session = s;
        assert!(httplog(&r, &names()).contains(" 1/1/0/0/+1 "));
        assert_eq!(
            httplog_fmt.render(LogRecord::Http(&r), &names()),
            httplog(&r, &names())
        );
    }

    #[test]
    fn custom_formats() {
        let r = http();
        let f = LogFormat::parse("%ci  %ST %hr %hs 100%% %U/%B %{+Q}b").unwrap();
        assert_eq!(
            f.render(LogRecord::Http(&r), &names()),
            r#"127.0.0.1 200 100% 78/452 "be""#
        );
        // Leading and trailing separators vanish as in HAProxy.
        let f = LogFormat::parse(" %ft %Tt ").unwrap();
        assert_eq!(f.render(LogRecord::Http(&r), &names()), "fe 12 ");
        let s = session();
        let f = LogFormat::parse("%ST %TR %{+Q}r \"%CC\"").unwrap();
        assert_eq!(
            f.render(LogRecord::Tcp(&s), &names()),
            r#"0 -1 "<BADREQ>" "-""#
        );
    }

    #[test]
    fn ssl_version_and_cipher() {
        let f = LogFormat::parse("%sslv %sslc %{+Q}sslv").unwrap();
        let mut s = session();
        assert_eq!(f.render(LogRecord::Tcp(&s), &names()), r#"- - """#);
        s.ssl = Some(("TLSv1.3", "TLS_AES_256_GCM_SHA384"));
        assert_eq!(
            f.render(LogRecord::Tcp(&s), &names()),
            r#"TLSv1.3 TLS_AES_256_GCM_SHA384 "TLSv1.3""#
        );
    }

    /// Captured from haproxy 2.6.12 with this `log-format` (leading blank and all).
    #[test]
    fn quoting_matches_haproxy() {
        let f = LogFormat::parse(" %ci  %{+Q}ST %hr %hs 100%% %U/%B %{+Q}b %{+Q}ci %{+Q}cp %{+Q}Tt %{+Q}ft %{+Q}s %{+Q}tsc %{+Q}t %{+Q}CC %{+Q}ts %{+Q}r ").unwrap();
        let t = UNIX_EPOCH + Duration::from_millis(1_795_676_190_423);
        let mut r = http();
        r.session.client = "127.0.0.1:36796".parse().unwrap();
        r.session.accept_time = t;
        r.request_time = t;
        (r.session.bytes_up, r.session.bytes_down, r.session.tt_ms) = (39, 76, 0);
        r.request_line = Some(Box::from(&b"GET /x HTTP/1.1"[..]));
        let names = Names {
            frontends: vec!["lf".into()],
            backends: vec![("echo".into(), vec!["e".into()])],
        };
        assert_eq!(
            f.render(LogRecord::Http(&r), &names),
            r#"127.0.0.1 200 100% 39/76 "echo" "127.0.0.1" 36796 0 "lf" "e" ---- 26/Nov/2026:06:56:30.423 "" -- "GET /x HTTP/1.1" "#
        );
    }

    #[test]
    fn bad_formats_are_refused() {
        assert_eq!(
            LogFormat::parse("%ci %bogus"),
            Err(LogFormatError::UnknownVariable("bogus".into()))
        );
        assert_eq!(
            LogFormat::parse("50% off"),
            Err(LogFormatError::DanglingPercent(2))
        );
        assert_eq!(
            LogFormat::parse("x %"),
            Err(LogFormatError::DanglingPercent(2))
        );
        assert_eq!(
            LogFormat::parse("%{+Q r"),
            Err(LogFormatError::BadArgument(0))
        );
        assert_eq!(
            LogFormat::parse("%{+Q}"),
            Err(LogFormatError::BadArgument(0))
        );
        assert!(LogFormatError::UnknownVariable("x".into())
            .to_string()
            .contains("'%x'"));
    }
}
