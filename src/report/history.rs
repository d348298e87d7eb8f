//! A user's call history (`GET /v1/calls`): their ended calls, newest first, each with
//! the report's headline figures, and how those figures moved over the last calls.

use std::path::Path;

use serde::{Deserialize, Serialize};

use super::Report;

/// The most calls listed.
pub const LISTED_CALLS: usize = 20;

/// How many of the newest calls a trend spans.
pub const TREND_CALLS: usize = 5;

/// The body of `GET /v1/calls`.
#[derive(
    Debug, Clone, Default, Serialize, Deserialize, PartialEq, schemars::JsonSchema, ts_rs::TS,
)]
#[serde(rename_all = "camelCase")]
pub struct History {
    /// The user's ended calls, newest first (at most [`LISTED_CALLS`]).
    pub calls: Vec<PastCall>,
    /// How the headline figures moved from the oldest to the newest of the last
    /// [`TREND_CALLS`] calls with answers; empty with fewer than two such calls.
    pub trends: Vec<Trend>,
}

/// One ended call, as the history lists it.
#[derive(Debug, Clone, Serialize, Deserialize, PartialEq, schemars::JsonSchema, ts_rs::TS)]
#[serde(rename_all = "camelCase")]
pub struct PastCall {
    /// The call (its report is `/v1/calls/<sessionId>/report.html`).
    pub session_id: String,
    /// When it started (Unix ms).
    pub started_at: u64,
    /// The interviewer persona.
    pub persona: Option<String>,
    /// How long it lasted.
    pub duration_ms: u64,
    /// How many answers the candidate gave.
    pub answers: usize,
    /// Headline figure: words per minute over all answers.
    pub words_per_minute: f64,
    /// Headline figure: fillers a minute over all answers.
    pub fillers_per_minute: f64,
}

/// A headline figure over the last calls.
#[derive(Debug, Clone, Serialize, Deserialize, PartialEq, schemars::JsonSchema, ts_rs::TS)]
#[serde(rename_all = "camelCase")]
pub struct Trend {
    /// What moved, as a person says it ("fillers per minute").
    pub figure: String,
    /// Its value in the oldest of those calls.
    pub from: f64,
    /// Its value in the newest.
    pub to: f64,
    /// How many calls it spans.
    pub calls: usize,
    /// One line: "fillers per minute 7.5 -> 4.1 over your last 5 calls".
    pub summary: String,
}

impl PastCall {
    fn of(report: &Report) -> Self {
        Self {
            session_id: report.session_id.clone(),
            started_at: report.started_at,
            persona: report.persona.clone(),
            duration_ms: report.duration_ms,
            answers: report.call.answers,
            words_per_minute: report.call.words_per_minute,
            fillers_per_minute: report.call.fillers_per_minute,
        }
    }
}

/// The history of `user` from the reports under `calls_dir` (blocking file I/O: every
/// call folder's `report.json` is read; folders without one, or not ended, are left out).
pub fn history(calls_dir: &Path, user: &str) -> History {
    let mut calls: Vec<PastCall> = std::fs::read_dir(calls_dir)
        .into_iter()
        .flatten()
        .flatten()
        .filter_map(|entry| {
            let json = std::fs::read(entry.path().join("report.json")).ok()?;
            let report: Report = serde_json::from_slice(&json).ok()?;
            (report.ended && report.user.as_deref() == Some(user)).then(|| PastCall::of(&report))
        })
        .collect();
    calls.sort_by(|a, b| b.started_at.cmp(&a.started_at));
    calls.truncate(LISTED_CALLS);
    let trends = trends(&calls);
    History { calls, trends }
}

/// How the headline figures moved over the newest [`TREND_CALLS`] calls with answers
/// (`calls` newest first).
pub fn trends(calls: &[PastCall]) -> Vec<Trend> {
    let answered: Vec<&PastCall> = calls
        .iter()
        .filter(|c| c.answers > 0)
        .take(TREND_CALLS)
        .collect();
    let (Some(newest), Some(oldest)) = (answered.first(), answered.last()) else {
        return Vec::new();
    };
    if answered.len() < 2 {
        return Vec::new();
    }
    let n = answered.len();
    let figures: [(&str, fn(&PastCall) -> f64); 2] = [
        ("fillers per minute", |c| c.fillers_per_minute),
        ("words per minute", |c| c.words_per_minute),
    ];
    figures
        .into_iter()
        .map(|(figure, value)| {
            let (from, to) = (value(oldest), value(newest));
            Trend {
                figure: figure.to_owned(),
                from,
                to,
                calls: n,
                summary: format!("{figure} {from:.1} -> {to:.1} over your last {n} calls"),
            }
        })
        .collect()
}

#[cfg(test)]
mod tests {
    use super::*;

    fn call(started_at: u64, answers: usize, fillers_per_minute: f64) -> PastCall {
        PastCall {
            session_id: format!("c{started_at}"),
            started_at,
            persona: None,
            duration_ms: 60_000,
            answers,
            words_per_minute: 150.0 + started_at as f64,
            fillers_per_minute,
        }
    }

    #[test]
    fn trends_run_from_the_oldest_to_the_newest_of_the_last_calls_with_answers() {
        // Newest first; the call with no answers does not count.
        let calls: Vec<_> = (0..8u64)
            .rev()
            .map(|t| call(t, usize::from(t != 6), 10.0 - t as f64))
            .collect();
        let trends = trends(&calls);
        let fillers = &trends[0];
        // The newest five with answers: 7, 5, 4, 3, 2.
        assert_eq!((fillers.from, fillers.to, fillers.calls), (8.0, 3.0, 5));
        assert_eq!(
            fillers.summary,
            "fillers per minute 8.0 -> 3.0 over your last 5 calls"
        );
        assert_eq!((trends[1].from, trends[1].to), (152.0, 157.0));
        assert!(
            super::trends(&calls[..1]).is_empty(),
            "one call is no trend"
        );
    }
}
