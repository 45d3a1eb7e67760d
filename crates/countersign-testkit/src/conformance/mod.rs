//! The conformance suite: one function per guarantee of the store traits.
//!
//! Each function takes an empty store and panics (fails the test) if the
//! store breaks the guarantee its name states. The functions live in one
//! module per concern; [`ALL`] and the tests that
//! [`conformance_suite!`](crate::conformance_suite) instantiates both come
//! from the one list in this file, so a guarantee's name is written once
//! (besides its function). The `audit` module needs
//! [`AuditQuery`](countersign_core::AuditQuery) and runs only when the
//! backend opts in.

pub mod audit;
pub mod factors;
pub mod federated;
pub mod flows;
pub mod identity;
pub mod keys;
pub mod policies;
pub mod profiles;
pub mod ratelimit;
pub mod rbac;
pub mod rbac_cascades;
pub mod rbac_reads;
pub mod sessions;
pub mod verification;

/// The list of every guarantee, by module: the one place a name is
/// written. Calls `$cb! { $($args)* ; module: [names], ... ; audit: [names] }`
/// (the modules every store runs, then the opt-in `AuditQuery` module).
#[doc(hidden)]
#[macro_export]
macro_rules! __conformance_list {
    ($cb:path; $($args:tt)*) => {
        $cb! { $($args)* ;
            identity: [
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
                password_history_is_newest_first_and_pruned,
                password_history_is_tenant_scoped,
                erase_user_removes_every_personal_row,
                erase_user_in_other_tenant_changes_nothing,
            ],
            profiles: [
                profile_schemas_round_trip_in_the_tenant_policy,
                profile_updates_round_trip,
                update_profile_is_compare_and_set,
                concurrent_profile_updates_from_one_read_have_one_winner,
                update_profile_of_another_tenants_user_is_not_found,
                search_text_matches_identifier_email_or_display_name,
                search_text_wildcards_match_literally,
                search_filters_by_state_and_tier,
                search_pages_visit_every_match_once_in_id_order,
                search_is_tenant_scoped,
                search_limit_is_capped,
            ],
            factors: [
                tenant_factor_settings_save_and_replace,
                tenant_keeps_at_least_one_factor,
                user_factor_insert_only_if_absent,
                user_factor_compare_and_save_checks_the_version,
                concurrent_compare_and_save_has_exactly_one_winner,
                user_factors_are_tenant_scoped,
                remove_user_factor_reports_existence,
                credential_versions_never_repeat_across_removal,
                every_credential_kind_round_trips,
                methods_are_listed_per_exact_scope,
                available_methods_resolve_user_overrides,
                tenant_keeps_one_enabled_method,
                unknown_methods_report_false,
                methods_need_an_existing_scope,
            ],
            flows: [
                flow_round_trips_at_version_one,
                flows_are_tenant_scoped,
                duplicate_flow_keys_conflict,
                flow_compare_and_save_checks_the_version,
                concurrent_flow_saves_have_one_winner,
                delete_flow_reports_existence,
                expired_flows_are_deleted_at_their_time,
                flows_need_an_existing_tenant_and_user,
                erase_user_removes_their_flows,
            ],
            sessions: [
                session_round_trips,
                validation_renews_near_the_idle_deadline,
                sessions_end_at_their_deadlines,
                sessions_are_tenant_scoped,
                ending_a_session_revokes_its_family,
                ending_all_user_sessions_keeps_the_named_one,
                user_sessions_list_live_ones_newest_first,
                refresh_rotation_and_reuse_detection,
                concurrent_refreshes_rotate_once,
                a_refresh_scoped_to_another_tenant_changes_nothing,
                refresh_reuse_grace_is_honoured,
                expired_sessions_and_families_are_cleaned,
                erase_user_removes_sessions_and_families,
                session_auth_is_replaced_by_a_step_up,
                live_sessions_are_counted,
                validated_sessions_see_every_change_at_once,
            ],
            keys: [
                signing_keys_rotate_with_overlap,
                expired_signing_keys_are_deleted,
                signing_key_algorithms_and_bytes_round_trip,
            ],
            policies: [
                policy_document_round_trips_at_version_one,
                policy_compare_and_save_checks_the_version,
                concurrent_policy_saves_have_exactly_one_winner,
                policy_documents_are_tenant_scoped,
                policy_save_for_unknown_tenant_is_not_found,
            ],
            rbac_cascades: [
                deleting_a_role_cascades_to_its_grants_and_assignments,
                deleting_a_service_cascades_to_its_grants_assignments_and_direct_grants,
                deleting_a_permission_cascades_to_its_role_and_direct_grants,
            ],
            rbac_reads: [
                rbac_listings_agree_with_the_model,
                rbac_snapshot_holds_the_whole_model_sorted,
                rbac_models_are_tenant_scoped,
            ],
            rbac: [
                rbac_names_are_created_and_listed_sorted_per_kind,
                duplicate_rbac_name_conflicts_and_keeps_the_version,
                every_rbac_change_bumps_the_version_by_one,
                grants_and_assignments_need_existing_names,
                grants_and_assignments_refuse_another_tenants_names_and_users,
                duplicate_grants_and_assignments_conflict,
                removing_what_is_absent_is_not_found,
                rbac_change_for_unknown_tenant_is_not_found,
                rbac_change_with_a_taken_event_id_writes_nothing,
                erase_user_removes_its_rbac_rows_and_bumps_the_version,
                concurrent_rbac_changes_get_consecutive_versions,
                concurrent_creates_of_one_name_have_one_winner,
            ],
            verification: [
                verification_round_trips_exactly,
                save_expecting_none_refuses_when_one_exists,
                save_checks_the_expected_send_count,
                a_resend_replaces_the_secret,
                concurrent_saves_with_one_expectation_have_one_winner,
                consume_is_single_use,
                concurrent_consumes_have_one_winner,
                consume_refuses_a_wrong_secret_and_keeps_it,
                consume_refuses_from_expiry_on_and_keeps_it,
                consume_refuses_after_max_failures_and_keeps_it,
                verification_failures_are_counted_exactly,
                verifications_are_tenant_scoped,
                find_verification_by_its_secret_hash,
                delete_verifications_by_purpose_or_all,
                expired_verifications_are_deleted_at_their_time,
                erase_user_removes_their_verifications,
                save_verification_for_a_user_of_another_tenant_is_not_found,
            ],
            federated: [
                linked_identity_round_trips,
                an_identity_links_to_one_account_only,
                a_link_with_a_taken_event_id_writes_nothing,
                create_linked_user_creates_the_user_and_its_link,
                concurrent_linked_user_creations_have_one_winner,
                a_refused_linked_user_creation_writes_nothing,
                create_linked_user_in_an_unknown_tenant_is_not_found,
                links_are_independent_across_issuers_and_tenants,
                linked_identities_are_oldest_first_and_tenant_scoped,
                unlink_only_by_its_owner,
                link_for_a_user_of_another_tenant_is_not_found,
                erase_user_removes_their_linked_identities,
            ],
            ratelimit: [
                hits_are_counted_within_a_window,
                hits_past_the_limit_are_refused_and_counted,
                a_new_window_starts_when_the_last_one_ends,
                rate_limit_keys_are_independent,
                reset_forgets_one_key,
                expired_rate_limits_are_deleted_at_their_end,
                an_overlong_rate_limit_key_is_rejected,
                extreme_limits_and_windows_are_answered,
                concurrent_hits_are_counted_exactly,
            ];
            audit: [
                erase_user_pseudonymises_audit_events,
                audit_query_never_crosses_tenants,
                audit_query_is_newest_first_with_id_tiebreak,
                audit_filters_combine,
                audit_limit_defaults_and_caps,
                audit_events_round_trip_exactly,
                registration_commits_user_history_and_event_together,
                a_refused_registration_writes_nothing,
                a_login_commits_its_time_failures_and_events_together,
                a_login_of_a_user_the_tenant_lacks_writes_nothing,
                a_refresh_records_its_event_only_for_a_live_session,
                a_session_start_commits_with_its_event,
                a_refused_session_start_writes_nothing,
                a_policy_save_commits_with_its_event,
                an_rbac_change_commits_with_its_event,
            ]
        }
    };
}

crate::__conformance_list!(crate::__suite_names; conformance);

use countersign_core::{
    FactorSettings, MethodName, PasswordRules, PasswordSettings, StoreError, StoreErrorKind,
    Tenant, TenantId, User,
};

use crate::ConformanceStore;
use crate::fixtures::Fx;

/// The kind of the error `r` holds; panics if `r` is `Ok`.
fn kind<T: std::fmt::Debug, E: StoreError>(r: Result<T, E>) -> StoreErrorKind {
    match r {
        Ok(v) => panic!("expected an error, got Ok({v:?})"),
        Err(e) => e.kind(),
    }
}

/// A fixture source seeded with `seed`, and its tenant `acme` provisioned
/// on `s`.
async fn acme<S: ConformanceStore>(s: &S, seed: u64) -> (Fx, Tenant) {
    let fx = Fx::new(seed);
    let t = tenant(s, &fx, "acme").await;
    (fx, t)
}

/// As [`acme`], plus the user `alice` in it.
async fn acme_alice<S: ConformanceStore>(s: &S, seed: u64) -> (Fx, Tenant, User) {
    let (fx, t) = acme(s, seed).await;
    let u = user(s, &fx, t.id, "alice").await;
    (fx, t, u)
}

async fn tenant<S: ConformanceStore>(s: &S, fx: &Fx, slug: &str) -> Tenant {
    let p = fx.tenant(slug);
    s.provision_tenant(&p).await.unwrap();
    p.tenant().clone()
}

async fn user<S: ConformanceStore>(s: &S, fx: &Fx, tenant: TenantId, identifier: &str) -> User {
    let u = fx.user(tenant, identifier);
    s.create_user(&u, &[]).await.unwrap();
    u
}

fn name(s: &str) -> MethodName {
    MethodName::parse(s).unwrap()
}

fn strict_password() -> FactorSettings {
    FactorSettings::Password(PasswordSettings {
        rules: PasswordRules {
            min_length: 12,
            ..PasswordRules::default()
        },
    })
}
