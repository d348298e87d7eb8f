//! Partial transcripts while the user speaks: one decode in flight at a time, at most one
//! per partial interval, and never one that would arrive after the turn's final.

use tokio::sync::mpsc;
use tokio::time::Instant;
use tokio_util::sync::CancellationToken;

use super::Session;
use crate::asr::pool::Priority;
use crate::audio::ASR_SAMPLE_RATE;
use crate::call::events::CallEvent;
use crate::call::outbox::ClientGone;

/// Shortest utterance worth a partial decode, in 16 kHz samples.
const MIN_PARTIAL_SAMPLES: usize = ASR_SAMPLE_RATE as usize / 2;

/// A partial transcript coming back from the pool.
#[derive(Debug)]
pub struct PartialResult {
    turn_id: u32,
    text: String,
}

/// The partial-transcript schedule of one call.
pub(super) struct Partials {
    /// Aborts the decode in flight; replaced after each stop.
    cancel: CancellationToken,
    in_flight: bool,
    last_at: Instant,
    tx: mpsc::Sender<PartialResult>,
    /// Decode waiters, so none outlives the call.
    tasks: tokio_util::task::TaskTracker,
}

impl Partials {
    pub(super) fn new() -> (Self, mpsc::Receiver<PartialResult>) {
        let (tx, rx) = mpsc::channel(16);
        let partials = Self {
            cancel: CancellationToken::new(),
            in_flight: false,
            last_at: Instant::now(),
            tx,
            tasks: tokio_util::task::TaskTracker::new(),
        };
        (partials, rx)
    }

    /// The socket dropped: a decode in flight will never be waited for.
    pub(super) fn detached(&mut self) {
        self.in_flight = false;
    }

    /// A user turn began: the first partial comes one interval from now.
    pub(super) fn turn_began(&mut self) {
        self.last_at = Instant::now();
    }
}

impl Session {
    /// Aborts the partial decode in flight (if any); later partials get a fresh token.
    pub(super) fn stop_partials(&mut self) {
        self.partials.cancel.cancel();
        self.partials.cancel = CancellationToken::new();
    }

    /// Periodic work (every [`super::super::driver::TICK`]): a partial decode when one is due.
    pub fn on_tick(&mut self) {
        let Some(turn_id) = self.speaking_turn else {
            return;
        };
        let p = &self.partials;
        if p.in_flight
            || self.speculation.is_some()
            || p.last_at.elapsed() < self.settings.partial_interval
        {
            return;
        }
        let Some(s) = self.started.as_ref() else {
            return;
        };
        // Finals before partials: a progress transcript is not worth delaying one.
        if s.ingest.utterance.len() < MIN_PARTIAL_SAMPLES || self.engines.asr.queued().0 > 0 {
            return;
        }
        let audio = s.ingest.utterance.clone();
        let cancel = self.partials.cancel.clone();
        let decode = self.decode_options();
        let Ok(rx) = self
            .engines
            .asr
            .submit(Priority::Partial, audio, decode, cancel)
        else {
            return;
        };
        self.partials.in_flight = true;
        self.partials.last_at = Instant::now();
        let tx = self.partials.tx.clone();
        self.partials.tasks.spawn(async move {
            let text = match rx.await {
                Ok(o) => o.result.map(|t| t.text).unwrap_or_default(),
                Err(_) => String::new(),
            };
            let _ = tx.send(PartialResult { turn_id, text }).await;
        });
    }

    /// A partial transcript came back.
    pub async fn on_partial(&mut self, p: PartialResult) -> Result<(), ClientGone> {
        self.partials.in_flight = false;
        // Finals before partials: a partial for a turn that has ended is stale.
        if self.speaking_turn != Some(p.turn_id) || self.speculation.is_some() || p.text.is_empty()
        {
            return Ok(());
        }
        // Only the audio after the last piece was decoded: the pieces come first.
        let so_far = self.pieces.ready_text();
        let text = if so_far.is_empty() {
            p.text
        } else {
            format!("{so_far} {}", p.text)
        };
        self.outbox
            .emit(CallEvent::Transcript {
                turn_id: p.turn_id,
                text,
                is_final: false,
                span_ms: None,
            })
            .await
    }
}
