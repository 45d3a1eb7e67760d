//! A tiny SMTP server on 127.0.0.1 and a random port: EHLO/HELO, MAIL,
//! RCPT, DATA, RSET, NOOP, QUIT; no STARTTLS, no AUTH. It hands every
//! message it accepts to the test, counts connections and transactions,
//! and stops (every session with it) when dropped.

use std::net::SocketAddr;
use std::sync::Arc;
use std::sync::atomic::{AtomicUsize, Ordering};
use std::time::Duration;

use tokio::io::{AsyncBufReadExt, AsyncWriteExt, BufReader};
use tokio::net::{TcpListener, TcpStream};
use tokio::sync::mpsc;
use tokio::task::{JoinHandle, JoinSet};

/// How the server answers.
#[derive(Debug, Clone, Copy)]
pub enum Behaviour {
    /// Accept every message.
    Accept,
    /// Answer every `RCPT TO` with this reply (e.g. `451 4.3.0 later`).
    RejectRcpt(&'static str),
    /// Accept the connection and never say a word.
    Silent,
}

/// One accepted message.
#[derive(Debug, Clone)]
pub struct Received {
    pub mail_from: String,
    pub rcpt_to: Vec<String>,
    /// The message after `DATA`, dot-stuffing undone, CRLF line ends.
    pub data: String,
}

#[derive(Debug, Default)]
pub struct Stats {
    /// Connections accepted so far.
    pub connections: AtomicUsize,
    active: AtomicUsize,
    /// The most transactions (MAIL to the end of DATA) at once.
    pub max_active: AtomicUsize,
}

pub struct Server {
    pub addr: SocketAddr,
    pub stats: Arc<Stats>,
    received: mpsc::UnboundedReceiver<Received>,
    task: JoinHandle<()>,
}

impl Server {
    pub async fn start(behaviour: Behaviour) -> Self {
        let listener = TcpListener::bind("127.0.0.1:0").await.unwrap();
        let addr = listener.local_addr().unwrap();
        let (tx, received) = mpsc::unbounded_channel();
        let stats = Arc::new(Stats::default());
        let task = tokio::spawn(serve(listener, behaviour, tx, Arc::clone(&stats)));
        Self {
            addr,
            stats,
            received,
            task,
        }
    }

    /// The next accepted message (panics after 5 s).
    pub async fn next(&mut self) -> Received {
        tokio::time::timeout(Duration::from_secs(5), self.received.recv())
            .await
            .expect("no message within 5 s")
            .expect("server stopped")
    }

    pub fn connections(&self) -> usize {
        self.stats.connections.load(Ordering::SeqCst)
    }

    pub fn max_active(&self) -> usize {
        self.stats.max_active.load(Ordering::SeqCst)
    }
}

impl Drop for Server {
    fn drop(&mut self) {
        // Aborting the accept loop drops its JoinSet, which aborts every
        // session.
        self.task.abort();
    }
}

async fn serve(
    listener: TcpListener,
    behaviour: Behaviour,
    tx: mpsc::UnboundedSender<Received>,
    stats: Arc<Stats>,
) {
    let mut sessions = JoinSet::new();
    loop {
        tokio::select! {
            accepted = listener.accept() => {
                let Ok((stream, _)) = accepted else { return };
                stats.connections.fetch_add(1, Ordering::SeqCst);
                let (tx, stats) = (tx.clone(), Arc::clone(&stats));
                sessions.spawn(async move {
                    let mut tx_open = false;
                    let _ = session(stream, behaviour, &tx, &stats, &mut tx_open).await;
                    if tx_open {
                        stats.active.fetch_sub(1, Ordering::SeqCst);
                    }
                });
            }
            Some(_) = sessions.join_next(), if !sessions.is_empty() => {}
        }
    }
}

async fn session(
    stream: TcpStream,
    behaviour: Behaviour,
    tx: &mpsc::UnboundedSender<Received>,
    stats: &Stats,
    in_tx: &mut bool,
) -> std::io::Result<()> {
    if let Behaviour::Silent = behaviour {
        tokio::time::sleep(Duration::from_secs(3600)).await;
        return Ok(());
    }
    let (read, mut write) = stream.into_split();
    let mut read = BufReader::new(read);
    write.write_all(b"220 test.local ESMTP ready\r\n").await?;
    let mut mail_from = String::new();
    let mut rcpt_to = Vec::new();
    let end = |in_tx: &mut bool| {
        if std::mem::take(in_tx) {
            stats.active.fetch_sub(1, Ordering::SeqCst);
        }
    };
    loop {
        let mut line = String::new();
        if read.read_line(&mut line).await? == 0 {
            return Ok(());
        }
        let command = line.trim_end().to_owned();
        let upper = command.to_ascii_uppercase();
        let reply: &str = if upper.starts_with("EHLO") || upper.starts_with("HELO") {
            "250 test.local\r\n"
        } else if upper.starts_with("MAIL FROM:") {
            mail_from = command["MAIL FROM:".len()..].trim().to_owned();
            rcpt_to.clear();
            if !*in_tx {
                *in_tx = true;
                let now = stats.active.fetch_add(1, Ordering::SeqCst) + 1;
                stats.max_active.fetch_max(now, Ordering::SeqCst);
            }
            "250 2.1.0 ok\r\n"
        } else if upper.starts_with("RCPT TO:") {
            match behaviour {
                Behaviour::RejectRcpt(reply) => {
                    write.write_all(format!("{reply}\r\n").as_bytes()).await?;
                    continue;
                }
                _ => {
                    rcpt_to.push(command["RCPT TO:".len()..].trim().to_owned());
                    "250 2.1.5 ok\r\n"
                }
            }
        } else if upper == "DATA" {
            write.write_all(b"354 end with <CRLF>.<CRLF>\r\n").await?;
            let mut data = String::new();
            loop {
                let mut l = String::new();
                if read.read_line(&mut l).await? == 0 {
                    return Ok(());
                }
                if l == ".\r\n" {
                    break;
                }
                let l = l.strip_prefix('.').unwrap_or(&l);
                data.push_str(l);
            }
            // Hold the transaction open a moment, so overlapping sends
            // would show in `max_active`.
            tokio::time::sleep(Duration::from_millis(20)).await;
            let _ = tx.send(Received {
                mail_from: std::mem::take(&mut mail_from),
                rcpt_to: std::mem::take(&mut rcpt_to),
                data,
            });
            end(in_tx);
            "250 2.0.0 queued\r\n"
        } else if upper == "RSET" {
            end(in_tx);
            "250 2.0.0 ok\r\n"
        } else if upper == "NOOP" {
            "250 2.0.0 ok\r\n"
        } else if upper == "QUIT" {
            write.write_all(b"221 2.0.0 bye\r\n").await?;
            return Ok(());
        } else {
            "502 5.5.2 unknown command\r\n"
        };
        write.write_all(reply.as_bytes()).await?;
    }
}
