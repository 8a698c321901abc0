//! `server-state-file` + `load-server-state-from-file global`: what a process
//! being replaced saved with `show servers state` (HAProxy's version 1 format)
//! becomes the starting state of the new one, so a reload does not forget that
//! a server was DOWN (it stays DOWN until its checks bring it up), in MAINT or
//! DRAIN, or running with another weight. A missing or unreadable file is a
//! warning, as in HAProxy: the servers then start from the configuration.

use std::collections::HashMap;

use super::model::{Config, SavedState};

/// Reads the global state file into the servers of the backends that load it;
/// returns the warnings to print.
pub fn apply(config: &mut Config) -> Vec<String> {
    if !config.backends.iter().any(|b| b.load_server_state) {
        return Vec::new();
    }
    let Some(path) = config.global.server_state_file.clone() else {
        return vec![
            "warning: load-server-state-from-file global, but no server-state-file in global"
                .into(),
        ];
    };
    let text = match std::fs::read_to_string(&path) {
        Ok(t) => t,
        Err(e) => {
            return vec![format!(
                "warning: server-state-file '{}' cannot be read ({e}); servers start from the \
                 configuration",
                path.display()
            )]
        }
    };
    let saved = match parse(&text) {
        Ok(s) => s,
        Err(m) => {
            return vec![format!(
                "warning: server-state-file '{}': {m}",
                path.display()
            )]
        }
    };
    for b in config.backends.iter_mut().filter(|b| b.load_server_state) {
        for s in &mut b.servers {
            if let Some(st) = saved.get(&(b.name.clone(), s.name.clone())) {
                let mut st = *st;
                // Only checks bring a server back up: one without them
                // starts up, as HAProxy keeps it.
                st.up |= !s.check;
                s.saved = Some(st);
            }
        }
    }
    Vec::new()
}

/// The servers of a version 1 state file, by (backend, server) name.
pub fn parse(text: &str) -> Result<HashMap<(String, String), SavedState>, String> {
    let mut lines = text.lines().map(str::trim).filter(|l| !l.is_empty());
    match lines.next() {
        Some("1") => {}
        Some(v) => return Err(format!("unsupported version '{v}' (1 expected)")),
        None => return Ok(HashMap::new()),
    }
    let mut out = HashMap::new();
    for (n, l) in lines.enumerate() {
        if l.starts_with('#') {
            continue;
        }
        let f: Vec<&str> = l.split_whitespace().collect();
        let num = |i: usize| f.get(i).and_then(|v| v.parse::<u32>().ok());
        let (Some(op), Some(admin), Some(weight)) = (num(5), num(6), num(7)) else {
            return Err(format!("line {}: not a server state line", n + 2));
        };
        out.insert(
            (f[1].to_string(), f[3].to_string()),
            SavedState {
                up: op == 2,
                maint: admin & 0x01 != 0,
                drain: admin & 0x08 != 0,
                weight: weight.min(256),
            },
        );
    }
    Ok(out)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn reads_what_show_servers_state_writes() {
        // A line as ringlb's (and HAProxy 2.6's) `show servers state` writes it.
        let text = "1\n# be_id be_name srv_id srv_name srv_addr srv_op_state srv_admin_state \
                    srv_uweight srv_iweight ...\n\
                    1 app 1 a 127.0.0.1 2 0 1 1 12 6 3 4 6 0 0 0 - 8080 - 0 0 - - 0\n\
                    1 app 2 b 127.0.0.1 0 0 1 1 3 6 1 0 6 0 0 0 - 8081 - 0 0 - - 0\n\
                    1 app 3 c 127.0.0.1 2 1 1 1 3 6 3 4 6 0 0 0 - 8082 - 0 0 - - 0\n\
                    1 app 4 d 127.0.0.1 2 8 7 1 3 6 3 4 6 0 0 0 - 8083 - 0 0 - - 0\n";
        let s = parse(text).unwrap();
        let get = |n: &str| s[&("app".to_string(), n.to_string())];
        assert!(get("a").up && !get("a").maint && get("a").weight == 1);
        assert!(!get("b").up);
        assert!(get("c").maint);
        assert!(get("d").drain && get("d").weight == 7);
        assert!(parse("2\n")
            .unwrap_err()
            .contains("unsupported version '2'"));
        assert!(parse("1\n1 app x\n").unwrap_err().contains("line 2"));
    }
}
