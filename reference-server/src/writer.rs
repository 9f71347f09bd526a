//! Group commit ("smart batching"): one writer task stores every message,
//! every user created on connect and every other write of the API (user,
//! conversation, participant and webhook changes, realtime `read`: see
//! [`crate::changes`]). It drains its bounded queue with
//! `recv_many`, stores everything it took in ONE transaction (one fsync),
//! hands the batch to the fan-out task and answers every send; the fan-out
//! task gives the stored messages to the hub in one call (one wake per
//! connection, see [`crate::hub`]; one call per run of messages between two
//! changes, each change answered after its announcements). No
//! timer and no knob: when the server is idle a batch is one job; under load
//! batches grow by themselves while the previous commit's fsync runs.
//!
//! Isolation: each job runs inside its own SAVEPOINT of the big transaction.
//! A job that fails (a refused REST batch item, a missing conversation) is
//! rolled back to its savepoint and answered with its own error; the other
//! jobs of the batch still commit. A REST request is one job, so it stays all
//! or nothing. If the COMMIT itself fails, every job of the batch gets
//! `internal` and nothing of the batch was stored.
//!
//! Ordering: one writer, one batch at a time; each committed batch goes to
//! the fan-out task (a FIFO of [`FANOUT_QUEUE`] batches), which publishes the
//! batches to the hub one after the other, so delivery order is commit order
//! in every conversation. The writer runs on the talkers' runtime
//! ([`crate::talkers`]) and the fan-out task on the main one, beside the
//! connections it wakes: a hub pass (10,000 wakes) holds up neither the next
//! commit nor the acks. Within a batch, too: the messages between two changes
//! go out in one hub pass, and a change's announcements (`participant.joined`,
//! `participant.left`, `closed`) go out between the passes of the messages
//! committed before and after it. A send committed after a membership change
//! of the same batch sees the new membership. A job waits behind at most the
//! batch being committed when it arrived (one group-commit round), whatever
//! conversations that batch is about.
//!
//! Durability: `synchronous=FULL` (see [`crate::store`]); a job is answered
//! only after its COMMIT returned, so an ack means the data survives kill -9.

use crate::changes::{Change, Effect};
use crate::error::ApiError;
use crate::hub::RoomKey;
use crate::messaging::{self, Draft, Stored, Via};
use crate::state::{App, AppState};
use crate::store;
use std::sync::Arc;
use supergroup_protocol::rest::Message;
use tokio::sync::{mpsc, oneshot};
use tokio_util::sync::CancellationToken;

/// Jobs waiting for the writer, at most. Policy when full: the submitter
/// waits for room (backpressure: a REST request waits, a realtime connection
/// stops reading its socket); nothing is refused or dropped. 4,096 jobs of at
/// most 10 messages of at most 64 KiB, or of one change whose body is at most
/// 1 MiB (the REST body limit; the waiting request held it anyway), bound the
/// queue's payload.
pub const QUEUE: usize = 4096;

/// Jobs stored by one group commit, at most: bounds one transaction (and one
/// hub pass) to 512 jobs, 5,120 messages.
pub const MAX_JOBS: usize = 512;

/// Committed batches waiting for the fan-out task, at most. Policy when full:
/// the writer waits for room before its next commit (backpressure: the sends
/// queue up in [`QUEUE`], then at their connections); nothing is dropped.
/// 16 batches of at most [`MAX_JOBS`] jobs.
pub const FANOUT_QUEUE: usize = 16;

/// What the submitter gets back once its job is committed (or refused).
pub type Answer<T> = oneshot::Receiver<Result<T, ApiError>>;

/// One unit of work, with the channel its answer goes to.
enum Job {
    /// A REST batch or one realtime `send`, for one conversation.
    Send {
        app: Arc<App>,
        conv: String,
        drafts: Vec<Draft>,
        via: Via,
        done: oneshot::Sender<Result<Vec<Message>, ApiError>>,
    },
    /// Create `user` if unknown (a realtime connect).
    User { app: String, user: String, name: Option<String>, done: oneshot::Sender<Result<(), ApiError>> },
    /// Any other write of `app`, answered after its commit and its announcements.
    Change { app: Arc<App>, change: Change, done: oneshot::Sender<Result<(), ApiError>> },
}

/// The handle: queue jobs, stop the task.
#[derive(Clone)]
pub struct Writer {
    tx: mpsc::Sender<Job>,
    /// Asks the task to store what is queued and stop.
    stop: CancellationToken,
    /// Cancelled by the task when it has stopped.
    stopped: CancellationToken,
}

/// The receiving end, until [`start`] hands it to the task.
pub struct Queue(mpsc::Receiver<Job>);

impl Writer {
    /// A writer and its queue; [`start`] runs it once the state exists.
    pub fn new() -> (Writer, Queue) {
        let (tx, rx) = mpsc::channel(QUEUE);
        (Writer { tx, stop: CancellationToken::new(), stopped: CancellationToken::new() }, Queue(rx))
    }

    async fn submit(&self, job: Job) -> Result<(), ApiError> {
        self.tx.send(job).await.map_err(|_| ApiError::internal("the writer has stopped"))
    }

    /// Queues messages for `conv`; the answer comes after their commit (or refusal).
    pub async fn send(
        &self,
        app: &Arc<App>,
        conv: &str,
        drafts: Vec<Draft>,
        via: Via,
    ) -> Result<Answer<Vec<Message>>, ApiError> {
        let (done, answer) = oneshot::channel();
        self.submit(Job::Send { app: app.clone(), conv: conv.into(), drafts, via, done }).await?;
        Ok(answer)
    }

    /// Creates `user` in `app` if unknown; returns after the commit.
    pub async fn ensure_user(&self, app: &str, user: &str, name: Option<String>) -> Result<(), ApiError> {
        let (done, answer) = oneshot::channel();
        self.submit(Job::User { app: app.into(), user: user.into(), name, done }).await?;
        wait(answer).await
    }

    /// Applies `change` to `app`; returns after its commit and its announcements.
    pub async fn change(&self, app: &Arc<App>, change: Change) -> Result<(), ApiError> {
        let (done, answer) = oneshot::channel();
        self.submit(Job::Change { app: app.clone(), change, done }).await?;
        wait(answer).await
    }

    /// Stores everything already queued, then stops the task; resolves when it has.
    pub async fn stop(&self) {
        self.stop.cancel();
        self.stopped.cancelled().await;
    }
}

/// Waits for a job's answer.
pub async fn wait<T>(answer: Answer<T>) -> Result<T, ApiError> {
    answer.await.map_err(|_| ApiError::internal("the writer dropped a job"))?
}

/// Runs the writer task on the talkers' runtime ([`crate::talkers`]): its
/// wake-up after a commit never queues behind a fan-out round's connections;
/// and the fan-out task on the current (main) runtime. `stopped` is cancelled
/// when the fan-out task has published the writer's last batch.
pub fn start(state: AppState, Queue(mut rx): Queue) {
    let (fanout, mut batches) = mpsc::channel::<Vec<Committed>>(FANOUT_QUEUE);
    let st = state.clone();
    tokio::spawn(async move {
        let _stopped = st.writer.stopped.clone().drop_guard();
        // Ends when the writer task has ended (its sender dropped) and every batch is out.
        while let Some(committed) = batches.recv().await {
            publish(&st, committed);
        }
    });
    let runtime = state.talkers.handle().clone();
    runtime.spawn(async move {
        let stop = state.writer.stop.clone();
        let mut jobs = Vec::with_capacity(MAX_JOBS);
        loop {
            let n = tokio::select! {
                biased;
                n = rx.recv_many(&mut jobs, MAX_JOBS) => n,
                _ = stop.cancelled() => {
                    // No new jobs; the ones already queued are still stored.
                    rx.close();
                    rx.recv_many(&mut jobs, MAX_JOBS).await
                }
            };
            if n == 0 {
                break;
            }
            if !group_commit(&state, std::mem::take(&mut jobs), &fanout).await {
                break;
            }
        }
    });
}

/// What one job came to, inside the transaction.
enum Outcome {
    Send(Result<Stored, ApiError>),
    User(Result<(), ApiError>),
    Change(Arc<App>, Result<Effect, ApiError>),
}

impl Outcome {
    fn is_ok(&self) -> bool {
        matches!(self, Outcome::Send(Ok(_)) | Outcome::User(Ok(())) | Outcome::Change(_, Ok(_)))
    }
}

/// The part of a job the database thread consumes.
enum Work {
    Send { app: Arc<App>, conv: String, drafts: Vec<Draft>, via: Via },
    User { app: String, user: String, name: Option<String> },
    Change { app: Arc<App>, change: Change },
}

/// The part of a job that stays with the task to be answered.
enum Reply {
    Send(oneshot::Sender<Result<Vec<Message>, ApiError>>),
    User(oneshot::Sender<Result<(), ApiError>>),
    Change(oneshot::Sender<Result<(), ApiError>>),
}

/// Stores `jobs` in one transaction, hands what the hub must hear of to the
/// fan-out task, answers them. Returns false once the fan-out task is gone.
async fn group_commit(state: &AppState, jobs: Vec<Job>, fanout: &mpsc::Sender<Vec<Committed>>) -> bool {
    let (work, replies): (Vec<Work>, Vec<Reply>) = jobs
        .into_iter()
        .map(|job| match job {
            Job::Send { app, conv, drafts, via, done } => (Work::Send { app, conv, drafts, via }, Reply::Send(done)),
            Job::User { app, user, name, done } => (Work::User { app, user, name }, Reply::User(done)),
            Job::Change { app, change, done } => (Work::Change { app, change }, Reply::Change(done)),
        })
        .unzip();
    let (st, jobs, started) = (state.clone(), work.len(), std::time::Instant::now());
    let committed = state.db.call(move |c| commit(c, &st, work)).await;
    state.metrics.commit(jobs, started.elapsed(), committed.is_ok());
    let outcomes = match committed {
        Ok((outcomes, touched)) => {
            // Before any answer or announcement: an `open` after them reads the new roster.
            if !touched.is_empty() {
                state.rosters.forget(&touched);
            }
            outcomes
        }
        Err(e) => {
            crate::metrics::sqlite_error(&e);
            let err = ApiError::internal(format!("group commit failed: {e}"));
            for reply in replies {
                match reply {
                    Reply::Send(done) => {
                        let _ = done.send(Err(err.clone()));
                    }
                    Reply::User(done) | Reply::Change(done) => {
                        let _ = done.send(Err(err.clone()));
                    }
                }
            }
            return true;
        }
    };
    // The batch goes to the fan-out task first, then the answers: the fan-out
    // task is woken before any submitter, so it is queued on the main runtime
    // (first in, first out) ahead of every REST handler this batch answers; a
    // participant who closes the conversation after seeing an answer then, in
    // practice, closes after the pass (SG-NOTIFY-3: open when stored, not
    // notified). Not a guarantee: the other worker may run a handler while
    // the pass has not started (a presence snapshot at commit would be). The
    // answers do not wait for the pass itself: a sender's ack never waits
    // behind the fan-out of its own batch, so under a burst a pipelining
    // sender hands the next batch over at once and batches grow. SPEC allows
    // the ack before or after the sender's own `message` frame. A change is
    // answered in `publish`, once its announcements are out.
    let mut committed: Vec<Committed> = Vec::with_capacity(outcomes.len());
    let mut answers: Vec<Answered> = Vec::with_capacity(outcomes.len());
    for (outcome, reply) in outcomes.into_iter().zip(replies) {
        match (outcome, reply) {
            (Outcome::Send(Ok(mut s)), Reply::Send(done)) => {
                answers.push(Answered::Send(done, Ok(std::mem::take(&mut s.out))));
                committed.push(Committed::Send(s));
            }
            (Outcome::Send(Err(e)), Reply::Send(done)) => answers.push(Answered::Send(done, Err(e))),
            (Outcome::User(r), Reply::User(done)) => answers.push(Answered::Unit(done, r)),
            (Outcome::Change(app, Ok(effect)), Reply::Change(done)) => {
                committed.push(Committed::Change(app, effect, done));
            }
            (Outcome::Change(_, Err(e)), Reply::Change(done)) => answers.push(Answered::Unit(done, Err(e))),
            _ => unreachable!("outcomes are built in the order of the work"),
        }
    }
    // The fan-out task is gone only if the runtime is shutting down.
    let published = committed.is_empty() || fanout.send(committed).await.is_ok();
    for answer in answers {
        // A submitter that went away (a REST client disconnecting) just misses its answer.
        match answer {
            Answered::Send(done, r) => {
                let _ = done.send(r);
            }
            Answered::Unit(done, r) => {
                let _ = done.send(r);
            }
        }
    }
    published
}

/// An answer of a committed batch, sent once the batch is with the fan-out task.
enum Answered {
    Send(oneshot::Sender<Result<Vec<Message>, ApiError>>, Result<Vec<Message>, ApiError>),
    Unit(oneshot::Sender<Result<(), ApiError>>, Result<(), ApiError>),
}

/// What a batch committed that the hub must hear of, in commit order.
enum Committed {
    /// Stored messages (already answered).
    Send(Stored),
    /// A change, answered once its announcements are out.
    Change(Arc<App>, Effect, oneshot::Sender<Result<(), ApiError>>),
}

/// Publishes what a batch committed, in commit order: each run of stored
/// messages in one hub pass, each change's announcements between the runs,
/// after which the change is answered.
fn publish(state: &AppState, committed: Vec<Committed>) {
    let mut run: Vec<Stored> = Vec::new();
    for c in committed {
        match c {
            Committed::Send(stored) => run.push(stored),
            Committed::Change(app, effect, done) => {
                deliver(state, &mut run);
                let _ = done.send(effect.publish(state, &app));
            }
        }
    }
    deliver(state, &mut run);
}

/// One hub pass for a run of stored messages (none for an empty run).
fn deliver(state: &AppState, run: &mut Vec<Stored>) {
    if !run.is_empty() {
        messaging::deliver(state, &run.iter().collect::<Vec<_>>());
        run.clear();
    }
}

/// The database side: one transaction, one savepoint per job. Returns each
/// job's outcome and the conversations whose membership the batch may have
/// changed (their kept rosters must be forgotten, see [`crate::roster`]).
fn commit(
    c: &mut rusqlite::Connection,
    state: &AppState,
    work: Vec<Work>,
) -> rusqlite::Result<(Vec<Outcome>, Vec<RoomKey>)> {
    let mut tx = c.transaction()?;
    let mut members = messaging::MemberCache::default();
    let mut outcomes = Vec::with_capacity(work.len());
    let mut touched = Vec::new();
    for w in work {
        let sp = tx.savepoint()?;
        let outcome = match w {
            Work::Send { app, conv, drafts, via } => {
                Outcome::Send(messaging::store_in(&sp, state, &mut members, app, conv, drafts, via))
            }
            Work::User { app, user, name } => Outcome::User(
                store::ensure_user(&sp, &app, &user, name.as_deref(), crate::now_ms()).map(|_| ()).map_err(Into::into),
            ),
            Work::Change { app, change } => {
                let room = change.membership_of().map(|conv| app.room(conv));
                let outcome = Outcome::Change(app.clone(), change.apply(&sp, state, &app));
                if let Some(room) = room {
                    // Sends later in this batch read the new membership.
                    members.forget(&room);
                    touched.push(room);
                }
                outcome
            }
        };
        if outcome.is_ok() {
            sp.commit()?;
        } else {
            // The default drop behaviour: roll back to the savepoint, then release it.
            sp.finish()?;
        }
        outcomes.push(outcome);
    }
    tx.commit()?;
    Ok((outcomes, touched))
}
