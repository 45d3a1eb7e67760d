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
                // Ends when every sender (every store clone) is gone.
                while let Ok(job) = queue.recv() {
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
