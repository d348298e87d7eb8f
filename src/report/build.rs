//! Builds a [`Report`] from the lines of a call's `events.jsonl`.
//!
//! Every line carries `at` (wall clock), `inputMs` and `outputMs` (how far each audio
//! stream had got). The candidate's speech is known by input-stream position, the
//! interviewer's by when its audio was sent; both are put on one clock, ms from the call's
//! start, through the stamp of the line that told of them.

use std::collections::BTreeMap;

use serde_json::Value;

use super::fillers;
use super::rules::*;
use super::{Answer, AnswerPause, CallFigures, Feedback, Observation, Report, Span, Speaker};

/// One line of the log with its stamp.
#[derive(Debug, Clone)]
pub struct LogLine {
    /// Wall clock, Unix ms.
    pub at: u64,
    /// Input taken in so far, ms.
    pub input_ms: u64,
    /// Output sent so far, ms.
    pub output_ms: u64,
    /// The event itself.
    pub event: Value,
}

impl LogLine {
    fn kind(&self) -> &str {
        self.event["type"].as_str().unwrap_or_default()
    }

    fn u64(&self, field: &str) -> Option<u64> {
        self.event[field].as_u64()
    }

    fn turn(&self) -> Option<u32> {
        self.u64("turnId").and_then(|t| u32::try_from(t).ok())
    }
}

/// The stamped lines of `events.jsonl`; lines that are not stamped JSON objects (a log
/// cut short by a crash) are skipped.
pub fn parse_log(text: &str) -> Vec<LogLine> {
    text.lines()
        .filter_map(|l| serde_json::from_str::<Value>(l).ok())
        .filter_map(|event| {
            Some(LogLine {
                at: event["at"].as_u64()?,
                input_ms: event["inputMs"].as_u64()?,
                output_ms: event["outputMs"].as_u64()?,
                event,
            })
        })
        .collect()
}

/// Puts stream positions and wall-clock times on the call's clock.
struct Clock {
    start_at: u64,
}

impl Clock {
    fn at(&self, line: &LogLine) -> u64 {
        line.at.saturating_sub(self.start_at)
    }

    /// `stream_ms` of input, placed by the line that reported it: the input had reached
    /// `line.input_ms` at `line.at`.
    fn input(&self, stream_ms: u64, line: &LogLine) -> u64 {
        (self.at(line) as i64 - line.input_ms as i64 + stream_ms as i64).max(0) as u64
    }
}

/// A stretch of the candidate's speech.
#[derive(Debug, Clone, Copy)]
struct Speech {
    /// Input-stream ms.
    start: u64,
    end: u64,
    /// Call-clock ms.
    call_start: u64,
}

/// What one response did.
#[derive(Debug, Default, Clone)]
struct Reply {
    heard: String,
    /// Call-clock ms of its first audio, and the output position there.
    audio_from: Option<(u64, u64)>,
    /// Call-clock ms of `response.done` and the output position there.
    done: Option<(u64, u64)>,
    paused_ms: u64,
    /// Input-stream ms of the speech that paused it, when that speech cancelled it.
    cut_by: Option<u64>,
    /// Call-clock ms of the pause that ended it.
    paused_at: Option<u64>,
    cancelled: bool,
}

impl Reply {
    /// The interviewer's audio of this reply as heard, on the call clock.
    fn span(&self) -> Option<(u64, u64)> {
        let (from, out_from) = self.audio_from?;
        let (done_at, out_done) = self.done?;
        let sent = out_done.saturating_sub(out_from);
        let mut end = from + sent + self.paused_ms;
        if self.cancelled {
            end = end.min(self.paused_at.unwrap_or(done_at));
        }
        Some((from, end.max(from)))
    }
}

/// Builds the report of the call logged in `lines`.
pub fn build(lines: &[LogLine]) -> Report {
    let started = lines.iter().find(|l| l.kind() == "session.started");
    let clock = Clock {
        start_at: started.or(lines.first()).map_or(0, |l| l.at),
    };
    let meta = lines.iter().find(|l| l.kind() == "call.meta");
    let text = |line: Option<&LogLine>, field: &str| {
        line.and_then(|l| l.event[field].as_str())
            .map(str::to_owned)
    };
    let speech = candidate_speech(lines, &clock);
    let replies = replies(lines, &clock);
    let answers = answers(lines, &clock, &speech, &replies);
    let ended = lines.iter().find(|l| l.kind() == "session.ended");
    let duration_ms = ended
        .and_then(|l| l.u64("durationMs"))
        .or_else(|| lines.last().map(|l| clock.at(l)))
        .unwrap_or(0);
    let mut timeline: Vec<Span> = speech
        .iter()
        .map(|s| Span {
            who: Speaker::Candidate,
            start_ms: s.call_start,
            end_ms: s.call_start + (s.end - s.start),
        })
        .chain(replies.values().filter_map(Reply::span).map(|(a, b)| Span {
            who: Speaker::Interviewer,
            start_ms: a,
            end_ms: b,
        }))
        .filter(|s| s.end_ms > s.start_ms)
        .collect();
    timeline.sort_by_key(|s| s.start_ms);
    let call = figures(&answers, &timeline);
    let observations = observe(&answers, &call);
    Report {
        session_id: text(started.or(meta), "sessionId").unwrap_or_default(),
        user: text(meta, "user"),
        persona: text(meta, "persona"),
        voice: text(started, "voice"),
        started_at: clock.start_at,
        duration_ms,
        ended: ended.is_some(),
        answers,
        call,
        observations,
        timeline,
        feedback: expected_feedback(meta),
    }
}

/// What feedback the call's log says to expect: the model's, while it is written, when
/// its interviewer was a model (`call.meta` `feedback`).
fn expected_feedback(meta: Option<&LogLine>) -> Feedback {
    if meta.and_then(|l| l.event["feedback"].as_str()) == Some("model") {
        return Feedback {
            status: super::feedback::PENDING.into(),
            note: "the observations; the interviewer model's feedback on each answer is \
                   being written"
                .into(),
            answers: Vec::new(),
        };
    }
    Feedback {
        status: "rules_only".into(),
        note: "observations from the call's timing and words only: the scripted interviewer \
               gives no feedback of its own (a model does, with --llm openai)"
            .into(),
        answers: Vec::new(),
    }
}

/// The VAD's speech segments, split at the pauses inside them, in order.
fn candidate_speech(lines: &[LogLine], clock: &Clock) -> Vec<Speech> {
    let pauses: Vec<(u64, u64)> = lines
        .iter()
        .filter(|l| l.kind() == "vad.pause")
        .filter_map(|l| Some((l.u64("fromMs")?, l.u64("toMs")?)))
        .collect();
    let mut out = Vec::new();
    for line in lines.iter().filter(|l| l.kind() == "vad.speech") {
        let (Some(start), Some(end)) = (line.u64("startMs"), line.u64("endMs")) else {
            continue;
        };
        let mut from = start;
        for &(p_from, p_to) in pauses.iter().filter(|(a, b)| *a > start && *b < end) {
            out.push((from, p_from, line));
            from = p_to;
        }
        out.push((from, end, line));
    }
    out.into_iter()
        .filter(|(a, b, _)| b > a)
        .map(|(start, end, line)| Speech {
            start,
            end,
            call_start: clock.input(start, line),
        })
        .collect()
}

fn replies(lines: &[LogLine], clock: &Clock) -> BTreeMap<u32, Reply> {
    let mut replies: BTreeMap<u32, Reply> = BTreeMap::new();
    for line in lines {
        let Some(turn) = line.turn() else { continue };
        match line.kind() {
            "response.audio" => {
                let r = replies.entry(turn).or_default();
                r.audio_from.get_or_insert((clock.at(line), line.output_ms));
            }
            "response.paused" => {
                let r = replies.entry(turn).or_default();
                r.cut_by = line.u64("audioMs");
                r.paused_at = Some(clock.at(line));
            }
            "response.resumed" => {
                let r = replies.entry(turn).or_default();
                r.paused_ms += line.u64("pausedMs").unwrap_or(0);
                r.cut_by = None;
                r.paused_at = None;
            }
            "response.done" => {
                let r = replies.entry(turn).or_default();
                r.done = Some((clock.at(line), line.output_ms));
                r.cancelled = line.event["status"] == "cancelled";
                let heard = line.event["heardText"]
                    .as_str()
                    .or(line.event["text"].as_str());
                r.heard = heard.unwrap_or_default().to_string();
                if !r.cancelled {
                    r.cut_by = None;
                }
            }
            _ => {}
        }
    }
    replies
}

fn answers(
    lines: &[LogLine],
    clock: &Clock,
    speech: &[Speech],
    replies: &BTreeMap<u32, Reply>,
) -> Vec<Answer> {
    lines
        .iter()
        .filter(|l| l.kind() == "transcript" && l.event["isFinal"] == true)
        .filter_map(|line| answer(line, clock, speech, replies))
        .collect()
}

fn answer(
    line: &LogLine,
    clock: &Clock,
    speech: &[Speech],
    replies: &BTreeMap<u32, Reply>,
) -> Option<Answer> {
    let turn_id = line.turn()?;
    let transcript = line.event["text"].as_str()?.trim().to_string();
    let (a, b) = (line.u64("startMs")?, line.u64("endMs")?);
    let (from, to) = (a.min(b), a.max(b));
    // The transcript's audio starts with a pre-roll before the speech; its speech is the
    // VAD's segments within it.
    let parts: Vec<&Speech> = speech
        .iter()
        .filter(|s| s.end > from && s.start < to + 50)
        .collect();
    let (input_start, input_end) = match (parts.first(), parts.last()) {
        (Some(a), Some(b)) => (a.start.max(from), b.end.min(to).max(a.start.max(from))),
        _ => (from, to),
    };
    let start_ms = parts.first().map_or_else(
        || clock.input(from, line),
        |s| s.call_start + input_start - s.start,
    );
    let length_ms = input_end.saturating_sub(input_start);
    let speech_ms = if parts.is_empty() {
        length_ms
    } else {
        parts
            .iter()
            .map(|s| {
                s.end
                    .min(input_end)
                    .saturating_sub(s.start.max(input_start))
            })
            .sum()
    };
    let pauses: Vec<AnswerPause> = parts
        .windows(2)
        .map(|w| AnswerPause {
            at_ms: w[0].end.saturating_sub(input_start),
            length_ms: w[1].start.saturating_sub(w[0].end),
        })
        .filter(|p| p.length_ms >= LISTED_PAUSE_MS)
        .collect();
    let words = fillers::word_count(&transcript);
    let found = fillers::find(&transcript);
    let minutes = speech_ms as f64 / 60_000.0;
    let question = replies.range(..turn_id).next_back();
    let start_delay_ms = question
        .and_then(|(_, r)| r.span())
        .map(|(_, end)| start_ms as i64 - end as i64);
    let interrupted_interviewer =
        question.is_some_and(|(_, r)| r.cancelled) && start_delay_ms.is_some_and(|d| d < 0);
    let cut_off = replies
        .get(&turn_id)
        .and_then(|r| r.cancelled.then_some(r.cut_by?))
        .is_some_and(|onset| onset.saturating_sub(input_end) <= CUT_OFF_MS);
    Some(Answer {
        turn_id,
        question: question.map(|(_, r)| r.heard.clone()).unwrap_or_default(),
        transcript,
        start_ms,
        end_ms: start_ms + length_ms,
        input_start_ms: input_start,
        input_end_ms: input_end,
        length_s: length_ms as f64 / 1000.0,
        words,
        speech_ms,
        words_per_minute: if minutes > 0.0 {
            words as f64 / minutes
        } else {
            0.0
        },
        fillers_per_minute: if minutes > 0.0 {
            found.len() as f64 / minutes
        } else {
            0.0
        },
        fillers: found,
        longest_pause_ms: pauses.iter().map(|p| p.length_ms).max().unwrap_or(0),
        pauses,
        start_delay_ms,
        interrupted_interviewer,
        cut_off,
    })
}

fn figures(answers: &[Answer], timeline: &[Span]) -> CallFigures {
    let talk = |who: Speaker| -> u64 {
        timeline
            .iter()
            .filter(|s| s.who == who)
            .map(|s| s.end_ms - s.start_ms)
            .sum()
    };
    let (candidate, interviewer) = (talk(Speaker::Candidate), talk(Speaker::Interviewer));
    let speech_minutes = answers.iter().map(|a| a.speech_ms).sum::<u64>() as f64 / 60_000.0;
    let words: usize = answers.iter().map(|a| a.words).sum();
    let fillers: usize = answers.iter().map(|a| a.fillers.len()).sum();
    let per_minute = |n: usize| {
        if speech_minutes > 0.0 {
            n as f64 / speech_minutes
        } else {
            0.0
        }
    };
    CallFigures {
        answers: answers.len(),
        candidate_talk_ms: candidate,
        interviewer_talk_ms: interviewer,
        talk_ratio: if candidate + interviewer > 0 {
            candidate as f64 / (candidate + interviewer) as f64
        } else {
            0.0
        },
        average_answer_s: if answers.is_empty() {
            0.0
        } else {
            answers.iter().map(|a| a.length_s).sum::<f64>() / answers.len() as f64
        },
        words_per_minute: per_minute(words),
        fillers,
        fillers_per_minute: per_minute(fillers),
        pauses: answers.iter().map(|a| a.pauses.len()).sum(),
        interruptions: answers.iter().filter(|a| a.interrupted_interviewer).count(),
        cut_offs: answers.iter().filter(|a| a.cut_off).count(),
    }
}

/// The observations, each with the figure behind it.
fn observe(answers: &[Answer], call: &CallFigures) -> Vec<Observation> {
    let mut out = Vec::new();
    let mut say = |rule: &str, text: String, answer: Option<usize>| {
        out.push(Observation {
            rule: rule.into(),
            text,
            answer,
        })
    };
    let short = answers
        .iter()
        .filter(|a| a.length_s < SHORT_ANSWER_S)
        .count();
    if short > 0 {
        say(
            "short answer",
            format!(
                "{short} of {} answers were under {SHORT_ANSWER_S:.0} s; behavioural answers usually need 60-90 s",
                answers.len()
            ),
            None,
        );
    }
    for (i, a) in answers.iter().enumerate() {
        let n = i + 1;
        if a.length_s > LONG_ANSWER_S {
            say(
                "long answer",
                format!("answer {n} ran {:.0} s; aim for 2-3 minutes", a.length_s),
                Some(i),
            );
        }
        // Rates over a few seconds of speech say little.
        if a.speech_ms >= 5000 && a.words_per_minute > FAST_WPM {
            say(
                "fast speech",
                format!("you spoke at {:.0} wpm in answer {n}", a.words_per_minute),
                Some(i),
            );
        } else if a.speech_ms >= 5000 && a.words_per_minute < SLOW_WPM {
            say(
                "slow speech",
                format!("you spoke at {:.0} wpm in answer {n}", a.words_per_minute),
                Some(i),
            );
        }
        if a.fillers_per_minute > FILLERS_PER_MINUTE && a.fillers.len() >= 2 {
            say(
                "fillers",
                format!(
                    "{:.1} fillers a minute in answer {n} ({} in all)",
                    a.fillers_per_minute,
                    a.fillers.len()
                ),
                Some(i),
            );
        }
        if a.longest_pause_ms >= LONG_PAUSE_MS {
            say(
                "long pause",
                format!(
                    "a {:.1} s pause in answer {n}",
                    a.longest_pause_ms as f64 / 1000.0
                ),
                Some(i),
            );
        }
        if a.start_delay_ms.is_some_and(|d| d > SLOW_START_MS) {
            let d = a.start_delay_ms.unwrap_or(0) as f64 / 1000.0;
            say(
                "slow start",
                format!("you took {d:.1} s to start answer {n}"),
                Some(i),
            );
        }
        if a.cut_off {
            say(
                "cut off",
                format!(
                    "the interviewer cut you off after answer {n}: you went on as it began to reply (a more patient setting waits longer)"
                ),
                Some(i),
            );
        }
    }
    if call.interruptions > 0 {
        say(
            "interruptions",
            format!(
                "you spoke over the interviewer {} times",
                call.interruptions
            ),
            None,
        );
    }
    if call.answers > 0 && call.talk_ratio < LOW_TALK_RATIO {
        say(
            "low talk share",
            format!(
                "you did {:.0}% of the talking; in an interview the candidate does most of it",
                call.talk_ratio * 100.0
            ),
            None,
        );
    }
    out
}

#[cfg(test)]
mod tests;
