//! Notifications and webhooks, as the suite's receiver sees them:
//! `notification.triggered` per recipient, `message.sent` with the sender's
//! role, signatures, and the app's webhook registration.

use super::GRACE;
use crate::webhook_receiver::{DEFAULT_PATH, Delivery};
use crate::world::SgWorld;
use cucumber::{given, then, when};
use std::time::{Duration, Instant};
use supergroup_protocol::rest::WebhookRegistration;
use supergroup_protocol::webhook::{MESSAGE_SENT, NOTIFICATION_TRIGGERED};

/// A retry is "about 1 second" after the failed attempt (SG-HOOK-8): the suite
/// accepts one from this long after the attempt...
const RETRY_EARLIEST: Duration = Duration::from_millis(500);
/// ...to this long; a forbidden event is watched for this long after the message.
const RETRY_LATEST: Duration = Duration::from_millis(3000);

fn is_notification_for(d: &Delivery, recipient: &str) -> bool {
    d.kind == NOTIFICATION_TRIGGERED && d.recipient() == Some(recipient)
}

fn quoted(list: &str) -> Vec<String> {
    list.split('"').skip(1).step_by(2).map(str::to_owned).collect()
}

#[then(regex = r#"^(\w+) is notified of "([^"]*)" in "([^"]+)"$"#)]
async fn notified_of(w: &mut SgWorld, user: String, text: String, conv: String) -> anyhow::Result<()> {
    notification_of(w, &user, &text, &conv).await.map(drop)
}

#[then(regex = r#"^(\w+) is notified of "([^"]*)" in "([^"]+)" when the window closes$"#)]
async fn notified_on_time(w: &mut SgWorld, user: String, text: String, conv: String) -> anyhow::Result<()> {
    let d = notification_of(w, &user, &text, &conv).await?;
    let text = w.expand(&text);
    let sent = w.sent_at(&text)?;
    let suite = w.suite();
    let delay = Duration::from_millis(suite.app.notification_delay_ms);
    let took = d.at.saturating_duration_since(sent);
    anyhow::ensure!(
        took + Duration::from_millis(20) >= delay && took <= suite.notification_deadline(),
        "expected the notification when the window closes, notificationDelayMs ({delay:?}) after the message \
         (allowed up to {:?}); it came {took:?} after the message was sent",
        suite.notification_deadline()
    );
    Ok(())
}

#[then(regex = r#"^(\w+)'s notification of "([^"]*)" in "([^"]+)" has the full data shape$"#)]
async fn full_shape(w: &mut SgWorld, user: String, text: String, conv: String) -> anyhow::Result<()> {
    let d = notification_of(w, &user, &text, &conv).await?;
    let (conv_id, user_id, text) = (w.id(&conv), w.id(&user), w.expand(&text));
    let data = &d.body["data"];
    let keys: Vec<&String> = data.as_object().map(|o| o.keys().collect()).unwrap_or_default();
    anyhow::ensure!(
        keys.len() == 3
            && data["recipient"]["id"] == user_id.as_str()
            && data["conversation"]["id"] == conv_id.as_str(),
        "expected data {{\"recipient\":{{\"id\"}},\"conversation\":{{\"id\"}},\"messages\":[...]}} for {user} in {conv}; received {data}"
    );
    for m in data["messages"].as_array().into_iter().flatten() {
        let msg = serde_json::from_value::<supergroup_protocol::rest::Message>(m.clone())
            .map_err(|e| anyhow::anyhow!("expected full message objects in the notification; {e}: {m}"))?;
        anyhow::ensure!(msg.conversation_id == conv_id, "expected the messages of {conv}; received {m}");
    }
    anyhow::ensure!(d.texts().contains(&text), "expected {text:?} among the messages; received {data}");
    Ok(())
}

/// Waits for `user`'s notification listing `text` in `conv` and checks its
/// envelope (the full data shape, SG-NOTIFY-8, has a step of its own, so
/// that a server which gets only the shape wrong fails only that rule).
async fn notification_of(w: &SgWorld, user: &str, text: &str, conv: &str) -> anyhow::Result<Delivery> {
    let (conv_id, user_id, text) = (w.id(conv), w.id(user), w.expand(text));
    let suite = w.suite();
    let d = suite
        .inbox
        .wait_for(
            &conv_id,
            &format!("a notification.triggered for {user} with {text:?}"),
            suite.notification_wait(),
            |d| is_notification_for(d, &user_id) && d.texts().contains(&text),
        )
        .await?;
    let data = &d.body["data"];
    anyhow::ensure!(
        data["conversation"]["id"] == conv_id.as_str() && data["messages"].is_array(),
        "expected data {{recipient, conversation, messages}}; received {data}"
    );
    Ok(d)
}

/// How long a negative notification check watches: until the latest time a
/// notification for the conversation's last message may still come
/// ([`crate::world::Suite::notification_deadline`] after it was sent), and at
/// least [`GRACE`] from now.
fn watch_until(w: &SgWorld, conv_id: &str) -> Duration {
    let grace = GRACE;
    match w.last_sent.get(conv_id) {
        Some(sent) => (*sent + w.suite().notification_deadline()).saturating_duration_since(Instant::now()).max(grace),
        None => grace,
    }
}

#[then(regex = r#"^(\w+) is not notified about "([^"]+)"$"#)]
async fn not_notified(w: &mut SgWorld, user: String, conv: String) -> anyhow::Result<()> {
    let (conv_id, user_id) = (w.id(&conv), w.id(&user));
    let suite = w.suite();
    // Watch until a notification for the last message could no longer come in time.
    let watch = watch_until(w, &conv_id);
    match suite.inbox.wait_for(&conv_id, "no notification", watch, |d| is_notification_for(d, &user_id)).await {
        Ok(d) => {
            anyhow::bail!("expected no notification.triggered for {user} in {conv}; received one with {:?}", d.texts())
        }
        Err(_) => Ok(()),
    }
}

/// Waits for `user`'s notification that lists the last of `want`, then a grace
/// period for any other, and returns the texts of each of their notifications.
async fn settled_notifications(
    w: &SgWorld,
    user: &str,
    conv: &str,
    want: &[String],
) -> anyhow::Result<Vec<Vec<String>>> {
    let (conv_id, user_id) = (w.id(conv), w.id(user));
    let suite = w.suite();
    let last = want.last().cloned().unwrap_or_default();
    suite
        .inbox
        .wait_for(&conv_id, &format!("a notification for {user} listing {last:?}"), suite.notification_wait(), |d| {
            is_notification_for(d, &user_id) && d.texts().contains(&last)
        })
        .await?;
    let _ = suite
        .inbox
        .wait_for(&conv_id, "a late extra notification", watch_until(w, &conv_id), |d| {
            is_notification_for(d, &user_id) && !d.texts().contains(&last)
        })
        .await;
    Ok(suite
        .inbox
        .deliveries(&conv_id)
        .iter()
        .filter(|d| is_notification_for(d, &user_id))
        .map(Delivery::texts)
        .collect())
}

#[then(regex = r#"^(\w+) gets one notification for "([^"]+)" listing (.+)$"#)]
async fn one_notification(w: &mut SgWorld, user: String, conv: String, list: String) -> anyhow::Result<()> {
    let want = quoted(&list);
    let events = settled_notifications(w, &user, &conv, &want).await?;
    anyhow::ensure!(
        events.len() == 1 && events[0] == want,
        "expected one notification.triggered for {user} listing {want:?}; received {events:?}"
    );
    Ok(())
}

#[then(regex = r#"^(\w+)'s notifications for "([^"]+)" list only (.+)$"#)]
async fn notifications_list_only(w: &mut SgWorld, user: String, conv: String, list: String) -> anyhow::Result<()> {
    let want = quoted(&list);
    let got: Vec<String> = settled_notifications(w, &user, &conv, &want).await?.into_iter().flatten().collect();
    anyhow::ensure!(got == want, "expected {user}'s notifications to list exactly {want:?}; they listed {got:?}");
    Ok(())
}

fn sent_for<'a>(ds: &'a [Delivery], text: &str) -> Vec<&'a Delivery> {
    ds.iter().filter(|d| d.kind == MESSAGE_SENT && d.texts().iter().any(|t| t == text)).collect()
}

async fn wait_sent(w: &SgWorld, conv_id: &str, text: &str) -> anyhow::Result<Delivery> {
    let suite = w.suite();
    suite
        .inbox
        .wait_for(conv_id, &format!("a message.sent webhook for {text:?}"), suite.wait, |d| {
            d.kind == MESSAGE_SENT && d.texts().iter().any(|t| t == text)
        })
        .await
}

#[then(regex = r#"^a message.sent webhook for "([^"]*)" (names (\w+) as (participant|guest)|has no sender)$"#)]
async fn message_sent(w: &mut SgWorld, text: String, _all: String, user: String, role: String) -> anyhow::Result<()> {
    let conv_id = w.notes.get(&format!("conv-of:{text}")).cloned().unwrap_or_default();
    let d = wait_sent(w, &conv_id, &text).await?;
    let sender = &d.body["data"]["sender"];
    if user.is_empty() {
        anyhow::ensure!(sender.is_null(), "expected data.sender null for a system message; received {sender}");
    } else {
        let id = w.id(&user);
        anyhow::ensure!(
            sender["id"] == id.as_str() && sender["role"] == role.as_str(),
            "expected data.sender {{id: {id}, role: {role}}}; received {sender}"
        );
    }
    anyhow::ensure!(
        d.body["data"]["conversation"]["id"] == conv_id.as_str(),
        "expected data.conversation.id {conv_id}"
    );
    let m = d.body["data"]["message"].clone();
    serde_json::from_value::<supergroup_protocol::rest::Message>(m.clone())
        .map_err(|e| anyhow::anyhow!("expected data.message in full message shape; {e}: {m}"))?;
    Ok(())
}

#[then(regex = r#"^every webhook about "([^"]+)" is a signed JSON POST$"#)]
async fn signed(w: &mut SgWorld, conv: String) -> anyhow::Result<()> {
    let ds = w.suite().inbox.deliveries(&w.id(&conv));
    anyhow::ensure!(!ds.is_empty(), "expected webhooks about {conv}; none came");
    let now = chrono::Utc::now().timestamp();
    for d in ds {
        anyhow::ensure!(d.method == "POST", "expected POST; received {}", d.method);
        anyhow::ensure!(
            d.content_type.as_deref().is_some_and(|c| c.starts_with("application/json")),
            "expected Content-Type application/json; received {:?}",
            d.content_type
        );
        anyhow::ensure!(
            d.signature_ok,
            "expected a valid X-Supergroup-Signature on the {} event; it does not verify",
            d.kind
        );
        let ts: i64 = d.timestamp.as_deref().and_then(|t| t.parse().ok()).unwrap_or(0);
        anyhow::ensure!(
            (now - 300..=now + 60).contains(&ts),
            "expected X-Supergroup-Timestamp in Unix seconds near {now}; received {:?}",
            d.timestamp
        );
        let b = &d.body;
        anyhow::ensure!(
            b["type"].is_string() && b["createdAt"].is_i64() && b["data"].is_object(),
            "expected the body {{type, createdAt, data}}; received {b}"
        );
    }
    Ok(())
}

#[then(regex = r#"^the only message.sent webhooks? of "([^"]+)" (?:is|are) for (.+)$"#)]
async fn only_sent(w: &mut SgWorld, conv: String, list: String) -> anyhow::Result<()> {
    let conv_id = w.id(&conv);
    let want = quoted(&list);
    for t in &want {
        wait_sent(w, &conv_id, t).await?;
    }
    let suite = w.suite();
    let _ = suite
        .inbox
        .wait_for(&conv_id, "a late extra message.sent", GRACE, |d| {
            d.kind == MESSAGE_SENT && !d.texts().iter().any(|t| want.contains(t))
        })
        .await;
    let got: Vec<String> = suite
        .inbox
        .deliveries(&conv_id)
        .iter()
        .filter(|d| d.kind == MESSAGE_SENT && d.answered == 200)
        .flat_map(Delivery::texts)
        .collect();
    anyhow::ensure!(got == want, "expected message.sent webhooks only for {want:?}; received {got:?}");
    Ok(())
}

#[when(regex = r#"^the suite registers its receiver at path "([^"]+)" for "([^"]+)" only$"#)]
async fn register_filtered(w: &mut SgWorld, path: String, event: String) {
    // The suite's URL may be the receiver's own (ending in DEFAULT_PATH) or one
    // given with --webhook-url (any path, e.g. behind a CI runner's address):
    // `path` goes after its base, and the path the server will request is
    // remembered for "that notification came to path".
    let base = w.suite().hook_url.trim_end_matches(DEFAULT_PATH).trim_end_matches('/').to_string();
    let url = format!("{base}{path}");
    let requested = reqwest::Url::parse(&url).map(|u| u.path().to_string()).unwrap_or_else(|_| path.clone());
    w.notes.insert(format!("registered-path:{path}"), requested);
    w.registration_changed = true;
    let reg = WebhookRegistration { url, events: Some(vec![event]) };
    w.call(reqwest::Method::PUT, "/webhooks", serde_json::to_value(&reg).ok()).await;
}

#[when(regex = r#"^the suite deletes the webhook registration$"#)]
async fn delete_registration(w: &mut SgWorld) {
    w.registration_changed = true;
    w.call(reqwest::Method::DELETE, "/webhooks", None).await;
}

#[when(regex = r#"^the suite's registration is restored$"#)]
#[then(regex = r#"^the suite's registration is restored$"#)]
async fn restore(w: &mut SgWorld) -> anyhow::Result<()> {
    restore_registration(w).await
}

/// Registers the suite's receiver for every event again.
pub(super) async fn restore_registration(w: &mut SgWorld) -> anyhow::Result<()> {
    let reg = WebhookRegistration { url: w.suite().hook_url.clone(), events: None };
    w.rest().put_webhook(&reg).await.map_err(|e| anyhow::anyhow!("restoring the registration: {e}"))?;
    w.registration_changed = false;
    Ok(())
}

#[then(regex = r#"^that notification came to path "([^"]+)"$"#)]
async fn came_to_path(w: &mut SgWorld, path: String) -> anyhow::Result<()> {
    let ds = w.suite().inbox.deliveries(&w.notes.get("last-conv").cloned().unwrap_or_default());
    let paths: Vec<&str> = ds.iter().filter(|d| d.kind == NOTIFICATION_TRIGGERED).map(|d| d.path.as_str()).collect();
    let want = w.notes.get(&format!("registered-path:{path}")).cloned().unwrap_or(path);
    anyhow::ensure!(
        !paths.is_empty() && paths.iter().all(|p| *p == want),
        "expected notifications at {want}; received at {paths:?}"
    );
    Ok(())
}

#[then(regex = r#"^no message.sent webhook came for "([^"]+)"$"#)]
async fn no_sent(w: &mut SgWorld, conv: String) -> anyhow::Result<()> {
    let conv_id = w.id(&conv);
    let r = w.suite().inbox.wait_for(&conv_id, "no message.sent", GRACE, |d| d.kind == MESSAGE_SENT).await;
    anyhow::ensure!(
        r.is_err(),
        "expected no message.sent for {conv} (events filter); received {:?}",
        r.map(|d| d.texts())
    );
    Ok(())
}

#[then(regex = r#"^no message.sent webhook came for the message "([^"]*)"$"#)]
async fn no_hook_for(w: &mut SgWorld, text: String) -> anyhow::Result<()> {
    let conv_id = w.notes.get(&format!("conv-of:{text}")).cloned().unwrap_or_default();
    // The positive control (a later message's webhook) has come. The event
    // could still come as a retry (a server that counted "no registration" as
    // a failed attempt): watch until the latest a retry may come after the
    // message was stored, and at least GRACE (deliveries are not ordered).
    let sent = w.sent_at(&text)?;
    let watch = (sent + RETRY_LATEST).saturating_duration_since(Instant::now()).max(GRACE);
    let r = w
        .suite()
        .inbox
        .wait_for(&conv_id, "no message.sent", watch, |d| d.kind == MESSAGE_SENT && d.texts().contains(&text))
        .await;
    anyhow::ensure!(
        r.is_err(),
        "expected no message.sent webhook for {text:?} (stored while no webhook was registered); one came {:?} after it was sent",
        r.map(|d| d.at.saturating_duration_since(sent)).unwrap_or_default()
    );
    Ok(())
}

#[given(regex = r#"^the receiver answers the next delivery about "([^"]+)" with HTTP 500$"#)]
async fn fail_next(w: &mut SgWorld, conv: String) {
    w.suite().inbox.fail_next(&w.id(&conv), 1);
}

#[given(regex = r#"^the receiver holds the next delivery about "([^"]+)" for (\d+) seconds$"#)]
async fn hold_next(w: &mut SgWorld, conv: String, secs: u64) {
    w.suite().inbox.hold_next(&w.id(&conv), Duration::from_secs(secs));
}

async fn two_attempts(w: &SgWorld, text: &str, within: Duration) -> anyhow::Result<(Delivery, Delivery)> {
    let conv_id = w.notes.get(&format!("conv-of:{text}")).cloned().unwrap_or_default();
    let suite = w.suite();
    let text_owned = text.to_string();
    suite
        .inbox
        .wait_for(&conv_id, &format!("a second delivery of the message.sent for {text:?}"), within, |_| {
            sent_for(&suite.inbox.deliveries(&conv_id), &text_owned).len() >= 2
        })
        .await?;
    let ds = suite.inbox.deliveries(&conv_id);
    let attempts = sent_for(&ds, text);
    anyhow::ensure!(attempts.len() == 2, "expected exactly two attempts; received {}", attempts.len());
    Ok((attempts[0].clone(), attempts[1].clone()))
}

#[then(
    regex = r#"^the message.sent webhook for "([^"]*)" is delivered twice about a second apart with identical signed bodies$"#
)]
async fn retried(w: &mut SgWorld, text: String) -> anyhow::Result<()> {
    let (a, b) = two_attempts(w, &text, w.wait()).await?;
    let gap = b.at.duration_since(a.at);
    anyhow::ensure!(
        gap >= RETRY_EARLIEST && gap <= RETRY_LATEST,
        "expected the retry about 1 s after the failed attempt; it came after {gap:?}"
    );
    anyhow::ensure!(a.raw == b.raw, "expected a byte-identical body on the retry");
    anyhow::ensure!(a.signature_ok && b.signature_ok, "expected valid signatures on both attempts");
    // Watch a little longer: a third attempt would be one retry too many.
    let _ = w.suite().inbox.wait_for(&a.conversation_id, "no third attempt", GRACE * 3, |_| false).await;
    anyhow::ensure!(
        sent_for(&w.suite().inbox.deliveries(&a.conversation_id), &text).len() == 2,
        "expected exactly one retry after a success"
    );
    Ok(())
}

#[then(regex = r#"^the message.sent webhook for "([^"]*)" comes within (\d+) seconds of its post$"#)]
async fn sent_within(w: &mut SgWorld, text: String, secs: u64) -> anyhow::Result<()> {
    let conv_id = w.notes.get(&format!("conv-of:{text}")).cloned().unwrap_or_default();
    let sent = w.sent_at(&text)?;
    let d = wait_sent(w, &conv_id, &text).await?;
    let took = d.at.saturating_duration_since(sent);
    anyhow::ensure!(
        took <= Duration::from_secs(secs),
        "expected the message.sent webhook for {text:?} within {secs} s of its post; it came after {took:?} \
         (another event's delivery attempt held it up: SG-HOOK-14)"
    );
    Ok(())
}

#[then(regex = r#"^the message.sent webhook for "([^"]*)" is retried within (\d+) to (\d+) seconds$"#)]
async fn retried_after_timeout(w: &mut SgWorld, text: String, lo: u64, hi: u64) -> anyhow::Result<()> {
    let (a, b) = two_attempts(w, &text, Duration::from_secs(hi + 2)).await?;
    let gap = b.at.duration_since(a.at);
    anyhow::ensure!(
        gap >= Duration::from_secs(lo) && gap <= Duration::from_secs(hi),
        "expected the attempt to be abandoned after 5 s and retried about 1 s later; the retry came after {gap:?}"
    );
    anyhow::ensure!(a.raw == b.raw, "expected a byte-identical body on the retry");
    Ok(())
}
