//! What the bench reports: each call scored (transcript against reference, cut-offs),
//! each level summarised (counts and p50/p90/p99/max per figure), the thresholds checked,
//! and the terminal tables; the JSON report's shape.

use std::collections::BTreeMap;

use serde::Serialize;

use super::overlap::{OverlapSummary, OverlapVerdict};
use super::stats::{Summary, mean};
use super::{corpus, score};
use crate::asr::score::{WordErrors, word_errors};
use crate::client::TurnTaking;
use crate::client::replay::report::ms_or_dash;
use crate::client::replay::{TurnReport, TurnStatus};
use crate::protocol::{ErrorCode, Latency};
use std::path::PathBuf;

/// One call of a level: its file, the transcript scored against the reference, its turns.
#[derive(Debug, Clone, Default, Serialize)]
#[serde(rename_all = "camelCase")]
pub struct CallRecord {
    /// Index of the call within its level, from 0.
    pub call: usize,
    /// The WAV file.
    pub file: PathBuf,
    /// What the manifest says is spoken (plus the interruption with `--barge-in`).
    pub reference: Option<String>,
    /// The final transcripts of the call's user turns, joined.
    pub transcript: String,
    /// Word error rate of `transcript` against `reference`.
    pub wer: Option<f64>,
    /// Word edits and reference words behind `wer`.
    #[serde(skip)]
    pub word_errors: Option<WordErrors>,
    /// The answer was split into more user turns than were spoken (a pause taken for the
    /// end of the turn), or a response started before its last word ([`score::is_cut_off`]).
    pub cut_off: bool,
    /// Where the answer's speech ends in the file, ms.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub speech_end_ms: Option<u64>,
    /// Reference words at the end missing from the transcript.
    pub missing_tail_words: usize,
    /// The transcript lost the answer's last words ([`score::is_truncated`]).
    pub truncated: bool,
    /// The server put the end of speech before the answer's last word
    /// ([`score::ended_early`]).
    pub early_end: bool,
    /// Some turn's reply audio came after the answer's last word (voice-to-voice measured).
    pub answered: bool,
    /// Every user turn, as replay reports it.
    pub turns: Vec<TurnReport>,
    /// `--backchannel`: what the clip spoken over the reply did to it.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub overlap: Option<OverlapVerdict>,
}

/// The summary of one concurrency level.
#[derive(Debug, Clone, Default, Serialize)]
#[serde(rename_all = "camelCase")]
pub struct LevelSummary {
    /// The interview case (and group) the level ran, `None` for a plain corpus.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub case: Option<String>,
    /// Calls in flight at once.
    pub concurrency: usize,
    /// Calls made.
    pub calls: usize,
    /// User turns reported.
    pub turns: usize,
    /// Turns whose response completed.
    pub completed: usize,
    /// Turns cancelled (a cut-off answer's first part, or the turn a barge-in interrupted).
    pub cancelled: usize,
    /// Turns that failed, timed out or broke.
    pub failed: usize,
    /// Calls whose answer was cut into several turns, or talked over before its end.
    pub cut_offs: usize,
    /// Calls whose transcript lost the answer's last words.
    pub truncations: usize,
    /// Calls whose end of speech the server put before the last word.
    pub early_ends: usize,
    /// Calls whose answer got no reply audio after its last word (lost, failed, or only
    /// answered in pieces before it).
    pub unanswered: usize,
    /// How many announced turn ends each rule made (`endOfTurn.rule`; `unreported` when
    /// the server sent none).
    pub end_rules: BTreeMap<String, usize>,
    /// Client-measured end of speech to first AI audio.
    pub voice_to_voice_ms: Summary,
    /// Server: end of speech to end-of-turn decision.
    pub endpoint_ms: Summary,
    /// Server: final transcription.
    pub asr_ms: Summary,
    /// Server: LLM first token.
    pub llm_first_token_ms: Summary,
    /// Server: first sentence synthesised.
    pub tts_first_audio_ms: Summary,
    /// Server: end-of-turn decision to first audio frame sent.
    pub first_audio_ms: Summary,
    /// Server: whole turn.
    pub total_ms: Summary,
    /// Barge-in: interruption onset to the AI's last frame.
    pub barge_in_ms: Summary,
    /// Longest playback stall per turn.
    pub output_stall_ms: Summary,
    /// Mean of the calls' word error rates.
    pub mean_wer: Option<f64>,
    /// All word edits over all reference words.
    pub corpus_wer: Option<f64>,
    /// `AUDIO_GAP` errors: input the server never got.
    pub input_gaps: usize,
    /// Holes in the output audio's numbering.
    pub output_seq_gaps: usize,
    /// Server `error` events other than audio gaps, plus client-side problems.
    pub errors: usize,
    /// Wall-clock time of the level.
    pub wall_s: f64,
    /// `--backchannel`: the verdicts of the clips spoken over the replies, summed up.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub overlap: Option<OverlapSummary>,
}

/// One level's result.
#[derive(Debug, Clone, Serialize)]
#[serde(rename_all = "camelCase")]
pub struct Level {
    /// The figures.
    pub summary: LevelSummary,
    /// Every call.
    pub calls: Vec<CallRecord>,
}

/// The JSON report.
#[derive(Debug, Clone, Serialize)]
#[serde(rename_all = "camelCase")]
pub struct Report {
    /// Report format version.
    pub version: u32,
    /// The endpoint benchmarked.
    pub url: String,
    /// The wire protocol the calls spoke.
    pub protocol: crate::client::replay::Protocol,
    /// Whether the gateway ran in the bench's own process.
    pub spawned: bool,
    /// CPUs the client machine reports.
    pub cpus: usize,
    /// Streamed at real-time pace (false with `--fast`).
    pub real_time: bool,
    /// `--barge-in` was on.
    pub barge_in: bool,
    /// `--backchannel` was on: the levels are the reference, backchannel and interruption
    /// sets.
    pub backchannel: bool,
    /// Files in the corpus (in every case run, with `--case`).
    pub files: usize,
    /// The `turnDetection` settings sent beyond the defaults; empty: the server's own.
    pub turn_detection: TurnTaking,
    /// `--burst`: each level's calls finished speaking at the same instant.
    pub burst: bool,
    /// One entry per concurrency level, in the order run.
    pub levels: Vec<Level>,
    /// Thresholds broken, in words; empty when all held.
    pub violations: Vec<String>,
}

/// Scores a call: its joined transcript against the reference (plus `interruption`, the
/// text of an interruption spoken over the reply, which is a turn of its own), whether the
/// answer was cut off, truncated or ended early (`speech_end_ms`: where its speech ends in
/// the file), and whether it was answered.
pub fn call_record(
    call: usize,
    item: &corpus::Item,
    turns: Vec<TurnReport>,
    interruption: Option<&str>,
    speech_end_ms: Option<u64>,
) -> CallRecord {
    let transcript = turns
        .iter()
        .map(|t| t.final_transcript.trim())
        .filter(|t| !t.is_empty())
        .collect::<Vec<_>>()
        .join(" ");
    let reference = item.reference.as_ref().map(|r| match interruption {
        Some(i) => format!("{r} {i}"),
        None => r.clone(),
    });
    let errors = reference.as_ref().map(|r| word_errors(r, &transcript));
    let missing = reference
        .as_ref()
        .map_or(0, |r| score::missing_tail_words(r, &transcript));
    let spoken = 1 + usize::from(interruption.is_some());
    CallRecord {
        call,
        file: item.path.clone(),
        reference,
        transcript,
        wer: errors.map(|e| e.rate()),
        word_errors: errors,
        cut_off: score::is_cut_off(&turns, spoken),
        speech_end_ms,
        missing_tail_words: missing,
        truncated: errors.is_some_and(|e| score::is_truncated(e.reference_words, missing)),
        early_end: speech_end_ms.is_some_and(|end| score::ended_early(&turns, end)),
        answered: turns.iter().any(|t| t.voice_to_voice_ms.is_some()),
        turns,
        overlap: None,
    }
}

/// The figures of a level from its calls.
pub fn summarise(calls: &[CallRecord]) -> LevelSummary {
    let turns: Vec<&TurnReport> = calls.iter().flat_map(|c| &c.turns).collect();
    let field =
        |f: fn(&Latency) -> Option<u64>| Summary::of(turns.iter().filter_map(|t| f(&t.latency)));
    let count = |s: TurnStatus| turns.iter().filter(|t| t.status == s).count();
    let wers: Vec<f64> = calls.iter().filter_map(|c| c.wer).collect();
    let corpus: Option<WordErrors> = calls
        .iter()
        .filter_map(|c| c.word_errors)
        .reduce(|a, b| a + b);
    let server_errors = turns.iter().flat_map(|t| &t.errors);
    let input_gaps = server_errors
        .clone()
        .filter(|e| e.code == ErrorCode::AudioGap)
        .count();
    let mut end_rules = BTreeMap::new();
    for rule in turns.iter().filter_map(|t| score::end_rule(t)) {
        *end_rules.entry(rule).or_insert(0) += 1;
    }
    let count_calls = |f: fn(&CallRecord) -> bool| calls.iter().filter(|c| f(c)).count();
    LevelSummary {
        case: None,
        concurrency: 0,
        calls: calls.len(),
        turns: turns.len(),
        completed: count(TurnStatus::Completed),
        cancelled: count(TurnStatus::Cancelled),
        failed: turns.len() - count(TurnStatus::Completed) - count(TurnStatus::Cancelled),
        cut_offs: count_calls(|c| c.cut_off),
        truncations: count_calls(|c| c.truncated),
        early_ends: count_calls(|c| c.early_end),
        unanswered: count_calls(|c| !c.answered),
        end_rules,
        voice_to_voice_ms: Summary::of(turns.iter().filter_map(|t| t.voice_to_voice_ms)),
        endpoint_ms: field(|l| l.endpoint_ms),
        asr_ms: field(|l| l.asr_ms),
        llm_first_token_ms: field(|l| l.llm_first_token_ms),
        tts_first_audio_ms: field(|l| l.tts_first_audio_ms),
        first_audio_ms: field(|l| l.first_audio_ms),
        total_ms: field(|l| l.total_ms),
        barge_in_ms: Summary::of(turns.iter().filter_map(|t| t.barge_in_ms)),
        output_stall_ms: Summary::of(
            turns
                .iter()
                .filter(|t| t.audio_ms_received > 0)
                .map(|t| t.output_stall_ms),
        ),
        mean_wer: mean(&wers),
        corpus_wer: corpus.map(|c| c.rate()),
        input_gaps,
        output_seq_gaps: turns.iter().map(|t| t.output_seq_gaps as usize).sum(),
        errors: server_errors.count() - input_gaps
            + turns.iter().map(|t| t.client_errors.len()).sum::<usize>(),
        wall_s: 0.0,
        overlap: None,
    }
}

/// The thresholds each level broke, in words.
pub fn check_thresholds(
    levels: &[LevelSummary],
    max_p90_ms: Option<u64>,
    max_wer: Option<f64>,
) -> Vec<String> {
    let mut out = Vec::new();
    for l in levels {
        let c = level_name(l);
        if let Some(max) = max_p90_ms {
            match l.voice_to_voice_ms.p90 {
                Some(p90) if p90 > max => {
                    out.push(format!("{c}: voice-to-voice p90 {p90} ms > {max} ms"))
                }
                None => out.push(format!("{c}: no voice-to-voice measured (limit {max} ms)")),
                Some(_) => {}
            }
        }
        if let Some(max) = max_wer {
            match l.mean_wer {
                Some(w) if w > max => out.push(format!(
                    "{c}: mean WER {:.1}% > {:.1}%",
                    w * 100.0,
                    max * 100.0
                )),
                None => out.push(format!(
                    "{c}: no WER measured (no references; limit {:.1}%)",
                    max * 100.0
                )),
                Some(_) => {}
            }
        }
    }
    out
}

/// `concurrency C`, after the case's name when it has one.
fn level_name(s: &LevelSummary) -> String {
    match &s.case {
        Some(case) => format!("{case}, concurrency {}", s.concurrency),
        None => format!("concurrency {}", s.concurrency),
    }
}

fn pct(v: Option<f64>) -> String {
    v.map_or_else(|| "-".to_owned(), |v| format!("{:.1}%", v * 100.0))
}

/// The terminal summary of one level: a header line, then p50/p90/p99/max per figure.
pub fn format_level(s: &LevelSummary) -> String {
    let mut out = format!(
        "{}: {} calls, {} turns ({} completed, {} cancelled, {} failed), {} cut off, \
         {} truncated, {} ended early, {} unanswered, \
         mean WER {} (corpus {}), {} input gaps, {} output seq gaps, {} errors, {:.1} s\n",
        level_name(s),
        s.calls,
        s.turns,
        s.completed,
        s.cancelled,
        s.failed,
        s.cut_offs,
        s.truncations,
        s.early_ends,
        s.unanswered,
        pct(s.mean_wer),
        pct(s.corpus_wer),
        s.input_gaps,
        s.output_seq_gaps,
        s.errors,
        s.wall_s
    );
    out.push_str(&format!(
        "  {:<26}{:>6}{:>8}{:>8}{:>8}{:>8}\n",
        "ms", "n", "p50", "p90", "p99", "max"
    ));
    for (name, f) in figures(s) {
        if f.count == 0 {
            continue;
        }
        out.push_str(&format!(
            "  {:<26}{:>6}{:>8}{:>8}{:>8}{:>8}\n",
            name,
            f.count,
            ms_or_dash(f.p50),
            ms_or_dash(f.p90),
            ms_or_dash(f.p99),
            ms_or_dash(f.max)
        ));
    }
    out.pop();
    out
}

/// The figures in display order, with their names.
pub fn figures(s: &LevelSummary) -> [(&'static str, Summary); 9] {
    [
        ("voice-to-voice (client)", s.voice_to_voice_ms),
        ("endpointMs", s.endpoint_ms),
        ("asrMs", s.asr_ms),
        ("llmFirstTokenMs", s.llm_first_token_ms),
        ("ttsFirstAudioMs", s.tts_first_audio_ms),
        ("firstAudioMs", s.first_audio_ms),
        ("totalMs", s.total_ms),
        ("barge-in", s.barge_in_ms),
        ("output stall", s.output_stall_ms),
    ]
}

/// The sweep in one table: a row per concurrency level.
pub fn format_sweep(levels: &[Level]) -> String {
    let mut out = String::from(
        "concurrency | v2v p50 | v2v p90 | v2v p99 | firstAudio p90 | asr p90 | stall max | failed | gaps\n",
    );
    for l in levels {
        let s = &l.summary;
        out.push_str(&format!(
            "{:>11} | {:>7} | {:>7} | {:>7} | {:>14} | {:>7} | {:>9} | {:>6} | {:>4}\n",
            s.concurrency,
            ms_or_dash(s.voice_to_voice_ms.p50),
            ms_or_dash(s.voice_to_voice_ms.p90),
            ms_or_dash(s.voice_to_voice_ms.p99),
            ms_or_dash(s.first_audio_ms.p90),
            ms_or_dash(s.asr_ms.p90),
            ms_or_dash(s.output_stall_ms.max),
            s.failed,
            s.input_gaps + s.output_seq_gaps
        ));
    }
    out.pop();
    out
}

/// `endOfTurn.rule` counts in one cell, e.g. `silence 14, complete 2`.
fn rules_cell(rules: &BTreeMap<String, usize>) -> String {
    if rules.is_empty() {
        return "-".to_owned();
    }
    let cells: Vec<String> = rules.iter().map(|(r, n)| format!("{r} {n}")).collect();
    cells.join(", ")
}

/// The interview cases in one table, a row per case (and group) and level, then the
/// turn-taking settings asked of the server.
pub fn format_cases(report: &Report) -> String {
    let mut out = format!(
        "{:<16} {:>5} {:>7} {:>9} {:>9} {:>10} {:>6} {:>7} {:>7}  end of turn (rule: turns)\n",
        "case",
        "calls",
        "cut off",
        "truncated",
        "early end",
        "unanswered",
        "WER",
        "v2v p50",
        "v2v p90"
    );
    for l in &report.levels {
        let s = &l.summary;
        let mut name = s.case.clone().unwrap_or_else(|| "corpus".to_owned());
        if report
            .levels
            .iter()
            .any(|o| o.summary.concurrency != s.concurrency)
            || report.burst
        {
            let how = if report.burst { "burst" } else { "c" };
            name = format!("{name} {how}{}", s.concurrency);
        }
        out.push_str(&format!(
            "{:<16} {:>5} {:>7} {:>9} {:>9} {:>10} {:>6} {:>7} {:>7}  {}\n",
            name,
            s.calls,
            s.cut_offs,
            s.truncations,
            s.early_ends,
            s.unanswered,
            pct(s.corpus_wer),
            ms_or_dash(s.voice_to_voice_ms.p50),
            ms_or_dash(s.voice_to_voice_ms.p90),
            rules_cell(&s.end_rules)
        ));
    }
    out.push_str(&format!(
        "turn detection: {}",
        turn_detection_words(&report.turn_detection)
    ));
    out
}

/// The turn-taking settings sent, in words (`mode smart, minSilenceMs 250`).
pub fn turn_detection_words(t: &TurnTaking) -> String {
    let mode = t
        .mode
        .and_then(|m| serde_json::to_value(m).ok())
        .and_then(|v| v.as_str().map(|m| format!("mode {m}")));
    let ms = |name: &str, v: Option<u32>| v.map(|v| format!("{name} {v}"));
    let cells: Vec<String> = [
        mode,
        ms("silenceMs", t.silence_ms),
        ms("minSilenceMs", t.min_silence_ms),
        ms("maxSilenceMs", t.max_silence_ms),
    ]
    .into_iter()
    .flatten()
    .collect();
    if cells.is_empty() {
        return "the server's defaults (no turnDetection fields sent)".to_owned();
    }
    cells.join(", ")
}

#[cfg(test)]
pub(crate) mod tests {
    use super::*;
    use crate::protocol::ErrorEvent;

    /// A turn report for tests (the plot's too).
    pub(crate) fn turn(
        id: u32,
        status: TurnStatus,
        v2v: Option<u64>,
        transcript: &str,
    ) -> TurnReport {
        TurnReport {
            final_transcript: transcript.into(),
            voice_to_voice_ms: v2v,
            latency: Latency {
                first_audio_ms: v2v.map(|v| v / 4),
                ..Latency::default()
            },
            audio_ms_received: 1000,
            ..TurnReport::blank(std::path::Path::new("a.wav"), "s", id, status)
        }
    }

    fn item(reference: Option<&str>) -> corpus::Item {
        corpus::Item {
            path: PathBuf::from("a.wav"),
            reference: reference.map(str::to_owned),
            fixture: None,
        }
    }

    #[test]
    fn call_record_scores_the_joined_transcript() {
        // An answer cut at a pause: two turns, the first cancelled by the second.
        let turns = vec![
            turn(1, TurnStatus::Cancelled, None, "I like"),
            turn(2, TurnStatus::Completed, Some(600), "Rust a lot."),
        ];
        let r = call_record(3, &item(Some("I like Rust a lot.")), turns, None, None);
        assert_eq!(r.transcript, "I like Rust a lot.");
        assert_eq!(r.wer, Some(0.0));
        assert!(r.cut_off);
        // With a barge-in, two turns are expected and the interruption is in the reference.
        let turns = vec![
            turn(1, TurnStatus::Cancelled, Some(500), "I like Rust."),
            turn(2, TurnStatus::Completed, Some(600), corpus::BARGE_IN_TEXT),
        ];
        let barge = Some(corpus::BARGE_IN_TEXT);
        let r = call_record(0, &item(Some("I like Rust")), turns, barge, None);
        assert!(!r.cut_off);
        assert_eq!(r.wer, Some(0.0));
        // No reference, no WER.
        let r = call_record(
            0,
            &item(None),
            vec![turn(1, TurnStatus::Completed, None, "x")],
            None,
            None,
        );
        assert_eq!(r.wer, None);
    }

    #[test]
    fn summary_counts_and_percentiles() {
        let mut gap = turn(1, TurnStatus::Completed, Some(700), "a b c d");
        gap.errors.push(ErrorEvent::audio_gap(3, 4));
        gap.output_seq_gaps = 1;
        let calls = vec![
            call_record(0, &item(Some("a b c d")), vec![gap], None, None),
            call_record(
                1,
                &item(Some("a b")),
                vec![turn(1, TurnStatus::Completed, Some(500), "a x")],
                None,
                None,
            ),
            call_record(
                2,
                &item(None),
                vec![turn(1, TurnStatus::Timeout, None, "")],
                None,
                None,
            ),
        ];
        let s = summarise(&calls);
        assert_eq!((s.calls, s.turns, s.completed, s.failed), (3, 3, 2, 1));
        assert_eq!(s.voice_to_voice_ms.count, 2);
        assert_eq!(s.voice_to_voice_ms.p50, Some(500));
        assert_eq!(s.voice_to_voice_ms.max, Some(700));
        assert_eq!(s.first_audio_ms.p90, Some(175));
        assert_eq!(s.mean_wer, Some(0.25));
        // 1 edit over 6 reference words.
        assert!((s.corpus_wer.unwrap() - 1.0 / 6.0).abs() < 1e-9);
        assert_eq!((s.input_gaps, s.output_seq_gaps, s.errors), (1, 1, 0));
        let table = format_level(&s);
        assert!(table.contains("voice-to-voice (client)"), "{table}");
        assert!(
            !table.contains("barge-in"),
            "empty figures are left out: {table}"
        );
    }

    #[test]
    fn thresholds() {
        let mut s = LevelSummary {
            concurrency: 4,
            voice_to_voice_ms: Summary::of([500, 900, 1200]),
            mean_wer: Some(0.1),
            ..LevelSummary::default()
        };
        assert!(check_thresholds(std::slice::from_ref(&s), None, None).is_empty());
        assert!(check_thresholds(std::slice::from_ref(&s), Some(1200), Some(0.1)).is_empty());
        let v = check_thresholds(std::slice::from_ref(&s), Some(1000), Some(0.05));
        assert_eq!(v.len(), 2, "{v:?}");
        assert!(v[0].contains("p90 1200 ms > 1000 ms"), "{v:?}");
        assert!(v[1].contains("mean WER 10.0% > 5.0%"), "{v:?}");
        // Nothing measured breaks a threshold rather than passing it silently.
        s.voice_to_voice_ms = Summary::default();
        s.mean_wer = None;
        assert_eq!(check_thresholds(&[s], Some(1000), Some(0.5)).len(), 2);
    }

    /// Three answers: cut at a pause, ended early and truncated, never answered.
    fn case_calls() -> Vec<CallRecord> {
        let stopped = |mut t: TurnReport, end_ms: u64, rule: Option<crate::protocol::EndRule>| {
            t.speech_end_ms = Some(end_ms);
            t.end_of_turn = rule.map(|rule| crate::protocol::EndOfTurn {
                rule,
                silence_ms: 500,
                score: None,
            });
            t
        };
        let whole = "At my last job I was responsible for the billing service.";
        vec![
            // Cut at the thinking pause: two turns, the first answered before the end.
            call_record(
                0,
                &item(Some(whole)),
                vec![
                    stopped(
                        turn(
                            1,
                            TurnStatus::Cancelled,
                            None,
                            "At my last job I was responsible for",
                        ),
                        2000,
                        Some(crate::protocol::EndRule::Silence),
                    ),
                    stopped(
                        turn(2, TurnStatus::Completed, Some(600), "the billing service."),
                        4500,
                        Some(crate::protocol::EndRule::Silence),
                    ),
                ],
                None,
                Some(4500),
            ),
            // One turn, ended before the last words, which were lost.
            call_record(
                1,
                &item(Some(whole)),
                vec![stopped(
                    turn(
                        1,
                        TurnStatus::Completed,
                        Some(700),
                        "At my last job I was responsible for the",
                    ),
                    3800,
                    Some(crate::protocol::EndRule::Complete),
                )],
                None,
                Some(4500),
            ),
            // Never answered (an old server: no endOfTurn).
            call_record(
                2,
                &item(Some("Yes.")),
                vec![stopped(
                    turn(1, TurnStatus::Timeout, None, "Yes."),
                    1300,
                    None,
                )],
                None,
                Some(1300),
            ),
        ]
    }

    #[test]
    fn case_counts() {
        let calls = case_calls();
        assert!(calls[0].cut_off && !calls[0].truncated && !calls[0].early_end);
        assert!(!calls[1].cut_off && calls[1].truncated && calls[1].early_end);
        assert_eq!(calls[1].missing_tail_words, 2);
        assert!(!calls[2].answered);
        let s = summarise(&calls);
        assert_eq!(
            (s.cut_offs, s.truncations, s.early_ends, s.unanswered),
            (1, 1, 1, 1)
        );
        let rules: Vec<(&str, usize)> = s.end_rules.iter().map(|(r, n)| (r.as_str(), *n)).collect();
        assert_eq!(rules, [("complete", 1), ("silence", 2), ("unreported", 1)]);
    }

    #[test]
    fn case_table() {
        let calls = case_calls();
        let mut s = summarise(&calls);
        s.case = Some("pauses".into());
        s.concurrency = 1;
        assert!(
            format_level(&s).starts_with("pauses, concurrency 1: 3 calls"),
            "{}",
            format_level(&s)
        );
        let report = Report {
            version: 1,
            protocol: Default::default(),
            url: "ws://x".into(),
            spawned: true,
            cpus: 2,
            real_time: true,
            barge_in: false,
            backchannel: false,
            files: 3,
            turn_detection: TurnTaking::default(),
            burst: false,
            levels: vec![Level { summary: s, calls }],
            violations: Vec::new(),
        };
        let table = format_cases(&report);
        let row = table.lines().nth(1).unwrap_or_default();
        assert!(row.starts_with("pauses"), "{table}");
        assert!(
            row.ends_with("complete 1, silence 2, unreported 1"),
            "{table}"
        );
        assert!(
            table.ends_with("the server's defaults (no turnDetection fields sent)"),
            "{table}"
        );
        let smart = TurnTaking {
            mode: Some(crate::client::TurnModeName::Smart),
            min_silence_ms: Some(250),
            ..TurnTaking::default()
        };
        assert_eq!(turn_detection_words(&smart), "mode smart, minSilenceMs 250");
    }
}
