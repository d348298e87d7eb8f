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
/// How long a dropped call keeps trying to resume (the server's default grace is 30 s).
pub const RESUME_WINDOW: Duration = Duration::from_secs(20);
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
    /// Speak an interruption over the AI's answer and measure how fast it stops.
    pub barge_in: Option<BargeIn>,
    /// When the connection drops without a close frame, take the call over on a new one
    /// (`session.resume`) and resend the audio the server did not get.
    pub resume: bool,
}

/// An interruption spoken over the AI's answer (`callgate bench --barge-in`): once the
/// answer's first AI audio frame has arrived and `after` has passed, the clip is streamed
/// at real-time pace, like a candidate cutting in.
#[derive(Debug, Clone)]
pub struct BargeIn {
    /// Mono samples of the interruption.
    pub samples: Vec<f32>,
    /// Their rate; each call converts them to its own input format.
    pub rate: u32,
    /// How long after the answer's first AI audio frame the interruption starts.
    pub after: Duration,
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
            barge_in: None,
            resume: true,
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
    /// How each call is streamed.
    #[command(flatten)]
    pub stream: StreamArgs,
    /// Write the AI's audio per turn to DIR/<file-stem>.turn<N>.wav.
    #[arg(long = "out", value_name = "DIR")]
    pub out: Option<PathBuf>,
    /// Print the reports as JSON lines on stdout at the end.
    #[arg(long)]
    pub json: bool,
    /// No progress bar and no live transcripts.
    #[arg(long, short)]
    pub quiet: bool,
}

/// How a call is streamed: the flags `replay` and `bench` share.
#[derive(Debug, Clone, clap::Args)]
pub struct StreamArgs {
    /// Stream as fast as the server acknowledges instead of in real time.
    #[arg(long)]
    pub fast: bool,
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
    /// Do not resume a call whose connection drops (by default the client reconnects with
    /// session.resume for up to 20 s and resends the audio the server did not get).
    #[arg(long)]
    pub no_resume: bool,
}

impl StreamArgs {
    /// Replay options for `url` streamed as these flags say (no files, no output folder).
    pub fn options(&self, url: String) -> ReplayOptions {
        ReplayOptions {
            fast: self.fast,
            chunk_ms: self.chunk_ms,
            output_rate: self.output_rate,
            persona: self.persona.clone(),
            silence_ms: self.silence_ms,
            tail_timeout: Duration::try_from_secs_f64(self.tail_timeout)
                .unwrap_or(DEFAULT_TAIL_TIMEOUT),
            resume: !self.no_resume,
            ..ReplayOptions::new(url, Vec::new())
        }
    }
}

impl From<ReplayArgs> for ReplayOptions {
    fn from(a: ReplayArgs) -> Self {
        Self {
            files: a.files,
            out_dir: a.out,
            quiet: a.quiet,
            ..a.stream.options(a.url)
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
    /// The longest a client playing the turn's audio from its first frame, with no jitter
    /// buffer, would have stalled waiting for the next frame: 0 when the audio kept up with
    /// real time (the server sends ahead of playback, so this only grows when it falls
    /// behind).
    #[serde(default)]
    pub output_stall_ms: u64,
    /// Holes in the output audio's `seq` numbering seen while this turn's audio arrived.
    #[serde(default)]
    pub output_seq_gaps: u32,
    /// With a barge-in: speech onset of the interruption (when the chunk holding it was
    /// sent) to the last AI frame of this turn, the one interrupted.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub barge_in_ms: Option<u64>,
    /// `error` events of the turn; errors without a `turnId` go to the file's last turn.
    pub errors: Vec<ErrorEvent>,
    /// Problems seen by the client (connection, protocol violations by the server).
    pub client_errors: Vec<String>,
    /// Where the turn's audio was written.
    pub audio_file: Option<PathBuf>,
    /// How many times the call was resumed on a new connection before this report.
    #[serde(default)]
    pub resumes: u32,
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

/// The CLI entry point: replays, then prints the reports on stdout
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
/// the 5th percentile of the frames' RMS, so trailing silence, room tone or hiss of any
/// constant level is not mistaken for speech, while a file that is speech from end to end
/// still finds its floor in the pauses between syllables. `None` when no frame is above
/// the threshold (silence, steady noise, a steady tone, empty input).
pub fn end_of_speech(mono: &[f32], rate: u32) -> Option<usize> {
    speech_bounds(mono, rate).map(|(_, end)| end)
}

/// Where speech starts and ends in a mono signal, in samples (`start` inclusive, `end`
/// exclusive): the first and last 10 ms frames above the threshold of [`end_of_speech`].
pub fn speech_bounds(mono: &[f32], rate: u32) -> Option<(usize, usize)> {
    let frame = (rate as usize * EOS_FRAME_MS as usize / 1000).max(1);
    let levels: Vec<f32> = mono.chunks(frame).map(rms_dbfs).collect();
    if levels.is_empty() {
        return None;
    }
    let mut sorted = levels.clone();
    sorted.sort_by(f32::total_cmp);
    let floor = sorted[sorted.len() / 20];
    let threshold = EOS_MIN_DBFS.max(floor + EOS_FLOOR_MARGIN_DB);
    let first = levels.iter().position(|&db| db > threshold)?;
    let last = levels.iter().rposition(|&db| db > threshold)?;
    Some((first * frame, ((last + 1) * frame).min(mono.len())))
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
    /// Some delta was not printed live (progress bar up, quiet): `response.done` prints
    /// the whole text.
    buffered: bool,
    /// Speech started (server VAD) or a response started: the turn expects a `response.done`.
    open: bool,
    responded: bool,
    done: Option<(DoneStatus, String, Latency)>,
    first_audio_at: Option<Instant>,
    last_audio_at: Option<Instant>,
    /// How far an arriving frame was behind real-time playback from the first frame.
    stall: Duration,
    seq_gaps: u32,
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

/// When the client sent the moments the measurements count from.
#[derive(Default)]
struct Marks {
    /// Per clip streamed (the file, then the barge-in clip): when the chunk holding its
    /// end of speech was sent, and when the chunk holding its onset was.
    clips: Vec<ClipMarks>,
    /// The user turn whose AI audio the barge-in clip was spoken over.
    barged_turn: Option<u32>,
}

#[derive(Default, Clone, Copy)]
struct ClipMarks {
    onset_sent: Option<Instant>,
    eos_sent: Option<Instant>,
}

/// One clip being streamed, with the chunks holding its speech bounds.
struct Clip<'a> {
    samples: &'a [i16],
    frames: u64,
    n_chunks: u64,
    onset_chunk: Option<u64>,
    eos_chunk: Option<u64>,
}

impl<'a> Clip<'a> {
    fn new(audio: &'a InputAudio, chunk_ms: u32) -> Self {
        let mono = crate::audio::i16_to_mono_f32(&audio.samples, audio.channels as usize);
        let bounds = speech_bounds(&mono, audio.rate);
        let frames = audio.frames() as u64;
        let chunk_of = |f: usize| chunk_index_of(f as u64, audio.rate, chunk_ms);
        Self {
            samples: &audio.samples,
            frames,
            n_chunks: chunk_count(frames, audio.rate, chunk_ms),
            onset_chunk: bounds.map(|(start, _)| chunk_of(start)),
            eos_chunk: bounds
                .filter(|&(_, end)| end > 0)
                .map(|(_, end)| chunk_of(end - 1)),
        }
    }
}

struct FileRun<'a> {
    opts: &'a ReplayOptions,
    printer: Printer,
    turns: BTreeMap<u32, TurnState>,
    /// The greeting (turn 0): printed, never reported.
    greeting: TurnState,
    loose_errors: Vec<ErrorEvent>,
    loose_client_errors: Vec<String>,
    acked: Option<u32>,
    speaking: bool,
    server_ended: bool,
    output_rate: u32,
    /// The last output audio `seq` seen, to spot holes.
    last_out_seq: Option<u32>,
    /// Times the call was taken over on a new connection.
    resumes: u32,
}

/// Replays one file as one call (what [`replay`] does per file, and what `callgate bench`
/// runs concurrently): returns one report per user turn. Per-call problems become reports;
/// `Err` only when the output folder cannot be written.
pub async fn replay_file(
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
        greeting: TurnState::default(),
        loose_errors: Vec::new(),
        loose_client_errors: Vec::new(),
        acked: None,
        speaking: false,
        server_ended: false,
        output_rate: opts.output_rate,
        last_out_seq: None,
        resumes: 0,
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
    let barge = match &opts.barge_in {
        Some(b) => Some(barge_audio(b, audio).map_err(|e| file_error(path, e))?),
        None => None,
    };
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
    let (outcome, marks) = run.stream(&mut call, path, audio, barge.as_ref()).await;
    run.printer.end_bar();
    // Turns still unanswered when the client gave up: a response.done that only comes
    // because session.end cancelled them must not pass for a cancel by the server.
    let unanswered: Vec<u32> = match outcome {
        Outcome::TimedOut => run
            .turns
            .iter()
            .filter(|(_, t)| t.done.is_none())
            .map(|(&id, _)| id)
            .collect(),
        _ => Vec::new(),
    };
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
    run.finish(path, &session_id, outcome, marks, &unanswered, end_note)
}

/// The barge-in clip in the file's own input format (rate and channels).
fn barge_audio(
    b: &BargeIn,
    file: &InputAudio,
) -> Result<InputAudio, crate::audio::resample::ResampleError> {
    let mono = crate::audio::resample::resample_all(&b.samples, b.rate, file.rate)?;
    let mono = crate::audio::f32_to_i16(&mono);
    let samples = mono
        .iter()
        .flat_map(|&s| std::iter::repeat_n(s, file.channels as usize))
        .collect();
    Ok(InputAudio {
        samples,
        rate: file.rate,
        channels: file.channels,
    })
}

impl FileRun<'_> {
    /// Streams the file (then, with a barge-in, the interruption over the AI's answer),
    /// then silence until the user turns are done; returns how it ended and when the
    /// moments measured from were sent.
    async fn stream(
        &mut self,
        call: &mut CallClient,
        path: &Path,
        audio: &InputAudio,
        mut barge: Option<&InputAudio>,
    ) -> (Outcome, Marks) {
        let (rate, ch, chunk_ms) = (audio.rate, audio.channels as usize, self.opts.chunk_ms);
        let mut clip = Clip::new(audio, chunk_ms);
        let chunk_dur = Duration::from_millis(chunk_ms as u64);
        let silence = vec![0i16; (rate as usize * chunk_ms as usize / 1000).max(1) * ch];
        let stem = path
            .file_name()
            .map_or_else(String::new, |s| s.to_string_lossy().into_owned());
        self.printer
            .start_bar(audio.samples.len() as u64 * 2, &stem);

        let mut t0 = tokio::time::Instant::now();
        let mut phase = Phase::Streaming;
        let mut next_chunk: u64 = 0;
        let mut tail_start = t0;
        let mut tail_chunks: u32 = 0;
        let mut last_progress = t0;
        let mut marks = Marks {
            clips: vec![ClipMarks::default()],
            barged_turn: None,
        };
        if clip.n_chunks == 0 {
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
                        chunk_end(next_chunk, rate, chunk_ms).min(clip.frames),
                        rate,
                    ),
                ),
                Phase::Tail => Some(tail_start + chunk_dur * (tail_chunks + 1)),
            };
            let give_up = match phase {
                Phase::Streaming => last_progress + self.opts.tail_timeout,
                Phase::Tail => tail_start + self.opts.tail_timeout,
            };
            // A connection failure from either side of the socket, handled once below.
            let failed = tokio::select! {
                biased;
                r = call.rx.recv() => match r {
                    Ok(r) => {
                        let before = self.acked;
                        self.handle(r);
                        if self.acked != before {
                            last_progress = tokio::time::Instant::now();
                            if let Some(a) = self.acked {
                                call.tx.acknowledged(a);
                            }
                        }
                        if self.server_ended {
                            return (Outcome::Broken("the server ended the call".into()), marks);
                        }
                        None
                    }
                    Err(e) if !e.is_fatal() => {
                        self.printer.line(&format!("warning: {e}"), true);
                        self.loose_client_errors.push(e.to_string());
                        None
                    }
                    Err(e) => Some(e),
                },
                _ = tokio::time::sleep_until(send_at.unwrap_or(give_up)), if send_at.is_some() => {
                    let result = match phase {
                        Phase::Streaming => {
                            let a = chunk_end_frame(next_chunk, rate, chunk_ms, clip.frames, true);
                            let b = chunk_end_frame(next_chunk, rate, chunk_ms, clip.frames, false);
                            let r = call.tx.send_audio(&clip.samples[a * ch..b * ch]).await;
                            if let Some(m) = marks.clips.last_mut() {
                                if Some(next_chunk) == clip.onset_chunk {
                                    m.onset_sent = Some(Instant::now());
                                }
                                if Some(next_chunk) == clip.eos_chunk {
                                    m.eos_sent = Some(Instant::now());
                                }
                            }
                            self.printer.advance(((b - a) * ch * 2) as u64);
                            next_chunk += 1;
                            last_progress = tokio::time::Instant::now();
                            if next_chunk >= clip.n_chunks {
                                phase = Phase::Tail;
                                tail_start = tokio::time::Instant::now();
                                tail_chunks = 0;
                                self.printer.end_bar();
                            }
                            r
                        }
                        Phase::Tail => {
                            tail_chunks += 1;
                            call.tx.send_audio(&silence).await
                        }
                    };
                    // A frame whose send failed is kept for a resend: resuming sends it again.
                    result.err()
                }
                _ = tokio::time::sleep_until(give_up) => {
                    return (Outcome::TimedOut, marks);
                }
            };
            if let Some(e) = failed {
                match self.resume(call, &e).await {
                    Ok(away) => {
                        // The outage is not the file's time: keep the pace from here.
                        t0 += away;
                        tail_start += away;
                        last_progress = tokio::time::Instant::now();
                    }
                    Err(why) => return (Outcome::Broken(why), marks),
                }
            }
            if phase != Phase::Tail {
                continue;
            }
            if let Some(b) = barge
                && let Some(turn) = self.barge_due()
            {
                // Cut in over the answer: the interruption streams like the file did.
                barge = None;
                marks.barged_turn = Some(turn);
                marks.clips.push(ClipMarks::default());
                clip = Clip::new(b, chunk_ms);
                t0 = tokio::time::Instant::now();
                next_chunk = 0;
                last_progress = t0;
                phase = Phase::Streaming;
                continue;
            }
            if self.user_turns_done() {
                return (Outcome::Finished, marks);
            }
        }
    }

    /// After the connection failed with `why`: when it merely dropped (no close frame),
    /// takes the call over on a new connection, retrying with backoff for up to
    /// [`RESUME_WINDOW`]; returns how long the call was away. Otherwise (or when resuming
    /// is off, or refused) says why the call is over.
    async fn resume(
        &mut self,
        call: &mut CallClient,
        why: &ClientError,
    ) -> Result<Duration, String> {
        let dropped = matches!(
            why,
            ClientError::WebSocket(_) | ClientError::Closed { code: None, .. }
        );
        if !self.opts.resume || !dropped || self.server_ended {
            return Err(why.to_string());
        }
        self.printer.end_bar();
        self.printer
            .line(&format!("connection lost ({why}); resuming the call"), true);
        let down = Instant::now();
        let mut backoff = Duration::from_millis(100);
        let mut last = why.to_string();
        while down.elapsed() < RESUME_WINDOW {
            tokio::time::sleep(backoff).await;
            backoff = (backoff * 2).min(Duration::from_secs(2));
            match call
                .resume(&self.opts.url, super::DEFAULT_CONNECT_TIMEOUT)
                .await
            {
                Ok(r) => {
                    let away = down.elapsed();
                    self.printer.line(
                        &format!(
                            "resumed after {} ms: resent {} chunks from seq {}",
                            away.as_millis(),
                            r.resent,
                            r.next_seq
                        ),
                        true,
                    );
                    self.on_resumed(r);
                    return Ok(away);
                }
                Err(ClientError::Rejected(e)) => {
                    return Err(format!("resume refused: {} {}", e.code, e.message));
                }
                Err(e) => last = e.to_string(),
            }
        }
        Err(format!(
            "connection lost and not resumed within {} s: {last}",
            RESUME_WINDOW.as_secs()
        ))
    }

    /// The server kept the call; what was in flight when the link dropped is settled here.
    /// A response being spoken was cancelled by the server (nobody heard the rest), and a
    /// turn the server finished while nobody listened can never get its `response.done`.
    fn on_resumed(&mut self, r: super::Resumed) {
        self.resumes += 1;
        self.acked = r.next_seq.checked_sub(1);
        // Output frames sent to the dead link are gone; that is not a hole in this link.
        self.last_out_seq = None;
        for (&id, t) in self.turns.iter_mut() {
            if t.done.is_some() {
                continue;
            }
            let record = r.turns.iter().find(|rec| rec.turn_id == id);
            if !t.responded && record.is_none() {
                continue; // still being spoken or transcribed: it goes on
            }
            let heard = record.map_or_else(|| t.deltas.clone(), |rec| rec.ai_text.clone());
            if let Some(rec) = record
                && t.final_transcript.is_empty()
            {
                t.final_transcript = rec.user_text.clone();
            }
            let status = if t.responded {
                t.client_errors.push(
                    "the connection dropped during the response; the server cancelled it".into(),
                );
                DoneStatus::Cancelled
            } else {
                t.client_errors
                    .push("the turn was answered while the connection was down".into());
                DoneStatus::Failed
            };
            t.open = false;
            t.done = Some((status, heard, Latency::default()));
        }
    }

    /// The user turn to interrupt, once its AI audio has played for the barge-in delay.
    fn barge_due(&self) -> Option<u32> {
        let after = self.opts.barge_in.as_ref()?.after;
        self.turns.iter().find_map(|(&id, t)| {
            let first = t.first_audio_at?;
            (t.done.is_none() && first.elapsed() >= after).then_some(id)
        })
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
            Incoming::Audio(chunk) => {
                self.audio_seq(chunk.turn, chunk.seq);
                self.audio(chunk.turn, &chunk.samples, r.at)
            }
            Incoming::Event(ev) => self.event(ev, r.at),
        }
    }

    /// Output `seq` counts across the call: a hole means frames the client never got.
    fn audio_seq(&mut self, turn_id: u32, seq: u32) {
        let hole = self
            .last_out_seq
            .is_some_and(|last| seq != last.wrapping_add(1));
        self.last_out_seq = Some(seq);
        if hole && turn_id > 0 {
            self.turn(turn_id).seq_gaps += 1;
        }
    }

    fn audio(&mut self, turn_id: u32, samples: &[i16], at: Instant) {
        if turn_id == 0 {
            return; // greeting audio: not part of the replayed turn
        }
        let rate = self.output_rate.max(1);
        let t = self.turn(turn_id);
        if t.done.is_some() {
            if t.client_errors.is_empty() {
                t.client_errors.push(format!(
                    "output audio for turn {turn_id} after its response.done"
                ));
            }
            return;
        }
        let first = *t.first_audio_at.get_or_insert(at);
        // Playback from the first frame would reach this frame at `due`; arriving later is
        // a stall the listener hears.
        let due = first + frames_to_duration(t.audio.len() as u64, rate);
        t.stall = t.stall.max(at.saturating_duration_since(due));
        t.last_audio_at = Some(at);
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
                let t = self.text_of(turn_id);
                t.deltas.push_str(&delta);
                t.buffered |= !live;
            }
            ServerMessage::ResponseAudioChunk {
                turn_id,
                seq,
                audio,
                ..
            } => {
                self.audio_seq(turn_id, seq);
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

    /// Where a turn's text goes: the greeting's own state for turn 0.
    fn text_of(&mut self, turn_id: u32) -> &mut TurnState {
        if turn_id == 0 {
            &mut self.greeting
        } else {
            self.turn(turn_id)
        }
    }

    fn done(&mut self, turn_id: u32, status: DoneStatus, text: String, latency: Latency) {
        let t = self.text_of(turn_id);
        let reprint = t.buffered || t.deltas.is_empty();
        if self.printer.is_open_ai(turn_id) {
            self.printer.close_open();
        }
        if reprint {
            let who = if turn_id == 0 {
                "greeting".to_owned()
            } else {
                format!("turn {turn_id}")
            };
            self.printer.line(&format!("AI [{who}]: {text}"), false);
        }
        if turn_id == 0 {
            return;
        }
        let t = self.turn(turn_id);
        if t.done.is_some() {
            t.client_errors
                .push(format!("second response.done for turn {turn_id}"));
            return;
        }
        t.open = false;
        t.done = Some((status, text, latency));
        // The latency line is printed by `finish`, once voice-to-voice is known.
    }

    fn finish(
        mut self,
        path: &Path,
        session_id: &str,
        outcome: Outcome,
        marks: Marks,
        unanswered: &[u32],
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
        let first_audio: Vec<(u32, Option<Instant>)> = self
            .turns
            .iter()
            .map(|(&id, t)| (id, t.first_audio_at))
            .collect();
        let answers = voice_to_voice(&marks.clips, &first_audio);
        let barge_onset = marks.clips.get(1).and_then(|c| c.onset_sent);
        let mut reports = Vec::new();
        let stem = path
            .file_stem()
            .map_or_else(|| "replay".to_owned(), |s| s.to_string_lossy().into_owned());
        for (id, t) in std::mem::take(&mut self.turns) {
            let (status, ai_text, latency) = match t.done {
                Some((_, text, l)) if unanswered.contains(&id) => (TurnStatus::Timeout, text, l),
                Some((s, text, l)) => (map_done(s), text, l),
                None if broken.is_some() => {
                    (TurnStatus::Error, t.deltas.clone(), Latency::default())
                }
                None => (TurnStatus::Timeout, t.deltas.clone(), Latency::default()),
            };
            let v2v = answers.iter().find(|(t, _)| *t == id).map(|&(_, ms)| ms);
            let mut client_errors = t.client_errors;
            let mut barge_in_ms = None;
            if marks.barged_turn == Some(id) {
                match (status, barge_onset, t.last_audio_at) {
                    (TurnStatus::Cancelled, Some(onset), Some(last)) => {
                        barge_in_ms = Some(last.saturating_duration_since(onset).as_millis() as u64)
                    }
                    _ => client_errors.push(format!(
                        "the barge-in did not interrupt turn {id} (it ended {})",
                        status_word(status)
                    )),
                }
            }
            let mut audio_file = None;
            if let Some(dir) = &self.opts.out_dir
                && !t.audio.is_empty()
            {
                let p = dir.join(format!("{stem}.turn{id}.wav"));
                crate::audio::wav::write_i16(&p, &t.audio, self.output_rate)
                    .map_err(|e| file_error(&p, e))?;
                audio_file = Some(p);
            }
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
                output_stall_ms: t.stall.as_millis() as u64,
                output_seq_gaps: t.seq_gaps,
                barge_in_ms,
                errors: t.errors,
                client_errors,
                audio_file,
                resumes: self.resumes,
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
        } else if let Some(e) = &broken
            && let Some(last) = reports.last_mut()
        {
            last.client_errors.push(e.clone());
        }
        if let Some(last) = reports.last_mut() {
            last.resumes = self.resumes;
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

/// Which user turn answers each streamed clip, with its voice-to-voice in ms: for clip `k`,
/// the first turn (by id) whose first AI audio arrived after the clip's end of speech was
/// sent and, when another clip followed, before that clip's speech began. Earlier turns of
/// a clip are its pieces cut off at a pause, not answers to it.
fn voice_to_voice(clips: &[ClipMarks], first_audio: &[(u32, Option<Instant>)]) -> Vec<(u32, u64)> {
    let mut out = Vec::new();
    for (k, clip) in clips.iter().enumerate() {
        let Some(eos) = clip.eos_sent else { continue };
        let next_onset = clips.get(k + 1).and_then(|c| c.onset_sent);
        let answer = first_audio.iter().find_map(|&(id, first)| {
            let first = first?;
            let in_window = first >= eos && next_onset.is_none_or(|n| first < n);
            in_window.then(|| (id, first.duration_since(eos).as_millis() as u64))
        });
        out.extend(answer);
    }
    out
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
        output_stall_ms: 0,
        output_seq_gaps: 0,
        barge_in_ms: None,
        errors: Vec::new(),
        client_errors: vec![why],
        audio_file: None,
        resumes: 0,
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::protocol::{
        ClientMessage, ErrorCode, Limits, decode_input_frame, encode_output_frame,
        parse_client_message,
    };
    use futures_util::{SinkExt, StreamExt};
    use tokio_tungstenite::tungstenite::Message;
    use tokio_tungstenite::tungstenite::handshake::server::{Request, Response};

    /// Deterministic white noise in -1..1.
    fn noise(n: usize, seed: u64) -> Vec<f32> {
        let mut x = seed.wrapping_mul(6364136223846793005).wrapping_add(1);
        (0..n)
            .map(|_| {
                x = x
                    .wrapping_mul(6364136223846793005)
                    .wrapping_add(1442695040888963407);
                ((x >> 33) as f32 / (1u64 << 31) as f32) * 2.0 - 1.0
            })
            .collect()
    }

    /// `amp` is linear peak; a sine at amplitude a has RMS a/sqrt(2).
    fn tone(n: usize, rate: u32, amp: f32) -> Vec<f32> {
        (0..n)
            .map(|i| amp * (2.0 * std::f32::consts::PI * 220.0 * i as f32 / rate as f32).sin())
            .collect()
    }

    fn db_to_amp(db: f32) -> f32 {
        10f32.powf(db / 20.0)
    }

    /// silence(pre) + tone(speech) + silence(post), each in ms, plus optional noise.
    fn utterance(
        rate: u32,
        pre: usize,
        speech: usize,
        post: usize,
        noise_db: Option<f32>,
    ) -> Vec<f32> {
        let r = rate as usize;
        let mut s = vec![0.0; pre * r / 1000];
        s.extend(tone(speech * r / 1000, rate, 0.3));
        s.extend(vec![0.0; post * r / 1000]);
        if let Some(db) = noise_db {
            // Uniform noise in -a..a has RMS a/sqrt(3).
            let a = db_to_amp(db) * 3f32.sqrt();
            let n = noise(s.len(), 7);
            for (v, n) in s.iter_mut().zip(n) {
                *v += a * n;
            }
        }
        s
    }

    #[test]
    fn rms_dbfs_levels() {
        assert_eq!(rms_dbfs(&[]), -120.0);
        assert_eq!(rms_dbfs(&[0.0; 160]), -120.0);
        assert!((rms_dbfs(&[1.0, -1.0]) - 0.0).abs() < 1e-4);
        let sine = tone(16000, 16000, 1.0);
        assert!((rms_dbfs(&sine) + 3.01).abs() < 0.05, "{}", rms_dbfs(&sine));
    }

    #[test]
    fn end_of_speech_in_clean_audio() {
        for rate in [8000, 16000, 44100, 48000] {
            let s = utterance(rate, 200, 500, 800, None);
            let eos = end_of_speech(&s, rate).unwrap();
            let want = 700 * rate as usize / 1000;
            let frame = rate as usize / 100;
            assert!(
                eos >= want && eos <= want + frame,
                "rate {rate}: {eos} vs {want}"
            );
        }
    }

    #[test]
    fn end_of_speech_above_noise_floor() {
        let rate = 16000;
        // Quiet hiss: the -45 dBFS absolute floor decides.
        let s = utterance(rate, 300, 1000, 1000, Some(-60.0));
        let eos = end_of_speech(&s, rate).unwrap();
        assert!((1300 * 16..=1310 * 16).contains(&eos), "{eos}");
        // Loud room noise at -30 dBFS would pass -45: the floor + 15 dB rule must ignore it.
        let s = utterance(rate, 300, 1000, 1000, Some(-30.0));
        let eos = end_of_speech(&s, rate).unwrap();
        assert!((1300 * 16..=1310 * 16).contains(&eos), "{eos}");
    }

    #[test]
    fn end_of_speech_none_without_speech() {
        assert_eq!(end_of_speech(&[], 16000), None);
        assert_eq!(end_of_speech(&vec![0.0; 16000], 16000), None);
        // Steady loud noise is a floor, not speech.
        let n: Vec<f32> = noise(32000, 3).iter().map(|v| v * 0.2).collect();
        assert_eq!(end_of_speech(&n, 16000), None);
        // A quiet tone under -45 dBFS is not speech either.
        assert_eq!(
            end_of_speech(&tone(16000, 16000, db_to_amp(-50.0)), 16000),
            None
        );
    }

    #[test]
    fn end_of_speech_at_end_of_file_and_partial_frame() {
        // Speech-like (a 4 Hz syllable envelope) up to the last sample, no silence at all.
        let s: Vec<f32> = tone(16000 + 37, 16000, 0.3)
            .iter()
            .enumerate()
            .map(|(i, v)| {
                v * (std::f32::consts::PI * 4.0 * (i as f32 + 1000.0) / 16000.0)
                    .sin()
                    .abs()
            })
            .collect();
        assert_eq!(end_of_speech(&s, 16000), Some(s.len()));
        // Known limit: a signal with no dip 15 dB under its level (a steady tone) is
        // indistinguishable from steady noise, so it has no detectable end of speech.
        assert_eq!(end_of_speech(&tone(16000, 16000, 0.3), 16000), None);
        // Speech with only the last, partial frame loud.
        let mut s = vec![0.0; 16005];
        s[16001] = 0.9;
        assert_eq!(end_of_speech(&s, 16000), Some(16005));
    }

    #[test]
    fn chunk_math_is_consistent_and_does_not_drift() {
        for rate in [8000, 11025, 16000, 22050, 44100, 48000] {
            for chunk_ms in [10, 20, 30, 1000] {
                let mut prev = 0;
                for i in 0..300u64 {
                    let end = chunk_end(i, rate, chunk_ms);
                    assert!(end > prev || (i == 0 && end > 0));
                    for f in prev..end {
                        assert_eq!(
                            chunk_index_of(f, rate, chunk_ms),
                            i,
                            "rate {rate} {chunk_ms} ms frame {f}"
                        );
                    }
                    prev = end;
                }
                // After N chunks exactly N * chunk_ms of audio, to the frame.
                assert_eq!(
                    chunk_end(999, rate, chunk_ms),
                    1000 * rate as u64 * chunk_ms as u64 / 1000
                );
            }
        }
        assert_eq!(chunk_end(0, 11025, 20), 220);
        assert_eq!(chunk_end(1, 11025, 20), 441);
        assert_eq!(chunk_count(0, 16000, 20), 0);
        assert_eq!(chunk_count(1, 16000, 20), 1);
        assert_eq!(chunk_count(320, 16000, 20), 1);
        assert_eq!(chunk_count(321, 16000, 20), 2);
        assert_eq!(chunk_count(44100, 44100, 20), 50);
        assert_eq!(frames_to_duration(44100, 44100), Duration::from_secs(1));
        assert_eq!(frames_to_duration(441, 44100), Duration::from_millis(10));
        assert_eq!(
            frames_to_duration(220, 11025),
            Duration::from_nanos(19_954_648)
        );
    }

    #[test]
    fn unacked_window() {
        assert_eq!(unacked(0, None), 0);
        assert_eq!(unacked(64, None), 64);
        assert_eq!(unacked(64, Some(63)), 0);
        assert_eq!(unacked(100, Some(40)), 59);
        // A stale ack beyond what was sent never underflows.
        assert_eq!(unacked(5, Some(9)), 0);
    }

    fn report() -> TurnReport {
        TurnReport {
            file: PathBuf::from("a/answer.wav"),
            session_id: "s1".into(),
            turn_id: 1,
            final_transcript: "I like Rust.".into(),
            ai_text: "Why?".into(),
            status: TurnStatus::Completed,
            voice_to_voice_ms: Some(812),
            latency: Latency {
                endpoint_ms: Some(500),
                asr_ms: Some(120),
                llm_first_token_ms: None,
                tts_first_audio_ms: Some(4),
                first_audio_ms: Some(300),
                total_ms: Some(900),
            },
            audio_ms_received: 1250,
            output_stall_ms: 0,
            output_seq_gaps: 0,
            barge_in_ms: None,
            errors: vec![],
            client_errors: vec![],
            audio_file: None,
            resumes: 0,
        }
    }

    #[test]
    fn latency_formatting() {
        assert_eq!(
            format_latency(&report().latency),
            "endpoint 500 | asr 120 | llm first token - | tts first audio 4 | first audio 300 | total 900 ms"
        );
        assert_eq!(
            format_latency_line(&report()),
            "turn 1 completed: voice-to-voice 812 ms | server: endpoint 500 | asr 120 | llm first token - | tts first audio 4 | first audio 300 | total 900 ms | AI audio 1.25 s"
        );
        let mut r = report();
        r.status = TurnStatus::Timeout;
        r.voice_to_voice_ms = None;
        r.latency = Latency::default();
        r.client_errors.push("no response.done".into());
        let line = format_turn_line(&r);
        assert!(line.starts_with("a/answer.wav\tturn 1\ttimeout\tv2v - ms\tserver first audio - ms\tyou: \"I like Rust.\"\tAI: \"Why?\""), "{line}");
        assert!(line.ends_with("\tclient error: no response.done"), "{line}");
    }

    #[test]
    fn report_json_shape() {
        let v = serde_json::to_value(report()).unwrap();
        assert_eq!(v["file"], "a/answer.wav");
        assert_eq!(v["turnId"], 1);
        assert_eq!(v["finalTranscript"], "I like Rust.");
        assert_eq!(v["status"], "completed");
        assert_eq!(v["voiceToVoiceMs"], 812);
        assert_eq!(v["latency"]["firstAudioMs"], 300);
        assert_eq!(v["audioMsReceived"], 1250);
        assert_eq!(
            serde_json::to_value(TurnStatus::Timeout).unwrap(),
            "timeout"
        );
        let back: TurnReport = serde_json::from_value(v).unwrap();
        assert_eq!(back, report());
    }

    #[derive(clap::Parser)]
    struct TestCli {
        #[command(flatten)]
        args: ReplayArgs,
    }

    #[test]
    fn args_parse_and_convert() {
        use clap::Parser;
        let cli =
            TestCli::try_parse_from(["replay", "ws://h:1/v1/call", "a.wav", "b.wav"]).unwrap();
        assert!(!cli.args.json);
        let o = ReplayOptions::from(cli.args);
        assert_eq!(o.url, "ws://h:1/v1/call");
        assert_eq!(o.files, [PathBuf::from("a.wav"), PathBuf::from("b.wav")]);
        assert_eq!(
            (o.chunk_ms, o.output_rate, o.tail_timeout),
            (20, 24000, DEFAULT_TAIL_TIMEOUT)
        );
        assert!(
            !o.fast
                && !o.quiet
                && o.out_dir.is_none()
                && o.persona.is_none()
                && o.silence_ms.is_none()
        );
        let cli = TestCli::try_parse_from([
            "replay",
            "ws://h:1/v1/call",
            "a.wav",
            "--fast",
            "--out",
            "o",
            "--chunk-ms",
            "40",
            "--output-rate",
            "16000",
            "--persona",
            "interviewer",
            "--silence-ms",
            "300",
            "--json",
            "-q",
            "--tail-timeout",
            "2.5",
        ])
        .unwrap();
        assert!(cli.args.json);
        let o = ReplayOptions::from(cli.args);
        assert!(o.fast && o.quiet);
        assert_eq!(o.out_dir, Some(PathBuf::from("o")));
        assert_eq!(
            (o.chunk_ms, o.output_rate, o.silence_ms),
            (40, 16000, Some(300))
        );
        assert_eq!(o.persona.as_deref(), Some("interviewer"));
        assert_eq!(o.tail_timeout, Duration::from_millis(2500));
        assert!(TestCli::try_parse_from(["replay", "ws://h:1/v1/call"]).is_err());
        assert!(TestCli::try_parse_from(["replay", "u", "a.wav", "--silence-ms", "50"]).is_err());
        assert!(
            TestCli::try_parse_from(["replay", "u", "a.wav", "--output-rate", "96000"]).is_err()
        );
    }

    fn write_wav(path: &Path, rate: u32, channels: u16, mono: &[f32]) {
        let spec = hound::WavSpec {
            channels,
            sample_rate: rate,
            bits_per_sample: 16,
            sample_format: hound::SampleFormat::Int,
        };
        let mut w = hound::WavWriter::create(path, spec).unwrap();
        for &s in mono {
            for _ in 0..channels {
                w.write_sample((s * 32767.0) as i16).unwrap();
            }
        }
        w.finalize().unwrap();
    }

    #[test]
    fn load_wav_keeps_rate_and_channels() {
        let dir = test_dir("load");
        let p = dir.join("st.wav");
        write_wav(&p, 44100, 2, &tone(4410, 44100, 0.5));
        let a = load_wav(&p).unwrap();
        assert_eq!((a.rate, a.channels, a.frames()), (44100, 2, 4410));
        // 24-bit and float files become s16 at the same level.
        let spec = hound::WavSpec {
            channels: 1,
            sample_rate: 8000,
            bits_per_sample: 24,
            sample_format: hound::SampleFormat::Int,
        };
        let p24 = dir.join("m24.wav");
        let mut w = hound::WavWriter::create(&p24, spec).unwrap();
        w.write_sample(1i32 << 22).unwrap();
        w.finalize().unwrap();
        assert_eq!(load_wav(&p24).unwrap().samples, [16384]);
        let spec = hound::WavSpec {
            channels: 1,
            sample_rate: 8000,
            bits_per_sample: 32,
            sample_format: hound::SampleFormat::Float,
        };
        let pf = dir.join("f.wav");
        let mut w = hound::WavWriter::create(&pf, spec).unwrap();
        w.write_sample(-2.0f32).unwrap();
        w.write_sample(0.5f32).unwrap();
        w.finalize().unwrap();
        assert_eq!(load_wav(&pf).unwrap().samples, [-32767, 16384]);
        // A rate the protocol cannot carry is resampled into range, mono.
        let p96 = dir.join("hi.wav");
        write_wav(&p96, 96000, 2, &tone(9600, 96000, 0.5));
        let a = load_wav(&p96).unwrap();
        assert_eq!((a.rate, a.channels), (48000, 1));
        assert!((a.frames() as i64 - 4800).abs() < 50, "{}", a.frames());
        assert!(matches!(
            load_wav(&dir.join("missing.wav")),
            Err(ClientError::File { .. })
        ));
    }

    fn test_dir(name: &str) -> PathBuf {
        let d = std::env::temp_dir().join(format!("callgate-replay-{name}-{}", std::process::id()));
        let _ = std::fs::remove_dir_all(&d);
        std::fs::create_dir_all(&d).unwrap();
        d
    }

    /// What the scripted server saw on one call.
    #[derive(Debug, Default)]
    struct CallLog {
        start: Option<crate::protocol::SessionStart>,
        subprotocol_offered: bool,
        chunks: u32,
        frames: u64,
        max_outstanding: u32,
        ended: bool,
        /// When each chunk arrived, with the frames received so far.
        arrivals: Vec<(Instant, u64)>,
    }

    /// TEST DOUBLE, not the real server: a scripted callgate.v1 peer that exercises the
    /// client's own logic (handshake, seq numbering, ack window, event handling, audio
    /// collection, reports) while `callgate serve` is written elsewhere. It greets (turn 0),
    /// acks only when 64 chunks are outstanding (to exercise the `fast` window), and once
    /// `reply_after_ms` of input has arrived plays out turn 1: speech events, transcripts,
    /// a response with text deltas, two kind-2 frames and `response.done`.
    #[allow(clippy::result_large_err)] // accept_hdr_async's callback signature
    async fn scripted_call(
        stream: tokio::net::TcpStream,
        reply_after_ms: u64,
        reply_samples: usize,
    ) -> CallLog {
        let mut log = CallLog::default();
        let mut offered = false;
        let ws =
            tokio_tungstenite::accept_hdr_async(stream, |req: &Request, mut resp: Response| {
                if let Some(p) = req.headers().get("Sec-WebSocket-Protocol") {
                    offered = p
                        .to_str()
                        .unwrap()
                        .split(',')
                        .any(|p| p.trim() == "callgate.v1");
                    resp.headers_mut()
                        .insert("Sec-WebSocket-Protocol", "callgate.v1".parse().unwrap());
                }
                Ok(resp)
            })
            .await
            .unwrap();
        log.subprotocol_offered = offered;
        let (mut tx, mut rx) = ws.split();
        let text = |m: ServerMessage| Message::text(m.to_json());
        let Some(Ok(Message::Text(first))) = rx.next().await else {
            panic!("no session.start")
        };
        let ClientMessage::SessionStart(start) = parse_client_message(first.as_str()).unwrap()
        else {
            panic!("first message is not session.start: {first}")
        };
        let (rate, channels) = (start.input.sample_rate as u64, start.input.channels as u64);
        tx.send(text(ServerMessage::SessionStarted {
            session_id: "sess-1".into(),
            resume_token: "rt".into(),
            protocol: "callgate.v1".into(),
            input: start.input.clone(),
            output: start.output.clone(),
            limits: Limits::default(),
        }))
        .await
        .unwrap();
        log.start = Some(start);
        // The greeting: printed by the client, not reported.
        for m in [
            ServerMessage::ResponseStarted {
                turn_id: 0,
                status: crate::protocol::ResponseStatus::Thinking,
                eta_ms: None,
            },
            ServerMessage::ResponseTextDelta {
                turn_id: 0,
                index: 0,
                delta: "Hello, welcome.".into(),
            },
        ] {
            tx.send(text(m)).await.unwrap();
        }
        tx.send(Message::binary(encode_output_frame(
            0, 0, true, true, &[7; 100],
        )))
        .await
        .unwrap();
        tx.send(text(ServerMessage::ResponseDone {
            turn_id: 0,
            status: DoneStatus::Completed,
            text: "Hello, welcome.".into(),
            heard_text: "Hello, welcome.".into(),
            latency: Latency::default(),
            usage: None,
        }))
        .await
        .unwrap();
        let mut acked: Option<u32> = None;
        let mut replied = false;
        let mut spoke = false;
        while let Some(Ok(msg)) = rx.next().await {
            match msg {
                Message::Binary(b) => {
                    let c = decode_input_frame(&b).unwrap();
                    assert_eq!(c.seq, log.chunks, "seq must count from 0 without gaps");
                    assert_eq!(c.samples.len() as u64 % channels, 0);
                    log.chunks += 1;
                    log.frames += c.samples.len() as u64 / channels;
                    log.arrivals.push((Instant::now(), log.frames));
                    let outstanding = unacked(log.chunks, acked);
                    log.max_outstanding = log.max_outstanding.max(outstanding);
                    if outstanding >= MAX_UNACKED_CHUNKS || replied {
                        acked = Some(c.seq);
                        tx.send(text(ServerMessage::AudioAck { seq: c.seq }))
                            .await
                            .unwrap();
                    }
                    let got_ms = log.frames * 1000 / rate;
                    if !spoke && got_ms >= 100 {
                        spoke = true;
                        tx.send(text(ServerMessage::InputSpeechStarted {
                            turn_id: 1,
                            audio_ms: 100,
                        }))
                        .await
                        .unwrap();
                        tx.send(text(ServerMessage::Transcript {
                            turn_id: 1,
                            text: "I have".into(),
                            is_final: false,
                            start_ms: None,
                            end_ms: None,
                        }))
                        .await
                        .unwrap();
                    }
                    if !replied && got_ms >= reply_after_ms {
                        replied = true;
                        for m in [
                            ServerMessage::InputSpeechStopped {
                                turn_id: 1,
                                audio_ms: reply_after_ms,
                            },
                            ServerMessage::Transcript {
                                turn_id: 1,
                                text: "I have five years.".into(),
                                is_final: true,
                                start_ms: Some(100),
                                end_ms: Some(reply_after_ms),
                            },
                            ServerMessage::ResponseStarted {
                                turn_id: 1,
                                status: crate::protocol::ResponseStatus::Thinking,
                                eta_ms: None,
                            },
                            ServerMessage::ResponseTextDelta {
                                turn_id: 1,
                                index: 0,
                                delta: "Great. ".into(),
                            },
                            ServerMessage::ResponseTextDelta {
                                turn_id: 1,
                                index: 1,
                                delta: "Why Rust?".into(),
                            },
                            ErrorEvent::new(ErrorCode::TtsError, "scripted hiccup", true)
                                .turn(1)
                                .into(),
                        ] {
                            tx.send(text(m)).await.unwrap();
                        }
                        let half = reply_samples / 2;
                        tx.send(Message::binary(encode_output_frame(
                            1,
                            1,
                            true,
                            false,
                            &vec![1000; half],
                        )))
                        .await
                        .unwrap();
                        tx.send(Message::binary(encode_output_frame(
                            2,
                            1,
                            false,
                            true,
                            &vec![-1000; reply_samples - half],
                        )))
                        .await
                        .unwrap();
                        tx.send(text(ServerMessage::ResponseDone {
                            turn_id: 1,
                            status: DoneStatus::Completed,
                            text: "Great. Why Rust?".into(),
                            heard_text: "Great. Why Rust?".into(),
                            latency: Latency {
                                endpoint_ms: Some(300),
                                asr_ms: Some(90),
                                llm_first_token_ms: Some(5),
                                tts_first_audio_ms: Some(3),
                                first_audio_ms: Some(110),
                                total_ms: Some(150),
                            },
                            usage: None,
                        }))
                        .await
                        .unwrap();
                    }
                }
                Message::Text(t) => {
                    if let ClientMessage::SessionEnd = parse_client_message(t.as_str()).unwrap() {
                        log.ended = true;
                        tx.send(text(ServerMessage::SessionEnded {
                            session_id: "sess-1".into(),
                            reason: crate::protocol::EndReason::Client,
                            turns: 1,
                            duration_ms: 1,
                        }))
                        .await
                        .unwrap();
                        let _ = tx.close().await;
                        break;
                    }
                }
                _ => {}
            }
        }
        log
    }

    #[tokio::test]
    async fn replay_against_scripted_server() {
        let dir = test_dir("e2e");
        // File 1: 16 kHz mono, 2.2 s (110 chunks: more than the 64-chunk window).
        let f1 = dir.join("mono16k.wav");
        write_wav(&f1, 16000, 1, &utterance(16000, 300, 1500, 400, None));
        // File 2: 44.1 kHz stereo, sent as is.
        let f2 = dir.join("stereo44k.wav");
        write_wav(&f2, 44100, 2, &utterance(44100, 100, 300, 200, None));
        let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
        let url = format!("ws://{}/v1/call", listener.local_addr().unwrap());
        let server = tokio::spawn(async move {
            let mut logs = Vec::new();
            for (reply_after_ms, samples) in [(2300, 8000), (700, 3200)] {
                let (s, _) = listener.accept().await.unwrap();
                logs.push(scripted_call(s, reply_after_ms, samples).await);
            }
            logs
        });
        let mut opts = ReplayOptions::new(url, vec![f1.clone(), f2.clone()]);
        opts.fast = true;
        // Set CALLGATE_REPLAY_TEST_VERBOSE=1 (and --nocapture) to see the live output.
        opts.quiet = std::env::var_os("CALLGATE_REPLAY_TEST_VERBOSE").is_none();
        opts.out_dir = Some(dir.join("out"));
        opts.output_rate = 16000;
        opts.persona = Some("interviewer".into());
        opts.silence_ms = Some(300);
        opts.tail_timeout = Duration::from_secs(10);
        let reports = tokio::time::timeout(Duration::from_secs(30), replay(&opts))
            .await
            .expect("replay hung")
            .unwrap();
        let logs = server.await.unwrap();

        assert_eq!(reports.len(), 2, "{reports:#?}");
        for (r, (file, log, rate, channels, reply_samples)) in reports.iter().zip([
            (&f1, &logs[0], 16000, 1, 8000usize),
            (&f2, &logs[1], 44100, 2, 3200),
        ]) {
            assert!(log.subprotocol_offered);
            let start = log.start.as_ref().unwrap();
            assert_eq!(
                (start.input.sample_rate, start.input.channels),
                (rate, channels)
            );
            assert_eq!(start.output.sample_rate, 16000);
            assert_eq!(start.persona.as_deref(), Some("interviewer"));
            assert_eq!(start.turn_detection.silence_ms, Some(300));
            assert!(log.ended, "session.end must be sent");
            assert!(
                log.max_outstanding <= MAX_UNACKED_CHUNKS,
                "{}",
                log.max_outstanding
            );
            // The whole file went out, then silence until the reply.
            let file_frames = load_wav(file).unwrap().frames() as u64;
            assert!(log.frames > file_frames, "{} <= {file_frames}", log.frames);

            assert_eq!(&r.file, file);
            assert_eq!(r.session_id, "sess-1");
            assert_eq!(r.turn_id, 1, "the greeting is not a report");
            assert_eq!(r.status, TurnStatus::Completed);
            assert!(r.is_completed());
            assert_eq!(r.final_transcript, "I have five years.");
            assert_eq!(r.ai_text, "Great. Why Rust?");
            assert_eq!(r.latency.first_audio_ms, Some(110));
            assert_eq!(r.audio_ms_received, reply_samples as u64 * 1000 / 16000);
            assert_eq!(r.errors.len(), 1);
            assert_eq!(r.errors[0].code, ErrorCode::TtsError);
            assert!(r.client_errors.is_empty(), "{:?}", r.client_errors);
            let v2v = r.voice_to_voice_ms.expect("voice-to-voice measured");
            assert!(v2v < 5000, "{v2v}");
            let wav = r.audio_file.as_ref().unwrap();
            let reader = hound::WavReader::open(wav).unwrap();
            assert_eq!(reader.spec().sample_rate, 16000);
            assert_eq!(reader.spec().channels, 1);
            assert_eq!(reader.len() as usize, reply_samples);
            assert!(wav.ends_with(format!(
                "{}.turn1.wav",
                file.file_stem().unwrap().to_str().unwrap()
            )));
        }
        assert!(
            logs[0].max_outstanding == MAX_UNACKED_CHUNKS,
            "the window was exercised"
        );
        let _ = std::fs::remove_dir_all(&dir);
    }

    #[tokio::test]
    async fn real_time_pace() {
        let dir = test_dir("pace");
        let f = dir.join("a.wav");
        // 0.6 s at 8 kHz, speech ending at 0.4 s.
        write_wav(&f, 8000, 1, &utterance(8000, 100, 300, 200, None));
        let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
        let url = format!("ws://{}/v1/call", listener.local_addr().unwrap());
        let server = tokio::spawn(async move {
            let (s, _) = listener.accept().await.unwrap();
            scripted_call(s, 700, 1600).await
        });
        let mut opts = ReplayOptions::new(url, vec![f.clone()]);
        opts.quiet = true;
        opts.chunk_ms = 40;
        let reports = tokio::time::timeout(Duration::from_secs(20), replay(&opts))
            .await
            .expect("replay hung")
            .unwrap();
        let log = server.await.unwrap();
        assert_eq!(reports[0].status, TurnStatus::Completed, "{reports:#?}");
        // 40 ms chunks at 8 kHz = 320 frames; the file is 15 chunks.
        let file_frames = 4800;
        let (t_first, n_first) = log.arrivals[0];
        assert_eq!(n_first, 320);
        let (t_last, _) = *log
            .arrivals
            .iter()
            .find(|(_, n)| *n >= file_frames)
            .unwrap();
        let spread = t_last.duration_since(t_first);
        // Chunk 0 leaves at 40 ms, chunk 14 at 600 ms: 560 ms apart in real time.
        assert!(spread >= Duration::from_millis(540), "{spread:?}");
        assert!(spread < Duration::from_millis(900), "{spread:?}");
        // Voice-to-voice counts from the send of the chunk holding the end of speech
        // (chunk 9, sent at 400 ms); the double answers after 700 ms of input.
        let v2v = reports[0].voice_to_voice_ms.unwrap();
        assert!((250..700).contains(&v2v), "{v2v}");
        let _ = std::fs::remove_dir_all(&dir);
    }

    #[tokio::test]
    async fn unreachable_server_is_a_report_not_a_panic() {
        let dir = test_dir("refused");
        let f = dir.join("a.wav");
        write_wav(&f, 16000, 1, &utterance(16000, 100, 200, 100, None));
        // Bind then drop to get a port with nothing listening.
        let port = std::net::TcpListener::bind("127.0.0.1:0")
            .unwrap()
            .local_addr()
            .unwrap()
            .port();
        let mut opts =
            ReplayOptions::new(format!("ws://127.0.0.1:{port}/v1/call"), vec![f.clone()]);
        opts.quiet = true;
        let reports = replay(&opts).await.unwrap();
        assert_eq!(reports.len(), 1);
        assert_eq!(reports[0].status, TurnStatus::Error);
        assert!(!reports[0].client_errors.is_empty());
        // Unreadable input is an Err before any call.
        opts.files.push(dir.join("missing.wav"));
        assert!(matches!(replay(&opts).await, Err(ClientError::File { .. })));
        let _ = std::fs::remove_dir_all(&dir);
    }
}
