//! The `spate-bench` binary end to end, small: every figure is produced, the JSON carries
//! values, units, limits and ratios, and bad arguments are refused with a message.

use std::process::Command;

fn bench() -> Command {
    Command::new(env!("CARGO_BIN_EXE_spate-bench"))
}

#[test]
fn storage_scenario_reports_every_figure_against_its_limit() {
    let dir = tempfile::tempdir().expect("temp dir");
    let json = dir.path().join("figures.json");
    let output = bench()
        .args([
            "storage",
            "--runs",
            "2",
            "--mib",
            "8",
            "--producers",
            "4,8",
            "--dir",
        ])
        .arg(dir.path())
        .arg("--json")
        .arg(&json)
        .output()
        .expect("run spate-bench");
    assert!(
        output.status.success(),
        "{}",
        String::from_utf8_lossy(&output.stderr)
    );
    let table = String::from_utf8_lossy(&output.stdout);
    assert!(table.contains("storage.append.8p.8w.throughput"), "{table}");
    let report: serde_json::Value =
        serde_json::from_slice(&std::fs::read(&json).expect("json written")).expect("valid json");
    let figures = report["figures"].as_array().expect("figures");
    let find = |name: &str| {
        figures
            .iter()
            .find(|f| f["name"] == name)
            .unwrap_or_else(|| panic!("{name} missing"))
    };
    for name in [
        "storage.append.1p.4w.throughput",
        "storage.append.1p.8w.throughput",
        "storage.append.8p.4w.throughput",
        "storage.append.8p.8w.throughput",
        "storage.append.1p.4w.recycled.throughput",
        "storage.append.8p.8w.recycled.throughput",
        "storage.read.throughput",
        "limit.disk.overwrite",
        "limit.disk.write_durable_1MiB_rounds_fresh",
        "limit.disk.read_same_file",
    ] {
        let figure = find(name);
        assert_eq!(figure["unit"], "MiB/s");
        assert!(figure["value"].as_f64().expect("value") > 0.0, "{name}");
        if name.starts_with("storage.") {
            assert!(
                figure["ratio_to_limit"].as_f64().expect("ratio") > 0.0,
                "{name}"
            );
        }
        assert_eq!(figure["runs"].as_array().expect("runs").len(), 2, "{name}");
    }
    assert!(find("limit.fdatasync.p99")["value"].as_f64().expect("p99") > 0.0);
    assert!(
        find("storage.append.8p.8w.fdatasync_mean")["value"]
            .as_f64()
            .expect("mean")
            > 0.0
    );
    let value = |name: &str| find(name)["value"].as_f64().expect("value");
    assert!(value("limit.loopback_tcp") > 0.0);
    let ceiling = value("limit.catch_up_ceiling");
    // Per run the slower of disk and network, so its median is at most either median.
    let slower = value("limit.disk.read").min(value("limit.loopback_tcp"));
    assert!(
        ceiling > 0.0 && ceiling <= slower + 1e-9,
        "{ceiling} > {slower}"
    );
    // The scratch directory is removed afterwards.
    let left: Vec<_> = std::fs::read_dir(dir.path())
        .expect("dir")
        .filter_map(Result::ok)
        .map(|e| e.file_name())
        .collect();
    assert_eq!(left, vec![std::ffi::OsString::from("figures.json")]);
}

#[test]
fn bad_arguments_are_refused() {
    let output = bench()
        .args(["storage", "--runs", "0"])
        .output()
        .expect("run spate-bench");
    assert!(!output.status.success());
    assert!(
        String::from_utf8_lossy(&output.stderr).contains("--runs"),
        "names the problem"
    );
    let output = bench()
        .args(["nonsense"])
        .output()
        .expect("run spate-bench");
    assert!(!output.status.success());
}
