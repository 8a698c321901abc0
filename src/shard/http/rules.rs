//! What a request's rules decide on the shard, and what they change in its
//! response: the frontend's `http-request` rules, `use_backend`, the backend's
//! `http-request` rules, cookie persistence, then `use-server` (HAProxy 2.6's
//! order: a persistence cookie assigns the server before `use-server` is
//! looked at); on the way back the backend's, then the frontend's
//! `http-response` rules and the persistence cookie. The rules themselves are
//! `crate::http::rules` (compiled at load, no I/O); this module only feeds
//! them the shard's view (server states, counters, addresses) and keeps the
//! per-connection state they reuse.
//!
//! A frontend with no rules and a backend with neither rules nor a cookie
//! cost nothing here: the request is not even loaded into a `Message`.

use std::net::SocketAddr;

use super::super::ctx::ShardCtx;
use super::route::ShardCounters;
use crate::http::head::{RequestHead, ResponseHead};
use crate::http::rules::cookie::{self, Dates, ServerView, Stick};
use crate::http::rules::{Conn as RuleConn, SectionRules, Txn, Verdict};
use crate::log::Termination;
use crate::state::ServerState;

/// What happens to a request once its rules ran.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(super) enum Decision {
    /// A rule answered: the response is in the caller's `out`. `tarpit`: hold
    /// it for `timeout tarpit` first.
    Answer {
        status: u16,
        term: Termination,
        tarpit: bool,
        redirect: bool,
    },
    /// Forward to `backend`; `server` when persistence or `use-server` chose
    /// it (else the balancer picks).
    Forward {
        backend: usize,
        server: Option<usize>,
    },
    /// No `use_backend` matched and there is no `default_backend`.
    NoBackend,
}

/// What the response rules decided.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(super) enum ResponseDecision {
    /// Forward the response; `true`: its head was edited and rebuilt (send
    /// [`RuleState::response_head`] instead of the server's).
    Forward(bool),
    /// `http-response deny`: answer this status instead (HAProxy's `PH`).
    Deny(u16),
}

/// The rules' state for one client connection, reused request after request.
pub(super) struct RuleState {
    txn: Txn,
    /// The request is loaded in `txn.req` (some rule or the cookie needs it).
    loaded: bool,
    /// What the request's persistence cookie said, for the response.
    stick: Stick,
    dates: Dates,
    /// The rebuilt request head, when a rule or the cookie edited it.
    req_head: RequestHead,
    req_buf: Vec<u8>,
    res_head: ResponseHead,
    res_buf: Vec<u8>,
    /// The persistence flags of the log line (`%tsc`'s last two characters).
    pub cookie_flags: [u8; 2],
}

/// The facts rules read about the connection.
#[derive(Clone, Copy)]
pub(super) struct Facts<'a> {
    pub ctx: &'a ShardCtx,
    pub frontend: usize,
    pub client: SocketAddr,
    pub local: SocketAddr,
    pub tls: Option<&'a crate::tls::TlsInfo>,
}

impl<'a> Facts<'a> {
    /// What the rules read of the connection, routed to `backend` if known.
    fn rule_conn<'c>(
        &self,
        backend: Option<usize>,
        counters: &'c ShardCounters<'a>,
    ) -> RuleConn<'c> {
        RuleConn {
            client: self.client,
            local: self.local,
            tls: self.tls,
            backend,
            counters,
        }
    }

    fn counters(&self) -> ShardCounters<'a> {
        ShardCounters::new(self.ctx, self.frontend, self.client)
    }
}

impl Default for RuleState {
    fn default() -> RuleState {
        RuleState {
            txn: Txn::default(),
            loaded: false,
            stick: Stick::None,
            dates: Dates::default(),
            req_head: RequestHead::default(),
            req_buf: Vec::new(),
            res_head: ResponseHead::default(),
            res_buf: Vec::new(),
            cookie_flags: *b"--",
        }
    }
}

impl RuleState {
    /// The request head to forward: the rebuilt one if rules edited it.
    pub(super) fn request_head<'a>(
        &'a self,
        head: &'a RequestHead,
        buf: &'a [u8],
        edited: bool,
    ) -> (&'a RequestHead, &'a [u8]) {
        if edited {
            (&self.req_head, &self.req_buf)
        } else {
            (head, buf)
        }
    }

    /// The rebuilt response head and its bytes.
    pub(super) fn response_head(&self) -> (&ResponseHead, &[u8]) {
        (&self.res_head, &self.res_buf)
    }

    /// Forgets the previous request (a request refused before its rules ran
    /// logs no captures, samples or cookie flags of the one before).
    pub(super) fn reset(&mut self) {
        self.loaded = false;
        self.cookie_flags = *b"--";
    }

    /// The SNI a new TLS connection to `server` sends for this request
    /// (`ssl sni EXPR`), into `out`; false when the server has none to compute.
    pub(super) fn server_sni(
        &self,
        f: &Facts,
        (backend, server): (usize, usize),
        out: &mut Vec<u8>,
    ) -> bool {
        let Some(r) = f.ctx.config.backends[backend].rules.get() else {
            return false;
        };
        if !self.loaded || r.server_sni.is_empty() {
            return false;
        }
        let counters = f.counters();
        let conn = f.rule_conn(Some(backend), &counters);
        r.render_server_sni(server, &self.txn, &conn, out)
    }

    /// This request's `http-request capture` values by slot (none when no
    /// rule looked at the request).
    pub(super) fn captures(&self) -> &[Vec<u8>] {
        if self.loaded {
            &self.txn.captures
        } else {
            &[]
        }
    }

    /// The frontend's `log-format` samples for this request (none when the
    /// request never reached the rules: a `<BADREQ>` line shows `-`).
    pub(super) fn log_samples(&self, f: &Facts, backend: Option<usize>) -> Vec<Box<[u8]>> {
        let mut out = Vec::new();
        let rules = f.ctx.config.frontends[f.frontend].rules.get();
        if let Some(r) = rules.filter(|r| !r.log_samples.is_empty() && self.loaded) {
            let counters = f.counters();
            let conn = f.rule_conn(backend, &counters);
            r.render_log_samples(&self.txn, &conn, &mut out);
        }
        out
    }

    /// `set-log-level`, if a rule ran it for this request.
    pub(super) fn log_level(&self) -> Option<u8> {
        self.loaded.then_some(self.txn.log_level).flatten()
    }

    fn load(&mut self, head: &RequestHead, buf: &[u8]) {
        if !self.loaded {
            self.txn.req.load_request(head, buf);
            self.txn.begin();
            self.loaded = true;
        }
    }

    /// Runs the request side. Returns the decision and whether the request
    /// head was edited (then [`Self::request_head`] gives the new one).
    pub(super) fn request(
        &mut self,
        f: &Facts,
        head: &RequestHead,
        buf: &[u8],
        out: &mut Vec<u8>,
    ) -> (Decision, bool) {
        let ctx = f.ctx;
        self.loaded = false;
        self.stick = Stick::None;
        self.dates = Dates::default();
        self.cookie_flags = *b"--";
        let fe = &ctx.config.frontends[f.frontend];
        let counters = f.counters();
        let mut conn = f.rule_conn(None, &counters);
        let mut backend = fe.default_backend;
        if let Some(r) = fe.rules.get() {
            self.load(head, buf);
            let v = r.apply_request(&mut self.txn, &conn, out);
            if let Some(d) = answer(v, &self.txn) {
                errorfile(&d, ctx, f.frontend, None, out);
                return (d, false);
            }
            if !r.use_backend.is_empty() {
                backend = r.route(&mut self.txn, &conn).or(fe.default_backend);
            }
        }
        let Some(b) = backend else {
            return (Decision::NoBackend, false);
        };
        conn.backend = Some(b);
        let be = &ctx.config.backends[b];
        let be_rules = be.rules.get();
        if let Some(r) = be_rules.filter(|r| !r.request.is_empty()) {
            self.load(head, buf);
            let v = r.apply_request(&mut self.txn, &conn, out);
            if let Some(d) = answer(v, &self.txn) {
                errorfile(&d, ctx, f.frontend, Some(b), out);
                return (d, false);
            }
        }
        let mut server = None;
        if let Some(spec) = &be.cookie {
            self.load(head, buf);
            let views: Vec<ServerView> = be
                .servers
                .iter()
                .enumerate()
                .map(|(i, s)| ServerView {
                    cookie: s.cookie.as_deref(),
                    usable: persistent(ctx.replica(b, i).state),
                })
                .collect();
            let now = crate::ring::unix_now_coarse();
            let (stick, dates) =
                cookie::on_request_at(spec, &mut self.txn.req, &views, be.persist, Some(now));
            self.stick = stick;
            self.dates = dates;
            self.cookie_flags[0] = match stick {
                Stick::None => b'N',
                Stick::Server(_) => b'V',
                Stick::Down(_) => b'D',
                Stick::Invalid => b'I',
                Stick::Expired => {
                    if spec.maxlife.is_some() && dates.first != 0 {
                        b'O'
                    } else {
                        b'E'
                    }
                }
            };
            if let Stick::Server(s) = stick {
                server = Some(s);
            }
        }
        if server.is_none() {
            if let Some(r) = be_rules.filter(|r| !r.use_server.is_empty()) {
                self.load(head, buf);
                // HAProxy ignores a `use-server` naming a stopped server,
                // unless `option persist`.
                server = r
                    .use_server(&mut self.txn, &conn)
                    .filter(|&s| be.persist || persistent(ctx.replica(b, s).state));
            }
        }
        // `sni EXPR` on a server reads the request once a server is picked.
        if be_rules.is_some_and(|r| !r.server_sni.is_empty()) {
            self.load(head, buf);
        }
        let edited = self.loaded && self.txn.req.edited();
        if edited {
            self.txn
                .req
                .rebuild_request(&mut self.req_buf, &mut self.req_head);
        }
        (Decision::Forward { backend: b, server }, edited)
    }

    /// Whether the response to a request routed to `backend` goes through
    /// [`Self::response`] at all.
    pub(super) fn wants_response(ctx: &ShardCtx, frontend: usize, backend: usize) -> bool {
        let has = |r: Option<&SectionRules>| r.is_some_and(|r| !r.response.is_empty());
        let be = &ctx.config.backends[backend];
        let fe = ctx.config.frontends[frontend].rules.get();
        be.cookie.is_some()
            || has(be.rules.get())
            || has(fe)
            || fe.is_some_and(|r| !r.log_samples.is_empty())
    }

    /// Runs the response side on the server's response head: the backend's
    /// then the frontend's `http-response` rules, then the persistence
    /// cookie for `server`.
    pub(super) fn response(
        &mut self,
        f: &Facts,
        (backend, server): (usize, usize),
        (head, buf): (&ResponseHead, &[u8]),
        out: &mut Vec<u8>,
    ) -> ResponseDecision {
        let ctx = f.ctx;
        let be = &ctx.config.backends[backend];
        let fe = &ctx.config.frontends[f.frontend];
        let counters = f.counters();
        let conn = f.rule_conn(Some(backend), &counters);
        self.txn.res.load_response(head, buf);
        self.txn.has_res = true;
        for r in [be.rules.get(), fe.rules.get()].into_iter().flatten() {
            if r.response.is_empty() {
                continue;
            }
            if let Verdict::Respond { status } | Verdict::Tarpit { status } =
                r.apply_response(&mut self.txn, &conn, out)
            {
                return ResponseDecision::Deny(status);
            }
        }
        if let Some(spec) = &be.cookie {
            let srv_cookie = be.servers[server].cookie.as_deref();
            let now = crate::ring::unix_now_coarse();
            // The request's method as the rules left it (`postonly`,
            // `nocache` read it), beside the response being edited.
            self.cookie_flags[1] = cookie::on_response_at(
                spec,
                &mut self.txn.res,
                Some((server, srv_cookie)),
                self.stick,
                self.dates,
                self.txn.req.method(),
                Some(now),
            );
        }
        let edited = self.txn.res.edited();
        if edited {
            self.txn
                .res
                .rebuild_response(&mut self.res_buf, &mut self.res_head);
        }
        ResponseDecision::Forward(edited)
    }
}

/// A persistence cookie or `use-server` may send a request to a server that
/// is UP or draining (weight 0 or DRAIN), not to one DOWN or in MAINT.
fn persistent(state: ServerState) -> bool {
    matches!(state, ServerState::Up | ServerState::Drain)
}

/// A `deny` or `tarpit` answers with the `errorfile` for its status, if one
/// is set (`auth`'s 401 keeps its built-in page, which carries the realm).
fn errorfile(
    d: &Decision,
    ctx: &ShardCtx,
    frontend: usize,
    backend: Option<usize>,
    out: &mut Vec<u8>,
) {
    if let Decision::Answer { status, term, .. } = *d {
        if term == Termination::LOCAL_REQUEST || status == 401 {
            return;
        }
        if let Some(page) = super::reply::custom_page(&ctx.config, frontend, backend, status) {
            out.clear();
            out.extend_from_slice(page);
        }
    }
}

/// A verdict that ends the request, in HAProxy's termination codes:
/// `deny`/`auth` are `PR`, `tarpit` is `PT`, `redirect`/`return` `LR`.
fn answer(v: Verdict, txn: &Txn) -> Option<Decision> {
    match v {
        Verdict::Continue => None,
        Verdict::Respond { status } => Some(Decision::Answer {
            status,
            term: if txn.local_answer {
                Termination::LOCAL_REQUEST
            } else {
                Termination::PROXY_REQUEST
            },
            tarpit: false,
            redirect: txn.redirected,
        }),
        Verdict::Tarpit { status } => Some(Decision::Answer {
            status,
            term: Termination::PROXY_TARPIT,
            tarpit: true,
            redirect: false,
        }),
    }
}
