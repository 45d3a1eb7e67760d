//! Private files and directories: everything the service writes to its
//! data directory is readable by its owner only (`0600` files, `0700`
//! directories).

use std::io::{self, Write};
use std::path::{Path, PathBuf};

/// Create `dir` (and its parents) with mode `0700` if missing. An existing
/// directory keeps its mode.
pub fn private_dir(dir: &Path) -> io::Result<()> {
    let mut builder = std::fs::DirBuilder::new();
    builder.recursive(true);
    #[cfg(unix)]
    {
        use std::os::unix::fs::DirBuilderExt;
        builder.mode(0o700);
    }
    builder.create(dir)
}

/// Open a new file at `path` for writing, mode `0600`, failing if it
/// exists.
pub fn create_private(path: &Path) -> io::Result<std::fs::File> {
    let mut options = std::fs::OpenOptions::new();
    options.write(true).create_new(true);
    #[cfg(unix)]
    {
        use std::os::unix::fs::OpenOptionsExt;
        options.mode(0o600);
    }
    options.open(path)
}

/// A temporary name beside `path`, unique to this process and call.
fn temp_beside(path: &Path) -> PathBuf {
    use std::sync::atomic::{AtomicU64, Ordering};
    static NEXT: AtomicU64 = AtomicU64::new(0);
    let n = NEXT.fetch_add(1, Ordering::Relaxed);
    let mut name = path.file_name().unwrap_or_default().to_os_string();
    name.push(format!(".{}.{n}.tmp", std::process::id()));
    path.with_file_name(name)
}

/// Write `bytes` to a fresh temporary file beside `path` (mode `0600`),
/// synced to disk. Returns the temporary path.
fn write_temp(path: &Path, bytes: &[u8]) -> io::Result<PathBuf> {
    let tmp = temp_beside(path);
    let written = create_private(&tmp).and_then(|mut f| {
        f.write_all(bytes)?;
        f.sync_all()
    });
    match written {
        Ok(()) => Ok(tmp),
        Err(e) => {
            let _ = std::fs::remove_file(&tmp);
            Err(e)
        }
    }
}

/// Create `path` holding `bytes` (mode `0600`) unless it exists, atomically:
/// readers see no file or the whole file, and of two processes racing,
/// one creates it and the other finds it. Returns whether this call
/// created it.
pub fn write_private_new(path: &Path, bytes: &[u8]) -> io::Result<bool> {
    let tmp = write_temp(path, bytes)?;
    let linked = std::fs::hard_link(&tmp, path);
    let _ = std::fs::remove_file(&tmp);
    match linked {
        Ok(()) => Ok(true),
        Err(e) if e.kind() == io::ErrorKind::AlreadyExists => Ok(false),
        Err(e) => Err(e),
    }
}

/// Write `bytes` to `path` (mode `0600`), replacing it atomically.
pub fn write_private(path: &Path, bytes: &[u8]) -> io::Result<()> {
    let tmp = write_temp(path, bytes)?;
    std::fs::rename(&tmp, path).inspect_err(|_| {
        let _ = std::fs::remove_file(&tmp);
    })
}

/// The permission bits of `path` (Unix), for tests and warnings.
#[cfg(unix)]
pub fn mode(path: &Path) -> io::Result<u32> {
    use std::os::unix::fs::PermissionsExt;
    Ok(std::fs::metadata(path)?.permissions().mode() & 0o777)
}

#[cfg(test)]
mod tests {
    use super::*;

    /// New files are created once, whole, and private.
    #[test]
    fn private_files_are_created_once() {
        let dir = tempfile::tempdir().unwrap();
        let p = dir.path().join("sub/dir");
        private_dir(&p).unwrap();
        assert_eq!(mode(&p).unwrap(), 0o700);
        let f = p.join("k");
        assert!(write_private_new(&f, b"one").unwrap());
        assert!(!write_private_new(&f, b"two").unwrap());
        assert_eq!(std::fs::read(&f).unwrap(), b"one");
        assert_eq!(mode(&f).unwrap(), 0o600);
        write_private(&f, b"three").unwrap();
        assert_eq!(std::fs::read(&f).unwrap(), b"three");
        assert_eq!(mode(&f).unwrap(), 0o600);
        assert_eq!(
            std::fs::read_dir(&p).unwrap().count(),
            1,
            "no temporary file left"
        );
    }
}
