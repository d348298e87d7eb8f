//! All integration tests, one binary (one link, one shared model load per area).

mod hostile;
mod server;
