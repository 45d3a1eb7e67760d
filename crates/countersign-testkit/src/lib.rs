//! The countersign backend conformance suite, fixtures and test helpers.
//!
//! Every guarantee the store traits of countersign-core promise is one
//! function in [`conformance`], generic over the store. A backend runs the
//! whole suite, one `#[test]` per guarantee, with one macro call in its
//! integration tests:
//!
//! ```text
//! async fn fresh_store() -> MyStore {
//!     // an empty store: a new database, schema or instance per call
//! }
//! countersign_testkit::conformance_suite!(fresh_store);
//! ```
//!
//! The store must be `Clone` (clones share state; the concurrency tests
//! hand clones to many tasks) and implement [`ConformanceStore`]'s traits.
//! Timestamps must round-trip with at least microsecond precision.

#![allow(
    clippy::unwrap_used,
    clippy::expect_used,
    clippy::panic,
    clippy::indexing_slicing,
    reason = "a test harness: a failed expectation is a test failure"
)]

pub mod conformance;
pub mod engine;
pub mod fixtures;

use std::future::Future;

use countersign_core::{AuditQuery, FactorStore, FlowStore, IdentityStore, KeyStore, SessionStore};

/// Everything the conformance suite exercises.
pub trait ConformanceStore:
    IdentityStore + FactorStore + FlowStore + SessionStore + KeyStore + AuditQuery + Clone
{
}
impl<T> ConformanceStore for T where
    T: IdentityStore + FactorStore + FlowStore + SessionStore + KeyStore + AuditQuery + Clone
{
}

/// Run an async test body on a fresh multi-threaded runtime (4 workers, so
/// the concurrency tests really race).
pub fn run<F: Future<Output = ()>>(body: F) {
    tokio::runtime::Builder::new_multi_thread()
        .worker_threads(4)
        .enable_all()
        .build()
        .expect("test runtime")
        .block_on(body);
}

/// Instantiate the whole conformance suite for a backend: one `#[test]`
/// per guarantee, each on a store from `$factory` (an `async fn() -> S`
/// returning an empty store).
#[macro_export]
macro_rules! conformance_suite {
    ($factory:path) => {
        $crate::__conformance_tests!($factory;
            provision_creates_tenant_with_factors_and_enabled_methods,
            provision_with_taken_slug_conflicts_and_writes_nothing,
            provision_with_taken_id_conflicts,
            unknown_tenant_lookups_are_none,
            update_tenant_policy_persists_and_unknown_tenant_is_not_found,
            created_user_round_trips_exactly,
            identifiers_are_unique_per_tenant_only,
            duplicate_user_id_conflicts,
            create_user_in_unknown_tenant_is_not_found,
            create_user_refuses_reserved_ids,
            create_user_with_credentials_is_atomic,
            user_lookups_are_tenant_scoped,
            list_users_pages_by_id_within_one_tenant,
            set_user_state_is_compare_and_set,
            concurrent_state_transitions_have_one_winner,
            set_user_state_in_other_tenant_is_not_found,
            last_login_is_recorded_and_tenant_scoped,
            failed_attempts_lock_at_the_policy_limit,
            concurrent_failed_attempts_are_counted_exactly,
            lock_lifts_after_its_duration,
            failure_window_expiry_restarts_the_count,
            reset_failed_attempts_clears_the_record,
            failure_records_are_tenant_scoped,
            tenant_factor_settings_save_and_replace,
            tenant_keeps_at_least_one_factor,
            user_factor_insert_only_if_absent,
            user_factor_compare_and_save_checks_the_version,
            concurrent_compare_and_save_has_exactly_one_winner,
            user_factors_are_tenant_scoped,
            remove_user_factor_reports_existence,
            methods_are_listed_per_exact_scope,
            available_methods_resolve_user_overrides,
            tenant_keeps_one_enabled_method,
            unknown_methods_report_false,
            methods_need_an_existing_scope,
            password_history_is_newest_first_and_pruned,
            password_history_is_tenant_scoped,
            erase_user_removes_every_personal_row,
            erase_user_pseudonymises_audit_events,
            erase_user_in_other_tenant_changes_nothing,
            audit_query_never_crosses_tenants,
            audit_query_is_newest_first_with_id_tiebreak,
            audit_filters_combine,
            audit_limit_defaults_and_caps,
            audit_events_round_trip_exactly,
            flow_round_trips_at_version_one,
            flows_are_tenant_scoped,
            duplicate_flow_keys_conflict,
            flow_compare_and_save_checks_the_version,
            concurrent_flow_saves_have_one_winner,
            delete_flow_reports_existence,
            expired_flows_are_deleted_at_their_time,
            flows_need_an_existing_tenant_and_user,
            erase_user_removes_their_flows,
            every_credential_kind_round_trips,
            session_round_trips,
            validation_renews_near_the_idle_deadline,
            sessions_end_at_their_deadlines,
            sessions_are_tenant_scoped,
            ending_a_session_revokes_its_family,
            ending_all_user_sessions_keeps_the_named_one,
            user_sessions_list_live_ones_newest_first,
            refresh_rotation_and_reuse_detection,
            concurrent_refreshes_rotate_once,
            refresh_reuse_grace_is_honoured,
            expired_sessions_and_families_are_cleaned,
            erase_user_removes_sessions_and_families,
            signing_keys_rotate_with_overlap,
            expired_signing_keys_are_deleted,
        );
    };
}

#[doc(hidden)]
#[macro_export]
macro_rules! __conformance_tests {
    ($factory:path; $($name:ident),+ $(,)?) => {
        $(
            #[test]
            fn $name() {
                $crate::run(async { $crate::conformance::$name($factory().await).await });
            }
        )+

        /// The suite instantiated here is the whole suite.
        #[test]
        fn conformance_suite_is_complete() {
            let here: &[&str] = &[$(stringify!($name)),+];
            assert_eq!(here, $crate::conformance::ALL);
        }
    };
}

/// Instantiate the login-engine suite for a backend: one `#[test]` per
/// scenario (every factor end to end through `AuthnService`), each on a
/// store from `$factory`, plus a completeness check.
#[macro_export]
macro_rules! engine_suite {
    ($factory:path) => {
        $crate::__engine_tests!($factory;
                password_then_totp_completes_the_mfa_method,
                a_totp_code_works_once_even_under_concurrent_submission,
                recovery_codes_are_single_use_and_regeneration_voids_the_old_set,
                email_codes_are_hashed_expire_cap_guesses_and_work_once,
                email_code_guesses_are_capped,
                expired_email_codes_are_refused,
                bad_input_is_typed_audited_and_changes_nothing,
                unknown_identifiers_get_a_flow_that_never_succeeds,
                failures_across_factors_lock_the_account_and_flows_end_locked,
                suspension_mid_flow_denies_it,
                a_chosen_method_limits_the_flow,
                passkeys_register_sign_in_and_are_managed,
                discoverable_passkeys_sign_in_without_a_username,
                step_up_proves_a_fresh_factor,
                factors_are_removed_and_enrolment_needs_the_tenant_to_offer_them,
                erasure_ends_flows_and_credentials,
            sessions_validate_renew_and_expire,
            refresh_reuse_revokes_the_login,
            concurrent_refreshes_yield_one_pair,
            access_tokens_verify_and_keys_rotate_with_overlap,
            bad_access_tokens_are_refused_with_a_reason,
            revocation_ends_sessions_at_once,
            introspection_answers_for_both_token_kinds,
            cleanup_removes_expired_state,
        );
    };
}

#[doc(hidden)]
#[macro_export]
macro_rules! __engine_tests {
    ($factory:path; $($name:ident),+ $(,)?) => {
        $(
            #[test]
            fn $name() {
                $crate::run(async { $crate::engine::$name($factory().await).await });
            }
        )+

        /// The suite instantiated here is the whole suite.
        #[test]
        fn engine_suite_is_complete() {
            let here: &[&str] = &[$(stringify!($name)),+];
            assert_eq!(here, $crate::engine::ALL);
        }
    };
}
