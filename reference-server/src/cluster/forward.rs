//! REST on an edge: the request is forwarded verbatim (method, path and
//! query, headers, body) to the core, which runs it through its own router
//! and answers status, headers and body, which the edge gives the client as
//! they are. Every REST rule (auth, validation order, limits, idempotency)
//! is therefore the single server's, on every node.
//!
//! Sizes: a request travels in one NATS message, so it must fit the NATS
//! server's `max_payload` less [`super::ENVELOPE`]; a body that does not is
//! answered 413 `payload_too_large` by the edge (with `max_payload` of 2 MiB,
//! as our scripts run NATS, every body the server accepts fits). The answer
//! may be larger than one message (a page of 100 long messages): the core
//! sends it in chunks of at most `max_payload` less the envelope to the
//! request's own inbox, each with its index and the count, and the edge
//! reassembles them, waiting at most [`super::CORE_TIMEOUT`] in all.

use crate::error::ApiError;
use crate::state::AppState;
use axum::body::Body;
use axum::extract::Request;
use axum::http::{HeaderName, HeaderValue, Method, StatusCode};
use axum::response::{IntoResponse, Response};
use bytes::{BufMut, Bytes, BytesMut};
use futures_util::StreamExt;
use supergroup_protocol::ErrorCode;
use supergroup_protocol::limits::MAX_BODY_BYTES;
use tokio_util::sync::CancellationToken;
use tower::ServiceExt;

use super::wire::{Put, Take, WireError};

/// Largest answer the core forwards, in bytes (a page of 100 messages at
/// their largest is about 33 MB); a larger one is answered 500.
pub const MAX_ANSWER_BYTES: usize = 64 << 20;
/// Headers are not forwarded past this many bytes in all (431 otherwise).
const MAX_HEADER_BYTES: usize = 64 * 1024;

/// A request or an answer as it travels.
struct Http {
    /// The method (request) or the status as text (answer).
    head: String,
    /// Path and query (request); empty in an answer.
    target: String,
    headers: Vec<(String, Bytes)>,
    body: Bytes,
}

impl Http {
    fn encode(&self) -> Bytes {
        let mut b = BytesMut::with_capacity(self.body.len() + 256);
        b.str(&self.head);
        b.str(&self.target);
        b.put_u32(self.headers.len() as u32);
        for (n, v) in &self.headers {
            b.str(n);
            b.blob(v);
        }
        b.blob(&self.body);
        b.freeze()
    }

    fn decode(payload: Bytes) -> Result<Http, WireError> {
        let mut t = Take(payload);
        let (head, target) = (t.string()?, t.string()?);
        let n = t.u32()? as usize;
        if n > 1024 {
            return Err(WireError("too many headers"));
        }
        let headers = (0..n).map(|_| Ok((t.string()?, t.blob()?))).collect::<Result<_, WireError>>()?;
        Ok(Http { head, target, headers, body: t.blob()? })
    }
}

/// Headers that belong to one hop, not to the request.
fn hop_by_hop(name: &str) -> bool {
    matches!(name, "connection" | "keep-alive" | "transfer-encoding" | "upgrade" | "te" | "trailer" | "host")
}

/// The edge's handler of every route but the realtime one and `/healthz`.
pub async fn edge_forward(client: async_nats::Client, req: Request) -> Response {
    let (parts, body) = req.into_parts();
    let body = match axum::body::to_bytes(body, MAX_BODY_BYTES).await {
        Ok(b) => b,
        Err(_) => {
            let why = format!("the body is over {MAX_BODY_BYTES} bytes");
            return ApiError::new(ErrorCode::PayloadTooLarge, why).into_response();
        }
    };
    let mut headers = Vec::new();
    let mut header_bytes = 0;
    for (n, v) in &parts.headers {
        if hop_by_hop(n.as_str()) {
            continue;
        }
        header_bytes += n.as_str().len() + v.len();
        headers.push((n.as_str().to_string(), Bytes::copy_from_slice(v.as_bytes())));
    }
    if header_bytes > MAX_HEADER_BYTES {
        return (StatusCode::REQUEST_HEADER_FIELDS_TOO_LARGE, "request headers over 64 KiB").into_response();
    }
    let target = parts.uri.path_and_query().map(|p| p.as_str().to_string()).unwrap_or_else(|| "/".into());
    let payload = Http { head: parts.method.as_str().into(), target, headers, body }.encode();
    let limit = client.server_info().max_payload.saturating_sub(super::ENVELOPE);
    if payload.len() > limit {
        let why = format!("the body is over the {limit} bytes this cluster forwards (NATS max_payload)");
        return ApiError::new(ErrorCode::PayloadTooLarge, why).into_response();
    }
    match tokio::time::timeout(super::CORE_TIMEOUT, ask(&client, payload)).await {
        Ok(Ok(answer)) => answer,
        Ok(Err(e)) => unavailable(&e.to_string()),
        Err(_) => unavailable("the core did not answer in time"),
    }
}

/// 503 `server_busy`: the core cannot be reached.
fn unavailable(why: &str) -> Response {
    ApiError::new(ErrorCode::ServerBusy, format!("cluster: {why}")).into_response()
}

/// Sends the request to the core's inbox and reassembles the chunked answer.
async fn ask(client: &async_nats::Client, payload: Bytes) -> anyhow::Result<Response> {
    let inbox = client.new_inbox();
    let mut chunks = client.subscribe(inbox.clone()).await?;
    client.publish_with_reply(super::subjects::HTTP, inbox, payload).await?;
    let mut whole = BytesMut::new();
    let mut expected = 0;
    loop {
        let msg = chunks.next().await.ok_or_else(|| anyhow::anyhow!("the core's answer stopped"))?;
        if msg.status.is_some() {
            // NATS's "no responders": no core subscribed.
            anyhow::bail!("no core is serving");
        }
        let mut t = Take(msg.payload);
        let (index, count) = (t.u32()?, t.u32()?);
        anyhow::ensure!(index == expected && count > index, "the core's answer came out of order");
        whole.extend_from_slice(&t.blob()?);
        anyhow::ensure!(whole.len() <= MAX_ANSWER_BYTES + super::ENVELOPE, "the core's answer is too large");
        expected += 1;
        if expected == count {
            break;
        }
    }
    let answer = Http::decode(whole.freeze())?;
    let status = StatusCode::from_u16(answer.head.parse()?)?;
    let mut response = Response::new(Body::from(answer.body));
    *response.status_mut() = status;
    for (n, v) in answer.headers {
        if hop_by_hop(&n) || n == "content-length" {
            continue;
        }
        response.headers_mut().append(HeaderName::try_from(n)?, HeaderValue::from_bytes(&v)?);
    }
    Ok(response)
}

/// The core's side: runs each forwarded request through the router and
/// publishes the chunks of its answer to the request's inbox.
pub fn serve_core(
    state: AppState,
    client: async_nats::Client,
    mut requests: async_nats::Subscriber,
    stop: CancellationToken,
) {
    let router = crate::routes::router(state);
    tokio::spawn(async move {
        while let Some(Some(msg)) = stop.run_until_cancelled(requests.next()).await {
            let (router, client) = (router.clone(), client.clone());
            tokio::spawn(async move {
                let Some(reply) = msg.reply else { return };
                let answer = match Http::decode(msg.payload) {
                    Ok(req) => run(router, req).await,
                    Err(e) => answer_of(ApiError::new(ErrorCode::InvalidRequest, e.to_string()).into_response()).await,
                };
                let limit = client.server_info().max_payload.saturating_sub(super::ENVELOPE).max(1024);
                let whole = answer.encode();
                let parts: Vec<&[u8]> = if whole.is_empty() { vec![&[][..]] } else { whole.chunks(limit).collect() };
                for (i, part) in parts.iter().enumerate() {
                    let mut b = BytesMut::with_capacity(part.len() + 12);
                    b.put_u32(i as u32);
                    b.put_u32(parts.len() as u32);
                    b.blob(part);
                    if client.publish(reply.clone(), b.freeze()).await.is_err() {
                        return;
                    }
                }
            });
        }
    });
}

async fn run(router: axum::Router, req: Http) -> Http {
    let Ok(method) = Method::from_bytes(req.head.as_bytes()) else {
        return answer_of(ApiError::new(ErrorCode::InvalidRequest, "bad method").into_response()).await;
    };
    let mut builder = axum::http::Request::builder().method(method).uri(req.target.as_str());
    for (n, v) in &req.headers {
        builder = builder.header(n.as_str(), v.as_ref());
    }
    let Ok(request) = builder.body(Body::from(req.body)) else {
        return answer_of(ApiError::new(ErrorCode::InvalidRequest, "the request does not parse").into_response()).await;
    };
    let response = match router.oneshot(request).await {
        Ok(r) => r,
        Err(never) => match never {},
    };
    answer_of(response).await
}

async fn answer_of(response: Response) -> Http {
    let (parts, body) = response.into_parts();
    let body = match axum::body::to_bytes(body, MAX_ANSWER_BYTES).await {
        Ok(b) => b,
        Err(_) => {
            let e = ApiError::internal(format!("the answer is over the {MAX_ANSWER_BYTES} bytes a cluster forwards"));
            return Box::pin(answer_of(e.into_response())).await;
        }
    };
    let headers = parts.headers.iter().map(|(n, v)| (n.as_str().to_string(), Bytes::copy_from_slice(v.as_bytes())));
    Http { head: parts.status.as_u16().to_string(), target: String::new(), headers: headers.collect(), body }
}
