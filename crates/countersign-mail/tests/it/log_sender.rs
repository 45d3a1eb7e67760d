//! `LogSender`: says who and what, never the secret.

use countersign_core::{EmailSender, NoticeRenderer};
use countersign_mail::{LogSender, Templates};

use crate::support::capture::Capture;
use crate::support::core::{alice, all_notices, secret, secret_of};

#[tokio::test]
async fn log_sender_logs_recipient_and_subject_but_never_the_code_or_body() {
    let (secret, tenant) = secret().await;
    let (capture, _guard) = Capture::start();
    for notice in all_notices(&secret) {
        let m = Templates::new().render(&tenant, &alice(), &notice);
        LogSender::new().send(&m).await.unwrap();
        let out = capture.output();
        assert!(out.contains(&m.subject), "{out}");
        assert!(out.contains("to=alice@example.com"), "{out}");
        assert!(out.contains(&format!("notice={}", notice.code())), "{out}");
        if let Some(code) = secret_of(&notice) {
            assert!(!out.contains(code), "the secret was logged: {out}");
        }
        assert!(!out.contains("Do not share"), "a body was logged: {out}");
        assert!(!out.contains("If this was you"), "a body was logged: {out}");
    }
    assert_eq!(
        capture.output().lines().count(),
        all_notices(&secret).len(),
        "one line per message"
    );
}
