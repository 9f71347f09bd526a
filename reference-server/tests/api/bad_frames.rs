//! Bad input over realtime: each frame gets its documented error (or close
//! code), has no effect, and leaves the connection working (SG-RT-4..12,
//! SG-RT-22, SG-MSG-8, SG-ID-5). A second connection with the conversation
//! open proves nothing was broadcast: it must see the positive control's
//! message and nothing before it.

use crate::helpers::*;
use supergroup_protocol::client::Realtime;
use supergroup_protocol::frames::{ClientFrame, ServerFrame, Ui};

/// A conversation `c` with participant `alice` connected and a guest `watcher`.
async fn room() -> (TestApp, Realtime, Realtime) {
    let app = spawn_app().await;
    app.conversation("c", &["alice"]).await;
    let alice = app.participant("alice", "c").await;
    let watcher = app.guest("watcher", "c").await;
    (app, alice, watcher)
}

/// Sends `text` as one frame and returns the next frame (the error reply).
async fn send_raw(rt: &mut Realtime, text: &str) -> ServerFrame {
    rt.send_text(text.to_string()).await.expect("frame sent");
    rt.wait_for("a reply", WAIT, |f| matches!(f, ServerFrame::Error { .. } | ServerFrame::Ack { .. })).await.unwrap()
}

/// Sends a valid message from `alice` and checks that `watcher`'s next message
/// frame is exactly it (so the refused frames broadcast nothing), and that the
/// history holds only it.
async fn assert_only_control_stored(app: &TestApp, alice: &mut Realtime, watcher: &mut Realtime) {
    let ack = alice.send_message("c", "control", None, WAIT).await.unwrap();
    let ServerFrame::Ack { message_id, .. } = ack else { panic!("control send: {ack:?}") };
    assert_eq!(next_message(watcher).await.id, message_id, "the watcher saw a message before the control");
    let history = app.history("c").await;
    assert_eq!(history.iter().map(|m| m.id.as_str()).collect::<Vec<_>>(), [message_id.as_str()]);
}

fn error_code(frame: &ServerFrame) -> (&str, Option<&str>) {
    match frame {
        ServerFrame::Error { code, reference, .. } => (code.as_str(), reference.as_deref()),
        other => panic!("expected an error frame, got {other:?}"),
    }
}

#[tokio::test]
async fn malformed_json_wrong_shape_and_unknown_type_get_invalid_frame_sg_rt_6_7() {
    let (app, mut alice, mut watcher) = room().await;
    // Not JSON or not an object: no readable ref.
    for text in ["{", "not json", "[]", "42", r#""send""#] {
        assert_eq!(error_code(&send_raw(&mut alice, text).await), ("invalid_frame", None), "{text}");
    }
    // Readable ref: echoed (SG-RT-7), also for an unknown type.
    let cases = [
        r#"{"type":"shout","ref":"u1","conversationId":"c"}"#,
        r#"{"ref":"u2","conversationId":"c"}"#,
        r#"{"type":"send","ref":"u3","conversationId":"c"}"#,
        r#"{"type":"send","ref":"u4","conversationId":"c","text":5}"#,
        r#"{"type":"send","ref":"u5","conversationId":"c","text":"x","colour":"red"}"#,
        r#"{"type":"open","ref":"u6","conversationId":"c","ui":"fullscreen"}"#,
        r#"{"type":"open","ref":"u7","conversationId":"c","asGuest":"yes"}"#,
        r#"{"type":"typing","ref":"u8","conversationId":"c"}"#,
        r#"{"type":"send","ref":"u9","conversationId":"c","text":"x","idempotencyKey":""}"#,
    ];
    for (i, text) in cases.iter().enumerate() {
        let reference = format!("u{}", i + 1);
        assert_eq!(
            error_code(&send_raw(&mut alice, text).await),
            ("invalid_frame", Some(reference.as_str())),
            "{text}"
        );
    }
    // Unknown type without ref: no ref in the reply.
    let frame = send_raw(&mut alice, r#"{"type":"shout","conversationId":"c"}"#).await;
    assert_eq!(error_code(&frame), ("invalid_frame", None));
    // A bad ref (SG-RT-8): invalid_frame without ref.
    let long_ref = format!(r#"{{"type":"close","ref":"{}","conversationId":"c"}}"#, "r".repeat(256));
    for text in [r#"{"type":"close","ref":7,"conversationId":"c"}"#, long_ref.as_str()] {
        assert_eq!(error_code(&send_raw(&mut alice, text).await), ("invalid_frame", None), "{text}");
    }
    // SG-RT-11 and SG-RT-4: still working, and nothing was stored or broadcast.
    assert_only_control_stored(&app, &mut alice, &mut watcher).await;
}

#[tokio::test]
async fn binary_frame_gets_invalid_frame_and_connection_stays_open_sg_rt_5() {
    let (app, mut alice, mut watcher) = room().await;
    alice.send_binary(br#"{"type":"send","conversationId":"c","text":"bin"}"#.to_vec()).await.unwrap();
    let frame = alice.wait_for("error", WAIT, |f| matches!(f, ServerFrame::Error { .. })).await.unwrap();
    assert_eq!(error_code(&frame), ("invalid_frame", None));
    assert_only_control_stored(&app, &mut alice, &mut watcher).await;
}

/// A `send` frame padded with JSON whitespace to exactly `len` bytes.
fn padded_send(len: usize) -> String {
    let head = r#"{"type":"send","ref":"big","conversationId":"c","text":"padded""#;
    let frame = format!("{head}{}}}", " ".repeat(len - head.len() - 1));
    assert_eq!(frame.len(), len);
    frame
}

#[tokio::test]
async fn frame_of_exactly_65536_bytes_is_processed_sg_rt_12() {
    let (app, mut alice, mut watcher) = room().await;
    alice.send_text(padded_send(65_536)).await.unwrap();
    let ack = reply_to(&mut alice, "big").await;
    let ServerFrame::Ack { message_id, .. } = ack else { panic!("65,536-byte frame: {ack:?}") };
    assert_eq!(next_message(&mut watcher).await.id, message_id);
    assert_eq!(app.history("c").await[0].text, "padded");
}

#[tokio::test]
async fn frame_of_65537_bytes_closes_with_1009_and_stores_nothing_sg_rt_12() {
    let (app, mut alice, mut watcher) = room().await;
    alice.send_text(padded_send(65_537)).await.unwrap();
    let (code, _) = alice.wait_closed(WAIT).await.unwrap();
    assert_eq!(code, Some(1009));
    // The watcher stays connected; a message from another participant is the only one stored.
    app.add_participant("c", "bob", Default::default()).await;
    let mut bob = app.participant("bob", "c").await;
    let ack = bob.send_message("c", "control", None, WAIT).await.unwrap();
    let ServerFrame::Ack { message_id, .. } = ack else { panic!("{ack:?}") };
    assert_eq!(next_message(&mut watcher).await.id, message_id);
    assert_eq!(app.history("c").await.len(), 1);
}

#[tokio::test]
async fn realtime_text_over_20000_chars_is_message_too_long_and_20000_is_stored_sg_msg_8() {
    let (app, mut alice, mut watcher) = room().await;
    let reply = alice.send_message("c", &"é".repeat(20_001), None, WAIT).await.unwrap();
    expect_error(&reply, "message_too_long");
    assert!(app.history("c").await.is_empty());
    let exact = "é".repeat(20_000);
    let reply = alice.send_message("c", &exact, None, WAIT).await.unwrap();
    assert!(matches!(reply, ServerFrame::Ack { .. }), "20,000 characters: {reply:?}");
    let seen = next_message(&mut watcher).await;
    assert_eq!(seen.text, exact, "the first message the watcher sees is the 20,000-character one");
    assert_eq!(app.history("c").await.len(), 1);
}

#[tokio::test]
async fn invalid_conversation_id_in_frame_is_invalid_id_sg_rt_9() {
    let (app, mut alice, mut watcher) = room().await;
    let long = "c".repeat(256);
    for conv in [long.as_str(), "a/b", "ctl\u{1}x", ""] {
        let reply = alice.open(conv, Ui::Chatbox, true, WAIT).await.unwrap();
        expect_error(&reply, "invalid_id");
        let reply = alice.send_message(conv, "hi", None, WAIT).await.unwrap();
        expect_error(&reply, "invalid_id");
        let reference = alice.fresh_ref();
        let close = ClientFrame::Close { reference: Some(reference), conversation_id: conv.into() };
        expect_error(&alice.request(&close, WAIT).await.unwrap(), "invalid_id");
    }
    assert_only_control_stored(&app, &mut alice, &mut watcher).await;
}

#[tokio::test]
async fn realtime_invalid_custom_is_invalid_custom_and_stores_nothing_sg_id_5() {
    let (app, mut alice, mut watcher) = room().await;
    let customs = [
        (0..51).map(|i| (format!("k{i}"), "v".to_string())).collect(),
        [(String::new(), "v".to_string())].into_iter().collect(),
        [("k".repeat(256), "v".to_string())].into_iter().collect(),
        [("k".to_string(), "v".repeat(4097))].into_iter().collect(),
    ];
    for custom in customs {
        let reference = alice.fresh_ref();
        let frame = ClientFrame::Send {
            reference: Some(reference),
            conversation_id: "c".into(),
            text: "hi".into(),
            custom: Some(custom),
            idempotency_key: None,
        };
        expect_error(&alice.request(&frame, WAIT).await.unwrap(), "invalid_custom");
    }
    assert_only_control_stored(&app, &mut alice, &mut watcher).await;
}

#[tokio::test]
async fn send_errors_not_open_read_only_and_unknown_conversation_store_nothing_sg_rt_10_19_20() {
    let (app, mut alice, mut watcher) = room().await;
    app.add_participant(
        "c",
        "reader",
        supergroup_protocol::rest::ParticipantUpsert {
            access: Some(supergroup_protocol::rest::Access::Read),
            notify: None,
        },
    )
    .await;
    let mut reader = app.participant("reader", "c").await;
    expect_error(&reader.send_message("c", "no", None, WAIT).await.unwrap(), "read_only");
    // SG-RT-22: read_only comes before message_too_long.
    expect_error(&reader.send_message("c", &"x".repeat(20_001), None, WAIT).await.unwrap(), "read_only");
    let mut stranger = app.connect("stranger").await;
    expect_error(&stranger.send_message("c", "no", None, WAIT).await.unwrap(), "not_open");
    // SG-RT-22: not_open comes before message_too_long.
    expect_error(&stranger.send_message("c", &"x".repeat(20_001), None, WAIT).await.unwrap(), "not_open");
    expect_error(&stranger.send_message("ghost", "no", None, WAIT).await.unwrap(), "conversation_not_found");
    expect_error(&stranger.open("ghost", Ui::Chatbox, true, WAIT).await.unwrap(), "conversation_not_found");
    assert_only_control_stored(&app, &mut alice, &mut watcher).await;
}
