//! The `callgate` binary: subcommands over the library.
fn main() {}
