//! Newtypes for the integers Kafka passes around, so two of them can never be swapped.
//!
//! Each wraps the wire type Kafka uses for it (offsets are `int64`, epochs `int32`, producer
//! epochs `int16`, …). `-1` is Kafka's usual "none" value; the types expose it as a constant
//! where Kafka gives it a meaning rather than hiding it behind `Option`, because it travels on
//! the wire as is.

use std::fmt;

macro_rules! id_newtype {
    ($(#[$doc:meta])* $name:ident($inner:ty)) => {
        $(#[$doc])*
        #[derive(Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Hash, Default)]
        pub struct $name(pub $inner);

        impl $name {
            /// The raw wire value.
            pub const fn get(self) -> $inner {
                self.0
            }
        }

        impl fmt::Debug for $name {
            fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
                write!(f, concat!(stringify!($name), "({})"), self.0)
            }
        }

        impl fmt::Display for $name {
            fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
                fmt::Display::fmt(&self.0, f)
            }
        }

        impl From<$inner> for $name {
            fn from(value: $inner) -> Self {
                Self(value)
            }
        }

        impl From<$name> for $inner {
            fn from(value: $name) -> Self {
                value.0
            }
        }
    };
}

id_newtype!(
    /// A position in a partition's log (Kafka `int64`).
    Offset(i64)
);
id_newtype!(
    /// A partition leader epoch, the Raft term of our replication (Kafka `int32`).
    LeaderEpoch(i32)
);
id_newtype!(
    /// A broker's node id (Kafka `int32`).
    NodeId(i32)
);
id_newtype!(
    /// A shard (one core's executor) within a broker.
    ShardId(u16)
);
id_newtype!(
    /// A partition index within a topic (Kafka `int32`).
    PartitionId(i32)
);
id_newtype!(
    /// A producer id assigned by InitProducerId (Kafka `int64`).
    ProducerId(i64)
);
id_newtype!(
    /// A producer epoch (Kafka `int16`).
    ProducerEpoch(i16)
);
id_newtype!(
    /// A producer's per-partition sequence number (Kafka `int32`).
    Sequence(i32)
);

impl Offset {
    /// Offset `-1`: "none" in Kafka responses (no committed offset, no high watermark yet).
    pub const NONE: Offset = Offset(-1);

    /// The offset `delta` places after this one, or `None` on overflow.
    pub fn checked_add(self, delta: i64) -> Option<Offset> {
        self.0.checked_add(delta).map(Offset)
    }
}

impl LeaderEpoch {
    /// Epoch `-1`: unknown, as Kafka writes it in batches not yet stamped by a leader.
    pub const UNKNOWN: LeaderEpoch = LeaderEpoch(-1);
}

impl ProducerId {
    /// Producer id `-1`: the batch is not from an idempotent producer.
    pub const NONE: ProducerId = ProducerId(-1);
}

impl ProducerEpoch {
    /// Producer epoch `-1`: no producer epoch.
    pub const NONE: ProducerEpoch = ProducerEpoch(-1);
}

impl Sequence {
    /// Sequence `-1`: no sequence (non-idempotent batch).
    pub const NONE: Sequence = Sequence(-1);
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn newtypes_round_trip_and_print_their_kind() {
        let offset = Offset::from(42);
        assert_eq!(i64::from(offset), 42);
        assert_eq!(format!("{offset:?}"), "Offset(42)");
        assert_eq!(offset.to_string(), "42");
        assert_eq!(Offset(i64::MAX).checked_add(1), None);
        assert_eq!(Offset(1).checked_add(2), Some(Offset(3)));
        assert!(LeaderEpoch(3) > LeaderEpoch::UNKNOWN);
    }
}
