//! The `spate` binary as a child process, shared by the black-box test files.
// Each test file compiles this module on its own and uses only part of it.
#![allow(dead_code)]

use std::io::{BufRead, BufReader};
use std::path::{Path, PathBuf};
use std::process::{Child, Command, ExitStatus, Stdio};

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
        let mut child = Command::new(env!("CARGO_BIN_EXE_spate"))
            .args(["start", "--listen", "127.0.0.1:0", "--cores"])
            .arg(test_shards())
            // New groups settle fast (Kafka's own tests use 0; the default is 3 s).
            .args(["--group-initial-rebalance-delay-ms", "100"])
            .arg("--data-dir")
            .arg(data_dir)
            .stdout(Stdio::piped())
            .stderr(Stdio::inherit())
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
        Broker {
            child,
            address,
            data_dir: data_dir.to_path_buf(),
        }
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
