//! The OpenAPI document: the committed `reference-server/openapi.json` is the
//! one the server generates (regenerate it when this fails), the server serves
//! the same at `/openapi.json`, and every operation in it is a route the
//! router really has (none answers the fallback's "no such route" or 405).

use crate::helpers::*;
use reqwest::StatusCode;
use supergroup_server::routes::openapi;

const COMMITTED: &str = concat!(env!("CARGO_MANIFEST_DIR"), "/openapi.json");

#[test]
fn committed_openapi_json_is_the_generated_one() {
    let generated = openapi::json();
    if std::env::var_os("UPDATE_OPENAPI").is_some() {
        std::fs::write(COMMITTED, &generated).expect("write reference-server/openapi.json");
    }
    let committed = std::fs::read_to_string(COMMITTED).unwrap_or_default();
    if committed != generated {
        let line = committed.lines().zip(generated.lines()).position(|(a, b)| a != b).map_or_else(
            || format!("lengths differ ({} and {} lines)", committed.lines().count(), generated.lines().count()),
            |i| format!("first difference at line {}", i + 1),
        );
        panic!(
            "reference-server/openapi.json is not what the server generates ({line}). Regenerate it with\n  \
             cargo run -p supergroup-server -- openapi > reference-server/openapi.json\nor\n  \
             UPDATE_OPENAPI=1 cargo test -p supergroup-server --test api openapi"
        );
    }
}

#[tokio::test]
async fn the_server_serves_the_document_and_every_operation_in_it_is_routed() {
    let app = spawn_app().await;
    let base = app.server.base_url();
    let resp = reqwest::get(format!("{base}/openapi.json")).await.unwrap();
    assert_eq!(resp.status(), StatusCode::OK);
    assert_eq!(resp.headers()["content-type"], "application/json");
    let served = resp.text().await.unwrap();
    assert_eq!(served, openapi::json());

    let doc: serde_json::Value = serde_json::from_str(&served).unwrap();
    assert_eq!(doc["openapi"], "3.1.0");
    let client = reqwest::Client::new();
    let mut operations = 0;
    for (path, item) in doc["paths"].as_object().expect("paths") {
        let url = path.replace("{appId}", APP).replace("{userId}", "u1").replace("{conversationId}", "c1");
        for method in item.as_object().unwrap().keys() {
            let method: reqwest::Method = method.to_uppercase().parse().unwrap();
            let resp = client
                .request(method.clone(), format!("{base}{url}"))
                .bearer_auth(SECRET)
                .header("content-type", "application/json")
                .body(if method == "POST" { "[]" } else { "{}" })
                .send()
                .await
                .unwrap();
            let status = resp.status();
            let text = resp.text().await.unwrap();
            assert_ne!(status, StatusCode::METHOD_NOT_ALLOWED, "{method} {path} is documented but not routed");
            assert!(!text.contains("no such route"), "{method} {path} is documented but not routed: {text}");
            let documented = &doc["paths"][path][method.as_str().to_lowercase()]["responses"][status.as_str()];
            assert!(documented.is_object(), "{method} {path} answered {status}, which the document does not list");
            operations += 1;
        }
    }
    assert_eq!(operations, 18, "14 REST operations and 4 operational endpoints");
    app.stop().await;
}
