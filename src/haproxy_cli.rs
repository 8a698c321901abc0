//! HAProxy's command line, same meanings: `-f FILE|DIR` (repeatable), `-c`
//! (check), `-D` / `-db` (background / foreground), `-p PIDFILE`, `-q`, `-V`,
//! `-v` / `-vv`, `-N MAXCONN`, `-L NAME`, `-sf PID...` / `-st PID...` (start, then
//! ask the old processes to finish: SIGUSR1, or to stop: SIGTERM), `-x SOCKET`
//! (take the old process's listeners), `-W` / `-Ws` (master-worker; systemd
//! notifications come from `$NOTIFY_SOCKET` either way), `-S PATH` (the master
//! CLI); `-- FILE...` as in HAProxy. ringlb's own `--shards N`, `--lenient` and `--format F` are accepted
//! here too.

use std::path::PathBuf;
use std::process::ExitCode;

use ringlb::config::{Format, LoadOptions};

/// Whether `args` (without argv[0]) are for this parser rather than clap's.
pub fn wants_haproxy_cli(args: &[String]) -> bool {
    match args.first().map(String::as_str) {
        None => false,
        Some(
            "run" | "check" | "import" | "demo" | "reload" | "help" | "--help" | "-h" | "--version",
        ) => false,
        Some(_) => !args
            .iter()
            .any(|a| matches!(a.as_str(), "--help" | "-h" | "--version")),
    }
}

#[derive(Default, Debug, PartialEq)]
pub struct HaArgs {
    pub files: Vec<PathBuf>,
    pub check: bool,
    pub daemon: bool,
    pub foreground: bool,
    pub pidfile: Option<PathBuf>,
    pub quiet: bool,
    pub verbose: bool,
    pub version: u8,
    pub maxconn: Option<u32>,
    pub local_peer: Option<String>,
    pub soft_stop: Vec<u32>,
    pub hard_stop: Vec<u32>,
    pub shards: Option<usize>,
    pub lenient: bool,
    pub format: Format,
    pub listeners_from: Option<PathBuf>,
    pub master_worker: bool,
    pub master_cli: Option<PathBuf>,
}

pub fn parse(args: &[String]) -> Result<HaArgs, String> {
    let mut a = HaArgs::default();
    let mut i = 0;
    let value = |i: usize, opt: &str| -> Result<String, String> {
        args.get(i + 1)
            .cloned()
            .ok_or_else(|| format!("option {opt} needs an argument"))
    };
    while i < args.len() {
        let opt = args[i].as_str();
        match opt {
            "-f" => {
                a.files.push(value(i, opt)?.into());
                i += 1;
            }
            "-c" => a.check = true,
            "-D" => a.daemon = true,
            "-db" | "-d" => a.foreground = true,
            "-p" => {
                a.pidfile = Some(value(i, opt)?.into());
                i += 1;
            }
            "-q" => a.quiet = true,
            "-V" => a.verbose = true,
            "-v" => a.version = a.version.max(1),
            "-vv" => a.version = 2,
            "-N" => {
                let v = value(i, opt)?;
                a.maxconn = Some(
                    v.parse()
                        .map_err(|_| format!("-N: invalid number \"{v}\""))?,
                );
                i += 1;
            }
            "-L" => {
                a.local_peer = Some(value(i, opt)?);
                i += 1;
            }
            "-sf" | "-st" => {
                let mut n = 0;
                while let Some(pid) = args.get(i + 1).and_then(|p| p.parse::<u32>().ok()) {
                    if opt == "-sf" {
                        a.soft_stop.push(pid);
                    } else {
                        a.hard_stop.push(pid);
                    }
                    i += 1;
                    n += 1;
                }
                // HAProxy accepts an empty list (a pidfile that did not exist).
                let _ = n;
            }
            "-W" | "-Ws" => a.master_worker = true,
            "--shards" => {
                let v = value(i, opt)?;
                a.shards = Some(
                    v.parse()
                        .map_err(|_| format!("--shards: invalid number \"{v}\""))?,
                );
                i += 1;
            }
            "--lenient" => a.lenient = true,
            "--format" => {
                a.format = match value(i, opt)?.as_str() {
                    "toml" => Format::Toml,
                    "haproxy" => Format::Haproxy,
                    other => {
                        return Err(format!(
                            "--format: expected toml or haproxy, got \"{other}\""
                        ))
                    }
                };
                i += 1;
            }
            // HAProxy: everything after `--` is a configuration file.
            "--" => {
                a.files.extend(args[i + 1..].iter().map(PathBuf::from));
                break;
            }
            "-x" => {
                a.listeners_from = Some(value(i, opt)?.into());
                i += 1;
            }
            // HAProxy: `-S PATH[,bind options]`; the socket is mode 600.
            "-S" => {
                let v = value(i, opt)?;
                let path = v.split(',').next().unwrap_or_default();
                let path = path.strip_prefix("unix@").unwrap_or(path);
                a.master_cli = Some(path.into());
                i += 1;
            }
            other => return Err(format!("unknown option \"{other}\" (see ringlb --help)")),
        }
        i += 1;
    }
    Ok(a)
}

pub fn main(args: &[String]) -> ExitCode {
    let a = match parse(args) {
        Ok(a) => a,
        Err(e) => {
            eprintln!("ringlb: {e}");
            return ExitCode::from(1);
        }
    };
    if a.version > 0 {
        println!(
            "ringlb version {} - HAProxy-compatible command line and configuration",
            env!("CARGO_PKG_VERSION")
        );
        if a.version > 1 {
            println!(
                "Build options: io_uring data shards, splice forwarding; config formats: TOML, haproxy.cfg"
            );
            println!("Compatibility: haproxy.cfg keywords as listed in docs/haproxy-cfg.md");
        }
        return ExitCode::SUCCESS;
    }
    if a.files.is_empty() {
        eprintln!("ringlb: no configuration file (-f FILE|DIR)");
        return ExitCode::from(1);
    }
    let load_opts = LoadOptions {
        format: a.format,
        lenient: a.lenient,
    };
    if let Some(name) = &a.local_peer {
        if !a.quiet {
            eprintln!("ringlb: notice: -L {name}: peers are not implemented; the local peer name is ignored");
        }
    }
    if a.check {
        return crate::check(&a.files, &load_opts, "Configuration file is valid", a.quiet);
    }
    let mut signal_on_ready: Vec<(u32, i32)> = Vec::new();
    signal_on_ready.extend(a.soft_stop.iter().map(|p| (*p, libc::SIGUSR1)));
    signal_on_ready.extend(a.hard_stop.iter().map(|p| (*p, libc::SIGTERM)));
    let opts = ringlb::run::RunOptions {
        daemon: a.daemon && !a.foreground,
        pidfile: a.pidfile.clone(),
        shards: a.shards,
        signal_on_ready,
        quiet: a.quiet,
        listeners_from: a.listeners_from.clone(),
        worker: None,
    };
    // A worker: the same files and options, in the foreground, no pidfile.
    let mut worker_args: Vec<String> = Vec::new();
    for f in &a.files {
        worker_args.extend(["-f".into(), f.display().to_string()]);
    }
    worker_args.push("-db".into());
    if a.quiet {
        worker_args.push("-q".into());
    }
    if let Some(n) = a.maxconn {
        worker_args.extend(["-N".into(), n.to_string()]);
    }
    if let Some(n) = a.shards {
        worker_args.extend(["--shards".into(), n.to_string()]);
    }
    if a.lenient {
        worker_args.push("--lenient".into());
    }
    match a.format {
        Format::Toml => worker_args.extend(["--format".into(), "toml".into()]),
        Format::Haproxy => worker_args.extend(["--format".into(), "haproxy".into()]),
        Format::Auto => {}
    }
    let launch = crate::Launch {
        master_worker: a.master_worker,
        worker_args,
        master_cli: a.master_cli.clone(),
        no_root: false,
    };
    let foreground = a.foreground;
    let maxconn = a.maxconn;
    let quiet = a.quiet;
    crate::run_with(&a.files, &load_opts, opts, a.quiet, launch, move |cfg| {
        if foreground && cfg.global.daemon {
            if !quiet {
                eprintln!("ringlb: notice: -db given: the `daemon` keyword is ignored, staying in the foreground");
            }
            cfg.global.daemon = false;
        }
        if let Some(n) = maxconn {
            for fe in cfg.frontends.iter_mut().filter(|f| f.maxconn == 0) {
                fe.maxconn = n;
            }
        }
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    fn p(s: &str) -> Result<HaArgs, String> {
        parse(&s.split_whitespace().map(String::from).collect::<Vec<_>>())
    }

    #[test]
    fn haproxy_options() {
        let a = p("-f a.cfg -f dir -db -p /run/x.pid -sf 10 11 -q -N 100 -L me").unwrap();
        assert_eq!(a.files, [PathBuf::from("a.cfg"), PathBuf::from("dir")]);
        assert!(a.foreground && a.quiet);
        assert_eq!(a.soft_stop, [10, 11]);
        assert_eq!(a.maxconn, Some(100));
        assert_eq!(a.local_peer.as_deref(), Some("me"));
        let a = p("-f a.cfg -st 5 -c").unwrap();
        assert_eq!(a.hard_stop, [5]);
        assert!(a.check);
        assert!(p("-f a.cfg -sf").unwrap().soft_stop.is_empty());
        assert!(p("-Ws -f a.cfg").unwrap().master_worker);
        assert!(p("-f").is_err());
        assert!(p("-x").is_err());
        assert_eq!(p("-vv").unwrap().version, 2);
        let a = p("-f a.cfg -c -- b.cfg c.cfg").unwrap();
        assert_eq!(a.files.len(), 3);
        let a = p("-f a.cfg -x /run/haproxy.sock -sf 7").unwrap();
        assert_eq!(a.listeners_from, Some(PathBuf::from("/run/haproxy.sock")));
        assert_eq!(a.soft_stop, [7]);
        let a = p("-W -f a.cfg -S /run/master.sock,mode,600").unwrap();
        assert_eq!(a.master_cli, Some(PathBuf::from("/run/master.sock")));
    }
}
