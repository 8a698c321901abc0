//! A tiny `--key value` argument parser: the bench tool's options are few and flat,
//! so a dependency would cost more than it saves.

use std::collections::HashMap;
use std::time::Duration;

pub struct Args {
    values: HashMap<String, String>,
    flags: Vec<String>,
}

impl Args {
    /// Parses `--key value` pairs and bare `--flag`s (a flag is followed by another
    /// `--` option or nothing).
    pub fn parse(list: &[String]) -> Result<Args, String> {
        let mut values = HashMap::new();
        let mut flags = Vec::new();
        let mut i = 0;
        while i < list.len() {
            let k = list[i]
                .strip_prefix("--")
                .ok_or_else(|| format!("unexpected argument \"{}\"", list[i]))?;
            match list.get(i + 1) {
                Some(v) if !v.starts_with("--") => {
                    values.insert(k.to_string(), v.clone());
                    i += 2;
                }
                _ => {
                    flags.push(k.to_string());
                    i += 1;
                }
            }
        }
        Ok(Args { values, flags })
    }

    pub fn flag(&self, k: &str) -> bool {
        self.flags.iter().any(|f| f == k)
    }

    pub fn str(&self, k: &str) -> Option<&str> {
        self.values.get(k).map(String::as_str)
    }

    pub fn req(&self, k: &str) -> Result<&str, String> {
        self.str(k).ok_or_else(|| format!("missing --{k}"))
    }

    pub fn num(&self, k: &str, default: u64) -> Result<u64, String> {
        match self.str(k) {
            None => Ok(default),
            Some(v) => v
                .parse()
                .map_err(|_| format!("--{k}: \"{v}\" is not a number")),
        }
    }

    /// `5s`, `500ms`, `2m`, or plain seconds.
    pub fn duration(&self, k: &str, default: Duration) -> Result<Duration, String> {
        let Some(v) = self.str(k) else {
            return Ok(default);
        };
        let bad = || format!("--{k}: \"{v}\" is not a duration (e.g. 5s, 500ms)");
        let (n, unit) = v.split_at(v.find(|c: char| !c.is_ascii_digit()).unwrap_or(v.len()));
        let n: u64 = n.parse().map_err(|_| bad())?;
        Ok(match unit {
            "" | "s" => Duration::from_secs(n),
            "ms" => Duration::from_millis(n),
            "m" => Duration::from_secs(n * 60),
            _ => return Err(bad()),
        })
    }
}
