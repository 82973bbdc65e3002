//! Topic configs: the keys Spate honours, their defaults (Kafka's), validation, and what
//! DescribeConfigs reports. Only overrides are stored (in the metadata log); everything else is
//! the default.

use std::collections::BTreeMap;

/// How DescribeConfigs types a value (Kafka's `ConfigType`).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Kind {
    /// A string from a fixed set.
    Choice(&'static [&'static str]),
    /// A 32-bit integer with a minimum.
    Int(i64),
    /// A 64-bit integer with a minimum.
    Long(i64),
    /// A comma-separated list of words from a fixed set.
    List(&'static [&'static str]),
}

impl Kind {
    /// DescribeConfigs' `config_type` code.
    pub fn code(self) -> i8 {
        match self {
            Kind::Choice(_) => 2,
            Kind::Int(_) => 3,
            Kind::Long(_) => 5,
            Kind::List(_) => 7,
        }
    }
}

/// One config key.
#[derive(Debug, Clone, Copy)]
pub struct Def {
    /// Its name.
    pub name: &'static str,
    /// Kafka's default.
    pub default: &'static str,
    /// Its type and bounds.
    pub kind: Kind,
    /// What it does here.
    pub doc: &'static str,
}

/// Every topic config Spate accepts.
pub const DEFS: &[Def] = &[
    Def {
        name: "cleanup.policy",
        default: "delete",
        kind: Kind::List(&["delete", "compact"]),
        doc: "delete old segments; compaction is accepted and stored, not yet run",
    },
    Def {
        name: "max.message.bytes",
        default: "1048588",
        kind: Kind::Int(0),
        doc: "largest record batch a producer may send",
    },
    Def {
        name: "message.timestamp.type",
        default: "CreateTime",
        kind: Kind::Choice(&["CreateTime", "LogAppendTime"]),
        doc: "LogAppendTime stamps batches with the broker's clock",
    },
    Def {
        name: "min.insync.replicas",
        default: "1",
        kind: Kind::Int(1),
        doc: "stored; a single node has one replica",
    },
    Def {
        name: "retention.bytes",
        default: "-1",
        kind: Kind::Long(-1),
        doc: "delete the oldest segments beyond this size (-1: no limit)",
    },
    Def {
        name: "retention.ms",
        default: "604800000",
        kind: Kind::Long(-1),
        doc: "delete segments older than this (-1: keep forever)",
    },
    Def {
        name: "segment.bytes",
        default: "1073741824",
        kind: Kind::Int(1024),
        doc: "roll to a new segment at this size",
    },
    Def {
        name: "segment.ms",
        default: "604800000",
        kind: Kind::Long(1),
        doc: "roll to a new segment at this age",
    },
];

/// Why a config change is refused (INVALID_CONFIG).
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum ConfigError {
    /// Not a key Spate knows.
    #[error("unknown topic config {0:?}")]
    Unknown(String),
    /// A value of the wrong form or out of range.
    #[error("invalid value {value:?} for {name}: {reason}")]
    Invalid {
        /// The key.
        name: String,
        /// The value.
        value: String,
        /// The rule.
        reason: String,
    },
}

/// A topic's overrides.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct TopicConfig {
    overrides: BTreeMap<String, String>,
}

fn def(name: &str) -> Result<&'static Def, ConfigError> {
    DEFS.iter()
        .find(|d| d.name == name)
        .ok_or_else(|| ConfigError::Unknown(name.to_string()))
}

/// Checks `value` for `name`.
pub fn validate(name: &str, value: &str) -> Result<(), ConfigError> {
    let def = def(name)?;
    let invalid = |reason: String| ConfigError::Invalid {
        name: name.to_string(),
        value: value.to_string(),
        reason,
    };
    match def.kind {
        Kind::Choice(choices) => {
            if !choices.contains(&value) {
                return Err(invalid(format!("one of {choices:?}")));
            }
        }
        Kind::Int(min) | Kind::Long(min) => {
            let max = if matches!(def.kind, Kind::Int(_)) {
                i64::from(i32::MAX)
            } else {
                i64::MAX
            };
            let parsed: i64 = value
                .trim()
                .parse()
                .map_err(|_| invalid("not an integer".to_string()))?;
            if parsed < min || parsed > max {
                return Err(invalid(format!("between {min} and {max}")));
            }
        }
        Kind::List(words) => {
            let items: Vec<&str> = value.split(',').map(str::trim).collect();
            if items.is_empty() || items.iter().any(|item| !words.contains(item)) {
                return Err(invalid(format!("a comma-separated list of {words:?}")));
            }
        }
    }
    Ok(())
}

impl TopicConfig {
    /// Overrides from stored pairs, each validated.
    pub fn from_overrides(overrides: BTreeMap<String, String>) -> Result<TopicConfig, ConfigError> {
        for (name, value) in &overrides {
            validate(name, value)?;
        }
        Ok(TopicConfig { overrides })
    }

    /// The stored overrides.
    pub fn overrides(&self) -> &BTreeMap<String, String> {
        &self.overrides
    }

    /// Sets `name` after validating it.
    pub fn set(&mut self, name: &str, value: &str) -> Result<(), ConfigError> {
        validate(name, value)?;
        self.overrides
            .insert(name.to_string(), value.trim().to_string());
        Ok(())
    }

    /// Returns `name` to its default.
    pub fn delete(&mut self, name: &str) -> Result<(), ConfigError> {
        def(name)?;
        self.overrides.remove(name);
        Ok(())
    }

    /// The effective value and whether it is an override.
    pub fn get(&self, name: &str) -> Option<(&str, bool)> {
        match self.overrides.get(name) {
            Some(value) => Some((value, true)),
            None => DEFS
                .iter()
                .find(|d| d.name == name)
                .map(|d| (d.default, false)),
        }
    }

    fn number(&self, name: &str) -> i64 {
        self.get(name)
            .and_then(|(value, _)| value.parse().ok())
            .unwrap_or(-1)
    }

    /// `retention.ms`, `None` for unlimited.
    pub fn retention_ms(&self) -> Option<i64> {
        Some(self.number("retention.ms")).filter(|&ms| ms >= 0)
    }

    /// `retention.bytes`, `None` for unlimited.
    pub fn retention_bytes(&self) -> Option<u64> {
        u64::try_from(self.number("retention.bytes")).ok()
    }

    /// `segment.bytes`.
    pub fn segment_bytes(&self) -> u64 {
        u64::try_from(self.number("segment.bytes")).unwrap_or(1 << 30)
    }

    /// `segment.ms`.
    pub fn segment_ms(&self) -> i64 {
        self.number("segment.ms")
    }

    /// `max.message.bytes`.
    pub fn max_message_bytes(&self) -> usize {
        usize::try_from(self.number("max.message.bytes")).unwrap_or(0)
    }

    /// Whether batches get the broker's append time.
    pub fn log_append_time(&self) -> bool {
        self.get("message.timestamp.type")
            .is_some_and(|(value, _)| value == "LogAppendTime")
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn defaults_overrides_and_validation() {
        let mut config = TopicConfig::default();
        assert_eq!(config.retention_ms(), Some(604_800_000));
        assert_eq!(config.retention_bytes(), None);
        assert_eq!(config.max_message_bytes(), 1_048_588);
        assert!(!config.log_append_time());
        config.set("retention.ms", "-1").expect("unlimited");
        assert_eq!(config.retention_ms(), None);
        config
            .set("message.timestamp.type", "LogAppendTime")
            .expect("valid");
        assert!(config.log_append_time());
        config
            .set("cleanup.policy", "compact,delete")
            .expect("a list");
        assert_eq!(config.get("cleanup.policy"), Some(("compact,delete", true)));
        config.delete("cleanup.policy").expect("known");
        assert_eq!(config.get("cleanup.policy"), Some(("delete", false)));
        assert!(matches!(
            config.set("retention.ms", "soon"),
            Err(ConfigError::Invalid { .. })
        ));
        assert!(matches!(
            config.set("segment.bytes", "10"),
            Err(ConfigError::Invalid { .. })
        ));
        assert!(matches!(
            config.set("max.message.bytes", "99999999999"),
            Err(ConfigError::Invalid { .. })
        ));
        assert!(matches!(
            config.set("message.timestamp.type", "Now"),
            Err(ConfigError::Invalid { .. })
        ));
        assert!(matches!(
            config.set("cleanup.policy", "delete,shred"),
            Err(ConfigError::Invalid { .. })
        ));
        assert!(matches!(
            config.set("no.such.key", "1"),
            Err(ConfigError::Unknown(_))
        ));
    }
}
