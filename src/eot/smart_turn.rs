//! Smart Turn v3.2, Pipecat's acoustic end-of-turn model: the probability that an
//! utterance is finished, from its last 8 s of audio, run through ONNX Runtime.
//!
//! A call is CPU work of tens of milliseconds (features plus the model): it blocks, so the
//! caller runs it off the tokio workers. One [`SmartTurn`] runs one call at a time (ONNX
//! Runtime's Rust binding needs the session exclusively); load more for parallel calls.

use std::path::{Path, PathBuf};
use std::sync::Mutex;

use ort::session::Session;
use ort::value::TensorRef;

use super::mel::{LogMel, N_FRAMES, N_MELS};
use crate::onnx::{self, OnnxError};

/// Where scripts/fetch-models puts the model, relative to the working directory.
pub const DEFAULT_MODEL: &str = "models/smart-turn-v3.2-cpu.onnx";

/// The model's input: log-mel features `[batch, 80, 800]`.
const INPUT: &str = "input_features";

/// The model's output: `[batch, 1]`, already a probability (the sigmoid is in the graph).
const OUTPUT: &str = "logits";

/// Why the model could not be loaded or run.
#[derive(Debug, thiserror::Error)]
pub enum SmartTurnError {
    /// ONNX Runtime or the model file could not be loaded, or a run failed.
    #[error(transparent)]
    Onnx(#[from] OnnxError),
    /// The file is an ONNX model, but not one with Smart Turn v3's input and output.
    #[error("{}: not a Smart Turn v3 model ({reason})", path.display())]
    NotSmartTurn {
        /// The model file.
        path: PathBuf,
        /// What did not match.
        reason: String,
    },
    /// There was nothing to score: no samples, or samples that are not finite numbers.
    #[error("Smart Turn needs finite 16 kHz samples, got {0}")]
    BadAudio(&'static str),
}

/// The loaded model and its feature extractor.
pub struct SmartTurn {
    session: Mutex<Session>,
    mel: LogMel,
}

impl std::fmt::Debug for SmartTurn {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("SmartTurn").finish_non_exhaustive()
    }
}

impl SmartTurn {
    /// Loads the model at `path` (e.g. [`DEFAULT_MODEL`]) on one intra-op thread, Pipecat's
    /// default. Reads and optimises the file: blocking.
    pub fn load(path: impl AsRef<Path>) -> Result<Self, SmartTurnError> {
        Self::load_with_threads(path, onnx::DEFAULT_THREADS)
    }

    /// As [`SmartTurn::load`], with `threads` intra-op threads for each call.
    pub fn load_with_threads(
        path: impl AsRef<Path>,
        threads: usize,
    ) -> Result<Self, SmartTurnError> {
        let path = path.as_ref();
        let session = onnx::session_with_threads(path, threads)?;
        check_signature(&session, path)?;
        Ok(Self {
            session: Mutex::new(session),
            mel: LogMel::new(),
        })
    }

    /// The probability (0..1) that the utterance ending with `audio_16k` (mono, 16 kHz,
    /// -1..1, its trailing silence included) is a finished turn; above 0.5 the model calls
    /// it complete. Only the last 8 s count. Blocking: tens of milliseconds of CPU.
    pub fn probability_complete(&self, audio_16k: &[f32]) -> Result<f32, SmartTurnError> {
        if audio_16k.is_empty() {
            return Err(SmartTurnError::BadAudio("no samples"));
        }
        if !audio_16k.iter().all(|s| s.is_finite()) {
            return Err(SmartTurnError::BadAudio("a NaN or infinite sample"));
        }
        self.probability_of_features(&self.mel.features(audio_16k))
    }

    /// The model's output for features made by [`LogMel::features`] (`N_MELS * N_FRAMES`
    /// values, mel-major). Exposed so the reference check can feed both sides' features.
    pub fn probability_of_features(&self, features: &[f32]) -> Result<f32, SmartTurnError> {
        let input = TensorRef::from_array_view(([1usize, N_MELS, N_FRAMES], features))
            .map_err(OnnxError::run)?;
        let mut session = self.session.lock().unwrap_or_else(|e| e.into_inner());
        let outputs = session
            .run(ort::inputs![INPUT => input])
            .map_err(OnnxError::run)?;
        let (_, values) = outputs[OUTPUT]
            .try_extract_tensor::<f32>()
            .map_err(OnnxError::run)?;
        values
            .first()
            .copied()
            .ok_or_else(|| OnnxError::Run(format!("`{OUTPUT}` is empty")).into())
    }
}

/// Fails at load, not at the first turn, when the file is some other model.
fn check_signature(session: &Session, path: &Path) -> Result<(), SmartTurnError> {
    let names = |list: Vec<&str>| list.join(", ");
    let inputs: Vec<&str> = session.inputs().iter().map(|i| i.name()).collect();
    let outputs: Vec<&str> = session.outputs().iter().map(|o| o.name()).collect();
    if inputs != [INPUT] || !outputs.contains(&OUTPUT) {
        return Err(SmartTurnError::NotSmartTurn {
            path: path.to_path_buf(),
            reason: format!(
                "inputs [{}], outputs [{}]; want input {INPUT} and output {OUTPUT}",
                names(inputs),
                names(outputs)
            ),
        });
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;

    /// The real model, or a failure saying how to get it (never a skip).
    fn model() -> SmartTurn {
        SmartTurn::load(DEFAULT_MODEL).unwrap_or_else(|e| {
            panic!("{e}: run scripts/fetch-models to fetch Smart Turn v3.2 and ONNX Runtime")
        })
    }

    #[test]
    fn silence_scores_a_probability() {
        let p = model()
            .probability_complete(&vec![0.0; 16_000])
            .unwrap_or_else(|e| panic!("{e}"));
        assert!((0.0..=1.0).contains(&p), "{p}");
    }

    #[test]
    fn empty_or_non_finite_audio_is_refused() {
        let model = model();
        assert!(matches!(
            model.probability_complete(&[]),
            Err(SmartTurnError::BadAudio(_))
        ));
        assert!(matches!(
            model.probability_complete(&[0.1, f32::NAN]),
            Err(SmartTurnError::BadAudio(_))
        ));
    }

    #[test]
    fn another_model_is_refused_at_load() {
        let e = SmartTurn::load("models/silero_vad.onnx").expect_err("silero is not smart turn");
        assert!(matches!(e, SmartTurnError::NotSmartTurn { .. }), "{e}");
        assert!(e.to_string().contains(INPUT), "{e}");
    }

    #[test]
    fn a_missing_model_says_how_to_fetch_it() {
        let e = SmartTurn::load("models/no-such-smart-turn.onnx").expect_err("missing");
        assert!(e.to_string().contains("scripts/fetch-models"), "{e}");
    }
}
