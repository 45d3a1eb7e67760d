//! `QueuedSender`: `send` answers before delivery, the queue is bounded,
//! delivery is in order, failures are logged without the message, and
//! `finish` drains what was queued.

use std::sync::{Arc, Mutex};
use std::time::Duration;

use countersign_core::{EmailMessage, EmailSender, NoticeRenderer};
use countersign_mail::{Error, ErrorKind, QueuedSender, Templates};
use tokio::sync::{Semaphore, mpsc};

use crate::support::capture::Capture;
use crate::support::core::{alice, all_notices, secret, secret_of};

/// An inner sender that delivers only when the test lets it: each message
/// waits for a permit of `gate`, says it started on `started`, and is then
/// recorded (or refused, for subjects in `refuse`).
#[derive(Clone)]
struct Gated {
    gate: Arc<Semaphore>,
    started: mpsc::UnboundedSender<String>,
    delivered: Arc<Mutex<Vec<String>>>,
    refuse: Vec<String>,
}

#[derive(Debug, thiserror::Error)]
#[error("the relay said no")]
struct Refused;

impl EmailSender for Gated {
    type Error = Refused;

    async fn send(&self, message: &EmailMessage) -> Result<(), Refused> {
        let _ = self.started.send(message.subject.clone());
        let permit = self.gate.acquire().await.map_err(|_| Refused)?;
        permit.forget();
        if self.refuse.contains(&message.subject) {
            return Err(Refused);
        }
        self.delivered.lock().unwrap().push(message.subject.clone());
        Ok(())
    }
}

fn gated(refuse: &[&str]) -> (Gated, mpsc::UnboundedReceiver<String>) {
    let (started, rx) = mpsc::unbounded_channel();
    let inner = Gated {
        gate: Arc::new(Semaphore::new(0)),
        started,
        delivered: Arc::default(),
        refuse: refuse.iter().map(|s| (*s).to_owned()).collect(),
    };
    (inner, rx)
}

/// Messages with distinct subjects, rendered from real notices.
async fn messages(n: usize) -> Vec<EmailMessage> {
    let (secret, tenant) = secret().await;
    all_notices(&secret)
        .iter()
        .take(n)
        .enumerate()
        .map(|(i, notice)| {
            let mut m = Templates::new().render(&tenant, &alice(), notice);
            m.subject = format!("message {i}");
            m
        })
        .collect()
}

/// While the inner sender cannot deliver at all, `send` still answers at
/// once; once it can, every message arrives, in the order sent, and
/// `finish` reports the queue drained.
#[tokio::test]
async fn send_answers_before_delivery_and_delivery_keeps_the_order() {
    let (inner, _started) = gated(&[]);
    let (queue, delivery) = QueuedSender::spawn(inner.clone(), 8).unwrap();
    let sent = messages(3).await;
    for m in &sent {
        tokio::time::timeout(Duration::from_secs(5), queue.send(m))
            .await
            .expect("send waited for delivery")
            .unwrap();
    }
    assert!(inner.delivered.lock().unwrap().is_empty());

    inner.gate.add_permits(3);
    assert!(delivery.finish(Duration::from_secs(5)).await);
    assert!(delivery.is_finished());
    let subjects: Vec<String> = sent.iter().map(|m| m.subject.clone()).collect();
    assert_eq!(*inner.delivered.lock().unwrap(), subjects);
}

/// At most `capacity` messages wait: the next one is refused with a
/// transient error, and nothing is lost of those queued. After `finish`,
/// the queue is closed.
#[tokio::test]
async fn a_full_queue_refuses_and_a_finished_one_is_closed() {
    let (inner, mut started) = gated(&[]);
    let (queue, delivery) = QueuedSender::spawn(inner.clone(), 2).unwrap();
    let sent = messages(5).await;
    // The first is taken by the task (and held at the gate), two wait.
    queue.send(&sent[0]).await.unwrap();
    assert_eq!(started.recv().await.unwrap(), "message 0");
    queue.send(&sent[1]).await.unwrap();
    queue.send(&sent[2]).await.unwrap();
    let full = queue.send(&sent[3]).await.unwrap_err();
    assert!(matches!(full, Error::QueueFull { capacity: 2 }), "{full}");
    assert_eq!(full.kind(), ErrorKind::Transient);

    inner.gate.add_permits(3);
    assert!(delivery.finish(Duration::from_secs(5)).await);
    assert_eq!(inner.delivered.lock().unwrap().len(), 3);
    let closed = queue.send(&sent[4]).await.unwrap_err();
    assert!(matches!(closed, Error::QueueClosed), "{closed}");
    assert_eq!(inner.delivered.lock().unwrap().len(), 3);
}

/// `finish` waits at most its deadline: with the inner sender stuck, it
/// answers `false` in time.
#[tokio::test]
async fn finish_gives_up_at_its_deadline() {
    let (inner, mut started) = gated(&[]);
    let (queue, delivery) = QueuedSender::spawn(inner, 4).unwrap();
    queue.send(&messages(1).await[0]).await.unwrap();
    started.recv().await.unwrap();
    assert!(!delivery.finish(Duration::from_millis(50)).await);
    assert!(!delivery.is_finished());
}

/// A failed delivery is logged with the notice's code, without the
/// recipient's message or its secret, and the next message is delivered.
#[tokio::test(flavor = "current_thread")]
async fn a_failed_delivery_is_logged_without_the_message_and_the_queue_moves_on() {
    let (capture, _guard) = Capture::start();
    let (inner, _started) = gated(&["message 0"]);
    inner.gate.add_permits(2);
    let (queue, delivery) = QueuedSender::spawn(inner.clone(), 4).unwrap();
    let sent = messages(2).await;
    for m in &sent {
        queue.send(m).await.unwrap();
    }
    assert!(delivery.finish(Duration::from_secs(5)).await);
    assert_eq!(*inner.delivered.lock().unwrap(), ["message 1"]);

    let out = capture.output();
    assert!(out.contains("mail delivery failed"), "{out}");
    assert!(out.contains(sent[0].notice.code()), "{out}");
    assert!(out.contains("the relay said no"), "{out}");
    assert!(!out.contains(&sent[0].text), "a body was logged: {out}");
    if let Some(code) = secret_of(&sent[0].notice) {
        assert!(!out.contains(code), "the secret was logged: {out}");
    }
}

/// Outside a tokio runtime there is nothing to run the delivery: a
/// configuration error, not a panic.
#[test]
fn spawning_outside_a_runtime_is_an_error() {
    let (inner, _started) = gated(&[]);
    let err = QueuedSender::spawn(inner, 4).unwrap_err();
    assert_eq!(err.kind(), ErrorKind::InvalidConfig);
}

/// With every sender dropped, the task delivers what was queued and
/// stops by itself.
#[tokio::test]
async fn the_task_stops_once_every_sender_is_gone() {
    let (inner, _started) = gated(&[]);
    inner.gate.add_permits(1);
    let (queue, delivery) = QueuedSender::spawn(inner.clone(), 4).unwrap();
    queue.send(&messages(1).await[0]).await.unwrap();
    drop(queue);
    tokio::time::timeout(Duration::from_secs(5), async {
        while !delivery.is_finished() {
            tokio::time::sleep(Duration::from_millis(5)).await;
        }
    })
    .await
    .expect("the task stopped");
    assert_eq!(*inner.delivered.lock().unwrap(), ["message 0"]);
}
