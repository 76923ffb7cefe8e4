//! Which operation a client sends next, and on which key.
//!
//! A [`Workload`] is pure: it draws from an RNG the caller owns (seeded per
//! client), so a run's key sequence is reproducible from its seed.

use rand::Rng;
use rand_distr::{Distribution as _, Zipf};

use crate::spec::{Distribution, Mix};

/// One operation kind. YCSB calls writes to existing keys "updates".
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, PartialOrd, Ord, serde::Serialize)]
#[serde(rename_all = "lowercase")]
pub enum OpKind {
    Read,
    Update,
}

impl OpKind {
    pub const ALL: [OpKind; 2] = [OpKind::Read, OpKind::Update];

    pub fn name(self) -> &'static str {
        match self {
            OpKind::Read => "read",
            OpKind::Update => "update",
        }
    }
}

/// Draws key indexes in `0..keys`.
#[derive(Debug, Clone)]
pub enum KeyChooser {
    Uniform {
        keys: u64,
    },
    /// Ranks come from a Zipf distribution; each rank is hashed onto the
    /// keyspace so the hottest keys are not neighbours (YCSB's "scrambled
    /// zipfian"), which would otherwise put them all in one slot range.
    Zipfian {
        keys: u64,
        zipf: Zipf<f64>,
    },
}

impl KeyChooser {
    pub fn new(distribution: Distribution, keys: u64) -> KeyChooser {
        match distribution {
            Distribution::Uniform => KeyChooser::Uniform { keys },
            Distribution::Zipfian { theta } => {
                let zipf = Zipf::new(keys as f64, theta).expect("keys ≥ 1 and theta > 0 are validated by the spec");
                KeyChooser::Zipfian { keys, zipf }
            }
        }
    }

    pub fn next(&self, rng: &mut impl Rng) -> u64 {
        match self {
            KeyChooser::Uniform { keys } => rng.random_range(0..*keys),
            KeyChooser::Zipfian { keys, zipf } => scramble(self.rank(zipf, rng), *keys),
        }
    }

    /// A zero-based rank: 0 is the most popular.
    fn rank(&self, zipf: &Zipf<f64>, rng: &mut impl Rng) -> u64 {
        (zipf.sample(rng) as u64).saturating_sub(1)
    }
}

/// Maps a rank onto the keyspace with FNV-1a over its bytes.
pub fn scramble(rank: u64, keys: u64) -> u64 {
    let mut h: u64 = 0xcbf2_9ce4_8422_2325;
    for b in rank.to_le_bytes() {
        h ^= u64::from(b);
        h = h.wrapping_mul(0x0000_0100_0000_01b3);
    }
    h % keys
}

/// The operation mix and key choice of one run.
#[derive(Debug, Clone)]
pub struct Workload {
    pub mix: Mix,
    pub chooser: KeyChooser,
}

impl Workload {
    pub fn new(mix: Mix, distribution: Distribution, keys: u64) -> Workload {
        Workload { mix, chooser: KeyChooser::new(distribution, keys) }
    }

    pub fn next_kind(&self, rng: &mut impl Rng) -> OpKind {
        if rng.random_range(0..100u8) < self.mix.read_pct {
            OpKind::Read
        } else {
            OpKind::Update
        }
    }

    pub fn next_key(&self, rng: &mut impl Rng) -> u64 {
        self.chooser.next(rng)
    }
}

/// The key name for an index: fixed width, so every key has the same size.
pub fn key_name(prefix: &str, index: u64) -> String {
    let mut digits = itoa::Buffer::new();
    let digits = digits.format(index);
    let mut name = String::with_capacity(prefix.len() + digits.len().max(KEY_DIGITS));
    name.push_str(prefix);
    name.extend(std::iter::repeat_n('0', KEY_DIGITS.saturating_sub(digits.len())));
    name.push_str(digits);
    name
}

/// Digits of a key's index, zero-padded.
const KEY_DIGITS: usize = 10;

#[cfg(test)]
mod tests {
    use super::*;
    use crate::spec::Mix;
    use rand::rngs::SmallRng;
    use rand::SeedableRng;

    fn rng() -> SmallRng {
        SmallRng::seed_from_u64(7)
    }

    #[test]
    fn mixes_hold_their_ratio() {
        let mut rng = rng();
        for (workload, expect) in [("a", 0.50), ("b", 0.95), ("c", 1.0), ("write", 0.0), ("mixed:70/30", 0.70)] {
            let w = Workload::new(Mix::parse(workload).unwrap(), Distribution::Uniform, 10);
            let n = 100_000;
            let reads = (0..n).filter(|_| w.next_kind(&mut rng) == OpKind::Read).count();
            let share = reads as f64 / n as f64;
            assert!((share - expect).abs() < 0.01, "{workload}: read share {share}, expected {expect}");
        }
    }

    #[test]
    fn uniform_covers_the_keyspace_evenly() {
        let mut rng = rng();
        let c = KeyChooser::new(Distribution::Uniform, 10);
        let mut counts = [0u32; 10];
        for _ in 0..100_000 {
            counts[c.next(&mut rng) as usize] += 1;
        }
        for n in counts {
            assert!((9_000..11_000).contains(&n), "{counts:?}");
        }
    }

    /// The rank frequencies follow 1/rank^θ: the hottest rank's share
    /// matches 1/H(n,θ), and each of the top ranks is close to its law.
    #[test]
    fn zipfian_has_the_zipf_shape() {
        let (keys, theta, samples) = (1000u64, 0.99, 400_000);
        let zipf = Zipf::new(keys as f64, theta).unwrap();
        let chooser = KeyChooser::new(Distribution::Zipfian { theta }, keys);
        let mut rng = rng();
        let mut by_rank = vec![0u32; keys as usize];
        for _ in 0..samples {
            by_rank[chooser.rank(&zipf, &mut rng) as usize] += 1;
        }
        let h: f64 = (1..=keys).map(|k| 1.0 / (k as f64).powf(theta)).sum();
        for rank in [1u64, 2, 3, 10, 100] {
            let expect = samples as f64 / (rank as f64).powf(theta) / h;
            let got = f64::from(by_rank[rank as usize - 1]);
            assert!((got - expect).abs() / expect < 0.08, "rank {rank}: {got} vs {expect}");
        }
        // A skewed distribution: the top 1% of ranks take far more than 1%.
        let top: u32 = by_rank[..10].iter().sum();
        assert!(f64::from(top) / samples as f64 > 0.3);
    }

    #[test]
    fn scrambled_zipfian_stays_in_range_and_spreads_hot_keys() {
        let keys = 100_000;
        let chooser = KeyChooser::new(Distribution::Zipfian { theta: 0.99 }, keys);
        let mut rng = rng();
        let mut hot = std::collections::HashMap::<u64, u32>::new();
        for _ in 0..100_000 {
            let k = chooser.next(&mut rng);
            assert!(k < keys);
            *hot.entry(k).or_default() += 1;
        }
        let mut top: Vec<(u64, u32)> = hot.into_iter().collect();
        top.sort_by_key(|&(_, n)| std::cmp::Reverse(n));
        // The five hottest keys are not clustered next to each other.
        let idx: Vec<u64> = top[..5].iter().map(|&(k, _)| k).collect();
        let spread = idx.iter().max().unwrap() - idx.iter().min().unwrap();
        assert!(spread > keys / 10, "hot keys {idx:?}");
        assert_eq!(scramble(0, keys), scramble(0, keys));
    }

    #[test]
    fn key_names_have_a_fixed_width() {
        assert_eq!(key_name("bench:", 42), "bench:0000000042");
        assert_eq!(key_name("k", 0).len(), key_name("k", 9_999_999_999).len());
    }
}
