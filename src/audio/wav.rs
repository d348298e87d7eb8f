//! WAV files (hound): the crate's one WAV reader, giving any PCM/float WAV either as
//! interleaved s16 at the file's own rate and channels (what a client sends) or as mono
//! f32 (what the ASR side and the measurements read); and 16-bit writers.

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

/// 16-bit PCM as a file holds it: interleaved samples at their own rate and channels.
#[derive(Debug, Clone, PartialEq)]
pub struct Interleaved {
    /// Interleaved samples.
    pub samples: Vec<i16>,
    /// Frames per second.
    pub rate: u32,
    /// Channels (at least 1).
    pub channels: u16,
}

impl Interleaved {
    /// Length in frames (samples per channel).
    pub fn frames(&self) -> usize {
        self.samples.len() / self.channels.max(1) as usize
    }

    /// The channels averaged into one, as f32 in -1..1.
    pub fn to_mono_f32(&self) -> Vec<f32> {
        super::i16_to_mono_f32(&self.samples, self.channels as usize)
    }
}

/// A file's samples as stored, before any conversion.
enum Stored {
    /// Integer samples of `bits` bits.
    Int { samples: Vec<i32>, bits: u16 },
    /// Float samples (nominally -1..1).
    Float(Vec<f32>),
}

fn hound_error(path: &Path) -> impl Fn(hound::Error) -> WavError + '_ {
    move |source| WavError::Hound {
        path: path.display().to_string(),
        source,
    }
}

/// Reads every sample of a WAV file, with its format.
fn read_stored(path: &Path) -> Result<(hound::WavSpec, Stored), WavError> {
    let err = hound_error(path);
    let mut reader = hound::WavReader::open(path).map_err(&err)?;
    let spec = reader.spec();
    let stored = match spec.sample_format {
        hound::SampleFormat::Float => Stored::Float(
            reader
                .samples::<f32>()
                .collect::<Result<_, _>>()
                .map_err(&err)?,
        ),
        hound::SampleFormat::Int => Stored::Int {
            samples: reader
                .samples::<i32>()
                .collect::<Result<_, _>>()
                .map_err(&err)?,
            bits: spec.bits_per_sample.clamp(1, 32),
        },
    };
    Ok((spec, stored))
}

/// Reads a WAV file as interleaved s16 at its own rate and channels. Integer samples of
/// any width are shifted to 16 bits (so a 16-bit file comes back bit for bit), float
/// samples clipped to -1..1 and scaled.
pub fn read_i16(path: &Path) -> Result<Interleaved, WavError> {
    let (spec, stored) = read_stored(path)?;
    let samples = match stored {
        Stored::Float(s) => super::f32_to_i16(&s),
        Stored::Int { samples, bits } => {
            let bits = i32::from(bits);
            samples
                .into_iter()
                .map(|v| {
                    if bits > 16 {
                        (v >> (bits - 16)) as i16
                    } else {
                        (v << (16 - bits)) as i16
                    }
                })
                .collect()
        }
    };
    let channels = spec.channels.max(1);
    let mut samples: Vec<i16> = samples;
    samples.truncate(samples.len() - samples.len() % channels as usize);
    Ok(Interleaved {
        samples,
        rate: spec.sample_rate,
        channels,
    })
}

/// Reads a WAV file of any rate, channel count and sample format, down-mixed to mono
/// (full precision: a 24-bit or float file keeps its resolution).
pub fn read_mono(path: &Path) -> Result<Clip, WavError> {
    let (spec, stored) = read_stored(path)?;
    let interleaved: Vec<f32> = match stored {
        Stored::Float(s) => s,
        Stored::Int { samples, bits } => {
            let scale = 1.0 / (1i64 << (bits - 1)) as f32;
            samples.into_iter().map(|v| v as f32 * scale).collect()
        }
    };
    let channels = spec.channels.max(1) as usize;
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
    write_interleaved(path, samples, rate, 1)
}

/// Writes 16-bit PCM of `channels` interleaved channels.
pub fn write_interleaved(
    path: &Path,
    samples: &[i16],
    rate: u32,
    channels: u16,
) -> Result<(), WavError> {
    let err = hound_error(path);
    let spec = hound::WavSpec {
        channels,
        sample_rate: rate,
        bits_per_sample: 16,
        sample_format: hound::SampleFormat::Int,
    };
    let mut w = hound::WavWriter::create(path, spec).map_err(&err)?;
    for &s in samples {
        w.write_sample(s).map_err(&err)?;
    }
    w.finalize().map_err(&err)
}

#[cfg(test)]
mod tests {
    use super::*;

    fn dir(name: &str) -> std::path::PathBuf {
        let d = std::env::temp_dir().join(format!("callgate-wav-{name}-{}", std::process::id()));
        let _ = std::fs::remove_dir_all(&d);
        std::fs::create_dir_all(&d).unwrap();
        d
    }

    #[test]
    fn both_views_of_one_file_agree() {
        let d = dir("views");
        let p = d.join("st.wav");
        let stereo = [i16::MAX, i16::MIN, 1000, -1000, 0, 2];
        write_interleaved(&p, &stereo, 8000, 2).unwrap();
        let pcm = read_i16(&p).unwrap();
        assert_eq!(pcm.samples, stereo, "16-bit comes back bit for bit");
        assert_eq!((pcm.rate, pcm.channels, pcm.frames()), (8000, 2, 3));
        let mono = read_mono(&p).unwrap();
        assert_eq!((mono.sample_rate, mono.channels), (8000, 2));
        assert_eq!(mono.samples.len(), 3);
        for (a, b) in mono.samples.iter().zip(pcm.to_mono_f32()) {
            assert!((a - b).abs() < 1e-4, "{a} vs {b}");
        }
        let _ = std::fs::remove_dir_all(&d);
    }
}
