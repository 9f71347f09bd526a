//! Messages: sending over realtime and REST, receiving `message` frames,
//! reading the history, idempotency keys and batches.

use super::{GRACE, describe};
use crate::world::{RestOutcome, SgWorld};
use cucumber::{given, then, when};
use supergroup_protocol::frames::{ClientFrame, ServerFrame};
use supergroup_protocol::rest::{Message, MessageType, NewMessage, Origin, PageQuery};

fn user_message(sender: String, text: String, key: Option<String>) -> NewMessage {
    NewMessage::UserMessage { sender, text, custom: None, idempotency_key: key }
}

/// Sends over realtime and keeps the reply; returns it.
async fn send(w: &mut SgWorld, user: &str, conv: &str, text: &str, key: Option<&str>) -> anyhow::Result<ServerFrame> {
    let (conv_id, wait) = (w.id(conv), w.wait());
    w.notes.insert(format!("conv-of:{text}"), conv_id.clone());
    let reply = w.conn(user).await?.send_message(&conv_id, text, key, wait).await?;
    if let ServerFrame::Ack { message_id, .. } = &reply {
        w.message_ids.insert(text.to_string(), message_id.clone());
    }
    w.replies.insert(user.to_string(), reply.clone());
    Ok(reply)
}

#[given(regex = r#"^(\w+) has sent "([^"]*)" in "([^"]+)"$"#)]
#[when(regex = r#"^(\w+) sends "([^"]*)" in "([^"]+)"$"#)]
async fn sends(w: &mut SgWorld, user: String, text: String, conv: String) -> anyhow::Result<()> {
    let text = w.expand(&text);
    let before = std::time::Instant::now();
    let reply = send(w, &user, &conv, &text, None).await?;
    w.mark_sent(&w.id(&conv), &[&text], before);
    match reply {
        ServerFrame::Ack { message_id, .. } if message_id.starts_with("msg_") => Ok(()),
        other => anyhow::bail!("expected an ack with a msg_ id for {user}'s message; received {}", describe(&other)),
    }
}

#[when(regex = r#"^(\w+) tries to send "([^"]*)" in "([^"]+)"$"#)]
async fn tries_to_send(w: &mut SgWorld, user: String, text: String, conv: String) -> anyhow::Result<()> {
    send(w, &user, &conv, &text, None).await.map(drop)
}

#[when(regex = r#"^(\w+) tries to send a text of (\d+) characters in "([^"]+)"$"#)]
async fn sends_long(w: &mut SgWorld, user: String, len: usize, conv: String) -> anyhow::Result<()> {
    send(w, &user, &conv, &"é".repeat(len), None).await.map(drop)
}

#[when(regex = r#"^(\w+) sends "([^"]*)" in "([^"]+)" with idempotency key "([^"]+)"$"#)]
async fn sends_keyed(w: &mut SgWorld, user: String, text: String, conv: String, key: String) -> anyhow::Result<()> {
    let key = w.id(&key);
    match send(w, &user, &conv, &text, Some(&key)).await? {
        ServerFrame::Ack { .. } => Ok(()),
        other => anyhow::bail!("expected an ack; received {}", describe(&other)),
    }
}

#[then(regex = r#"^(\w+) is acknowledged with the id of the first "([^"]*)"$"#)]
async fn acked_with_first(w: &mut SgWorld, user: String, text: String) -> anyhow::Result<()> {
    let first = w.message_ids.get(&format!("first:{text}")).cloned();
    match w.replies.get(&user) {
        Some(ServerFrame::Ack { message_id, .. }) if Some(message_id) == first.as_ref() => Ok(()),
        Some(other) => anyhow::bail!("expected an ack with the original id {first:?}; received {}", describe(other)),
        None => anyhow::bail!("{user} has no reply"),
    }
}

#[given(regex = r#"^(\w+) has posted "([^"]*)" to "([^"]+)"(?: with idempotency key "([^"]+)")?$"#)]
#[when(regex = r#"^(\w+) has posted "([^"]*)" to "([^"]+)"(?: with idempotency key "([^"]+)")?$"#)]
async fn has_posted(w: &mut SgWorld, user: String, text: String, conv: String, key: String) -> anyhow::Result<()> {
    posts(w, user.clone(), text.clone(), conv.clone(), key).await;
    let outcome = w.last_rest.clone().expect("posts sets last_rest");
    anyhow::ensure!(outcome.status == 200, "expected {user}'s post to {conv} to succeed; received {outcome}");
    Ok(())
}

#[when(regex = r#"^(\w+) posts "([^"]*)" to "([^"]+)"(?: with idempotency key "([^"]+)")?$"#)]
async fn posts(w: &mut SgWorld, user: String, text: String, conv: String, key: String) {
    let key = (!key.is_empty()).then(|| w.id(&key));
    let text = w.expand(&text);
    w.notes.insert(format!("conv-of:{text}"), w.id(&conv));
    w.notes.insert("last-conv".into(), w.id(&conv));
    let before = std::time::Instant::now();
    let r = w.rest().post_messages(&w.id(&conv), &[user_message(w.id(&user), text.clone(), key)]).await;
    w.mark_sent(&w.id(&conv), &[&text], before);
    if let Ok(created) = &r
        && let Some(c) = created.first()
    {
        w.message_ids.entry(format!("first:{text}")).or_insert_with(|| c.id.clone());
        w.message_ids.insert(text.clone(), c.id.clone());
    }
    w.notes.insert("last-posted".into(), text.clone());
    w.last_rest = Some(RestOutcome::of(&r));
}

#[when(regex = r#"^the app posts the system message "([^"]*)" to "([^"]+)"$"#)]
async fn posts_system(w: &mut SgWorld, text: String, conv: String) -> anyhow::Result<()> {
    w.notes.insert(format!("conv-of:{text}"), w.id(&conv));
    let r =
        w.rest().post_messages(&w.id(&conv), &[NewMessage::SystemMessage { text: text.clone(), custom: None }]).await;
    let created = r.map_err(|e| anyhow::anyhow!("expected the system message to be stored; received {e}"))?;
    anyhow::ensure!(
        created.len() == 1 && created[0].id.starts_with("msg_"),
        "expected one msg_ id; received {created:?}"
    );
    Ok(())
}

#[when(regex = r#"^(\w+) posts a batch of (\d+) messages to "([^"]+)"(?:, the last one from (\w+))?$"#)]
async fn posts_batch(w: &mut SgWorld, user: String, n: usize, conv: String, last_from: String) {
    let mut batch: Vec<NewMessage> = (1..=n).map(|i| user_message(w.id(&user), format!("batch {i}"), None)).collect();
    if !last_from.is_empty()
        && let Some(NewMessage::UserMessage { sender, .. }) = batch.last_mut()
    {
        *sender = w.id(&last_from);
    }
    let r = w.rest().post_messages(&w.id(&conv), &batch).await;
    if let Ok(created) = &r {
        w.notes.insert("batch-ids".into(), created.iter().map(|c| c.id.clone()).collect::<Vec<_>>().join(","));
        w.notes.insert("batch-conv".into(), conv.clone());
    }
    w.last_rest = Some(RestOutcome::of(&r));
}

#[then(regex = r#"^the batch is acknowledged with (\d+) distinct msg_ ids in order$"#)]
async fn batch_ids(w: &mut SgWorld, n: usize) -> anyhow::Result<()> {
    let outcome = w.last_rest.clone().ok_or_else(|| anyhow::anyhow!("no REST answer to judge"))?;
    anyhow::ensure!(outcome.status == 200, "expected the batch to be stored; received {outcome}");
    let ids: Vec<String> =
        w.notes.get("batch-ids").map(|s| s.split(',').map(str::to_owned).collect()).unwrap_or_default();
    let distinct: std::collections::BTreeSet<&String> = ids.iter().collect();
    anyhow::ensure!(
        ids.len() == n && distinct.len() == n && ids.iter().all(|i| i.starts_with("msg_")),
        "expected {n} distinct msg_ ids; received {ids:?}"
    );
    let conv = w.notes.get("batch-conv").cloned().unwrap_or_default();
    let mut history: Vec<String> = history(w, &conv, PageQuery::default()).await?.into_iter().map(|m| m.id).collect();
    history.reverse();
    anyhow::ensure!(history == ids, "expected the answer's ids in storage order {history:?}; received {ids:?}");
    Ok(())
}

#[then(regex = r#"^(\w+) receives the message "([^"]*)"(?: from (\w+))?$"#)]
async fn receives(w: &mut SgWorld, user: String, text: String, from: String) -> anyhow::Result<()> {
    let text = w.expand(&text);
    let from_id = (!from.is_empty()).then(|| w.id(&from));
    let wait = w.wait();
    let frame = w
        .conn(&user)
        .await?
        .wait_for(
            &format!("the message {text:?}"),
            wait,
            |f| matches!(f, ServerFrame::Message { message } if message.text == text),
        )
        .await?;
    if let (Some(want), ServerFrame::Message { message }) = (from_id, &frame) {
        anyhow::ensure!(
            message.sender_id.as_deref() == Some(want.as_str()),
            "expected the message {text:?} from {from}; its senderId is {:?}",
            message.sender_id
        );
    }
    Ok(())
}

async fn history(w: &SgWorld, conv: &str, query: PageQuery) -> anyhow::Result<Vec<Message>> {
    Ok(w.rest().messages(&w.id(conv), &query).await.map_err(|e| anyhow::anyhow!("GET messages of {conv}: {e}"))?.data)
}

fn texts(msgs: &[Message]) -> Vec<String> {
    msgs.iter().map(|m| m.text.clone()).collect()
}

fn quoted(list: &str) -> Vec<String> {
    list.split('"').skip(1).step_by(2).map(str::to_owned).collect()
}

#[then(regex = r#"^the history of "([^"]+)" is (.*)$"#)]
async fn history_is(w: &mut SgWorld, conv: String, list: String) -> anyhow::Result<()> {
    let got = texts(&history(w, &conv, PageQuery::default()).await?);
    let want = if list == "empty" { Vec::new() } else { quoted(&list) };
    anyhow::ensure!(got == want, "expected the history of {conv}, newest first, to be {want:?}; received {got:?}");
    Ok(())
}

#[then(regex = r#"^the history of "([^"]+)" has "([^"]*)" from (\w+) by (rest|realtime)$"#)]
async fn history_has(w: &mut SgWorld, conv: String, text: String, from: String, origin: String) -> anyhow::Result<()> {
    let msgs = history(w, &conv, PageQuery::default()).await?;
    let m = msgs
        .iter()
        .find(|m| m.text == text)
        .ok_or_else(|| anyhow::anyhow!("expected {text:?} in the history of {conv}; it holds {:?}", texts(&msgs)))?;
    let want_origin = if origin == "rest" { Origin::Rest } else { Origin::Realtime };
    let (conv_id, from_id) = (w.id(&conv), w.id(&from));
    anyhow::ensure!(
        m.sender_id.as_deref() == Some(from_id.as_str()),
        "expected senderId {from_id}; received {:?}",
        m.sender_id
    );
    anyhow::ensure!(m.origin == want_origin, "expected origin {origin}; received {:?}", m.origin);
    anyhow::ensure!(m.kind == MessageType::UserMessage, "expected type UserMessage; received {:?}", m.kind);
    anyhow::ensure!(m.conversation_id == conv_id, "expected conversationId {conv_id}; received {}", m.conversation_id);
    anyhow::ensure!(m.id.starts_with("msg_"), "expected an id starting with msg_; received {}", m.id);
    if let Some(acked) = w.message_ids.get(&text) {
        anyhow::ensure!(&m.id == acked, "expected the id the server acknowledged ({acked}); history has {}", m.id);
    }
    let now = chrono::Utc::now().timestamp_millis();
    anyhow::ensure!(
        (now - 600_000..=now + 60_000).contains(&m.created_at),
        "expected createdAt in Unix milliseconds near {now}; received {}",
        m.created_at
    );
    Ok(())
}

#[then(regex = r#"^the history of "([^"]+)" has the system message "([^"]*)" with no sender$"#)]
async fn history_system(w: &mut SgWorld, conv: String, text: String) -> anyhow::Result<()> {
    let msgs = history(w, &conv, PageQuery::default()).await?;
    let m = msgs
        .iter()
        .find(|m| m.text == text)
        .ok_or_else(|| anyhow::anyhow!("expected {text:?} in the history of {conv}; it holds {:?}", texts(&msgs)))?;
    anyhow::ensure!(m.kind == MessageType::SystemMessage, "expected type SystemMessage; received {:?}", m.kind);
    anyhow::ensure!(m.sender_id.is_none(), "expected senderId null; received {:?}", m.sender_id);
    Ok(())
}

#[then(regex = r#"^paging through "([^"]+)" (\d+) at a time gives (.*)$"#)]
async fn paging(w: &mut SgWorld, conv: String, size: usize, pages: String) -> anyhow::Result<()> {
    let mut got = Vec::new();
    let mut after: Option<String> = None;
    for _ in 0..50 {
        let page =
            history(w, &conv, PageQuery { limit: Some(size.to_string()), starting_after: after.clone() }).await?;
        anyhow::ensure!(page.len() <= size, "expected at most {size} messages per page; received {}", page.len());
        if page.is_empty() {
            break;
        }
        got.push(texts(&page).join(","));
        after = page.last().map(|m| m.id.clone());
    }
    let want: Vec<String> = pages.split(" then ").map(|p| quoted(p).join(",")).collect();
    anyhow::ensure!(got == want, "expected pages {want:?}; received {got:?}");
    Ok(())
}

#[when(regex = r#"^the app lists the messages of "([^"]+)" with limit "([^"]*)"$"#)]
async fn list_with_limit(w: &mut SgWorld, conv: String, limit: String) {
    let r = w.rest().messages(&w.id(&conv), &PageQuery { limit: Some(limit), starting_after: None }).await;
    if let Ok(p) = &r {
        w.message_ids.insert("listed".into(), p.data.len().to_string());
    }
    w.last_rest = Some(RestOutcome::of(&r));
}

#[then(regex = r#"^(\d+) messages are listed$"#)]
async fn listed_count(w: &mut SgWorld, n: usize) -> anyhow::Result<()> {
    let outcome = w.last_rest.clone().ok_or_else(|| anyhow::anyhow!("no REST answer to judge"))?;
    anyhow::ensure!(outcome.status == 200, "expected the list to succeed; received {outcome}");
    let got: usize = w.message_ids.get("listed").and_then(|s| s.parse().ok()).unwrap_or(usize::MAX);
    anyhow::ensure!(got == n, "expected {n} messages; received {got}");
    Ok(())
}

#[then(regex = r#"^(\w+)'s message is acknowledged only once it is in the history of "([^"]+)"$"#)]
async fn ack_means_stored(w: &mut SgWorld, user: String, conv: String) -> anyhow::Result<()> {
    let id = match w.replies.get(&user) {
        Some(ServerFrame::Ack { message_id, .. }) => message_id.clone(),
        Some(other) => anyhow::bail!("expected an ack; received {}", describe(other)),
        None => anyhow::bail!("{user} has no reply"),
    };
    let msgs = history(w, &conv, PageQuery::default()).await?;
    anyhow::ensure!(
        msgs.iter().any(|m| m.id == id),
        "expected the acknowledged {id} in the history; it holds {:?}",
        texts(&msgs)
    );
    Ok(())
}

#[when(regex = r#"^(\w+) posts (\d+) messages to "([^"]+)"$"#)]
async fn posts_many(w: &mut SgWorld, user: String, n: usize, conv: String) -> anyhow::Result<()> {
    for i in 1..=n {
        let r = w.rest().post_messages(&w.id(&conv), &[user_message(w.id(&user), format!("m{i}"), None)]).await;
        r.map_err(|e| anyhow::anyhow!("posting m{i}: {e}"))?;
    }
    Ok(())
}

fn message_of<'a>(f: &'a ServerFrame, conv_id: &str) -> Option<&'a Message> {
    match f {
        ServerFrame::Message { message } if message.conversation_id == conv_id => Some(message),
        _ => None,
    }
}

#[then(regex = r#"^(\w+)'s ack carries the stored id and createdAt of "([^"]*)"$"#)]
async fn ack_matches(w: &mut SgWorld, user: String, text: String) -> anyhow::Result<()> {
    let conv_id = w.notes.get(&format!("conv-of:{text}")).cloned().unwrap_or_default();
    let (id, created) = match w.replies.get(&user) {
        Some(ServerFrame::Ack { message_id, created_at, .. }) => (message_id.clone(), *created_at),
        Some(other) => anyhow::bail!("expected an ack; received {}", describe(other)),
        None => anyhow::bail!("{user} has no reply"),
    };
    let page = w.rest().messages(&conv_id, &PageQuery::default()).await?;
    let m =
        page.data.iter().find(|m| m.text == text).ok_or_else(|| anyhow::anyhow!("{text:?} is not in the history"))?;
    anyhow::ensure!(
        m.id == id && m.created_at == created,
        "expected the ack ({id}, {created}) to match the stored message ({}, {})",
        m.id,
        m.created_at
    );
    Ok(())
}

#[then(regex = r#"^(\w+)'s first message frame of "([^"]+)" is "([^"]*)"$"#)]
async fn first_frame(w: &mut SgWorld, user: String, conv: String, text: String) -> anyhow::Result<()> {
    let (conv_id, wait) = (w.id(&conv), w.wait());
    let f = w
        .conn(&user)
        .await?
        .wait_for(&format!("a message frame of {conv}"), wait, |f| message_of(f, &conv_id).is_some())
        .await?;
    let got = message_of(&f, &conv_id).map(|m| m.text.clone()).unwrap_or_default();
    anyhow::ensure!(
        got == text,
        "expected the first message frame of {conv} to be {text:?} (the refused batch must send none); received {got:?}"
    );
    Ok(())
}

#[when(regex = r#"^(\w+) posts a text of (\d+) characters to "([^"]+)"$"#)]
async fn posts_long(w: &mut SgWorld, user: String, n: usize, conv: String) {
    let r = w.rest().post_messages(&w.id(&conv), &[user_message(w.id(&user), "é".repeat(n), None)]).await;
    w.last_rest = Some(RestOutcome::of(&r));
}

#[then(regex = r#"^the history of "([^"]+)" holds (\d+) messages$"#)]
async fn history_holds(w: &mut SgWorld, conv: String, n: usize) -> anyhow::Result<()> {
    let got = history(w, &conv, PageQuery { limit: Some("100".into()), starting_after: None }).await?.len();
    anyhow::ensure!(got == n, "expected {n} messages in {conv}; the history holds {got}");
    Ok(())
}

#[then(regex = r#"^the default page of "([^"]+)" holds (\d+) messages$"#)]
async fn default_page(w: &mut SgWorld, conv: String, n: usize) -> anyhow::Result<()> {
    let got = history(w, &conv, PageQuery::default()).await?.len();
    anyhow::ensure!(got == n, "expected {n} messages on a page without limit; received {got}");
    Ok(())
}

#[then(regex = r#"^the REST answer carries the id of the first "([^"]*)"$"#)]
async fn rest_first_id(w: &mut SgWorld, text: String) -> anyhow::Result<()> {
    let first = w.message_ids.get(&format!("first:{text}")).cloned();
    let outcome = w.last_rest.clone().ok_or_else(|| anyhow::anyhow!("no REST answer"))?;
    anyhow::ensure!(outcome.status == 200, "expected 200 for the replay; received {outcome}");
    let last_text = w.notes.get("last-posted").cloned().unwrap_or_default();
    let got = w.message_ids.get(&last_text).cloned();
    anyhow::ensure!(got == first, "expected the replay to answer the original id {first:?}; received {got:?}");
    Ok(())
}

#[then(regex = r#"^(\w+) got exactly one message frame for "([^"]*)"$"#)]
async fn exactly_one_frame(w: &mut SgWorld, user: String, text: String) -> anyhow::Result<()> {
    let frames = w
        .conn(&user)
        .await?
        .collect_for(GRACE, |f| matches!(f, ServerFrame::Message { message } if message.text == text))
        .await?;
    anyhow::ensure!(frames.len() == 1, "expected exactly one message frame for {text:?}; received {}", frames.len());
    Ok(())
}

#[then(regex = r#"^(\w+) got no message of "([^"]+)"$"#)]
async fn no_message_of(w: &mut SgWorld, user: String, conv: String) -> anyhow::Result<()> {
    let conv_id = w.id(&conv);
    let frames = w.conn(&user).await?.collect_for(GRACE, |f| message_of(f, &conv_id).is_some()).await?;
    anyhow::ensure!(
        frames.is_empty(),
        "expected no message frame of {conv} after it was closed; received {:?}",
        frames.iter().map(describe).collect::<Vec<_>>()
    );
    Ok(())
}

#[when(regex = r#"^the app lists the messages of "([^"]+)" starting after the id of "([^"]*)"$"#)]
async fn list_after(w: &mut SgWorld, conv: String, text: String) {
    let after = w.message_ids.get(&text).cloned();
    let r = w.rest().messages(&w.id(&conv), &PageQuery { limit: None, starting_after: after }).await;
    w.last_rest = Some(RestOutcome::of(&r));
}

#[when(regex = r#"^(\w+) and (\w+) each send (\d+) messages in "([^"]+)" without waiting$"#)]
async fn burst(w: &mut SgWorld, a: String, b: String, n: usize, conv: String) -> anyhow::Result<()> {
    let conv_id = w.id(&conv);
    w.notes.insert("last-conv".into(), conv_id.clone());
    for i in 1..=n {
        for user in [&a, &b] {
            let frame = ClientFrame::Send {
                reference: Some(format!("{user}-{i}")),
                conversation_id: conv_id.clone(),
                text: format!("{user} {i}"),
                custom: None,
                idempotency_key: None,
            };
            w.conn(user).await?.send(&frame).await?;
        }
    }
    Ok(())
}

#[then(regex = r#"^(\w+) received the (\d+) messages in the order of the history$"#)]
async fn received_in_order(w: &mut SgWorld, user: String, n: usize) -> anyhow::Result<()> {
    let conv_id = w.notes.get("last-conv").cloned().unwrap_or_else(|| w.id("team"));
    let wait = w.wait();
    let mut got = Vec::new();
    let conn = w.conn(&user).await?;
    while got.len() < n {
        let f = conn
            .wait_for(&format!("message {} of {n}", got.len() + 1), wait, |f| message_of(f, &conv_id).is_some())
            .await?;
        got.push(message_of(&f, &conv_id).map(|m| m.id.clone()).unwrap_or_default());
    }
    let mut stored: Vec<String> = w
        .rest()
        .messages(&conv_id, &PageQuery { limit: Some("100".into()), starting_after: None })
        .await?
        .data
        .into_iter()
        .map(|m| m.id)
        .collect();
    stored.reverse();
    anyhow::ensure!(
        got == stored,
        "expected {user} to receive the messages in storage order {stored:?}; received {got:?}"
    );
    Ok(())
}

#[then(regex = r#"^createdAt never decreases along the history of "([^"]+)"$"#)]
async fn monotonic(w: &mut SgWorld, conv: String) -> anyhow::Result<()> {
    let mut msgs = history(w, &conv, PageQuery { limit: Some("100".into()), starting_after: None }).await?;
    msgs.reverse();
    for pair in msgs.windows(2) {
        anyhow::ensure!(
            pair[1].created_at >= pair[0].created_at,
            "expected createdAt never to decrease; {} ({}) was stored after {} ({})",
            pair[1].id,
            pair[1].created_at,
            pair[0].id,
            pair[0].created_at
        );
    }
    Ok(())
}

#[when(regex = r#"^(\w+) posts "([^"]*)" and "([^"]*)" to "([^"]+)" in one request$"#)]
async fn posts_two(w: &mut SgWorld, user: String, a: String, b: String, conv: String) -> anyhow::Result<()> {
    let sender = w.id(&user);
    let batch = [user_message(sender.clone(), a.clone(), None), user_message(sender, b.clone(), None)];
    w.mark_sent(&w.id(&conv), &[&a, &b], std::time::Instant::now());
    w.rest()
        .post_messages(&w.id(&conv), &batch)
        .await
        .map_err(|e| anyhow::anyhow!("expected the two messages to be stored; received {e}"))?;
    Ok(())
}
