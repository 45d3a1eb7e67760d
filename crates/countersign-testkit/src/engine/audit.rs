//! The engine scenarios that also check audit rows, run with the checks
//! made: opt-in (`engine_suite!(fresh, audit)`), as they need `AuditQuery`.
//! Each is its namesake in another module, plus the audit check.

use super::{
    WithAudit, authz, factors, federated, import, lifecycle, login, profiles, registration,
    sessions,
};
use crate::AuditedStore;

/// `login::password_then_totp_completes_the_mfa_method`, and the one successful login is audited.
pub async fn password_then_totp_completes_the_mfa_method<S: AuditedStore>(s: S) {
    login::mfa_login(s, WithAudit).await;
}

/// `login::a_totp_code_works_once_even_under_concurrent_submission`, and the refused replays are audited.
pub async fn a_totp_code_works_once_even_under_concurrent_submission<S: AuditedStore>(s: S) {
    login::totp_race(s, WithAudit).await;
}

/// `login::bad_input_is_typed_audited_and_changes_nothing`, and every refusal is audited.
pub async fn bad_input_is_typed_audited_and_changes_nothing<S: AuditedStore>(s: S) {
    login::bad_input(s, WithAudit).await;
}

/// `factors::factors_are_removed_and_enrolment_needs_the_tenant_to_offer_them`, and the removal is audited once.
pub async fn factors_are_removed_and_enrolment_needs_the_tenant_to_offer_them<S: AuditedStore>(
    s: S,
) {
    factors::factor_removal(s, WithAudit).await;
}

/// `sessions::refresh_reuse_revokes_the_login`, and the reuse is audited, with its user.
pub async fn refresh_reuse_revokes_the_login<S: AuditedStore>(s: S) {
    sessions::refresh_reuse(s, WithAudit).await;
}

/// `login::garbage_flow_tokens_write_no_audit_rows`, and the audit table is unchanged.
pub async fn garbage_flow_tokens_write_no_audit_rows<S: AuditedStore>(s: S) {
    login::garbage_flows(s, WithAudit).await;
}

/// `factors::tenant_factors_and_methods_change_only_through_checked_audited_calls`, and each change is audited.
pub async fn tenant_factors_and_methods_change_only_through_checked_audited_calls<
    S: AuditedStore,
>(
    s: S,
) {
    factors::administration(s, WithAudit).await;
}

/// `authz::refused_administrative_changes_write_nothing`, and every applied and refused change is audited.
pub async fn refused_administrative_changes_write_nothing<S: AuditedStore>(s: S) {
    authz::rbac_audit(s, WithAudit).await;
}

/// `lifecycle::a_user_export_holds_everything_but_secrets`, with the audit events about the user, and only those.
pub async fn a_user_export_holds_everything_but_secrets<S: AuditedStore>(s: S) {
    lifecycle::export_with_audit(s).await;
}

/// `import::imported_passwords_sign_in_and_are_rehashed_to_argon2id`, and each import and each rehash is audited once.
pub async fn imported_passwords_sign_in_and_are_rehashed_to_argon2id<S: AuditedStore>(s: S) {
    import::rehash_at_first_login(s, WithAudit).await;
}

/// `import::importing_an_identifier_again_changes_nothing`, and only the users created are audited as imported.
pub async fn importing_an_identifier_again_changes_nothing<S: AuditedStore>(s: S) {
    import::reimport(s, WithAudit).await;
}

/// `import::unknown_identifiers_are_refused_like_wrong_imported_passwords`, and the refusals are audited as unknown identifier and wrong secret.
pub async fn unknown_identifiers_are_refused_like_wrong_imported_passwords<S: AuditedStore>(s: S) {
    import::unknown_like_wrong(s, WithAudit).await;
}

/// `registration::registration_mails_a_code_that_activates_the_account`, and refused registrations and codes are audited.
pub async fn registration_mails_a_code_that_activates_the_account<S: AuditedStore>(s: S) {
    registration::register_and_verify(s, WithAudit).await;
}

/// `federated::bad_id_tokens_are_refused_and_create_nothing`, and every refused token is audited.
pub async fn bad_id_tokens_are_refused_and_create_nothing<S: AuditedStore>(s: S) {
    federated::bad_id_tokens(s, WithAudit).await;
}

/// `profiles::bad_profile_changes_are_typed_audited_and_write_nothing`, and each refusal is audited as a failure, the one valid change as a success.
pub async fn bad_profile_changes_are_typed_audited_and_write_nothing<S: AuditedStore>(s: S) {
    profiles::profile_refusals(s, WithAudit).await;
}
