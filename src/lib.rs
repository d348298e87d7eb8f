//! callgate: a voice mock-call gateway. A candidate speaks, an AI interviewer answers out loud.
//!
//! # Layout
//! Data flows one way: transport -> call session -> audio ingest -> ASR -> LLM -> TTS -> transport.
//!
//! - [`protocol`]: the callgate.v1 wire types and the binary audio frame codec (pure, no I/O).
//! - [`audio`]: sequencer (dedupe, reorder, gaps), resampler (rubato), VAD, WAV helpers.
//! - [`asr`]: the `Transcriber` trait, the whisper engine and its worker pool, and the
//!   converter that turns registry-shipped CTranslate2 Whisper weights into ggml.
//! - [`llm`]: the `ChatModel` trait, the scripted interviewer, the OpenAI-compatible client,
//!   and the sentence splitter that feeds synthesis.
//! - [`client`]: the callgate.v1 client: a reusable call connection, the `replay` CLI
//!   test harness and the `bench` turn-latency benchmark.
//! - [`tts`]: the `Synthesizer` trait and the in-process espeak-ng engine.
//! - [`call`]: one call's session state machine, its turn tasks, limits, persistence.
//! - [`metrics`]: process-wide counters and latency histograms, exported on `/metrics`.
//! - [`server`]: the listener (HTTP + WebSocket on one port), the embedded browser page,
//!   auth, shutdown.
//! - [`schema`]: the JSON Schema and TypeScript declarations generated from [`protocol`].
#![deny(missing_docs)]

pub mod asr;
pub mod audio;
pub mod call;
pub mod client;
pub mod config;
pub mod llm;
pub mod metrics;
pub mod protocol;
pub mod schema;
pub mod server;
pub mod tts;
