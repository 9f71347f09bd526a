//! The send path under concurrency (issue 7) and the realtime races of issue
//! 8: group commit keeps per-conversation order and isolates a failing job,
//! a pipelined connection answers in frame order, an acknowledged message
//! (and an acknowledged conversation or participant PUT) survives SIGKILL,
//! a repeated `open` answers `opened` first (SG-RT-16), and
//! an `open` racing a DELETE never leaves a removed member registered.

use crate::helpers::*;
use futures_util::future::join_all;
use std::collections::{HashMap, HashSet};
use std::io::{BufRead, BufReader};
use std::process::{Child, Command, Stdio};
use std::time::{Duration, Instant};
use supergroup_protocol::client::{Realtime, Rest};
use supergroup_protocol::frames::{ClientFrame, Role, ServerFrame, Ui};
use supergroup_protocol::rest::{ConversationUpsert, Message, PageQuery};

/// Every message of `conv`, oldest first (pages through the whole history).
async fn full_history(rest: &Rest, conv: &str) -> Vec<Message> {
    let mut all = Vec::new();
    let mut after: Option<String> = None;
    // Bounded: 200 pages of 100.
    for _ in 0..200 {
        let q = PageQuery { limit: Some("100".into()), starting_after: after.clone() };
        let page = rest.messages(conv, &q).await.expect("history GET").data;
        let Some(last) = page.last() else { break };
        after = Some(last.id.clone());
        all.extend(page);
    }
    all.reverse();
    all
}

fn send_frame(reference: &str, conv: &str, text: &str) -> ClientFrame {
    ClientFrame::Send {
        reference: Some(reference.into()),
        conversation_id: conv.into(),
        text: text.into(),
        custom: None,
        idempotency_key: None,
    }
}

/// Reads frames until `n` replies (frames with a `ref`) arrived; returns them
/// in arrival order, and every `message` frame by conversation.
async fn read_replies(rt: &mut Realtime, n: usize) -> (Vec<ServerFrame>, HashMap<String, Vec<String>>) {
    let mut replies = Vec::new();
    let mut messages: HashMap<String, Vec<String>> = HashMap::new();
    let deadline = Instant::now() + WAIT * 4;
    while replies.len() < n {
        let left = deadline.saturating_duration_since(Instant::now());
        match rt.next_event(left).await.expect("a frame before the deadline") {
            supergroup_protocol::client::Event::Frame(ServerFrame::Message { message }) => {
                messages.entry(message.conversation_id.clone()).or_default().push(message.id)
            }
            supergroup_protocol::client::Event::Frame(f) if f.reference().is_some() => replies.push(f),
            supergroup_protocol::client::Event::Frame(_) => {}
            other => panic!("connection ended: {other:?}"),
        }
    }
    (replies, messages)
}

// Two worker threads, so senders, writer and receivers really run in parallel.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn concurrent_senders_in_several_conversations_see_every_conversation_in_commit_order() {
    const CONVS: [&str; 3] = ["a", "b", "c"];
    const PER_SENDER: usize = 15;
    let app = spawn_app().await;
    for conv in CONVS {
        app.conversation(conv, &["alice"]).await;
    }
    // A watcher with all three open, and two pipelining guest senders per conversation.
    let mut watcher = app.connect("watcher").await;
    for conv in CONVS {
        expect_opened(&watcher.open(conv, Ui::Chatbox, true, WAIT).await.unwrap(), Role::Guest);
    }
    let mut senders = Vec::new();
    for conv in CONVS {
        for i in 0..2 {
            let mut g = app.guest(&format!("{conv}-g{i}"), conv).await;
            senders.push(tokio::spawn(async move {
                for k in 0..PER_SENDER {
                    g.send(&send_frame(&format!("{k}"), conv, &format!("{conv}-g{i}-{k}"))).await.unwrap();
                }
                let (replies, _) = read_replies(&mut g, PER_SENDER).await;
                assert!(replies.iter().all(|r| matches!(r, ServerFrame::Ack { .. })), "{replies:?}");
            }));
        }
    }
    // REST posts into every conversation at the same time.
    let rest = app.rest.clone();
    let poster = tokio::spawn(async move {
        for k in 0..PER_SENDER {
            let posts = CONVS.map(|conv| {
                let rest = rest.clone();
                async move { rest.post_messages(conv, &[user_message("alice", &format!("rest-{k}"))]).await }
            });
            for r in join_all(posts).await {
                r.expect("REST post");
            }
        }
    });
    for s in senders {
        s.await.expect("sender");
    }
    poster.await.expect("poster");

    let per_conv = 3 * PER_SENDER;
    let mut seen: HashMap<String, Vec<String>> = HashMap::new();
    let deadline = Instant::now() + WAIT * 4;
    while seen.values().map(Vec::len).sum::<usize>() < per_conv * CONVS.len() {
        let m = tokio::time::timeout(deadline.saturating_duration_since(Instant::now()), next_message(&mut watcher))
            .await
            .expect("every message reaches the watcher");
        seen.entry(m.conversation_id).or_default().push(m.id);
    }
    for conv in CONVS {
        let stored: Vec<String> = full_history(&app.rest, conv).await.into_iter().map(|m| m.id).collect();
        assert_eq!(stored.len(), per_conv, "{conv}: everything acknowledged is stored");
        assert_eq!(seen[conv], stored, "{conv}: delivery order is commit order");
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn pipelined_sends_are_answered_in_the_order_of_their_frames_sg_rt_2() {
    const FRAMES: usize = 90;
    let app = spawn_app().await;
    app.conversation("c", &["alice"]).await;
    app.conversation("other", &["alice"]).await;
    let mut g = app.guest("g", "c").await;
    // Sends (acked after a commit) mixed with frames answered at once
    // (`closed`, a `not_open` error): all written before reading anything.
    for i in 0..FRAMES {
        let reference = format!("r{i}");
        let frame = match i % 3 {
            0 | 1 => send_frame(&reference, "c", &format!("m{i}")),
            _ if i % 2 == 0 => ClientFrame::Close { reference: Some(reference), conversation_id: "never-open".into() },
            _ => send_frame(&reference, "other", "not open here"),
        };
        g.send(&frame).await.unwrap();
    }
    let (replies, messages) = read_replies(&mut g, FRAMES).await;
    let refs: Vec<&str> = replies.iter().map(|r| r.reference().unwrap()).collect();
    let expected: Vec<String> = (0..FRAMES).map(|i| format!("r{i}")).collect();
    assert_eq!(refs, expected, "replies in frame order");
    for (i, reply) in replies.iter().enumerate() {
        match (i % 3, reply) {
            (0 | 1, ServerFrame::Ack { .. }) | (_, ServerFrame::Closed { .. }) => {}
            (2, ServerFrame::Error { code, .. }) => assert_eq!(code, "not_open"),
            other => panic!("frame {i}: unexpected {other:?}"),
        }
    }
    let acked: Vec<String> = replies
        .iter()
        .filter_map(|r| if let ServerFrame::Ack { message_id, .. } = r { Some(message_id.clone()) } else { None })
        .collect();
    let stored: Vec<String> = full_history(&app.rest, "c").await.into_iter().map(|m| m.id).collect();
    assert_eq!(acked, stored, "acks in frame order are the storage order");
    // The sender's own message frames arrive too, in storage order (SPEC lets
    // each come before or after its ack).
    let mut own = messages.get("c").cloned().unwrap_or_default();
    while own.len() < stored.len() {
        own.push(tokio::time::timeout(WAIT, next_message(&mut g)).await.expect("every own message arrives").id);
    }
    assert_eq!(own, stored);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_refused_request_inside_a_group_commit_fails_alone_and_stores_none_of_its_items() {
    const ROUNDS: usize = 8;
    let dir = tempfile::tempdir().expect("temp dir");
    let mut config = supergroup_server::Config::for_tests();
    // A file: every commit is a real fsync, so concurrent requests pile up into one group commit.
    config.db = dir.path().join("g.db").to_string_lossy().into_owned();
    let app = spawn_app_with(config).await;
    app.conversation("c", &["alice"]).await;
    let mut guests = Vec::new();
    for i in 0..4 {
        guests.push(app.guest(&format!("g{i}"), "c").await);
    }
    let mut good_ids = Vec::new();
    for round in 0..ROUNDS {
        // Valid batches, a batch whose second item has a sender who is no
        // participant (refused, all or nothing), a batch for a missing
        // conversation, and realtime sends: all at once.
        let post = |conv: &'static str, items: Vec<supergroup_protocol::rest::NewMessage>| {
            let rest = app.rest.clone();
            async move { rest.post_messages(conv, &items).await }
        };
        let good = (0..6).map(|k| post("c", vec![user_message("alice", &format!("ok-{round}-{k}"))]));
        let bad = post("c", vec![user_message("alice", &format!("bad-{round}-first")), user_message("mallory", "no")]);
        let missing = post("nowhere", vec![user_message("alice", "lost")]);
        let texts: Vec<String> = (0..guests.len()).map(|i| format!("rt-{round}-{i}")).collect();
        let mut realtime = Vec::new();
        for (g, text) in guests.iter_mut().zip(&texts) {
            realtime.push(g.send_message("c", text, None, WAIT));
        }
        let (good, bad, missing, realtime) = tokio::join!(join_all(good), bad, missing, join_all(realtime));
        for r in good {
            good_ids.push(r.expect("a valid batch is stored")[0].id.clone());
        }
        expect_api_error(bad, 400, "sender_not_participant");
        expect_api_error(missing, 404, "conversation_not_found");
        for r in realtime {
            match r.expect("a reply") {
                ServerFrame::Ack { message_id, .. } => good_ids.push(message_id),
                other => panic!("realtime send refused: {other:?}"),
            }
        }
    }
    let stored = full_history(&app.rest, "c").await;
    let texts: Vec<&str> = stored.iter().map(|m| m.text.as_str()).collect();
    assert!(!texts.iter().any(|t| t.starts_with("bad-")), "a refused batch stores none of its items: {texts:?}");
    let stored_ids: HashSet<&str> = stored.iter().map(|m| m.id.as_str()).collect();
    assert_eq!(stored.len(), good_ids.len());
    assert!(good_ids.iter().all(|id| stored_ids.contains(id.as_str())), "every acknowledged item is stored");
}

#[tokio::test]
async fn a_repeated_open_is_answered_opened_with_the_role_held_before_any_other_check_sg_rt_16() {
    let app = spawn_app().await;
    app.conversation("c", &["alice"]).await;
    let mut g = app.guest("g", "c").await;
    let mut alice = app.participant("alice", "c").await;
    // Guest access turned off: a new guest is refused, the repeated open is not.
    let off = ConversationUpsert { guest_access: Some(false), ..Default::default() };
    app.rest.put_conversation("c", &off).await.unwrap();
    let mut late = app.connect("late").await;
    expect_error(&late.open("c", Ui::Chatbox, true, WAIT).await.unwrap(), "guest_access_disabled");
    expect_opened(&g.open("c", Ui::Chatbox, true, WAIT).await.unwrap(), Role::Guest);
    // Flags that would refuse a first open (asGuest false, the inbox) do not refuse a repeated one.
    expect_opened(&g.open("c", Ui::Inbox, false, WAIT).await.unwrap(), Role::Guest);
    expect_opened(&alice.open("c", Ui::Inbox, true, WAIT).await.unwrap(), Role::Participant);
    // And it changed nothing: the guest still receives, and one close ends it.
    let id = app.post("c", "alice", "still here").await;
    assert_eq!(next_message(&mut g).await.id, id);
    g.close_conversation("c", WAIT).await.unwrap();
    app.post("c", "alice", "after close").await;
    barrier(&mut g).await;
    assert!(quiet_collect(&mut g, |f| matches!(f, ServerFrame::Message { .. })).await.is_empty());
}

/// Sends a barrier and returns every frame before its reply.
async fn frames_until_barrier(rt: &mut Realtime) -> Vec<ServerFrame> {
    let reference = rt.fresh_ref();
    let frame = ClientFrame::Close { reference: Some(reference.clone()), conversation_id: "barrier-never-open".into() };
    rt.send(&frame).await.unwrap();
    let mut before = Vec::new();
    loop {
        match rt.next_event(WAIT).await.expect("the barrier's reply") {
            supergroup_protocol::client::Event::Frame(f) if f.reference() == Some(reference.as_str()) => {
                return before;
            }
            supergroup_protocol::client::Event::Frame(f) => before.push(f),
            other => panic!("connection ended: {other:?}"),
        }
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn an_open_racing_a_participant_delete_never_leaves_the_removed_member_receiving() {
    const ROUNDS: usize = 40;
    let app = spawn_app().await;
    app.conversation("c", &["alice"]).await;
    let mut outcomes: HashMap<&str, usize> = HashMap::new();
    for round in 0..ROUNDS {
        app.add_participant("c", "bob", Default::default()).await;
        let mut bob = app.connect("bob").await;
        let open = ClientFrame::Open {
            reference: Some("o".into()),
            conversation_id: "c".into(),
            ui: Ui::Chatbox,
            as_guest: false,
        };
        // The open and the DELETE at the same time.
        let (reply, deleted) = tokio::join!(bob.request(&open, WAIT), app.rest.delete_participant("c", "bob"));
        deleted.expect("the DELETE succeeds");
        // After the DELETE returned, a new message must not reach bob.
        app.post("c", "alice", &format!("after delete {round}")).await;
        let frames = frames_until_barrier(&mut bob).await;
        let evicted = frames
            .iter()
            .any(|f| matches!(f, ServerFrame::Closed { reference: None, conversation_id } if conversation_id == "c"));
        let outcome = match reply.expect("a reply to open") {
            ServerFrame::Opened { .. } => {
                assert!(
                    evicted,
                    "round {round}: opened as participant, then removed: `closed` must follow: {frames:?}"
                );
                "opened then closed"
            }
            ServerFrame::Error { code, .. } => {
                assert_eq!(code, "not_a_participant", "round {round}");
                "not_a_participant"
            }
            other => panic!("round {round}: unexpected reply {other:?}"),
        };
        *outcomes.entry(outcome).or_default() += 1;
        assert!(
            !frames.iter().any(|f| matches!(f, ServerFrame::Message { .. })),
            "round {round}: a removed member received a message: {frames:?}"
        );
        bob.disconnect().await;
    }
    eprintln!("outcomes over {ROUNDS} rounds: {outcomes:?}");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn an_open_racing_a_conversation_delete_never_recreates_its_room() {
    const ROUNDS: usize = 40;
    let app = spawn_app().await;
    for round in 0..ROUNDS {
        app.conversation("c", &["alice"]).await;
        let mut g = app.connect("g").await;
        let open = ClientFrame::Open {
            reference: Some("o".into()),
            conversation_id: "c".into(),
            ui: Ui::Chatbox,
            as_guest: true,
        };
        let (reply, deleted) = tokio::join!(g.request(&open, WAIT), app.rest.delete_conversation("c"));
        deleted.expect("the DELETE succeeds");
        // The conversation is created again; a guest left over from before must not receive its messages.
        app.conversation("c", &["alice"]).await;
        app.post("c", "alice", &format!("new life {round}")).await;
        let frames = frames_until_barrier(&mut g).await;
        match reply.expect("a reply to open") {
            ServerFrame::Opened { .. } => assert!(
                frames.iter().any(|f| matches!(f, ServerFrame::Closed { reference: None, .. })),
                "round {round}: opened before the DELETE, so `closed` must follow: {frames:?}"
            ),
            other => expect_error(&other, "conversation_not_found"),
        }
        assert!(
            !frames.iter().any(|f| matches!(f, ServerFrame::Message { .. })),
            "round {round}: a guest of the deleted conversation received a message of the new one: {frames:?}"
        );
        g.disconnect().await;
        app.rest.delete_conversation("c").await.expect("cleanup");
    }
}

/// A server process on a database file, killed with SIGKILL by [`Server::kill`].
struct Server {
    child: Child,
    base: String,
}

impl Server {
    fn start(db: &std::path::Path) -> Server {
        let mut child = Command::new(env!("CARGO_BIN_EXE_supergroup-server"))
            .args(["--listen", "127.0.0.1:0", "--app", "demo:sk_demo", "--db"])
            .arg(db)
            .stdout(Stdio::piped())
            .stderr(Stdio::null())
            .spawn()
            .expect("the server binary starts");
        let mut stdout = BufReader::new(child.stdout.take().expect("piped stdout"));
        let mut line = String::new();
        stdout.read_line(&mut line).expect("the server prints where it listens");
        // Keep draining: a closed pipe would fail the server's next print.
        std::thread::spawn(move || std::io::copy(&mut stdout, &mut std::io::sink()));
        let base = line.trim().rsplit(' ').next().expect("an address").to_string();
        assert!(base.starts_with("http://127.0.0.1:"), "unexpected first line {line:?}");
        Server { child, base }
    }

    fn rest(&self) -> Rest {
        Rest::new(&self.base, APP, SECRET)
    }

    /// SIGKILL (`Child::kill` on Unix): no shutdown, no flush.
    fn kill(mut self) {
        self.child.kill().expect("SIGKILL");
        self.child.wait().expect("reaped");
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn every_acknowledged_message_and_membership_change_survives_sigkill_mid_stream() {
    const ROUNDS: usize = 3;
    let dir = tempfile::tempdir().expect("temp dir");
    let db = dir.path().join("kill.db");
    let mut acked: Vec<String> = Vec::new();
    // Acknowledged conversation PUTs (listing alice) and participant PUTs (bob).
    let mut acked_convs: Vec<String> = Vec::new();
    let mut acked_bobs: Vec<String> = Vec::new();
    for round in 0..ROUNDS {
        let server = Server::start(&db);
        let rest = server.rest();
        rest.put_conversation(
            "c",
            &ConversationUpsert { participants: Some(vec!["alice".into()]), ..Default::default() },
        )
        .await
        .expect("conversation");
        let url = rest.realtime_url(&rest.token(&format!("g{round}")));
        let stop = tokio_util::sync::CancellationToken::new();
        // Realtime: pipelined sends (many in flight), every ack recorded.
        let rt_task = {
            let stop = stop.clone();
            tokio::spawn(async move {
                let mut rt = Realtime::connect(&url).await.expect("connect");
                expect_opened(&rt.open("c", Ui::Chatbox, true, WAIT).await.unwrap(), Role::Guest);
                let mut ids = Vec::new();
                for k in 0..5000 {
                    if stop.is_cancelled() {
                        break;
                    }
                    for j in 0..8 {
                        if rt.send(&send_frame(&format!("{k}-{j}"), "c", "rt")).await.is_err() {
                            return ids;
                        }
                    }
                    for _ in 0..8 {
                        match rt.wait_for("an ack", WAIT, |f| f.reference().is_some()).await {
                            Ok(ServerFrame::Ack { message_id, .. }) => ids.push(message_id),
                            Ok(other) => panic!("unexpected reply {other:?}"),
                            Err(_) => return ids,
                        }
                    }
                }
                ids
            })
        };
        // REST: batches of three, posted one after the other from two clients.
        let mut rest_tasks = Vec::new();
        for client in 0..2 {
            let (rest, stop) = (server.rest(), stop.clone());
            rest_tasks.push(tokio::spawn(async move {
                let mut ids = Vec::new();
                for k in 0..5000 {
                    if stop.is_cancelled() {
                        break;
                    }
                    let batch: Vec<_> =
                        (0..3).map(|j| user_message("alice", &format!("rest-{client}-{k}-{j}"))).collect();
                    match rest.post_messages("c", &batch).await {
                        Ok(created) => ids.extend(created.into_iter().map(|c| c.id)),
                        Err(_) => break,
                    }
                }
                ids
            }));
        }
        // Membership changes, one after the other: a conversation listing
        // alice, then bob added to it (both group-commit writer jobs).
        let changes_task = {
            let (rest, stop) = (server.rest(), stop.clone());
            tokio::spawn(async move {
                let (mut convs, mut bobs) = (Vec::new(), Vec::new());
                for k in 0..5000 {
                    if stop.is_cancelled() {
                        break;
                    }
                    let conv = format!("p{round}-{k}");
                    let body = ConversationUpsert { participants: Some(vec!["alice".into()]), ..Default::default() };
                    if rest.put_conversation(&conv, &body).await.is_err() {
                        break;
                    }
                    convs.push(conv.clone());
                    if rest.put_participant(&conv, "bob", &Default::default()).await.is_err() {
                        break;
                    }
                    bobs.push(conv);
                }
                (convs, bobs)
            })
        };
        // Let the stream run, then kill the server in the middle of it.
        tokio::time::sleep(Duration::from_millis(400)).await;
        server.kill();
        stop.cancel();
        let before = acked.len();
        acked.extend(rt_task.await.expect("realtime task"));
        for t in rest_tasks {
            acked.extend(t.await.expect("rest task"));
        }
        let (convs, bobs) = changes_task.await.expect("changes task");
        assert!(!bobs.is_empty(), "round {round}: membership changes ran before the kill");
        acked_convs.extend(convs);
        acked_bobs.extend(bobs);
        assert!(
            acked.len() > before + 20,
            "round {round}: the stream ran before the kill ({} acks)",
            acked.len() - before
        );
    }
    let server = Server::start(&db);
    let stored: HashSet<String> = full_history(&server.rest(), "c").await.into_iter().map(|m| m.id).collect();
    let lost: Vec<&String> = acked.iter().filter(|id| !stored.contains(*id)).collect();
    assert!(lost.is_empty(), "{} of {} acknowledged messages lost after SIGKILL: {lost:?}", lost.len(), acked.len());
    let rest = server.rest();
    for conv in &acked_convs {
        let found = rest.get_conversation(conv).await.unwrap_or_else(|e| panic!("acknowledged {conv} lost: {e}"));
        assert!(found.participants.contains_key("alice"), "{conv}: acknowledged participant alice lost");
        if acked_bobs.contains(conv) {
            assert!(found.participants.contains_key("bob"), "{conv}: acknowledged participant PUT of bob lost");
        }
    }
    eprintln!("after SIGKILL: {} conversation PUTs and {} participant PUTs kept", acked_convs.len(), acked_bobs.len());
    server.kill();
}
