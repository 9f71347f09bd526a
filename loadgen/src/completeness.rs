//! Completeness of one guest's deliveries. Every guest that has the
//! conversation open must receive every message exactly once and in order;
//! this tracker is what checks it. It keeps one bit per (talker, sequence
//! number) of the guest's conversation, so a duplicate is seen as a bit
//! already set, an out-of-order delivery as a sequence number below the
//! highest one seen from that talker, and at the end a missing delivery as an
//! expected bit that is still clear. Memory is one bit per message of the
//! guest's conversation, allocated on the first message from each talker.

/// How one delivery was judged.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Observation {
    /// First time, after every earlier sequence number seen from this talker.
    InOrder,
    /// First time, but a later sequence number from this talker came before it.
    OutOfOrder,
    /// Already received.
    Duplicate,
    /// Not a message this run could have sent (talker or sequence number out of range).
    Unexpected,
}

/// What one talker's messages did at one guest.
#[derive(Debug, Clone, Default)]
struct SeqTrack {
    /// Bit `seq` is set once message `seq` has arrived.
    bits: Vec<u64>,
    /// The highest sequence number received so far.
    highest: Option<u64>,
}

/// The deliveries one guest received, checked as they arrive.
#[derive(Debug, Clone)]
pub struct DeliveryTracker {
    /// Messages each talker sends (sequence numbers `0..per_talker`).
    per_talker: u64,
    /// One track per talker of the conversation, by local index; `None` until its first message.
    tracks: Vec<Option<SeqTrack>>,
    /// Deliveries of this run's messages, duplicates included.
    pub delivered: u64,
    pub duplicates: u64,
    pub out_of_order: u64,
    pub unexpected: u64,
}

impl DeliveryTracker {
    /// A tracker for a conversation with `talkers` talkers sending `per_talker` messages each.
    pub fn new(talkers: usize, per_talker: u64) -> DeliveryTracker {
        DeliveryTracker {
            per_talker,
            tracks: vec![None; talkers],
            delivered: 0,
            duplicates: 0,
            out_of_order: 0,
            unexpected: 0,
        }
    }

    /// Records that message `seq` of local talker `talker` arrived.
    pub fn observe(&mut self, talker: usize, seq: u64) -> Observation {
        let per_talker = self.per_talker;
        let Some(slot) = self.tracks.get_mut(talker) else {
            self.unexpected += 1;
            return Observation::Unexpected;
        };
        if seq >= per_talker {
            self.unexpected += 1;
            return Observation::Unexpected;
        }
        self.delivered += 1;
        let track =
            slot.get_or_insert_with(|| SeqTrack { bits: vec![0; per_talker.div_ceil(64) as usize], highest: None });
        let (word, bit) = ((seq / 64) as usize, 1u64 << (seq % 64));
        if track.bits[word] & bit != 0 {
            self.duplicates += 1;
            return Observation::Duplicate;
        }
        track.bits[word] |= bit;
        match track.highest {
            Some(h) if seq < h => {
                self.out_of_order += 1;
                Observation::OutOfOrder
            }
            _ => {
                track.highest = Some(seq);
                Observation::InOrder
            }
        }
    }

    /// Whether message `seq` of local talker `talker` has arrived.
    pub fn received(&self, talker: usize, seq: u64) -> bool {
        match self.tracks.get(talker) {
            Some(Some(t)) if seq < self.per_talker => t.bits[(seq / 64) as usize] & (1u64 << (seq % 64)) != 0,
            _ => false,
        }
    }

    /// How many of `expected` (local talker, sequence number) never arrived.
    pub fn count_missing(&self, expected: impl IntoIterator<Item = (usize, u64)>) -> u64 {
        expected.into_iter().filter(|&(t, s)| !self.received(t, s)).count() as u64
    }

    /// The highest sequence number received so far from each local talker.
    pub fn highest(&self) -> Vec<Option<u64>> {
        self.tracks.iter().map(|t| t.as_ref().and_then(|t| t.highest)).collect()
    }

    /// Distinct messages received.
    pub fn unique(&self) -> u64 {
        self.delivered - self.duplicates
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn counts_duplicates_gaps_and_reordering() {
        let mut t = DeliveryTracker::new(2, 10);
        assert_eq!(t.observe(0, 0), Observation::InOrder);
        assert_eq!(t.observe(0, 2), Observation::InOrder);
        assert_eq!(t.observe(0, 1), Observation::OutOfOrder);
        assert_eq!(t.observe(0, 2), Observation::Duplicate);
        assert_eq!(t.observe(0, 2), Observation::Duplicate);
        assert_eq!(t.observe(1, 5), Observation::InOrder);
        assert_eq!(t.observe(2, 0), Observation::Unexpected);
        assert_eq!(t.observe(1, 10), Observation::Unexpected);
        assert_eq!(t.delivered, 6);
        assert_eq!(t.duplicates, 2);
        assert_eq!(t.out_of_order, 1);
        assert_eq!(t.unexpected, 2);
        assert_eq!(t.unique(), 4);
        // Expected: all 10 of talker 0 and 3..6 of talker 1.
        let expected = (0..10).map(|s| (0, s)).chain((3..6).map(|s| (1, s)));
        // Talker 0 got 0, 1, 2; talker 1 got 5: missing 7 + 2.
        assert_eq!(t.count_missing(expected), 9);
    }

    #[test]
    fn sequence_numbers_across_word_boundaries() {
        let mut t = DeliveryTracker::new(1, 130);
        for s in (0..130).rev() {
            t.observe(0, s);
        }
        assert_eq!(t.out_of_order, 129);
        assert_eq!(t.count_missing((0..130).map(|s| (0, s))), 0);
        assert!(t.received(0, 64) && t.received(0, 129) && !t.received(0, 130));
    }
}
