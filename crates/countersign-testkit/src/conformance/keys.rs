//! Signing keys: the guarantees of `KeyStore`.

use countersign_core::jwt::seal_signing_key;
use countersign_core::{Sealer, SealingKey, SigningAlgorithm, StoreErrorKind};

use super::{acme, kind, tenant};
use crate::ConformanceStore;
use crate::fixtures::{Fx, at, signing_key, signing_key_of};

/// A new signing key retires the active ones, which keep verifying until
/// their overlap ends; kids are unique per tenant; keys are per tenant.
pub async fn signing_keys_rotate_with_overlap<S: ConformanceStore>(s: S) {
    let fx = Fx::new(72);
    let a = tenant(&s, &fx, "a").await;
    let b = tenant(&s, &fx, "b").await;
    let k1 = signing_key(&fx, a.id, at(0));
    s.rotate_signing_key(&k1, at(3600)).await.unwrap();
    let k2 = signing_key(&fx, a.id, at(100));
    s.rotate_signing_key(&k2, at(100 + 3600)).await.unwrap();
    let keys = s.signing_keys(a.id).await.unwrap();
    assert_eq!(keys.len(), 2);
    assert_eq!(keys[0].kid, k1.kid);
    assert_eq!(
        (keys[0].retired_at, keys[0].verify_until),
        (Some(at(100)), Some(at(3700)))
    );
    assert_eq!(keys[0].private_key, k1.private_key);
    assert_eq!(keys[1], k2, "the new key is active, exactly as given");
    assert!(s.signing_keys(b.id).await.unwrap().is_empty());
    assert_eq!(
        kind(s.rotate_signing_key(&k2, at(9)).await),
        StoreErrorKind::Conflict
    );
    let orphan = signing_key(&fx, fx.tenant_id(), at(0));
    assert_eq!(
        kind(s.rotate_signing_key(&orphan, at(9)).await),
        StoreErrorKind::NotFound
    );
}

/// Retired keys go once their overlap has ended; active keys stay.
pub async fn expired_signing_keys_are_deleted<S: ConformanceStore>(s: S) {
    let (fx, t) = acme(&s, 73).await;
    let k1 = signing_key(&fx, t.id, at(0));
    s.rotate_signing_key(&k1, at(60)).await.unwrap();
    let k2 = signing_key(&fx, t.id, at(10));
    s.rotate_signing_key(&k2, at(70)).await.unwrap();
    assert_eq!(s.delete_expired_signing_keys(at(69)).await.unwrap(), 0);
    assert_eq!(s.delete_expired_signing_keys(at(70)).await.unwrap(), 1);
    let left = s.signing_keys(t.id).await.unwrap();
    assert_eq!(left.len(), 1);
    assert_eq!(left[0].kid, k2.kid);
}

/// Keys of every algorithm round-trip exactly: the algorithm, the private
/// half (clear DER or seed, or sealed text) and the public half, byte for
/// byte; a rotation retires the active key whatever its algorithm.
pub async fn signing_key_algorithms_and_bytes_round_trip<S: ConformanceStore>(s: S) {
    let (fx, t) = acme(&s, 74).await;
    let sealer = Sealer::new(SealingKey::generate("k1", &fx.env).unwrap());
    let mut written = Vec::new();
    for (i, alg) in (0..).zip(SigningAlgorithm::ALL) {
        let clear = signing_key_of(&fx, t.id, alg, at(i * 10));
        let sealed = signing_key_of(&fx, t.id, alg, at(i * 10 + 5));
        let sealed = seal_signing_key(sealed, Some(&sealer), &fx.env).unwrap();
        for k in [clear, sealed] {
            s.rotate_signing_key(&k, at(3600)).await.unwrap();
            written.push(k);
        }
    }
    let read = s.signing_keys(t.id).await.unwrap();
    assert_eq!(read.len(), written.len());
    for (r, w) in read.iter().zip(&written) {
        assert_eq!(
            (&r.kid, r.algorithm, &r.private_key, &r.public_key),
            (&w.kid, w.algorithm, &w.private_key, &w.public_key),
        );
        assert_eq!(
            r.stored_private_key().unwrap().is_sealed(),
            w.stored_private_key().unwrap().is_sealed()
        );
    }
    let (last, retired) = read.split_last().unwrap();
    assert_eq!(last, written.last().unwrap(), "the active key, exactly");
    assert!(
        retired
            .iter()
            .all(|k| k.retired_at.is_some() && k.verify_until == Some(at(3600)))
    );
}
