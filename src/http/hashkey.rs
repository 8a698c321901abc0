//! What an L7 hash-based `balance` hashes, taken from a request head the way
//! HAProxy 2.6 takes it (`backend.c`: `get_server_uh`, `get_server_ph`,
//! `get_server_hh`). The shard wraps the bytes in `balance::HashKey::Bytes`;
//! `None` (parameter or header absent) makes the balancer fall back to round
//! robin, as HAProxy does. Pure slicing: no allocation.

use super::head::Headers;

/// `balance uri [len N] [depth N] [whole] [path-only]`.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub struct UriOptions {
    /// `len`: hash at most this many characters (0: no limit).
    pub len: usize,
    /// `depth`: hash at most this many directory levels (0: no limit).
    pub depth: usize,
    /// `whole`: keep the query string.
    pub whole: bool,
    /// `path-only`: drop the scheme and authority of an absolute URI.
    pub path_only: bool,
}

/// `balance uri`: the start of the request target, up to `?` (unless `whole`),
/// the `depth`+1-th `/`, or `len` characters, whichever comes first.
pub fn uri_key<'a>(target: &'a [u8], opts: &UriOptions) -> &'a [u8] {
    let uri = if opts.path_only { path(target) } else { target };
    let uri = if opts.len > 0 {
        &uri[..uri.len().min(opts.len)]
    } else {
        uri
    };
    let mut slashes = 0;
    for (i, &c) in uri.iter().enumerate() {
        if c == b'/' {
            slashes += 1;
            if opts.depth > 0 && slashes == opts.depth + 1 {
                return &uri[..i];
            }
        } else if c == b'?' && !opts.whole {
            return &uri[..i];
        }
    }
    uri
}

/// The path (and query) of a request target: itself in origin form, what
/// follows the authority of an absolute URI (empty if nothing does).
fn path(target: &[u8]) -> &[u8] {
    if target.first() == Some(&b'/') {
        return target;
    }
    match target.windows(3).position(|w| w == b"://") {
        Some(sep) => {
            let rest = &target[sep + 3..];
            match rest.iter().position(|&b| b == b'/' || b == b'?') {
                Some(p) => &rest[p..],
                None => b"",
            }
        }
        None => b"",
    }
}

/// `balance url_param NAME`: the value of the first `NAME=` parameter of the
/// query string (possibly empty), `None` when there is none.
pub fn url_param<'a>(target: &'a [u8], name: &[u8]) -> Option<&'a [u8]> {
    let q = target.iter().position(|&b| b == b'?')?;
    target[q + 1..]
        .split(|&b| b == b'&')
        .find_map(|p| p.strip_prefix(name)?.strip_prefix(b"="))
}

/// `balance hdr(NAME) [use_domain_only]`: the first value of the first `NAME`
/// header (up to a comma, as HAProxy's `http_find_header` returns it); with
/// `use_domain_only`, only the label before the last dot (`example` of
/// `www.example.com`). `None` when the header is absent or empty.
pub fn hdr_key<'a>(
    headers: &'a Headers,
    buf: &'a [u8],
    name: &'a str,
    use_domain_only: bool,
) -> Option<&'a [u8]> {
    let value = headers.first(buf, name)?;
    let value = value.split(|&b| b == b',').next()?.trim_ascii();
    if value.is_empty() {
        return None;
    }
    Some(if use_domain_only {
        domain_only(value)
    } else {
        value
    })
}

/// HAProxy's backwards walk: from the last dot back to the dot before it.
fn domain_only(v: &[u8]) -> &[u8] {
    let (mut p, mut end) = (v.len(), v.len());
    let mut in_domain = false;
    for _ in 0..v.len() {
        if in_domain {
            if v[p - 1] == b'.' {
                break;
            }
        } else if v.get(p) == Some(&b'.') {
            end = p;
            in_domain = true;
        }
        p -= 1;
    }
    &v[p..end]
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::http::head::{HeadParser, Limits, RequestHead};
    use std::time::Instant;

    #[test]
    fn uri_options() {
        let t = b"/a/b/c/d.html?x=1&y=2";
        let o = |len, depth, whole| UriOptions {
            len,
            depth,
            whole,
            path_only: false,
        };
        assert_eq!(uri_key(t, &o(0, 0, false)), b"/a/b/c/d.html");
        assert_eq!(uri_key(t, &o(0, 0, true)), t);
        assert_eq!(uri_key(t, &o(0, 1, false)), b"/a");
        assert_eq!(uri_key(t, &o(0, 2, false)), b"/a/b");
        assert_eq!(uri_key(t, &o(4, 0, false)), b"/a/b");
        assert_eq!(uri_key(t, &o(3, 2, false)), b"/a/");
        let abs = b"http://www.example.com/x/y?q";
        assert_eq!(uri_key(abs, &o(0, 0, false)), b"http://www.example.com/x/y");
        // Without path-only the scheme counts: the second slash ends depth 1.
        assert_eq!(uri_key(abs, &o(0, 1, false)), b"http:/");
        let p = UriOptions {
            path_only: true,
            ..UriOptions::default()
        };
        assert_eq!(uri_key(abs, &p), b"/x/y");
        assert_eq!(uri_key(b"http://h?q=1", &p), b"");
        assert_eq!(uri_key(b"*", &p), b"");
    }

    #[test]
    fn url_params() {
        let t = b"/p?user=alice&id=7&empty=&idx=9";
        assert_eq!(url_param(t, b"id"), Some(&b"7"[..]));
        assert_eq!(url_param(t, b"user"), Some(&b"alice"[..]));
        assert_eq!(url_param(t, b"empty"), Some(&b""[..]));
        assert_eq!(url_param(t, b"idx"), Some(&b"9"[..]));
        assert_eq!(url_param(t, b"i"), None);
        assert_eq!(url_param(b"/p", b"id"), None);
        assert_eq!(url_param(b"/p?id", b"id"), None);
    }

    #[test]
    fn headers_and_domains() {
        let raw =
            b"GET / HTTP/1.1\r\nHost: www.example.com:8080\r\nX-Multi: a, b\r\nX-Empty:\r\n\r\n";
        let mut h = RequestHead::default();
        HeadParser::new(Limits::default())
            .parse_request(raw, Instant::now(), &mut h)
            .unwrap();
        let hd = &h.headers;
        assert_eq!(
            hdr_key(hd, raw, "host", false),
            Some(&b"www.example.com:8080"[..])
        );
        assert_eq!(hdr_key(hd, raw, "host", true), Some(&b"example"[..]));
        assert_eq!(hdr_key(hd, raw, "x-multi", false), Some(&b"a"[..]));
        assert_eq!(hdr_key(hd, raw, "x-empty", false), None);
        assert_eq!(hdr_key(hd, raw, "x-none", false), None);
        assert_eq!(domain_only(b"example.com"), b"example");
        assert_eq!(domain_only(b"localhost"), b"localhost");
        assert_eq!(domain_only(b"a.b.c.d"), b"c");
        assert_eq!(domain_only(b".com"), b".com");
    }
}
