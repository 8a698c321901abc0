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
    /// Start demo backends and a proxy in front of them; print the URL.
    Demo {
        /// Port the demo proxy listens on (127.0.0.1).
        #[arg(long, default_value_t = 8000)]
        port: u16,
    },
}

fn main() -> ExitCode {
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
        }) => {
            let run = RunArgs {
                lenient,
                format,
                ..RunArgs::default()
            };
            check(&file, &run.load_options(), "configuration is valid", false)
        }
        Some(Cmd::Run { file, run }) => run_file(&file, run),
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

fn run_file(files: &[PathBuf], args: RunArgs) -> ExitCode {
    let opts = ringlb::run::RunOptions {
        daemon: args.daemon,
        pidfile: args.pidfile.clone(),
        shards: args.shards,
        ..Default::default()
    };
    run_with(files, &args.load_options(), opts, false, |_| {})
}

/// Loads, refuses what `run` cannot do yet, runs. `adjust` edits the loaded
/// config (HAProxy's `-db`, `-N`).
pub(crate) fn run_with(
    files: &[PathBuf],
    load_opts: &LoadOptions,
    opts: ringlb::run::RunOptions,
    quiet: bool,
    adjust: impl FnOnce(&mut ringlb::config::model::Config),
) -> ExitCode {
    let Some(mut cfg) = load(files, load_opts, quiet) else {
        return ExitCode::from(1);
    };
    adjust(&mut cfg);
    if !quiet {
        for w in ringlb::config::warnings(&cfg) {
            eprintln!("{w}");
        }
        for w in ringlb::kernel::startup_warnings(&cfg) {
            eprintln!("{w}");
        }
    }
    let unsupported = ringlb::run::unsupported(&cfg);
    if !unsupported.is_empty() {
        let name = files
            .first()
            .map(|f| f.display().to_string())
            .unwrap_or_default();
        for u in unsupported {
            eprintln!("{name}: {u}");
        }
        return ExitCode::from(1);
    }
    match ringlb::run::run(cfg, opts) {
        Ok(()) => ExitCode::SUCCESS,
        Err(e) => {
            eprintln!("ringlb: {e}");
            ExitCode::from(2)
        }
    }
}
