//! `callgate replay URL FILE.wav...`: the CLI test harness.
//!
//! For each WAV file it opens a call, streams the file as a microphone would (real-time
//! pace, or with `fast` as fast as the server acknowledges), keeps sending silence until
//! the user turn's `response.done` arrives, ends the call, and reports every user turn:
//! transcript, AI text, status, the client-measured voice-to-voice latency and the
//! server's latency breakdown.
//!
//! Output: live progress (progress bar, partial and final transcripts, AI text, one
//! latency line per turn) goes to stderr; [`run`] prints the final reports on stdout
//! (one line per turn, or JSON lines with `--json`).
//!
//! Voice-to-voice is measured from the *true* end of speech in the file, found from the
//! signal by [`end_of_speech`], not from the end of the file: its wall-clock instant is the
//! moment the chunk containing it was sent. Chunks are sent like a microphone delivers
//! them: chunk *i* (covering file time `[a, b)`) leaves at `start + b`, so the instant
//! includes the one-chunk buffering a real client has. With `fast`, chunks leave as fast as
//! the ack window allows and the figure mostly measures the server's catch-up, not the
//! call's latency.

use std::collections::BTreeMap;
use std::io::{IsTerminal, Write};
use std::path::{Path, PathBuf};
use std::time::{Duration, Instant};

use indicatif::{ProgressBar, ProgressDrawTarget, ProgressStyle};
use serde::{Deserialize, Serialize};

use super::{CallClient, ClientError, Incoming};
use crate::protocol::{
    DEFAULT_OUTPUT_SAMPLE_RATE, DoneStatus, ErrorEvent, InputFormat, Latency, OutputFormat,
    SAMPLE_RATE_RANGE, ServerMessage, SessionStart, Transport, TurnDetection, TurnMode,
    base64_to_samples,
};

/// Default input chunk length.
pub const DEFAULT_CHUNK_MS: u32 = 20;
/// Default tail timeout: how long after the file is streamed the turn may take.
pub const DEFAULT_TAIL_TIMEOUT: Duration = Duration::from_secs(15);
/// With `fast`, how many input chunks may be sent and not yet acknowledged.
pub const MAX_UNACKED_CHUNKS: u32 = 64;
/// How long to wait for `session.ended` after `session.end`.
const END_TIMEOUT: Duration = Duration::from_secs(5);
/// Analysis frame of [`end_of_speech`].
pub const EOS_FRAME_MS: u32 = 10;
/// Absolute floor of the speech threshold in [`end_of_speech`], dBFS.
pub const EOS_MIN_DBFS: f32 = -45.0;
/// Margin of the speech threshold over the noise floor in [`end_of_speech`], dB.
pub const EOS_FLOOR_MARGIN_DB: f32 = 15.0;

/// What to replay and how.
#[derive(Debug, Clone)]
pub struct ReplayOptions {
    /// `ws://host:port/v1/call`.
    pub url: String,
    /// WAV files, one call each, in order.
    pub files: Vec<PathBuf>,
    /// Send as fast as the server acknowledges (at most [`MAX_UNACKED_CHUNKS`] ahead)
    /// instead of at real-time pace. The silence tail is real-time either way.
    pub fast: bool,
    /// Where to write the AI's audio, `<file-stem>.turn<N>.wav`; created if missing.
    pub out_dir: Option<PathBuf>,
    /// Input chunk length in ms.
    pub chunk_ms: u32,
    /// `output.sampleRate` asked for.
    pub output_rate: u32,
    /// `persona` in `session.start`.
    pub persona: Option<String>,
    /// `turnDetection.silenceMs`; `None` leaves the server default.
    pub silence_ms: Option<u32>,
    /// Limit from the end of the file (and, with `fast`, from the last ack while the
    /// window is full) to the turn's `response.done`.
    pub tail_timeout: Duration,
    /// No progress bar and no live transcript/AI text; errors are still printed.
    pub quiet: bool,
}

impl ReplayOptions {
    /// Options with every default: real-time pace, 20 ms chunks, 24 kHz output, 15 s tail.
    pub fn new(url: impl Into<String>, files: Vec<PathBuf>) -> Self {
        Self {
            url: url.into(),
            files,
            fast: false,
            out_dir: None,
            chunk_ms: DEFAULT_CHUNK_MS,
            output_rate: DEFAULT_OUTPUT_SAMPLE_RATE,
            persona: None,
            silence_ms: None,
            tail_timeout: DEFAULT_TAIL_TIMEOUT,
            quiet: false,
        }
    }
}

/// Command-line arguments of `callgate replay`.
#[derive(Debug, Clone, clap::Args)]
pub struct ReplayArgs {
    /// Server endpoint, e.g. ws://127.0.0.1:8080/v1/call
    pub url: String,
    /// WAV files (any rate, mono or stereo); one call each.
    #[arg(required = true)]
    pub files: Vec<PathBuf>,
    /// Stream as fast as the server acknowledges instead of in real time.
    #[arg(long)]
    pub fast: bool,
    /// Write the AI's audio per turn to DIR/<file-stem>.turn<N>.wav.
    #[arg(long = "out", value_name = "DIR")]
    pub out: Option<PathBuf>,
    /// Input chunk length in milliseconds.
    #[arg(long, default_value_t = DEFAULT_CHUNK_MS, value_parser = clap::value_parser!(u32).range(10..=1000))]
    pub chunk_ms: u32,
    /// Output sample rate asked of the server.
    #[arg(long, default_value_t = DEFAULT_OUTPUT_SAMPLE_RATE, value_parser = clap::value_parser!(u32).range(8000..=48000))]
    pub output_rate: u32,
    /// AI persona (session.start `persona`).
    #[arg(long)]
    pub persona: Option<String>,
    /// Silence that ends a turn (turnDetection.silenceMs); server default when omitted.
    #[arg(long, value_parser = clap::value_parser!(u32).range(100..=5000))]
    pub silence_ms: Option<u32>,
    /// Seconds to wait after the file for the response to finish before failing the turn.
    #[arg(long, value_name = "SECONDS", default_value_t = DEFAULT_TAIL_TIMEOUT.as_secs_f64())]
    pub tail_timeout: f64,
    /// Print the reports as JSON lines on stdout at the end.
    #[arg(long)]
    pub json: bool,
    /// No progress bar and no live transcripts.
    #[arg(long, short)]
    pub quiet: bool,
}

impl From<ReplayArgs> for ReplayOptions {
    fn from(a: ReplayArgs) -> Self {
        Self {
            url: a.url,
            files: a.files,
            fast: a.fast,
            out_dir: a.out,
            chunk_ms: a.chunk_ms,
            output_rate: a.output_rate,
            persona: a.persona,
            silence_ms: a.silence_ms,
            tail_timeout: Duration::try_from_secs_f64(a.tail_timeout)
                .unwrap_or(DEFAULT_TAIL_TIMEOUT),
            quiet: a.quiet,
        }
    }
}

/// How a user turn ended, from the client's point of view.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum TurnStatus {
    /// `response.done` completed.
    Completed,
    /// `response.done` cancelled (barge-in, e.g. a pause in the file split it in two turns).
    Cancelled,
    /// `response.done` failed.
    Failed,
    /// No `response.done` within the tail timeout (or no user turn was detected at all).
    Timeout,
    /// The connection failed or the server ended the call before the turn was done.
    Error,
}

/// One user turn of one file.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct TurnReport {
    /// The WAV file replayed.
    pub file: PathBuf,
    /// The server's session id, empty when the call never opened.
    pub session_id: String,
    /// The user turn (from 1); 0 when no user turn was detected.
    pub turn_id: u32,
    /// The final transcript, empty when none came.
    pub final_transcript: String,
    /// The AI's text (`response.done.text`, else the deltas received).
    pub ai_text: String,
    /// How the turn ended.
    pub status: TurnStatus,
    /// End of speech in the file to the first kind-2 frame of the turn, client clock.
    pub voice_to_voice_ms: Option<u64>,
    /// The server's `response.done.latency` (all `None` without a `response.done`).
    pub latency: Latency,
    /// Duration of the turn's output audio received.
    pub audio_ms_received: u64,
    /// `error` events of the turn; errors without a `turnId` go to the file's last turn.
    pub errors: Vec<ErrorEvent>,
    /// Problems seen by the client (connection, protocol violations by the server).
    pub client_errors: Vec<String>,
    /// Where the turn's audio was written.
    pub audio_file: Option<PathBuf>,
}

impl TurnReport {
    /// Whether the turn completed (what the CLI exit code is based on).
    pub fn is_completed(&self) -> bool {
        self.status == TurnStatus::Completed
    }
}

/// Replays every file in order and returns one report per user turn (at least one per
/// file). Per-call problems (refused connection, timeouts) become reports with status
/// `error`/`timeout`; `Err` is only for input problems (unreadable WAV, output folder).
pub async fn replay(opts: &ReplayOptions) -> Result<Vec<TurnReport>, ClientError> {
    if let Some(dir) = &opts.out_dir {
        std::fs::create_dir_all(dir).map_err(|e| file_error(dir, e))?;
    }
    // Read everything first so a typo in the last file fails before the first call.
    let inputs = opts
        .files
        .iter()
        .map(|f| load_wav(f))
        .collect::<Result<Vec<_>, _>>()?;
    let mut reports = Vec::new();
    for (path, audio) in opts.files.iter().zip(&inputs) {
        reports.extend(replay_file(opts, path, audio).await?);
    }
    Ok(reports)
}

/// Parses-to-exit-code entry point for the CLI: replays, then prints the reports on stdout
/// (JSON lines with `--json`, else one summary line per turn). Returns whether every turn
/// completed; the CLI exits non-zero when it did not.
pub async fn run(args: ReplayArgs) -> Result<bool, ClientError> {
    let json = args.json;
    let opts = ReplayOptions::from(args);
    let reports = replay(&opts).await?;
    let mut out = std::io::stdout().lock();
    for r in &reports {
        let line = if json {
            serde_json::to_string(r).unwrap_or_default()
        } else {
            format_turn_line(r)
        };
        let _ = writeln!(out, "{line}");
    }
    Ok(reports.iter().all(TurnReport::is_completed))
}

// ---------------------------------------------------------------------------------------
// Input audio
// ---------------------------------------------------------------------------------------

/// A WAV file as it is sent: interleaved s16 at the file's own rate and channels.
#[derive(Debug, Clone, PartialEq)]
pub struct InputAudio {
    /// Interleaved samples.
    pub samples: Vec<i16>,
    /// Frames per second.
    pub rate: u32,
    /// 1 or 2.
    pub channels: u16,
}

impl InputAudio {
    /// Length in frames (samples per channel).
    pub fn frames(&self) -> usize {
        self.samples.len() / self.channels as usize
    }
}

/// Reads a WAV file for sending. Int or float samples of any width become s16. The file's
/// rate and channels are kept (the server resamples and down-mixes) except where the
/// protocol cannot carry them: more than 2 channels are down-mixed to mono, and a rate
/// outside 8-48 kHz is resampled to the nearest end of that range.
pub fn load_wav(path: &Path) -> Result<InputAudio, ClientError> {
    let err = |e: hound::Error| file_error(path, e);
    let mut reader = hound::WavReader::open(path).map_err(err)?;
    let spec = reader.spec();
    let mut samples: Vec<i16> = match spec.sample_format {
        hound::SampleFormat::Float => reader
            .samples::<f32>()
            .map(|s| s.map(|v| (v.clamp(-1.0, 1.0) * 32767.0).round() as i16))
            .collect::<Result<_, _>>()
            .map_err(err)?,
        hound::SampleFormat::Int => {
            let bits = spec.bits_per_sample as i32;
            reader
                .samples::<i32>()
                .map(|s| {
                    s.map(|v| {
                        if bits > 16 {
                            (v >> (bits - 16)) as i16
                        } else {
                            (v << (16 - bits)) as i16
                        }
                    })
                })
                .collect::<Result<_, _>>()
                .map_err(err)?
        }
    };
    let mut channels = spec.channels.max(1);
    let mut rate = spec.sample_rate;
    if channels > 2 {
        let mono = crate::audio::i16_to_mono_f32(&samples, channels as usize);
        samples = crate::audio::f32_to_i16(&mono);
        channels = 1;
    }
    if !SAMPLE_RATE_RANGE.contains(&rate) {
        let to = rate.clamp(*SAMPLE_RATE_RANGE.start(), *SAMPLE_RATE_RANGE.end());
        let mono = crate::audio::i16_to_mono_f32(&samples, channels as usize);
        let resampled = crate::audio::resample::resample_all(&mono, rate, to)
            .map_err(|e| file_error(path, e))?;
        samples = crate::audio::f32_to_i16(&resampled);
        channels = 1;
        rate = to;
    }
    samples.truncate(samples.len() - samples.len() % channels as usize);
    Ok(InputAudio {
        samples,
        rate,
        channels,
    })
}

fn file_error(path: &Path, e: impl std::fmt::Display) -> ClientError {
    ClientError::File {
        path: path.display().to_string(),
        message: e.to_string(),
    }
}

// ---------------------------------------------------------------------------------------
// Pure parts: end of speech, pacing, formatting
// ---------------------------------------------------------------------------------------

/// The true end of speech in a mono signal, in samples (exclusive): the end of the last
/// 10 ms frame whose RMS is above `max(-45 dBFS, noise floor + 15 dB)`. The noise floor is
/// the 10th percentile of the frames' RMS, so trailing silence, room tone or hiss of any
/// constant level is not mistaken for speech. `None` when no frame is above the threshold
/// (silence, steady noise, empty input).
pub fn end_of_speech(mono: &[f32], rate: u32) -> Option<usize> {
    let frame = (rate as usize * EOS_FRAME_MS as usize / 1000).max(1);
    let levels: Vec<f32> = mono.chunks(frame).map(rms_dbfs).collect();
    if levels.is_empty() {
        return None;
    }
    let mut sorted = levels.clone();
    sorted.sort_by(f32::total_cmp);
    let floor = sorted[sorted.len() / 10];
    let threshold = EOS_MIN_DBFS.max(floor + EOS_FLOOR_MARGIN_DB);
    let last = levels.iter().rposition(|&db| db > threshold)?;
    Some(((last + 1) * frame).min(mono.len()))
}

/// RMS level of a block in dBFS (a full-scale square wave is 0 dBFS); -120 for silence.
pub fn rms_dbfs(block: &[f32]) -> f32 {
    if block.is_empty() {
        return -120.0;
    }
    let mean_sq = block.iter().map(|&s| s as f64 * s as f64).sum::<f64>() / block.len() as f64;
    if mean_sq <= 1e-12 {
        -120.0
    } else {
        (10.0 * mean_sq.log10()) as f32
    }
}

/// Frame (per-channel sample) where chunk `i` ends, exclusive, for chunks of `chunk_ms` at
/// `rate`. Computed from the start of the stream so fractional chunk lengths (e.g. 20 ms at
/// 11,025 Hz = 220.5 frames) never drift.
pub fn chunk_end(i: u64, rate: u32, chunk_ms: u32) -> u64 {
    (i + 1) * rate as u64 * chunk_ms as u64 / 1000
}

/// Number of chunks needed for `frames` frames.
pub fn chunk_count(frames: u64, rate: u32, chunk_ms: u32) -> u64 {
    if frames == 0 {
        return 0;
    }
    chunk_index_of(frames - 1, rate, chunk_ms) + 1
}

/// The chunk containing frame `frame`: the `i` with `chunk_end(i - 1) <= frame < chunk_end(i)`.
pub fn chunk_index_of(frame: u64, rate: u32, chunk_ms: u32) -> u64 {
    let per = rate as u64 * chunk_ms as u64; // frames per chunk, times 1000
    ((frame + 1) * 1000).div_ceil(per) - 1
}

/// Time from the start of the stream at which `frames` frames have been captured: a
/// chunk is sent at the offset of its end, like a microphone delivers it.
pub fn frames_to_duration(frames: u64, rate: u32) -> Duration {
    Duration::from_nanos((frames as u128 * 1_000_000_000 / rate as u128) as u64)
}

/// Chunks sent and not acknowledged: `next_seq` is the seq of the next chunk, `acked` the
/// highest acknowledged.
pub fn unacked(next_seq: u32, acked: Option<u32>) -> u32 {
    next_seq.saturating_sub(acked.map_or(0, |a| a + 1))
}

fn ms(v: Option<u64>) -> String {
    v.map_or_else(|| "-".to_owned(), |v| v.to_string())
}

/// The server's latency breakdown on one line, `-` for stages that did not run.
pub fn format_latency(l: &Latency) -> String {
    format!(
        "endpoint {} | asr {} | llm first token {} | tts first audio {} | first audio {} | total {} ms",
        ms(l.endpoint_ms),
        ms(l.asr_ms),
        ms(l.llm_first_token_ms),
        ms(l.tts_first_audio_ms),
        ms(l.first_audio_ms),
        ms(l.total_ms)
    )
}

/// The per-turn latency line printed when a turn ends.
pub fn format_latency_line(r: &TurnReport) -> String {
    format!(
        "turn {} {}: voice-to-voice {} ms | server: {} | AI audio {:.2} s",
        r.turn_id,
        status_word(r.status),
        ms(r.voice_to_voice_ms),
        format_latency(&r.latency),
        r.audio_ms_received as f64 / 1000.0
    )
}

/// One summary line per turn (the CLI's stdout without `--json`): file, turn, status,
/// voice-to-voice, then what was heard and said.
pub fn format_turn_line(r: &TurnReport) -> String {
    let mut line = format!(
        "{}\tturn {}\t{}\tv2v {} ms\tserver first audio {} ms\tyou: {:?}\tAI: {:?}",
        r.file.display(),
        r.turn_id,
        status_word(r.status),
        ms(r.voice_to_voice_ms),
        ms(r.latency.first_audio_ms),
        r.final_transcript,
        r.ai_text
    );
    for e in &r.errors {
        line.push_str(&format!("\terror {}: {}", e.code, e.message));
    }
    for e in &r.client_errors {
        line.push_str(&format!("\tclient error: {e}"));
    }
    line
}

fn status_word(s: TurnStatus) -> &'static str {
    match s {
        TurnStatus::Completed => "completed",
        TurnStatus::Cancelled => "cancelled",
        TurnStatus::Failed => "failed",
        TurnStatus::Timeout => "timeout",
        TurnStatus::Error => "error",
    }
}

// ---------------------------------------------------------------------------------------
// Live output
// ---------------------------------------------------------------------------------------

/// What is on the current stderr line and not yet ended by a newline.
#[derive(PartialEq)]
enum Open {
    None,
    Partial,
    AiText(u32),
}

/// Live output on stderr. Partials overwrite one dim line on a terminal; while the
/// progress bar is up they become its message; lines go above the bar.
struct Printer {
    quiet: bool,
    tty: bool,
    bar: Option<ProgressBar>,
    open: Open,
}

impl Printer {
    fn new(quiet: bool) -> Self {
        Self {
            quiet,
            tty: std::io::stderr().is_terminal(),
            bar: None,
            open: Open::None,
        }
    }

    fn start_bar(&mut self, bytes: u64, name: &str) {
        if self.quiet || !self.tty {
            return;
        }
        self.close_open();
        let bar = ProgressBar::with_draw_target(Some(bytes), ProgressDrawTarget::stderr());
        if let Ok(style) = ProgressStyle::with_template(
            "{prefix} [{bar:30}] {bytes}/{total_bytes} {elapsed} {wide_msg:.dim}",
        ) {
            bar.set_style(style.progress_chars("=> "));
        }
        bar.set_prefix(name.to_owned());
        self.bar = Some(bar);
    }

    fn advance(&self, bytes: u64) {
        if let Some(bar) = &self.bar {
            bar.inc(bytes);
        }
    }

    fn end_bar(&mut self) {
        if let Some(bar) = self.bar.take() {
            bar.finish_and_clear();
        }
    }

    fn close_open(&mut self) {
        let mut err = std::io::stderr().lock();
        match self.open {
            Open::None => {}
            Open::Partial => {
                let _ = write!(err, "\r\x1b[2K");
            }
            Open::AiText(_) => {
                let _ = writeln!(err);
            }
        }
        let _ = err.flush();
        self.open = Open::None;
    }

    /// A full line; `always` lines (errors) print even when quiet.
    fn line(&mut self, text: &str, always: bool) {
        if self.quiet && !always {
            return;
        }
        self.close_open();
        match &self.bar {
            Some(bar) => bar.println(text),
            None => eprintln!("{text}"),
        }
    }

    fn partial(&mut self, text: &str) {
        if self.quiet {
            return;
        }
        if let Some(bar) = &self.bar {
            bar.set_message(text.to_owned());
        } else if self.tty {
            if matches!(self.open, Open::AiText(_)) {
                self.close_open();
            }
            let mut err = std::io::stderr().lock();
            let _ = write!(err, "\r\x1b[2K\x1b[2m  ... {text}\x1b[0m");
            let _ = err.flush();
            self.open = Open::Partial;
        }
        // Not a terminal: partials would only be noise in a log; the final follows.
    }

    /// AI text streamed inline; while the bar is up, it is buffered by the caller instead.
    fn ai_delta(&mut self, turn: u32, delta: &str) -> bool {
        if self.quiet || self.bar.is_some() {
            return false;
        }
        if self.open != Open::AiText(turn) {
            self.close_open();
            eprint!("AI [turn {turn}]: ");
            self.open = Open::AiText(turn);
        }
        eprint!("{delta}");
        let _ = std::io::stderr().flush();
        true
    }

    fn is_open_ai(&self, turn: u32) -> bool {
        self.open == Open::AiText(turn)
    }
}

// ---------------------------------------------------------------------------------------
// One file = one call
// ---------------------------------------------------------------------------------------

#[derive(Default)]
struct TurnState {
    final_transcript: String,
    /// Deltas received, used when no `response.done` came.
    deltas: String,
    /// Deltas printed live, so `response.done` knows whether to print the text.
    printed_live: bool,
    /// Speech started (server VAD) or a response started: the turn expects a `response.done`.
    open: bool,
    responded: bool,
    done: Option<(DoneStatus, String, Latency)>,
    first_audio_at: Option<Instant>,
    audio: Vec<i16>,
    errors: Vec<ErrorEvent>,
    client_errors: Vec<String>,
}

#[derive(PartialEq)]
enum Phase {
    Streaming,
    Tail,
}

enum Outcome {
    Finished,
    TimedOut,
    Broken(String),
}

struct FileRun<'a> {
    opts: &'a ReplayOptions,
    printer: Printer,
    turns: BTreeMap<u32, TurnState>,
    greeting: String,
    loose_errors: Vec<ErrorEvent>,
    loose_client_errors: Vec<String>,
    acked: Option<u32>,
    speaking: bool,
    server_ended: bool,
    output_rate: u32,
}

async fn replay_file(
    opts: &ReplayOptions,
    path: &Path,
    audio: &InputAudio,
) -> Result<Vec<TurnReport>, ClientError> {
    let mono = crate::audio::i16_to_mono_f32(&audio.samples, audio.channels as usize);
    let eos = end_of_speech(&mono, audio.rate);
    let mut run = FileRun {
        opts,
        printer: Printer::new(opts.quiet),
        turns: BTreeMap::new(),
        greeting: String::new(),
        loose_errors: Vec::new(),
        loose_client_errors: Vec::new(),
        acked: None,
        speaking: false,
        server_ended: false,
        output_rate: opts.output_rate,
    };
    let name = path.display().to_string();
    run.printer.line(
        &format!(
            "> {name}: {} Hz, {} ch, {:.2} s, speech ends at {}",
            audio.rate,
            audio.channels,
            audio.frames() as f64 / audio.rate as f64,
            eos.map_or_else(
                || "- (no speech found)".to_owned(),
                |e| format!("{:.2} s", e as f64 / audio.rate as f64)
            )
        ),
        false,
    );
    let start = SessionStart {
        token: None,
        persona: opts.persona.clone(),
        context: Default::default(),
        input: InputFormat {
            sample_rate: audio.rate,
            channels: audio.channels,
            encoding: crate::protocol::ENCODING_PCM_S16LE.to_owned(),
        },
        output: OutputFormat {
            sample_rate: opts.output_rate,
            transport: Transport::Binary,
            ..OutputFormat::default()
        },
        turn_detection: TurnDetection {
            mode: TurnMode::ServerVad,
            silence_ms: opts.silence_ms,
        },
    };
    let mut call = match CallClient::connect(&opts.url, &start).await {
        Ok(c) => c,
        Err(e) => {
            run.printer.line(&format!("error: {name}: {e}"), true);
            return Ok(vec![failed_report(
                path,
                "",
                TurnStatus::Error,
                e.to_string(),
            )]);
        }
    };
    run.output_rate = call.session.output.sample_rate;
    let session_id = call.session.session_id.clone();
    let (outcome, eos_sent_at) = run.stream(&mut call, path, audio, eos).await;
    run.printer.end_bar();
    let mut end_note = None;
    if !matches!(outcome, Outcome::Broken(_)) && !run.server_ended {
        let (ended, late) = call.end(END_TIMEOUT).await;
        for r in late {
            run.handle(r);
        }
        if let Err(e) = ended {
            end_note = Some(format!("session.end: {e}"));
        }
    }
    run.printer.close_open();
    run.finish(path, &session_id, outcome, eos_sent_at, end_note)
}

impl FileRun<'_> {
    /// Streams the file then silence until the user turns are done; returns how it ended
    /// and when the chunk holding the end of speech was sent.
    async fn stream(
        &mut self,
        call: &mut CallClient,
        path: &Path,
        audio: &InputAudio,
        eos: Option<usize>,
    ) -> (Outcome, Option<Instant>) {
        let (rate, ch, chunk_ms) = (audio.rate, audio.channels as usize, self.opts.chunk_ms);
        let frames = audio.frames() as u64;
        let n_chunks = chunk_count(frames, rate, chunk_ms);
        let eos_chunk = eos
            .filter(|&e| e > 0)
            .map(|e| chunk_index_of(e as u64 - 1, rate, chunk_ms));
        let chunk_dur = Duration::from_millis(chunk_ms as u64);
        let silence = vec![0i16; (rate as usize * chunk_ms as usize / 1000).max(1) * ch];
        let stem = path
            .file_name()
            .map_or_else(String::new, |s| s.to_string_lossy().into_owned());
        self.printer
            .start_bar(audio.samples.len() as u64 * 2, &stem);

        let t0 = tokio::time::Instant::now();
        let mut phase = Phase::Streaming;
        let mut next_chunk: u64 = 0;
        let mut tail_start = t0;
        let mut tail_chunks: u32 = 0;
        let mut last_progress = t0;
        let mut eos_sent_at = None;
        if n_chunks == 0 {
            phase = Phase::Tail;
        }
        loop {
            let now = tokio::time::Instant::now();
            let send_at = match phase {
                Phase::Streaming if self.opts.fast => {
                    (unacked(call.tx.next_seq(), self.acked) < MAX_UNACKED_CHUNKS).then_some(now)
                }
                Phase::Streaming => Some(
                    t0 + frames_to_duration(
                        chunk_end(next_chunk, rate, chunk_ms).min(frames),
                        rate,
                    ),
                ),
                Phase::Tail => Some(tail_start + chunk_dur * (tail_chunks + 1)),
            };
            let give_up = match phase {
                Phase::Streaming => last_progress + self.opts.tail_timeout,
                Phase::Tail => tail_start + self.opts.tail_timeout,
            };
            tokio::select! {
                biased;
                r = call.rx.recv() => match r {
                    Ok(r) => {
                        let before = self.acked;
                        self.handle(r);
                        if self.acked != before {
                            last_progress = tokio::time::Instant::now();
                        }
                        if self.server_ended {
                            return (Outcome::Broken("the server ended the call".into()), eos_sent_at);
                        }
                    }
                    Err(e) if !e.is_fatal() => {
                        self.printer.line(&format!("warning: {e}"), true);
                        self.loose_client_errors.push(e.to_string());
                    }
                    Err(e) => return (Outcome::Broken(e.to_string()), eos_sent_at),
                },
                _ = tokio::time::sleep_until(send_at.unwrap_or(give_up)), if send_at.is_some() => {
                    let result = match phase {
                        Phase::Streaming => {
                            let a = chunk_end_frame(next_chunk, rate, chunk_ms, frames, true);
                            let b = chunk_end_frame(next_chunk, rate, chunk_ms, frames, false);
                            let r = call.tx.send_audio(&audio.samples[a * ch..b * ch]).await;
                            if Some(next_chunk) == eos_chunk {
                                eos_sent_at = Some(Instant::now());
                            }
                            self.printer.advance(((b - a) * ch * 2) as u64);
                            next_chunk += 1;
                            last_progress = tokio::time::Instant::now();
                            if next_chunk >= n_chunks {
                                phase = Phase::Tail;
                                tail_start = tokio::time::Instant::now();
                                self.printer.end_bar();
                            }
                            r
                        }
                        Phase::Tail => {
                            tail_chunks += 1;
                            call.tx.send_audio(&silence).await
                        }
                    };
                    if let Err(e) = result {
                        return (Outcome::Broken(e.to_string()), eos_sent_at);
                    }
                }
                _ = tokio::time::sleep_until(give_up) => {
                    return (Outcome::TimedOut, eos_sent_at);
                }
            }
            if phase == Phase::Tail && self.user_turns_done() {
                return (Outcome::Finished, eos_sent_at);
            }
        }
    }

    /// At least one user turn got its `response.done`, none is still open, and the user
    /// is not mid-speech according to the server.
    fn user_turns_done(&self) -> bool {
        !self.speaking
            && self.turns.values().any(|t| t.done.is_some())
            && self.turns.values().all(|t| !t.open)
    }

    fn turn(&mut self, id: u32) -> &mut TurnState {
        self.turns.entry(id).or_default()
    }

    fn handle(&mut self, r: super::Received) {
        match r.msg {
            Incoming::Audio(chunk) => self.audio(chunk.turn, &chunk.samples, r.at),
            Incoming::Event(ev) => self.event(ev, r.at),
        }
    }

    fn audio(&mut self, turn_id: u32, samples: &[i16], at: Instant) {
        if turn_id == 0 {
            return; // greeting audio: not part of the replayed turn
        }
        let t = self.turn(turn_id);
        if t.done.is_some() {
            if t.client_errors.is_empty() {
                t.client_errors.push(format!(
                    "output audio for turn {turn_id} after its response.done"
                ));
            }
            return;
        }
        t.first_audio_at.get_or_insert(at);
        t.audio.extend_from_slice(samples);
    }

    fn event(&mut self, ev: ServerMessage, at: Instant) {
        match ev {
            ServerMessage::AudioAck { seq } => {
                self.acked = Some(self.acked.map_or(seq, |a| a.max(seq)));
            }
            ServerMessage::InputSpeechStarted { turn_id, .. } => {
                self.speaking = true;
                if turn_id > 0 {
                    self.turn(turn_id).open = true;
                }
            }
            ServerMessage::InputSpeechStopped { .. } => self.speaking = false,
            ServerMessage::Transcript {
                turn_id,
                text,
                is_final,
                ..
            } => {
                if is_final {
                    self.printer
                        .line(&format!("you [turn {turn_id}]: {text}"), false);
                    let t = self.turn(turn_id);
                    t.final_transcript = text;
                    t.open = true;
                } else {
                    self.printer.partial(&text);
                }
            }
            ServerMessage::ResponseStarted {
                turn_id,
                status,
                eta_ms,
            } => {
                if turn_id > 0 {
                    let t = self.turn(turn_id);
                    t.open = true;
                    t.responded = true;
                }
                if status != crate::protocol::ResponseStatus::Thinking {
                    self.printer.line(
                        &format!(
                            "turn {turn_id}: response {status:?} (eta {} ms)",
                            ms(eta_ms)
                        ),
                        false,
                    );
                }
            }
            ServerMessage::ResponseTextDelta { turn_id, delta, .. } => {
                let live = self.printer.ai_delta(turn_id, &delta);
                if turn_id == 0 {
                    self.greeting.push_str(&delta);
                } else {
                    let t = self.turn(turn_id);
                    t.deltas.push_str(&delta);
                    t.printed_live |= live;
                }
            }
            ServerMessage::ResponseAudioChunk { turn_id, audio, .. } => {
                match base64_to_samples(&audio) {
                    Ok(s) => self.audio(turn_id, &s, at),
                    Err(e) => self
                        .loose_client_errors
                        .push(format!("bad response.audio.chunk: {e}")),
                }
            }
            ServerMessage::ResponseDone {
                turn_id,
                status,
                text,
                latency,
                ..
            } => self.done(turn_id, status, text, latency),
            ServerMessage::Error(e) => {
                self.printer.line(
                    &format!(
                        "server error {}{}: {} ({})",
                        e.code,
                        e.turn_id
                            .map_or_else(String::new, |t| format!(" [turn {t}]")),
                        e.message,
                        if e.recoverable {
                            "recoverable"
                        } else {
                            "fatal"
                        }
                    ),
                    true,
                );
                match e.turn_id {
                    Some(t) if t > 0 => self.turn(t).errors.push(e),
                    _ => self.loose_errors.push(e),
                }
            }
            ServerMessage::SessionEnded { reason, .. } => {
                self.server_ended = true;
                self.printer
                    .line(&format!("the server ended the call ({reason:?})"), true);
            }
            ServerMessage::SessionStarted { .. } | ServerMessage::SessionResumed { .. } => {
                self.loose_client_errors
                    .push("unexpected session.started/resumed mid-call".into());
            }
            ServerMessage::Pong { .. } => {}
        }
    }

    fn done(&mut self, turn_id: u32, status: DoneStatus, text: String, latency: Latency) {
        if turn_id == 0 {
            if self.printer.is_open_ai(0) {
                self.printer.close_open();
            } else {
                self.printer.line(&format!("AI [greeting]: {text}"), false);
            }
            self.greeting = text;
            return;
        }
        let printed_live = self.printer.is_open_ai(turn_id);
        let t = self.turn(turn_id);
        if t.done.is_some() {
            t.client_errors
                .push(format!("second response.done for turn {turn_id}"));
            return;
        }
        t.open = false;
        t.done = Some((status, text.clone(), latency));
        if printed_live {
            self.printer.close_open();
        } else {
            self.printer
                .line(&format!("AI [turn {turn_id}]: {text}"), false);
        }
        // The latency line is printed by `finish`, once voice-to-voice is known.
    }

    fn finish(
        mut self,
        path: &Path,
        session_id: &str,
        outcome: Outcome,
        eos_sent_at: Option<Instant>,
        end_note: Option<String>,
    ) -> Result<Vec<TurnReport>, ClientError> {
        let broken = match &outcome {
            Outcome::Broken(e) => {
                self.printer
                    .line(&format!("error: {}: {e}", path.display()), true);
                Some(e.clone())
            }
            _ => None,
        };
        let any_done = self.turns.values().any(|t| t.done.is_some());
        if matches!(outcome, Outcome::TimedOut) && any_done {
            // Speech the server heard but never answered (no response.started): a turn the
            // server dropped, not one the client waits for.
            self.turns.retain(|_, t| t.done.is_some() || t.responded);
        }
        // Voice-to-voice belongs to the turn answering the file's final speech: the last
        // user turn, if its first audio came after the end of speech was sent.
        let last_turn = self.turns.keys().next_back().copied();
        let mut reports = Vec::new();
        let stem = path
            .file_stem()
            .map_or_else(|| "replay".to_owned(), |s| s.to_string_lossy().into_owned());
        for (id, t) in std::mem::take(&mut self.turns) {
            let (status, ai_text, latency) = match t.done {
                Some((s, text, l)) => (map_done(s), text, l),
                None if broken.is_some() => {
                    (TurnStatus::Error, t.deltas.clone(), Latency::default())
                }
                None => (TurnStatus::Timeout, t.deltas.clone(), Latency::default()),
            };
            let v2v = match (Some(id) == last_turn, eos_sent_at, t.first_audio_at) {
                (true, Some(eos), Some(first)) => first
                    .checked_duration_since(eos)
                    .map(|d| d.as_millis() as u64),
                _ => None,
            };
            let mut audio_file = None;
            if let Some(dir) = &self.opts.out_dir
                && !t.audio.is_empty()
            {
                let p = dir.join(format!("{stem}.turn{id}.wav"));
                crate::audio::wav::write_i16(&p, &t.audio, self.output_rate)
                    .map_err(|e| file_error(&p, e))?;
                audio_file = Some(p);
            }
            let mut client_errors = t.client_errors;
            if status == TurnStatus::Timeout {
                client_errors.push(format!(
                    "no response.done within {:?} of the end of the file",
                    self.opts.tail_timeout
                ));
            }
            reports.push(TurnReport {
                file: path.to_path_buf(),
                session_id: session_id.to_owned(),
                turn_id: id,
                final_transcript: t.final_transcript,
                ai_text,
                status,
                voice_to_voice_ms: v2v,
                latency,
                audio_ms_received: t.audio.len() as u64 * 1000 / self.output_rate.max(1) as u64,
                errors: t.errors,
                client_errors,
                audio_file,
            });
        }
        if reports.is_empty() {
            let (status, why) = match &broken {
                Some(e) => (TurnStatus::Error, e.clone()),
                None => (
                    TurnStatus::Timeout,
                    "no user turn was answered (did the server hear speech?)".to_owned(),
                ),
            };
            reports.push(failed_report(path, session_id, status, why));
        } else if let Some(e) = &broken {
            if let Some(last) = reports.last_mut() {
                last.client_errors.push(e.clone());
            }
        }
        if let Some(last) = reports.last_mut() {
            last.errors.append(&mut self.loose_errors);
            last.client_errors.append(&mut self.loose_client_errors);
            last.client_errors.extend(end_note);
        }
        for r in &reports {
            self.printer.line(&format_latency_line(r), false);
        }
        Ok(reports)
    }
}

fn chunk_end_frame(i: u64, rate: u32, chunk_ms: u32, frames: u64, start: bool) -> usize {
    let end = if start {
        if i == 0 {
            0
        } else {
            chunk_end(i - 1, rate, chunk_ms)
        }
    } else {
        chunk_end(i, rate, chunk_ms)
    };
    end.min(frames) as usize
}

fn map_done(s: DoneStatus) -> TurnStatus {
    match s {
        DoneStatus::Completed => TurnStatus::Completed,
        DoneStatus::Cancelled => TurnStatus::Cancelled,
        DoneStatus::Failed => TurnStatus::Failed,
    }
}

fn failed_report(path: &Path, session_id: &str, status: TurnStatus, why: String) -> TurnReport {
    TurnReport {
        file: path.to_path_buf(),
        session_id: session_id.to_owned(),
        turn_id: 0,
        final_transcript: String::new(),
        ai_text: String::new(),
        status,
        voice_to_voice_ms: None,
        latency: Latency::default(),
        audio_ms_received: 0,
        errors: Vec::new(),
        client_errors: vec![why],
        audio_file: None,
    }
}
