//! The REST half of the client: one method per endpoint, typed bodies in and
//! out, and [`Rest::raw`] for requests a typed method cannot make (bad JSON,
//! wrong auth) so the suite can probe error handling.

use super::tls::Tls;
use crate::rest::*;
use reqwest::{Method, StatusCode};
use serde::Serialize;
use serde::de::DeserializeOwned;
use std::time::Duration;

/// A failed REST call.
#[derive(Debug, thiserror::Error)]
pub enum ApiError {
    /// The server answered with an error body.
    #[error("HTTP {status}: {code}: {message}")]
    Api { status: u16, code: String, message: String },
    /// The server answered, but not with what the protocol says.
    #[error("HTTP {status}: unexpected body: {body}")]
    Protocol { status: u16, body: String },
    /// No answer: connection refused, timeout, ...
    #[error("transport: {0}")]
    Transport(#[from] reqwest::Error),
    /// The TLS handshake failed: most often a certificate no trusted root vouches for.
    #[error("TLS: {0}")]
    Tls(String),
}

impl ApiError {
    /// The HTTP status, when the server answered.
    pub fn status(&self) -> Option<u16> {
        match self {
            ApiError::Api { status, .. } | ApiError::Protocol { status, .. } => Some(*status),
            ApiError::Transport(_) | ApiError::Tls(_) => None,
        }
    }

    /// The error code, when the server sent an error body.
    pub fn code(&self) -> Option<&str> {
        match self {
            ApiError::Api { code, .. } => Some(code),
            _ => None,
        }
    }
}

/// A REST client for one app on one server.
#[derive(Debug, Clone)]
pub struct Rest {
    http: reqwest::Client,
    /// The trust the client was built with, for the realtime half.
    tls: Tls,
    base: String,
    app_id: String,
    secret: String,
}

/// Builds a path segment: ids are percent-encoded so any valid id is addressable.
fn seg(id: &str) -> String {
    url::form_urlencoded::byte_serialize(id.as_bytes()).collect::<String>().replace('+', "%20")
}

impl Rest {
    /// `base` is the server's origin, e.g. `http://127.0.0.1:8080` or
    /// `https://chat.example.com`; an https origin trusts the platform's roots.
    pub fn new(base: &str, app_id: &str, secret: &str) -> Rest {
        Rest::with_tls(base, app_id, secret, Tls::platform())
    }

    /// Like [`Rest::new`], trusting what `tls` trusts (e.g. a private CA).
    pub fn with_tls(base: &str, app_id: &str, secret: &str, tls: Tls) -> Rest {
        let http = reqwest::Client::builder()
            .timeout(Duration::from_secs(30))
            .pool_max_idle_per_host(64)
            .tls_backend_preconfigured(tls.rustls_config())
            .build()
            .expect("a client with a timeout and a rustls configuration always builds");
        Rest { http, tls, base: base.trim_end_matches('/').to_string(), app_id: app_id.into(), secret: secret.into() }
    }

    /// The trust of this client, to open realtime connections the same way
    /// ([`crate::client::Realtime::connect_tls`]).
    pub fn tls(&self) -> &Tls {
        &self.tls
    }

    /// The HTTP client underneath (cheap to clone), for callers that make
    /// their own requests to the same target with the same trust.
    pub fn http(&self) -> &reqwest::Client {
        &self.http
    }

    /// The server's origin.
    pub fn base(&self) -> &str {
        &self.base
    }

    /// The app id.
    pub fn app_id(&self) -> &str {
        &self.app_id
    }

    /// The app secret.
    pub fn secret(&self) -> &str {
        &self.secret
    }

    /// The same server and app, with another secret (to probe auth).
    pub fn with_secret(&self, secret: &str) -> Rest {
        Rest { secret: secret.into(), ..self.clone() }
    }

    /// The same server, another app.
    pub fn with_app(&self, app_id: &str, secret: &str) -> Rest {
        Rest { app_id: app_id.into(), secret: secret.into(), ..self.clone() }
    }

    /// `http://host/v1/{appId}` + `path`.
    pub fn url(&self, path: &str) -> String {
        format!("{}/v1/{}{}", self.base, seg(&self.app_id), path)
    }

    /// The realtime URL for a token (`ws://host/v1/{appId}/realtime?token=...`).
    pub fn realtime_url(&self, token: &str) -> String {
        let http = self.url("/realtime");
        let ws = if let Some(rest) = http.strip_prefix("https://") {
            format!("wss://{rest}")
        } else {
            format!("ws://{}", http.trim_start_matches("http://"))
        };
        format!("{ws}?token={}", seg(token))
    }

    /// A one-hour user token for `user_id`, signed with this client's secret.
    pub fn token(&self, user_id: &str) -> String {
        crate::token::user_token(&self.app_id, &self.secret, user_id)
    }

    /// Any request: `body` is sent as-is with `Content-Type: application/json`;
    /// `auth: None` sends no Authorization header. Returns status and body text.
    pub async fn raw(
        &self,
        method: Method,
        path: &str,
        body: Option<String>,
        auth: Option<&str>,
    ) -> Result<(u16, String), ApiError> {
        let mut req = self.http.request(method, self.url(path));
        if let Some(secret) = auth {
            req = req.bearer_auth(secret);
        }
        if let Some(body) = body {
            req = req.header("content-type", "application/json").body(body);
        }
        let resp = req.send().await.map_err(|e| self.transport(e))?;
        let status = resp.status().as_u16();
        Ok((status, resp.text().await?))
    }

    async fn call<B: Serialize, T: DeserializeOwned>(
        &self,
        method: Method,
        path: &str,
        body: Option<&B>,
    ) -> Result<T, ApiError> {
        let mut req = self.http.request(method, self.url(path)).bearer_auth(&self.secret);
        if let Some(body) = body {
            req = req.json(body);
        }
        let resp = req.send().await.map_err(|e| self.transport(e))?;
        let status = resp.status();
        let bytes = resp.bytes().await?;
        decode(status, &bytes)
    }

    /// A failed send, with a refused certificate said in words.
    fn transport(&self, e: reqwest::Error) -> ApiError {
        match super::tls::describe(&e, &self.tls) {
            Some(why) => ApiError::Tls(why),
            None => ApiError::Transport(e),
        }
    }

    pub async fn app(&self) -> Result<AppInfo, ApiError> {
        self.call::<(), _>(Method::GET, "", None).await
    }

    pub async fn put_user(&self, id: &str, user: &UserUpsert) -> Result<(), ApiError> {
        self.call::<_, serde_json::Value>(Method::PUT, &format!("/users/{}", seg(id)), Some(user)).await.map(drop)
    }

    pub async fn get_user(&self, id: &str) -> Result<User, ApiError> {
        self.call::<(), _>(Method::GET, &format!("/users/{}", seg(id)), None).await
    }

    pub async fn put_conversation(&self, id: &str, conv: &ConversationUpsert) -> Result<(), ApiError> {
        self.call::<_, serde_json::Value>(Method::PUT, &format!("/conversations/{}", seg(id)), Some(conv))
            .await
            .map(drop)
    }

    pub async fn get_conversation(&self, id: &str) -> Result<Conversation, ApiError> {
        self.call::<(), _>(Method::GET, &format!("/conversations/{}", seg(id)), None).await
    }

    pub async fn delete_conversation(&self, id: &str) -> Result<(), ApiError> {
        self.call::<(), serde_json::Value>(Method::DELETE, &format!("/conversations/{}", seg(id)), None).await.map(drop)
    }

    fn participant_path(conv: &str, user: &str) -> String {
        format!("/conversations/{}/participants/{}", seg(conv), seg(user))
    }

    pub async fn put_participant(&self, conv: &str, user: &str, p: &ParticipantUpsert) -> Result<(), ApiError> {
        self.call::<_, serde_json::Value>(Method::PUT, &Self::participant_path(conv, user), Some(p)).await.map(drop)
    }

    pub async fn patch_participant(&self, conv: &str, user: &str, p: &ParticipantUpsert) -> Result<(), ApiError> {
        self.call::<_, serde_json::Value>(Method::PATCH, &Self::participant_path(conv, user), Some(p)).await.map(drop)
    }

    pub async fn delete_participant(&self, conv: &str, user: &str) -> Result<(), ApiError> {
        self.call::<(), serde_json::Value>(Method::DELETE, &Self::participant_path(conv, user), None).await.map(drop)
    }

    pub async fn post_messages(&self, conv: &str, batch: &[NewMessage]) -> Result<Vec<MessageCreated>, ApiError> {
        self.call(Method::POST, &format!("/conversations/{}/messages", seg(conv)), Some(&batch)).await
    }

    pub async fn messages(&self, conv: &str, query: &PageQuery) -> Result<Page<Message>, ApiError> {
        let path = format!("/conversations/{}/messages{}", seg(conv), query_string(query));
        self.call::<(), _>(Method::GET, &path, None).await
    }

    pub async fn user_conversations(&self, user: &str, query: &PageQuery) -> Result<Page<UserConversation>, ApiError> {
        let path = format!("/users/{}/conversations{}", seg(user), query_string(query));
        self.call::<(), _>(Method::GET, &path, None).await
    }

    pub async fn put_webhook(&self, reg: &WebhookRegistration) -> Result<(), ApiError> {
        self.call::<_, serde_json::Value>(Method::PUT, "/webhooks", Some(reg)).await.map(drop)
    }

    pub async fn delete_webhook(&self) -> Result<(), ApiError> {
        self.call::<(), serde_json::Value>(Method::DELETE, "/webhooks", None).await.map(drop)
    }
}

fn query_string(q: &PageQuery) -> String {
    let mut parts = Vec::new();
    if let Some(l) = &q.limit {
        parts.push(format!("limit={}", seg(l)));
    }
    if let Some(s) = &q.starting_after {
        parts.push(format!("startingAfter={}", seg(s)));
    }
    if parts.is_empty() { String::new() } else { format!("?{}", parts.join("&")) }
}

/// Turns a response into `T` or an [`ApiError`], checking the error body shape.
fn decode<T: DeserializeOwned>(status: StatusCode, bytes: &[u8]) -> Result<T, ApiError> {
    let text = || String::from_utf8_lossy(bytes).into_owned();
    if status == StatusCode::OK {
        return serde_json::from_slice(bytes).map_err(|_| ApiError::Protocol { status: 200, body: text() });
    }
    match serde_json::from_slice::<ErrorBody>(bytes) {
        Ok(e) => Err(ApiError::Api { status: status.as_u16(), code: e.error.code, message: e.error.message }),
        Err(_) => Err(ApiError::Protocol { status: status.as_u16(), body: text() }),
    }
}
