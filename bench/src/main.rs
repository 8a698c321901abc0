//! `ringlb-bench`: load generator and target server for measuring ringlb side by
//! side with HAProxy. Modes: `throughput`, `rr`, `connrate`, `handshake` (TLS),
//! `idle`, `serve`.
//! Each measuring mode prints a table, or one JSON object with `--json`.

mod args;
mod connrate;
mod evloop;
mod handshake;
mod idle;
mod progress;
mod report;
mod rr;
mod serve;
mod throughput;

use std::process::ExitCode;
use std::time::Duration;

use args::Args;
use progress::Progress;

const USAGE: &str = "usage: ringlb-bench MODE [--json] [options]
  throughput --addr A [--streams N] [--duration D] [--direction up|down|both] [--target 10gbit]
  rr         --addr A [--conns M] [--duration D] [--size BYTES] [--pipeline P]
  connrate   --addr A [--conns C] [--duration D]
  handshake  --addr A [--connections N] [--duration D] [--resume] [--tls 1.2|1.3] [--sni NAME]
  idle       --addr A --pid PID [--conns K] [--hold D]
  serve      --listen A [--mode sink|echo|source]";

fn main() -> ExitCode {
    let argv: Vec<String> = std::env::args().skip(1).collect();
    match run(&argv) {
        Ok(()) => ExitCode::SUCCESS,
        Err(e) => {
            eprintln!("ringlb-bench: {e}\n{USAGE}");
            ExitCode::from(2)
        }
    }
}

fn target(s: &str) -> Result<f64, String> {
    let n = s.trim_end_matches("gbit").trim_end_matches("g");
    n.parse()
        .map_err(|_| format!("--target: \"{s}\" is not a rate like 10gbit"))
}

fn run(argv: &[String]) -> Result<(), String> {
    let (mode, rest) = argv.split_first().ok_or("no mode given")?;
    let a = Args::parse(rest)?;
    let json = a.flag("json");
    let progress = Progress::new(json);
    let d = |def| a.duration("duration", Duration::from_secs(def));
    let report = match mode.as_str() {
        "throughput" => throughput::run(
            &throughput::Options {
                addr: a.req("addr")?.into(),
                streams: a.num("streams", 1)? as usize,
                duration: d(10)?,
                direction: match a.str("direction").unwrap_or("up") {
                    "up" => throughput::Direction::Up,
                    "down" => throughput::Direction::Down,
                    "both" => throughput::Direction::Both,
                    other => return Err(format!("--direction: \"{other}\" (up, down, both)")),
                },
                target_gbit: a.str("target").map(target).transpose()?,
            },
            &progress,
        )?,
        "rr" => rr::run(
            &rr::Options {
                addr: a.req("addr")?.into(),
                conns: a.num("conns", 50)? as usize,
                duration: d(10)?,
                size: a.num("size", 64)? as usize,
                pipeline: a.num("pipeline", 1)? as usize,
            },
            &progress,
        )?,
        "connrate" => connrate::run(
            &connrate::Options {
                addr: a.req("addr")?.into(),
                concurrency: a.num("conns", 16)? as usize,
                duration: d(10)?,
            },
            &progress,
        )?,
        "handshake" => handshake::run(
            &handshake::Options {
                addr: a.req("addr")?.into(),
                connections: a.num("connections", 16)?.max(1) as usize,
                duration: d(10)?,
                resume: a.flag("resume"),
                // As the openssl s_time figures before: full handshakes in
                // TLS 1.3, resumed ones in TLS 1.2.
                version: match a.str("tls") {
                    None if a.flag("resume") => 12,
                    None | Some("1.3") => 13,
                    Some("1.2") => 12,
                    Some(v) => return Err(format!("--tls: \"{v}\" (1.2 or 1.3)")),
                },
                sni: a.str("sni").unwrap_or("bench.test").into(),
            },
            &progress,
        )?,
        "idle" => idle::run(
            &idle::Options {
                addr: a.req("addr")?.into(),
                conns: a.num("conns", 5000)? as usize,
                pid: a.req("pid")?.parse().map_err(|_| "--pid: not a number")?,
                hold: a.duration("hold", Duration::from_secs(1))?,
            },
            &progress,
        )?,
        "serve" => {
            return serve::serve(
                a.req("listen")?,
                serve::Mode::parse(a.str("mode").unwrap_or("echo"))?,
            )
        }
        other => return Err(format!("unknown mode \"{other}\"")),
    };
    if json {
        println!("{}", report.to_json());
    } else {
        print!("{}", report.to_table());
    }
    Ok(())
}
