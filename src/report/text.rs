//! The report as plain text for a terminal (`callgate report`, `callgate replay --report`).

use std::fmt::Write;

use super::Report;

/// A few lines: the call's figures, the observations, one line per answer.
pub fn render(r: &Report) -> String {
    let c = &r.call;
    let mut out = String::new();
    let _ = writeln!(
        out,
        "call {}: {:.0} s, {} answers (average {:.0} s), your share of talk {:.0}%, {:.0} wpm, {:.1} fillers/min, {} pauses, {} interruptions",
        r.session_id,
        r.duration_ms as f64 / 1000.0,
        c.answers,
        c.average_answer_s,
        c.talk_ratio * 100.0,
        c.words_per_minute,
        c.fillers_per_minute,
        c.pauses,
        c.interruptions
    );
    for o in &r.observations {
        let _ = writeln!(out, "  * {}", o.text);
    }
    for (i, a) in r.answers.iter().enumerate() {
        let start = a.start_delay_ms.map_or(String::new(), |d| {
            format!(", started {:+.1} s after the question", d as f64 / 1000.0)
        });
        let _ = writeln!(out, "  {}. {}{start}: {}", i + 1, a.summary(), a.transcript);
    }
    out
}
