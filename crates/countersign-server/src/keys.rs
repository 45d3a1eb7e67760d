//! Secrets at rest: the sealing key (TOTP secrets, signing keys) and the
//! code key (hashes of emailed codes, decoys). From configuration when
//! set; else, for SQLite, generated on first start into
//! `<data-dir>/keys/` (mode `0600`) and read back on later starts.

use std::path::Path;

use base64::Engine;
use base64::engine::general_purpose::URL_SAFE_NO_PAD;
use countersign_core::{CodeKey, Env, SealingKey};

use crate::config::{Database, Settings, decode_key};
use crate::error::{Failure, fail};
use crate::files;

/// The file holding a generated sealing key: `<id> <base64url>`.
pub const SEALING_FILE: &str = "sealing.key";
/// The file holding a generated code key: `<base64url>`.
pub const CODE_FILE: &str = "code.key";

/// The two keys the services need.
#[derive(Clone)]
pub struct Keys {
    /// Seals secrets at rest.
    pub sealing: SealingKey,
    /// Keys code hashes.
    pub code: CodeKey,
}

impl std::fmt::Debug for Keys {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Keys")
            .field("sealing", &self.sealing)
            .field("code", &"<redacted>")
            .finish()
    }
}

/// The keys for `settings`: configured ones first; for SQLite the files
/// in `<data-dir>/keys/`, created on first use. (Postgres without both
/// configured is refused when the configuration is checked.)
pub fn resolve(settings: &Settings, env: &Env) -> Result<Keys, Failure> {
    let dir = settings.data_dir.join("keys");
    let local = matches!(settings.database, Database::Sqlite(_));
    let sealing = match &settings.sealing_key {
        Some(k) => k.clone(),
        None if local => sealing_from_file(&dir, &settings.sealing_key_id, env)?,
        None => return Err(Failure::Failed("no sealing key configured".into())),
    };
    let code = match &settings.code_key {
        Some(k) => k.clone(),
        None if local => code_from_file(&dir, env)?,
        None => return Err(Failure::Failed("no code key configured".into())),
    };
    Ok(Keys { sealing, code })
}

fn sealing_from_file(dir: &Path, id: &str, env: &Env) -> Result<SealingKey, Failure> {
    let path = dir.join(SEALING_FILE);
    let fresh = || -> Result<String, Failure> {
        let bytes: [u8; 32] = env
            .random_bytes()
            .map_err(|e| fail("generating the sealing key", e))?;
        Ok(format!("{id} {}\n", URL_SAFE_NO_PAD.encode(bytes)))
    };
    let text = read_or_create(dir, &path, fresh)?;
    let bad = || Failure::Failed(format!("{}: not `<id> <base64url key>`", path.display()));
    let (id, key) = text.trim().split_once(' ').ok_or_else(bad)?;
    SealingKey::from_base64(id.trim(), key.trim()).map_err(|_| bad())
}

fn code_from_file(dir: &Path, env: &Env) -> Result<CodeKey, Failure> {
    let path = dir.join(CODE_FILE);
    let fresh = || -> Result<String, Failure> {
        let bytes: [u8; 32] = env
            .random_bytes()
            .map_err(|e| fail("generating the code key", e))?;
        Ok(format!("{}\n", URL_SAFE_NO_PAD.encode(bytes)))
    };
    let text = read_or_create(dir, &path, fresh)?;
    decode_key(&text)
        .and_then(|b| CodeKey::from_slice(&b).ok())
        .ok_or_else(|| Failure::Failed(format!("{}: not a base64url 32-byte key", path.display())))
}

/// The text of `path`, creating it (private, atomically) from `fresh()`
/// when missing.
fn read_or_create(
    dir: &Path,
    path: &Path,
    fresh: impl FnOnce() -> Result<String, Failure>,
) -> Result<String, Failure> {
    if !path.exists() {
        files::private_dir(dir).map_err(|e| fail(&format!("creating {}", dir.display()), e))?;
        let text = fresh()?;
        if files::write_private_new(path, text.as_bytes())
            .map_err(|e| fail(&format!("writing {}", path.display()), e))?
        {
            tracing::info!(path = %path.display(), "generated a key");
        }
    }
    std::fs::read_to_string(path).map_err(|e| fail(&format!("reading {}", path.display()), e))
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::config::{Layer, Layers};

    /// Generated keys are private files, stable across starts.
    #[test]
    fn generated_keys_are_private_and_stable() {
        let dir = tempfile::tempdir().unwrap();
        let cli = Layer {
            data_dir: Some(dir.path().to_string_lossy().into_owned()),
            ..Layer::default()
        };
        let settings = Layers::load(None, &Default::default(), cli)
            .unwrap()
            .settings()
            .unwrap();
        let env = Env::system();
        resolve(&settings, &env).unwrap();
        let sealing = std::fs::read(dir.path().join("keys").join(SEALING_FILE)).unwrap();
        let code = std::fs::read(dir.path().join("keys").join(CODE_FILE)).unwrap();
        for f in [SEALING_FILE, CODE_FILE] {
            assert_eq!(
                files::mode(&dir.path().join("keys").join(f)).unwrap(),
                0o600
            );
        }
        let again = resolve(&settings, &env).unwrap();
        assert_eq!(again.sealing.id(), "k1");
        assert_eq!(
            std::fs::read(dir.path().join("keys").join(SEALING_FILE)).unwrap(),
            sealing
        );
        assert_eq!(
            std::fs::read(dir.path().join("keys").join(CODE_FILE)).unwrap(),
            code
        );
    }
}
