//! Charts as SVG strings (plotters, SVG backend only: no font or image
//! library is needed). The latency distribution is drawn the HdrHistogram
//! way: x is the percentile on a log axis, plotted as `1 / (1 - p)`, so
//! 90%, 99%, 99.9% and 99.99% are evenly spaced and the tail gets the room
//! it deserves; y is latency in ms. The time series charts have seconds since
//! the start of the run on x, with the send window shaded.

use crate::recorder::SecondSample;
use hdrhistogram::Histogram;
use plotters::prelude::*;

/// Width and height of every chart, in SVG pixels.
const SIZE: (u32, u32) = (960, 420);
/// Colours of the lines, in drawing order.
const COLOURS: [RGBColor; 5] = [
    RGBColor(31, 119, 180),
    RGBColor(214, 39, 40),
    RGBColor(44, 160, 44),
    RGBColor(255, 127, 14),
    RGBColor(148, 103, 189),
];

type DrawResult = Result<(), Box<dyn std::error::Error>>;

/// Renders with `draw` into an SVG string; a drawing error becomes a note inside the SVG.
fn render(draw: impl FnOnce(&DrawingArea<SVGBackend<'_>, plotters::coord::Shift>) -> DrawResult) -> String {
    let mut svg = String::new();
    let result = {
        let root = SVGBackend::with_string(&mut svg, SIZE).into_drawing_area();
        let r = root.fill(&WHITE).map_err(|e| e.into()).and_then(|_| draw(&root));
        let _ = root.present();
        r
    };
    match result {
        Ok(()) => svg,
        Err(e) => format!(
            "<svg xmlns=\"http://www.w3.org/2000/svg\" width=\"{}\" height=\"40\"><text x=\"10\" y=\"25\">chart failed: {}</text></svg>",
            SIZE.0,
            html_escape(&e.to_string())
        ),
    }
}

fn html_escape(s: &str) -> String {
    s.replace('&', "&amp;").replace('<', "&lt;").replace('>', "&gt;")
}

/// Labels the log percentile axis: 1 → 0%, 10 → 90%, 100 → 99%, ...
fn percentile_label(x: f64) -> String {
    let p = 100.0 * (1.0 - 1.0 / x);
    if p < 1e-9 {
        "0%".into()
    } else {
        let digits = (x.log10().round() as usize).saturating_sub(2);
        format!("{p:.digits$}%")
    }
}

/// Points `(1/(1-p), ms)` of a histogram, with the last point (p = 1) placed at `x_max`.
fn percentile_points(h: &Histogram<u64>, x_max: f64) -> Vec<(f64, f64)> {
    h.iter_quantiles(4)
        .map(|v| {
            let q = v.quantile_iterated_to();
            let x = if q >= 1.0 { x_max } else { (1.0 / (1.0 - q)).min(x_max) };
            (x, v.value_iterated_to() as f64 / 1000.0)
        })
        .collect()
}

/// The x range of a percentile chart: enough decades to show one in `count`.
fn percentile_x_max(count: u64) -> f64 {
    let decades = (count.max(10) as f64).log10().ceil().clamp(2.0, 6.0);
    10f64.powf(decades)
}

/// Latency by percentile for one or more histograms (e.g. two runs to compare).
pub fn percentile_distribution(title: &str, series: &[(&str, &Histogram<u64>)]) -> String {
    let count = series.iter().map(|(_, h)| h.len()).max().unwrap_or(0);
    let x_max = percentile_x_max(count);
    let y_max = series.iter().map(|(_, h)| h.max()).max().unwrap_or(0) as f64 / 1000.0;
    render(|root| {
        let mut chart = ChartBuilder::on(root)
            .caption(title, ("sans-serif", 20))
            .margin(15)
            .x_label_area_size(45)
            .y_label_area_size(70)
            .build_cartesian_2d((1f64..x_max).log_scale(), 0f64..(y_max * 1.1).max(0.01))?;
        chart
            .configure_mesh()
            .x_desc("percentile")
            .y_desc("latency (ms)")
            .x_label_formatter(&|x| percentile_label(*x))
            .draw()?;
        let lines = series.iter().map(|(label, h)| (*label, percentile_points(h, x_max)));
        draw_lines(&mut chart, lines, true)
    })
}

/// Draws each `(label, points)` as a coloured line, with a legend when asked.
fn draw_lines<'a, 'c, 'b: 'c, X, Y>(
    chart: &mut ChartContext<'c, SVGBackend<'b>, Cartesian2d<X, Y>>,
    lines: impl Iterator<Item = (&'a str, Vec<(f64, f64)>)>,
    legend: bool,
) -> DrawResult
where
    X: plotters::coord::ranged1d::Ranged<ValueType = f64>,
    Y: plotters::coord::ranged1d::Ranged<ValueType = f64>,
{
    for (i, (label, points)) in lines.enumerate() {
        let colour = COLOURS[i % COLOURS.len()];
        chart
            .draw_series(LineSeries::new(points, colour.stroke_width(2)))?
            .label(label)
            .legend(move |(x, y)| PathElement::new(vec![(x, y), (x + 20, y)], colour.stroke_width(2)));
    }
    if legend {
        chart
            .configure_series_labels()
            .position(SeriesLabelPosition::UpperLeft)
            .border_style(BLACK)
            .background_style(WHITE)
            .draw()?;
    }
    Ok(())
}

/// One line of a time series chart.
pub struct Line<'a> {
    pub label: &'a str,
    pub points: Vec<(f64, f64)>,
}

/// Lines over time from 0 to `x_end` seconds, with the send window `[start, end]` shaded.
pub fn over_time(title: &str, y_desc: &str, lines: &[Line<'_>], window: (f64, f64), x_end: f64) -> String {
    let x_max = lines.iter().flat_map(|l| l.points.iter().map(|p| p.0)).fold(window.1.max(x_end), f64::max).max(1.0);
    let y_max = lines.iter().flat_map(|l| l.points.iter().map(|p| p.1)).fold(0.0, f64::max);
    let y_top = if y_max > 0.0 { y_max * 1.1 } else { 1.0 };
    render(|root| {
        let mut chart = ChartBuilder::on(root)
            .caption(title, ("sans-serif", 20))
            .margin(15)
            .x_label_area_size(45)
            .y_label_area_size(70)
            .build_cartesian_2d(0f64..x_max, 0f64..y_top)?;
        chart.configure_mesh().x_desc("seconds since start").y_desc(y_desc).draw()?;
        chart.draw_series(std::iter::once(Rectangle::new(
            [(window.0, 0.0), (window.1, y_top)],
            RGBColor(230, 240, 255).filled(),
        )))?;
        draw_lines(&mut chart, lines.iter().map(|l| (l.label, l.points.clone())), lines.len() > 1)
    })
}

/// One step of a staged run, as charted.
pub struct StepPoint {
    pub offered_per_sec: f64,
    pub delivered_per_sec: f64,
    pub p50_ms: Option<f64>,
    pub p99_ms: Option<f64>,
}

/// A staged run in two panels over the offered deliveries/s of each step:
/// delivered deliveries/s (beside the offered line, which it follows while
/// nothing is lost) and fan-out p50/p99.
pub fn steps(title: &str, points: &[StepPoint]) -> String {
    let x_max = points.iter().map(|p| p.offered_per_sec).fold(0.0, f64::max).max(1.0) * 1.05;
    let y_rate = points.iter().map(|p| p.delivered_per_sec.max(p.offered_per_sec)).fold(0.0, f64::max).max(1.0) * 1.1;
    let y_ms = points.iter().filter_map(|p| p.p99_ms).fold(0.0, f64::max).max(0.01) * 1.1;
    render(|root| {
        let root = root.titled(title, ("sans-serif", 20))?;
        let panels = root.split_evenly((1, 2));
        let mut rate = ChartBuilder::on(&panels[0])
            .margin(15)
            .x_label_area_size(45)
            .y_label_area_size(70)
            .build_cartesian_2d(0f64..x_max, 0f64..y_rate)?;
        rate.configure_mesh().x_desc("offered deliveries/s").y_desc("deliveries/s").draw()?;
        let offered: Vec<(f64, f64)> = points.iter().map(|p| (p.offered_per_sec, p.offered_per_sec)).collect();
        let delivered: Vec<(f64, f64)> = points.iter().map(|p| (p.offered_per_sec, p.delivered_per_sec)).collect();
        draw_lines(&mut rate, [("delivered", delivered), ("offered", offered)].into_iter(), true)?;
        let mut latency = ChartBuilder::on(&panels[1])
            .margin(15)
            .x_label_area_size(45)
            .y_label_area_size(70)
            .build_cartesian_2d(0f64..x_max, 0f64..y_ms)?;
        latency.configure_mesh().x_desc("offered deliveries/s").y_desc("fan-out latency (ms)").draw()?;
        let at = |f: fn(&StepPoint) -> Option<f64>| -> Vec<(f64, f64)> {
            points.iter().filter_map(|p| f(p).map(|v| (p.offered_per_sec, v))).collect()
        };
        draw_lines(&mut latency, [("p99", at(|p| p.p99_ms)), ("p50", at(|p| p.p50_ms))].into_iter(), true)
    })
}

/// Points of one field of the time series, skipping seconds without a value.
pub fn series_points(series: &[SecondSample], f: impl Fn(&SecondSample) -> Option<f64>) -> Vec<(f64, f64)> {
    series.iter().filter_map(|s| f(s).map(|v| (s.t, v))).collect()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn percentile_axis_labels() {
        assert_eq!(percentile_label(1.0), "0%");
        assert_eq!(percentile_label(10.0), "90%");
        assert_eq!(percentile_label(100.0), "99%");
        assert_eq!(percentile_label(1000.0), "99.9%");
        assert_eq!(percentile_label(10000.0), "99.99%");
    }

    #[test]
    fn draws_svg_with_lines_and_labels() {
        let mut h = crate::recorder::histogram();
        for v in 1..=1000u64 {
            h.record(v * 10).unwrap();
        }
        let svg = percentile_distribution("fan-out", &[("run", &h)]);
        assert!(svg.starts_with("<svg"), "{}", &svg[..svg.len().min(200)]);
        assert!(svg.contains("<polyline") || svg.contains("<path"), "no line drawn");
        assert!(svg.contains("99.9%"));
        let pts = percentile_points(&h, 1000.0);
        assert!(pts.windows(2).all(|w| w[0].0 <= w[1].0 && w[0].1 <= w[1].1), "monotone");
        let (x, y) = *pts.last().unwrap();
        assert_eq!(x, 1000.0);
        assert!((y - 10.0).abs() < 0.01, "the max, within HDR precision: {y}");
        let t = over_time("x", "ms", &[Line { label: "a", points: vec![(0.0, 1.0), (1.0, 2.0)] }], (0.5, 1.0), 2.0);
        assert!(t.contains("seconds since start"));
        let empty = percentile_distribution("empty", &[("run", &crate::recorder::histogram())]);
        assert!(empty.starts_with("<svg"));
        let p = |o: f64, d: f64, p99: f64| StepPoint {
            offered_per_sec: o,
            delivered_per_sec: d,
            p50_ms: Some(p99 / 2.0),
            p99_ms: Some(p99),
        };
        let st = steps("steps", &[p(100.0, 100.0, 5.0), p(200.0, 200.0, 8.0), p(400.0, 310.0, 900.0)]);
        assert!(st.starts_with("<svg") && !st.contains("chart failed"), "{}", &st[..st.len().min(300)]);
        assert!(st.contains("offered deliveries/s") && st.contains("p99"));
    }
}
