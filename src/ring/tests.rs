//! Unit tests of the runtime on a real ring: the executor runs tasks and yields,
//! poll and accept ops complete, a dropped op is orphaned safely (its accepted
//! fds closed, its owned buffer kept until the kernel is done), and a stale
//! `user_data` never reaches a reused slot.

use std::cell::Cell;
use std::io::{Read, Write};
use std::net::{TcpListener, TcpStream};
use std::os::fd::AsRawFd;
use std::rc::Rc;
use std::time::{Duration, Instant};

use super::reactor::{self, OpKey};
use super::*;

fn rt<T: 'static>(f: impl std::future::Future<Output = T> + 'static) -> T {
    block_on(RingConfig { entries: 64 }, f).expect("io_uring available")
}

#[test]
fn executor_runs_spawned_tasks_and_yields_between_them() {
    let order = rt(async {
        let log = Rc::new(std::cell::RefCell::new(Vec::new()));
        for id in 0..3 {
            let log = log.clone();
            spawn(async move {
                log.borrow_mut().push(id);
                yield_now().await;
                log.borrow_mut().push(10 + id);
            });
        }
        // Let every task run both halves.
        for _ in 0..4 {
            yield_now().await;
        }
        let v = log.borrow().clone();
        v
    });
    assert_eq!(
        order,
        [0, 1, 2, 10, 11, 12],
        "round robin, each yield lets the others run"
    );
}

#[test]
fn user_data_carries_index_and_generation() {
    let k = OpKey { index: 7, gen: 3 };
    assert_eq!(OpKey::from_user_data(k.user_data()), k);
    assert_ne!(k.user_data(), u64::MAX, "never the cancel marker");
}

#[test]
fn a_reused_slot_gets_a_new_generation_and_ignores_stale_keys() {
    rt(async {
        let l = TcpListener::bind("127.0.0.1:0").unwrap();
        let fd = l.as_raw_fd();
        // First op: a poll that we drop at once (orphaned, cancelled).
        let first = {
            let mut p = PollMulti::new(fd, events::IN);
            let _ = futures_lite::future::poll_once(p.next()).await;
            drop(p);
            // Let the cancel complete and the slot be freed.
            let t = Instant::now();
            while reactor::with(|r| r.ops_in_flight()) > 0 && t.elapsed() < Duration::from_secs(5) {
                sleep_until(Instant::now() + Duration::from_millis(1)).await;
            }
            assert_eq!(
                reactor::with(|r| r.ops_in_flight()),
                0,
                "orphan freed by its final CQE"
            );
            OpKey { index: 0, gen: 1 }
        };
        let mut p = PollMulti::new(fd, events::IN);
        let _ = futures_lite::future::poll_once(p.next()).await;
        // The new op reuses slot 0 with a later generation: the old key is stale.
        reactor::with(|r| {
            r.release(first);
            r.orphan(first);
            assert_eq!(r.ops_in_flight(), 1, "a stale key touches nothing");
        });
        drop(p);
    });
}

#[test]
fn poll_once_reports_readiness() {
    rt(async {
        let l = TcpListener::bind("127.0.0.1:0").unwrap();
        let mut c = TcpStream::connect(l.local_addr().unwrap()).unwrap();
        let (s, _) = l.accept().unwrap();
        c.write_all(b"x").unwrap();
        let ev = poll_once(s.as_raw_fd(), events::IN).await.unwrap();
        assert_ne!(ev & events::IN, 0);
    });
}

#[test]
fn accept_multi_delivers_every_connection() {
    rt(async {
        let l = TcpListener::bind("127.0.0.1:0").unwrap();
        let addr = l.local_addr().unwrap();
        let clients: Vec<TcpStream> = (0..5).map(|_| TcpStream::connect(addr).unwrap()).collect();
        let mut acc = accept_multi(l.as_raw_fd());
        for _ in 0..5 {
            let fd = acc.next().await.unwrap().unwrap();
            assert!(fd.as_raw_fd() > 2);
        }
        drop(clients);
    });
}

#[test]
fn a_dropped_accept_closes_the_connections_it_had_queued() {
    let l = TcpListener::bind("127.0.0.1:0").unwrap();
    let addr = l.local_addr().unwrap();
    let lfd = l.as_raw_fd();
    let mut clients = rt(async move {
        let mut acc = accept_multi(lfd);
        let first = TcpStream::connect(addr).unwrap();
        let _ = acc.next().await.unwrap().unwrap();
        // Two more arrive while nobody takes them from the op.
        let more: Vec<TcpStream> = (0..2).map(|_| TcpStream::connect(addr).unwrap()).collect();
        let t = Instant::now();
        while t.elapsed() < Duration::from_secs(5) {
            reactor::with(|r| r.reap());
            sleep_until(Instant::now() + Duration::from_millis(1)).await;
            if more.iter().all(|_| true) && t.elapsed() > Duration::from_millis(50) {
                break;
            }
        }
        drop(acc);
        drop(first);
        more
    });
    for c in clients.iter_mut() {
        c.set_read_timeout(Some(Duration::from_secs(5))).unwrap();
        let mut b = [0u8; 1];
        match c.read(&mut b) {
            Ok(0) => {}
            Err(e) if e.kind() == std::io::ErrorKind::ConnectionReset => {}
            other => panic!("a connection the dropped accept held must be closed: {other:?}"),
        }
    }
}

#[test]
fn an_owned_recv_keeps_its_buffer_until_the_kernel_is_done() {
    rt(async {
        let l = TcpListener::bind("127.0.0.1:0").unwrap();
        let mut c = TcpStream::connect(l.local_addr().unwrap()).unwrap();
        let (s, _) = l.accept().unwrap();
        // Submitted, then dropped before any byte arrives: the buffer stays in
        // the slot until the cancel's completion.
        let mut r = recv_owned(s.as_raw_fd(), vec![0u8; 64]);
        let pending = futures_lite::future::poll_once(&mut r).await;
        assert!(pending.is_none());
        drop(r);
        let t = Instant::now();
        while reactor::with(|r| r.ops_in_flight()) > 0 && t.elapsed() < Duration::from_secs(5) {
            sleep_until(Instant::now() + Duration::from_millis(1)).await;
        }
        assert_eq!(reactor::with(|r| r.ops_in_flight()), 0);
        // A recv that completes hands the buffer back with the bytes. (Bytes
        // written before a cancel lands may go to the cancelled recv: that is
        // why the pump reads with plain syscalls after a poll.)
        c.write_all(b"late").unwrap();
        let (n, buf) = recv_owned(s.as_raw_fd(), vec![0u8; 64]).await;
        assert_eq!(&buf[..n.unwrap()], b"late");
        assert_eq!(buf.len(), 64, "the same buffer comes back");
    });
}

#[test]
fn deadlines_fire_and_cancelled_work_is_dropped() {
    let fired = rt(async {
        let hit = Rc::new(Cell::new(false));
        let h = hit.clone();
        let never = std::future::pending::<()>();
        let r = with_deadline(Some(Instant::now() + Duration::from_millis(20)), never).await;
        h.set(r.is_none());
        hit.get()
    });
    assert!(fired);
}

/// (the test's end, the ring's end, non-blocking) of a loopback connection.
fn tcp_pair() -> (TcpStream, TcpStream) {
    let l = TcpListener::bind("127.0.0.1:0").unwrap();
    let a = TcpStream::connect(l.local_addr().unwrap()).unwrap();
    let (b, _) = l.accept().unwrap();
    b.set_nonblocking(true).unwrap();
    (a, b)
}

async fn next_recv(r: &mut RecvMulti) -> Option<std::io::Result<Received>> {
    std::future::poll_fn(|cx| r.poll_recv(cx)).await
}

#[test]
fn multishot_recv_fills_provided_buffers_and_send_chunk_forwards_them() {
    rt(async {
        setup_buffers(8, 4096).unwrap();
        assert_eq!(buffer_size(), 4096);
        let (mut peer, ours) = tcp_pair();
        let (mut sink, out) = tcp_pair();
        let mut r = recv_multi(ours.as_raw_fd());
        let mut got = Vec::new();
        for msg in [&b"hello "[..], b"world"] {
            peer.write_all(msg).unwrap();
            let Some(Ok(Received::Data(c))) = next_recv(&mut r).await else {
                panic!("expected data")
            };
            with_chunk(&c, |b| got.extend_from_slice(b));
            let (n, c, off) = send_chunk(out.as_raw_fd(), c, 0).await;
            assert_eq!(off, 0);
            assert_eq!(n.unwrap(), c.len());
        }
        assert_eq!(got, b"hello world");
        let mut b = [0u8; 11];
        sink.read_exact(&mut b).unwrap();
        assert_eq!(&b, b"hello world");
        drop(peer);
        assert!(matches!(next_recv(&mut r).await, Some(Ok(Received::Eof))));
        assert!(next_recv(&mut r).await.is_none(), "ended after EOF");
    });
}

#[test]
fn a_dry_buffer_ring_ends_the_recv_with_enobufs_and_loses_nothing() {
    rt(async {
        setup_buffers(2, 1024).unwrap();
        let (mut peer, ours) = tcp_pair();
        let mut r = recv_multi(ours.as_raw_fd());
        let mut held = Vec::new();
        let mut got = Vec::new();
        // Two buffers, kept: the third message finds the ring dry.
        for i in 0..3u8 {
            peer.write_all(&[b'a' + i; 10]).unwrap();
            match next_recv(&mut r).await {
                Some(Ok(Received::Data(c))) => {
                    with_chunk(&c, |b| got.extend_from_slice(b));
                    held.push(c);
                }
                Some(Err(e)) => {
                    assert_eq!(e.raw_os_error(), Some(libc::ENOBUFS));
                    break;
                }
                other => panic!("{other:?}"),
            }
        }
        assert_eq!(held.len(), 2);
        // Give them back; wait until the ring has them, then re-arm and read on.
        drop(held);
        std::future::poll_fn(|cx| {
            wait_for_buffers(cx);
            std::task::Poll::Ready(())
        })
        .await;
        yield_now().await;
        while got.len() < 30 {
            match next_recv(&mut r).await {
                Some(Ok(Received::Data(c))) => with_chunk(&c, |b| got.extend_from_slice(b)),
                Some(Err(e)) if e.raw_os_error() == Some(libc::ENOBUFS) => {
                    sleep_until(Instant::now() + Duration::from_millis(1)).await
                }
                other => panic!("{other:?}"),
            }
        }
        let want: Vec<u8> = [b'a'; 10]
            .iter()
            .chain(&[b'b'; 10])
            .chain(&[b'c'; 10])
            .copied()
            .collect();
        assert_eq!(got, want, "no byte lost to the dry ring");
    });
}
