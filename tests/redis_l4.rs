//! A real client and a real server: `redis-benchmark` through ringlb to
//! `redis-server`, with zero errors, and `redis-cli` round trips.

mod support;

use support::servers::{redis_benchmark, redis_cli, RedisServer};
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
    assert_eq!(redis_cli(port, &["SET", "ringlb", "works"]), "OK");
    assert_eq!(redis_cli(port, &["GET", "ringlb"]), "works");
    redis_benchmark(port, &[]);
    // Every request reached the real server.
    let processed = redis.commands_processed();
    assert!(
        processed >= 40_000,
        "redis processed only {processed} commands"
    );
}
