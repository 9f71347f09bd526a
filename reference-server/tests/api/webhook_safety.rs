//! Webhook hardening: link-local and cloud-metadata URLs are refused with
//! `invalid_webhook_url` (SG-HOOK-2), redirects are never followed, each app
//! has its own queue so one app's dead endpoint cannot delay another app's
//! events, and `https://` endpoints work with the server crate's own
//! dependencies (the TLS receiver's certificate is made here with `rcgen`).

use crate::helpers::*;
use crate::receivers::{Dead, Redirector};
use std::sync::atomic::Ordering;
use std::time::{Duration, Instant};
use supergroup_protocol::limits::Plan;
use supergroup_protocol::rest::WebhookRegistration;
use supergroup_server::{AppConfig, Config};

fn registration(url: &str) -> WebhookRegistration {
    WebhookRegistration { url: url.into(), events: None }
}

#[tokio::test]
async fn metadata_and_link_local_webhook_urls_are_refused_with_invalid_webhook_url_sg_hook_2() {
    let app = spawn_app().await;
    for url in [
        "http://169.254.169.254/latest/meta-data/",
        "http://169.254.170.2/v2/credentials",
        "http://[fe80::1]:8080/hook",
        "http://[fd00:ec2::254]/latest/meta-data/",
        "http://[::ffff:169.254.169.254]/",
    ] {
        expect_api_error(app.rest.put_webhook(&registration(url)).await, 400, "invalid_webhook_url");
    }
    // Local receivers stay allowed.
    app.rest.put_webhook(&registration("http://127.0.0.1:9/hook")).await.expect("loopback is allowed");
    app.stop().await;
}

#[tokio::test]
async fn a_redirect_is_not_followed_and_counts_as_a_failed_attempt_sg_hook_8() {
    let app = spawn_app().await;
    let mut target = Hooks::start().await;
    let redirector = Redirector::start(&target.url).await;
    app.register_webhook(&redirector.url).await;
    app.conversation("c", &["alice"]).await;
    app.post("c", "alice", "signed body").await;
    // The attempt and its retry (about 1 s later) both reach the redirector.
    let deadline = Instant::now() + WAIT;
    while redirector.hits.load(Ordering::SeqCst) < 2 && Instant::now() < deadline {
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
    assert_eq!(redirector.hits.load(Ordering::SeqCst), 2, "one attempt and one retry");
    let followed = target.collect_for(QUIET, |_| true).await;
    assert!(followed.is_empty(), "the redirect was followed: {followed:?}");
    app.stop().await;
}

#[tokio::test]
async fn one_apps_dead_endpoint_does_not_delay_another_apps_events() {
    let mut config = Config::for_tests();
    config.apps.push(AppConfig::new("other", "sk_other", Plan::Basic));
    let app = spawn_app_with(config).await;
    let other = app.rest.with_app("other", "sk_other");
    let dead = Dead::start().await;
    let mut hooks = Hooks::start().await;
    app.register_webhook(&dead.url).await;
    other.put_webhook(&registration(&hooks.url)).await.unwrap();

    // 60 events for the dead endpoint: more than any in-flight limit, each
    // holding a slot for 5 s + 1 s + 5 s.
    app.conversation("c", &["alice"]).await;
    for _ in 0..6 {
        let batch: Vec<_> = (0..10).map(|i| user_message("alice", &format!("to the dead {i}"))).collect();
        app.rest.post_messages("c", &batch).await.unwrap();
    }
    let conv =
        supergroup_protocol::rest::ConversationUpsert { participants: Some(vec!["bob".into()]), ..Default::default() };
    other.put_conversation("c", &conv).await.unwrap();
    let ids = other.post_messages("c", &[user_message("bob", "to the live one")]).await.unwrap();
    let d = hooks.message_sent(&ids[0].id).await;
    assert_eq!(d.json["data"]["message"]["text"], "to the live one");
    drop(dead);
    app.stop().await;
}

/// A TLS webhook receiver with a certificate for `localhost` made by `rcgen`;
/// returns its URL, the certificate (PEM) to trust, and the bodies it got.
async fn tls_receiver() -> (String, String, tokio::sync::mpsc::Receiver<axum::body::Bytes>) {
    use hyper_util::rt::TokioIo;
    let cert = rcgen::generate_simple_self_signed(vec!["localhost".to_string()]).unwrap();
    let cert_pem = cert.cert.pem();
    let key = rustls::pki_types::PrivateKeyDer::Pkcs8(cert.signing_key.serialize_der().into());
    let provider = std::sync::Arc::new(rustls::crypto::aws_lc_rs::default_provider());
    let tls = rustls::ServerConfig::builder_with_provider(provider)
        .with_safe_default_protocol_versions()
        .unwrap()
        .with_no_client_auth()
        .with_single_cert(vec![cert.cert.der().clone()], key)
        .unwrap();
    let acceptor = tokio_rustls::TlsAcceptor::from(std::sync::Arc::new(tls));
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
    let url = format!("https://localhost:{}/hook", listener.local_addr().unwrap().port());
    let (tx, rx) = tokio::sync::mpsc::channel(64);
    let router = axum::Router::new().route(
        "/hook",
        axum::routing::post(move |body: axum::body::Bytes| {
            let tx = tx.clone();
            async move {
                let _ = tx.send(body).await;
                axum::http::StatusCode::OK
            }
        }),
    );
    tokio::spawn(async move {
        for _ in 0..16 {
            let Ok((tcp, _)) = listener.accept().await else { return };
            let (acceptor, router) = (acceptor.clone(), router.clone());
            tokio::spawn(async move {
                let Ok(stream) = acceptor.accept(tcp).await else { return };
                let service = hyper_util::service::TowerToHyperService::new(router);
                let _ =
                    hyper::server::conn::http1::Builder::new().serve_connection(TokioIo::new(stream), service).await;
            });
        }
    });
    (url, cert_pem, rx)
}

#[tokio::test]
async fn an_https_webhook_is_delivered_with_the_server_crates_own_tls() {
    let (url, cert_pem, mut bodies) = tls_receiver().await;
    let mut config = Config::for_tests();
    config.hooks.extra_root_pem = Some(cert_pem.into_bytes());
    let app = spawn_app_with(config).await;
    app.register_webhook(&url).await;
    app.conversation("c", &["alice"]).await;
    let id = app.post("c", "alice", "over tls").await;
    let body = tokio::time::timeout(WAIT, bodies.recv()).await.expect("an https delivery").unwrap();
    let json: serde_json::Value = serde_json::from_slice(&body).unwrap();
    assert_eq!(json["data"]["message"]["id"], id);
    app.stop().await;
}
