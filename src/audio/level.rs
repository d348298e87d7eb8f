//! Signal levels: the crate's one RMS-in-dBFS measure (the VAD's frame energy, replay's
//! speech bounds) and where speech starts and ends in a recorded clip.

/// Level reported for digital silence (and an empty block), so the log never sees zero.
pub const SILENCE_DBFS: f32 = -100.0;

/// Mean square at [`SILENCE_DBFS`]: quieter blocks are clamped to it.
const SILENCE_POWER: f64 = 1e-10;

/// Analysis frame of [`speech_bounds`].
pub const SPEECH_FRAME_MS: u32 = 10;
/// Absolute floor of the speech threshold in [`speech_bounds`], dBFS.
pub const SPEECH_MIN_DBFS: f32 = -45.0;
/// Margin of the speech threshold over the noise floor in [`speech_bounds`], dB.
pub const SPEECH_FLOOR_MARGIN_DB: f32 = 15.0;

/// RMS level of a block in dBFS (a full-scale square wave is 0 dBFS), never below
/// [`SILENCE_DBFS`]. Non-finite samples count as silence, so one bad sample cannot turn
/// a whole block into NaN.
pub fn rms_dbfs(block: &[f32]) -> f32 {
    if block.is_empty() {
        return SILENCE_DBFS;
    }
    let sum: f64 = block
        .iter()
        .map(|&x| if x.is_finite() { f64::from(x) } else { 0.0 })
        .map(|x| x * x)
        .sum();
    let mean = sum / block.len() as f64;
    (10.0 * mean.max(SILENCE_POWER).log10()) as f32
}

/// The true end of speech in a mono signal, in samples (exclusive): the end of the last
/// 10 ms frame whose RMS is above `max(-45 dBFS, noise floor + 15 dB)`. The noise floor is
/// the 5th percentile of the frames' RMS, so trailing silence, room tone or hiss of any
/// constant level is not mistaken for speech, while a file that is speech from end to end
/// still finds its floor in the pauses between syllables. `None` when no frame is above
/// the threshold (silence, steady noise, a steady tone, empty input).
pub fn end_of_speech(mono: &[f32], rate: u32) -> Option<usize> {
    speech_bounds(mono, rate).map(|(_, end)| end)
}

/// Where speech starts and ends in a mono signal, in samples (`start` inclusive, `end`
/// exclusive): the first and last 10 ms frames above the threshold of [`end_of_speech`].
pub fn speech_bounds(mono: &[f32], rate: u32) -> Option<(usize, usize)> {
    let frame = (rate as usize * SPEECH_FRAME_MS as usize / 1000).max(1);
    let levels: Vec<f32> = mono.chunks(frame).map(rms_dbfs).collect();
    if levels.is_empty() {
        return None;
    }
    let mut sorted = levels.clone();
    sorted.sort_by(f32::total_cmp);
    let floor = sorted[sorted.len() / 20];
    let threshold = SPEECH_MIN_DBFS.max(floor + SPEECH_FLOOR_MARGIN_DB);
    let first = levels.iter().position(|&db| db > threshold)?;
    let last = levels.iter().rposition(|&db| db > threshold)?;
    Some((first * frame, ((last + 1) * frame).min(mono.len())))
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::audio::test_signals::{db_to_amp, noise, tone, utterance};

    #[test]
    fn rms_dbfs_levels() {
        assert_eq!(rms_dbfs(&[]), SILENCE_DBFS);
        assert_eq!(rms_dbfs(&[0.0; 160]), SILENCE_DBFS);
        assert!((rms_dbfs(&[1.0, -1.0]) - 0.0).abs() < 1e-4);
        let sine = tone(16000, 16000, 1.0);
        assert!((rms_dbfs(&sine) + 3.01).abs() < 0.05, "{}", rms_dbfs(&sine));
        assert_eq!(rms_dbfs(&[f32::NAN, f32::INFINITY]), SILENCE_DBFS);
    }

    #[test]
    fn end_of_speech_in_clean_audio() {
        for rate in [8000, 16000, 44100, 48000] {
            let s = utterance(rate, 200, 500, 800, None);
            let eos = end_of_speech(&s, rate).unwrap();
            let want = 700 * rate as usize / 1000;
            let frame = rate as usize / 100;
            assert!(
                eos >= want && eos <= want + frame,
                "rate {rate}: {eos} vs {want}"
            );
        }
    }

    #[test]
    fn end_of_speech_above_noise_floor() {
        let rate = 16000;
        // Quiet hiss: the -45 dBFS absolute floor decides.
        let s = utterance(rate, 300, 1000, 1000, Some(-60.0));
        let eos = end_of_speech(&s, rate).unwrap();
        assert!((1300 * 16..=1310 * 16).contains(&eos), "{eos}");
        // Loud room noise at -30 dBFS would pass -45: the floor + 15 dB rule must ignore it.
        let s = utterance(rate, 300, 1000, 1000, Some(-30.0));
        let eos = end_of_speech(&s, rate).unwrap();
        assert!((1300 * 16..=1310 * 16).contains(&eos), "{eos}");
    }

    #[test]
    fn end_of_speech_none_without_speech() {
        assert_eq!(end_of_speech(&[], 16000), None);
        assert_eq!(end_of_speech(&vec![0.0; 16000], 16000), None);
        // Steady loud noise is a floor, not speech.
        let n: Vec<f32> = noise(32000, 3).iter().map(|v| v * 0.2).collect();
        assert_eq!(end_of_speech(&n, 16000), None);
        // A quiet tone under -45 dBFS is not speech either.
        assert_eq!(
            end_of_speech(&tone(16000, 16000, db_to_amp(-50.0)), 16000),
            None
        );
    }

    #[test]
    fn end_of_speech_at_end_of_file_and_partial_frame() {
        // Speech-like (a 4 Hz syllable envelope) up to the last sample, no silence at all.
        let s: Vec<f32> = tone(16000 + 37, 16000, 0.3)
            .iter()
            .enumerate()
            .map(|(i, v)| {
                v * (std::f32::consts::PI * 4.0 * (i as f32 + 1000.0) / 16000.0)
                    .sin()
                    .abs()
            })
            .collect();
        assert_eq!(end_of_speech(&s, 16000), Some(s.len()));
        // Known limit: a signal with no dip 15 dB under its level (a steady tone) is
        // indistinguishable from steady noise, so it has no detectable end of speech.
        assert_eq!(end_of_speech(&tone(16000, 16000, 0.3), 16000), None);
        // Speech with only the last, partial frame loud.
        let mut s = vec![0.0; 16005];
        s[16001] = 0.9;
        assert_eq!(end_of_speech(&s, 16000), Some(16005));
    }
}
