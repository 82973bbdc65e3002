//! Capacity planning: run the workload at a rising rate (a start rate, multiplied by a step
//! factor each step) until a latency objective breaks, the achieved rate falls short of the
//! target, or errors appear; the highest rate that met everything is the answer.

use crate::report::PERCENTILES;
use crate::run::{run_on_cores, RunConfig, RunResult};
use crate::workload::MAX_RATE;
use std::time::Duration;

/// The most steps one capacity run takes.
pub const MAX_STEPS: u32 = 50;
/// A step whose achieved rate is below this share of its target fails.
pub const MIN_ACHIEVED_SHARE: f64 = 0.95;

/// A latency objective: publish latency at a percentile within a bound.
#[derive(Debug, Clone, PartialEq)]
pub struct Slo {
    /// The percentile's name (`p50` … `p99.99`, or `max`).
    pub percentile: String,
    /// The bound, in microseconds.
    pub bound_us: u64,
}

impl std::str::FromStr for Slo {
    type Err = String;

    /// `p99=10ms`, `p99.9=250us`, `max=1s`.
    fn from_str(text: &str) -> Result<Slo, String> {
        let (name, bound) = text
            .split_once('=')
            .ok_or_else(|| format!("{text:?}: write it as p99=10ms"))?;
        if name != "max" && !PERCENTILES.iter().any(|(known, _)| *known == name) {
            let known: Vec<&str> = PERCENTILES.iter().map(|(n, _)| *n).collect();
            return Err(format!(
                "{name:?} is not a reported percentile ({}, max)",
                known.join(", ")
            ));
        }
        let (number, unit) = bound.split_at(
            bound
                .find(|c: char| c.is_ascii_alphabetic())
                .ok_or_else(|| format!("{bound:?}: give a unit (us, ms, s)"))?,
        );
        let value: f64 = number
            .parse()
            .map_err(|_| format!("{bound:?} is not a number with a unit"))?;
        let scale = match unit {
            "us" | "µs" => 1.0,
            "ms" => 1e3,
            "s" => 1e6,
            other => return Err(format!("unknown unit {other:?} (us, ms, s)")),
        };
        if !(value > 0.0 && value * scale <= 3.6e9) {
            return Err(format!("{bound:?} is out of range"));
        }
        Ok(Slo {
            percentile: name.to_string(),
            bound_us: (value * scale) as u64,
        })
    }
}

/// How to step the rate.
#[derive(Debug, Clone)]
pub struct Plan {
    /// The first step's rate (messages per second).
    pub start_rate: f64,
    /// Each step's rate is the previous one's times this (> 1).
    pub step_factor: f64,
    /// How long each step runs (its warm-up included).
    pub step_duration: Duration,
    /// The objectives every passing step meets.
    pub slos: Vec<Slo>,
    /// Steps at most.
    pub max_steps: u32,
}

/// One step's outcome.
#[derive(Debug)]
pub struct Step {
    /// The target rate.
    pub target: f64,
    /// The rate achieved (acknowledged messages per second).
    pub achieved: f64,
    /// What the run measured.
    pub result: RunResult,
    /// Why the step failed, or `None` if it met everything.
    pub failed: Option<String>,
}

/// Runs `base` at rising rates as `plan` says, each step on `cores` executors; stops after
/// the first failing step.
pub fn capacity(base: &RunConfig, plan: &Plan, cores: u32) -> Result<Vec<Step>, String> {
    let mut steps = Vec::new();
    let mut rate = plan.start_rate;
    for _ in 0..plan.max_steps.min(MAX_STEPS) {
        if rate > MAX_RATE {
            break;
        }
        let config = RunConfig {
            rate,
            duration: plan.step_duration,
            ..base.clone()
        };
        let result = run_on_cores(&config, cores)?;
        let achieved = result.produced as f64 / result.elapsed.as_secs_f64().max(1e-9);
        let failed = judge(&plan.slos, rate, achieved, &result);
        let stop = failed.is_some();
        steps.push(Step {
            target: rate,
            achieved,
            result,
            failed,
        });
        if stop {
            break;
        }
        rate *= plan.step_factor;
    }
    Ok(steps)
}

/// Why a step fails, if it does.
fn judge(slos: &[Slo], target: f64, achieved: f64, result: &RunResult) -> Option<String> {
    if let Some(reason) = &result.aborted {
        return Some(format!("the run ended early: {reason}"));
    }
    let errors: u64 = result.errors.values().sum();
    if errors > 0 {
        return Some(format!("{errors} messages failed"));
    }
    if achieved < target * MIN_ACHIEVED_SHARE {
        return Some(format!(
            "achieved {achieved:.0} msgs/s, below {:.0}% of the target",
            MIN_ACHIEVED_SHARE * 100.0
        ));
    }
    for slo in slos {
        let measured = percentile(result, &slo.percentile);
        if measured > slo.bound_us {
            return Some(format!(
                "publish {} {measured} µs exceeds {} µs",
                slo.percentile, slo.bound_us
            ));
        }
    }
    None
}

/// A publish-latency percentile of `result` by name (µs).
pub fn percentile(result: &RunResult, name: &str) -> u64 {
    match PERCENTILES.iter().find(|(known, _)| *known == name) {
        Some((_, quantile)) => result.publish_latency.value_at_percentile(*quantile),
        None => result.publish_latency.max(),
    }
}

/// The highest target rate among the passing steps.
pub fn highest_passing(steps: &[Step]) -> Option<f64> {
    steps
        .iter()
        .filter(|s| s.failed.is_none())
        .map(|s| s.target)
        .reduce(f64::max)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn objectives_parse_with_units() {
        let slo: Slo = "p99=10ms".parse().expect("valid");
        assert_eq!((slo.percentile.as_str(), slo.bound_us), ("p99", 10_000));
        assert_eq!("p99.9=250us".parse::<Slo>().map(|s| s.bound_us), Ok(250));
        assert_eq!("max=1.5s".parse::<Slo>().map(|s| s.bound_us), Ok(1_500_000));
        for bad in ["p99", "p98=1ms", "p99=10", "p99=10h", "p99=-1ms"] {
            assert!(bad.parse::<Slo>().is_err(), "{bad}");
        }
    }
}
