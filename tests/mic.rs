//! `callgate mic`, the live terminal client, as a real process: one clear sentence when the
//! audio device is unusable, and a whole call on ALSA's `null` device (a capture that
//! gives silence, a playback that discards), which every Linux with alsa-lib has, so the
//! cpal streams, the upload and the playback bookkeeping run for real on a machine
//! without a sound card.

use std::io::{BufRead, BufReader};
use std::process::{Command, Stdio};
use std::time::Duration;

use crate::util::spawn_gateway;

const BIN: &str = env!("CARGO_BIN_EXE_callgate");

/// The ALSA null device's description, as `--list-devices` shows it.
const NULL_DEVICE: &str = "discard all samples";

#[test]
fn mic_with_no_such_device_fails_in_one_sentence() {
    let out = Command::new(BIN)
        .args([
            "mic",
            "--input",
            "no-such-microphone",
            "ws://127.0.0.1:9/v1/call",
        ])
        .output()
        .expect("run callgate");
    let stderr = String::from_utf8_lossy(&out.stderr);
    assert_eq!(out.status.code(), Some(1), "{stderr}");
    assert_eq!(
        stderr.trim(),
        "error: no audio input device matches \"no-such-microphone\" (see `callgate mic --list-devices`)"
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn mic_holds_a_call_on_the_null_device() {
    let list = Command::new(BIN)
        .args(["mic", "--list-devices"])
        .output()
        .expect("run callgate");
    let devices = String::from_utf8_lossy(&list.stdout).to_lowercase();
    assert!(
        devices.contains(NULL_DEVICE),
        "ALSA's null device is missing (alsa-lib's config, libasound2-data): {devices}"
    );
    let calls_dir = std::env::temp_dir().join("callgate-mic-calls");
    let _ = std::fs::remove_dir_all(&calls_dir);
    let addr = spawn_gateway(callgate::config::ServeSettings {
        record: Some(true),
        calls_dir: Some(calls_dir.clone()),
        // ALSA's null device has no clock: it "captures" as fast as it is read, which the
        // server's flood guard would rightly refuse. A real microphone runs in real time.
        max_audio_rate: Some(0.0),
        ..Default::default()
    })
    .await;
    let mut child = Command::new(BIN)
        .args(["mic", "--input", NULL_DEVICE, "--output", NULL_DEVICE])
        .arg(format!("ws://{addr}/v1/call"))
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .spawn()
        .expect("run callgate mic");
    let stdout = child.stdout.take().expect("stdout");
    // The greeting's line ends when its response.done arrives, after its audio was played
    // (into the null device) in real time.
    let greeting = tokio::task::spawn_blocking(move || {
        BufReader::new(stdout)
            .lines()
            .map_while(Result::ok)
            .find(|l| l.starts_with("interviewer: "))
    });
    let greeting = tokio::time::timeout(Duration::from_secs(90), greeting)
        .await
        .expect("no greeting within 90 s")
        .expect("reader")
        .expect("a greeting line");
    assert!(greeting.len() > 40, "{greeting}");
    // Ctrl-C ends the call cleanly.
    let interrupted = Command::new("kill")
        .args(["-INT", &child.id().to_string()])
        .status()
        .expect("kill");
    assert!(interrupted.success());
    let out = tokio::task::spawn_blocking(move || child.wait_with_output())
        .await
        .expect("join")
        .expect("wait");
    let stderr = String::from_utf8_lossy(&out.stderr);
    assert!(out.status.success(), "{stderr}");
    assert!(stderr.contains("call ended"), "{stderr}");
    assert!(!stderr.contains("panicked"), "{stderr}");

    let session = std::fs::read_dir(&calls_dir)
        .expect("calls dir")
        .next()
        .expect("one call")
        .expect("entry")
        .path();
    let record = std::fs::read_to_string(session.join("events.jsonl")).expect("events");
    let greeting_done = record
        .lines()
        .filter_map(|l| serde_json::from_str::<serde_json::Value>(l).ok())
        .find(|e| e["type"] == "response.done" && e["turnId"] == 0)
        .expect("the greeting's response.done");
    assert_eq!(greeting_done["status"], "completed", "{greeting_done}");
    // The mic's (silent) audio reached the server: over a second of it was recorded.
    let input = callgate::audio::wav::read_i16(&session.join("input.wav")).expect("input.wav");
    assert!(
        input.frames() > input.rate as usize,
        "{} samples",
        input.frames()
    );
}
