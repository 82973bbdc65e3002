//! Named scenarios against a broker address, run through the loadgen library (the Kafka
//! protocol only, so any Kafka-compatible broker will do):
//!
//! - `produce-max`: as fast as possible, acks=all, 1 KiB records, 8 partitions, 16 producers;
//!   throughput compared with the raw O_DIRECT write bandwidth.
//! - `produce-latency`: fixed rates at 10, 50 and 80 % of that run's produce-max, with a
//!   consumer; publish and end-to-end percentiles; publish p99 at 50 % compared with twice the
//!   raw fdatasync p99.
//! - `keyed`: produce-max with random keys (many small batches), compared with unkeyed.
//! - `partitions-scale`: produce-max over 1, 10, 100 and 1000 partitions, each compared with
//!   the 8-partition figure.
//! - `catch-up`: a backlog written as fast as possible, then read from the start by one
//!   consumer per partition group; compared with the raw read bandwidth.
//! - `connections-scale`: 1 to 1000 producers (each with its own connections) sharing half of
//!   produce-max's rate; throughput and publish latency at each count.
//!
//! When the broker is a local process (its pid known), its CPU seconds, peak RSS and bytes
//! written to disk per byte produced are recorded beside each scenario.

use crate::report::Report;
use spate_loadgen::keys::Keys;
use spate_loadgen::run::{catch_up, run_on_cores, RunConfig, RunResult};
use std::time::Duration;

/// The scenarios, by name.
pub const SCENARIOS: [&str; 6] = [
    "produce-max",
    "produce-latency",
    "keyed",
    "partitions-scale",
    "catch-up",
    "connections-scale",
];

/// The longest a catch-up read may take.
const CATCH_UP_LIMIT: Duration = Duration::from_secs(600);

/// How to run the scenarios.
#[derive(Debug, Clone)]
pub struct ScenarioConfig {
    /// The broker.
    pub bootstrap: String,
    /// The broker's process id, for its resource figures (a local broker).
    pub pid: Option<u32>,
    /// How long each measured load runs (its warm-up included).
    pub duration: Duration,
    /// The first part of each load, left out of the latency figures.
    pub warmup: Duration,
    /// Executors for the load generator.
    pub cores: u32,
    /// Partition counts of `partitions-scale`.
    pub partition_counts: Vec<i32>,
    /// Producer counts of `connections-scale`.
    pub connection_counts: Vec<u32>,
    /// Put before every figure's name: empty for Spate, `peer.<name>.` for a peer broker.
    pub prefix: String,
}

/// A loadgen configuration for the scenarios: acks=all, 1 KiB records, no consumer.
fn base(config: &ScenarioConfig, topic: String, partitions: i32) -> RunConfig {
    RunConfig {
        bootstrap: config.bootstrap.clone(),
        topic,
        topics: 1,
        rate: 0.0,
        linger: Duration::ZERO,
        message_bytes: 1024,
        message_bytes_max: 1024,
        payload_file: None,
        idempotent: false,
        duration: config.duration,
        warmup: config.warmup,
        acks: -1,
        // Each producer keeps one request in flight per leader, so with acks=all a few
        // producers measure the flush latency, not the broker's ceiling: on the development
        // machine 4 producers reached 867 MB/s, 16 reached 1.1–1.2 GB/s, and 64 fell back
        // to 785 MB/s (the load generator then needs most of a core).
        producers: 16,
        consumers: 0,
        partitions: Some(partitions),
        compression: spate_model::Compression::None,
        batch_bytes: spate_loadgen::workload::DEFAULT_BATCH_BYTES,
        keys: Keys::None,
        key_count: 1000,
        seed: 1,
        live: false,
    }
}

/// A process's CPU seconds (user + system), peak resident set (MiB) and bytes written to
/// storage so far, from /proc.
fn process_figures(pid: u32) -> Option<(f64, f64, f64)> {
    let stat = std::fs::read_to_string(format!("/proc/{pid}/stat")).ok()?;
    // Fields after the command name (which may hold spaces) start after the last ')'.
    let fields: Vec<&str> = stat.rsplit_once(')')?.1.split_whitespace().collect();
    let ticks: f64 = fields.get(11)?.parse::<f64>().ok()? + fields.get(12)?.parse::<f64>().ok()?;
    let status = std::fs::read_to_string(format!("/proc/{pid}/status")).ok()?;
    let peak_kib: f64 = status
        .lines()
        .find(|l| l.starts_with("VmHWM:"))?
        .split_whitespace()
        .nth(1)?
        .parse()
        .ok()?;
    let io = std::fs::read_to_string(format!("/proc/{pid}/io")).ok()?;
    let written: f64 = io
        .lines()
        .find(|l| l.starts_with("write_bytes:"))?
        .split_whitespace()
        .nth(1)?
        .parse()
        .ok()?;
    // Linux reports CPU time in clock ticks of 1/100 s on every platform we run on.
    Some((ticks / 100.0, peak_kib / 1024.0, written))
}

/// Runs one load; its figures are recorded as `<name>.*`. Returns the result.
fn measure(
    report: &mut Report,
    config: &ScenarioConfig,
    name: &str,
    load: &RunConfig,
) -> Result<RunResult, String> {
    let name = &format!("{}{name}", config.prefix);
    let before = config.pid.and_then(process_figures);
    let result = run_on_cores(load, config.cores)?;
    if let Some(reason) = &result.aborted {
        return Err(format!("{name}: the load ended early: {reason}"));
    }
    let errors: u64 = result.errors.values().sum();
    if errors > 0 {
        return Err(format!(
            "{name}: {errors} messages failed: {:?}",
            result.errors
        ));
    }
    let seconds = result.elapsed.as_secs_f64().max(1e-9);
    let produced_bytes = result.produced as f64 * load.mean_message_bytes();
    report.record(
        &format!("{name}.throughput"),
        "MiB/s",
        produced_bytes / seconds / f64::from(1 << 20),
    );
    report.record(
        &format!("{name}.messages"),
        "msg/s",
        result.produced as f64 / seconds,
    );
    for (label, quantile) in [("p50", 0.5), ("p99", 0.99), ("p999", 0.999)] {
        report.record(
            &format!("{name}.publish.{label}"),
            "us",
            result.publish_latency.value_at_quantile(quantile) as f64,
        );
    }
    if let Some(e2e) = &result.e2e_latency {
        report.record(
            &format!("{name}.e2e.p99"),
            "us",
            e2e.value_at_quantile(0.99) as f64,
        );
    }
    if let (Some((cpu0, _, written0)), Some((cpu1, peak, written1))) =
        (before, config.pid.and_then(process_figures))
    {
        report.record(&format!("{name}.broker.cpu"), "s", cpu1 - cpu0);
        report.record(&format!("{name}.broker.peak_rss"), "MiB", peak);
        report.record(
            &format!("{name}.broker.write_amplification"),
            "x",
            (written1 - written0) / produced_bytes.max(1.0),
        );
    }
    delete_topics(load)?;
    Ok(result)
}

/// Deletes a load's topics once it is measured, so a run's scenarios do not fill the disk
/// (their data is not read again).
fn delete_topics(load: &RunConfig) -> Result<(), String> {
    use spate_loadgen::client::Connection;
    use spate_protocol::kafka_protocol::messages::delete_topics_request::DeleteTopicsRequest;
    use spate_protocol::kafka_protocol::messages::{ApiKey, RequestKind, ResponseKind, TopicName};
    use spate_protocol::kafka_protocol::protocol::StrBytes;
    let bootstrap = load.bootstrap.clone();
    let names = load.topic_names();
    spate_loadgen::run::on_executor("bench-cleanup", move || async move {
        let mut connection = Connection::connect(&bootstrap)
            .await
            .map_err(|e| e.to_string())?;
        let version = connection
            .version(ApiKey::DeleteTopics, (1, 5))
            .map_err(|e| e.to_string())?;
        let request = DeleteTopicsRequest::default()
            .with_timeout_ms(30_000)
            .with_topic_names(
                names
                    .iter()
                    .map(|n| TopicName(StrBytes::from_string(n.clone())))
                    .collect(),
            );
        let response = connection
            .call(
                ApiKey::DeleteTopics,
                version,
                RequestKind::DeleteTopics(request),
            )
            .await
            .map_err(|e| e.to_string())?;
        let ResponseKind::DeleteTopics(deleted) = response else {
            return Err("unexpected DeleteTopics response".to_string());
        };
        match deleted.responses.iter().find(|r| r.error_code != 0) {
            Some(failed) => Err(format!(
                "deleting {:?} after the scenario: error {}",
                failed.name, failed.error_code
            )),
            None => Ok(()),
        }
    })?
}

/// Runs the named scenarios once (run number `run` names the topics), recording figures.
pub fn run_once(
    report: &mut Report,
    config: &ScenarioConfig,
    names: &[String],
    run: usize,
) -> Result<(), String> {
    let wants = |name: &str| names.iter().any(|n| n == name);
    // An unmeasured load first: the first load on a fresh broker ran ~10 % slower than the
    // same load later in the run (topic creation, first segment files, device state after
    // the limit probes), which biased every figure compared with produce-max.
    let mut warm = base(config, format!("bench-warmup-{run}"), 8);
    warm.duration = config.warmup.max(Duration::from_secs(1));
    warm.warmup = Duration::ZERO;
    let warmed = run_on_cores(&warm, config.cores)?;
    if let Some(reason) = warmed.aborted {
        return Err(format!("warm-up: the load ended early: {reason}"));
    }
    delete_topics(&warm)?;
    // Every other scenario is relative to produce-max, so it always runs.
    let max = measure(
        report,
        config,
        "produce_max",
        &base(config, format!("bench-max-{run}"), 8),
    )?;
    let max_rate = max.produced as f64 / max.elapsed.as_secs_f64().max(1e-9);
    if wants("produce-latency") {
        for percent in [10, 50, 80] {
            let mut load = base(config, format!("bench-latency-{percent}-{run}"), 8);
            load.rate = (max_rate * f64::from(percent) / 100.0).max(1.0);
            load.consumers = 1;
            measure(
                report,
                config,
                &format!("produce_latency.{percent}pct"),
                &load,
            )?;
        }
    }
    if wants("keyed") {
        let mut load = base(config, format!("bench-keyed-{run}"), 8);
        load.keys = Keys::Random;
        measure(report, config, "keyed", &load)?;
    }
    if wants("partitions-scale") {
        for &count in &config.partition_counts {
            let load = base(config, format!("bench-partitions-{count}-{run}"), count);
            measure(report, config, &format!("partitions_{count}"), &load)?;
        }
    }
    if wants("connections-scale") {
        for &count in &config.connection_counts {
            let mut load = base(config, format!("bench-connections-{count}-{run}"), 8);
            load.producers = count;
            load.rate = (max_rate / 2.0).max(1.0);
            measure(report, config, &format!("connections_{count}"), &load)?;
        }
    }
    if wants("catch-up") {
        // The backlog: as fast as possible for the scenario's duration, not measured.
        let mut load = base(config, format!("bench-catch-up-{run}"), 8);
        load.warmup = Duration::ZERO;
        let written = run_on_cores(&load, config.cores)?;
        if let Some(reason) = written.aborted {
            return Err(format!(
                "catch-up: writing the backlog ended early: {reason}"
            ));
        }
        load.consumers = 8;
        let before = config.pid.and_then(process_figures);
        let caught = catch_up(&load, config.cores, CATCH_UP_LIMIT)?;
        if caught.records < caught.records_expected {
            return Err(format!(
                "catch-up: read {} of {} records",
                caught.records, caught.records_expected
            ));
        }
        let bytes = caught.records as f64 * load.mean_message_bytes();
        let seconds = caught.elapsed.as_secs_f64().max(1e-9);
        let prefix = &config.prefix;
        report.record(
            &format!("{prefix}catch_up.backlog"),
            "MiB",
            bytes / f64::from(1 << 20),
        );
        report.record(
            &format!("{prefix}catch_up.throughput"),
            "MiB/s",
            bytes / seconds / f64::from(1 << 20),
        );
        if let (Some((cpu0, _, _)), Some((cpu1, peak, _))) =
            (before, config.pid.and_then(process_figures))
        {
            report.record(&format!("{prefix}catch_up.broker.cpu"), "s", cpu1 - cpu0);
            report.record(&format!("{prefix}catch_up.broker.peak_rss"), "MiB", peak);
        }
        delete_topics(&load)?;
    }
    Ok(())
}

/// Sets each scenario figure's comparison: throughputs against the disk limits or the
/// 8-partition figure, latency at half load against twice the fdatasync p99. For a peer
/// (`prefix` set), its relative figures against its own produce-max, and its produce-max
/// and catch-up against Spate's (the ratio to Spate).
pub fn compare(report: &mut Report, config: &ScenarioConfig) {
    let p = &config.prefix;
    let max = format!("{p}produce_max.throughput");
    if p.is_empty() {
        report.compare(&max, "limit.disk.write");
        report.compare("catch_up.throughput", "limit.catch_up_ceiling");
        report.compare("produce_latency.50pct.publish.p99", "limit.fdatasync.p99x2");
    } else {
        report.compare(&max, "produce_max.throughput");
        report.compare(&format!("{p}catch_up.throughput"), "catch_up.throughput");
    }
    report.compare(&format!("{p}keyed.throughput"), &max);
    for count in &config.partition_counts {
        report.compare(&format!("{p}partitions_{count}.throughput"), &max);
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn this_process_has_resource_figures() {
        let (cpu, peak, written) = process_figures(std::process::id()).expect("figures");
        assert!(
            cpu >= 0.0 && peak > 1.0 && written >= 0.0,
            "{cpu} {peak} {written}"
        );
        assert!(process_figures(u32::MAX).is_none());
    }
}
