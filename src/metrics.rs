//! Process-wide counters and latency histograms, kept in a `prometheus-client` registry and
//! rendered in the Prometheus text format for `/metrics`.

use prometheus_client::encoding::{EncodeLabelSet, prometheus_text};
use prometheus_client::metrics::counter::Counter;
use prometheus_client::metrics::family::Family;
use prometheus_client::metrics::gauge::Gauge;
use prometheus_client::metrics::histogram::Histogram;
use prometheus_client::registry::Registry;

/// The `Content-Type` of [`Metrics::render`]'s text.
pub const CONTENT_TYPE: &str = prometheus_text::CONTENT_TYPE;

/// Histogram bucket upper bounds in seconds.
const BUCKETS_S: [f64; 12] = [
    0.025, 0.05, 0.1, 0.2, 0.3, 0.5, 0.75, 1.0, 1.5, 2.5, 5.0, 10.0,
];

/// The `stage` label of a turn latency.
#[derive(Clone, Debug, Hash, PartialEq, Eq, EncodeLabelSet)]
struct StageLabel {
    stage: &'static str,
}

fn latency_histogram() -> Histogram {
    Histogram::new(BUCKETS_S)
}

/// Everything `/metrics` shows. The fields are handles into [`Metrics::render`]'s registry.
pub struct Metrics {
    /// Calls open now.
    pub calls_active: Gauge,
    /// Calls ever started.
    pub calls_total: Counter,
    /// Responses that completed.
    pub turns_completed: Counter,
    /// Responses cancelled (barge-in, response.cancel, hang-up).
    pub turns_cancelled: Counter,
    /// Responses that failed on an engine error.
    pub turns_failed: Counter,
    /// Responses held because the candidate spoke over them.
    pub responses_paused: Counter,
    /// Held responses that went on after a backchannel.
    pub responses_resumed: Counter,
    /// Protocol errors sent to clients.
    pub errors_sent: Counter,
    /// Input audio gaps filled with silence.
    pub audio_gaps: Counter,
    /// Calls ended because the client stopped reading.
    pub slow_clients: Counter,
    /// Recording writes dropped because the disk fell behind (the call went on).
    pub recording_writes_dropped: Counter,
    /// Turn latency per stage (`callgate_turn_latency_seconds{stage=...}`).
    latency: Family<StageLabel, Histogram, fn() -> Histogram>,
    registry: Registry,
}

impl Default for Metrics {
    fn default() -> Self {
        let metrics = Self {
            calls_active: Gauge::default(),
            calls_total: Counter::default(),
            turns_completed: Counter::default(),
            turns_cancelled: Counter::default(),
            turns_failed: Counter::default(),
            responses_paused: Counter::default(),
            responses_resumed: Counter::default(),
            errors_sent: Counter::default(),
            audio_gaps: Counter::default(),
            slow_clients: Counter::default(),
            recording_writes_dropped: Counter::default(),
            latency: Family::new_with_constructor(latency_histogram),
            registry: Registry::default(),
        };
        metrics.registered()
    }
}

impl Metrics {
    /// Registers every metric under its exported name. Counter names get `_total` from the
    /// encoder, and help texts their final full stop.
    fn registered(mut self) -> Self {
        let r = &mut self.registry;
        r.register(
            "callgate_calls_active",
            "Calls open now",
            self.calls_active.clone(),
        );
        r.register("callgate_calls", "Calls started", self.calls_total.clone());
        let counters = [
            (
                "callgate_turns_completed",
                "AI responses completed",
                &self.turns_completed,
            ),
            (
                "callgate_turns_cancelled",
                "AI responses cancelled (barge-in, response.cancel, hang-up)",
                &self.turns_cancelled,
            ),
            (
                "callgate_turns_failed",
                "AI responses failed by an engine error",
                &self.turns_failed,
            ),
            (
                "callgate_responses_paused",
                "AI responses held because the candidate spoke over them",
                &self.responses_paused,
            ),
            (
                "callgate_responses_resumed",
                "Held AI responses that went on after a backchannel",
                &self.responses_resumed,
            ),
            ("callgate_errors", "Protocol errors sent", &self.errors_sent),
            (
                "callgate_audio_gaps",
                "Input gaps filled with silence",
                &self.audio_gaps,
            ),
            (
                "callgate_slow_clients",
                "Calls ended because the client stopped reading",
                &self.slow_clients,
            ),
            (
                "callgate_recording_writes_dropped",
                "Call recording writes dropped because the disk fell behind",
                &self.recording_writes_dropped,
            ),
        ];
        for (name, help, counter) in counters {
            r.register(name, help, counter.clone());
        }
        // Every stage is shown from the start, at zero, as dashboards expect.
        for stage in STAGES {
            drop(self.latency.get_or_create(&StageLabel { stage }));
        }
        r.register(
            "callgate_turn_latency_seconds",
            "Turn latency per stage",
            self.latency.clone(),
        );
        self
    }

    /// Records a finished response's latency breakdown.
    pub fn observe_latency(&self, l: &crate::protocol::Latency) {
        let values = [
            l.endpoint_ms,
            l.asr_ms,
            l.llm_first_token_ms,
            l.tts_first_audio_ms,
            l.first_audio_ms,
            l.total_ms,
        ];
        for (stage, value) in STAGES.into_iter().zip(values) {
            if let Some(ms) = value {
                self.latency
                    .get_or_create(&StageLabel { stage })
                    .observe(ms as f64 / 1000.0);
            }
        }
    }

    /// Prometheus text exposition (see [`CONTENT_TYPE`]).
    pub fn render(&self) -> String {
        let mut out = String::new();
        // Writing into a String cannot fail, and the registry holds only built-in metrics.
        let _ = prometheus_text::encode(&mut out, &self.registry);
        out
    }
}

/// The `stage` label values, in the order of [`Metrics::observe_latency`]'s fields.
const STAGES: [&str; 6] = [
    "endpoint",
    "asr",
    "llm_first_token",
    "tts_first_audio",
    "first_audio",
    "total",
];

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn renders_counters_and_histograms() {
        let m = Metrics::default();
        m.turns_completed.inc_by(2);
        m.observe_latency(&crate::protocol::Latency {
            first_audio_ms: Some(120),
            ..Default::default()
        });
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

    #[test]
    fn names_help_and_types_are_as_documented() {
        let m = Metrics::default();
        m.calls_active.inc();
        let text = m.render();
        for line in [
            "# HELP callgate_calls_active Calls open now.",
            "# TYPE callgate_calls_active gauge",
            "callgate_calls_active 1",
            "# TYPE callgate_calls_total counter",
            "callgate_calls_total 0",
            "callgate_errors_total 0",
            "callgate_audio_gaps_total 0",
            "callgate_slow_clients_total 0",
            "callgate_turns_cancelled_total 0",
            "callgate_turns_failed_total 0",
            "# TYPE callgate_turn_latency_seconds histogram",
            "callgate_turn_latency_seconds_bucket{stage=\"asr\",le=\"+Inf\"} 0",
            "callgate_turn_latency_seconds_bucket{stage=\"total\",le=\"10\"} 0",
        ] {
            assert!(text.lines().any(|l| l == line), "{line:?} missing:\n{text}");
        }
    }
}
