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
            "rate_msgs_per_s": config.rate,
            "message_bytes": config.message_bytes,
            "duration_s": config.duration.as_secs_f64(),
            "warmup_s": config.warmup.as_secs_f64(),
            "acks": config.acks,
            "producers": 1,
            "consumers": config.consumers,
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
    })
}

/// The human summary.
pub fn table(config: &RunConfig, result: &RunResult) -> String {
    let seconds = result.elapsed.as_secs_f64().max(f64::MIN_POSITIVE);
    let mut out = format!(
        "produced {} messages in {seconds:.2} s: {:.0} msgs/s (target {:.0}), {:.2} MB/s, {} errors; consumed {}\n",
        result.produced,
        result.produced as f64 / seconds,
        config.rate,
        result.produced as f64 * result.message_bytes as f64 / 1e6 / seconds,
        result.errors.values().sum::<u64>(),
        result.consumed,
    );
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
