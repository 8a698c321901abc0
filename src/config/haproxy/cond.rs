//! Conditional blocks: `.if COND` / `.elif COND` / `.else` / `.endif`, nested,
//! and the diagnostics `.notice`, `.warning`, `.alert` (which refuses the config),
//! `.diag`. Conditions are HAProxy's: `defined(VAR)`, `streq(a,b)`, `strneq(a,b)`,
//! `feature(X)` (always false: ringlb advertises no HAProxy build feature),
//! `version_atleast(V)` / `version_before(V)` (against HAProxy 2.8, the
//! compatibility level), integers (non-zero is true), `!`, `&&`, `||`, parentheses.

use super::lexer::{Env, Word};

/// The HAProxy version ringlb answers `version_atleast` with.
const COMPAT_VERSION: [u32; 3] = [2, 8, 0];

#[derive(Debug)]
struct Frame {
    /// Whether lines in the current branch are used.
    active: bool,
    /// Whether some branch of this block was taken already.
    taken: bool,
    /// Whether the enclosing context is active.
    outer: bool,
    seen_else: bool,
    /// Where the `.if` is, for "unterminated .if".
    at: usize,
}

/// What the caller does with a line.
pub enum Directive {
    /// Not a directive: use the line if `true`, skip it if `false`.
    Line(bool),
    /// A handled directive; nothing else to do.
    Handled,
    /// `.notice`/`.warning`/`.diag` text to report.
    Message(String),
}

#[derive(Default)]
pub struct Conditions {
    stack: Vec<Frame>,
}

pub type CondError = (usize, String);

impl Conditions {
    fn active(&self) -> bool {
        self.stack.last().map(|f| f.active).unwrap_or(true)
    }

    /// Feeds one line's words.
    pub fn line(&mut self, words: &[Word], env: Env) -> Result<Directive, CondError> {
        let Some(first) = words.first() else {
            return Ok(Directive::Line(false));
        };
        let rest = &words[1..];
        let eval = |at: usize| -> Result<bool, CondError> {
            let text: Vec<&str> = rest.iter().map(|w| w.text.as_str()).collect();
            evaluate(&text.join(" "), env).map_err(|m| (at, format!("{}: {m}", first.text)))
        };
        match first.text.as_str() {
            ".if" => {
                let outer = self.active();
                let v = if outer {
                    eval(first.span.start)?
                } else {
                    false
                };
                self.stack.push(Frame {
                    active: outer && v,
                    taken: v,
                    outer,
                    seen_else: false,
                    at: first.span.start,
                });
            }
            ".elif" => {
                let f = self
                    .stack
                    .last()
                    .ok_or((first.span.start, ".elif without .if".to_string()))?;
                if f.seen_else {
                    return Err((first.span.start, ".elif after .else".into()));
                }
                let (outer, taken) = (f.outer, f.taken);
                let v = if outer && !taken {
                    eval(first.span.start)?
                } else {
                    false
                };
                let f = self.stack.last_mut().expect("checked");
                f.active = outer && !taken && v;
                f.taken = taken || v;
            }
            ".else" => {
                let f = self
                    .stack
                    .last_mut()
                    .ok_or((first.span.start, ".else without .if".to_string()))?;
                if f.seen_else {
                    return Err((first.span.start, "second .else in one .if block".into()));
                }
                f.seen_else = true;
                f.active = f.outer && !f.taken;
                f.taken = true;
            }
            ".endif" => {
                self.stack
                    .pop()
                    .ok_or((first.span.start, ".endif without .if".to_string()))?;
            }
            d @ (".notice" | ".warning" | ".diag" | ".alert") => {
                if !self.active() {
                    return Ok(Directive::Handled);
                }
                let text: Vec<&str> = rest.iter().map(|w| w.text.as_str()).collect();
                if d == ".alert" {
                    return Err((first.span.start, format!(".alert: {}", text.join(" "))));
                }
                return Ok(Directive::Message(format!("{d}: {}", text.join(" "))));
            }
            w if w.starts_with('.') && self.active() => {
                return Err((first.span.start, format!("unknown directive \"{w}\"")));
            }
            _ => return Ok(Directive::Line(self.active())),
        }
        Ok(Directive::Handled)
    }

    /// Called at the end of a file: an open block is an error.
    pub fn finish(&mut self) -> Result<(), CondError> {
        match self.stack.first() {
            Some(f) => Err((f.at, ".if without .endif".into())),
            None => Ok(()),
        }
    }
}

/// Evaluates a condition expression.
pub fn evaluate(text: &str, env: Env) -> Result<bool, String> {
    let toks = tokenize(text)?;
    if toks.is_empty() {
        return Err("missing condition".into());
    }
    let mut p = Parser {
        toks: &toks,
        pos: 0,
        env,
    };
    let v = p.or()?;
    if p.pos != toks.len() {
        return Err(format!("unexpected \"{}\" in condition", toks[p.pos]));
    }
    Ok(v)
}

fn tokenize(text: &str) -> Result<Vec<String>, String> {
    let mut out = Vec::new();
    let b = text.as_bytes();
    let mut i = 0;
    while i < b.len() {
        match b[i] {
            b' ' | b'\t' => i += 1,
            b'!' | b'(' | b')' => {
                out.push((b[i] as char).to_string());
                i += 1;
            }
            b'&' | b'|' if b.get(i + 1) == Some(&b[i]) => {
                out.push(text[i..i + 2].to_string());
                i += 2;
            }
            _ => {
                // A term: a word, or NAME(args) taken whole.
                let start = i;
                while i < b.len()
                    && !matches!(b[i], b' ' | b'\t' | b'!' | b'(' | b')' | b'&' | b'|')
                {
                    i += 1;
                }
                if i == start {
                    // A lone `&` or `|`: a token of its own, refused by the parser.
                    out.push(text[i..i + 1].to_string());
                    i += 1;
                    continue;
                }
                if b.get(i) == Some(&b'(') {
                    let close = text[i..]
                        .find(')')
                        .ok_or_else(|| format!("missing ) in \"{}\"", &text[start..]))?;
                    i += close + 1;
                }
                out.push(text[start..i].to_string());
            }
        }
    }
    Ok(out)
}

struct Parser<'a> {
    toks: &'a [String],
    pos: usize,
    env: Env<'a>,
}

impl Parser<'_> {
    fn peek(&self) -> Option<&str> {
        self.toks.get(self.pos).map(String::as_str)
    }

    fn or(&mut self) -> Result<bool, String> {
        let mut v = self.and()?;
        while self.peek() == Some("||") {
            self.pos += 1;
            let r = self.and()?;
            v = v || r;
        }
        Ok(v)
    }

    fn and(&mut self) -> Result<bool, String> {
        let mut v = self.unary()?;
        while self.peek() == Some("&&") {
            self.pos += 1;
            let r = self.unary()?;
            v = v && r;
        }
        Ok(v)
    }

    fn unary(&mut self) -> Result<bool, String> {
        match self.peek() {
            Some("!") => {
                self.pos += 1;
                Ok(!self.unary()?)
            }
            Some("(") => {
                self.pos += 1;
                let v = self.or()?;
                if self.peek() != Some(")") {
                    return Err("missing )".into());
                }
                self.pos += 1;
                Ok(v)
            }
            Some(t) => {
                let t = t.to_string();
                self.pos += 1;
                self.term(&t)
            }
            None => Err("condition ends early".into()),
        }
    }

    fn term(&self, t: &str) -> Result<bool, String> {
        if let Some((name, args)) = t.split_once('(') {
            let args = args.strip_suffix(')').unwrap_or(args);
            let args: Vec<&str> = args.split(',').map(str::trim).collect();
            let one = || -> Result<&str, String> {
                match args.as_slice() {
                    [a] => Ok(*a),
                    _ => Err(format!("{name}() takes one argument")),
                }
            };
            let two = || -> Result<(&str, &str), String> {
                match args.as_slice() {
                    [a, b] => Ok((*a, *b)),
                    _ => Err(format!("{name}() takes two arguments")),
                }
            };
            return match name {
                "defined" => Ok((self.env)(one()?).is_some()),
                "feature" => one().map(|_| false),
                "streq" => two().map(|(a, b)| a == b),
                "strneq" => two().map(|(a, b)| a != b),
                "version_atleast" => Ok(version(one()?)? <= COMPAT_VERSION),
                "version_before" => Ok(version(one()?)? > COMPAT_VERSION),
                other => Err(format!("unknown function \"{other}\"")),
            };
        }
        t.parse::<i64>()
            .map(|n| n != 0)
            .map_err(|_| format!("unknown term \"{t}\""))
    }
}

fn version(s: &str) -> Result<[u32; 3], String> {
    let mut v = [0u32; 3];
    for (i, part) in s.split(['.', '-']).take(3).enumerate() {
        v[i] = part
            .parse()
            .map_err(|_| format!("invalid version \"{s}\""))?;
    }
    Ok(v)
}

#[cfg(test)]
mod tests {
    use super::*;

    fn env(name: &str) -> Option<String> {
        (name == "SET").then(|| "1".to_string())
    }

    #[test]
    fn conditions() {
        let e = |s: &str| evaluate(s, &env);
        assert_eq!(e("defined(SET)"), Ok(true));
        assert_eq!(e("defined(UNSET)"), Ok(false));
        assert_eq!(e("!defined(UNSET)"), Ok(true));
        assert_eq!(e("1"), Ok(true));
        assert_eq!(e("0"), Ok(false));
        assert_eq!(e("streq(a,a) && strneq(a,b)"), Ok(true));
        assert_eq!(e("defined(UNSET) || streq(x,x)"), Ok(true));
        assert_eq!(e("!(1 && 0)"), Ok(true));
        assert_eq!(e("version_atleast(2.4)"), Ok(true));
        assert_eq!(e("version_before(2.4)"), Ok(false));
        assert_eq!(e("feature(OPENSSL)"), Ok(false));
        assert!(e("bogus(1)").is_err());
        assert!(e("").is_err());
        assert!(e("1 &&").is_err());
        // A lone operator character is refused, not looped on.
        assert!(e("define&(X)").is_err());
        assert!(e("1 | 0").is_err());
    }
}
