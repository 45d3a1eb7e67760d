//! The hashing threads: a fixed number of dedicated threads, one per
//! hashing slot, each taking the next queued hash as soon as it finishes
//! one, with one argon2 buffer of its own.
//!
//! Guarantees:
//!
//! - **Bounded.** At most `slots` computations run at once: there are no
//!   more threads than slots, and a thread runs one job at a time.
//! - **No gap under load.** A thread that finishes a hash takes the next
//!   queued one at once, on the same thread, with the same buffer: no
//!   hand-off through the async runtime between two hashes.
//! - **Cancellation.** A caller that gives up before its hash starts
//!   leaves the queue count at once, and its job is skipped, not run. One
//!   that gives up while its hash runs does not free the slot early.
//! - **Memory.** A thread allocates its buffer on its first hash and keeps
//!   it while hashes keep coming; after `idle_release` with nothing to do
//!   it gives the buffer back (each buffer is its own mapping, so the
//!   memory returns to the system). Threads start on first use and end
//!   when the hasher (every clone) is dropped.
//! - **No runtime needed.** The threads are plain OS threads; a caller
//!   awaits a oneshot answer, so hashing never blocks an async worker and
//!   works under any executor.

use std::collections::VecDeque;
use std::sync::atomic::{AtomicBool, AtomicU64, AtomicUsize, Ordering};
use std::sync::{Arc, Condvar, Mutex, MutexGuard, PoisonError};
use std::time::Duration;

use argon2::Block;

use crate::error::{Error, Result};

/// The smallest hashing buffer, in blocks of 1 KiB: above glibc's largest
/// dynamic mmap threshold (32 MiB), so a buffer is always a mapping of its
/// own that goes back to the system when dropped. glibc would otherwise
/// serve a buffer the size of one freed before from its heap and keep it
/// resident after the flood that needed it. Capacity never used is never
/// touched, so it costs address space, not memory.
const MIN_BUFFER_BLOCKS: usize = 33 * 1024;

/// A zeroed buffer of `blocks` blocks, in its own mapping.
fn own_mapping(blocks: usize) -> Vec<Block> {
    let mut buf = Vec::with_capacity(blocks.max(MIN_BUFFER_BLOCKS));
    buf.resize(blocks, Block::default());
    buf
}

/// What a job needs from its thread: the buffer, and the counters.
pub(super) struct Slot<'a> {
    buf: &'a mut Option<Vec<Block>>,
    pool: &'a Pool,
}

impl Slot<'_> {
    /// Run `f` with `blocks` blocks of memory: the thread's own buffer when
    /// they fit in the standard size (allocated on first use), else a
    /// one-off buffer; `None`: no memory (an imported hash brings its own).
    pub(super) fn run<T>(&mut self, blocks: Option<usize>, f: impl FnOnce(&mut [Block]) -> T) -> T {
        let Some(needed) = blocks else {
            return f(&mut []);
        };
        let standard = self.pool.standard_blocks;
        if needed > standard {
            // An old hash with more memory than today's parameters.
            let mut once = own_mapping(needed);
            return f(&mut once);
        }
        let pool = self.pool;
        let buf = self.buf.get_or_insert_with(|| {
            pool.allocations.fetch_add(1, Ordering::Relaxed);
            pool.held.fetch_add(1, Ordering::SeqCst);
            own_mapping(standard)
        });
        // INVARIANT: `buf` has `standard` >= `needed` blocks.
        match buf.get_mut(..needed) {
            Some(blocks) => f(blocks),
            None => f(&mut []),
        }
    }
}

/// A queued hash: run on a thread with its [`Slot`], unless its caller has
/// left the queue first.
struct Job {
    run: Box<dyn FnOnce(&mut Slot<'_>) + Send>,
    taken: Arc<AtomicBool>,
}

struct Queue {
    jobs: VecDeque<Job>,
    threads: usize,
    closed: bool,
}

/// The shared state of one hasher's threads.
pub(super) struct Pool {
    queue: Mutex<Queue>,
    ready: Condvar,
    slots: usize,
    standard_blocks: usize,
    idle_release: Duration,
    waiting: AtomicUsize,
    running: AtomicUsize,
    peak: AtomicUsize,
    allocations: AtomicU64,
    /// Buffers held by threads right now.
    held: AtomicUsize,
}

impl std::fmt::Debug for Pool {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Pool")
            .field("slots", &self.slots)
            .field("waiting", &self.waiting)
            .field("running", &self.running)
            .finish()
    }
}

/// A caller's place in the queue: counted in `waiting` until its job is
/// taken by a thread or the caller goes away, whichever comes first.
struct Ticket {
    taken: Arc<AtomicBool>,
    pool: Arc<Pool>,
}

impl Ticket {
    /// Take the job (from either side): `true` for the first taker only,
    /// which also removes it from the count.
    fn take(taken: &AtomicBool, pool: &Pool) -> bool {
        let first = !taken.swap(true, Ordering::SeqCst);
        if first {
            pool.waiting.fetch_sub(1, Ordering::SeqCst);
        }
        first
    }
}

impl Drop for Ticket {
    fn drop(&mut self) {
        Ticket::take(&self.taken, &self.pool);
    }
}

impl Pool {
    pub(super) fn new(slots: usize, standard_blocks: usize, idle_release: Duration) -> Arc<Self> {
        Arc::new(Self {
            queue: Mutex::new(Queue {
                jobs: VecDeque::new(),
                threads: 0,
                closed: false,
            }),
            ready: Condvar::new(),
            slots: slots.max(1),
            standard_blocks,
            idle_release,
            waiting: AtomicUsize::new(0),
            running: AtomicUsize::new(0),
            peak: AtomicUsize::new(0),
            allocations: AtomicU64::new(0),
            held: AtomicUsize::new(0),
        })
    }

    fn lock(&self) -> MutexGuard<'_, Queue> {
        self.queue.lock().unwrap_or_else(PoisonError::into_inner)
    }

    /// Queue `f` and wait for its answer. Dropping the returned future
    /// before the job starts withdraws it.
    pub(super) async fn run<T, F>(self: &Arc<Self>, f: F) -> Result<T>
    where
        T: Send + 'static,
        F: FnOnce(&mut Slot<'_>) -> T + Send + 'static,
    {
        let (tx, rx) = tokio::sync::oneshot::channel();
        let taken = Arc::new(AtomicBool::new(false));
        self.waiting.fetch_add(1, Ordering::SeqCst);
        let _ticket = Ticket {
            taken: Arc::clone(&taken),
            pool: Arc::clone(self),
        };
        let job = Job {
            run: Box::new(move |slot: &mut Slot<'_>| {
                let _ = tx.send(f(slot));
            }),
            taken,
        };
        {
            let mut q = self.lock();
            if q.closed {
                return Err(Error::hashing("hasher closed"));
            }
            q.jobs.push_back(job);
            if q.threads < self.slots {
                let pool = Arc::clone(self);
                std::thread::Builder::new()
                    .name("countersign-hash".into())
                    .spawn(move || pool.work())
                    .map_err(|e| Error::hashing_from("starting a hashing thread", e))?;
                q.threads += 1;
            }
        }
        self.ready.notify_one();
        rx.await
            .map_err(|_| Error::hashing("the hashing thread dropped the job"))
    }

    /// A hashing thread: take jobs until the pool closes; give the buffer
    /// back after `idle_release` without one.
    fn work(self: Arc<Self>) {
        let mut buf: Option<Vec<Block>> = None;
        let mut q = self.lock();
        loop {
            if let Some(job) = q.jobs.pop_front() {
                drop(q);
                self.execute(job, &mut buf);
                q = self.lock();
                continue;
            }
            if q.closed {
                q.threads = q.threads.saturating_sub(1);
                return;
            }
            if buf.is_some() {
                let (guard, waited) = self
                    .ready
                    .wait_timeout(q, self.idle_release)
                    .unwrap_or_else(PoisonError::into_inner);
                q = guard;
                if waited.timed_out() && q.jobs.is_empty() {
                    buf = None;
                    self.held.fetch_sub(1, Ordering::SeqCst);
                }
            } else {
                q = self.ready.wait(q).unwrap_or_else(PoisonError::into_inner);
            }
        }
    }

    fn execute(&self, job: Job, buf: &mut Option<Vec<Block>>) {
        if !Ticket::take(&job.taken, self) {
            // Its caller left the queue: skip it.
            return;
        }
        let now_running = self.running.fetch_add(1, Ordering::SeqCst) + 1;
        self.peak.fetch_max(now_running, Ordering::SeqCst);
        let mut slot = Slot { buf, pool: self };
        // A panicking job loses its answer (the caller gets an error), not
        // the thread.
        let _ = std::panic::catch_unwind(std::panic::AssertUnwindSafe(|| (job.run)(&mut slot)));
        self.running.fetch_sub(1, Ordering::SeqCst);
    }

    /// No more jobs: idle threads end now, busy ones after their queue.
    pub(super) fn close(&self) {
        self.lock().closed = true;
        self.ready.notify_all();
    }

    pub(super) fn slots(&self) -> usize {
        self.slots
    }

    pub(super) fn waiting(&self) -> usize {
        self.waiting.load(Ordering::SeqCst)
    }

    pub(super) fn running(&self) -> usize {
        self.running.load(Ordering::SeqCst)
    }

    pub(super) fn peak(&self) -> usize {
        self.peak.load(Ordering::SeqCst)
    }

    #[cfg(test)]
    pub(super) fn allocations(&self) -> u64 {
        self.allocations.load(Ordering::Relaxed)
    }

    /// How many threads hold a buffer right now.
    #[cfg(test)]
    pub(super) fn buffers_held(&self) -> usize {
        self.held.load(Ordering::SeqCst)
    }
}
