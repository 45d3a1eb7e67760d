//! The store trait implementations, one file per trait of countersign-core.
//! Each method takes the state's lock once (`MemoryStore::begin`), so
//! each is atomic.

mod audit;
mod factors;
mod federated;
mod flows;
mod identity;
mod keys;
mod policies;
mod ratelimit;
mod rbac;
mod sessions;
mod verification;
