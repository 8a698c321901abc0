//! `errorfile CODE FILE`: a whole HTTP response read from a file at load, sent
//! instead of ringlb's built-in page for that status. HAProxy 2.6 parses the
//! file as an HTTP/1 response and writes it out again, and so does this: the
//! status line as in the file, header names lower-cased, `Connection` dropped
//! (the proxy decides that), `connection: close` added to an HTTP/1.1
//! response whose body has no length, the body as in the file. A file that is
//! not such a response, or is larger than `tune.bufsize`, is a config error.

use std::sync::Arc;
use std::time::Instant;

use crate::http::head::{HeadParser, Limits, Parsed, ResponseHead};
use crate::http::model::Version;
use crate::http::rules::HAS_PAGE;

/// A proxy's error files, by status.
#[derive(Debug, Clone, PartialEq, Eq, Default)]
pub struct ErrorFiles(pub Vec<(u16, Arc<[u8]>)>);

impl ErrorFiles {
    /// The response to send for `status`, if a file was given for it.
    pub fn get(&self, status: u16) -> Option<&[u8]> {
        self.0
            .iter()
            .find(|(s, _)| *s == status)
            .map(|(_, r)| &r[..])
    }

    pub fn is_empty(&self) -> bool {
        self.0.is_empty()
    }
}

/// Checks `code` (as written) and reads `path` into the response to send.
pub fn load(code: &str, path: &str, bufsize: usize) -> Result<(u16, Arc<[u8]>), String> {
    let status: u16 = code
        .parse()
        .ok()
        .filter(|s| HAS_PAGE.contains(s))
        .ok_or_else(|| {
            format!(
                "errorfile: status code '{code}' cannot be customized (one of {})",
                HAS_PAGE.map(|s| s.to_string()).join(", ")
            )
        })?;
    let raw = std::fs::read(path)
        .map_err(|e| format!("errorfile {status}: cannot read '{path}': {e}"))?;
    if raw.len() > bufsize {
        return Err(format!(
            "errorfile {status}: '{path}' is {} bytes, larger than tune.bufsize ({bufsize})",
            raw.len()
        ));
    }
    let out = normalize(&raw)
        .ok_or_else(|| format!("errorfile {status}: '{path}' is not an HTTP response"))?;
    Ok((status, out.into()))
}

/// The file's response as HAProxy sends it (see the module comment).
fn normalize(raw: &[u8]) -> Option<Vec<u8>> {
    let mut head = ResponseHead::default();
    let mut parser = HeadParser::new(Limits::default());
    let Ok(Parsed::Complete(len)) = parser.parse_response(raw, Instant::now(), &mut head) else {
        return None;
    };
    let mut out = Vec::with_capacity(raw.len() + 32);
    out.extend_from_slice(head.version.as_str().as_bytes());
    out.extend_from_slice(format!(" {} ", head.status).as_bytes());
    out.extend_from_slice(head.reason.get(raw));
    out.extend_from_slice(b"\r\n");
    let mut framed = false;
    for h in &head.headers.list {
        let name = h.name.get(raw).to_ascii_lowercase();
        if name == b"connection" {
            continue;
        }
        framed |= name == b"content-length" || name == b"transfer-encoding";
        out.extend_from_slice(&name);
        out.extend_from_slice(b": ");
        out.extend_from_slice(h.value.get(raw));
        out.extend_from_slice(b"\r\n");
    }
    if !framed && head.version == Version::Http11 {
        out.extend_from_slice(b"connection: close\r\n");
    }
    out.extend_from_slice(b"\r\n");
    out.extend_from_slice(&raw[len..]);
    Some(out)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn files_are_written_out_as_haproxy_does() {
        // Both checked against haproxy 2.6.12 (tests/http_rules.rs compares
        // on the wire).
        let a = normalize(
            b"HTTP/1.1 503 Busy Now\r\nX-Mixed-Case: A b\r\nContent-Length: 5\r\n\
              Connection: keep-alive\r\nKeep-Alive: timeout=5\r\n\r\nhello",
        )
        .unwrap();
        assert_eq!(
            a,
            b"HTTP/1.1 503 Busy Now\r\nx-mixed-case: A b\r\ncontent-length: 5\r\n\
              keep-alive: timeout=5\r\n\r\nhello"
        );
        let b = normalize(b"HTTP/1.1 429 Slow\nX-LF: only\n\nbody-lf\n").unwrap();
        assert_eq!(
            b,
            b"HTTP/1.1 429 Slow\r\nx-lf: only\r\nconnection: close\r\n\r\nbody-lf\n"
        );
        let c = normalize(b"HTTP/1.0 403 Forbidden\r\nConnection: close\r\n\r\nno").unwrap();
        assert_eq!(c, b"HTTP/1.0 403 Forbidden\r\n\r\nno");
        assert!(normalize(b"<html>not a response</html>\n\n").is_none());
    }

    #[test]
    fn bad_codes_sizes_and_files_are_refused() {
        let dir = tempfile::tempdir().unwrap();
        let p = dir.path().join("e.http");
        std::fs::write(&p, "HTTP/1.0 503 X\r\n\r\nbody").unwrap();
        let path = p.to_str().unwrap();
        assert!(load("503", path, 16384).is_ok());
        let e = load("418", path, 16384).unwrap_err();
        assert!(e.contains("'418' cannot be customized"), "{e}");
        let e = load("503", path, 10).unwrap_err();
        assert!(e.contains("larger than tune.bufsize (10)"), "{e}");
        let e = load("503", "/nonexistent/e.http", 16384).unwrap_err();
        assert!(e.contains("cannot read '/nonexistent/e.http'"), "{e}");
    }
}
