//! The operator subcommands (`spate topic|group|produce|consume|cluster`) end to end against
//! a running broker, with real clients on the other side, and their error paths.

mod common;

use common::{python, test_shards, Broker};
use std::io::Write;
use std::process::{Command, Output, Stdio};

/// Runs `spate ARGS` with `stdin`; (exit code, stdout, stderr).
fn spate_with(args: &[&str], stdin: &[u8]) -> (i32, String, String) {
    let mut child = Command::new(env!("CARGO_BIN_EXE_spate"))
        .args(args)
        .stdin(Stdio::piped())
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .spawn()
        .expect("run spate");
    child
        .stdin
        .take()
        .expect("stdin")
        .write_all(stdin)
        .expect("write stdin");
    let Output {
        status,
        stdout,
        stderr,
    } = child.wait_with_output().expect("wait");
    (
        status.code().expect("exited"),
        String::from_utf8_lossy(&stdout).into_owned(),
        String::from_utf8_lossy(&stderr).into_owned(),
    )
}

/// `spate ARGS -b BROKER`.
struct Cli<'a> {
    bootstrap: &'a str,
}

impl Cli<'_> {
    fn run(&self, args: &[&str]) -> (i32, String, String) {
        self.with_stdin(args, b"")
    }

    fn with_stdin(&self, args: &[&str], stdin: &[u8]) -> (i32, String, String) {
        let mut all = args.to_vec();
        all.extend_from_slice(&["--bootstrap", self.bootstrap]);
        spate_with(&all, stdin)
    }

    /// Runs and expects exit 0; returns stdout.
    fn ok(&self, args: &[&str]) -> String {
        let (code, stdout, stderr) = self.run(args);
        assert_eq!(code, 0, "spate {args:?} failed:\n{stdout}\n{stderr}");
        stdout
    }

    fn json(&self, args: &[&str]) -> serde_json::Value {
        let mut all = args.to_vec();
        all.push("--json");
        let stdout = self.ok(&all);
        serde_json::from_str(&stdout).unwrap_or_else(|e| panic!("{e}: {stdout}"))
    }

    /// Runs and expects exit `code`; returns stderr.
    fn fails(&self, args: &[&str], code: i32) -> String {
        let (got, stdout, stderr) = self.run(args);
        assert_eq!(got, code, "spate {args:?}:\n{stdout}\n{stderr}");
        // Ours start "spate: ", clap's usage errors "error: ".
        assert!(
            stderr.starts_with("spate: ") || stderr.starts_with("error: "),
            "a clear message: {stderr}"
        );
        stderr
    }
}

/// A broker on a fresh data directory (kept as long as the returned guard).
fn started() -> (tempfile::TempDir, Broker) {
    let data = tempfile::tempdir().expect("temp dir");
    let broker = Broker::start(data.path());
    (data, broker)
}

impl<'a> Cli<'a> {
    fn of(broker: &'a Broker) -> Cli<'a> {
        Cli {
            bootstrap: &broker.address,
        }
    }
}

fn total_lag(cli: &Cli<'_>, group: &str) -> i64 {
    cli.json(&["group", "describe", group])["total_lag"]
        .as_i64()
        .expect("total_lag")
}

#[test]
fn topic_subcommands_and_their_errors() {
    let (_data, broker) = started();
    let cli = Cli::of(&broker);
    let out = cli.ok(&[
        "topic",
        "create",
        "orders",
        "-p",
        "3",
        "-c",
        "retention.ms=3600000",
    ]);
    assert!(out.contains("created topic orders (3 partitions"), "{out}");
    let err = cli.fails(&["topic", "create", "orders", "-p", "3"], 1);
    assert!(err.contains("TopicAlreadyExists (36)"), "{err}");
    cli.fails(&["topic", "create", "bad", "-c", "novalue"], 2);
    let err = cli.fails(&["topic", "create", "bad", "-c", "no.such.config=1"], 1);
    assert!(err.contains("InvalidConfig"), "{err}");

    let listed = cli.ok(&["topic", "list"]);
    assert!(listed.starts_with("NAME"), "{listed}");
    assert!(listed.contains("orders  3"), "{listed}");
    assert!(!listed.contains("__consumer_offsets"));
    let listed = cli.json(&["topic", "list", "--internal"]);
    let names: Vec<&str> = listed
        .as_array()
        .expect("list")
        .iter()
        .map(|t| t["name"].as_str().expect("name"))
        .collect();
    assert!(names.contains(&"orders") && names.contains(&"__consumer_offsets"));

    let described = cli.ok(&["topic", "describe", "orders"]);
    assert!(
        described.contains("TOPIC orders (3 partitions)"),
        "{described}"
    );
    assert!(described.contains("retention.ms  3600000"), "{described}");
    let err = cli.fails(&["topic", "describe", "nosuch"], 1);
    assert!(err.contains("UnknownTopicOrPartition (3)"), "{err}");

    cli.ok(&[
        "topic",
        "alter-config",
        "orders",
        "--set",
        "retention.ms=7200000",
        "--set",
        "segment.bytes=1048576",
    ]);
    cli.ok(&[
        "topic",
        "alter-config",
        "orders",
        "--delete",
        "segment.bytes",
    ]);
    let described = cli.json(&["topic", "describe", "orders"]);
    let configs = &described[0]["configs"];
    assert_eq!(configs["retention.ms"], "7200000");
    assert!(configs.get("segment.bytes").is_none(), "{configs}");
    cli.fails(&["topic", "alter-config", "orders"], 2);

    cli.ok(&["topic", "add-partitions", "orders", "--total", "4"]);
    let described = cli.json(&["topic", "describe", "orders"]);
    let partitions = described[0]["partitions"].as_array().expect("partitions");
    assert_eq!(partitions.len(), 4);
    assert!(partitions.iter().all(|p| p["high_watermark"] == 0));
    let err = cli.fails(&["topic", "add-partitions", "orders", "--total", "2"], 1);
    assert!(err.contains("InvalidPartitions"), "{err}");

    let out = cli.ok(&["topic", "delete", "orders"]);
    assert!(out.contains("deleted topic orders"));
    let err = cli.fails(&["topic", "delete", "orders"], 1);
    assert!(err.contains("UnknownTopicOrPartition"), "{err}");

    let status = cli.json(&["cluster", "status"]);
    assert_eq!(status["brokers"][0]["reachable"], true);
    assert_eq!(status["offline_partitions"], 0);
    let text = cli.ok(&["cluster", "status"]);
    assert!(
        text.contains("controller 0") && text.contains(" up"),
        "{text}"
    );

    // A broker that is not there: a clear message and exit 3.
    let down = Cli {
        bootstrap: "127.0.0.1:1",
    };
    for args in [
        &["topic", "list"][..],
        &["group", "list"],
        &["cluster", "status"],
        &["consume", "x", "-e"],
    ] {
        let err = down.fails(args, 3);
        assert!(err.contains("cannot reach 127.0.0.1:1"), "{err}");
    }
    let (code, stdout, _) = spate_with(&["topic", "--help"], b"");
    assert_eq!(code, 0);
    assert!(stdout.contains("Examples:") && stdout.contains("add-partitions"));
}

#[test]
fn produce_consume_and_group_offsets() {
    let (_data, broker) = started();
    let cli = Cli::of(&broker);
    cli.ok(&["topic", "create", "events", "-p", "3"]);
    let lines: String = (0..20).map(|i| format!("user-{i}:clicked {i}\n")).collect();
    let (code, _, stderr) = cli.with_stdin(
        &[
            "produce",
            "events",
            "--key-separator",
            ":",
            "-H",
            "source=cli",
        ],
        lines.as_bytes(),
    );
    assert_eq!(code, 0, "{stderr}");
    assert!(stderr.contains("produced 20 records to events"), "{stderr}");
    let (code, _, stderr) = cli.with_stdin(&["produce", "nosuch"], b"x\n");
    assert_eq!(code, 1);
    assert!(stderr.contains("UnknownTopicOrPartition"), "{stderr}");

    // Every record where Kafka's partitioner puts its key, with its header.
    let out = cli.ok(&["consume", "events", "-e", "--format", "%p %k %v|%h\\n"]);
    let printed: Vec<&str> = out.lines().collect();
    assert_eq!(printed.len(), 20, "{out}");
    for i in 0..20 {
        let key = format!("user-{i}");
        let partition = spate_model::partitioner::partition_for(key.as_bytes(), 3);
        let line = format!("{partition} {key} clicked {i}|source=cli");
        assert!(printed.contains(&line.as_str()), "{line} not in {out}");
    }
    let first_two = cli.ok(&[
        "consume", "events", "-p", "0", "-n", "2", "--format", "%o\\n",
    ]);
    assert_eq!(first_two, "0\n1\n");
    let records: Vec<serde_json::Value> = cli
        .ok(&["consume", "events", "--json", "-e"])
        .lines()
        .map(|l| serde_json::from_str(l).expect("a JSON line"))
        .collect();
    assert_eq!(records.len(), 20);
    assert!(records
        .iter()
        .all(|r| r["headers"]["source"] == "cli" && r["timestamp"].as_i64() > Some(0)));
    let future = (spate_model_now_ms() + 3_600_000).to_string();
    assert_eq!(
        cli.ok(&["consume", "events", "--from-timestamp", &future, "-e"]),
        ""
    );
    cli.fails(&["consume", "events", "--offset", "soon"], 2);
    cli.fails(&["consume", "events", "--format", "%z"], 2);

    // Records from a real client: gzip batches with headers, and acks=0 from the CLI.
    cli.ok(&["topic", "create", "mixed", "-p", "1"]);
    python("cli_produce.py", &[&broker.address, "mixed"]);
    let (code, _, stderr) = cli.with_stdin(&["produce", "mixed", "--acks", "0"], b"fire\n");
    assert_eq!(code, 0, "{stderr}");
    let mut out = String::new();
    for _ in 0..50 {
        out = cli.ok(&["consume", "mixed", "-e", "--format", "%o %k=%v %h\\n"]);
        if out.lines().count() == 4 {
            break;
        }
        std::thread::sleep(std::time::Duration::from_millis(100));
    }
    assert_eq!(
        out,
        "0 key-0=value-0 trace=t0\n1 key-1=value-1 trace=t1\n2 key-2=value-2 trace=t2\n3 =fire \n"
    );

    // A group consumed by the CLI commits where it stopped.
    let out = cli.ok(&["consume", "events", "--group", "audit", "-e"]);
    assert_eq!(out.lines().count(), 20);
    assert_eq!(total_lag(&cli, "audit"), 0);
    let more: String = (0..5).map(|i| format!("late-{i}\n")).collect();
    let (code, _, stderr) = cli.with_stdin(&["produce", "events", "-p", "1"], more.as_bytes());
    assert_eq!(code, 0, "{stderr}");
    assert_eq!(total_lag(&cli, "audit"), 5);
    let described = cli.ok(&["group", "describe", "audit"]);
    assert!(described.contains("total lag 5"), "{described}");
    assert!(described.contains("LAG"), "{described}");
    let out = cli.ok(&["consume", "events", "--group", "audit", "-e"]);
    assert_eq!(out, "late-0\nlate-1\nlate-2\nlate-3\nlate-4\n");
    let groups = cli.json(&["group", "list"]);
    assert!(groups
        .as_array()
        .expect("groups")
        .iter()
        .any(|g| g["group"] == "audit" && g["state"] == "Empty"));

    // reset-offsets: a dry run changes nothing; --execute does.
    let (code, stdout, stderr) = cli.run(&[
        "group",
        "reset-offsets",
        "audit",
        "--topic",
        "events",
        "--to-earliest",
    ]);
    assert_eq!(code, 0, "{stderr}");
    assert!(
        stdout.contains("CURRENT") && stderr.contains("dry run"),
        "{stdout}{stderr}"
    );
    assert_eq!(total_lag(&cli, "audit"), 0);
    cli.ok(&[
        "group",
        "reset-offsets",
        "audit",
        "--topic",
        "events",
        "--to-earliest",
        "--execute",
    ]);
    assert_eq!(total_lag(&cli, "audit"), 25);
    cli.ok(&[
        "group",
        "reset-offsets",
        "audit",
        "--topic",
        "events",
        "--partitions",
        "1",
        "--shift-by",
        "1000",
        "--execute",
    ]);
    let reset = cli.json(&["group", "describe", "audit"]);
    let one = reset["offsets"]
        .as_array()
        .expect("offsets")
        .iter()
        .find(|o| o["partition"] == 1)
        .expect("partition 1")
        .clone();
    assert_eq!(
        one["lag"], 0,
        "shifted past the end is kept at the end: {one}"
    );
    // A real group consumer resumes from the reset offsets: everything but partition 1.
    let left = total_lag(&cli, "audit");
    python(
        "metrics_group.py",
        &[&broker.address, "events", "audit", &left.to_string(), "0=0"],
    );
    cli.fails(
        &[
            "group",
            "reset-offsets",
            "audit",
            "--topic",
            "nosuch",
            "--to-latest",
        ],
        1,
    );
    cli.fails(&["group", "reset-offsets", "audit", "--topic", "events"], 2);
}

fn spate_model_now_ms() -> i64 {
    std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .map_or(0, |d| d.as_millis() as i64)
}

#[test]
fn group_describe_shows_members_and_reset_refuses_an_active_group() {
    use std::io::{BufRead, BufReader};
    let (_data, broker) = started();
    let cli = Cli::of(&broker);
    cli.ok(&["topic", "create", "watched", "-p", "2"]);
    let script = common::repo().join("broker/tests/clients/group_member.py");
    let mut member = Command::new(common::repo().join(".venv/bin/python"))
        .arg(&script)
        .args([&broker.address, "watched", "live", "20"])
        .stdout(Stdio::piped())
        .spawn()
        .expect("start the group member");
    let mut line = String::new();
    BufReader::new(member.stdout.as_mut().expect("stdout"))
        .read_line(&mut line)
        .expect("read");
    assert_eq!(line.trim(), "joined");

    let described = cli.json(&["group", "describe", "live"]);
    assert_eq!(described["state"], "Stable", "{described}");
    let members = described["members"].as_array().expect("members");
    assert_eq!(members.len(), 1, "{described}");
    assert_eq!(members[0]["client_id"], "member-under-test");
    let assigned = &members[0]["assignment"][0];
    assert_eq!(assigned["topic"], "watched", "{described}");
    assert_eq!(assigned["partitions"], serde_json::json!([0, 1]));
    let text = cli.ok(&["group", "describe", "live"]);
    assert!(
        text.contains("member-under-test") && text.contains("watched[0, 1]"),
        "{text}"
    );
    let err = cli.fails(
        &[
            "group",
            "reset-offsets",
            "live",
            "--topic",
            "watched",
            "--to-latest",
            "--execute",
        ],
        1,
    );
    assert!(err.contains("active member"), "{err}");
    let _ = member.kill();
    let _ = member.wait();
}

#[test]
fn broker_logs_as_json_and_names_slow_requests() {
    use std::io::Read;
    let data = tempfile::tempdir().expect("temp dir");
    let mut broker = Broker::start_logging(
        data.path(),
        &[
            "--log-format",
            "json",
            "--log-level",
            "info",
            "--slow-request-ms",
            "1",
        ],
        Stdio::piped(),
    );
    let mut log = broker.take_log().expect("the log is piped");
    // Creating 64 partitions (directories, files, synced metadata) takes well over 1 ms.
    let cli = Cli::of(&broker);
    cli.ok(&["topic", "create", "wide", "-p", "64"]);
    assert!(broker.stop("-TERM").success(), "a clean stop");
    let mut stderr = String::new();
    log.read_to_string(&mut stderr).expect("read the log");
    let events: Vec<serde_json::Value> = stderr
        .lines()
        .map(|l| serde_json::from_str(l).unwrap_or_else(|e| panic!("{e}: not JSON: {l}")))
        .collect();
    assert!(events
        .iter()
        .all(|e| e["level"].is_string() && e["timestamp"].is_string()));
    let slow = events
        .iter()
        .find(|e| e["fields"]["message"] == "slow request" && e["fields"]["api"] == "CreateTopics")
        .unwrap_or_else(|| panic!("no slow CreateTopics line in {stderr}"));
    assert_eq!(slow["level"], "WARN");
    assert!(slow["fields"]["took_ms"].as_u64().is_some(), "{slow}");
    let created = |e: &serde_json::Value| {
        let topic = &e["fields"]["topic"];
        e["fields"]["message"] == "topic created" && (topic == "wide" || topic == "\"wide\"")
    };
    assert!(events.iter().any(created), "{stderr}");
}

/// `spate_partition_log_start_offset` of `topic`'s partition 0, from the admin listener.
fn log_start(admin: &str, topic: &str) -> Option<i64> {
    partition_metric(admin, "spate_partition_log_start_offset", topic)
}

/// A partition-0 gauge of `topic` from the broker's /metrics page.
fn partition_metric(admin: &str, name: &str, topic: &str) -> Option<i64> {
    metric(
        admin,
        &format!("{name}{{topic=\"{topic}\",partition=\"0\"}}"),
    )
}

/// The value of the series `series` (name and labels) on the broker's /metrics page.
fn metric(admin: &str, series: &str) -> Option<i64> {
    use std::io::{Read, Write};
    let mut stream = std::net::TcpStream::connect(admin).expect("admin listener");
    stream
        .write_all(b"GET /metrics HTTP/1.1\r\nHost: test\r\nConnection: close\r\n\r\n")
        .expect("request");
    let mut page = String::new();
    stream.read_to_string(&mut page).expect("response");
    let prefix = format!("{series} ");
    page.lines()
        .find_map(|line| line.strip_prefix(&prefix))
        .and_then(|value| value.trim().parse::<f64>().ok())
        .map(|value| value as i64)
}

/// `--tail-cache-mib` sizes each shard's cache of recently written data: /metrics reports
/// that capacity per shard, and what the cache holds stays within it; beyond it, written
/// chunks give their buffers back to the shard's pool.
#[test]
fn the_tail_cache_is_sized_by_its_flag() {
    let data = tempfile::tempdir().expect("temp dir");
    let broker = Broker::start_with(data.path(), &["--tail-cache-mib", "3"]);
    let cli = Cli::of(&broker);
    cli.ok(&["topic", "create", "cached", "-p", "4"]);
    let value = "y".repeat(1000);
    // One batch per partition per run: ~500 KB, so each fills whole 256 KiB chunks.
    for round in 0..10 {
        let lines: String = (0..2000)
            .map(|i| format!("{} {value}\n", round * 2000 + i))
            .collect();
        let (code, _, stderr) = cli.with_stdin(&["produce", "cached"], lines.as_bytes());
        assert_eq!(code, 0, "{stderr}");
    }
    let admin = broker.admin.clone().expect("admin listener");
    let shards: usize = test_shards().parse().expect("shard count");
    let mut held = 0;
    for shard in 0..shards {
        let capacity = metric(
            &admin,
            &format!("spate_tail_cache_capacity_bytes{{shard=\"{shard}\"}}"),
        );
        assert_eq!(capacity, Some(3 << 20), "shard {shard}");
        let bytes = metric(
            &admin,
            &format!("spate_tail_cache_bytes{{shard=\"{shard}\"}}"),
        )
        .unwrap_or_else(|| panic!("shard {shard} reports its tail cache"));
        assert!(bytes <= 3 << 20, "shard {shard} holds {bytes} bytes");
        held += bytes;
    }
    assert!(held > 0, "recent data is kept");
    // With the cache full, written chunks leave memory and their buffers serve new chunks.
    let reused: i64 = (0..shards)
        .map(|shard| {
            metric(
                &admin,
                &format!("spate_write_buffers_total{{shard=\"{shard}\",source=\"pool\"}}"),
            )
            .unwrap_or(0)
        })
        .sum();
    assert!(reused > 0, "written chunks' buffers are reused");
    for shard in 0..shards {
        let pooled = metric(
            &admin,
            &format!("spate_write_buffer_pool_bytes{{shard=\"{shard}\"}}"),
        )
        .unwrap_or_else(|| panic!("shard {shard} reports its write-buffer pool"));
        assert!(pooled <= 8 << 20, "shard {shard} keeps {pooled} bytes");
    }
    let (code, _, stderr) = spate_with(&["start", "--tail-cache-mib", "65537"], b"");
    assert_eq!(code, 2);
    assert!(stderr.contains("--tail-cache-mib"), "{stderr}");
}

/// Retention runs in the background on every shard: with small segments and a small
/// `retention.bytes`, old segments go and the log start moves; the removed segment files are
/// kept for reuse (`recycled-N.segment`), at most `--recycle-segments` per partition, and new
/// segments are made from them.
#[test]
fn retention_removes_old_segments_and_recycles_their_files() {
    let (data, broker) = started();
    let cli = Cli::of(&broker);
    cli.ok(&[
        "topic",
        "create",
        "logs",
        "-p",
        "1",
        "-c",
        "segment.bytes=65536",
        "-c",
        "retention.bytes=131072",
    ]);
    // `spate produce` sends its input as one batch: 40 KiB at a time, below segment.bytes.
    let value = "x".repeat(1000);
    let produce = |from: usize, to: usize| {
        for first in (from..to).step_by(40) {
            let lines: String = (first..(first + 40).min(to))
                .map(|i| format!("{i} {value}\n"))
                .collect();
            let (code, _, stderr) = cli.with_stdin(&["produce", "logs"], lines.as_bytes());
            assert_eq!(code, 0, "{stderr}");
        }
    };
    produce(0, 1000);
    let admin = broker.admin.clone().expect("admin listener");
    // The maintenance pass runs every 5 s; give it a few.
    let deadline = std::time::Instant::now() + std::time::Duration::from_secs(30);
    let mut start = 0;
    while std::time::Instant::now() < deadline {
        start = log_start(&admin, "logs").unwrap_or(0);
        if start > 0 {
            break;
        }
        std::thread::sleep(std::time::Duration::from_millis(500));
    }
    assert!(start > 0, "retention moved the log start");
    let recycled_files = |data: &std::path::Path| -> Vec<std::path::PathBuf> {
        walk(data)
            .into_iter()
            .filter(|path| {
                let name = path.file_name().and_then(|n| n.to_str()).unwrap_or("");
                name.starts_with("recycled-") && name.ends_with(".segment")
            })
            .collect()
    };
    let recycled = |data: &std::path::Path| recycled_files(data).len();
    assert_eq!(recycled(data.path()), 2, "two removed files kept");
    let kept_bytes: u64 = recycled_files(data.path())
        .iter()
        .map(|path| std::fs::metadata(path).expect("recycled file").len())
        .sum();
    assert!(kept_bytes > 0);
    assert_eq!(
        partition_metric(&admin, "spate_partition_recycled_bytes", "logs"),
        Some(kept_bytes as i64),
        "the metric counts the kept files"
    );
    // More records roll new segments, made from the kept files.
    produce(1000, 1100);
    assert!(
        recycled(data.path()) < 2,
        "a new segment reused a kept file"
    );
    let out = cli.ok(&["consume", "logs", "-p", "0", "-e", "--format", "%o\\n"]);
    let offsets: Vec<i64> = out.lines().map(|l| l.parse().expect("offset")).collect();
    assert_eq!(
        offsets.first().copied(),
        Some(start),
        "reads begin at the log start"
    );
    assert!(
        offsets.windows(2).all(|w| w[1] == w[0] + 1),
        "contiguous offsets to the end"
    );
    assert_eq!(offsets.last().copied(), Some(1099));
}

/// Every file under `dir`.
fn walk(dir: &std::path::Path) -> Vec<std::path::PathBuf> {
    let mut out = Vec::new();
    if let Ok(entries) = std::fs::read_dir(dir) {
        for entry in entries.flatten() {
            let path = entry.path();
            if path.is_dir() {
                out.extend(walk(&path));
            } else {
                out.push(path);
            }
        }
    }
    out
}
