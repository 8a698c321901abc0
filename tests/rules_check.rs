//! `ringlb check` compiles ACLs and rules: an unknown fetch, a bad regex, an
//! undefined ACL or a rule in the wrong direction is refused with exit 1 and
//! `FILE:LINE:COL` pointing into the string, for TOML and haproxy.cfg alike.

mod support;

use support::{ringlb_cmd, write_file};

const TOML: &str = r#"[[frontend]]
name = "fe"
mode = "http"
bind = ["127.0.0.1:9000"]
acl = { api = "path_beg -i /api/", static = "path_end .css .js" }
use-backend = [{ backend = "web", if = "api || static" }]
default-backend = "web"
http-request = ["deny if { src 10.0.0.0/8 } !api", "set-header X-Host %[req.hdr(host),lower]"]
http-response = ["set-header X-Served-By ringlb"]

[[backend]]
name = "web"
mode = "http"
cookie = { name = "SRV", mode = "insert", indirect = true, nocache = true, httponly = true }
servers = [{ name = "a", address = "127.0.0.1:8000", cookie = "a" }]
"#;

fn check(name: &str, text: &str) -> (i32, String, String) {
    let dir = tempfile::tempdir().unwrap();
    let p = write_file(dir.path(), name, text);
    let (code, out, err) = ringlb_cmd(&["check", "-f", p.to_str().unwrap()]);
    // Paths differ per run: report them as the bare file name.
    let err = err.replace(&format!("{}/", dir.path().display()), "");
    (code, out, err)
}

#[test]
fn check_accepts_rules_and_refuses_bad_ones_at_their_column() {
    let (code, out, err) = check("ok.toml", TOML);
    assert_eq!(code, 0, "{err}");
    assert!(out.contains("configuration is valid"), "{out}");
    let cases = [
        ("path_beg -i /api/", "path_bgn -i /api/", "t.toml:5:16: frontend \"fe\": acl: unknown fetch method \"path_bgn\""),
        ("path_end .css .js", "path_reg .css(", "t.toml:5:55: frontend \"fe\": acl: invalid regex"),
        ("api || static", "api || statik", "t.toml:6:48: frontend \"fe\": use-backend: ACL \"statik\" is not defined"),
        ("set-header X-Served-By", "set-path", "t.toml:9:19: frontend \"fe\": http-response: \"set-path\" is not a valid http-response action"),
        ("%[req.hdr(host),lower]", "%[req.hdr(host),lowr]", "t.toml:8:87: frontend \"fe\": http-request: unknown converter \"lowr\""),
    ];
    for (from, to, want) in cases {
        let (code, _, err) = check("t.toml", &TOML.replace(from, to));
        assert_eq!(code, 1, "{to}: {err}");
        assert!(err.starts_with(want), "{to}: want {want:?}\n got {err}");
    }
}

/// HAProxy agrees: it refuses the rule configs ringlb refuses and accepts the
/// ones ringlb accepts.
#[test]
fn haproxy_refuses_and_accepts_the_same_rule_configs() {
    let dir = std::path::Path::new(env!("CARGO_MANIFEST_DIR")).join("tests/haproxy_cfg");
    for (name, ok) in [
        ("bad-acl-fetch.cfg", false),
        ("bad-acl-regex.cfg", false),
        ("bad-undefined-acl.cfg", false),
        ("bad-rule-direction.cfg", false),
        ("acl-redefined.cfg", true),
        ("userlist.cfg", true),
    ] {
        let p = dir.join(name);
        let out = std::process::Command::new("haproxy")
            .args(["-c", "-f", p.to_str().unwrap()])
            .output()
            .expect("haproxy (Debian package haproxy) must be installed");
        assert_eq!(
            out.status.success(),
            ok,
            "{name}: {}",
            String::from_utf8_lossy(&out.stderr)
        );
        let (code, _, err) = ringlb_cmd(&["-c", "-f", p.to_str().unwrap()]);
        assert_eq!(code == 0, ok, "{name}: {err}");
    }
}
