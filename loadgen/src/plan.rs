//! The resolved plan of a run: the workload (flags over profile over
//! defaults), who goes where (guest `g` and talker `k` join conversation
//! `g % conversations` and `k % conversations`), the ids used on the server
//! (prefixed with a run id so runs against one server never share a room),
//! and the schedule on the run clock: ramp, settle, send window, drain.

use crate::cli::{Profile, RunArgs};
use crate::stages::{self, Stage, Timeline};
use serde::{Deserialize, Serialize};
use std::sync::Arc;
use supergroup_protocol::limits::MAX_TEXT_CHARS;

/// What the users do.
#[derive(Debug, Clone, Copy, PartialEq, Serialize, Deserialize)]
pub struct Workload {
    pub guests: usize,
    pub talkers: usize,
    pub conversations: usize,
    pub readers: usize,
    /// Messages per second per talker.
    pub rate: f64,
    pub message_bytes: usize,
    /// Connections per second while ramping up.
    pub ramp: f64,
    /// Seconds of sending.
    pub duration: f64,
    /// Churn (`--churn`): the share of the guests that leaves and rejoins each second
    /// (0.05 = 5%/s); 0 for none. Each turn is planned by [`crate::churn`].
    #[serde(default)]
    pub churn: f64,
    /// Reconnect storm (`--reconnect-storm`): seconds into the send window at which every
    /// guest drops its socket at once and all rejoin; `None` for none.
    #[serde(default)]
    pub reconnect_storm: Option<f64>,
}

impl Workload {
    /// No profile: small enough to run in a few seconds on a laptop.
    pub const DEFAULT: Workload = Workload {
        guests: 100,
        talkers: 1,
        conversations: 1,
        readers: 1,
        rate: 10.0,
        message_bytes: 100,
        ramp: 500.0,
        duration: 10.0,
        churn: 0.0,
        reconnect_storm: None,
    };

    /// The values of a named profile.
    pub fn of_profile(profile: Option<Profile>) -> Workload {
        match profile {
            None => Workload::DEFAULT,
            Some(Profile::Lobby) => Workload {
                guests: 1_000,
                talkers: 5,
                rate: 1.0,
                message_bytes: 200,
                duration: 30.0,
                ..Workload::DEFAULT
            },
            Some(Profile::Shoutbox) => Workload {
                guests: 2_000,
                talkers: 20,
                rate: 1.0,
                message_bytes: 80,
                duration: 30.0,
                ..Workload::DEFAULT
            },
        }
    }

    /// Flags over the profile.
    pub fn resolve(args: &RunArgs) -> Workload {
        let base = Workload::of_profile(args.profile);
        Workload {
            guests: args.guests.unwrap_or(base.guests),
            talkers: args.talkers.unwrap_or(base.talkers),
            conversations: args.conversations.unwrap_or(base.conversations),
            readers: args.readers.unwrap_or(base.readers),
            rate: args.rate.unwrap_or(base.rate),
            message_bytes: args.message_bytes.unwrap_or(base.message_bytes),
            ramp: args.ramp.unwrap_or(base.ramp),
            duration: args.duration.unwrap_or(base.duration),
            churn: args.churn.unwrap_or(base.churn),
            reconnect_storm: args.reconnect_storm.or(base.reconnect_storm),
        }
    }

    /// Applies `--step-rate`/`--stages`: returns the stages (none for a constant
    /// `--rate`) and sets `duration` to their total and `rate` to their highest.
    pub fn apply_stages(&mut self, args: &RunArgs) -> anyhow::Result<Vec<Stage>> {
        let stages = match (&args.stages, args.step_rate.is_empty()) {
            (Some(spec), true) => stages::parse_stages(spec)?,
            (None, false) => stages::steps(&args.step_rate, args.step)?,
            (None, true) => return Ok(Vec::new()),
            (Some(_), false) => anyhow::bail!("--stages and --step-rate are two ways to say the same thing: use one"),
        };
        self.duration = stages.iter().map(|s| s.duration).sum();
        self.rate = stages.iter().map(|s| s.from.max(s.to)).fold(0.0, f64::max);
        Ok(stages)
    }

    /// Refuses shapes that cannot be run or measured.
    pub fn validate(&self) -> anyhow::Result<()> {
        anyhow::ensure!(self.conversations >= 1, "--conversations must be at least 1");
        anyhow::ensure!(
            self.talkers >= self.conversations,
            "--talkers ({}) must be at least --conversations ({}): every conversation needs someone who sends",
            self.talkers,
            self.conversations
        );
        anyhow::ensure!(self.rate > 0.0 && self.rate.is_finite(), "--rate must be above 0");
        anyhow::ensure!(self.ramp > 0.0 && self.ramp.is_finite(), "--ramp must be above 0");
        anyhow::ensure!(self.duration > 0.0, "--duration must be above 0");
        anyhow::ensure!(
            self.message_bytes <= MAX_TEXT_CHARS,
            "--message-bytes must be at most {MAX_TEXT_CHARS} (the protocol's longest text)"
        );
        anyhow::ensure!(
            self.churn.is_finite() && (0.0..=1.0).contains(&self.churn),
            "--churn must be between 0%/s and 100%/s"
        );
        if let Some(at) = self.reconnect_storm {
            anyhow::ensure!(
                at < self.duration,
                "--reconnect-storm {at}s is not inside the send window ({}s): give a time before its end",
                self.duration
            );
        }
        anyhow::ensure!(
            self.messages_per_talker() <= 10_000_000,
            "--rate × --duration is over 10 million messages per talker"
        );
        Ok(())
    }

    /// Messages each talker sends: one every `1/rate` s over the duration.
    pub fn messages_per_talker(&self) -> u64 {
        ((self.rate * self.duration).floor() as u64).max(1)
    }

    /// Users goose starts: guests, talkers and readers.
    pub fn users(&self) -> usize {
        self.guests + self.talkers + self.readers
    }

    /// Guests in conversation `c` (round robin).
    pub fn guests_in(&self, c: usize) -> usize {
        count_round_robin(self.guests, self.conversations, c)
    }

    /// Talkers in conversation `c` (round robin).
    pub fn talkers_in(&self, c: usize) -> usize {
        count_round_robin(self.talkers, self.conversations, c)
    }

    /// The most guests any conversation gets.
    pub fn max_guests_per_conversation(&self) -> usize {
        self.guests.div_ceil(self.conversations)
    }

    /// The most talkers any conversation gets.
    pub fn max_talkers_per_conversation(&self) -> usize {
        self.talkers.div_ceil(self.conversations)
    }
}

fn count_round_robin(n: usize, buckets: usize, b: usize) -> usize {
    n / buckets + usize::from(b < n % buckets)
}

/// Longest the first message waits for joins to finish after the ramp: a join
/// is a connect and an `open`, each bounded by 10 s, so by then every guest
/// has either opened or failed.
pub const JOIN_DEADLINE_SECS: f64 = 20.0;

/// When things happen, in seconds on the run clock. Planned with
/// [`Schedule::new`] (as if every join were instant); the first message
/// actually waits until every user has joined or failed (at most
/// [`JOIN_DEADLINE_SECS`] after the ramp), and the report shows the schedule
/// as it happened ([`Schedule::with_send_start`]).
#[derive(Debug, Clone, Copy, Serialize, Deserialize)]
pub struct Schedule {
    /// Users are started over `[0, ramp_end)`.
    pub ramp_end: f64,
    /// Pause between the last join and the first message.
    pub settle: f64,
    /// The first message's intended time.
    pub send_start: f64,
    /// No message is intended after this.
    pub send_end: f64,
    /// Deliveries are counted until here; users stop after it.
    pub drain_end: f64,
}

impl Schedule {
    pub fn new(w: &Workload, settle: f64, drain: f64) -> Schedule {
        let ramp_end = w.users() as f64 / w.ramp;
        let send_start = ramp_end + settle;
        Schedule {
            ramp_end,
            settle,
            send_start,
            send_end: send_start + w.duration,
            drain_end: send_start + w.duration + drain,
        }
    }

    /// The same schedule with the first message at `send_start`.
    pub fn with_send_start(&self, send_start: f64) -> Schedule {
        let shift = send_start - self.send_start;
        Schedule { send_start, send_end: self.send_end + shift, drain_end: self.drain_end + shift, ..*self }
    }

    /// The same schedule with sending stopped at `send_end` (a staged run that crossed its line).
    pub fn stopped_at(&self, send_end: f64) -> Schedule {
        if send_end >= self.send_end {
            return *self;
        }
        Schedule { send_end, drain_end: self.drain_end - (self.send_end - send_end), ..*self }
    }

    /// The latest the first message can be.
    pub fn latest_send_start(&self) -> f64 {
        self.send_start + JOIN_DEADLINE_SECS
    }

    /// Seconds goose keeps every user after the ramp: enough for the latest
    /// possible start (the run ends itself earlier, when the drain is over).
    pub fn hold_secs(&self) -> u64 {
        (self.drain_end + JOIN_DEADLINE_SECS - self.ramp_end + 5.0).ceil().max(1.0) as u64
    }
}

/// The timeline of `stages`, or `--rate` for `--duration` when there are none.
fn timeline_of(workload: &Workload, stages: &[Stage]) -> Timeline {
    if stages.is_empty() {
        Timeline::new(&[Stage { duration: workload.duration, from: workload.rate, to: workload.rate }])
    } else {
        Timeline::new(stages)
    }
}

/// Which part of the run one process holds: worker `index` of `count` holds guest `g`,
/// talker `k` and reader `r` when `g % count == index` (and so on); one process alone is
/// `{0, 1}`. A pure function of the run and the index, so a worker's plan message is small.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
pub struct Share {
    pub index: usize,
    pub count: usize,
}

impl Default for Share {
    fn default() -> Share {
        Share { index: 0, count: 1 }
    }
}

impl Share {
    /// How many of `n` users this share holds.
    pub fn of(&self, n: usize) -> usize {
        count_round_robin(n, self.count.max(1), self.index)
    }

    /// The global number of this share's `j`-th user.
    pub fn global(&self, j: usize) -> usize {
        self.index + j * self.count.max(1)
    }

    /// Whether global user `i` belongs to this share.
    pub fn holds(&self, i: usize) -> bool {
        i % self.count.max(1) == self.index
    }
}

/// Everything a user needs to know about the run.
#[derive(Debug, Clone, Serialize, Deserialize)]
pub struct Plan {
    pub workload: Workload,
    pub schedule: Schedule,
    /// Prefix of every id this run creates on the server.
    pub run_id: String,
    pub app_id: String,
    /// The app secret; never written to a report.
    #[serde(skip)]
    pub secret: String,
    /// The server's origin, e.g. `http://127.0.0.1:8080` (the first of [`Plan::targets`]).
    pub base_url: String,
    /// Every node of the target (`--target URL1,URL2,...`), in the order given: guest `g`
    /// connects to node `g % nodes`, talker `k` to node `k % nodes`. Just `base_url` for one node.
    #[serde(default)]
    pub targets: Vec<String>,
    /// The part of the run this process holds (all of it, unless it is a load worker).
    #[serde(default)]
    pub share: Share,
    /// The stages of a stepped or staged run (`--step-rate`, `--stages`); empty for a constant `--rate`.
    #[serde(default)]
    pub stages: Vec<Stage>,
    /// Every message's intended time and stage (built by [`Plan::new`]; empty when read back from a summary).
    #[serde(skip)]
    pub timeline: Arc<Timeline>,
}

impl Plan {
    /// A plan; its timeline is `stages`, or `--rate` for `--duration` when there are none.
    pub fn new(
        workload: Workload,
        stages: Vec<Stage>,
        schedule: Schedule,
        run_id: String,
        app_id: String,
        secret: String,
        base_url: String,
    ) -> Plan {
        let timeline = timeline_of(&workload, &stages);
        let targets = vec![base_url.clone()];
        Plan {
            workload,
            schedule,
            run_id,
            app_id,
            secret,
            base_url,
            targets,
            share: Share::default(),
            stages,
            timeline: Arc::new(timeline),
        }
    }

    /// A plan read back (from a load worker's plan message) with its timeline rebuilt.
    pub fn with_timeline(mut self) -> Plan {
        self.timeline = Arc::new(timeline_of(&self.workload, &self.stages));
        self
    }

    /// The same plan spread over the nodes `targets` (at least one; the first becomes `base_url`).
    pub fn with_targets(mut self, targets: Vec<String>) -> Plan {
        if let Some(first) = targets.first() {
            self.base_url = first.clone();
            self.targets = targets;
        }
        self
    }

    /// Guests, talkers and readers this process holds ([`Plan::share`]).
    pub fn local_guests(&self) -> usize {
        self.share.of(self.workload.guests)
    }

    pub fn local_talkers(&self) -> usize {
        self.share.of(self.workload.talkers)
    }

    pub fn local_readers(&self) -> usize {
        self.share.of(self.workload.readers)
    }

    /// Users goose starts in this process.
    pub fn local_users(&self) -> usize {
        self.local_guests() + self.local_talkers() + self.local_readers()
    }

    /// Nodes of the target (1 for a single server).
    pub fn nodes(&self) -> usize {
        self.targets.len().max(1)
    }

    /// The node guest `g` connects to (round robin).
    pub fn guest_node(&self, g: usize) -> usize {
        g % self.nodes()
    }

    /// The node talker `k` connects to (round robin).
    pub fn talker_node(&self, k: usize) -> usize {
        k % self.nodes()
    }

    /// A run with stages (`--step-rate`, `--stages`): its report has a table per step.
    pub fn staged(&self) -> bool {
        !self.stages.is_empty()
    }

    /// Messages each talker sends.
    pub fn messages_per_talker(&self) -> u64 {
        self.timeline.messages()
    }

    /// The intended time, in µs on the run clock, of message `seq` of any talker.
    pub fn intended_micros(&self, send_start_us: u64, seq: u64) -> u64 {
        send_start_us.saturating_add(self.timeline.offset(seq))
    }

    pub fn conversation_id(&self, c: usize) -> String {
        format!("{}-room-{c}", self.run_id)
    }

    pub fn talker_id(&self, k: usize) -> String {
        format!("{}-talker-{k}", self.run_id)
    }

    pub fn guest_id(&self, g: usize) -> String {
        format!("{}-guest-{g}", self.run_id)
    }

    pub fn reader_id(&self, r: usize) -> String {
        format!("{}-reader-{r}", self.run_id)
    }

    /// The conversation of guest `g`.
    pub fn guest_conversation(&self, g: usize) -> usize {
        g % self.workload.conversations
    }

    /// The conversation of talker `k`.
    pub fn talker_conversation(&self, k: usize) -> usize {
        k % self.workload.conversations
    }

    /// Talkers of conversation `c`, by their global index; local index `i` is `c + i * conversations`.
    pub fn talkers_of(&self, c: usize) -> impl Iterator<Item = usize> + '_ {
        (c..self.workload.talkers).step_by(self.workload.conversations)
    }

    /// The position of talker `k` among the talkers of its conversation.
    pub fn talker_local_index(&self, k: usize) -> usize {
        k / self.workload.conversations
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn round_robin_counts_add_up() {
        let w = Workload { guests: 10, talkers: 4, conversations: 3, ..Workload::DEFAULT };
        assert_eq!((0..3).map(|c| w.guests_in(c)).collect::<Vec<_>>(), vec![4, 3, 3]);
        assert_eq!((0..3).map(|c| w.talkers_in(c)).sum::<usize>(), 4);
        assert_eq!(w.max_guests_per_conversation(), 4);
    }

    #[test]
    fn schedule_and_talker_layout() {
        let w = Workload {
            guests: 98,
            talkers: 2,
            readers: 0,
            ramp: 50.0,
            duration: 10.0,
            rate: 10.0,
            ..Workload::DEFAULT
        };
        let s = Schedule::new(&w, 2.0, 3.0);
        assert_eq!(s.ramp_end, 2.0);
        assert_eq!(s.send_start, 4.0);
        assert_eq!(s.drain_end, 17.0);
        let late = s.with_send_start(6.5);
        assert_eq!((late.send_end, late.drain_end, late.ramp_end), (16.5, 19.5, 2.0));
        assert_eq!(w.messages_per_talker(), 100);
        let p = Plan::new(
            Workload { conversations: 2, talkers: 5, ..w },
            Vec::new(),
            s,
            "r".into(),
            "a".into(),
            "s".into(),
            "http://x".into(),
        );
        assert_eq!(p.intended_micros(4_000_000, 5), 4_500_000);
        assert_eq!(p.messages_per_talker(), 100);
        assert_eq!(p.talkers_of(1).collect::<Vec<_>>(), vec![1, 3]);
        assert_eq!(p.talker_local_index(3), 1);
        assert!(w.validate().is_ok());
        assert!(Workload { talkers: 1, conversations: 2, ..w }.validate().is_err());
    }

    #[test]
    fn shares_cover_every_user_once() {
        let shares: Vec<Share> = (0..3).map(|index| Share { index, count: 3 }).collect();
        assert_eq!(shares.iter().map(|s| s.of(10)).collect::<Vec<_>>(), vec![4, 3, 3]);
        let mut all: Vec<usize> = shares.iter().flat_map(|s| (0..s.of(10)).map(|j| s.global(j))).collect();
        all.sort();
        assert_eq!(all, (0..10).collect::<Vec<_>>());
        assert!(shares[1].holds(4) && !shares[1].holds(5));
        assert_eq!(Share::default().of(7), 7);
    }

    #[test]
    fn guests_and_talkers_spread_round_robin_over_nodes() {
        let w = Workload { guests: 7, talkers: 3, ..Workload::DEFAULT };
        let s = Schedule::new(&w, 0.0, 0.0);
        let p = Plan::new(w, Vec::new(), s, "r".into(), "a".into(), "s".into(), "http://a".into());
        assert_eq!((p.nodes(), p.guest_node(5)), (1, 0));
        let p = p.with_targets(vec!["http://b".into(), "http://c".into()]);
        assert_eq!(p.base_url, "http://b");
        assert_eq!((0..5).map(|g| p.guest_node(g)).collect::<Vec<_>>(), vec![0, 1, 0, 1, 0]);
        assert_eq!(p.talker_node(1), 1);
    }
}
