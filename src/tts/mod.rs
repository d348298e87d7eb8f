//! Speech synthesis: the `Synthesizer` trait and the espeak-ng engine.
