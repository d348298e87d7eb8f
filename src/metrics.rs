//! Process-wide counters and latency histograms, rendered as Prometheus text.

use std::fmt::Write as _;
use std::sync::atomic::{AtomicU64, Ordering};

/// Histogram bucket upper bounds in milliseconds.
const BUCKETS_MS: [u64; 12] = [
    25, 50, 100, 200, 300, 500, 750, 1000, 1500, 2500, 5000, 10000,
];

/// A cumulative latency histogram (lock-free).
#[derive(Default)]
pub struct Histogram {
    buckets: [AtomicU64; 12],
    count: AtomicU64,
    sum_ms: AtomicU64,
}

impl Histogram {
    /// Records one observation.
    pub fn observe(&self, ms: u64) {
        for (bound, bucket) in BUCKETS_MS.iter().zip(&self.buckets) {
            if ms <= *bound {
                bucket.fetch_add(1, Ordering::Relaxed);
            }
        }
        self.count.fetch_add(1, Ordering::Relaxed);
        self.sum_ms.fetch_add(ms, Ordering::Relaxed);
    }

    fn render(&self, out: &mut String, name: &str, stage: &str) {
        for (bound, bucket) in BUCKETS_MS.iter().zip(&self.buckets) {
            let _ = writeln!(
                out,
                "{name}_bucket{{stage=\"{stage}\",le=\"{}\"}} {}",
                *bound as f64 / 1000.0,
                bucket.load(Ordering::Relaxed)
            );
        }
        let count = self.count.load(Ordering::Relaxed);
        let _ = writeln!(
            out,
            "{name}_bucket{{stage=\"{stage}\",le=\"+Inf\"}} {count}"
        );
        let _ = writeln!(
            out,
            "{name}_sum{{stage=\"{stage}\"}} {}",
            self.sum_ms.load(Ordering::Relaxed) as f64 / 1000.0
        );
        let _ = writeln!(out, "{name}_count{{stage=\"{stage}\"}} {count}");
    }
}

/// Everything `/metrics` shows.
#[derive(Default)]
pub struct Metrics {
    /// Calls open now.
    pub calls_active: AtomicU64,
    /// Calls ever started.
    pub calls_total: AtomicU64,
    /// Responses that completed.
    pub turns_completed: AtomicU64,
    /// Responses cancelled (barge-in, response.cancel, hang-up).
    pub turns_cancelled: AtomicU64,
    /// Responses that failed on an engine error.
    pub turns_failed: AtomicU64,
    /// Protocol errors sent to clients.
    pub errors_sent: AtomicU64,
    /// Input audio gaps filled with silence.
    pub audio_gaps: AtomicU64,
    /// Calls ended because the client stopped reading.
    pub slow_clients: AtomicU64,
    /// End of speech to end-of-turn decision.
    pub endpoint: Histogram,
    /// Final transcription (what the turn waited for).
    pub asr: Histogram,
    /// LLM first token.
    pub llm_first_token: Histogram,
    /// First sentence synthesis.
    pub tts_first_audio: Histogram,
    /// End-of-turn decision to first audio frame.
    pub first_audio: Histogram,
    /// End-of-turn decision to response.done.
    pub total: Histogram,
}

impl Metrics {
    /// Records a finished response's latency breakdown.
    pub fn observe_latency(&self, l: &crate::protocol::Latency) {
        let pairs = [
            (l.endpoint_ms, &self.endpoint),
            (l.asr_ms, &self.asr),
            (l.llm_first_token_ms, &self.llm_first_token),
            (l.tts_first_audio_ms, &self.tts_first_audio),
            (l.first_audio_ms, &self.first_audio),
            (l.total_ms, &self.total),
        ];
        for (value, hist) in pairs {
            if let Some(ms) = value {
                hist.observe(ms);
            }
        }
    }

    /// Prometheus text exposition.
    pub fn render(&self) -> String {
        let mut out = String::new();
        let gauge = |out: &mut String, name: &str, help: &str, kind: &str, v: &AtomicU64| {
            let _ = writeln!(out, "# HELP {name} {help}\n# TYPE {name} {kind}");
            let _ = writeln!(out, "{name} {}", v.load(Ordering::Relaxed));
        };
        gauge(
            &mut out,
            "callgate_calls_active",
            "Calls open now.",
            "gauge",
            &self.calls_active,
        );
        gauge(
            &mut out,
            "callgate_calls_total",
            "Calls started.",
            "counter",
            &self.calls_total,
        );
        gauge(
            &mut out,
            "callgate_turns_completed_total",
            "AI responses completed.",
            "counter",
            &self.turns_completed,
        );
        gauge(
            &mut out,
            "callgate_turns_cancelled_total",
            "AI responses cancelled (barge-in, response.cancel, hang-up).",
            "counter",
            &self.turns_cancelled,
        );
        gauge(
            &mut out,
            "callgate_turns_failed_total",
            "AI responses failed by an engine error.",
            "counter",
            &self.turns_failed,
        );
        gauge(
            &mut out,
            "callgate_errors_total",
            "Protocol errors sent.",
            "counter",
            &self.errors_sent,
        );
        gauge(
            &mut out,
            "callgate_audio_gaps_total",
            "Input gaps filled with silence.",
            "counter",
            &self.audio_gaps,
        );
        gauge(
            &mut out,
            "callgate_slow_clients_total",
            "Calls ended because the client stopped reading.",
            "counter",
            &self.slow_clients,
        );
        let name = "callgate_turn_latency_seconds";
        let _ = writeln!(
            out,
            "# HELP {name} Turn latency per stage.\n# TYPE {name} histogram"
        );
        for (stage, hist) in [
            ("endpoint", &self.endpoint),
            ("asr", &self.asr),
            ("llm_first_token", &self.llm_first_token),
            ("tts_first_audio", &self.tts_first_audio),
            ("first_audio", &self.first_audio),
            ("total", &self.total),
        ] {
            hist.render(&mut out, name, stage);
        }
        out
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn renders_counters_and_histograms() {
        let m = Metrics::default();
        m.turns_completed.fetch_add(2, Ordering::Relaxed);
        m.first_audio.observe(120);
        let text = m.render();
        assert!(text.contains("callgate_turns_completed_total 2"));
        assert!(
            text.contains(
                "callgate_turn_latency_seconds_bucket{stage=\"first_audio\",le=\"0.2\"} 1"
            )
        );
        assert!(
            text.contains(
                "callgate_turn_latency_seconds_bucket{stage=\"first_audio\",le=\"0.1\"} 0"
            )
        );
        assert!(text.contains("callgate_turn_latency_seconds_count{stage=\"first_audio\"} 1"));
    }
}
