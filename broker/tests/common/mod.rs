//! The `spate` binary as a child process, shared by the black-box test files.
// Each test file compiles this module on its own and uses only part of it.
#![allow(dead_code)]

use bytes::{Bytes, BytesMut};
use spate_protocol::header::RequestHeader;
use spate_protocol::kafka_protocol::messages::{ApiKey, RequestKind, ResponseKind};
use spate_protocol::{decode_response, encode_request};
use std::io::{BufRead, BufReader, Read, Write};
use std::net::TcpStream;
use std::path::{Path, PathBuf};
use std::process::{Child, Command, ExitStatus, Stdio};
use std::time::Duration;

/// The repository's root.
pub(crate) fn repo() -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR"))
        .parent()
        .expect("repo root")
        .to_path_buf()
}

/// Runs a client program to completion; it must exit 0 with "ok" as its last line.
pub(crate) fn run_client(program: &Path, args: &[&str]) {
    run(Command::new(program).args(args), program);
}

fn run(command: &mut Command, program: &Path) {
    assert!(
        program.exists(),
        "{} is missing: run scripts/install-clients (scripts/test does)",
        program.display()
    );
    let output = command.output().expect("run the client");
    let stdout = String::from_utf8_lossy(&output.stdout);
    assert!(
        output.status.success(),
        "{} failed:\nstdout: {stdout}\nstderr: {}",
        program.display(),
        String::from_utf8_lossy(&output.stderr)
    );
    let last = stdout.lines().rev().find(|line| !line.trim().is_empty());
    assert!(
        last.is_some_and(|line| line.starts_with("ok")),
        "{} did not end with ok:\n{stdout}",
        program.display()
    );
}

/// Runs `broker/tests/clients/SCRIPT` with the project's Python (confluent-kafka,
/// kafka-python).
pub(crate) fn python(script: &str, args: &[&str]) {
    let script = repo().join("broker/tests/clients").join(script);
    let mut all = vec![script.to_str().expect("utf-8 path")];
    all.extend_from_slice(args);
    run_client(&repo().join(".venv/bin/python"), &all);
}

/// Runs `broker/tests/clients/SCRIPT` with node and the project's KafkaJS.
pub(crate) fn kafkajs(script: &str, args: &[&str]) {
    let modules = repo().join("tests/clients/node/node_modules");
    let script = repo().join("broker/tests/clients").join(script);
    run(
        Command::new("node")
            .arg(&script)
            .args(args)
            .env("NODE_PATH", &modules),
        &modules,
    );
}

/// A broker process on an ephemeral port; killed when dropped.
pub(crate) struct Broker {
    child: Child,
    pub(crate) address: String,
    /// The admin HTTP listener's host:port, unless it is off.
    pub(crate) admin: Option<String>,
    data_dir: PathBuf,
}

/// Shards of the brokers the tests start: `SPATE_TEST_SHARDS`, else 2, so that requests
/// cross shards (`scripts/test` runs the client tests once more with 1).
pub(crate) fn test_shards() -> String {
    std::env::var("SPATE_TEST_SHARDS").unwrap_or_else(|_| "2".to_string())
}

impl Broker {
    /// Starts `spate` on `data_dir` and waits for its start-up line to learn the address.
    pub(crate) fn start(data_dir: &Path) -> Broker {
        Broker::start_with(data_dir, &[])
    }

    /// Starts `spate` on `data_dir` with `extra` flags.
    pub(crate) fn start_with(data_dir: &Path, extra: &[&str]) -> Broker {
        Broker::start_logging(data_dir, extra, Stdio::inherit())
    }

    /// Starts `spate` on `data_dir` with `extra` flags, its log (stderr) going to `log`.
    pub(crate) fn start_logging(data_dir: &Path, extra: &[&str], log: Stdio) -> Broker {
        // The admin listener on an ephemeral port too, unless the test chooses.
        let admin: &[&str] = if extra.contains(&"--admin-listen") {
            &[]
        } else {
            &["--admin-listen", "127.0.0.1:0"]
        };
        let mut child = Command::new(env!("CARGO_BIN_EXE_spate"))
            .args(["start", "--listen", "127.0.0.1:0", "--cores"])
            .arg(test_shards())
            .args(admin)
            // New groups settle fast (Kafka's own tests use 0; the default is 3 s).
            .args(["--group-initial-rebalance-delay-ms", "100"])
            .args(extra)
            .arg("--data-dir")
            .arg(data_dir)
            .stdout(Stdio::piped())
            .stderr(log)
            .spawn()
            .expect("start spate");
        let mut line = String::new();
        BufReader::new(child.stdout.as_mut().expect("stdout"))
            .read_line(&mut line)
            .expect("start-up line");
        let address = line
            .split_whitespace()
            .skip_while(|word| *word != "on")
            .nth(1)
            .unwrap_or_else(|| panic!("no address in {line:?}"))
            .to_string();
        let admin = line
            .split_whitespace()
            .skip_while(|word| *word != "admin")
            .nth(1)
            .and_then(|url| url.strip_prefix("http://"))
            .map(str::to_string);
        Broker {
            child,
            address,
            admin,
            data_dir: data_dir.to_path_buf(),
        }
    }

    /// The broker's log, when it was started with a piped stderr.
    pub(crate) fn take_log(&mut self) -> Option<std::process::ChildStderr> {
        self.child.stderr.take()
    }

    /// The broker's process id.
    pub(crate) fn pid(&self) -> u32 {
        self.child.id()
    }

    /// Sends `signal` (as `kill` spells it, e.g. `-STOP`) to the process.
    pub(crate) fn signal(&self, signal: &str) {
        let status = Command::new("kill")
            .args([signal, &self.child.id().to_string()])
            .status()
            .expect("kill");
        assert!(status.success(), "kill {signal} failed");
    }

    /// Sends `signal` and waits for the process to exit.
    pub(crate) fn stop(mut self, signal: &str) -> ExitStatus {
        self.signal(signal);
        let status = self.child.wait().expect("wait");
        std::mem::forget(self);
        status
    }

    /// Stops the process with `signal` and starts a new one on the same data directory.
    pub(crate) fn restart(self, signal: &str) -> Broker {
        let data_dir = self.data_dir.clone();
        self.stop(signal);
        Broker::start(&data_dir)
    }
}

impl Drop for Broker {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

/// A Produce (acks=all) of `records` to one partition.
pub(crate) fn produce_request(topic: &str, partition: i32, records: Bytes) -> RequestKind {
    use spate_protocol::kafka_protocol::messages::produce_request::{
        PartitionProduceData, ProduceRequest, TopicProduceData,
    };
    use spate_protocol::kafka_protocol::messages::TopicName;
    use spate_protocol::kafka_protocol::protocol::StrBytes;
    RequestKind::Produce(
        ProduceRequest::default()
            .with_acks(-1)
            .with_timeout_ms(5000)
            .with_topic_data(vec![TopicProduceData::default()
                .with_name(TopicName(StrBytes::from_string(topic.to_string())))
                .with_partition_data(vec![PartitionProduceData::default()
                    .with_index(partition)
                    .with_records(Some(records))])]),
    )
}

/// A raw protocol connection: bytes or typed requests out, responses in.
pub(crate) struct Raw {
    stream: TcpStream,
    pub(crate) correlation: i32,
}

impl Raw {
    pub(crate) fn connect(address: &str) -> Raw {
        let stream = TcpStream::connect(address).expect("connect");
        stream
            .set_read_timeout(Some(Duration::from_secs(10)))
            .expect("timeout");
        Raw {
            stream,
            correlation: 0,
        }
    }

    pub(crate) fn send_frame(&mut self, frame: &[u8]) {
        self.stream.write_all(frame).expect("send");
    }

    /// The next response frame, or `None` if the broker closed the connection.
    pub(crate) fn receive(&mut self) -> Option<Bytes> {
        let mut size = [0_u8; 4];
        if self.stream.read_exact(&mut size).is_err() {
            return None;
        }
        let mut body = vec![0_u8; i32::from_be_bytes(size) as usize];
        self.stream.read_exact(&mut body).ok()?;
        Some(Bytes::from(body))
    }

    /// Creates topic `name` with `partitions` partitions (CreateTopics v5) and checks that
    /// it worked.
    pub(crate) fn create_topic(&mut self, name: &str, partitions: i32) {
        use spate_protocol::kafka_protocol::messages::create_topics_request::{
            CreatableTopic, CreateTopicsRequest,
        };
        use spate_protocol::kafka_protocol::messages::TopicName;
        use spate_protocol::kafka_protocol::protocol::StrBytes;
        let request = CreateTopicsRequest::default()
            .with_timeout_ms(30_000)
            .with_topics(vec![CreatableTopic::default()
                .with_name(TopicName(StrBytes::from_string(name.to_string())))
                .with_num_partitions(partitions)
                .with_replication_factor(1)]);
        let ResponseKind::CreateTopics(created) =
            self.call(ApiKey::CreateTopics, 5, RequestKind::CreateTopics(request))
        else {
            panic!("not a CreateTopics response")
        };
        assert_eq!(created.topics[0].error_code, 0, "creating {name}");
    }

    pub(crate) fn call(&mut self, api: ApiKey, version: i16, body: RequestKind) -> ResponseKind {
        self.correlation += 1;
        let header = RequestHeader::new(api, version, self.correlation, Some("raw-test"));
        let mut out = BytesMut::new();
        encode_request(&mut out, &header, &body).expect("encode");
        self.send_frame(&out);
        let frame = self.receive().expect("a response");
        let (correlation, response) = decode_response(api, version, frame).expect("decode");
        assert_eq!(correlation, self.correlation);
        response
    }
}
