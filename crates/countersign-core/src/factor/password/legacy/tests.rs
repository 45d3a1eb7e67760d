use super::*;
use crate::factor::{Argon2Params, PasswordHasher};

const PASSWORD: &str = "correct horse battery staple";

fn hasher() -> PasswordHasher {
    PasswordHasher::new(Argon2Params::INSECURE_TEST, 2).unwrap()
}

/// Verify `password` (and a wrong one) against `hash` the way a login
/// does: through its stored form and the hasher.
async fn verifies(hash: &LegacyHash, password: &str) -> bool {
    let h = hasher();
    let stored = hash.to_stored().unwrap();
    // argon2 strings are the argon2 hasher's to read.
    if !matches!(hash, LegacyHash::Argon2Phc(_)) {
        assert_eq!(
            LegacyHash::from_stored(&stored).unwrap(),
            *hash,
            "the stored form reads back"
        );
    }
    assert!(
        h.needs_rehash(&stored),
        "an imported hash is always rehashed"
    );
    let wrong = format!("{password}!");
    assert!(!h.verify(&wrong, &stored).await.unwrap(), "wrong password");
    let right = h.verify(password, &stored).await.unwrap();
    assert_eq!(h.computations(), 2, "one computation per verification");
    right
}

/// Published vectors, each verified in its own format, and refused with
/// another password.
#[tokio::test]
async fn published_vectors_verify() {
    let cases: &[(&str, &str)] = &[
        // Openwall's crypt_blowfish test vectors (wrapper.c).
        (
            "$2a$05$CCCCCCCCCCCCCCCCCCCCC.E5YPO9kmyuRGyh0XouQYb4YMJKvyOeW",
            "U*U",
        ),
        // PHP's manual, `password_verify` example.
        (
            "$2y$10$.vGA1O9wmRjrwAVXD98HNOgsNpDczlqm3Jq7KnEd1rVAGv3Fykk1a",
            "rasmuslerdorf",
        ),
        // RFC 7914 section 12 (N = 16384, r = 8, p = 1, 64 bytes), as PHC.
        (
            "$scrypt$ln=14,r=8,p=1$U29kaXVtQ2hsb3JpZGU$cCO9yzr9c0hGHAbNgf046/2o+7qQT44+qbVD9lRdofLVQylVYT8Pz2LUlwUkKpr55h6F3A1lHkDfzwF7RVdYhw",
            "pleaseletmein",
        ),
        // passlib's documentation of its scrypt hash.
        (
            "$scrypt$ln=16,r=8,p=1$aM15713r3Xsvxbi31lqr1Q$nFNh2CVHVjNldFVKDHDlm4CbdRSCdEBsjjJxD+iCs5E",
            "password",
        ),
        // Django's own test (tests/auth_tests/test_hashers.py, test_pbkdf2).
        (
            "pbkdf2_sha256$390000$seasalt$8xBlGd3jVgvJ+92hWPxi5ww0uuAuAnKgC45eudxro7c=",
            "lètmein",
        ),
    ];
    for (hash, password) in cases {
        let parsed = LegacyHash::parse(hash).unwrap();
        assert!(verifies(&parsed, password).await, "{hash}");
    }
}

/// Hashes made by other implementations (libxcrypt's bcrypt, CPython's
/// OpenSSL scrypt and PBKDF2) in the exact syntax each source stores.
#[tokio::test]
async fn other_implementations_hashes_verify() {
    let bcrypt = LegacyHash::parse("$2b$04$abcdefghijklmnopqrstuu7EJV7kdjBBQxyb0HjTh9KS7.Lah/6CG");
    let better_auth = LegacyHash::better_auth(
        "5f1c0a7e9b3d2c4a6e8f0b1d3c5a7e9f:62693c62a3fcaa6afe66fb86330e442fc5b8195aa2e1de52903fa580b6dcd6b7bc21a16cf8117478ab803cf9c31f442dc15203fb5ea0ae4b64763799d9321634",
    );
    let scrypt = LegacyHash::parse(
        "$scrypt$ln=10,r=8,p=1$aW1wb3J0ZWRzYWx0MDAwMQ$tpBxwH5jJs51aAfSmeeebluvgNYn4Vm5vxvi2oHKL7o",
    );
    let django = LegacyHash::django(
        "pbkdf2_sha256$1000$importsalt12$ASYZoaHCxUFC8vmLQVocU8SqQGuuInSgXIsKqZqajyM=",
    );
    let keycloak256 = LegacyHash::keycloak(
        r#"{"value": "ppsXnjrdPB4KryJ6DrOqKqhkWrhv7PbKAMF1Eml8cZ7TX23G+6QgERwdCrtdq7/IU5aB6IVSOpTz6igHBLZ5Gw==", "salt": "AAECAwQFBgcICQoLDA0ODw==", "additionalParameters": {}}"#,
        r#"{"hashIterations": 1000, "algorithm": "pbkdf2-sha256", "additionalParameters": {}}"#,
    );
    let keycloak512 = LegacyHash::keycloak(
        r#"{"value":"nikyKZJWvN6/pUrIMRZnnEB4XBrhrrjMmET3oHTUw9Big05JI+VWPeqCesyflZGWITwTreP5Y/eji1qRSexdRw==","salt":"ZGVmZ2hpamtsbW5vcHFycw=="}"#,
        r#"{"hashIterations":1000,"algorithm":"pbkdf2-sha512"}"#,
    );
    for (name, hash) in [
        ("bcrypt", bcrypt),
        ("better auth", better_auth),
        ("scrypt", scrypt),
        ("django", django),
        ("keycloak sha256", keycloak256),
        ("keycloak sha512", keycloak512),
    ] {
        let hash = hash.unwrap_or_else(|e| panic!("{name}: {e}"));
        assert!(verifies(&hash, PASSWORD).await, "{name}");
    }
    // Better Auth's salt is text: the same hex decoded is another salt.
    let Ok(LegacyHash::Scrypt { salt, .. }) = LegacyHash::parse(
        "5f1c0a7e9b3d2c4a6e8f0b1d3c5a7e9f:62693c62a3fcaa6afe66fb86330e442fc5b8195aa2e1de52903fa580b6dcd6b7bc21a16cf8117478ab803cf9c31f442dc15203fb5ea0ae4b64763799d9321634",
    ) else {
        panic!("parse recognises Better Auth's syntax")
    };
    assert_eq!(salt, b"5f1c0a7e9b3d2c4a6e8f0b1d3c5a7e9f");
}

/// Hashes made here with the same crates, in every stored form.
#[tokio::test]
async fn generated_hashes_verify_and_read_back() {
    let salt = b"generated salt!!".to_vec();
    let bcrypt = bcrypt::hash_with_salt(PASSWORD, 5, [7u8; 16])
        .unwrap()
        .format_for_version(bcrypt::Version::TwoB);
    let mut scrypt_key = vec![0u8; 32];
    scrypt::scrypt(
        PASSWORD.as_bytes(),
        &salt,
        &scrypt::Params::new(12, 8, 2).unwrap(),
        &mut scrypt_key,
    )
    .unwrap();
    let mut sha256 = vec![0u8; 32];
    pbkdf2::pbkdf2_hmac::<pbkdf2::sha2::Sha256>(PASSWORD.as_bytes(), &salt, 2_000, &mut sha256);
    let mut sha512 = vec![0u8; 64];
    pbkdf2::pbkdf2_hmac::<pbkdf2::sha2::Sha512>(PASSWORD.as_bytes(), &salt, 2_000, &mut sha512);
    let (env, _) = crate::env::Env::manual(9);
    let other_params = PasswordHasher::new(
        Argon2Params {
            m_cost_kib: 256,
            t_cost: 2,
            p_cost: 1,
        },
        1,
    )
    .unwrap();
    let argon2 = other_params.hash(PASSWORD, &env).await.unwrap();
    let hashes = [
        LegacyHash::Bcrypt(bcrypt),
        LegacyHash::Scrypt {
            log_n: 12,
            r: 8,
            p: 2,
            salt: salt.clone(),
            hash: scrypt_key,
        },
        LegacyHash::Pbkdf2Sha256 {
            iterations: 2_000,
            salt: salt.clone(),
            hash: sha256,
        },
        LegacyHash::Pbkdf2Sha512 {
            iterations: 2_000,
            salt,
            hash: sha512,
        },
        LegacyHash::Argon2Phc(argon2.clone()),
    ];
    for hash in &hashes {
        hash.check().unwrap();
        let stored = hash.to_stored().unwrap();
        // The stored form is also an import syntax, read to the same value.
        assert_eq!(LegacyHash::parse(&stored).unwrap(), *hash);
        let h = hasher();
        assert!(h.verify(PASSWORD, &stored).await.unwrap(), "{hash:?}");
        assert!(
            !h.verify("Correct horse battery staple", &stored)
                .await
                .unwrap()
        );
        assert!(h.needs_rehash(&stored));
    }
    assert_eq!(
        hashes[4].to_stored().unwrap(),
        argon2,
        "argon2 is kept as is"
    );
    // passlib's PBKDF2 syntax (its base64 writes `.` for `+`).
    let LegacyHash::Pbkdf2Sha256 { salt, hash, .. } = &hashes[2] else {
        unreachable!()
    };
    let ab64 = |b: &[u8]| B64.encode(b).replace('+', ".");
    let passlib = format!("$pbkdf2-sha256$2000${}${}", ab64(salt), ab64(hash));
    assert_eq!(LegacyHash::parse(&passlib).unwrap(), hashes[2]);
}

/// The reference implementation's argon2i example is verified as it is.
#[tokio::test]
async fn argon2_phc_strings_verify_as_they_are() {
    let phc = "$argon2i$v=19$m=65536,t=2,p=4$c29tZXNhbHQ$RdescudvJCsgt3ub+b+dWRWJTmaaJObG";
    let hash = LegacyHash::parse(phc).unwrap();
    assert_eq!(hash, LegacyHash::Argon2Phc(phc.to_owned()));
    assert!(verifies(&hash, "password").await);
}

fn refused(result: Result<LegacyHash, InvalidInput>) -> String {
    match result {
        Err(e) => {
            assert_eq!(e.field, "password hash");
            e.reason
        }
        Ok(h) => panic!("accepted {h:?}"),
    }
}

/// Malformed hashes are invalid input, and the reason quotes none of them.
#[test]
fn malformed_hashes_are_invalid_input() {
    let bcrypt = "$2b$04$abcdefghijklmnopqrstuu7EJV7kdjBBQxyb0HjTh9KS7.Lah/6CG";
    for bad in [
        "",
        "plaintext",
        "$md5$abc",
        "$1$saltsalt$hash",
        // bcrypt: the wrong variant, length, cost syntax or alphabet.
        "$2x$04$abcdefghijklmnopqrstuu7EJV7kdjBBQxyb0HjTh9KS7.Lah/6CG",
        "$2$04$abcdefghijklmnopqrstuu7EJV7kdjBBQxyb0HjTh9KS7.Lah/6C",
        &bcrypt[..59],
        "$2b$4$abcdefghijklmnopqrstuu7EJV7kdjBBQxyb0HjTh9KS7.Lah/6CGx",
        "$2b$04$abcdefghijklmnopqrstuu7EJV7kdjBBQxyb0HjTh9KS7.Lah/6C!",
        // scrypt: missing, unknown, repeated or non-numeric parameters.
        "$scrypt$ln=10,r=8$c2FsdHNhbHQ$tpBxwH5jJs51aAfSmeeebluvgNYn4Vm5vxvi2oHKL7o",
        "$scrypt$ln=10,r=8,p=1,x=1$c2FsdHNhbHQ$tpBxwH5jJs51aAfSmeeebluvgNYn4Vm5vxvi2oHKL7o",
        "$scrypt$ln=10,ln=10,r=8,p=1$c2FsdHNhbHQ$tpBxwH5jJs51aAfSmeeebluvgNYn4Vm5vxvi2oHKL7o",
        "$scrypt$ln=+10,r=8,p=1$c2FsdHNhbHQ$tpBxwH5jJs51aAfSmeeebluvgNYn4Vm5vxvi2oHKL7o",
        "$scrypt$ln=10,r=8,p=1$c2FsdHNhbHQ$not*base64",
        "$scrypt$ln=10,r=8,p=1$c2FsdHNhbHQ",
        "$scrypt$ln=10,r=0,p=1$c2FsdHNhbHQ$tpBxwH5jJs51aAfSmeeebluvgNYn4Vm5vxvi2oHKL7o",
        // PBKDF2: a wrong `l`, no `i`, extra fields.
        "$pbkdf2-sha256$i=1000,l=31$c2FsdA$ASYZoaHCxUFC8vmLQVocU8SqQGuuInSgXIsKqZqajyM",
        "$pbkdf2-sha256$l=32$c2FsdA$ASYZoaHCxUFC8vmLQVocU8SqQGuuInSgXIsKqZqajyM",
        "$pbkdf2-sha256$i=1000$c2FsdA$ASYZoaHCxUFC8vmLQVocU8SqQGuuInSgXIsKqZqajyM$x",
        "pbkdf2_sha256$1000$salt",
        "pbkdf2_sha256$1e3$salt$ASYZoaHCxUFC8vmLQVocU8SqQGuuInSgXIsKqZqajyM=",
        "pbkdf2_sha256$1000$$ASYZoaHCxUFC8vmLQVocU8SqQGuuInSgXIsKqZqajyM=",
        "pbkdf2_sha1$1000$salt$ASYZoaHCxUFC8vmLQ==",
        // Better Auth: no key, odd or non-hex key, empty salt.
        "5f1c0a7e9b3d2c4a6e8f0b1d3c5a7e9f:",
        "5f1c0a7e9b3d2c4a6e8f0b1d3c5a7e9f:abc",
        "5f1c0a7e9b3d2c4a6e8f0b1d3c5a7e9f:zz693c62a3fcaa6afe66fb86330e442f",
        ":62693c62a3fcaa6afe66fb86330e442fc5b8195aa2e1de52903fa580b6dcd6b7",
        // argon2 that does not parse.
        "$argon2id$v=19$m=64,t=1,p=1$c2FsdHNhbHQ",
    ] {
        let reason = refused(LegacyHash::parse(bad));
        if let Some(tail) = bad
            .get(bad.len().saturating_sub(12)..)
            .filter(|t| t.len() == 12)
        {
            assert!(!reason.contains(tail), "{reason}");
        }
    }
    // A hash too short to be safe: a one-byte key matches 1 in 256.
    refused(LegacyHash::parse("pbkdf2_sha256$1000$salt$AQ=="));
    assert!(refused(LegacyHash::parse(&"a:".repeat(600))).contains("too long"));
    // Keycloak: other algorithms, bad JSON, bad base64.
    let secret = r#"{"value": "ppsXnjrdPB4KryJ6DrOqKqhkWrhv7PbKAMF1Eml8cZ7TX23G+6QgERwdCrtdq7/IU5aB6IVSOpTz6igHBLZ5Gw==", "salt": "AAECAwQFBgcICQoLDA0ODw=="}"#;
    let reason = refused(LegacyHash::keycloak(
        secret,
        r#"{"hashIterations": 27500, "algorithm": "pbkdf2"}"#,
    ));
    assert!(reason.contains("`pbkdf2`"), "{reason}");
    refused(LegacyHash::keycloak(
        secret,
        r#"{"algorithm": "pbkdf2-sha256"}"#,
    ));
    refused(LegacyHash::keycloak(
        r#"{"value": "ppsXnjrdPB4KryJ6DrOqKqhkWrhv7PbKAMF1Eml8cZ7TX23G+6QgERwdCrtdq7/IU5aB6IVSOpTz6igHBLZ5Gw=="}"#,
        r#"{"hashIterations": 1000, "algorithm": "pbkdf2-sha256"}"#,
    ));
    refused(LegacyHash::keycloak(
        r#"{"value": "***", "salt": "AAECAwQFBgcICQoLDA0ODw=="}"#,
        r#"{"hashIterations": 1000, "algorithm": "pbkdf2-sha256"}"#,
    ));
    refused(LegacyHash::keycloak(
        secret,
        r#"{"hashIterations": -1, "algorithm": "pbkdf2-sha256"}"#,
    ));
    // Values built directly are checked too.
    assert!(LegacyHash::Bcrypt("nope".into()).check().is_err());
    assert!(LegacyHash::Bcrypt("nope".into()).to_stored().is_err());
}

/// Hashes demanding more work than the bounds are refused at import and
/// when read back from storage, and so are ones demanding too little.
#[tokio::test]
async fn over_cost_hashes_are_refused() {
    let salt = b"salt".to_vec();
    let key = vec![1u8; 32];
    let scrypt = |log_n, r, p| LegacyHash::Scrypt {
        log_n,
        r,
        p,
        salt: salt.clone(),
        hash: key.clone(),
    };
    let pbkdf2 = |iterations| LegacyHash::Pbkdf2Sha256 {
        iterations,
        salt: salt.clone(),
        hash: key.clone(),
    };
    let over = [
        // bcrypt above cost 14 (and below bcrypt's own minimum 4).
        LegacyHash::parse("$2b$15$abcdefghijklmnopqrstuu7EJV7kdjBBQxyb0HjTh9KS7.Lah/6CG"),
        LegacyHash::parse("$2b$31$abcdefghijklmnopqrstuu7EJV7kdjBBQxyb0HjTh9KS7.Lah/6CG"),
        LegacyHash::parse("$2b$03$abcdefghijklmnopqrstuu7EJV7kdjBBQxyb0HjTh9KS7.Lah/6CG"),
        // scrypt: log2(N) above 20, N·r·p above 2^21, p or r of zero.
        Ok(scrypt(21, 1, 1)),
        Ok(scrypt(20, 1, 4)),
        Ok(scrypt(14, 16, 9)),
        Ok(scrypt(0, 8, 1)),
        Ok(scrypt(10, 8, 0)),
        // PBKDF2: outside 1,000 to 10,000,000 iterations.
        Ok(pbkdf2(10_000_001)),
        Ok(pbkdf2(999)),
        Ok(pbkdf2(u32::MAX)),
        // argon2: 1 GiB for 8 passes.
        LegacyHash::parse("$argon2id$v=19$m=1048576,t=8,p=1$c2FsdHNhbHQ$aGFzaGhhc2hoYXNoaGFzaA"),
    ];
    for hash in over {
        let reason = match hash.and_then(|h| h.check().map(|()| h)) {
            Err(e) => e.reason,
            Ok(h) => panic!("accepted {h:?}"),
        };
        assert!(!reason.is_empty());
    }
    // At the bounds, accepted.
    assert!(scrypt(20, 2, 1).check().is_ok());
    assert!(scrypt(14, 16, 8).check().is_ok());
    assert!(pbkdf2(10_000_000).check().is_ok());
    assert!(pbkdf2(1_000).check().is_ok());
    assert!(
        LegacyHash::parse("$2b$14$abcdefghijklmnopqrstuu7EJV7kdjBBQxyb0HjTh9KS7.Lah/6CG").is_ok()
    );
    // A stored row beyond the bounds is refused unrun.
    let h = hasher();
    for stored in [
        "$scrypt$ln=22,r=8,p=1$c2FsdA$AQEBAQEBAQEBAQEBAQEBAQEBAQEBAQEBAQEBAQEBAQE",
        "$pbkdf2-sha256$i=20000000,l=32$c2FsdA$AQEBAQEBAQEBAQEBAQEBAQEBAQEBAQEBAQEBAQEBAQE",
        "$2y$20$abcdefghijklmnopqrstuu7EJV7kdjBBQxyb0HjTh9KS7.Lah/6CG",
    ] {
        assert!(matches!(
            h.verify(PASSWORD, stored).await,
            Err(Error::Hashing { .. })
        ));
    }
    assert_eq!(h.computations(), 0, "nothing ran");
}

#[test]
fn debug_shows_the_algorithm_only() {
    let hash =
        LegacyHash::parse("$2b$04$abcdefghijklmnopqrstuu7EJV7kdjBBQxyb0HjTh9KS7.Lah/6CG").unwrap();
    let shown = format!("{hash:?}");
    assert_eq!(shown, "LegacyHash(bcrypt, <redacted>)");
    let django = LegacyHash::django(
        "pbkdf2_sha256$1000$importsalt12$ASYZoaHCxUFC8vmLQVocU8SqQGuuInSgXIsKqZqajyM=",
    )
    .unwrap();
    assert!(!format!("{django:?}").contains("importsalt"));
    assert_eq!(django.algorithm(), "pbkdf2-sha256");
}
