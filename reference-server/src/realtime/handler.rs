//! What each client frame does. Frames of one connection are handled in
//! order, and each yields its [`Answer`]: nothing, a reply ready now, or (for
//! `send`) a reply that comes once the group-commit writer has stored the
//! message. The connection keeps reading while sends are committed and puts
//! the answers out in frame order (SG-RT-2), through its own outbox, so they
//! are ordered with the broadcasts the connection receives.
//!
//! `open` checks, in order: the id, then whether this connection already has
//! the conversation open (answered `opened` with the role it holds, before
//! any other check: SG-RT-16), then SPEC.md's decision list. Membership is
//! read (from the kept roster, [`crate::roster`]) and then registered in the hub under a membership epoch, so a
//! participant or conversation DELETE landing in between makes the
//! registration stale and the decision is taken again (see [`crate::hub`]).
//!
//! Parsing: text that is not JSON, an unknown `type`, a wrong shape or a
//! binary frame get an `invalid_frame` error frame (with the `ref`, when the
//! frame had a readable one) and the connection stays open.

use super::user_cap::UserSlot;
use crate::changes::Change;
use crate::error::ApiError;
use crate::extract::check_id;
use crate::hub::{Opened, Outbox, Presence, RoomKey};
use crate::membership::encode;
use crate::messaging::{Draft, Via};
use crate::roster::Roster;
use crate::state::{App, AppState};
use crate::store;
use crate::transport::Bucket;
use crate::violation::{Violation, faults};
use axum::extract::ws::Utf8Bytes;
use std::future::Future;
use std::pin::Pin;
use std::sync::Arc;
use supergroup_protocol::ErrorCode;
use supergroup_protocol::frames::{ClientFrame, Role, ServerFrame, Ui};
use supergroup_protocol::rest::{Access, Custom, MessageType};

/// How many times `open` reads membership again when an eviction made its
/// registration stale, before answering `internal`.
const OPEN_ATTEMPTS: usize = 8;

/// A reply that is not ready yet: the ack (or error) of a `send` being committed.
pub type Pending = Pin<Box<dyn Future<Output = Utf8Bytes> + Send>>;

/// What one client frame is answered with.
pub enum Answer {
    /// No reply (`typing`, `read`).
    Nothing,
    /// A reply ready now.
    Now(Utf8Bytes),
    /// A reply ready once the writer has answered.
    Later(Pending),
}

fn error_frame(reference: Option<String>, e: ApiError) -> Utf8Bytes {
    encode(&ServerFrame::Error { reference, code: e.code.as_str().into(), message: e.message })
}

/// The per-connection frame handler.
pub struct Handler {
    state: AppState,
    app: Arc<App>,
    out: Outbox,
    /// What this connection has open (at most `--max-open-per-connection`);
    /// dropping the handler (however the connection task ends, a panic
    /// included) leaves all of it.
    presence: Presence,
    /// `send` frames this connection may still make (`--send-rate`, `--send-burst`).
    send_bucket: Bucket,
    /// The user's connection slot, which also holds the user's typing
    /// throttle (`--typing-rate`, per user and conversation).
    user: UserSlot,
    /// The role of the first of the conversations this connection has open
    /// (role-of-first-open only; forgotten when it has none open).
    first_role: Option<Role>,
}

impl Handler {
    pub fn new(state: AppState, app: Arc<App>, out: Outbox, user: UserSlot) -> Handler {
        let presence = Presence::new(state.hub.clone(), out.id);
        let send_bucket = Bucket::full(state.config.transport.send_burst);
        Handler { state, app, out, presence, send_bucket, user, first_role: None }
    }

    pub fn on_binary(&self) -> Answer {
        let e = ApiError::new(ErrorCode::InvalidFrame, "binary frames are not part of the protocol");
        Answer::Now(error_frame(None, e))
    }

    pub async fn on_text(&mut self, text: &str) -> Answer {
        let (reference, frame) = match supergroup_protocol::frames::parse_client_frame(text) {
            Ok(parsed) => parsed,
            Err(e) => return Answer::Now(error_frame(e.reference, ApiError::new(ErrorCode::InvalidFrame, e.message))),
        };
        let result = match frame {
            ClientFrame::Open { conversation_id, ui, as_guest, .. } => {
                self.open(reference.clone(), &conversation_id, ui, as_guest).await
            }
            ClientFrame::Close { conversation_id, .. } => self.close(reference.clone(), &conversation_id),
            ClientFrame::Send { conversation_id, text, custom, idempotency_key, .. } => {
                self.send(reference.clone(), &conversation_id, text, custom, idempotency_key).await
            }
            ClientFrame::Typing { conversation_id, is_typing, .. } => {
                self.typing(&conversation_id, is_typing).await.map(|()| Answer::Nothing)
            }
            ClientFrame::Read { conversation_id, .. } => self.read(&conversation_id).await.map(|()| Answer::Nothing),
        };
        result.unwrap_or_else(|e| Answer::Now(error_frame(reference, e)))
    }

    /// What `open` needs to know of a conversation, or `conversation_not_found`:
    /// the kept roster, else read from the database and kept ([`crate::roster`]).
    async fn facts(&self, conv: &str) -> Result<Arc<Roster>, ApiError> {
        check_id("conversationId", conv)?;
        let room = self.app.room(conv);
        if let Some(kept) = self.state.rosters.get(&room) {
            return Ok(kept);
        }
        let generation = self.state.rosters.generation();
        let (app_id, c, default_access) = (self.app.config.id.clone(), conv.to_string(), self.app.config.guest_access);
        let found = self
            .state
            .db
            .call(move |db| -> rusqlite::Result<Option<Roster>> {
                let Some(row) = store::get_conv(db, &app_id, &c)? else { return Ok(None) };
                let all = store::participants(db, &app_id, &c)?;
                let read_only = all.iter().filter(|(_, p)| p.access == Access::Read).map(|(u, _)| u.clone()).collect();
                let participants = all.into_keys().collect();
                Ok(Some(Roster { guest_access: row.guest_access.unwrap_or(default_access), participants, read_only }))
            })
            .await?;
        let roster = Arc::new(found.ok_or_else(|| ApiError::conversation_not_found(conv))?);
        self.state.rosters.keep(room, roster.clone(), generation);
        Ok(roster)
    }

    async fn open(
        &mut self,
        reference: Option<String>,
        conv: &str,
        ui: Ui,
        as_guest: bool,
    ) -> Result<Answer, ApiError> {
        check_id("conversationId", conv)?;
        let room = self.app.room(conv);
        if let Some(role) = self.state.hub.role_of(&room, self.out.id) {
            let facts = self.facts(conv).await?;
            // promoted-guest-role-switched: answers the role a first open would get now.
            let role = match self.state.violates(Violation::PromotedGuestRoleSwitched) {
                true => self.admit(&facts, conv, ui, as_guest).unwrap_or(role),
                false => role,
            };
            return Ok(self.opened(reference, conv, &room, role, facts.participants.clone()));
        }
        for _ in 0..OPEN_ATTEMPTS {
            let epoch = self.state.hub.epoch(&room);
            let facts = self.facts(conv).await?;
            let role = self.admit(&facts, conv, ui, as_guest)?;
            let max_open = self.state.config.transport.max_open_per_connection;
            if self.presence.len() >= max_open {
                let why = format!("this connection already has {max_open} conversations open; close one first");
                return Err(ApiError::new(ErrorCode::TooManyOpen, why));
            }
            let limit = (!self.state.violates(Violation::GuestLimitOff)).then(|| {
                (self.app.config.guest_limit() + u32::from(self.state.violates(Violation::GuestLimitOffByOne)))
                    .saturating_sub(u32::from(self.state.violates(Violation::GuestLimitOneShort)))
            });
            faults::guest_limit(&self.state, &room, role, &self.out.user, limit)?;
            if role == Role::Guest
                && self.state.violates(Violation::GuestSlotPerConnection)
                && limit.is_some_and(|l| self.state.hub.guest_connections(&room) >= u64::from(l))
            {
                return Err(ApiError::new(ErrorCode::GuestLimitReached, "every guest connection slot is taken"));
            }
            let role = match self.state.hub.open(&room, &self.out, role, limit, epoch) {
                Opened::New(role) => {
                    self.presence.opened(&room);
                    let first = *self.first_role.get_or_insert(role);
                    if role == Role::Guest {
                        faults::guest_opened(&self.state, &self.app, conv, &self.out.user);
                    }
                    // role-of-first-open: the reply tells the role kept for the connection.
                    if self.state.violates(Violation::RoleOfFirstOpen) { first } else { role }
                }
                Opened::Already(role) => role,
                Opened::Stale => continue,
                Opened::GuestLimitReached => {
                    return Err(ApiError::new(
                        ErrorCode::GuestLimitReached,
                        format!("{} guests already have this conversation open", self.app.config.guest_limit()),
                    ));
                }
            };
            return Ok(self.opened(reference, conv, &room, role, facts.participants.clone()));
        }
        Err(ApiError::internal(format!("membership of `{conv}` kept changing during {OPEN_ATTEMPTS} opens")))
    }

    /// The role `open` gives this user, or why it refuses (SPEC.md 10.3, steps 2 to 5).
    fn admit(&self, facts: &Roster, conv: &str, ui: Ui, as_guest: bool) -> Result<Role, ApiError> {
        let v = &self.state.config.violations;
        let is_participant = facts.participants.iter().any(|u| **u == *self.out.user)
            || (v.has(Violation::GuestLeavesTrace) && v.remembers("guest", &self.app.config.id, conv, &self.out.user));
        if is_participant {
            let as_guest_anyway = as_guest && v.has(Violation::ParticipantOpenedAsGuest);
            return Ok(if as_guest_anyway { Role::Guest } else { Role::Participant });
        }
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
        if !facts.guest_access && !v.has(Violation::GuestAccessIgnored) {
            return Err(ApiError::new(ErrorCode::GuestAccessDisabled, "this conversation does not admit guests"));
        }
        Ok(Role::Guest)
    }

    /// The `opened` reply.
    fn opened(
        &self,
        reference: Option<String>,
        conv: &str,
        room: &RoomKey,
        role: Role,
        mut members: Vec<String>,
    ) -> Answer {
        if self.state.violates(Violation::GuestInMemberList) {
            let guests: Vec<String> =
                self.state.hub.guests(room).into_iter().filter(|g| !members.contains(g)).collect();
            members.extend(guests);
        }
        Answer::Now(encode(&ServerFrame::Opened {
            reference,
            conversation_id: conv.into(),
            role,
            participants: members,
        }))
    }

    fn close(&mut self, reference: Option<String>, conv: &str) -> Result<Answer, ApiError> {
        check_id("conversationId", conv)?;
        let room = self.app.room(conv);
        let role = self.state.hub.role_of(&room, self.out.id);
        self.presence.close(&room);
        if self.presence.is_empty() {
            self.first_role = None;
        }
        if role == Some(Role::Guest) {
            faults::guest_closed(&self.state, &self.app, conv, &self.out.user);
        }
        Ok(Answer::Now(encode(&ServerFrame::Closed { reference, conversation_id: conv.into() })))
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
    ) -> Result<Answer, ApiError> {
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
        // `read_only` is decided by the writer, inside the commit (one read
        // of the members per conversation per batch), so a send costs no
        // database round trip of its own here: that round trip, queued behind
        // the group commit's fsync, held up every next frame of a pipelining
        // sender. Only when the content is refused anyway is the database
        // asked, because SPEC orders `read_only` before the content errors.
        if let Err(content) = draft.check_content() {
            if role == Role::Participant && self.facts(conv).await?.read_only.iter().any(|u| **u == *self.out.user) {
                return Err(ApiError::new(ErrorCode::ReadOnly, "you have Read access to this conversation"));
            }
            return Err(content);
        }
        // Queued now; the ack follows the commit, while this connection reads on.
        let answer = self.state.writer.send(&self.app, conv, vec![draft], Via::Realtime(role)).await?;
        Ok(Answer::Later(Box::pin(async move {
            let frame = match crate::writer::wait(answer).await {
                Ok(stored) => {
                    let msg = stored.into_iter().next().expect("one draft, one message");
                    ServerFrame::Ack { reference, message_id: msg.id, created_at: msg.created_at }
                }
                Err(e) => ServerFrame::Error { reference, code: e.code.as_str().into(), message: e.message },
            };
            encode(&frame)
        })))
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
        // Throttle per user and conversation: past the rate the frame is
        // dropped silently (SPEC section 12).
        if !self.user.typing_allowed(conv, self.state.config.transport.typing_rate) {
            if self.state.violates(Violation::TypingThrottleAnswered) {
                return Err(ApiError::new(ErrorCode::RateLimited, "too many typing frames; slow down"));
            }
            return Ok(());
        }
        if role == Role::Participant
            && self.state.violates(Violation::ReadOnlyTypingDropped)
            && self.facts(conv).await?.read_only.iter().any(|u| **u == *self.out.user)
        {
            return Ok(());
        }
        let user = self.out.user.to_string();
        let frame = ServerFrame::Typing { conversation_id: conv.into(), user_id: user.clone(), is_typing };
        if self.state.violates(Violation::GuestSeesNoTyping) {
            self.state.hub.broadcast_participants(&self.app.room(conv), &encode(&frame), Some(&user));
            return Ok(());
        }
        let skip = (!self.state.violates(Violation::TypingEchoed)).then_some(user.as_str());
        self.state.hub.broadcast(&self.app.room(conv), &encode(&frame), skip);
        Ok(())
    }

    async fn read(&self, conv: &str) -> Result<(), ApiError> {
        let facts = self.facts(conv).await?;
        if self.state.violates(Violation::GuestReadAnswered)
            && !facts.participants.iter().any(|u| **u == *self.out.user)
        {
            return Err(ApiError::new(ErrorCode::NotAParticipant, "guests keep no read state"));
        }
        // A job of the group-commit writer; for a guest (not a participant)
        // it updates nothing: a silent no-op.
        let change = Change::Read { conv: conv.to_string(), user: self.out.user.to_string() };
        self.state.writer.change(&self.app, change).await
    }
}

/// Test-only faults on the way out (the presence guard leaves every room
/// right after, also when the connection task panics).
impl Drop for Handler {
    fn drop(&mut self) {
        if !self.state.config.violations.any() {
            return;
        }
        for (room, role) in self.presence.leave_all() {
            if role == Some(Role::Guest) {
                if self.state.violates(Violation::GuestSlotKeptOnDisconnect) {
                    self.state.hub.leak_guest_slot(&room, &self.out.user);
                }
                faults::guest_closed(&self.state, &self.app, &room.1, &self.out.user);
            }
        }
    }
}
