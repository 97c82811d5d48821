//! Line charts as inline SVG, drawn on the server: the dashboard's
//! "activities stored per second" and "deliveries queued" over the last
//! hour. No script, no library: a polyline scaled to the box, the
//! largest value as the top label.

use maud::{Markup, html};

const WIDTH: f64 = 600.0;
const HEIGHT: f64 = 120.0;

/// A chart of `points` (seconds before now, value), oldest first, titled
/// `title`, over the last `span_s` seconds.
pub fn line(title: &str, unit: &str, span_s: f64, points: &[(f64, f64)]) -> Markup {
    let top = points.iter().map(|p| p.1).fold(0.0_f64, f64::max);
    let scale = if top > 0.0 { top } else { 1.0 };
    let coords: Vec<String> = points
        .iter()
        .map(|(ago, value)| {
            let x = WIDTH * (1.0 - (ago / span_s).clamp(0.0, 1.0));
            let y = HEIGHT - HEIGHT * (value / scale);
            format!("{x:.1},{y:.1}")
        })
        .collect();
    let latest = points.last().map_or(0.0, |p| p.1);
    html! {
        figure.chart {
            figcaption { (title) ": " strong.latest { (format_value(latest)) } " " (unit) " now, at most " (format_value(top)) }
            svg xmlns="http://www.w3.org/2000/svg" viewBox=(format!("0 0 {WIDTH} {HEIGHT}"))
                width="600" height="120" role="img" aria-label=(title) {
                rect x="0" y="0" width=(WIDTH) height=(HEIGHT) class="frame" {}
                @if coords.len() > 1 {
                    polyline points=(coords.join(" ")) class="line" {}
                } @else {
                    text x="12" y="64" class="empty" { "no samples yet (one every 10 s)" }
                }
            }
        }
    }
}

fn format_value(v: f64) -> String {
    if v >= 100.0 || v.fract() == 0.0 {
        format!("{v:.0}")
    } else {
        format!("{v:.1}")
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_chart_draws_its_points_within_the_box() {
        let svg = line(
            "queue",
            "jobs",
            3600.0,
            &[(3600.0, 0.0), (1800.0, 5.0), (0.0, 10.0)],
        )
        .into_string();
        assert!(
            svg.contains(r#"points="0.0,120.0 300.0,60.0 600.0,0.0""#),
            "{svg}"
        );
        assert!(svg.contains("at most 10"), "{svg}");
        let empty = line("queue", "jobs", 3600.0, &[]).into_string();
        assert!(empty.contains("no samples yet"), "{empty}");
    }
}
