//! WAV files (hound): reading any PCM/float WAV as mono f32, writing 16-bit mono.

use std::path::Path;

use super::resample::{ResampleError, resample_all};

/// Why a WAV file could not be used.
#[derive(Debug, thiserror::Error)]
pub enum WavError {
    /// hound could not read or write it.
    #[error("{path}: {source}")]
    Hound {
        /// The file.
        path: String,
        /// hound's error.
        source: hound::Error,
    },
    /// The file's audio could not be resampled.
    #[error("{path}: {source}")]
    Resample {
        /// The file.
        path: String,
        /// The resampler's error.
        source: ResampleError,
    },
}

/// A decoded clip: mono samples in -1..1 at `sample_rate`.
#[derive(Debug, Clone)]
pub struct Clip {
    /// Mono samples.
    pub samples: Vec<f32>,
    /// Their rate in Hz.
    pub sample_rate: u32,
    /// Channels in the file before the down-mix.
    pub channels: u16,
}

/// Reads a WAV file of any rate, channel count and sample format, down-mixed to mono.
pub fn read_mono(path: &Path) -> Result<Clip, WavError> {
    let err = |source| WavError::Hound {
        path: path.display().to_string(),
        source,
    };
    let mut reader = hound::WavReader::open(path).map_err(err)?;
    let spec = reader.spec();
    let channels = spec.channels.max(1) as usize;
    let interleaved: Vec<f32> = match spec.sample_format {
        hound::SampleFormat::Float => reader
            .samples::<f32>()
            .collect::<Result<_, _>>()
            .map_err(err)?,
        hound::SampleFormat::Int => {
            let scale = 1.0 / (1i64 << (spec.bits_per_sample.clamp(1, 32) - 1)) as f32;
            reader
                .samples::<i32>()
                .map(|s| s.map(|v| v as f32 * scale))
                .collect::<Result<_, _>>()
                .map_err(err)?
        }
    };
    let samples = interleaved
        .chunks(channels)
        .map(|f| f.iter().sum::<f32>() / channels as f32)
        .collect();
    Ok(Clip {
        samples,
        sample_rate: spec.sample_rate,
        channels: spec.channels,
    })
}

/// Reads a WAV file and converts it to mono at `rate` Hz.
pub fn read_mono_at(path: &Path, rate: u32) -> Result<Clip, WavError> {
    let clip = read_mono(path)?;
    let samples = resample_all(&clip.samples, clip.sample_rate, rate).map_err(|source| {
        WavError::Resample {
            path: path.display().to_string(),
            source,
        }
    })?;
    Ok(Clip {
        samples,
        sample_rate: rate,
        channels: clip.channels,
    })
}

/// Writes 16-bit mono PCM.
pub fn write_i16(path: &Path, samples: &[i16], rate: u32) -> Result<(), WavError> {
    let err = |source| WavError::Hound {
        path: path.display().to_string(),
        source,
    };
    let spec = hound::WavSpec {
        channels: 1,
        sample_rate: rate,
        bits_per_sample: 16,
        sample_format: hound::SampleFormat::Int,
    };
    let mut w = hound::WavWriter::create(path, spec).map_err(err)?;
    for &s in samples {
        w.write_sample(s).map_err(err)?;
    }
    w.finalize().map_err(err)
}
