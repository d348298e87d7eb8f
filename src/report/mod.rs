//! The candidate's report of a call: per-answer timing, rate, fillers and pauses, the
//! call's figures and observations, computed from the call's `events.jsonl` alone (so it
//! can be rebuilt offline by `callgate report`).

mod build;
pub mod feedback;
pub mod fillers;
pub mod history;
pub mod html;
pub mod png;
pub mod text;

use std::path::Path;

use serde::{Deserialize, Serialize};

pub use build::{LogLine, build, parse_log};

/// The report of the call whose folder is `dir` (blocking file I/O).
pub fn read(dir: &Path) -> std::io::Result<Report> {
    let log = std::fs::read_to_string(dir.join("events.jsonl"))?;
    let mut report = build(&parse_log(&log));
    if let Some(file) = feedback::read(dir) {
        report.feedback.add(file);
    }
    Ok(report)
}

/// Writes `report.json` and `report.html` into the call's folder `dir` (blocking file I/O).
pub fn write_files(dir: &Path) -> std::io::Result<Report> {
    let report = read(dir)?;
    let json = serde_json::to_vec_pretty(&report).map_err(std::io::Error::other)?;
    write_whole(&dir.join("report.json"), &json)?;
    write_whole(&dir.join("report.html"), html::render(&report).as_bytes())?;
    Ok(report)
}

/// Writes `path` through a temporary file renamed over it, so a reader (the server's
/// `/report`, a test waiting for the file) sees the old file or the new one, never a part.
fn write_whole(path: &Path, bytes: &[u8]) -> std::io::Result<()> {
    let partial = path.with_extension("partial");
    std::fs::write(&partial, bytes)?;
    std::fs::rename(&partial, path)
}

/// Thresholds behind the observations; docs/report.md shows this table.
pub mod rules {
    /// An answer shorter than this is short (behavioural answers usually need 60-90 s).
    pub const SHORT_ANSWER_S: f64 = 15.0;
    /// An answer longer than this loses the interviewer.
    pub const LONG_ANSWER_S: f64 = 180.0;
    /// Faster than this is hard to follow (conversation runs at about 140-160 wpm).
    pub const FAST_WPM: f64 = 180.0;
    /// Slower than this sounds hesitant.
    pub const SLOW_WPM: f64 = 110.0;
    /// Fillers a minute (of speech) above this are noticeable.
    pub const FILLERS_PER_MINUTE: f64 = 6.0;
    /// A pause inside an answer this long is a long one.
    pub const LONG_PAUSE_MS: u64 = 3000;
    /// Taking longer than this to start answering is a slow start.
    pub const SLOW_START_MS: i64 = 4000;
    /// Speech over the next reply that began within this long after an answer's end means
    /// the interviewer cut the candidate off.
    pub const CUT_OFF_MS: u64 = 2000;
    /// A candidate's share of the talking below this: the interviewer talked most.
    pub const LOW_TALK_RATIO: f64 = 0.5;
    /// A pause shorter than this is not listed (the VAD keeps pauses from 250 ms).
    pub const LISTED_PAUSE_MS: u64 = 500;

    /// Every rule as (name, threshold, meaning), for the docs and the HTML report.
    pub fn table() -> Vec<(&'static str, String, &'static str)> {
        vec![
            (
                "short answer",
                format!("< {SHORT_ANSWER_S} s"),
                "behavioural answers usually need 60-90 s",
            ),
            (
                "long answer",
                format!("> {LONG_ANSWER_S} s"),
                "past 3 minutes the interviewer loses the thread",
            ),
            (
                "fast speech",
                format!("> {FAST_WPM} wpm"),
                "conversation runs at about 140-160 wpm",
            ),
            (
                "slow speech",
                format!("< {SLOW_WPM} wpm"),
                "sounds hesitant",
            ),
            (
                "fillers",
                format!("> {FILLERS_PER_MINUTE} a minute"),
                "um, uh, like, you know, I mean",
            ),
            (
                "long pause",
                format!(">= {} s", LONG_PAUSE_MS as f64 / 1000.0),
                "a silence inside an answer",
            ),
            (
                "slow start",
                format!("> {} s", SLOW_START_MS as f64 / 1000.0),
                "from the question's end to the first word",
            ),
            (
                "cut off",
                format!("<= {} s", CUT_OFF_MS as f64 / 1000.0),
                "speech over the reply this soon after the answer's end",
            ),
            (
                "interruptions",
                ">= 1".into(),
                "speech over the interviewer that stopped it",
            ),
            (
                "low talk share",
                format!("< {:.0}%", LOW_TALK_RATIO * 100.0),
                "of the call's speech was the candidate's",
            ),
        ]
    }
}

/// The whole report (`calls/<id>/report.json`, `GET /v1/calls/<id>/report`).
#[derive(Debug, Clone, Serialize, Deserialize, PartialEq, schemars::JsonSchema, ts_rs::TS)]
#[serde(rename_all = "camelCase")]
pub struct Report {
    /// The call.
    pub session_id: String,
    /// The token's user, when tokens are on.
    pub user: Option<String>,
    /// The interviewer persona.
    pub persona: Option<String>,
    /// Which voice spoke, when the call said.
    pub voice: Option<String>,
    /// When the call started (Unix ms).
    pub started_at: u64,
    /// From `session.started` to `session.ended`.
    pub duration_ms: u64,
    /// The call has ended (`session.ended` is in the log): the report is final.
    pub ended: bool,
    /// Every answer, in order.
    pub answers: Vec<Answer>,
    /// Figures over the whole call.
    pub call: CallFigures,
    /// What crossed a threshold of [`rules`].
    pub observations: Vec<Observation>,
    /// Who spoke when, in ms from the call's start.
    pub timeline: Vec<Span>,
    /// Whether more than the rules has been said.
    pub feedback: Feedback,
}

/// One of the candidate's answers.
#[derive(Debug, Clone, Serialize, Deserialize, PartialEq, schemars::JsonSchema, ts_rs::TS)]
#[serde(rename_all = "camelCase")]
pub struct Answer {
    /// The user turn.
    pub turn_id: u32,
    /// What the interviewer had said (as heard) before this answer.
    pub question: String,
    /// What the candidate said (whisper).
    pub transcript: String,
    /// Start of the answer's speech, ms from the call's start.
    pub start_ms: u64,
    /// End of the answer's speech, ms from the call's start.
    pub end_ms: u64,
    /// Start of the answer's speech in the input stream (ms of audio the client sent).
    pub input_start_ms: u64,
    /// End of the answer's speech in the input stream.
    pub input_end_ms: u64,
    /// From the first word to the last, pauses included.
    pub length_s: f64,
    /// Words in the transcript, fillers included.
    pub words: usize,
    /// Speech time: the answer's length without its pauses.
    pub speech_ms: u64,
    /// Words per minute of speech time.
    pub words_per_minute: f64,
    /// The fillers heard, in order.
    pub fillers: Vec<fillers::Filler>,
    /// Fillers a minute of speech time.
    pub fillers_per_minute: f64,
    /// Pauses of at least [`rules::LISTED_PAUSE_MS`] inside the answer.
    pub pauses: Vec<AnswerPause>,
    /// The longest of the answer's pauses (0 without one).
    pub longest_pause_ms: u64,
    /// From the end of the interviewer's audio to the answer's first speech; negative when
    /// the candidate started before it ended (interrupted it). `None` when nothing came
    /// before.
    pub start_delay_ms: Option<i64>,
    /// The answer began over the interviewer and stopped it.
    pub interrupted_interviewer: bool,
    /// The candidate spoke on over the reply within [`rules::CUT_OFF_MS`] of the answer's end and stopped it.
    pub cut_off: bool,
}

impl Answer {
    /// Its figures in a few words, as the page and the terminal show them.
    pub fn summary(&self) -> String {
        format!(
            "{:.1} s, {} words, {:.0} wpm, {} fillers, {} pauses (longest {:.1} s)",
            self.length_s,
            self.words,
            self.words_per_minute,
            self.fillers.len(),
            self.pauses.len(),
            self.longest_pause_ms as f64 / 1000.0
        )
    }
}

/// A pause inside an answer.
#[derive(
    Debug, Clone, Copy, Serialize, Deserialize, PartialEq, schemars::JsonSchema, ts_rs::TS, Eq,
)]
#[serde(rename_all = "camelCase")]
pub struct AnswerPause {
    /// Where it began, ms from the answer's start.
    pub at_ms: u64,
    /// How long it lasted.
    pub length_ms: u64,
}

/// Figures for the whole call.
#[derive(Debug, Clone, Serialize, Deserialize, PartialEq, schemars::JsonSchema, ts_rs::TS)]
#[serde(rename_all = "camelCase")]
pub struct CallFigures {
    /// How many answers.
    pub answers: usize,
    /// The candidate's speech, all of it (answers, backchannels), ms.
    pub candidate_talk_ms: u64,
    /// The interviewer's audio as heard, ms.
    pub interviewer_talk_ms: u64,
    /// The candidate's share of the talking, 0..1.
    pub talk_ratio: f64,
    /// The mean answer length.
    pub average_answer_s: f64,
    /// Words per minute over all answers' speech time.
    pub words_per_minute: f64,
    /// Fillers in all answers.
    pub fillers: usize,
    /// Fillers a minute over all answers' speech time.
    pub fillers_per_minute: f64,
    /// Listed pauses in all answers.
    pub pauses: usize,
    /// Answers that began over the interviewer and stopped it.
    pub interruptions: usize,
    /// Answers the interviewer cut off.
    pub cut_offs: usize,
}

/// Who spoke from when to when (ms from the call's start).
#[derive(
    Debug, Clone, Copy, Serialize, Deserialize, PartialEq, schemars::JsonSchema, ts_rs::TS, Eq,
)]
#[serde(rename_all = "camelCase")]
pub struct Span {
    /// Who spoke.
    pub who: Speaker,
    /// From, ms from the call's start.
    pub start_ms: u64,
    /// To, ms from the call's start.
    pub end_ms: u64,
}

/// One side of the call.
#[derive(
    Debug, Clone, Copy, Serialize, Deserialize, PartialEq, schemars::JsonSchema, ts_rs::TS, Eq,
)]
#[serde(rename_all = "lowercase")]
pub enum Speaker {
    /// The person practising.
    Candidate,
    /// callgate's interviewer.
    Interviewer,
}

/// One observation with the number behind it.
#[derive(Debug, Clone, Serialize, Deserialize, PartialEq, schemars::JsonSchema, ts_rs::TS)]
#[serde(rename_all = "camelCase")]
pub struct Observation {
    /// The rule it comes from (a name in [`rules::table`]).
    pub rule: String,
    /// The observation, with its figure.
    pub text: String,
    /// The answer it is about (index into `answers`), if one.
    pub answer: Option<usize>,
}

/// Feedback on the answers beyond the rules.
#[derive(Debug, Clone, Serialize, Deserialize, PartialEq, schemars::JsonSchema, ts_rs::TS)]
#[serde(rename_all = "camelCase")]
pub struct Feedback {
    /// `rules_only`: the observations are all there is; `pending`: the interviewer model's
    /// feedback on each answer is being written; `model`: it is in `answers`.
    pub status: String,
    /// What the feedback is made of.
    pub note: String,
    /// The model's feedback on each answer (status `model`).
    #[serde(default)]
    pub answers: Vec<feedback::AnswerFeedback>,
}

impl Feedback {
    /// The model's feedback, once written.
    fn add(&mut self, file: feedback::FeedbackFile) {
        self.status = "model".into();
        self.note = format!(
            "the observations, and two strengths and one improvement per answer from the \
             interviewer model ({})",
            file.model
        );
        self.answers = file.answers;
    }
}
