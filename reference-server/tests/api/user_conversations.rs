//! User conversations and unread state (SG-LIST-1..5, SG-MSG-13) and the
//! guest inbox rule (SG-GUEST-5): a conversation opened only as a guest is
//! never listed, while open, after sending, or after closing.

use crate::helpers::*;
use supergroup_protocol::client::Realtime;
use supergroup_protocol::frames::ClientFrame;
use supergroup_protocol::rest::{PageQuery, UserConversation};

async fn list(app: &TestApp, user: &str) -> Vec<UserConversation> {
    let query = PageQuery { limit: Some("100".into()), starting_after: None };
    app.rest.user_conversations(user, &query).await.expect("user conversations").data
}

async fn unread(app: &TestApp, user: &str, conv: &str) -> (u64, bool) {
    let entry = list(app, user).await.into_iter().find(|c| c.conversation.id == conv).expect("conversation listed");
    (entry.unread_count, entry.is_unread)
}

async fn read(rt: &mut Realtime, conv: &str) {
    rt.send(&ClientFrame::Read { reference: None, conversation_id: conv.into() }).await.unwrap();
    barrier(rt).await;
}

#[tokio::test]
async fn unread_counts_others_messages_and_read_resets_sg_list_4_5() {
    let app = spawn_app().await;
    app.conversation("c", &["alice", "bob"]).await;
    assert_eq!(unread(&app, "bob", "c").await, (0, false));
    for i in 0..3 {
        app.post("c", "alice", &format!("m{i}")).await;
    }
    app.rest
        .post_messages(
            "c",
            &[supergroup_protocol::rest::NewMessage::SystemMessage { text: "sys".into(), custom: None }],
        )
        .await
        .unwrap();
    assert_eq!(unread(&app, "bob", "c").await, (4, true), "3 from alice and 1 system message");
    assert_eq!(unread(&app, "alice", "c").await, (1, true), "own messages do not count, the system message does");
    // read does not need the conversation open, and gets no reply (barrier is the next frame).
    let mut bob = app.connect("bob").await;
    read(&mut bob, "c").await;
    assert_eq!(unread(&app, "bob", "c").await, (0, false));
    assert_eq!(unread(&app, "alice", "c").await, (1, true), "bob's read leaves alice's count alone");
    let stray = quiet_collect(&mut bob, |_| true).await;
    assert!(stray.is_empty(), "read got a reply: {stray:?}");
    app.post("c", "alice", "after read").await;
    assert_eq!(unread(&app, "bob", "c").await, (1, true));
    // Bob's own message does not make it unread for him nor move his read mark.
    app.post("c", "bob", "mine").await;
    assert_eq!(unread(&app, "bob", "c").await, (1, true));
}

#[tokio::test]
async fn conversations_are_ordered_by_latest_activity_and_paged_with_starting_after_sg_list_2_sg_msg_13() {
    let app = spawn_app().await;
    let ids = ["c3", "c1", "c5", "c2", "c4"];
    for id in ids {
        app.conversation(id, &["bob", "alice"]).await;
    }
    // An empty conversation's activity is its createdAt: created last, no message.
    app.conversation("c0-empty", &["bob"]).await;
    for id in ids {
        app.post(id, "alice", &format!("in {id}")).await;
    }
    let all = list(&app, "bob").await;
    let activity =
        |c: &UserConversation| c.conversation.last_message.as_ref().map_or(c.conversation.created_at, |m| m.created_at);
    let mut expected = all.clone();
    expected.sort_by(|a, b| activity(b).cmp(&activity(a)).then_with(|| a.conversation.id.cmp(&b.conversation.id)));
    let got: Vec<&str> = all.iter().map(|c| c.conversation.id.as_str()).collect();
    let want: Vec<&str> = expected.iter().map(|c| c.conversation.id.as_str()).collect();
    assert_eq!(got, want, "latest activity first, ties by id");
    assert_eq!(got.len(), 6);
    // A new message moves its conversation to the front.
    app.post("c3", "alice", "bump").await;
    assert_eq!(list(&app, "bob").await[0].conversation.id, "c3");
    // Paging with limit 2 returns every conversation exactly once, in list order.
    let full: Vec<String> = list(&app, "bob").await.into_iter().map(|c| c.conversation.id).collect();
    let mut paged = Vec::new();
    let mut after: Option<String> = None;
    for _ in 0..10 {
        let query = PageQuery { limit: Some("2".into()), starting_after: after.clone() };
        let page = app.rest.user_conversations("bob", &query).await.unwrap().data;
        assert!(page.len() <= 2);
        if page.is_empty() {
            break;
        }
        after = page.last().map(|c| c.conversation.id.clone());
        paged.extend(page.into_iter().map(|c| c.conversation.id));
    }
    assert_eq!(paged, full);
    // startingAfter naming no item: 400 invalid_request (SG-MSG-14); bad limits (SG-MSG-12).
    let bad = PageQuery { limit: None, starting_after: Some("nope".into()) };
    expect_api_error(app.rest.user_conversations("bob", &bad).await, 400, "invalid_request");
    for limit in ["0", "101", "abc", "-1"] {
        let bad = PageQuery { limit: Some(limit.into()), starting_after: None };
        expect_api_error(app.rest.user_conversations("bob", &bad).await, 400, "invalid_request");
    }
}

#[tokio::test]
async fn guest_conversations_are_never_listed_sg_guest_5() {
    let app = spawn_app().await;
    app.conversation("lobby", &["host"]).await;
    app.conversation("team", &["g", "host"]).await;
    let listed = |v: Vec<UserConversation>| v.into_iter().map(|c| c.conversation.id).collect::<Vec<_>>();
    // Positive control: g's participant conversation is listed.
    assert_eq!(listed(list(&app, "g").await), ["team"]);
    let mut g = app.guest("g", "lobby").await;
    assert_eq!(listed(list(&app, "g").await), ["team"], "while open as guest");
    g.send_message("lobby", "hello from a guest", None, WAIT).await.unwrap();
    app.post("lobby", "host", "welcome").await;
    read(&mut g, "lobby").await;
    assert_eq!(listed(list(&app, "g").await), ["team"], "after sending and reading");
    g.close_conversation("lobby", WAIT).await.unwrap();
    assert_eq!(listed(list(&app, "g").await), ["team"], "after closing");
    // A pure guest (never a participant anywhere) has an empty list, not an error.
    let mut h = app.guest("h", "lobby").await;
    h.send_message("lobby", "hi", None, WAIT).await.unwrap();
    assert!(list(&app, "h").await.is_empty());
    h.disconnect().await;
    assert!(list(&app, "h").await.is_empty(), "after disconnecting");
}
