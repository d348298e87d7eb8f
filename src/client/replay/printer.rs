//! Live output of a replay on stderr: a progress bar while the file streams, partial
//! transcripts on one overwritten line, the AI's text as it streams, and full lines (final
//! transcripts, errors, latencies) above the bar.

use std::io::{IsTerminal, Write};

use indicatif::{ProgressBar, ProgressDrawTarget, ProgressStyle};

/// What is on the current stderr line and not yet ended by a newline.
#[derive(PartialEq)]
enum Open {
    None,
    Partial,
    AiText(u32),
}

/// Live output on stderr. Partials overwrite one dim line on a terminal; while the
/// progress bar is up they become its message; lines go above the bar.
pub(super) struct Printer {
    quiet: bool,
    tty: bool,
    bar: Option<ProgressBar>,
    open: Open,
}

impl Printer {
    pub(super) fn new(quiet: bool) -> Self {
        Self {
            quiet,
            tty: std::io::stderr().is_terminal(),
            bar: None,
            open: Open::None,
        }
    }

    pub(super) fn start_bar(&mut self, bytes: u64, name: &str) {
        if self.quiet || !self.tty {
            return;
        }
        self.close_open();
        let bar = ProgressBar::with_draw_target(Some(bytes), ProgressDrawTarget::stderr());
        if let Ok(style) = ProgressStyle::with_template(
            "{prefix} [{bar:30}] {bytes}/{total_bytes} {elapsed} {wide_msg:.dim}",
        ) {
            bar.set_style(style.progress_chars("=> "));
        }
        bar.set_prefix(name.to_owned());
        self.bar = Some(bar);
    }

    pub(super) fn advance(&self, bytes: u64) {
        if let Some(bar) = &self.bar {
            bar.inc(bytes);
        }
    }

    pub(super) fn end_bar(&mut self) {
        if let Some(bar) = self.bar.take() {
            bar.finish_and_clear();
        }
    }

    pub(super) fn close_open(&mut self) {
        let mut err = std::io::stderr().lock();
        match self.open {
            Open::None => {}
            Open::Partial => {
                let _ = write!(err, "\r\x1b[2K");
            }
            Open::AiText(_) => {
                let _ = writeln!(err);
            }
        }
        let _ = err.flush();
        self.open = Open::None;
    }

    /// A full line; `always` lines (errors) print even when quiet.
    pub(super) fn line(&mut self, text: &str, always: bool) {
        if self.quiet && !always {
            return;
        }
        self.close_open();
        match &self.bar {
            Some(bar) => bar.println(text),
            None => eprintln!("{text}"),
        }
    }

    pub(super) fn partial(&mut self, text: &str) {
        if self.quiet {
            return;
        }
        if let Some(bar) = &self.bar {
            bar.set_message(text.to_owned());
        } else if self.tty {
            if matches!(self.open, Open::AiText(_)) {
                self.close_open();
            }
            let mut err = std::io::stderr().lock();
            let _ = write!(err, "\r\x1b[2K\x1b[2m  ... {text}\x1b[0m");
            let _ = err.flush();
            self.open = Open::Partial;
        }
        // Not a terminal: partials would only be noise in a log; the final follows.
    }

    /// AI text streamed inline; while the bar is up, it is buffered by the caller instead.
    pub(super) fn ai_delta(&mut self, turn: u32, delta: &str) -> bool {
        if self.quiet || self.bar.is_some() {
            return false;
        }
        if self.open != Open::AiText(turn) {
            self.close_open();
            eprint!("AI [turn {turn}]: ");
            self.open = Open::AiText(turn);
        }
        eprint!("{delta}");
        let _ = std::io::stderr().flush();
        true
    }

    pub(super) fn is_open_ai(&self, turn: u32) -> bool {
        self.open == Open::AiText(turn)
    }
}
