//! The worker thread that owns the connection.

use std::sync::mpsc;

use rusqlite::Connection;

use crate::{Result, SqliteError};

type Job = Box<dyn FnOnce(&mut Connection) + Send>;

/// A thread owning one connection and running jobs in order.
#[derive(Debug)]
pub(crate) struct Worker {
    jobs: mpsc::Sender<Job>,
}

/// The next job: polled for about [`SPIN`] before blocking.
fn next_job(queue: &mpsc::Receiver<Job>) -> Option<Job> {
    let start = std::time::Instant::now();
    while start.elapsed() < SPIN {
        match queue.try_recv() {
            Ok(job) => return Some(job),
            Err(mpsc::TryRecvError::Empty) => std::thread::yield_now(),
            Err(mpsc::TryRecvError::Disconnected) => return None,
        }
    }
    queue.recv().ok()
}

/// How long the worker polls for a next job before sleeping.
const SPIN: std::time::Duration = std::time::Duration::from_micros(50);

impl Worker {
    /// Start the thread and open the connection on it.
    pub(crate) async fn spawn(
        open: impl FnOnce() -> Result<Connection> + Send + 'static,
    ) -> Result<Self> {
        let (jobs, queue) = mpsc::channel::<Job>();
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
                while let Some(job) = next_job(&queue) {
                    job(&mut conn);
                }
            })
            .map_err(|e| SqliteError::Worker(e.to_string()))?;
        opened
            .await
            .map_err(|_| SqliteError::Worker("the worker stopped while opening".into()))??;
        Ok(Self { jobs })
    }

    /// Run `f` on the worker and wait for its result.
    pub(crate) async fn call<T, F>(&self, f: F) -> Result<T>
    where
        T: Send + 'static,
        F: FnOnce(&mut Connection) -> Result<T> + Send + 'static,
    {
        let (tx, rx) = tokio::sync::oneshot::channel();
        self.jobs
            .send(Box::new(move |conn| {
                let _ = tx.send(f(conn));
            }))
            .map_err(|_| SqliteError::Worker("the worker has stopped".into()))?;
        rx.await
            .map_err(|_| SqliteError::Worker("the worker dropped the call".into()))?
    }
}
