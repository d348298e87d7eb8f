//! The whisper-rs engine: one loaded model shared by every caller, one decoder state per
//! concurrent decode, cancellation through whisper's abort callback.

use std::path::Path;
use std::sync::{Mutex, Once};
use std::time::Instant;

use tokio_util::sync::CancellationToken;
use whisper_rs::{
    FullParams, SamplingStrategy, WhisperContext, WhisperContextParameters, WhisperState,
};

use super::{AsrError, DecodeOptions, Segment, Transcriber, Transcription, clean_text};

/// Whisper on a ggml model file, CPU by default.
pub struct WhisperEngine {
    context: WhisperContext,
    /// Idle decoder states. A state holds the KV caches (tens of MB); reusing them avoids
    /// an allocation per decode, and there are never more than the peak concurrency.
    idle_states: Mutex<Vec<WhisperState>>,
    /// Threads per decode. On 2 cores, one decode with 2 threads beats two with 1 each for
    /// latency; the pool decides how many run at once.
    threads: usize,
    /// How long the model took to load, for logs and the report.
    pub load_ms: u64,
}

static LOG_HOOK: Once = Once::new();

impl WhisperEngine {
    /// Loads a ggml Whisper model (e.g. `models/ggml-tiny.en.bin`).
    pub fn load(path: &Path, threads: usize) -> Result<Self, AsrError> {
        // Route whisper.cpp's chatty stderr logging away (no log backend is enabled).
        LOG_HOOK.call_once(whisper_rs::install_logging_hooks);
        let load_err = |reason: String| AsrError::Load {
            path: path.display().to_string(),
            reason,
        };
        if !path.is_file() {
            return Err(load_err(
                "file not found (run scripts/fetch-models to download and convert it)".into(),
            ));
        }
        let started = Instant::now();
        let context = WhisperContext::new_with_params(path, WhisperContextParameters::default())
            .map_err(|e| load_err(format!("{e:?} (is it a ggml Whisper file?)")))?;
        let first = context
            .create_state()
            .map_err(|e| load_err(format!("cannot create decoder state: {e:?}")))?;
        Ok(Self {
            context,
            idle_states: Mutex::new(vec![first]),
            threads: threads.max(1),
            load_ms: started.elapsed().as_millis() as u64,
        })
    }

    /// True when the model is multilingual (then English is forced).
    pub fn is_multilingual(&self) -> bool {
        self.context.is_multilingual()
    }

    fn take_state(&self) -> Result<WhisperState, AsrError> {
        let reused = self.idle_states.lock().ok().and_then(|mut s| s.pop());
        match reused {
            Some(s) => Ok(s),
            None => self
                .context
                .create_state()
                .map_err(|e| AsrError::Engine(format!("cannot create decoder state: {e:?}"))),
        }
    }

    fn return_state(&self, state: WhisperState) {
        if let Ok(mut idle) = self.idle_states.lock() {
            idle.push(state);
        }
    }
}

/// whisper's abort hook: true stops the decode. whisper.cpp 1.8.3 runs the encoder graph
/// without the hook and polls it after the encoder and between decoder steps, so a cancel
/// lands within one encoder pass (about 0.25 s for tiny.en with a 10 s window on 2 cores,
/// 0.8 s with the full 30 s window; see docs/asr.md).
unsafe extern "C" fn abort_on_cancel(user_data: *mut std::ffi::c_void) -> bool {
    // SAFETY: user_data is the `&CancellationToken` set in `transcribe`, alive for the call.
    let token = unsafe { &*(user_data as *const CancellationToken) };
    token.is_cancelled()
}

impl Transcriber for WhisperEngine {
    fn transcribe(
        &self,
        audio: &[f32],
        options: &DecodeOptions,
        cancel: &CancellationToken,
    ) -> Result<Transcription, AsrError> {
        if cancel.is_cancelled() {
            return Err(AsrError::Cancelled);
        }
        // whisper.cpp rejects clips under 100 ms; pad them with silence instead.
        let padded;
        let audio = if audio.len() < 1_600 {
            padded = [audio, &[0.0; 1_600][..1_600 - audio.len()]].concat();
            &padded[..]
        } else {
            audio
        };
        let mut params = FullParams::new(SamplingStrategy::Greedy { best_of: 1 });
        params.set_n_threads(self.threads as i32);
        params.set_language(Some("en"));
        params.set_translate(false);
        params.set_no_context(true);
        params.set_single_segment(true);
        params.set_no_timestamps(true);
        params.set_print_special(false);
        params.set_print_progress(false);
        params.set_print_realtime(false);
        params.set_print_timestamps(false);
        params.set_suppress_blank(true);
        params.set_suppress_nst(true);
        // No temperature fallback: a retry doubles the time; the token cap ends loops.
        params.set_temperature_inc(0.0);
        params.set_max_tokens(options.max_tokens as i32);
        params.set_audio_ctx(options.audio_context.frames_for(audio.len()));
        if let Some(prompt) = options.initial_prompt.as_deref().filter(|p| !p.is_empty()) {
            params.set_initial_prompt(prompt);
        }
        // whisper-rs 0.16's `set_abort_callback_safe` hands the C side a pointer of the wrong
        // type (its trampoline reads a `Box<dyn FnMut>` as the closure itself) and hangs or
        // crashes, so the callback is set up by hand: the token outlives `full()` below.
        // SAFETY: `abort_on_cancel` only reads the token through a shared reference, and
        // `cancel` lives until after `state.full` returns.
        unsafe {
            params.set_abort_callback(Some(abort_on_cancel));
            params.set_abort_callback_user_data(
                cancel as *const CancellationToken as *mut std::ffi::c_void,
            );
        }

        let mut state = self.take_state()?;
        let result = state.full(params, audio);
        if cancel.is_cancelled() {
            self.return_state(state);
            return Err(AsrError::Cancelled);
        }
        if let Err(e) = result {
            // A failed decode may leave the state inconsistent: drop it rather than reuse it.
            return Err(AsrError::Engine(format!("{e:?}")));
        }
        let mut segments = Vec::new();
        for segment in state.as_iter() {
            let text = segment
                .to_str_lossy()
                .map(|t| clean_text(&t))
                .unwrap_or_default();
            if text.is_empty() {
                continue;
            }
            segments.push(Segment {
                start_ms: segment.start_timestamp().max(0) as u64 * 10,
                end_ms: segment.end_timestamp().max(0) as u64 * 10,
                text,
            });
        }
        self.return_state(state);
        let text = segments
            .iter()
            .map(|s| s.text.as_str())
            .collect::<Vec<_>>()
            .join(" ");
        Ok(Transcription { text, segments })
    }

    fn name(&self) -> &'static str {
        "whisper"
    }
}
