//! `ringlb demo`: the embedded default. Starts two tiny HTTP servers on loopback,
//! then runs ringlb in TCP mode in front of them with round robin, so that
//! `curl` through the proxy shows the answers alternate. Nothing to install or
//! configure; Ctrl-C stops it.

use std::io::{Read, Write};
use std::net::{SocketAddr, TcpListener};
use std::path::Path;

use crate::config;
use crate::run::{self, RunOptions};

/// The embedded configuration; `{PORT}`, `{S1}` and `{S2}` are filled in at start.
pub const DEMO_TOML: &str = r#"# ringlb demo: an L4 proxy with round robin over two local HTTP servers.
[global]
maxconn = 1000

[defaults]
mode = "tcp"
timeout = { connect = "2s", client = "30s", server = "30s" }

[[frontend]]
name = "demo-in"
bind = ["127.0.0.1:{PORT}"]
default-backend = "demo_servers"

[[backend]]
name = "demo_servers"
balance = "roundrobin"
servers = [
  { name = "demo1", address = "{S1}" },
  { name = "demo2", address = "{S2}" },
]
"#;

/// Starts a demo HTTP server that names itself in every answer.
fn demo_server(name: &'static str) -> std::io::Result<SocketAddr> {
    let l = TcpListener::bind("127.0.0.1:0")?;
    let addr = l.local_addr()?;
    std::thread::Builder::new().name(format!("demo-{name}")).spawn(move || {
        for conn in l.incoming().flatten() {
            let mut conn = conn;
            let mut buf = [0u8; 4096];
            // One request per connection is enough for a demo; read its head.
            let _ = conn.read(&mut buf);
            let body = format!("Hello from ringlb demo server {name}\n");
            let _ = write!(
                conn,
                "HTTP/1.1 200 OK\r\nContent-Type: text/plain\r\nContent-Length: {}\r\nConnection: close\r\n\r\n{body}",
                body.len()
            );
        }
    })?;
    Ok(addr)
}

pub fn demo(port: u16) -> Result<(), Box<dyn std::error::Error>> {
    let s1 = demo_server("1")?;
    let s2 = demo_server("2")?;
    let text = DEMO_TOML
        .replace("{PORT}", &port.to_string())
        .replace("{S1}", &s1.to_string())
        .replace("{S2}", &s2.to_string());
    let cfg = config::parse_str(&text, Path::new("<demo>"))?;
    eprintln!(
        "ringlb demo: proxy on http://127.0.0.1:{port}/ -> demo servers {s1} and {s2} (roundrobin)"
    );
    eprintln!("ringlb demo: try `curl http://127.0.0.1:{port}/` a few times; Ctrl-C stops");
    run::run(cfg, RunOptions::default())?;
    Ok(())
}
