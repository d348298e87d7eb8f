//! Speech recognition: the `Transcriber` trait, whisper engine, ggml converter.
