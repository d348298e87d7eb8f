//! The integration test binary: one module per area (add `mod server;` etc. here), so the
//! crate links once for all of them.

mod asr;
mod util;
