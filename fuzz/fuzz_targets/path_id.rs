//! Path ids: any bytes as the id segments of real routes, sent through the
//! server's whole router (auth, percent-decoding, the id rule, lookups in an
//! in-memory database). Nothing may panic and nothing may answer 5xx; an id
//! refused by the rule answers 400 `invalid_id`.
#![no_main]

use axum::body::Body;
use axum::http::{Method, Request};
use libfuzzer_sys::fuzz_target;
use std::sync::OnceLock;
use tower::ServiceExt;

struct Server {
    rt: tokio::runtime::Runtime,
    router: axum::Router,
}

fn server() -> &'static Server {
    static SERVER: OnceLock<Server> = OnceLock::new();
    SERVER.get_or_init(|| {
        let rt = tokio::runtime::Builder::new_multi_thread().worker_threads(1).enable_all().build().unwrap();
        let state =
            rt.block_on(supergroup_server::state::AppState::build(supergroup_server::Config::for_tests())).unwrap();
        let router = supergroup_server::routes::router(state);
        Server { rt, router }
    })
}

fuzz_target!(|data: &[u8]| {
    let Ok(text) = std::str::from_utf8(data) else { return };
    let (first, second) = text.split_once('\n').unwrap_or((text, "x"));
    let s = server();
    for (method, path) in [
        (Method::GET, format!("/v1/demo/users/{first}")),
        (Method::GET, format!("/v1/demo/users/{first}/conversations")),
        (Method::GET, format!("/v1/demo/conversations/{first}/messages")),
        (Method::DELETE, format!("/v1/demo/conversations/{first}/participants/{second}")),
    ] {
        let Ok(req) =
            Request::builder().method(method).uri(&path).header("authorization", "Bearer sk_demo").body(Body::empty())
        else {
            continue;
        };
        let resp = s.rt.block_on(s.router.clone().oneshot(req)).unwrap();
        let status = resp.status().as_u16();
        assert!(status < 500, "{path:?} answered {status}");
    }
});
