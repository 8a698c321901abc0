//! Cookie persistence (`cookie NAME insert|rewrite|prefix [indirect] [nocache]
//! [postonly] [preserve] [httponly] [secure] [domain D] [maxidle T]
//! [maxlife T]`) as pure functions over [`Message`], following HAProxy 2.6's
//! `http_manage_client_side_cookies` / `http_manage_server_side_cookies`:
//!
//! - request: the first cookie `NAME` whose value (before `~` in prefix mode,
//!   before `|` when dates are used) is a server's `cookie` value picks that
//!   server if it is usable (or `option persist` is set); a server that is
//!   down makes the request load-balanced ([`Stick::Down`]). In insert mode
//!   with `indirect` the cookie is removed before the request goes on; in
//!   prefix mode the `SRV~` prefix is removed.
//! - response: the server's own `Set-Cookie: NAME=...` is left alone with
//!   `preserve`, removed in insert mode (or with `indirect` on a direct hit),
//!   given the server's value in rewrite mode, prefixed with `SRV~` in prefix
//!   mode. Insert mode adds `Set-Cookie: NAME=VALUE; path=/[; domain=D]
//!   [; HttpOnly][; Secure]` unless the request already stuck to that server
//!   (or `postonly` and not a POST, or `preserve` and the server set it), and
//!   `nocache` then adds `Cache-control: private` when the response could be
//!   cached ([`cacheable`]: HAProxy 2.6's rules, checked against haproxy).

//!
//! With `maxidle`/`maxlife` the inserted value carries HAProxy's dates
//! (`SRV|LAST[|FIRST]`, 4-second units in 5 base64 characters); a cookie
//! idle or alive too long no longer sticks ([`Stick::Expired`]). The `_at`
//! functions take the current UNIX time for that; the others ignore dates.

use crate::config::model::CookieSpec;
use crate::http::acl::msg::trim;
use crate::http::acl::Message;

/// One server of the backend as the cookie logic sees it.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct ServerView<'a> {
    /// The server's `cookie` value, if it has one.
    pub cookie: Option<&'a str>,
    /// UP (or DRAIN), as opposed to DOWN or MAINT.
    pub usable: bool,
}

/// What the request's cookie says.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Stick {
    /// No persistence cookie: load-balance.
    None,
    /// Go to this server (HAProxy's direct access, `SF_DIRECT`).
    Server(usize),
    /// The cookie names this server, which is not usable: load-balance (the
    /// log's `--` `D` cookie flag).
    Down(usize),
    /// The cookie names no server: load-balance (`I` cookie flag).
    Invalid,
    /// The cookie's dates say it was idle longer than `maxidle` or is older
    /// than `maxlife`: load-balance (`E`/`O` cookie flags).
    Expired,
}

/// The dates a persistence cookie carried (UNIX seconds, 0 = none).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub struct Dates {
    pub first: u64,
    pub last: u64,
}

const B64: &[u8; 64] = b"ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789+/";

/// HAProxy's `s30tob64`: a 30-bit value as 5 base64 characters.
pub fn s30tob64(v: u64, out: &mut Vec<u8>) {
    for i in (0..5).rev() {
        out.push(B64[((v >> (6 * i)) & 63) as usize]);
    }
}

/// HAProxy's `b64tos30`.
pub fn b64tos30(s: &[u8]) -> Option<u64> {
    let mut v = 0u64;
    for &c in s.get(..5)? {
        let d = B64.iter().position(|&b| b == c)? as u64;
        v = (v << 6) | d;
    }
    Some(v)
}

/// The dates after the server id (`|LAST[|FIRST]`) of a cookie value.
fn dates(after_id: &[u8]) -> Dates {
    let mut d = Dates::default();
    let mut parts = after_id.split(|&b| b == b'|');
    if let Some(v) = parts.next().and_then(b64tos30).filter(|&v| v > 0) {
        d.last = v << 2;
    }
    if let Some(v) = parts.next().and_then(b64tos30).filter(|&v| v > 0) {
        d.first = v << 2;
    }
    d
}

fn is_prefix(spec: &CookieSpec) -> bool {
    spec.mode == "prefix"
}

/// Reads the persistence cookie from `req` and edits it for the server
/// (indirect insert: removed; prefix: `SRV~` stripped).
pub fn on_request(
    spec: &CookieSpec,
    req: &mut Message,
    servers: &[ServerView],
    persist: bool,
) -> Stick {
    on_request_at(spec, req, servers, persist, None).0
}

/// [`on_request`] with the current UNIX time `now`: the cookie's dates are
/// read and checked against `maxidle`/`maxlife` (HAProxy also refuses dates
/// more than a day in the future).
pub fn on_request_at(
    spec: &CookieSpec,
    req: &mut Message,
    servers: &[ServerView],
    persist: bool,
    now: Option<u64>,
) -> (Stick, Dates) {
    let mut stick = Stick::None;
    let mut found_dates = Dates::default();
    let name = spec.name.as_bytes();
    let strip_whole = spec.mode == "insert" && spec.indirect;
    let mut edits: Vec<(usize, Vec<u8>)> = Vec::new();
    for i in 0..req.header_count() {
        let Some((n, v)) = req.line(i) else { continue };
        if !n.eq_ignore_ascii_case(b"cookie") {
            continue;
        }
        let mut rebuilt = Vec::new();
        let mut changed = false;
        for c in v.split(|&b| b == b';') {
            let c = trim(c);
            if c.is_empty() {
                continue;
            }
            let value = match c.strip_prefix(name).map(trim) {
                Some(rest) if rest.first() == Some(&b'=') => Some(trim(&rest[1..])),
                _ => None,
            };
            let mut keep: &[u8] = c;
            let mut owned = Vec::new();
            if let Some(value) = value {
                let id_end = if is_prefix(spec) {
                    value.iter().position(|&b| b == b'~')
                } else {
                    value.iter().position(|&b| b == b'|')
                };
                let id = &value[..id_end.unwrap_or(value.len())];
                if matches!(stick, Stick::None | Stick::Invalid | Stick::Expired) {
                    let d = match (is_prefix(spec), id_end, now) {
                        (false, Some(e), Some(_)) => dates(&value[e + 1..]),
                        _ => Dates::default(),
                    };
                    let now = now.unwrap_or(0) as i64;
                    let too_old = |date: u64, max: Option<std::time::Duration>| {
                        date != 0
                            && max.is_some_and(|m| {
                                now - date as i64 > m.as_secs() as i64 || date as i64 - now > 86400
                            })
                    };
                    stick = if too_old(d.first, spec.maxlife) || too_old(d.last, spec.maxidle) {
                        found_dates = Dates::default();
                        Stick::Expired
                    } else {
                        found_dates = d;
                        match servers
                            .iter()
                            .position(|s| s.cookie.is_some_and(|k| k.as_bytes() == id))
                        {
                            Some(s) if servers[s].usable || persist => Stick::Server(s),
                            Some(s) => Stick::Down(s),
                            None => Stick::Invalid,
                        }
                    };
                }
                if is_prefix(spec) {
                    if let Some(d) = id_end {
                        owned.extend_from_slice(name);
                        owned.push(b'=');
                        owned.extend_from_slice(&value[d + 1..]);
                        keep = &[];
                        changed = true;
                    }
                } else if strip_whole {
                    changed = true;
                    continue;
                }
            }
            if !rebuilt.is_empty() {
                rebuilt.extend_from_slice(b"; ");
            }
            if owned.is_empty() {
                rebuilt.extend_from_slice(keep);
            } else {
                rebuilt.extend_from_slice(&owned);
            }
        }
        if changed {
            edits.push((i, rebuilt));
        }
    }
    // Apply from the end so indexes stay valid; an emptied line goes away.
    let mut emptied = false;
    for (i, v) in edits.iter().rev() {
        if v.is_empty() {
            req.set_line_value(*i, b"");
            emptied = true;
        } else {
            req.set_line_value(*i, v);
        }
    }
    if emptied {
        remove_empty_cookie_lines(req);
    }
    (stick, found_dates)
}

fn remove_empty_cookie_lines(req: &mut Message) {
    // Rebuild the Cookie lines without the empty ones.
    let lines: Vec<Vec<u8>> = req
        .lines(b"cookie")
        .filter(|v| !v.is_empty())
        .map(|v| v.to_vec())
        .collect();
    req.del_header(b"cookie");
    for l in lines {
        req.add_header(b"Cookie", &l);
    }
}

/// Whether a shared cache could store `res` for a request with `method`, as
/// HAProxy 2.6 decides before `nocache` adds `Cache-control: private`: a GET
/// or HEAD; a status RFC 7234 lets be cached; no `Pragma: no-cache`, no
/// `Cache-Control: private|no-cache|no-store|max-age=0|s-maxage=0`; and
/// freshness (`max-age`, `s-maxage`, `Expires`) or a validator (`ETag`,
/// `Last-Modified`).
pub fn cacheable(method: &[u8], res: &Message) -> bool {
    if method != b"GET" && method != b"HEAD" {
        return false;
    }
    if !matches!(
        res.status(),
        200 | 203 | 204 | 206 | 300 | 301 | 404 | 405 | 410 | 414 | 501
    ) {
        return false;
    }
    if res
        .lines(b"pragma")
        .next()
        .is_some_and(|v| trim(v).eq_ignore_ascii_case(b"no-cache"))
    {
        return false;
    }
    let mut fresh = false;
    for v in res.values(b"cache-control") {
        let is = |w: &[u8]| v.eq_ignore_ascii_case(w);
        if is(b"private")
            || is(b"no-cache")
            || is(b"no-store")
            || is(b"max-age=0")
            || is(b"s-maxage=0")
        {
            return false;
        }
        let lower = |p: &[u8]| v.len() >= p.len() && v[..p.len()].eq_ignore_ascii_case(p);
        if lower(b"max-age") || lower(b"s-maxage") {
            fresh = true;
        }
    }
    fresh
        || res.lines(b"expires").next().is_some()
        || res.lines(b"etag").next().is_some()
        || res.lines(b"last-modified").next().is_some()
}

/// Edits the server's response for persistence. `server` is the server that
/// answered (its index and `cookie` value, if any), `stick` what
/// [`on_request`] returned, `method` the request's method.
pub fn on_response(
    spec: &CookieSpec,
    res: &mut Message,
    server: Option<(usize, Option<&str>)>,
    stick: Stick,
    method: &[u8],
) {
    on_response_at(spec, res, server, stick, Dates::default(), method, None);
}

/// [`on_response`] with the request cookie's dates and the current UNIX time:
/// with `maxidle`/`maxlife` the inserted cookie carries dates and is
/// refreshed as HAProxy refreshes it. Returns the server-side persistence
/// flag of HAProxy's log (`%tsc`'s fourth character): `N` nothing done, `I`
/// inserted, `U` updated (a direct hit's dates refreshed), `P` the server's
/// cookie kept, `R` rewritten, `D` deleted.
pub fn on_response_at(
    spec: &CookieSpec,
    res: &mut Message,
    server: Option<(usize, Option<&str>)>,
    stick: Stick,
    dates: Dates,
    method: &[u8],
    now: Option<u64>,
) -> u8 {
    let post = method == b"POST";
    let cache = spec.nocache && cacheable(method, res);
    let name = spec.name.as_bytes();
    let direct = matches!((stick, server), (Stick::Server(s), Some((i, _))) if s == i);
    let mut found = false;
    let mut replaced = false;
    let mut delete = Vec::new();
    for i in 0..res.header_count() {
        let Some((n, v)) = res.line(i) else { continue };
        if !n.eq_ignore_ascii_case(b"set-cookie") {
            continue;
        }
        let first = v.split(|&b| b == b';').next().unwrap_or_default();
        let Some(rest) = trim(first).strip_prefix(name).map(trim) else {
            continue;
        };
        if rest.first() != Some(&b'=') {
            continue;
        }
        found = true;
        let srv_cookie = server.and_then(|s| s.1);
        if spec.preserve {
        } else if (server.is_some() && spec.mode == "insert") || (direct && spec.indirect) {
            delete.push(i);
        } else if let Some(k) = srv_cookie {
            let attrs = &v[first.len()..];
            let val = trim(&rest[1..]);
            let mut nv = Vec::new();
            nv.extend_from_slice(name);
            nv.push(b'=');
            nv.extend_from_slice(k.as_bytes());
            if is_prefix(spec) {
                nv.push(b'~');
                nv.extend_from_slice(val);
            }
            if spec.mode == "rewrite" || is_prefix(spec) {
                nv.extend_from_slice(attrs);
                res.set_line_value(i, &nv);
                replaced = true;
            }
        }
    }
    if !delete.is_empty() {
        let keep: Vec<(Vec<u8>, Vec<u8>)> = (0..res.header_count())
            .filter(|i| !delete.contains(i))
            .filter_map(|i| res.line(i).map(|(n, v)| (n.to_vec(), v.to_vec())))
            .collect();
        // Rebuild the header list in order without the deleted lines.
        let names: Vec<Vec<u8>> = keep.iter().map(|(n, _)| n.to_ascii_lowercase()).collect();
        for n in names.iter().chain(std::iter::once(&b"set-cookie".to_vec())) {
            res.del_header(n);
        }
        for (n, v) in &keep {
            res.add_header(n, v);
        }
    }
    let mut flag = if replaced {
        b'R'
    } else if !delete.is_empty() {
        b'D'
    } else if found {
        b'P'
    } else {
        b'N'
    };
    if let Some((_, cookie)) = server {
        let refresh = match now {
            None => false,
            Some(now) => {
                ((spec.maxidle.is_some() || dates.last != 0)
                    && (dates.last == 0 || dates.last < now))
                    || (spec.maxlife.is_some() && dates.first == 0)
                    || (spec.maxlife.is_none() && dates.first != 0)
            }
        };
        let insert = spec.mode == "insert"
            && !(found && spec.preserve)
            && (!direct || refresh)
            && (!spec.postonly || post);
        if insert {
            let mut v = Vec::new();
            match cookie {
                None => {
                    v.extend_from_slice(name);
                    v.extend_from_slice(b"=; Expires=Thu, 01-Jan-1970 00:00:01 GMT; path=/");
                }
                Some(k) => {
                    v.extend_from_slice(name);
                    v.push(b'=');
                    v.extend_from_slice(k.as_bytes());
                    if let (Some(now), true) =
                        (now, spec.maxidle.is_some() || spec.maxlife.is_some())
                    {
                        v.push(b'|');
                        s30tob64((now + 3) >> 2, &mut v);
                        if spec.maxlife.is_some() {
                            v.push(b'|');
                            let first = if dates.first != 0 {
                                dates.first >> 2
                            } else {
                                (now + 3) >> 2
                            };
                            s30tob64(first, &mut v);
                        }
                    }
                    v.extend_from_slice(b"; path=/");
                }
            }
            if let Some(d) = &spec.domain {
                v.extend_from_slice(b"; domain=");
                v.extend_from_slice(d.as_bytes());
            }
            if spec.httponly {
                v.extend_from_slice(b"; HttpOnly");
            }
            if spec.secure {
                v.extend_from_slice(b"; Secure");
            }
            res.add_header(b"Set-Cookie", &v);
            if cache {
                res.add_header(b"Cache-control", b"private");
            }
            flag = if direct && cookie.is_some() {
                b'U'
            } else {
                b'I'
            };
        }
    }
    flag
}
