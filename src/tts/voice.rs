//! Which engine and voice a `--voice` value (or a persona's `voice`) means, and opening it.

use std::path::{Path, PathBuf};
use std::sync::Arc;

use super::cache::CachedVoice;
use super::{
    EspeakConfig, EspeakSynthesizer, PiperConfig, PiperSynthesizer, Synthesizer, TtsError,
};

/// A voice as named on the command line or in a persona.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum VoiceSpec {
    /// The Piper voice scripts/fetch-models installs when its files are there, else
    /// espeak-ng's default voice (`auto`, the default).
    Auto,
    /// A Piper voice: its `.onnx` file (`piper`, `piper:NAME` for `models/NAME.onnx`, or
    /// `piper:PATH.onnx`).
    Piper(PathBuf),
    /// An espeak-ng voice (`espeak:NAME`; a bare name such as `en-gb+f3` means the same).
    Espeak(String),
}

impl VoiceSpec {
    /// The default: `auto`.
    pub const DEFAULT: &'static str = "auto";

    /// Parses a voice name; never fails, since any other word is an espeak-ng voice, which
    /// is checked when it is opened.
    pub fn parse(name: &str) -> Self {
        let name = name.trim();
        match name.split_once(':') {
            None if name.is_empty() || name == "auto" => Self::Auto,
            None if name == "piper" => Self::Piper(PathBuf::from(super::piper::DEFAULT_MODEL)),
            None if name == "espeak" || name == "espeak-ng" => {
                Self::Espeak(super::espeak::DEFAULT_VOICE.into())
            }
            None => Self::Espeak(name.into()),
            Some(("piper", model)) => Self::Piper(piper_model(model)),
            Some(("espeak" | "espeak-ng", voice)) => Self::Espeak(voice.into()),
            Some(_) => Self::Espeak(name.into()),
        }
    }

    /// The engine this means on this machine now: `Ok` a Piper model, `Err` an espeak-ng
    /// voice.
    fn resolve(&self) -> Result<PathBuf, String> {
        match self {
            Self::Piper(model) => Ok(model.clone()),
            Self::Espeak(voice) => Err(voice.clone()),
            Self::Auto => {
                let model = PathBuf::from(super::piper::DEFAULT_MODEL);
                if model.is_file() {
                    return Ok(model);
                }
                tracing::warn!(
                    model = %model.display(),
                    "the Piper voice is not installed (scripts/fetch-models); speaking with espeak-ng"
                );
                Err(super::espeak::DEFAULT_VOICE.into())
            }
        }
    }
}

/// `NAME` is `models/NAME.onnx`; anything with a folder or the extension is a path.
fn piper_model(model: &str) -> PathBuf {
    if model.contains('/') || model.ends_with(".onnx") {
        PathBuf::from(model)
    } else {
        Path::new(super::piper::DEFAULT_MODEL).with_file_name(format!("{model}.onnx"))
    }
}

/// How voices are run, whichever is named.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct VoiceOptions {
    /// espeak-ng's speaking rate, words per minute.
    pub rate_wpm: u32,
    /// Piper's worker threads (shared with every other synthesizer of the same voice).
    pub piper_workers: usize,
    /// ONNX Runtime threads per Piper worker.
    pub piper_threads: usize,
    /// The most audio a Piper voice keeps of sentences it spoke, bytes (0: no cache).
    /// espeak-ng needs none: it takes a few ms a sentence.
    pub cache_bytes: usize,
}

/// Opens the voice `spec` names.
pub async fn open_voice(
    spec: &VoiceSpec,
    options: VoiceOptions,
) -> Result<Arc<dyn Synthesizer>, TtsError> {
    Ok(match spec.resolve() {
        Ok(model) => {
            let piper: Arc<dyn Synthesizer> = Arc::new(
                PiperSynthesizer::new(PiperConfig {
                    model,
                    workers: options.piper_workers,
                    threads: options.piper_threads,
                })
                .await?,
            );
            if options.cache_bytes == 0 {
                piper
            } else {
                Arc::new(CachedVoice::new(piper, options.cache_bytes))
            }
        }
        Err(voice) => Arc::new(
            EspeakSynthesizer::new(EspeakConfig {
                voice,
                rate_wpm: options.rate_wpm,
            })
            .await?,
        ),
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn names_mean_engines() {
        assert_eq!(VoiceSpec::parse("auto"), VoiceSpec::Auto);
        assert_eq!(VoiceSpec::parse(""), VoiceSpec::Auto);
        assert_eq!(
            VoiceSpec::parse("piper"),
            VoiceSpec::Piper("models/en_US-joe-medium.onnx".into())
        );
        assert_eq!(
            VoiceSpec::parse("piper:en_GB-alan-low"),
            VoiceSpec::Piper("models/en_GB-alan-low.onnx".into())
        );
        assert_eq!(
            VoiceSpec::parse("piper:/opt/v.onnx"),
            VoiceSpec::Piper("/opt/v.onnx".into())
        );
        assert_eq!(
            VoiceSpec::parse("espeak"),
            VoiceSpec::Espeak("en-us".into())
        );
        assert_eq!(
            VoiceSpec::parse("espeak:en-gb+f3"),
            VoiceSpec::Espeak("en-gb+f3".into())
        );
        // The names that worked before there was a second engine still do.
        assert_eq!(VoiceSpec::parse("en-us"), VoiceSpec::Espeak("en-us".into()));
        assert_eq!(
            VoiceSpec::parse("en-gb+f3"),
            VoiceSpec::Espeak("en-gb+f3".into())
        );
    }
}
