//! What a replay reports: one [`TurnReport`] per user turn, and its one-line renderings
//! (the live latency line on stderr, the summary line on stdout).

use std::path::{Path, PathBuf};

use serde::{Deserialize, Serialize};

pub use super::player::PauseOutcome;
use crate::protocol::{DoneStatus, ErrorEvent, Latency};

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
    /// The turn whose answer the barge-in clip (an interruption or a backchannel) was
    /// spoken over.
    #[serde(default, skip_serializing_if = "std::ops::Not::not")]
    pub spoken_over: bool,
    /// `response.done.heardText`: what the server counts as heard of `aiText`.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub heard_text: Option<String>,
    /// Each `response.paused` of the turn's response, and how it ended.
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub pauses: Vec<PauseReport>,
    /// `error` events of the turn; errors without a `turnId` go to the file's last turn.
    pub errors: Vec<ErrorEvent>,
    /// Problems seen by the client (connection, protocol violations by the server).
    pub client_errors: Vec<String>,
    /// Where the turn's audio was written.
    pub audio_file: Option<PathBuf>,
    /// How many times the call was resumed on a new connection before this report.
    #[serde(default)]
    pub resumes: u32,
    /// `input.speech_stopped.audioMs`: where in the input the server put the end of this
    /// turn's speech.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub speech_end_ms: Option<u64>,
    /// `input.speech_stopped.endOfTurn` as the server sent it (which rule ended the turn),
    /// when it sends one.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub end_of_turn: Option<crate::protocol::EndOfTurn>,
    /// When `response.started` arrived, relative to the send of the chunk holding the
    /// end of the file's speech: negative when the AI began to answer before the last word.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub response_started_ms: Option<i64>,
    /// `response.started` `queued`: the wait for speech recognition the server announced.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub queued_eta_ms: Option<u64>,
}

/// One pause of a turn's response (speech over the interviewer), as the client saw it.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct PauseReport {
    /// `response.paused.audioMs`: where the server put the onset of the speech over the
    /// response, in the input.
    pub audio_ms: u64,
    /// How it ended: resumed (a backchannel), cancelled (an interruption), or open.
    pub outcome: PauseOutcome,
    /// `response.paused` to the `response.resumed` or `response.done` that ended it,
    /// client clock: how long the player was stopped.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub held_ms: Option<u64>,
    /// `response.resumed.pausedMs`: how long the server held the response.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub paused_ms: Option<u64>,
    /// `response.resumed.text`: what the server heard said over the response.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub text: Option<String>,
    /// The resume gap: from the end of the speech that caused the pause (the send of the
    /// chunk holding the end of speech of the clip being streamed when the pause came) to
    /// the `response.resumed` (or `response.done`) that ended it. Negative when it ended
    /// before that speech did.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub resume_gap_ms: Option<i64>,
}

impl TurnReport {
    /// A report of `turn_id` with nothing measured, heard or said yet.
    pub(crate) fn blank(path: &Path, session_id: &str, turn_id: u32, status: TurnStatus) -> Self {
        Self {
            file: path.to_path_buf(),
            session_id: session_id.to_owned(),
            turn_id,
            final_transcript: String::new(),
            ai_text: String::new(),
            status,
            voice_to_voice_ms: None,
            latency: Latency::default(),
            audio_ms_received: 0,
            output_stall_ms: 0,
            output_seq_gaps: 0,
            barge_in_ms: None,
            spoken_over: false,
            heard_text: None,
            pauses: Vec::new(),
            errors: Vec::new(),
            client_errors: Vec::new(),
            audio_file: None,
            resumes: 0,
            speech_end_ms: None,
            end_of_turn: None,
            response_started_ms: None,
            queued_eta_ms: None,
        }
    }

    /// Whether the turn completed (what the CLI exit code is based on).
    pub fn is_completed(&self) -> bool {
        self.status == TurnStatus::Completed
    }

    /// The pauses that ended in `outcome`.
    pub fn pauses_that(&self, outcome: PauseOutcome) -> usize {
        self.pauses.iter().filter(|p| p.outcome == outcome).count()
    }

    /// `paused N (resumed R)` when the response was paused, for the one-line renderings.
    fn pause_words(&self) -> Option<String> {
        if self.pauses.is_empty() {
            return None;
        }
        let gaps: Vec<String> = self
            .pauses
            .iter()
            .filter_map(|p| p.resume_gap_ms)
            .map(|g| g.to_string())
            .collect();
        let gap = if gaps.is_empty() {
            String::new()
        } else {
            format!(", resume gap {} ms", gaps.join("/"))
        };
        Some(format!(
            "paused {} (resumed {}{gap})",
            self.pauses.len(),
            self.pauses_that(PauseOutcome::Resumed)
        ))
    }
}

/// A figure in ms, or `-` when it was not measured.
pub(crate) fn ms_or_dash(v: Option<u64>) -> String {
    v.map_or_else(|| "-".to_owned(), |v| v.to_string())
}

/// The server's latency breakdown on one line, `-` for stages that did not run.
pub fn format_latency(l: &Latency) -> String {
    format!(
        "endpoint {} | asr {} | llm first token {} | tts first audio {} | first audio {} | total {} ms",
        ms_or_dash(l.endpoint_ms),
        ms_or_dash(l.asr_ms),
        ms_or_dash(l.llm_first_token_ms),
        ms_or_dash(l.tts_first_audio_ms),
        ms_or_dash(l.first_audio_ms),
        ms_or_dash(l.total_ms)
    )
}

/// The per-turn latency line printed when a turn ends (and its pauses, when it had any).
pub fn format_latency_line(r: &TurnReport) -> String {
    let mut line = format!(
        "turn {} {}: voice-to-voice {} ms | server: {} | AI audio {:.2} s",
        r.turn_id,
        status_word(r.status),
        ms_or_dash(r.voice_to_voice_ms),
        format_latency(&r.latency),
        r.audio_ms_received as f64 / 1000.0
    );
    if let Some(p) = r.pause_words() {
        line.push_str(&format!(" | {p}"));
    }
    line
}

/// One summary line per turn (the CLI's stdout without `--json`): file, turn, status,
/// voice-to-voice, then what was heard and said.
pub fn format_turn_line(r: &TurnReport) -> String {
    let mut line = format!(
        "{}\tturn {}\t{}\tv2v {} ms\tserver first audio {} ms\tyou: {:?}\tAI: {:?}",
        r.file.display(),
        r.turn_id,
        status_word(r.status),
        ms_or_dash(r.voice_to_voice_ms),
        ms_or_dash(r.latency.first_audio_ms),
        r.final_transcript,
        r.ai_text
    );
    if let Some(p) = r.pause_words() {
        line.push_str(&format!("\t{p}"));
    }
    for e in &r.errors {
        line.push_str(&format!("\terror {}: {}", e.code, e.message));
    }
    for e in &r.client_errors {
        line.push_str(&format!("\tclient error: {e}"));
    }
    line
}

pub(super) fn status_word(s: TurnStatus) -> &'static str {
    match s {
        TurnStatus::Completed => "completed",
        TurnStatus::Cancelled => "cancelled",
        TurnStatus::Failed => "failed",
        TurnStatus::Timeout => "timeout",
        TurnStatus::Error => "error",
    }
}

pub(super) fn map_done(s: DoneStatus) -> TurnStatus {
    match s {
        DoneStatus::Completed => TurnStatus::Completed,
        DoneStatus::Cancelled => TurnStatus::Cancelled,
        DoneStatus::Failed => TurnStatus::Failed,
    }
}

/// The one report of a call that broke before any user turn.
pub(super) fn failed_report(
    path: &Path,
    session_id: &str,
    status: TurnStatus,
    why: String,
) -> TurnReport {
    TurnReport {
        client_errors: vec![why],
        ..TurnReport::blank(path, session_id, 0, status)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn report() -> TurnReport {
        TurnReport {
            final_transcript: "I like Rust.".into(),
            ai_text: "Why?".into(),
            voice_to_voice_ms: Some(812),
            latency: Latency {
                endpoint_ms: Some(500),
                end_of_turn: None,
                asr_ms: Some(120),
                llm_first_token_ms: None,
                tts_first_audio_ms: Some(4),
                first_audio_ms: Some(300),
                total_ms: Some(900),
            },
            audio_ms_received: 1250,
            ..TurnReport::blank(Path::new("a/answer.wav"), "s1", 1, TurnStatus::Completed)
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
    fn pauses_are_named_on_both_lines() {
        let mut r = report();
        assert!(!format_turn_line(&r).contains("paused"));
        r.pauses = vec![
            PauseReport {
                audio_ms: 4000,
                outcome: PauseOutcome::Resumed,
                held_ms: Some(700),
                paused_ms: Some(690),
                text: Some("okay".into()),
                resume_gap_ms: Some(420),
            },
            PauseReport {
                audio_ms: 9000,
                outcome: PauseOutcome::Cancelled,
                held_ms: Some(500),
                paused_ms: None,
                text: None,
                resume_gap_ms: None,
            },
        ];
        assert!(
            format_latency_line(&r)
                .ends_with("| AI audio 1.25 s | paused 2 (resumed 1, resume gap 420 ms)"),
            "{}",
            format_latency_line(&r)
        );
        assert!(format_turn_line(&r).ends_with("\tpaused 2 (resumed 1, resume gap 420 ms)"));
        let v = serde_json::to_value(&r).unwrap();
        assert_eq!(v["pauses"][0]["outcome"], "resumed");
        assert_eq!(v["pauses"][0]["resumeGapMs"], 420);
        assert_eq!(v["pauses"][1]["outcome"], "cancelled");
        let back: TurnReport = serde_json::from_value(v).unwrap();
        assert_eq!(back, r);
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
}
