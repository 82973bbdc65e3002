//! Segment files: names, and the sparse offset index.
//!
//! A segment is `<base offset, 20 digits>.log` (record batches as received, stamped) with a
//! `.index` beside it: 8-byte entries, `relative_offset: u32` (batch base offset minus the
//! segment's) and `position: u32` (the batch's byte position in the `.log`), both big-endian,
//! one per `index.interval.bytes` of log, ascending — Kafka's layout.

use spate_model::Offset;

/// Bytes per index entry.
pub const INDEX_ENTRY_BYTES: usize = 8;

/// The `.log` file name of the segment starting at `base`.
pub fn log_file_name(base: Offset) -> String {
    format!("{:020}.log", base.get())
}

/// The `.index` file name of the segment starting at `base`.
pub fn index_file_name(base: Offset) -> String {
    format!("{:020}.index", base.get())
}

/// The base offset named by a `.log` file name, if it is one.
pub fn parse_log_file_name(name: &str) -> Option<Offset> {
    let digits = name.strip_suffix(".log")?;
    if digits.len() != 20 || !digits.bytes().all(|b| b.is_ascii_digit()) {
        return None;
    }
    digits.parse().ok().map(Offset)
}

/// One index entry.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct IndexEntry {
    /// A batch's base offset minus the segment's base offset.
    pub relative_offset: u32,
    /// The batch's byte position in the segment's `.log`.
    pub position: u32,
}

/// Encodes entries in the file layout.
pub fn encode_index(entries: &[IndexEntry]) -> Vec<u8> {
    let mut out = Vec::with_capacity(entries.len() * INDEX_ENTRY_BYTES);
    for entry in entries {
        out.extend_from_slice(&entry.relative_offset.to_be_bytes());
        out.extend_from_slice(&entry.position.to_be_bytes());
    }
    out
}

/// Decodes an index file, keeping the longest prefix that is well formed: ascending offsets
/// and positions, positions below `log_size`. Whatever follows a bad entry is dropped (the
/// caller rebuilds from the last good entry by scanning the log).
pub fn decode_index(bytes: &[u8], log_size: u64) -> Vec<IndexEntry> {
    let mut entries: Vec<IndexEntry> = Vec::with_capacity(bytes.len() / INDEX_ENTRY_BYTES);
    for chunk in bytes.chunks_exact(INDEX_ENTRY_BYTES) {
        let entry = IndexEntry {
            relative_offset: u32::from_be_bytes([chunk[0], chunk[1], chunk[2], chunk[3]]),
            position: u32::from_be_bytes([chunk[4], chunk[5], chunk[6], chunk[7]]),
        };
        let ascending = entries.last().is_none_or(|last| {
            entry.relative_offset > last.relative_offset && entry.position > last.position
        });
        if !ascending || u64::from(entry.position) >= log_size {
            break;
        }
        entries.push(entry);
    }
    entries
}

/// The entry to start a scan for `relative_offset` from: the last one at or below it.
pub fn lookup(entries: &[IndexEntry], relative_offset: u32) -> Option<IndexEntry> {
    let after = entries.partition_point(|entry| entry.relative_offset <= relative_offset);
    after.checked_sub(1).map(|i| entries[i])
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn file_names_round_trip_and_reject_strangers() {
        assert_eq!(log_file_name(Offset(42)), "00000000000000000042.log");
        assert_eq!(
            parse_log_file_name("00000000000000000042.log"),
            Some(Offset(42))
        );
        assert_eq!(parse_log_file_name("00000000000000000042.index"), None);
        assert_eq!(parse_log_file_name("42.log"), None);
        assert_eq!(parse_log_file_name("0000000000000000004x.log"), None);
    }

    #[test]
    fn index_round_trips_and_keeps_the_good_prefix() {
        let entries = vec![
            IndexEntry {
                relative_offset: 0,
                position: 0,
            },
            IndexEntry {
                relative_offset: 10,
                position: 4100,
            },
            IndexEntry {
                relative_offset: 25,
                position: 8300,
            },
        ];
        let bytes = encode_index(&entries);
        assert_eq!(decode_index(&bytes, 10_000), entries);
        // Position beyond the log: cut there.
        assert_eq!(decode_index(&bytes, 8300), entries[..2]);
        // Zeroed tail (a preallocated or torn index): cut at the first non-ascending entry.
        let mut zeroed = bytes.clone();
        zeroed[8..].fill(0);
        assert_eq!(decode_index(&zeroed, 10_000), entries[..1]);
        // A trailing partial entry is ignored.
        assert_eq!(decode_index(&bytes[..20], 10_000), entries[..2]);
    }

    #[test]
    fn lookup_finds_the_floor_entry() {
        let entries = [
            IndexEntry {
                relative_offset: 0,
                position: 0,
            },
            IndexEntry {
                relative_offset: 10,
                position: 4100,
            },
        ];
        assert_eq!(lookup(&entries, 0), Some(entries[0]));
        assert_eq!(lookup(&entries, 9), Some(entries[0]));
        assert_eq!(lookup(&entries, 10), Some(entries[1]));
        assert_eq!(lookup(&entries, 99), Some(entries[1]));
        assert_eq!(lookup(&[], 5), None);
    }
}
