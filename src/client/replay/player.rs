//! The player replay models for each turn: a playback clock that starts with the turn's
//! first audio frame, stops at `response.paused` (the buffer is kept) and goes on at
//! `response.resumed`, so a frame counts as late (a stall) only against playback that was
//! running, never against the pause; and the turn's pauses with how each ended.

use std::time::{Duration, Instant};

use super::pacing::frames_to_duration;

/// How a pause of the response ended.
#[derive(Debug, Clone, Copy, PartialEq, Eq, serde::Serialize, serde::Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum PauseOutcome {
    /// `response.resumed`: the speech over it was a backchannel.
    Resumed,
    /// `response.done` came while paused: the speech took the floor.
    Cancelled,
    /// Neither came before the call ended.
    Open,
}

/// One `response.paused` of a turn, as the client saw it.
#[derive(Debug, Clone)]
pub(super) struct Pause {
    /// When `response.paused` arrived.
    pub(super) at: Instant,
    /// `audioMs`: where the server put the onset of the speech over the response.
    pub(super) audio_ms: u64,
    /// When `response.resumed` (or the `response.done` that ended it) arrived.
    pub(super) ended_at: Option<Instant>,
    /// How it ended.
    pub(super) outcome: PauseOutcome,
    /// `response.resumed.pausedMs`: how long the server held the response.
    pub(super) server_paused_ms: Option<u64>,
    /// `response.resumed.text`: what the server heard said over it.
    pub(super) text: Option<String>,
}

/// The modelled player of one turn's audio.
#[derive(Debug, Default)]
pub(super) struct Player {
    /// Playback time lost to pauses that ended.
    paused_total: Duration,
    /// Since when playback is paused, when it is.
    paused_since: Option<Instant>,
    /// The most an arriving frame was behind running playback.
    pub(super) stall: Duration,
    /// Every pause, in order.
    pub(super) pauses: Vec<Pause>,
}

impl Player {
    /// A frame arrived at `at` after `frames_before` frames of the turn (at `rate`), the
    /// first of which arrived at `first`. While paused it only fills the buffer; else it
    /// is due when playback from `first`, less the time spent paused, reaches it.
    pub(super) fn frame(&mut self, first: Instant, frames_before: u64, rate: u32, at: Instant) {
        if self.paused_since.is_some() {
            return;
        }
        let due = first + frames_to_duration(frames_before, rate) + self.paused_total;
        self.stall = self.stall.max(at.saturating_duration_since(due));
    }

    /// `response.paused` arrived: playback stops, keeping what is buffered.
    pub(super) fn pause(&mut self, audio_ms: u64, at: Instant) {
        if self.paused_since.is_some() {
            return;
        }
        self.paused_since = Some(at);
        self.pauses.push(Pause {
            at,
            audio_ms,
            ended_at: None,
            outcome: PauseOutcome::Open,
            server_paused_ms: None,
            text: None,
        });
    }

    /// `response.resumed` arrived: playback goes on from where it stopped.
    pub(super) fn resume(&mut self, server_paused_ms: u64, text: String, at: Instant) {
        if let Some(p) = self.end_pause(PauseOutcome::Resumed, at) {
            p.server_paused_ms = Some(server_paused_ms);
            p.text = Some(text);
        }
    }

    /// The response ended (`response.done`): a pause still open was the end of it.
    pub(super) fn stopped(&mut self, at: Instant) {
        self.end_pause(PauseOutcome::Cancelled, at);
    }

    fn end_pause(&mut self, outcome: PauseOutcome, at: Instant) -> Option<&mut Pause> {
        let since = self.paused_since.take()?;
        self.paused_total += at.saturating_duration_since(since);
        let p = self.pauses.last_mut()?;
        p.ended_at = Some(at);
        p.outcome = outcome;
        Some(p)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_pause_is_not_a_stall_and_a_late_frame_after_it_is() {
        let t0 = Instant::now();
        let ms = Duration::from_millis;
        let mut p = Player::default();
        // 100 ms frames at 1 kHz (100 frames each), sent 400 ms ahead.
        for (i, arrival) in [0, 0, 0, 0, 100].into_iter().enumerate() {
            p.frame(t0, i as u64 * 100, 1000, t0 + ms(arrival));
        }
        assert_eq!(p.stall, Duration::ZERO);
        // Paused at 250 ms for 1 s: the server sends nothing meanwhile, then goes on.
        p.pause(1200, t0 + ms(250));
        assert!(p.paused_since.is_some());
        p.frame(t0, 500, 1000, t0 + ms(900));
        assert_eq!(p.stall, Duration::ZERO, "a frame while paused only buffers");
        p.resume(990, "okay".into(), t0 + ms(1250));
        // Frame 6 is due at 600 ms + 1 s of pause.
        p.frame(t0, 600, 1000, t0 + ms(1500));
        assert_eq!(p.stall, Duration::ZERO);
        p.frame(t0, 700, 1000, t0 + ms(1750));
        assert_eq!(p.stall, ms(50), "late against running playback");
        let pause = &p.pauses[0];
        assert_eq!(pause.outcome, PauseOutcome::Resumed);
        assert_eq!(pause.audio_ms, 1200);
        assert_eq!(pause.server_paused_ms, Some(990));
        assert_eq!(pause.text.as_deref(), Some("okay"));
        assert_eq!(pause.ended_at, Some(t0 + ms(1250)));
        // A second pause that the response's end closes was a cancel.
        p.pause(3000, t0 + ms(2000));
        p.pause(3100, t0 + ms(2050));
        p.stopped(t0 + ms(2400));
        assert_eq!(p.pauses.len(), 2, "one pause until it ends");
        assert_eq!(p.pauses[1].outcome, PauseOutcome::Cancelled);
        assert!(p.paused_since.is_none());
        // A resume with no pause changes nothing.
        p.resume(10, String::new(), t0 + ms(2500));
        assert_eq!(p.pauses.len(), 2);
    }
}
