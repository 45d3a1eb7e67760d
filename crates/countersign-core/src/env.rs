//! Time and randomness as parameters.
//!
//! Library logic never reads the wall clock or the OS random source directly:
//! it asks an [`Env`], which carries a [`Clock`] and a [`SecureRng`]. Production
//! code uses [`Env::system`]; tests use [`ManualClock`] and [`SeededRng`] so
//! that every run is exact and replayable.

use std::fmt;
use std::sync::{Arc, Mutex, PoisonError};

use chrono::{DateTime, Duration, Utc};
use rand::{RngCore, SeedableRng, rngs::StdRng};
use uuid::Uuid;

use crate::error::{Error, Result};

/// A source of the current time.
pub trait Clock: Send + Sync + fmt::Debug + 'static {
    /// The current instant, in UTC.
    fn now(&self) -> DateTime<Utc>;
}

/// The wall clock. The only place in the workspace allowed to read it.
#[derive(Debug, Clone, Copy, Default)]
pub struct SystemClock;

impl Clock for SystemClock {
    #[expect(
        clippy::disallowed_methods,
        reason = "the one sanctioned read of the wall clock"
    )]
    fn now(&self) -> DateTime<Utc> {
        Utc::now()
    }
}

/// A clock that only moves when told to. Cloning shares the same instant.
#[derive(Debug, Clone)]
pub struct ManualClock {
    now: Arc<Mutex<DateTime<Utc>>>,
}

impl ManualClock {
    /// A clock standing at `start`.
    pub fn new(start: DateTime<Utc>) -> Self {
        Self {
            now: Arc::new(Mutex::new(start)),
        }
    }

    /// A clock standing at 2026-01-01T00:00:00Z, a fixed and readable start.
    pub fn fixed() -> Self {
        Self::new(DateTime::<Utc>::from_timestamp(1_767_225_600, 0).unwrap_or_default())
    }

    /// Move the clock to `to` (backwards is allowed: tests may need it).
    pub fn set(&self, to: DateTime<Utc>) {
        *self.now.lock().unwrap_or_else(PoisonError::into_inner) = to;
    }

    /// Move the clock forward by `by`.
    pub fn advance(&self, by: Duration) {
        let mut now = self.now.lock().unwrap_or_else(PoisonError::into_inner);
        *now += by;
    }
}

impl Clock for ManualClock {
    fn now(&self) -> DateTime<Utc> {
        *self.now.lock().unwrap_or_else(PoisonError::into_inner)
    }
}

/// A cryptographically secure source of random bytes.
///
/// Implementations must be suitable for secrets (tokens, salts, codes).
/// [`SeededRng`] is the exception, for tests only.
pub trait SecureRng: Send + Sync + fmt::Debug + 'static {
    /// Fill `dest` with random bytes, or fail: a caller never proceeds with
    /// bytes that are not random.
    fn fill(&self, dest: &mut [u8]) -> Result<()>;
}

/// The operating system's random source (`getrandom`).
#[derive(Debug, Clone, Copy, Default)]
pub struct OsRng;

/// One request as the services see it: the caller's client details and
/// the one clock reading every check and record of the request uses, so
/// that an expiry check, a lockout decision and the audit stamp of one
/// request never disagree about the time.
#[derive(Debug, Clone, Copy)]
pub(crate) struct Request<'a> {
    /// Who is calling (for the audit trail).
    pub(crate) client: &'a crate::model::ClientInfo,
    /// The request's time, read once from the [`Env`]'s clock.
    pub(crate) now: DateTime<Utc>,
}

impl Env {
    /// Start a request: read the clock once.
    pub(crate) fn request<'a>(&self, client: &'a crate::model::ClientInfo) -> Request<'a> {
        Request {
            client,
            now: self.now(),
        }
    }
}

impl SecureRng for OsRng {
    fn fill(&self, dest: &mut [u8]) -> Result<()> {
        getrandom::fill(dest).map_err(Error::Rng)
    }
}

/// A deterministic generator seeded from a number, **for tests only**: two
/// generators with the same seed yield the same bytes.
#[derive(Debug, Clone)]
pub struct SeededRng {
    inner: Arc<Mutex<StdRng>>,
}

impl SeededRng {
    /// A generator whose whole output is fixed by `seed`.
    pub fn new(seed: u64) -> Self {
        Self {
            inner: Arc::new(Mutex::new(StdRng::seed_from_u64(seed))),
        }
    }
}

impl SecureRng for SeededRng {
    fn fill(&self, dest: &mut [u8]) -> Result<()> {
        self.inner
            .lock()
            .unwrap_or_else(PoisonError::into_inner)
            .fill_bytes(dest);
        Ok(())
    }
}

/// The clock and random source every component takes. Cheap to clone.
#[derive(Debug, Clone)]
pub struct Env {
    clock: Arc<dyn Clock>,
    rng: Arc<dyn SecureRng>,
}

impl Env {
    /// The wall clock and the OS random source.
    pub fn system() -> Self {
        Self::new(SystemClock, OsRng)
    }

    /// An environment from any clock and random source.
    pub fn new(clock: impl Clock, rng: impl SecureRng) -> Self {
        Self {
            clock: Arc::new(clock),
            rng: Arc::new(rng),
        }
    }

    /// A deterministic environment for tests: a [`ManualClock`] (returned so
    /// the test can move it) and a [`SeededRng`].
    pub fn manual(seed: u64) -> (Self, ManualClock) {
        let clock = ManualClock::fixed();
        (Self::new(clock.clone(), SeededRng::new(seed)), clock)
    }

    /// The current instant according to this environment's clock.
    pub fn now(&self) -> DateTime<Utc> {
        self.clock.now()
    }

    /// Fill `dest` with random bytes.
    pub fn fill(&self, dest: &mut [u8]) -> Result<()> {
        self.rng.fill(dest)
    }

    /// `N` random bytes.
    pub fn random_bytes<const N: usize>(&self) -> Result<[u8; N]> {
        let mut out = [0u8; N];
        self.rng.fill(&mut out)?;
        Ok(out)
    }

    /// A UUID version 7 built from this environment's clock and random source,
    /// so ids sort by creation time and tests get the same ids every run.
    pub fn uuid_v7(&self) -> Result<Uuid> {
        let millis = u64::try_from(self.now().timestamp_millis()).unwrap_or(0);
        let random: [u8; 10] = self.random_bytes()?;
        Ok(uuid::Builder::from_unix_timestamp_millis(millis, &random).into_uuid())
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn seeded_rng_is_deterministic_and_ids_follow_the_clock() {
        let (a, clock) = Env::manual(7);
        let (b, _) = Env::manual(7);
        assert_eq!(
            a.random_bytes::<16>().unwrap(),
            b.random_bytes::<16>().unwrap()
        );
        let first = a.uuid_v7().unwrap();
        clock.advance(Duration::milliseconds(5));
        let second = a.uuid_v7().unwrap();
        assert!(second > first, "v7 ids sort by creation time");
        assert_eq!(first.get_version_num(), 7);
    }
}
