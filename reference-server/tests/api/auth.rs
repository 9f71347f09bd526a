//! Authentication (SPEC.md section 2): the app secret on REST (SG-AUTH-1,
//! SG-AUTH-2) and the user token on the realtime upgrade (SG-AUTH-3 to
//! SG-AUTH-6). A refused request changes nothing (SG-REST-8).

use crate::helpers::*;
use jsonwebtoken::{Algorithm, EncodingKey, Header};
use reqwest::Method;
use supergroup_protocol::client::{Realtime, RealtimeError};
use supergroup_protocol::rest::UserUpsert;
use supergroup_protocol::token::Claims;

fn now_secs() -> u64 {
    std::time::SystemTime::now().duration_since(std::time::UNIX_EPOCH).unwrap().as_secs()
}

fn sign_json(claims: &serde_json::Value, alg: Algorithm, key: &str) -> String {
    jsonwebtoken::encode(&Header::new(alg), claims, &EncodingKey::from_secret(key.as_bytes())).unwrap()
}

/// Asserts that connecting with `token` is refused with HTTP 401 before the
/// upgrade, and that the same request made as plain HTTP carries `unauthorized`.
async fn assert_upgrade_refused(app: &TestApp, token: Option<&str>, why: &str) {
    let url = match token {
        Some(t) => app.rest.realtime_url(t),
        None => app.rest.realtime_url("").replace("?token=", ""),
    };
    match Realtime::connect(&url).await {
        Err(RealtimeError::Rejected { status: 401 }) => {}
        Err(e) => panic!("{why}: expected HTTP 401, got {e}"),
        Ok(_) => panic!("{why}: the upgrade was accepted"),
    }
    let http_url = url.replacen("ws://", "http://", 1);
    let resp = reqwest::get(&http_url).await.expect("plain GET answers");
    let status = resp.status().as_u16();
    expect_raw_error((status, resp.text().await.unwrap()), 401, "unauthorized");
}

#[tokio::test]
async fn rest_without_bearer_header_is_401_unauthorized_sg_auth_1() {
    let app = spawn_app().await;
    let body = Some(r#"{"name":"Mallory"}"#.to_string());
    expect_raw_error(
        app.rest.raw(Method::PUT, "/users/mallory", body.clone(), None).await.unwrap(),
        401,
        "unauthorized",
    );
    let http = reqwest::Client::new();
    for header in ["", "Bearer", "Basic c2tfZGVtbzo=", "sk_demo", "bearer sk_demo"] {
        let resp = http
            .put(app.rest.url("/users/mallory"))
            .header("authorization", header)
            .header("content-type", "application/json")
            .body(body.clone().unwrap())
            .send()
            .await
            .unwrap();
        let status = resp.status().as_u16();
        let answer = (status, resp.text().await.unwrap());
        assert_eq!(answer.0, 401, "Authorization: {header:?} -> {answer:?}");
        expect_raw_error(answer, 401, "unauthorized");
    }
    // SG-REST-8: nothing was created by the refused requests.
    expect_api_error(app.rest.get_user("mallory").await, 404, "user_not_found");
}

#[tokio::test]
async fn rest_with_wrong_secret_or_unknown_app_is_401_unauthorized_sg_auth_2() {
    let app = spawn_app().await;
    let wrong = app.rest.with_secret("sk_wrong");
    expect_api_error(wrong.put_user("mallory", &UserUpsert::default()).await, 401, "unauthorized");
    expect_api_error(wrong.app().await, 401, "unauthorized");
    // The demo secret is not valid for another (unknown) app id.
    let other = app.rest.with_app("nope", SECRET);
    expect_api_error(other.app().await, 401, "unauthorized");
    expect_api_error(other.put_user("mallory", &UserUpsert::default()).await, 401, "unauthorized");
    // A prefix of the secret is not the secret.
    expect_api_error(app.rest.with_secret("sk_dem").app().await, 401, "unauthorized");
    // Positive control and SG-REST-8: the right secret works, and nothing was created.
    assert_eq!(app.rest.app().await.unwrap().id, APP);
    expect_api_error(app.rest.get_user("mallory").await, 404, "user_not_found");
}

#[tokio::test]
async fn upgrade_without_token_or_with_malformed_token_is_401_sg_auth_3() {
    let app = spawn_app().await;
    assert_upgrade_refused(&app, None, "no token parameter").await;
    assert_upgrade_refused(&app, Some(""), "empty token").await;
    assert_upgrade_refused(&app, Some("not-a-jwt"), "garbage token").await;
    assert_upgrade_refused(&app, Some("a.b.c"), "three garbage parts").await;
}

#[tokio::test]
async fn upgrade_with_a_token_expiring_this_second_is_401_sg_auth_4() {
    let app = spawn_app().await;
    // `exp` equal to the current second is not in the future. (Before the
    // fix, such a token connected for the rest of that second.)
    let mut claims = Claims::user(APP, "alice", 0);
    claims.exp = now_secs();
    let token = supergroup_protocol::token::sign(&claims, SECRET);
    assert_upgrade_refused(&app, Some(&token), "token expiring this second").await;
    expect_api_error(app.rest.get_user("alice").await, 404, "user_not_found");
}

#[tokio::test]
async fn upgrade_with_expired_or_exp_less_token_is_401_sg_auth_4() {
    let app = spawn_app().await;
    let mut expired = Claims::user(APP, "alice", 0);
    expired.exp = now_secs() - 2;
    let token = supergroup_protocol::token::sign(&expired, SECRET);
    assert_upgrade_refused(&app, Some(&token), "expired token").await;
    let no_exp = serde_json::json!({"tokenType": "user", "iss": APP, "sub": "alice"});
    assert_upgrade_refused(&app, Some(&sign_json(&no_exp, Algorithm::HS256, SECRET)), "token without exp").await;
    // SG-REST-8 / SG-AUTH-6 converse: no user was created by refused upgrades.
    expect_api_error(app.rest.get_user("alice").await, 404, "user_not_found");
}

#[tokio::test]
async fn upgrade_with_bad_signature_wrong_app_type_or_sub_is_401_sg_auth_5() {
    let app = spawn_app().await;
    let exp = now_secs() + 3600;
    let claims = |iss: &str, typ: &str, sub: Option<&str>| {
        let mut c = serde_json::json!({"tokenType": typ, "iss": iss, "exp": exp});
        if let Some(sub) = sub {
            c["sub"] = sub.into();
        }
        c
    };
    let good = claims(APP, "user", Some("eve"));
    // Other key.
    assert_upgrade_refused(&app, Some(&sign_json(&good, Algorithm::HS256, "sk_other")), "other key").await;
    // Other algorithm, same key.
    assert_upgrade_refused(&app, Some(&sign_json(&good, Algorithm::HS384, SECRET)), "HS384").await;
    // Tampered signature.
    let mut tampered = sign_json(&good, Algorithm::HS256, SECRET);
    let last = tampered.pop().unwrap();
    tampered.push(if last == 'A' { 'B' } else { 'A' });
    assert_upgrade_refused(&app, Some(&tampered), "tampered signature").await;
    // iss of another app.
    assert_upgrade_refused(
        &app,
        Some(&sign_json(&claims("other", "user", Some("eve")), Algorithm::HS256, SECRET)),
        "iss",
    )
    .await;
    // tokenType other than user.
    assert_upgrade_refused(
        &app,
        Some(&sign_json(&claims(APP, "admin", Some("eve")), Algorithm::HS256, SECRET)),
        "type",
    )
    .await;
    // sub missing, or breaking the id rule.
    assert_upgrade_refused(&app, Some(&sign_json(&claims(APP, "user", None), Algorithm::HS256, SECRET)), "no sub")
        .await;
    for bad_sub in ["", "a/b", "tab\there", &"x".repeat(256)] {
        let t = sign_json(&claims(APP, "user", Some(bad_sub)), Algorithm::HS256, SECRET);
        assert_upgrade_refused(&app, Some(&t), &format!("sub {bad_sub:?}")).await;
    }
    // Unknown app in the path, token otherwise valid for it.
    let other = app.rest.with_app("ghost", SECRET);
    let ghost_token = supergroup_protocol::token::user_token("ghost", SECRET, "eve");
    match Realtime::connect(&other.realtime_url(&ghost_token)).await {
        Err(RealtimeError::Rejected { status: 401 }) => {}
        Err(e) => panic!("unknown app: expected HTTP 401, got {e}"),
        Ok(_) => panic!("unknown app: the upgrade was accepted"),
    }
    // Positive control: the good token is accepted; no refused attempt created eve before it.
    expect_api_error(app.rest.get_user("eve").await, 404, "user_not_found");
    let rt = Realtime::connect(&app.rest.realtime_url(&sign_json(&good, Algorithm::HS256, SECRET))).await;
    assert!(rt.is_ok(), "the well-formed token is accepted: {:?}", rt.err());
}

#[tokio::test]
async fn connecting_creates_unknown_user_who_stays_after_disconnect_sg_auth_6() {
    let app = spawn_app().await;
    expect_api_error(app.rest.get_user("newbie").await, 404, "user_not_found");
    let mut claims = Claims::user(APP, "newbie", 3600);
    claims.name = Some("New Bie".into());
    let url = app.rest.realtime_url(&supergroup_protocol::token::sign(&claims, SECRET));
    let mut rt = Realtime::connect(&url).await.expect("valid token connects (SG-RT-1)");
    barrier(&mut rt).await;
    let user = app.rest.get_user("newbie").await.expect("user created on connect");
    assert_eq!(user.name.as_deref(), Some("New Bie"));
    rt.disconnect().await;
    // Still there after the connection ended, and a later token name does not rename it.
    let mut other = Claims::user(APP, "newbie", 3600);
    other.name = Some("Renamed".into());
    let mut rt = Realtime::connect(&app.rest.realtime_url(&supergroup_protocol::token::sign(&other, SECRET)))
        .await
        .expect("connects again");
    barrier(&mut rt).await;
    assert_eq!(app.rest.get_user("newbie").await.unwrap().name.as_deref(), Some("New Bie"));
}
