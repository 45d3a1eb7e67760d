//! Step-up: proving a fresh factor within a session.

use chrono::Duration;
use countersign_core::{FactorKind, FactorResponse, LoginStatus, StepUp};

use super::{accepts, current_totp, enroll_totp, mfa_alice};
use crate::ConformanceStore;
use crate::fixtures::PASSWORD;

/// A step-up flow proves a fresh factor that makes a stale authentication fresh again.
pub async fn step_up_proves_a_fresh_factor<S: ConformanceStore>(s: S) {
    let (w, alice) = mfa_alice(&s, 14).await;
    enroll_totp(&w, &alice).await;
    let (flow, _) = w.begin("alice", None).await;
    w.submit(&flow, FactorResponse::Password(PASSWORD))
        .await
        .unwrap();
    let code = current_totp(&w, &alice).await;
    let LoginStatus::Authenticated(first) = w
        .submit(&flow, FactorResponse::Totp(&code))
        .await
        .unwrap()
        .status
    else {
        panic!()
    };
    let fresh = StepUp::fresh(std::time::Duration::from_secs(300));
    assert!(first.satisfies(&fresh, w.svc.env().now()));
    w.clock.advance(Duration::seconds(3600));
    assert!(
        !first.satisfies(&fresh, w.svc.env().now()),
        "an hour later it is stale"
    );
    let (step, status) = w
        .svc
        .begin_step_up(w.tenant.id, alice.id, &[FactorKind::Totp], &w.client)
        .await
        .unwrap();
    assert_eq!(accepts(&status), [FactorKind::Totp]);
    let code = current_totp(&w, &alice).await;
    let LoginStatus::Authenticated(again) = w
        .submit(&step, FactorResponse::Totp(&code))
        .await
        .unwrap()
        .status
    else {
        panic!()
    };
    let merged = first.merge(&again).unwrap();
    assert!(merged.satisfies(&fresh, w.svc.env().now()));
}
