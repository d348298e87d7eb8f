//! A long answer heard as a stream: its audio is cut into pieces at pauses (or, failing a
//! pause, at a quiet moment), each piece decoded once while the candidate goes on, so the
//! final transcript only waits for the audio after the last cut and a turn can be longer
//! than whisper's 30 s window.

use std::sync::Arc;
use std::time::Duration;

use tokio::sync::{oneshot, watch};
use tokio_util::sync::CancellationToken;
use tokio_util::task::TaskTracker;

use crate::asr::pool::{AsrOutcome, AsrPool, Priority};
use crate::asr::{DecodeOptions, Transcription};
use crate::audio::ASR_SAMPLE_RATE;

/// A pause cuts a piece once the uncut audio is at least this long: shorter pieces lose
/// the context whisper needs for accuracy.
pub const PIECE_MIN_MS: u64 = 6_000;
/// Uncut audio this long is cut at its quietest moment even without a pause (whisper's
/// window is 30 s).
pub const PIECE_MAX_MS: u64 = 20_000;
/// Where the quietest moment is looked for: the end of the uncut audio.
const QUIET_SEARCH_MS: u64 = 3_000;
/// Window over which loudness is compared when looking for it.
const QUIET_WINDOW_MS: u64 = 20;

/// The decoded text of one piece, once known (`""` if its decode failed).
type PieceText = watch::Receiver<Option<Arc<str>>>;

/// The pieces of the user turn being spoken.
pub(super) struct Pieces {
    texts: Vec<PieceText>,
    /// Stops this turn's piece decodes when the turn is abandoned.
    cancel: CancellationToken,
    /// Decode waiters, so none outlives the call.
    tasks: TaskTracker,
}

impl Pieces {
    pub(super) fn new(cancel: CancellationToken) -> Self {
        Self {
            texts: Vec::new(),
            cancel,
            tasks: TaskTracker::new(),
        }
    }

    /// The text of the pieces decoded so far, in order, up to the first still decoding.
    pub(super) fn ready_text(&self) -> String {
        let mut out = Vec::new();
        for text in &self.texts {
            match text.borrow().as_deref() {
                Some(t) if !t.is_empty() => out.push(t.to_owned()),
                Some(_) => {}
                None => break,
            }
        }
        out.join(" ")
    }

    /// Queues the decode of one piece of this turn.
    pub(super) fn submit(&mut self, asr: &AsrPool, audio: Vec<f32>, options: DecodeOptions) {
        let (tx, rx) = watch::channel(None);
        self.texts.push(rx);
        let submitted = asr.submit(Priority::Final, audio, options, self.cancel.clone());
        self.tasks.spawn(async move {
            let text = match submitted {
                Ok(reply) => match reply.await {
                    Ok(AsrOutcome { result: Ok(t), .. }) => t.text,
                    _ => String::new(),
                },
                Err(_) => String::new(),
            };
            tx.send_replace(Some(text.into()));
        });
    }

    /// The pieces so far, for a final that must wait for them.
    pub(super) fn snapshot(&self) -> Vec<PieceText> {
        self.texts.clone()
    }

    /// The turn ended and its final has the pieces: the next turn starts uncut. The
    /// decodes go on (the final waits for them).
    pub(super) fn hand_over(&mut self, next: CancellationToken) {
        self.texts.clear();
        self.cancel = next;
    }

    /// The turn was abandoned (typed over, cleared, call ended): its decodes stop.
    pub(super) fn abandon(&mut self, next: CancellationToken) {
        self.cancel.cancel();
        self.hand_over(next);
    }
}

/// The whole turn's transcription: the pieces' text, then the tail's. The tail's outcome
/// supplies the timings; a failed tail fails the turn, a failed piece only loses its text.
pub(super) async fn assemble(
    pieces: Vec<PieceText>,
    tail: Option<oneshot::Receiver<AsrOutcome>>,
) -> Option<AsrOutcome> {
    let mut texts = Vec::new();
    for mut piece in pieces {
        if let Ok(text) = piece.wait_for(Option::is_some).await
            && let Some(t) = text.as_deref()
            && !t.is_empty()
        {
            texts.push(t.to_owned());
        }
    }
    let mut outcome = match tail {
        Some(rx) => rx.await.ok()?,
        None => AsrOutcome {
            result: Ok(Transcription::default()),
            queued: Duration::ZERO,
            decode: Duration::ZERO,
        },
    };
    if let Ok(t) = outcome.result.as_mut() {
        if !t.text.is_empty() {
            texts.push(std::mem::take(&mut t.text));
        }
        t.text = texts.join(" ");
    }
    Some(outcome)
}

/// Where to cut audio that has no pause: the start of its quietest short window in the
/// last few seconds, as a sample index.
pub fn quiet_cut(audio: &[f32]) -> usize {
    let window = (QUIET_WINDOW_MS * ASR_SAMPLE_RATE as u64 / 1000) as usize;
    let search = (QUIET_SEARCH_MS * ASR_SAMPLE_RATE as u64 / 1000) as usize;
    let from = audio.len().saturating_sub(search);
    audio[from..]
        .chunks(window)
        .enumerate()
        .map(|(i, w)| (i, w.iter().map(|s| s * s).sum::<f32>()))
        .min_by(|a, b| a.1.total_cmp(&b.1))
        .map_or(audio.len(), |(i, _)| from + i * window)
}

/// Splits audio longer than a piece may be at quiet moments (a manual commit of a long
/// answer): every part but the last is at most [`PIECE_MAX_MS`] long.
pub fn split_long(mut audio: Vec<f32>) -> Vec<Vec<f32>> {
    let max = (PIECE_MAX_MS * ASR_SAMPLE_RATE as u64 / 1000) as usize;
    let mut parts = Vec::new();
    while audio.len() > max {
        let cut = quiet_cut(&audio[..max]).max(1);
        let rest = audio.split_off(cut);
        parts.push(audio);
        audio = rest;
    }
    parts.push(audio);
    parts
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_quietest_moment_is_where_audio_is_cut() {
        let mut audio = vec![0.5f32; 16_000 * 5];
        let quiet = 16_000 * 4;
        audio[quiet..quiet + 320].fill(0.0);
        let cut = quiet_cut(&audio);
        assert!((quiet..quiet + 320).contains(&cut), "{cut}");
    }

    #[test]
    fn long_audio_splits_into_parts_whisper_can_take() {
        let audio = vec![0.1f32; 16_000 * 70];
        let parts = split_long(audio);
        assert!(parts.len() >= 4, "{}", parts.len());
        assert!(parts.iter().all(|p| p.len() <= 16_000 * 20));
        assert_eq!(parts.iter().map(Vec::len).sum::<usize>(), 16_000 * 70);
    }

    #[tokio::test]
    async fn the_final_text_is_the_pieces_then_the_tail() {
        let piece = |t: &str| watch::channel(Some(Arc::<str>::from(t))).1;
        let (tx, rx) = oneshot::channel();
        let _ = tx.send(AsrOutcome {
            result: Ok(Transcription {
                text: "the billing service.".into(),
                segments: Vec::new(),
            }),
            queued: Duration::ZERO,
            decode: Duration::from_millis(7),
        });
        let pieces = vec![
            piece("At my last job"),
            piece(""),
            piece("I was responsible for"),
        ];
        let out = assemble(pieces, Some(rx)).await.expect("outcome");
        let text = out.result.expect("text").text;
        assert_eq!(
            text,
            "At my last job I was responsible for the billing service."
        );
        assert_eq!(out.decode, Duration::from_millis(7));
    }
}
