//! Mail without an SMTP server: each message becomes a private file under
//! `<data-dir>/mail/`, for development and single-host setups. Only the
//! file's path is logged, never what the message says (it may carry a
//! one-time code).

use std::io::Write;
use std::path::PathBuf;

use countersign_core::{EmailMessage, EmailSender, Env};

use crate::files;

/// An [`EmailSender`] writing each message to its own file (mode `0600`)
/// in a directory (mode `0700`, created on first use).
#[derive(Debug, Clone)]
pub struct FileSender {
    dir: PathBuf,
    env: Env,
}

impl FileSender {
    /// A sender writing into `dir`, naming files with time-ordered ids
    /// from `env`.
    pub fn new(dir: PathBuf, env: Env) -> Self {
        Self { dir, env }
    }

    fn write(&self, message: &EmailMessage) -> std::io::Result<PathBuf> {
        files::private_dir(&self.dir)?;
        let id = self
            .env
            .uuid_v7()
            .map_err(|e| std::io::Error::other(e.to_string()))?;
        let path = self
            .dir
            .join(format!("{}-{}.txt", id.simple(), message.notice.code()));
        let mut file = files::create_private(&path)?;
        let mut text = format!(
            "To: {}\nSubject: {}\nNotice: {}\nTenant: {}\n\n{}",
            message.to,
            message.subject,
            message.notice.code(),
            message.tenant_id,
            message.text
        );
        if !text.ends_with('\n') {
            text.push('\n');
        }
        file.write_all(text.as_bytes())?;
        file.sync_all()?;
        Ok(path)
    }
}

impl EmailSender for FileSender {
    type Error = std::io::Error;

    async fn send(&self, message: &EmailMessage) -> Result<(), std::io::Error> {
        let this = self.clone();
        let message = message.clone();
        let path = tokio::task::spawn_blocking(move || this.write(&message))
            .await
            .map_err(std::io::Error::other)??;
        // INVARIANT: the path only; never the subject, recipient or body.
        tracing::info!("mail written to {}", path.display());
        Ok(())
    }
}
