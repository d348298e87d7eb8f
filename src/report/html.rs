//! The report as one self-contained HTML page (`report.html`): figures, observations, a
//! timeline of the call and per-answer charts as inline SVG, no script needed to view it.

use std::fmt::Write;

use super::{Answer, Report, Speaker, rules};

const CANDIDATE: &str = "#2f7d5b";
const INTERVIEWER: &str = "#3a5fa8";
const PAUSE: &str = "#d08a1f";

/// The page for `report`.
pub fn render(report: &Report) -> String {
    let mut page = String::new();
    let title = format!("Call report {}", short_id(&report.session_id));
    let _ = write!(
        page,
        "<!doctype html><html lang=\"en\"><head><meta charset=\"utf-8\"><title>{}</title>\
         <meta name=\"viewport\" content=\"width=device-width\"><style>{STYLE}</style></head><body><main>",
        escape(&title)
    );
    let _ = write!(page, "<h1>{}</h1>", escape(&title));
    page.push_str(&summary(report));
    page.push_str(&observations(report));
    let _ = write!(page, "<h2>Timeline</h2>{}", timeline_svg(report));
    if !report.answers.is_empty() {
        let _ = write!(
            page,
            "<h2>Answers</h2><div class=\"charts\">{}{}</div>",
            bars_svg(
                "Words per minute",
                &report.answers,
                |a| a.words_per_minute,
                Some((rules::SLOW_WPM, rules::FAST_WPM))
            ),
            bars_svg(
                "Fillers a minute",
                &report.answers,
                |a| a.fillers_per_minute,
                Some((0.0, rules::FILLERS_PER_MINUTE))
            ),
        );
    }
    for (i, a) in report.answers.iter().enumerate() {
        page.push_str(&answer(i + 1, a));
        page.push_str(&answer_feedback(&report.feedback, a.turn_id));
    }
    page.push_str(&rules_table());
    page.push_str("</main></body></html>\n");
    page
}

const STYLE: &str = "body{font:15px/1.5 system-ui,sans-serif;margin:0;background:#f6f7f9;color:#1d232b}\
main{max-width:60rem;margin:auto;padding:1.5rem}h1{font-size:1.5rem}h2{font-size:1.15rem;margin-top:2rem}\
.figures{display:flex;flex-wrap:wrap;gap:.75rem}.figure{background:#fff;border-radius:6px;padding:.5rem .9rem;\
box-shadow:0 1px 2px #0002}.figure b{display:block;font-size:1.3rem}.answer{background:#fff;border-radius:6px;\
padding:.75rem 1rem;margin:.75rem 0;box-shadow:0 1px 2px #0002}.q{color:#555;font-style:italic}\
mark{background:#f6d98b;border-radius:3px;padding:0 2px}.charts{display:flex;flex-wrap:wrap;gap:1rem}\
svg{background:#fff;border-radius:6px;box-shadow:0 1px 2px #0002}table{border-collapse:collapse}\
td,th{padding:.2rem .6rem;border-bottom:1px solid #ddd;text-align:left}.note{color:#666}";

fn short_id(id: &str) -> &str {
    id.get(..8).unwrap_or(id)
}

fn summary(r: &Report) -> String {
    let c = &r.call;
    let figure = |label: &str, value: String| {
        format!(
            "<div class=\"figure\">{}<b>{}</b></div>",
            escape(label),
            escape(&value)
        )
    };
    let mut out = String::from("<div class=\"figures\">");
    out += &figure("duration", clock(r.duration_ms));
    out += &figure("answers", c.answers.to_string());
    out += &figure("average answer", format!("{:.0} s", c.average_answer_s));
    out += &figure(
        "your share of talk",
        format!("{:.0}%", c.talk_ratio * 100.0),
    );
    out += &figure("words a minute", format!("{:.0}", c.words_per_minute));
    out += &figure("fillers a minute", format!("{:.1}", c.fillers_per_minute));
    out += &figure("pauses", c.pauses.to_string());
    out += &figure("interruptions", c.interruptions.to_string());
    out += "</div>";
    if let Some(v) = &r.voice {
        let _ = write!(
            out,
            "<p class=\"note\">Interviewer voice: {}</p>",
            escape(v)
        );
    }
    out
}

fn observations(r: &Report) -> String {
    let mut out = String::from("<h2>What stood out</h2>");
    if r.observations.is_empty() {
        out += "<p>Nothing crossed a threshold in this call.</p>";
    } else {
        out += "<ul>";
        for o in &r.observations {
            let _ = write!(out, "<li>{}</li>", escape(&o.text));
        }
        out += "</ul>";
    }
    let _ = write!(
        out,
        "<p class=\"note\">Feedback: {}.</p>",
        escape(&r.feedback.note)
    );
    out
}

/// Two lanes (interviewer above, candidate below) over the call, pauses marked.
fn timeline_svg(r: &Report) -> String {
    let (width, left, lane) = (900.0, 90.0, 26.0);
    let end = r
        .timeline
        .iter()
        .map(|s| s.end_ms)
        .chain([r.duration_ms])
        .max()
        .unwrap_or(0)
        .max(1) as f64;
    let x = |ms: u64| left + (width - left - 10.0) * ms as f64 / end;
    let mut svg = format!(
        "<svg role=\"img\" aria-label=\"timeline\" width=\"{width}\" height=\"110\" viewBox=\"0 0 {width} 110\">\
         <text x=\"8\" y=\"30\" font-size=\"13\">Interviewer</text><text x=\"8\" y=\"64\" font-size=\"13\">You</text>"
    );
    for s in &r.timeline {
        let (y, color) = match s.who {
            Speaker::Interviewer => (14.0, INTERVIEWER),
            Speaker::Candidate => (48.0, CANDIDATE),
        };
        let _ = write!(
            svg,
            "<rect x=\"{:.1}\" y=\"{y}\" width=\"{:.1}\" height=\"{lane}\" rx=\"3\" fill=\"{color}\"/>",
            x(s.start_ms),
            (x(s.end_ms) - x(s.start_ms)).max(1.0)
        );
    }
    for a in &r.answers {
        for p in &a.pauses {
            let from = a.start_ms + p.at_ms;
            let _ = write!(
                svg,
                "<rect x=\"{:.1}\" y=\"76\" width=\"{:.1}\" height=\"6\" fill=\"{PAUSE}\"><title>{:.1} s pause</title></rect>",
                x(from),
                (x(from + p.length_ms) - x(from)).max(1.0),
                p.length_ms as f64 / 1000.0
            );
        }
        if a.interrupted_interviewer {
            let _ = write!(
                svg,
                "<text x=\"{:.1}\" y=\"12\" font-size=\"12\" text-anchor=\"middle\">&#9889;</text>",
                x(a.start_ms)
            );
        }
    }
    let step = tick_step(end as u64);
    let mut t = 0;
    while t as f64 <= end {
        let _ = write!(
            svg,
            "<text x=\"{:.1}\" y=\"100\" font-size=\"11\" text-anchor=\"middle\" fill=\"#666\">{}</text>",
            x(t),
            clock(t)
        );
        t += step;
    }
    svg + "</svg>"
}

fn tick_step(end_ms: u64) -> u64 {
    [5_000, 10_000, 30_000, 60_000, 120_000, 300_000]
        .into_iter()
        .find(|s| end_ms / s <= 10)
        .unwrap_or(600_000)
}

/// One bar per answer, with the rule's band shaded.
fn bars_svg(
    title: &str,
    answers: &[Answer],
    value: impl Fn(&Answer) -> f64,
    band: Option<(f64, f64)>,
) -> String {
    let (width, height, left, bottom) = (420.0, 200.0, 36.0, 28.0);
    let values: Vec<f64> = answers.iter().map(&value).collect();
    let top = values
        .iter()
        .copied()
        .chain(band.map(|b| b.1 * 1.2))
        .fold(1.0, f64::max);
    let y = |v: f64| 24.0 + (height - bottom - 24.0) * (1.0 - v / top);
    let slot = (width - left - 10.0) / values.len().max(1) as f64;
    let mut svg = format!(
        "<svg role=\"img\" aria-label=\"{t}\" width=\"{width}\" height=\"{height}\" viewBox=\"0 0 {width} {height}\">\
         <text x=\"8\" y=\"16\" font-size=\"13\">{t}</text>",
        t = escape(title)
    );
    if let Some((low, high)) = band {
        let _ = write!(
            svg,
            "<rect x=\"{left}\" y=\"{:.1}\" width=\"{:.1}\" height=\"{:.1}\" fill=\"#2f7d5b22\"/>",
            y(high),
            width - left - 10.0,
            y(low) - y(high)
        );
    }
    for (i, v) in values.iter().enumerate() {
        let bx = left + slot * i as f64 + slot * 0.2;
        let _ = write!(
            svg,
            "<rect x=\"{bx:.1}\" y=\"{:.1}\" width=\"{:.1}\" height=\"{:.1}\" fill=\"{CANDIDATE}\"/>\
             <text x=\"{:.1}\" y=\"{:.1}\" font-size=\"11\" text-anchor=\"middle\">{v:.0}</text>\
             <text x=\"{:.1}\" y=\"{:.1}\" font-size=\"11\" text-anchor=\"middle\" fill=\"#666\">{}</text>",
            y(*v),
            slot * 0.6,
            y(0.0) - y(*v),
            bx + slot * 0.3,
            y(*v) - 3.0,
            bx + slot * 0.3,
            height - 10.0,
            i + 1
        );
    }
    svg + "</svg>"
}

fn answer(n: usize, a: &Answer) -> String {
    let mut out = format!("<section class=\"answer\"><h3>Answer {n}</h3>");
    if !a.question.is_empty() {
        let _ = write!(out, "<p class=\"q\">{}</p>", escape(&a.question));
    }
    let _ = write!(out, "<p>{}</p>", marked(&a.transcript, a));
    let start = match a.start_delay_ms {
        Some(d) if d < 0 => format!(
            "started {:.1} s before the interviewer finished",
            -d as f64 / 1000.0
        ),
        Some(d) => format!("started {:.1} s after the question", d as f64 / 1000.0),
        None => String::new(),
    };
    let _ = write!(
        out,
        "<p class=\"note\">{}{}{}{}</p></section>",
        escape(&a.summary()),
        if start.is_empty() {
            String::new()
        } else {
            format!(", {start}")
        },
        if a.interrupted_interviewer {
            ", interrupted the interviewer"
        } else {
            ""
        },
        if a.cut_off { ", cut off" } else { "" },
    );
    out
}

/// The model's feedback on the answer of `turn_id`, or that it is on its way.
fn answer_feedback(feedback: &super::Feedback, turn_id: u32) -> String {
    if feedback.status == super::feedback::PENDING {
        return "<p class=\"note\">Feedback pending: the interviewer model is still writing it \
                (reload the page).</p>"
            .into();
    }
    let Some(f) = feedback.answers.iter().find(|f| f.turn_id == turn_id) else {
        return String::new();
    };
    match (&f.text, &f.error) {
        (Some(text), _) => {
            let lines: String = text
                .lines()
                .map(str::trim)
                .filter(|l| !l.is_empty())
                .map(|l| format!("<li>{}</li>", escape(l)))
                .collect();
            format!("<div class=\"feedback\"><h4>Coach's feedback</h4><ul>{lines}</ul></div>")
        }
        (None, Some(e)) => format!(
            "<p class=\"note\">No feedback for this answer: {}.</p>",
            escape(e)
        ),
        (None, None) => String::new(),
    }
}

/// The transcript with its fillers in `<mark>`.
fn marked(text: &str, a: &Answer) -> String {
    let mut out = String::new();
    let mut at = 0;
    for f in &a.fillers {
        let (Some(before), Some(word)) = (text.get(at..f.start), text.get(f.start..f.end)) else {
            continue;
        };
        out += &escape(before);
        let _ = write!(out, "<mark>{}</mark>", escape(word));
        at = f.end;
    }
    out += &escape(text.get(at..).unwrap_or_default());
    out
}

fn rules_table() -> String {
    let mut out = String::from(
        "<h2>How the observations are made</h2><table><tr><th>rule</th><th>when</th><th>why</th></tr>",
    );
    for (name, when, why) in rules::table() {
        let _ = write!(
            out,
            "<tr><td>{}</td><td>{}</td><td>{}</td></tr>",
            escape(name),
            escape(&when),
            escape(why)
        );
    }
    out + "</table>"
}

fn clock(ms: u64) -> String {
    let s = ms / 1000;
    format!("{}:{:02}", s / 60, s % 60)
}

fn escape(text: &str) -> String {
    text.replace('&', "&amp;")
        .replace('<', "&lt;")
        .replace('>', "&gt;")
        .replace('"', "&quot;")
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::report::{CallFigures, Feedback, Span, fillers};

    fn report() -> Report {
        let transcript = "Um, I <b>led</b> the team.".to_string();
        Report {
            session_id: "0123456789abcdef".into(),
            user: None,
            persona: None,
            voice: Some("piper".into()),
            started_at: 0,
            duration_ms: 65_000,
            ended: true,
            answers: vec![Answer {
                turn_id: 1,
                question: "Tell me about a project.".into(),
                fillers: fillers::find(&transcript),
                transcript,
                start_ms: 5000,
                end_ms: 20_000,
                input_start_ms: 5000,
                input_end_ms: 20_000,
                length_s: 15.0,
                words: 5,
                speech_ms: 14_000,
                words_per_minute: 150.0,
                fillers_per_minute: 4.0,
                pauses: vec![super::super::AnswerPause {
                    at_ms: 3000,
                    length_ms: 1000,
                }],
                longest_pause_ms: 1000,
                start_delay_ms: Some(800),
                interrupted_interviewer: false,
                cut_off: false,
            }],
            call: CallFigures {
                answers: 1,
                candidate_talk_ms: 14_000,
                interviewer_talk_ms: 4000,
                talk_ratio: 0.78,
                average_answer_s: 15.0,
                words_per_minute: 150.0,
                fillers: 1,
                fillers_per_minute: 4.0,
                pauses: 1,
                interruptions: 0,
                cut_offs: 0,
            },
            observations: vec![],
            timeline: vec![
                Span {
                    who: Speaker::Interviewer,
                    start_ms: 0,
                    end_ms: 4000,
                },
                Span {
                    who: Speaker::Candidate,
                    start_ms: 5000,
                    end_ms: 20_000,
                },
            ],
            feedback: Feedback {
                status: "rules_only".into(),
                note: "rules".into(),
                answers: Vec::new(),
            },
        }
    }

    #[test]
    fn the_page_is_self_contained_and_escapes_what_was_said() {
        let page = render(&report());
        assert!(!page.contains("<script"), "no script needed");
        assert!(!page.contains("http"), "nothing loaded from elsewhere");
        assert!(page.contains("<mark>Um</mark>"), "fillers are marked");
        assert!(
            page.contains("&lt;b&gt;led&lt;/b&gt;"),
            "the transcript is escaped"
        );
        assert_eq!(page.matches("<svg").count(), 3, "a timeline and two charts");
        assert!(
            page.contains(&format!("fill=\"{PAUSE}\"")),
            "the pause is on the timeline"
        );
        assert!(page.contains(">1:00<"), "the timeline is marked in minutes");
    }
}
