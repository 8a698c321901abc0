//! A real client and a real server: `redis-benchmark` through ringlb to
//! `redis-server`, with zero errors, and `redis-cli` round trips.

mod support;

use std::process::Command;

use support::servers::RedisServer;
use support::*;

#[test]
fn redis_benchmark_through_ringlb_has_no_errors() {
    let redis = RedisServer::start(&[]);
    let port = free_port();
    let cfg = Cfg::new()
        .mode("tcp")
        .timeouts("2s", "30s", "30s")
        .listen(
            Proxy::new("redis")
                .port(port)
                .server("r1", format!("127.0.0.1:{}", redis.port)),
        )
        .build();
    let _lb = Ringlb::start(&cfg, &["--shards", "2"]);
    let out = Command::new("redis-cli")
        .args(["-p", &port.to_string(), "SET", "ringlb", "works"])
        .output()
        .unwrap();
    assert_eq!(String::from_utf8_lossy(&out.stdout).trim(), "OK");
    let out = Command::new("redis-cli")
        .args(["-p", &port.to_string(), "GET", "ringlb"])
        .output()
        .unwrap();
    assert_eq!(String::from_utf8_lossy(&out.stdout).trim(), "works");
    let out = Command::new("redis-benchmark")
        .args([
            "-p",
            &port.to_string(),
            "-t",
            "get,set",
            "-n",
            "20000",
            "-c",
            "50",
            "-P",
            "4",
            "--csv",
        ])
        .output()
        .unwrap();
    let stdout = String::from_utf8_lossy(&out.stdout);
    let stderr = String::from_utf8_lossy(&out.stderr);
    assert!(
        out.status.success(),
        "redis-benchmark failed: {stdout}\n{stderr}"
    );
    assert!(!stderr.to_lowercase().contains("error"), "{stderr}");
    assert!(
        stdout.contains("\"SET\"") && stdout.contains("\"GET\""),
        "{stdout}"
    );
    // Every request reached the real server.
    let info = Command::new("redis-cli")
        .args(["-p", &redis.port.to_string(), "INFO", "stats"])
        .output()
        .unwrap();
    let info = String::from_utf8_lossy(&info.stdout);
    let processed: u64 = info
        .lines()
        .find_map(|l| l.strip_prefix("total_commands_processed:"))
        .map(|v| v.trim().parse().unwrap())
        .unwrap();
    assert!(
        processed >= 40_000,
        "redis processed only {processed} commands"
    );
}
