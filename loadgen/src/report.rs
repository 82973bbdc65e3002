//! The result file: a stable JSON schema scripts can rely on, and the summary table.

use crate::run::{RunConfig, RunResult};
use hdrhistogram::Histogram;
use serde_json::{json, Map, Value};

/// Percentiles reported for every latency histogram, by name.
pub const PERCENTILES: [(&str, f64); 7] = [
    ("p50", 50.0),
    ("p75", 75.0),
    ("p90", 90.0),
    ("p95", 95.0),
    ("p99", 99.0),
    ("p99.9", 99.9),
    ("p99.99", 99.99),
];

fn percentiles(histogram: &Histogram<u64>) -> Value {
    let mut out = Map::new();
    for (name, quantile) in PERCENTILES {
        out.insert(
            name.to_string(),
            json!(histogram.value_at_percentile(quantile)),
        );
    }
    out.insert("max".to_string(), json!(histogram.max()));
    Value::Object(out)
}

/// The result document. `e2e_latency_us` is null when the run had no consumer.
pub fn json(config: &RunConfig, result: &RunResult) -> Value {
    let seconds = result.elapsed.as_secs_f64().max(f64::MIN_POSITIVE);
    let errors: u64 = result.errors.values().sum();
    let mb = (result.produced as f64 * result.message_bytes as f64) / 1e6;
    json!({
        "config": {
            "bootstrap": config.bootstrap,
            "topic": config.topic,
            "topics": config.topics,
            "rate_msgs_per_s": config.rate,
            "linger_ms": config.linger.as_secs_f64() * 1e3,
            "message_bytes": config.message_bytes,
            "message_bytes_max": config.message_bytes_max,
            "payload_file": config.payload_file,
            "idempotent": config.idempotent,
            "duration_s": config.duration.as_secs_f64(),
            "warmup_s": config.warmup.as_secs_f64(),
            "acks": config.acks,
            "producers": config.producers,
            "consumers": config.consumers,
            "partitions": config.partitions,
            "compression": format!("{:?}", config.compression).to_lowercase(),
            "batch_bytes": config.batch_bytes,
            "keys": config.keys.name(),
            "key_count": config.key_count,
            "seed": config.seed,
        },
        "publish_latency_us": percentiles(&result.publish_latency),
        "service_time_us": percentiles(&result.service_time),
        "e2e_latency_us": result.e2e_latency.as_ref().map_or(Value::Null, percentiles),
        "throughput": {
            "produced_msgs_per_s": result.produced as f64 / seconds,
            "produced_mb_per_s": mb / seconds,
            "consumed_msgs_per_s": result.consumed as f64 / seconds,
            "consumed_mb_per_s": result.consumed as f64 * result.message_bytes as f64 / 1e6 / seconds,
            "produced": result.produced,
            "consumed": result.consumed,
            "errors": errors,
        },
        "errors_by_code": result.errors.iter().map(|(code, count)| (code.to_string(), json!(count))).collect::<Map<_, _>>(),
        "elapsed_s": seconds,
        "aborted": result.aborted,
        "series": result.series.iter().map(|s| json!({
            "at_s": s.at_s,
            "produced_msgs": s.produced,
            "produced_mb": s.produced as f64 * result.message_bytes as f64 / 1e6,
            "consumed_msgs": s.consumed,
            "errors": s.errors,
            "publish_p50_us": s.publish_p50_us,
            "publish_p99_us": s.publish_p99_us,
            "backlog": s.backlog,
        })).collect::<Vec<_>>(),
    })
}

/// The human summary.
pub fn table(config: &RunConfig, result: &RunResult) -> String {
    let seconds = result.elapsed.as_secs_f64().max(f64::MIN_POSITIVE);
    let mut out = String::new();
    if let Some(reason) = &result.aborted {
        out.push_str(&format!("the run ended early: {reason}\n"));
    }
    let target = if config.rate > 0.0 {
        format!("target {:.0}", config.rate)
    } else {
        "as fast as possible".to_string()
    };
    out.push_str(&format!(
        "produced {} messages in {seconds:.2} s: {:.0} msgs/s ({target}), {:.2} MB/s, {} errors; consumed {}\n",
        result.produced,
        result.produced as f64 / seconds,
        result.produced as f64 * result.message_bytes as f64 / 1e6 / seconds,
        result.errors.values().sum::<u64>(),
        result.consumed,
    ));
    if !result.errors.is_empty() {
        let codes: Vec<String> = result
            .errors
            .iter()
            .map(|(code, count)| format!("{count} with error code {code}"))
            .collect();
        out.push_str(&format!(
            "errors by Kafka error code: {}\n",
            codes.join(", ")
        ));
    }
    out.push_str(&format!("{:<14}", "latency (µs)"));
    for (name, _) in PERCENTILES {
        out.push_str(&format!("{name:>10}"));
    }
    out.push_str(&format!("{:>10}\n", "max"));
    let mut rows = vec![
        ("publish", &result.publish_latency),
        ("service time", &result.service_time),
    ];
    if let Some(e2e) = &result.e2e_latency {
        rows.push(("end to end", e2e));
    }
    for (label, histogram) in rows {
        out.push_str(&format!("{label:<14}"));
        for (_, quantile) in PERCENTILES {
            out.push_str(&format!("{:>10}", histogram.value_at_percentile(quantile)));
        }
        out.push_str(&format!("{:>10}\n", histogram.max()));
    }
    out
}

/// A histogram in HdrHistogram's percentile-distribution text format (`.hgrm`, what the
/// HdrHistogram plotters read), values in milliseconds.
pub fn hgrm(histogram: &Histogram<u64>) -> String {
    const TICKS_PER_HALF_DISTANCE: u32 = 5;
    let mut out = format!(
        "{:>12} {:>14} {:>10} {:>14}\n\n",
        "Value", "Percentile", "TotalCount", "1/(1-Percentile)"
    );
    for step in histogram.iter_quantiles(TICKS_PER_HALF_DISTANCE) {
        let quantile = step.quantile_iterated_to();
        let value_ms = step.value_iterated_to() as f64 / 1000.0;
        let total = histogram.count_between(0, step.value_iterated_to());
        if quantile < 1.0 {
            out.push_str(&format!(
                "{value_ms:>12.3} {quantile:>14.12} {total:>10} {:>14.2}\n",
                1.0 / (1.0 - quantile)
            ));
        } else {
            out.push_str(&format!("{value_ms:>12.3} {quantile:>14.12} {total:>10}\n"));
        }
    }
    out.push_str(&format!(
        "#[Mean    = {:>12.3}, StdDeviation   = {:>12.3}]\n",
        histogram.mean() / 1000.0,
        histogram.stdev() / 1000.0
    ));
    out.push_str(&format!(
        "#[Max     = {:>12.3}, Total count    = {:>12}]\n",
        histogram.max() as f64 / 1000.0,
        histogram.len()
    ));
    out
}

/// The capacity result document: the plan, every step (target, achieved, publish
/// percentiles, verdict) and the highest passing rate.
pub fn capacity_json(
    config: &RunConfig,
    plan: &crate::capacity::Plan,
    steps: &[crate::capacity::Step],
    highest: Option<f64>,
) -> Value {
    json!({
        "config": json(config, &empty_result(config))["config"],
        "plan": {
            "start_rate_msgs_per_s": plan.start_rate,
            "step_factor": plan.step_factor,
            "step_duration_s": plan.step_duration.as_secs_f64(),
            "slos_us": plan.slos.iter().map(|s| (s.percentile.clone(), json!(s.bound_us))).collect::<Map<_, _>>(),
        },
        "steps": steps.iter().map(|s| json!({
            "target_msgs_per_s": s.target,
            "achieved_msgs_per_s": s.achieved,
            "publish_latency_us": percentiles(&s.result.publish_latency),
            "errors": s.result.errors.values().sum::<u64>(),
            "errors_by_code": s.result.errors.iter().map(|(code, count)| (code.to_string(), json!(count))).collect::<Map<_, _>>(),
            "passed": s.failed.is_none(),
            "failure": s.failed,
        })).collect::<Vec<_>>(),
        "highest_passing_msgs_per_s": highest,
        "highest_passing_mb_per_s": highest.map(|r| r * config.mean_message_bytes() / 1e6),
    })
}

/// A result with nothing measured (for documents that only need the config).
fn empty_result(config: &RunConfig) -> RunResult {
    RunResult {
        produced: 0,
        errors: Default::default(),
        publish_latency: crate::consume::latency_histogram(),
        service_time: crate::consume::latency_histogram(),
        elapsed: std::time::Duration::ZERO,
        message_bytes: config.mean_message_bytes().round() as usize,
        consumed: 0,
        e2e_latency: None,
        series: Vec::new(),
        aborted: None,
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn hgrm_lists_rising_percentiles_and_the_summary_lines() {
        let mut histogram = Histogram::<u64>::new_with_bounds(1, 3_600_000_000, 3).expect("bounds");
        for value in 1..=10_000_u64 {
            histogram.record(value * 10).expect("record");
        }
        let text = hgrm(&histogram);
        let rows: Vec<(f64, f64)> = text
            .lines()
            .skip(2)
            .take_while(|line| !line.starts_with('#'))
            .map(|line| {
                let fields: Vec<&str> = line.split_whitespace().collect();
                (
                    fields[0].parse().expect("value"),
                    fields[1].parse().expect("percentile"),
                )
            })
            .collect();
        assert!(rows.len() > 20, "{} rows", rows.len());
        assert!(
            rows.windows(2)
                .all(|w| w[0].0 <= w[1].0 && w[0].1 <= w[1].1),
            "values and percentiles rise"
        );
        let (last_value, last_quantile) = *rows.last().expect("rows");
        assert_eq!(last_quantile, 1.0);
        assert!(
            (last_value - 100.0).abs() < 0.2,
            "the max is 100 ms: {last_value}"
        );
        assert!(
            text.contains("#[Max     =") && text.contains("Total count    =        10000"),
            "{text}"
        );
    }
}
