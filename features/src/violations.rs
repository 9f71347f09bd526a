//! What each fault switch of the reference server (`--violate`) must make the
//! suite report: the requirement the switch breaks, the step that must catch
//! it, and every requirement allowed to fail with it (those tagged on the same
//! scenarios). The self-test in `tests/conformance.rs` runs the whole suite
//! once per switch and checks every line of this table: the rule failed, every
//! failed scenario failed at the expected step, and every requirement outside
//! `fails` still passed.

use supergroup_server::Violation;

/// What one switch must make the suite report.
#[derive(Debug, Clone, Copy)]
pub struct Expectation {
    pub violation: Violation,
    /// The requirement the switch breaks.
    pub rule: &'static str,
    /// The step texts (without keyword, as written in the feature files) at
    /// which the failing scenarios must fail: the first is the rule's own
    /// check, any other a check of the same rule elsewhere.
    pub steps: &'static [&'static str],
    /// Every requirement allowed to fail: `rule` and the requirements tagged
    /// on the same scenarios. All others must pass.
    pub fails: &'static [&'static str],
}

const fn e(
    violation: Violation,
    rule: &'static str,
    steps: &'static [&'static str],
    fails: &'static [&'static str],
) -> Expectation {
    Expectation { violation, rule, steps, fails }
}

/// The expectation of `v`.
pub fn expectation(v: Violation) -> Expectation {
    use Violation::*;
    match v {
        GuestNotified => e(v, "SG-GUEST-1", &[r#"dave is not notified about "lobby""#], &["SG-GUEST-1"]),
        GuestCountsTowardParticipantLimit => e(v, "SG-GUEST-2", &["the request succeeds with {}"], &["SG-GUEST-2"]),
        GuestTypingShown => e(v, "SG-GUEST-3", &["alice has not seen dave typing"], &["SG-GUEST-3", "SG-TYPING-3"]),
        GuestInUserConversations => e(
            v,
            "SG-GUEST-5",
            &["dave's conversations are nobody", r#"dave's conversations are "team""#],
            &["SG-GUEST-5", "SG-GUEST-4", "SG-LIST-1"],
        ),
        GuestInboxAllowed => e(
            v,
            "SG-GUEST-6",
            &[
                "dave is refused with guest_inbox_not_allowed",
                r#"dave receives a frame {"type":"error","ref":"o","code":"guest_inbox_not_allowed"}"#,
            ],
            &["SG-GUEST-6", "SG-RT-15"],
        ),
        GuestInMemberList => e(
            v,
            "SG-GUEST-7",
            &[
                "erin's opened reply lists alice and bob",
                r#"alice was never told that dave joined or left "lobby""#,
                r#"bob was never told that dave joined or left "team""#,
                r#"alice was told only once that bob joined "lobby""#,
            ],
            &["SG-GUEST-7", "SG-RT-13", "SG-RT-16", "SG-PART-10", "SG-PART-11"],
        ),
        GuestLimitOff => e(
            v,
            "SG-GLIMIT-1",
            &["zed is refused with guest_limit_reached"],
            &["SG-GLIMIT-1", "SG-GLIMIT-2", "SG-GLIMIT-3", "SG-GLIMIT-4", "SG-GLIMIT-5", "SG-GUEST-15", "SG-APP-2"],
        ),
        ParticipantLimitOff => e(
            v,
            "SG-PART-6",
            &["the request fails with 409 participant_limit_reached"],
            &["SG-PART-6", "SG-PART-7", "SG-PART-8", "SG-PART-9", "SG-GUEST-2", "SG-APP-2"],
        ),
        GuestRestSender => e(
            v,
            "SG-GUEST-14",
            &["the request fails with 400 sender_not_participant"],
            &["SG-GUEST-14", "SG-MSG-7", "SG-MSG-6", "SG-REST-8"],
        ),
        GuestJoinedAnnounced => e(
            v,
            "SG-GUEST-7",
            &[
                r#"alice was never told that dave joined or left "lobby""#,
                r#"bob was never told that dave joined or left "team""#,
                r#"alice was told only once that bob joined "lobby""#,
            ],
            &["SG-GUEST-7", "SG-RT-16", "SG-PART-10", "SG-PART-11"],
        ),
        GuestSlotKeptOnDisconnect => e(
            v,
            "SG-GLIMIT-3",
            &[r#"yan is in "stage" as a guest"#],
            &["SG-GLIMIT-1", "SG-GLIMIT-2", "SG-GLIMIT-3", "SG-APP-2"],
        ),
        GuestSlotPerConnection => {
            e(v, "SG-GLIMIT-4", &[r#"dave is in "stage" as a guest on both connections"#], &["SG-GLIMIT-4"])
        }
        GuestLimitOffByOne => e(
            v,
            "SG-GLIMIT-1",
            &["zed is refused with guest_limit_reached"],
            &["SG-GLIMIT-1", "SG-GLIMIT-2", "SG-GLIMIT-3", "SG-GLIMIT-4", "SG-GLIMIT-5", "SG-GUEST-15", "SG-APP-2"],
        ),
        GuestReadAnswered => e(v, "SG-GUEST-4", &["dave got no reply to his read frames"], &["SG-GUEST-4"]),
        GuestMessagesRemoved => e(
            v,
            "SG-GUEST-8",
            &[
                r#"the history of "lobby" has "remember me" from dave by realtime"#,
                r#"the history of "lobby" has "gone but not forgotten" from dave by realtime"#,
            ],
            &["SG-GUEST-8", "SG-RT-3"],
        ),
        GuestSeesNoTyping => e(
            v,
            "SG-TYPING-1",
            &[
                r#"dave sees alice typing in "lobby""#,
                r#"erin sees bob typing in "lobby""#,
                r#"dave sees carol typing in "lobby""#,
            ],
            &["SG-TYPING-1", "SG-TYPING-3", "SG-TYPING-4", "SG-GUEST-3"],
        ),
        PromotedGuestTypingHidden => {
            e(v, "SG-TYPING-1", &[r#"alice sees dave typing in "lobby""#], &["SG-TYPING-1", "SG-GUEST-17"])
        }
        ParticipantOpenedAsGuest => e(
            v,
            "SG-GUEST-15",
            &[
                r#"alice is in "lobby" as a participant"#,
                r#"alice is in "closed" as a participant"#,
                r#"bob is in "lobby" as a participant"#,
                r#"host is in "stage" as a participant"#,
                r#"dave is in "lobby" as a participant"#,
            ],
            &["SG-GUEST-15", "SG-GLIMIT-5", "SG-GUEST-17"],
        ),
        PromotedGuestRoleSwitched => e(v, "SG-GUEST-17", &[r#"dave is in "lobby" as a guest"#], &["SG-GUEST-17"]),
        GuestAccessOffEvictsGuests => e(v, "SG-GUEST-12", &[r#"dave sends "still here" in "lobby""#], &["SG-GUEST-12"]),
        GuestOpenWithoutAsGuest => e(
            v,
            "SG-GUEST-10",
            &[
                "dave is refused with not_a_participant",
                r#"dave receives a frame {"type":"error","ref":"o1","code":"not_a_participant"}"#,
                r#"dave receives a frame {"type":"error","ref":"o","code":"not_a_participant"}"#,
            ],
            &["SG-GUEST-10", "SG-GUEST-9", "SG-RT-14", "SG-RT-15"],
        ),
        GuestLeavesTrace => e(
            v,
            "SG-GUEST-9",
            &["dave is refused with not_a_participant", r#"dave is in "stage" as a guest on both connections"#],
            &["SG-GUEST-9", "SG-GLIMIT-4"],
        ),
        RemovedParticipantRefusedAsGuest => {
            e(v, "SG-GUEST-18", &[r#"bob is in "lobby" as a guest"#], &["SG-GUEST-18", "SG-PART-11", "SG-PART-12"])
        }
        NotifyOpenNotRechecked => e(v, "SG-NOTIFY-4", &[r#"bob is not notified about "team""#], &["SG-NOTIFY-4"]),
        NotifyPresenceCheckedLate => e(v, "SG-NOTIFY-3", &[r#"bob is not notified about "team""#], &["SG-NOTIFY-3"]),
        NotifyGroupedPerRequest => e(
            v,
            "SG-NOTIFY-5",
            &[r#"bob gets one notification for "team" listing "first", "second""#],
            &["SG-NOTIFY-5"],
        ),
        // The slow-consumer scenario sees the drop through the dropped
        // participant's notification, whose timing this switch breaks: it may
        // fail there too (it did once in CI, 1 run in 3), or, when the late
        // notification still comes in time, slowpoke starts reading more than
        // the server's 10 s write timeout after its drop, so the close frame
        // never reached it (CI, stop 13).
        NotifyDelayFourfold => e(
            v,
            "SG-NOTIFY-5",
            &[
                r#"bob is notified of "on time" in "team" when the window closes"#,
                r#"alice floods "flood" until slowpoke is dropped"#,
                r#"slowpoke is dropped with close code 1008 and reason "slow consumer""#,
            ],
            &["SG-NOTIFY-5", "SG-APP-2", "SG-RT-25", "SG-RT-26"],
        ),
        ParticipantJoinedOnUpdate => {
            e(v, "SG-PART-10", &[r#"alice was told only once that bob joined "lobby""#], &["SG-PART-10"])
        }
        RemovedMemberNotTold => {
            e(v, "SG-PART-11", &[r#"bob is told that bob left "lobby""#], &["SG-PART-11", "SG-PART-12", "SG-GUEST-18"])
        }
        RemovedMemberKeepsOpen => e(
            v,
            "SG-PART-12",
            &[r#"bob's connection is told "lobby" was closed"#],
            &["SG-PART-11", "SG-PART-12", "SG-GUEST-18"],
        ),
        ConversationPutPartial => e(v, "SG-PART-8", &[r#"the subject of "club" is not "renamed""#], &["SG-PART-8"]),
        ParticipantLimitOffByOne => e(
            v,
            "SG-PART-7",
            &[
                "the request succeeds with {}",
                "a conversation \"club\" with the plan's participant limit of participants",
            ],
            &["SG-PART-2", "SG-PART-6", "SG-PART-7", "SG-PART-9", "SG-GUEST-2", "SG-APP-2"],
        ),
        // The server reports and enforces the wrong limit alike, so only the
        // preset check can tell (before it was sharpened, it also passed any
        // plan name other than basic and growth).
        PlanPresetWrong => e(
            v,
            "SG-APP-3",
            &["a basic plan has 100 participants and 300 guests, a growth plan 300 and 1250"],
            &["SG-APP-3"],
        ),
        SenderNotified => e(v, "SG-NOTIFY-1", &[r#"alice is not notified about "team""#], &["SG-NOTIFY-1"]),
        MentionsOnlyIgnored => e(v, "SG-NOTIFY-2", &[r#"erin is not notified about "team""#], &["SG-NOTIFY-2"]),
        SystemMessageNotifies => e(v, "SG-NOTIFY-6", &[r#"bob is not notified about "quiet""#], &["SG-NOTIFY-6"]),
        GuestMessageNotifiesNobody => e(
            v,
            "SG-NOTIFY-7",
            &[r#"alice is notified of "question from the audience" in "lobby""#],
            &["SG-NOTIFY-7", "SG-GUEST-1"],
        ),
        // Every scenario that fills a conversation with guests needs exactly
        // guestLimit of them to fit, so each fails at the filling step.
        GuestLimitOneShort => e(
            v,
            "SG-GLIMIT-2",
            &[
                r#"the plan's guest limit of guests open "stage" as guests"#,
                r#"dave is in "stage" as a guest on both connections"#,
            ],
            &[
                "SG-GLIMIT-1",
                "SG-GLIMIT-2",
                "SG-GLIMIT-3",
                "SG-GLIMIT-4",
                "SG-GLIMIT-5",
                "SG-GLIMIT-6",
                "SG-GUEST-11",
                "SG-GUEST-15",
                "SG-RT-15",
                "SG-APP-2",
            ],
        ),
        GuestLimitRefusesParticipants => {
            e(v, "SG-GLIMIT-5", &[r#"host is in "stage" as a participant"#], &["SG-GLIMIT-5", "SG-GUEST-15"])
        }
        GuestLimitPerApp => e(v, "SG-GLIMIT-6", &[r#"zed is in "side" as a guest"#], &["SG-GLIMIT-6"]),
        GuestAccessIgnored => e(
            v,
            "SG-GUEST-11",
            &[
                "dave is refused with guest_access_disabled",
                "erin is refused with guest_access_disabled",
                "zed is refused with guest_access_disabled",
                r#"dave receives a frame {"type":"error","ref":"o","code":"guest_access_disabled"}"#,
            ],
            &["SG-GUEST-11", "SG-GUEST-12", "SG-RT-15"],
        ),
        // The wrong role in a reply also fails the scenarios where a removed
        // member comes back as a guest on the connection it still holds.
        RoleOfFirstOpen => e(
            v,
            "SG-GUEST-16",
            &[r#"dave is in "lobby" as a guest"#, r#"bob is in "lobby" as a guest"#],
            &["SG-GUEST-16", "SG-PART-11", "SG-PART-12", "SG-GUEST-18"],
        ),
        TypingEchoed => e(v, "SG-TYPING-2", &["alice has not seen alice typing"], &["SG-TYPING-2"]),
        TypingThrottleAnswered => e(v, "SG-TYPING-3", &["alice got no reply to typing"], &["SG-TYPING-3"]),
        ReadOnlyTypingDropped => e(v, "SG-TYPING-4", &[r#"alice sees carol typing in "lobby""#], &["SG-TYPING-4"]),
        ParticipantPlaceNotFreed => e(v, "SG-PART-9", &["the request succeeds with {}"], &["SG-PART-9"]),
        NotificationMessagesShort => e(
            v,
            "SG-NOTIFY-8",
            &[r#"bob's notification of "agenda attached" in "team" has the full data shape"#],
            &["SG-NOTIFY-8"],
        ),
        UnregisteredEventRetried => {
            e(v, "SG-HOOK-4", &[r#"no message.sent webhook came for the message "into the void""#], &["SG-HOOK-4"])
        }
    }
}

/// Whether a recorded failing step (`Then dave is ...`, keyword included)
/// is one of the expected step texts.
pub fn is_step(recorded: &str, expected: &[&str]) -> bool {
    let text = recorded.split_once(' ').map_or(recorded, |(_, rest)| rest);
    expected.contains(&text.trim())
}
