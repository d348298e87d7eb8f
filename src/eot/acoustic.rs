//! The acoustic end-of-turn model on its own thread: a pause's last seconds of audio in, the
//! probability the turn is complete out. Bounded: when the thread is behind, a pause is
//! judged from its words alone rather than wait.

use std::sync::Arc;
use std::sync::mpsc::{SyncSender, TrySendError, sync_channel};

use tokio::sync::oneshot;
use tokio_util::sync::CancellationToken;

use super::smart_turn::SmartTurn;

/// Pauses waiting to be scored at most; more are judged without the model.
const QUEUE: usize = 8;
/// Audio the model looks at (it reads the last 8 s).
pub const WINDOW_SAMPLES: usize = 16_000 * 8;

struct Job {
    audio: Vec<f32>,
    cancel: CancellationToken,
    reply: oneshot::Sender<f32>,
}

/// One thread scoring pauses with Smart Turn.
#[derive(Clone)]
pub struct AcousticScorer {
    jobs: SyncSender<Job>,
}

impl std::fmt::Debug for AcousticScorer {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("AcousticScorer").finish_non_exhaustive()
    }
}

impl AcousticScorer {
    /// Starts the scoring thread over `model`.
    pub fn start(model: Arc<SmartTurn>) -> std::io::Result<Self> {
        let (jobs, rx) = sync_channel::<Job>(QUEUE);
        std::thread::Builder::new()
            .name("smart-turn".into())
            .spawn(move || {
                for job in rx {
                    if job.cancel.is_cancelled() {
                        continue;
                    }
                    match model.probability_complete(&job.audio) {
                        Ok(p) => {
                            let _ = job.reply.send(p);
                        }
                        Err(e) => tracing::warn!(error = %e, "Smart Turn failed; pause judged by its words"),
                    }
                }
            })?;
        Ok(Self { jobs })
    }

    /// Queues a pause's audio; `None` when the thread is saturated or gone.
    pub fn score(
        &self,
        audio: Vec<f32>,
        cancel: CancellationToken,
    ) -> Option<oneshot::Receiver<f32>> {
        let (reply, rx) = oneshot::channel();
        match self.jobs.try_send(Job {
            audio,
            cancel,
            reply,
        }) {
            Ok(()) => Some(rx),
            Err(TrySendError::Full(_) | TrySendError::Disconnected(_)) => None,
        }
    }
}
