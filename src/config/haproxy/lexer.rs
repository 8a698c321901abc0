//! The haproxy.cfg lexer: one physical line in, words out, with HAProxy's rules —
//! whitespace separates words; `#` outside quotes starts a comment (anywhere,
//! also after values, any UTF-8); `"..."` groups and expands `$VAR` / `${VAR}` /
//! `${VAR-default}`; `'...'` groups literally; a backslash escapes the next
//! character (`\ `, `\#`, `\\`, `\"`, `\'`, `\$`) or encodes one (`\r`, `\n`,
//! `\t`, `\xHH`). Quoted and unquoted parts may be glued into one word. Every word
//! keeps the byte range it came from, so errors point at `FILE:LINE:COL`.

use std::ops::Range;

/// A word of a line after quote removal, escapes and variable expansion.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Word {
    pub text: String,
    /// Byte range of the raw word (quotes included) in the whole source text.
    pub span: Range<usize>,
}

/// One lexed line.
#[derive(Debug, Clone, Default)]
pub struct Line {
    pub words: Vec<Word>,
    /// The comment text after `#`, trimmed, if any.
    pub comment: Option<String>,
    /// Byte offset of the line's first byte in the whole source text.
    pub start: usize,
}

/// A lexing failure at a byte offset of the whole source text.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct LexError {
    pub at: usize,
    pub msg: String,
}

/// Looks up an environment variable.
pub type Env<'a> = &'a dyn Fn(&str) -> Option<String>;

/// Lexes `line` (no trailing newline), which starts at byte `base` of the source.
pub fn lex_line(line: &str, base: usize, env: Env) -> Result<Line, LexError> {
    let line = line.strip_suffix('\r').unwrap_or(line);
    let b = line.as_bytes();
    let mut out = Line {
        start: base,
        ..Line::default()
    };
    let mut cur = String::new();
    let mut started: Option<usize> = None;
    let mut quote: Option<(u8, usize)> = None;
    let mut i = 0;
    let err = |at: usize, msg: String| LexError { at: base + at, msg };
    while i < b.len() {
        let c = b[i];
        match quote {
            Some((b'\'', _)) => {
                if c == b'\'' {
                    quote = None;
                    i += 1;
                } else {
                    let ch = next_char(line, i);
                    cur.push(ch);
                    i += ch.len_utf8();
                }
                continue;
            }
            Some((_, _)) => {
                if c == b'"' {
                    quote = None;
                    i += 1;
                    continue;
                }
            }
            None => {
                if c == b' ' || c == b'\t' {
                    if let Some(s) = started.take() {
                        out.words.push(Word {
                            text: std::mem::take(&mut cur),
                            span: base + s..base + i,
                        });
                    }
                    i += 1;
                    continue;
                }
                if c == b'#' {
                    out.comment = Some(line[i + 1..].trim().to_string());
                    break;
                }
                if c == b'"' || c == b'\'' {
                    started.get_or_insert(i);
                    quote = Some((c, i));
                    i += 1;
                    continue;
                }
            }
        }
        // Unquoted or double-quoted text.
        started.get_or_insert(i);
        if c == b'\\' {
            let Some(&e) = b.get(i + 1) else {
                cur.push('\\');
                i += 1;
                continue;
            };
            match e {
                b' ' | b'#' | b'\\' | b'"' | b'\'' | b'$' => cur.push(e as char),
                b'r' => cur.push('\r'),
                b'n' => cur.push('\n'),
                b't' => cur.push('\t'),
                b'x' => {
                    let h = line
                        .get(i + 2..i + 4)
                        .and_then(|h| u8::from_str_radix(h, 16).ok())
                        .ok_or_else(|| {
                            err(i, "invalid \\x escape: expected two hex digits".into())
                        })?;
                    cur.push(h as char);
                    i += 4;
                    continue;
                }
                _ => {
                    // Unknown escapes are kept as written.
                    cur.push('\\');
                    i += 1;
                    continue;
                }
            }
            i += 2;
            continue;
        }
        if c == b'$' && quote.is_some() {
            if let Some((value, used)) = expand(&line[i..], env).map_err(|m| err(i, m))? {
                cur.push_str(&value);
                i += used;
                continue;
            }
        }
        let ch = next_char(line, i);
        cur.push(ch);
        i += ch.len_utf8();
    }
    if let Some((q, at)) = quote {
        return Err(err(
            at,
            format!("unterminated quote: missing closing {}", q as char),
        ));
    }
    if let Some(s) = started {
        out.words.push(Word {
            text: cur,
            span: base + s..base + i,
        });
    }
    Ok(out)
}

fn next_char(s: &str, i: usize) -> char {
    s[i..].chars().next().unwrap_or('\0')
}

/// `$NAME`, `${NAME}` or `${NAME-default}` at the start of `s` (which starts
/// with `$`): the value and the bytes consumed; `None` when `$` is literal.
fn expand(s: &str, env: Env) -> Result<Option<(String, usize)>, String> {
    let rest = &s[1..];
    if let Some(inner) = rest.strip_prefix('{') {
        let end = inner
            .find('}')
            .ok_or_else(|| "unterminated ${...}: missing }".to_string())?;
        let body = &inner[..end];
        let (name, default) = match body.split_once('-') {
            Some((n, d)) => (n, Some(d)),
            None => (body, None),
        };
        if name.is_empty() || !name.bytes().all(is_name_byte) {
            return Err(format!("invalid variable name \"{name}\""));
        }
        let value = env(name)
            .or_else(|| default.map(str::to_string))
            .unwrap_or_default();
        return Ok(Some((value, end + 3)));
    }
    let n = rest.bytes().take_while(|&c| is_name_byte(c)).count();
    if n == 0 {
        return Ok(None);
    }
    Ok(Some((env(&rest[..n]).unwrap_or_default(), n + 1)))
}

fn is_name_byte(c: u8) -> bool {
    c.is_ascii_alphanumeric() || c == b'_'
}

#[cfg(test)]
mod tests {
    use super::*;

    fn env(name: &str) -> Option<String> {
        match name {
            "PORT" => Some("8080".into()),
            "HOST" => Some("10.0.0.1".into()),
            _ => None,
        }
    }

    fn words(s: &str) -> Vec<String> {
        lex_line(s, 0, &env)
            .unwrap()
            .words
            .into_iter()
            .map(|w| w.text)
            .collect()
    }

    #[test]
    fn splits_on_whitespace_and_drops_comments() {
        assert_eq!(words("  bind  *:80\t# listen"), ["bind", "*:80"]);
        let l = lex_line("maxconn 256  #最大同时256连接", 0, &env).unwrap();
        assert_eq!(l.comment.as_deref(), Some("最大同时256连接"));
        assert_eq!(l.words.len(), 2);
        assert_eq!(words("global #全局属性"), ["global"]);
        assert!(words("# only a comment").is_empty());
        assert!(words("").is_empty());
    }

    #[test]
    fn quotes_and_escapes() {
        assert_eq!(
            words(r"stats realm HAProxy\ Stats"),
            ["stats", "realm", "HAProxy Stats"]
        );
        assert_eq!(words(r#"a "b c" 'd e' f"g"h"#), ["a", "b c", "d e", "fgh"]);
        assert_eq!(
            words(r#"x "a # not comment" y"#),
            ["x", "a # not comment", "y"]
        );
        assert_eq!(words(r"x a\#b"), ["x", "a#b"]);
        assert_eq!(words(r"send PING\r\n"), ["send", "PING\r\n"]);
        assert_eq!(words(r"x \x41"), ["x", "A"]);
        assert_eq!(words(r#"x """#), ["x", ""]);
        assert_eq!(words(r#"x "say \"hi\"""#), ["x", "say \"hi\""]);
    }

    #[test]
    fn environment_variables_expand_in_double_quotes_only() {
        assert_eq!(
            words(r#"bind "${HOST}:${PORT}""#),
            ["bind", "10.0.0.1:8080"]
        );
        assert_eq!(words(r#"bind "$HOST:$PORT""#), ["bind", "10.0.0.1:8080"]);
        assert_eq!(words(r#"x "${NOPE-dflt}""#), ["x", "dflt"]);
        assert_eq!(words(r#"x "${NOPE}""#), ["x", ""]);
        assert_eq!(words(r#"x '${HOST}'"#), ["x", "${HOST}"]);
        assert_eq!(words(r#"x "\$HOST""#), ["x", "$HOST"]);
        assert!(lex_line(r#"x "${HOST""#, 0, &env).is_err());
    }

    #[test]
    fn spans_are_byte_ranges_of_raw_words() {
        let l = lex_line("  server s1 \"1.2.3.4:80\"  # c", 100, &env).unwrap();
        let spans: Vec<_> = l.words.iter().map(|w| w.span.clone()).collect();
        assert_eq!(spans, [102..108, 109..111, 112..124]);
        let l = lex_line("名 x", 0, &env).unwrap();
        assert_eq!(l.words[1].span, 4..5);
    }

    #[test]
    fn unterminated_quotes_point_at_the_opening_quote() {
        let e = lex_line(r#"stats realm "HAProxy Stats"#, 10, &env).unwrap_err();
        assert_eq!(e.at, 22);
        assert!(e.msg.contains("unterminated quote"), "{}", e.msg);
        assert!(lex_line("x 'abc", 0, &env).is_err());
    }
}
