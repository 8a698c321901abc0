//! Server-state broadcast, in process: events sent the way the control shard
//! sends them (channel + eventfd wake per shard) are applied by every data
//! shard, in order. The per-shard applied-events counter says when they are in;
//! traffic through both shards then shows the final state took effect.

mod support;

use std::sync::atomic::Ordering;
use std::sync::Arc;
use std::time::{Duration, Instant};

use ringlb::log::Logger;
use ringlb::shard::{self, Shards};
use ringlb::state::{ServerEvent, ServerState, ShardMsg};
use support::*;

#[test]
fn every_shard_applies_every_event_in_order() {
    let a = TestServer::start("a", Behaviour::Hello);
    let b = TestServer::start("b", Behaviour::Hello);
    let port = free_port();
    let text = Cfg::new()
        .timeouts("2s", "10s", "10s")
        .listen(
            Proxy::new("l")
                .port(port)
                .server("a", a.addr)
                .server("b", b.addr),
        )
        .build();
    let cfg = ringlb::config::parse_str(&text, std::path::Path::new("t.toml")).unwrap();
    let listeners = shard::bind_all(&cfg, 2).unwrap();
    let shards = Shards::start(Arc::new(cfg), listeners, Logger::disabled()).unwrap();
    let shared = shards.shared.clone();
    // 21 transitions of server a, ending DOWN: a shard that applied them out of
    // order, or missed one, ends with a different state.
    let n = 21u64;
    for i in 0..n {
        let state = if i % 2 == 0 {
            ServerState::Down
        } else {
            ServerState::Up
        };
        for inbox in &shared.inboxes {
            inbox.send(ShardMsg::Server(ServerEvent {
                backend: 0,
                server: 0,
                state,
                weight: None,
            }));
        }
    }
    // Spin on the counters (bounded): no sleep decides the outcome.
    let t0 = Instant::now();
    while !shared
        .events_applied
        .iter()
        .all(|c| c.0.load(Ordering::Acquire) == n)
    {
        assert!(
            t0.elapsed() < Duration::from_secs(10),
            "events not applied by every shard: {:?}",
            shared
                .events_applied
                .iter()
                .map(|c| c.0.load(Ordering::Acquire))
                .collect::<Vec<_>>()
        );
        std::hint::spin_loop();
    }
    // Sessions through both shards' listeners all reach b: a is DOWN on both.
    for _ in 0..20 {
        let mut c = std::net::TcpStream::connect(("127.0.0.1", port)).unwrap();
        c.set_read_timeout(Some(Duration::from_secs(5))).unwrap();
        assert_eq!(read_line(&mut c), "b");
    }
    assert_eq!(a.accepted(), 0);
    shards.stop();
    shards.join(Some(Instant::now() + Duration::from_secs(2)));
}
