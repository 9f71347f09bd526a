//! Users and the app itself, through REST: `GET /v1/{appId}`, creating,
//! merging and reading users, and a user's conversation list.

use super::sorted;
use crate::world::{RestOutcome, SgWorld};
use cucumber::{given, then, when};
use std::collections::BTreeMap;
use supergroup_protocol::rest::{PageQuery, User, UserConversation, UserUpsert};

/// `name "A", email "e" and custom team "red"` -> an upsert; `email null` clears.
fn parse_upsert(spec: &str) -> UserUpsert {
    let mut u = UserUpsert::default();
    for part in spec.replace(" and ", ", ").split(", ") {
        let part = part.trim();
        let quoted: Vec<&str> = part.split('"').skip(1).step_by(2).collect();
        match part.split_whitespace().next().unwrap_or("") {
            "name" => u.name = quoted.first().map(|s| s.to_string()),
            "email" if part.ends_with("null") => u.email = Some(None),
            "email" => u.email = Some(Some(quoted.iter().map(|s| s.to_string()).collect())),
            "phone" if part.ends_with("null") => u.phone = Some(None),
            "phone" => u.phone = Some(Some(quoted.iter().map(|s| s.to_string()).collect())),
            "role" => u.role = quoted.first().map(|s| s.to_string()),
            "custom" => {
                let key = part.split_whitespace().nth(1).unwrap_or("").to_string();
                u.custom.get_or_insert_with(BTreeMap::new).insert(key, quoted.first().unwrap_or(&"").to_string());
            }
            _ => {}
        }
    }
    u
}

async fn store(w: &mut SgWorld, id: &str, u: &UserUpsert) {
    let body = serde_json::to_value(u).expect("a user upsert serializes");
    w.call(reqwest::Method::PUT, &format!("/users/{}", SgWorld::seg(id)), Some(body)).await;
}

async fn fetch(w: &SgWorld, id: &str) -> anyhow::Result<User> {
    w.rest().get_user(id).await.map_err(|e| anyhow::anyhow!("expected GET user {id} to answer 200; received {e}"))
}

#[when(regex = r#"^the app stores user "([^"]+)" with no fields$"#)]
async fn store_bare(w: &mut SgWorld, id: String) {
    let id = w.expand(&id);
    store(w, &id, &UserUpsert::default()).await;
}

#[when(regex = r#"^the app stores user "([^"]+)" with (name .+)$"#)]
async fn store_with(w: &mut SgWorld, id: String, spec: String) {
    let id = w.expand(&id);
    store(w, &id, &parse_upsert(&spec)).await;
}

#[given(regex = r#"^the app stored user "([^"]+)" with (.+)$"#)]
async fn stored_with(w: &mut SgWorld, id: String, spec: String) -> anyhow::Result<()> {
    let id = w.expand(&id);
    w.rest().put_user(&id, &parse_upsert(&spec)).await.map_err(|e| anyhow::anyhow!("storing user {id}: {e}"))?;
    let user = fetch(w, &id).await?;
    w.created_at.insert(format!("user:{id}"), user.created_at);
    Ok(())
}

#[when(regex = r#"^the app stores user "([^"]+)" named "([^"]*)"$"#)]
async fn store_named(w: &mut SgWorld, id: String, name: String) {
    let id = w.expand(&id);
    store(w, &id, &UserUpsert { name: Some(name), ..Default::default() }).await;
}

#[given(regex = r#"^user (\w+) is stored with name "([^"]*)"$"#)]
async fn user_stored(w: &mut SgWorld, user: String, name: String) -> anyhow::Result<()> {
    let id = w.id(&user);
    w.rest()
        .put_user(&id, &UserUpsert { name: Some(name), ..Default::default() })
        .await
        .map_err(|e| anyhow::anyhow!("storing user {user}: {e}"))
}

#[then(regex = r#"^user "([^"]+)" exists with name "([^"]*)"$"#)]
async fn quoted_user_named(w: &mut SgWorld, id: String, name: String) -> anyhow::Result<()> {
    let id = w.expand(&id);
    let user = fetch(w, &id).await?;
    anyhow::ensure!(user.id == id, "expected id {id:?}; received {:?}", user.id);
    anyhow::ensure!(user.name.as_deref() == Some(name.as_str()), "expected name {name:?}; received {:?}", user.name);
    Ok(())
}

#[then(regex = r#"^user (\w+) exists(?: with name "([^"]*)")?$"#)]
async fn user_exists(w: &mut SgWorld, user: String, name: String) -> anyhow::Result<()> {
    let u = fetch(w, &w.id(&user)).await?;
    if !name.is_empty() {
        anyhow::ensure!(
            u.name.as_deref() == Some(name.as_str()),
            "expected {user}'s name {name:?}; received {:?}",
            u.name
        );
    }
    Ok(())
}

#[then(regex = r#"^user (\w+) does not exist$"#)]
async fn user_absent(w: &mut SgWorld, user: String) -> anyhow::Result<()> {
    match w.rest().get_user(&w.id(&user)).await {
        Err(e) if e.status() == Some(404) && e.code() == Some("user_not_found") => Ok(()),
        other => anyhow::bail!("expected 404 user_not_found for {user}; received {}", RestOutcome::of(&other)),
    }
}

#[then(regex = r#"^user (\w+) has (.+)$"#)]
async fn user_has(w: &mut SgWorld, user: String, spec: String) -> anyhow::Result<()> {
    let u = fetch(w, &w.id(&user)).await?;
    for part in spec.replace(" and ", ", ").split(", ") {
        let part = part.trim();
        let quoted: Vec<String> = part.split('"').skip(1).step_by(2).map(str::to_owned).collect();
        let ok = match part {
            "no name" => u.name.is_none(),
            "no email" => u.email.is_none(),
            "no phone" => u.phone.is_none(),
            "no role" => u.role.is_none(),
            "an empty custom" => u.custom.is_empty(),
            p if p.starts_with("name ") => u.name.as_ref() == quoted.first(),
            p if p.starts_with("email ") => u.email.as_ref() == Some(&quoted),
            p if p.starts_with("role ") => u.role.as_ref() == quoted.first(),
            p if p.starts_with("custom ") => {
                let key = p.split_whitespace().nth(1).unwrap_or("");
                u.custom.len() == 1 && u.custom.get(key) == quoted.first()
            }
            other => anyhow::bail!("the step does not know the attribute {other:?}"),
        };
        anyhow::ensure!(ok, "expected {user} to have {part}; GET user returned {u:?}");
    }
    Ok(())
}

#[then(regex = r#"^the createdAt of user (\w+) did not change$"#)]
async fn user_created_at(w: &mut SgWorld, user: String) -> anyhow::Result<()> {
    let id = w.id(&user);
    let before = w.created_at.get(&format!("user:{id}")).copied();
    let u = fetch(w, &id).await?;
    anyhow::ensure!(Some(u.created_at) == before, "expected createdAt {before:?} to stay; received {}", u.created_at);
    Ok(())
}

#[when(regex = r#"^the app fetches user (\w+)$"#)]
async fn fetch_user(w: &mut SgWorld, user: String) {
    let r = w.rest().get_user(&w.id(&user)).await;
    w.last_rest = Some(RestOutcome::of(&r));
}

#[when(regex = r#"^the app fetches itself$"#)]
async fn fetch_app(w: &mut SgWorld) {
    let r = w.rest().raw(reqwest::Method::GET, "", None, Some(w.rest().secret())).await;
    w.last_rest = Some(match r {
        Ok((status, body)) => RestOutcome::raw(status, body),
        Err(e) => RestOutcome { status: 0, code: None, body: e.to_string() },
    });
}

#[then(regex = r#"^the app info has id, plan, participantLimit, guestLimit, guestAccess and notificationDelayMs$"#)]
async fn app_info(w: &mut SgWorld) -> anyhow::Result<()> {
    let outcome = w.last_rest.clone().ok_or_else(|| anyhow::anyhow!("no REST answer to judge"))?;
    anyhow::ensure!(outcome.status == 200, "expected 200 from GET app; received {outcome}");
    let v: serde_json::Value = serde_json::from_str(&outcome.body)?;
    let app_id = w.rest().app_id().to_string();
    anyhow::ensure!(v["id"] == app_id.as_str(), "expected id {app_id:?}; received {}", v["id"]);
    anyhow::ensure!(v["plan"].is_string(), "expected plan to be a string; received {}", v["plan"]);
    for field in ["participantLimit", "guestLimit", "notificationDelayMs"] {
        anyhow::ensure!(v[field].is_u64(), "expected {field} to be a non-negative integer; received {}", v[field]);
    }
    anyhow::ensure!(
        v["guestAccess"].is_boolean(),
        "expected guestAccess to be a boolean; received {}",
        v["guestAccess"]
    );
    Ok(())
}

#[then(regex = r#"^a basic plan has 100 participants and 300 guests, a growth plan 300 and 1250$"#)]
async fn plan_presets(w: &mut SgWorld) -> anyhow::Result<()> {
    let app = w.suite().app.clone();
    let want = match app.plan.as_str() {
        "basic" => Some((100, 300)),
        "growth" => Some((300, 1250)),
        _ => None,
    };
    let Some((p, g)) = want else {
        anyhow::bail!(
            "expected the app on plan basic or growth, whose presets SG-APP-3 checks; GET app reports plan {:?} \
             (run the suite against an app on one of them)",
            app.plan
        )
    };
    {
        anyhow::ensure!(
            (app.participant_limit, app.guest_limit) == (p, g),
            "expected plan {} to have {p} participants and {g} guests; GET app reports {} and {}",
            app.plan,
            app.participant_limit,
            app.guest_limit
        );
    }
    Ok(())
}

async fn conversations_of(w: &SgWorld, user: &str) -> anyhow::Result<Vec<UserConversation>> {
    let id = w.id(user);
    let page = w
        .rest()
        .user_conversations(&id, &PageQuery { limit: Some("100".into()), starting_after: None })
        .await
        .map_err(|e| anyhow::anyhow!("GET conversations of {user}: {e}"))?;
    Ok(page.data)
}

#[then(regex = r#"^(\w+)'s conversations are (.+)$"#)]
async fn conversations_are(w: &mut SgWorld, user: String, list: String) -> anyhow::Result<()> {
    let got: Vec<String> = conversations_of(w, &user).await?.iter().map(|c| w.name_of(&c.conversation.id)).collect();
    let want: Vec<String> =
        if list == "nobody" { Vec::new() } else { list.split('"').skip(1).step_by(2).map(str::to_owned).collect() };
    anyhow::ensure!(got == want, "expected {user}'s conversations to be {want:?} in that order; received {got:?}");
    Ok(())
}

#[then(regex = r#"^(\w+) has (\d+) unread in "([^"]+)"$"#)]
async fn unread(w: &mut SgWorld, user: String, n: u64, conv: String) -> anyhow::Result<()> {
    let id = w.id(&conv);
    let list = conversations_of(w, &user).await?;
    let c = list
        .iter()
        .find(|c| c.conversation.id == id)
        .ok_or_else(|| anyhow::anyhow!("expected {conv} in {user}'s conversations; not listed"))?;
    anyhow::ensure!(
        c.unread_count == n && c.is_unread == (n > 0),
        "expected unreadCount {n} and isUnread {}; received {} and {}",
        n > 0,
        c.unread_count,
        c.is_unread
    );
    Ok(())
}

#[then(regex = r#"^each of (\w+)'s conversations is the conversation object plus unread state$"#)]
async fn entries_shape(w: &mut SgWorld, user: String) -> anyhow::Result<()> {
    let list = conversations_of(w, &user).await?;
    anyhow::ensure!(!list.is_empty(), "expected at least one conversation for {user}");
    for entry in list {
        let c = w.rest().get_conversation(&entry.conversation.id).await?;
        anyhow::ensure!(
            c == entry.conversation,
            "expected the entry to equal GET conversation {c:?}; received {:?}",
            entry.conversation
        );
    }
    Ok(())
}

#[given(regex = r#"^(\w+) is a participant of (\d+) conversations$"#)]
async fn many_conversations(w: &mut SgWorld, user: String, n: usize) -> anyhow::Result<()> {
    for i in 1..=n {
        let conv = w.id(&format!("c{i}"));
        let upsert = supergroup_protocol::rest::ConversationUpsert {
            participants: Some(vec![w.id(&user)]),
            ..Default::default()
        };
        w.rest().put_conversation(&conv, &upsert).await.map_err(|e| anyhow::anyhow!("creating c{i}: {e}"))?;
    }
    Ok(())
}

#[then(regex = r#"^paging through (\w+)'s conversations (\d+) at a time returns all (\d+) once$"#)]
async fn page_conversations(w: &mut SgWorld, user: String, size: usize, n: usize) -> anyhow::Result<()> {
    let mut seen = Vec::new();
    let mut after: Option<String> = None;
    for _ in 0..=n {
        let q = PageQuery { limit: Some(size.to_string()), starting_after: after.clone() };
        let page = w.rest().user_conversations(&w.id(&user), &q).await.map_err(|e| anyhow::anyhow!("paging: {e}"))?;
        anyhow::ensure!(page.data.len() <= size, "expected at most {size} per page; received {}", page.data.len());
        if page.data.is_empty() {
            break;
        }
        after = page.data.last().map(|c| c.conversation.id.clone());
        seen.extend(page.data.into_iter().map(|c| w.name_of(&c.conversation.id)));
    }
    let want: Vec<String> = (1..=n).map(|i| format!("c{i}")).collect();
    anyhow::ensure!(
        sorted(seen.clone()) == sorted(want.clone()) && seen.len() == n,
        "expected every one of {want:?} once; paging returned {seen:?}"
    );
    Ok(())
}

#[when(regex = r#"^the app lists (\w+)'s conversations(?: with limit "([^"]*)")?(?: starting after "([^"]*)")?$"#)]
async fn list_conversations(w: &mut SgWorld, user: String, limit: String, after: String) {
    let q = PageQuery {
        limit: (!limit.is_empty()).then_some(limit),
        starting_after: (!after.is_empty()).then(|| w.id(&after)),
    };
    let r = w.rest().user_conversations(&w.id(&user), &q).await;
    w.last_rest = Some(RestOutcome::of(&r));
}

#[then(regex = r#"^(\w+)'s conversation list is ordered by latest activity, ties by id$"#)]
async fn ordered_by_activity(w: &mut SgWorld, user: String) -> anyhow::Result<()> {
    let list = conversations_of(w, &user).await?;
    let key = |c: &UserConversation| {
        let activity = c.conversation.last_message.as_ref().map_or(c.conversation.created_at, |m| m.created_at);
        (std::cmp::Reverse(activity), c.conversation.id.clone())
    };
    let got: Vec<(std::cmp::Reverse<i64>, String)> = list.iter().map(key).collect();
    let mut want = got.clone();
    want.sort();
    let names = |v: &[(std::cmp::Reverse<i64>, String)]| {
        v.iter().map(|(t, id)| format!("{} at {}", w.name_of(id), t.0)).collect::<Vec<_>>()
    };
    anyhow::ensure!(
        got == want,
        "expected {user}'s conversations by latest activity, most recent first, ties by id in byte order: {:?}; received {:?}",
        names(&want),
        names(&got)
    );
    Ok(())
}
