//! Test-only fault switches: `--violate <rule>` makes the server break one rule
//! of SPEC.md on purpose, so the conformance suite can prove that it notices.
//! Never turn one on in production; the server logs a warning for each.

use std::collections::HashSet;
use std::fmt;
use std::str::FromStr;
use std::sync::{Arc, Mutex};

/// One rule the server can be told to break. Each breaks exactly one rule,
/// the way a realistic implementation could get it wrong.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum Violation {
    /// A guest who closed the conversation (or disconnected) is notified of later messages, as if an absent member.
    GuestNotified,
    /// Guests who have a conversation open count toward its participant limit.
    GuestCountsTowardParticipantLimit,
    /// A guest's typing is broadcast.
    GuestTypingShown,
    /// Conversations a user opened as a guest show up in their user-conversations list.
    GuestInUserConversations,
    /// A guest may open a conversation with `ui: inbox`.
    GuestInboxAllowed,
    /// Guests show up in the member list (`opened.participants`, GET conversation) and are announced with `participant.joined` / `participant.left`.
    GuestInMemberList,
    /// The guest limit is not enforced.
    GuestLimitOff,
    /// The participant limit is not enforced.
    ParticipantLimitOff,
    /// REST accepts a UserMessage whose sender is not a participant (a guest).
    GuestRestSender,
    /// A guest's open and close are announced with `participant.joined` / `participant.left` (member lists stay right).
    GuestJoinedAnnounced,
    /// A guest's slot is released by `close` but not when the connection ends.
    GuestSlotKeptOnDisconnect,
    /// Guest slots are counted per connection, not per user.
    GuestSlotPerConnection,
    /// One guest more than `guestLimit` is admitted (`>` where `>=` belongs).
    GuestLimitOffByOne,
    /// A `read` frame from a guest is answered with an `error` frame instead of being a silent no-op.
    GuestReadAnswered,
    /// A guest's messages are deleted when their last connection closes the conversation.
    GuestMessagesRemoved,
    /// Typing frames go to participants' connections only, not to guests'.
    GuestSeesNoTyping,
    /// Typing is hidden for any user who holds a guest slot, even on a connection where they hold the conversation as participant.
    PromotedGuestTypingHidden,
    /// A participant who opens with `asGuest` true is opened as a guest.
    ParticipantOpenedAsGuest,
    /// A repeated `open` re-decides the role, so a guest made a participant is answered `participant` before closing the guest open.
    PromotedGuestRoleSwitched,
    /// Turning guest access off closes the guests who already have the conversation open.
    GuestAccessOffEvictsGuests,
    /// A non-participant's `open` with `asGuest` false is admitted as a guest instead of refused.
    GuestOpenWithoutAsGuest,
    /// A user who once opened a conversation as a guest is later admitted without `asGuest`, as if a member.
    GuestLeavesTrace,
    /// A user removed as participant is refused (`not_a_participant`) when they open the conversation as a guest.
    RemovedParticipantRefusedAsGuest,
    /// "Has it open" is checked when a message is stored but not again when the notification window closes.
    NotifyOpenNotRechecked,
    /// "Has it open" is checked only when the notification window closes, not when the message is stored.
    NotifyPresenceCheckedLate,
    /// Each request (REST post or realtime send) gets a notification window of its own instead of one window per recipient and conversation.
    NotifyGroupedPerRequest,
    /// Notification windows stay open four times `notificationDelayMs`.
    NotifyDelayFourfold,
    /// A participant `PUT` of an existing participant announces `participant.joined` again.
    ParticipantJoinedOnUpdate,
    /// `participant.left` goes to everyone but the removed member's own connections.
    RemovedMemberNotTold,
    /// A removed participant's connections keep the conversation open (no `closed`, further messages).
    RemovedMemberKeepsOpen,
    /// A conversation `PUT` refused for the participant limit still applies its subject.
    ConversationPutPartial,
    /// Only `participantLimit - 1` participants fit (`>=` where `>` belongs).
    ParticipantLimitOffByOne,
    /// The `basic` plan gets the participant limit of the `growth` row (300, not 100), reported and enforced alike.
    PlanPresetWrong,
    /// The sender of a UserMessage is notified of it like any other absent participant.
    SenderNotified,
    /// A participant whose `notify` is `MentionsOnly` is notified of every message, as if `true`.
    MentionsOnlyIgnored,
    /// A SystemMessage notifies the absent participants like a UserMessage.
    SystemMessageNotifies,
    /// A message written by a guest notifies nobody.
    GuestMessageNotifiesNobody,
    /// Only `guestLimit - 1` guests fit: the joining guest is counted before the comparison (`>=` against `count + 1`).
    GuestLimitOneShort,
    /// A participant's `open` is refused with `guest_limit_reached` when the guest slots are full (the limit checked before the role).
    GuestLimitRefusesParticipants,
    /// Guest slots are counted per app, not per conversation: guests of one conversation take the slots of another.
    GuestLimitPerApp,
    /// A conversation's `guestAccess` false is not checked: guests are admitted anyway.
    GuestAccessIgnored,
    /// The `opened` reply carries the role of the first conversation the connection still has open, not the role it got in this one (which it holds rightly).
    RoleOfFirstOpen,
    /// A participant's `typing` is passed on to the typist's own connections too.
    TypingEchoed,
    /// `typing` frames over the throttle are answered with a `rate_limited` error frame instead of dropped silently.
    TypingThrottleAnswered,
    /// The typing of a participant with `Read` access is dropped, like their sends are refused.
    ReadOnlyTypingDropped,
    /// A removed participant still counts toward the participant limit (the place is not freed).
    ParticipantPlaceNotFreed,
    /// `notification.triggered` lists each message as `{id, senderId, text}` only, not in full message shape.
    NotificationMessagesShort,
    /// A `message.sent` stored while no webhook is registered counts as a failed first attempt and is retried a second later, to whatever is registered by then.
    UnregisteredEventRetried,
}

impl Violation {
    /// Every violation, in the order the README's table lists them.
    pub const ALL: [Violation; 48] = [
        Violation::GuestNotified,
        Violation::GuestCountsTowardParticipantLimit,
        Violation::GuestTypingShown,
        Violation::GuestInUserConversations,
        Violation::GuestInboxAllowed,
        Violation::GuestInMemberList,
        Violation::GuestLimitOff,
        Violation::ParticipantLimitOff,
        Violation::GuestRestSender,
        Violation::GuestJoinedAnnounced,
        Violation::GuestSlotKeptOnDisconnect,
        Violation::GuestSlotPerConnection,
        Violation::GuestLimitOffByOne,
        Violation::GuestReadAnswered,
        Violation::GuestMessagesRemoved,
        Violation::GuestSeesNoTyping,
        Violation::PromotedGuestTypingHidden,
        Violation::ParticipantOpenedAsGuest,
        Violation::PromotedGuestRoleSwitched,
        Violation::GuestAccessOffEvictsGuests,
        Violation::GuestOpenWithoutAsGuest,
        Violation::GuestLeavesTrace,
        Violation::RemovedParticipantRefusedAsGuest,
        Violation::NotifyOpenNotRechecked,
        Violation::NotifyPresenceCheckedLate,
        Violation::NotifyGroupedPerRequest,
        Violation::NotifyDelayFourfold,
        Violation::ParticipantJoinedOnUpdate,
        Violation::RemovedMemberNotTold,
        Violation::RemovedMemberKeepsOpen,
        Violation::ConversationPutPartial,
        Violation::ParticipantLimitOffByOne,
        Violation::PlanPresetWrong,
        Violation::SenderNotified,
        Violation::MentionsOnlyIgnored,
        Violation::SystemMessageNotifies,
        Violation::GuestMessageNotifiesNobody,
        Violation::GuestLimitOneShort,
        Violation::GuestLimitRefusesParticipants,
        Violation::GuestLimitPerApp,
        Violation::GuestAccessIgnored,
        Violation::RoleOfFirstOpen,
        Violation::TypingEchoed,
        Violation::TypingThrottleAnswered,
        Violation::ReadOnlyTypingDropped,
        Violation::ParticipantPlaceNotFreed,
        Violation::NotificationMessagesShort,
        Violation::UnregisteredEventRetried,
    ];

    /// The flag spelling, e.g. `guest-notified`.
    pub fn as_str(self) -> &'static str {
        match self {
            Violation::GuestNotified => "guest-notified",
            Violation::GuestCountsTowardParticipantLimit => "guest-counts-toward-participant-limit",
            Violation::GuestTypingShown => "guest-typing-shown",
            Violation::GuestInUserConversations => "guest-in-user-conversations",
            Violation::GuestInboxAllowed => "guest-inbox-allowed",
            Violation::GuestInMemberList => "guest-in-member-list",
            Violation::GuestLimitOff => "guest-limit-off",
            Violation::ParticipantLimitOff => "participant-limit-off",
            Violation::GuestRestSender => "guest-rest-sender",
            Violation::GuestJoinedAnnounced => "guest-joined-announced",
            Violation::GuestSlotKeptOnDisconnect => "guest-slot-kept-on-disconnect",
            Violation::GuestSlotPerConnection => "guest-slot-per-connection",
            Violation::GuestLimitOffByOne => "guest-limit-off-by-one",
            Violation::GuestReadAnswered => "guest-read-answered",
            Violation::GuestMessagesRemoved => "guest-messages-removed",
            Violation::GuestSeesNoTyping => "guest-sees-no-typing",
            Violation::PromotedGuestTypingHidden => "promoted-guest-typing-hidden",
            Violation::ParticipantOpenedAsGuest => "participant-opened-as-guest",
            Violation::PromotedGuestRoleSwitched => "promoted-guest-role-switched",
            Violation::GuestAccessOffEvictsGuests => "guest-access-off-evicts-guests",
            Violation::GuestOpenWithoutAsGuest => "guest-open-without-as-guest",
            Violation::GuestLeavesTrace => "guest-leaves-trace",
            Violation::RemovedParticipantRefusedAsGuest => "removed-participant-refused-as-guest",
            Violation::NotifyOpenNotRechecked => "notify-open-not-rechecked",
            Violation::NotifyPresenceCheckedLate => "notify-presence-checked-late",
            Violation::NotifyGroupedPerRequest => "notify-grouped-per-request",
            Violation::NotifyDelayFourfold => "notify-delay-4x",
            Violation::ParticipantJoinedOnUpdate => "participant-joined-on-update",
            Violation::RemovedMemberNotTold => "removed-member-not-told",
            Violation::RemovedMemberKeepsOpen => "removed-member-keeps-open",
            Violation::ConversationPutPartial => "conversation-put-partial",
            Violation::ParticipantLimitOffByOne => "participant-limit-off-by-one",
            Violation::PlanPresetWrong => "plan-preset-wrong",
            Violation::SenderNotified => "sender-notified",
            Violation::MentionsOnlyIgnored => "mentions-only-ignored",
            Violation::SystemMessageNotifies => "system-message-notifies",
            Violation::GuestMessageNotifiesNobody => "guest-message-notifies-nobody",
            Violation::GuestLimitOneShort => "guest-limit-one-short",
            Violation::GuestLimitRefusesParticipants => "guest-limit-refuses-participants",
            Violation::GuestLimitPerApp => "guest-limit-per-app",
            Violation::GuestAccessIgnored => "guest-access-ignored",
            Violation::RoleOfFirstOpen => "role-of-first-open",
            Violation::TypingEchoed => "typing-echoed",
            Violation::TypingThrottleAnswered => "typing-throttle-answered",
            Violation::ReadOnlyTypingDropped => "read-only-typing-dropped",
            Violation::ParticipantPlaceNotFreed => "participant-place-not-freed",
            Violation::NotificationMessagesShort => "notification-messages-short",
            Violation::UnregisteredEventRetried => "unregistered-event-retried",
        }
    }
}

impl fmt::Display for Violation {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.as_str())
    }
}

impl FromStr for Violation {
    type Err = String;
    fn from_str(s: &str) -> Result<Self, Self::Err> {
        Violation::ALL.into_iter().find(|v| v.as_str() == s).ok_or_else(|| {
            let all: Vec<_> = Violation::ALL.iter().map(|v| v.as_str()).collect();
            format!("unknown violation `{s}`; one of: {}", all.join(", "))
        })
    }
}

/// The set of violations in force; empty in every real deployment.
#[derive(Debug, Clone, Default)]
pub struct Violations {
    list: Vec<Violation>,
    /// What a faulty server remembers that a correct one must not (past
    /// guests, removed members), shared by every clone of the config.
    memory: Arc<Mutex<HashSet<Remembered>>>,
    /// Requests the send path finished (notify-grouped-per-request).
    requests: Arc<std::sync::atomic::AtomicU64>,
}

/// One remembered fact: (what, app, conversation, user).
type Remembered = (&'static str, String, String, String);

/// Bound of [`Violations`]' memory, in entries: a test-only server forgets
/// nothing before this many, and remembers nothing new after it.
const MEMORY_CAP: usize = 100_000;

impl Violations {
    pub fn new(list: Vec<Violation>) -> Violations {
        Violations { list, memory: Arc::default(), requests: Arc::default() }
    }

    /// Whether the server breaks any rule at all.
    pub fn any(&self) -> bool {
        !self.list.is_empty()
    }

    /// Whether the server should break `v`.
    pub fn has(&self, v: Violation) -> bool {
        self.list.contains(&v)
    }

    pub fn iter(&self) -> impl Iterator<Item = Violation> + '_ {
        self.list.iter().copied()
    }

    fn memory(&self) -> std::sync::MutexGuard<'_, HashSet<Remembered>> {
        self.memory.lock().unwrap_or_else(|p| p.into_inner())
    }

    /// Remembers that `user` was `what` (`"guest"`, `"removed"`) in a conversation.
    pub fn remember(&self, what: &'static str, app: &str, conv: &str, user: &str) {
        let mut memory = self.memory();
        if memory.len() < MEMORY_CAP {
            memory.insert((what, app.into(), conv.into(), user.into()));
        }
    }

    /// Whether `user` was remembered as `what` in the conversation.
    pub fn remembers(&self, what: &'static str, app: &str, conv: &str, user: &str) -> bool {
        self.memory().contains(&(what, app.into(), conv.into(), user.into()))
    }

    /// Every user remembered as `what` in the conversation.
    pub fn remembered(&self, what: &'static str, app: &str, conv: &str) -> Vec<String> {
        let memory = self.memory();
        memory.iter().filter(|(w, a, c, _)| *w == what && a == app && c == conv).map(|(.., u)| u.clone()).collect()
    }
}

/// What the faulty server does where a correct one does something else. Each
/// function is a no-op unless its violation is on, so a call site stays one line.
pub mod faults {
    use super::Violation;
    use crate::config::AppConfig;
    use crate::error::ApiError;
    use crate::membership::encode;
    use crate::state::{App, AppState};
    use bytes::Bytes;
    use std::collections::HashMap;
    use std::sync::atomic::Ordering;
    use std::sync::{Arc, LazyLock, Mutex};
    use supergroup_protocol::ErrorCode;
    use supergroup_protocol::frames::Role;
    use supergroup_protocol::frames::ServerFrame;
    use supergroup_protocol::rest::Message;
    use supergroup_protocol::webhook::{IdRef, NOTIFICATION_TRIGGERED, NotificationTriggered};

    /// The app as the server runs it: with plan-preset-wrong, a `basic` app
    /// without an operator override takes the `growth` row's participant limit.
    pub fn app_config(violations: &super::Violations, mut app: AppConfig) -> AppConfig {
        use supergroup_protocol::limits::Plan;
        if violations.has(Violation::PlanPresetWrong) && app.plan == Plan::Basic && app.participant_limit.is_none() {
            app.participant_limit = Some(Plan::Growth.participant_limit());
        }
        app
    }

    /// Who a faulty server considers for a notification of `msg` (before the
    /// presence check), or `None` when no notification fault changes that.
    pub fn notification_candidates(
        state: &AppState,
        msg: &Message,
        participants: &std::collections::BTreeMap<String, supergroup_protocol::rest::ParticipantSettings>,
    ) -> Option<Vec<String>> {
        use supergroup_protocol::rest::{MessageType, Notify};
        let v = &state.config.violations;
        let sender = msg.sender_id.as_deref();
        let system = msg.kind != MessageType::UserMessage;
        if v.has(Violation::GuestMessageNotifiesNobody) && sender.is_some_and(|s| !participants.contains_key(s)) {
            return Some(Vec::new());
        }
        let changed = if system {
            v.has(Violation::SystemMessageNotifies)
        } else {
            v.has(Violation::SenderNotified) || v.has(Violation::MentionsOnlyIgnored)
        };
        if !changed {
            return None;
        }
        let candidates = participants
            .iter()
            .filter(|(user, _)| v.has(Violation::SenderNotified) || Some(user.as_str()) != sender)
            .filter(|(user, p)| match p.notify {
                Notify::On => true,
                Notify::Off => false,
                Notify::MentionsOnly => v.has(Violation::MentionsOnlyIgnored) || msg.text.contains(&format!("@{user}")),
            })
            .map(|(user, _)| user.clone())
            .collect();
        Some(candidates)
    }

    /// Where a faulty server refuses an open for the guest limit that a
    /// correct one admits: guest-limit-refuses-participants (a participant at
    /// a full conversation), guest-limit-per-app (a guest when the app's
    /// guests, over all its conversations, fill the limit).
    pub fn guest_limit(
        state: &AppState,
        room: &crate::hub::RoomKey,
        role: Role,
        user: &str,
        limit: Option<u32>,
    ) -> Result<(), ApiError> {
        let Some(limit) = limit.map(|l| l as usize) else { return Ok(()) };
        let v = &state.config.violations;
        let full = match role {
            Role::Participant => {
                v.has(Violation::GuestLimitRefusesParticipants) && state.hub.guest_count(room) >= limit
            }
            Role::Guest => {
                v.has(Violation::GuestLimitPerApp) && {
                    let guests = state.hub.guest_users_of_app(&room.0);
                    !guests.contains(user) && guests.len() >= limit
                }
            }
        };
        match full {
            true => Err(ApiError::new(ErrorCode::GuestLimitReached, format!("{limit} guests are in already"))),
            false => Ok(()),
        }
    }

    /// The messages a `notification.triggered` lists: with
    /// notification-messages-short, each only `{id, senderId, text}`.
    pub fn notification_messages(state: &AppState, messages: Vec<Bytes>) -> Vec<Bytes> {
        if !state.violates(Violation::NotificationMessagesShort) {
            return messages;
        }
        let short = |m: &Bytes| -> Option<Bytes> {
            let full: serde_json::Value = serde_json::from_slice(m).ok()?;
            let keep = serde_json::json!({ "id": full["id"], "senderId": full["senderId"], "text": full["text"] });
            Some(Bytes::from(serde_json::to_vec(&keep).ok()?))
        };
        messages.iter().map(|m| short(m).unwrap_or_else(|| m.clone())).collect()
    }

    /// A guest opened `conv` (admitted, new on this connection).
    pub fn guest_opened(state: &AppState, app: &App, conv: &str, user: &str) {
        let v = &state.config.violations;
        if v.has(Violation::GuestNotified) || v.has(Violation::GuestLeavesTrace) {
            v.remember("guest", &app.config.id, conv, user);
        }
        if v.has(Violation::GuestJoinedAnnounced) || v.has(Violation::GuestInMemberList) {
            let frame = ServerFrame::ParticipantJoined { conversation_id: conv.into(), user_id: user.into() };
            state.hub.broadcast(&app.room(conv), &encode(&frame), None);
        }
    }

    /// A guest connection closed `conv` (by `close` or by ending).
    pub fn guest_closed(state: &AppState, app: &App, conv: &str, user: &str) {
        let v = &state.config.violations;
        if v.has(Violation::GuestJoinedAnnounced) || v.has(Violation::GuestInMemberList) {
            let frame = ServerFrame::ParticipantLeft { conversation_id: conv.into(), user_id: user.into() };
            state.hub.broadcast(&app.room(conv), &encode(&frame), None);
        }
        if v.has(Violation::GuestMessagesRemoved) && !state.hub.user_has_open(&app.room(conv), user) {
            let (a, c, u) = (app.config.id.clone(), conv.to_string(), user.to_string());
            // Queued on the one database connection before the `closed` reply
            // goes out, so a later history read already sees the deletion.
            let db = state.db.clone();
            tokio::spawn(async move {
                let sql = "DELETE FROM messages WHERE app = ?1 AND conv = ?2 AND sender = ?3";
                let _ = db.call(move |db| db.execute(sql, rusqlite::params![a, c, u])).await;
            });
        }
    }

    /// Guests who closed `conv` and would be notified by the guest-notified fault.
    pub fn departed_guests(state: &AppState, app: &App, conv: &str, participants: &[&String]) -> Vec<String> {
        if !state.violates(Violation::GuestNotified) {
            return Vec::new();
        }
        let room = app.room(conv);
        let past = state.config.violations.remembered("guest", &app.config.id, conv);
        past.into_iter().filter(|u| !participants.contains(&u) && !state.hub.user_has_open(&room, u)).collect()
    }

    type Key = (String, String, String, u64);
    /// Windows of the notify-grouped-per-request fault, one per request. Bound:
    /// each lives `notificationDelayMs`; only a test server has any.
    static WINDOWS: LazyLock<Mutex<HashMap<Key, Vec<Message>>>> = LazyLock::new(Mutex::default);

    /// unregistered-event-retried: an event the app had no registration for
    /// when it happened is "retried" after the webhook retry delay, and
    /// delivered if a registration exists by then (no registration counted as
    /// a failed attempt). One timer per such event, each living one second;
    /// only a test server has any.
    pub fn retry_unregistered<T: serde::Serialize + Send + 'static>(
        state: &AppState,
        app: &Arc<App>,
        kind: &'static str,
        data: T,
    ) {
        if !state.violates(Violation::UnregisteredEventRetried) || app.webhook().is_some() {
            return;
        }
        let (state, app) = (state.clone(), app.clone());
        tokio::spawn(async move {
            tokio::time::sleep(crate::webhooks::RETRY_AFTER).await;
            state.webhooks.emit(&app, kind, &data);
        });
    }

    /// The send path finished one request (its messages are delivered).
    pub fn request_done(state: &AppState) {
        state.config.violations.requests.fetch_add(1, Ordering::Relaxed);
    }

    /// Adds `msg` to per-request windows of `recipients` (notify-grouped-per-request).
    pub fn notify_per_request(state: &AppState, app: &Arc<App>, msg: &Message, recipients: Vec<String>) {
        let request = state.config.violations.requests.load(Ordering::Relaxed);
        for user in recipients {
            let key = (app.config.id.clone(), msg.conversation_id.clone(), user, request);
            let mut windows = WINDOWS.lock().unwrap_or_else(|p| p.into_inner());
            if let Some(w) = windows.get_mut(&key) {
                w.push(msg.clone());
                continue;
            }
            windows.insert(key.clone(), vec![msg.clone()]);
            drop(windows);
            let (state, app) = (state.clone(), app.clone());
            let delay = std::time::Duration::from_millis(state.config.notification_delay_ms);
            tokio::spawn(async move {
                tokio::time::sleep(delay).await;
                let messages = WINDOWS.lock().unwrap_or_else(|p| p.into_inner()).remove(&key).unwrap_or_default();
                let (_, conv, user, _) = key;
                if !state.hub.user_has_open(&app.room(&conv), &user) {
                    let data = NotificationTriggered {
                        recipient: IdRef { id: user },
                        conversation: IdRef { id: conv },
                        messages,
                    };
                    state.webhooks.emit(&app, NOTIFICATION_TRIGGERED, &data);
                }
            });
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn every_switch_has_a_unique_flag_spelling_that_parses_back() {
        let mut seen = HashSet::new();
        for v in Violation::ALL {
            assert!(seen.insert(v.as_str()), "{v} is spelled twice");
            assert_eq!(v.as_str().parse::<Violation>(), Ok(v));
        }
        assert!("no-such-rule".parse::<Violation>().is_err());
    }

    #[test]
    fn memory_remembers_per_conversation() {
        let v = Violations::new(vec![Violation::GuestNotified]);
        v.remember("guest", "demo", "lobby", "dave");
        assert!(v.remembers("guest", "demo", "lobby", "dave"));
        assert!(!v.remembers("guest", "demo", "other", "dave"));
        assert_eq!(v.remembered("guest", "demo", "lobby"), vec!["dave".to_string()]);
    }
}
