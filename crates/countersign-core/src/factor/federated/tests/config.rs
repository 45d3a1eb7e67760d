//! Issuer configuration: the Google preset, serde, validation, discovery.

use super::*;

#[test]
fn the_google_preset_is_valid() {
    let config = IssuerConfig::google(CLIENT);
    config.validate().unwrap();
    assert_eq!(config.issuer, "https://accounts.google.com");
    assert!(config.accepts_issuer("https://accounts.google.com"));
    assert!(config.accepts_issuer("accounts.google.com"));
    assert!(!config.accepts_issuer("https://accounts.google.com/"));
    assert_eq!(
        config.jwks,
        JwksSource::Url("https://www.googleapis.com/oauth2/v3/certs".into())
    );
    assert_eq!(
        config.algorithms,
        [IdTokenAlgorithm::RS256, IdTokenAlgorithm::ES256]
    );
    assert_eq!(config.max_skew.as_secs(), 60);
    assert_eq!(config.max_age.as_secs(), 600);
    assert!(config.require_email_verified);
}

#[test]
fn serde_round_trips_and_fills_in_defaults() {
    let config = IssuerConfig::google(CLIENT);
    let json = serde_json::to_value(&config).unwrap();
    assert_eq!(json["max_skew_secs"], 60);
    assert_eq!(json["jwks"]["url"], GOOGLE_JWKS_URL);
    let back: IssuerConfig = serde_json::from_value(json).unwrap();
    assert_eq!(back, config);
    let minimal: IssuerConfig = serde_json::from_value(json!({
        "issuer": "https://issuer.example",
        "client_ids": ["app"],
        "jwks": { "url": "https://issuer.example/jwks" },
    }))
    .unwrap();
    assert_eq!(
        minimal,
        IssuerConfig::new(
            "https://issuer.example",
            vec!["app".into()],
            JwksSource::Url("https://issuer.example/jwks".into())
        )
    );
    minimal.validate().unwrap();
}

#[test]
fn none_and_hmac_cannot_be_configured() {
    for alg in ["none", "HS256", "HS384", "HS512", "rs256"] {
        let parsed = serde_json::from_value::<IdTokenAlgorithm>(json!(alg));
        assert!(parsed.is_err(), "{alg} parsed");
        assert_eq!(IdTokenAlgorithm::from_name(alg), None);
    }
    for alg in IdTokenAlgorithm::ALL {
        assert_eq!(IdTokenAlgorithm::from_name(alg.as_str()), Some(alg));
    }
}

/// A change to a valid configuration.
type Change = Box<dyn Fn(&mut IssuerConfig)>;

#[test]
fn validate_refuses_what_it_should() {
    let base = IssuerConfig::google(CLIENT);
    let cases: Vec<(&str, Change)> = vec![
        (
            "http issuer",
            Box::new(|c| c.issuer = "http://accounts.google.com".into()),
        ),
        (
            "relative issuer",
            Box::new(|c| c.issuer = "accounts".into()),
        ),
        (
            "issuer with credentials",
            Box::new(|c| c.issuer = "https://u:p@issuer.example".into()),
        ),
        (
            "http jwks",
            Box::new(|c| c.jwks = JwksSource::Url("http://10.0.0.1/jwks".into())),
        ),
        ("no client id", Box::new(|c| c.client_ids.clear())),
        (
            "17 client ids",
            Box::new(|c| c.client_ids = (0..17).map(|i| format!("c{i}")).collect()),
        ),
        (
            "empty client id",
            Box::new(|c| c.client_ids = vec![String::new()]),
        ),
        (
            "client id with a space",
            Box::new(|c| c.client_ids = vec!["a b".into()]),
        ),
        (
            "long client id",
            Box::new(|c| c.client_ids = vec!["c".repeat(257)]),
        ),
        (
            "5 aliases",
            Box::new(|c| c.issuer_aliases = (0..5).map(|i| format!("a{i}")).collect()),
        ),
        ("no algorithm", Box::new(|c| c.algorithms.clear())),
        (
            "an algorithm twice",
            Box::new(|c| c.algorithms = vec![IdTokenAlgorithm::RS256; 2]),
        ),
        (
            "skew over 5 minutes",
            Box::new(|c| c.max_skew = std::time::Duration::from_secs(301)),
        ),
        (
            "max age zero",
            Box::new(|c| c.max_age = std::time::Duration::ZERO),
        ),
        (
            "max age over a day",
            Box::new(|c| c.max_age = std::time::Duration::from_secs(86_401)),
        ),
        (
            "empty static set",
            Box::new(|c| c.jwks = JwksSource::Static(jsonwebtoken::jwk::JwkSet { keys: vec![] })),
        ),
        (
            "static set of an hmac key",
            Box::new(|c| {
                c.jwks = JwksSource::Static(
                    serde_json::from_value(json!({ "keys": [{ "kty": "oct", "k": "c2VjcmV0" }] }))
                        .unwrap(),
                )
            }),
        ),
    ];
    for (what, change) in cases {
        let mut config = base.clone();
        change(&mut config);
        assert!(config.validate().is_err(), "{what} accepted");
        assert!(
            IdTokenVerifier::new(config, NoFetch).is_err(),
            "{what}: verifier built"
        );
    }
    // Loopback http is allowed, for tests.
    for url in [
        "http://127.0.0.1:8080",
        "http://localhost:1/x",
        "http://[::1]:9",
    ] {
        let mut config = base.clone();
        config.issuer = url.into();
        config.jwks = JwksSource::Url(format!("{url}/jwks"));
        config.validate().unwrap();
    }
}

#[test]
fn fetch_urls_are_https_or_loopback() {
    for ok in [
        "https://www.googleapis.com/oauth2/v3/certs",
        "http://127.0.0.1:3000/jwks",
        "http://127.1.2.3/",
        "http://[::1]/",
        "http://LOCALHOST/",
    ] {
        validate_fetch_url(ok).unwrap();
    }
    for bad in [
        "http://example.com/jwks",
        "http://192.168.1.1/",
        "ftp://example.com/",
        "file:///etc/passwd",
        "https://user@example.com/",
        "https://example.com/#frag",
        "/relative",
        "",
    ] {
        assert!(validate_fetch_url(bad).is_err(), "{bad}");
    }
    let long = format!("https://example.com/{}", "a".repeat(MAX_URL_BYTES));
    assert!(validate_fetch_url(&long).is_err());
}

/// A discovery document of `issuer` (`algs` null: without the list).
fn discovery(issuer: &str, algs: Value) -> DiscoveryDocument {
    let mut doc = json!({
        "issuer": issuer,
        "authorization_endpoint": format!("{issuer}/authorize"),
        "jwks_uri": format!("{issuer}/jwks"),
        "response_types_supported": ["code"],
    });
    if !algs.is_null() {
        doc["id_token_signing_alg_values_supported"] = algs;
    }
    DiscoveryDocument::parse(&serde_json::to_vec(&doc).unwrap()).unwrap()
}

#[test]
fn discovery_builds_a_config_for_the_expected_issuer_only() {
    let issuer = "https://issuer.example";
    let doc = discovery(issuer, json!(["HS256", "none", "ES256", "RS256", "RS256"]));
    let config = IssuerConfig::from_discovery(issuer, &doc, vec![CLIENT.into()]).unwrap();
    assert_eq!(config.issuer, issuer);
    assert_eq!(config.jwks, JwksSource::Url(format!("{issuer}/jwks")));
    assert_eq!(
        config.algorithms,
        [IdTokenAlgorithm::ES256, IdTokenAlgorithm::RS256]
    );
    assert!(config.issuer_aliases.is_empty());

    // A document speaking for another issuer is refused (Discovery §4.3).
    for asked in [
        "https://issuer.example/",
        "https://other.example",
        "https://ISSUER.example",
    ] {
        assert!(matches!(
            IssuerConfig::from_discovery(asked, &doc, vec![CLIENT.into()]),
            Err(DiscoveryError::IssuerMismatch { .. })
        ));
    }
    // Only HMAC and none: nothing to verify with.
    let doc = discovery(issuer, json!(["HS256", "none"]));
    assert_eq!(
        IssuerConfig::from_discovery(issuer, &doc, vec![CLIENT.into()]),
        Err(DiscoveryError::NoSupportedAlgorithm)
    );
    // No list: RS256, which every provider supports.
    let doc = discovery(issuer, Value::Null);
    let config = IssuerConfig::from_discovery(issuer, &doc, vec![CLIENT.into()]).unwrap();
    assert_eq!(config.algorithms, [IdTokenAlgorithm::RS256]);
    // No client id: invalid.
    assert!(matches!(
        IssuerConfig::from_discovery(issuer, &doc, vec![]),
        Err(DiscoveryError::Invalid(_))
    ));
    // An http jwks_uri off loopback: invalid.
    let mut doc = discovery(issuer, json!(["RS256"]));
    doc.jwks_uri = "http://issuer.example/jwks".into();
    assert!(matches!(
        IssuerConfig::from_discovery(issuer, &doc, vec![CLIENT.into()]),
        Err(DiscoveryError::Invalid(_))
    ));
}

#[test]
fn discovery_of_google_accepts_both_spellings() {
    let doc = discovery(GOOGLE_ISSUER, json!(["RS256"]));
    let config = IssuerConfig::from_discovery(GOOGLE_ISSUER, &doc, vec![CLIENT.into()]).unwrap();
    assert!(config.accepts_issuer("accounts.google.com"));
}

#[test]
fn discovery_documents_are_bounded_and_parsed_strictly() {
    let big = format!(
        "{{\"issuer\":\"https://i.example\",\"jwks_uri\":\"https://i.example/j\",\"x\":\"{}\"}}",
        "a".repeat(DiscoveryDocument::MAX_BYTES)
    );
    assert_eq!(
        DiscoveryDocument::parse(big.as_bytes()),
        Err(DiscoveryError::Fetch(FetchError::TooLarge {
            limit: DiscoveryDocument::MAX_BYTES
        }))
    );
    assert_eq!(
        DiscoveryDocument::parse(b"{\"issuer\": \"https://i.example\"}"),
        Err(DiscoveryError::Malformed)
    );
    assert_eq!(
        DiscoveryDocument::url_for("https://i.example/").unwrap(),
        "https://i.example/.well-known/openid-configuration"
    );
    assert_eq!(
        DiscoveryDocument::url_for("https://i.example/tenant").unwrap(),
        "https://i.example/tenant/.well-known/openid-configuration"
    );
    assert!(DiscoveryDocument::url_for("http://i.example").is_err());
    assert!(DiscoveryDocument::url_for("https://i.example/?q=1").is_err());
}
