//! callgate: a voice mock-call gateway. A candidate speaks, an AI interviewer answers out loud.
//!
//! # Layout
//! Data flows one way: protocol adapter -> call driver -> session -> ingest -> ASR -> LLM ->
//! TTS -> outbox -> adapter. The call core speaks its own events ([`call::events`]); the
//! callgate.v1 codec ([`call::v1`]) is the only code that knows the wire.
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
//! - [`call`]: the call core (session, ingest, turn-taking, turn tasks), its events, the
//!   driver generic over the socket, the callgate.v1 codec, start policy, limits, recorder.
//! - [`onnx`]: ONNX Runtime, loaded at run time once per process, and its sessions.
//! - [`metrics`]: process-wide counters and latency histograms, exported on `/metrics`.
//! - [`eot`]: end of turn: the Smart Turn v3 acoustic model and its log-mel features.
//! - [`config`]: every `serve` setting, defined once (flags, TOML, env, checks, docs).
//! - [`server`]: the listener (hyper HTTP + the WebSocket upgrade on one port), routes, the
//!   embedded browser page, auth, shutdown.
//! - [`schema`]: the JSON Schema and TypeScript declarations generated from [`protocol`].
#![deny(missing_docs)]

pub mod asr;
pub mod audio;
pub mod call;
pub mod client;
pub mod cluster;
pub mod config;
pub mod eot;
pub mod llm;
pub mod metrics;
pub mod onnx;
pub mod protocol;
pub mod report;
pub mod schema;
pub mod server;
pub mod tts;
