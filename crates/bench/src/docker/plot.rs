//! The latency plot of `bench docker`: one horizontal bar per row (p50) with
//! a whisker to its p99, on a logarithmic time axis, as a self-contained SVG.
//!
//! Written by hand rather than with a plotting crate: it is one chart of a
//! dozen shapes, and a plotting library would add a dependency tree (and
//! its build time on a 2-core machine) for it. The axis spans whole decades
//! around the data, so bars six orders of magnitude apart stay readable.

use std::fmt::Write as _;
use std::time::Duration;

use super::Side;

/// One bar of the plot.
#[derive(Clone, Debug)]
pub(crate) struct Bar {
    /// The row's label, left of the bar.
    pub label: String,
    /// Its color.
    pub side: Side,
    /// The bar's end.
    pub p50: Duration,
    /// The whisker's end.
    pub p99: Duration,
}

/// Width of the whole picture, px.
const WIDTH: f64 = 1000.0;
/// Left edge of the plotting area (labels go left of it), px.
const LEFT: f64 = 300.0;
/// Right margin: the column of values right of the plotting area, px.
const RIGHT: f64 = 190.0;
/// Top of the first bar, px (title, subtitle, legend above).
const TOP: f64 = 96.0;
/// Vertical space per bar, px.
const ROW: f64 = 38.0;
/// Bar thickness, px.
const BAR: f64 = 22.0;
/// Space below the last bar for the axis labels and the caption, px.
const BOTTOM: f64 = 96.0;

/// Docker's blue and WebAssembly's purple.
fn color(side: Side) -> &'static str {
    match side {
        Side::Docker => "#1d63ed",
        Side::Wasm => "#654ff0",
    }
}

/// The decades the axis spans: 10^lo ..= 10^hi seconds, around every value.
fn decades(bars: &[Bar]) -> (i32, i32) {
    let values = bars
        .iter()
        .flat_map(|b| [b.p50, b.p99])
        .map(|d| d.as_secs_f64())
        .filter(|s| *s > 0.0);
    let (min, max) = values.fold((f64::MAX, f64::MIN), |(lo, hi), s| (lo.min(s), hi.max(s)));
    if min > max {
        return (-6, 0);
    }
    let lo = min.log10().floor() as i32;
    let hi = (max.log10().ceil() as i32).max(lo + 1);
    (lo, hi)
}

/// A decade's tick label: 1 µs, 10 µs, …, 1 s, 10 s.
fn decade_label(exponent: i32) -> String {
    let (unit, base) = match exponent {
        e if e < -6 => ("ns", -9),
        e if e < -3 => ("µs", -6),
        e if e < 0 => ("ms", -3),
        _ => ("s", 0),
    };
    format!(
        "{} {unit}",
        10u64.pow((exponent - base).clamp(0, 18) as u32)
    )
}

/// A duration for a bar's annotation: 3 significant digits.
fn short(d: Duration) -> String {
    let s = d.as_secs_f64();
    let (value, unit) = if s >= 1.0 {
        (s, "s")
    } else if s >= 1e-3 {
        (s * 1e3, "ms")
    } else {
        (s * 1e6, "µs")
    };
    if value >= 100.0 {
        format!("{value:.0} {unit}")
    } else if value >= 10.0 {
        format!("{value:.1} {unit}")
    } else {
        format!("{value:.2} {unit}")
    }
}

/// Text made safe for SVG.
fn escape(text: &str) -> String {
    text.replace('&', "&amp;")
        .replace('<', "&lt;")
        .replace('>', "&gt;")
        .replace('"', "&quot;")
}

/// The x coordinate of `d` on the axis `10^lo ..= 10^hi` seconds.
fn x_of(d: Duration, (lo, hi): (i32, i32)) -> f64 {
    let span = WIDTH - LEFT - RIGHT;
    let s = d.as_secs_f64().max(10f64.powi(lo));
    let fraction = (s.log10() - f64::from(lo)) / f64::from(hi - lo);
    LEFT + span * fraction.clamp(0.0, 1.0)
}

/// The SVG document: `title` and `subtitle` on top, the bars with their
/// p50 and p99 in a column on the right, and `caption` (up to two lines)
/// under the axis.
pub(crate) fn svg(title: &str, subtitle: &str, caption: &str, bars: &[Bar]) -> String {
    let axis = decades(bars);
    let height = TOP + ROW * bars.len() as f64 + BOTTOM;
    let bottom = TOP + ROW * bars.len() as f64;
    let mut out = String::new();
    // `write!` to a String cannot fail.
    let _ = writeln!(
        out,
        r#"<svg xmlns="http://www.w3.org/2000/svg" width="{WIDTH}" height="{height}" viewBox="0 0 {WIDTH} {height}" font-family="Helvetica, Arial, sans-serif" font-size="13">"#
    );
    let _ = writeln!(
        out,
        r##"<rect width="100%" height="100%" fill="#ffffff"/>"##
    );
    let _ = writeln!(
        out,
        r#"<text x="20" y="28" font-size="17" font-weight="bold">{}</text>"#,
        escape(title)
    );
    let _ = writeln!(
        out,
        r##"<text x="20" y="50" fill="#555555">{}</text>"##,
        escape(subtitle)
    );
    // Legend.
    for (i, (backend, name)) in [(Side::Docker, "Docker"), (Side::Wasm, "Wasm")]
        .into_iter()
        .enumerate()
    {
        let x = LEFT + 130.0 * i as f64;
        let _ = writeln!(
            out,
            r#"<rect x="{x}" y="62" width="14" height="14" fill="{}"/><text x="{}" y="74">{name}</text>"#,
            color(backend),
            x + 20.0
        );
    }
    let _ = writeln!(
        out,
        r##"<text x="{}" y="74" fill="#555555">bar: p50 · whisker: p99</text>"##,
        LEFT + 260.0
    );
    // Decade grid lines and their labels.
    for exponent in axis.0..=axis.1 {
        let x = x_of(Duration::from_secs_f64(10f64.powi(exponent)), axis);
        let _ = writeln!(
            out,
            r##"<line x1="{x:.1}" y1="{}" x2="{x:.1}" y2="{bottom}" stroke="#dddddd"/><text x="{x:.1}" y="{}" text-anchor="middle" fill="#333333">{}</text>"##,
            TOP - 8.0,
            bottom + 18.0,
            decade_label(exponent)
        );
    }
    // Bars, whiskers, labels and values.
    for (i, bar) in bars.iter().enumerate() {
        let y = TOP + ROW * i as f64;
        let x50 = x_of(bar.p50, axis);
        let x99 = x_of(bar.p99.max(bar.p50), axis);
        let mid = y + BAR / 2.0;
        let _ = writeln!(
            out,
            r#"<text x="{}" y="{:.1}" text-anchor="end">{}</text>"#,
            LEFT - 10.0,
            mid + 4.5,
            escape(&bar.label)
        );
        let _ = writeln!(
            out,
            r#"<rect x="{LEFT}" y="{y:.1}" width="{:.1}" height="{BAR}" fill="{}"/>"#,
            (x50 - LEFT).max(1.0),
            color(bar.side)
        );
        let _ = writeln!(
            out,
            r##"<line x1="{x50:.1}" y1="{mid:.1}" x2="{x99:.1}" y2="{mid:.1}" stroke="#222222" stroke-width="1.5"/><line x1="{x99:.1}" y1="{:.1}" x2="{x99:.1}" y2="{:.1}" stroke="#222222" stroke-width="1.5"/>"##,
            mid - 6.0,
            mid + 6.0
        );
        let _ = writeln!(
            out,
            r##"<text x="{:.1}" y="{:.1}" fill="#222222"><tspan font-weight="bold">{}</tspan> · p99 {}</text>"##,
            WIDTH - RIGHT + 16.0,
            mid + 4.5,
            short(bar.p50),
            short(bar.p99)
        );
    }
    let _ = writeln!(
        out,
        r##"<line x1="{LEFT}" y1="{bottom}" x2="{}" y2="{bottom}" stroke="#333333"/>"##,
        WIDTH - RIGHT
    );
    let _ = writeln!(
        out,
        r##"<text x="{}" y="{}" text-anchor="middle" fill="#333333">latency (log scale)</text>"##,
        LEFT + (WIDTH - LEFT - RIGHT) / 2.0,
        bottom + 38.0
    );
    for (i, line) in caption.lines().enumerate() {
        let _ = writeln!(
            out,
            r##"<text x="20" y="{}" fill="#555555">{}</text>"##,
            bottom + 62.0 + 18.0 * i as f64,
            escape(line)
        );
    }
    out.push_str("</svg>\n");
    out
}

#[cfg(test)]
mod tests {
    use super::*;

    fn bar(label: &str, side: Side, p50_us: u64, p99_us: u64) -> Bar {
        Bar {
            label: label.into(),
            side,
            p50: Duration::from_micros(p50_us),
            p99: Duration::from_micros(p99_us),
        }
    }

    #[test]
    fn the_axis_spans_whole_decades_around_the_data() {
        let bars = [
            bar("a", Side::Wasm, 7, 12),
            bar("b", Side::Docker, 600_000, 900_000),
        ];
        assert_eq!(decades(&bars), (-6, 0));
        assert_eq!(decades(&[bar("c", Side::Wasm, 5, 5)]), (-6, -5));
        assert_eq!(decades(&[]), (-6, 0));
    }

    #[test]
    fn positions_are_logarithmic() {
        let axis = (-6, 0);
        let one_us = x_of(Duration::from_micros(1), axis);
        let one_ms = x_of(Duration::from_millis(1), axis);
        let one_s = x_of(Duration::from_secs(1), axis);
        assert!((one_us - LEFT).abs() < 1e-9);
        assert!((one_s - (WIDTH - RIGHT)).abs() < 1e-9);
        assert!((one_ms - (one_us + one_s) / 2.0).abs() < 1e-6);
        // Below the axis: at its start, never left of it.
        assert!((x_of(Duration::ZERO, axis) - LEFT).abs() < 1e-9);
    }

    #[test]
    fn decades_are_labelled_in_readable_units() {
        let labels: Vec<String> = (-6..=1).map(decade_label).collect();
        assert_eq!(
            labels,
            [
                "1 µs", "10 µs", "100 µs", "1 ms", "10 ms", "100 ms", "1 s", "10 s"
            ]
        );
        assert_eq!(short(Duration::from_micros(7_230)), "7.23 ms");
        assert_eq!(short(Duration::from_micros(612_000)), "612 ms");
        assert_eq!(short(Duration::from_nanos(5_500)), "5.50 µs");
    }

    #[test]
    fn the_document_has_every_bar_and_escapes_text() {
        let bars = [
            bar("Docker cold <create>", Side::Docker, 600_000, 900_000),
            bar("Wasm cold & co", Side::Wasm, 500, 700),
        ];
        let doc = svg("title", "sub", "caption\nsecond line", &bars);
        assert!(doc.starts_with("<svg "));
        assert!(doc.trim_end().ends_with("</svg>"));
        assert!(doc.contains("Docker cold &lt;create&gt;"));
        assert!(doc.contains("Wasm cold &amp; co"));
        assert!(doc.contains("600 ms</tspan> · p99 900 ms"));
        assert!(doc.contains("#1d63ed") && doc.contains("#654ff0"));
        assert_eq!(doc.matches("<svg").count(), 1);
        assert!(doc.contains(">caption</text>") && doc.contains(">second line</text>"));
    }
}
