//! The call's report end to end: a real call (whisper, espeak-ng, the scripted interviewer)
//! replayed from a fixture of known timing, its report.json checked against that timing,
//! and the report served over HTTP.

use std::path::PathBuf;

use callgate::client::replay::{self, ReplayOptions, TurnStatus};
use callgate::client::{TurnModeName, TurnTaking};
use callgate::config::ServeSettings;
use serde_json::Value;

use crate::util::{espeak_speech, fixture_dir, http_get, recorded_in, spawn_gateway};

/// The answer starts here, after the greeting (about 12.5 s of espeak-ng) has ended.
const ANSWER_AT_MS: u64 = 16_000;
/// A thinking pause inside the answer, between its two halves.
const PAUSE_MS: u64 = 1_200;
const FIRST_HALF: &str = "I have five years of experience building backend services,";
const SECOND_HALF: &str = "and most of that time I worked on payment systems in Rust, where I led the move to small services.";

/// The fixture and where its speech is: (path, first half's length, second half's length),
/// lengths in ms.
fn answer_with_a_pause() -> (PathBuf, u64, u64) {
    let first = espeak_speech(FIRST_HALF, "en-us");
    let second = espeak_speech(SECOND_HALF, "en-us");
    let ms = |n: usize| n as u64 * 1000 / 16_000;
    let quiet = |ms: u64| vec![0.0f32; (ms * 16) as usize];
    let audio = [
        quiet(ANSWER_AT_MS),
        first.clone(),
        quiet(PAUSE_MS),
        second.clone(),
        quiet(500),
    ]
    .concat();
    let path = fixture_dir().join("report-answer-with-a-pause.wav");
    callgate::audio::wav::write_i16(&path, &callgate::audio::f32_to_i16(&audio), 16_000)
        .expect("write fixture");
    (path, ms(first.len()), ms(second.len()))
}

async fn report_of(dir: &std::path::Path, session_id: &str) -> Value {
    let path = dir.join(session_id).join("report.json");
    // The report is written by the recorder's thread once the call's files are closed.
    for _ in 0..100 {
        if let Ok(text) = std::fs::read_to_string(&path) {
            return serde_json::from_str(&text).expect("report.json is JSON");
        }
        tokio::time::sleep(std::time::Duration::from_millis(100)).await;
    }
    panic!("{} was not written", path.display());
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_calls_report_times_the_answer_its_pause_and_its_rate() {
    let dir = std::env::temp_dir().join("callgate-report-calls");
    let _ = std::fs::remove_dir_all(&dir);
    let addr = spawn_gateway(recorded_in(&dir, ServeSettings::default())).await;
    let (wav, first_ms, second_ms) = answer_with_a_pause();
    let mut opts = ReplayOptions::new(format!("ws://{addr}/v1/call"), vec![wav]);
    opts.quiet = true;
    // A fixed 2 s window, so the thinking pause cannot end the turn whatever the words.
    opts.silence_ms = Some(2000);
    opts.turn_taking = TurnTaking {
        mode: Some(TurnModeName::ServerVad),
        ..TurnTaking::default()
    };
    let runs = replay::replay(&opts).await.expect("replay");
    assert_eq!(runs.len(), 1, "{runs:#?}");
    assert_eq!(runs[0].status, TurnStatus::Completed, "{runs:#?}");
    let session_id = runs[0].session_id.clone();
    let report = report_of(&dir, &session_id).await;
    eprintln!("{report:#}");

    assert_eq!(report["sessionId"], session_id.as_str());
    let answers = report["answers"].as_array().expect("answers");
    assert_eq!(answers.len(), 1, "one answer: {report:#}");
    let a = &answers[0];
    let num = |v: &Value| v.as_f64().unwrap_or(f64::NAN);
    let input_start = num(&a["inputStartMs"]);
    assert!(
        (input_start - ANSWER_AT_MS as f64).abs() <= 100.0,
        "the answer starts at {ANSWER_AT_MS} ms in the input, report says {input_start}"
    );
    let true_length = (first_ms + PAUSE_MS + second_ms) as f64;
    let length = num(&a["lengthS"]) * 1000.0;
    assert!(
        (length - true_length).abs() <= 150.0,
        "length {length} ms, true {true_length}"
    );
    let pauses = a["pauses"].as_array().expect("pauses");
    assert_eq!(pauses.len(), 1, "the thinking pause, and only it: {a:#}");
    let pause = num(&pauses[0]["lengthMs"]);
    assert!(
        (pause - PAUSE_MS as f64).abs() <= 100.0,
        "pause {pause} ms, true {PAUSE_MS}"
    );
    let at = num(&pauses[0]["atMs"]);
    assert!(
        (at - first_ms as f64).abs() <= 100.0,
        "pause at {at} ms, true {first_ms}"
    );
    // The rate is words over speech time. Its timing: the words heard over the halves'
    // true length. Its words: whisper's count against the words spoken.
    let spoken = callgate::report::fillers::word_count(&format!("{FIRST_HALF} {SECOND_HALF}"));
    let heard = a["words"].as_u64().expect("words") as f64;
    let true_minutes = (first_ms + second_ms) as f64 / 60_000.0;
    let wpm = num(&a["wordsPerMinute"]);
    let timed = heard / true_minutes;
    assert!(
        (wpm - timed).abs() <= timed * 0.05,
        "{wpm:.1} wpm; {heard} words over the true speech time is {timed:.1}"
    );
    assert!(
        (heard - spoken as f64).abs() <= 2.0,
        "{heard} words heard of {spoken} spoken: {a:#}"
    );
    eprintln!(
        "rate {wpm:.1} wpm, true {:.1} wpm ({spoken} words spoken over {:.0} ms of speech)",
        spoken as f64 / true_minutes,
        true_minutes * 60_000.0
    );
    assert!(
        a["question"]
            .as_str()
            .is_some_and(|q| q.contains("experience")),
        "the question it answered is the greeting's: {a:#}"
    );
    // The candidate waited for the greeting to end: a positive delay, and the call's
    // clock agrees with the input's within the client's start-up.
    let delay = a["startDelayMs"].as_i64().expect("a start delay");
    assert!(delay > 0, "started {delay} ms after the greeting's end");
    assert!(!a["interruptedInterviewer"].as_bool().unwrap_or(true));
    let lanes: Vec<&str> = report["timeline"]
        .as_array()
        .expect("timeline")
        .iter()
        .filter_map(|s| s["who"].as_str())
        .collect();
    assert!(
        lanes.contains(&"interviewer") && lanes.contains(&"candidate"),
        "{lanes:?}"
    );
    let ratio = num(&report["call"]["talkRatio"]);
    assert!(ratio > 0.0 && ratio < 1.0, "talk ratio {ratio}");

    // Served beside the recordings, as JSON and as a page.
    let json = http_get(&addr.to_string(), &format!("/v1/calls/{session_id}/report")).await;
    assert!(json.starts_with("HTTP/1.1 200"), "{json:.200}");
    assert!(
        json.contains("application/json") && json.contains("\"answers\""),
        "{json:.300}"
    );
    let page = http_get(
        &addr.to_string(),
        &format!("/v1/calls/{session_id}/report.html"),
    )
    .await;
    assert!(page.starts_with("HTTP/1.1 200"), "{page:.200}");
    assert!(
        page.contains("text/html") && page.contains("<svg"),
        "{page:.300}"
    );
    // `callgate replay --report` asks for it the same way.
    let fetched = replay::fetch_call_report(&opts.url, &session_id)
        .await
        .expect("the report over HTTP");
    assert!(fetched.ended);
    assert_eq!(serde_json::to_value(&fetched).expect("json"), report);
    // And `callgate report` rebuilds the same from the folder alone.
    let offline = callgate::report::read(&dir.join(&session_id)).expect("rebuilt");
    assert_eq!(serde_json::to_value(&offline).expect("json"), report);
}
