//! What each client frame does. Frames of one connection are handled in
//! order; every reply and error goes through the connection's own outbox, so
//! it is ordered with the broadcasts the connection receives.
//!
//! Parsing: text that is not JSON, an unknown `type`, a wrong shape or a
//! binary frame get an `invalid_frame` error frame (with the `ref`, when the
//! frame had a readable one) and the connection stays open.

use crate::error::ApiError;
use crate::extract::check_id;
use crate::hub::{Opened, Outbox, RoomKey};
use crate::membership::encode;
use crate::messaging::{self, Draft, Via};
use crate::state::{App, AppState};
use crate::store;
use crate::transport::Bucket;
use crate::violation::{Violation, faults};
use std::collections::HashMap;
use std::sync::Arc;
use supergroup_protocol::ErrorCode;
use supergroup_protocol::frames::{ClientFrame, Role, ServerFrame, Ui};
use supergroup_protocol::limits::MAX_REF_BYTES;
use supergroup_protocol::rest::{Access, Custom, MessageType};

/// What `open` needs to know of a conversation.
struct Facts {
    guest_access: bool,
    participants: Vec<String>,
    /// Participants with `Read` access.
    read_only: Vec<String>,
}

/// The per-connection frame handler.
pub struct Handler {
    state: AppState,
    app: Arc<App>,
    out: Outbox,
    /// Conversations this connection opened, so it can leave them on the way out
    /// (at most `--max-open-per-connection`).
    opened: Vec<RoomKey>,
    /// `send` frames this connection may still make (`--send-rate`, `--send-burst`).
    send_bucket: Bucket,
    /// Typing fan-outs per open conversation (`--typing-rate`); an entry
    /// leaves with its conversation, so this holds at most one per open one.
    typing: HashMap<String, Bucket>,
}

impl Handler {
    pub fn new(state: AppState, app: Arc<App>, out: Outbox) -> Handler {
        let send_bucket = Bucket::full(state.config.transport.send_burst);
        Handler { state, app, out, opened: Vec::new(), send_bucket, typing: HashMap::new() }
    }

    fn reply(&self, frame: &ServerFrame) {
        self.out.push(encode(frame));
    }

    fn error(&self, reference: Option<String>, e: ApiError) {
        self.reply(&ServerFrame::Error { reference, code: e.code.as_str().into(), message: e.message });
    }

    pub fn on_binary(&self) {
        self.error(None, ApiError::new(ErrorCode::InvalidFrame, "binary frames are not part of the protocol"));
    }

    pub async fn on_text(&mut self, text: &str) {
        let value: serde_json::Value = match serde_json::from_str(text) {
            Ok(v) => v,
            Err(e) => return self.error(None, ApiError::new(ErrorCode::InvalidFrame, format!("not JSON: {e}"))),
        };
        if !value.is_object() {
            return self.error(None, ApiError::new(ErrorCode::InvalidFrame, "a frame is a JSON object"));
        }
        let reference = match value.get("ref") {
            None | Some(serde_json::Value::Null) => None,
            Some(serde_json::Value::String(r)) if r.len() <= MAX_REF_BYTES => Some(r.clone()),
            Some(_) => {
                let msg = format!("ref must be a string of at most {MAX_REF_BYTES} bytes");
                return self.error(None, ApiError::new(ErrorCode::InvalidFrame, msg));
            }
        };
        let frame: ClientFrame = match serde_json::from_value(value) {
            Ok(f) => f,
            Err(e) => return self.error(reference, ApiError::new(ErrorCode::InvalidFrame, e.to_string())),
        };
        let result = match frame {
            ClientFrame::Open { conversation_id, ui, as_guest, .. } => {
                self.open(reference.clone(), &conversation_id, ui, as_guest).await
            }
            ClientFrame::Close { conversation_id, .. } => self.close(reference.clone(), &conversation_id),
            ClientFrame::Send { conversation_id, text, custom, idempotency_key, .. } => {
                self.send(reference.clone(), &conversation_id, text, custom, idempotency_key).await
            }
            ClientFrame::Typing { conversation_id, is_typing, .. } => self.typing(&conversation_id, is_typing).await,
            ClientFrame::Read { conversation_id, .. } => self.read(&conversation_id).await,
        };
        if let Err(e) = result {
            self.error(reference, e);
        }
    }

    /// What `open` needs to know of a conversation, or `conversation_not_found`.
    async fn facts(&self, conv: &str) -> Result<Facts, ApiError> {
        check_id("conversationId", conv)?;
        let (app_id, c, default_access) = (self.app.config.id.clone(), conv.to_string(), self.app.config.guest_access);
        let found = self
            .state
            .db
            .call(move |db| -> rusqlite::Result<Option<Facts>> {
                let Some(row) = store::get_conv(db, &app_id, &c)? else { return Ok(None) };
                let all = store::participants(db, &app_id, &c)?;
                let read_only = all.iter().filter(|(_, p)| p.access == Access::Read).map(|(u, _)| u.clone()).collect();
                let participants = all.into_keys().collect();
                Ok(Some(Facts { guest_access: row.guest_access.unwrap_or(default_access), participants, read_only }))
            })
            .await?;
        found.ok_or_else(|| ApiError::conversation_not_found(conv))
    }

    async fn open(&mut self, reference: Option<String>, conv: &str, ui: Ui, as_guest: bool) -> Result<(), ApiError> {
        let facts = self.facts(conv).await?;
        let v = &self.state.config.violations;
        let is_participant = facts.participants.iter().any(|u| **u == *self.out.user)
            || (v.has(Violation::GuestLeavesTrace) && v.remembers("guest", &self.app.config.id, conv, &self.out.user));
        let as_participant = is_participant && !(as_guest && v.has(Violation::ParticipantOpenedAsGuest));
        let role = if as_participant { Role::Participant } else { Role::Guest };
        if role == Role::Guest && !is_participant {
            if v.has(Violation::RemovedParticipantRefusedAsGuest)
                && v.remembers("removed", &self.app.config.id, conv, &self.out.user)
            {
                return Err(ApiError::new(ErrorCode::NotAParticipant, "you were removed from this conversation"));
            }
            if !as_guest && !v.has(Violation::GuestOpenWithoutAsGuest) {
                return Err(ApiError::new(
                    ErrorCode::NotAParticipant,
                    "you are not a participant; open with asGuest true to join as a guest",
                ));
            }
            if ui == Ui::Inbox && !self.state.violates(Violation::GuestInboxAllowed) {
                return Err(ApiError::new(
                    ErrorCode::GuestInboxNotAllowed,
                    "guests open conversations in a chatbox or popup, not the inbox",
                ));
            }
            if !facts.guest_access {
                return Err(ApiError::new(ErrorCode::GuestAccessDisabled, "this conversation does not admit guests"));
            }
        }
        let room = self.app.room(conv);
        let max_open = self.state.config.transport.max_open_per_connection;
        if self.opened.len() >= max_open && !self.opened.contains(&room) {
            let why = format!("this connection already has {max_open} conversations open; close one first");
            return Err(ApiError::new(ErrorCode::TooManyOpen, why));
        }
        let limit = (!self.state.violates(Violation::GuestLimitOff))
            .then(|| self.app.config.guest_limit() + u32::from(self.state.violates(Violation::GuestLimitOffByOne)));
        if role == Role::Guest
            && self.state.violates(Violation::GuestSlotPerConnection)
            && limit.is_some_and(|l| self.state.hub.guest_connections(&room) >= u64::from(l))
        {
            return Err(ApiError::new(ErrorCode::GuestLimitReached, "every guest connection slot is taken"));
        }
        let role = match self.state.hub.open(&room, &self.out, role, limit) {
            Opened::New(role) => {
                self.opened.push(room.clone());
                if role == Role::Guest {
                    faults::guest_opened(&self.state, &self.app, conv, &self.out.user);
                }
                role
            }
            Opened::Already(_) if self.state.violates(Violation::PromotedGuestRoleSwitched) => role,
            Opened::Already(role) => role,
            Opened::GuestLimitReached => {
                return Err(ApiError::new(
                    ErrorCode::GuestLimitReached,
                    format!("{} guests already have this conversation open", self.app.config.guest_limit()),
                ));
            }
        };
        let mut members = facts.participants;
        if self.state.violates(Violation::GuestInMemberList) {
            let guests: Vec<String> =
                self.state.hub.guests(&room).into_iter().filter(|g| !members.contains(g)).collect();
            members.extend(guests);
        }
        self.reply(&ServerFrame::Opened { reference, conversation_id: conv.into(), role, participants: members });
        Ok(())
    }

    fn close(&mut self, reference: Option<String>, conv: &str) -> Result<(), ApiError> {
        check_id("conversationId", conv)?;
        let room = self.app.room(conv);
        let role = self.state.hub.role_of(&room, self.out.id);
        self.state.hub.close(&room, self.out.id);
        if role == Some(Role::Guest) {
            faults::guest_closed(&self.state, &self.app, conv, &self.out.user);
        }
        self.opened.retain(|k| k != &room);
        self.typing.remove(conv);
        self.reply(&ServerFrame::Closed { reference, conversation_id: conv.into() });
        Ok(())
    }

    /// The role this connection holds in `conv`, or the reason it may not act there.
    async fn role_in(&self, conv: &str) -> Result<Role, ApiError> {
        if let Some(role) = self.state.hub.role_of(&self.app.room(conv), self.out.id) {
            return Ok(role);
        }
        self.facts(conv).await?;
        Err(ApiError::new(ErrorCode::NotOpen, "open the conversation on this connection first"))
    }

    async fn send(
        &mut self,
        reference: Option<String>,
        conv: &str,
        text: String,
        custom: Option<Custom>,
        idempotency_key: Option<String>,
    ) -> Result<(), ApiError> {
        let draft = Draft {
            sender: Some(self.out.user.to_string()),
            kind: MessageType::UserMessage,
            text,
            custom: custom.unwrap_or_default(),
            idempotency_key,
        };
        // SPEC.md's order: invalid_frame, invalid_id, conversation_not_found,
        // not_open, read_only, message_too_long, invalid_custom.
        draft.check_idempotency_key().map_err(|e| ApiError::new(ErrorCode::InvalidFrame, e.message))?;
        let t = &self.state.config.transport;
        if !self.send_bucket.take(t.send_rate, t.send_burst) {
            let why = format!("more than {} send frames a second (burst {}); slow down", t.send_rate, t.send_burst);
            return Err(ApiError::new(ErrorCode::RateLimited, why));
        }
        let role = self.role_in(conv).await?;
        if role == Role::Participant && self.facts(conv).await?.read_only.iter().any(|u| **u == *self.out.user) {
            return Err(ApiError::new(ErrorCode::ReadOnly, "you have Read access to this conversation"));
        }
        draft.check_content()?;
        let stored = messaging::store(&self.state, &self.app, conv, vec![draft], Via::Realtime(role)).await?;
        let msg = stored.into_iter().next().expect("one draft, one message");
        self.reply(&ServerFrame::Ack { reference, message_id: msg.id, created_at: msg.created_at });
        Ok(())
    }

    async fn typing(&mut self, conv: &str, is_typing: bool) -> Result<(), ApiError> {
        let mut role = self.role_in(conv).await?;
        if self.state.violates(Violation::PromotedGuestTypingHidden)
            && self.state.hub.guests(&self.app.room(conv)).iter().any(|g| **g == *self.out.user)
        {
            role = Role::Guest;
        }
        if role == Role::Guest && !self.state.violates(Violation::GuestTypingShown) {
            return Ok(());
        }
        // Throttle: past the rate the frame is dropped silently (SPEC section 12).
        let rate = self.state.config.transport.typing_rate;
        if !self.typing.entry(conv.to_string()).or_insert_with(|| Bucket::full(rate)).take(rate, rate) {
            return Ok(());
        }
        let user = self.out.user.to_string();
        let frame = ServerFrame::Typing { conversation_id: conv.into(), user_id: user.clone(), is_typing };
        if self.state.violates(Violation::GuestSeesNoTyping) {
            self.state.hub.broadcast_participants(&self.app.room(conv), &encode(&frame), Some(&user));
            return Ok(());
        }
        self.state.hub.broadcast(&self.app.room(conv), &encode(&frame), Some(&user));
        Ok(())
    }

    async fn read(&self, conv: &str) -> Result<(), ApiError> {
        let facts = self.facts(conv).await?;
        if self.state.violates(Violation::GuestReadAnswered)
            && !facts.participants.iter().any(|u| **u == *self.out.user)
        {
            return Err(ApiError::new(ErrorCode::NotAParticipant, "guests keep no read state"));
        }
        let (app_id, c, u) = (self.app.config.id.clone(), conv.to_string(), self.out.user.to_string());
        // For a guest (not a participant) this updates nothing: a silent no-op.
        self.state.db.call(move |db| store::mark_read(db, &app_id, &c, &u)).await?;
        Ok(())
    }

    /// Leaves every conversation this connection had open.
    pub fn leave_all(&mut self) {
        for room in self.opened.drain(..) {
            let role = self.state.hub.role_of(&room, self.out.id);
            self.state.hub.close(&room, self.out.id);
            if role == Some(Role::Guest) && self.state.violates(Violation::GuestSlotKeptOnDisconnect) {
                self.state.hub.leak_guest_slot(&room, &self.out.user);
            }
            if role == Some(Role::Guest) {
                faults::guest_closed(&self.state, &self.app, &room.1, &self.out.user);
            }
        }
        self.typing.clear();
    }
}
