//! HAProxy's `crt-list FILE` on a bind: one certificate per line, as
//! `CERT.pem [[options]] [SNI filter ...]`. The filters, when given, replace
//! the names the certificate carries for SNI (exact names and `*.domain`
//! wildcards); a `!name` filter keeps that name away from this certificate
//! (it falls to the default). `#` starts a comment; blank lines are skipped.
//! Per-certificate options in brackets are refused, not ignored. Pure: the
//! caller reads the file.

use std::path::PathBuf;

/// One line of a crt-list.
#[derive(Debug, Clone, PartialEq)]
pub struct CrtListLine {
    pub file: PathBuf,
    /// SNI filters (lowercase); empty: the certificate's own names.
    pub names: Vec<String>,
    /// `!name` filters.
    pub excluded: Vec<String>,
}

/// Parses a crt-list's text; errors name `FILE:LINE`.
pub fn parse(file: &str, text: &str) -> Result<Vec<CrtListLine>, String> {
    let mut out = Vec::new();
    for (n, line) in text.lines().enumerate() {
        let line = line.split('#').next().unwrap_or("").trim();
        if line.is_empty() {
            continue;
        }
        let at = format!("crt-list {file}:{}", n + 1);
        let mut words = line.split_whitespace();
        let Some(cert) = words.next() else { continue };
        let mut entry = CrtListLine {
            file: PathBuf::from(cert),
            names: Vec::new(),
            excluded: Vec::new(),
        };
        let rest: Vec<&str> = words.collect();
        let mut i = 0;
        if rest.first().is_some_and(|w| w.starts_with('[')) {
            // `[options]` may span several words: up to the one ending in `]`.
            let mut opts = String::new();
            while i < rest.len() {
                opts.push_str(rest[i]);
                opts.push(' ');
                i += 1;
                if rest[i - 1].ends_with(']') {
                    break;
                }
            }
            let inner = opts
                .trim()
                .trim_start_matches('[')
                .trim_end_matches(']')
                .trim();
            if !inner.is_empty() {
                return Err(format!(
                    "{at}: per-certificate options [{inner}] are not supported; set them on the bind"
                ));
            }
        }
        for w in &rest[i..] {
            match w.strip_prefix('!') {
                Some(x) => entry.excluded.push(x.to_ascii_lowercase()),
                None => entry.names.push(w.to_ascii_lowercase()),
            }
        }
        out.push(entry);
    }
    if out.is_empty() {
        return Err(format!("crt-list {file}: no certificate in this list"));
    }
    Ok(out)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn lines_filters_and_options() {
        let l = parse(
            "l.txt",
            "# certificates\n\n/c/a.pem\n/c/b.pem Other.test  # b\n/c/w.pem [ ] *.wild.test !secret.wild.test\n",
        )
        .unwrap();
        assert_eq!(l.len(), 3);
        assert_eq!(l[0].file, PathBuf::from("/c/a.pem"));
        assert!(l[0].names.is_empty());
        assert_eq!(l[1].names, ["other.test"]);
        assert_eq!(l[2].names, ["*.wild.test"]);
        assert_eq!(l[2].excluded, ["secret.wild.test"]);
        let e = parse("l.txt", "/c/a.pem [alpn h2] a.test\n").unwrap_err();
        assert!(
            e.contains("l.txt:1: per-certificate options [alpn h2]"),
            "{e}"
        );
        assert!(parse("l.txt", "# nothing\n")
            .unwrap_err()
            .contains("no certificate"));
    }
}
