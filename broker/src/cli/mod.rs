//! The operator subcommands: `spate topic`, `spate group`, `spate produce`, `spate consume`
//! and `spate cluster`. They speak the Kafka protocol (see [`client`]), so they work against
//! any Kafka-compatible broker. Human tables by default, `--json` for scripts.
//!
//! Exit codes: 0 done; 1 the broker refused or reported an error (unknown topic, ...);
//! 2 bad usage; 3 the broker could not be reached.

pub mod client;
mod cluster;
mod group;
mod offsets;
mod records;
mod topic;

use clap::{Args, Subcommand};
use client::Client;
use std::process::ExitCode;
use std::time::Duration;

/// What went wrong, and so the exit code.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum CliError {
    /// Bad arguments (exit 2).
    Usage(String),
    /// The broker refused or failed the operation (exit 1).
    Kafka(String),
    /// The broker could not be reached (exit 3).
    Connection(String),
}

impl std::fmt::Display for CliError {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        match self {
            CliError::Usage(m) | CliError::Kafka(m) | CliError::Connection(m) => f.write_str(m),
        }
    }
}

impl CliError {
    /// The process exit code for this error.
    pub fn exit_code(&self) -> u8 {
        match self {
            CliError::Kafka(_) => 1,
            CliError::Usage(_) => 2,
            CliError::Connection(_) => 3,
        }
    }
}

/// Options every subcommand that talks to a broker takes.
#[derive(Debug, Clone, Args)]
pub struct Connect {
    /// Broker(s) to bootstrap from, host:port[,host:port...].
    #[arg(
        short = 'b',
        long,
        env = "SPATE_BOOTSTRAP",
        default_value = "127.0.0.1:9092",
        global = true
    )]
    pub bootstrap: String,
    /// Print JSON instead of tables.
    #[arg(long, global = true)]
    pub json: bool,
    /// How long to wait for the broker on each request.
    #[arg(long, default_value_t = 10_000, global = true)]
    pub timeout_ms: u64,
}

impl Connect {
    fn client(&self) -> Result<Client, CliError> {
        if self.timeout_ms == 0 {
            return Err(CliError::Usage("--timeout-ms must be above 0".to_string()));
        }
        Client::connect(&self.bootstrap, Duration::from_millis(self.timeout_ms))
    }
}

/// `spate topic ...`
#[derive(Debug, Clone, Args)]
#[command(after_help = "Examples:
  spate topic create orders --partitions 6 --config retention.ms=86400000
  spate topic list
  spate topic describe orders
  spate topic alter-config orders --set retention.ms=3600000 --delete segment.bytes
  spate topic add-partitions orders --total 12
  spate topic delete orders")]
pub struct TopicArgs {
    #[command(subcommand)]
    command: topic::TopicCommand,
    #[command(flatten)]
    connect: Connect,
}

/// `spate group ...`
#[derive(Debug, Clone, Args)]
#[command(after_help = "Examples:
  spate group list
  spate group describe billing
  spate group reset-offsets billing --topic orders --to-earliest            (dry run)
  spate group reset-offsets billing --topic orders --to-timestamp 1700000000000 --execute")]
pub struct GroupArgs {
    #[command(subcommand)]
    command: group::GroupCommand,
    #[command(flatten)]
    connect: Connect,
}

/// `spate cluster ...`
#[derive(Debug, Clone, Args)]
#[command(after_help = "Example:
  spate cluster status --bootstrap kafka-1:9092")]
pub struct ClusterArgs {
    #[command(subcommand)]
    command: cluster::ClusterCommand,
    #[command(flatten)]
    connect: Connect,
}

/// `spate produce ...`
#[derive(Debug, Clone, Args)]
#[command(after_help = "Examples:
  printf 'a\\nb\\n' | spate produce greetings
  printf 'user-1:clicked\\n' | spate produce events --key-separator :")]
pub struct ProduceArgs {
    #[command(flatten)]
    options: records::ProduceOptions,
    #[command(flatten)]
    connect: Connect,
}

/// `spate consume ...`
#[derive(Debug, Clone, Args)]
#[command(after_help = "Examples:
  spate consume greetings --offset earliest --exit-at-end
  spate consume greetings --from-timestamp 1700000000000 --count 10
  spate consume events --group audit --exit-at-end --format '%p:%o %k=%v\\n'
Format: %t topic, %p partition, %o offset, %k key, %v value, %T timestamp (ms),
        %h headers (k=v,...), %% a percent sign; \\n and \\t are a newline and a tab.")]
pub struct ConsumeArgs {
    #[command(flatten)]
    options: records::ConsumeOptions,
    #[command(flatten)]
    connect: Connect,
}

/// The operator subcommands (variants of the `spate` command besides `start`).
#[derive(Debug, Clone, Subcommand)]
pub enum Operator {
    /// Create, list, describe, alter and delete topics.
    Topic(TopicArgs),
    /// List and describe consumer groups (with lag), reset their offsets.
    Group(GroupArgs),
    /// Produce lines from stdin, one record per line.
    Produce(ProduceArgs),
    /// Print records, from an offset, a timestamp or a group's committed offsets.
    Consume(ConsumeArgs),
    /// The cluster's brokers, controller and topics.
    Cluster(ClusterArgs),
}

/// Runs an operator subcommand; errors are printed to stderr.
pub fn run(command: Operator) -> ExitCode {
    let outcome = match command {
        Operator::Topic(args) => topic::run(args.command, &args.connect),
        Operator::Group(args) => group::run(args.command, &args.connect),
        Operator::Produce(args) => records::produce(&args.options, &args.connect),
        Operator::Consume(args) => records::consume(&args.options, &args.connect),
        Operator::Cluster(args) => cluster::run(args.command, &args.connect),
    };
    match outcome {
        Ok(()) => ExitCode::SUCCESS,
        Err(error) => {
            eprintln!("spate: {error}");
            ExitCode::from(error.exit_code())
        }
    }
}

/// Columns aligned to their widest cell, the header first.
pub(crate) fn table(header: &[&str], rows: &[Vec<String>]) -> String {
    let mut widths: Vec<usize> = header.iter().map(|h| h.chars().count()).collect();
    for row in rows {
        for (width, cell) in widths.iter_mut().zip(row) {
            *width = (*width).max(cell.chars().count());
        }
    }
    let mut out = String::new();
    let header: Vec<String> = header.iter().map(|h| h.to_string()).collect();
    for row in std::iter::once(&header).chain(rows) {
        let cells: Vec<String> = row
            .iter()
            .zip(&widths)
            .map(|(cell, width)| format!("{cell:<width$}"))
            .collect();
        out.push_str(cells.join("  ").trim_end());
        out.push('\n');
    }
    out
}

/// Prints `value` as pretty JSON.
pub(crate) fn print_json(value: &serde_json::Value) {
    println!(
        "{}",
        serde_json::to_string_pretty(value).unwrap_or_else(|_| "null".to_string())
    );
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn tables_align_columns() {
        let rows = vec![
            vec!["orders".to_string(), "12".to_string()],
            vec!["a".to_string(), "1".to_string()],
        ];
        assert_eq!(
            table(&["TOPIC", "PARTITIONS"], &rows),
            "TOPIC   PARTITIONS\norders  12\na       1\n"
        );
    }

    #[test]
    fn errors_map_to_exit_codes() {
        assert_eq!(CliError::Kafka(String::new()).exit_code(), 1);
        assert_eq!(CliError::Usage(String::new()).exit_code(), 2);
        assert_eq!(CliError::Connection(String::new()).exit_code(), 3);
    }
}
