//! `callgate bench --spawn` as a user runs it: the real binary, an in-process gateway on the
//! real engines, two short fixtures. Checks the JSON report's shape and that every turn
//! completed (or, with --barge-in, was interrupted and then answered; with --backchannel,
//! was paused and resumed, never cancelled); never timing.

use std::path::{Path, PathBuf};
use std::process::Command;
use std::sync::Mutex;

use serde_json::Value;

use crate::util;

/// A fresh folder holding only the gateway's settings.
fn bench_dir(name: &str) -> PathBuf {
    let dir = std::env::temp_dir().join(format!("callgate-bench-{name}-{}", std::process::id()));
    let _ = std::fs::remove_dir_all(&dir);
    std::fs::create_dir_all(&dir).expect("corpus dir");
    // The model by absolute path, so the test does not depend on its working directory.
    std::fs::write(
        dir.join("gateway.toml"),
        format!("model = {:?}\n", util::tiny_model().display().to_string()),
    )
    .expect("config");
    dir
}

/// Two short answers with a manifest, in a fresh folder.
fn corpus(name: &str) -> PathBuf {
    let dir = bench_dir(name);
    let mut manifest = serde_json::Map::new();
    for (i, &(voice, text)) in util::INTERVIEW_ANSWERS[1..3].iter().enumerate() {
        let name = format!("{i}.wav");
        std::fs::copy(util::espeak_wav(text, voice, 16_000, 1), dir.join(&name)).expect("copy");
        manifest.insert(name, text.into());
    }
    std::fs::write(
        dir.join("manifest.json"),
        Value::Object(manifest).to_string(),
    )
    .expect("manifest");
    dir
}

/// One bench at a time: each starts a gateway whose whisper wants every core.
static ONE_AT_A_TIME: Mutex<()> = Mutex::new(());

fn bench(dir: &Path, extra: &[&str]) -> (Value, String) {
    let _one = ONE_AT_A_TIME.lock().unwrap_or_else(|e| e.into_inner());
    let report = dir.join("report.json");
    let out = Command::new(env!("CARGO_BIN_EXE_callgate"))
        .arg("bench")
        .arg(dir)
        .args(["--spawn", "--server-config"])
        .arg(dir.join("gateway.toml"))
        // A generous wait: the suite runs other gateways beside this one.
        .args(["--calls", "2", "--quiet", "--tail-timeout", "60", "--json"])
        .arg(&report)
        .args(extra)
        .env("CALLGATE_LOG", "warn")
        .output()
        .expect("run callgate bench");
    let stdout = String::from_utf8_lossy(&out.stdout).into_owned();
    assert!(
        out.status.success(),
        "bench failed: {stdout}\n{}",
        String::from_utf8_lossy(&out.stderr)
    );
    let json = std::fs::read_to_string(&report).expect("report written");
    (serde_json::from_str(&json).expect("report is JSON"), stdout)
}

#[test]
fn bench_spawn_reports_every_turn() {
    let dir = corpus("plain");
    let (r, stdout) = bench(&dir, &["--concurrency", "1,2", "--max-wer", "5"]);
    assert!(stdout.contains("voice-to-voice"), "{stdout}");
    assert_eq!(r["version"], 1);
    assert_eq!(r["spawned"], true);
    assert_eq!(r["realTime"], true);
    assert_eq!(r["files"], 2);
    assert_eq!(r["violations"], Value::Array(vec![]));
    let levels = r["levels"].as_array().expect("levels");
    assert_eq!(levels.len(), 2);
    for (level, concurrency) in levels.iter().zip([1, 2]) {
        let s = &level["summary"];
        assert_eq!(s["concurrency"], concurrency);
        assert_eq!(s["calls"], 2);
        assert_eq!(s["failed"], 0, "{s}");
        for figure in ["voiceToVoiceMs", "firstAudioMs", "asrMs", "endpointMs"] {
            assert_eq!(s[figure]["count"], s["turns"], "{figure}: {s}");
            assert!(s[figure]["p90"].is_u64(), "{figure}: {s}");
        }
        assert!(s["meanWer"].is_f64(), "{s}");
        let calls = level["calls"].as_array().expect("calls");
        assert_eq!(calls.len(), 2);
        for call in calls {
            assert!(call["reference"].is_string());
            assert!(call["wer"].is_f64());
            let turns = call["turns"].as_array().expect("turns");
            assert!(!turns.is_empty());
            for t in turns {
                assert_eq!(t["status"], "completed", "{t}");
                assert!(t["voiceToVoiceMs"].is_u64(), "{t}");
                assert!(t["latency"]["firstAudioMs"].is_u64(), "{t}");
                assert!(t["audioMsReceived"].as_u64().unwrap_or(0) > 0, "{t}");
                assert_eq!(t["outputSeqGaps"], 0, "{t}");
                assert!(
                    !t["finalTranscript"].as_str().unwrap_or("").is_empty(),
                    "{t}"
                );
            }
        }
    }
    let _ = std::fs::remove_dir_all(&dir);
}

#[test]
fn bench_barge_in_interrupts_then_answers() {
    let dir = corpus("barge");
    let (r, _) = bench(&dir, &["--barge-in"]);
    assert_eq!(r["bargeIn"], true);
    let level = &r["levels"][0];
    for call in level["calls"].as_array().expect("calls") {
        let turns = call["turns"].as_array().expect("turns");
        // The answer's turn was interrupted, and the interruption was answered.
        let interrupted: Vec<_> = turns.iter().filter(|t| t["bargeInMs"].is_u64()).collect();
        assert_eq!(interrupted.len(), 1, "{turns:?}");
        assert_eq!(interrupted[0]["status"], "cancelled");
        let last = turns.last().expect("a turn");
        assert_eq!(last["status"], "completed", "{turns:?}");
        assert!(last["voiceToVoiceMs"].is_u64(), "{last}");
    }
    assert_eq!(level["summary"]["bargeInMs"]["count"], 2);
    let _ = std::fs::remove_dir_all(&dir);
}

#[test]
fn bench_backchannel_resumes_the_reply_and_never_cancels_it() {
    let dir = bench_dir("backchannel");
    // Two backchannels whisper tiny.en hears as such in their voices (en-gb, en-us+f3),
    // spoken over the reply to the same answer, two calls at a time.
    let args = [
        "--backchannel",
        "--clips",
        "okay,right",
        "--takes",
        "1",
        "--concurrency",
        "2",
    ];
    let (r, stdout) = bench(&dir, &args);
    assert!(
        stdout.contains("backchannels and interruptions"),
        "{stdout}"
    );
    assert_eq!(r["backchannel"], true);
    let levels = r["levels"].as_array().expect("levels");
    let cases: Vec<&str> = levels
        .iter()
        .filter_map(|l| l["summary"]["case"].as_str())
        .collect();
    assert_eq!(
        cases,
        ["reference", "backchannel"],
        "no interruption asked for"
    );
    let set = &levels[1]["summary"]["overlap"]["set"];
    assert_eq!(set["calls"], 2, "{set}");
    assert_eq!(set["cancelled"], 0, "a false cancel: {set}");
    assert_eq!(set["resumed"], 2, "{set}");
    assert_eq!(set["extraTurns"], 0, "a backchannel became a turn: {set}");
    for call in levels[1]["calls"].as_array().expect("calls") {
        let v = &call["overlap"];
        assert_eq!(v["kind"], "backchannel", "{v}");
        assert_eq!(v["heardWhole"], true, "{v}");
        assert_eq!(v["seqGaps"], 0, "{v}");
        assert_ne!(v["audioWhole"], false, "a frame skipped or doubled: {v}");
        let turns = call["turns"].as_array().expect("turns");
        assert_eq!(turns.len(), 1, "{turns:?}");
        assert_eq!(turns[0]["status"], "completed", "{turns:?}");
        assert_eq!(turns[0]["spokenOver"], true);
        assert_eq!(turns[0]["pauses"][0]["outcome"], "resumed", "{turns:?}");
        assert!(turns[0]["pauses"][0]["resumeGapMs"].is_i64(), "{turns:?}");
    }
    let _ = std::fs::remove_dir_all(&dir);
}

#[test]
fn bench_case_pauses_scores_each_answer() {
    let dir = bench_dir("case");
    // A fixed 2 s window outlasts every thinking pause (0.7-1.5 s): no answer may be cut,
    // on any server that has server_vad.
    let args = [
        "--case",
        "pauses",
        "--answers",
        "2",
        "--turn-detection",
        "server_vad",
        "--silence-ms",
        "2000",
    ];
    let (r, stdout) = bench(&dir, &args);
    assert!(stdout.contains("end of turn"), "the case table: {stdout}");
    assert_eq!(
        r["turnDetection"],
        serde_json::json!({"mode": "server_vad", "silenceMs": 2000})
    );
    assert_eq!(r["burst"], false);
    let level = &r["levels"][0];
    let s = &level["summary"];
    assert_eq!(s["case"], "pauses");
    assert_eq!(s["calls"], 2, "each answer once: {s}");
    for count in [
        "cutOffs",
        "truncations",
        "earlyEnds",
        "unanswered",
        "failed",
    ] {
        assert_eq!(s[count], 0, "{count}: {s}");
    }
    assert!(s["corpusWer"].is_f64(), "{s}");
    let rules: u64 = s["endRules"]
        .as_object()
        .expect("endRules")
        .values()
        .filter_map(Value::as_u64)
        .sum();
    assert_eq!(rules, 2, "one announced end per answer: {s}");
    // The fixtures: generated under DIR/pauses, each with its thinking pause recorded.
    let manifest: Value = serde_json::from_str(
        &std::fs::read_to_string(dir.join("pauses/manifest.json")).expect("manifest"),
    )
    .expect("manifest is JSON");
    for call in level["calls"].as_array().expect("calls") {
        let file = Path::new(call["file"].as_str().expect("file"));
        let name = file.file_name().and_then(|n| n.to_str()).expect("name");
        let entry = &manifest[name];
        let pause = entry["pausesMs"][0].as_u64().expect("a pause");
        assert!((700..=1500).contains(&pause), "{entry}");
        assert_eq!(call["reference"], entry["text"]);
        assert_eq!(call["speechEndMs"], entry["speechMs"][1], "{call}");
        assert_eq!(call["answered"], true, "{call}");
        let turns = call["turns"].as_array().expect("turns");
        assert_eq!(turns.len(), 1, "{turns:?}");
        assert!(turns[0]["speechEndMs"].is_u64(), "{}", turns[0]);
    }
    let _ = std::fs::remove_dir_all(&dir);
}
