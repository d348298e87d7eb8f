//! Synthetic signals for unit tests (levels, end of speech, replay's pacing): seeded noise,
//! tones and silence-tone-silence utterances, so no audio file is committed.

/// Deterministic white noise in -1..1.
pub fn noise(n: usize, seed: u64) -> Vec<f32> {
    let mut x = seed.wrapping_mul(6364136223846793005).wrapping_add(1);
    (0..n)
        .map(|_| {
            x = x
                .wrapping_mul(6364136223846793005)
                .wrapping_add(1442695040888963407);
            ((x >> 33) as f32 / (1u64 << 31) as f32) * 2.0 - 1.0
        })
        .collect()
}

/// A 220 Hz sine; `amp` is linear peak (a sine at amplitude a has RMS a/sqrt(2)).
pub fn tone(n: usize, rate: u32, amp: f32) -> Vec<f32> {
    (0..n)
        .map(|i| amp * (2.0 * std::f32::consts::PI * 220.0 * i as f32 / rate as f32).sin())
        .collect()
}

/// Linear amplitude of a level in dB.
pub fn db_to_amp(db: f32) -> f32 {
    10f32.powf(db / 20.0)
}

/// silence(pre) + tone(speech) + silence(post), each in ms, plus optional noise at
/// `noise_db` RMS.
pub fn utterance(
    rate: u32,
    pre: usize,
    speech: usize,
    post: usize,
    noise_db: Option<f32>,
) -> Vec<f32> {
    let r = rate as usize;
    let mut s = vec![0.0; pre * r / 1000];
    s.extend(tone(speech * r / 1000, rate, 0.3));
    s.extend(vec![0.0; post * r / 1000]);
    if let Some(db) = noise_db {
        // Uniform noise in -a..a has RMS a/sqrt(3).
        let a = db_to_amp(db) * 3f32.sqrt();
        let n = noise(s.len(), 7);
        for (v, n) in s.iter_mut().zip(n) {
            *v += a * n;
        }
    }
    s
}
