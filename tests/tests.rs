//! The integration test binary: one module per area, so the crate links once for all.

mod admission;
mod asr;
mod bench;
mod browser;
mod cluster;
mod config;
mod eot;
mod faults;
mod hostile;
mod llm;
mod load;
mod mic;
mod props;
mod realtime;
mod report;
mod server;
mod tasks;
mod trust;
mod util;
mod vad;
