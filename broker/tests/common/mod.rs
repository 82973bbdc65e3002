//! The `spate` binary as a child process, shared by the black-box test files.
// Each test file compiles this module on its own and uses only part of it.
#![allow(dead_code)]

use std::io::{BufRead, BufReader};
use std::path::{Path, PathBuf};
use std::process::{Child, Command, ExitStatus, Stdio};

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
