//! Routing and `http-request` / `http-response` rules, compiled from their
//! HAProxy-syntax strings at load into [`SectionRules`] (one per frontend and
//! per backend), applied by the shard to a [`Message`] it reuses.
//!
//! Order, as HAProxy: the frontend's request rules, then [`SectionRules::route`]
//! (`use_backend`, first match wins, else `default_backend`), then the
//! backend's request rules; on the response, the backend's response rules,
//! then the frontend's. A rule that answers (`deny`, `tarpit`, `auth`,
//! `redirect`, `return`) writes the whole response into the caller's buffer
//! and stops the evaluation; `allow` stops the section's remaining rules.
//!
//! What a shard does per request (`fe`/`be` are `config.frontends[i].rules.get()`
//! and `config.backends[b].rules.get()`; `txn` is one [`Txn`] kept per client
//! connection, `out` one reused `Vec<u8>`):
//!
//! ```text
//! txn.req.load_request(&head, buf); txn.begin();
//! conn = Conn { client, local, tls, backend: None, counters: &shard_counters };
//! fe.apply_request(&mut txn, &conn, &mut out)   -> Respond/Tarpit: send `out`, done
//! b = fe.route(&mut txn, &conn)                 -> use_backend / default_backend
//! conn.backend = Some(b);
//! be.apply_request(&mut txn, &conn, &mut out)   -> Respond/Tarpit: send `out`, done
//! cookie::on_request(spec, &mut txn.req, servers, persist) -> Stick (server or LB)
//! if txn.req.edited() { txn.req.rebuild_request(&mut head_buf, &mut head) }
//!   ... rewrite::write_request(head, info, head_buf, ..) to the server ...
//! txn.res.load_response(&rhead, rbuf);
//! be.apply_response(..); fe.apply_response(..)  -> Respond: send `out` instead
//! cookie::on_response(spec, &mut txn.res, Some((srv, srv_cookie)), stick, method)
//! if txn.res.edited() { txn.res.rebuild_response(&mut head_buf, &mut rhead) }
//! ```
//!
//! Evaluating conditions and fetches allocates nothing; actions that change
//! the message append to the `Message` buffer (capacity kept across
//! requests). `replace-*`, `regsub` and `capture` allocate while they run.

pub mod cookie;
pub mod logfmt;

#[cfg(test)]
mod tests;

use std::net::SocketAddr;

use crate::http::acl::sample::{parse_expr, Expr};
use crate::http::acl::{
    tokenize, AclSet, Cond, Counters, Ctx, Env, Error, Message, Scratch, Tok, Vars,
};
use logfmt::LogFmt;

/// Where rules stand relative to the response.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Side {
    Request,
    Response,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum RedirectKind {
    Location,
    Prefix,
    Scheme,
}

#[derive(Debug, Clone)]
pub struct Redirect {
    pub kind: RedirectKind,
    pub target: LogFmt,
    /// `target` as written, for `prefix /` (no prefix at all).
    pub slash_prefix: bool,
    pub code: u16,
    pub drop_query: bool,
    pub append_slash: bool,
    /// `set-cookie NAME[=VALUE]` / `clear-cookie NAME`: the Set-Cookie value.
    pub cookie: Option<Box<[u8]>>,
}

#[derive(Debug, Clone)]
pub enum Action {
    Allow,
    Deny(u16),
    Tarpit(u16),
    Auth(Option<Box<str>>),
    Redirect(Redirect),
    /// A complete response, built at load.
    Return(Box<[u8]>),
    /// `return ... lf-string FMT`: the status line, the headers after
    /// `content-length`, and the body rendered per request.
    ReturnFmt(Box<[u8]>, Box<[u8]>, LogFmt),
    SetHeader(Box<[u8]>, LogFmt),
    AddHeader(Box<[u8]>, LogFmt),
    DelHeader(Box<[u8]>),
    ReplaceHeader(Box<[u8]>, regex::bytes::Regex, LogFmt),
    ReplaceValue(Box<[u8]>, regex::bytes::Regex, LogFmt),
    SetPath(LogFmt),
    ReplacePath(regex::bytes::Regex, LogFmt),
    SetQuery(LogFmt),
    SetUri(LogFmt),
    SetMethod(LogFmt),
    SetVar(usize, Expr),
    UnsetVar(usize),
    /// `capture EXPR len N`: the value, cut to N bytes, in its capture slot
    /// (numbered in rule order at load, after the section's header captures
    /// in the log line).
    Capture(Expr, usize, usize),
    SetLogLevel(u8),
    SetStatus(u16, Option<Box<[u8]>>),
}

#[derive(Debug, Clone)]
pub struct Rule {
    pub action: Action,
    pub cond: Option<Cond>,
}

/// `tcp-request content accept|reject [if|unless COND]`.
#[derive(Debug, Clone)]
pub struct TcpRule {
    pub accept: bool,
    pub cond: Option<Cond>,
}

/// One section's compiled ACLs, routing and rules.
#[derive(Debug, Clone, Default)]
pub struct SectionRules {
    /// Proxy name: the default `auth` realm.
    pub name: String,
    pub acls: AclSet,
    pub request: Vec<Rule>,
    pub response: Vec<Rule>,
    pub use_backend: Vec<(usize, Cond)>,
    pub default_backend: Option<usize>,
    /// `use-server` (a backend's): server index and condition.
    pub use_server: Vec<(usize, Cond)>,
    /// How many `http-request capture` slots the request rules have.
    pub capture_slots: usize,
    /// The frontend's `log-format` `%[...]` samples.
    pub log_samples: Vec<LogFmt>,
    /// A backend's servers with `ssl sni EXPR`: server index and expression.
    pub server_sni: Vec<(usize, LogFmt)>,
    /// A mode-tcp frontend's `tcp-request content` rules.
    pub tcp_content: Vec<TcpRule>,
}

/// The connection facts rules read.
#[derive(Clone, Copy)]
pub struct Conn<'a> {
    pub client: SocketAddr,
    pub local: SocketAddr,
    /// The client connection's TLS facts; `None` for plain TCP.
    pub tls: Option<&'a crate::tls::TlsInfo>,
    /// The backend chosen so far.
    pub backend: Option<usize>,
    pub counters: &'a dyn Counters,
}

/// Per-transaction state the shard keeps per connection and reuses: the
/// messages rules edit, variables, captures and scratch buffers.
#[derive(Debug, Default)]
pub struct Txn {
    pub req: Message,
    pub res: Message,
    pub has_res: bool,
    pub vars: Vars,
    pub scratch: Scratch,
    /// `capture ... len N` values by slot (a rule that did not run leaves
    /// its slot empty or absent).
    pub captures: Vec<Vec<u8>>,
    /// `set-log-level` (syslog numbering), if a rule set one.
    pub log_level: Option<u8>,
    /// The last `Respond` was a `redirect` or `return` (HAProxy logs it `LR`,
    /// "locally processed"), not a `deny`/`auth` refusal (`PR`).
    pub local_answer: bool,
    /// ... and it was a `redirect` (which says `connection: close` when the
    /// connection will not go on, as HAProxy's).
    pub redirected: bool,
    /// A mode-tcp client's first bytes, peeked for `tcp-request content`
    /// rules and the `use_backend` after them.
    pub inspect: Option<crate::http::acl::payload::Inspect>,
    buf: Vec<u8>,
}

impl Txn {
    /// Starts a new transaction on `req` (the previous one's state is reset).
    pub fn begin(&mut self) {
        self.vars.clear();
        self.captures.iter_mut().for_each(Vec::clear);
        self.captures.clear();
        self.log_level = None;
        self.has_res = false;
    }

    fn ctx<'a>(&'a self, conn: &Conn<'a>) -> Ctx<'a> {
        Ctx {
            req: &self.req,
            res: self.has_res.then_some(&self.res),
            client: conn.client,
            local: conn.local,
            tls: conn.tls,
            backend: conn.backend,
            counters: conn.counters,
            vars: &self.vars,
            inspect: self.inspect.as_ref(),
        }
    }
}

/// What a request-side condition sees (no response yet). Takes the
/// transaction's fields one by one so its scratch space stays free to borrow.
fn request_ctx<'a>(
    req: &'a Message,
    vars: &'a Vars,
    inspect: Option<&'a crate::http::acl::payload::Inspect>,
    conn: &Conn<'a>,
) -> Ctx<'a> {
    Ctx {
        req,
        res: None,
        client: conn.client,
        local: conn.local,
        tls: conn.tls,
        backend: conn.backend,
        counters: conn.counters,
        vars,
        inspect,
    }
}

/// What the request rules decided.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Verdict {
    /// Go on (with the edits made to `Txn::req`).
    Continue,
    /// Send the response written into `out` and close the transaction.
    Respond { status: u16 },
    /// `tarpit`: hold the connection for `timeout tarpit`, then send `out`.
    Tarpit { status: u16 },
}

impl SectionRules {
    /// `use_backend` (first match) else `default_backend`.
    pub fn route(&self, txn: &mut Txn, conn: &Conn) -> Option<usize> {
        let ctx = request_ctx(&txn.req, &txn.vars, txn.inspect.as_ref(), conn);
        for (b, c) in &self.use_backend {
            if c.eval(&self.acls, &ctx, &mut txn.scratch) {
                return Some(*b);
            }
        }
        self.default_backend
    }

    /// `tcp-request content`: `Some(true)` to accept (the first matching
    /// rule's `accept`, or no rule matched), `Some(false)` to reject, `None`
    /// while a condition may still change with more of the client's bytes
    /// (`txn.inspect`), as HAProxy's `tcp_inspect_request`.
    pub fn tcp_content(&self, txn: &mut Txn, conn: &Conn) -> Option<bool> {
        let ctx = request_ctx(&txn.req, &txn.vars, txn.inspect.as_ref(), conn);
        for r in &self.tcp_content {
            let hit = match &r.cond {
                None => true,
                Some(c) => c.test(&self.acls, &ctx, &mut txn.scratch)?,
            };
            if hit {
                return Some(r.accept);
            }
        }
        Some(true)
    }

    /// Compiles `tcp-request content` rule texts (after `tcp-request
    /// content`); an error carries the rule's index.
    pub fn add_tcp_content(
        &mut self,
        rules: &[String],
        env: &mut Env,
    ) -> Result<(), (usize, Error)> {
        env.response = false;
        env.request_gone = false;
        for (i, text) in rules.iter().enumerate() {
            let r = compile_tcp_rule(text, &mut self.acls, env).map_err(|e| (i, e))?;
            self.tcp_content.push(r);
        }
        Ok(())
    }

    /// `use-server`: the first server whose condition matches. HAProxy
    /// ignores the rule when that server is down (unless `option persist`):
    /// the caller checks the server's state.
    pub fn use_server(&self, txn: &mut Txn, conn: &Conn) -> Option<usize> {
        let ctx = request_ctx(&txn.req, &txn.vars, txn.inspect.as_ref(), conn);
        self.use_server
            .iter()
            .find(|(_, c)| c.eval(&self.acls, &ctx, &mut txn.scratch))
            .map(|(s, _)| *s)
    }

    /// Renders the `log-format` samples for the transaction as it ends
    /// (request and, once loaded, response fetches), one value each.
    pub fn render_log_samples(&self, txn: &Txn, conn: &Conn, out: &mut Vec<Box<[u8]>>) {
        out.clear();
        let mut scratch = Scratch::default();
        let mut buf = Vec::new();
        for f in &self.log_samples {
            buf.clear();
            f.render(&txn.ctx(conn), &mut scratch, &mut buf);
            out.push(Box::from(&buf[..]));
        }
    }

    /// The SNI `server`'s `sni EXPR` gives this request, into `out`; false
    /// when the server has no such expression.
    pub fn render_server_sni(
        &self,
        server: usize,
        txn: &Txn,
        conn: &Conn,
        out: &mut Vec<u8>,
    ) -> bool {
        let Some((_, f)) = self.server_sni.iter().find(|(s, _)| *s == server) else {
            return false;
        };
        out.clear();
        f.render(&txn.ctx(conn), &mut Scratch::default(), out);
        true
    }

    /// Compiles `use-server` conditions (server indexes already resolved).
    pub fn add_use_server(
        &mut self,
        rules: &[(usize, String, bool)],
        env: &mut Env,
    ) -> Result<(), (usize, Error)> {
        env.response = false;
        env.request_gone = false;
        for (i, (s, text, negate)) in rules.iter().enumerate() {
            let c = self.acls.cond_str(text, *negate, env).map_err(|e| (i, e))?;
            self.use_server.push((*s, c));
        }
        Ok(())
    }

    /// Applies the `http-request` rules to `txn.req`; a response to send is
    /// written into `out`.
    pub fn apply_request(&self, txn: &mut Txn, conn: &Conn, out: &mut Vec<u8>) -> Verdict {
        self.apply(Side::Request, txn, conn, out)
    }

    /// Applies the `http-response` rules to `txn.res` (load it and set
    /// `has_res` first); `Respond` means replace the response with `out`.
    pub fn apply_response(&self, txn: &mut Txn, conn: &Conn, out: &mut Vec<u8>) -> Verdict {
        txn.has_res = true;
        self.apply(Side::Response, txn, conn, out)
    }

    fn apply(&self, side: Side, txn: &mut Txn, conn: &Conn, out: &mut Vec<u8>) -> Verdict {
        let rules = match side {
            Side::Request => &self.request,
            Side::Response => &self.response,
        };
        let mut buf = std::mem::take(&mut txn.buf);
        let v = self.apply_rules(rules, side, txn, conn, out, &mut buf);
        txn.buf = buf;
        v
    }

    fn apply_rules(
        &self,
        rules: &[Rule],
        side: Side,
        txn: &mut Txn,
        conn: &Conn,
        out: &mut Vec<u8>,
        buf: &mut Vec<u8>,
    ) -> Verdict {
        for r in rules {
            let mut scratch = std::mem::take(&mut txn.scratch);
            let ctx = txn.ctx(conn);
            let hit = r
                .cond
                .as_ref()
                .is_none_or(|c| c.eval(&self.acls, &ctx, &mut scratch));
            if !hit {
                txn.scratch = scratch;
                continue;
            }
            buf.clear();
            // Values first (they read the message), edits after.
            match &r.action {
                Action::SetHeader(_, f)
                | Action::AddHeader(_, f)
                | Action::SetPath(f)
                | Action::SetQuery(f)
                | Action::SetUri(f)
                | Action::SetMethod(f) => f.render(&ctx, &mut scratch, buf),
                Action::Redirect(rd) => rd.target.render(&ctx, &mut scratch, buf),
                Action::ReturnFmt(_, _, f) => f.render(&ctx, &mut scratch, buf),
                // The replacement is rendered once, before the regex runs;
                // its `\N` back-references are expanded per match.
                Action::ReplaceHeader(_, _, f)
                | Action::ReplaceValue(_, _, f)
                | Action::ReplacePath(_, f) => f.render(&ctx, &mut scratch, buf),
                Action::SetVar(_, e) | Action::Capture(e, _, _) => {
                    e.text(&ctx, &mut scratch, buf);
                }
                _ => {}
            }
            txn.local_answer = matches!(
                r.action,
                Action::Redirect(_) | Action::Return(_) | Action::ReturnFmt(..)
            );
            txn.redirected = matches!(r.action, Action::Redirect(_));
            let stop = match &r.action {
                Action::Redirect(rd) => {
                    build_redirect(rd, &txn.req, buf, out);
                    Some(Verdict::Respond { status: rd.code })
                }
                Action::ReplaceHeader(name, re, _) | Action::ReplaceValue(name, re, _) => {
                    let whole = matches!(r.action, Action::ReplaceHeader(..));
                    let m = match side {
                        Side::Request => &mut txn.req,
                        Side::Response => &mut txn.res,
                    };
                    replace_header(m, name, re, &template(buf), whole);
                    None
                }
                Action::ReplacePath(re, _) => {
                    if let Some(v) = substitute(re, txn.req.path(), &template(buf)) {
                        txn.req.set_path(&v);
                    }
                    None
                }
                _ => None,
            };
            txn.scratch = scratch;
            if let Some(v) = stop {
                return v;
            }
            let m = match side {
                Side::Request => &mut txn.req,
                Side::Response => &mut txn.res,
            };
            match &r.action {
                Action::Allow => return Verdict::Continue,
                Action::Deny(s) => {
                    error_page(*s, out);
                    return Verdict::Respond { status: *s };
                }
                Action::Tarpit(s) => {
                    error_page(*s, out);
                    return Verdict::Tarpit { status: *s };
                }
                Action::Auth(realm) => {
                    auth_page(realm.as_deref().unwrap_or(&self.name), out);
                    return Verdict::Respond { status: 401 };
                }
                Action::ReturnFmt(line, rest, _) => {
                    use std::io::Write;
                    out.clear();
                    out.extend_from_slice(line);
                    let _ = write!(out, "content-length: {}\r\n", buf.len());
                    out.extend_from_slice(rest);
                    out.extend_from_slice(b"\r\n");
                    out.extend_from_slice(buf);
                    return Verdict::Respond {
                        status: status_of(line),
                    };
                }
                Action::Return(resp) => {
                    out.clear();
                    out.extend_from_slice(resp);
                    return Verdict::Respond {
                        status: status_of(resp),
                    };
                }
                Action::SetHeader(n, _) => m.set_header(n, buf),
                Action::AddHeader(n, _) => m.add_header(n, buf),
                Action::DelHeader(n) => m.del_header(n),
                Action::SetPath(_) => m.set_path(buf),
                Action::SetQuery(_) => {
                    m.set_query(Some(buf));
                }
                Action::SetUri(_) => m.set_target(buf),
                Action::SetMethod(_) => m.set_method(buf),
                Action::SetVar(id, _) => txn.vars.set(*id, buf),
                Action::UnsetVar(id) => txn.vars.unset(*id),
                Action::Capture(_, len, slot) => {
                    let n = buf.len().min(*len);
                    if txn.captures.len() <= *slot {
                        txn.captures.resize(slot + 1, Vec::new());
                    }
                    txn.captures[*slot] = buf[..n].to_vec();
                }
                Action::SetLogLevel(l) => txn.log_level = Some(*l),
                Action::SetStatus(s, reason) => {
                    let r = reason
                        .as_deref()
                        .unwrap_or_else(|| reason_phrase(*s).as_bytes());
                    m.set_status(*s, r);
                }
                Action::Redirect(_)
                | Action::ReplaceHeader(..)
                | Action::ReplaceValue(..)
                | Action::ReplacePath(..) => {}
            }
        }
        Verdict::Continue
    }
}

/// A rendered replacement with HAProxy's `\N` back-references in the
/// regex crate's `${N}` form.
fn template(rendered: &[u8]) -> String {
    crate::http::acl::sample::backrefs(&String::from_utf8_lossy(rendered))
}

/// `tpl` expanded for the first match of `re` in `input`; `None` when it
/// does not match (HAProxy replaces the whole value with the expansion).
fn substitute(re: &regex::bytes::Regex, input: &[u8], tpl: &str) -> Option<Vec<u8>> {
    let caps = re.captures(input)?;
    let mut out = Vec::new();
    caps.expand(tpl.as_bytes(), &mut out);
    Some(out)
}

/// `replace-header` (`whole`: the full line value) and `replace-value` (each
/// comma-separated value) on every line named `name`.
fn replace_header(m: &mut Message, name: &[u8], re: &regex::bytes::Regex, tpl: &str, whole: bool) {
    let mut value = Vec::new();
    for i in 0..m.header_count() {
        let Some((n, v)) = m.line(i) else { continue };
        if !n.eq_ignore_ascii_case(name) {
            continue;
        }
        value.clear();
        let mut changed = false;
        if whole {
            if let Some(r) = substitute(re, v, tpl) {
                value.extend_from_slice(&r);
                changed = true;
            }
        } else {
            // As HAProxy: a replaced value loses the blanks around it, the
            // others stay as they were.
            for (k, seg) in v.split(|&b| b == b',').enumerate() {
                if k > 0 {
                    value.push(b',');
                }
                match substitute(re, crate::http::acl::msg::trim(seg), tpl) {
                    Some(r) => {
                        value.extend_from_slice(&r);
                        changed = true;
                    }
                    None => value.extend_from_slice(seg),
                }
            }
        }
        if changed {
            m.set_line_value(i, &value);
        }
    }
}

/// HAProxy 2.6's reason phrases.
pub fn reason_phrase(status: u16) -> &'static str {
    match status {
        100 => "Continue",
        101 => "Switching Protocols",
        102 => "Processing",
        103 => "Early Hints",
        200 => "OK",
        201 => "Created",
        202 => "Accepted",
        203 => "Non-Authoritative Information",
        204 => "No Content",
        205 => "Reset Content",
        206 => "Partial Content",
        207 => "Multi-Status",
        300 => "Multiple Choices",
        301 => "Moved Permanently",
        302 => "Found",
        303 => "See Other",
        304 => "Not Modified",
        305 => "Use Proxy",
        307 => "Temporary Redirect",
        308 => "Permanent Redirect",
        400 => "Bad Request",
        401 => "Unauthorized",
        402 => "Payment Required",
        403 => "Forbidden",
        404 => "Not Found",
        405 => "Method Not Allowed",
        406 => "Not Acceptable",
        407 => "Proxy Authentication Required",
        408 => "Request Timeout",
        409 => "Conflict",
        410 => "Gone",
        411 => "Length Required",
        412 => "Precondition Failed",
        413 => "Payload Too Large",
        414 => "URI Too Long",
        415 => "Unsupported Media Type",
        416 => "Requested range unsatisfiable",
        417 => "Expectation failed",
        418 => "I'm a teapot",
        421 => "Misdirected Request",
        422 => "Unprocessable Content",
        425 => "Too Early",
        426 => "Upgrade Required",
        428 => "Precondition Required",
        429 => "Too Many Requests",
        431 => "Request Header Fields Too Large",
        451 => "Unavailable For Legal Reasons",
        500 => "Internal Server Error",
        501 => "Not Implemented",
        502 => "Bad Gateway",
        503 => "Service Unavailable",
        504 => "Gateway Timeout",
        505 => "HTTP Version Not Supported",
        _ => class_reason(status),
    }
}

/// HAProxy's reason for a status it has no phrase for: its class.
fn class_reason(status: u16) -> &'static str {
    match status / 100 {
        1 => "Informational",
        2 => "Success",
        3 => "Redirection",
        4 => "Client Error",
        5 => "Server Error",
        _ => "Other",
    }
}

/// The statuses HAProxy 2.6 has a built-in page for (`deny_status` must be
/// one of them).
pub const HAS_PAGE: [u16; 19] = [
    200, 400, 401, 403, 404, 405, 407, 408, 410, 413, 421, 422, 425, 429, 500, 501, 502, 503, 504,
];

/// HAProxy's built-in error page bodies, by status (others use 500's).
fn error_body(status: u16) -> (u16, &'static str, &'static str) {
    let (s, title, text) = match status {
        200 => (200, "200 OK", "Service ready."),
        400 => (400, "400 Bad request", "Your browser sent an invalid request."),
        401 => (401, "401 Unauthorized", "You need a valid user and password to access this content."),
        403 => (403, "403 Forbidden", "Request forbidden by administrative rules."),
        404 => (404, "404 Not Found", "The resource could not be found."),
        405 => (405, "405 Method Not Allowed", "A request was made of a resource using a request method not supported by that resource"),
        407 => (407, "407 Unauthorized", "You need a valid user and password to access this content."),
        408 => (408, "408 Request Time-out", "Your browser didn't send a complete request in time."),
        410 => (410, "410 Gone", "The resource is no longer available and will not be available again."),
        413 => (413, "413 Payload Too Large", "The request entity exceeds the maximum allowed."),
        421 => (
            421,
            "421 Misdirected Request",
            "Request sent to a non-authoritative server.",
        ),
        422 => (
            422,
            "422 Unprocessable Content",
            "The server cannot process the contained instructions.",
        ),
        425 => (425, "425 Too Early", "Your browser sent early data."),
        429 => (429, "429 Too Many Requests", "You have sent too many requests in a given amount of time."),
        501 => (501, "501 Not Implemented", ".The server does not support the functionality required to fulfill the request."),
        502 => (502, "502 Bad Gateway", "The server returned an invalid or incomplete response."),
        503 => (503, "503 Service Unavailable", "No server is available to handle this request."),
        504 => (504, "504 Gateway Time-out", "The server didn't respond in time."),
        _ => (500, "500 Internal Server Error", "An internal server error occurred."),
    };
    (s, title, text)
}

/// The page `deny`/`tarpit` send for `status`, as HAProxy 2.6 writes it.
pub fn error_page(status: u16, out: &mut Vec<u8>) {
    page(status, None, out)
}

fn page(status: u16, realm: Option<&str>, out: &mut Vec<u8>) {
    use std::io::Write;
    let (s, title, text) = error_body(status);
    let body = format!("<html><body><h1>{title}</h1>\n{text}\n</body></html>\n");
    out.clear();
    // The status line's reason is the page's title, as in HAProxy's pages
    // (`407 Unauthorized`, `408 Request Time-out`); 400 and 408 close.
    let reason = &title[4..];
    let _ = write!(
        out,
        "HTTP/1.1 {s} {reason}\r\ncontent-length: {}\r\ncache-control: no-cache\r\ncontent-type: text/html\r\n",
        body.len()
    );
    if matches!(s, 400 | 408) {
        out.extend_from_slice(b"connection: close\r\n");
    }
    if let Some(realm) = realm {
        let _ = write!(out, "www-authenticate: Basic realm=\"{realm}\"\r\n");
    }
    out.extend_from_slice(b"\r\n");
    out.extend_from_slice(body.as_bytes());
}

/// `auth`: 401 with `WWW-Authenticate: Basic realm="..."`.
pub fn auth_page(realm: &str, out: &mut Vec<u8>) {
    page(401, Some(realm), out)
}

fn status_of(resp: &[u8]) -> u16 {
    std::str::from_utf8(resp.get(9..12).unwrap_or_default())
        .ok()
        .and_then(|s| s.parse().ok())
        .unwrap_or(200)
}

/// Writes a redirect response; `target` is the rendered location, prefix or
/// scheme.
fn build_redirect(rd: &Redirect, req: &Message, target: &[u8], out: &mut Vec<u8>) {
    use std::io::Write;
    out.clear();
    let _ = write!(
        out,
        "HTTP/1.1 {} {}\r\ncontent-length: 0\r\nlocation: ",
        rd.code,
        reason_phrase(rd.code)
    );
    let path = if rd.drop_query {
        req.path()
    } else {
        req.path_query()
    };
    // HAProxy: a target without a path (`*`, `http://host`) redirects to `/`.
    let path: &[u8] = if req.path_query().is_empty() {
        b"/"
    } else {
        path
    };
    match rd.kind {
        RedirectKind::Location => out.extend_from_slice(target),
        RedirectKind::Prefix | RedirectKind::Scheme => {
            if rd.kind == RedirectKind::Scheme {
                out.extend_from_slice(target);
                out.extend_from_slice(b"://");
                out.extend_from_slice(req.lines(b"host").next().unwrap_or_default());
            } else if !rd.slash_prefix {
                out.extend_from_slice(target);
            }
            out.extend_from_slice(path);
            if rd.append_slash && path.last() != Some(&b'/') {
                out.push(b'/');
            }
        }
    }
    out.extend_from_slice(b"\r\n");
    if matches!(rd.code, 302 | 303 | 307) {
        out.extend_from_slice(b"cache-control: no-cache\r\n");
    }
    if let Some(c) = &rd.cookie {
        out.extend_from_slice(b"set-cookie: ");
        out.extend_from_slice(c);
        out.extend_from_slice(b"\r\n");
    }
    out.extend_from_slice(b"\r\n");
}

fn compile_tcp_rule(text: &str, acls: &mut AclSet, env: &mut Env) -> Result<TcpRule, Error> {
    let toks = tokenize(text)?;
    let accept = match toks.first().map(|t| (t.text.as_str(), t.at)) {
        Some(("accept", _)) => true,
        Some(("reject", _)) => false,
        Some((other, at)) => {
            return Err(Error {
                at,
                msg: format!(
                    "\"{other}\" is not a supported tcp-request content action (accept, reject)"
                ),
            })
        }
        None => {
            return Err(Error {
                at: 0,
                msg: "tcp-request content needs an action (accept or reject)".into(),
            })
        }
    };
    let cond = match toks.get(1) {
        None => None,
        Some(t) if !t.quoted && (t.text == "if" || t.text == "unless") => {
            if toks.len() < 3 {
                return Err(Error {
                    at: t.at,
                    msg: format!("\"{}\" needs a condition", t.text),
                });
            }
            Some(acls.cond(&toks[2..], t.text == "unless", env)?)
        }
        Some(t) => {
            return Err(Error {
                at: t.at,
                msg: format!("unexpected \"{}\" (expected if, unless or the end)", t.text),
            })
        }
    };
    Ok(TcpRule { accept, cond })
}

/// Compiles rule text (`http-request ...` without the keyword) for `side`.
pub fn compile_rule(
    text: &str,
    side: Side,
    acls: &mut AclSet,
    env: &mut Env,
) -> Result<Rule, Error> {
    env.response = side == Side::Response;
    env.request_gone = side == Side::Response;
    let toks = tokenize(text)?;
    let cond_at = toks
        .iter()
        .position(|t| !t.quoted && (t.text == "if" || t.text == "unless"));
    let (body, cond) = match cond_at {
        Some(i) => {
            let unless = toks[i].text == "unless";
            if i + 1 >= toks.len() {
                return Err(Error {
                    at: toks[i].at,
                    msg: format!("\"{}\" needs a condition", toks[i].text),
                });
            }
            (&toks[..i], Some(acls.cond(&toks[i + 1..], unless, env)?))
        }
        None => (&toks[..], None),
    };
    let action = compile_action(body, side, env, text.len())?;
    Ok(Rule { action, cond })
}

fn word<'a>(toks: &'a [Tok], i: usize, end: usize, what: &str) -> Result<&'a Tok, Error> {
    toks.get(i).ok_or_else(|| Error {
        at: toks.get(i.saturating_sub(1)).map_or(end, |t| t.at),
        msg: format!("{what} needs an argument"),
    })
}

fn status_arg(t: &Tok, min: u16, max: u16) -> Result<u16, Error> {
    match t.text.parse::<u16>() {
        Ok(s) if (min..=max).contains(&s) => Ok(s),
        _ => Err(Error {
            at: t.at,
            msg: format!("\"{}\" is not a status code ({min}-{max})", t.text),
        }),
    }
}

fn regex_arg(t: &Tok) -> Result<regex::bytes::Regex, Error> {
    regex::bytes::Regex::new(&t.text).map_err(|e| Error {
        at: t.at,
        msg: format!("invalid regex \"{}\": {e}", t.text),
    })
}

fn fmt_arg(t: &Tok, env: &mut Env) -> Result<LogFmt, Error> {
    // Offsets into an unquoted word map 1:1; a quoted word starts one later.
    LogFmt::parse(&t.text, t.at + t.quoted as usize, env)
}

/// A sample expression usable where this rule runs.
fn checked_expr(t: &Tok, env: &mut Env) -> Result<Expr, Error> {
    let e = parse_expr(&t.text, t.at, env)?;
    match env.unavailable(&e.fetch) {
        Some(why) => Err(Error {
            at: t.at,
            msg: format!("fetch \"{}\" {why}", t.text),
        }),
        None => Ok(e),
    }
}

fn expect_end(toks: &[Tok], i: usize) -> Result<(), Error> {
    match toks.get(i) {
        None => Ok(()),
        Some(t) => Err(Error {
            at: t.at,
            msg: format!("unexpected \"{}\" (expected if, unless or the end)", t.text),
        }),
    }
}

fn compile_action(toks: &[Tok], side: Side, env: &mut Env, end: usize) -> Result<Action, Error> {
    let kw = toks.first().ok_or(Error {
        at: 0,
        msg: "a rule needs an action".into(),
    })?;
    let name = kw.text.as_str();
    let wrong_side = |what: &str| Error {
        at: kw.at,
        msg: format!("\"{name}\" is not a valid {what} action"),
    };
    let req_only = matches!(
        name,
        "tarpit"
            | "auth"
            | "redirect"
            | "return"
            | "set-path"
            | "replace-path"
            | "set-query"
            | "set-uri"
            | "set-method"
            | "set-log-level"
            | "capture"
    );
    if side == Side::Response && req_only && name != "set-log-level" && name != "redirect" {
        return Err(wrong_side("http-response"));
    }
    if side == Side::Request && name == "set-status" {
        return Err(wrong_side("http-request"));
    }
    let arg = |i: usize, what: &str| word(toks, i, end, what);
    Ok(match name {
        "allow" => {
            expect_end(toks, 1)?;
            Action::Allow
        }
        "deny" | "tarpit" => {
            let mut status = match (name, side) {
                ("deny", Side::Request) => 403,
                ("deny", Side::Response) => 502,
                _ => 500,
            };
            let mut i = 1;
            while i < toks.len() {
                match toks[i].text.as_str() {
                    "deny_status" => {
                        let t = arg(i + 1, "deny_status")?;
                        status = status_arg(t, 200, 599)?;
                        if !HAS_PAGE.contains(&status) {
                            return Err(Error {
                                at: t.at,
                                msg: format!(
                                    "status code '{status}' has no error page (one of {})",
                                    HAS_PAGE.map(|s| s.to_string()).join(", ")
                                ),
                            });
                        }
                        i += 2;
                    }
                    _ => expect_end(toks, i)?,
                }
            }
            if name == "deny" {
                Action::Deny(status)
            } else {
                Action::Tarpit(status)
            }
        }
        "auth" => {
            let realm = match toks.get(1).map(|t| t.text.as_str()) {
                Some("realm") => Some(arg(2, "realm")?.text.clone().into()),
                None => None,
                Some(_) => return Err(expect_end(toks, 1).unwrap_err()),
            };
            expect_end(toks, if realm.is_some() { 3 } else { 1 })?;
            Action::Auth(realm)
        }
        "redirect" => Action::Redirect(redirect(toks, env, end)?),
        "return" => return_response(toks, end, env)?,
        "set-header" | "add-header" => {
            let n = arg(1, name)?;
            let v = arg(2, name)?;
            expect_end(toks, 3)?;
            let f = fmt_arg(v, env)?;
            let n: Box<[u8]> = n.text.as_bytes().into();
            if name == "set-header" {
                Action::SetHeader(n, f)
            } else {
                Action::AddHeader(n, f)
            }
        }
        "del-header" => {
            let n = arg(1, name)?;
            expect_end(toks, 2)?;
            Action::DelHeader(n.text.as_bytes().into())
        }
        "replace-header" | "replace-value" => {
            let n = arg(1, name)?;
            let re = regex_arg(arg(2, name)?)?;
            let f = fmt_arg(arg(3, name)?, env)?;
            expect_end(toks, 4)?;
            let n: Box<[u8]> = n.text.as_bytes().into();
            if name == "replace-header" {
                Action::ReplaceHeader(n, re, f)
            } else {
                Action::ReplaceValue(n, re, f)
            }
        }
        "set-path" | "set-query" | "set-uri" | "set-method" => {
            let f = fmt_arg(arg(1, name)?, env)?;
            expect_end(toks, 2)?;
            match name {
                "set-path" => Action::SetPath(f),
                "set-query" => Action::SetQuery(f),
                "set-uri" => Action::SetUri(f),
                _ => Action::SetMethod(f),
            }
        }
        "replace-path" => {
            let re = regex_arg(arg(1, name)?)?;
            let f = fmt_arg(arg(2, name)?, env)?;
            expect_end(toks, 3)?;
            Action::ReplacePath(re, f)
        }
        "set-status" => {
            let s = status_arg(arg(1, name)?, 100, 999)?;
            let reason = match toks.get(2).map(|t| t.text.as_str()) {
                Some("reason") => Some(arg(3, "reason")?.text.as_bytes().into()),
                _ => None,
            };
            expect_end(toks, if reason.is_some() { 4 } else { 2 })?;
            Action::SetStatus(s, reason)
        }
        "set-log-level" => {
            let l = arg(1, name)?;
            let level = match l.text.as_str() {
                "emerg" => 0,
                "alert" => 1,
                "crit" => 2,
                "err" => 3,
                "warning" => 4,
                "notice" => 5,
                "info" => 6,
                "debug" => 7,
                "silent" => 8,
                _ => {
                    return Err(Error {
                        at: l.at,
                        msg: format!("unknown log level \"{}\"", l.text),
                    })
                }
            };
            expect_end(toks, 2)?;
            Action::SetLogLevel(level)
        }
        "capture" if side == Side::Response => {
            return Err(Error {
                at: kw.at,
                msg: "http-response capture needs a capture id (not supported)".into(),
            })
        }
        "capture" => {
            let e = arg(1, name)?;
            let expr = checked_expr(e, env)?;
            let len = match toks.get(2).map(|t| t.text.as_str()) {
                Some("len") => {
                    let l = arg(3, "len")?;
                    l.text.parse::<usize>().map_err(|_| Error {
                        at: l.at,
                        msg: format!("len: \"{}\" is not a length", l.text),
                    })?
                }
                _ => {
                    return Err(Error {
                        at: e.at,
                        msg: "capture needs `len N` (capture ids are not supported)".into(),
                    })
                }
            };
            expect_end(toks, 4)?;
            Action::Capture(expr, len, 0)
        }
        n if n.starts_with("set-var(") || n.starts_with("unset-var(") => {
            let open = n.find('(').unwrap_or(0);
            let Some(var) = n[open + 1..].strip_suffix(')') else {
                return Err(Error {
                    at: kw.at,
                    msg: format!("missing ')' in \"{n}\""),
                });
            };
            let id = env.var(var, kw.at + open + 1)?;
            if n.starts_with("unset") {
                expect_end(toks, 1)?;
                Action::UnsetVar(id)
            } else {
                let e = arg(1, n)?;
                let expr = checked_expr(e, env)?;
                expect_end(toks, 2)?;
                Action::SetVar(id, expr)
            }
        }
        _ => {
            return Err(Error {
                at: kw.at,
                msg: format!(
                    "unknown or unsupported {} action \"{name}\"",
                    match side {
                        Side::Request => "http-request",
                        Side::Response => "http-response",
                    }
                ),
            })
        }
    })
}

fn redirect(toks: &[Tok], env: &mut Env, end: usize) -> Result<Redirect, Error> {
    // Options come in any order (`redirect code 301 location /x`).
    let mut target: Option<(RedirectKind, &Tok)> = None;
    let mut rd = Redirect {
        kind: RedirectKind::Location,
        target: LogFmt::default(),
        slash_prefix: false,
        code: 302,
        drop_query: false,
        append_slash: false,
        cookie: None,
    };
    let mut i = 1;
    while i < toks.len() {
        match toks[i].text.as_str() {
            k @ ("location" | "prefix" | "scheme") => {
                let kind = match k {
                    "location" => RedirectKind::Location,
                    "prefix" => RedirectKind::Prefix,
                    _ => RedirectKind::Scheme,
                };
                if target.is_some() {
                    return Err(Error {
                        at: toks[i].at,
                        msg: "redirect: only one of location, prefix or scheme".into(),
                    });
                }
                target = Some((kind, word(toks, i + 1, end, k)?));
                i += 2;
            }
            "code" => {
                let c = word(toks, i + 1, end, "code")?;
                rd.code = match c.text.as_str() {
                    "301" => 301,
                    "302" => 302,
                    "303" => 303,
                    "307" => 307,
                    "308" => 308,
                    _ => {
                        return Err(Error {
                            at: c.at,
                            msg: format!(
                                "redirect code \"{}\": expected 301, 302, 303, 307 or 308",
                                c.text
                            ),
                        })
                    }
                };
                i += 2;
            }
            "drop-query" => {
                rd.drop_query = true;
                i += 1;
            }
            "append-slash" => {
                rd.append_slash = true;
                i += 1;
            }
            "set-cookie" | "clear-cookie" => {
                let c = word(toks, i + 1, end, &toks[i].text)?;
                rd.cookie = Some(
                    if toks[i].text == "set-cookie" {
                        format!("{}; path=/;", c.text)
                    } else {
                        format!("{}; path=/; Max-Age=0;", c.text)
                    }
                    .into_bytes()
                    .into(),
                );
                i += 2;
            }
            _ => expect_end(toks, i)?,
        }
    }
    let Some((kind, t)) = target else {
        return Err(Error {
            at: toks.first().map_or(0, |t| t.at),
            msg: "redirect needs location, prefix or scheme".into(),
        });
    };
    rd.kind = kind;
    rd.target = fmt_arg(t, env)?;
    rd.slash_prefix = kind == RedirectKind::Prefix && t.text == "/";
    Ok(rd)
}

fn return_response(toks: &[Tok], end: usize, env: &mut Env) -> Result<Action, Error> {
    use std::io::Write;
    let mut status = 200;
    let mut ctype: Option<String> = None;
    let mut body: Vec<u8> = Vec::new();
    let mut fmt: Option<LogFmt> = None;
    let mut headers: Vec<(String, String)> = Vec::new();
    let mut i = 1;
    while i < toks.len() {
        let t = &toks[i];
        match t.text.as_str() {
            "status" => status = status_arg(word(toks, i + 1, end, "status")?, 200, 599)?,
            "content-type" => ctype = Some(word(toks, i + 1, end, "content-type")?.text.clone()),
            "string" => body = word(toks, i + 1, end, &t.text)?.text.clone().into_bytes(),
            "lf-string" => {
                let w = word(toks, i + 1, end, &t.text)?;
                body = w.text.clone().into_bytes();
                fmt = Some(fmt_arg(w, env)?);
            }
            "file" | "lf-file" => {
                let f = word(toks, i + 1, end, "file")?;
                body = std::fs::read(&f.text).map_err(|e| Error {
                    at: f.at,
                    msg: format!("cannot read \"{}\": {e}", f.text),
                })?;
            }
            "hdr" => {
                let n = word(toks, i + 1, end, "hdr")?;
                let v = word(toks, i + 2, end, "hdr")?;
                headers.push((n.text.clone(), v.text.clone()));
                i += 1;
            }
            _ => expect_end(toks, i)?,
        }
        i += 2;
    }
    if !body.is_empty() && ctype.is_none() {
        return Err(Error {
            at: toks[0].at,
            msg: "return: a content type must be defined when non-empty payload is configured"
                .into(),
        });
    }
    // HAProxy writes the `hdr` lines first, names lower-cased, then
    // content-length and content-type.
    let mut line = format!("HTTP/1.1 {status} {}\r\n", reason_phrase(status)).into_bytes();
    for (n, v) in headers {
        let _ = write!(line, "{}: {v}\r\n", n.to_ascii_lowercase());
    }
    let mut rest = Vec::new();
    if let Some(c) = ctype {
        let _ = write!(rest, "content-type: {c}\r\n");
    }
    if let Some(f) = fmt {
        return Ok(Action::ReturnFmt(line.into(), rest.into(), f));
    }
    let mut out = line;
    let _ = write!(out, "content-length: {}\r\n", body.len());
    out.extend_from_slice(&rest);
    out.extend_from_slice(b"\r\n");
    out.extend_from_slice(&body);
    Ok(Action::Return(out.into()))
}

/// Builds a section's rules from its definitions. Each error carries the
/// item it belongs to ([`Item`]) and the offset in that item's string.
pub fn compile_section(
    name: &str,
    acls: &[(String, String)],
    use_backend: &[(usize, String, bool)],
    default_backend: Option<usize>,
    request: &[String],
    response: &[String],
    env: &mut Env,
) -> Result<SectionRules, (Item, Error)> {
    let mut s = SectionRules {
        name: name.to_string(),
        default_backend,
        ..SectionRules::default()
    };
    for (i, (n, text)) in acls.iter().enumerate() {
        env.response = true;
        env.request_gone = false;
        s.acls.define(n, text, env).map_err(|e| (Item::Acl(i), e))?;
    }
    env.response = false;
    for (i, (b, text, negate)) in use_backend.iter().enumerate() {
        let c = s
            .acls
            .cond_str(text, *negate, env)
            .map_err(|e| (Item::UseBackend(i), e))?;
        s.use_backend.push((*b, c));
    }
    for (i, r) in request.iter().enumerate() {
        let rule =
            compile_rule(r, Side::Request, &mut s.acls, env).map_err(|e| (Item::Request(i), e))?;
        s.request.push(rule);
    }
    for r in &mut s.request {
        if let Action::Capture(_, _, slot) = &mut r.action {
            *slot = s.capture_slots;
            s.capture_slots += 1;
        }
    }
    for (i, r) in response.iter().enumerate() {
        let rule = compile_rule(r, Side::Response, &mut s.acls, env)
            .map_err(|e| (Item::Response(i), e))?;
        s.response.push(rule);
    }
    Ok(s)
}

/// Which definition of a section an error is in.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Item {
    Acl(usize),
    UseBackend(usize),
    Request(usize),
    Response(usize),
}
