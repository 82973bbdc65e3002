//! Record keys and where they go: the key distributions a run can draw from, a seeded
//! generator (so that a run is reproducible), and Kafka's default partitioner (murmur2 of the
//! key, made positive, modulo the partition count; `spate_model::partitioner`), so keyed
//! records land where a Java or librdkafka producer would put them.

pub use spate_model::partitioner::{murmur2, partition_for};

/// How records are keyed.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Keys {
    /// No key: records go round-robin over the partitions.
    None,
    /// Uniformly random among the key count.
    Random,
    /// Key `i mod count` for the `i`-th record.
    RoundRobin,
    /// Zipf-distributed (exponent 1): key 0 the most frequent, key `k` about `1/(k+1)` as often.
    Zipf,
}

impl std::str::FromStr for Keys {
    type Err = String;

    fn from_str(text: &str) -> Result<Keys, String> {
        match text {
            "none" => Ok(Keys::None),
            "random" => Ok(Keys::Random),
            "round-robin" => Ok(Keys::RoundRobin),
            "zipf" => Ok(Keys::Zipf),
            other => Err(format!("keys {other:?}: none, random, round-robin or zipf")),
        }
    }
}

impl Keys {
    /// The name the command line and the result file use.
    pub fn name(self) -> &'static str {
        match self {
            Keys::None => "none",
            Keys::Random => "random",
            Keys::RoundRobin => "round-robin",
            Keys::Zipf => "zipf",
        }
    }
}

/// The most distinct keys a run may draw from (the zipf table holds one `f64` per key).
pub const MAX_KEY_COUNT: u64 = 10_000_000;

/// A small, fast, seeded generator (SplitMix64); not for cryptography.
#[derive(Debug, Clone)]
pub struct Rng(u64);

impl Rng {
    /// A generator starting from `seed`.
    pub fn new(seed: u64) -> Rng {
        Rng(seed)
    }

    /// The next 64 random bits.
    pub fn next_u64(&mut self) -> u64 {
        self.0 = self.0.wrapping_add(0x9e37_79b9_7f4a_7c15);
        let mut z = self.0;
        z = (z ^ (z >> 30)).wrapping_mul(0xbf58_476d_1ce4_e5b9);
        z = (z ^ (z >> 27)).wrapping_mul(0x94d0_49bb_1331_11eb);
        z ^ (z >> 31)
    }

    /// A uniform value in `[0, 1)`.
    pub fn next_f64(&mut self) -> f64 {
        (self.next_u64() >> 11) as f64 / (1_u64 << 53) as f64
    }

    /// A uniform value in `0..bound` (`bound` > 0).
    pub fn below(&mut self, bound: u64) -> u64 {
        ((u128::from(self.next_u64()) * u128::from(bound)) >> 64) as u64
    }
}

/// Draws key indexes from a distribution.
#[derive(Debug, Clone)]
pub struct KeyChooser {
    keys: Keys,
    count: u64,
    rng: Rng,
    /// Zipf: the cumulative probability of keys `0..=k`.
    cumulative: Vec<f64>,
}

impl KeyChooser {
    /// Keys `0..count` drawn as `keys` says, from `seed`.
    pub fn new(keys: Keys, count: u64, seed: u64) -> KeyChooser {
        let count = count.clamp(1, MAX_KEY_COUNT);
        let cumulative = if keys == Keys::Zipf {
            let mut total = 0.0;
            let mut table: Vec<f64> = (1..=count)
                .map(|k| {
                    total += 1.0 / k as f64;
                    total
                })
                .collect();
            for value in &mut table {
                *value /= total;
            }
            table
        } else {
            Vec::new()
        };
        KeyChooser {
            keys,
            count,
            rng: Rng::new(seed),
            cumulative,
        }
    }

    /// The key index of the `i`-th record, or `None` when records are not keyed.
    pub fn choose(&mut self, i: u64) -> Option<u64> {
        match self.keys {
            Keys::None => None,
            Keys::RoundRobin => Some(i % self.count),
            Keys::Random => Some(self.rng.below(self.count)),
            Keys::Zipf => {
                let draw = self.rng.next_f64();
                let index = self.cumulative.partition_point(|&c| c < draw);
                Some((index as u64).min(self.count - 1))
            }
        }
    }
}

/// The bytes of key `index`.
pub fn key_bytes(index: u64) -> Vec<u8> {
    format!("key-{index}").into_bytes()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn distributions_draw_what_they_promise() {
        let mut round_robin = KeyChooser::new(Keys::RoundRobin, 3, 1);
        let drawn: Vec<_> = (0..5).map(|i| round_robin.choose(i)).collect();
        assert_eq!(drawn, [Some(0), Some(1), Some(2), Some(0), Some(1)]);
        assert_eq!(KeyChooser::new(Keys::None, 3, 1).choose(0), None);

        // The same seed draws the same keys.
        let draw = |keys, seed| {
            let mut chooser = KeyChooser::new(keys, 100, seed);
            (0..1000)
                .map(|i| chooser.choose(i).unwrap_or(0))
                .collect::<Vec<_>>()
        };
        assert_eq!(draw(Keys::Random, 7), draw(Keys::Random, 7));
        assert_ne!(draw(Keys::Random, 7), draw(Keys::Random, 8));
        let random = draw(Keys::Random, 7);
        assert!(random.iter().all(|k| *k < 100));

        // Zipf: key 0 about twice as often as key 1, far more than the median key.
        let zipf = draw(Keys::Zipf, 7);
        let count = |key| zipf.iter().filter(|k| **k == key).count();
        assert!(zipf.iter().all(|k| *k < 100));
        assert!(
            count(0) > 150 && count(0) < 250,
            "key 0 drawn {} times",
            count(0)
        );
        assert!(count(0) > count(1) && count(1) > count(50));
    }
}
