//! Input-chunk sequencer: turns client chunks that may arrive duplicated, reordered or
//! with holes into one gap-free, in-order audio stream, and tracks what to acknowledge.
//!
//! Rules (callgate.v1): seqs start at 0 and grow by one per chunk. A duplicate is dropped
//! silently. A chunk ahead of the next expected seq waits, for at most `window` seqs; once a
//! chunk arrives that the window cannot hold, every missing seq before it is declared lost
//! and replaced by silence, reported once per hole as a [`SequencerEvent::Gap`].
//!
//! Sequence numbers do not wrap: after `u32::MAX` every chunk is a duplicate. At one chunk
//! per 20 ms that is over two years of one call.
//!
//! Memory is bounded: at most `window` chunks are buffered, and the silence emitted for one
//! hole is capped (see [`Sequencer::with_max_gap_silence`]) so a hostile seq such as
//! `u32::MAX` cannot make the server allocate gigabytes of zeros.

use std::collections::BTreeMap;

/// The reorder window callgate.v1 promises clients.
pub const DEFAULT_WINDOW: usize = 32;

/// Default cap on the silence emitted for one hole: 1 s at 48 kHz mono (0.5 s of 48 kHz
/// stereo, 3 s at 16 kHz). A hole that long is already a broken call; the point of the
/// silence is to keep timestamps roughly right, not to reproduce minutes of nothing.
pub const DEFAULT_MAX_GAP_SILENCE: usize = 48_000;

/// What the sequencer releases, in stream order.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum SequencerEvent {
    /// Audio to feed downstream, in order. For a hole this carries the filler silence and
    /// `seq` is the last lost seq (`to` of the preceding `Gap`).
    Audio {
        /// The chunk's seq.
        seq: u32,
        /// Interleaved samples, exactly as the client sent them (or zeros for a hole).
        samples: Vec<i16>,
    },
    /// Seqs `from..=to` were given up on. Always immediately followed by an `Audio` of
    /// `silence_samples` zeros standing in for them, so the caller only has to report it
    /// (`AUDIO_GAP`) and can feed every `Audio` downstream unconditionally.
    Gap {
        /// First lost seq.
        from: u32,
        /// Last lost seq, inclusive.
        to: u32,
        /// Length of the filler silence in the following `Audio`.
        silence_samples: usize,
    },
}

/// Orders, dedupes and gap-fills the input chunks of one call.
#[derive(Debug, Clone)]
pub struct Sequencer {
    /// How far ahead of `next` a chunk may be and still wait for the hole before it.
    window: usize,
    /// Upper bound on filler samples per hole.
    max_gap_silence: usize,
    /// Next seq to deliver. `u64` so that delivering `u32::MAX` is representable.
    next: u64,
    /// Chunks that arrived ahead of `next`; every key is in `next..next + window`.
    pending: BTreeMap<u32, Vec<i16>>,
    /// Length of the most recent non-empty chunk received: the best guess at how long a
    /// lost chunk was, since clients send fixed-size chunks.
    last_len: usize,
    /// Dropped duplicates, for metrics.
    duplicates: u64,
    /// Seqs declared lost, for metrics.
    lost: u64,
}

impl Default for Sequencer {
    fn default() -> Self {
        Self::new(DEFAULT_WINDOW)
    }
}

impl Sequencer {
    /// A sequencer expecting seq 0 first. A `window` of 0 is treated as 1 (no reordering).
    pub fn new(window: usize) -> Self {
        Self {
            window: window.max(1),
            max_gap_silence: DEFAULT_MAX_GAP_SILENCE,
            next: 0,
            pending: BTreeMap::new(),
            last_len: 0,
            duplicates: 0,
            lost: 0,
        }
    }

    /// Sets the cap on filler samples per hole. Use a multiple of the input channel count so
    /// the silence keeps stereo frames aligned; one second at the call's input rate is a
    /// good choice when it is known.
    pub fn with_max_gap_silence(mut self, samples: usize) -> Self {
        self.max_gap_silence = samples;
        self
    }

    /// Accepts one chunk and returns whatever can now be released, in order.
    pub fn push(&mut self, seq: u32, samples: Vec<i16>) -> Vec<SequencerEvent> {
        let seq_wide = u64::from(seq);
        if seq_wide < self.next || self.pending.contains_key(&seq) {
            self.duplicates += 1;
            return Vec::new();
        }
        if !samples.is_empty() {
            self.last_len = samples.len();
        }
        let mut out = Vec::new();
        let window = self.window as u64;
        if seq_wide >= self.next + window {
            // A jump past the window is a hole, not reordering: everything missing before
            // `seq` is lost, and reported at once with its whole extent (sliding the window
            // one chunk at a time would report a one-second hole as thirty gaps).
            self.release_until(seq_wide, &mut out);
        }
        self.pending.insert(seq, samples);
        self.release_contiguous(&mut out);
        out
    }

    /// Gives up on every pending hole and releases all buffered chunks. Call it when the
    /// turn is committed or the call ends, so audio waiting behind a hole is not stuck.
    /// Nothing is declared lost after the last buffered chunk: a tail loss is unknowable.
    pub fn flush(&mut self) -> Vec<SequencerEvent> {
        let mut out = Vec::new();
        if let Some((&last, _)) = self.pending.last_key_value() {
            self.release_until(u64::from(last) + 1, &mut out);
        }
        out
    }

    /// Highest seq delivered with no hole before it (a filled hole counts as delivered):
    /// what `audio.ack` reports. `None` before anything was delivered.
    pub fn ack(&self) -> Option<u32> {
        self.next
            .checked_sub(1)
            .map(|s| u32::try_from(s).unwrap_or(u32::MAX))
    }

    /// The seq a resuming client must send next: `ack() + 1`, or 0. Saturates at
    /// `u32::MAX` (see the module note on wraparound).
    pub fn next_seq(&self) -> u32 {
        u32::try_from(self.next).unwrap_or(u32::MAX)
    }

    /// Chunks dropped as duplicates (including late arrivals for holes already filled).
    pub fn duplicates(&self) -> u64 {
        self.duplicates
    }

    /// Seqs declared lost and filled with silence.
    pub fn lost(&self) -> u64 {
        self.lost
    }

    /// Chunks waiting behind a hole.
    pub fn buffered(&self) -> usize {
        self.pending.len()
    }

    /// Delivers everything below `until`, filling holes with silence, and leaves
    /// `next == until`.
    fn release_until(&mut self, until: u64, out: &mut Vec<SequencerEvent>) {
        while self.next < until {
            match self.pending.first_key_value() {
                Some((&seq, _)) if u64::from(seq) < until => {
                    if u64::from(seq) > self.next {
                        self.fill_hole(u64::from(seq) - 1, out);
                    }
                    if let Some(samples) = self.pending.remove(&seq) {
                        out.push(SequencerEvent::Audio { seq, samples });
                    }
                    self.next = u64::from(seq) + 1;
                }
                _ => self.fill_hole(until - 1, out),
            }
        }
    }

    /// Declares `next..=to` lost and emits the gap and its silence.
    fn fill_hole(&mut self, to: u64, out: &mut Vec<SequencerEvent>) {
        let count = to + 1 - self.next;
        let silence_samples = usize::try_from(count)
            .unwrap_or(usize::MAX)
            .saturating_mul(self.last_len)
            .min(self.max_gap_silence);
        // Both ends are below `until`, itself at most u32::MAX + 1, so they fit in u32.
        let from = u32::try_from(self.next).unwrap_or(u32::MAX);
        let to32 = u32::try_from(to).unwrap_or(u32::MAX);
        out.push(SequencerEvent::Gap {
            from,
            to: to32,
            silence_samples,
        });
        out.push(SequencerEvent::Audio {
            seq: to32,
            samples: vec![0; silence_samples],
        });
        self.lost += count;
        self.next = to + 1;
    }

    /// Delivers buffered chunks that continue the stream without a hole.
    fn release_contiguous(&mut self, out: &mut Vec<SequencerEvent>) {
        while let Ok(seq) = u32::try_from(self.next) {
            let Some(samples) = self.pending.remove(&seq) else {
                break;
            };
            out.push(SequencerEvent::Audio { seq, samples });
            self.next += 1;
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn chunk(seq: u32) -> Vec<i16> {
        // Distinct content per seq so tests can see which chunk came out.
        vec![seq as i16 + 1; 4]
    }

    fn audio(seq: u32) -> SequencerEvent {
        SequencerEvent::Audio {
            seq,
            samples: chunk(seq),
        }
    }

    fn gap(from: u32, to: u32, silence: usize) -> Vec<SequencerEvent> {
        vec![
            SequencerEvent::Gap {
                from,
                to,
                silence_samples: silence,
            },
            SequencerEvent::Audio {
                seq: to,
                samples: vec![0; silence],
            },
        ]
    }

    #[test]
    fn in_order_is_passed_straight_through() {
        let mut s = Sequencer::default();
        assert_eq!(s.ack(), None);
        assert_eq!(s.next_seq(), 0);
        for seq in 0..100 {
            assert_eq!(s.push(seq, chunk(seq)), vec![audio(seq)]);
            assert_eq!(s.ack(), Some(seq));
            assert_eq!(s.next_seq(), seq + 1);
        }
        assert_eq!(s.buffered(), 0);
        assert_eq!(s.duplicates(), 0);
        assert!(s.flush().is_empty());
    }

    #[test]
    fn duplicates_are_dropped_silently_and_counted() {
        let mut s = Sequencer::default();
        s.push(0, chunk(0));
        s.push(1, chunk(1));
        assert!(s.push(0, chunk(0)).is_empty()); // already delivered
        assert!(s.push(1, chunk(1)).is_empty());
        assert!(s.push(5, chunk(5)).is_empty()); // buffered
        assert!(s.push(5, chunk(5)).is_empty()); // already buffered
        assert_eq!(s.duplicates(), 3);
        assert_eq!(s.ack(), Some(1));
        assert_eq!(s.buffered(), 1);
    }

    #[test]
    fn reorder_within_window() {
        let mut s = Sequencer::default();
        assert_eq!(s.push(0, chunk(0)), vec![audio(0)]);
        assert!(s.push(2, chunk(2)).is_empty());
        assert!(s.push(3, chunk(3)).is_empty());
        assert_eq!(s.ack(), Some(0));
        assert_eq!(s.push(1, chunk(1)), vec![audio(1), audio(2), audio(3)]);
        assert_eq!(s.ack(), Some(3));
        assert_eq!(s.lost(), 0);
    }

    #[test]
    fn first_chunk_out_of_order() {
        let mut s = Sequencer::default();
        assert!(s.push(1, chunk(1)).is_empty());
        assert_eq!(s.ack(), None);
        assert_eq!(s.push(0, chunk(0)), vec![audio(0), audio(1)]);
    }

    #[test]
    fn farthest_seq_the_window_holds_still_waits() {
        let mut s = Sequencer::new(4);
        s.push(0, chunk(0));
        // next = 1, window 4: seqs up to 4 can wait for seq 1.
        assert!(s.push(4, chunk(4)).is_empty());
        assert_eq!(s.buffered(), 1);
    }

    #[test]
    fn a_chunk_beyond_the_window_ends_the_hole_before_it_at_once() {
        let mut s = Sequencer::new(4);
        s.push(0, chunk(0));
        s.push(3, chunk(3));
        s.push(4, chunk(4));
        // Seq 5 is past the window: 1 and 2 are lost, 3 and 4 released, then 5 itself.
        let mut expected = gap(1, 2, 8);
        expected.extend([audio(3), audio(4), audio(5)]);
        assert_eq!(s.push(5, chunk(5)), expected);
        assert_eq!(s.ack(), Some(5));
        assert_eq!(s.lost(), 2);
        // Seq 2 arrives too late to count.
        assert!(s.push(2, chunk(2)).is_empty());
        assert_eq!(s.duplicates(), 1);
    }

    #[test]
    fn a_long_hole_is_one_gap_however_many_chunks_follow_it() {
        let mut s = Sequencer::default();
        for seq in 0..10 {
            s.push(seq, chunk(seq));
        }
        let mut gaps = Vec::new();
        for seq in 1010..1020 {
            for event in s.push(seq, chunk(seq)) {
                if let SequencerEvent::Gap { from, to, .. } = event {
                    gaps.push((from, to));
                }
            }
        }
        assert_eq!(gaps, [(10, 1009)]);
        assert_eq!(s.ack(), Some(1019));
        assert_eq!(s.lost(), 1000);
    }

    #[test]
    fn several_holes_are_reported_separately_in_order() {
        let mut s = Sequencer::new(4);
        s.push(0, chunk(0));
        s.push(2, chunk(2));
        s.push(4, chunk(4));
        // Seq 9 is past the window: holes 1, 3 and 5-8 are lost, with 2 and 4 between.
        let mut expected = gap(1, 1, 4);
        expected.push(audio(2));
        expected.extend(gap(3, 3, 4));
        expected.push(audio(4));
        expected.extend(gap(5, 8, 16));
        expected.push(audio(9));
        assert_eq!(s.push(9, chunk(9)), expected);
        assert_eq!(s.ack(), Some(9));
        assert_eq!(s.next_seq(), 10);
        assert_eq!(s.buffered(), 0);
    }

    #[test]
    fn lost_chunk_length_is_estimated_from_the_latest_chunk() {
        let mut s = Sequencer::new(2);
        s.push(0, vec![1; 10]);
        // Seqs 1..=4 lost; the latest chunk has 6 samples.
        let out = s.push(5, vec![2; 6]);
        assert_eq!(out[..2], gap(1, 4, 24)[..]);
        assert_eq!(s.ack(), Some(5));
        assert_eq!(s.lost(), 4);
    }

    #[test]
    fn late_chunk_after_gap_fill_is_a_duplicate() {
        let mut s = Sequencer::new(2);
        s.push(0, chunk(0));
        s.push(3, chunk(3)); // seqs 1 and 2 lost
        assert_eq!(s.ack(), Some(3));
        assert!(s.push(1, chunk(1)).is_empty());
        assert!(s.push(2, chunk(2)).is_empty());
        assert_eq!(s.duplicates(), 2);
    }

    #[test]
    fn huge_seq_jump_allocates_bounded_silence() {
        let mut s = Sequencer::default().with_max_gap_silence(16_000);
        s.push(0, vec![0; 960]);
        let out = s.push(u32::MAX, vec![7; 960]);
        let SequencerEvent::Gap {
            from,
            to,
            silence_samples,
        } = out[0]
        else {
            panic!("{:?}", out[0]);
        };
        assert_eq!((from, to), (1, u32::MAX - 1));
        assert_eq!(silence_samples, 16_000);
        assert_eq!(out.len(), 3);
        assert_eq!(
            out[2],
            SequencerEvent::Audio {
                seq: u32::MAX,
                samples: vec![7; 960]
            }
        );
        assert_eq!(s.buffered(), 0);
        // The last possible seq is delivered; afterwards everything is a duplicate.
        assert_eq!(s.ack(), Some(u32::MAX));
        assert_eq!(s.next_seq(), u32::MAX);
        assert!(s.push(u32::MAX, vec![1]).is_empty());
        assert!(s.push(0, vec![1]).is_empty());
    }

    #[test]
    fn first_chunk_far_ahead_uses_its_own_length_for_the_gap() {
        let mut s = Sequencer::new(1);
        let out = s.push(3, vec![5; 8]);
        let mut expected = gap(0, 2, 24);
        expected.push(SequencerEvent::Audio {
            seq: 3,
            samples: vec![5; 8],
        });
        assert_eq!(out, expected);
    }

    #[test]
    fn flush_gives_up_on_holes_and_releases_everything() {
        let mut s = Sequencer::default();
        s.push(0, chunk(0));
        s.push(2, chunk(2));
        s.push(5, chunk(5));
        let mut expected = gap(1, 1, 4);
        expected.push(audio(2));
        expected.extend(gap(3, 4, 8));
        expected.push(audio(5));
        assert_eq!(s.flush(), expected);
        assert_eq!(s.ack(), Some(5));
        assert_eq!(s.buffered(), 0);
        assert!(s.flush().is_empty());
        // Stragglers for flushed holes are duplicates; the stream continues at 6.
        assert!(s.push(3, chunk(3)).is_empty());
        assert_eq!(s.push(6, chunk(6)), vec![audio(6)]);
    }

    #[test]
    fn resent_unacked_chunks_after_resume_are_not_doubled() {
        let mut s = Sequencer::default();
        for seq in [0, 1, 2, 4, 5] {
            s.push(seq, chunk(seq));
        }
        // The client reconnects and resends from next_seq().
        let from = s.next_seq();
        assert_eq!(from, 3);
        let mut delivered = Vec::new();
        for seq in from..7 {
            delivered.extend(s.push(seq, chunk(seq)));
        }
        assert_eq!(delivered, vec![audio(3), audio(4), audio(5), audio(6)]);
        assert_eq!(s.duplicates(), 2);
    }

    #[test]
    fn zero_window_means_no_reordering() {
        let mut s = Sequencer::new(0);
        s.push(0, chunk(0));
        let mut expected = gap(1, 1, 4);
        expected.push(audio(2));
        assert_eq!(s.push(2, chunk(2)), expected);
    }
}
