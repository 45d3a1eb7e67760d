//! Durability under SIGKILL: a writer process registering users and
//! starting sessions in one schema is killed 20 times at random moments;
//! nothing it wrote may be torn apart (a user without its
//! `user.registered` event or first history row, a session without its
//! `session.started` event).

use countersign_postgres::testing::{migrated, new_schema, options};
use countersign_testkit::crash;

/// The schema the child writes in: set in the child's environment.
const CRASH_SCHEMA: &str = "COUNTERSIGN_CRASH_SCHEMA";

/// The child process of `sigkill_tears_nothing_apart` (with
/// `CRASH_SCHEMA` set); on its own, a short bounded run in a fresh schema
/// that must leave nothing torn.
#[test]
fn writer_child() {
    crash::child_or_bounded(
        || async {
            let schema = match std::env::var(CRASH_SCHEMA) {
                Ok(s) => s,
                Err(_) => new_schema().await,
            };
            migrated(options(&schema)).await
        },
        CRASH_SCHEMA,
    );
}

#[test]
fn sigkill_tears_nothing_apart() {
    let schema = tokio::runtime::Builder::new_current_thread()
        .enable_all()
        .build()
        .unwrap()
        .block_on(new_schema());
    let killed = crash::kill_repeatedly("crash::writer_child", CRASH_SCHEMA, &schema, 20);
    assert!(
        killed >= 15,
        "only {killed} of 20 writers were still running when killed"
    );
    countersign_testkit::run(async {
        let store = migrated(options(&schema)).await;
        let violations = crash::durability_violations(&store).await;
        assert!(violations.is_empty(), "{violations:#?}");
    });
}
