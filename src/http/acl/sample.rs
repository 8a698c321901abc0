//! Sample fetches and converters: what `path`, `hdr(host)`, `src`,
//! `req.cook(SRV)`... take from a transaction, and the `,lower`, `,map(...)`
//! chain applied to them. Parsed once at load into [`Expr`]; evaluated by
//! calling back once per value (multi-value fetches such as `hdr` yield every
//! occurrence, as HAProxy's ACLs see them). Fetching allocates nothing;
//! converters write into the caller's [`Scratch`].

use std::collections::HashMap;
use std::io::Write;
use std::net::{IpAddr, SocketAddr};
use std::sync::Arc;

use super::auth::Userlist;
use super::msg::{trim, Message};
use super::pattern::{int_text, Method, Sample};
use super::payload::{self, Inspect, Peek};
use super::{Env, Error};

/// Counters a fetch reads from the running proxy; the shard implements it.
pub trait Counters {
    /// Usable servers of backend `backend` (`nbsrv`).
    fn nbsrv(&self, _backend: usize) -> u32 {
        0
    }
    /// Current sessions on backend `backend` (`be_conn`).
    fn be_conn(&self, _backend: usize) -> u32 {
        0
    }
    /// Current sessions on the frontend (`fe_conn`).
    fn fe_conn(&self) -> u32 {
        0
    }
    /// The shard's clock, UNIX seconds (`date`); the rules never read the
    /// clock themselves.
    fn unix_time(&self) -> u64 {
        0
    }
    /// A random number (`rand`), from the shard's generator.
    fn random(&self) -> u64 {
        0
    }
    /// The server the request went to, once known (`srv_name`).
    fn server_name(&self) -> Option<&str> {
        None
    }
    /// The frontend's name (`fe_name`).
    fn frontend_name(&self) -> Option<&str> {
        None
    }
}

/// Counters for tests and tools: everything zero.
pub struct NoCounters;
impl Counters for NoCounters {}

/// Transaction variables (`set-var(txn.NAME)`), indexed by the id the
/// compiler gave each name; reused across transactions.
#[derive(Debug, Clone, Default)]
pub struct Vars {
    bytes: Vec<u8>,
    slots: Vec<Option<(u32, u32)>>,
}

impl Vars {
    pub fn clear(&mut self) {
        self.bytes.clear();
        self.slots.iter_mut().for_each(|s| *s = None);
    }

    pub fn set(&mut self, id: usize, v: &[u8]) {
        if self.slots.len() <= id {
            self.slots.resize(id + 1, None);
        }
        let s = self.bytes.len() as u32;
        self.bytes.extend_from_slice(v);
        self.slots[id] = Some((s, self.bytes.len() as u32));
    }

    pub fn unset(&mut self, id: usize) {
        if let Some(s) = self.slots.get_mut(id) {
            *s = None;
        }
    }

    pub fn get(&self, id: usize) -> Option<&[u8]> {
        let (s, e) = (*self.slots.get(id)?)?;
        self.bytes.get(s as usize..e as usize)
    }
}

/// What a fetch reads: the request (as rules edited it so far), the
/// response once there is one, the connection's addresses and the proxy's
/// counters.
pub struct Ctx<'a> {
    pub req: &'a Message,
    pub res: Option<&'a Message>,
    pub client: SocketAddr,
    pub local: SocketAddr,
    /// The client connection's TLS facts (`ssl_fc*`); `None` for plain TCP.
    pub tls: Option<&'a crate::tls::TlsInfo>,
    /// The backend chosen so far (`nbsrv`, `be_conn` without argument).
    pub backend: Option<usize>,
    pub counters: &'a dyn Counters,
    pub vars: &'a Vars,
    /// A mode-tcp client's first bytes (`req.payload`, `req.ssl_sni`...);
    /// `None` where there are none to read (HTTP, no `tcp-request content`).
    pub inspect: Option<&'a Inspect>,
}

/// The value a payload parser found, noting in `i` that more bytes could
/// change a miss.
fn peeked<'a, T>(i: Option<&'a Inspect>, p: impl FnOnce(&'a Inspect) -> Peek<T>) -> Option<T> {
    let i = i?;
    match p(i) {
        Peek::Found(v) => Some(v),
        Peek::Short => {
            i.may_change();
            None
        }
        Peek::No => None,
    }
}

/// A `map` file: key → value.
pub type MapTable = HashMap<Box<[u8]>, Box<[u8]>>;

/// Arguments of a fetch or converter, each with its offset.
type Args = Vec<(usize, String)>;

/// Reusable buffers converters write into.
#[derive(Debug, Default)]
pub struct Scratch {
    a: Vec<u8>,
    b: Vec<u8>,
}

#[derive(Debug, Clone)]
pub enum Fetch {
    /// `req.len`: bytes peeked so far (may still grow).
    ReqLen,
    /// `req.payload(OFF,LEN)`.
    ReqPayload(usize, usize),
    /// `req.ssl_hello_type`.
    SslHelloType,
    /// `req.ssl_sni`: the ClientHello's server name.
    SslHelloSni,
    Path,
    Url,
    /// `capture.req.uri`: the target as received.
    ReceivedUrl,
    Query,
    Method,
    Base,
    ReqVer,
    UrlParam(Box<[u8]>),
    /// `occ` 0: every value; N>0: the Nth from the first; N<0: from the last.
    Hdr {
        res: bool,
        name: Box<[u8]>,
        occ: i32,
        full: bool,
    },
    HdrCnt {
        res: bool,
        name: Box<[u8]>,
    },
    Cook {
        res: bool,
        name: Box<[u8]>,
    },
    CookCnt(Option<Box<[u8]>>),
    Src,
    SrcPort,
    Dst,
    DstPort,
    SslFc,
    /// `ssl_fc_has_sni`, `ssl_fc_sni`, `ssl_fc_protocol`, `ssl_fc_cipher`.
    SslFcHasSni,
    SslFcSni,
    SslFcProtocol,
    SslFcCipher,
    /// `ssl_fc_alpn`, `ssl_fc_is_resumed`.
    SslFcAlpn,
    SslFcIsResumed,
    /// `ssl_c_used`, `ssl_c_verify`, `ssl_c_s_dn`, `ssl_c_i_dn`.
    SslCUsed,
    SslCVerify,
    /// The whole DN, or one attribute (`ssl_c_s_dn(CN)`, occurrence).
    SslCSubject(Option<(Box<str>, i32)>),
    SslCIssuer(Option<(Box<str>, i32)>),
    Nbsrv(Option<usize>),
    BeConn(Option<usize>),
    FeConn,
    Const(bool),
    Status,
    HttpAuth(Arc<Userlist>),
    HttpAuthGroup(Arc<Userlist>),
    Var(usize),
    Str(Box<[u8]>),
    Int(i64),
    /// `date([OFFSET])`.
    Date(i64),
    /// `rand([RANGE])`: 0..RANGE (0: the whole 32-bit range).
    Rand(u64),
    /// `be_name`: the chosen backend's name, from the load-time list.
    BeName(Arc<[Box<str>]>),
    SrvName,
    FeName,
}

#[derive(Debug, Clone)]
pub enum Conv {
    Lower,
    Upper,
    Base64,
    Hex,
    /// 1-based index (negative: from the end) and delimiter set.
    Field(i32, Box<[u8]>),
    Word(i32, Box<[u8]>),
    Regsub(regex::bytes::Regex, Box<[u8]>, bool),
    Map(Arc<MapTable>, Option<Box<[u8]>>),
    Length,
    /// `url_dec([in_form])`.
    UrlDec(bool),
    /// `bytes(OFFSET[,LENGTH])`.
    Bytes(usize, Option<usize>),
    /// `ipmask(MASK4[,MASK6])`, prefix lengths.
    IpMask(u8, u8),
    /// `http_date([OFFSET])`.
    HttpDate(i64),
}

/// A fetch and its converters.
#[derive(Debug, Clone)]
pub struct Expr {
    pub fetch: Fetch,
    pub convs: Vec<Conv>,
}

impl Fetch {
    /// The match method an ACL uses without `-m`.
    pub fn default_method(&self) -> Method {
        match self {
            Fetch::Src | Fetch::Dst => Method::Ip,
            Fetch::SrcPort
            | Fetch::DstPort
            | Fetch::HdrCnt { .. }
            | Fetch::CookCnt(_)
            | Fetch::Nbsrv(_)
            | Fetch::BeConn(_)
            | Fetch::FeConn
            | Fetch::Status
            | Fetch::Date(_)
            | Fetch::Rand(_)
            | Fetch::SslCVerify
            | Fetch::ReqLen
            | Fetch::SslHelloType
            | Fetch::Int(_) => Method::Int,
            Fetch::SslFc
            | Fetch::SslFcHasSni
            | Fetch::SslFcIsResumed
            | Fetch::SslCUsed
            | Fetch::Const(_)
            | Fetch::HttpAuth(_) => Method::Bool,
            _ => Method::Str,
        }
    }

    /// Whether it reads the response (refused in `http-request` rules and
    /// routing).
    pub fn response_only(&self) -> bool {
        matches!(
            self,
            Fetch::Status
                | Fetch::Hdr { res: true, .. }
                | Fetch::HdrCnt { res: true, .. }
                | Fetch::Cook { res: true, .. }
        )
    }

    /// Whether it reads the request head (refused in `http-response` rules,
    /// where HAProxy no longer has it).
    pub fn request_only(&self) -> bool {
        matches!(
            self,
            Fetch::Path
                | Fetch::Url
                | Fetch::ReceivedUrl
                | Fetch::Query
                | Fetch::Method
                | Fetch::Base
                | Fetch::ReqVer
                | Fetch::UrlParam(_)
                | Fetch::Hdr { res: false, .. }
                | Fetch::HdrCnt { res: false, .. }
                | Fetch::Cook { res: false, .. }
                | Fetch::CookCnt(_)
                | Fetch::HttpAuth(_)
                | Fetch::HttpAuthGroup(_)
        )
    }

    /// Calls `f` with each value until it returns true; whether one did.
    pub fn each(&self, ctx: &Ctx, f: &mut dyn FnMut(Sample) -> bool) -> bool {
        let req = ctx.req;
        match self {
            // No path at all (`*`, `http://host`): no sample, as HAProxy.
            Fetch::Path => !req.path_query().is_empty() && f(Sample::Str(req.path())),
            Fetch::Url => f(Sample::Str(req.target())),
            Fetch::ReceivedUrl => f(Sample::Str(req.received_target())),
            Fetch::Query => req.query().is_some_and(|q| f(Sample::Str(q))),
            // HAProxy 2.6 answers the received method even after
            // `set-method` (checked against haproxy in tests/rules_oracle.rs).
            Fetch::Method => f(Sample::Str(req.received_method())),
            Fetch::Base => {
                // Host + path: built in a stack buffer.
                let host = req.lines(b"host").next().unwrap_or_default();
                let path = req.path();
                let mut buf = [0u8; 1024];
                if host.len() + path.len() > buf.len() {
                    return false;
                }
                buf[..host.len()].copy_from_slice(host);
                buf[host.len()..host.len() + path.len()].copy_from_slice(path);
                f(Sample::Str(&buf[..host.len() + path.len()]))
            }
            Fetch::ReqVer => f(Sample::Str(match req.version() {
                crate::http::head::Version::Http10 => b"1.0",
                crate::http::head::Version::Http11 => b"1.1",
            })),
            Fetch::UrlParam(name) => {
                let Some(q) = req.query() else { return false };
                q.split(|&b| b == b'&')
                    .filter_map(|p| p.strip_prefix(&name[..])?.strip_prefix(b"="))
                    .any(|v| f(Sample::Str(v)))
            }
            Fetch::Hdr {
                res,
                name,
                occ,
                full,
            } => {
                let Some(m) = side(ctx, *res) else {
                    return false;
                };
                if *full {
                    return nth(m.lines(name), *occ, f);
                }
                nth(m.values(name), *occ, f)
            }
            Fetch::HdrCnt { res, name } => {
                let Some(m) = side(ctx, *res) else {
                    return false;
                };
                // Without a name: every header line's values.
                let n = if name.is_empty() {
                    m.headers()
                        .map(|(_, v)| v.split(|&b| b == b',').count())
                        .sum::<usize>()
                } else {
                    m.values(name).count()
                };
                f(Sample::Int(n as i64))
            }
            Fetch::Cook { res, name } => {
                let Some(m) = side(ctx, *res) else {
                    return false;
                };
                if *res {
                    return m
                        .lines(b"set-cookie")
                        .filter_map(|l| {
                            let first = l.split(|&b| b == b';').next()?;
                            cookie_pair(first, name)
                        })
                        .any(|v| f(Sample::Str(v)));
                }
                cookies(m)
                    .filter_map(|c| cookie_pair(c, name))
                    .any(|v| f(Sample::Str(v)))
            }
            Fetch::CookCnt(name) => {
                let n = cookies(req)
                    .filter(|c| match name {
                        Some(n) => cookie_pair(c, n).is_some(),
                        None => !c.is_empty(),
                    })
                    .count();
                f(Sample::Int(n as i64))
            }
            Fetch::ReqLen => ctx.inspect.is_some_and(|i| {
                i.may_change();
                f(Sample::Int(i.data.len() as i64))
            }),
            Fetch::ReqPayload(off, len) => peeked(ctx.inspect, |i| {
                payload::payload(&i.data, *off, *len, i.max)
            })
            .is_some_and(|v| f(Sample::Str(v))),
            Fetch::SslHelloType => peeked(ctx.inspect, |i| payload::hello_type(&i.data))
                .is_some_and(|v| f(Sample::Int(v))),
            Fetch::SslHelloSni => peeked(ctx.inspect, |i| payload::hello_sni(&i.data))
                .is_some_and(|v| f(Sample::Str(v))),
            Fetch::Src => f(Sample::Ip(unmap(ctx.client.ip()))),
            Fetch::SrcPort => f(Sample::Int(ctx.client.port() as i64)),
            Fetch::Dst => f(Sample::Ip(unmap(ctx.local.ip()))),
            Fetch::DstPort => f(Sample::Int(ctx.local.port() as i64)),
            Fetch::SslFc => f(Sample::Bool(ctx.tls.is_some())),
            // On a plain connection the TLS fetches have no sample (HAProxy).
            Fetch::SslFcHasSni => ctx.tls.is_some_and(|t| f(Sample::Bool(t.sni.is_some()))),
            Fetch::SslFcSni => ctx
                .tls
                .and_then(|t| t.sni.as_deref())
                .is_some_and(|n| f(Sample::Str(n.as_bytes()))),
            Fetch::SslFcProtocol => ctx
                .tls
                .is_some_and(|t| f(Sample::Str(t.version.as_bytes()))),
            Fetch::SslFcCipher => ctx.tls.is_some_and(|t| f(Sample::Str(t.cipher.as_bytes()))),
            Fetch::SslFcAlpn => ctx
                .tls
                .and_then(|t| t.alpn.as_deref())
                .is_some_and(|p| f(Sample::Str(p.as_bytes()))),
            Fetch::SslFcIsResumed => ctx.tls.is_some_and(|t| f(Sample::Bool(t.resumed))),
            Fetch::SslCUsed => ctx
                .tls
                .is_some_and(|t| f(Sample::Bool(t.client_cert.is_some()))),
            Fetch::SslCVerify => ctx
                .tls
                .is_some_and(|t| f(Sample::Int(t.client_cert.as_ref().map_or(0, |c| c.verify)))),
            Fetch::SslCSubject(entry) | Fetch::SslCIssuer(entry) => {
                let Some(c) = ctx.tls.and_then(|t| t.client_cert.as_ref()) else {
                    return false;
                };
                let (line, dn) = match self {
                    Fetch::SslCSubject(_) => (&c.subject, &c.subject_dn),
                    _ => (&c.issuer, &c.issuer_dn),
                };
                match entry {
                    None => f(Sample::Str(line.as_bytes())),
                    Some((name, occ)) => crate::tls::dn_entry(dn, name, *occ)
                        .is_some_and(|v| f(Sample::Str(v.as_bytes()))),
                }
            }
            Fetch::Nbsrv(b) => match b.or(ctx.backend) {
                Some(b) => f(Sample::Int(ctx.counters.nbsrv(b) as i64)),
                None => false,
            },
            Fetch::BeConn(b) => match b.or(ctx.backend) {
                Some(b) => f(Sample::Int(ctx.counters.be_conn(b) as i64)),
                None => false,
            },
            Fetch::FeConn => f(Sample::Int(ctx.counters.fe_conn() as i64)),
            Fetch::Const(b) => f(Sample::Bool(*b)),
            Fetch::Status => match ctx.res {
                Some(r) => f(Sample::Int(r.status() as i64)),
                None => false,
            },
            Fetch::HttpAuth(ul) => {
                let ok = req
                    .lines(b"authorization")
                    .next()
                    .and_then(|a| ul.authenticate(a))
                    .is_some();
                f(Sample::Bool(ok))
            }
            Fetch::HttpAuthGroup(ul) => {
                let Some(u) = req
                    .lines(b"authorization")
                    .next()
                    .and_then(|a| ul.authenticate(a))
                else {
                    return false;
                };
                ul.groups_of(u).any(|g| f(Sample::Str(g.as_bytes())))
            }
            Fetch::Var(id) => ctx.vars.get(*id).is_some_and(|v| f(Sample::Str(v))),
            Fetch::Str(s) => f(Sample::Str(s)),
            Fetch::Int(i) => f(Sample::Int(*i)),
            Fetch::Date(off) => f(Sample::Int(ctx.counters.unix_time() as i64 + off)),
            Fetch::Rand(range) => {
                let r = ctx.counters.random() & 0xffff_ffff;
                let v = if *range == 0 { r } else { (r * range) >> 32 };
                f(Sample::Int(v as i64))
            }
            Fetch::SrvName => ctx
                .counters
                .server_name()
                .is_some_and(|n| f(Sample::Str(n.as_bytes()))),
            Fetch::FeName => ctx
                .counters
                .frontend_name()
                .is_some_and(|n| f(Sample::Str(n.as_bytes()))),
            Fetch::BeName(names) => match ctx.backend.and_then(|b| names.get(b)) {
                Some(n) => f(Sample::Str(n.as_bytes())),
                None => false,
            },
        }
    }
}

fn side<'a>(ctx: &Ctx<'a>, res: bool) -> Option<&'a Message> {
    if res {
        ctx.res
    } else {
        Some(ctx.req)
    }
}

fn unmap(ip: IpAddr) -> IpAddr {
    match ip {
        IpAddr::V6(v6) => v6.to_ipv4_mapped().map_or(ip, IpAddr::V4),
        v4 => v4,
    }
}

fn nth<'a>(
    it: impl Iterator<Item = &'a [u8]> + Clone,
    occ: i32,
    f: &mut dyn FnMut(Sample) -> bool,
) -> bool {
    match occ {
        0 => it.into_iter().any(|v| f(Sample::Str(v))),
        n if n > 0 => it
            .into_iter()
            .nth(n as usize - 1)
            .is_some_and(|v| f(Sample::Str(v))),
        n => {
            let count = it.clone().count();
            let back = (-n) as usize;
            if back > count {
                return false;
            }
            it.into_iter()
                .nth(count - back)
                .is_some_and(|v| f(Sample::Str(v)))
        }
    }
}

/// Every `name=value` element of the request's `Cookie` lines.
pub fn cookies(m: &Message) -> impl Iterator<Item = &[u8]> + '_ {
    m.lines(b"cookie")
        .flat_map(|l| l.split(|&b| b == b';' || b == b','))
        .map(trim)
}

/// The value of a `name=value` cookie element if it is named `name`.
pub fn cookie_pair<'a>(c: &'a [u8], name: &[u8]) -> Option<&'a [u8]> {
    let c = trim(c);
    let v = c.strip_prefix(name)?;
    let v = trim(v).strip_prefix(b"=")?;
    Some(trim(v))
}

/// A sample's text: appended to `out`.
pub fn sample_text(s: Sample, out: &mut Vec<u8>) {
    match s {
        Sample::Str(b) => out.extend_from_slice(b),
        Sample::Int(i) => {
            let mut buf = [0u8; 24];
            out.extend_from_slice(int_text(i, &mut buf));
        }
        Sample::Ip(ip) => {
            let _ = write!(out, "{ip}");
        }
        Sample::Bool(b) => out.push(if b { b'1' } else { b'0' }),
    }
}

impl Conv {
    /// Converts `input` into `out` (cleared by the caller); false when the
    /// sample is lost (`map` without a default and no entry, no such field).
    fn apply(&self, input: &[u8], out: &mut Vec<u8>) -> bool {
        match self {
            Conv::Lower => out.extend(input.iter().map(u8::to_ascii_lowercase)),
            Conv::Upper => out.extend(input.iter().map(u8::to_ascii_uppercase)),
            Conv::Base64 => super::auth::base64_encode(input, out),
            Conv::Hex => {
                for b in input {
                    let _ = write!(out, "{b:02X}");
                }
            }
            Conv::Length => {
                let mut buf = [0u8; 24];
                out.extend_from_slice(int_text(input.len() as i64, &mut buf));
            }
            Conv::Field(n, delims) => {
                let parts = || input.split(|b| delims.contains(b));
                let v = if *n > 0 {
                    parts().nth(*n as usize - 1)
                } else {
                    let c = parts().count();
                    let back = n.unsigned_abs() as usize;
                    (back <= c).then(|| parts().nth(c - back)).flatten()
                };
                match v {
                    Some(v) => out.extend_from_slice(v),
                    None => return false,
                }
            }
            Conv::Word(n, delims) => {
                let parts = || {
                    input
                        .split(|b| delims.contains(b))
                        .filter(|w| !w.is_empty())
                };
                let v = if *n > 0 {
                    parts().nth(*n as usize - 1)
                } else {
                    let c = parts().count();
                    let back = n.unsigned_abs() as usize;
                    (back <= c).then(|| parts().nth(c - back)).flatten()
                };
                match v {
                    Some(v) => out.extend_from_slice(v),
                    None => return false,
                }
            }
            Conv::Regsub(re, repl, global) => {
                let r = if *global {
                    re.replace_all(input, &repl[..])
                } else {
                    re.replace(input, &repl[..])
                };
                out.extend_from_slice(&r);
            }
            Conv::Map(map, default) => match map.get(input).or(default.as_ref()) {
                Some(v) => out.extend_from_slice(v),
                None => return false,
            },
            Conv::UrlDec(form) => {
                let mut i = 0;
                while i < input.len() {
                    match input[i] {
                        b'%' => {
                            let hex = |c: u8| (c as char).to_digit(16);
                            match (
                                input.get(i + 1).and_then(|&c| hex(c)),
                                input.get(i + 2).and_then(|&c| hex(c)),
                            ) {
                                (Some(a), Some(b)) => out.push((a * 16 + b) as u8),
                                _ => return false,
                            }
                            i += 3;
                            continue;
                        }
                        b'+' if *form => out.push(b' '),
                        c => out.push(c),
                    }
                    i += 1;
                }
            }
            Conv::Bytes(off, len) => {
                let start = (*off).min(input.len());
                let end = len.map_or(input.len(), |l| (start + l).min(input.len()));
                out.extend_from_slice(&input[start..end]);
            }
            Conv::IpMask(m4, m6) => {
                let Some(ip) = std::str::from_utf8(input)
                    .ok()
                    .and_then(|s| s.parse::<IpAddr>().ok())
                else {
                    return false;
                };
                let masked: IpAddr = match ip {
                    IpAddr::V4(a) => {
                        let m = u32::MAX.checked_shl(32 - u32::from(*m4)).unwrap_or(0);
                        IpAddr::V4((u32::from(a) & m).into())
                    }
                    IpAddr::V6(a) => {
                        let m = u128::MAX.checked_shl(128 - u32::from(*m6)).unwrap_or(0);
                        IpAddr::V6((u128::from(a) & m).into())
                    }
                };
                let _ = write!(out, "{masked}");
            }
            Conv::HttpDate(off) => {
                let Some(t) = super::pattern::parse_int_prefix(input) else {
                    return false;
                };
                http_date(t + off, out);
            }
        }
        true
    }
}

impl Expr {
    /// Calls `f` with each (converted) value until it returns true.
    pub fn each(
        &self,
        ctx: &Ctx,
        scratch: &mut Scratch,
        f: &mut dyn FnMut(Sample) -> bool,
    ) -> bool {
        if self.convs.is_empty() {
            return self.fetch.each(ctx, f);
        }
        let convs = &self.convs;
        self.fetch.each(ctx, &mut |s| {
            scratch.a.clear();
            sample_text(s, &mut scratch.a);
            for c in convs {
                scratch.b.clear();
                if !c.apply(&scratch.a, &mut scratch.b) {
                    return false;
                }
                std::mem::swap(&mut scratch.a, &mut scratch.b);
            }
            f(Sample::Str(&scratch.a))
        })
    }

    /// The first value's text appended to `out` (log-format `%[...]`,
    /// `set-var`); false when there is none.
    pub fn text(&self, ctx: &Ctx, scratch: &mut Scratch, out: &mut Vec<u8>) -> bool {
        self.each(ctx, scratch, &mut |s| {
            sample_text(s, out);
            true
        })
    }
}

/// `Tue, 14 Nov 2023 22:13:20 GMT` for UNIX time `t` (RFC 9110 IMF-fixdate).
fn http_date(t: i64, out: &mut Vec<u8>) {
    const DAYS: [&str; 7] = ["Thu", "Fri", "Sat", "Sun", "Mon", "Tue", "Wed"];
    const MONTHS: [&str; 12] = [
        "Jan", "Feb", "Mar", "Apr", "May", "Jun", "Jul", "Aug", "Sep", "Oct", "Nov", "Dec",
    ];
    let days = t.div_euclid(86400);
    let rem = t.rem_euclid(86400);
    // Howard Hinnant's days-to-civil.
    let z = days + 719_468;
    let era = z.div_euclid(146_097);
    let doe = z - era * 146_097;
    let yoe = (doe - doe / 1460 + doe / 36_524 - doe / 146_096) / 365;
    let doy = doe - (365 * yoe + yoe / 4 - yoe / 100);
    let mp = (5 * doy + 2) / 153;
    let day = doy - (153 * mp + 2) / 5 + 1;
    let month = if mp < 10 { mp + 3 } else { mp - 9 };
    let year = yoe + era * 400 + i64::from(month <= 2);
    let _ = write!(
        out,
        "{}, {day:02} {} {year} {:02}:{:02}:{:02} GMT",
        DAYS[days.rem_euclid(7) as usize],
        MONTHS[(month - 1) as usize],
        rem / 3600,
        rem % 3600 / 60,
        rem % 60
    );
}

/// Splits `s` at top-level commas (outside parentheses), keeping offsets.
fn split_commas(s: &str) -> Vec<(usize, &str)> {
    let mut out = Vec::new();
    let mut depth = 0i32;
    let mut start = 0;
    let mut esc = false;
    for (i, c) in s.char_indices() {
        if esc {
            esc = false;
            continue;
        }
        match c {
            '\\' => esc = true,
            '(' => depth += 1,
            ')' => depth -= 1,
            ',' if depth == 0 => {
                out.push((start, &s[start..i]));
                start = i + 1;
            }
            _ => {}
        }
    }
    out.push((start, &s[start..]));
    out
}

/// `name(a,b)` → name, args with offsets (relative to `s`).
fn call(s: &str, at: usize) -> Result<(&str, Args), Error> {
    let Some(open) = s.find('(') else {
        return Ok((s, Vec::new()));
    };
    if !s.ends_with(')') {
        return Err(Error {
            at: at + open,
            msg: format!("missing ')' in \"{s}\""),
        });
    }
    let inner = &s[open + 1..s.len() - 1];
    let mut args = Vec::new();
    let mut cur = String::new();
    let mut cur_at = open + 1;
    let mut esc = false;
    for (i, c) in inner.char_indices() {
        if esc {
            cur.push(c);
            esc = false;
        } else if c == '\\' {
            esc = true;
        } else if c == ',' {
            args.push((at + cur_at, std::mem::take(&mut cur)));
            cur_at = open + 2 + i;
        } else {
            cur.push(c);
        }
    }
    if !inner.is_empty() {
        args.push((at + cur_at, cur));
    }
    Ok((&s[..open], args))
}

fn arg_int(args: &[(usize, String)], i: usize, what: &str) -> Result<Option<i64>, Error> {
    match args.get(i) {
        None => Ok(None),
        Some((at, a)) if a.is_empty() => {
            let _ = at;
            Ok(None)
        }
        Some((at, a)) => a.trim().parse::<i64>().map(Some).map_err(|_| Error {
            at: *at,
            msg: format!("{what}: \"{a}\" is not an integer"),
        }),
    }
}

/// Parses `FETCH[(args)][,CONV[(args)]]...` at offset `at` of the source.
pub fn parse_expr(s: &str, at: usize, env: &mut Env) -> Result<Expr, Error> {
    let parts = split_commas(s);
    let (off, first) = parts[0];
    let (name, args) = call(first, at + off)?;
    let fetch = parse_fetch(name, &args, at + off, env)?;
    let mut convs = Vec::new();
    for &(off, c) in &parts[1..] {
        convs.push(parse_conv(c, at + off, env)?);
    }
    Ok(Expr { fetch, convs })
}

fn need<'a>(args: &'a [(usize, String)], name: &str, at: usize) -> Result<&'a str, Error> {
    match args.first() {
        Some((_, a)) if !a.is_empty() => Ok(a),
        _ => Err(Error {
            at,
            msg: format!("fetch \"{name}\" needs an argument"),
        }),
    }
}

pub fn parse_fetch(
    name: &str,
    args: &[(usize, String)],
    at: usize,
    env: &mut Env,
) -> Result<Fetch, Error> {
    let lower = |s: &str| s.to_ascii_lowercase().into_bytes().into_boxed_slice();
    let backend = |env: &Env, i: usize| -> Result<Option<usize>, Error> {
        match args.get(i) {
            None => Ok(None),
            Some((a_at, b)) => env.backend(b).map(Some).ok_or_else(|| Error {
                at: *a_at,
                msg: format!("backend \"{b}\" does not exist"),
            }),
        }
    };
    Ok(match name {
        "path" => Fetch::Path,
        "url" => Fetch::Url,
        "capture.req.uri" => Fetch::ReceivedUrl,
        "capture.req.method" => Fetch::Method,
        "capture.req.ver" => Fetch::ReqVer,
        "query" => Fetch::Query,
        "method" => Fetch::Method,
        "base" => Fetch::Base,
        "req.ver" | "req_ver" => Fetch::ReqVer,
        "url_param" | "urlp" => Fetch::UrlParam(need(args, name, at)?.as_bytes().into()),
        "hdr" | "req.hdr" | "req.fhdr" | "shdr" | "res.hdr" | "res.fhdr" => Fetch::Hdr {
            res: matches!(name, "shdr" | "res.hdr" | "res.fhdr"),
            name: lower(need(args, name, at)?),
            occ: arg_int(args, 1, name)?.unwrap_or(0) as i32,
            full: name.ends_with("fhdr"),
        },
        "hdr_cnt" | "req.hdr_cnt" | "shdr_cnt" | "res.hdr_cnt" => Fetch::HdrCnt {
            res: name.starts_with('s') || name.starts_with("res."),
            name: args
                .first()
                .map(|a| a.1.to_ascii_lowercase().into_bytes().into())
                .unwrap_or_default(),
        },
        "cook" | "req.cook" | "scook" | "res.cook" => Fetch::Cook {
            res: name.starts_with('s') || name.starts_with("res."),
            name: need(args, name, at)?.as_bytes().into(),
        },
        "cook_cnt" | "req.cook_cnt" => Fetch::CookCnt(
            args.first()
                .filter(|a| !a.1.is_empty())
                .map(|a| a.1.as_bytes().into()),
        ),
        "req.len" | "req_len" => Fetch::ReqLen,
        "req.payload" => {
            let off = arg_int(args, 0, name)?;
            let len = arg_int(args, 1, name)?;
            match (off, len) {
                (Some(o), Some(l)) if o >= 0 && l >= 0 => Fetch::ReqPayload(o as usize, l as usize),
                _ => {
                    return Err(Error {
                        at,
                        msg: format!("fetch \"{name}\" needs an offset and a length (>= 0)"),
                    })
                }
            }
        }
        "req.ssl_hello_type" | "req_ssl_hello_type" => Fetch::SslHelloType,
        "req.ssl_sni" | "req_ssl_sni" => Fetch::SslHelloSni,
        "src" => Fetch::Src,
        "src_port" => Fetch::SrcPort,
        "dst" => Fetch::Dst,
        "dst_port" => Fetch::DstPort,
        "ssl_fc" => Fetch::SslFc,
        "ssl_fc_has_sni" => Fetch::SslFcHasSni,
        "ssl_fc_sni" => Fetch::SslFcSni,
        "ssl_fc_protocol" => Fetch::SslFcProtocol,
        "ssl_fc_cipher" => Fetch::SslFcCipher,
        "ssl_fc_alpn" => Fetch::SslFcAlpn,
        "ssl_fc_is_resumed" => Fetch::SslFcIsResumed,
        "ssl_c_used" => Fetch::SslCUsed,
        "ssl_c_verify" => Fetch::SslCVerify,
        "ssl_c_s_dn" | "ssl_c_i_dn" => {
            let entry = match args.first() {
                Some((_, e)) if !e.is_empty() => Some((
                    e.as_str().into(),
                    arg_int(args, 1, name)?.unwrap_or(0) as i32,
                )),
                _ => None,
            };
            if name == "ssl_c_s_dn" {
                Fetch::SslCSubject(entry)
            } else {
                Fetch::SslCIssuer(entry)
            }
        }
        "nbsrv" => Fetch::Nbsrv(backend(env, 0)?),
        "be_conn" => Fetch::BeConn(backend(env, 0)?),
        "fe_conn" => Fetch::FeConn,
        "always_true" => Fetch::Const(true),
        "always_false" => Fetch::Const(false),
        "status" => Fetch::Status,
        "http_auth" | "http_auth_group" => {
            let l = need(args, name, at)?;
            let ul = env.userlist(l).ok_or_else(|| Error {
                at: args[0].0,
                msg: format!("userlist \"{l}\" does not exist"),
            })?;
            if name == "http_auth" {
                Fetch::HttpAuth(ul)
            } else {
                Fetch::HttpAuthGroup(ul)
            }
        }
        "var" => {
            let v = need(args, name, at)?;
            Fetch::Var(env.var(v, args[0].0)?)
        }
        "date" => Fetch::Date(arg_int(args, 0, name)?.unwrap_or(0)),
        "rand" => Fetch::Rand(arg_int(args, 0, name)?.unwrap_or(0).max(0) as u64),
        "srv_name" => Fetch::SrvName,
        "fe_name" => Fetch::FeName,
        "be_name" => Fetch::BeName(env.backends.iter().map(|b| b.as_str().into()).collect()),
        "str" => Fetch::Str(
            args.first()
                .map(|a| a.1.as_bytes().into())
                .unwrap_or_default(),
        ),
        "int" => Fetch::Int(arg_int(args, 0, name)?.unwrap_or(0)),
        _ => {
            return Err(Error {
                at,
                msg: format!("unknown fetch method \"{name}\""),
            })
        }
    })
}

fn parse_conv(s: &str, at: usize, env: &mut Env) -> Result<Conv, Error> {
    let (name, args) = call(s, at)?;
    let delims = |i: usize| -> Box<[u8]> {
        args.get(i)
            .map(|a| a.1.as_bytes().into())
            .unwrap_or_else(|| b" ".to_vec().into())
    };
    let idx = |what: &str| -> Result<i32, Error> {
        match arg_int(&args, 0, what)? {
            Some(n) if n != 0 => Ok(n as i32),
            _ => Err(Error {
                at,
                msg: format!("{what} needs a non-zero index"),
            }),
        }
    };
    Ok(match name {
        "lower" => Conv::Lower,
        "upper" => Conv::Upper,
        "base64" => Conv::Base64,
        "hex" => Conv::Hex,
        "length" => Conv::Length,
        "url_dec" => Conv::UrlDec(arg_int(&args, 0, "url_dec")?.unwrap_or(0) != 0),
        "bytes" => {
            let off = arg_int(&args, 0, "bytes")?.ok_or(Error {
                at,
                msg: "bytes needs an offset".into(),
            })?;
            let len = arg_int(&args, 1, "bytes")?;
            Conv::Bytes(off.max(0) as usize, len.map(|l| l.max(0) as usize))
        }
        "ipmask" => {
            let m4 = arg_int(&args, 0, "ipmask")?.ok_or(Error {
                at,
                msg: "ipmask needs a mask".into(),
            })?;
            let m6 = arg_int(&args, 1, "ipmask")?.unwrap_or(128);
            if !(0..=32).contains(&m4) || !(0..=128).contains(&m6) {
                return Err(Error {
                    at,
                    msg: "ipmask: prefix lengths are 0-32 and 0-128".into(),
                });
            }
            Conv::IpMask(m4 as u8, m6 as u8)
        }
        "http_date" => Conv::HttpDate(arg_int(&args, 0, "http_date")?.unwrap_or(0)),
        "field" => Conv::Field(idx("field")?, delims(1)),
        "word" => Conv::Word(idx("word")?, delims(1)),
        "regsub" => {
            let (re_at, re) = args.first().ok_or_else(|| Error {
                at,
                msg: "regsub needs a regex".into(),
            })?;
            let flags = args.get(2).map(|a| a.1.as_str()).unwrap_or("");
            let src = if flags.contains('i') {
                format!("(?i){re}")
            } else {
                re.clone()
            };
            let re = regex::bytes::Regex::new(&src).map_err(|e| Error {
                at: *re_at,
                msg: format!("invalid regex \"{re}\": {e}"),
            })?;
            let repl = args.get(1).map(|a| a.1.as_str()).unwrap_or("");
            Conv::Regsub(re, backrefs(repl).into_bytes().into(), flags.contains('g'))
        }
        "map" | "map_str" | "map_beg" => {
            let (f_at, file) = args.first().ok_or_else(|| Error {
                at,
                msg: "map needs a file".into(),
            })?;
            let m = env.map(file).map_err(|m| Error { at: *f_at, msg: m })?;
            Conv::Map(m, args.get(1).map(|a| a.1.as_bytes().into()))
        }
        _ => {
            return Err(Error {
                at,
                msg: format!("unknown converter \"{name}\""),
            })
        }
    })
}

/// HAProxy's `\1` back-references in regsub replacements, in the regex
/// crate's `${1}` form.
pub fn backrefs(repl: &str) -> String {
    let mut out = String::new();
    let mut it = repl.chars().peekable();
    while let Some(c) = it.next() {
        match c {
            '\\' if it.peek().is_some_and(|d| d.is_ascii_digit()) => {
                out.push_str("${");
                out.push(it.next().unwrap_or('0'));
                out.push('}');
            }
            '$' => out.push_str("$$"),
            c => out.push(c),
        }
    }
    out
}

/// Loads a map file: `KEY VALUE` per line, `#` comments.
pub fn load_map(path: &str) -> Result<MapTable, String> {
    let text = std::fs::read_to_string(path)
        .map_err(|e| format!("cannot read map file \"{path}\": {e}"))?;
    let mut m = HashMap::new();
    for line in text.lines() {
        let l = line.trim();
        if l.is_empty() || l.starts_with('#') {
            continue;
        }
        let (k, v) = match l.split_once([' ', '\t']) {
            Some((k, v)) => (k, v.trim()),
            None => (l, ""),
        };
        m.entry(k.as_bytes().into())
            .or_insert_with(|| v.as_bytes().into());
    }
    Ok(m)
}
