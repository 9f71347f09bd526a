//! Realtime presence: opening a conversation as a participant or a guest,
//! the role and member list the server answers with, closing, refusals, and
//! the `participant.joined` / `participant.left` events.

use super::{GRACE, describe, names, sorted, ui};
use crate::world::SgWorld;
use cucumber::{given, then, when};
use supergroup_protocol::frames::{ClientFrame, Role, ServerFrame};

#[when(regex = r#"^(\w+) opens "([^"]+)"( as a guest)?(?: in the (chatbox|popup|inbox) UI)?$"#)]
async fn opens(w: &mut SgWorld, user: String, conv: String, guest: String, ui_word: String) -> anyhow::Result<()> {
    w.open(&user, &conv, ui(&ui_word), !guest.is_empty()).await.map(drop)
}

#[given(regex = r#"^(\w+) has "([^"]+)" open( as a guest)?(?: in the (chatbox|popup|inbox) UI)?$"#)]
#[when(regex = r#"^(\w+) has "([^"]+)" open( as a guest)?(?: in the (chatbox|popup|inbox) UI)?$"#)]
async fn has_open(w: &mut SgWorld, user: String, conv: String, guest: String, ui_word: String) -> anyhow::Result<()> {
    let as_guest = !guest.is_empty();
    let reply = w.open(&user, &conv, ui(&ui_word), as_guest).await?;
    let want = if as_guest { Role::Guest } else { Role::Participant };
    match reply {
        ServerFrame::Opened { role, .. } if role == want => Ok(()),
        other => anyhow::bail!("expected {user} to open {conv} as {want:?}; received {}", describe(&other)),
    }
}

#[then(regex = r#"^(\w+) is in "([^"]+)" as a (guest|participant)$"#)]
async fn is_in_as(w: &mut SgWorld, user: String, conv: String, role: String) -> anyhow::Result<()> {
    let want = if role == "guest" { Role::Guest } else { Role::Participant };
    let conv_id = w.id(&conv);
    match w.replies.get(&user) {
        Some(ServerFrame::Opened { role, conversation_id, .. }) if *role == want && *conversation_id == conv_id => {
            Ok(())
        }
        Some(other) => anyhow::bail!("expected {user} to be in {conv} as a {role:?}; received {}", describe(other)),
        None => anyhow::bail!("expected a reply to {user}'s open; {user} has none"),
    }
}

#[then(regex = r#"^(\w+) is refused with (\w+)$"#)]
async fn refused(w: &mut SgWorld, user: String, code: String) -> anyhow::Result<()> {
    match w.replies.get(&user) {
        Some(ServerFrame::Error { code: got, .. }) if *got == code => Ok(()),
        Some(other) => anyhow::bail!("expected {user} to be refused with {code}; received {}", describe(other)),
        None => anyhow::bail!("expected {user} to be refused with {code}; {user} has no reply"),
    }
}

#[then(regex = r#"^(\w+)'s opened reply lists (.+)$"#)]
async fn opened_lists(w: &mut SgWorld, user: String, list: String) -> anyhow::Result<()> {
    match w.replies.get(&user) {
        Some(ServerFrame::Opened { participants, .. }) => {
            let got = sorted(participants.iter().map(|p| w.name_of(p)).collect());
            let want = sorted(names(&list));
            anyhow::ensure!(got == want, "expected {user}'s opened reply to list {want:?}; it listed {got:?}");
            Ok(())
        }
        Some(other) => anyhow::bail!("expected an opened reply for {user}; received {}", describe(other)),
        None => anyhow::bail!("expected an opened reply for {user}; {user} has none"),
    }
}

#[when(regex = r#"^(\w+) closes "([^"]+)"$"#)]
async fn closes(w: &mut SgWorld, user: String, conv: String) -> anyhow::Result<()> {
    let conv_id = w.id(&conv);
    let wait = w.wait();
    let reply = w.conn(&user).await?.close_conversation(&conv_id, wait).await?;
    match &reply {
        ServerFrame::Closed { conversation_id, .. } if *conversation_id == conv_id => Ok(()),
        other => anyhow::bail!("expected closed for {user}'s close of {conv}; received {}", describe(other)),
    }
}

#[when(regex = r#"^(\w+) disconnects$"#)]
async fn disconnects(w: &mut SgWorld, user: String) -> anyhow::Result<()> {
    let conn = w.conns.remove(&user).ok_or_else(|| anyhow::anyhow!("{user} has no connection to close"))?;
    let wait = w.wait();
    anyhow::ensure!(
        conn.disconnect_and_wait(wait).await,
        "expected the server to end {user}'s connection after the close frame (close reply, then end of stream) within {wait:?}"
    );
    Ok(())
}

#[when(regex = r#"^(\w+) marks "([^"]+)" as read$"#)]
async fn marks_read(w: &mut SgWorld, user: String, conv: String) -> anyhow::Result<()> {
    let conv_id = w.id(&conv);
    w.conn(&user).await?.send(&ClientFrame::Read { reference: None, conversation_id: conv_id }).await?;
    Ok(())
}

fn member_event(frame: &ServerFrame, conv_id: &str, user_id: &str, joined: bool) -> bool {
    match frame {
        ServerFrame::ParticipantJoined { conversation_id, user_id: u } if joined => {
            conversation_id == conv_id && u == user_id
        }
        ServerFrame::ParticipantLeft { conversation_id, user_id: u } if !joined => {
            conversation_id == conv_id && u == user_id
        }
        _ => false,
    }
}

#[then(regex = r#"^(\w+) is told that (\w+) (joined|left) "([^"]+)"$"#)]
async fn told_member_change(
    w: &mut SgWorld,
    user: String,
    who: String,
    what: String,
    conv: String,
) -> anyhow::Result<()> {
    let (conv_id, who_id, wait) = (w.id(&conv), w.id(&who), w.wait());
    let joined = what == "joined";
    let kind = if joined { "participant.joined" } else { "participant.left" };
    w.conn(&user)
        .await?
        .wait_for(&format!("{kind} for {who} in {conv}"), wait, |f| member_event(f, &conv_id, &who_id, joined))
        .await?;
    Ok(())
}

#[then(regex = r#"^(\w+) was never told that (\w+) joined or left "([^"]+)"$"#)]
async fn never_told(w: &mut SgWorld, user: String, who: String, conv: String) -> anyhow::Result<()> {
    let (conv_id, who_id) = (w.id(&conv), w.id(&who));
    let seen = w
        .conn(&user)
        .await?
        .collect_for(GRACE, |f| member_event(f, &conv_id, &who_id, true) || member_event(f, &conv_id, &who_id, false))
        .await?;
    anyhow::ensure!(
        seen.is_empty(),
        "expected no participant.joined/left for the guest {who}; {user} received {:?}",
        seen.iter().map(describe).collect::<Vec<_>>()
    );
    Ok(())
}

#[then(regex = r#"^(\w+) was told only once that (\w+) joined "([^"]+)"$"#)]
async fn told_once(w: &mut SgWorld, user: String, who: String, conv: String) -> anyhow::Result<()> {
    let (conv_id, who_id) = (w.id(&conv), w.id(&who));
    let more = w.conn(&user).await?.collect_for(GRACE, |f| member_event(f, &conv_id, &who_id, true)).await?;
    anyhow::ensure!(
        more.is_empty(),
        "expected no further participant.joined for {who} (a repeated PUT or a PATCH adds nobody); {user} received {} more",
        more.len()
    );
    Ok(())
}

#[then(regex = r#"^(\w+)'s connection is told "([^"]+)" was closed$"#)]
async fn told_closed(w: &mut SgWorld, user: String, conv: String) -> anyhow::Result<()> {
    let (conv_id, wait) = (w.id(&conv), w.wait());
    w.conn(&user)
        .await?
        .wait_for(
            &format!("closed (without ref) for {conv}"),
            wait,
            |f| matches!(f, ServerFrame::Closed { reference: None, conversation_id } if *conversation_id == conv_id),
        )
        .await?;
    Ok(())
}

#[given(regex = r#"^(\w+) is connected$"#)]
async fn connected(w: &mut SgWorld, user: String) -> anyhow::Result<()> {
    w.conn(&user).await.map(drop)
}
