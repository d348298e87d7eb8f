//! The report's charts as PNG (plotters, bitmap backend) for `callgate report --png DIR`:
//! `timeline.png` (the call as two lanes, pauses marked) and `answers.png` (rate and
//! fillers per answer), the same pictures the HTML page draws as SVG.

use std::path::Path;

use plotters::prelude::*;

use super::{Report, Speaker, rules};
use crate::client::bench::plot::{PlotError, register_font};

const CANDIDATE: RGBColor = RGBColor(0x2f, 0x7d, 0x5b);
const INTERVIEWER: RGBColor = RGBColor(0x3a, 0x5f, 0xa8);
const PAUSE: RGBColor = RGBColor(0xd0, 0x8a, 0x1f);

type Area<'a> = DrawingArea<BitMapBackend<'a>, plotters::coord::Shift>;
type DrawResult =
    Result<(), DrawingAreaErrorKind<<BitMapBackend<'static> as DrawingBackend>::ErrorType>>;

/// Writes `timeline.png` and `answers.png` into `dir` (created if missing).
pub fn write(report: &Report, dir: &Path) -> Result<(), PlotError> {
    register_font()?;
    let err = |path: &Path, e: &dyn std::fmt::Display| PlotError::Draw {
        path: path.display().to_string(),
        message: e.to_string(),
    };
    std::fs::create_dir_all(dir).map_err(|e| err(dir, &e))?;
    let path = dir.join("timeline.png");
    let root = BitMapBackend::new(&path, (1200, 260)).into_drawing_area();
    root.fill(&WHITE).map_err(|e| err(&path, &e))?;
    timeline(&root, report).map_err(|e| err(&path, &e))?;
    root.present().map_err(|e| err(&path, &e))?;
    drop(root);
    let path = dir.join("answers.png");
    let root = BitMapBackend::new(&path, (1200, 420)).into_drawing_area();
    root.fill(&WHITE).map_err(|e| err(&path, &e))?;
    let (left, right) = root.split_horizontally(600);
    let wpm: Vec<f64> = report.answers.iter().map(|a| a.words_per_minute).collect();
    let fillers: Vec<f64> = report
        .answers
        .iter()
        .map(|a| a.fillers_per_minute)
        .collect();
    bars(
        &left,
        "Words per minute",
        &wpm,
        (rules::SLOW_WPM, rules::FAST_WPM),
    )
    .map_err(|e| err(&path, &e))?;
    bars(
        &right,
        "Fillers a minute",
        &fillers,
        (0.0, rules::FILLERS_PER_MINUTE),
    )
    .map_err(|e| err(&path, &e))?;
    root.present().map_err(|e| err(&path, &e))?;
    Ok(())
}

fn timeline(area: &Area, r: &Report) -> DrawResult {
    let end_s = r
        .timeline
        .iter()
        .map(|s| s.end_ms)
        .chain([r.duration_ms, 1000])
        .max()
        .unwrap_or(1000) as f64
        / 1000.0;
    let mut chart = ChartBuilder::on(area)
        .caption("Who spoke when", ("sans-serif", 20))
        .margin(12)
        .x_label_area_size(32)
        .y_label_area_size(100)
        .build_cartesian_2d(0f64..end_s, 0f64..2f64)?;
    chart
        .configure_mesh()
        .disable_y_mesh()
        .y_labels(2)
        .y_label_formatter(&|y| {
            if *y >= 1.0 {
                "Interviewer".into()
            } else {
                "You".into()
            }
        })
        .x_desc("seconds")
        .label_style(("sans-serif", 14))
        .draw()?;
    chart.draw_series(r.timeline.iter().map(|s| {
        let (low, color) = match s.who {
            Speaker::Interviewer => (1.2, INTERVIEWER),
            Speaker::Candidate => (0.2, CANDIDATE),
        };
        let (a, b) = (s.start_ms as f64 / 1000.0, s.end_ms as f64 / 1000.0);
        Rectangle::new([(a, low), (b, low + 0.6)], color.filled())
    }))?;
    chart.draw_series(r.answers.iter().flat_map(|a| {
        a.pauses.iter().map(move |p| {
            let from = (a.start_ms + p.at_ms) as f64 / 1000.0;
            let to = from + p.length_ms as f64 / 1000.0;
            Rectangle::new([(from, 0.05), (to, 0.15)], PAUSE.filled())
        })
    }))?;
    Ok(())
}

fn bars(area: &Area, title: &str, values: &[f64], band: (f64, f64)) -> DrawResult {
    let top = values
        .iter()
        .copied()
        .chain([band.1 * 1.2, 1.0])
        .fold(0.0, f64::max);
    let n = values.len().max(1);
    let mut chart = ChartBuilder::on(area)
        .caption(title, ("sans-serif", 20))
        .margin(12)
        .x_label_area_size(32)
        .y_label_area_size(48)
        .build_cartesian_2d(0f64..n as f64, 0f64..top)?;
    chart
        .configure_mesh()
        .disable_x_mesh()
        .x_labels(2 * n + 1)
        .x_label_formatter(&|x| {
            let i = x.floor() as usize;
            if (x - x.floor() - 0.5).abs() < 0.01 {
                format!("{}", i + 1)
            } else {
                String::new()
            }
        })
        .x_desc("answer")
        .label_style(("sans-serif", 14))
        .draw()?;
    chart.draw_series([Rectangle::new(
        [(0.0, band.0), (n as f64, band.1)],
        CANDIDATE.mix(0.12).filled(),
    )])?;
    chart.draw_series(values.iter().enumerate().map(|(i, v)| {
        Rectangle::new(
            [(i as f64 + 0.2, 0.0), (i as f64 + 0.8, *v)],
            CANDIDATE.filled(),
        )
    }))?;
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn both_pictures_are_written() {
        let dir = std::env::temp_dir().join(format!("callgate-report-png-{}", std::process::id()));
        let report = crate::report::build(&crate::report::parse_log(
            "{\"at\":0,\"inputMs\":0,\"outputMs\":0,\"type\":\"session.started\",\"sessionId\":\"s\"}\n",
        ));
        write(&report, &dir).expect("written");
        for name in ["timeline.png", "answers.png"] {
            let bytes = std::fs::read(dir.join(name)).expect(name);
            assert!(bytes.starts_with(b"\x89PNG"), "{name} is a PNG");
        }
        let _ = std::fs::remove_dir_all(&dir);
    }
}
