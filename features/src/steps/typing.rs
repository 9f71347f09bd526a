//! Typing indicators: sending `typing`, seeing others type, and the checks
//! that nobody sees a guest type and that typing gets no reply.

use super::{GRACE, describe};
use crate::world::SgWorld;
use cucumber::{then, when};
use supergroup_protocol::frames::{ClientFrame, ServerFrame, Ui};

#[when(regex = r#"^(\w+) starts typing in "([^"]+)"( on a second connection)?$"#)]
async fn starts_typing(w: &mut SgWorld, user: String, conv: String, second: String) -> anyhow::Result<()> {
    if !second.is_empty() {
        let other = format!("{user}#2");
        let reply = w.open(&other, &conv, Ui::Chatbox, false).await?;
        anyhow::ensure!(
            matches!(reply, ServerFrame::Opened { .. }),
            "expected {user}'s second connection to open {conv}; received {}",
            describe(&reply)
        );
    }
    let conv_id = w.id(&conv);
    let n = w.notes.len();
    let reference = format!("typing-{n}");
    w.notes.insert(format!("typing-ref:{user}:{n}"), reference.clone());
    let frame = ClientFrame::Typing { reference: Some(reference), conversation_id: conv_id, is_typing: true };
    w.conn(&user).await?.send(&frame).await?;
    Ok(())
}

/// Most typing frames one step sends in a row.
const MAX_IN_A_ROW: usize = 100;

#[when(regex = r#"^(\w+) types in "([^"]+)" (\d+) times in a row$"#)]
async fn types_in_a_row(w: &mut SgWorld, user: String, conv: String, times: usize) -> anyhow::Result<()> {
    anyhow::ensure!(times <= MAX_IN_A_ROW, "at most {MAX_IN_A_ROW} typing frames in a row");
    let conv_id = w.id(&conv);
    for i in 0..times {
        let n = w.notes.len();
        let reference = format!("typing-{n}");
        w.notes.insert(format!("typing-ref:{user}:{n}"), reference.clone());
        let frame =
            ClientFrame::Typing { reference: Some(reference), conversation_id: conv_id.clone(), is_typing: i % 2 == 0 };
        w.conn(&user).await?.send(&frame).await?;
    }
    Ok(())
}

#[when(regex = r#"^(\w+) opens "([^"]+)" on a second connection and types there$"#)]
async fn types_on_second(w: &mut SgWorld, user: String, conv: String) -> anyhow::Result<()> {
    let other = format!("{user}#2");
    let reply = w.open(&other, &conv, Ui::Chatbox, false).await?;
    anyhow::ensure!(
        matches!(reply, ServerFrame::Opened { .. }),
        "expected {user}'s second connection to open {conv}; received {}",
        describe(&reply)
    );
    let frame = ClientFrame::Typing { reference: None, conversation_id: w.id(&conv), is_typing: true };
    w.conn(&other).await?.send(&frame).await?;
    Ok(())
}

fn typing_of(f: &ServerFrame, conv_id: &str, user_id: &str) -> bool {
    matches!(f, ServerFrame::Typing { conversation_id, user_id: u, is_typing: true } if conversation_id == conv_id && u == user_id)
}

#[then(regex = r#"^(\w+) sees (\w+) typing in "([^"]+)"$"#)]
async fn sees_typing(w: &mut SgWorld, user: String, typist: String, conv: String) -> anyhow::Result<()> {
    let (conv_id, typist_id, wait) = (w.id(&conv), w.id(&typist), w.wait());
    w.conn(&user)
        .await?
        .wait_for(&format!("a typing frame for {typist} in {conv}"), wait, |f| typing_of(f, &conv_id, &typist_id))
        .await?;
    Ok(())
}

#[then(regex = r#"^(\w+) has not seen (\w+) typing$"#)]
async fn not_seen_typing(w: &mut SgWorld, user: String, typist: String) -> anyhow::Result<()> {
    let typist_id = w.id(&typist);
    let names: Vec<String> = w.conns.keys().filter(|k| SgWorld::user_of(k) == user).cloned().collect();
    for name in names {
        let seen = w
            .conn(&name)
            .await?
            .collect_for(GRACE, |f| matches!(f, ServerFrame::Typing { user_id, .. } if *user_id == typist_id))
            .await?;
        anyhow::ensure!(
            seen.is_empty(),
            "expected {name} to see no typing from {typist}; received {:?}",
            seen.iter().map(describe).collect::<Vec<_>>()
        );
    }
    Ok(())
}

#[then(regex = r#"^(\w+) got no reply to (?:typing|(?:his|her|their) read frames)$"#)]
async fn no_reply(w: &mut SgWorld, user: String) -> anyhow::Result<()> {
    let barrier = format!("barrier-{}", w.notes.len());
    w.notes.insert(barrier.clone(), String::new());
    let wait = w.wait();
    let conn = w.conn(&user).await?;
    conn.send_text(format!(r#"{{"type":"no-such-frame","ref":"{barrier}"}}"#)).await?;
    conn.wait_for(&format!("the reply to the barrier frame {barrier}"), wait, |f| {
        f.reference() == Some(barrier.as_str())
    })
    .await?;
    let replies = conn
        .collect_for(std::time::Duration::ZERO, |f| {
            matches!(
                f,
                ServerFrame::Error { .. }
                    | ServerFrame::Ack { .. }
                    | ServerFrame::Opened { .. }
                    | ServerFrame::Closed { .. }
            ) || f.reference().is_some_and(|r| r.starts_with("typing-"))
        })
        .await?;
    anyhow::ensure!(
        replies.is_empty(),
        "expected no reply before the barrier; {user} received {:?}",
        replies.iter().map(describe).collect::<Vec<_>>()
    );
    Ok(())
}
