//! `callgate bench --backchannel` (issue 14): sounds spoken over the interviewer's reply.
//! Each call gives one of a few answers and, once the reply has played for
//! `--barge-in-after-ms`, speaks one clip over it:
//!
//! - backchannels, "mm-hmm", "okay", "right", "yeah" ([`BACKCHANNEL_TAKES`] takes each, in
//!   three espeak-ng voices): the reply must pause and resume where it stopped. Never
//!   cancelled (a false cancel), resumed soon after the backchannel ends
//!   ([`RESUME_WITHIN_MS`]), and heard whole: `heardText` equals its text, its output `seq`
//!   has no hole, and its audio totals what the same reply totals uninterrupted (the
//!   `reference` set: each answer once with nothing spoken over it, run first);
//! - interruptions, "Sorry, can I stop you there?" and "Wait, let me add something."
//!   ([`INTERRUPTION_TAKES`] takes each): the reply must be cancelled, its audio stop within
//!   [`STOP_WITHIN_MS`] of the speech's onset, and the interruption be answered as its own
//!   turn.
//!
//! espeak-ng reads "mm-hmm" (and "mm hmm", "mhm", "mmhmm", "uh-huh") as sounds whisper
//! tiny.en writes "Mm-m-m-m", "And anthem" or "Uh-uh", none of them a backchannel; "mm" it
//! writes "Mm." in each of the three voices, so "mm" is what is spoken for "mm-hmm".

use std::collections::BTreeMap;
use std::path::Path;
use std::time::Duration;

use serde::Serialize;

use super::cases::{self, Plan};
use super::corpus::{self, CorpusError, Item};
use super::report::{CallRecord, Level};
use super::stats::Summary;
use crate::client::replay::report::ms_or_dash;
use crate::client::replay::{BargeIn, PauseOutcome, TurnReport, TurnStatus};

/// Takes of each backchannel.
pub const BACKCHANNEL_TAKES: usize = 3;
/// Takes of each interruption.
pub const INTERRUPTION_TAKES: usize = 5;
/// The longest a reply may stay paused after a backchannel ends (issue 14's target).
pub const RESUME_WITHIN_MS: i64 = 600;
/// The longest an interrupted reply may go on after the interruption's onset.
pub const STOP_WITHIN_MS: u64 = 250;
/// How far a resumed reply's audio may total from the same reply's uninterrupted: a frame
/// skipped or doubled is 100 ms, while espeak-ng's own output for the same text varies by
/// up to about 25 ms from call to call (measured: 5869-5893 ms for one reply).
pub const AUDIO_TOLERANCE_MS: u64 = 50;
/// The set that runs each answer with nothing spoken over it.
pub const REFERENCE: &str = "reference";
/// The voices the clips are spoken in, in turn.
pub const VOICES: [&str; 3] = ["en-us", "en-gb", "en-us+f3"];

/// The answers given before the reply is spoken over: take `k` of a clip uses answer `k`
/// (cycling), so with one take every call gives the first answer.
const ANSWERS: [(&str, &str); 3] = [
    (
        "en-us",
        "I have five years of experience building backend services in Rust and Python.",
    ),
    (
        "en-gb",
        "The hardest bug I fixed was a race condition in our payment service.",
    ),
    (
        "en-us+m3",
        "We moved the monolith to microservices over about eighteen months.",
    ),
];

/// Silence before each answer, ms.
const ANSWER_LEAD_IN_MS: u64 = 500;

/// What a clip spoken over the reply is meant to be.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize)]
#[serde(rename_all = "lowercase")]
pub enum OverlapKind {
    /// A listener's "I follow": the reply should go on.
    Backchannel,
    /// The candidate takes the floor: the reply should stop.
    Interruption,
}

impl OverlapKind {
    /// The set's name in the report.
    pub fn set(self) -> &'static str {
        match self {
            OverlapKind::Backchannel => "backchannel",
            OverlapKind::Interruption => "interruption",
        }
    }

    fn takes(self) -> usize {
        match self {
            OverlapKind::Backchannel => BACKCHANNEL_TAKES,
            OverlapKind::Interruption => INTERRUPTION_TAKES,
        }
    }
}

/// A clip of `--clips`.
#[derive(Debug, Clone, Copy, PartialEq, Eq, clap::ValueEnum)]
pub enum OverlapClip {
    /// "mm-hmm" (spoken "mm").
    MmHmm,
    /// "okay".
    Okay,
    /// "right".
    Right,
    /// "yeah".
    Yeah,
    /// "Sorry, can I stop you there?"
    Sorry,
    /// "Wait, let me add something."
    Wait,
}

impl OverlapClip {
    /// Every clip, in the report's order.
    pub const ALL: [OverlapClip; 6] = [
        OverlapClip::MmHmm,
        OverlapClip::Okay,
        OverlapClip::Right,
        OverlapClip::Yeah,
        OverlapClip::Sorry,
        OverlapClip::Wait,
    ];

    /// What the candidate means to say.
    pub fn words(self) -> &'static str {
        match self {
            OverlapClip::MmHmm => "mm-hmm",
            OverlapClip::Okay => "okay",
            OverlapClip::Right => "right",
            OverlapClip::Yeah => "yeah",
            OverlapClip::Sorry => "Sorry, can I stop you there?",
            OverlapClip::Wait => "Wait, let me add something.",
        }
    }

    /// What espeak-ng is given to say it.
    pub fn spoken(self) -> &'static str {
        match self {
            OverlapClip::MmHmm => "mm",
            other => other.words(),
        }
    }

    /// Backchannel or interruption.
    pub fn kind(self) -> OverlapKind {
        match self {
            OverlapClip::Sorry | OverlapClip::Wait => OverlapKind::Interruption,
            _ => OverlapKind::Backchannel,
        }
    }

    fn index(self) -> usize {
        Self::ALL.iter().position(|&c| c == self).unwrap_or(0)
    }
}

/// A clip spoken over one call's reply.
#[derive(Debug, Clone)]
pub struct Overlap {
    /// Which clip.
    pub clip: OverlapClip,
    /// Its espeak-ng voice.
    pub voice: &'static str,
    /// The clip as replay speaks it.
    pub barge: BargeIn,
}

/// What to run: the clips, how many takes of each, and when into the reply they start.
#[derive(Debug, Clone)]
pub struct OverlapPlan {
    /// The clips (empty: all).
    pub clips: Vec<OverlapClip>,
    /// Takes of each clip; `None`: each kind's own number.
    pub takes: Option<usize>,
    /// How long into the reply each clip starts.
    pub after: Duration,
}

/// One set of calls: its name, and each call's answer with the clip spoken over it.
pub struct SetPlan {
    /// `reference`, `backchannel` or `interruption`.
    pub name: &'static str,
    /// The calls, in order.
    pub calls: Vec<(Item, Option<Overlap>)>,
}

/// The answers, generated into `root/backchannel/`, and the clips spoken (in memory):
/// the reference set (each answer a backchannel call uses), then the backchannel and the
/// interruption sets, each left out when it has no clip.
pub fn prepare(root: &Path, plan: &OverlapPlan) -> Result<Vec<SetPlan>, CorpusError> {
    let dir = root.join("backchannel");
    let answers = answer_items(&dir)?;
    let scratch = dir.join(".clip.wav");
    let clips = if plan.clips.is_empty() {
        OverlapClip::ALL.to_vec()
    } else {
        OverlapClip::ALL
            .into_iter()
            .filter(|c| plan.clips.contains(c))
            .collect()
    };
    let mut sets = Vec::new();
    for kind in [OverlapKind::Backchannel, OverlapKind::Interruption] {
        let mut calls = Vec::new();
        for &clip in clips.iter().filter(|c| c.kind() == kind) {
            for take in 0..plan.takes.unwrap_or(kind.takes()) {
                let voice = VOICES[(take + clip.index()) % VOICES.len()];
                let spoken = corpus::speak(clip.spoken(), voice, &scratch)?;
                let barge = BargeIn {
                    samples: spoken.samples,
                    rate: spoken.sample_rate,
                    after: plan.after,
                    backchannel: kind == OverlapKind::Backchannel,
                };
                let overlap = Overlap { clip, voice, barge };
                calls.push((answers[take % answers.len()].clone(), Some(overlap)));
            }
        }
        if !calls.is_empty() {
            sets.push(SetPlan {
                name: kind.set(),
                calls,
            });
        }
    }
    let used = |a: &Item| {
        sets.iter()
            .filter(|s| s.name == OverlapKind::Backchannel.set())
            .flat_map(|s| &s.calls)
            .any(|(item, _)| item.path == a.path)
    };
    let reference: Vec<(Item, Option<Overlap>)> = answers
        .iter()
        .filter(|a| used(a))
        .map(|a| (a.clone(), None))
        .collect();
    if !reference.is_empty() {
        sets.insert(
            0,
            SetPlan {
                name: REFERENCE,
                calls: reference,
            },
        );
    }
    Ok(sets)
}

/// The answers as fixtures in `dir` (made afresh: espeak-ng is quick and deterministic).
fn answer_items(dir: &Path) -> Result<Vec<Item>, CorpusError> {
    let plans: Vec<Plan> = ANSWERS
        .iter()
        .enumerate()
        .map(|(i, &(voice, text))| Plan {
            name: format!("answer-{i:02}-{}.wav", voice.replace('+', "-")),
            answer: i,
            group: None,
            voice,
            parts: vec![text.to_owned()],
            pauses_ms: Vec::new(),
            lead_in_ms: ANSWER_LEAD_IN_MS,
            tail_ms: 0,
            noise: None,
        })
        .collect();
    cases::generate(dir, &plans, &|_, _| {})?;
    corpus::load(dir)
}

/// What one call's clip did to the reply it was spoken over.
#[derive(Debug, Clone, Default, Serialize)]
#[serde(rename_all = "camelCase")]
pub struct OverlapVerdict {
    /// `backchannel` or `interruption`.
    pub kind: Option<OverlapKind>,
    /// The clip, as the candidate means it ("mm-hmm").
    pub clip: String,
    /// What espeak-ng was given ("mm").
    pub spoken: String,
    /// Its voice.
    pub voice: String,
    /// The turn whose reply the clip was spoken over; `None` when it never was (the reply
    /// ended, or never began, before the clip was due).
    pub turn_id: Option<u32>,
    /// The reply was paused.
    pub paused: bool,
    /// It was resumed.
    pub resumed: bool,
    /// It was cancelled (for a backchannel: a false cancel).
    pub cancelled: bool,
    /// What the server heard: `response.resumed.text`, or the interruption's transcript.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub heard: Option<String>,
    /// Backchannel: the end of its speech to `response.resumed`, ms.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub resume_gap_ms: Option<i64>,
    /// Interruption: its onset to the reply's last audio frame, ms.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub stop_ms: Option<u64>,
    /// A completed reply's `heardText` equals its text; `None` when it did not complete.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub heard_whole: Option<bool>,
    /// Holes in the output `seq` while the reply's audio came.
    pub seq_gaps: u32,
    /// The reply's audio received, ms.
    pub audio_ms: u64,
    /// The same reply's audio in the reference set, uninterrupted; `None` when no
    /// reference call gave the same text.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub reference_audio_ms: Option<u64>,
    /// `audio_ms` is `reference_audio_ms` within [`AUDIO_TOLERANCE_MS`]: no frame skipped
    /// or doubled.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub audio_whole: Option<bool>,
    /// User turns after the reply's that should not exist (a backchannel taken for a
    /// turn; an interruption split in two).
    pub extra_turns: usize,
    /// Interruption: the turn it became was answered (its reply completed).
    pub answered: bool,
    /// Every target of issue 14 met (see the module's text).
    pub met: bool,
}

/// Judges one call: its turns, as replay reported them, against the clip spoken.
pub fn verdict(o: &Overlap, turns: &[TurnReport]) -> OverlapVerdict {
    let kind = o.clip.kind();
    let mut v = OverlapVerdict {
        kind: Some(kind),
        clip: o.clip.words().to_owned(),
        spoken: o.clip.spoken().to_owned(),
        voice: o.voice.to_owned(),
        ..OverlapVerdict::default()
    };
    let Some(over) = turns.iter().find(|t| t.spoken_over) else {
        return v;
    };
    let later: Vec<&TurnReport> = turns.iter().filter(|t| t.turn_id > over.turn_id).collect();
    v.turn_id = Some(over.turn_id);
    v.paused = !over.pauses.is_empty();
    v.cancelled = over.status == TurnStatus::Cancelled;
    v.seq_gaps = over.output_seq_gaps;
    v.audio_ms = over.audio_ms_received;
    v.heard_whole = (over.status == TurnStatus::Completed)
        .then(|| over.heard_text.as_deref() == Some(over.ai_text.as_str()));
    let resume = over
        .pauses
        .iter()
        .find(|p| p.outcome == PauseOutcome::Resumed);
    v.resumed = resume.is_some();
    match kind {
        OverlapKind::Backchannel => {
            v.heard = resume.and_then(|p| p.text.clone());
            v.resume_gap_ms = resume.and_then(|p| p.resume_gap_ms);
            v.extra_turns = later.len();
        }
        OverlapKind::Interruption => {
            let own = later.first();
            v.heard = own.map(|t| t.final_transcript.clone());
            v.answered = own.is_some_and(|t| t.is_completed() && t.voice_to_voice_ms.is_some());
            v.stop_ms = over.barge_in_ms;
            v.extra_turns = later.len().saturating_sub(1);
        }
    }
    v.met = met(&v);
    v
}

/// Whether a verdict meets every target for its kind.
fn met(v: &OverlapVerdict) -> bool {
    match v.kind {
        Some(OverlapKind::Backchannel) => {
            v.resumed
                && !v.cancelled
                && v.resume_gap_ms.is_some_and(|g| g <= RESUME_WITHIN_MS)
                && v.heard_whole == Some(true)
                && v.seq_gaps == 0
                && v.audio_whole == Some(true)
                && v.extra_turns == 0
        }
        Some(OverlapKind::Interruption) => {
            v.cancelled
                && v.stop_ms.is_some_and(|ms| ms <= STOP_WITHIN_MS)
                && v.answered
                && v.extra_turns == 0
        }
        None => false,
    }
}

/// Fills in what needs the reference set (each reply's uninterrupted audio), then sums
/// each overlap level up.
pub fn complete(levels: &mut [Level]) {
    let mut reference: BTreeMap<String, u64> = BTreeMap::new();
    for l in levels
        .iter()
        .filter(|l| l.summary.case.as_deref() == Some(REFERENCE))
    {
        for t in l.calls.iter().flat_map(|c| &c.turns) {
            if t.is_completed() && t.pauses.is_empty() && !t.ai_text.is_empty() {
                reference
                    .entry(t.ai_text.clone())
                    .or_insert(t.audio_ms_received);
            }
        }
    }
    for l in levels.iter_mut() {
        let mut any = false;
        for c in l.calls.iter_mut() {
            let Some(v) = c.overlap.as_mut() else {
                continue;
            };
            any = true;
            let over = c.turns.iter().find(|t| t.spoken_over);
            if let (Some(OverlapKind::Backchannel), Some(t)) = (v.kind, over) {
                v.reference_audio_ms = reference.get(&t.ai_text).copied();
                v.audio_whole = v
                    .reference_audio_ms
                    .map(|r| r.abs_diff(v.audio_ms) <= AUDIO_TOLERANCE_MS);
            }
            v.met = met(v);
        }
        if any {
            l.summary.overlap = Some(OverlapSummary::of(&l.calls));
        }
    }
}

/// The figures of some calls' verdicts.
#[derive(Debug, Clone, Default, Serialize)]
#[serde(rename_all = "camelCase")]
pub struct OverlapFigures {
    /// The set, or the clip.
    pub label: String,
    /// Calls.
    pub calls: usize,
    /// Calls whose reply the clip was spoken over.
    pub spoken_over: usize,
    /// Replies paused.
    pub paused: usize,
    /// Replies resumed.
    pub resumed: usize,
    /// Replies cancelled (for backchannels: false cancels).
    pub cancelled: usize,
    /// Completed replies heard whole: `heardText` = text, no `seq` hole, the reference's
    /// audio exactly.
    pub whole: usize,
    /// Backchannel calls whose reply no reference call gave.
    pub no_reference: usize,
    /// User turns that should not exist.
    pub extra_turns: usize,
    /// Interruptions answered as their own turn.
    pub answered: usize,
    /// Calls that met every target.
    pub met: usize,
    /// Backchannels: end of speech to `response.resumed`.
    pub resume_gap_ms: Summary,
    /// Interruptions: onset to the reply's last audio frame.
    pub stop_ms: Summary,
    /// What the server heard, with how often.
    pub heard: BTreeMap<String, usize>,
}

impl OverlapFigures {
    fn of(label: String, verdicts: &[&OverlapVerdict]) -> Self {
        let count = |f: fn(&OverlapVerdict) -> bool| verdicts.iter().filter(|v| f(v)).count();
        let mut heard = BTreeMap::new();
        for h in verdicts.iter().filter_map(|v| v.heard.as_ref()) {
            *heard.entry(h.trim().to_owned()).or_insert(0) += 1;
        }
        Self {
            label,
            calls: verdicts.len(),
            spoken_over: count(|v| v.turn_id.is_some()),
            paused: count(|v| v.paused),
            resumed: count(|v| v.resumed),
            cancelled: count(|v| v.cancelled),
            whole: count(|v| {
                v.heard_whole == Some(true) && v.seq_gaps == 0 && v.audio_whole != Some(false)
            }),
            no_reference: count(|v| {
                v.kind == Some(OverlapKind::Backchannel)
                    && v.heard_whole.is_some()
                    && v.audio_whole.is_none()
            }),
            extra_turns: verdicts.iter().map(|v| v.extra_turns).sum(),
            answered: count(|v| v.answered),
            met: count(|v| v.met),
            resume_gap_ms: Summary::of(
                verdicts
                    .iter()
                    .filter_map(|v| v.resume_gap_ms)
                    .map(|g| g.max(0) as u64),
            ),
            stop_ms: Summary::of(verdicts.iter().filter_map(|v| v.stop_ms)),
            heard,
        }
    }
}

/// An overlap level's figures: the whole set, then each clip.
#[derive(Debug, Clone, Default, Serialize)]
#[serde(rename_all = "camelCase")]
pub struct OverlapSummary {
    /// Every call of the level.
    pub set: OverlapFigures,
    /// Each clip's calls, in the report's order.
    pub clips: Vec<OverlapFigures>,
}

impl OverlapSummary {
    /// Sums up the verdicts of `calls`.
    pub fn of(calls: &[CallRecord]) -> Self {
        let verdicts: Vec<&OverlapVerdict> =
            calls.iter().filter_map(|c| c.overlap.as_ref()).collect();
        let set = verdicts
            .first()
            .and_then(|v| v.kind)
            .map_or("overlap", OverlapKind::set);
        let clips = OverlapClip::ALL
            .iter()
            .map(|c| {
                let of_clip: Vec<&OverlapVerdict> = verdicts
                    .iter()
                    .copied()
                    .filter(|v| v.clip == c.words())
                    .collect();
                (c, of_clip)
            })
            .filter(|(_, v)| !v.is_empty())
            .map(|(c, v)| {
                let label = if c.spoken() == c.words() {
                    c.words().to_owned()
                } else {
                    format!("{} (said {:?})", c.words(), c.spoken())
                };
                OverlapFigures::of(label, &v)
            })
            .collect();
        Self {
            set: OverlapFigures::of(set.to_owned(), &verdicts),
            clips,
        }
    }
}

/// The overlap levels in one table: a row per set, then one per clip, and the targets.
pub fn format_overlaps(levels: &[Level]) -> String {
    let mut out = format!(
        "{:<40} {:>5} {:>6} {:>7} {:>9} {:>5} {:>17} {:>17} {:>8} {:>4}  heard\n",
        "backchannels and interruptions",
        "calls",
        "paused",
        "resumed",
        "cancelled",
        "whole",
        "resume gap 50/90/max",
        "stop 50/90/max",
        "answered",
        "met"
    );
    for l in levels {
        let Some(s) = &l.summary.overlap else {
            continue;
        };
        out.push_str(&row(&s.set, ""));
        for c in &s.clips {
            out.push_str(&row(c, "  "));
        }
    }
    out.push_str(&format!(
        "targets: backchannels 0 cancelled, resumed within {RESUME_WITHIN_MS} ms of their end, \
         heard whole; interruptions all cancelled, audio stopped within {STOP_WITHIN_MS} ms of \
         the onset, answered as their own turn"
    ));
    out
}

fn row(f: &OverlapFigures, indent: &str) -> String {
    let three = |s: &Summary| {
        if s.count == 0 {
            return "-".to_owned();
        }
        format!(
            "{}/{}/{}",
            ms_or_dash(s.p50),
            ms_or_dash(s.p90),
            ms_or_dash(s.max)
        )
    };
    let heard: Vec<String> = f.heard.iter().map(|(h, n)| format!("{h:?} {n}")).collect();
    format!(
        "{:<40} {:>5} {:>6} {:>7} {:>9} {:>5} {:>17} {:>17} {:>8} {:>4}  {}\n",
        format!("{indent}{}", f.label),
        f.calls,
        f.paused,
        f.resumed,
        f.cancelled,
        f.whole,
        three(&f.resume_gap_ms),
        three(&f.stop_ms),
        f.answered,
        f.met,
        heard.join(", ")
    )
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::client::replay::PauseReport;

    fn overlap(clip: OverlapClip) -> Overlap {
        Overlap {
            clip,
            voice: "en-gb",
            barge: BargeIn {
                samples: Vec::new(),
                rate: 16000,
                after: Duration::ZERO,
                backchannel: clip.kind() == OverlapKind::Backchannel,
            },
        }
    }

    fn turn(id: u32, status: TurnStatus, text: &str) -> TurnReport {
        TurnReport {
            ai_text: text.into(),
            heard_text: Some(text.into()),
            audio_ms_received: 5200,
            voice_to_voice_ms: Some(700),
            ..TurnReport::blank(Path::new("a.wav"), "s", id, status)
        }
    }

    fn pause(outcome: PauseOutcome, gap: i64) -> PauseReport {
        PauseReport {
            audio_ms: 9000,
            outcome,
            held_ms: Some(800),
            paused_ms: Some(790),
            text: (outcome == PauseOutcome::Resumed).then(|| "Okay.".into()),
            resume_gap_ms: Some(gap),
        }
    }

    /// A backchannel call: the answer (turn 1) resumed after `gap` ms, heard whole.
    fn nodded(gap: i64) -> Vec<TurnReport> {
        let mut t = turn(1, TurnStatus::Completed, "Got it. What next?");
        t.spoken_over = true;
        t.pauses = vec![pause(PauseOutcome::Resumed, gap)];
        vec![t]
    }

    fn record(o: &Overlap, turns: Vec<TurnReport>) -> CallRecord {
        CallRecord {
            overlap: Some(verdict(o, &turns)),
            turns,
            ..CallRecord::default()
        }
    }

    #[test]
    fn a_backchannel_must_resume_soon_and_leave_the_reply_whole() {
        let o = overlap(OverlapClip::Okay);
        let v = verdict(&o, &nodded(420));
        assert!(v.paused && v.resumed && !v.cancelled);
        assert_eq!(
            (v.resume_gap_ms, v.heard.as_deref()),
            (Some(420), Some("Okay."))
        );
        assert_eq!((v.heard_whole, v.extra_turns), (Some(true), 0));
        assert!(!v.met, "not met until the reference's audio is known");
        // A false cancel, and a backchannel taken for a turn of its own.
        let mut turns = nodded(420);
        turns[0].status = TurnStatus::Cancelled;
        turns[0].pauses = vec![pause(PauseOutcome::Cancelled, 500)];
        turns.push(turn(2, TurnStatus::Completed, "Take your time."));
        let v = verdict(&o, &turns);
        assert!(v.cancelled && !v.resumed && v.heard_whole.is_none());
        assert_eq!(v.extra_turns, 1);
        // Never spoken over (the reply ended first): nothing is claimed.
        let v = verdict(&o, &[turn(1, TurnStatus::Completed, "x")]);
        assert!(v.turn_id.is_none() && !v.paused && !v.met);
    }

    #[test]
    fn an_interruption_must_stop_the_reply_and_be_answered() {
        let o = overlap(OverlapClip::Sorry);
        let mut over = turn(1, TurnStatus::Cancelled, "Got it. What next?");
        over.spoken_over = true;
        over.barge_in_ms = Some(190);
        over.pauses = vec![pause(PauseOutcome::Cancelled, 300)];
        let mut own = turn(2, TurnStatus::Completed, "Sure, go ahead.");
        own.final_transcript = "Sorry, can I stop you there?".into();
        let v = verdict(&o, &[over.clone(), own.clone()]);
        assert!(v.cancelled && v.answered && v.met, "{v:?}");
        assert_eq!(v.stop_ms, Some(190));
        assert_eq!(v.heard.as_deref(), Some("Sorry, can I stop you there?"));
        assert_eq!(v.resume_gap_ms, None);
        over.barge_in_ms = Some(260);
        assert!(!verdict(&o, &[over.clone(), own]).met, "stopped too late");
        over.barge_in_ms = Some(190);
        assert!(!verdict(&o, &[over]).met, "never answered");
    }

    #[test]
    fn the_reference_says_whether_the_reply_was_heard_whole() {
        let o = overlap(OverlapClip::Okay);
        let reference = CallRecord {
            turns: vec![turn(1, TurnStatus::Completed, "Got it. What next?")],
            ..CallRecord::default()
        };
        let mut short = nodded(450);
        short[0].audio_ms_received = 5100;
        let mut jitter = nodded(410);
        jitter[0].audio_ms_received = 5200 - AUDIO_TOLERANCE_MS;
        let mut other = nodded(300);
        other[0].ai_text = "Something else.".into();
        other[0].heard_text = Some("Something else.".into());
        let level = |case: &str, calls| Level {
            summary: super::super::report::LevelSummary {
                case: Some(case.into()),
                ..Default::default()
            },
            calls,
        };
        let mut levels = vec![
            level(REFERENCE, vec![reference]),
            level(
                "backchannel",
                vec![
                    record(&o, nodded(420)),
                    record(&o, nodded(700)),
                    record(&o, short),
                    record(&o, other),
                    record(&o, jitter),
                ],
            ),
        ];
        complete(&mut levels);
        assert!(levels[0].summary.overlap.is_none());
        let v: Vec<&OverlapVerdict> = levels[1]
            .calls
            .iter()
            .filter_map(|c| c.overlap.as_ref())
            .collect();
        assert!(v[0].met, "{:?}", v[0]);
        assert!(!v[1].met, "resumed too late");
        assert_eq!((v[2].audio_whole, v[2].met), (Some(false), false));
        assert_eq!((v[3].reference_audio_ms, v[3].audio_whole), (None, None));
        assert!(v[4].met, "espeak-ng's jitter is no skipped frame");
        let s = levels[1].summary.overlap.as_ref().expect("summed up");
        assert_eq!(s.set.label, "backchannel");
        assert_eq!((s.set.calls, s.set.resumed, s.set.cancelled), (5, 5, 0));
        assert_eq!((s.set.whole, s.set.no_reference, s.set.met), (4, 1, 2));
        assert_eq!(s.set.resume_gap_ms.max, Some(700));
        assert_eq!(s.set.heard.get("Okay."), Some(&5));
        assert_eq!(s.clips.len(), 1);
        assert_eq!(s.clips[0].label, "okay");
        let table = format_overlaps(&levels);
        let rows: Vec<&str> = table.lines().collect();
        assert!(rows[1].starts_with("backchannel "), "{table}");
        assert!(rows[1].contains("420/700/700"), "{table}");
        assert!(rows[2].starts_with("  okay "), "{table}");
        assert!(rows[3].starts_with("targets: "), "{table}");
    }

    #[test]
    fn clips_are_named_as_meant_and_spoken_as_heard() {
        assert_eq!(OverlapClip::MmHmm.words(), "mm-hmm");
        assert_eq!(OverlapClip::MmHmm.spoken(), "mm");
        assert_eq!(OverlapClip::Wait.spoken(), "Wait, let me add something.");
        let kinds: Vec<OverlapKind> = OverlapClip::ALL.iter().map(|c| c.kind()).collect();
        assert_eq!(
            kinds
                .iter()
                .filter(|&&k| k == OverlapKind::Backchannel)
                .count(),
            4
        );
        use clap::ValueEnum;
        assert_eq!(
            OverlapClip::from_str("mm-hmm", false),
            Ok(OverlapClip::MmHmm)
        );
    }
}
