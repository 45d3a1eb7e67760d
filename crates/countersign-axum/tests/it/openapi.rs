//! The OpenAPI document describes the router: every documented operation
//! is served, the docs page works offline.

use countersign_axum::ApiStore;

use crate::harness::Server;

crate::on_memory!(
    every_documented_operation_is_routed,
    the_docs_page_and_document_are_served
);

async fn every_documented_operation_is_routed<S: ApiStore>(s: Server<S>) {
    let doc = serde_json::to_value(countersign_axum::openapi()).unwrap();
    assert!(
        doc["openapi"].as_str().unwrap().starts_with("3.1"),
        "{}",
        doc["openapi"]
    );
    let paths = doc["paths"].as_object().unwrap();
    assert!(paths.len() >= 20, "only {} paths", paths.len());
    let mut checked = 0;
    for (path, item) in paths {
        let concrete = path
            .replace("{tenant}", "acme")
            .split('/')
            .map(|seg| {
                if seg.starts_with('{') {
                    "0190b2a4-0000-7000-8000-000000000001".to_owned()
                } else {
                    seg.to_owned()
                }
            })
            .collect::<Vec<_>>()
            .join("/");
        for method in item.as_object().unwrap().keys() {
            let Ok(m) = method.to_uppercase().parse::<reqwest::Method>() else {
                continue;
            };
            if !matches!(m.as_str(), "GET" | "POST" | "PUT" | "PATCH" | "DELETE") {
                continue;
            }
            let a = s.send(m.clone(), &concrete, None, None).await;
            let unrouted =
                a.body["code"] == "method_not_allowed" || a.body["detail"] == "no such endpoint";
            assert!(!unrouted, "{m} {path} is documented but not routed: {a:?}");
            assert!(a.status.as_u16() < 500, "{m} {path}: {a:?}");
            checked += 1;
        }
    }
    assert!(checked >= paths.len());
}

async fn the_docs_page_and_document_are_served<S: ApiStore>(s: Server<S>) {
    let a = s.get(countersign_axum::OPENAPI_PATH, None).await;
    assert_eq!(a.status, 200);
    assert_eq!(a.body["info"]["title"], "countersign");
    // The page and its scripts come from the binary, not a CDN.
    let page = s
        .http
        .get(format!("{}/v1/docs/", s.base))
        .send()
        .await
        .unwrap();
    assert_eq!(page.status(), 200);
    let html = page.text().await.unwrap();
    assert!(html.contains("swagger"), "{html}");
    assert!(
        !html.contains("https://"),
        "the page loads nothing remote: {html}"
    );
    let js = s
        .http
        .get(format!("{}/v1/docs/swagger-ui-bundle.js", s.base))
        .send()
        .await
        .unwrap();
    assert_eq!(js.status(), 200);
    assert!(js.bytes().await.unwrap().len() > 100_000);
}
