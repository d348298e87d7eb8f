//! Audio ingest: sequencing, resampling, voice activity detection, WAV files.

pub mod sequencer;
pub mod vad;
