//! The fetcher's bounds: body cap while streaming, no redirects, timeouts,
//! status codes, https only off loopback.

use std::time::{Duration, Instant};

use countersign_core::{FetchError, HttpFetch};
use countersign_oidc::{FetchOptions, ReqwestFetch};

use crate::issuer::{ENDLESS_CAP, Issuer, Route};

#[tokio::test]
async fn fetches_a_body() {
    let issuer = Issuer::start().await;
    issuer.route("/doc", Route::Json(b"{\"ok\":true}".to_vec()));
    let body = ReqwestFetch::new()
        .unwrap()
        .get(&format!("{}/doc", issuer.base))
        .await
        .unwrap();
    assert_eq!(body, b"{\"ok\":true}");
}

#[tokio::test]
async fn refuses_a_body_over_the_cap_while_it_streams() {
    let issuer = Issuer::start().await;
    issuer.route("/endless", Route::Endless);
    let fetch = ReqwestFetch::with_options(FetchOptions {
        max_body_bytes: 64 * 1024,
        ..FetchOptions::default()
    })
    .unwrap();
    let started = Instant::now();
    let refused = fetch
        .get(&format!("{}/endless", issuer.base))
        .await
        .unwrap_err();
    assert_eq!(refused, FetchError::TooLarge { limit: 64 * 1024 });
    assert!(started.elapsed() < Duration::from_secs(5));
    // The server was cut off long before the end of its body.
    let sent = issuer.endless_sent().await;
    assert!(sent < ENDLESS_CAP / 4, "the client read {sent} bytes on");

    // A declared length over the cap is refused before reading.
    issuer.route("/declared", Route::Declared(10 * 1024 * 1024));
    assert_eq!(
        fetch.get(&format!("{}/declared", issuer.base)).await,
        Err(FetchError::TooLarge { limit: 64 * 1024 })
    );
    // Exactly the cap is fine.
    issuer.route("/full", Route::Json(vec![b' '; 64 * 1024]));
    assert_eq!(
        fetch
            .get(&format!("{}/full", issuer.base))
            .await
            .unwrap()
            .len(),
        64 * 1024
    );
}

#[tokio::test]
async fn follows_no_redirect() {
    let issuer = Issuer::start().await;
    issuer.route("/target", Route::Json(b"{}".to_vec()));
    for code in [301, 302, 307, 308] {
        issuer.route(
            "/moved",
            Route::Status(code, Some(format!("{}/target", issuer.base))),
        );
        assert_eq!(
            ReqwestFetch::new()
                .unwrap()
                .get(&format!("{}/moved", issuer.base))
                .await,
            Err(FetchError::Status(code))
        );
    }
    assert_eq!(issuer.hits("/target"), 0);
}

#[tokio::test]
async fn answers_other_statuses_as_errors() {
    let issuer = Issuer::start().await;
    issuer.route("/gone", Route::Status(500, None));
    let fetch = ReqwestFetch::new().unwrap();
    assert_eq!(
        fetch.get(&format!("{}/gone", issuer.base)).await,
        Err(FetchError::Status(500))
    );
    assert_eq!(
        fetch.get(&format!("{}/nothing", issuer.base)).await,
        Err(FetchError::Status(404))
    );
}

#[tokio::test]
async fn times_out_a_silent_server() {
    let issuer = Issuer::start().await;
    issuer.route("/silent", Route::Silent);
    let fetch = ReqwestFetch::with_options(FetchOptions {
        connect_timeout: Duration::from_millis(200),
        timeout: Duration::from_millis(300),
        ..FetchOptions::default()
    })
    .unwrap();
    let started = Instant::now();
    assert_eq!(
        fetch.get(&format!("{}/silent", issuer.base)).await,
        Err(FetchError::Timeout)
    );
    assert!(started.elapsed() < Duration::from_secs(3));
}

#[tokio::test]
async fn refuses_urls_off_https_without_a_request() {
    let fetch = ReqwestFetch::new().unwrap();
    for url in [
        "http://example.com/jwks",
        "http://10.0.0.1/jwks",
        "ftp://127.0.0.1/jwks",
        "https://user:pass@127.0.0.1/jwks",
        "not a url",
    ] {
        assert!(
            matches!(fetch.get(url).await, Err(FetchError::UrlRefused(_))),
            "{url}"
        );
    }
}

#[test]
fn options_are_bounded() {
    let bad = [
        FetchOptions {
            timeout: Duration::ZERO,
            ..FetchOptions::default()
        },
        FetchOptions {
            connect_timeout: Duration::from_secs(20),
            ..FetchOptions::default()
        },
        FetchOptions {
            max_body_bytes: 0,
            ..FetchOptions::default()
        },
        FetchOptions {
            max_body_bytes: 17 * 1024 * 1024,
            ..FetchOptions::default()
        },
    ];
    for options in bad {
        assert!(ReqwestFetch::with_options(options).is_err(), "{options:?}");
    }
    let fetch = ReqwestFetch::new().unwrap();
    assert_eq!(*fetch.options(), FetchOptions::default());
    assert!(!format!("{fetch:?}").is_empty());
}
