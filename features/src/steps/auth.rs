//! Authentication: REST requests with missing or wrong secrets, and realtime
//! upgrades with bad tokens, judged by the HTTP answer before any upgrade.

use crate::world::{RestOutcome, SgWorld};
use cucumber::{then, when};
use jsonwebtoken::{Algorithm, EncodingKey, Header};
use supergroup_protocol::token::Claims;
use tokio_tungstenite::tungstenite;

/// Any REST request with exactly the given Authorization header (or none).
pub async fn send_with_header(
    w: &SgWorld,
    method: &str,
    url: &str,
    header: Option<&str>,
    body: Option<String>,
    content_type: &str,
) -> RestOutcome {
    let method = reqwest::Method::from_bytes(method.as_bytes()).unwrap_or(reqwest::Method::GET);
    // The run's client: the same trust (--ca-cert) as every other request.
    let client = w.rest().http().clone();
    let mut req = client.request(method, url).timeout(w.wait());
    if let Some(h) = header {
        req = req.header("authorization", h);
    }
    if let Some(b) = body {
        req = req.header("content-type", content_type).body(b);
    }
    match req.send().await {
        Ok(resp) => {
            let status = resp.status().as_u16();
            RestOutcome::raw(status, resp.text().await.unwrap_or_default())
        }
        Err(e) => RestOutcome { status: 0, code: None, body: format!("no answer: {e}") },
    }
}

#[when(regex = r#"^a client sends GET /users/alice with the Authorization header "(.*)"$"#)]
async fn with_header(w: &mut SgWorld, header: String) {
    let url = w.rest().url(&format!("/users/{}", w.id("alice")));
    let header = if header == "<none>" { None } else { Some(header.as_str()) };
    w.last_rest = Some(send_with_header(w, "GET", &url, header, None, "application/json").await);
}

#[when(regex = r#"^a client sends GET /users/alice with the secret "([^"]*)"$"#)]
async fn with_secret(w: &mut SgWorld, secret: String) {
    let url = w.rest().url(&format!("/users/{}", w.id("alice")));
    w.last_rest = Some(send_with_header(w, "GET", &url, Some(&format!("Bearer {secret}")), None, "").await);
}

#[when(regex = r#"^a client sends GET to an unknown app with the right secret$"#)]
async fn unknown_app(w: &mut SgWorld) {
    let rest = w.rest().with_app(&w.id("no-such-app"), w.rest().secret());
    let url = rest.url("/users/alice");
    w.last_rest = Some(send_with_header(w, "GET", &url, Some(&format!("Bearer {}", rest.secret())), None, "").await);
}

fn encode(claims: &serde_json::Value, secret: &str, alg: Algorithm) -> String {
    jsonwebtoken::encode(&Header::new(alg), claims, &EncodingKey::from_secret(secret.as_bytes()))
        .expect("signing a JSON object cannot fail")
}

/// The realtime URL and token for one of the token variants of the feature file.
fn variant(w: &SgWorld, user: &str, what: &str) -> String {
    let rest = w.rest();
    let (app, secret, id) = (rest.app_id().to_string(), rest.secret().to_string(), w.id(user));
    let claims = |c: Claims| serde_json::to_value(c).expect("claims serialize");
    let valid = claims(Claims::user(&app, &id, 3600));
    let with = |key: &str, v: serde_json::Value| {
        let mut c = valid.clone();
        c[key] = v;
        c
    };
    let token = match what {
        "no token" => return rest.url("/realtime").replacen("http", "ws", 1),
        "a malformed token" => "not.a.jwt".to_string(),
        "an expired token" => {
            let mut c = Claims::user(&app, &id, 0);
            c.exp -= 10;
            encode(&claims(c), &secret, Algorithm::HS256)
        }
        "a token without exp" => {
            let mut c = valid.clone();
            c.as_object_mut().expect("claims are an object").remove("exp");
            encode(&c, &secret, Algorithm::HS256)
        }
        "a token signed with another secret" => encode(&valid, "not-the-secret", Algorithm::HS256),
        "a token for another app" => encode(&with("iss", "another-app".into()), &secret, Algorithm::HS256),
        "a token for an unknown app in the URL" => {
            let other = rest.with_app(&w.id("no-such-app"), &secret);
            return other.realtime_url(&encode(&with("iss", w.id("no-such-app").into()), &secret, Algorithm::HS256));
        }
        "a token with tokenType admin" => encode(&with("tokenType", "admin".into()), &secret, Algorithm::HS256),
        "a token whose sub breaks the id rule" => encode(&with("sub", "a/b".into()), &secret, Algorithm::HS256),
        "a token signed with HS512" => encode(&valid, &secret, Algorithm::HS512),
        other => {
            let name = other.strip_prefix("a valid token named ").unwrap_or("").trim_matches('"');
            encode(&with("name", name.into()), &secret, Algorithm::HS256)
        }
    };
    rest.realtime_url(&token)
}

#[when(regex = r#"^(\w+) connects with (.+)$"#)]
async fn connects_with(w: &mut SgWorld, user: String, what: String) {
    let url = variant(w, &user, &what);
    let connector = Some(w.rest().tls().ws_connector());
    let connecting = tokio_tungstenite::connect_async_tls_with_config(url.as_str(), None, false, connector);
    let outcome = match tokio::time::timeout(w.wait(), connecting).await {
        Err(_) => RestOutcome { status: 0, code: None, body: "no answer to the upgrade".into() },
        Ok(Ok((ws, resp))) => {
            w.notes.insert("upgrade".into(), "101".into());
            let mut ws = ws;
            let _ = ws.close(None).await;
            RestOutcome { status: resp.status().as_u16(), code: None, body: String::new() }
        }
        Ok(Err(tungstenite::Error::Http(resp))) => {
            let body = resp.body().as_ref().map(|b| String::from_utf8_lossy(b).into_owned()).unwrap_or_default();
            RestOutcome::raw(resp.status().as_u16(), body)
        }
        Ok(Err(e)) => RestOutcome { status: 0, code: None, body: e.to_string() },
    };
    w.last_rest = Some(outcome);
}

#[then(regex = r#"^the upgrade is refused with HTTP 401 unauthorized$"#)]
async fn refused(w: &mut SgWorld) -> anyhow::Result<()> {
    let o = w.last_rest.clone().ok_or_else(|| anyhow::anyhow!("no upgrade attempt to judge"))?;
    anyhow::ensure!(
        o.status == 401 && o.code.as_deref() == Some("unauthorized"),
        "expected HTTP 401 with code unauthorized before the upgrade; received {o}"
    );
    Ok(())
}

#[then(regex = r#"^the upgrade succeeds$"#)]
async fn upgraded(w: &mut SgWorld) -> anyhow::Result<()> {
    let o = w.last_rest.clone().ok_or_else(|| anyhow::anyhow!("no upgrade attempt to judge"))?;
    anyhow::ensure!(o.status == 101, "expected HTTP 101 Switching Protocols; received {o}");
    Ok(())
}
