//! Where a malformed HTTP/1 head goes wrong, for `show errors`: the offset of
//! the first byte HAProxy's parser would stop at, and the parser state it
//! would be in (HAProxy's `H1_MSG_*` name and number). The parser proper
//! (`head`) only says *that* a head is bad; this scan runs once, on a refused
//! head, never on the forwarding path. Pure, no allocation.

/// HAProxy's `h1m_state` values a head can fail in.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum H1State {
    RqMeth = 2,
    RqUri = 4,
    RqVer = 6,
    RqLineEnd = 7,
    RpVer = 10,
    RpCode = 12,
    RpReason = 14,
    RpLineEnd = 15,
    HdrFirst = 16,
    HdrName = 17,
    HdrVal = 22,
}

impl H1State {
    /// As `show errors` prints it: `MSG_RQVER(6)`.
    pub fn name(self) -> &'static str {
        match self {
            H1State::RqMeth => "MSG_RQMETH",
            H1State::RqUri => "MSG_RQURI",
            H1State::RqVer => "MSG_RQVER",
            H1State::RqLineEnd => "MSG_RQLINE_END",
            H1State::RpVer => "MSG_RPVER",
            H1State::RpCode => "MSG_RPCODE",
            H1State::RpReason => "MSG_RPREASON",
            H1State::RpLineEnd => "MSG_RPLINE_END",
            H1State::HdrFirst => "MSG_HDR_FIRST",
            H1State::HdrName => "MSG_HDR_NAME",
            H1State::HdrVal => "MSG_HDR_VAL",
        }
    }
}

fn tchar(b: u8) -> bool {
    b.is_ascii_alphanumeric() || b"!#$%&'*+-.^_`|~".contains(&b)
}

/// The offset of the first offending byte of head `buf` and the state the
/// parser is in there; for a head with no bad byte (too large, cut short, or
/// refused for its meaning rather than its syntax), its length and the state
/// reached at its end.
pub fn locate(buf: &[u8], request: bool) -> (usize, H1State) {
    let mut i = 0;
    let at = |i: usize| buf.get(i).copied();
    // Start line.
    if request {
        let start = i;
        while at(i).is_some_and(tchar) {
            i += 1;
        }
        if i == start || at(i) != Some(b' ') {
            return (i, H1State::RqMeth);
        }
        i += 1;
        let start = i;
        while at(i).is_some_and(|b| (0x21..=0x7e).contains(&b) && b != b'#') {
            i += 1;
        }
        if i == start || at(i) != Some(b' ') {
            return (i, H1State::RqUri);
        }
        i += 1;
        if let Some(bad) = version(buf, i) {
            return (bad, H1State::RqVer);
        }
        i += 8;
        match line_end(buf, i) {
            Ok(next) => i = next,
            Err(bad) => return (bad, H1State::RqLineEnd),
        }
    } else {
        if let Some(bad) = version(buf, i) {
            return (bad, H1State::RpVer);
        }
        i += 8;
        if at(i) != Some(b' ') {
            return (i, H1State::RpVer);
        }
        i += 1;
        for _ in 0..3 {
            if !at(i).is_some_and(|b| b.is_ascii_digit()) {
                return (i, H1State::RpCode);
            }
            i += 1;
        }
        if at(i) == Some(b' ') {
            i += 1;
            while at(i).is_some_and(|b| b == b'\t' || (b >= 0x20 && b != 0x7f)) {
                i += 1;
            }
        }
        match line_end(buf, i) {
            Ok(next) => i = next,
            Err(bad) => return (bad, H1State::RpLineEnd),
        }
    }
    // Header lines, up to the empty line.
    loop {
        match at(i) {
            None => return (i, H1State::HdrFirst),
            Some(b'\r') | Some(b'\n') => {
                return match line_end(buf, i) {
                    Ok(end) => (end, H1State::HdrFirst),
                    Err(bad) => (bad, H1State::HdrFirst),
                };
            }
            _ => {}
        }
        let start = i;
        while at(i).is_some_and(tchar) {
            i += 1;
        }
        if i == start || at(i) != Some(b':') {
            return (i, H1State::HdrName);
        }
        i += 1;
        while at(i).is_some_and(|b| b == b'\t' || (b >= 0x20 && b != 0x7f)) {
            i += 1;
        }
        match line_end(buf, i) {
            Ok(next) => i = next,
            Err(bad) => return (bad, H1State::HdrVal),
        }
    }
}

/// `HTTP/d.d` at `i`: `None` if it is there, else the first bad offset.
fn version(buf: &[u8], i: usize) -> Option<usize> {
    let want = b"HTTP/";
    for (k, &w) in want.iter().enumerate() {
        if buf.get(i + k) != Some(&w) {
            return Some(i + k);
        }
    }
    for (k, digit) in [(5, true), (6, false), (7, true)] {
        let b = buf.get(i + k).copied();
        let ok = if digit {
            b.is_some_and(|b| b.is_ascii_digit())
        } else {
            b == Some(b'.')
        };
        if !ok {
            return Some(i + k);
        }
    }
    None
}

/// A CRLF (or a bare LF) at `i`: `Ok(offset after it)`, else `Err(offset)`.
fn line_end(buf: &[u8], i: usize) -> Result<usize, usize> {
    match (buf.get(i), buf.get(i + 1)) {
        (Some(b'\n'), _) => Ok(i + 1),
        (Some(b'\r'), Some(b'\n')) => Ok(i + 2),
        (Some(b'\r'), None) | (None, _) => Err(i),
        (Some(b'\r'), Some(_)) => Err(i + 1),
        _ => Err(i),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn finds_the_byte_haproxy_2_6_reports() {
        // Both positions as HAProxy 2.6.12's `show errors` gives them.
        assert_eq!(
            locate(b"GET /a b c HTTP/1.1\r\nHost: x\r\n\r\n", true),
            (7, H1State::RqVer)
        );
        assert_eq!(
            locate(
                b"HTTP/1.1 200 OK\r\nBad Header\r\nContent-Length: 0\r\n\r\n",
                false
            ),
            (20, H1State::HdrName)
        );
        assert_eq!(
            locate(b"G\x01T / HTTP/1.1\r\n\r\n", true),
            (1, H1State::RqMeth)
        );
        assert_eq!(
            locate(b"GET / HTTP/1.1\r\nA: b\x01c\r\n\r\n", true),
            (20, H1State::HdrVal)
        );
        assert_eq!(
            locate(b"HTTP/1.1 2x0 OK\r\n\r\n", false),
            (10, H1State::RpCode)
        );
        let fine = b"GET / HTTP/1.1\r\nHost: x\r\n\r\n";
        assert_eq!(locate(fine, true), (fine.len(), H1State::HdrFirst));
    }
}
