//! Validated topic names, by Kafka's rules (`org.apache.kafka.common.internals.Topic`):
//! 1 to 249 characters from `[a-zA-Z0-9._-]`, and neither `.` nor `..`.

use std::fmt;

/// Kafka's maximum topic name length: 255 minus room for a partition suffix in file names.
pub const TOPIC_NAME_MAX_LEN: usize = 249;

/// Why a topic name is not legal.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum TopicNameError {
    /// The name is the empty string.
    #[error("topic name is empty")]
    Empty,
    /// The name is longer than [`TOPIC_NAME_MAX_LEN`].
    #[error("topic name is {len} characters long; the maximum is {TOPIC_NAME_MAX_LEN}")]
    TooLong {
        /// The offending length in bytes.
        len: usize,
    },
    /// The name is `.` or `..`.
    #[error("topic name cannot be \"{0}\"")]
    Reserved(&'static str),
    /// The name contains a character outside `[a-zA-Z0-9._-]`.
    #[error("topic name contains {found:?} at byte {position}; legal characters are ASCII alphanumerics, '.', '_' and '-'")]
    IllegalCharacter {
        /// The first illegal character.
        found: char,
        /// Its byte position in the name.
        position: usize,
    },
}

/// A topic name that satisfies Kafka's rules.
#[derive(Clone, PartialEq, Eq, PartialOrd, Ord, Hash)]
pub struct TopicName(String);

impl TopicName {
    /// Checks `name` against Kafka's rules.
    pub fn new(name: impl Into<String>) -> Result<TopicName, TopicNameError> {
        let name = name.into();
        validate(&name)?;
        Ok(TopicName(name))
    }

    /// The name as a string slice.
    pub fn as_str(&self) -> &str {
        &self.0
    }

    /// Kafka's collision rule: `.` and `_` are interchangeable in metric names, so two topics
    /// whose names differ only there must not coexist. This returns the name with `.` → `_`.
    pub fn collision_key(&self) -> String {
        self.0.replace('.', "_")
    }
}

/// Checks a topic name without taking ownership of it.
pub fn validate(name: &str) -> Result<(), TopicNameError> {
    if name.is_empty() {
        return Err(TopicNameError::Empty);
    }
    if name == "." {
        return Err(TopicNameError::Reserved("."));
    }
    if name == ".." {
        return Err(TopicNameError::Reserved(".."));
    }
    if name.len() > TOPIC_NAME_MAX_LEN {
        return Err(TopicNameError::TooLong { len: name.len() });
    }
    let legal = |c: char| c.is_ascii_alphanumeric() || matches!(c, '.' | '_' | '-');
    if let Some((position, found)) = name.char_indices().find(|&(_, c)| !legal(c)) {
        return Err(TopicNameError::IllegalCharacter { found, position });
    }
    Ok(())
}

impl fmt::Debug for TopicName {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "TopicName({:?})", self.0)
    }
}

impl fmt::Display for TopicName {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(&self.0)
    }
}

impl AsRef<str> for TopicName {
    fn as_ref(&self) -> &str {
        &self.0
    }
}

impl TryFrom<&str> for TopicName {
    type Error = TopicNameError;
    fn try_from(value: &str) -> Result<Self, Self::Error> {
        TopicName::new(value)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn accepts_legal_names() {
        for name in ["a", "orders", "my.topic_v2-x", "__consumer_offsets", "..."] {
            assert_eq!(
                TopicName::new(name).map(|t| t.to_string()),
                Ok(name.to_string())
            );
        }
        assert!(TopicName::new("x".repeat(249)).is_ok());
    }

    #[test]
    fn rejects_each_kind_of_illegal_name() {
        assert_eq!(TopicName::new(""), Err(TopicNameError::Empty));
        assert_eq!(TopicName::new("."), Err(TopicNameError::Reserved(".")));
        assert_eq!(TopicName::new(".."), Err(TopicNameError::Reserved("..")));
        assert_eq!(
            TopicName::new("x".repeat(250)),
            Err(TopicNameError::TooLong { len: 250 })
        );
        assert_eq!(
            TopicName::new("ab/c"),
            Err(TopicNameError::IllegalCharacter {
                found: '/',
                position: 2
            })
        );
        assert_eq!(
            TopicName::new("é"),
            Err(TopicNameError::IllegalCharacter {
                found: 'é',
                position: 0
            })
        );
        assert!(TopicName::new("a b").is_err());
    }

    #[test]
    fn collision_key_folds_dots_into_underscores() {
        let a = TopicName::new("a.b").map(|t| t.collision_key());
        let b = TopicName::new("a_b").map(|t| t.collision_key());
        assert_eq!(a, b);
    }
}
