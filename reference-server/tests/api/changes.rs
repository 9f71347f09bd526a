//! Writes other than messages through the group-commit writer (issue 7):
//! concurrent participant PUTs share commits and the participant limit stays
//! exact, and a refused change inside a shared commit fails alone, leaving
//! nothing of itself stored and everything else of the batch in place.

use crate::helpers::*;
use futures_util::future::join_all;
use std::collections::BTreeSet;
use supergroup_protocol::rest::{Access, ConversationUpsert, ParticipantUpsert, UserUpsert};
use supergroup_server::Config;

/// Group commits so far and the jobs they stored, from `GET /metrics`
/// (`supergroup_commit_batch_jobs`: one observation per commit, its job count).
async fn commits(base: &str) -> (f64, f64) {
    let text = reqwest::get(format!("{base}/metrics")).await.expect("GET /metrics").text().await.unwrap();
    let value = |series: &str| {
        text.lines()
            .find_map(|l| l.strip_prefix(series)?.strip_prefix(' ')?.parse::<f64>().ok())
            .unwrap_or_else(|| panic!("{series} missing from /metrics"))
    };
    (value("supergroup_commit_batch_jobs_count"), value("supergroup_commit_batch_jobs_sum"))
}

/// A server on a database file (every commit a real fsync, so concurrent
/// requests pile up behind it) with room for `participants` per conversation.
async fn file_app(dir: &tempfile::TempDir, participants: u32) -> TestApp {
    let mut config: Config = config_with_limits(Some(participants), None);
    config.db = dir.path().join("changes.db").to_string_lossy().into_owned();
    spawn_app_with(config).await
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn concurrent_participant_puts_share_commits_and_the_limit_stays_exact() {
    // Rounds until one showed a shared commit; each round checks the limit.
    const ROUNDS: usize = 5;
    const LIMIT: usize = 10;
    const PUTS: usize = 20;
    let dir = tempfile::tempdir().expect("temp dir");
    let app = file_app(&dir, LIMIT as u32).await;
    let base = app.server.base_url();
    let mut shared = Vec::new();
    for round in 0..ROUNDS {
        let conv = format!("c{round}");
        app.conversation(&conv, &[]).await;
        let before = commits(&base).await;
        let puts = (0..PUTS).map(|i| {
            let (rest, conv) = (app.rest.clone(), conv.clone());
            async move { rest.put_participant(&conv, &format!("u{i}"), &ParticipantUpsert::default()).await }
        });
        let results = join_all(puts).await;
        let after = commits(&base).await;
        let mut admitted = BTreeSet::new();
        for (i, r) in results.into_iter().enumerate() {
            match r {
                Ok(()) => {
                    admitted.insert(format!("u{i}"));
                }
                refused => expect_api_error(refused, 409, "participant_limit_reached"),
            }
        }
        assert_eq!(admitted.len(), LIMIT, "round {round}: exactly the room there was");
        let stored: BTreeSet<String> =
            app.rest.get_conversation(&conv).await.expect("conversation GET").participants.into_keys().collect();
        assert_eq!(stored, admitted, "round {round}: stored participants are the admitted ones");
        let (commits_made, jobs) = (after.0 - before.0, after.1 - before.1);
        assert_eq!(jobs, PUTS as f64, "round {round}: every PUT was one writer job");
        shared.push(commits_made);
        if commits_made < PUTS as f64 {
            eprintln!("round {round}: {PUTS} PUTs in {commits_made} commits");
            return;
        }
    }
    panic!("{PUTS} concurrent PUTs never shared a commit in {ROUNDS} rounds (commits per round: {shared:?})");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_refused_change_inside_a_shared_commit_fails_alone_and_stores_nothing_of_itself() {
    const ROUNDS: usize = 4;
    let dir = tempfile::tempdir().expect("temp dir");
    let app = file_app(&dir, 3).await;
    app.conversation("c", &["alice"]).await;
    for round in 0..ROUNDS {
        let rest = &app.rest;
        let listed = |n: usize| ConversationUpsert {
            participants: Some((0..n).map(|i| format!("p{round}-{i}")).collect()),
            ..Default::default()
        };
        let (full, over, nowhere) = (format!("full-{round}"), format!("over-{round}"), format!("nowhere-{round}"));
        let (fits, too_many) = (listed(3), listed(4));
        let (stranger, user_id) = (format!("stranger-{round}"), format!("v{round}"));
        let named = UserUpsert { name: Some(format!("round {round}")), ..Default::default() };
        let message = [user_message("alice", &format!("m{round}"))];
        let (defaults, patch) =
            (ParticipantUpsert::default(), ParticipantUpsert { access: Some(Access::ReadWrite), notify: None });
        // Valid changes and refused ones, all at once.
        let (ok_conv, over_limit, missing_conv, not_member, user, message, patched) = tokio::join!(
            rest.put_conversation(&full, &fits),
            rest.put_conversation(&over, &too_many),
            rest.put_participant(&nowhere, "bob", &defaults),
            rest.delete_participant("c", &stranger),
            rest.put_user(&user_id, &named),
            rest.post_messages("c", &message),
            rest.patch_participant("c", "alice", &patch),
        );
        ok_conv.expect("a conversation with room for its participants is stored");
        expect_api_error(over_limit, 409, "participant_limit_reached");
        expect_api_error(missing_conv, 404, "conversation_not_found");
        expect_api_error(not_member, 404, "participant_not_found");
        user.expect("the user PUT is stored");
        message.expect("the message is stored");
        patched.expect("the PATCH is stored");
        // The refused conversation PUT created nothing: not the conversation, not its users.
        expect_api_error(rest.get_conversation(&over).await, 404, "conversation_not_found");
        expect_api_error(rest.get_user(&format!("p{round}-3")).await, 404, "user_not_found");
        expect_api_error(rest.get_conversation(&nowhere).await, 404, "conversation_not_found");
        let stored = rest.get_conversation(&full).await.expect("the valid conversation");
        assert_eq!(stored.participants.len(), 3, "round {round}");
        let user = rest.get_user(&user_id).await.expect("the user");
        assert_eq!(user.name.as_deref(), Some(format!("round {round}").as_str()));
        assert!(app.history("c").await.iter().any(|m| m.text == format!("m{round}")), "round {round}");
    }
}
