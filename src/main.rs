//! The `callgate` binary: subcommands over the library.

mod cli;

fn main() -> std::process::ExitCode {
    cli::main()
}
