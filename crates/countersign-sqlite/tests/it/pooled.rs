//! The whole conformance and engine suites again, on file stores with a
//! pool of read-only connections and the session cache (the in-memory
//! stores of `main` have neither), so every guarantee is checked on the
//! pooled read path and through the cache too. The cache's time to live
//! is an hour: only the store's own calls can make it see a change.
//!
//! Each test gets a new file in this process's directory
//! (`countersign-sqlite-pooled-<pid>` under the temporary directory). The
//! store cannot take a guard that removes it, so the directories of
//! processes that are gone are removed when the next run starts.

use std::path::PathBuf;
use std::sync::OnceLock;
use std::sync::atomic::{AtomicUsize, Ordering};

use countersign_sqlite::{SqliteOptions, SqliteStore};

const PREFIX: &str = "countersign-sqlite-pooled-";

/// This process's directory, created once, after removing those of
/// processes that are gone.
fn dir() -> &'static PathBuf {
    static DIR: OnceLock<PathBuf> = OnceLock::new();
    DIR.get_or_init(|| {
        let tmp = std::env::temp_dir();
        if let Ok(entries) = std::fs::read_dir(&tmp) {
            for e in entries.flatten() {
                let name = e.file_name();
                let pid = name
                    .to_str()
                    .and_then(|n| n.strip_prefix(PREFIX))
                    .and_then(|p| p.parse::<u32>().ok());
                if let Some(pid) = pid
                    && !std::path::Path::new(&format!("/proc/{pid}")).exists()
                {
                    let _ = std::fs::remove_dir_all(e.path());
                }
            }
        }
        let dir = tmp.join(format!("{PREFIX}{}", std::process::id()));
        let _ = std::fs::remove_dir_all(&dir);
        std::fs::create_dir_all(&dir).unwrap();
        dir
    })
}

/// A new migrated file store with two read-only connections and the
/// session cache.
async fn fresh_file() -> SqliteStore {
    static NEXT: AtomicUsize = AtomicUsize::new(0);
    let path = dir().join(format!("{}.db", NEXT.fetch_add(1, Ordering::Relaxed)));
    let options = SqliteOptions::default()
        .readers(2)
        .session_cache(std::time::Duration::from_secs(3600));
    let store = SqliteStore::open_with(&path, options)
        .await
        .expect("file sqlite");
    assert_eq!(store.readers(), 2);
    store
}

countersign_testkit::conformance_suite!(fresh_file, audit);
countersign_testkit::engine_suite!(fresh_file, audit);
