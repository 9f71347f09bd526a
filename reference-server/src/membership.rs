//! Who is a member: admitting participants under the participant limit, and
//! telling everyone with the conversation open (`participant.joined` /
//! `participant.left`). Guests never pass through here: they are not members.

use crate::error::ApiError;
use crate::state::{App, AppState};
use crate::store;
use crate::violation::Violation;
use axum::extract::ws::Utf8Bytes;
use rusqlite::Connection;
use supergroup_protocol::ErrorCode;
use supergroup_protocol::frames::ServerFrame;
use supergroup_protocol::rest::ParticipantSettings;

/// Adds the `users` who are not participants yet, with `settings`; returns
/// them. Fails with 409 `participant_limit_reached`, adding nobody, when they
/// would not all fit. Unknown users are created. Call inside a transaction.
pub fn admit(
    state: &AppState,
    app: &App,
    c: &Connection,
    conv: &str,
    users: &[String],
    settings: ParticipantSettings,
) -> Result<Vec<String>, ApiError> {
    let app_id = app.config.id.as_str();
    let mut new = Vec::new();
    for u in users {
        if !new.contains(u) && store::participant(c, app_id, conv, u)?.is_none() {
            new.push(u.clone());
        }
    }
    if new.is_empty() {
        return Ok(new);
    }
    let mut count = store::count_participants(c, app_id, conv)? as u64;
    if state.violates(Violation::GuestCountsTowardParticipantLimit) {
        count += state.hub.guests(&app.room(conv)).len() as u64;
    }
    if state.violates(Violation::ParticipantPlaceNotFreed) {
        count += state.config.violations.remembered("removed", app_id, conv).len() as u64;
    }
    let limit =
        u64::from(app.config.participant_limit()) - u64::from(state.violates(Violation::ParticipantLimitOffByOne));
    if !state.violates(Violation::ParticipantLimitOff) && count + new.len() as u64 > limit {
        return Err(ApiError::new(
            ErrorCode::ParticipantLimitReached,
            format!("the conversation has {count} of {limit} participants; {} more do not fit", new.len()),
        ));
    }
    let now = crate::now_ms();
    for u in &new {
        store::ensure_user(c, app_id, u, None, now)?;
        store::insert_participant(c, app_id, conv, u, settings)?;
    }
    Ok(new)
}

/// Sends `participant.joined` for each of `users` to everyone with `conv` open.
pub fn announce_joined(state: &AppState, app: &App, conv: &str, users: &[String]) {
    for u in users {
        let frame = ServerFrame::ParticipantJoined { conversation_id: conv.into(), user_id: u.clone() };
        state.hub.broadcast(&app.room(conv), &encode(&frame), None);
    }
}

/// Sends `participant.left` to everyone with `conv` open (the member
/// included), then ends the member's participant presence with `closed`.
pub fn announce_left(state: &AppState, app: &App, conv: &str, user: &str) {
    let room = app.room(conv);
    let left = ServerFrame::ParticipantLeft { conversation_id: conv.into(), user_id: user.into() };
    let skip = state.violates(Violation::RemovedMemberNotTold).then_some(user);
    state.hub.broadcast(&room, &encode(&left), skip);
    if state.violates(Violation::RemovedParticipantRefusedAsGuest)
        || state.violates(Violation::ParticipantPlaceNotFreed)
    {
        state.config.violations.remember("removed", &app.config.id, conv, user);
    }
    if state.violates(Violation::RemovedMemberKeepsOpen) {
        return;
    }
    let closed = ServerFrame::Closed { reference: None, conversation_id: conv.into() };
    state.hub.evict_participant(&room, user, &encode(&closed));
}

/// Serializes a frame once, for sharing among recipients.
pub fn encode(frame: &ServerFrame) -> Utf8Bytes {
    serde_json::to_string(frame).expect("frames serialize").into()
}
