//! Changes: the writes other than messages, run by the group-commit writer
//! ([`crate::writer`]) so that concurrent ones share one transaction and one
//! fsync: user `PUT`, conversation `PUT`/`DELETE`, participant
//! `PUT`/`PATCH`/`DELETE`, webhook `PUT`/`DELETE` and the realtime `read`.
//!
//! A webhook registration takes effect in [`Effect::publish`], in commit order
//! with the messages: a message committed before it (though published after
//! its REST answer) goes to the registration it was committed under.
//!
//! A change is [applied](Change::apply) inside its own SAVEPOINT of the
//! writer's transaction, so each request stays all or nothing and a refused
//! one (a participant limit, a missing conversation) rolls back alone. What it
//! announces, its [`Effect`] (`participant.joined`, `participant.left`, the
//! `closed` frames of an eviction, which also bump the room's membership
//! epoch, see [`crate::hub`]), is published by the writer after the COMMIT,
//! in commit order with the batch's messages, and only then is the request
//! answered. The writer publishes it, not the request's handler, so a REST
//! client that goes away after the commit cannot skip an eviction.
//!
//! The participant limit stays exact: [`membership::admit`] counts the
//! participants inside the transaction, after every change committed before
//! it in the same batch.

use crate::error::ApiError;
use crate::membership;
use crate::state::{App, AppState};
use crate::store;
use crate::violation::Violation;
use rusqlite::Connection;
use supergroup_protocol::ErrorCode;
use supergroup_protocol::frames::ServerFrame;
use supergroup_protocol::rest::{
    ConversationUpsert, ParticipantSettings, ParticipantUpsert, UserUpsert, WebhookRegistration,
};

/// One write of the API, its input already checked by the route.
pub enum Change {
    /// `PUT /users/{id}`: create or merge.
    PutUser { user: String, body: UserUpsert },
    /// `PUT /conversations/{id}`: create or merge, adding `listed` all or nothing.
    PutConversation {
        conv: String,
        body: ConversationUpsert,
        listed: Vec<String>,
        /// The guest-access-off-evicts-guests fault: `closed` to every guest.
        evict_guests: bool,
    },
    /// `DELETE /conversations/{id}`, messages and participants included.
    DeleteConversation { conv: String },
    /// `PUT .../participants/{user}`: add with `settings`, or set them.
    PutParticipant { conv: String, user: String, settings: ParticipantSettings },
    /// `PATCH .../participants/{user}`: only the given fields.
    PatchParticipant { conv: String, user: String, body: ParticipantUpsert },
    /// `DELETE .../participants/{user}`: the participant leaves.
    DeleteParticipant { conv: String, user: String },
    /// A realtime `read`: everything in `conv` read by `user` (nothing for a guest).
    Read { conv: String, user: String },
    /// `PUT /webhooks` (`Some`, its URL already checked) or `DELETE /webhooks` (`None`).
    Webhook(Option<WebhookRegistration>),
}

/// What a committed change announces, published by [`Effect::publish`].
pub enum Effect {
    Nothing,
    /// `participant.joined` for each of `users`; then, if `evict_guests`,
    /// `closed` to every guest.
    Joined {
        conv: String,
        users: Vec<String>,
        evict_guests: bool,
    },
    /// `participant.left`, then `closed` to the member's connections.
    Left {
        conv: String,
        user: String,
    },
    /// `closed` to every connection that had the conversation open.
    Deleted {
        conv: String,
    },
    /// Committed yet answered with this error: the conversation-put-partial fault.
    KeptButRefused(ApiError),
    /// The app's webhook registration from now on.
    Webhook(Option<WebhookRegistration>),
}

fn not_a_participant(user: &str) -> ApiError {
    ApiError::new(ErrorCode::ParticipantNotFound, format!("`{user}` is not a participant of this conversation"))
}

impl Change {
    /// The conversation whose participants this change may alter, if any:
    /// the writer reads that conversation's members again for later sends.
    pub fn membership_of(&self) -> Option<&str> {
        match self {
            Change::PutConversation { conv, .. }
            | Change::DeleteConversation { conv }
            | Change::PutParticipant { conv, .. }
            | Change::PatchParticipant { conv, .. }
            | Change::DeleteParticipant { conv, .. } => Some(conv),
            Change::PutUser { .. } | Change::Read { .. } | Change::Webhook(_) => None,
        }
    }

    /// Does the change on `c` (a savepoint of the writer's transaction: an
    /// error rolls back all of it); returns what to announce after the commit.
    pub fn apply(self, c: &Connection, state: &AppState, app: &App) -> Result<Effect, ApiError> {
        let app_id = app.config.id.as_str();
        match self {
            Change::PutUser { user, body } => {
                store::upsert_user(c, app_id, &user, &body, crate::now_ms())?;
                Ok(Effect::Nothing)
            }
            Change::PutConversation { conv, body, listed, evict_guests } => {
                store::upsert_conv(c, app_id, &conv, &body, crate::now_ms())?;
                let users = match membership::admit(state, app, c, &conv, &listed, ParticipantSettings::default()) {
                    Err(e) if state.violates(Violation::ConversationPutPartial) => {
                        return Ok(Effect::KeptButRefused(e));
                    }
                    r => r?,
                };
                Ok(Effect::Joined { conv, users, evict_guests })
            }
            Change::DeleteConversation { conv } => match store::delete_conv(c, app_id, &conv)? {
                true => Ok(Effect::Deleted { conv }),
                false => Err(ApiError::conversation_not_found(&conv)),
            },
            Change::PutParticipant { conv, user, settings } => {
                if store::get_conv(c, app_id, &conv)?.is_none() {
                    return Err(ApiError::conversation_not_found(&conv));
                }
                let mut users = membership::admit(state, app, c, &conv, std::slice::from_ref(&user), settings)?;
                if users.is_empty() {
                    store::update_participant(c, app_id, &conv, &user, settings)?;
                    if state.violates(Violation::ParticipantJoinedOnUpdate) {
                        users.push(user);
                    }
                }
                Ok(Effect::Joined { conv, users, evict_guests: false })
            }
            Change::PatchParticipant { conv, user, body } => {
                if store::get_conv(c, app_id, &conv)?.is_none() {
                    return Err(ApiError::conversation_not_found(&conv));
                }
                let current = store::participant(c, app_id, &conv, &user)?.ok_or_else(|| not_a_participant(&user))?;
                let settings = ParticipantSettings {
                    access: body.access.unwrap_or(current.access),
                    notify: body.notify.unwrap_or(current.notify),
                };
                store::update_participant(c, app_id, &conv, &user, settings)?;
                Ok(Effect::Nothing)
            }
            Change::DeleteParticipant { conv, user } => {
                if store::get_conv(c, app_id, &conv)?.is_none() {
                    return Err(ApiError::conversation_not_found(&conv));
                }
                if !store::delete_participant(c, app_id, &conv, &user)? {
                    return Err(not_a_participant(&user));
                }
                Ok(Effect::Left { conv, user })
            }
            Change::Read { conv, user } => {
                // For a guest (not a participant) this updates nothing: a silent no-op.
                store::mark_read(c, app_id, &conv, &user)?;
                Ok(Effect::Nothing)
            }
            Change::Webhook(reg) => {
                match &reg {
                    Some(r) => store::save_webhook(c, app_id, &r.url, r.events.as_ref())?,
                    None => store::delete_webhook(c, app_id)?,
                }
                Ok(Effect::Webhook(reg))
            }
        }
    }
}

impl Effect {
    /// Announces the committed change; returns the request's answer.
    pub fn publish(&self, state: &AppState, app: &App) -> Result<(), ApiError> {
        match self {
            Effect::Nothing => {}
            Effect::Joined { conv, users, evict_guests } => {
                membership::announce_joined(state, app, conv, users);
                if *evict_guests {
                    let closed = ServerFrame::Closed { reference: None, conversation_id: conv.clone() };
                    state.hub.evict_guests(&app.room(conv), &membership::encode(&closed));
                }
            }
            Effect::Left { conv, user } => membership::announce_left(state, app, conv, user),
            Effect::Deleted { conv } => {
                let closed = ServerFrame::Closed { reference: None, conversation_id: conv.clone() };
                state.hub.evict_all(&app.room(conv), &membership::encode(&closed));
            }
            Effect::KeptButRefused(e) => return Err(e.clone()),
            Effect::Webhook(reg) => app.set_webhook(reg.clone()),
        }
        Ok(())
    }
}
