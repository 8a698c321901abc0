//! The clients operators script with — `socat` on the runtime API socket,
//! `curl` on the stats page — run as real processes.

use std::path::Path;
use std::process::Command;

/// Sends one command line to a runtime API socket; its whole answer.
pub fn socat(sock: &Path, cmd: &str) -> String {
    // `-t 10`: after sending, wait up to 10 s for the answer (the socket
    // closes after it); socat's default 0.5 s cut slow answers short on a
    // loaded machine (`show activity` first gathers every shard's figures).
    let out = Command::new("socat")
        .args(["-t", "10", "-"])
        .arg(format!("UNIX-CONNECT:{}", sock.display()))
        .stdin(std::process::Stdio::piped())
        .stdout(std::process::Stdio::piped())
        .spawn()
        .and_then(|mut c| {
            use std::io::Write;
            c.stdin
                .take()
                .unwrap()
                .write_all(format!("{cmd}\n").as_bytes())?;
            c.wait_with_output()
        })
        .expect("socat (Debian package socat) must be installed");
    String::from_utf8_lossy(&out.stdout).into_owned()
}

/// `halog ARGS…` (HAProxy's log analyser) reading `input`: (stdout, stderr).
pub fn halog(args: &[&str], input: &str) -> (String, String) {
    use std::io::Write;
    use std::process::Stdio;
    let mut child = Command::new("halog")
        .args(args)
        .stdin(Stdio::piped())
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .spawn()
        .expect("halog (Debian package haproxy)");
    child
        .stdin
        .take()
        .unwrap()
        .write_all(input.as_bytes())
        .unwrap();
    let out = child.wait_with_output().unwrap();
    (
        String::from_utf8_lossy(&out.stdout).into_owned(),
        String::from_utf8_lossy(&out.stderr).into_owned(),
    )
}

/// `curl -s -D -` with `args`: (response head, body).
pub fn curl(args: &[&str]) -> (String, String) {
    let out = Command::new("curl")
        .args(["-s", "-D", "-", "--max-time", "5"])
        .args(args)
        .output()
        .expect("curl must be installed");
    let text = String::from_utf8_lossy(&out.stdout).into_owned();
    let (head, body) = text.split_once("\r\n\r\n").unwrap_or((&text, ""));
    (head.to_string(), body.to_string())
}

/// `admin.sock` in `dir`, and a config that opens the runtime API there.
pub fn admin_socket(dir: &Path) -> (std::path::PathBuf, super::Cfg) {
    let sock = dir.join("admin.sock");
    let cfg = super::Cfg::new().admin_socket(sock.display());
    (sock, cfg)
}

/// Field `name` of row `px`/`sv` in a `show stat` CSV (HAProxy's `# ` header
/// line first); `None` when there is no such row or column.
pub fn stat_field(csv: &str, px: &str, sv: &str, name: &str) -> Option<String> {
    let mut lines = csv.lines();
    let header: Vec<&str> = lines.next()?.trim_start_matches("# ").split(',').collect();
    let i = header.iter().position(|h| *h == name)?;
    lines
        .map(|l| l.split(',').collect::<Vec<_>>())
        .find(|c| c.len() > 1 && c[0] == px && c[1] == sv)
        .and_then(|c| c.get(i).map(|v| v.to_string()))
}

/// As [`stat_field`], panicking (with the CSV) when the row or column is missing.
pub fn stat_column(csv: &str, px: &str, sv: &str, name: &str) -> String {
    stat_field(csv, px, sv, name).unwrap_or_else(|| panic!("no {name} of {px}/{sv} in\n{csv}"))
}

/// Server `sv`'s `status` in backend `px`, asked of the runtime API at `sock`.
pub fn server_status(sock: &Path, px: &str, sv: &str) -> String {
    stat_column(&socat(sock, "show stat"), px, sv, "status")
}
