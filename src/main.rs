//! The `ringlb` command line: parse arguments, call into the library, map
//! outcomes to exit codes (0 ok, 1 configuration error, 2 startup failure).
//! Subcommands (`run`, `check`, `import`, `demo`) go through clap; the bare form
//! `ringlb -f FILE ...` also takes HAProxy's own options (`-c`, `-db`, `-sf PID...`,
//! `-vv`...) so init scripts written for HAProxy work unchanged (see `haproxy_cli`).

mod haproxy_cli;

use std::path::PathBuf;
use std::process::ExitCode;

use clap::{Args, Parser, Subcommand};
use ringlb::config::{Format, LoadOptions};

#[derive(Parser)]
#[command(
    name = "ringlb",
    version,
    about = "Load balancer and reverse proxy on per-core io_uring shards",
    after_help = "HAProxy's command line is accepted too: ringlb -f FILE|DIR [-f ...] [-c] [-D|-db] \
                  [-p PIDFILE] [-q] [-V] [-N MAXCONN] [-L NAME] [-sf|-st PID...] [-v|-vv] [--lenient]"
)]
struct Cli {
    /// Configuration file (TOML or haproxy.cfg); same as `ringlb run -f FILE`.
    #[arg(short = 'f', value_name = "FILE")]
    file: Option<PathBuf>,
    #[command(flatten)]
    run: RunArgs,
    #[command(subcommand)]
    cmd: Option<Cmd>,
}

#[derive(Args, Clone, Default)]
struct RunArgs {
    /// Run in the background (daemon).
    #[arg(short = 'D')]
    daemon: bool,
    /// Write the process id to this file.
    #[arg(short = 'p', value_name = "PIDFILE")]
    pidfile: Option<PathBuf>,
    /// Number of data shards (default: global.shards, else one per CPU).
    #[arg(long)]
    shards: Option<usize>,
    /// haproxy.cfg: warn about and ignore unsupported keywords instead of refusing.
    #[arg(long)]
    lenient: bool,
    /// Configuration format (default: haproxy for `.cfg` files, else TOML).
    #[arg(long, value_parser = ["toml", "haproxy"])]
    format: Option<String>,
    /// Take the listening sockets of the running process behind this socket
    /// (its admin socket with `expose-fd-listeners`) instead of binding new ones.
    #[arg(short = 'x', value_name = "SOCKET")]
    listeners_from: Option<PathBuf>,
    /// Once ready, ask these processes to finish their sessions and exit
    /// (SIGUSR1; HAProxy's `-sf`).
    #[arg(long = "sf", value_name = "PID", num_args = 1..)]
    finish: Vec<u32>,
    /// Master-worker mode: a master holds the listeners and replaces the
    /// worker on SIGUSR2 or `ringlb reload` (HAProxy's `-W`/`-Ws`).
    #[arg(short = 'W', long = "master-worker")]
    master_worker: bool,
    /// Master-worker: serve the master CLI (`reload`, `show proc`) on this
    /// unix socket (HAProxy's `-S`).
    #[arg(long = "master-socket", value_name = "PATH")]
    master_socket: Option<PathBuf>,
    /// Refuse to run as root unless the configuration drops privileges
    /// (`user`/`uid` in global).
    #[arg(long = "no-root")]
    no_root: bool,
}

impl RunArgs {
    fn load_options(&self) -> LoadOptions {
        LoadOptions {
            format: match self.format.as_deref() {
                Some("toml") => Format::Toml,
                Some("haproxy") => Format::Haproxy,
                _ => Format::Auto,
            },
            lenient: self.lenient,
        }
    }
}

#[derive(Subcommand)]
enum Cmd {
    /// Run the proxy.
    Run {
        #[arg(short = 'f', value_name = "FILE", required = true)]
        file: Vec<PathBuf>,
        #[command(flatten)]
        run: RunArgs,
    },
    /// Validate a configuration: exit 0 and "configuration is valid", or exit 1.
    Check {
        #[arg(short = 'f', value_name = "FILE", required = true)]
        file: Vec<PathBuf>,
        #[arg(long)]
        lenient: bool,
        #[arg(long, value_parser = ["toml", "haproxy"])]
        format: Option<String>,
    },
    /// Translate an haproxy.cfg (files or directories, in order) to ringlb TOML.
    Import {
        #[arg(required = true, value_name = "FILE.cfg")]
        files: Vec<PathBuf>,
        /// Write here instead of standard output.
        #[arg(short = 'o', value_name = "OUT.toml")]
        out: Option<PathBuf>,
        #[arg(long)]
        lenient: bool,
    },
    /// Reload a master-worker ringlb (SIGUSR2 to the pid in the pidfile) and
    /// wait for the outcome: exit 0, or 1 with the error (e.g. a bad config).
    Reload {
        /// The master's pidfile (default: global.pidfile of -f FILE).
        #[arg(short = 'p', value_name = "PIDFILE")]
        pidfile: Option<PathBuf>,
        #[arg(short = 'f', value_name = "FILE")]
        file: Vec<PathBuf>,
        /// Seconds to wait for the master's answer.
        #[arg(long, default_value_t = 60)]
        timeout: u64,
        #[arg(long)]
        lenient: bool,
        #[arg(long, value_parser = ["toml", "haproxy"])]
        format: Option<String>,
    },
    /// Start demo backends and a proxy in front of them; print the URL.
    Demo {
        /// Port the demo proxy listens on (127.0.0.1).
        #[arg(long, default_value_t = 8000)]
        port: u16,
    },
}

/// The load options of a subcommand that takes only `--lenient` and
/// `--format`.
fn load_opts(lenient: bool, format: Option<String>) -> LoadOptions {
    RunArgs {
        lenient,
        format,
        ..RunArgs::default()
    }
    .load_options()
}

fn main() -> ExitCode {
    // The test suite's stand-in for a container that refuses io_uring
    // (debug builds only).
    if cfg!(debug_assertions) && std::env::var_os("RINGLB_TEST_DENY_IO_URING").is_some() {
        if let Err(e) = ringlb::sys::seccomp::deny_io_uring_setup() {
            eprintln!("RINGLB_TEST_DENY_IO_URING: {e}");
            return ExitCode::from(2);
        }
    }
    let args: Vec<String> = std::env::args().collect();
    if haproxy_cli::wants_haproxy_cli(&args[1..]) {
        return haproxy_cli::main(&args[1..]);
    }
    let cli = Cli::parse();
    match cli.cmd {
        Some(Cmd::Check {
            file,
            lenient,
            format,
        }) => check(
            &file,
            &load_opts(lenient, format),
            "configuration is valid",
            false,
        ),
        Some(Cmd::Run { file, run }) => run_file(&file, run),
        Some(Cmd::Reload {
            pidfile,
            file,
            timeout,
            lenient,
            format,
        }) => reload(pidfile, &file, &load_opts(lenient, format), timeout),
        Some(Cmd::Import {
            files,
            out,
            lenient,
        }) => import(&files, out, lenient),
        Some(Cmd::Demo { port }) => match ringlb::demo::demo(port) {
            Ok(()) => ExitCode::SUCCESS,
            Err(e) => {
                eprintln!("ringlb demo: {e}");
                ExitCode::from(2)
            }
        },
        None => match cli.file {
            Some(file) => run_file(&[file], cli.run),
            None => {
                eprintln!("ringlb: no configuration given; try `ringlb -f ringlb.toml`, `ringlb demo` or `ringlb --help`");
                ExitCode::from(1)
            }
        },
    }
}

pub(crate) fn load(
    files: &[PathBuf],
    opts: &LoadOptions,
    quiet: bool,
) -> Option<ringlb::config::model::Config> {
    match ringlb::config::load_with(files, opts) {
        Ok(l) => {
            if !quiet {
                for n in &l.notices {
                    eprintln!("{n}");
                }
            }
            Some(l.config)
        }
        Err(e) => {
            eprintln!("{e}");
            None
        }
    }
}

pub(crate) fn check(files: &[PathBuf], opts: &LoadOptions, verdict: &str, quiet: bool) -> ExitCode {
    let Some(cfg) = load(files, opts, quiet) else {
        return ExitCode::from(1);
    };
    if !quiet {
        for w in ringlb::config::warnings(&cfg) {
            println!("{w}");
        }
        for w in ringlb::kernel::startup_warnings(&cfg) {
            println!("{w}");
        }
        for u in ringlb::run::unsupported(&cfg) {
            println!("warning: {u}");
        }
    }
    println!("{verdict}");
    ExitCode::SUCCESS
}

fn import(files: &[PathBuf], out: Option<PathBuf>, lenient: bool) -> ExitCode {
    let files = match ringlb::config::expand_paths(files) {
        Ok(f) => f,
        Err(e) => {
            eprintln!("{e}");
            return ExitCode::from(1);
        }
    };
    let mut sources = Vec::new();
    for f in &files {
        match ringlb::config::read_haproxy_file(f) {
            Ok(t) => sources.push((f.clone(), t)),
            Err(e) => {
                eprintln!("{e}");
                return ExitCode::from(1);
            }
        }
    }
    let env = |k: &str| std::env::var(k).ok();
    match ringlb::config::import::haproxy_to_toml(&sources, lenient, &env) {
        Ok((toml, notices)) => {
            for n in notices {
                eprintln!("{n}");
            }
            match out {
                Some(p) => {
                    if let Err(e) = std::fs::write(&p, toml) {
                        eprintln!("{}: cannot write: {e}", p.display());
                        return ExitCode::from(1);
                    }
                }
                None => print!("{toml}"),
            }
            ExitCode::SUCCESS
        }
        Err(e) => {
            eprintln!("{e}");
            ExitCode::from(1)
        }
    }
}

fn reload(
    pidfile: Option<PathBuf>,
    files: &[PathBuf],
    opts: &LoadOptions,
    timeout: u64,
) -> ExitCode {
    let pidfile = match pidfile {
        Some(p) => p,
        None if !files.is_empty() => {
            let Some(cfg) = load(files, opts, true) else {
                return ExitCode::from(1);
            };
            match cfg.global.pidfile {
                Some(p) => p,
                None => {
                    eprintln!("ringlb reload: the configuration names no pidfile; give -p PIDFILE");
                    return ExitCode::from(1);
                }
            }
        }
        None => {
            eprintln!("ringlb reload: give -p PIDFILE (or -f FILE with global.pidfile)");
            return ExitCode::from(1);
        }
    };
    match ringlb::master::request_reload(&pidfile, std::time::Duration::from_secs(timeout)) {
        Ok(msg) => {
            println!("{msg}");
            ExitCode::SUCCESS
        }
        Err(msg) => {
            eprintln!("ringlb reload: {msg}");
            ExitCode::from(1)
        }
    }
}

fn run_file(files: &[PathBuf], args: RunArgs) -> ExitCode {
    let opts = ringlb::run::RunOptions {
        daemon: args.daemon,
        pidfile: args.pidfile.clone(),
        shards: args.shards,
        listeners_from: args.listeners_from.clone(),
        signal_on_ready: args.finish.iter().map(|p| (*p, libc::SIGUSR1)).collect(),
        ..Default::default()
    };
    // A worker runs the same files with the same load options.
    let mut worker_args: Vec<String> = vec!["run".into()];
    for f in files {
        worker_args.extend(["-f".into(), f.display().to_string()]);
    }
    if let Some(n) = args.shards {
        worker_args.extend(["--shards".into(), n.to_string()]);
    }
    if args.lenient {
        worker_args.push("--lenient".into());
    }
    if let Some(f) = &args.format {
        worker_args.extend(["--format".into(), f.clone()]);
    }
    let launch = Launch {
        master_worker: args.master_worker,
        worker_args,
        master_cli: args.master_socket.clone(),
        no_root: args.no_root,
    };
    run_with(files, &args.load_options(), opts, false, launch, |_| {})
}

/// How to start: as a plain process, or as a master running workers with
/// `worker_args` (`-W` here, or `master-worker` in the config).
pub(crate) struct Launch {
    pub master_worker: bool,
    pub worker_args: Vec<String>,
    /// `-S PATH`: the master CLI.
    pub master_cli: Option<PathBuf>,
    /// `--no-root`: refuse to serve as root with no `user` to become.
    pub no_root: bool,
}

/// Loads the configuration, applies `adjust` and refuses what `run` cannot do
/// yet; the error text as the user should read it.
fn load_checked(
    files: &[PathBuf],
    load_opts: &LoadOptions,
    quiet: bool,
    adjust: &dyn Fn(&mut ringlb::config::model::Config),
) -> Result<ringlb::config::model::Config, String> {
    let l = ringlb::config::load_with(files, load_opts).map_err(|e| e.to_string())?;
    if !quiet {
        for n in &l.notices {
            eprintln!("{n}");
        }
    }
    let mut cfg = l.config;
    adjust(&mut cfg);
    let unsupported = ringlb::run::unsupported(&cfg);
    if !unsupported.is_empty() {
        let name = files
            .first()
            .map(|f| f.display().to_string())
            .unwrap_or_default();
        let lines: Vec<String> = unsupported.iter().map(|u| format!("{name}: {u}")).collect();
        return Err(lines.join("\n"));
    }
    Ok(cfg)
}

/// Loads, refuses what `run` cannot do yet, runs (or becomes a master, or
/// runs as a master's worker). `adjust` edits the loaded config (HAProxy's
/// `-db`, `-N`); a master applies it again on every reload.
pub(crate) fn run_with(
    files: &[PathBuf],
    load_opts: &LoadOptions,
    mut opts: ringlb::run::RunOptions,
    quiet: bool,
    launch: Launch,
    adjust: impl Fn(&mut ringlb::config::model::Config),
) -> ExitCode {
    let worker = ringlb::master::worker_channel_from_env();
    // A worker's notices were already printed by its master.
    let quiet = quiet || worker.is_some();
    let cfg = match load_checked(files, load_opts, quiet, &adjust) {
        Ok(c) => c,
        Err(e) => {
            eprintln!("{e}");
            return ExitCode::from(1);
        }
    };
    if !quiet {
        for w in ringlb::config::warnings(&cfg) {
            eprintln!("{w}");
        }
        for w in ringlb::kernel::startup_warnings(&cfg) {
            eprintln!("{w}");
        }
    }
    if launch.no_root && ringlb::sys::privs::is_root() && cfg.global.user.is_none() {
        eprintln!(
            "ringlb: --no-root: refusing to run as root with no user to become; set 'user' \
             (or 'uid') in global, or run as an unprivileged user"
        );
        return ExitCode::from(1);
    }
    let result = match worker {
        Some(Ok(ch)) => {
            opts.worker = Some(std::sync::Arc::new(ch));
            ringlb::run::run(cfg, opts)
        }
        Some(Err(e)) => Err(ringlb::run::RunError::Io("cannot reach the master", e)),
        None if launch.master_worker || cfg.global.master_worker => {
            let loader = || load_checked(files, load_opts, quiet, &adjust);
            let mopts = ringlb::master::MasterOptions {
                pidfile: opts.pidfile.clone(),
                daemon: opts.daemon,
                shards: opts.shards,
                worker_args: launch.worker_args,
                quiet: opts.quiet,
                cli: launch.master_cli,
            };
            ringlb::master::run(&loader, cfg, mopts)
        }
        None if launch.master_cli.is_some() => {
            eprintln!("ringlb: -S / --master-socket: the master CLI needs master-worker (-W, or master-worker in the configuration)");
            return ExitCode::from(1);
        }
        None => ringlb::run::run(cfg, opts),
    };
    match result {
        Ok(()) => ExitCode::SUCCESS,
        Err(e) => {
            eprintln!("ringlb: {e}");
            ExitCode::from(2)
        }
    }
}
