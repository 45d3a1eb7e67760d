//! The worker thread that owns the connection.
//!
//! Calls reach it through a bounded queue of [`QUEUE_CAPACITY`] jobs. A
//! caller finding the queue full waits for a slot asynchronously (the
//! submission is an `await`, never a blocking call on an async thread);
//! waiting callers get their slots in order, and a caller cancelled while
//! waiting enqueues nothing. Each job runs under `catch_unwind`: a job that
//! panics answers its caller [`SqliteError::Panicked`], any transaction it
//! left open is rolled back, and the worker goes on with the next job.

use std::panic::{AssertUnwindSafe, catch_unwind};
use std::sync::Arc;
use std::sync::atomic::{AtomicU64, Ordering};

use rusqlite::Connection;
use tokio::sync::mpsc;

use crate::{Result, SqliteError};

type Job = Box<dyn FnOnce(&mut Connection) + Send>;

/// How many calls may wait in a store's queue for its worker thread; a
/// caller beyond that waits (asynchronously) for a slot before its call is
/// queued. Clones of a store share one queue.
pub const QUEUE_CAPACITY: usize = 256;

/// A thread owning one connection and running jobs in order.
#[derive(Debug)]
pub(crate) struct Worker {
    jobs: mpsc::Sender<Job>,
    /// How many calls the worker has finished: counted after each call's
    /// work and before its caller hears back, so whoever reads a count
    /// after a call returned sees it include that call (and its writes).
    finished: Arc<AtomicU64>,
}

/// The next job: polled for about [`SPIN`] before blocking.
fn next_job(queue: &mut mpsc::Receiver<Job>) -> Option<Job> {
    let start = std::time::Instant::now();
    while start.elapsed() < SPIN {
        match queue.try_recv() {
            Ok(job) => return Some(job),
            Err(mpsc::error::TryRecvError::Empty) => std::thread::yield_now(),
            Err(mpsc::error::TryRecvError::Disconnected) => return None,
        }
    }
    queue.blocking_recv()
}

/// How long the worker polls for a next job before sleeping.
const SPIN: std::time::Duration = std::time::Duration::from_micros(50);

/// Put the connection back in a usable state after a job panicked: roll
/// back a transaction it left open and drop cached statements it may have
/// left mid-step.
fn recover(conn: &Connection) {
    if !conn.is_autocommit() {
        // If even the rollback fails, the next transaction will fail with
        // SQLite's own error; there is nothing better to do here.
        let _ = conn.execute_batch("ROLLBACK");
    }
    conn.flush_prepared_statement_cache();
}

impl Worker {
    /// Start the thread and open the connection on it.
    pub(crate) async fn spawn(
        open: impl FnOnce() -> Result<Connection> + Send + 'static,
    ) -> Result<Self> {
        let (jobs, mut queue) = mpsc::channel::<Job>(QUEUE_CAPACITY);
        let (ready, opened) = tokio::sync::oneshot::channel();
        std::thread::Builder::new()
            .name("countersign-sqlite".into())
            .spawn(move || {
                let mut conn = match open() {
                    Ok(c) => {
                        let _ = ready.send(Ok(()));
                        c
                    }
                    Err(e) => {
                        let _ = ready.send(Err(e));
                        return;
                    }
                };
                // Ends when every sender (every store clone) is gone. After a
                // job, poll briefly before sleeping: under load the next job
                // is usually already on its way, and catching it without a
                // futex sleep and wake-up halves the hop's latency.
                while let Some(job) = next_job(&mut queue) {
                    // Jobs catch their own panics (see `call`); this is the
                    // backstop that keeps the thread alive whatever happens.
                    if catch_unwind(AssertUnwindSafe(|| job(&mut conn))).is_err() {
                        recover(&conn);
                    }
                }
            })
            .map_err(|e| SqliteError::Worker(e.to_string()))?;
        opened
            .await
            .map_err(|_| SqliteError::Worker("the worker stopped while opening".into()))??;
        Ok(Self {
            jobs,
            finished: Arc::new(AtomicU64::new(0)),
        })
    }

    /// The count of finished calls (see the field).
    pub(crate) fn finished(&self) -> Arc<AtomicU64> {
        Arc::clone(&self.finished)
    }

    /// Run `f` on the worker and wait for its result. Waits
    /// (asynchronously) for a queue slot when [`QUEUE_CAPACITY`] calls are
    /// already queued. A panic in `f` answers [`SqliteError::Panicked`].
    pub(crate) async fn call<T, F>(&self, f: F) -> Result<T>
    where
        T: Send + 'static,
        F: FnOnce(&mut Connection) -> Result<T> + Send + 'static,
    {
        let (tx, rx) = tokio::sync::oneshot::channel();
        let finished = Arc::clone(&self.finished);
        let job: Job = Box::new(move |conn| {
            let out = match catch_unwind(AssertUnwindSafe(|| f(conn))) {
                Ok(out) => out,
                Err(_) => {
                    recover(conn);
                    Err(SqliteError::Panicked)
                }
            };
            finished.fetch_add(1, Ordering::SeqCst);
            let _ = tx.send(out);
        });
        self.jobs
            .send(job)
            .await
            .map_err(|_| SqliteError::Worker("the worker has stopped".into()))?;
        rx.await
            .map_err(|_| SqliteError::Worker("the worker dropped the call".into()))?
    }
}
