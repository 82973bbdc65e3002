//! SVG line charts (no dependencies): latency by percentile, throughput and latency over
//! time, latency against throughput (capacity), and the HTML report that embeds them.

use crate::capacity::Step;
use crate::run::{RunConfig, RunResult};
use hdrhistogram::Histogram;
use std::fmt::Write;

const WIDTH: f64 = 760.0;
const HEIGHT: f64 = 420.0;
const LEFT: f64 = 80.0;
const RIGHT: f64 = 150.0;
const TOP: f64 = 40.0;
const BOTTOM: f64 = 60.0;
const COLOURS: [&str; 6] = [
    "#1f77b4", "#d62728", "#2ca02c", "#ff7f0e", "#9467bd", "#8c564b",
];
/// The percentile axis ends at 99.999% (5 nines).
const MAX_NINES: f64 = 5.0;

/// How the x axis maps values.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum XAxis {
    /// Values as they are.
    Linear,
    /// Percentiles (0-100) spread by their nines: 90% at 1, 99% at 2, 99.9% at 3.
    Nines,
    /// Positive values on a log-10 scale, ticks at the powers of ten (counts of partitions
    /// or connections).
    Log10,
}

/// One line of a chart.
#[derive(Debug, Clone)]
pub struct Line {
    /// Its legend.
    pub name: String,
    /// Its points (x, y), in x order.
    pub points: Vec<(f64, f64)>,
}

fn escape(text: &str) -> String {
    text.replace('&', "&amp;")
        .replace('<', "&lt;")
        .replace('>', "&gt;")
}

fn nines(percentile: f64) -> f64 {
    let rest = (1.0 - percentile / 100.0).max(10_f64.powf(-MAX_NINES));
    -rest.log10()
}

/// A tick step giving about five ticks over `span`.
fn tick_step(span: f64) -> f64 {
    let raw = span / 5.0;
    let magnitude = 10_f64.powf(raw.log10().floor());
    let normalized = raw / magnitude;
    let nice = if normalized <= 1.0 {
        1.0
    } else if normalized <= 2.0 {
        2.0
    } else if normalized <= 5.0 {
        5.0
    } else {
        10.0
    };
    nice * magnitude
}

fn label(value: f64) -> String {
    if value.abs() >= 1e6 {
        format!("{:.1}M", value / 1e6)
    } else if value.abs() >= 1e4 {
        format!("{:.0}k", value / 1e3)
    } else {
        let text = format!("{value:.3}");
        text.trim_end_matches('0').trim_end_matches('.').to_string()
    }
}

/// A chart of `lines` as an SVG document.
pub fn chart(title: &str, x_label: &str, y_label: &str, x_axis: XAxis, lines: &[Line]) -> String {
    let map_x = |x: f64| match x_axis {
        XAxis::Linear => x,
        XAxis::Nines => nines(x),
        XAxis::Log10 => x.max(f64::MIN_POSITIVE).log10(),
    };
    let points = lines.iter().flat_map(|l| l.points.iter());
    let (mut x_min, mut x_max, mut y_max) = (f64::MAX, f64::MIN, 0.0_f64);
    for &(x, y) in points {
        x_min = x_min.min(map_x(x));
        x_max = x_max.max(map_x(x));
        y_max = y_max.max(y);
    }
    match x_axis {
        XAxis::Nines => (x_min, x_max) = (0.0, x_max.max(2.0).ceil().min(MAX_NINES)),
        // Throughputs and times: from zero.
        XAxis::Linear => x_min = x_min.min(0.0),
        XAxis::Log10 => (x_min, x_max) = (x_min.floor(), x_max.ceil()),
    }
    if x_min > x_max {
        (x_min, x_max) = (0.0, 1.0);
    }
    if (x_max - x_min).abs() < f64::EPSILON {
        x_max = x_min + 1.0;
    }
    let y_step = tick_step(if y_max > 0.0 { y_max } else { 1.0 });
    let y_top = (y_max / y_step).ceil().max(1.0) * y_step;
    let plot_w = WIDTH - LEFT - RIGHT;
    let plot_h = HEIGHT - TOP - BOTTOM;
    let sx = |x: f64| LEFT + (map_x(x) - x_min) / (x_max - x_min) * plot_w;
    let sy = |y: f64| TOP + plot_h - y / y_top * plot_h;
    let mut svg = String::new();
    let _ = write!(
        svg,
        "<svg xmlns=\"http://www.w3.org/2000/svg\" width=\"{WIDTH}\" height=\"{HEIGHT}\" \
         viewBox=\"0 0 {WIDTH} {HEIGHT}\" font-family=\"sans-serif\" font-size=\"12\">\n\
         <rect width=\"100%\" height=\"100%\" fill=\"white\"/>\n\
         <text x=\"{}\" y=\"22\" text-anchor=\"middle\" font-size=\"15\">{}</text>\n",
        LEFT + plot_w / 2.0,
        escape(title)
    );
    // Axes, grid and ticks.
    let mut y = 0.0;
    while y <= y_top + y_step / 2.0 {
        let py = sy(y);
        let _ = writeln!(
            svg,
            "<line x1=\"{LEFT}\" y1=\"{py:.1}\" x2=\"{:.1}\" y2=\"{py:.1}\" stroke=\"#ddd\"/>\
             <text x=\"{:.1}\" y=\"{:.1}\" text-anchor=\"end\">{}</text>",
            LEFT + plot_w,
            LEFT - 6.0,
            py + 4.0,
            label(y)
        );
        y += y_step;
    }
    let x_ticks: Vec<(f64, String)> = match x_axis {
        XAxis::Nines => (0..=x_max as u32)
            .map(|n| {
                let percentile = 100.0 - 100.0 / 10_f64.powi(n as i32);
                let name = if n == 0 {
                    "0%".to_string()
                } else {
                    format!("{}%", label(percentile))
                };
                (f64::from(n), name)
            })
            .collect(),
        XAxis::Log10 => (x_min as i32..=x_max as i32)
            .map(|power| (f64::from(power), label(10_f64.powi(power))))
            .collect(),
        XAxis::Linear => {
            let step = tick_step(x_max - x_min);
            let mut ticks = Vec::new();
            let mut x = (x_min / step).ceil() * step;
            while x <= x_max + step / 1e6 {
                ticks.push((x, label(x)));
                x += step;
            }
            ticks
        }
    };
    for (x, name) in x_ticks {
        let px = LEFT + (x - x_min) / (x_max - x_min) * plot_w;
        let _ = writeln!(
            svg,
            "<line x1=\"{px:.1}\" y1=\"{TOP}\" x2=\"{px:.1}\" y2=\"{:.1}\" stroke=\"#eee\"/>\
             <text x=\"{px:.1}\" y=\"{:.1}\" text-anchor=\"middle\">{}</text>",
            TOP + plot_h,
            TOP + plot_h + 18.0,
            escape(&name)
        );
    }
    let _ = writeln!(
        svg,
        "<rect x=\"{LEFT}\" y=\"{TOP}\" width=\"{plot_w}\" height=\"{plot_h}\" fill=\"none\" stroke=\"#333\"/>\n\
         <text x=\"{:.1}\" y=\"{:.1}\" text-anchor=\"middle\">{}</text>\n\
         <text x=\"18\" y=\"{:.1}\" text-anchor=\"middle\" transform=\"rotate(-90 18 {:.1})\">{}</text>",
        LEFT + plot_w / 2.0,
        HEIGHT - 18.0,
        escape(x_label),
        TOP + plot_h / 2.0,
        TOP + plot_h / 2.0,
        escape(y_label)
    );
    for (i, line) in lines.iter().enumerate() {
        let colour = COLOURS[i % COLOURS.len()];
        let path: Vec<String> = line
            .points
            .iter()
            .map(|&(x, y)| format!("{:.1},{:.1}", sx(x), sy(y)))
            .collect();
        let _ = writeln!(
            svg,
            "<polyline fill=\"none\" stroke=\"{colour}\" stroke-width=\"2\" points=\"{}\"/>\
             <rect x=\"{:.1}\" y=\"{:.1}\" width=\"14\" height=\"3\" fill=\"{colour}\"/>\
             <text x=\"{:.1}\" y=\"{:.1}\">{}</text>",
            path.join(" "),
            LEFT + plot_w + 12.0,
            TOP + 10.0 + 20.0 * i as f64,
            LEFT + plot_w + 30.0,
            TOP + 14.0 + 20.0 * i as f64,
            escape(&line.name)
        );
    }
    svg.push_str("</svg>\n");
    svg
}

/// A histogram as (percentile, milliseconds) points.
fn percentile_points(histogram: &Histogram<u64>) -> Vec<(f64, f64)> {
    histogram
        .iter_quantiles(5)
        .map(|step| {
            (
                step.quantile_iterated_to() * 100.0,
                step.value_iterated_to() as f64 / 1000.0,
            )
        })
        .collect()
}

/// Latency by percentile: publish, service time and (with a consumer) end to end.
pub fn latency_by_percentile(result: &RunResult) -> String {
    let mut lines = vec![
        Line {
            name: "publish".into(),
            points: percentile_points(&result.publish_latency),
        },
        Line {
            name: "service time".into(),
            points: percentile_points(&result.service_time),
        },
    ];
    if let Some(e2e) = &result.e2e_latency {
        lines.push(Line {
            name: "end to end".into(),
            points: percentile_points(e2e),
        });
    }
    chart(
        "Latency by percentile",
        "percentile",
        "latency (ms)",
        XAxis::Nines,
        &lines,
    )
}

/// A line of one figure of each second.
fn per_second(result: &RunResult, name: &str, value: fn(&crate::run::Second) -> f64) -> Line {
    Line {
        name: name.into(),
        points: result.series.iter().map(|s| (s.at_s, value(s))).collect(),
    }
}

/// Messages per second produced and consumed, each second.
pub fn throughput_over_time(result: &RunResult) -> String {
    chart(
        "Throughput",
        "time (s)",
        "messages per second",
        XAxis::Linear,
        &[
            per_second(result, "produced", |s| s.produced as f64),
            per_second(result, "consumed", |s| s.consumed as f64),
        ],
    )
}

/// Publish p50 and p99 of each second.
pub fn latency_over_time(result: &RunResult) -> String {
    chart(
        "Publish latency over time",
        "time (s)",
        "latency (ms)",
        XAxis::Linear,
        &[
            per_second(result, "p50", |s| s.publish_p50_us as f64 / 1000.0),
            per_second(result, "p99", |s| s.publish_p99_us as f64 / 1000.0),
        ],
    )
}

/// Publish latency percentiles against the achieved rate of each capacity step.
pub fn capacity_chart(steps: &[Step]) -> String {
    let lines: Vec<Line> = ["p50", "p99", "p99.9"]
        .into_iter()
        .map(|name| Line {
            name: format!("publish {name}"),
            points: steps
                .iter()
                .map(|s| {
                    let us = crate::capacity::percentile(&s.result, name);
                    (s.achieved, us as f64 / 1000.0)
                })
                .collect(),
        })
        .collect();
    chart(
        "Latency against throughput",
        "achieved messages per second",
        "latency (ms)",
        XAxis::Linear,
        &lines,
    )
}

/// The run's HTML report: the summary and the three charts.
pub fn html(config: &RunConfig, result: &RunResult) -> String {
    let summary = crate::report::table(config, result);
    format!(
        "<!DOCTYPE html>\n<html><head><meta charset=\"utf-8\"><title>spate-loadgen: {topic}</title></head>\n\
         <body style=\"font-family: sans-serif\">\n<h1>spate-loadgen run: {topic}</h1>\n\
         <p>{rate:.0} msgs/s target, {size} B messages (mean), {producers} producer(s), acks {acks}, {compression:?}, keys {keys}, {secs:.1} s</p>\n\
         <pre>{summary}</pre>\n{a}\n{b}\n{c}\n</body></html>\n",
        topic = escape(&config.topic),
        rate = config.rate,
        size = config.mean_message_bytes(),
        producers = config.producers,
        acks = config.acks,
        compression = config.compression,
        keys = config.keys.name(),
        secs = config.duration.as_secs_f64(),
        summary = escape(&summary),
        a = latency_by_percentile(result),
        b = throughput_over_time(result),
        c = latency_over_time(result),
    )
}

/// The capacity HTML report: every step and the latency-against-throughput chart.
pub fn capacity_html(config: &RunConfig, steps: &[Step], highest: Option<f64>) -> String {
    let mut rows = String::new();
    for step in steps {
        let _ = writeln!(
            rows,
            "<tr><td>{:.0}</td><td>{:.0}</td><td>{}</td><td>{}</td><td>{}</td><td>{}</td></tr>",
            step.target,
            step.achieved,
            crate::capacity::percentile(&step.result, "p50"),
            crate::capacity::percentile(&step.result, "p99"),
            crate::capacity::percentile(&step.result, "p99.9"),
            escape(step.failed.as_deref().unwrap_or("ok"))
        );
    }
    let verdict = match highest {
        Some(rate) => format!("Highest rate meeting every objective: {rate:.0} msgs/s"),
        None => "No step met every objective".to_string(),
    };
    format!(
        "<!DOCTYPE html>\n<html><head><meta charset=\"utf-8\"><title>spate-loadgen capacity: {topic}</title></head>\n\
         <body style=\"font-family: sans-serif\">\n<h1>spate-loadgen capacity: {topic}</h1>\n<p>{verdict}</p>\n\
         <table border=\"1\" cellpadding=\"4\"><tr><th>target msgs/s</th><th>achieved msgs/s</th>\
         <th>publish p50 µs</th><th>p99 µs</th><th>p99.9 µs</th><th>verdict</th></tr>\n{rows}</table>\n{chart}\n</body></html>\n",
        topic = escape(&config.topic),
        chart = capacity_chart(steps),
    )
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn charts_place_points_inside_the_plot() {
        let svg = chart(
            "t <1>",
            "x",
            "y",
            XAxis::Linear,
            &[Line {
                name: "a&b".into(),
                points: vec![(0.0, 0.0), (10.0, 5.0)],
            }],
        );
        assert!(svg.starts_with("<svg") && svg.ends_with("</svg>\n"));
        assert!(
            svg.contains("t &lt;1&gt;") && svg.contains("a&amp;b"),
            "escaped"
        );
        // (0, 0) at the bottom-left corner of the plot, (10, 5) inside it.
        let bottom = TOP + HEIGHT - TOP - BOTTOM;
        assert!(svg.contains(&format!("{LEFT:.1},{bottom:.1}")), "{svg}");
        let nines_svg = chart(
            "p",
            "x",
            "y",
            XAxis::Nines,
            &[Line {
                name: "l".into(),
                points: vec![(0.0, 1.0), (99.0, 2.0), (99.99, 3.0)],
            }],
        );
        assert!(nines_svg.contains(">99.99%<") && nines_svg.contains(">90%<"));
        assert!((nines(99.9) - 3.0).abs() < 1e-9);
        let log_svg = chart(
            "counts",
            "partitions",
            "MiB/s",
            XAxis::Log10,
            &[Line {
                name: "l".into(),
                points: vec![(1.0, 100.0), (10.0, 90.0), (1000.0, 60.0)],
            }],
        );
        for tick in [">1<", ">10<", ">100<", ">1000<"] {
            assert!(log_svg.contains(tick), "{tick} in {log_svg}");
        }
        // 1 at the left edge, 1000 at the right edge of the plot.
        assert!(log_svg.contains(&format!("{LEFT:.1},")), "{log_svg}");
        assert!(
            log_svg.contains(&format!("{:.1},", WIDTH - RIGHT)),
            "{log_svg}"
        );
        assert_eq!(tick_step(9.0), 2.0);
        assert_eq!(tick_step(1234.0), 500.0);
    }
}
