use serde_json::json;

use super::*;

const T0: u64 = 1_700_000_000_000;

/// A line logged `call_ms` into the call, when the input stream was 100 ms behind the
/// call clock (a client that started its microphone late) and `output_ms` had been sent.
fn line(call_ms: u64, output_ms: u64, event: Value) -> LogLine {
    LogLine {
        at: T0 + call_ms,
        input_ms: call_ms.saturating_sub(100),
        output_ms,
        event,
    }
}

fn call() -> Vec<LogLine> {
    vec![
        line(
            0,
            0,
            json!({"type":"call.meta","sessionId":"s1","user":"ada","persona":"interviewer"}),
        ),
        line(0, 0, json!({"type":"session.started","sessionId":"s1"})),
        line(10, 0, json!({"type":"response.started","turnId":0})),
        line(20, 0, json!({"type":"response.audio","turnId":0})),
        line(
            4620,
            5000,
            json!({"type":"response.done","turnId":0,"status":"completed",
            "text":"Tell me about yourself.","heardText":"Tell me about yourself."}),
        ),
        line(
            7810,
            5000,
            json!({"type":"vad.pause","fromMs":7000,"toMs":7800}),
        ),
        line(
            9300,
            5000,
            json!({"type":"vad.speech","startMs":6000,"endMs":9000}),
        ),
        line(
            12300,
            5000,
            json!({"type":"vad.speech","startMs":9500,"endMs":12000}),
        ),
        line(
            12400,
            5000,
            json!({"type":"transcript","turnId":1,"isFinal":true,"startMs":5700,"endMs":12000,
            "text":"Um, I have five years of, uh, experience building backend services in Rust."}),
        ),
        line(12990, 5000, json!({"type":"response.started","turnId":1})),
        line(13000, 5000, json!({"type":"response.audio","turnId":1})),
        line(
            13650,
            5650,
            json!({"type":"response.paused","turnId":1,"audioMs":13500}),
        ),
        line(
            14200,
            6400,
            json!({"type":"response.done","turnId":1,"status":"cancelled",
            "text":"Great. Now tell me about a project.","heardText":"Great."}),
        ),
        line(
            15200,
            6400,
            json!({"type":"vad.speech","startMs":13500,"endMs":15000}),
        ),
        line(
            15300,
            6400,
            json!({"type":"transcript","turnId":2,"isFinal":true,"startMs":13200,"endMs":15000,
            "text":"Sorry, one more thing."}),
        ),
        line(
            20000,
            6400,
            json!({"type":"session.ended","durationMs":20000}),
        ),
    ]
}

#[test]
fn an_answer_is_timed_on_the_call_clock_with_its_pauses_and_fillers() {
    let report = build(&call());
    assert_eq!(report.session_id, "s1");
    assert_eq!(report.user.as_deref(), Some("ada"));
    assert_eq!(report.duration_ms, 20000);
    assert!(report.ended);
    let a = &report.answers[0];
    assert_eq!(a.question, "Tell me about yourself.");
    assert_eq!((a.input_start_ms, a.input_end_ms), (6000, 12000));
    assert_eq!(
        (a.start_ms, a.end_ms),
        (6100, 12100),
        "the input ran 100 ms behind"
    );
    assert_eq!(a.length_s, 6.0);
    assert_eq!(a.speech_ms, 1000 + 1200 + 2500);
    assert_eq!(
        a.pauses,
        [
            AnswerPause {
                at_ms: 1000,
                length_ms: 800
            },
            AnswerPause {
                at_ms: 3000,
                length_ms: 500
            }
        ]
    );
    assert_eq!(a.longest_pause_ms, 800);
    assert_eq!(a.words, 13);
    assert_eq!(a.fillers.len(), 2);
    assert!(
        (a.words_per_minute - 13.0 / (4.7 / 60.0)).abs() < 0.01,
        "{}",
        a.words_per_minute
    );
    // The greeting's audio (5 s) ended at 5020 ms.
    assert_eq!(a.start_delay_ms, Some(6100 - 5020));
    assert!(!a.interrupted_interviewer);
    assert!(
        a.cut_off,
        "speech over the reply 1.5 s after the answer ended"
    );
}

#[test]
fn speech_over_a_reply_is_an_interruption_and_the_question_is_what_was_heard() {
    let report = build(&call());
    let a = &report.answers[1];
    assert_eq!(a.question, "Great.");
    assert_eq!(a.start_ms, 13600);
    // The reply was heard from 13000 until it paused at 13650.
    assert_eq!(a.start_delay_ms, Some(-50));
    assert!(a.interrupted_interviewer);
    assert!(!a.cut_off);
    assert_eq!(report.call.interruptions, 1);
    assert_eq!(report.call.cut_offs, 1);
}

#[test]
fn the_timeline_has_both_lanes_and_the_talk_ratio_follows_it() {
    let report = build(&call());
    let lane = |who| -> Vec<(u64, u64)> {
        report
            .timeline
            .iter()
            .filter(|s| s.who == who)
            .map(|s| (s.start_ms, s.end_ms))
            .collect()
    };
    assert_eq!(lane(Speaker::Interviewer), [(20, 5020), (13000, 13650)]);
    assert_eq!(
        lane(Speaker::Candidate),
        [(6100, 7100), (7900, 9100), (9600, 12100), (13600, 15100)]
    );
    let candidate = 1000 + 1200 + 2500 + 1500;
    let interviewer = 5000 + 650;
    assert_eq!(report.call.candidate_talk_ms, candidate);
    assert_eq!(report.call.interviewer_talk_ms, interviewer);
    let ratio = candidate as f64 / (candidate + interviewer) as f64;
    assert!((report.call.talk_ratio - ratio).abs() < 1e-9);
}

#[test]
fn observations_name_the_rule_and_the_number() {
    let report = build(&call());
    let rules: Vec<&str> = report
        .observations
        .iter()
        .map(|o| o.rule.as_str())
        .collect();
    assert!(rules.contains(&"short answer"), "{rules:?}");
    assert!(rules.contains(&"cut off"), "{rules:?}");
    let short = &report.observations[0];
    assert_eq!(
        short.text,
        "2 of 2 answers were under 15 s; behavioural answers usually need 60-90 s"
    );
}

#[test]
fn a_log_cut_short_still_gives_a_report() {
    let mut lines = call();
    lines.truncate(9);
    let report = build(&lines);
    assert_eq!(report.answers.len(), 1);
    assert_eq!(report.duration_ms, 12400, "the last line's time");
    assert!(!report.ended);
    assert!(
        parse_log("{\"type\":\"x\"}\nnot json\n").is_empty(),
        "unstamped lines are skipped"
    );
}

#[test]
fn a_models_call_says_feedback_pending_and_a_scripted_one_says_rules_only() {
    let meta = |feedback: &str| {
        let mut lines = call();
        lines.insert(
            0,
            line(
                0,
                0,
                json!({"type":"call.meta","sessionId":"s","feedback":feedback}),
            ),
        );
        build(&lines).feedback
    };
    assert_eq!(meta("model").status, "pending");
    let scripted = meta("rules");
    assert_eq!(scripted.status, "rules_only");
    assert!(
        scripted.note.contains("scripted interviewer"),
        "{}",
        scripted.note
    );
}
