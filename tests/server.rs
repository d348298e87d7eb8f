//! The gateway end to end: a real server (whisper, scripted interviewer, espeak-ng) on an
//! ephemeral port, driven by the tests' client (`util::TestCall`) over real sockets.

use std::sync::OnceLock;
use std::time::Duration;

use serde_json::json;

use callgate::protocol::{self, DoneStatus, OutputChunk, ServerMessage};

use crate::util::{Got, TestCall, done_of, is_done, recorded_input, session_id_of, speech};

/// One server for the whole test binary, on its own runtime thread, so tests share one
/// loaded model.
fn server_addr() -> std::net::SocketAddr {
    static ADDR: OnceLock<std::net::SocketAddr> = OnceLock::new();
    crate::util::shared_gateway(&ADDR, || callgate::config::ServeSettings {
        record: Some(true),
        ..Default::default()
    })
}

async fn connect() -> TestCall {
    TestCall::open(server_addr()).await
}

async fn stream_audio(ws: &mut TestCall, seq: &mut u32, samples: &[i16], rate: u32, channels: u16) {
    stream_audio_in_order(ws, seq, samples, rate, channels, false).await
}

/// Streams 20 ms chunks; with `swap_pairs` each pair of chunks goes out in reverse order,
/// as a network might deliver them.
async fn stream_audio_in_order(
    ws: &mut TestCall,
    seq: &mut u32,
    samples: &[i16],
    rate: u32,
    channels: u16,
    swap_pairs: bool,
) {
    let per_chunk = (rate as usize / 50) * channels as usize; // 20 ms
    let frames: Vec<Vec<u8>> = samples
        .chunks(per_chunk)
        .enumerate()
        .map(|(i, chunk)| protocol::encode_input_frame(*seq + i as u32, chunk))
        .collect();
    *seq += frames.len() as u32;
    let mut order: Vec<usize> = (0..frames.len()).collect();
    if swap_pairs {
        for pair in order.chunks_mut(2) {
            pair.reverse();
        }
    }
    for i in order {
        ws.send_binary(frames[i].clone()).await;
    }
}

fn final_text(seen: &[Got]) -> Option<String> {
    seen.iter().find_map(|g| match g {
        Got::Event(ServerMessage::Transcript {
            text,
            is_final: true,
            ..
        }) => Some(text.clone()),
        _ => None,
    })
}

fn words(s: &str) -> String {
    s.to_lowercase()
        .chars()
        .filter(|c| c.is_alphanumeric() || c.is_whitespace())
        .collect()
}

/// A full spoken turn at each input rate, answered in audio at several output rates.
#[tokio::test]
async fn spoken_turn_is_transcribed_and_answered_in_audio() {
    let text = "I have five years of experience with Rust.";
    for (input_rate, channels, output_rate) in [
        (8000, 1, 16000),
        (16000, 1, 24000),
        (44100, 2, 48000),
        (48000, 1, 24000),
    ] {
        let mut ws = connect().await;
        let started = ws.start(input_rate, channels, output_rate).await;
        // The interviewer greets first; let it finish.
        let greeting = ws.until(is_done(0)).await;
        assert_eq!(done_of(&greeting).0, DoneStatus::Completed);
        let mut seq = 0;
        let mut audio = speech(text, input_rate, channels);
        audio.extend(vec![
            0i16;
            (input_rate as usize * channels as usize) * 3 / 2
        ]);
        // At 16 kHz the chunks also arrive pairwise out of order: the sequencer must put them
        // back, and the recording checked below proves nothing was lost or doubled.
        let swap = input_rate == 16000;
        stream_audio_in_order(&mut ws, &mut seq, &audio, input_rate, channels, swap).await;
        let seen = ws.until(is_done(1)).await;
        let heard = final_text(&seen).expect("a final transcript");
        let w = words(&heard);
        // 8 kHz espeak audio loses the high band and whisper tiny mishears small words
        // ("five year long"), so assert the words that survive every rate.
        assert!(
            w.contains("experience") && w.contains("five"),
            "{input_rate} Hz: {heard:?}"
        );
        let (status, reply, _, latency) = done_of(&seen);
        assert_eq!(status, DoneStatus::Completed, "{seen:?}");
        assert!(!reply.is_empty());
        assert!(
            latency.first_audio_ms.is_some() && latency.total_ms.is_some(),
            "{latency:?}"
        );
        assert!(latency.endpoint_ms.is_some() && latency.asr_ms.is_some());
        let frames: Vec<&OutputChunk> = seen
            .iter()
            .filter_map(|g| match g {
                Got::Audio(c) if c.turn == 1 => Some(c),
                _ => None,
            })
            .collect();
        assert!(
            frames.first().is_some_and(|f| f.first),
            "first frame flagged"
        );
        assert!(frames.last().is_some_and(|f| f.last), "last frame flagged");
        let samples: usize = frames.iter().map(|f| f.samples.len()).sum();
        let secs = samples as f64 / output_rate as f64;
        // espeak at 175 wpm: about 2.5-3.5 words per second of audio.
        let n_words = reply.split_whitespace().count() as f64;
        assert!(
            secs > n_words / 5.0 && secs < n_words / 1.5,
            "{secs} s for {n_words} words"
        );
        for kind in ["input.speech_started", "input.speech_stopped", "audio.ack"] {
            let found = seen.iter().any(|g| matches!(g, Got::Event(e) if e.to_json().contains(&format!("\"type\":\"{kind}\""))));
            assert!(found, "{kind} missing at {input_rate} Hz");
        }
        ws.send_json(json!({"type":"session.end"})).await;
        let end = ws
            .until(|e| matches!(e, ServerMessage::SessionEnded { .. }))
            .await;
        assert!(
            matches!(end.last(), Some(Got::Event(ServerMessage::SessionEnded { turns, .. })) if *turns >= 2)
        );
        if swap {
            // The server records input after sequencing (mono at the input rate): it must be
            // the audio sent, sample for sample, despite the reordering.
            let calls_dir = std::env::temp_dir().join("callgate-test-calls");
            let recorded = recorded_input(&calls_dir, &session_id_of(&started), audio.len()).await;
            assert_eq!(recorded.len(), audio.len(), "input.wav length");
            assert!(recorded == audio, "input.wav differs from the audio sent");
        }
    }
}

/// Talking over the AI cancels its response at once; nothing of it follows its done, and
/// the new turn is transcribed and answered.
#[tokio::test]
async fn barge_in_cancels_the_response_and_starts_a_new_turn() {
    let mut ws = connect().await;
    ws.start(16000, 1, 24000).await;
    ws.until_audio(0).await;
    let mut seq = 0;
    let mut audio = speech(
        "The most challenging bug I fixed was a race condition.",
        16000,
        1,
    );
    audio.extend(vec![0i16; 24000]);
    stream_audio(&mut ws, &mut seq, &audio, 16000, 1).await;
    let seen = ws.until(is_done(1)).await;
    let done0 = seen
        .iter()
        .position(|g| {
            matches!(
                g,
                Got::Event(ServerMessage::ResponseDone { turn_id: 0, .. })
            )
        })
        .expect("the greeting's response.done");
    assert!(matches!(
        &seen[done0],
        Got::Event(ServerMessage::ResponseDone {
            status: DoneStatus::Cancelled,
            ..
        })
    ));
    let late = seen[done0..]
        .iter()
        .any(|g| matches!(g, Got::Audio(c) if c.turn == 0));
    assert!(
        !late,
        "a frame of the cancelled turn followed its response.done"
    );
    let heard = words(&final_text(&seen[done0..]).expect("final transcript"));
    assert!(heard.contains("race condition"), "{heard}");
    assert_eq!(done_of(&seen).0, DoneStatus::Completed);
}

/// A backchannel over the AI pauses its response and resumes it: no cancel, no user turn,
/// and the response's audio goes on with no frame missing or repeated.
#[tokio::test]
async fn a_backchannel_over_the_ai_pauses_and_resumes_it() {
    let mut ws = connect().await;
    ws.start(16000, 1, 24000).await;
    let mut seen = ws.until_audio(0).await;
    let mut seq = 0;
    let mut audio = speech("Okay.", 16000, 1);
    audio.extend(vec![0i16; 16000]);
    stream_audio(&mut ws, &mut seq, &audio, 16000, 1).await;
    seen.extend(ws.until(is_done(0)).await);
    let events: Vec<&ServerMessage> = seen
        .iter()
        .filter_map(|g| match g {
            Got::Event(e) => Some(e),
            _ => None,
        })
        .collect();
    let paused = events
        .iter()
        .position(|e| matches!(e, ServerMessage::ResponsePaused { turn_id: 0, .. }));
    let resumed = events
        .iter()
        .position(|e| matches!(e, ServerMessage::ResponseResumed { turn_id: 0, .. }));
    assert!(
        matches!((paused, resumed), (Some(p), Some(r)) if p < r),
        "not paused then resumed: {events:?}"
    );
    assert!(
        !events
            .iter()
            .any(|e| matches!(e, ServerMessage::InputSpeechStarted { .. })),
        "the backchannel became a turn: {events:?}"
    );
    let (status, text, heard, _) = done_of(&seen);
    assert_eq!(status, DoneStatus::Completed, "{events:?}");
    assert_eq!(heard, text);
    let seqs: Vec<u32> = seen
        .iter()
        .filter_map(|g| match g {
            Got::Audio(c) if c.turn == 0 => Some(c.seq),
            _ => None,
        })
        .collect();
    assert!(
        seqs.windows(2).all(|w| w[1] == w[0] + 1),
        "output seq not contiguous: {seqs:?}"
    );
}

/// A hole of 1000 chunks is one `AUDIO_GAP` with its whole extent, however many chunks
/// follow it (not one error per arriving chunk while a window slides).
#[tokio::test]
async fn a_hole_in_the_input_is_reported_once_with_its_extent() {
    let mut ws = connect().await;
    ws.start(16000, 1, 24000).await;
    for seq in (0..10).chain(1010..1020) {
        ws.send_binary(protocol::encode_input_frame(seq, &[0i16; 320]))
            .await;
    }
    // The pong comes after everything sent before it has been handled.
    ws.send_json(json!({"type":"ping","t":1})).await;
    let seen = ws.until(|m| matches!(m, ServerMessage::Pong { .. })).await;
    let gaps: Vec<(Option<u32>, Option<u32>)> = seen
        .iter()
        .filter_map(|g| match g {
            Got::Event(ServerMessage::Error(e)) if e.code == protocol::ErrorCode::AudioGap => {
                Some((e.from, e.to))
            }
            _ => None,
        })
        .collect();
    assert_eq!(gaps, [(Some(10), Some(1009))]);
}

/// After `playback.position` and `response.cancel`, heardText is the played prefix.
#[tokio::test]
async fn heard_text_is_the_played_prefix_after_cancel() {
    let mut ws = connect().await;
    ws.start(16000, 1, 24000).await;
    ws.until_audio(0).await;
    // Let about 2 s of audio go out (the server paces output to real time).
    tokio::time::sleep(Duration::from_millis(1700)).await;
    ws.send_json(json!({"type":"playback.position","turnId":0,"playedMs":1500}))
        .await;
    tokio::time::sleep(Duration::from_millis(50)).await;
    ws.send_json(json!({"type":"response.cancel"})).await;
    let seen = ws.until(is_done(0)).await;
    let (status, text, heard, _) = done_of(&seen);
    assert_eq!(status, DoneStatus::Cancelled);
    assert!(
        text.starts_with(&heard),
        "{heard:?} is not a prefix of {text:?}"
    );
    assert!(
        !heard.is_empty() && heard.len() < text.len(),
        "{heard:?} / {text:?}"
    );
}

/// A typed turn (`input.text`) is a complete user turn.
#[tokio::test]
async fn typed_turn_gets_a_response() {
    let mut ws = connect().await;
    ws.start(16000, 1, 16000).await;
    ws.until(is_done(0)).await;
    ws.send_json(json!({"type":"input.text","text":"I built a payment system in Rust."}))
        .await;
    let seen = ws.until(is_done(1)).await;
    assert_eq!(
        final_text(&seen).as_deref(),
        Some("I built a payment system in Rust.")
    );
    let (status, text, heard, _) = done_of(&seen);
    assert_eq!(status, DoneStatus::Completed);
    assert_eq!(text, heard);
}

/// Manual turn detection: audio is only a turn once committed; clear discards it.
#[tokio::test]
async fn manual_mode_commits_and_clears() {
    let mut ws = connect().await;
    ws.send_json(
        json!({"type":"session.start","input":{"sampleRate":16000},"turnDetection":{"mode":"manual"}}),
    )
    .await;
    ws.until(is_done(0)).await;
    let mut seq = 0;
    let noise = speech("This should be discarded.", 16000, 1);
    stream_audio(&mut ws, &mut seq, &noise, 16000, 1).await;
    ws.send_json(json!({"type":"input.clear"})).await;
    let audio = speech("I have five years of experience with Rust.", 16000, 1);
    stream_audio(&mut ws, &mut seq, &audio, 16000, 1).await;
    ws.send_json(json!({"type":"input.commit"})).await;
    let seen = ws.until(is_done(1)).await;
    let heard = words(&final_text(&seen).expect("final"));
    assert!(
        heard.contains("experience") && !heard.contains("discarded"),
        "{heard}"
    );
}
