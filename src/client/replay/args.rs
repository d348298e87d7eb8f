//! The command line of `callgate replay`, and the streaming flags it shares with
//! `callgate bench`.

use std::path::PathBuf;
use std::time::Duration;

use super::{DEFAULT_CHUNK_MS, DEFAULT_TAIL_TIMEOUT, Protocol, ReplayOptions};
use crate::client::{TurnModeName, TurnTaking};
use crate::protocol::DEFAULT_OUTPUT_SAMPLE_RATE;

/// Command-line arguments of `callgate replay`.
#[derive(Debug, Clone, clap::Args)]
pub struct ReplayArgs {
    /// Server endpoint, e.g. ws://127.0.0.1:8080/v1/call
    pub url: String,
    /// WAV files (any rate, mono or stereo); one call each.
    #[arg(required = true)]
    pub files: Vec<PathBuf>,
    /// How each call is streamed.
    #[command(flatten)]
    pub stream: StreamArgs,
    /// Write the AI's audio per turn to DIR/<file-stem>.turn<N>.wav.
    #[arg(long = "out", value_name = "DIR")]
    pub out: Option<PathBuf>,
    /// Print the reports as JSON lines on stdout at the end.
    #[arg(long)]
    pub json: bool,
    /// After each call, print the server's report of it (timing, pace, fillers, pauses;
    /// GET /v1/calls/<id>/report), as JSON with --json.
    #[arg(long)]
    pub report: bool,
    /// No progress bar and no live transcripts.
    #[arg(long, short)]
    pub quiet: bool,
}

/// How a call is streamed: the flags `replay` and `bench` share.
#[derive(Debug, Clone, clap::Args)]
pub struct StreamArgs {
    /// Stream as fast as the server acknowledges instead of in real time.
    #[arg(long)]
    pub fast: bool,
    /// Input chunk length in milliseconds.
    #[arg(long, default_value_t = DEFAULT_CHUNK_MS, value_parser = clap::value_parser!(u32).range(10..=1000))]
    pub chunk_ms: u32,
    /// Output sample rate asked of the server.
    #[arg(long, default_value_t = DEFAULT_OUTPUT_SAMPLE_RATE, value_parser = clap::value_parser!(u32).range(8000..=48000))]
    pub output_rate: u32,
    /// AI persona (session.start `persona`).
    #[arg(long)]
    pub persona: Option<String>,
    /// Turn detection (turnDetection.mode); server default when omitted.
    #[arg(long, value_enum, value_name = "MODE")]
    pub turn_detection: Option<TurnModeName>,
    /// Silence that ends a turn (turnDetection.silenceMs); server default when omitted.
    #[arg(long, value_parser = clap::value_parser!(u32).range(100..=5000))]
    pub silence_ms: Option<u32>,
    /// smart: the least silence that ends a turn (turnDetection.minSilenceMs).
    #[arg(long, value_parser = clap::value_parser!(u32).range(100..=5000))]
    pub min_silence_ms: Option<u32>,
    /// smart: the most silence before a turn ends (turnDetection.maxSilenceMs).
    #[arg(long, value_parser = clap::value_parser!(u32).range(100..=10000))]
    pub max_silence_ms: Option<u32>,
    /// Seconds to wait after the file for the response to finish before failing the turn.
    #[arg(long, value_name = "SECONDS", default_value_t = DEFAULT_TAIL_TIMEOUT.as_secs_f64())]
    pub tail_timeout: f64,
    /// Do not resume a call whose connection drops (by default the client reconnects with
    /// session.resume for up to 20 s and resends the audio the server did not get).
    #[arg(long)]
    pub no_resume: bool,
    /// The wire protocol: callgate.v1 (URL .../v1/call) or the OpenAI Realtime protocol
    /// (URL .../v1/realtime; the file is sent as 24 kHz PCM, resampled if need be).
    #[arg(long, value_enum, default_value = "v1")]
    pub protocol: Protocol,
    /// --protocol realtime: no turn detection; the client commits and asks for the answer
    /// right after the chunk holding the end of speech (a push-to-talk release).
    #[arg(long)]
    pub push_to_talk: bool,
}

impl StreamArgs {
    /// Why these flags cannot run together, if they cannot.
    pub fn unsupported(&self) -> Option<&'static str> {
        match self.protocol {
            Protocol::V1 if self.push_to_talk => Some(
                "--push-to-talk is for --protocol realtime (callgate.v1 ends turns on the server)",
            ),
            Protocol::Realtime if self.turn_detection.is_some() && self.push_to_talk => {
                Some("--push-to-talk turns turn detection off: drop --turn-detection")
            }
            _ => None,
        }
    }

    /// Replay options for `url` streamed as these flags say (no files, no output folder).
    pub fn options(&self, url: String) -> ReplayOptions {
        ReplayOptions {
            fast: self.fast,
            chunk_ms: self.chunk_ms,
            output_rate: self.output_rate,
            persona: self.persona.clone(),
            silence_ms: self.silence_ms,
            turn_taking: TurnTaking {
                mode: self.turn_detection,
                silence_ms: None,
                min_silence_ms: self.min_silence_ms,
                max_silence_ms: self.max_silence_ms,
            },
            tail_timeout: Duration::try_from_secs_f64(self.tail_timeout)
                .unwrap_or(DEFAULT_TAIL_TIMEOUT),
            resume: !self.no_resume,
            protocol: self.protocol,
            push_to_talk: self.push_to_talk,
            ..ReplayOptions::new(url, Vec::new())
        }
    }
}

impl From<ReplayArgs> for ReplayOptions {
    fn from(a: ReplayArgs) -> Self {
        Self {
            files: a.files,
            out_dir: a.out,
            quiet: a.quiet,
            ..a.stream.options(a.url)
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[derive(clap::Parser)]
    struct TestCli {
        #[command(flatten)]
        args: ReplayArgs,
    }

    #[test]
    fn args_parse_and_convert() {
        use clap::Parser;
        let cli =
            TestCli::try_parse_from(["replay", "ws://h:1/v1/call", "a.wav", "b.wav"]).unwrap();
        assert!(!cli.args.json);
        let o = ReplayOptions::from(cli.args);
        assert_eq!(o.url, "ws://h:1/v1/call");
        assert_eq!(o.files, [PathBuf::from("a.wav"), PathBuf::from("b.wav")]);
        assert_eq!(
            (o.chunk_ms, o.output_rate, o.tail_timeout),
            (20, 24000, DEFAULT_TAIL_TIMEOUT)
        );
        assert!(
            !o.fast
                && !o.quiet
                && o.out_dir.is_none()
                && o.persona.is_none()
                && o.silence_ms.is_none()
        );
        let cli = TestCli::try_parse_from([
            "replay",
            "ws://h:1/v1/call",
            "a.wav",
            "--fast",
            "--out",
            "o",
            "--chunk-ms",
            "40",
            "--output-rate",
            "16000",
            "--persona",
            "interviewer",
            "--silence-ms",
            "300",
            "--json",
            "-q",
            "--tail-timeout",
            "2.5",
        ])
        .unwrap();
        assert!(cli.args.json);
        let o = ReplayOptions::from(cli.args);
        assert!(o.fast && o.quiet);
        assert_eq!(o.out_dir, Some(PathBuf::from("o")));
        assert_eq!(
            (o.chunk_ms, o.output_rate, o.silence_ms),
            (40, 16000, Some(300))
        );
        assert_eq!(o.persona.as_deref(), Some("interviewer"));
        assert_eq!(o.tail_timeout, Duration::from_millis(2500));
        assert!(TestCli::try_parse_from(["replay", "ws://h:1/v1/call"]).is_err());
        assert!(TestCli::try_parse_from(["replay", "u", "a.wav", "--silence-ms", "50"]).is_err());
        assert!(
            TestCli::try_parse_from(["replay", "u", "a.wav", "--output-rate", "96000"]).is_err()
        );
    }

    #[test]
    fn turn_detection_flags() {
        use clap::Parser;
        let o = ReplayOptions::from(
            TestCli::try_parse_from(["replay", "u", "a.wav"])
                .unwrap()
                .args,
        );
        assert_eq!(
            o.turn_detection(),
            TurnTaking::default(),
            "nothing sent unless asked"
        );
        let cli = TestCli::try_parse_from([
            "replay",
            "u",
            "a.wav",
            "--turn-detection",
            "smart",
            "--min-silence-ms",
            "250",
            "--max-silence-ms",
            "2500",
        ])
        .unwrap();
        let t = ReplayOptions::from(cli.args).turn_detection();
        assert_eq!(t.mode, Some(TurnModeName::Smart));
        assert_eq!(
            (t.min_silence_ms, t.max_silence_ms),
            (Some(250), Some(2500))
        );
        for mode in ["server_vad", "server-vad"] {
            let cli = TestCli::try_parse_from(["replay", "u", "a.wav", "--turn-detection", mode])
                .unwrap();
            assert_eq!(
                cli.args.stream.turn_detection,
                Some(TurnModeName::ServerVad)
            );
        }
        assert!(
            TestCli::try_parse_from(["replay", "u", "a.wav", "--turn-detection", "x"]).is_err()
        );
    }
}
