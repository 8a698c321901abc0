//! Property tests for the sans-io core: arbitrary bytes and mutated valid
//! messages (seeds in `tests/corpus/http/`) are fed to the request and response
//! readers at random split points, the way a shard gets them from the network.
//! Nothing may panic, and what the readers report — each head, where each
//! message ends, the error or the verdict at EOF — must not depend on where the
//! reads split the bytes. Every accepted head is also rewritten (`rewrite`) and
//! read back: the forwarded head must frame the message exactly as the original.
//! Bounded by a fixed number of cases and a fixed seed.

use std::time::Instant;

use proptest::prelude::*;
use proptest::test_runner::{Config, RngAlgorithm, TestRng, TestRunner};

use super::head::{HeadParser, Limits, Method, Parsed, RequestHead, ResponseHead};
use super::message::{Event, HttpError, RequestReader, ResponseReader};
use super::rewrite::{write_request, write_response, ForwardFor, HttpMode, RequestContext};
use super::validate::{check_request, check_response, BodyKind, RequestInfo, ResponseInfo};

/// What a reader reported, with data and framing merged into a byte count so
/// that only split-independent facts remain.
#[derive(Debug, Clone, PartialEq, Eq)]
enum Rec {
    RequestHead {
        at: usize,
        len: usize,
        method: Method,
        target: Vec<u8>,
        info: RequestInfo,
    },
    ResponseHead {
        at: usize,
        len: usize,
        status: u16,
        info: ResponseInfo,
    },
    End {
        at: usize,
        body: usize,
    },
    Error(HttpError),
    Eof(Result<(), HttpError>, usize),
}

/// Small limits so the fuzzer reaches them.
fn limits() -> Limits {
    Limits {
        max_head: 512,
        max_headers: 16,
    }
}

trait Reader {
    fn step(&mut self, input: &[u8], heads: usize) -> Result<Event, HttpError>;
    fn head_rec(&self, input: &[u8], at: usize, len: usize) -> Rec;
    fn eof(&mut self, unconsumed: usize) -> Result<(), HttpError>;
}

struct Req(RequestReader);

impl Reader for Req {
    fn step(&mut self, input: &[u8], _: usize) -> Result<Event, HttpError> {
        self.0.next(input, Instant::now())
    }
    fn head_rec(&self, input: &[u8], at: usize, len: usize) -> Rec {
        let h = self.0.head();
        request_round_trip(h, self.0.info().unwrap(), input, at);
        Rec::RequestHead {
            at,
            len,
            method: h.method,
            target: h.target.get(input).to_vec(),
            info: *self.0.info().unwrap(),
        }
    }
    fn eof(&mut self, unconsumed: usize) -> Result<(), HttpError> {
        self.0.on_eof(unconsumed)
    }
}

/// A response reader answering requests whose methods come from `head_mask`
/// (bit i set: the i-th head answers a HEAD request).
struct Resp(ResponseReader, u32);

impl Reader for Resp {
    fn step(&mut self, input: &[u8], heads: usize) -> Result<Event, HttpError> {
        let head = self.1.checked_shr(heads as u32).unwrap_or(0) & 1 == 1;
        self.0.expect(if head { Method::Head } else { Method::Get });
        self.0.next(input, Instant::now())
    }
    fn head_rec(&self, input: &[u8], at: usize, len: usize) -> Rec {
        response_round_trip(self.0.head(), self.0.info().unwrap(), input, at);
        Rec::ResponseHead {
            at,
            len,
            status: self.0.head().status,
            info: *self.0.info().unwrap(),
        }
    }
    fn eof(&mut self, unconsumed: usize) -> Result<(), HttpError> {
        self.0.on_eof(unconsumed)
    }
}

/// Room for what a rewrite adds (one `X-Forwarded-For` line).
fn roomy() -> Limits {
    Limits {
        max_head: 1 << 16,
        max_headers: 1024,
    }
}

/// The head we forward for an accepted request parses back, passes the same
/// checks and frames the body the same way: rewriting never creates a second
/// reading of the message.
fn request_round_trip(h: &RequestHead, info: &RequestInfo, input: &[u8], seed: usize) {
    let modes = [HttpMode::KeepAlive, HttpMode::ServerClose, HttpMode::Close];
    let ff = ForwardFor::default();
    let ctx = RequestContext {
        mode: modes[seed % 3],
        forward_for: Some(&ff),
        client: "192.0.2.7".parse().unwrap(),
    };
    let mut out = Vec::new();
    write_request(h, info, input, &ctx, &mut out);
    let mut again = RequestHead::default();
    let parsed = HeadParser::new(roomy()).parse_request(&out, Instant::now(), &mut again);
    assert_eq!(
        parsed,
        Ok(Parsed::Complete(out.len())),
        "{:?}",
        String::from_utf8_lossy(&out)
    );
    let info2 = check_request(&again, &out).expect("rewritten request is valid");
    assert_eq!(info2.body, info.body, "{:?}", String::from_utf8_lossy(&out));
    assert_eq!(info2.upgrade, info.upgrade);
    assert!(!info2.strip_content_length);
    assert_eq!(
        (again.method, again.target.get(&out)),
        (h.method, h.target.get(input))
    );
}

/// Likewise for the response head sent to the client.
fn response_round_trip(h: &ResponseHead, info: &ResponseInfo, input: &[u8], seed: usize) {
    let mut out = Vec::new();
    let version = h.version;
    write_response(h, info, input, version, seed.is_multiple_of(2), &mut out);
    let mut again = ResponseHead::default();
    let parsed = HeadParser::new(roomy()).parse_response(&out, Instant::now(), &mut again);
    assert_eq!(
        parsed,
        Ok(Parsed::Complete(out.len())),
        "{:?}",
        String::from_utf8_lossy(&out)
    );
    // The method only matters through the body kind, which `info` already has.
    let method =
        if info.body == BodyKind::None && !info.interim && h.status != 204 && h.status != 304 {
            Method::Head
        } else {
            Method::Get
        };
    let info2 = check_response(&again, &out, method).expect("rewritten response is valid");
    assert_eq!(info2.body, info.body, "{:?}", String::from_utf8_lossy(&out));
    assert_eq!(again.status, h.status);
    assert!(!info2.strip_content_length);
}

/// Delivers `input` in pieces ending at `cuts` (sorted, then the end), keeps the
/// unconsumed bytes between reads as a shard does, and records what happened.
fn drive(reader: &mut dyn Reader, input: &[u8], cuts: &[usize]) -> Vec<Rec> {
    let mut ends: Vec<usize> = cuts.iter().map(|&c| c.min(input.len())).collect();
    ends.sort_unstable();
    ends.push(input.len());
    let mut recs = Vec::new();
    let (mut consumed, mut body, mut heads) = (0, 0, 0);
    for received in ends {
        loop {
            let pending = &input[consumed..received];
            let ev = match reader.step(pending, heads) {
                Ok(ev) => ev,
                Err(e) => {
                    recs.push(Rec::Error(e));
                    return recs;
                }
            };
            match ev {
                Event::NeedMore => break,
                Event::Head { len } => {
                    assert!(len <= pending.len());
                    recs.push(reader.head_rec(pending, consumed, len));
                    heads += 1;
                    consumed += len;
                }
                Event::Data { len } | Event::Framing { len } => {
                    assert!(len > 0 && len <= pending.len());
                    body += len;
                    consumed += len;
                }
                Event::End { len } => {
                    assert!(len <= pending.len());
                    body += len;
                    consumed += len;
                    recs.push(Rec::End { at: consumed, body });
                    body = 0;
                }
            }
        }
    }
    recs.push(Rec::Eof(reader.eof(input.len() - consumed), body));
    recs
}

fn requests(input: &[u8], cuts: &[usize]) -> Vec<Rec> {
    drive(&mut Req(RequestReader::new(limits())), input, cuts)
}

fn responses(input: &[u8], cuts: &[usize], head_mask: u32) -> Vec<Rec> {
    drive(
        &mut Resp(ResponseReader::new(limits()), head_mask),
        input,
        cuts,
    )
}

fn corpus() -> Vec<(String, Vec<u8>)> {
    let dir = concat!(env!("CARGO_MANIFEST_DIR"), "/tests/corpus/http");
    let mut seeds: Vec<(String, Vec<u8>)> = std::fs::read_dir(dir)
        .expect("tests/corpus/http")
        .map(|e| {
            let path = e.unwrap().path();
            let name = path.file_name().unwrap().to_string_lossy().into_owned();
            (name, std::fs::read(&path).unwrap())
        })
        .collect();
    seeds.sort();
    seeds
}

/// Interesting bytes for insertions: the ones HTTP/1.1 framing turns on.
const TOKENS: &[u8] = b"\r\n:;, \t0aF\x00-+\x7f\x80/H";

#[derive(Debug, Clone)]
enum Mutation {
    Flip(usize, u8),
    Insert(usize, u8),
    Delete(usize, usize),
    Duplicate(usize, usize),
}

fn mutation() -> impl Strategy<Value = Mutation> {
    prop_oneof![
        (any::<usize>(), any::<u8>()).prop_map(|(p, b)| Mutation::Flip(p, b)),
        (any::<usize>(), 0..TOKENS.len()).prop_map(|(p, i)| Mutation::Insert(p, TOKENS[i])),
        (any::<usize>(), 1usize..8).prop_map(|(p, n)| Mutation::Delete(p, n)),
        (any::<usize>(), 1usize..32).prop_map(|(p, n)| Mutation::Duplicate(p, n)),
    ]
}

fn mutate(mut bytes: Vec<u8>, muts: &[Mutation]) -> Vec<u8> {
    for m in muts {
        let len = bytes.len().max(1);
        match *m {
            Mutation::Flip(p, b) if !bytes.is_empty() => bytes[p % len] = b,
            Mutation::Insert(p, b) => bytes.insert(p % (bytes.len() + 1), b),
            Mutation::Delete(p, n) if !bytes.is_empty() => {
                let at = p % len;
                let end = (at + n).min(bytes.len());
                bytes.drain(at..end);
            }
            Mutation::Duplicate(p, n) if !bytes.is_empty() => {
                let at = p % len;
                let end = (at + n).min(bytes.len());
                let copy = bytes[at..end].to_vec();
                bytes.splice(end..end, copy);
            }
            _ => {}
        }
    }
    bytes
}

/// `RINGLB_FUZZ_SCALE=N` multiplies every case count (a longer run, e.g.
/// `RINGLB_FUZZ_SCALE=100 cargo test --release --lib http::fuzz`) and
/// `RINGLB_FUZZ_SEED=N` changes the seed; the defaults keep `cargo test` to a
/// few seconds and repeatable.
fn runner(cases: u32) -> TestRunner {
    let env = |name: &str| std::env::var(name).ok().and_then(|v| v.parse::<u32>().ok());
    let scale = env("RINGLB_FUZZ_SCALE").unwrap_or(1).max(1);
    let config = Config {
        cases: cases.saturating_mul(scale),
        failure_persistence: None,
        ..Config::default()
    };
    let mut seed = [0x5e; 32];
    if let Some(n) = env("RINGLB_FUZZ_SEED") {
        seed[..4].copy_from_slice(&n.to_le_bytes());
    }
    TestRunner::new_with_rng(config, TestRng::from_seed(RngAlgorithm::ChaCha, &seed))
}

#[test]
fn corpus_messages_are_valid_whole_and_byte_by_byte() {
    let seeds = corpus();
    assert!(seeds.len() >= 10, "{} seeds", seeds.len());
    for (name, bytes) in &seeds {
        let whole = if name.starts_with("req") {
            requests(bytes, &[])
        } else {
            responses(bytes, &[], 0)
        };
        assert!(
            matches!(whole.last(), Some(Rec::Eof(Ok(()), _))),
            "{name}: {whole:?}"
        );
        // Every message ends, the close-delimited response at EOF.
        let ends = whole
            .iter()
            .filter(|r| matches!(r, Rec::End { .. }))
            .count();
        assert_eq!(ends == 0, name == "resp-close.http", "{name}: {whole:?}");
        let every: Vec<usize> = (0..bytes.len()).collect();
        let split = if name.starts_with("req") {
            requests(bytes, &every)
        } else {
            responses(bytes, &every, 0)
        };
        assert_eq!(whole, split, "{name}");
    }
    // Concrete checks that the harness itself sees what it should.
    let (_, pipelined) = seeds.iter().find(|s| s.0 == "req-pipelined.http").unwrap();
    let recs = requests(pipelined, &[]);
    let heads = recs
        .iter()
        .filter(|r| matches!(r, Rec::RequestHead { .. }))
        .count();
    assert_eq!(heads, 3);
    assert_eq!(
        recs.last(),
        Some(&Rec::Eof(Ok(()), 0)),
        "pipelined ends cleanly"
    );
    let (_, cont) = seeds.iter().find(|s| s.0 == "resp-continue.http").unwrap();
    let recs = responses(cont, &[], 0);
    assert!(matches!(recs[0], Rec::ResponseHead { status: 100, .. }));
    assert!(matches!(recs[2], Rec::ResponseHead { status: 201, .. }));
}

#[test]
fn arbitrary_bytes_never_panic_and_splits_agree() {
    let mut runner = runner(5000);
    let strategy = (
        proptest::collection::vec(any::<u8>(), 0..700),
        proptest::collection::vec(any::<usize>(), 0..12),
        any::<u32>(),
    );
    runner
        .run(&strategy, |(bytes, cuts, mask)| {
            let cuts: Vec<usize> = cuts.iter().map(|c| c % (bytes.len() + 1)).collect();
            prop_assert_eq!(requests(&bytes, &[]), requests(&bytes, &cuts));
            prop_assert_eq!(responses(&bytes, &[], mask), responses(&bytes, &cuts, mask));
            Ok(())
        })
        .unwrap();
}

#[test]
fn mutated_messages_never_panic_and_splits_agree() {
    let seeds = corpus();
    let mut runner = runner(20000);
    let strategy = (
        0..seeds.len(),
        0..seeds.len(),
        proptest::collection::vec(mutation(), 0..6),
        proptest::collection::vec(any::<usize>(), 0..16),
        any::<u32>(),
    );
    runner
        .run(&strategy, |(a, b, muts, cuts, mask)| {
            // Two seeds back to back: pipelining across message kinds.
            let joined = [seeds[a].1.as_slice(), seeds[b].1.as_slice()].concat();
            let bytes = mutate(joined, &muts);
            let cuts: Vec<usize> = cuts.iter().map(|c| c % (bytes.len() + 1)).collect();
            prop_assert_eq!(requests(&bytes, &[]), requests(&bytes, &cuts));
            prop_assert_eq!(responses(&bytes, &[], mask), responses(&bytes, &cuts, mask));
            Ok(())
        })
        .unwrap();
}

#[test]
fn split_points_never_change_valid_pipelines() {
    let seeds = corpus();
    let reqs: Vec<&Vec<u8>> = seeds
        .iter()
        .filter(|s| s.0.starts_with("req") && s.0 != "req-upgrade.http")
        .map(|s| &s.1)
        .collect();
    let mut runner = runner(500);
    let strategy = (
        proptest::collection::vec(0..reqs.len(), 1..5),
        proptest::collection::vec(any::<usize>(), 0..20),
    );
    runner
        .run(&strategy, |(order, cuts)| {
            let bytes: Vec<u8> = order
                .iter()
                .flat_map(|&i| reqs[i].iter().copied())
                .collect();
            let cuts: Vec<usize> = cuts.iter().map(|c| c % (bytes.len() + 1)).collect();
            let whole = requests(&bytes, &[]);
            prop_assert!(
                matches!(whole.last(), Some(Rec::Eof(Ok(()), _))),
                "{:?}",
                whole
            );
            prop_assert_eq!(whole, requests(&bytes, &cuts));
            Ok(())
        })
        .unwrap();
}
