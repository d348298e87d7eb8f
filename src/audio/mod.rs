//! Audio: sequencing, resampling, voice activity detection (adaptive energy or Silero),
//! signal levels, WAV files.

pub mod energy;
pub mod level;
pub mod resample;
pub mod sequencer;
pub mod silero;
pub mod vad;
pub mod wav;

#[cfg(test)]
pub(crate) mod test_signals;

/// The rate whisper (and so the whole ASR side) works at.
pub const ASR_SAMPLE_RATE: u32 = 16_000;

/// Converts interleaved 16-bit PCM to mono f32 in -1..1, averaging the channels.
pub fn i16_to_mono_f32(samples: &[i16], channels: usize) -> Vec<f32> {
    let channels = channels.max(1);
    samples
        .chunks(channels)
        .map(|frame| frame.iter().map(|&s| s as f32).sum::<f32>() / (channels as f32 * 32768.0))
        .collect()
}

/// Down-mixes interleaved 16-bit PCM to mono without leaving the integer domain, so a mono
/// stream passes through bit-exact (recordings must equal what the client sent).
pub fn downmix_i16(samples: &[i16], channels: usize) -> Vec<i16> {
    if channels <= 1 {
        return samples.to_vec();
    }
    samples
        .chunks(channels)
        .map(|f| (f.iter().map(|&s| s as i32).sum::<i32>() / f.len() as i32) as i16)
        .collect()
}

/// Converts f32 samples to 16-bit PCM, clipping out-of-range values.
pub fn f32_to_i16(samples: &[f32]) -> Vec<i16> {
    samples
        .iter()
        .map(|&s| (s.clamp(-1.0, 1.0) * 32767.0).round() as i16)
        .collect()
}
