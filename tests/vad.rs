//! Voice activity detection on the real Silero model (scripts/fetch-models; a missing model
//! fails these tests with that advice, never skips them), on espeak-ng answers in the room
//! noises docs/vad.md measures: steady fan-like noise, noise that starts with the speech,
//! and babble behind the speaker.

use std::path::Path;
use std::sync::OnceLock;

use callgate::audio::silero::{self, SileroModel};
use callgate::audio::vad::{SpeechDetector, Vad, VadConfig, VadEvent};

use crate::util::{
    active_rms, add_noise, babble, espeak_speech, repo_root, room_noise, spoken_clauses,
};

const RATE: usize = 16_000;

const ANSWER: &str = "At my last job, I was responsible for the billing service, which \
                      handled about two million invoices a month.";

fn silero() -> SpeechDetector {
    static MODEL: OnceLock<SileroModel> = OnceLock::new();
    let model = MODEL.get_or_init(|| {
        let path = repo_root().join(silero::DEFAULT_MODEL);
        SileroModel::load(Path::new(&path), 1).unwrap_or_else(|e| panic!("{e}"))
    });
    SpeechDetector::Silero(model.clone())
}

/// Speech starts and stops (ms) over `audio`, fed in 20 ms chunks as clients send it.
fn segments(detector: &SpeechDetector, audio: &[f32]) -> Vec<(u64, Option<u64>)> {
    let mut vad = Vad::with_detector(VadConfig::default(), detector);
    let mut out: Vec<(u64, Option<u64>)> = Vec::new();
    for chunk in audio.chunks(320) {
        for event in vad.process(chunk) {
            match event {
                VadEvent::SpeechStarted { at_ms } => out.push((at_ms, None)),
                VadEvent::SpeechStopped { speech_end_ms, .. } => {
                    if let Some(last) = out.last_mut() {
                        last.1 = Some(speech_end_ms);
                    }
                }
            }
        }
    }
    out
}

/// The answer (with 400 ms pauses at its commas) after 1.5 s of lead-in and before 3 s of
/// tail; returns the audio, the speech's span in ms and its level.
fn answer_scene() -> (Vec<f32>, (u64, u64), f32) {
    let speech = spoken_clauses(ANSWER, "en-us", |_| 400);
    let lead = 1500 * RATE / 1000;
    let mut audio = vec![0.0; lead];
    audio.extend_from_slice(&speech);
    audio.extend(std::iter::repeat_n(0.0, 3 * RATE));
    let span = (1500, 1500 + (speech.len() * 1000 / RATE) as u64);
    (audio, span, active_rms(&speech))
}

fn assert_one_segment_near(found: &[(u64, Option<u64>)], span: (u64, u64), late_ms: u64) {
    assert_eq!(
        found.len(),
        1,
        "one turn expected, got {found:?} for {span:?}"
    );
    let (start, end) = found[0];
    let end = end.unwrap_or_else(|| panic!("the turn never ended: {found:?}"));
    assert!(start.abs_diff(span.0) <= 100, "onset {start} for {span:?}");
    assert!(
        end + 50 >= span.1 && end <= span.1 + late_ms,
        "end {end} for {span:?}"
    );
}

#[test]
fn silero_keeps_an_answer_whole_in_fan_noise_where_energy_splits_it() {
    let (mut audio, span, level) = answer_scene();
    let len = audio.len();
    add_noise(
        &mut audio,
        &room_noise("pinknoise", 1500, 70),
        0,
        len,
        level,
        15.0,
    );
    assert_one_segment_near(&segments(&silero(), &audio), span, 250);
    let energy = segments(&SpeechDetector::Energy, &audio);
    assert!(
        energy.len() > 1,
        "the energy detector held together: {energy:?}"
    );
}

#[test]
fn silero_ends_the_turn_when_noise_that_began_with_the_speech_runs_on() {
    let (mut audio, span, level) = answer_scene();
    let from = span.0 as usize * RATE / 1000;
    let len = (span.1 - span.0 + 2500) as usize * RATE / 1000;
    add_noise(
        &mut audio,
        &room_noise("pinknoise", 1500, 70),
        from,
        len,
        level,
        20.0,
    );
    assert_one_segment_near(&segments(&silero(), &audio), span, 250);
    // The energy detector hears the noise as the voice until it stops (2.5 s on), or longer.
    let energy = segments(&SpeechDetector::Energy, &audio);
    assert!(
        energy
            .iter()
            .any(|&(_, end)| end.is_none_or(|e| e > span.1 + 2000)),
        "{energy:?}"
    );
}

#[test]
fn babble_behind_the_speaker_neither_starts_a_turn_nor_holds_one_open() {
    let noise = babble(70);
    let (mut audio, span, level) = answer_scene();
    let len = audio.len();
    add_noise(&mut audio, &noise, 0, len, level, 15.0);
    assert_one_segment_near(&segments(&silero(), &audio), span, 600);
    // Alone, at the same level, for 30 s: at most one brief false start.
    let mut alone = vec![0.0; 30 * RATE];
    add_noise(&mut alone, &noise, 0, 30 * RATE, level, 15.0);
    let found = segments(&silero(), &alone);
    assert!(found.len() <= 1, "{found:?}");
    assert!(
        found.iter().all(|&(s, e)| e.is_some_and(|e| e - s < 1000)),
        "{found:?}"
    );
}

#[test]
fn a_one_word_answer_is_heard_in_time_for_barge_in() {
    // "Wait." is about 300 ms: barge-in (200 ms of speech) must still fire on it.
    let word = espeak_speech("Wait.", "en-gb");
    let mut audio = vec![0.0; RATE];
    audio.extend_from_slice(&word);
    audio.extend(std::iter::repeat_n(0.0, RATE));
    let mut vad = Vad::with_detector(VadConfig::default(), &silero());
    let mut barge_in_at = None;
    for chunk in audio.chunks(320) {
        vad.process(chunk);
        if barge_in_at.is_none() && vad.is_speaking() && vad.speech_ms() >= 200 {
            barge_in_at = Some(vad.position_ms());
        }
    }
    let at = barge_in_at.expect("barge-in never fired on \"Wait.\"");
    assert!(
        (1200..=1350).contains(&at),
        "barge-in at {at} ms, speech from 1000 ms"
    );
}
