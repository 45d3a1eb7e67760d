//! Every `pub async fn` of a suite file is in its suite's list, and every
//! name in a list is a `pub async fn` of its module's file: a guarantee
//! written but not listed would silently never run.

/// Each suite module's source, by its name in `ALL`.
const CONFORMANCE: &[(&str, &str)] = &[
    ("identity", include_str!("conformance/identity.rs")),
    ("profiles", include_str!("conformance/profiles.rs")),
    ("factors", include_str!("conformance/factors.rs")),
    ("flows", include_str!("conformance/flows.rs")),
    ("sessions", include_str!("conformance/sessions.rs")),
    ("keys", include_str!("conformance/keys.rs")),
    ("policies", include_str!("conformance/policies.rs")),
    ("rbac", include_str!("conformance/rbac.rs")),
    ("rbac_reads", include_str!("conformance/rbac_reads.rs")),
    (
        "rbac_cascades",
        include_str!("conformance/rbac_cascades.rs"),
    ),
    ("verification", include_str!("conformance/verification.rs")),
    ("federated", include_str!("conformance/federated.rs")),
    ("ratelimit", include_str!("conformance/ratelimit.rs")),
    ("audit", include_str!("conformance/audit.rs")),
    ("", include_str!("conformance/mod.rs")),
];

const ENGINE: &[(&str, &str)] = &[
    ("login", include_str!("engine/login.rs")),
    ("factors", include_str!("engine/factors.rs")),
    ("passkeys", include_str!("engine/passkeys.rs")),
    ("step_up", include_str!("engine/step_up.rs")),
    ("sessions", include_str!("engine/sessions.rs")),
    ("tokens", include_str!("engine/tokens.rs")),
    ("audit", include_str!("engine/audit.rs")),
    ("sealing", include_str!("engine/sealing.rs")),
    ("authz", include_str!("engine/authz.rs")),
    ("lifecycle", include_str!("engine/lifecycle.rs")),
    ("import", include_str!("engine/import.rs")),
    ("registration", include_str!("engine/registration.rs")),
    ("federated", include_str!("engine/federated.rs")),
    ("profiles", include_str!("engine/profiles.rs")),
    ("", include_str!("engine/mod.rs")),
];

/// The names of the `pub async fn`s of `source`, as `module::name`.
fn public_fns(module: &str, source: &str) -> Vec<String> {
    source
        .lines()
        .filter_map(|l| l.trim_start().strip_prefix("pub async fn "))
        .map(|rest| {
            let name: String = rest
                .chars()
                .take_while(|c| c.is_alphanumeric() || *c == '_')
                .collect();
            format!("{module}::{name}")
        })
        .collect()
}

/// The problems of one suite: a module its `mod.rs` declares that this
/// check does not read, functions not listed, listed names with no
/// function, names listed twice.
fn problems(files: &[(&str, &str)], all: &[&str]) -> Vec<String> {
    let defined: Vec<String> = files.iter().flat_map(|(m, s)| public_fns(m, s)).collect();
    let mut out = Vec::new();
    let root = files
        .iter()
        .find(|(m, _)| m.is_empty())
        .map_or("", |(_, s)| *s);
    for module in root
        .lines()
        .filter_map(|l| l.trim_start().strip_prefix("pub mod "))
        .map(|rest| rest.trim_end_matches(';').trim())
    {
        if !files.iter().any(|(m, _)| *m == module) {
            out.push(format!(
                "module `{module}` is not read by the completeness check"
            ));
        }
    }
    for f in &defined {
        if !all.contains(&f.as_str()) {
            out.push(format!("`pub async fn {f}` is in no list"));
        }
    }
    for (i, n) in all.iter().enumerate() {
        if !defined.iter().any(|f| f == n) {
            out.push(format!("`{n}` is listed but no such `pub async fn` exists"));
        }
        if all[..i].contains(n) {
            out.push(format!("`{n}` is listed twice"));
        }
    }
    out
}

#[test]
fn every_conformance_guarantee_is_listed() {
    let p = problems(CONFORMANCE, crate::conformance::ALL);
    assert!(p.is_empty(), "{p:#?}");
}

#[test]
fn every_engine_scenario_is_listed() {
    let p = problems(ENGINE, crate::engine::ALL);
    assert!(p.is_empty(), "{p:#?}");
}

#[test]
fn the_check_sees_an_unlisted_function() {
    let files = [(
        "keys",
        "pub async fn listed() {}\npub async fn forgotten<S>(s: S) {}\n",
    )];
    assert_eq!(
        problems(&files, &["keys::listed", "keys::gone"]),
        [
            "`pub async fn keys::forgotten` is in no list",
            "`keys::gone` is listed but no such `pub async fn` exists",
        ]
    );
    let unread = [("", "pub mod keys;\npub mod extra;\n"), ("keys", "")];
    assert_eq!(
        problems(&unread, &[]),
        ["module `extra` is not read by the completeness check"]
    );
}
