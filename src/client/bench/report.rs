//! What the bench reports: each call scored (transcript against reference, cut-offs),
//! each level summarised (counts and p50/p90/p99/max per figure), the thresholds checked,
//! and the terminal tables; the JSON report's shape.

use serde::Serialize;

use super::corpus;
use super::stats::{Summary, mean};
use crate::asr::score::{WordErrors, word_errors};
use crate::client::replay::report::ms_or_dash;
use crate::client::replay::{TurnReport, TurnStatus};
use crate::protocol::{ErrorCode, Latency};
use std::path::PathBuf;

/// One call of a level: its file, the transcript scored against the reference, its turns.
#[derive(Debug, Clone, Serialize)]
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
    /// end of the turn).
    pub cut_off: bool,
    /// Every user turn, as replay reports it.
    pub turns: Vec<TurnReport>,
}

/// The summary of one concurrency level.
#[derive(Debug, Clone, Default, Serialize)]
#[serde(rename_all = "camelCase")]
pub struct LevelSummary {
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
    /// Calls whose answer was cut into several turns.
    pub cut_offs: usize,
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
    /// Whether the gateway ran in the bench's own process.
    pub spawned: bool,
    /// CPUs the client machine reports.
    pub cpus: usize,
    /// Streamed at real-time pace (false with `--fast`).
    pub real_time: bool,
    /// `--barge-in` was on.
    pub barge_in: bool,
    /// Files in the corpus.
    pub files: usize,
    /// One entry per concurrency level, in the order run.
    pub levels: Vec<Level>,
    /// Thresholds broken, in words; empty when all held.
    pub violations: Vec<String>,
}

/// Scores a call: its joined transcript against the reference (plus the interruption's
/// text when one was spoken), and whether the answer was split.
pub fn call_record(
    call: usize,
    item: &corpus::Item,
    turns: Vec<TurnReport>,
    barge_in: bool,
) -> CallRecord {
    let transcript = turns
        .iter()
        .map(|t| t.final_transcript.trim())
        .filter(|t| !t.is_empty())
        .collect::<Vec<_>>()
        .join(" ");
    let reference = item.reference.as_ref().map(|r| {
        if barge_in {
            format!("{r} {}", corpus::BARGE_IN_TEXT)
        } else {
            r.clone()
        }
    });
    let errors = reference.as_ref().map(|r| word_errors(r, &transcript));
    let spoken = if barge_in { 2 } else { 1 };
    CallRecord {
        call,
        file: item.path.clone(),
        reference,
        transcript,
        wer: errors.map(|e| e.rate()),
        word_errors: errors,
        cut_off: turns.iter().filter(|t| t.turn_id > 0).count() > spoken,
        turns,
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
    LevelSummary {
        concurrency: 0,
        calls: calls.len(),
        turns: turns.len(),
        completed: count(TurnStatus::Completed),
        cancelled: count(TurnStatus::Cancelled),
        failed: turns.len() - count(TurnStatus::Completed) - count(TurnStatus::Cancelled),
        cut_offs: calls.iter().filter(|c| c.cut_off).count(),
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
        let c = l.concurrency;
        if let Some(max) = max_p90_ms {
            match l.voice_to_voice_ms.p90 {
                Some(p90) if p90 > max => out.push(format!(
                    "concurrency {c}: voice-to-voice p90 {p90} ms > {max} ms"
                )),
                None => out.push(format!(
                    "concurrency {c}: no voice-to-voice measured (limit {max} ms)"
                )),
                Some(_) => {}
            }
        }
        if let Some(max) = max_wer {
            match l.mean_wer {
                Some(w) if w > max => out.push(format!(
                    "concurrency {c}: mean WER {:.1}% > {:.1}%",
                    w * 100.0,
                    max * 100.0
                )),
                None => out.push(format!(
                    "concurrency {c}: no WER measured (no references; limit {:.1}%)",
                    max * 100.0
                )),
                Some(_) => {}
            }
        }
    }
    out
}

fn pct(v: Option<f64>) -> String {
    v.map_or_else(|| "-".to_owned(), |v| format!("{:.1}%", v * 100.0))
}

/// The terminal summary of one level: a header line, then p50/p90/p99/max per figure.
pub fn format_level(s: &LevelSummary) -> String {
    let mut out = format!(
        "concurrency {}: {} calls, {} turns ({} completed, {} cancelled, {} failed), {} cut off, \
         mean WER {} (corpus {}), {} input gaps, {} output seq gaps, {} errors, {:.1} s\n",
        s.concurrency,
        s.calls,
        s.turns,
        s.completed,
        s.cancelled,
        s.failed,
        s.cut_offs,
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
        let r = call_record(3, &item(Some("I like Rust a lot.")), turns, false);
        assert_eq!(r.transcript, "I like Rust a lot.");
        assert_eq!(r.wer, Some(0.0));
        assert!(r.cut_off);
        // With a barge-in, two turns are expected and the interruption is in the reference.
        let turns = vec![
            turn(1, TurnStatus::Cancelled, Some(500), "I like Rust."),
            turn(2, TurnStatus::Completed, Some(600), corpus::BARGE_IN_TEXT),
        ];
        let r = call_record(0, &item(Some("I like Rust")), turns, true);
        assert!(!r.cut_off);
        assert_eq!(r.wer, Some(0.0));
        // No reference, no WER.
        let r = call_record(
            0,
            &item(None),
            vec![turn(1, TurnStatus::Completed, None, "x")],
            false,
        );
        assert_eq!(r.wer, None);
    }

    #[test]
    fn summary_counts_and_percentiles() {
        let mut gap = turn(1, TurnStatus::Completed, Some(700), "a b c d");
        gap.errors.push(ErrorEvent::audio_gap(3, 4));
        gap.output_seq_gaps = 1;
        let calls = vec![
            call_record(0, &item(Some("a b c d")), vec![gap], false),
            call_record(
                1,
                &item(Some("a b")),
                vec![turn(1, TurnStatus::Completed, Some(500), "a x")],
                false,
            ),
            call_record(
                2,
                &item(None),
                vec![turn(1, TurnStatus::Timeout, None, "")],
                false,
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
}
