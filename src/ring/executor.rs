//! The executor: tasks are pinned futures in a slab, woken through a shard-local
//! run queue. A waker is allocated once per task and reused for every poll. Wakers
//! must only be woken on the shard's own thread (cross-thread wakes go through an
//! eventfd); a wake from elsewhere would be lost, never unsound.

use std::cell::{Cell, RefCell};
use std::collections::VecDeque;
use std::future::Future;
use std::pin::Pin;
use std::rc::Rc;
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::Arc;
use std::task::{Context, Poll, Wake, Waker};

use super::reactor::{self, Reactor, RingConfig, RingError, REACTOR};
use super::timer;

type BoxFuture = Pin<Box<dyn Future<Output = ()>>>;

struct TaskWaker {
    id: usize,
    queued: AtomicBool,
}

impl Wake for TaskWaker {
    fn wake(self: Arc<Self>) {
        self.wake_by_ref();
    }

    fn wake_by_ref(self: &Arc<Self>) {
        if !self.queued.swap(true, Ordering::Relaxed) {
            let _ = RUN_QUEUE.try_with(|q| q.borrow_mut().push_back(self.id));
        }
    }
}

struct Task {
    future: Option<BoxFuture>,
    waker: Arc<TaskWaker>,
}

#[derive(Default)]
struct Tasks {
    slots: Vec<Option<Task>>,
    free: Vec<usize>,
}

thread_local! {
    static RUN_QUEUE: RefCell<VecDeque<usize>> = const { RefCell::new(VecDeque::new()) };
    static TASKS: RefCell<Tasks> = RefCell::new(Tasks::default());
}

/// Spawns a task on the current shard's executor.
pub fn spawn(fut: impl Future<Output = ()> + 'static) {
    let id = TASKS.with(|t| {
        let mut t = t.borrow_mut();
        let id = t.free.pop().unwrap_or_else(|| {
            t.slots.push(None);
            t.slots.len() - 1
        });
        let waker = Arc::new(TaskWaker {
            id,
            queued: AtomicBool::new(true),
        });
        t.slots[id] = Some(Task {
            future: Some(Box::pin(fut)),
            waker,
        });
        id
    });
    RUN_QUEUE.with(|q| q.borrow_mut().push_back(id));
}

fn poll_task(id: usize) {
    let taken = TASKS.with(|t| {
        let mut t = t.borrow_mut();
        match t.slots.get_mut(id).and_then(|s| s.as_mut()) {
            Some(task) => {
                task.waker.queued.store(false, Ordering::Relaxed);
                task.future
                    .take()
                    .map(|f| (f, Waker::from(task.waker.clone())))
            }
            None => None,
        }
    });
    let Some((mut fut, waker)) = taken else {
        return;
    };
    let mut cx = Context::from_waker(&waker);
    let done = fut.as_mut().poll(&mut cx).is_ready();
    TASKS.with(|t| {
        let mut t = t.borrow_mut();
        if done {
            t.slots[id] = None;
            t.free.push(id);
        } else if let Some(task) = t.slots[id].as_mut() {
            task.future = Some(fut);
        }
    });
}

/// Runs `fut` to completion on a new ring owned by this thread, together with
/// every task it spawns. Tasks still pending when `fut` finishes are dropped.
pub fn block_on<T: 'static>(
    cfg: RingConfig,
    fut: impl Future<Output = T> + 'static,
) -> Result<T, RingError> {
    let reactor = Reactor::new(cfg)?;
    REACTOR.with(|r| *r.borrow_mut() = Some(reactor));
    let out: Rc<RefCell<Option<T>>> = Rc::new(RefCell::new(None));
    let done = Rc::new(Cell::new(false));
    {
        let out = out.clone();
        let done = done.clone();
        spawn(async move {
            *out.borrow_mut() = Some(fut.await);
            done.set(true);
        });
    }
    while !done.get() {
        // Run what is runnable now; tasks woken meanwhile run in the next round,
        // after their I/O had a chance to be submitted.
        let n = RUN_QUEUE.with(|q| q.borrow().len());
        for _ in 0..n {
            let Some(id) = RUN_QUEUE.with(|q| q.borrow_mut().pop_front()) else {
                break;
            };
            poll_task(id);
            if done.get() {
                break;
            }
        }
        if done.get() {
            break;
        }
        timer::fire_expired();
        let runnable = RUN_QUEUE.with(|q| !q.borrow().is_empty());
        let res = if runnable {
            reactor::with(|r| r.submit_nowait())
        } else {
            let wait = timer::next_wait();
            reactor::with(|r| {
                r.stats.waits += 1;
                r.stats.last_wait = wait;
                r.submit_and_wait(wait)
            })
        };
        if let Err(e) = res {
            // An io_uring_enter failure other than a timeout or signal means the
            // ring is unusable; there is no way to serve on without it.
            panic!("io_uring_enter failed: {e}");
        }
        reactor::with(|r| {
            r.stats.loops += 1;
            r.reap()
        });
    }
    // Drop remaining tasks (and so their in-flight ops) while the reactor lives.
    let tasks = TASKS.with(|t| std::mem::take(&mut *t.borrow_mut()));
    drop(tasks);
    // Let the kernel finish (or cancel) what the dropped tasks left in flight
    // before the memory those ops point into goes away with the reactor.
    reactor::with(|r| r.drain(std::time::Duration::from_secs(1)));
    RUN_QUEUE.with(|q| q.borrow_mut().clear());
    timer::reset();
    REACTOR.with(|r| *r.borrow_mut() = None);
    let v = out.borrow_mut().take();
    Ok(v.expect("root task finished"))
}

/// Lets other tasks run before continuing.
pub async fn yield_now() {
    let mut yielded = false;
    std::future::poll_fn(move |cx| {
        if yielded {
            Poll::Ready(())
        } else {
            yielded = true;
            cx.waker().wake_by_ref();
            Poll::Pending
        }
    })
    .await
}
