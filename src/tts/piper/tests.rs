use std::time::{Duration, Instant};

use super::*;

fn voice_json() -> String {
    serde_json::json!({
        "audio": {"sample_rate": 22050},
        "espeak": {"voice": "en-us"},
        "inference": {"noise_scale": 0.667, "length_scale": 1.0, "noise_w": 0.8},
        "phoneme_id_map": {"_": [0], "^": [1], "$": [2], " ": [3], ",": [8], ".": [10],
                           "h": [20], "ə": [59], "ˈ": [120], "ab": [99]}
    })
    .to_string()
}

#[test]
fn runs_group_clauses_up_to_the_limit() {
    let c = |p: &str, e| (p.to_owned(), e);
    let clauses = [
        c("aaaa", Some(',')),
        c("bbbb", Some(',')),
        c("cccc", Some('.')),
    ];
    assert_eq!(group_runs(&clauses, 100), ["aaaa, bbbb, cccc."]);
    assert_eq!(group_runs(&clauses, 11), ["aaaa, bbbb,", "cccc."]);
    // A clause over the limit is still spoken, alone.
    assert_eq!(group_runs(&[c("aaaaaaaaaa", None)], 4), ["aaaaaaaaaa"]);
    assert!(group_runs(&[c("", Some('.'))], 4).is_empty());
}

#[test]
fn ids_are_framed_and_padded_and_unknown_symbols_dropped() {
    let voice = Voice::parse(&voice_json(), Path::new("models/x-medium.onnx")).expect("parse");
    assert_eq!(voice.name, "x-medium");
    assert_eq!(voice.scales, [0.667, 1.0, 0.8]);
    // '?' is not in this voice's map.
    assert_eq!(
        voice.input_ids("hˈə, ?"),
        [1, 0, 20, 0, 120, 0, 59, 0, 8, 0, 3, 0, 2]
    );
    // A multi-character key cannot be one phoneme: it is ignored, not an error.
    assert!(!voice.ids.values().any(|v| v == &vec![99]));
    let no_pad = voice_json().replace("\"_\"", "\"u\"");
    assert!(Voice::parse(&no_pad, Path::new("v.onnx")).is_err());
}

#[test]
fn pcm_is_scaled_to_full_scale_without_overflow() {
    assert_eq!(to_pcm(&[0.0, 0.5, -0.5]), [0, 32767, -32767]);
    // Near-silence is not blown up into noise.
    assert!(to_pcm(&[0.001]).iter().all(|s| s.abs() < 4000));
    assert!(to_pcm(&[]).is_empty());
}

async fn engine() -> PiperSynthesizer {
    PiperSynthesizer::new(PiperConfig::default())
        .await
        .unwrap_or_else(|e| panic!("the Piper voice loads (scripts/fetch-models): {e}"))
}

async fn say(tts: &PiperSynthesizer, text: &str) -> Speech {
    let start = Instant::now();
    let speech = tts
        .synthesize(text.to_owned(), CancellationToken::new(), Urgency::Now)
        .await
        .expect("synthesis");
    eprintln!(
        "piper: {} chars -> {:.2} s of audio in {:?}",
        text.len(),
        speech.duration().as_secs_f64(),
        start.elapsed()
    );
    speech
}

fn rms(samples: &[i16]) -> f64 {
    let sum: f64 = samples.iter().map(|&s| f64::from(s).powi(2)).sum();
    (sum / samples.len().max(1) as f64).sqrt()
}

#[tokio::test]
async fn a_sentence_becomes_seconds_of_audible_speech() {
    let tts = engine().await;
    assert_eq!(tts.voice(), "piper:en_US-joe-medium");
    let speech = say(&tts, "I have five years of experience with Rust.").await;
    assert_eq!(speech.sample_rate, 22050);
    let secs = speech.duration().as_secs_f64();
    assert!((1.5..=5.0).contains(&secs), "{secs} s");
    assert!(
        rms(&speech.samples) > 1000.0,
        "rms {}",
        rms(&speech.samples)
    );
    let empty = say(&tts, " ... ").await;
    assert!(empty.samples.is_empty());
}

#[tokio::test]
async fn a_long_sentence_is_cut_into_runs_and_cancel_stops_between_them() {
    let tts = engine().await;
    let long = "First, I measured the service under load, then I read the traces, \
                then I found the lock everyone waited on, and finally I split it in two."
        .to_string();
    let solo = say(&tts, &long).await;
    assert!(
        solo.duration() > Duration::from_secs(4),
        "{:?}",
        solo.duration()
    );
    let cancel = CancellationToken::new();
    let job = tts.synthesize(long, cancel.clone(), Urgency::Ahead);
    let started = Instant::now();
    let canceller = async {
        tokio::time::sleep(Duration::from_millis(30)).await;
        cancel.cancel();
    };
    let (result, ()) = tokio::join!(job, canceller);
    assert_eq!(result, Err(TtsError::Cancelled));
    assert!(
        started.elapsed() < Duration::from_millis(500),
        "{:?}",
        started.elapsed()
    );
    // The pool is not stuck: the next sentence comes out.
    assert!(say(&tts, "Still here.").await.duration() > Duration::from_millis(400));
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn concurrent_callers_get_their_own_audio_and_share_one_pool() {
    let tts = engine().await;
    let again = engine().await;
    assert!(Arc::ptr_eq(&tts.pool, &again.pool));
    let texts = ["Yes.", "Tell me about a hard bug you had to track down."];
    let mut tasks = Vec::new();
    for i in 0..6 {
        let tts = tts.clone();
        let text = texts[i % 2].to_owned();
        tasks.push(tokio::spawn(async move {
            tts.synthesize(text, CancellationToken::new(), Urgency::Now)
                .await
        }));
    }
    for (i, task) in tasks.into_iter().enumerate() {
        let speech = task.await.expect("task").expect("synthesis");
        let secs = speech.duration().as_secs_f64();
        let range = if i % 2 == 0 { 0.3..1.5 } else { 1.8..5.0 };
        assert!(range.contains(&secs), "caller {i}: {secs} s");
    }
}

#[tokio::test]
async fn a_missing_voice_says_how_to_fetch_it() {
    let e = PiperSynthesizer::new(PiperConfig {
        model: "models/no-such-voice.onnx".into(),
        ..PiperConfig::default()
    })
    .await
    .expect_err("missing");
    assert!(e.to_string().contains("scripts/fetch-models"), "{e}");
}
