//! Raw requests and raw frames, for the rules about malformed input: the
//! REST request or realtime frame is written in the feature file as-is
//! (with `{name}` placeholders), and the answer is judged by status, code and
//! fields.

use super::auth::send_with_header;
use super::describe;
use crate::world::{RestOutcome, SgWorld};
use cucumber::gherkin::Step;
use cucumber::{then, when};
use supergroup_protocol::frames::ServerFrame;

fn body_of(w: &SgWorld, body: &str) -> Option<String> {
    match body.trim() {
        "<none>" => None,
        "<empty>" => Some(String::new()),
        b => Some(w.expand(b)),
    }
}

#[when(regex = r#"^the app sends (GET|HEAD|PUT|POST|PATCH|DELETE) (\S+) with (.*?)( as text/plain)?$"#)]
async fn app_sends(w: &mut SgWorld, method: String, path: String, body: String, plain: String) {
    let url = w.rest().url(&w.expand(&path));
    let auth = format!("Bearer {}", w.rest().secret());
    let content_type = if plain.is_empty() { "application/json" } else { "text/plain" };
    let body = if body.starts_with("a body of ") {
        let n: usize = body.trim_start_matches("a body of ").trim_end_matches(" bytes").parse().unwrap_or(0);
        // A valid JSON object of exactly n bytes: {"name":"xxx..."}.
        Some(format!(r#"{{"name":"{}"}}"#, "x".repeat(n.saturating_sub(11))))
    } else {
        body_of(w, &body)
    };
    w.last_rest = Some(send_with_header(w, &method, &url, Some(&auth), body, content_type).await);
}

/// The secret `{app-secret}` stands for the tested app's own secret.
/// Example: When a client sends PUT /users/{bob} with {} and the secret "sk_wrong"
#[when(regex = r#"^a client sends (GET|PUT|POST|PATCH|DELETE) (\S+) with (.*) and the secret "([^"]*)"$"#)]
async fn client_sends(w: &mut SgWorld, method: String, path: String, body: String, secret: String) {
    let secret = if secret == "{app-secret}" { w.rest().secret().to_string() } else { secret };
    let url = w.rest().url(&w.expand(&path));
    let body = body_of(w, &body);
    w.last_rest =
        Some(send_with_header(w, &method, &url, Some(&format!("Bearer {secret}")), body, "application/json").await);
}

fn last(w: &SgWorld) -> anyhow::Result<RestOutcome> {
    w.last_rest.clone().ok_or_else(|| anyhow::anyhow!("no REST answer to judge"))
}

#[then(regex = r#"^the (?:answer|request) (?:is|fails with) (\d+) (\S+)$"#)]
async fn answer_is(w: &mut SgWorld, status: u16, code: String) -> anyhow::Result<()> {
    let o = last(w)?;
    if code == "{}" {
        anyhow::ensure!(o.status == status, "expected HTTP {status}; received {o}");
        let v: serde_json::Value = serde_json::from_str(&o.body).unwrap_or(serde_json::Value::Null);
        anyhow::ensure!(v == serde_json::json!({}), "expected the body {{}}; received {}", o.body);
        return Ok(());
    }
    anyhow::ensure!(
        o.status == status && o.code.as_deref() == Some(code.as_str()),
        "expected HTTP {status} with code {code}; received {o}"
    );
    let v: serde_json::Value = serde_json::from_str(&o.body)?;
    let message = v.pointer("/error/message").and_then(|m| m.as_str()).unwrap_or("");
    anyhow::ensure!(!message.is_empty(), "expected a non-empty error.message; received {}", o.body);
    Ok(())
}

#[then(regex = r#"^the answer is (\d+) without a body$"#)]
async fn answer_without_body(w: &mut SgWorld, status: u16) -> anyhow::Result<()> {
    let o = last(w)?;
    anyhow::ensure!(
        o.status == status && o.body.is_empty(),
        "expected HTTP {status} without a body (HEAD); received {o}"
    );
    Ok(())
}

#[then(regex = r#"^the request succeeds( with \{\})?$"#)]
async fn succeeds(w: &mut SgWorld, empty: String) -> anyhow::Result<()> {
    let o = last(w)?;
    anyhow::ensure!(o.status == 200, "expected HTTP 200; received {o}");
    if !empty.is_empty() {
        // Typed calls keep the decoded body as Debug text: `{}` decodes to `Object {}`.
        let is_empty_object = o.body == "Object {}"
            || serde_json::from_str::<serde_json::Value>(&o.body).is_ok_and(|v| v == serde_json::json!({}));
        anyhow::ensure!(is_empty_object, "expected the body {{}}; received {}", o.body);
    }
    Ok(())
}

#[then(regex = r#"^the error message is not empty$"#)]
async fn message_not_empty(w: &mut SgWorld) -> anyhow::Result<()> {
    let o = last(w)?;
    let v: serde_json::Value = serde_json::from_str(&o.body)?;
    anyhow::ensure!(
        v.pointer("/error/message").and_then(|m| m.as_str()).is_some_and(|m| !m.trim().is_empty()),
        "expected {{\"error\":{{\"code\",\"message\"}}}} with a non-empty message; received {}",
        o.body
    );
    Ok(())
}

#[when(regex = r#"^(\w+) sends the frame (.+)$"#)]
async fn sends_frame(w: &mut SgWorld, user: String, frame: String) -> anyhow::Result<()> {
    let text = w.expand(&frame);
    w.conn(&user).await?.send_text(text).await?;
    Ok(())
}

#[when(regex = r#"^(\w+) sends a binary message$"#)]
async fn sends_binary(w: &mut SgWorld, user: String) -> anyhow::Result<()> {
    w.conn(&user).await?.send_binary(br#"{"type":"open"}"#.to_vec()).await?;
    Ok(())
}

/// Whether every field of `want` is in `got` with the same value; the value
/// `"~absent~"` means the field must be missing.
fn subset(want: &serde_json::Value, got: &serde_json::Value) -> bool {
    match want {
        serde_json::Value::Object(fields) => fields.iter().all(|(k, v)| {
            if v == "~absent~" { got.get(k).is_none() } else { got.get(k).is_some_and(|g| subset(v, g)) }
        }),
        other => other == got,
    }
}

#[then(regex = r#"^(\w+) receives a frame (.+)$"#)]
async fn receives_frame(w: &mut SgWorld, user: String, frame: String) -> anyhow::Result<()> {
    let want: serde_json::Value = serde_json::from_str(&w.expand(&frame))?;
    let wait = w.wait();
    let what = format!("a frame like {want}");
    w.conn(&user)
        .await?
        .wait_for(&what, wait, |f| serde_json::to_value(f).is_ok_and(|got| subset(&want, &got)))
        .await?;
    Ok(())
}

#[then(regex = r#"^(\w+)'s connection still works$"#)]
async fn still_works(w: &mut SgWorld, user: String) -> anyhow::Result<()> {
    let conv_id = w.id("team");
    let wait = w.wait();
    let reply = w.conn(&user).await?.open(&conv_id, Default::default(), false, wait).await?;
    anyhow::ensure!(
        matches!(reply, ServerFrame::Opened { .. }),
        "expected the connection to keep working (open of team answered opened); received {}",
        describe(&reply)
    );
    Ok(())
}

#[when(regex = r#"^(\w+) sends the frames without waiting:$"#)]
async fn sends_many(w: &mut SgWorld, user: String, step: &Step) -> anyhow::Result<()> {
    let doc = step.docstring.clone().unwrap_or_default();
    let frames: Vec<String> = doc.lines().map(str::trim).filter(|l| !l.is_empty()).map(|l| w.expand(l)).collect();
    let conn = w.conn(&user).await?;
    for f in frames {
        conn.send_text(f).await?;
    }
    Ok(())
}

#[then(regex = r#"^(\w+)'s replies come in the order (.+)$"#)]
async fn replies_in_order(w: &mut SgWorld, user: String, list: String) -> anyhow::Result<()> {
    let want: Vec<String> = list.split('"').skip(1).step_by(2).map(str::to_owned).collect();
    let wait = w.wait();
    let conn = w.conn(&user).await?;
    let mut got = Vec::new();
    while got.len() < want.len() {
        let f = conn.wait_for("the next reply", wait, |f| f.reference().is_some()).await?;
        got.push(f.reference().unwrap_or_default().to_string());
    }
    anyhow::ensure!(got == want, "expected replies in the order {want:?}; received {got:?}");
    Ok(())
}

#[when(regex = r#"^(\w+) sends a send frame of exactly (\d+) bytes in "([^"]+)"$"#)]
async fn sized_frame(w: &mut SgWorld, user: String, size: usize, conv: String) -> anyhow::Result<()> {
    let conv_id = w.id(&conv);
    let n = w.notes.len();
    let reference = format!("sized-{n}");
    let head = format!(r#"{{"type":"send","ref":"{reference}","conversationId":"{conv_id}","text":"#);
    let tail = "}";
    // Text of up to 20,000 characters, the rest of the size made of JSON whitespace.
    let text_len = 20_000.min(size.saturating_sub(head.len() + tail.len() + 2));
    let text = format!("\"{}\"", "x".repeat(text_len));
    let pad = size.saturating_sub(head.len() + text.len() + tail.len());
    let frame = format!("{head}{text}{}{tail}", " ".repeat(pad));
    anyhow::ensure!(frame.len() == size, "the suite built a frame of {} bytes instead of {size}", frame.len());
    w.notes.insert("sized-ref".into(), reference);
    w.conn(&user).await?.send_text(frame).await?;
    Ok(())
}

#[then(regex = r#"^(\w+) is acknowledged$"#)]
async fn acknowledged(w: &mut SgWorld, user: String) -> anyhow::Result<()> {
    if let Some(reference) = w.notes.remove("sized-ref") {
        let wait = w.wait();
        let reply = w
            .conn(&user)
            .await?
            .wait_for(&format!("the reply to {reference}"), wait, |f| f.reference() == Some(reference.as_str()))
            .await?;
        w.replies.insert(user.clone(), reply);
    }
    match w.replies.get(&user) {
        Some(ServerFrame::Ack { message_id, .. }) if message_id.starts_with("msg_") => Ok(()),
        Some(other) => anyhow::bail!("expected an ack for {user}; received {}", describe(other)),
        None => anyhow::bail!("{user} has no reply"),
    }
}

#[then(regex = r#"^(\w+)'s connection is closed with code (\d+)(?: and reason "([^"]*)")?$"#)]
async fn closed_with(w: &mut SgWorld, user: String, code: u16, reason: String) -> anyhow::Result<()> {
    let wait = w.wait();
    let (got, why) = w.conn(&user).await?.wait_closed(wait).await?;
    anyhow::ensure!(
        got == Some(code),
        "expected the server to close {user}'s connection with code {code}; received {got:?} {why:?}"
    );
    if !reason.is_empty() {
        anyhow::ensure!(why == reason, "expected close reason {reason:?}; received {why:?}");
    }
    Ok(())
}
