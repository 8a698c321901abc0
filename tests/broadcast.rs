//! Server-state broadcast, in process: an event sent the way the control shard
//! sends it (channel + eventfd wake per shard) is applied by every data shard;
//! the per-shard applied-events counter shows when, with no sleep involved.

use std::sync::atomic::Ordering;
use std::sync::Arc;
use std::time::{Duration, Instant};

use ringlb::log::Logger;
use ringlb::shard::{self, Shards};
use ringlb::state::ShardMsg;
use ringlb::state::{ServerEvent, ServerState};

#[test]
fn every_shard_applies_a_transition_within_10_ms() {
    let port = std::net::TcpListener::bind("127.0.0.1:0")
        .unwrap()
        .local_addr()
        .unwrap()
        .port();
    let text = format!(
        "[[listen]]\nname = \"l\"\nbind = [\"127.0.0.1:{port}\"]\nservers = [{{ name = \"s\", address = \"127.0.0.1:9\" }}]\n"
    );
    let cfg = ringlb::config::parse_str(&text, std::path::Path::new("t.toml")).unwrap();
    let listeners = shard::bind_all(&cfg, 2).unwrap();
    let shards = Shards::start(Arc::new(cfg), listeners, Logger::disabled()).unwrap();
    let shared = shards.shared.clone();
    let mut delays = Vec::new();
    for i in 0..20u64 {
        let state = if i % 2 == 0 {
            ServerState::Down
        } else {
            ServerState::Up
        };
        let t0 = Instant::now();
        for inbox in &shared.inboxes {
            inbox.send(ShardMsg::Server(ServerEvent {
                backend: 0,
                server: 0,
                state,
                weight: None,
            }));
        }
        // Spin on the counters (bounded): no sleep decides the outcome.
        loop {
            let done = shared
                .events_applied
                .iter()
                .all(|c| c.0.load(Ordering::Acquire) == i + 1);
            if done {
                break;
            }
            assert!(
                t0.elapsed() < Duration::from_secs(5),
                "event {i} not applied by every shard"
            );
            std::hint::spin_loop();
        }
        delays.push(t0.elapsed());
    }
    delays.sort();
    let median = delays[delays.len() / 2];
    assert!(
        median < Duration::from_millis(10),
        "median {median:?}, all {delays:?}"
    );
    shards.stop();
    shards.join(Some(Instant::now() + Duration::from_secs(2)));
}
