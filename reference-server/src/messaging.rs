//! Storing a message, the one path shared by REST batches and realtime
//! `send`: check the input, store the batch (all or nothing) inside the
//! group-commit writer's transaction ([`crate::writer`]), and after the
//! commit broadcast every new message of the group commit in one hub pass
//! (each serialized once), emit `message.sent`, and open notification
//! windows. The broadcast runs on a runtime thread, not on the database's
//! blocking thread: waking 10,000 connection tasks from outside the runtime
//! made send-to-ack p50 58 ms at 10,000 guests x 5 msg/s; from inside it,
//! 10 ms. An idempotency-key replay returns the original message and does
//! none of that again.

use crate::error::ApiError;
use crate::extract::check_id;
use crate::hub::{RoomBatch, RoomKey};
use crate::state::{App, AppState};
use crate::store;
use crate::violation::Violation;
use axum::extract::ws::Utf8Bytes;
use rusqlite::Connection;
use std::collections::{BTreeMap, HashMap};
use std::sync::Arc;
use supergroup_protocol::ErrorCode;
use supergroup_protocol::frames::{Role, ServerFrame};
use supergroup_protocol::limits::{MAX_IDEMPOTENCY_KEY_BYTES, MAX_TEXT_CHARS};
use supergroup_protocol::rest::{
    Access, Custom, Message, MessageType, NewMessage, Notify, Origin, ParticipantSettings,
};
use supergroup_protocol::webhook::{IdRef, MESSAGE_SENT, MessageSent, Sender};

/// One message to store.
pub struct Draft {
    pub sender: Option<String>,
    pub kind: MessageType,
    pub text: String,
    pub custom: Custom,
    pub idempotency_key: Option<String>,
}

/// Who is sending, which decides the sender check.
#[derive(Clone, Copy)]
pub enum Via {
    /// REST: a UserMessage sender must be a ReadWrite participant.
    Rest,
    /// Realtime, with the role the connection holds in the conversation.
    Realtime(Role),
}

impl Draft {
    /// A REST batch item.
    pub fn from_rest(m: NewMessage) -> Draft {
        match m {
            NewMessage::UserMessage { sender, text, custom, idempotency_key } => Draft {
                sender: Some(sender),
                kind: MessageType::UserMessage,
                text,
                custom: custom.unwrap_or_default(),
                idempotency_key,
            },
            NewMessage::SystemMessage { text, custom } => Draft {
                sender: None,
                kind: MessageType::SystemMessage,
                text,
                custom: custom.unwrap_or_default(),
                idempotency_key: None,
            },
        }
    }

    /// The field rules, in the order SPEC.md gives them: idempotency key,
    /// sender id, text length, custom limits.
    pub fn check(&self) -> Result<(), ApiError> {
        self.check_idempotency_key()?;
        if let Some(s) = &self.sender {
            check_id("sender", s)?;
        }
        self.check_content()
    }

    /// 400 `invalid_request` for an idempotency key out of 1..=255 bytes.
    pub fn check_idempotency_key(&self) -> Result<(), ApiError> {
        match &self.idempotency_key {
            Some(k) if k.is_empty() || k.len() > MAX_IDEMPOTENCY_KEY_BYTES => Err(ApiError::new(
                ErrorCode::InvalidRequest,
                format!("idempotencyKey must be 1 to {MAX_IDEMPOTENCY_KEY_BYTES} bytes"),
            )),
            _ => Ok(()),
        }
    }

    /// `message_too_long`, then `invalid_custom`.
    pub fn check_content(&self) -> Result<(), ApiError> {
        let chars = self.text.chars().count();
        if chars > MAX_TEXT_CHARS {
            return Err(ApiError::new(
                ErrorCode::MessageTooLong,
                format!("text has {chars} characters; at most {MAX_TEXT_CHARS} are allowed"),
            ));
        }
        crate::validate::custom(&self.custom)
    }
}

/// Stores `drafts` in `conv`, all or nothing; returns each stored (or
/// replayed) message. Items are checked in order, each fully (field rules,
/// then sender), so the error is that of the first invalid item.
///
/// The work is done by the group-commit writer ([`crate::writer`]): once
/// queued, a caller that goes away (a REST client that disconnects drops its
/// handler) cannot cancel it between the commit and the broadcast, so a
/// stored message is always delivered.
pub async fn store(
    state: &AppState,
    app: &Arc<App>,
    conv: &str,
    drafts: Vec<Draft>,
    via: Via,
) -> Result<Vec<Message>, ApiError> {
    crate::writer::wait(state.writer.send(app, conv, drafts, via).await?).await
}

/// Participants per conversation, read once per group commit: only the
/// writer changes them, and it forgets a conversation's entry after a change
/// that may alter its membership ([`crate::changes::Change::membership_of`]),
/// so a send reads the membership its savepoint sees.
#[derive(Default)]
pub struct MemberCache(HashMap<RoomKey, Option<Arc<Participants>>>);

type Participants = BTreeMap<String, ParticipantSettings>;

impl MemberCache {
    /// Drops what is known of `key`; the next send there reads it again.
    pub fn forget(&mut self, key: &RoomKey) {
        self.0.remove(key);
    }

    /// The participants of `conv`, or `None` if it does not exist.
    fn get(&mut self, c: &Connection, app: &str, conv: &str) -> rusqlite::Result<Option<Arc<Participants>>> {
        let key = (app.to_string(), conv.to_string());
        if let Some(found) = self.0.get(&key) {
            return Ok(found.clone());
        }
        let found = match store::get_conv(c, app, conv)? {
            None => None,
            Some(_) => Some(Arc::new(store::participants(c, app, conv)?)),
        };
        self.0.insert(key, found.clone());
        Ok(found)
    }
}

/// One job's stored messages, for delivery after the commit.
pub struct Stored {
    pub app: Arc<App>,
    /// Every item's message, replays included: the answer.
    pub out: Vec<Message>,
    /// The messages stored now (not replays): what is delivered.
    pub fresh: Vec<Message>,
    pub participants: Arc<Participants>,
}

/// Stores one job's drafts inside the writer's transaction (in a savepoint
/// the writer rolls back on error).
pub fn store_in(
    c: &Connection,
    state: &AppState,
    members: &mut MemberCache,
    app: Arc<App>,
    conv: String,
    drafts: Vec<Draft>,
    via: Via,
) -> Result<Stored, ApiError> {
    let app_id = app.config.id.as_str();
    let Some(participants) = members.get(c, app_id, &conv)? else {
        return Err(ApiError::conversation_not_found(&conv));
    };
    let mut out = Vec::with_capacity(drafts.len());
    let mut fresh = Vec::new();
    let now = crate::now_ms();
    for d in drafts {
        d.check()?;
        let sender_setting = d.sender.as_ref().and_then(|s| participants.get(s));
        if let Some(sender) = &d.sender {
            sender_may_send(state, via, sender, sender_setting.map(|p| p.access))?;
            store::ensure_user(c, app_id, sender, None, now)?;
        }
        if let Some(key) = &d.idempotency_key
            && let Some(original) = store::find_idempotent(c, app_id, &conv, key)?
        {
            out.push(original);
            continue;
        }
        let msg = Message {
            id: new_message_id(),
            conversation_id: conv.clone(),
            sender_id: d.sender.clone(),
            kind: d.kind,
            text: d.text,
            custom: d.custom,
            created_at: now,
            origin: if matches!(via, Via::Rest) { Origin::Rest } else { Origin::Realtime },
        };
        let msg = store::insert_message(c, app_id, msg, d.idempotency_key.as_deref(), now)?;
        out.push(msg.clone());
        fresh.push(msg);
    }
    Ok(Stored { app, out, fresh, participants })
}

/// The sender rule for the path the message came in by.
fn sender_may_send(state: &AppState, via: Via, sender: &str, access: Option<Access>) -> Result<(), ApiError> {
    match (via, access) {
        (_, Some(Access::ReadWrite)) => Ok(()),
        (Via::Realtime(Role::Guest), _) => Ok(()),
        (Via::Realtime(Role::Participant), _) => {
            Err(ApiError::new(ErrorCode::ReadOnly, "you have Read access to this conversation"))
        }
        (Via::Rest, None) if state.violates(Violation::GuestRestSender) => Ok(()),
        (Via::Rest, _) => Err(ApiError::new(
            ErrorCode::SenderNotParticipant,
            format!("sender `{sender}` is not a ReadWrite participant of this conversation"),
        )),
    }
}

/// After a group commit: broadcast everything in one hub pass (which also
/// says who of the notification candidates does not have the room open, under
/// the same lock), then `message.sent` and notification windows, per
/// conversation in commit order.
pub fn deliver(state: &AppState, stored: &[&Stored]) {
    // Rooms in order of first appearance; each room's messages in commit order.
    let mut index: HashMap<RoomKey, usize> = HashMap::new();
    let mut rooms: Vec<RoomMessages<'_>> = Vec::new();
    for s in stored {
        for msg in &s.fresh {
            let key = s.app.room(&msg.conversation_id);
            let i = *index.entry(key.clone()).or_insert_with(|| {
                rooms.push(RoomMessages { key, frames: Vec::new(), messages: Vec::new(), notify: Vec::new() });
                rooms.len() - 1
            });
            let frame = ServerFrame::Message { message: msg.clone() };
            rooms[i].frames.push(serde_json::to_string(&frame).expect("frames serialize").into());
            rooms[i].messages.push((msg, s));
            let faulty = crate::violation::faults::notification_candidates(state, msg, &s.participants);
            rooms[i].notify.push(faulty.unwrap_or_else(|| notification_candidates(msg, &s.participants)));
        }
    }
    let mut batch: Vec<RoomBatch> = rooms
        .iter_mut()
        .map(|r| RoomBatch {
            key: r.key.clone(),
            frames: std::mem::take(&mut r.frames).into(),
            notify: std::mem::take(&mut r.notify),
        })
        .collect();
    let (started, messages) = (std::time::Instant::now(), batch.iter().map(|b| b.frames.len()).sum());
    state.hub.publish(&mut batch);
    state.metrics.fanout(messages, started.elapsed());

    let mut last_job: Option<*const Stored> = None;
    for (rb, room) in batch.into_iter().zip(rooms) {
        for ((msg, s), recipients) in room.messages.into_iter().zip(rb.notify) {
            let app = &s.app;
            if last_job.is_some_and(|j| !std::ptr::eq(j, s)) {
                crate::violation::faults::request_done(state);
            }
            last_job = Some(s as *const Stored);
            let sender = msg.sender_id.as_ref().map(|id| Sender {
                id: id.clone(),
                role: if s.participants.contains_key(id) { Role::Participant } else { Role::Guest },
            });
            let data =
                MessageSent { message: msg.clone(), conversation: IdRef { id: msg.conversation_id.clone() }, sender };
            state.webhooks.emit(app, MESSAGE_SENT, &data);
            crate::violation::faults::retry_unregistered(state, app, MESSAGE_SENT, data);
            if msg.kind != MessageType::UserMessage && !state.violates(Violation::SystemMessageNotifies) {
                continue;
            }
            let recipients = if state.violates(Violation::NotifyPresenceCheckedLate) {
                notification_candidates(msg, &s.participants)
            } else {
                recipients
            };
            if state.violates(Violation::NotifyGroupedPerRequest) {
                crate::violation::faults::notify_per_request(state, app, msg, recipients);
                continue;
            }
            crate::notifier::add(state, app, msg, recipients, state.violates(Violation::NotifyOpenNotRechecked));
            let members: Vec<&String> = s.participants.keys().collect();
            let departed = crate::violation::faults::departed_guests(state, app, &msg.conversation_id, &members);
            let sender = msg.sender_id.as_deref();
            crate::notifier::add(
                state,
                app,
                msg,
                departed.into_iter().filter(|g| Some(g.as_str()) != sender).collect(),
                false,
            );
        }
    }
    crate::violation::faults::request_done(state);
}

/// One room's share of a group commit while [`deliver`] builds it.
struct RoomMessages<'a> {
    key: RoomKey,
    frames: Vec<Utf8Bytes>,
    /// Each message with the job that stored it, in commit order.
    messages: Vec<(&'a Message, &'a Stored)>,
    notify: Vec<Vec<String>>,
}

/// Participants a UserMessage may notify, by their settings (the "has it
/// open" filter is applied by the hub); none for a SystemMessage.
fn notification_candidates(msg: &Message, participants: &Participants) -> Vec<String> {
    if msg.kind != MessageType::UserMessage {
        return Vec::new();
    }
    let sender = msg.sender_id.as_deref();
    participants
        .iter()
        .filter(|(user, _)| Some(user.as_str()) != sender)
        .filter(|(user, p)| match p.notify {
            Notify::On => true,
            Notify::Off => false,
            Notify::MentionsOnly => msg.text.contains(&format!("@{user}")),
        })
        .map(|(user, _)| user.clone())
        .collect()
}

/// `msg_` and 20 random alphanumerics.
fn new_message_id() -> String {
    use rand::Rng;
    use rand::distr::Alphanumeric;
    let tail: String = rand::rng().sample_iter(&Alphanumeric).take(20).map(char::from).collect();
    format!("msg_{tail}")
}
