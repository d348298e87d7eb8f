//! The audio a replay sends: a WAV file as callgate.v1 can carry it, and the barge-in clip
//! in the file's own format.

use std::path::Path;

use super::BargeIn;
use crate::audio::f32_to_i16;
use crate::audio::resample::{ResampleError, resample_all};
use crate::audio::wav::{self, Interleaved};
use crate::client::ClientError;
use crate::protocol::SAMPLE_RATE_RANGE;

/// Reads a WAV file for sending ([`wav::read_i16`]: int or float samples of any width
/// become s16). The file's rate and channels are kept (the server resamples and
/// down-mixes) except where the protocol cannot carry them: more than 2 channels are
/// down-mixed to mono, and a rate outside 8-48 kHz is resampled to the nearest end of
/// that range.
pub fn load_wav(path: &Path) -> Result<Interleaved, ClientError> {
    let file = wav::read_i16(path).map_err(|e| ClientError::file(path, e))?;
    fit_to_protocol(file).map_err(|e| ClientError::file(path, e))
}

fn fit_to_protocol(mut audio: Interleaved) -> Result<Interleaved, ResampleError> {
    if audio.channels > 2 {
        audio.samples = f32_to_i16(&audio.to_mono_f32());
        audio.channels = 1;
    }
    if !SAMPLE_RATE_RANGE.contains(&audio.rate) {
        let to = audio
            .rate
            .clamp(*SAMPLE_RATE_RANGE.start(), *SAMPLE_RATE_RANGE.end());
        let resampled = resample_all(&audio.to_mono_f32(), audio.rate, to)?;
        audio = Interleaved {
            samples: f32_to_i16(&resampled),
            rate: to,
            channels: 1,
        };
    }
    Ok(audio)
}

/// The barge-in clip in the file's own input format (rate and channels).
pub(super) fn barge_audio(b: &BargeIn, file: &Interleaved) -> Result<Interleaved, ResampleError> {
    let mono = f32_to_i16(&resample_all(&b.samples, b.rate, file.rate)?);
    let samples = mono
        .iter()
        .flat_map(|&s| std::iter::repeat_n(s, file.channels as usize))
        .collect();
    Ok(Interleaved {
        samples,
        rate: file.rate,
        channels: file.channels,
    })
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::audio::test_signals::tone;
    use crate::client::testing::{test_dir, write_wav};

    type Writer = hound::WavWriter<std::io::BufWriter<std::fs::File>>;

    /// An 8 kHz mono file in this sample format, its samples written by `samples`.
    fn write_one(
        path: &Path,
        bits_per_sample: u16,
        sample_format: hound::SampleFormat,
        samples: impl FnOnce(&mut Writer) -> hound::Result<()>,
    ) {
        let spec = hound::WavSpec {
            channels: 1,
            sample_rate: 8000,
            bits_per_sample,
            sample_format,
        };
        let mut w = hound::WavWriter::create(path, spec).unwrap();
        samples(&mut w).unwrap();
        w.finalize().unwrap();
    }

    #[test]
    fn load_wav_keeps_rate_and_channels() {
        let dir = test_dir("load");
        let p = dir.join("st.wav");
        write_wav(&p, 44100, 2, &tone(4410, 44100, 0.5));
        let a = load_wav(&p).unwrap();
        assert_eq!((a.rate, a.channels, a.frames()), (44100, 2, 4410));
        // 24-bit and float files become s16 at the same level.
        let p24 = dir.join("m24.wav");
        write_one(&p24, 24, hound::SampleFormat::Int, |w| {
            w.write_sample(1i32 << 22)
        });
        assert_eq!(load_wav(&p24).unwrap().samples, [16384]);
        let pf = dir.join("f.wav");
        write_one(&pf, 32, hound::SampleFormat::Float, |w| {
            w.write_sample(-2.0f32)?;
            w.write_sample(0.5f32)
        });
        assert_eq!(load_wav(&pf).unwrap().samples, [-32767, 16384]);
        // A rate the protocol cannot carry is resampled into range, mono.
        let p96 = dir.join("hi.wav");
        write_wav(&p96, 96000, 2, &tone(9600, 96000, 0.5));
        let a = load_wav(&p96).unwrap();
        assert_eq!((a.rate, a.channels), (48000, 1));
        assert!((a.frames() as i64 - 4800).abs() < 50, "{}", a.frames());
        assert!(matches!(
            load_wav(&dir.join("missing.wav")),
            Err(ClientError::File { .. })
        ));
        let _ = std::fs::remove_dir_all(&dir);
    }

    #[test]
    fn barge_clip_takes_the_files_format() {
        let file = Interleaved {
            samples: vec![0; 8000 * 2],
            rate: 8000,
            channels: 2,
        };
        let b = BargeIn {
            samples: tone(1600, 16000, 0.5),
            rate: 16000,
            after: std::time::Duration::ZERO,
            backchannel: false,
        };
        let clip = barge_audio(&b, &file).unwrap();
        assert_eq!((clip.rate, clip.channels), (8000, 2));
        assert!((clip.frames() as i64 - 800).abs() < 20, "{}", clip.frames());
        assert!(clip.to_mono_f32().iter().any(|&s| s.abs() > 0.3));
    }
}
