//! The bench's PNG (plotters, bitmap backend): the latency distribution of each stage at
//! the first concurrency level (one cumulative curve per stage), and voice-to-voice
//! against concurrency across the sweep.
//!
//! Text needs a TrueType font; it is read at run time from the system's DejaVu Sans
//! (Debian `fonts-dejavu-core`, installed by scripts/setup) rather than compiled in, so the
//! build does not depend on a font file.

use std::path::Path;

use plotters::prelude::*;

use super::Level;

/// Where DejaVu Sans is found (Debian and Fedora layouts).
const FONT_PATHS: &[&str] = &[
    "/usr/share/fonts/truetype/dejavu/DejaVuSans.ttf",
    "/usr/share/fonts/dejavu/DejaVuSans.ttf",
    "/usr/share/fonts/dejavu-sans-fonts/DejaVuSans.ttf",
];

/// Why the plot could not be drawn.
#[derive(Debug, thiserror::Error)]
pub enum PlotError {
    /// No usable font.
    #[error("no font for the plot: install fonts-dejavu-core (looked for {0})")]
    NoFont(String),
    /// plotters failed (e.g. the file could not be written).
    #[error("plot {path}: {message}")]
    Draw {
        /// The file.
        path: String,
        /// What went wrong.
        message: String,
    },
}

/// Registers DejaVu Sans as plotters' "sans-serif", once per process. Public because
/// plotters' font table is shared by the whole build: with the `ab_glyph` feature on, the
/// criterion benches' own charts need it too.
pub fn register_font() -> Result<(), PlotError> {
    static REGISTERED: std::sync::OnceLock<bool> = std::sync::OnceLock::new();
    let ok = REGISTERED.get_or_init(|| {
        FONT_PATHS.iter().any(|p| {
            std::fs::read(p).is_ok_and(|bytes| {
                // plotters keeps fonts for the life of the process and wants 'static bytes.
                let bytes: &'static [u8] = Box::leak(bytes.into_boxed_slice());
                plotters::style::register_font("sans-serif", FontStyle::Normal, bytes).is_ok()
            })
        })
    });
    if *ok {
        Ok(())
    } else {
        Err(PlotError::NoFont(FONT_PATHS.join(", ")))
    }
}

/// The stages drawn as distributions, with each turn's value.
pub fn stage_values(level: &Level) -> Vec<(&'static str, Vec<u64>)> {
    let turns: Vec<_> = level.calls.iter().flat_map(|c| &c.turns).collect();
    let pick = |f: &dyn Fn(&crate::client::replay::TurnReport) -> Option<u64>| -> Vec<u64> {
        let mut v: Vec<u64> = turns.iter().filter_map(|t| f(t)).collect();
        v.sort_unstable();
        v
    };
    let stages: Vec<(&'static str, Vec<u64>)> = vec![
        ("voice-to-voice (client)", pick(&|t| t.voice_to_voice_ms)),
        ("endpointMs", pick(&|t| t.latency.endpoint_ms)),
        ("asrMs", pick(&|t| t.latency.asr_ms)),
        ("llmFirstTokenMs", pick(&|t| t.latency.llm_first_token_ms)),
        ("ttsFirstAudioMs", pick(&|t| t.latency.tts_first_audio_ms)),
        ("firstAudioMs", pick(&|t| t.latency.first_audio_ms)),
    ];
    stages.into_iter().filter(|(_, v)| !v.is_empty()).collect()
}

/// Draws the PNG: 1200 x 1000 pixels, two panels.
pub fn draw(path: &Path, levels: &[Level]) -> Result<(), PlotError> {
    register_font()?;
    let err = |e: &dyn std::fmt::Display| PlotError::Draw {
        path: path.display().to_string(),
        message: e.to_string(),
    };
    let root = BitMapBackend::new(path, (1200, 1000)).into_drawing_area();
    root.fill(&WHITE).map_err(|e| err(&e))?;
    let (top, bottom) = root.split_vertically(500);
    if let Some(first) = levels.first() {
        distribution(&top, first).map_err(|e| err(&e))?;
    }
    sweep(&bottom, levels).map_err(|e| err(&e))?;
    root.present().map_err(|e| err(&e))?;
    Ok(())
}

type Area<'a> = DrawingArea<BitMapBackend<'a>, plotters::coord::Shift>;
type DrawResult =
    Result<(), DrawingAreaErrorKind<<BitMapBackend<'static> as DrawingBackend>::ErrorType>>;

/// One cumulative curve per stage: the share of turns at or under each latency.
fn distribution(area: &Area, level: &Level) -> DrawResult {
    let stages = stage_values(level);
    let x_max = stages
        .iter()
        .filter_map(|(_, v)| v.last())
        .max()
        .map_or(1000, |&m| m.div_ceil(100) * 100)
        .max(100);
    let mut chart = ChartBuilder::on(area)
        .caption(
            format!(
                "Latency per stage, concurrency {} ({} calls): share of turns at or under",
                level.summary.concurrency, level.summary.calls
            ),
            ("sans-serif", 22),
        )
        .margin(15)
        .x_label_area_size(40)
        .y_label_area_size(55)
        .build_cartesian_2d(0u64..x_max, 0f64..100f64)?;
    chart
        .configure_mesh()
        .x_desc("ms")
        .y_desc("% of turns")
        .y_label_formatter(&|y| format!("{y:.0}"))
        .label_style(("sans-serif", 15))
        .draw()?;
    for (i, (name, values)) in stages.iter().enumerate() {
        let color = Palette99::pick(i).to_rgba();
        let n = values.len() as f64;
        // A step curve: at each value the share jumps to include it.
        let mut points = vec![(0u64, 0.0)];
        for (k, &v) in values.iter().enumerate() {
            points.push((v, k as f64 / n * 100.0));
            points.push((v, (k + 1) as f64 / n * 100.0));
        }
        points.push((x_max, 100.0));
        chart
            .draw_series(LineSeries::new(points, color.stroke_width(2)))?
            .label(format!("{name} (n={})", values.len()))
            .legend(swatch(color.stroke_width(2)));
    }
    legend(&mut chart, SeriesLabelPosition::LowerRight)
}

/// Voice-to-voice p50/p90/p99 (and the server's first-audio and ASR p90) per level against
/// concurrency, with the 1 s p90 target.
fn sweep(area: &Area, levels: &[Level]) -> DrawResult {
    // Concurrency on a log2 axis drawn as a linear one over log2(C), so the labels land
    // on the doubling steps of a sweep (1, 2, 4, 8, 16).
    let x_of = |c: usize| (c.max(1) as f64).log2();
    let x_max = levels
        .iter()
        .map(|l| x_of(l.summary.concurrency))
        .fold(1.0, f64::max);
    let y_max = levels
        .iter()
        .filter_map(|l| l.summary.voice_to_voice_ms.p99)
        .max()
        .unwrap_or(1000)
        .max(1100) as f64
        * 1.1;
    let mut chart = ChartBuilder::on(area)
        .caption("Latency against concurrent calls (ms)", ("sans-serif", 22))
        .margin(15)
        .x_label_area_size(40)
        .y_label_area_size(55)
        .build_cartesian_2d(-0.25f64..x_max + 0.25, 0f64..y_max)?;
    chart
        .configure_mesh()
        .x_desc("concurrent calls")
        .y_desc("ms")
        .x_labels(x_max.ceil() as usize + 2)
        .x_label_formatter(&|x| {
            if (x - x.round()).abs() < 1e-6 && *x >= 0.0 {
                format!("{}", 1u64 << x.round() as u32)
            } else {
                String::new()
            }
        })
        .y_label_formatter(&|y| format!("{y:.0}"))
        .label_style(("sans-serif", 15))
        .draw()?;
    type Pick = fn(&super::LevelSummary) -> Option<u64>;
    let series: [(&str, Pick); 5] = [
        ("voice-to-voice p50", |s| s.voice_to_voice_ms.p50),
        ("voice-to-voice p90", |s| s.voice_to_voice_ms.p90),
        ("voice-to-voice p99", |s| s.voice_to_voice_ms.p99),
        ("server firstAudioMs p90", |s| s.first_audio_ms.p90),
        ("server asrMs p90", |s| s.asr_ms.p90),
    ];
    for (i, (name, pick)) in series.iter().enumerate() {
        let color = Palette99::pick(i).to_rgba();
        let points: Vec<(f64, f64)> = levels
            .iter()
            .filter_map(|l| Some((x_of(l.summary.concurrency), pick(&l.summary)? as f64)))
            .collect();
        chart
            .draw_series(LineSeries::new(points.clone(), color.stroke_width(2)))?
            .label(*name)
            .legend(swatch(color.stroke_width(2)));
        chart.draw_series(
            points
                .into_iter()
                .map(|p| Circle::new(p, 4, color.filled())),
        )?;
    }
    let target = RGBColor(200, 0, 0);
    chart
        .draw_series(LineSeries::new(
            vec![(-0.25, 1000.0), (x_max + 0.25, 1000.0)],
            target.stroke_width(1),
        ))?
        .label("target: p90 <= 1000 ms")
        .legend(swatch(target.stroke_width(1)));
    legend(&mut chart, SeriesLabelPosition::UpperLeft)
}

/// The legend box, where it hides the least of the curves.
fn legend<'a, X, Y>(
    chart: &mut ChartContext<'a, BitMapBackend<'a>, Cartesian2d<X, Y>>,
    position: SeriesLabelPosition,
) -> DrawResult
where
    X: Ranged,
    Y: Ranged,
{
    chart
        .configure_series_labels()
        .position(position)
        .label_font(("sans-serif", 15))
        .background_style(WHITE.mix(0.85))
        .border_style(BLACK)
        .draw()
}

/// A legend entry: a short line in the series' colour and width.
fn swatch(style: ShapeStyle) -> impl Fn((i32, i32)) -> PathElement<(i32, i32)> {
    move |(x, y)| PathElement::new(vec![(x, y), (x + 20, y)], style)
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::client::bench::{CallRecord, LevelSummary, stats::Summary};
    use crate::client::replay::TurnStatus;
    use crate::protocol::Latency;

    fn level(concurrency: usize, v2v: &[u64]) -> Level {
        let turns = v2v
            .iter()
            .map(|&ms| {
                let mut t = crate::client::bench::report::tests::turn(
                    1,
                    TurnStatus::Completed,
                    Some(ms),
                    "yes",
                );
                t.latency = Latency {
                    endpoint_ms: Some(500),
                    asr_ms: Some(ms / 2),
                    first_audio_ms: Some(ms - 500),
                    ..Latency::default()
                };
                t
            })
            .collect();
        Level {
            summary: LevelSummary {
                concurrency,
                calls: v2v.len(),
                voice_to_voice_ms: Summary::of(v2v.iter().copied()),
                ..LevelSummary::default()
            },
            calls: vec![CallRecord {
                call: 0,
                file: "a.wav".into(),
                reference: None,
                transcript: "yes".into(),
                wer: None,
                word_errors: None,
                cut_off: false,
                turns,
                ..CallRecord::default()
            }],
        }
    }

    #[test]
    fn draws_a_png_of_a_sweep() {
        let levels = [
            level(1, &[600, 700, 650]),
            level(4, &[800, 1200]),
            level(16, &[3000]),
        ];
        let stages = stage_values(&levels[0]);
        let names: Vec<_> = stages.iter().map(|(n, _)| *n).collect();
        // Stages nobody reported are left out; values come sorted.
        assert_eq!(
            names,
            [
                "voice-to-voice (client)",
                "endpointMs",
                "asrMs",
                "firstAudioMs"
            ]
        );
        assert_eq!(stages[0].1, [600, 650, 700]);
        let path = std::env::temp_dir().join(format!("callgate-plot-{}.png", std::process::id()));
        draw(&path, &levels).expect("plot drawn");
        let bytes = std::fs::read(&path).expect("png written");
        assert_eq!(&bytes[..8], b"\x89PNG\r\n\x1a\n");
        let _ = std::fs::remove_file(&path);
    }
}
