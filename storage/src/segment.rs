//! Segment files: names, and the sparse offset index.
//!
//! A segment is `<base offset, 20 digits>.log` (record batches as received, stamped) with a
//! `.index` beside it: 8-byte entries, `relative_offset: u32` (batch base offset minus the
//! segment's) and `position: u32` (the batch's byte position in the `.log`), both big-endian,
//! one per `index.interval.bytes` of log, ascending — Kafka's layout.
//!
//! The `.timeindex` has one 12-byte entry per `.index` entry: `timestamp: i64`, the largest
//! batch max-timestamp of the segment *before* that entry's batch (-1 if none), and the same
//! `relative_offset: u32`. Since those maxima never decrease, the last entry whose timestamp
//! is below a target is where a scan for the first batch reaching the target starts: every
//! batch before it is older. (Kafka's file pairs a maximum with the offset holding it; this
//! layout answers the same lookup with no search inside an interval it can rule out.)

use spate_model::Offset;

/// Bytes per index entry.
pub const INDEX_ENTRY_BYTES: usize = 8;

/// The `.log` file name of the segment starting at `base`.
pub fn log_file_name(base: Offset) -> String {
    format!("{:020}.log", base.get())
}

/// The `.timeindex` file name of the segment starting at `base`.
pub fn time_index_file_name(base: Offset) -> String {
    format!("{:020}.timeindex", base.get())
}

/// The `.index` file name of the segment starting at `base`.
pub fn index_file_name(base: Offset) -> String {
    format!("{:020}.index", base.get())
}

/// Name of the `n`th recycled segment file in a log directory (not a segment: recovery
/// ignores it; a new segment is renamed from it).
pub fn recycled_file_name(n: usize) -> String {
    format!("recycled-{n}.segment")
}

/// Whether `name` is a recycled segment file's name.
pub fn is_recycled_file_name(name: &str) -> bool {
    name.strip_prefix("recycled-")
        .and_then(|rest| rest.strip_suffix(".segment"))
        .is_some_and(|n| !n.is_empty() && n.bytes().all(|b| b.is_ascii_digit()))
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

/// Bytes per time index entry.
pub const TIME_INDEX_ENTRY_BYTES: usize = 12;

/// A segment's two indexes and the running figures that extend them.
#[derive(Debug, Clone)]
pub struct SegmentIndex {
    base: Offset,
    interval_bytes: u64,
    entries: Vec<IndexEntry>,
    /// Parallel to `entries`: the largest max-timestamp of the batches before each entry.
    times: Vec<i64>,
    bytes_since_entry: u64,
    max_timestamp: i64,
}

impl SegmentIndex {
    /// The empty index of a segment starting at `base`.
    pub fn new(base: Offset, interval_bytes: u64) -> SegmentIndex {
        assert!(interval_bytes > 0);
        SegmentIndex {
            base,
            interval_bytes,
            entries: Vec::new(),
            times: Vec::new(),
            bytes_since_entry: u64::MAX,
            max_timestamp: -1,
        }
    }

    /// Loads the index files of a segment whose `.log` is `log_size` bytes, keeping the
    /// longest prefix on which both files agree and are well formed.
    pub fn load(
        base: Offset,
        interval_bytes: u64,
        offsets: &[u8],
        times: &[u8],
        log_size: u64,
    ) -> SegmentIndex {
        let mut index = SegmentIndex::new(base, interval_bytes);
        let entries = decode_index(offsets, log_size);
        let mut previous = -1_i64;
        for (entry, chunk) in entries
            .iter()
            .zip(times.chunks_exact(TIME_INDEX_ENTRY_BYTES))
        {
            let timestamp = i64::from_be_bytes([
                chunk[0], chunk[1], chunk[2], chunk[3], chunk[4], chunk[5], chunk[6], chunk[7],
            ]);
            let relative_offset = u32::from_be_bytes([chunk[8], chunk[9], chunk[10], chunk[11]]);
            if relative_offset != entry.relative_offset || timestamp < previous {
                break;
            }
            index.entries.push(*entry);
            index.times.push(timestamp);
            previous = timestamp;
        }
        index
    }

    /// Records the batch at `position` (appended or found by a scan).
    pub fn on_batch(&mut self, position: u64, base_offset: Offset, max_timestamp: i64, size: u64) {
        if self.bytes_since_entry >= self.interval_bytes {
            let relative_offset =
                u32::try_from(base_offset.get() - self.base.get()).unwrap_or(u32::MAX);
            let position = u32::try_from(position).unwrap_or(u32::MAX);
            debug_assert!(self
                .entries
                .last()
                .is_none_or(|last| last.relative_offset < relative_offset));
            self.entries.push(IndexEntry {
                relative_offset,
                position,
            });
            self.times.push(self.max_timestamp);
            self.bytes_since_entry = 0;
        }
        self.max_timestamp = self.max_timestamp.max(max_timestamp);
        self.bytes_since_entry = self.bytes_since_entry.saturating_add(size);
    }

    /// Drops the last entry and rewinds the running figures to just before its batch, so a
    /// scan from the returned (position, offset) re-adds it and everything after. From the
    /// segment start when there is no entry.
    pub fn resume_point(&mut self) -> (u64, Offset) {
        self.bytes_since_entry = u64::MAX;
        match (self.entries.pop(), self.times.pop()) {
            (Some(entry), Some(time)) => {
                self.max_timestamp = time;
                (
                    u64::from(entry.position),
                    Offset(self.base.get() + i64::from(entry.relative_offset)),
                )
            }
            _ => {
                self.max_timestamp = -1;
                (0, self.base)
            }
        }
    }

    /// Forgets everything (the files were stale): scan the segment from its start.
    pub fn clear(&mut self) {
        self.entries.clear();
        self.times.clear();
        self.bytes_since_entry = u64::MAX;
        self.max_timestamp = -1;
    }

    /// Drops the entries at or after `position` (a truncation), then rewinds to the last one
    /// left as [`SegmentIndex::resume_point`] does, so a scan up to `position` rebuilds the
    /// running figures.
    pub fn truncate_for_rescan(&mut self, position: u64) -> (u64, Offset) {
        let keep = self
            .entries
            .partition_point(|entry| u64::from(entry.position) < position);
        self.entries.truncate(keep);
        self.times.truncate(keep);
        self.resume_point()
    }

    /// The position to start reading for `offset`.
    pub fn position_for(&self, offset: Offset) -> u64 {
        let relative = u32::try_from(offset.get() - self.base.get()).unwrap_or(u32::MAX);
        lookup(&self.entries, relative).map_or(0, |entry| u64::from(entry.position))
    }

    /// The position to start scanning for the first batch whose max timestamp reaches
    /// `timestamp`: every batch before it is older.
    pub fn position_for_timestamp(&self, timestamp: i64) -> u64 {
        let after = self.times.partition_point(|&before| before < timestamp);
        after
            .checked_sub(1)
            .map_or(0, |i| u64::from(self.entries[i].position))
    }

    /// The largest batch max-timestamp in the segment, or -1.
    pub fn max_timestamp(&self) -> i64 {
        self.max_timestamp
    }

    /// Number of offset index entries.
    pub fn len(&self) -> usize {
        self.entries.len()
    }

    /// Whether there are no entries.
    pub fn is_empty(&self) -> bool {
        self.entries.is_empty()
    }

    /// The `.index` file's bytes.
    pub fn encode_offsets(&self) -> Vec<u8> {
        encode_index(&self.entries)
    }

    /// The `.timeindex` file's bytes.
    pub fn encode_times(&self) -> Vec<u8> {
        let mut out = Vec::with_capacity(self.entries.len() * TIME_INDEX_ENTRY_BYTES);
        for (entry, time) in self.entries.iter().zip(&self.times) {
            out.extend_from_slice(&time.to_be_bytes());
            out.extend_from_slice(&entry.relative_offset.to_be_bytes());
        }
        out
    }
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
    fn segment_index_tracks_offsets_and_timestamps() {
        let mut index = SegmentIndex::new(Offset(100), 1000);
        // Batches of 600 bytes: an entry every second batch (at 0, 1200, 2400, ...).
        let timestamps = [50, 40, 70, 60, 90, 80];
        for (i, ts) in timestamps.iter().enumerate() {
            index.on_batch(i as u64 * 600, Offset(100 + i as i64 * 10), *ts, 600);
        }
        assert_eq!(index.len(), 3);
        assert_eq!(index.max_timestamp(), 90);
        assert_eq!(index.position_for(Offset(125)), 1200);
        // Before entry 1 the max is 50, before entry 2 it is 70.
        assert_eq!(index.position_for_timestamp(10), 0);
        assert_eq!(index.position_for_timestamp(51), 1200);
        assert_eq!(index.position_for_timestamp(70), 1200);
        assert_eq!(index.position_for_timestamp(71), 2400);

        let reloaded = SegmentIndex::load(
            Offset(100),
            1000,
            &index.encode_offsets(),
            &index.encode_times(),
            10_000,
        );
        assert_eq!(reloaded.position_for_timestamp(71), 2400);
        assert_eq!(reloaded.len(), 3);

        // Resume: the last entry is dropped, and a scan from it rebuilds it and the maximum.
        let mut resumed = reloaded.clone();
        assert_eq!(resumed.resume_point(), (2400, Offset(140)));
        resumed.on_batch(2400, Offset(140), 90, 600);
        resumed.on_batch(3000, Offset(150), 80, 600);
        assert_eq!(resumed.encode_offsets(), index.encode_offsets());
        assert_eq!(resumed.encode_times(), index.encode_times());
        assert_eq!(resumed.max_timestamp(), 90);

        // Time entries that disagree with the offsets cut the loaded prefix.
        let mut times = index.encode_times();
        times[12 + 11] ^= 1;
        assert_eq!(
            SegmentIndex::load(Offset(100), 1000, &index.encode_offsets(), &times, 10_000).len(),
            1
        );
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
