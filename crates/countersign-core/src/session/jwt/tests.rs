#![allow(clippy::unwrap_used, clippy::indexing_slicing, reason = "tests")]

use super::*;
use crate::factor::MethodName;
use crate::flow::PassedFactor;
use crate::seal::{SealError, Sealer, SealingKey, StoredSecret};

fn tenant() -> TenantId {
    TenantId::from_uuid(uuid::Uuid::from_u128(1))
}

/// An environment seeded with `seed`, a key of `algorithm` from it, and the
/// claims of a password login to sign.
fn setup_with(
    algorithm: SigningAlgorithm,
    seed: u64,
) -> (Env, DateTime<Utc>, SigningKeyRecord, AccessClaims) {
    let (env, _clock) = Env::manual(seed);
    let now = env.now();
    let key = new_signing_key(&env, tenant(), algorithm, now).unwrap();
    let auth = AuthRecord {
        tenant_id: tenant(),
        user_id: crate::ids::UserId::from_uuid(uuid::Uuid::from_u128(2)),
        method: MethodName::parse("pwd").unwrap(),
        factors: vec![PassedFactor {
            kind: FactorKind::Password,
            at: now,
        }],
        at: now,
    };
    let sid = SessionId::from_uuid(uuid::Uuid::from_u128(3));
    let ttl = std::time::Duration::from_secs(300);
    let claims = claims_for(&env, now, &auth, sid, "iss", "api", ttl).unwrap();
    (env, now, key, claims)
}

fn setup() -> (Env, DateTime<Utc>, SigningKeyRecord, AccessClaims) {
    setup_with(SigningAlgorithm::EdDsa, 9)
}

fn expected(tenant: TenantId) -> Expected<'static> {
    Expected {
        issuer: "iss",
        audience: "api",
        tenant,
    }
}

fn part(token: &str, i: usize) -> &str {
    token.split('.').nth(i).unwrap()
}

fn decode_json(part: &str) -> serde_json::Value {
    serde_json::from_slice(&URL_SAFE_NO_PAD.decode(part).unwrap()).unwrap()
}

fn encode_json(v: &serde_json::Value) -> String {
    URL_SAFE_NO_PAD.encode(v.to_string())
}

/// `token` with its header replaced by `header`, payload and signature kept.
fn with_header(token: &str, header: &serde_json::Value) -> String {
    format!(
        "{}.{}.{}",
        encode_json(header),
        part(token, 1),
        part(token, 2)
    )
}

/// `exp`, `nbf` and `iat` are checked with a 30 s leeway, no more.
#[test]
fn verification_has_a_small_leeway() {
    let (_, now, key, claims) = setup();
    let t = key.tenant_id;
    let keys = [VerifyingKey::from(&key)];
    let token = sign(&key, None, &claims).unwrap();
    let at = |s: i64| now + chrono::Duration::seconds(s);
    verify(&token, &keys, &expected(t), at(300 + 29)).unwrap();
    assert_eq!(
        verify(&token, &keys, &expected(t), at(300 + 30)),
        Err(JwtError::Expired)
    );
    // A token from a clock 29 s ahead verifies; 31 s ahead does not.
    verify(&token, &keys, &expected(t), at(-29)).unwrap();
    assert_eq!(
        verify(&token, &keys, &expected(t), at(-31)),
        Err(JwtError::NotYetValid)
    );
}

/// Tokens carry `typ: at+jwt`; another `typ` (or none) is refused even
/// with a good signature, and so is another tenant's token, whatever the
/// algorithm.
#[test]
fn typ_and_tenant_are_checked() {
    for alg in SigningAlgorithm::ALL {
        let (_, now, key, claims) = setup_with(alg, 9);
        let t = key.tenant_id;
        let keys = [VerifyingKey::from(&key)];
        let token = sign(&key, None, &claims).unwrap();
        assert_eq!(decode_json(part(&token, 0))["typ"], "at+jwt");
        let encoding = encoding_key(&key, None).unwrap();
        for typ in [Some("JWT"), None, Some("id+jwt")] {
            let mut header = Header::new(alg.jws());
            header.typ = typ.map(str::to_owned);
            header.kid = Some(key.kid.clone());
            let other = jsonwebtoken::encode(&header, &claims, &encoding).unwrap();
            assert_eq!(
                verify(&other, &keys, &expected(t), now),
                Err(JwtError::Type),
                "{alg} {typ:?}"
            );
        }
        let b = TenantId::from_uuid(uuid::Uuid::from_u128(99));
        assert_eq!(
            verify(&token, &keys, &expected(b), now),
            Err(JwtError::Tenant)
        );
        verify(&token, &keys, &expected(t), now).unwrap();
    }
}

/// Each algorithm signs tokens whose header names it and its key; they
/// verify to the claims signed; a flipped signature bit or an edited claim
/// fails the signature; an unknown kid, a key of another algorithm under
/// the kid, or another key of the same algorithm under it, all fail.
#[test]
fn each_algorithm_signs_and_verifies_only_its_own_tokens() {
    for alg in SigningAlgorithm::ALL {
        let (_, now, key, claims) = setup_with(alg, 9);
        let exp = expected(key.tenant_id);
        let keys = [VerifyingKey::from(&key)];
        let token = sign(&key, None, &claims).unwrap();
        let head = decode_json(part(&token, 0));
        assert_eq!(head["alg"], alg.as_str());
        assert_eq!(head["kid"], key.kid.as_str());
        assert_eq!(verify(&token, &keys, &exp, now), Ok(claims.clone()));

        for byte in [0, usize::MAX] {
            let mut sig = URL_SAFE_NO_PAD.decode(part(&token, 2)).unwrap();
            let i = byte.min(sig.len() - 1);
            sig[i] ^= 1;
            let tampered = format!(
                "{}.{}.{}",
                part(&token, 0),
                part(&token, 1),
                URL_SAFE_NO_PAD.encode(&sig)
            );
            assert_eq!(
                verify(&tampered, &keys, &exp, now),
                Err(JwtError::Signature),
                "{alg}: signature byte {i}"
            );
        }
        let mut edited = decode_json(part(&token, 1));
        edited["sub"] = "someone-else".into();
        let forged = format!(
            "{}.{}.{}",
            part(&token, 0),
            encode_json(&edited),
            part(&token, 2)
        );
        assert_eq!(
            verify(&forged, &keys, &exp, now),
            Err(JwtError::Signature),
            "{alg}"
        );

        let renamed = VerifyingKey {
            kid: "another".into(),
            ..keys[0].clone()
        };
        assert_eq!(
            verify(&token, &[renamed], &exp, now),
            Err(JwtError::UnknownKey),
            "{alg}"
        );
        for other in SigningAlgorithm::ALL {
            // A different key (seed 10) of `other`, published under this kid.
            let (_, _, impostor, _) = setup_with(other, 10);
            let impostor = VerifyingKey {
                kid: key.kid.clone(),
                ..VerifyingKey::from(&impostor)
            };
            let want = if other == alg {
                JwtError::Signature
            } else {
                JwtError::Algorithm
            };
            assert_eq!(
                verify(&token, &[impostor], &exp, now),
                Err(want),
                "{alg} token, {other} key"
            );
        }
    }
}

/// `alg: none`, HMAC keyed with the public key in any of its encodings (the
/// classic algorithm confusion), unknown algorithms, and another accepted
/// `alg` on a key's kid are all refused, whatever the signature.
#[test]
fn none_and_hmac_with_the_public_key_are_refused() {
    for alg in SigningAlgorithm::ALL {
        let (_, now, key, claims) = setup_with(alg, 9);
        let exp = expected(key.tenant_id);
        let keys = [VerifyingKey::from(&key)];
        let token = sign(&key, None, &claims).unwrap();
        let refused = |t: &str| verify(t, &keys, &exp, now);

        let none = serde_json::json!({"alg": "none", "typ": "at+jwt", "kid": key.kid});
        let unsigned = format!("{}.{}.", encode_json(&none), part(&token, 1));
        assert_eq!(refused(&unsigned), Err(JwtError::Algorithm), "{alg}");
        assert_eq!(
            refused(&with_header(&token, &none)),
            Err(JwtError::Algorithm)
        );

        let jwk = JwkKey::of(alg, &key.public_key).unwrap();
        let mut secrets = vec![
            key.public_key.clone(),
            serde_json::to_vec(&jwk).unwrap(),
            URL_SAFE_NO_PAD.encode(&key.public_key).into_bytes(),
        ];
        match &jwk {
            JwkKey::Okp { x, .. } => secrets.push(x.clone().into_bytes()),
            JwkKey::Ec { x, y, .. } => {
                secrets.push(x.clone().into_bytes());
                secrets.push(y.clone().into_bytes());
            }
            JwkKey::Rsa { n, .. } => secrets.push(n.clone().into_bytes()),
        }
        for mac in [Algorithm::HS256, Algorithm::HS384, Algorithm::HS512] {
            for secret in &secrets {
                let mut header = Header::new(mac);
                header.typ = Some(TYP.into());
                header.kid = Some(key.kid.clone());
                let forged =
                    jsonwebtoken::encode(&header, &claims, &EncodingKey::from_secret(secret))
                        .unwrap();
                assert_eq!(refused(&forged), Err(JwtError::Algorithm), "{alg} {mac:?}");
            }
        }
        for name in [
            "eddsa", "EdDSA ", "ES384", "ES512", "RS512", "PS256", "Ed25519", "",
        ] {
            let head = serde_json::json!({"alg": name, "typ": "at+jwt", "kid": key.kid});
            assert_eq!(
                refused(&with_header(&token, &head)),
                Err(JwtError::Algorithm),
                "{alg}: {name:?}"
            );
        }
        for other in SigningAlgorithm::ALL.into_iter().filter(|o| *o != alg) {
            let head = serde_json::json!({"alg": other.as_str(), "typ": "at+jwt", "kid": key.kid});
            assert_eq!(
                refused(&with_header(&token, &head)),
                Err(JwtError::Algorithm),
                "{alg} key, {other} header"
            );
        }
        verify(&token, &keys, &exp, now).unwrap();
    }
}

/// The JWKS publishes each key with what its algorithm needs (RFC 7517,
/// 7518, 8037: `kty`, `crv`/`x`/`y` or `n`/`e`, `alg`, `use: sig`,
/// `kid`), and jsonwebtoken's own JWK parsing, given only that JSON,
/// verifies each key's tokens. Keys past their overlap are not listed.
#[test]
fn jwks_entries_verify_tokens_by_themselves() {
    let (env, now) = {
        let (env, _) = Env::manual(11);
        let now = env.now();
        (env, now)
    };
    let mut records: Vec<SigningKeyRecord> = SigningAlgorithm::ALL
        .into_iter()
        .map(|a| new_signing_key(&env, tenant(), a, now).unwrap())
        .collect();
    // The EdDSA key was retired a while ago and is still in its overlap.
    records[0].retired_at = Some(now);
    records[0].verify_until = Some(now + chrono::Duration::seconds(60));
    let published = jwks(&records, now);
    let doc = serde_json::to_value(&published).unwrap();
    assert_eq!(
        serde_json::from_value::<Jwks>(doc.clone()).unwrap(),
        published,
        "the document reads back as it was written"
    );
    let entries = doc["keys"].as_array().unwrap();
    assert_eq!(entries.len(), 3);
    let (ed, ec, rsa) = (&entries[0], &entries[1], &entries[2]);
    let fields = |v: &serde_json::Value| {
        let mut k: Vec<String> = v.as_object().unwrap().keys().cloned().collect();
        k.sort();
        k
    };
    assert_eq!(fields(ed), ["alg", "crv", "kid", "kty", "use", "x"]);
    assert_eq!(
        (&ed["kty"], &ed["crv"], &ed["alg"], &ed["use"]),
        (
            &"OKP".into(),
            &"Ed25519".into(),
            &"EdDSA".into(),
            &"sig".into()
        )
    );
    assert_eq!(fields(ec), ["alg", "crv", "kid", "kty", "use", "x", "y"]);
    assert_eq!(
        (&ec["kty"], &ec["crv"], &ec["alg"]),
        (&"EC".into(), &"P-256".into(), &"ES256".into())
    );
    // 32-byte coordinates: 43 base64url characters each.
    assert_eq!(ec["x"].as_str().unwrap().len(), 43);
    assert_eq!(ec["y"].as_str().unwrap().len(), 43);
    assert_eq!(fields(rsa), ["alg", "e", "kid", "kty", "n", "use"]);
    assert_eq!(
        (&rsa["kty"], &rsa["alg"], &rsa["e"]),
        (&"RSA".into(), &"RS256".into(), &"AQAB".into())
    );
    // A 2048-bit modulus: 256 bytes, 342 base64url characters.
    assert_eq!(rsa["n"].as_str().unwrap().len(), 342);

    let set: jsonwebtoken::jwk::JwkSet = serde_json::from_value(doc).unwrap();
    let (_, _, _, claims) = setup();
    for key in &records {
        let token = sign(key, None, &claims).unwrap();
        let jwk = set.find(&key.kid).unwrap();
        let alg: Algorithm = jwk
            .common
            .key_algorithm
            .unwrap()
            .to_string()
            .parse()
            .unwrap();
        assert_eq!(alg, key.algorithm.jws());
        let mut validation = Validation::new(alg);
        validation.set_audience(&["api"]);
        validation.validate_exp = false;
        let decoding = DecodingKey::from_jwk(jwk).unwrap();
        let data = jsonwebtoken::decode::<AccessClaims>(&token, &decoding, &validation).unwrap();
        assert_eq!(data.claims, claims);
        assert_eq!(data.header.kid.as_deref(), Some(key.kid.as_str()));
    }

    let later = now + chrono::Duration::seconds(60);
    let kids: Vec<String> = jwks(&records, later)
        .keys
        .into_iter()
        .map(|k| k.kid)
        .collect();
    assert_eq!(kids, [records[1].kid.clone(), records[2].kid.clone()]);
    // A key whose public half is not what its algorithm needs is left out.
    records[1].public_key.truncate(33);
    records[2].algorithm = SigningAlgorithm::EdDsa;
    assert!(jwks(&records, later).keys.is_empty());
}

/// Keys come from the environment's random source (one seed, one key) and
/// have the shapes [`SigningKeyRecord`] documents.
#[test]
fn keys_follow_the_environment_and_the_documented_shapes() {
    use p256::pkcs8::DecodePrivateKey as _;
    use rsa::pkcs1::DecodeRsaPrivateKey as _;
    for alg in SigningAlgorithm::ALL {
        let (_, _, a, _) = setup_with(alg, 21);
        let (_, _, b, _) = setup_with(alg, 21);
        let (_, _, c, _) = setup_with(alg, 22);
        assert_eq!(a, b, "{alg}: same seed, same key");
        assert_ne!(a.private_key, c.private_key, "{alg}");
        assert_ne!(a.public_key, c.public_key, "{alg}");
        assert_ne!(a.kid, c.kid, "{alg}");
        assert_eq!(a.algorithm, alg);
        assert!(matches!(a.stored_private_key(), Ok(StoredSecret::Plain(_))));
        match alg {
            SigningAlgorithm::EdDsa => {
                assert_eq!((a.private_key.len(), a.public_key.len()), (32, 32));
            }
            SigningAlgorithm::Es256 => {
                let k = p256::ecdsa::SigningKey::from_pkcs8_der(&a.private_key).unwrap();
                let point = k.verifying_key().to_encoded_point(false);
                assert_eq!(point.as_bytes(), a.public_key.as_slice());
                assert_eq!(a.public_key.len(), 65);
            }
            SigningAlgorithm::Rs256 => {
                let k = rsa::RsaPrivateKey::from_pkcs1_der(&a.private_key).unwrap();
                assert_eq!(k.n().bits(), RSA_BITS);
                assert_eq!(k.e(), &rsa::BigUint::from(65_537u32));
                let public = rsa::RsaPublicKey::from_pkcs1_der(&a.public_key).unwrap();
                assert_eq!(public, k.to_public_key());
            }
        }
    }
}

/// A signing key stored before sealing (its 32-byte seed in the
/// clear) still signs, with or without a sealer; sealed, it leaves no
/// trace of the seed, signs only with the sealer, and its tokens verify
/// against the same public key.
#[test]
fn clear_signing_keys_stored_before_sealing_still_sign() {
    let (env, now, legacy, claims) = setup();
    let t = legacy.tenant_id;
    let keys = [VerifyingKey::from(&legacy)];
    let sealer = Sealer::new(SealingKey::generate("k1", &env).unwrap());
    assert!(matches!(
        legacy.stored_private_key(),
        Ok(StoredSecret::Plain(_))
    ));
    for s in [None, Some(&sealer)] {
        let token = sign(&legacy, s, &claims).unwrap();
        verify(&token, &keys, &expected(t), now).unwrap();
    }
    let sealed = seal_signing_key(legacy.clone(), Some(&sealer), &env).unwrap();
    assert_eq!(sealed.stored_private_key().unwrap().key_id(), Some("k1"));
    assert!(
        !sealed
            .private_key
            .windows(32)
            .any(|w| w == legacy.private_key.as_slice())
    );
    assert!(!format!("{sealed:?}").contains(&format!("{:?}", legacy.private_key)));
    let token = sign(&sealed, Some(&sealer), &claims).unwrap();
    verify(&token, &keys, &expected(t), now).unwrap();
    let err = sign(&sealed, None, &claims).unwrap_err();
    assert_eq!(SealError::of(&err), Some(&SealError::NoSealer));
    // Bound to its kid: the same sealed bytes under another kid fail.
    let mut moved = sealed.clone();
    moved.kid = "another".into();
    let err = sign(&moved, Some(&sealer), &claims).unwrap_err();
    assert_eq!(SealError::of(&err), Some(&SealError::DoesNotOpen));
}

/// ES256 and RS256 keys are sealed as Ed25519 seeds are: nothing of the
/// DER stays readable, `Debug` shows neither form, sealing twice changes
/// nothing, and only the sealer signs, for this kid only.
#[test]
fn sealed_keys_of_every_algorithm_sign_only_with_the_sealer() {
    for alg in SigningAlgorithm::ALL {
        let (env, now, clear, claims) = setup_with(alg, 9);
        let t = clear.tenant_id;
        let keys = [VerifyingKey::from(&clear)];
        let sealer = Sealer::new(SealingKey::generate("k1", &env).unwrap());
        let shown = format!("{clear:?}");
        assert!(shown.contains("Plain(<redacted>)"), "{shown}");
        assert!(!shown.contains(&format!("{:?}", clear.private_key)));
        let sealed = seal_signing_key(clear.clone(), Some(&sealer), &env).unwrap();
        assert_eq!(
            seal_signing_key(sealed.clone(), Some(&sealer), &env).unwrap(),
            sealed
        );
        assert_eq!(sealed.stored_private_key().unwrap().key_id(), Some("k1"));
        assert_eq!(sealed.public_key, clear.public_key);
        assert!(
            !sealed
                .private_key
                .windows(16)
                .any(|w| clear.private_key.windows(16).any(|c| c == w)),
            "{alg}: no 16 bytes of the clear key survive sealing"
        );
        assert!(!format!("{sealed:?}").contains(&format!("{:?}", clear.private_key)));
        let token = sign(&sealed, Some(&sealer), &claims).unwrap();
        verify(&token, &keys, &expected(t), now).unwrap();
        let err = sign(&sealed, None, &claims).unwrap_err();
        assert_eq!(SealError::of(&err), Some(&SealError::NoSealer), "{alg}");
        let mut moved = sealed.clone();
        moved.kid = "another".into();
        let err = sign(&moved, Some(&sealer), &claims).unwrap_err();
        assert_eq!(SealError::of(&err), Some(&SealError::DoesNotOpen), "{alg}");
    }
}

/// A lifetime beyond the calendar is a typed error, not a panic.
#[test]
fn claims_with_an_impossible_lifetime_are_an_error() {
    let (env, now, _, claims) = setup();
    let auth = AuthRecord {
        tenant_id: claims.tid.parse().unwrap(),
        user_id: claims.sub.parse().unwrap(),
        method: MethodName::parse("pwd").unwrap(),
        factors: vec![],
        at: now,
    };
    let sid = SessionId::from_uuid(uuid::Uuid::from_u128(3));
    let forever = std::time::Duration::from_secs(u64::MAX / 2);
    assert!(matches!(
        claims_for(&env, now, &auth, sid, "iss", "api", forever),
        Err(Error::InvalidInput(_))
    ));
}

/// Optional claims appear only when set, and a verifier reads them back;
/// tokens without them carry no `tenant` or `roles` key at all.
#[test]
fn optional_claims_are_absent_unless_set() {
    let (_, now, key, mut claims) = setup();
    let keys = [VerifyingKey::from(&key)];
    let token = sign(&key, None, &claims).unwrap();
    let payload = decode_json(part(&token, 1));
    assert!(payload.get("tenant").is_none() && payload.get("roles").is_none());
    claims.tenant = Some("acme".into());
    claims.roles = Some(vec![]);
    let token = sign(&key, None, &claims).unwrap();
    let payload = decode_json(part(&token, 1));
    assert_eq!(payload["tenant"], "acme");
    assert_eq!(payload["roles"], serde_json::json!([]));
    assert_eq!(
        verify(&token, &keys, &expected(key.tenant_id), now),
        Ok(claims)
    );
}
