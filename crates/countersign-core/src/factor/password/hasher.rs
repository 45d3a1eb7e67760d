use std::sync::Arc;
use std::sync::atomic::{AtomicBool, AtomicU64, Ordering};
use std::time::{Duration, Instant};

use argon2::password_hash::phc::{Output, ParamsString, PasswordHash, Salt};
use argon2::{Algorithm, Argon2, Block, Params, Version};
use serde::{Deserialize, Serialize};
use subtle::ConstantTimeEq;

use super::legacy::{LegacyHash, MAX_ARGON2_KIB_PASSES};
use super::slots::Pool;
use crate::env::Env;
use crate::error::{Error, InvalidInput, Result};

/// argon2id cost parameters.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
pub struct Argon2Params {
    /// Memory in KiB.
    pub m_cost_kib: u32,
    /// Passes over memory.
    pub t_cost: u32,
    /// Lanes.
    pub p_cost: u32,
}

impl Default for Argon2Params {
    /// The OWASP recommendation: m = 19456 KiB (19 MiB), t = 2, p = 1.
    fn default() -> Self {
        Self::OWASP
    }
}

impl Argon2Params {
    /// The OWASP recommendation: m = 19456 KiB (19 MiB), t = 2, p = 1.
    pub const OWASP: Argon2Params = Argon2Params {
        m_cost_kib: 19_456,
        t_cost: 2,
        p_cost: 1,
    };

    /// Cheap parameters **for tests only** (m = 64 KiB, t = 1).
    pub const INSECURE_TEST: Argon2Params = Argon2Params {
        m_cost_kib: 64,
        t_cost: 1,
        p_cost: 1,
    };

    fn to_params(self) -> Result<Params> {
        Params::new(self.m_cost_kib, self.t_cost, self.p_cost, Some(OUTPUT_LEN))
            .map_err(|e| InvalidInput::new("argon2 parameters", e.to_string()).into())
    }
}

const OUTPUT_LEN: usize = 32;
const SALT_LEN: usize = 16;
const DUMMY_SALT: &[u8] = b"countersign-none";
/// Stored hashes asking for more memory than this are refused, not run: a
/// corrupt or hostile row must not make a login allocate gigabytes.
const MAX_VERIFY_M_COST_KIB: u32 = 1024 * 1024;

/// Hashes and verifies passwords with argon2id.
///
/// Guarantees:
/// - at most `max_concurrent` hashes run at once, whatever the number of
///   callers; the rest wait their turn in a queue, so a login flood cannot
///   exhaust memory (each slot owns one buffer, reused while hashes keep
///   coming);
/// - a hasher idle for [`PasswordHasher::IDLE_RELEASE`] (no hash running
///   or queued) holds no buffer: an idle server gives the `slots x m_cost`
///   of hashing memory back;
/// - hashing runs on dedicated threads, one per slot, never on an async
///   worker; a thread that finishes a hash starts the next queued one at
///   once, so under load the slots never wait on the async runtime;
/// - a caller that gives up (drops the future) before its hash starts
///   withdraws it; one that gives up mid-hash does not free its slot until
///   argon2 is done;
/// - hashes are PHC strings, so parameters can rise later:
///   [`PasswordHasher::needs_rehash`] tells when a stored hash is weaker
///   than the current parameters;
/// - [`PasswordHasher::verify`] also verifies the imported hashes a
///   [`LegacyHash`](super::LegacyHash) stores (bcrypt, scrypt, PBKDF2), in
///   their own algorithm, under the same slot bound and on the same
///   threads, and refuses one beyond the import bounds;
///   [`PasswordHasher::needs_rehash`] is always true for them;
/// - comparisons of hash outputs are constant-time;
/// - [`PasswordHasher::verify_dummy`] does the same work as a real
///   verification, for unknown identifiers.
#[derive(Debug, Clone)]
pub struct PasswordHasher {
    inner: Arc<Inner>,
}

#[derive(Debug)]
struct Inner {
    config: Argon2Params,
    params: Params,
    slow_warned: AtomicBool,
    work: Arc<Pool>,
    dummy: String,
    computations: AtomicU64,
}

impl Drop for Inner {
    /// The last clone gone: the hashing threads end.
    fn drop(&mut self) {
        self.work.close();
    }
}

/// How long one argon2 computation at `params` should take at most on a
/// current core with an optimised build: 1 µs per KiB per pass (measured
/// here: about 0.6 µs, so OWASP parameters take some 25 ms). Only used to
/// detect a build that hashes far too slowly.
fn expected_duration(params: &Params) -> Duration {
    let kib_passes = u64::from(params.m_cost()) * u64::from(params.t_cost());
    Duration::from_micros(kib_passes)
}

/// A computation this many times slower than expected triggers the warning.
const SLOW_FACTOR: u32 = 25;
/// Nothing faster than this is ever reported as slow (test parameters).
const SLOW_FLOOR: Duration = Duration::from_millis(200);

impl Inner {
    /// Warn once per hasher when a hash takes far longer than its
    /// parameters should: the usual cause is a debug build of a downstream
    /// crate that does not optimise argon2 (about 100 times slower).
    /// Returns whether this call warned.
    fn note_duration(&self, took: Duration, expected: Duration) -> bool {
        let limit = expected.saturating_mul(SLOW_FACTOR).max(SLOW_FLOOR);
        let warn = took > limit && !self.slow_warned.swap(true, Ordering::Relaxed);
        if warn {
            tracing::warn!(
                took_ms = took.as_millis() as u64,
                expected_ms = expected.as_millis() as u64,
                "argon2 is running far slower than its parameters should; in a debug build, \
                 optimise it: [profile.dev.package.argon2] opt-level = 3 (and blake2)"
            );
        }
        warn
    }
}

impl PasswordHasher {
    /// How long an idle hasher keeps its buffers: a next login within this
    /// time reuses them (a fresh 19 MiB buffer costs about as much again as
    /// the hash, in page faults); after it, the memory goes back to the
    /// system.
    pub const IDLE_RELEASE: Duration = Duration::from_secs(2);

    /// A hasher with `params` and at most `max_concurrent` hashes in flight
    /// (at least 1).
    pub fn new(params: Argon2Params, max_concurrent: usize) -> Result<Self> {
        Self::with_idle_release(params, max_concurrent, Self::IDLE_RELEASE)
    }

    /// As [`new`](Self::new), with buffers given back after `idle` instead
    /// of [`IDLE_RELEASE`](Self::IDLE_RELEASE).
    fn with_idle_release(
        params: Argon2Params,
        max_concurrent: usize,
        idle: Duration,
    ) -> Result<Self> {
        let argon_params = params.to_params()?;
        // A hash no password reaches: an all-zero output. Verifying against
        // it runs argon2 at current parameters like any real verification.
        let dummy = encode_phc(&argon_params, DUMMY_SALT, &[0u8; OUTPUT_LEN])?;
        let work = Pool::new(max_concurrent, argon_params.block_count(), idle);
        Ok(Self {
            inner: Arc::new(Inner {
                config: params,
                params: argon_params,
                slow_warned: AtomicBool::new(false),
                work,
                dummy,
                computations: AtomicU64::new(0),
            }),
        })
    }

    /// OWASP parameters, one hash in flight per available core.
    pub fn owasp() -> Result<Self> {
        let cores = std::thread::available_parallelism().map_or(2, std::num::NonZero::get);
        Self::new(Argon2Params::OWASP, cores)
    }

    /// How many hash computations (argon2 hashes and verifications, dummy
    /// ones included, and verifications of imported hashes) this hasher has
    /// run: a metric, and how tests check that two paths did the same work.
    pub fn computations(&self) -> u64 {
        self.inner.computations.load(Ordering::Relaxed)
    }

    /// How many argon2 computations are running right now (a gauge for
    /// metrics: the hashing queue's busy slots).
    pub fn in_flight(&self) -> usize {
        self.inner.work.running()
    }

    /// How many callers are waiting for a free slot right now (a gauge for
    /// metrics: the hashing queue's depth). A caller that gives up while
    /// waiting leaves the count.
    pub fn waiting(&self) -> usize {
        self.inner.work.waiting()
    }

    /// The most computations that ever ran at once: never more than the
    /// slot count, even when callers give up (drop their future) while
    /// their hash is running.
    pub fn peak_in_flight(&self) -> usize {
        self.inner.work.peak()
    }

    /// How many hashing slots (threads) this hasher has.
    pub fn slots(&self) -> usize {
        self.inner.work.slots()
    }

    /// The parameters new hashes use.
    pub fn params(&self) -> Argon2Params {
        self.inner.config
    }

    /// Hash a (normalised) password with a fresh salt from `env`.
    pub async fn hash(&self, password: &str, env: &Env) -> Result<String> {
        let salt: [u8; SALT_LEN] = env.random_bytes()?;
        let params = self.inner.params.clone();
        let pwd = password.as_bytes().to_vec();
        let out = self
            .run(Some(params.clone()), move |blocks| {
                let mut out = [0u8; OUTPUT_LEN];
                Argon2::new(Algorithm::Argon2id, Version::V0x13, params)
                    .hash_password_into_with_memory(&pwd, &salt, &mut out, blocks)
                    .map(|()| out)
                    .map_err(|e| Error::hashing_from("argon2", e))
            })
            .await??;
        encode_phc(&self.inner.params, &salt, &out)
    }

    /// Whether `password` matches the stored PHC string: argon2, or an
    /// imported hash as a [`LegacyHash`](super::LegacyHash) stores it
    /// (bcrypt, `$scrypt$`, `$pbkdf2-sha256$`, `$pbkdf2-sha512$`),
    /// verified in its own algorithm. A malformed or unsupported hash, or
    /// an imported one beyond the import bounds, is an error, not a
    /// mismatch.
    pub async fn verify(&self, password: &str, phc: &str) -> Result<bool> {
        if !phc.starts_with("$argon2") {
            let imported = LegacyHash::from_stored(phc)?;
            let pwd = password.as_bytes().to_vec();
            return self.run(None, move |_| imported.verify(&pwd)).await?;
        }
        let parsed = ParsedHash::parse(phc)?;
        let pwd = password.as_bytes().to_vec();
        let ParsedHash {
            algorithm,
            version,
            params,
            salt,
            expected,
        } = parsed;
        let matches = self
            .run(Some(params.clone()), move |blocks| {
                let mut out = vec![0u8; expected.len()];
                Argon2::new(algorithm, version, params)
                    .hash_password_into_with_memory(&pwd, &salt, &mut out, blocks)
                    .map_err(|e| Error::hashing_from("argon2", e))?;
                Ok::<bool, Error>(bool::from(out.ct_eq(&expected)))
            })
            .await??;
        Ok(matches)
    }

    /// Do the work of one verification against a hash no password matches.
    /// Used when the identifier is unknown, so that path costs what a wrong
    /// password costs.
    pub async fn verify_dummy(&self, password: &str) -> Result<()> {
        // The result is always false; computing it is the point.
        let _ = self.verify(password, &self.inner.dummy).await?;
        Ok(())
    }

    /// Whether a stored hash should be replaced by one at current
    /// parameters (weaker or different algorithm, version or costs).
    pub fn needs_rehash(&self, phc: &str) -> bool {
        match ParsedHash::parse(phc) {
            Ok(h) => {
                h.algorithm != Algorithm::Argon2id
                    || h.version != Version::V0x13
                    || h.params.m_cost() != self.inner.params.m_cost()
                    || h.params.t_cost() != self.inner.params.t_cost()
                    || h.params.p_cost() != self.inner.params.p_cost()
                    || h.expected.len() != OUTPUT_LEN
            }
            Err(_) => true,
        }
    }

    /// Run `f` on a hashing thread, holding its slot for the whole time,
    /// with an argon2 memory buffer of the right size for `params`
    /// (`None`: an imported hash, which brings its own memory, and `f` gets
    /// an empty buffer).
    async fn run<T, F>(&self, params: Option<Params>, f: F) -> Result<T>
    where
        T: Send + 'static,
        F: FnOnce(&mut [Block]) -> T + Send + 'static,
    {
        let blocks = params.as_ref().map(Params::block_count);
        let expected = params.as_ref().map(expected_duration);
        let inner = Arc::clone(&self.inner);
        self.inner
            .work
            .run(move |slot| {
                inner.computations.fetch_add(1, Ordering::Relaxed);
                let started = Instant::now();
                let out = slot.run(blocks, f);
                if let Some(expected) = expected {
                    inner.note_duration(started.elapsed(), expected);
                }
                out
            })
            .await
    }
}

struct ParsedHash {
    algorithm: Algorithm,
    version: Version,
    params: Params,
    salt: Vec<u8>,
    expected: Vec<u8>,
}

impl ParsedHash {
    fn parse(phc: &str) -> Result<Self> {
        let bad = Error::hashing;
        if phc.len() > 512 {
            return Err(bad("stored hash is unusable: too long"));
        }
        let hash = PasswordHash::new(phc)
            .map_err(|e| Error::hashing_from("stored hash is unusable: not a PHC string", e))?;
        let algorithm = Algorithm::try_from(hash.algorithm.as_str())
            .map_err(|_| bad("stored hash is unusable: not argon2"))?;
        let version = match hash.version {
            Some(v) => {
                Version::try_from(v).map_err(|_| bad("stored hash is unusable: unknown version"))?
            }
            None => Version::V0x10,
        };
        let params = Params::try_from(&hash)
            .map_err(|e| Error::hashing_from("stored hash is unusable: bad parameters", e))?;
        if params.m_cost() > MAX_VERIFY_M_COST_KIB {
            return Err(bad(
                "stored hash is unusable: memory cost above the allowed maximum",
            ));
        }
        let salt = hash
            .salt
            .ok_or_else(|| bad("stored hash is unusable: no salt"))?
            .as_ref()
            .to_vec();
        let expected = hash
            .hash
            .ok_or_else(|| bad("stored hash is unusable: no output"))?
            .as_bytes()
            .to_vec();
        Ok(Self {
            algorithm,
            version,
            params,
            salt,
            expected,
        })
    }
}

/// Check an argon2 PHC string offered for import: usable by
/// [`PasswordHasher::verify`], with no more than
/// [`MAX_ARGON2_KIB_PASSES`] of work and an output of at least 16 bytes.
pub(super) fn check_imported_argon2(phc: &str) -> Result<(), InvalidInput> {
    let bad = |why: &str| InvalidInput::new("password hash", why);
    let h = ParsedHash::parse(phc).map_err(|_| bad("not a usable argon2 PHC string"))?;
    let work = u64::from(h.params.m_cost()) * u64::from(h.params.t_cost());
    if work > MAX_ARGON2_KIB_PASSES {
        return Err(InvalidInput::new(
            "password hash",
            format!(
                "argon2 memory times passes is {work} KiB, above the allowed {MAX_ARGON2_KIB_PASSES}"
            ),
        ));
    }
    if h.expected.len() < 16 {
        return Err(bad("the argon2 output must be at least 16 bytes"));
    }
    Ok(())
}

fn encode_phc(params: &Params, salt: &[u8], out: &[u8]) -> Result<String> {
    let enc = |e: argon2::password_hash::phc::Error| Error::hashing_from("phc encoding", e);
    let phc = PasswordHash {
        algorithm: argon2::ARGON2ID_IDENT,
        version: Some(Version::V0x13.into()),
        params: ParamsString::try_from(params)
            .map_err(|e| Error::hashing_from("phc encoding", e))?,
        salt: Some(Salt::new(salt).map_err(enc)?),
        hash: Some(Output::new(out).map_err(enc)?),
    };
    Ok(phc.to_string())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[tokio::test]
    async fn hash_verify_and_rehash_detection() {
        let (env, _) = Env::manual(3);
        let weak = PasswordHasher::new(Argon2Params::INSECURE_TEST, 2).unwrap();
        let phc = weak.hash("hunter2 hunter2", &env).await.unwrap();
        assert!(phc.starts_with("$argon2id$v=19$m=64,t=1,p=1$"), "{phc}");
        assert!(weak.verify("hunter2 hunter2", &phc).await.unwrap());
        assert!(!weak.verify("hunter2 hunter3", &phc).await.unwrap());
        assert!(!weak.needs_rehash(&phc));

        // A stronger hasher verifies the old hash and asks for an upgrade.
        let stronger = PasswordHasher::new(
            Argon2Params {
                m_cost_kib: 128,
                t_cost: 2,
                p_cost: 1,
            },
            1,
        )
        .unwrap();
        assert!(stronger.verify("hunter2 hunter2", &phc).await.unwrap());
        assert!(stronger.needs_rehash(&phc));
        // And a weaker one verifies a stronger hash with a one-off buffer.
        let strong_phc = stronger.hash("pw", &env).await.unwrap();
        assert!(weak.verify("pw", &strong_phc).await.unwrap());
    }

    #[tokio::test]
    async fn the_owasp_default_matches_the_reference_format() {
        let (env, _) = Env::manual(4);
        let h = PasswordHasher::owasp().unwrap();
        let phc = h.hash("x", &env).await.unwrap();
        assert!(phc.starts_with("$argon2id$v=19$m=19456,t=2,p=1$"), "{phc}");
    }

    #[tokio::test]
    async fn corrupt_or_hostile_hashes_are_errors() {
        let h = PasswordHasher::new(Argon2Params::INSECURE_TEST, 1).unwrap();
        for bad in [
            "",
            "plaintext",
            "$argon2id$v=19$m=64,t=1,p=1$c2FsdHNhbHQ",
            "$argon2id$v=19$m=4294967295,t=1,p=1$c2FsdHNhbHRzYWx0$aGFzaGhhc2hoYXNoaGFzaA",
            // Imported forms beyond the import bounds, or malformed.
            "$scrypt$ln=24,r=8,p=1$aM15713r3Xsvxbi31lqr1Q$nFNh2CVHVjNldFVKDHDlm4CbdRSCdEBsjjJxD+iCs5E",
            "$2b$31$abcdefghijklmnopqrstuu7EJV7kdjBBQxyb0HjTh9KS7.Lah/6CG",
            "$pbkdf2-sha256$i=4294967295,l=32$c2Vhc2FsdA$8xBlGd3jVgvJ+92hWPxi5ww0uuAuAnKgC45eudxro7c",
            "$md5$whatever",
            // Source syntaxes are read at import, never from storage.
            "pbkdf2_sha256$1000$seasalt$8xBlGd3jVgvJ+92hWPxi5ww0uuAuAnKgC45eudxro7c=",
        ] {
            assert!(h.verify("pw", bad).await.is_err(), "{bad}");
            assert!(h.needs_rehash(bad));
        }
    }

    /// Every slot of `h` busy until the returned gate opens (`open` it):
    /// jobs that wait on it, started and running when this returns.
    fn occupy(h: &PasswordHasher) -> std::sync::mpsc::Sender<()> {
        let (open, gate) = std::sync::mpsc::channel::<()>();
        let gate = Arc::new(std::sync::Mutex::new(gate));
        for _ in 0..h.slots() {
            let gate = Arc::clone(&gate);
            let work = Arc::clone(&h.inner.work);
            tokio::spawn(async move {
                work.run(move |_| {
                    let _ = gate.lock().unwrap().recv();
                })
                .await
            });
        }
        let deadline = Instant::now() + Duration::from_secs(10);
        while h.in_flight() < h.slots() {
            assert!(Instant::now() < deadline, "slots never filled");
            std::thread::sleep(Duration::from_millis(1));
        }
        open
    }

    /// Open a gate made by [`occupy`] for all its jobs.
    fn release(open: std::sync::mpsc::Sender<()>, slots: usize) {
        for _ in 0..slots {
            let _ = open.send(());
        }
    }

    async fn settle(h: &PasswordHasher, want: usize) {
        for _ in 0..4_000 {
            if h.waiting() == want {
                return;
            }
            tokio::time::sleep(Duration::from_micros(500)).await;
        }
        panic!("waiting() is {}, expected {want}", h.waiting());
    }

    /// Buffers are reused while hashes queue up (16 hashes on 2 slots
    /// allocate one buffer per slot, never more), and at most 2 run at once.
    #[tokio::test(flavor = "multi_thread", worker_threads = 4)]
    async fn concurrent_hashes_never_exceed_the_slot_bound() {
        let (env, _) = Env::manual(5);
        let h = PasswordHasher::new(Argon2Params::INSECURE_TEST, 2).unwrap();
        // Both slots busy until all 16 callers queue.
        let gate = occupy(&h);
        let mut tasks = Vec::new();
        for i in 0..16 {
            let (h, env) = (h.clone(), env.clone());
            tasks.push(tokio::spawn(async move {
                h.hash(&format!("pw{i}"), &env).await.unwrap()
            }));
        }
        settle(&h, 16).await;
        release(gate, 2);
        for t in tasks {
            t.await.unwrap();
        }
        assert!(h.peak_in_flight() <= 2, "{}", h.peak_in_flight());
        let allocated = h.inner.work.allocations();
        assert!(
            (1..=2).contains(&allocated),
            "{allocated} buffers for 16 hashes"
        );
        assert_eq!(h.computations(), 16);
        assert!(!h.verify("anything", &h.inner.dummy).await.unwrap());
    }

    /// Callers that give up mid-hash (a client disconnecting during a login
    /// drops the future) do not free their slot until argon2 is done, so
    /// the bound holds: 12 cancelled hashes on 2 slots never run more than
    /// 2 at once.
    #[tokio::test(flavor = "multi_thread", worker_threads = 4)]
    async fn cancelled_hashes_keep_their_slot_until_done() {
        let (env, _) = Env::manual(6);
        let h = PasswordHasher::new(Argon2Params::OWASP, 2).unwrap();
        for i in 0..12u64 {
            let (h2, env) = (h.clone(), env.clone());
            let task = tokio::spawn(async move { h2.hash("pw", &env).await });
            // Once this hash holds a slot and runs, the client goes away.
            for _ in 0..2_000 {
                if h.computations() > i {
                    break;
                }
                tokio::time::sleep(std::time::Duration::from_micros(200)).await;
            }
            task.abort();
            let _ = task.await;
        }
        // Wait (bounded) for the abandoned computations to finish.
        for _ in 0..2_000 {
            if h.in_flight() == 0 {
                break;
            }
            tokio::time::sleep(std::time::Duration::from_millis(5)).await;
        }
        assert_eq!(h.computations(), 12);
        assert!(
            h.peak_in_flight() <= 2,
            "peak {} hashes in flight",
            h.peak_in_flight()
        );
    }

    /// The queue depth counts callers waiting for a slot; one that gives
    /// up while waiting leaves the count at once and its hash never runs.
    #[tokio::test(flavor = "multi_thread", worker_threads = 2)]
    async fn the_queue_depth_counts_waiting_callers() {
        let (env, _) = Env::manual(7);
        let h = PasswordHasher::new(Argon2Params::INSECURE_TEST, 1).unwrap();
        let gate = occupy(&h);
        let spawn = || {
            let (h, env) = (h.clone(), env.clone());
            tokio::spawn(async move { h.hash("pw", &env).await })
        };
        let (first, second) = (spawn(), spawn());
        settle(&h, 2).await;
        assert_eq!(h.in_flight(), 1, "only the gate's job");
        second.abort();
        let _ = second.await;
        settle(&h, 1).await;
        release(gate, 1);
        first.await.unwrap().unwrap();
        assert_eq!(h.waiting(), 0);
        assert_eq!(
            h.computations(),
            1,
            "the first hash only: the second never ran"
        );
    }

    /// An idle hashing thread keeps its buffer while hashes keep coming (a
    /// next hash within the idle time allocates nothing), then gives it
    /// back; the next hash allocates again.
    #[tokio::test(flavor = "multi_thread", worker_threads = 2)]
    async fn idle_buffers_are_released() {
        let (env, _) = Env::manual(8);
        let idle = Duration::from_secs(1);
        let h = PasswordHasher::with_idle_release(Argon2Params::INSECURE_TEST, 1, idle).unwrap();
        h.hash("pw", &env).await.unwrap();
        assert_eq!(h.inner.work.buffers_held(), 1);
        h.hash("pw", &env).await.unwrap();
        assert_eq!(h.inner.work.allocations(), 1, "reused");
        for _ in 0..200 {
            if h.inner.work.buffers_held() == 0 {
                break;
            }
            tokio::time::sleep(Duration::from_millis(10)).await;
        }
        assert_eq!(
            h.inner.work.buffers_held(),
            0,
            "released after an idle period"
        );
        h.hash("pw", &env).await.unwrap();
        assert_eq!(h.inner.work.allocations(), 2);
    }

    /// The hashing threads end once every clone of the hasher is gone:
    /// nothing holds the pool afterwards.
    #[tokio::test(flavor = "multi_thread", worker_threads = 2)]
    async fn threads_end_with_the_hasher() {
        let (env, _) = Env::manual(9);
        let h = PasswordHasher::new(Argon2Params::INSECURE_TEST, 2).unwrap();
        let (a, b) = (h.clone(), h.clone());
        let _ = tokio::join!(a.hash("pw", &env), b.hash("pw", &env));
        let pool = Arc::downgrade(&h.inner.work);
        drop((h, a, b));
        for _ in 0..1_000 {
            if pool.strong_count() == 0 {
                return;
            }
            tokio::time::sleep(Duration::from_millis(5)).await;
        }
        panic!("{} holders of the pool remain", pool.strong_count());
    }

    /// A hash far slower than its parameters should be (an unoptimised
    /// argon2 in a downstream debug build) warns once; a normal one, or a
    /// fast test-parameter one, never does.
    #[test]
    fn a_far_too_slow_hash_warns_once() {
        let h = PasswordHasher::owasp().unwrap();
        let expected = expected_duration(&h.inner.params);
        assert!(expected > Duration::from_millis(10), "{expected:?}");
        assert!(!h.inner.note_duration(expected, expected));
        assert!(!h.inner.note_duration(expected * 10, expected));
        assert!(h.inner.note_duration(expected * 100, expected));
        assert!(
            !h.inner.note_duration(expected * 100, expected),
            "only once"
        );
        let quick = PasswordHasher::new(Argon2Params::INSECURE_TEST, 1).unwrap();
        let tiny = expected_duration(&quick.inner.params);
        assert!(
            !quick.inner.note_duration(tiny * 1000, tiny),
            "under the floor"
        );
    }

    /// A hash runs off the async worker: on a one-thread runtime, another
    /// task keeps running while an OWASP-cost hash (~15 ms) is in flight.
    #[test]
    fn hashing_never_blocks_the_async_worker() {
        let rt = tokio::runtime::Builder::new_current_thread()
            .enable_all()
            .build()
            .unwrap();
        rt.block_on(async {
            let (env, _) = Env::manual(6);
            let h = PasswordHasher::new(Argon2Params::OWASP, 1).unwrap();
            let ticks = std::sync::Arc::new(std::sync::atomic::AtomicU64::new(0));
            let done = std::sync::Arc::new(std::sync::atomic::AtomicBool::new(false));
            let (t, d) = (ticks.clone(), done.clone());
            let ticker = tokio::spawn(async move {
                while !d.load(Ordering::SeqCst) {
                    t.fetch_add(1, Ordering::SeqCst);
                    tokio::task::yield_now().await;
                }
            });
            let before = ticks.load(Ordering::SeqCst);
            h.hash("a long enough passphrase", &env).await.unwrap();
            let during = ticks.load(Ordering::SeqCst) - before;
            done.store(true, Ordering::SeqCst);
            ticker.await.unwrap();
            assert!(
                during > 100,
                "the worker stayed free while hashing ({during} ticks)"
            );
        });
    }

    /// The hashing threads need no async runtime: a future polled by hand
    /// (no tokio) gets its answer.
    #[test]
    fn hashing_needs_no_runtime() {
        let h = PasswordHasher::new(Argon2Params::INSECURE_TEST, 1).unwrap();
        let (env, _) = Env::manual(1);
        let phc = block_on(h.hash("pw", &env)).unwrap();
        assert!(block_on(h.verify("pw", &phc)).unwrap());
    }

    fn block_on<F: std::future::Future>(f: F) -> F::Output {
        use std::task::{Context, Poll, Waker};
        let mut f = std::pin::pin!(f);
        let mut cx = Context::from_waker(Waker::noop());
        loop {
            if let Poll::Ready(v) = f.as_mut().poll(&mut cx) {
                return v;
            }
            std::thread::yield_now();
        }
    }
}
