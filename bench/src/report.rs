//! Figures, their limits and ratios; medians over runs; the table and the JSON file.

use serde::Serialize;

/// One measured figure.
#[derive(Debug, Clone, Serialize)]
pub struct Figure {
    /// What was measured, e.g. `storage.append.1p.throughput`.
    pub name: String,
    /// The median over runs.
    pub value: f64,
    /// Its unit, e.g. `MiB/s`, `us`.
    pub unit: &'static str,
    /// The limit figure it is compared with, if any.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub limit_name: Option<String>,
    /// The limit's (median) value.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub limit: Option<f64>,
    /// The median over runs of `value / limit`, each run against the limit measured in the
    /// same run (so a noisy machine's swings cancel where they hit both).
    #[serde(skip_serializing_if = "Option::is_none")]
    pub ratio_to_limit: Option<f64>,
    /// The limit's value in each run, in order.
    #[serde(skip_serializing_if = "Vec::is_empty")]
    pub limit_runs: Vec<f64>,
    /// Every run's value, in order.
    pub runs: Vec<f64>,
}

/// Collects figures across runs.
#[derive(Debug, Default, Serialize)]
pub struct Report {
    /// How the figures were produced.
    pub command: String,
    /// What machine produced them.
    pub machine: String,
    /// The figures.
    pub figures: Vec<Figure>,
}

/// The median of `values` (the mean of the middle two for an even count).
pub fn median(values: &[f64]) -> f64 {
    assert!(!values.is_empty(), "median of nothing");
    let mut sorted = values.to_vec();
    sorted.sort_by(f64::total_cmp);
    let mid = sorted.len() / 2;
    if sorted.len() % 2 == 1 {
        sorted[mid]
    } else {
        (sorted[mid - 1] + sorted[mid]) / 2.0
    }
}

impl Report {
    /// Adds a run's value for `name`, creating the figure on first sight.
    pub fn record(&mut self, name: &str, unit: &'static str, value: f64) {
        match self.figures.iter_mut().find(|f| f.name == name) {
            Some(figure) => figure.runs.push(value),
            None => self.figures.push(Figure {
                name: name.to_string(),
                value,
                unit,
                limit_name: None,
                limit: None,
                ratio_to_limit: None,
                limit_runs: Vec::new(),
                runs: vec![value],
            }),
        }
    }

    /// Compares figure `name` with figure `limit_name`, run by run.
    pub fn compare(&mut self, name: &str, limit_name: &str) {
        let limit_runs = self
            .figures
            .iter()
            .find(|f| f.name == limit_name)
            .map(|f| f.runs.clone());
        if let (Some(limit_runs), Some(figure)) =
            (limit_runs, self.figures.iter_mut().find(|f| f.name == name))
        {
            figure.limit_name = Some(limit_name.to_string());
            figure.limit = Some(median(&limit_runs));
            figure.limit_runs = limit_runs;
        }
    }

    /// Computes medians and ratios.
    pub fn finish(&mut self) {
        for figure in &mut self.figures {
            figure.value = median(&figure.runs);
            let ratios: Vec<f64> = figure
                .runs
                .iter()
                .zip(&figure.limit_runs)
                .filter(|(_, &limit)| limit > 0.0)
                .map(|(value, limit)| value / limit)
                .collect();
            figure.ratio_to_limit = (!ratios.is_empty()).then(|| median(&ratios));
        }
    }

    /// The human table.
    pub fn table(&self) -> String {
        let mut out = format!(
            "{:<44} {:>12} {:<7} {:>12} {:>7}  runs\n",
            "figure", "median", "unit", "limit", "ratio"
        );
        for f in &self.figures {
            let limit = f.limit.map_or(String::from("-"), |l| format!("{l:.1}"));
            let ratio = f
                .ratio_to_limit
                .map_or(String::from("-"), |r| format!("{:.1}%", r * 100.0));
            let runs: Vec<String> = f.runs.iter().map(|r| format!("{r:.1}")).collect();
            out.push_str(&format!(
                "{:<44} {:>12.1} {:<7} {:>12} {:>7}  [{}]\n",
                f.name,
                f.value,
                f.unit,
                limit,
                ratio,
                runs.join(", ")
            ));
        }
        out
    }
}

impl Report {
    /// The report as markdown: the machine and the command, then every figure with its
    /// limit (or peer) and ratio, and each run's value.
    pub fn markdown(&self) -> String {
        let mut out = format!(
            "# spate-bench results\n\nMachine: {}\n\nCommand: `{}`\n\n\
             Every figure is the median over runs; the ratio is the median of the per-run ratios \
             to the limit (or the figure it is compared with) measured in the same run.\n\n\
             | figure | median | unit | compared with | its median | ratio | runs |\n\
             |---|---:|---|---|---:|---:|---|\n",
            self.machine, self.command
        );
        for f in &self.figures {
            let runs: Vec<String> = f.runs.iter().map(|r| format!("{r:.1}")).collect();
            out.push_str(&format!(
                "| {} | {:.1} | {} | {} | {} | {} | {} |\n",
                f.name,
                f.value,
                f.unit,
                f.limit_name.as_deref().unwrap_or(""),
                f.limit.map_or(String::new(), |l| format!("{l:.1}")),
                f.ratio_to_limit
                    .map_or(String::new(), |r| format!("{:.1}%", r * 100.0)),
                runs.join(", ")
            ));
        }
        out
    }
}

/// The brokers a report has figures for: ("Spate", "") and (NAME, "peer.NAME.") per peer.
fn brokers(report: &Report) -> Vec<(String, String)> {
    let mut found = vec![("Spate".to_string(), String::new())];
    for figure in &report.figures {
        if let Some(rest) = figure.name.strip_prefix("peer.") {
            if let Some((name, _)) = rest.split_once('.') {
                let prefix = format!("peer.{name}.");
                if !found.iter().any(|(_, p)| *p == prefix) {
                    found.push((name.to_string(), prefix));
                }
            }
        }
    }
    found
}

impl Report {
    fn value(&self, name: &str) -> Option<f64> {
        self.figures
            .iter()
            .find(|f| f.name == name)
            .map(|f| f.value)
    }

    /// The line of `{prefix}{stem}{N}{suffix}` figures over N in `xs` (those present).
    fn series(&self, prefix: &str, name: impl Fn(f64) -> String, xs: &[f64]) -> Vec<(f64, f64)> {
        xs.iter()
            .filter_map(|&x| Some((x, self.value(&format!("{prefix}{}", name(x)))?)))
            .collect()
    }

    /// The scenario charts this report has data for, as (file suffix, title, SVG): publish
    /// latency against load, and throughput against partitions and connections, every broker
    /// as its own line.
    pub fn charts(&self) -> Vec<(&'static str, &'static str, String)> {
        use spate_loadgen::plot::{chart, Line, XAxis};
        let numbered = |stem: &str| -> Vec<f64> {
            let mut counts: Vec<f64> = self
                .figures
                .iter()
                .filter_map(|f| f.name.strip_prefix(stem)?.strip_suffix(".throughput"))
                .filter_map(|n| n.parse::<f64>().ok())
                .collect();
            counts.sort_by(f64::total_cmp);
            counts.dedup();
            counts
        };
        let mut charts = Vec::new();
        let loads = [10.0, 50.0, 80.0];
        let mut latency = Vec::new();
        for (who, prefix) in brokers(self) {
            for p in ["p50", "p99", "p999"] {
                let points = self.series(
                    &prefix,
                    |x| format!("produce_latency.{x}pct.publish.{p}"),
                    &loads,
                );
                if !points.is_empty() {
                    latency.push(Line {
                        name: format!("{who} {p}"),
                        points,
                    });
                }
            }
        }
        if !latency.is_empty() {
            let unit = self
                .figures
                .iter()
                .find(|f| f.name.ends_with("pct.publish.p99"))
                .map_or("", |f| f.unit);
            let svg = chart(
                "Publish latency against load",
                "load (% of produce-max)",
                &format!("publish latency ({unit})"),
                XAxis::Linear,
                &latency,
            );
            charts.push(("latency", "Publish latency against load", svg));
        }
        for (suffix, title, stem, x_label) in [
            (
                "partitions",
                "Throughput against partitions",
                "partitions_",
                "partitions",
            ),
            (
                "connections",
                "Throughput against connections",
                "connections_",
                "connections",
            ),
        ] {
            let counts = numbered(stem);
            let lines: Vec<Line> = brokers(self)
                .into_iter()
                .map(|(who, prefix)| Line {
                    name: who,
                    points: self.series(&prefix, |x| format!("{stem}{x}.throughput"), &counts),
                })
                .filter(|line| !line.points.is_empty())
                .collect();
            if !lines.is_empty() {
                let svg = chart(title, x_label, "throughput (MiB/s)", XAxis::Log10, &lines);
                charts.push((suffix, title, svg));
            }
        }
        charts
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn charts_come_from_the_scenario_figures_of_every_broker() {
        let mut report = Report::default();
        assert!(report.charts().is_empty(), "no scenario, no chart");
        for (name, value) in [
            ("produce_latency.10pct.publish.p99", 2.0),
            ("produce_latency.50pct.publish.p99", 3.0),
            ("produce_latency.80pct.publish.p99", 9.0),
            ("partitions_1.throughput", 100.0),
            ("partitions_10.throughput", 90.0),
            ("partitions_100.throughput", 60.0),
            ("peer.kafka.partitions_1.throughput", 80.0),
            ("peer.kafka.partitions_100.throughput", 70.0),
        ] {
            report.record(name, "ms", value);
        }
        report.finish();
        let charts = report.charts();
        let names: Vec<&str> = charts.iter().map(|(suffix, _, _)| *suffix).collect();
        assert_eq!(names, ["latency", "partitions"]);
        assert!(charts[0].2.contains("Spate p99") && charts[0].2.contains("publish latency (ms)"));
        let partitions = &charts[1].2;
        assert!(partitions.contains(">Spate<") && partitions.contains(">kafka<"));
        assert_eq!(partitions.matches("<polyline").count(), 2);
    }

    #[test]
    fn medians_and_ratios() {
        assert_eq!(median(&[3.0, 1.0, 2.0]), 2.0);
        assert_eq!(median(&[4.0, 1.0, 2.0, 3.0]), 2.5);
        let mut report = Report::default();
        for (a, l) in [(90.0, 100.0), (80.0, 100.0), (95.0, 110.0)] {
            report.record("a", "MiB/s", a);
            report.record("limit", "MiB/s", l);
        }
        report.compare("a", "limit");
        report.finish();
        let a = &report.figures[0];
        assert_eq!(a.value, 90.0);
        assert_eq!(a.limit, Some(100.0));
        // Per-run ratios 0.9, 0.8 and 95/110 = 0.864: the median is 0.864.
        let ratio = a.ratio_to_limit.expect("ratio");
        assert!((ratio - 95.0 / 110.0).abs() < 1e-9, "{ratio}");
        assert!(report.table().contains("86.4%"));
        let markdown = report.markdown();
        assert!(
            markdown.contains("| a | 90.0 | MiB/s | limit | 100.0 | 86.4% | 90.0, 80.0, 95.0 |")
        );
    }
}
