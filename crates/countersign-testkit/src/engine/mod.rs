//! The login engine end to end, generic over the store: every factor
//! (password, TOTP, recovery codes, email codes, passkeys), enrolment,
//! bad input, lockout across factors, step-up, erasure, sessions and
//! tokens. Every backend runs it with [`engine_suite!`](crate::engine_suite),
//! so each factor is proven on each store.
//!
//! The scenarios that also check audit rows run twice: in their module
//! with the audit checks skipped (any [`ConformanceStore`]), and in
//! [`audit`] with them made (an [`AuditedStore`](crate::AuditedStore),
//! opt-in).

pub mod audit;
pub mod authz;
pub mod factors;
pub mod federated;
pub mod import;
pub mod lifecycle;
pub mod login;
pub mod passkeys;
pub mod profiles;
pub mod registration;
pub mod sealing;
pub mod sessions;
pub mod step_up;
pub mod tokens;

/// Kept for the backends' benches until they use [`crate::bench`].
#[doc(hidden)]
pub use crate::bench::provisioned_authentication;

/// The list of every scenario, by module: the one place a name is
/// written. Calls `$cb! { $($args)* ; module: [names], ... ; audit: [names] }`
/// (the modules every store runs, then the opt-in audit module).
#[doc(hidden)]
#[macro_export]
macro_rules! __engine_list {
    ($cb:path; $($args:tt)*) => {
        $cb! { $($args)* ;
            login: [
                password_then_totp_completes_the_mfa_method,
                a_totp_code_works_once_even_under_concurrent_submission,
                bad_input_is_typed_audited_and_changes_nothing,
                unknown_identifiers_get_a_flow_that_never_succeeds,
                failures_across_factors_lock_the_account_silently,
                suspension_mid_flow_denies_it,
                a_chosen_method_limits_the_flow,
                accounts_answer_alike_whatever_their_state_or_methods,
                garbage_flow_tokens_write_no_audit_rows,
                totp_length_is_the_enrolled_credentials,
                a_single_passed_factor_does_not_reset_the_lockout_count,
                a_one_call_password_login_starts_one_session,
                a_one_call_password_login_that_needs_more_keeps_its_flow,
            ],
            factors: [
                recovery_codes_are_single_use_and_regeneration_voids_the_old_set,
                email_codes_are_hashed_expire_cap_guesses_and_work_once,
                email_code_guesses_are_capped,
                expired_email_codes_are_refused,
                email_codes_expire_within_a_live_flow,
                email_code_sends_are_throttled,
                tenant_factors_and_methods_change_only_through_checked_audited_calls,
                factors_are_removed_and_enrolment_needs_the_tenant_to_offer_them,
                erasure_ends_flows_and_credentials,
                a_second_factor_retires_password_only_methods_until_removed,
            ],
            passkeys: [
                passkeys_register_sign_in_and_are_managed,
                discoverable_passkeys_sign_in_without_a_username,
                passkey_challenges_do_not_tell_accounts_apart,
                discoverable_passkeys_act_on_a_handle_only_after_verifying_it,
            ],
            step_up: [
                step_up_proves_a_fresh_factor,
                step_up_attaches_to_the_session,
                concurrent_step_ups_keep_every_factor,
                sensitive_self_service_needs_a_recent_authentication,
                a_step_up_never_starts_a_session,
            ],
            sessions: [
                sessions_validate_renew_and_expire,
                refresh_reuse_revokes_the_login,
                concurrent_refreshes_yield_one_pair,
                revocation_ends_sessions_at_once,
                cleanup_removes_expired_state,
                a_proof_of_login_issues_one_session,
                a_user_suspended_before_issue_gets_no_session,
                refresh_needs_a_live_session,
                lifetimes_beyond_the_calendar_are_an_error,
            ],
            tokens: [
                access_tokens_verify_and_keys_rotate_with_overlap,
                bad_access_tokens_are_refused_with_a_reason,
                introspection_answers_for_both_token_kinds,
                access_tokens_die_with_their_session,
                tenant_bound_calls_refuse_other_tenants_tokens,
                each_algorithm_verifies_with_nothing_but_the_published_jwks,
                a_change_of_algorithm_rotates_with_overlap,
                access_tokens_carry_the_claims_the_tenant_configures,
            ],
            sealing: [
                a_store_dump_holds_no_usable_secret,
                another_key_or_another_row_opens_nothing,
                sealing_keys_rotate_and_clear_secrets_get_sealed,
            ],
            authz: [
                a_policy_demanding_fresh_mfa_is_met_by_a_totp_step_up,
                models_are_saved_only_valid_and_versioned,
                rbac_grants_decide_from_the_store_and_changes_reach_every_instance,
                rbac_never_crosses_tenants,
                administration_is_decided_by_the_engine,
                refused_administrative_changes_write_nothing,
                template_links_are_versions_of_the_model,
            ],
            lifecycle: [
                a_user_export_holds_everything_but_secrets,
            ],
            profiles: [
                bad_profile_changes_are_typed_audited_and_write_nothing,
                users_change_only_their_editable_fields,
                deactivation_ends_sessions_refuses_logins_and_tells_the_owner,
                administrators_search_page_and_manage_users,
                the_tier_reaches_access_tokens_and_decisions,
                new_users_get_the_default_tier,
                concurrent_profile_changes_each_move_the_version,
                changes_from_one_version_apply_once,
                a_tier_given_at_registration_is_checked_and_kept,
            ],
            federated: [
                an_id_token_signs_in_and_stays_linked_by_issuer_and_subject,
                a_verified_address_links_the_existing_account,
                concurrent_first_sign_ins_create_one_account,
                bad_id_tokens_are_refused_and_create_nothing,
                tenant_settings_and_account_state_bound_federated_sign_in,
            ],
            registration: [
                registration_mails_a_code_that_activates_the_account,
                registering_an_existing_address_answers_alike_and_tells_the_owner,
                a_later_registration_replaces_the_pending_code_and_password,
                address_codes_expire_cap_guesses_and_limit_resends,
                password_reset_ends_every_session_and_works_once,
                concurrent_resets_with_one_token_have_one_winner,
                reset_tokens_expire_stay_in_their_tenant_and_need_an_active_account,
                a_password_change_ends_other_sessions_and_tells_the_owner,
                factor_changes_are_told_to_the_owner,
            ],
            import: [
                imported_passwords_sign_in_and_are_rehashed_to_argon2id,
                importing_an_identifier_again_changes_nothing,
                unknown_identifiers_are_refused_like_wrong_imported_passwords,
            ];
            audit: [
                password_then_totp_completes_the_mfa_method,
                a_totp_code_works_once_even_under_concurrent_submission,
                bad_input_is_typed_audited_and_changes_nothing,
                factors_are_removed_and_enrolment_needs_the_tenant_to_offer_them,
                refresh_reuse_revokes_the_login,
                garbage_flow_tokens_write_no_audit_rows,
                tenant_factors_and_methods_change_only_through_checked_audited_calls,
                refused_administrative_changes_write_nothing,
                a_user_export_holds_everything_but_secrets,
                imported_passwords_sign_in_and_are_rehashed_to_argon2id,
                importing_an_identifier_again_changes_nothing,
                unknown_identifiers_are_refused_like_wrong_imported_passwords,
                registration_mails_a_code_that_activates_the_account,
                bad_id_tokens_are_refused_and_create_nothing,
                bad_profile_changes_are_typed_audited_and_write_nothing,
            ]
        }
    };
}

crate::__engine_list!(crate::__suite_names; engine);

use chrono::Duration;
use countersign_core::otp::totp_code;
use countersign_core::{
    AccessTokenPolicy, AuditEvent, AuditFilter, AuditKind, AuditQuery, Confirm, Enroll, Enrolled,
    Error, FactorCredential, FactorKind, LoginStatus, Refusal, SessionPolicy, Submission, TenantId,
    User,
};

use crate::ConformanceStore;
use crate::fixtures::World;

/// How a scenario reads the audit log: [`NoAudit`] skips its audit checks
/// (any store), [`WithAudit`] makes them (a store with `AuditQuery`).
pub(crate) trait AuditLog<S> {
    /// The events of `tenant` matching `filter`, or `None` when this run
    /// does not read the log.
    async fn events(
        &self,
        store: &S,
        tenant: TenantId,
        filter: AuditFilter,
    ) -> Option<Vec<AuditEvent>>;

    /// The fixture tenant's events of `kind`, if this run reads the log.
    async fn of_kind(&self, w: &World<S>, kind: AuditKind) -> Option<Vec<AuditEvent>> {
        let filter = AuditFilter {
            kind: Some(kind),
            ..Default::default()
        };
        self.events(&w.store, w.tenant.id, filter).await
    }
}

/// Audit checks skipped.
pub(crate) struct NoAudit;

impl<S> AuditLog<S> for NoAudit {
    async fn events(&self, _: &S, _: TenantId, _: AuditFilter) -> Option<Vec<AuditEvent>> {
        None
    }
}

/// Audit checks made, through `AuditQuery`.
pub(crate) struct WithAudit;

impl<S: AuditQuery> AuditLog<S> for WithAudit {
    async fn events(
        &self,
        store: &S,
        tenant: TenantId,
        filter: AuditFilter,
    ) -> Option<Vec<AuditEvent>> {
        Some(store.query_events(tenant, &filter).await.unwrap())
    }
}

/// How many events the fixture tenant has (up to 1000), if `audit` reads
/// the log.
async fn audit_count<S: ConformanceStore, A: AuditLog<S>>(
    w: &World<S>,
    audit: &A,
) -> Option<usize> {
    let all = AuditFilter {
        limit: Some(1000),
        ..Default::default()
    };
    Some(audit.events(&w.store, w.tenant.id, all).await?.len())
}

/// The [`World::mfa`] of a clone of `s` (seed `seed`) and its active user
/// `alice`.
async fn mfa_alice<S: ConformanceStore>(s: &S, seed: u64) -> (World<S>, User) {
    let w = World::mfa(s.clone(), seed).await;
    let alice = w.user("alice").await;
    (w, alice)
}

/// Whether `r` is a submission refused for `why` (a typed refusal: the
/// flow unchanged unless `why` counts).
fn refused(r: &Result<Submission, Error>, why: Refusal) -> bool {
    matches!(r, Ok(s) if s.refused == Some(why))
}

/// A six-digit code that is not `code`.
fn wrong_code(code: &str) -> &'static str {
    if code == "111111" { "222222" } else { "111111" }
}

async fn current_totp<S: ConformanceStore>(w: &World<S>, user: &User) -> String {
    let Some(v) = w
        .store
        .user_factor(w.tenant.id, user.id, FactorKind::Totp)
        .await
        .unwrap()
    else {
        panic!("no totp")
    };
    let FactorCredential::Totp(cred) = v.value else {
        panic!()
    };
    totp_code(&cred, w.svc.env().now().timestamp() as u64).unwrap()
}

async fn enroll_totp<S: ConformanceStore>(w: &World<S>, user: &User) {
    let Enrolled::Totp(material) = w.enroll(user, Enroll::Totp).await.unwrap() else {
        panic!()
    };
    assert!(material.uri.starts_with("otpauth://totp/Acme:"));
    assert!(material.qr_svg.contains("<svg"));
    let code = current_totp(w, user).await;
    w.confirm(user, Confirm::Totp { code: &code })
        .await
        .unwrap();
    // The confirming code spent this step; log in on the next one.
    w.clock.advance(Duration::seconds(30));
}

fn last_code<S: ConformanceStore>(w: &World<S>, to: &str) -> String {
    let m = w.outbox.last_to(to).expect("an email");
    m.text
        .split_whitespace()
        .find(|t| t.len() == 6 && t.bytes().all(|b| b.is_ascii_digit()))
        .unwrap()
        .to_owned()
}

fn accepts(s: &LoginStatus) -> Vec<FactorKind> {
    match s {
        LoginStatus::AwaitingFactor { accepts, .. } => accepts.clone(),
        other => panic!("not awaiting: {other:?}"),
    }
}

async fn set_sessions<S: ConformanceStore>(w: &World<S>, sessions: SessionPolicy) {
    let mut policy = w.tenant.policy.clone();
    policy.sessions = sessions;
    w.svc
        .update_tenant_policy(w.tenant.id, policy)
        .await
        .unwrap();
}

fn api_tokens() -> SessionPolicy {
    SessionPolicy {
        access_tokens: Some(AccessTokenPolicy::new(
            "api",
            std::time::Duration::from_secs(300),
        )),
        ..SessionPolicy::default()
    }
}

/// The MFA tenant plus a `pwd` method (the password alone) that it keeps
/// after MFA, and alice with a TOTP app: the weak login a step-up
/// strengthens.
pub(crate) async fn weak_login_alice<S: ConformanceStore>(s: &S, seed: u64) -> (World<S>, User) {
    let mut spec = crate::fixtures::mfa_tenant(countersign_core::LockoutPolicy::default());
    spec.methods.push(
        countersign_core::AuthMethod::sequence("pwd", &[countersign_core::FactorKind::Password])
            .unwrap(),
    );
    // The password alone must still sign alice in once she has TOTP: the
    // point is a weak login that a step-up strengthens.
    spec.policy.keep_password_only_after_mfa = true;
    let w = World::with_tenant(s.clone(), seed, spec).await;
    let alice = w.user("alice").await;
    enroll_totp(&w, &alice).await;
    (w, alice)
}

/// Sign `identifier` in with the password alone, through the tenant's `pwd`
/// method (which the scenario adds to its tenant).
pub(crate) async fn password_alone<S: ConformanceStore>(
    w: &World<S>,
    identifier: &str,
) -> countersign_core::Authentication {
    let (flow, _) = w.begin(identifier, Some("pwd")).await;
    match w
        .submit(
            &flow,
            countersign_core::FactorResponse::Password(crate::fixtures::PASSWORD),
        )
        .await
        .unwrap()
        .status
    {
        LoginStatus::Authenticated(login) => login,
        other => panic!("password alone signs in with `pwd`: {other:?}"),
    }
}
