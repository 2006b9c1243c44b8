//! A small per-minute plot as inline SVG, drawn on the server: no script, no external image.
//! Colours come from classes in the stylesheet (the CSP allows no inline style).

use std::fmt::Write as _;

use maud::{Markup, html};

use crate::data::MinuteCounts;

const WIDTH: f64 = 240.0;
const HEIGHT: f64 = 48.0;
/// Room at the top so that a peak's line is not cut by the edge.
const HEADROOM: f64 = 2.0;

/// Reads one count out of a minute.
type Count = fn(&MinuteCounts) -> u64;

/// Which count a line shows, and the class that colours it.
const LINES: [(&str, Count); 3] = [
    ("accepted", |m| m.accepted),
    ("ignored", |m| m.ignored + m.duplicate),
    ("refused", |m| m.refused),
];

/// Lines for accepted, ignored-or-duplicate and refused requests per minute, oldest on the left.
pub(super) fn minutes(handler: &str, series: &[MinuteCounts]) -> Markup {
    let peak = series
        .iter()
        .flat_map(|m| LINES.iter().map(move |(_, count)| count(m)))
        .max()
        .unwrap_or(0)
        .max(1);
    let label = format!(
        "{handler}: requests per minute over the last {} minutes, peak {peak}",
        series.len()
    );
    html! {
        svg.plot viewBox=(format!("0 0 {WIDTH} {HEIGHT}")) width=(WIDTH) height=(HEIGHT)
            role="img" aria-label=(label) xmlns="http://www.w3.org/2000/svg" {
            title { (label) }
            line.axis x1="0" y1=(HEIGHT - 0.5) x2=(WIDTH) y2=(HEIGHT - 0.5) {}
            @for (class, count) in LINES {
                polyline class=(format!("series {class}")) points=(points(series, peak, count)) {}
            }
        }
    }
}

/// The SVG `points` of one line: x spreads the minutes over the width, y scales to the peak.
fn points(series: &[MinuteCounts], peak: u64, count: Count) -> String {
    let step = if series.len() > 1 {
        WIDTH / (series.len() - 1) as f64
    } else {
        0.0
    };
    let mut out = String::new();
    for (i, minute) in series.iter().enumerate() {
        let x = i as f64 * step;
        let y = HEIGHT - 1.0 - (HEIGHT - 1.0 - HEADROOM) * count(minute) as f64 / peak as f64;
        if !out.is_empty() {
            out.push(' ');
        }
        let _ = write!(out, "{x:.1},{y:.1}");
    }
    out
}

#[cfg(test)]
mod tests {
    use super::*;

    fn minute(accepted: u64, refused: u64) -> MinuteCounts {
        MinuteCounts {
            minute: 0,
            accepted,
            duplicate: 0,
            ignored: 0,
            refused,
        }
    }

    #[test]
    fn points_scale_to_the_peak_and_span_the_width() {
        let series = [minute(0, 0), minute(2, 0), minute(4, 2)];
        assert_eq!(
            points(&series, 4, LINES[0].1),
            "0.0,47.0 120.0,24.5 240.0,2.0"
        );
        assert_eq!(
            points(&series, 4, LINES[2].1),
            "0.0,47.0 120.0,47.0 240.0,24.5"
        );
    }

    #[test]
    fn an_idle_or_single_minute_series_still_draws() {
        assert_eq!(points(&[minute(0, 0)], 1, LINES[0].1), "0.0,47.0");
        let svg = minutes("github", &[]).into_string();
        assert!(svg.contains("peak 1"), "{svg}");
    }
}
