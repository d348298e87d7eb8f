//! The integration test binary: one module per area, so the crate links once for all.

mod asr;
mod faults;
mod hostile;
mod llm;
mod props;
mod server;
mod util;
