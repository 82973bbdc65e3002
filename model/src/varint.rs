//! Kafka's variable-length integers: zig-zag encoded, 7 bits per byte, little end first
//! (protobuf style). `varint` is 32-bit (at most 5 bytes), `varlong` 64-bit (at most 10).
//! Decoders take a slice and return the value and the number of bytes read; they never read
//! past the slice and reject over-long encodings.

/// Why a varint could not be read.
#[derive(Debug, Clone, Copy, PartialEq, Eq, thiserror::Error)]
pub enum VarintError {
    /// The input ended inside the varint.
    #[error("input ends inside a varint")]
    Truncated,
    /// More continuation bytes than the type allows.
    #[error("varint longer than {max_bytes} bytes")]
    TooLong {
        /// The most bytes the type may use.
        max_bytes: usize,
    },
}

/// The most bytes a 32-bit varint may take.
pub const VARINT_MAX_BYTES: usize = 5;
/// The most bytes a 64-bit varlong may take.
pub const VARLONG_MAX_BYTES: usize = 10;

fn read_unsigned(input: &[u8], max_bytes: usize) -> Result<(u64, usize), VarintError> {
    let mut value: u64 = 0;
    for (index, &byte) in input.iter().enumerate().take(max_bytes) {
        value |= u64::from(byte & 0x7f) << (7 * index);
        if byte & 0x80 == 0 {
            return Ok((value, index + 1));
        }
    }
    if input.len() < max_bytes {
        Err(VarintError::Truncated)
    } else {
        Err(VarintError::TooLong { max_bytes })
    }
}

/// Reads a zig-zag `varint` (Kafka's signed 32-bit variable-length integer).
pub fn read_varint(input: &[u8]) -> Result<(i32, usize), VarintError> {
    let (raw, len) = read_unsigned(input, VARINT_MAX_BYTES)?;
    // A 5-byte varint carries 35 bits; Kafka's reader keeps the low 32 (as Java's int does).
    let raw = raw as u32;
    Ok((((raw >> 1) as i32) ^ -((raw & 1) as i32), len))
}

/// Reads a zig-zag `varlong` (Kafka's signed 64-bit variable-length integer).
pub fn read_varlong(input: &[u8]) -> Result<(i64, usize), VarintError> {
    let (raw, len) = read_unsigned(input, VARLONG_MAX_BYTES)?;
    Ok((((raw >> 1) as i64) ^ -((raw & 1) as i64), len))
}

/// Reads an unsigned varint (used by the flexible protocol versions, not by records).
pub fn read_unsigned_varint(input: &[u8]) -> Result<(u32, usize), VarintError> {
    let (raw, len) = read_unsigned(input, VARINT_MAX_BYTES)?;
    u32::try_from(raw)
        .map(|value| (value, len))
        .map_err(|_| VarintError::TooLong {
            max_bytes: VARINT_MAX_BYTES,
        })
}

fn write_unsigned(out: &mut Vec<u8>, mut value: u64) {
    while value >= 0x80 {
        out.push((value as u8) | 0x80);
        value >>= 7;
    }
    out.push(value as u8);
}

/// Appends a zig-zag `varint`.
pub fn write_varint(out: &mut Vec<u8>, value: i32) {
    write_unsigned(out, u64::from(((value << 1) ^ (value >> 31)) as u32));
}

/// Appends a zig-zag `varlong`.
pub fn write_varlong(out: &mut Vec<u8>, value: i64) {
    write_unsigned(out, ((value << 1) ^ (value >> 63)) as u64);
}

/// The encoded size of a zig-zag `varint`.
pub fn varint_len(value: i32) -> usize {
    unsigned_len(u64::from(((value << 1) ^ (value >> 31)) as u32))
}

/// The encoded size of a zig-zag `varlong`.
pub fn varlong_len(value: i64) -> usize {
    unsigned_len(((value << 1) ^ (value >> 63)) as u64)
}

fn unsigned_len(value: u64) -> usize {
    let bits = 64 - (value | 1).leading_zeros() as usize;
    bits.div_ceil(7)
}

#[cfg(test)]
mod tests {
    use super::*;
    use proptest::prelude::*;

    #[test]
    fn known_encodings() {
        // Zig-zag: 0 → 0, -1 → 1, 1 → 2, -64 → 127, 64 → 128 (two bytes).
        for (value, bytes) in [
            (0, vec![0x00]),
            (-1, vec![0x01]),
            (1, vec![0x02]),
            (-64, vec![0x7f]),
            (64, vec![0x80, 0x01]),
            (i32::MIN, vec![0xff, 0xff, 0xff, 0xff, 0x0f]),
        ] {
            let mut out = Vec::new();
            write_varint(&mut out, value);
            assert_eq!(out, bytes, "encoding {value}");
            assert_eq!(read_varint(&bytes), Ok((value, bytes.len())));
            assert_eq!(varint_len(value), bytes.len());
        }
    }

    #[test]
    fn rejects_truncated_and_overlong() {
        assert_eq!(read_varint(&[]), Err(VarintError::Truncated));
        assert_eq!(read_varint(&[0x80, 0x80]), Err(VarintError::Truncated));
        assert_eq!(
            read_varint(&[0x80; 6]),
            Err(VarintError::TooLong { max_bytes: 5 })
        );
        assert_eq!(
            read_varlong(&[0xff; 11]),
            Err(VarintError::TooLong { max_bytes: 10 })
        );
        assert_eq!(
            read_unsigned_varint(&[0xff, 0xff, 0xff, 0xff, 0x7f]),
            Err(VarintError::TooLong { max_bytes: 5 })
        );
    }

    proptest! {
        #[test]
        fn varint_round_trips(value: i32) {
            let mut out = Vec::new();
            write_varint(&mut out, value);
            prop_assert_eq!(out.len(), varint_len(value));
            prop_assert_eq!(read_varint(&out), Ok((value, out.len())));
        }

        #[test]
        fn varlong_round_trips(value: i64) {
            let mut out = Vec::new();
            write_varlong(&mut out, value);
            prop_assert_eq!(out.len(), varlong_len(value));
            prop_assert_eq!(read_varlong(&out), Ok((value, out.len())));
        }
    }
}
