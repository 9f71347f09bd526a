//! The goose side of a run: three scenarios whose users goose starts at the
//! `--ramp` rate and stops at the end.
//!
//! - `guests`: `join` (on start: connect, `open` as guest) / `receive` (waits for
//!   the read task to report a close, or for the end of the drain) /
//!   `leave` (on stop: close cleanly).
//! - `talkers`: `join` (open as participant) / `send` (repeated, at most one
//!   second each: sends what the schedule says is due) / `leave`.
//! - `readers`: REST users that page a conversation's history and a talker's
//!   conversation list, once a second each, through goose's own HTTP client.
//!
//! Realtime operations are handed to goose with
//! `record_custom_request_duration` (method `WS`: `connect`, `open_as_guest`,
//! `open_as_participant`, `send_to_ack`, `guest_connection` when the server
//! closes a guest), so goose's report shows them next to the REST requests.
//! Deliveries stay out of goose (one per guest per message would swamp its
//! metrics channel and it keeps whole milliseconds): they go to the recorder.
//! Every transaction is bounded in time because goose stops a user only
//! between transactions.

use crate::context::Ctx;
use crate::guest::{self, GuestSession, JoinError};
use crate::talker::{TRANSACTION_BOUND, TalkerSession};
use goose::prelude::*;
use std::sync::Arc;
use std::sync::atomic::Ordering::Relaxed;
use std::time::{Duration, Instant};

/// goose's method label for realtime operations.
const WS: &str = "WS";

/// The scenarios of a run, for the users it has. goose's serial scheduler
/// lists users scenario by scenario and launches them from the end of the
/// list, so talkers (registered last) connect first and readers next, ahead
/// of the guests' connect queue.
/// In a load worker, the users are this worker's share ([`crate::plan::Share`]); a
/// scenario with none is left out.
pub fn all(ctx: &Ctx) -> Result<Vec<Scenario>, GooseError> {
    let plan = &ctx.plan;
    let mut scenarios = Vec::new();
    if plan.local_guests() > 0 {
        scenarios.push(guests(ctx, plan.local_guests())?);
    }
    if plan.local_readers() > 0 {
        scenarios.push(readers(ctx, plan.local_readers())?);
    }
    if plan.local_talkers() > 0 {
        scenarios.push(talkers(ctx, plan.local_talkers())?);
    }
    Ok(scenarios)
}

fn guests(ctx: &Ctx, weight: usize) -> Result<Scenario, GooseError> {
    let c = ctx.clone();
    let join: TransactionFunction = Arc::new(move |user| Box::pin(guest_join(c.clone(), user)));
    let c = ctx.clone();
    let receive: TransactionFunction = Arc::new(move |user| Box::pin(guest_receive(c.clone(), user)));
    let leave: TransactionFunction = Arc::new(move |user| Box::pin(guest_leave(user)));
    Ok(Scenario::new("guests")
        .set_weight(weight)?
        .register_transaction(Transaction::new(join).set_name("join").set_on_start())
        .register_transaction(Transaction::new(receive).set_name("receive"))
        .register_transaction(Transaction::new(leave).set_name("leave").set_on_stop()))
}

fn talkers(ctx: &Ctx, weight: usize) -> Result<Scenario, GooseError> {
    let c = ctx.clone();
    let join: TransactionFunction = Arc::new(move |user| Box::pin(talker_join(c.clone(), user)));
    let c = ctx.clone();
    let send: TransactionFunction = Arc::new(move |user| Box::pin(talker_send(c.clone(), user)));
    let leave: TransactionFunction = Arc::new(move |user| Box::pin(talker_leave(user)));
    Ok(Scenario::new("talkers")
        .set_weight(weight)?
        .register_transaction(Transaction::new(join).set_name("join").set_on_start())
        .register_transaction(Transaction::new(send).set_name("send"))
        .register_transaction(Transaction::new(leave).set_name("leave").set_on_stop()))
}

fn readers(ctx: &Ctx, weight: usize) -> Result<Scenario, GooseError> {
    let c = ctx.clone();
    let start: TransactionFunction = Arc::new(move |user| Box::pin(reader_start(c.clone(), user)));
    let c = ctx.clone();
    let history: TransactionFunction = Arc::new(move |user| Box::pin(reader_history(c.clone(), user)));
    let c = ctx.clone();
    let inbox: TransactionFunction = Arc::new(move |user| Box::pin(reader_inbox(c.clone(), user)));
    Scenario::new("readers").set_weight(weight)?.set_wait_time(Duration::from_secs(1), Duration::from_secs(1)).map(
        |s| {
            s.register_transaction(Transaction::new(start).set_name("start").set_on_start())
                .register_transaction(Transaction::new(history).set_name("history"))
                .register_transaction(Transaction::new(inbox).set_name("inbox"))
        },
    )
}

/// Records a failed join with goose and the recorder.
async fn join_failed(
    ctx: &Ctx,
    user: &mut GooseUser,
    e: &JoinError,
    took: Duration,
    open_name: &str,
) -> TransactionResult {
    ctx.recorder.error(e.key());
    let name = match e {
        JoinError::Connect(_) => "connect",
        JoinError::Refused(_) | JoinError::Open(_) => open_name,
    };
    user.record_custom_request_duration(WS, name, took, false, None, Some(&e.to_string())).await
}

async fn guest_join(ctx: Ctx, user: &mut GooseUser) -> TransactionResult {
    let g = ctx.take_guest_number();
    let plan = &ctx.plan;
    let conversation = plan.conversation_id(plan.guest_conversation(g));
    let started = Instant::now();
    match guest::join(&ctx, plan.guest_node(g), &plan.guest_id(g), &conversation, true).await {
        Ok(joined) => {
            let rec = &ctx.recorder;
            rec.connect_time(joined.connect);
            rec.open_time(joined.open);
            let c = rec.counters();
            c.guests_connected.fetch_add(1, Relaxed);
            c.guests_open.fetch_add(1, Relaxed);
            rec.guest_open_changed(plan.guest_conversation(g), true);
            c.guests_opened.fetch_add(1, Relaxed);
            let (connect, open) = (joined.connect, joined.open);
            user.set_session_data(guest::start_receiving(&ctx, g, joined));
            user.record_custom_request_duration(WS, "connect", connect, true, None, None).await?;
            user.record_custom_request_duration(WS, "open_as_guest", open, true, None, None).await
        }
        Err(e) => {
            let c = ctx.recorder.counters();
            match e {
                JoinError::Connect(_) => c.guest_connect_failed.fetch_add(1, Relaxed),
                _ => c.guest_open_failed.fetch_add(1, Relaxed),
            };
            join_failed(&ctx, user, &e, started.elapsed(), "open_as_guest").await
        }
    }
}

/// Waits until the server closes the guest's connection or the drain is over (the
/// conductor cancels `drain_over` just before goose's killswitch), bounded by the run's
/// length: one wake-up per guest per run instead of one a second.
async fn guest_receive(ctx: Ctx, user: &mut GooseUser) -> TransactionResult {
    let bound = Duration::from_secs(ctx.plan.schedule.hold_secs());
    if ctx.drain_over.is_cancelled() {
        // goose calls `receive` again at once: a transaction that never waits would hog a
        // runtime thread and keep goose from seeing its killswitch.
        tokio::time::sleep(TRANSACTION_BOUND).await;
        return Ok(());
    }
    let Some(session) = user.get_session_data::<Arc<GuestSession>>().cloned() else {
        // This guest never joined: nothing to receive, nothing to retry.
        let _ = tokio::time::timeout(bound, ctx.drain_over.cancelled()).await;
        return Ok(());
    };
    let _ = tokio::time::timeout(bound, async {
        tokio::select! {
            _ = session.closed.notified() => {}
            _ = ctx.drain_over.cancelled() => {}
        }
    })
    .await;
    if let Some((code, reason, lifetime)) = session.take_close() {
        user.record_custom_request_duration(WS, "guest_connection", lifetime, false, code, Some(&reason)).await?;
    }
    Ok(())
}

async fn guest_leave(user: &mut GooseUser) -> TransactionResult {
    if let Some(session) = user.get_session_data::<Arc<GuestSession>>().cloned() {
        session.stop().await;
    }
    Ok(())
}

async fn talker_join(ctx: Ctx, user: &mut GooseUser) -> TransactionResult {
    let k = ctx.take_talker_number();
    let plan = &ctx.plan;
    let conversation = plan.conversation_id(plan.talker_conversation(k));
    let started = Instant::now();
    match guest::join(&ctx, plan.talker_node(k), &plan.talker_id(k), &conversation, false).await {
        Ok(joined) => {
            ctx.recorder.counters().talkers_open.fetch_add(1, Relaxed);
            ctx.recorder.counters().talkers_joined.fetch_add(1, Relaxed);
            let (connect, open) = (joined.connect, joined.open);
            user.set_session_data(TalkerSession::start(&ctx, k, joined));
            user.record_custom_request_duration(WS, "connect", connect, true, None, None).await?;
            user.record_custom_request_duration(WS, "open_as_participant", open, true, None, None).await
        }
        Err(e) => {
            ctx.recorder.counters().talkers_failed.fetch_add(1, Relaxed);
            join_failed(&ctx, user, &e, started.elapsed(), "open_as_participant").await
        }
    }
}

async fn talker_send(ctx: Ctx, user: &mut GooseUser) -> TransactionResult {
    let Some(session) = user.get_session_data::<Arc<TalkerSession>>().cloned() else {
        tokio::time::sleep(TRANSACTION_BOUND).await;
        return Ok(());
    };
    let started = Instant::now();
    let result = session.send_due(&ctx).await;
    for latency in session.take_acks() {
        user.record_custom_request_duration(WS, "send_to_ack", latency, true, None, None).await?;
    }
    if let Err(e) = result {
        user.record_custom_request_duration(WS, "send", started.elapsed(), false, None, Some(&e)).await?;
    }
    Ok(())
}

async fn talker_leave(user: &mut GooseUser) -> TransactionResult {
    if let Some(session) = user.get_session_data::<Arc<TalkerSession>>().cloned() {
        session.stop().await;
    }
    Ok(())
}

/// A reader's number, kept in its session.
#[derive(Clone)]
struct ReaderNo(usize);

async fn reader_start(ctx: Ctx, user: &mut GooseUser) -> TransactionResult {
    user.set_session_data(ReaderNo(ctx.take_reader_number()));
    // The run's HTTP client, so an https target is trusted as --ca-cert says.
    user.client = ctx.rest.http().clone();
    Ok(())
}

/// A GET with the app secret, timed and recorded by goose under `name`.
async fn rest_get(ctx: &Ctx, user: &mut GooseUser, path: &str, name: &str) -> TransactionResult {
    let builder = user.get_request_builder(&GooseMethod::Get, &ctx.rest.url(path))?.bearer_auth(ctx.rest.secret());
    let request = GooseRequest::builder().set_request_builder(builder).name(name).build();
    let _ = user.request(request).await?;
    ctx.recorder.counters().rest_requests.fetch_add(1, Relaxed);
    Ok(())
}

async fn reader_history(ctx: Ctx, user: &mut GooseUser) -> TransactionResult {
    let r = user.get_session_data::<ReaderNo>().map(|n| n.0).unwrap_or(0);
    let cid = ctx.plan.conversation_id(r % ctx.plan.workload.conversations);
    rest_get(&ctx, user, &format!("/conversations/{cid}/messages?limit=30"), "conversation messages").await
}

async fn reader_inbox(ctx: Ctx, user: &mut GooseUser) -> TransactionResult {
    let r = user.get_session_data::<ReaderNo>().map(|n| n.0).unwrap_or(0);
    let uid = ctx.plan.talker_id(r % ctx.plan.workload.talkers);
    rest_get(&ctx, user, &format!("/users/{uid}/conversations?limit=30"), "user conversations").await
}
