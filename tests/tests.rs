//! The integration test binary: one module per area, so the crate links once for all.

mod asr;
mod bench;
mod hostile;
mod llm;
mod server;
mod util;
