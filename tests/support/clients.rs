//! The clients operators script with — `socat` on the runtime API socket,
//! `curl` on the stats page — run as real processes.

use std::path::Path;
use std::process::Command;

/// Sends one command line to a runtime API socket; its whole answer.
pub fn socat(sock: &Path, cmd: &str) -> String {
    let out = Command::new("socat")
        .arg("-")
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
