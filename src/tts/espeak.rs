//! The espeak-ng engine: in-process synthesis through the raw `espeakng-sys` bindings, on
//! one dedicated thread that owns espeak-ng's global C state.
//!
//! espeak-ng keeps all its state in C globals, so it can only be used from one thread at a
//! time, and it must not run on a tokio worker. One process-wide thread (started by the first
//! [`EspeakSynthesizer::new`]) takes jobs from a bounded queue, one at a time; every
//! `EspeakSynthesizer` (whatever its voice and rate) shares it.

use std::cell::{Cell, RefCell};
use std::ffi::{CString, c_int, c_short};
use std::sync::OnceLock;

use espeakng_sys as sys;
use futures_util::future::BoxFuture;
use tokio::sync::{mpsc, oneshot};
use tokio_util::sync::CancellationToken;

use super::{Speech, Synthesizer, TtsError, Urgency};

/// Jobs waiting for the espeak thread; a full queue makes callers wait (backpressure).
const QUEUE_DEPTH: usize = 64;

/// Settings of one espeak-ng synthesizer.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct EspeakConfig {
    /// espeak-ng voice name, e.g. `en-us`, `en-gb`, `en-us+f3` (see `espeak-ng --voices`).
    pub voice: String,
    /// Speaking rate in words per minute (80 to 450).
    pub rate_wpm: u32,
}

/// espeak-ng's voice unless one is named.
pub const DEFAULT_VOICE: &str = "en-us";

/// espeak-ng's speaking rate unless one is set, words per minute.
pub const DEFAULT_RATE_WPM: c_int = 175;

impl Default for EspeakConfig {
    fn default() -> Self {
        Self {
            voice: DEFAULT_VOICE.into(),
            rate_wpm: DEFAULT_RATE_WPM as u32,
        }
    }
}

/// In-process espeak-ng.
///
/// Output is espeak's audio as is: 16-bit mono at the rate espeak-ng reports (22050 Hz),
/// including the short silences espeak puts before and after the speech (nothing is trimmed,
/// so sentences joined back to back keep natural pauses).
///
/// Throughput: all synthesizers share one espeak thread, so sentences from all calls are
/// synthesized one after another (espeak-ng runs many times faster than real time).
#[derive(Debug, Clone)]
pub struct EspeakSynthesizer {
    /// The voice as a C string, checked to exist at construction.
    voice: CString,
    /// Words per minute, checked to be in range at construction.
    rate_wpm: c_int,
    /// Where jobs go: the shared espeak thread.
    jobs: mpsc::Sender<Request>,
    /// The rate espeak-ng produces, for every [`Speech`].
    sample_rate: u32,
}

impl EspeakSynthesizer {
    /// Starts espeak-ng (once per process) and checks the voice and rate.
    ///
    /// Fails with [`TtsError::Init`] if espeak-ng's data files cannot be loaded (it uses
    /// `ESPEAK_DATA_PATH` or the system default, `/usr/lib/x86_64-linux-gnu/espeak-ng-data` on
    /// Debian), with [`TtsError::Voice`] for an unknown voice.
    pub async fn new(config: EspeakConfig) -> Result<Self, TtsError> {
        if !(80..=450).contains(&config.rate_wpm) {
            return Err(TtsError::Config(format!(
                "rate {} wpm is outside 80..=450",
                config.rate_wpm
            )));
        }
        let voice = CString::new(config.voice.clone())
            .map_err(|_| TtsError::Config("voice name contains a NUL byte".into()))?;
        // Starting the thread waits for espeak-ng to load its data: keep that off the runtime.
        let worker = tokio::task::spawn_blocking(worker)
            .await
            .map_err(|_| TtsError::WorkerGone)??;
        let synthesizer = Self {
            voice,
            rate_wpm: config.rate_wpm as c_int,
            jobs: worker.jobs.clone(),
            sample_rate: worker.sample_rate,
        };
        let (reply, answer) = oneshot::channel();
        synthesizer
            .jobs
            .send(Request::Configure {
                voice: synthesizer.voice.clone(),
                rate_wpm: synthesizer.rate_wpm,
                reply,
            })
            .await
            .map_err(|_| TtsError::WorkerGone)?;
        answer.await.map_err(|_| TtsError::WorkerGone)??;
        Ok(synthesizer)
    }

    /// The sample rate of every [`Speech`] this synthesizer returns.
    pub fn sample_rate(&self) -> u32 {
        self.sample_rate
    }
}

impl Synthesizer for EspeakSynthesizer {
    fn synthesize(
        &self,
        text: String,
        cancel: CancellationToken,
        _urgency: Urgency,
    ) -> BoxFuture<'static, Result<Speech, TtsError>> {
        let jobs = self.jobs.clone();
        let voice = self.voice.clone();
        let rate_wpm = self.rate_wpm;
        let sample_rate = self.sample_rate;
        Box::pin(async move {
            if cancel.is_cancelled() {
                return Err(TtsError::Cancelled);
            }
            if text.trim().is_empty() {
                return Ok(Speech {
                    samples: Vec::new(),
                    sample_rate,
                });
            }
            let (reply, answer) = oneshot::channel();
            let job = Request::Synthesize(Job {
                text,
                voice,
                rate_wpm,
                cancel: cancel.clone(),
                reply,
            });
            tokio::select! {
                biased;
                _ = cancel.cancelled() => return Err(TtsError::Cancelled),
                sent = jobs.send(job) => sent.map_err(|_| TtsError::WorkerGone)?,
            }
            // On cancel we return at once; the thread notices the token (at dequeue or in its
            // audio callback) and drops the job.
            tokio::select! {
                biased;
                _ = cancel.cancelled() => Err(TtsError::Cancelled),
                result = answer => result.unwrap_or(Err(TtsError::WorkerGone)),
            }
        })
    }

    fn name(&self) -> &'static str {
        "espeak-ng"
    }

    fn voice(&self) -> String {
        format!("espeak:{}", self.voice.to_string_lossy())
    }
}

/// Work for the espeak thread.
#[derive(Debug)]
enum Request {
    /// Select a voice and rate now, to report an unknown voice at construction.
    Configure {
        voice: CString,
        rate_wpm: c_int,
        reply: oneshot::Sender<Result<(), TtsError>>,
    },
    Synthesize(Job),
    /// Phonemes of each text, for a neural voice (see [`Phonemizer`]).
    Phonemize {
        voice: CString,
        texts: Vec<String>,
        reply: oneshot::Sender<Result<Vec<String>, TtsError>>,
    },
}

#[derive(Debug)]
struct Job {
    text: String,
    voice: CString,
    rate_wpm: c_int,
    cancel: CancellationToken,
    reply: oneshot::Sender<Result<Speech, TtsError>>,
}

/// The handle to the process-wide espeak thread.
#[derive(Debug)]
struct Worker {
    jobs: mpsc::Sender<Request>,
    sample_rate: u32,
}

/// The espeak thread, started on first use; a failed start is remembered, since espeak-ng's
/// data will not appear later in the process.
static WORKER: OnceLock<Result<Worker, TtsError>> = OnceLock::new();

fn worker() -> Result<&'static Worker, TtsError> {
    WORKER
        .get_or_init(start_worker)
        .as_ref()
        .map_err(Clone::clone)
}

fn start_worker() -> Result<Worker, TtsError> {
    let (jobs, queue) = mpsc::channel(QUEUE_DEPTH);
    let (ready_tx, ready_rx) = std::sync::mpsc::sync_channel(1);
    std::thread::Builder::new()
        .name("espeak-ng".into())
        .spawn(move || {
            let sample_rate = match initialize() {
                Ok(rate) => rate,
                Err(e) => {
                    let _ = ready_tx.send(Err(e));
                    return;
                }
            };
            let _ = ready_tx.send(Ok(sample_rate));
            serve(queue, sample_rate);
        })
        .map_err(|e| TtsError::Init(format!("cannot start the espeak-ng thread: {e}")))?;
    let sample_rate = ready_rx
        .recv()
        .map_err(|_| TtsError::Init("espeak-ng thread died while starting".into()))??;
    Ok(Worker { jobs, sample_rate })
}

thread_local! {
    /// Audio of the job in progress, filled by [`on_audio`]. Only the espeak thread uses it.
    static SAMPLES: RefCell<Vec<i16>> = const { RefCell::new(Vec::new()) };
    /// The token of the job in progress, polled by [`on_audio`] to abort synthesis.
    static CANCEL: RefCell<Option<CancellationToken>> = const { RefCell::new(None) };
    /// Set by [`on_audio`] when it aborted synthesis because of the token.
    static ABORTED: Cell<bool> = const { Cell::new(false) };
}

/// espeak-ng's audio callback; runs on the espeak thread inside `espeak_Synth`. Returns 1 to
/// make espeak stop, 0 to continue. Must not panic (it is called from C).
unsafe extern "C" fn on_audio(
    wav: *mut c_short,
    count: c_int,
    _events: *mut sys::espeak_EVENT,
) -> c_int {
    let cancelled = CANCEL.with(|token| {
        token
            .try_borrow()
            .is_ok_and(|t| t.as_ref().is_some_and(CancellationToken::is_cancelled))
    });
    if cancelled {
        ABORTED.with(|a| a.set(true));
        return 1;
    }
    if !wav.is_null() && count > 0 {
        // SAFETY: espeak passes `count` valid samples at `wav`, alive for this call.
        let chunk = unsafe { std::slice::from_raw_parts(wav, count as usize) };
        SAMPLES.with(|samples| {
            if let Ok(mut samples) = samples.try_borrow_mut() {
                samples.extend_from_slice(chunk);
            }
        });
    }
    0
}

/// Loads espeak-ng's data and sets synchronous output; returns the sample rate.
fn initialize() -> Result<u32, TtsError> {
    // SAFETY: called once, on the espeak thread, before any other espeak call. The
    // espeak_ng_* calls are what espeak_Initialize does, minus its exit(1) on missing data.
    unsafe {
        sys::espeak_ng_InitializePath(std::ptr::null());
        let mut context: sys::espeak_ng_ERROR_CONTEXT = std::ptr::null_mut();
        let status = sys::espeak_ng_Initialize(&mut context);
        sys::espeak_ng_ClearErrorContext(&mut context);
        if status != sys::espeak_ng_STATUS_ENS_OK {
            return Err(TtsError::Init(format!(
                "espeak-ng could not load its data (ESPEAK_DATA_PATH or the system default): {}",
                status_message(status)
            )));
        }
        let status = sys::espeak_ng_InitializeOutput(
            sys::espeak_ng_OUTPUT_MODE_ENOUTPUT_MODE_SYNCHRONOUS,
            0,
            std::ptr::null(),
        );
        if status != sys::espeak_ng_STATUS_ENS_OK {
            return Err(TtsError::Init(format!(
                "espeak-ng output setup failed: {}",
                status_message(status)
            )));
        }
        sys::espeak_SetSynthCallback(Some(on_audio));
        let rate = sys::espeak_ng_GetSampleRate();
        u32::try_from(rate)
            .ok()
            .filter(|r| *r > 0)
            .ok_or_else(|| TtsError::Init(format!("espeak-ng reported sample rate {rate}")))
    }
}

fn status_message(status: sys::espeak_ng_STATUS) -> String {
    let mut buf = [0 as std::ffi::c_char; 256];
    // SAFETY: the buffer and its length match; espeak NUL-terminates within it.
    unsafe {
        sys::espeak_ng_GetStatusCodeMessage(status, buf.as_mut_ptr(), buf.len());
        std::ffi::CStr::from_ptr(buf.as_ptr())
            .to_string_lossy()
            .into_owned()
    }
}

/// The espeak thread's loop: one job at a time, until the process ends.
fn serve(mut queue: mpsc::Receiver<Request>, sample_rate: u32) {
    // The voice and rate espeak currently has, to skip re-selecting them for every job.
    let mut current: Option<(CString, c_int)> = None;
    while let Some(request) = queue.blocking_recv() {
        match request {
            Request::Configure {
                voice,
                rate_wpm,
                reply,
            } => {
                let _ = reply.send(select_voice(&mut current, &voice, rate_wpm));
            }
            Request::Phonemize {
                voice,
                texts,
                reply,
            } => {
                let rate = current.as_ref().map_or(DEFAULT_RATE_WPM, |(_, r)| *r);
                let result = select_voice(&mut current, &voice, rate)
                    .and_then(|()| texts.iter().map(|t| text_to_phonemes(t)).collect());
                let _ = reply.send(result);
            }
            Request::Synthesize(job) => {
                if job.cancel.is_cancelled() || job.reply.is_closed() {
                    let _ = job.reply.send(Err(TtsError::Cancelled));
                    continue;
                }
                let result = select_voice(&mut current, &job.voice, job.rate_wpm)
                    .and_then(|()| synthesize(&job.text, &job.cancel, sample_rate));
                let _ = job.reply.send(result);
            }
        }
    }
}

fn select_voice(
    current: &mut Option<(CString, c_int)>,
    voice: &CString,
    rate_wpm: c_int,
) -> Result<(), TtsError> {
    if current
        .as_ref()
        .is_some_and(|(v, r)| v == voice && *r == rate_wpm)
    {
        return Ok(());
    }
    *current = None;
    // SAFETY: on the espeak thread after initialization; `voice` is NUL-terminated.
    unsafe {
        let code = sys::espeak_SetVoiceByName(voice.as_ptr());
        if code != sys::espeak_ERROR_EE_OK {
            return Err(TtsError::Voice {
                voice: voice.to_string_lossy().into_owned(),
                code,
            });
        }
        // After the voice: selecting a voice may reset the rate.
        let code = sys::espeak_SetParameter(sys::espeak_PARAMETER_espeakRATE, rate_wpm, 0);
        if code != sys::espeak_ERROR_EE_OK {
            return Err(TtsError::Config(format!(
                "espeak-ng refused rate {rate_wpm} (error {code})"
            )));
        }
    }
    *current = Some((voice.clone(), rate_wpm));
    Ok(())
}

/// The IPA phonemes of `text` (stress marks included, no separators), as Piper voices are
/// trained on. espeak-ng returns a text clause by clause; their phonemes are joined by a
/// space, and the punctuation between them is lost (callers split at punctuation first).
fn text_to_phonemes(text: &str) -> Result<String, TtsError> {
    let text = CString::new(text.replace('\0', " ")).map_err(|_| TtsError::Synthesis(-1))?;
    let mut cursor: *const std::ffi::c_void = text.as_ptr().cast();
    let mut phonemes = String::new();
    while !cursor.is_null() {
        // SAFETY: on the espeak thread after initialization; `cursor` points into `text`
        // (NUL-terminated, alive for the loop) or is null, which espeak sets at the end. The
        // returned string is espeak's static buffer, copied before the next call.
        let clause = unsafe {
            let out = sys::espeak_TextToPhonemes(
                &mut cursor,
                sys::espeakCHARS_UTF8 as c_int,
                sys::espeakPHONEMES_IPA as c_int,
            );
            if out.is_null() {
                break;
            }
            std::ffi::CStr::from_ptr(out).to_string_lossy().into_owned()
        };
        let clause = clause.trim();
        if clause.is_empty() {
            continue;
        }
        if !phonemes.is_empty() {
            phonemes.push(' ');
        }
        phonemes.push_str(clause);
    }
    Ok(phonemes)
}

/// IPA phonemes in one voice's language, from the shared espeak thread (espeak-ng's
/// phonemizer shares its global state with its synthesizer).
#[derive(Debug, Clone)]
pub struct Phonemizer {
    voice: CString,
    jobs: mpsc::Sender<Request>,
}

impl Phonemizer {
    /// Starts espeak-ng (once per process) and checks that it knows `voice`.
    pub async fn new(voice: &str) -> Result<Self, TtsError> {
        let voice = CString::new(voice)
            .map_err(|_| TtsError::Config("voice name contains a NUL byte".into()))?;
        let worker = tokio::task::spawn_blocking(worker)
            .await
            .map_err(|_| TtsError::WorkerGone)??;
        let phonemizer = Self {
            voice,
            jobs: worker.jobs.clone(),
        };
        phonemizer.phonemize(vec![String::new()]).await?;
        Ok(phonemizer)
    }

    /// The phonemes of each of `texts`.
    pub async fn phonemize(&self, texts: Vec<String>) -> Result<Vec<String>, TtsError> {
        let (reply, answer) = oneshot::channel();
        self.jobs
            .send(Request::Phonemize {
                voice: self.voice.clone(),
                texts,
                reply,
            })
            .await
            .map_err(|_| TtsError::WorkerGone)?;
        answer.await.unwrap_or(Err(TtsError::WorkerGone))
    }
}

/// Synthesizes one text on the espeak thread, collecting the callback's samples.
fn synthesize(
    text: &str,
    cancel: &CancellationToken,
    sample_rate: u32,
) -> Result<Speech, TtsError> {
    // A NUL would end the C string early; a space reads the same.
    let text = CString::new(text.replace('\0', " ")).map_err(|_| TtsError::Synthesis(-1))?;
    let size = text.as_bytes_with_nul().len();
    SAMPLES.with(|s| s.borrow_mut().clear());
    CANCEL.with(|c| *c.borrow_mut() = Some(cancel.clone()));
    ABORTED.with(|a| a.set(false));
    // SAFETY: on the espeak thread after initialization; `text` is NUL-terminated UTF-8 and
    // outlives the call; synchronous mode means the callback has finished when it returns.
    let code = unsafe {
        let code = sys::espeak_Synth(
            text.as_ptr().cast(),
            size,
            0,
            sys::espeak_POSITION_TYPE_POS_CHARACTER,
            0,
            sys::espeakCHARS_UTF8,
            std::ptr::null_mut(),
            std::ptr::null_mut(),
        );
        sys::espeak_Synchronize();
        code
    };
    // Never keep the token past the job.
    CANCEL.with(|c| c.borrow_mut().take());
    let samples = SAMPLES.with(|s| std::mem::take(&mut *s.borrow_mut()));
    if ABORTED.with(Cell::get) || cancel.is_cancelled() {
        return Err(TtsError::Cancelled);
    }
    if code != sys::espeak_ERROR_EE_OK {
        return Err(TtsError::Synthesis(code));
    }
    Ok(Speech {
        samples,
        sample_rate,
    })
}

#[cfg(test)]
mod tests {
    use std::time::{Duration, Instant};

    use super::*;

    async fn engine() -> EspeakSynthesizer {
        EspeakSynthesizer::new(EspeakConfig::default())
            .await
            .expect("espeak-ng starts (is espeak-ng-data installed?)")
    }

    fn rms(samples: &[i16]) -> f64 {
        let sum: f64 = samples.iter().map(|&s| f64::from(s).powi(2)).sum();
        (sum / samples.len().max(1) as f64).sqrt()
    }

    async fn say(tts: &EspeakSynthesizer, text: &str) -> Speech {
        let start = Instant::now();
        let speech = tts
            .synthesize(text.to_owned(), CancellationToken::new(), Urgency::Now)
            .await
            .expect("synthesis");
        eprintln!(
            "espeak-ng: {} chars -> {:.2} s of audio in {:?}",
            text.len(),
            speech.duration().as_secs_f64(),
            start.elapsed()
        );
        speech
    }

    #[tokio::test]
    async fn a_sentence_becomes_seconds_of_audible_speech() {
        let tts = engine().await;
        let speech = say(&tts, "I have five years of experience with Rust.").await;
        assert_eq!(speech.sample_rate, 22050);
        assert_eq!(tts.sample_rate(), 22050);
        let secs = speech.duration().as_secs_f64();
        assert!((1.5..=5.0).contains(&secs), "{secs} s");
        assert!(rms(&speech.samples) > 300.0, "rms {}", rms(&speech.samples));
    }

    #[tokio::test(flavor = "multi_thread", worker_threads = 2)]
    async fn concurrent_callers_get_their_own_audio() {
        let tts = engine().await;
        let short = "Yes.";
        let long = "Tell me about a hard bug you had to track down, and how you found it.";
        let solo_short = say(&tts, short).await;
        let solo_long = say(&tts, long).await;
        let mut tasks = Vec::new();
        for i in 0..6 {
            let tts = tts.clone();
            let text = if i % 2 == 0 { short } else { long };
            tasks.push(tokio::spawn(async move {
                tts.synthesize(text.to_owned(), CancellationToken::new(), Urgency::Now)
                    .await
            }));
        }
        for (i, task) in tasks.into_iter().enumerate() {
            let speech = task.await.expect("task").expect("synthesis");
            let expected = if i % 2 == 0 { &solo_short } else { &solo_long };
            // espeak carries a little prosody state from one text to the next, so lengths
            // vary by a few milliseconds; mixed-up or interleaved audio would be far off.
            let (got, want) = (speech.samples.len() as f64, expected.samples.len() as f64);
            assert!(
                (got - want).abs() < want * 0.1,
                "caller {i}: {got} vs {want} samples"
            );
        }
    }

    #[tokio::test]
    async fn cancelled_token_gives_cancelled() {
        let tts = engine().await;
        let cancel = CancellationToken::new();
        cancel.cancel();
        let result = tts
            .synthesize("Hello there.".into(), cancel, Urgency::Now)
            .await;
        assert_eq!(result, Err(TtsError::Cancelled));
    }

    #[tokio::test]
    async fn cancel_during_synthesis_stops_it_and_the_engine_recovers() {
        let tts = engine().await;
        let long = "This is a long answer that goes on and on. ".repeat(40);
        let cancel = CancellationToken::new();
        let job = tts.synthesize(long, cancel.clone(), Urgency::Now);
        let canceller = async {
            tokio::time::sleep(Duration::from_millis(5)).await;
            cancel.cancel();
        };
        let (result, ()) = tokio::join!(job, canceller);
        assert_eq!(result, Err(TtsError::Cancelled));
        let speech = say(&tts, "Still working.").await;
        assert!(speech.duration() > Duration::from_millis(500));
    }

    #[tokio::test]
    async fn empty_text_gives_no_audio_without_error() {
        let tts = engine().await;
        for text in ["", "   ", "\n"] {
            let speech = say(&tts, text).await;
            assert!(speech.duration() < Duration::from_millis(300), "{text:?}");
        }
        let speech = say(&tts, "nul\0inside").await;
        assert!(speech.duration() > Duration::from_millis(300));
    }

    #[tokio::test]
    async fn phonemes_come_out_in_ipa_with_stress_marks() {
        let got = Phonemizer::new("en-us")
            .await
            .expect("en-us")
            .phonemize(vec!["Hello world".into(), String::new()])
            .await
            .expect("phonemize");
        assert_eq!(got.len(), 2);
        assert!(got[0].contains('ˈ') && got[0].contains(' '), "{got:?}");
        assert!(got[0].starts_with("h"), "{got:?}");
        assert_eq!(got[1], "");
        let err = Phonemizer::new("xx-nonexistent").await;
        assert!(matches!(err, Err(TtsError::Voice { .. })), "{err:?}");
    }

    #[tokio::test]
    async fn bad_settings_are_rejected() {
        let unknown = EspeakConfig {
            voice: "xx-nonexistent".into(),
            ..EspeakConfig::default()
        };
        let err = EspeakSynthesizer::new(unknown).await.unwrap_err();
        assert!(matches!(err, TtsError::Voice { .. }), "{err}");
        let too_fast = EspeakConfig {
            rate_wpm: 2000,
            ..EspeakConfig::default()
        };
        let err = EspeakSynthesizer::new(too_fast).await.unwrap_err();
        assert!(matches!(err, TtsError::Config(_)), "{err}");
        // A bad voice elsewhere must not break a good synthesizer.
        let speech = say(&engine().await, "Fine.").await;
        assert!(!speech.samples.is_empty());
    }
}
