//! The `ringlb` command line: parse arguments, call into the library, map
//! outcomes to exit codes (0 ok, 1 configuration error, 2 startup failure).

use std::path::PathBuf;
use std::process::ExitCode;

use clap::{Args, Parser, Subcommand};

#[derive(Parser)]
#[command(
    name = "ringlb",
    version,
    about = "Load balancer and reverse proxy on per-core io_uring shards"
)]
struct Cli {
    /// Configuration file (TOML); same as `ringlb run -f FILE`.
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
}

#[derive(Subcommand)]
enum Cmd {
    /// Run the proxy.
    Run {
        #[arg(short = 'f', value_name = "FILE")]
        file: PathBuf,
        #[command(flatten)]
        run: RunArgs,
    },
    /// Validate a configuration: exit 0 and "configuration is valid", or exit 1.
    Check {
        #[arg(short = 'f', value_name = "FILE")]
        file: PathBuf,
    },
    /// Start demo backends and a proxy in front of them; print the URL.
    Demo {
        /// Port the demo proxy listens on (127.0.0.1).
        #[arg(long, default_value_t = 8000)]
        port: u16,
    },
}

fn main() -> ExitCode {
    let cli = Cli::parse();
    match cli.cmd {
        Some(Cmd::Check { file }) => check(&file),
        Some(Cmd::Run { file, run }) => run_file(&file, run),
        Some(Cmd::Demo { port }) => match ringlb::demo::demo(port) {
            Ok(()) => ExitCode::SUCCESS,
            Err(e) => {
                eprintln!("ringlb demo: {e}");
                ExitCode::from(2)
            }
        },
        None => match cli.file {
            Some(file) => run_file(&file, cli.run),
            None => {
                eprintln!("ringlb: no configuration given; try `ringlb -f ringlb.toml`, `ringlb demo` or `ringlb --help`");
                ExitCode::from(1)
            }
        },
    }
}

fn check(file: &std::path::Path) -> ExitCode {
    match ringlb::config::load(file) {
        Ok(cfg) => {
            for w in ringlb::config::warnings(&cfg) {
                println!("{w}");
            }
            for w in ringlb::kernel::startup_warnings(&cfg) {
                println!("{w}");
            }
            for u in ringlb::run::unsupported(&cfg) {
                println!("warning: {u}");
            }
            println!("configuration is valid");
            ExitCode::SUCCESS
        }
        Err(e) => {
            eprintln!("{e}");
            ExitCode::from(1)
        }
    }
}

fn run_file(file: &std::path::Path, args: RunArgs) -> ExitCode {
    let cfg = match ringlb::config::load(file) {
        Ok(c) => c,
        Err(e) => {
            eprintln!("{e}");
            return ExitCode::from(1);
        }
    };
    for w in ringlb::config::warnings(&cfg) {
        eprintln!("{w}");
    }
    for w in ringlb::kernel::startup_warnings(&cfg) {
        eprintln!("{w}");
    }
    let unsupported = ringlb::run::unsupported(&cfg);
    if !unsupported.is_empty() {
        for u in unsupported {
            eprintln!("{}: {u}", file.display());
        }
        return ExitCode::from(1);
    }
    let opts = ringlb::run::RunOptions {
        daemon: args.daemon,
        pidfile: args.pidfile,
        shards: args.shards,
    };
    match ringlb::run::run(cfg, opts) {
        Ok(()) => ExitCode::SUCCESS,
        Err(e) => {
            eprintln!("ringlb: {e}");
            ExitCode::from(2)
        }
    }
}
