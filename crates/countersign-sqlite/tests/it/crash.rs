//! Durability under SIGKILL: a writer process registering users and
//! starting sessions on one SQLite file is killed 20 times at random
//! moments; nothing it wrote may be torn apart (a user without its
//! `user.registered` event or first history row, a session without its
//! `session.started` event).

use countersign_sqlite::SqliteStore;
use countersign_testkit::crash;

/// Where the child writes: set in the child's environment.
const CRASH_DB: &str = "COUNTERSIGN_CRASH_SQLITE";

/// The child process of `sigkill_tears_nothing_apart` (with `CRASH_DB`
/// set); on its own, a short bounded run that must leave nothing torn.
#[test]
fn writer_child() {
    let path = std::env::var(CRASH_DB).unwrap_or_else(|_| {
        let dir = std::env::temp_dir().join(format!("cs-crash-bounded-{}", std::process::id()));
        std::fs::create_dir_all(&dir).unwrap();
        dir.join("crash.db").display().to_string()
    });
    crash::child_or_bounded(
        || async move { SqliteStore::open(&path).await.unwrap() },
        CRASH_DB,
    );
}

#[test]
fn sigkill_tears_nothing_apart() {
    let dir = std::env::temp_dir().join(format!("cs-crash-{}", std::process::id()));
    std::fs::create_dir_all(&dir).unwrap();
    let db = dir.join("crash.db").display().to_string();
    let killed = crash::kill_repeatedly("crash::writer_child", CRASH_DB, &db, 20);
    assert!(
        killed >= 15,
        "only {killed} of 20 writers were still running when killed"
    );
    countersign_testkit::run(async {
        let store = SqliteStore::open(&db).await.unwrap();
        let violations = crash::durability_violations(&store).await;
        assert!(violations.is_empty(), "{violations:#?}");
    });
    let _ = std::fs::remove_dir_all(&dir);
}
