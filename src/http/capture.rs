//! `capture request header NAME len N` and `capture response header NAME len N`:
//! the values a proxy copies out of a head for its log line (`%hr`, `%hs`).
//! HAProxy's rules (`http_capture_headers`): slots in declaration order, the
//! last occurrence of a header wins, values cut to `len` bytes, an absent header
//! leaves its slot empty. Pure; one small allocation per captured value, made
//! only when captures are declared.

use super::head::Headers;

/// One `capture ... header` line.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct HeaderCapture {
    pub name: String,
    pub len: usize,
}

/// Fills `out` (cleared first) with one value per declared capture.
pub fn capture_headers(
    headers: &Headers,
    buf: &[u8],
    captures: &[HeaderCapture],
    out: &mut Vec<Box<[u8]>>,
) {
    out.clear();
    for c in captures {
        let value = headers.values(buf, &c.name).last().unwrap_or_default();
        out.push(Box::from(&value[..value.len().min(c.len)]));
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::http::head::{HeadParser, Limits, RequestHead};
    use std::time::Instant;

    #[test]
    fn last_occurrence_cut_to_len_in_declaration_order() {
        let raw = b"GET /q?a=1 HTTP/1.1\r\nHost: ex|am{ple}\r\nUser-Agent: curl/7.88\r\nX-Id: 1\r\nx-id: 22\r\n\r\n";
        let mut h = RequestHead::default();
        HeadParser::new(Limits::default())
            .parse_request(raw, Instant::now(), &mut h)
            .unwrap();
        let caps = [
            HeaderCapture {
                name: "Host".into(),
                len: 20,
            },
            HeaderCapture {
                name: "User-Agent".into(),
                len: 5,
            },
            HeaderCapture {
                name: "X-Id".into(),
                len: 8,
            },
            HeaderCapture {
                name: "Cookie".into(),
                len: 8,
            },
        ];
        let mut out = vec![Box::from(&b"stale"[..])];
        capture_headers(&h.headers, raw, &caps, &mut out);
        let got: Vec<&[u8]> = out.iter().map(|v| &v[..]).collect();
        assert_eq!(got, [&b"ex|am{ple}"[..], b"curl/", b"22", b""]);
    }
}
