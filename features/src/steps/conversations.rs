//! Conversations and their participants, through REST: creating them,
//! adding and removing participants, reading the member list.

use super::{names, sorted};
use crate::world::{RestOutcome, SgWorld};
use cucumber::{given, then, when};
use reqwest::Method;
use supergroup_protocol::rest::{Access, ConversationUpsert, Notify, ParticipantUpsert};

fn upsert(participants: Option<Vec<String>>, guest_access: Option<bool>) -> ConversationUpsert {
    ConversationUpsert { participants, guest_access, ..Default::default() }
}

/// Example: Given a conversation "lobby"
#[given(regex = r#"^a conversation "([^"]+)"$"#)]
async fn conversation(w: &mut SgWorld, conv: String) -> anyhow::Result<()> {
    let id = w.id(&conv);
    w.rest().put_conversation(&id, &upsert(None, None)).await.map_err(|e| anyhow::anyhow!("creating {conv}: {e}"))
}

#[given(regex = r#"^a conversation "([^"]+)" with participants? (.+)$"#)]
async fn conversation_with(w: &mut SgWorld, conv: String, list: String) -> anyhow::Result<()> {
    let id = w.id(&conv);
    let ids = names(&list).iter().map(|n| w.id(n)).collect();
    w.rest()
        .put_conversation(&id, &upsert(Some(ids), None))
        .await
        .map_err(|e| anyhow::anyhow!("creating {conv} with {list}: {e}"))?;
    let c = w.rest().get_conversation(&id).await.map_err(|e| anyhow::anyhow!("GET {conv}: {e}"))?;
    w.created_at.insert(format!("conv:{conv}"), c.created_at);
    Ok(())
}

#[given(regex = r#"^a conversation "([^"]+)" with guest access (enabled|disabled)$"#)]
async fn conversation_guest_access(w: &mut SgWorld, conv: String, access: String) -> anyhow::Result<()> {
    let id = w.id(&conv);
    w.rest()
        .put_conversation(&id, &upsert(None, Some(access == "enabled")))
        .await
        .map_err(|e| anyhow::anyhow!("creating {conv}: {e}"))
}

#[when(regex = r#"^the app sets guest access of "([^"]+)" to (enabled|disabled)$"#)]
async fn set_guest_access(w: &mut SgWorld, conv: String, access: String) -> anyhow::Result<()> {
    conversation_guest_access(w, conv, access).await
}

fn settings(access: &str, notify: &str) -> ParticipantUpsert {
    ParticipantUpsert {
        access: match access {
            "Read" => Some(Access::Read),
            "ReadWrite" => Some(Access::ReadWrite),
            _ => None,
        },
        notify: match notify {
            "true" => Some(Notify::On),
            "false" => Some(Notify::Off),
            "MentionsOnly" => Some(Notify::MentionsOnly),
            _ => None,
        },
    }
}

fn participant_path(w: &SgWorld, conv: &str, user: &str) -> String {
    format!("/conversations/{}/participants/{}", SgWorld::seg(&w.id(conv)), SgWorld::seg(&w.id(user)))
}

fn json<T: serde::Serialize>(v: &T) -> Option<serde_json::Value> {
    Some(serde_json::to_value(v).expect("request bodies serialize"))
}

#[when(
    regex = r#"^the app adds (\w+) to "([^"]+)"(?: with (Read|ReadWrite) access)?(?: and notify (true|false|MentionsOnly))?$"#
)]
async fn add_participant(w: &mut SgWorld, user: String, conv: String, access: String, notify: String) {
    let path = participant_path(w, &conv, &user);
    w.call(Method::PUT, &path, json(&settings(&access, &notify))).await;
}

#[given(
    regex = r#"^(\w+) is a participant of "([^"]+)"(?: with (Read|ReadWrite) access)?(?: and notify (true|false|MentionsOnly))?$"#
)]
async fn is_participant(
    w: &mut SgWorld,
    user: String,
    conv: String,
    access: String,
    notify: String,
) -> anyhow::Result<()> {
    w.rest()
        .put_participant(&w.id(&conv), &w.id(&user), &settings(&access, &notify))
        .await
        .map_err(|e| anyhow::anyhow!("adding {user} to {conv}: {e}"))
}

#[given(
    regex = r#"^the app changes (\w+) in "([^"]+)" to(?: (Read|ReadWrite) access)?(?: notify (true|false|MentionsOnly))?$"#
)]
#[when(
    regex = r#"^the app changes (\w+) in "([^"]+)" to(?: (Read|ReadWrite) access)?(?: notify (true|false|MentionsOnly))?$"#
)]
async fn patch_participant(w: &mut SgWorld, user: String, conv: String, access: String, notify: String) {
    let path = participant_path(w, &conv, &user);
    w.call(Method::PATCH, &path, json(&settings(&access, &notify))).await;
}

#[when(regex = r#"^(\w+) leaves "([^"]+)"$"#)]
async fn leaves(w: &mut SgWorld, user: String, conv: String) {
    let path = participant_path(w, &conv, &user);
    w.call(Method::DELETE, &path, None).await;
}

#[when(regex = r#"^the app deletes "([^"]+)"$"#)]
async fn delete_conversation(w: &mut SgWorld, conv: String) {
    let path = format!("/conversations/{}", SgWorld::seg(&w.id(&conv)));
    w.call(Method::DELETE, &path, None).await;
}

#[when(
    regex = r#"^the app stores the conversation "([^"]+)" with (?:subject "([^"]*)")?(?: and )?(?:participants (.+?))?$"#
)]
async fn store_conversation(w: &mut SgWorld, conv: String, subject: String, list: String) {
    let participants = (!list.is_empty()).then(|| names(&list).iter().map(|n| w.id(n)).collect());
    let upsert =
        ConversationUpsert { subject: (!subject.is_empty()).then_some(subject), participants, ..Default::default() };
    let path = format!("/conversations/{}", SgWorld::seg(&w.id(&conv)));
    w.call(Method::PUT, &path, json(&upsert)).await;
}

#[when(regex = r#"^the app stores the conversation "([^"]+)" with (\d+) participants$"#)]
async fn store_huge(w: &mut SgWorld, conv: String, n: usize) {
    let ids: Vec<String> = (0..n).map(|i| w.id(&format!("p{i}"))).collect();
    let upsert = ConversationUpsert { participants: Some(ids), ..Default::default() };
    let path = format!("/conversations/{}", SgWorld::seg(&w.id(&conv)));
    w.call(Method::PUT, &path, json(&upsert)).await;
}

#[when(regex = r#"^the other app (fetches|stores) the conversation "([^"]+)"(?: with participants (.+))?$"#)]
async fn other_app(w: &mut SgWorld, what: String, conv: String, list: String) -> anyhow::Result<()> {
    let other = w.suite().other_app.clone().ok_or_else(|| anyhow::anyhow!("no second app is configured"))?;
    let id = w.id(&conv);
    w.last_rest = Some(if what == "fetches" {
        RestOutcome::of(&other.get_conversation(&id).await)
    } else {
        let ids = names(&list).iter().map(|n| w.id(n)).collect();
        RestOutcome::of(&other.put_conversation(&id, &upsert(Some(ids), None)).await)
    });
    Ok(())
}

#[then(regex = r#"^the conversation "([^"]+)" does not exist$"#)]
async fn conversation_absent(w: &mut SgWorld, conv: String) -> anyhow::Result<()> {
    match w.rest().get_conversation(&w.id(&conv)).await {
        Err(e) if e.status() == Some(404) && e.code() == Some("conversation_not_found") => Ok(()),
        other => {
            anyhow::bail!("expected 404 conversation_not_found for {conv:?}; received {}", RestOutcome::of(&other))
        }
    }
}

#[then(regex = r#"^"([^"]+)" has no last message and the app's guest access$"#)]
async fn fresh_default(w: &mut SgWorld, conv: String) -> anyhow::Result<()> {
    let default = w.suite().app.guest_access.to_string();
    fresh_conversation(w, conv, default).await
}

#[then(regex = r#"^the createdAt of "([^"]+)" did not change$"#)]
async fn conversation_created_at(w: &mut SgWorld, conv: String) -> anyhow::Result<()> {
    let before = w.created_at.get(&format!("conv:{conv}")).copied();
    let c = w.rest().get_conversation(&w.id(&conv)).await?;
    anyhow::ensure!(Some(c.created_at) == before, "expected createdAt {before:?} to stay; received {}", c.created_at);
    Ok(())
}

/// Example: When the app fetches "lobby"
#[when(regex = r#"^the app fetches "([^"]+)"$"#)]
async fn fetch_conversation(w: &mut SgWorld, conv: String) {
    let r = w.rest().get_conversation(&w.id(&conv)).await;
    w.last_rest = Some(RestOutcome::of(&r));
}

#[when(regex = r#"^the app creates "([^"]+)" with participants (.+)$"#)]
async fn create_with(w: &mut SgWorld, conv: String, list: String) {
    store_conversation(w, conv, String::new(), list).await;
}

#[then(regex = r#"^the member list of "([^"]+)" is (.+)$"#)]
async fn member_list(w: &mut SgWorld, conv: String, list: String) -> anyhow::Result<()> {
    let c = w.rest().get_conversation(&w.id(&conv)).await.map_err(|e| anyhow::anyhow!("GET {conv}: {e}"))?;
    let got = sorted(c.participants.keys().map(|id| w.name_of(id)).collect());
    let want = sorted(names(&list));
    anyhow::ensure!(got == want, "expected the participants of {conv} to be {want:?}; GET conversation listed {got:?}");
    Ok(())
}

#[then(regex = r#"^(\w+) has (Read|ReadWrite) access and notify (true|false|MentionsOnly) in "([^"]+)"$"#)]
async fn participant_settings(
    w: &mut SgWorld,
    user: String,
    access: String,
    notify: String,
    conv: String,
) -> anyhow::Result<()> {
    let c = w.rest().get_conversation(&w.id(&conv)).await.map_err(|e| anyhow::anyhow!("GET {conv}: {e}"))?;
    let want = settings(&access, &notify);
    let got = c
        .participants
        .get(&w.id(&user))
        .ok_or_else(|| anyhow::anyhow!("expected {user} among the participants of {conv}; not listed"))?;
    anyhow::ensure!(
        Some(got.access) == want.access && Some(got.notify) == want.notify,
        "expected {user} to have access {access} and notify {notify}; received {got:?}"
    );
    Ok(())
}

#[then(regex = r#"^"([^"]+)" no longer exists$"#)]
async fn gone(w: &mut SgWorld, conv: String) -> anyhow::Result<()> {
    let r = w.rest().get_conversation(&w.id(&conv)).await;
    match r {
        Err(e) if e.status() == Some(404) && e.code() == Some("conversation_not_found") => Ok(()),
        other => anyhow::bail!("expected 404 conversation_not_found for {conv}; received {}", RestOutcome::of(&other)),
    }
}

/// Example: Then "lobby" has no last message and guest access true
#[then(regex = r#"^"([^"]+)" has no last message and guest access (true|false)$"#)]
async fn fresh_conversation(w: &mut SgWorld, conv: String, access: String) -> anyhow::Result<()> {
    let c = w.rest().get_conversation(&w.id(&conv)).await.map_err(|e| anyhow::anyhow!("GET {conv}: {e}"))?;
    anyhow::ensure!(c.id == w.id(&conv), "expected id {}; received {}", w.id(&conv), c.id);
    anyhow::ensure!(c.last_message.is_none(), "expected lastMessage null; received {:?}", c.last_message);
    anyhow::ensure!(c.guest_access == (access == "true"), "expected guestAccess {access}; received {}", c.guest_access);
    let now = chrono::Utc::now().timestamp_millis();
    anyhow::ensure!(
        (now - 600_000..=now + 600_000).contains(&c.created_at),
        "expected createdAt in Unix milliseconds near {now}; received {}",
        c.created_at
    );
    Ok(())
}

#[then(regex = r#"^the last message of "([^"]+)" is "([^"]*)"$"#)]
async fn last_message(w: &mut SgWorld, conv: String, text: String) -> anyhow::Result<()> {
    let c = w.rest().get_conversation(&w.id(&conv)).await.map_err(|e| anyhow::anyhow!("GET {conv}: {e}"))?;
    let got = c.last_message.as_ref().map(|m| m.text.clone());
    anyhow::ensure!(got.as_deref() == Some(text.as_str()), "expected lastMessage {text:?}; received {got:?}");
    Ok(())
}
