//! Whisper log-mel features exactly as Pipecat feeds Smart Turn v3 (pure, no I/O).
//!
//! Pipecat 1.14.0 (`local_smart_turn_v3.py` and its vendored `_whisper_features.py`, a copy
//! of `transformers.WhisperFeatureExtractor(chunk_length=8)`) does, in order:
//! 1. keep the last 8 s of 16 kHz audio, or left-pad it with zeros to 8 s;
//! 2. normalise the waveform to zero mean and unit variance (`f32`, numpy's pairwise sums,
//!    `var + 1e-7`);
//! 3. reflect-pad 200 samples each side, frame with n_fft 400 / hop 160 and a periodic Hann
//!    window, take the power spectrum (in `f64`);
//! 4. project onto 80 Slaney-normalised Slaney-scale mel filters (0-8 kHz), floor at 1e-10,
//!    `log10`, drop the trailing frame (800 remain);
//! 5. clamp to `max - 8` over the whole window, then `(x + 4) / 4`.
//!
//! The model was trained on exactly these numbers, so every step is kept, including the
//! ones that look arbitrary (the normalisation of the zero padding, the dropped frame).

use std::sync::Arc;

use realfft::{RealFftPlanner, RealToComplex};

/// The sample rate the features (and the model) are defined at.
pub const SAMPLE_RATE: u32 = 16_000;

/// Samples the model sees: the last 8 s.
pub const WINDOW_SAMPLES: usize = 8 * SAMPLE_RATE as usize;

/// Mel bins per frame.
pub const N_MELS: usize = 80;

/// Frames per window (10 ms hop; the 801st frame of the centred STFT is dropped).
pub const N_FRAMES: usize = 800;

const N_FFT: usize = 400;
const HOP: usize = 160;
const N_BINS: usize = N_FFT / 2 + 1;
const MEL_FLOOR: f64 = 1e-10;
const NORM_VARIANCE_EPS: f32 = 1e-7;
/// Dynamic range kept below the window's loudest value, in log10 units (80 dB).
const DYNAMIC_RANGE: f64 = 8.0;

/// One triangular mel filter: its weights over FFT bins `first..first + weights.len()`
/// (the rest are zero; keeping only these makes the projection ~40x cheaper).
#[derive(Debug, Clone)]
struct MelFilter {
    first: usize,
    weights: Vec<f64>,
}

/// The feature extractor: an FFT plan, the window and the filter bank, built once.
pub struct LogMel {
    fft: Arc<dyn RealToComplex<f64>>,
    window: Vec<f64>,
    filters: Vec<MelFilter>,
}

impl std::fmt::Debug for LogMel {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("LogMel").finish_non_exhaustive()
    }
}

impl Default for LogMel {
    fn default() -> Self {
        Self::new()
    }
}

impl LogMel {
    /// Plans the FFT and builds the filter bank.
    pub fn new() -> Self {
        Self {
            fft: RealFftPlanner::<f64>::new().plan_fft_forward(N_FFT),
            window: periodic_hann(N_FFT),
            filters: sparse_filters(&slaney_filter_bank()),
        }
    }

    /// The model's input for `audio_16k` (mono, 16 kHz, -1..1): `N_MELS * N_FRAMES` values,
    /// mel-major (`[mel][frame]`, the layout of `input_features[0]`).
    pub fn features(&self, audio_16k: &[f32]) -> Vec<f32> {
        let window = normalized(&last_window(audio_16k));
        let padded = reflect_pad(&window, N_FFT / 2);
        let mut log_mel = self.log_mel_spectrogram(&padded);
        let max = log_mel.iter().copied().fold(f64::NEG_INFINITY, f64::max);
        let floor = max - DYNAMIC_RANGE;
        for v in &mut log_mel {
            *v = (v.max(floor) + 4.0) / 4.0;
        }
        log_mel.into_iter().map(|v| v as f32).collect()
    }

    /// `log10` mel energies of the first `N_FRAMES` frames of `padded`, mel-major.
    fn log_mel_spectrogram(&self, padded: &[f64]) -> Vec<f64> {
        let mut frame = self.fft.make_input_vec();
        let mut spectrum = self.fft.make_output_vec();
        let mut scratch = self.fft.make_scratch_vec();
        let mut power = vec![0.0f64; N_BINS];
        let mut out = vec![0.0f64; N_MELS * N_FRAMES];
        for t in 0..N_FRAMES {
            let samples = &padded[t * HOP..t * HOP + N_FFT];
            for ((dst, &x), &w) in frame.iter_mut().zip(samples).zip(&self.window) {
                *dst = x * w;
            }
            self.fft
                .process_with_scratch(&mut frame, &mut spectrum, &mut scratch)
                .expect("buffers come from the plan, so their lengths match");
            for (p, c) in power.iter_mut().zip(&spectrum) {
                *p = c.norm_sqr();
            }
            for (m, filter) in self.filters.iter().enumerate() {
                let bins = &power[filter.first..filter.first + filter.weights.len()];
                let energy: f64 = bins.iter().zip(&filter.weights).map(|(p, w)| p * w).sum();
                out[m * N_FRAMES + t] = energy.max(MEL_FLOOR).log10();
            }
        }
        out
    }
}

/// The last `WINDOW_SAMPLES` of `audio`, left-padded with zeros when shorter.
fn last_window(audio: &[f32]) -> Vec<f32> {
    let tail = &audio[audio.len().saturating_sub(WINDOW_SAMPLES)..];
    let mut window = vec![0.0f32; WINDOW_SAMPLES - tail.len()];
    window.extend_from_slice(tail);
    window
}

/// Zero mean, unit variance, computed as numpy computes `(x - x.mean()) / sqrt(x.var() +
/// 1e-7)` on `f32`: the same pairwise sums, all in `f32`. Any other rounding moves the
/// quietest mel bins by ~1e-5, and the int8 model turns that into probability changes of
/// up to 0.03.
fn normalized(x: &[f32]) -> Vec<f64> {
    let n = x.len() as f32;
    let mean = numpy_pairwise_sum(x) / n;
    let squares: Vec<f32> = x.iter().map(|&v| (v - mean) * (v - mean)).collect();
    let var = numpy_pairwise_sum(&squares) / n;
    let std = (var + NORM_VARIANCE_EPS).sqrt();
    x.iter().map(|&v| f64::from((v - mean) / std)).collect()
}

/// numpy's `add.reduce` on contiguous `f32` (`pairwise_sum` in its loops_utils.h): below 8
/// values a plain sum, up to 128 eight interleaved accumulators, above that the two halves
/// (split at a multiple of 8) summed separately.
fn numpy_pairwise_sum(a: &[f32]) -> f32 {
    const BLOCK: usize = 128;
    let n = a.len();
    if n < 8 {
        return a.iter().fold(0.0, |sum, &v| sum + v);
    }
    if n <= BLOCK {
        let mut r = [0.0f32; 8];
        r.copy_from_slice(&a[..8]);
        let whole = n - n % 8;
        for chunk in a[8..whole].chunks_exact(8) {
            for (acc, &v) in r.iter_mut().zip(chunk) {
                *acc += v;
            }
        }
        let head = ((r[0] + r[1]) + (r[2] + r[3])) + ((r[4] + r[5]) + (r[6] + r[7]));
        return a[whole..].iter().fold(head, |sum, &v| sum + v);
    }
    let half = n / 2 - (n / 2) % 8;
    numpy_pairwise_sum(&a[..half]) + numpy_pairwise_sum(&a[half..])
}

/// numpy's `pad(mode="reflect")`: the edge sample is not repeated.
fn reflect_pad(x: &[f64], pad: usize) -> Vec<f64> {
    let n = x.len();
    let mut out = Vec::with_capacity(n + 2 * pad);
    out.extend((1..=pad).rev().map(|i| x[i]));
    out.extend_from_slice(x);
    out.extend((1..=pad).map(|i| x[n - 1 - i]));
    out
}

/// The periodic Hann window (`torch.hann_window`, `np.hanning(n + 1)[:-1]`).
fn periodic_hann(n: usize) -> Vec<f64> {
    (0..n)
        .map(|i| 0.5 - 0.5 * (2.0 * std::f64::consts::PI * i as f64 / n as f64).cos())
        .collect()
}

/// The dense filter bank, `[mel][bin]`: the one the Whisper converter writes into ggml files
/// (Slaney scale and area norm over 0-8 kHz; computed in `f64`, stored `f32`, which moves a
/// log-mel value by under 1e-7).
fn slaney_filter_bank() -> Vec<Vec<f64>> {
    crate::asr::convert::mel_filterbank(N_MELS)
        .chunks(N_BINS)
        .map(|row| row.iter().map(|&w| f64::from(w)).collect())
        .collect()
}

fn sparse_filters(dense: &[Vec<f64>]) -> Vec<MelFilter> {
    dense
        .iter()
        .map(|row| {
            let first = row.iter().position(|&w| w != 0.0).unwrap_or(0);
            let end = row.iter().rposition(|&w| w != 0.0).map_or(first, |i| i + 1);
            MelFilter {
                first,
                weights: row[first..end].to_vec(),
            }
        })
        .collect()
}

#[cfg(test)]
mod tests {
    use super::*;

    /// The golden signal, also built by the Python that produced [`PIPECAT_VALUES`]: a 440 Hz
    /// tone under a slow envelope plus LCG noise, 3 s long, with 0.5 s of digital silence.
    fn golden_signal() -> Vec<f32> {
        let mut state: u64 = 12345;
        (0..48_000)
            .map(|i| {
                state = (state * 1_664_525 + 1_013_904_223) % (1 << 32);
                let noise = state as f64 / 4_294_967_296.0 - 0.5;
                let t = i as f64 / 16_000.0;
                let tone = 0.4
                    * (2.0 * std::f64::consts::PI * 440.0 * t).sin()
                    * (std::f64::consts::PI * t / 3.0).sin();
                if (16_000..24_000).contains(&i) {
                    0.0
                } else {
                    (tone + 0.1 * noise) as f32
                }
            })
            .collect()
    }

    /// `(mel, frame, value)` from Pipecat 1.14.0's `compute_whisper_log_mel_features` on
    /// [`golden_signal`] left-padded to 8 s (scripts/smart-turn-check compares whole clips).
    const PIPECAT_VALUES: [(usize, usize, f32); 15] = [
        (0, 0, -0.05909438),
        (1, 520, 0.8741364),
        (6, 650, 1.380187),
        (7, 700, 0.740721),
        (20, 650, 1.066348),
        (27, 720, 0.6236329),
        (50, 650, 0.7443157),
        (79, 790, 0.8942429),
        (8, 499, 0.07462712),
        (8, 500, 0.5638815),
        (8, 501, 0.683505),
        (30, 610, -0.1154591),
        (30, 700, 0.9054872),
        (70, 799, 0.8085319),
        (33, 799, 0.8546018),
    ];

    #[test]
    fn matches_pipecat_on_the_golden_signal() {
        let features = LogMel::new().features(&golden_signal());
        assert_eq!(features.len(), N_MELS * N_FRAMES);
        for (mel, frame, want) in PIPECAT_VALUES {
            let got = features[mel * N_FRAMES + frame];
            assert!(
                (got - want).abs() < 1e-4,
                "[{mel}][{frame}]: {got} vs {want}"
            );
        }
        let sum: f64 = features.iter().map(|&v| v as f64).sum();
        assert!((sum - 12_549.83).abs() < 0.5, "sum {sum}");
    }

    #[test]
    fn short_audio_is_left_padded_and_long_audio_keeps_its_end() {
        let mel = LogMel::new();
        let clip = golden_signal();
        let mut padded = vec![0.0; WINDOW_SAMPLES - clip.len()];
        padded.extend_from_slice(&clip);
        assert_eq!(mel.features(&clip), mel.features(&padded));
        let mut long = vec![0.3f32; 20_000];
        long.extend_from_slice(&padded);
        assert_eq!(mel.features(&long), mel.features(&padded));
    }

    #[test]
    fn silence_is_the_floor_everywhere() {
        let features = LogMel::new().features(&[0.0; 1600]);
        // log10(1e-10) = -10, and (-10 + 4) / 4 = -1.5.
        assert!(features.iter().all(|&v| v == -1.5));
    }

    #[test]
    fn a_tone_peaks_in_its_mel_band_and_the_range_is_clamped() {
        let tone: Vec<f32> = (0..WINDOW_SAMPLES)
            .map(|i| (2.0 * std::f32::consts::PI * 1000.0 * i as f32 / 16_000.0).sin())
            .collect();
        let features = LogMel::new().features(&tone);
        let frame = 400;
        let column: Vec<f32> = (0..N_MELS)
            .map(|m| features[m * N_FRAMES + frame])
            .collect();
        let peak = (0..N_MELS)
            .max_by(|&a, &b| column[a].total_cmp(&column[b]))
            .unwrap_or(0);
        let filters = slaney_filter_bank();
        let bin_1k = 1000 / 40;
        let best = (0..N_MELS)
            .max_by(|&a, &b| filters[a][bin_1k].total_cmp(&filters[b][bin_1k]))
            .unwrap_or(0);
        assert_eq!(peak, best);
        let max = features.iter().copied().fold(f32::MIN, f32::max);
        let min = features.iter().copied().fold(f32::MAX, f32::min);
        // Clamped 8 log10 units below the maximum, then divided by 4.
        assert!((max - min - 2.0).abs() < 1e-5, "range {}", max - min);
    }

    #[test]
    fn each_filter_has_unit_area() {
        // Only the upper bands span enough 40 Hz bins for the sampled sum to approach the
        // triangle's area (below 1 kHz a band is narrower than two bins).
        for (m, row) in slaney_filter_bank().iter().enumerate().skip(60) {
            let area: f64 = row.iter().sum::<f64>() * 40.0;
            assert!((area - 1.0).abs() < 0.05, "filter {m}: area {area}");
        }
    }

    #[test]
    fn sparse_filters_keep_every_weight() {
        let dense = slaney_filter_bank();
        for (row, sparse) in dense.iter().zip(sparse_filters(&dense)) {
            let mut rebuilt = vec![0.0; N_BINS];
            rebuilt[sparse.first..sparse.first + sparse.weights.len()]
                .copy_from_slice(&sparse.weights);
            assert_eq!(&rebuilt, row);
        }
    }

    #[test]
    fn reflect_pad_mirrors_without_the_edge() {
        let padded = reflect_pad(&[1.0, 2.0, 3.0, 4.0], 2);
        assert_eq!(padded, [3.0, 2.0, 1.0, 2.0, 3.0, 4.0, 3.0, 2.0]);
    }

    #[test]
    fn periodic_hann_starts_at_zero_and_peaks_mid_window() {
        let w = periodic_hann(N_FFT);
        assert_eq!(w[0], 0.0);
        assert!((w[N_FFT / 2] - 1.0).abs() < 1e-15);
        assert!((w[1] - w[N_FFT - 1]).abs() < 1e-15);
    }

    #[test]
    fn pairwise_sum_rounds_like_numpy() {
        // float32 1e8 + 1 + ... : a left-to-right f32 sum loses every 1; numpy's pairwise
        // sum adds the ones among themselves first.
        let mut a = vec![1.0f32; 300];
        a[0] = 1e8;
        assert_eq!(a.iter().sum::<f32>(), 1e8);
        assert_eq!(numpy_pairwise_sum(&a), 100_000_288.0); // numpy: np.float32 array, .sum()
        assert_eq!(numpy_pairwise_sum(&[0.5; 7]), 3.5);
        assert_eq!(numpy_pairwise_sum(&[]), 0.0);
    }

    #[test]
    fn normalization_gives_zero_mean_unit_variance() {
        let x: Vec<f32> = golden_signal();
        let y = normalized(&x);
        let mean = y.iter().sum::<f64>() / y.len() as f64;
        let var = y.iter().map(|v| (v - mean).powi(2)).sum::<f64>() / y.len() as f64;
        assert!(
            mean.abs() < 1e-6 && (var - 1.0).abs() < 1e-5,
            "{mean} {var}"
        );
    }
}
