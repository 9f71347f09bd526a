//! Plan limits, read from `GET /v1/{appId}`: filling a conversation with
//! exactly `guestLimit` guests or `participantLimit` participants, and the
//! edges around them.

use super::describe;
use crate::world::{RestOutcome, SgWorld};
use cucumber::{given, then, when};
use futures_util::StreamExt as _;
use supergroup_protocol::client::{Realtime, WsConfig};
use supergroup_protocol::frames::{Role, ServerFrame, Ui};
use supergroup_protocol::rest::ConversationUpsert;

/// Guest connections opened at once while filling a conversation.
const BATCH: usize = 50;

fn minus(m: &str) -> u32 {
    m.trim().parse().unwrap_or(0)
}

#[when(regex = r#"^the plan's guest limit(?: minus (\d+))? of guests open "([^"]+)" as guests$"#)]
async fn fill_guests(w: &mut SgWorld, less: String, conv: String) -> anyhow::Result<()> {
    let n = w.suite().app.guest_limit.saturating_sub(minus(&less)) as usize;
    let conv_id = w.id(&conv);
    let wait = w.wait();
    let tls = w.rest().tls().clone();
    let start = w.crowd.len();
    let jobs: Vec<(String, String)> = (start..start + n)
        .map(|i| {
            let name = format!("guest{i}");
            (w.id(&name), w.realtime_url(&name))
        })
        .collect();
    let mut opened = futures_util::stream::iter(jobs.into_iter().map(|(id, url)| {
        let (conv_id, tls) = (conv_id.clone(), tls.clone());
        async move {
            let mut rt = Realtime::connect_tls(&url, WsConfig::default(), &tls)
                .await
                .map_err(|e| anyhow::anyhow!("guest {id} could not connect: {e}"))?;
            let reply = rt.open(&conv_id, Ui::Chatbox, true, wait).await?;
            Ok::<_, anyhow::Error>((id, rt, reply))
        }
    }))
    .buffer_unordered(BATCH);
    let mut refused = Vec::new();
    while let Some(r) = opened.next().await {
        let (id, rt, reply) = r?;
        if !matches!(reply, ServerFrame::Opened { role: Role::Guest, .. }) {
            refused.push(format!("{}: {}", w.name_of(&id), describe(&reply)));
        }
        w.crowd.push((id, rt));
    }
    anyhow::ensure!(
        refused.is_empty(),
        "expected all {n} guests (guestLimit {} from GET app) to be admitted; {} were not, e.g. {:?}",
        w.suite().app.guest_limit,
        refused.len(),
        refused.iter().take(3).collect::<Vec<_>>()
    );
    Ok(())
}

#[then(regex = r#"^every one of them is in "([^"]+)" as a guest$"#)]
async fn all_in(w: &mut SgWorld, _conv: String) -> anyhow::Result<()> {
    let limit = w.suite().app.guest_limit as usize;
    anyhow::ensure!(w.crowd.len() == limit, "expected {limit} guests; {} are in", w.crowd.len());
    Ok(())
}

#[when(regex = r#"^one of the guests (closes "([^"]+)"|disconnects)$"#)]
async fn one_leaves(w: &mut SgWorld, how: String, conv: String) -> anyhow::Result<()> {
    let (_, mut rt) = w.crowd.pop().ok_or_else(|| anyhow::anyhow!("there is no guest left to leave"))?;
    if how == "disconnects" {
        let wait = w.wait();
        anyhow::ensure!(
            rt.disconnect_and_wait(wait).await,
            "expected the server to end the guest's connection after the close frame within {wait:?}"
        );
        return Ok(());
    }
    let conv_id = w.id(&conv);
    let reply = rt.close_conversation(&conv_id, w.wait()).await?;
    anyhow::ensure!(matches!(reply, ServerFrame::Closed { .. }), "expected closed; received {}", describe(&reply));
    Ok(())
}

async fn participants(w: &SgWorld, conv: &str) -> anyhow::Result<usize> {
    let c = w.rest().get_conversation(&w.id(conv)).await.map_err(|e| anyhow::anyhow!("GET {conv}: {e}"))?;
    Ok(c.participants.len())
}

#[given(regex = r#"^a conversation "([^"]+)" with the plan's participant limit(?: minus (\d+))? of participants$"#)]
async fn full_of_participants(w: &mut SgWorld, conv: String, less: String) -> anyhow::Result<()> {
    let n = w.suite().app.participant_limit.saturating_sub(minus(&less));
    let ids: Vec<String> = (1..=n).map(|i| w.id(&format!("member{i}"))).collect();
    let mut created = false;
    // One PUT lists at most 1,000 participants.
    for chunk in ids.chunks(1000) {
        let upsert = ConversationUpsert { participants: Some(chunk.to_vec()), ..Default::default() };
        w.rest().put_conversation(&w.id(&conv), &upsert).await.map_err(|e| anyhow::anyhow!("adding members: {e}"))?;
        created = true;
    }
    if !created {
        w.rest().put_conversation(&w.id(&conv), &ConversationUpsert::default()).await?;
    }
    let got = participants(w, &conv).await?;
    anyhow::ensure!(got == n as usize, "expected {n} participants after adding them; GET conversation lists {got}");
    Ok(())
}

#[then(regex = r#"^"([^"]+)" has exactly the plan's participant limit(?: minus (\d+))? of participants$"#)]
async fn exactly(w: &mut SgWorld, conv: String, less: String) -> anyhow::Result<()> {
    let n = w.suite().app.participant_limit.saturating_sub(minus(&less)) as usize;
    let got = participants(w, &conv).await?;
    anyhow::ensure!(
        got == n,
        "expected {n} participants (participantLimit from GET app); GET conversation lists {got}"
    );
    Ok(())
}

#[then(regex = r#"^(\w+) is not a participant of "([^"]+)"$"#)]
async fn not_participant(w: &mut SgWorld, user: String, conv: String) -> anyhow::Result<()> {
    let c = w.rest().get_conversation(&w.id(&conv)).await?;
    anyhow::ensure!(!c.participants.contains_key(&w.id(&user)), "expected {user} not to be a participant of {conv}");
    Ok(())
}

#[when(regex = r#"^the app updates "([^"]+)" with subject "([^"]*)" and participants (.+)$"#)]
async fn update_with(w: &mut SgWorld, conv: String, subject: String, list: String) {
    let ids = super::names(&list).iter().map(|n| w.id(n)).collect();
    let upsert = ConversationUpsert { subject: Some(subject), participants: Some(ids), ..Default::default() };
    let r = w.rest().put_conversation(&w.id(&conv), &upsert).await;
    w.last_rest = Some(RestOutcome::of(&r));
}

#[then(regex = r#"^the subject of "([^"]+)" is (not )?"([^"]*)"$"#)]
async fn subject(w: &mut SgWorld, conv: String, not: String, want: String) -> anyhow::Result<()> {
    let c = w.rest().get_conversation(&w.id(&conv)).await?;
    let is = c.subject.as_deref() == Some(want.as_str());
    anyhow::ensure!(is == not.is_empty(), "expected the subject {}{want:?}; received {:?}", not, c.subject);
    Ok(())
}

#[when(regex = r#"^(\w+) opens "([^"]+)" as a guest on a second connection$"#)]
async fn second_connection(w: &mut SgWorld, user: String, conv: String) -> anyhow::Result<()> {
    w.open(&format!("{user}#2"), &conv, Ui::Chatbox, true).await.map(drop)
}

#[then(regex = r#"^(\w+) is in "([^"]+)" as a guest on both connections$"#)]
async fn both(w: &mut SgWorld, user: String, _conv: String) -> anyhow::Result<()> {
    for name in [user.clone(), format!("{user}#2")] {
        match w.replies.get(&name) {
            Some(ServerFrame::Opened { role: Role::Guest, .. }) => {}
            Some(other) => anyhow::bail!("expected {name} to be in as a guest; received {}", describe(other)),
            None => anyhow::bail!("{name} has no reply"),
        }
    }
    Ok(())
}

#[when(regex = r#"^(\w+) closes "([^"]+)" on the second connection$"#)]
async fn close_second(w: &mut SgWorld, user: String, conv: String) -> anyhow::Result<()> {
    let (conv_id, wait) = (w.id(&conv), w.wait());
    let reply = w.conn(&format!("{user}#2")).await?.close_conversation(&conv_id, wait).await?;
    anyhow::ensure!(matches!(reply, ServerFrame::Closed { .. }), "expected closed; received {}", describe(&reply));
    Ok(())
}
