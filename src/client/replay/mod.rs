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
//! signal by [`crate::audio::level::end_of_speech`], not from the end of the file: its wall-clock instant is the
//! moment the chunk containing it was sent. Chunks are sent like a microphone delivers
//! them: chunk *i* (covering file time `[a, b)`) leaves at `start + b`, so the instant
//! includes the one-chunk buffering a real client has. With `fast`, chunks leave as fast as
//! the ack window allows and the figure mostly measures the server's catch-up, not the
//! call's latency.
//!
//! Each turn's audio is timed against a modelled player that starts with the turn's first
//! frame and, like a real client, stops at `response.paused` (keeping its buffer) and goes
//! on at `response.resumed`: the output stall counts only against playback that was
//! running. Each turn reports its pauses: how each ended, how long it held, what the server
//! heard, and the resume gap from the end of the speech over the response to its resume.
//!
//! The parts: [`args`] (the command line), `input` (the WAV as sent), `pacing` (when each
//! chunk leaves), `run` (one file as one call: the stream loop and resuming), `events`
//! (what each server frame does to the call's state), `player` (the modelled player: its
//! clock stops while the response is paused), `settle` (state to reports),
//! [`report`] (the reports and their lines) and `printer` (live output).

pub mod args;
mod events;
mod input;
mod pacing;
mod player;
mod printer;
mod realtime;
pub mod report;
mod run;
mod settle;

use std::io::Write;
use std::path::PathBuf;
use std::time::Duration;

pub use args::{ReplayArgs, StreamArgs};
pub use input::load_wav;
pub use pacing::{
    MAX_UNACKED_CHUNKS, chunk_count, chunk_end, chunk_index_of, frames_to_duration, unacked,
};
pub use report::{
    PauseOutcome, PauseReport, TurnReport, TurnStatus, format_latency, format_latency_line,
    format_turn_line,
};
pub use run::{SpeechBounds, replay_file, replay_file_with_speech};

use super::{ClientError, TurnTaking};
use crate::protocol::DEFAULT_OUTPUT_SAMPLE_RATE;

/// Default input chunk length.
pub const DEFAULT_CHUNK_MS: u32 = 20;
/// Default tail timeout: how long after the file is streamed the turn may take.
pub const DEFAULT_TAIL_TIMEOUT: Duration = Duration::from_secs(15);
/// How long a dropped call keeps trying to resume (the server's default grace is 30 s).
pub const RESUME_WINDOW: Duration = Duration::from_secs(20);
/// How long to wait for `session.ended` after `session.end`.
const END_TIMEOUT: Duration = Duration::from_secs(5);

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
    /// Further `turnDetection` fields (mode, smart's silence bounds), sent as given; its
    /// `silence_ms` is not read (the field above is the one setting).
    pub turn_taking: TurnTaking,
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
    /// The wire protocol the calls speak.
    pub protocol: Protocol,
    /// Realtime only: the client commits right after the chunk holding the end of speech
    /// and asks for the answer (`turn_detection: null`), as a push-to-talk release does.
    pub push_to_talk: bool,
}

/// The wire protocol of the calls replayed.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq, clap::ValueEnum, serde::Serialize)]
#[serde(rename_all = "lowercase")]
pub enum Protocol {
    /// callgate.v1 (`/v1/call`).
    #[default]
    V1,
    /// The OpenAI Realtime GA protocol (`/v1/realtime`), 24 kHz PCM in base64 events.
    Realtime,
}

impl Protocol {
    /// The endpoint's path on a callgate server.
    pub fn path(self) -> &'static str {
        match self {
            Self::V1 => "/v1/call",
            Self::Realtime => "/v1/realtime",
        }
    }
}

/// A clip spoken over the AI's answer (`callgate bench --barge-in`, `--backchannel`): once
/// the answer's first AI audio frame has arrived and `after` has passed, the clip is
/// streamed at real-time pace, like a candidate cutting in or nodding along.
#[derive(Debug, Clone)]
pub struct BargeIn {
    /// Mono samples of the clip.
    pub samples: Vec<f32>,
    /// Their rate; each call converts them to its own input format.
    pub rate: u32,
    /// How long after the answer's first AI audio frame the clip starts.
    pub after: Duration,
    /// The clip is a backchannel ("mm-hmm", "okay"): the answer should pause and resume,
    /// not stop. Otherwise it is an interruption, which should cancel the answer.
    pub backchannel: bool,
}

impl ReplayOptions {
    /// The `turnDetection` settings these options send beyond the typed `session.start`
    /// (every one, `silenceMs` included, for a report of what was asked).
    pub fn turn_detection(&self) -> TurnTaking {
        TurnTaking {
            silence_ms: self.silence_ms,
            ..self.turn_taking
        }
    }

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
            turn_taking: TurnTaking::default(),
            tail_timeout: DEFAULT_TAIL_TIMEOUT,
            quiet: false,
            barge_in: None,
            resume: true,
            protocol: Protocol::V1,
            push_to_talk: false,
        }
    }
}

/// Replays every file in order and returns one report per user turn (at least one per
/// file). Per-call problems (refused connection, timeouts) become reports with status
/// `error`/`timeout`; `Err` is only for input problems (unreadable WAV, output folder).
pub async fn replay(opts: &ReplayOptions) -> Result<Vec<TurnReport>, ClientError> {
    // Read everything first (off the async workers) so a typo in the last file fails
    // before the first call.
    let (files, out_dir) = (opts.files.clone(), opts.out_dir.clone());
    let inputs = tokio::task::spawn_blocking(move || {
        if let Some(dir) = &out_dir {
            std::fs::create_dir_all(dir).map_err(|e| ClientError::file(dir, e))?;
        }
        files
            .iter()
            .map(|f| load_wav(f))
            .collect::<Result<Vec<_>, _>>()
    })
    .await
    .map_err(|e| ClientError::file(std::path::Path::new("input files"), e))??;
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
    if let Some(why) = args.stream.unsupported() {
        return Err(ClientError::BadUrl {
            url: args.url,
            reason: why.into(),
        });
    }
    let (json, call_reports) = (args.json, args.report);
    let opts = ReplayOptions::from(args);
    let reports = replay(&opts).await?;
    let mut lines = Vec::new();
    for r in &reports {
        lines.push(if json {
            serde_json::to_string(r).unwrap_or_default()
        } else {
            format_turn_line(r)
        });
    }
    if call_reports {
        let mut sessions: Vec<&str> = reports.iter().map(|r| r.session_id.as_str()).collect();
        sessions.dedup();
        for id in sessions.into_iter().filter(|id| !id.is_empty()) {
            match fetch_call_report(&opts.url, id).await {
                Ok(report) if json => {
                    lines.push(serde_json::to_string(&report).unwrap_or_default())
                }
                Ok(report) => lines.push(crate::report::text::render(&report)),
                Err(e) => lines.push(format!("no report for call {id}: {e}")),
            }
        }
    }
    let mut out = std::io::stdout().lock();
    for line in lines {
        let _ = writeln!(out, "{}", line.trim_end());
    }
    Ok(reports.iter().all(TurnReport::is_completed))
}

/// The server's report of call `session_id`, asked of the server at `ws_url`; waits (up to
/// 3 s) for the call's end to reach its log, as the server ends a call after its socket.
pub async fn fetch_call_report(
    ws_url: &str,
    session_id: &str,
) -> Result<crate::report::Report, String> {
    let base = ws_url
        .replacen("ws://", "http://", 1)
        .replacen("wss://", "https://", 1);
    let origin = base
        .find("/v1/")
        .map_or(base.as_str(), |i| &base[..i])
        .trim_end_matches('/');
    let url = format!("{origin}/v1/calls/{session_id}/report");
    let client = reqwest::Client::new();
    let mut last = None;
    for _ in 0..30 {
        let reply = client.get(&url).send().await.map_err(|e| e.to_string())?;
        if !reply.status().is_success() {
            return Err(format!("{url}: HTTP {}", reply.status()));
        }
        let report: crate::report::Report = reply.json().await.map_err(|e| e.to_string())?;
        if report.ended {
            return Ok(report);
        }
        last = Some(report);
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
    last.ok_or_else(|| format!("{url}: no report"))
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::audio::test_signals::utterance;
    use crate::client::testing::{scripted_call, test_dir, write_wav};
    use crate::protocol::ErrorCode;

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
