//! Blocking: which pairs are compared at all.
//!
//! Comparing every pair of a million records (5 × 10¹¹ pairs) is out of reach, so, as
//! in Splink, only pairs that agree on at least one *blocking rule* are scored. Each
//! rule is a key; records with equal, non-missing keys form a block and every pair in
//! a block is a candidate. The candidate set is the union over rules. A pair is
//! produced only by the first rule (in configuration order) that blocks it: when rule
//! *k* proposes a pair, it is skipped if any earlier rule's keys also agree — the same
//! de-duplication Splink does with its `AND NOT (earlier rules)` SQL, done here with a
//! key comparison instead of a hash set.
//!
//! Blocks larger than `max_block_size` records are skipped and reported in
//! [`BlockStats::oversized_blocks`] (a block of n records costs n²/2 comparisons); the
//! other rules still see those records.

use crate::compare::{NONE, Prepared};
use crate::normalise::soundex;

/// A blocking rule.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum BlockingRule {
    /// Same valid NHS number.
    NhsNumber,
    /// Same date of birth.
    BirthDate,
    /// Same full postcode and same first letter of family name.
    PostcodeFamilyInitial,
    /// Same Soundex code of family name and same year of birth.
    FamilySoundexBirthYear,
    /// Same normalised given name and family name.
    GivenFamily,
}

impl BlockingRule {
    /// The default rules, in order.
    pub const DEFAULT: [BlockingRule; 5] = [
        BlockingRule::NhsNumber,
        BlockingRule::BirthDate,
        BlockingRule::PostcodeFamilyInitial,
        BlockingRule::FamilySoundexBirthYear,
        BlockingRule::GivenFamily,
    ];

    /// A short name for reports.
    pub fn name(self) -> &'static str {
        match self {
            BlockingRule::NhsNumber => "nhs_number",
            BlockingRule::BirthDate => "birth_date",
            BlockingRule::PostcodeFamilyInitial => "postcode+family_initial",
            BlockingRule::FamilySoundexBirthYear => "family_soundex+birth_year",
            BlockingRule::GivenFamily => "given_name+family_name",
        }
    }

    /// Fields (indices into [`crate::compare::FIELDS`]) the rule constrains; an EM
    /// round trained on this rule's pairs does not estimate them.
    pub fn fields(self) -> &'static [usize] {
        use crate::compare::{DOB, FAMILY, GIVEN, NHS, POSTCODE};
        match self {
            BlockingRule::NhsNumber => &[NHS],
            BlockingRule::BirthDate => &[DOB],
            BlockingRule::PostcodeFamilyInitial => &[POSTCODE, FAMILY],
            BlockingRule::FamilySoundexBirthYear => &[FAMILY, DOB],
            BlockingRule::GivenFamily => &[GIVEN, FAMILY],
        }
    }

    /// Parse a rule name as printed by [`BlockingRule::name`].
    pub fn parse(s: &str) -> Option<BlockingRule> {
        Self::DEFAULT.into_iter().find(|r| r.name() == s)
    }

    /// Block keys of every record (0 = no key: a needed field is missing).
    pub fn keys(self, p: &Prepared) -> Vec<u64> {
        let n = p.len();
        let mut out = Vec::with_capacity(n);
        for i in 0..n {
            let k = match self {
                BlockingRule::NhsNumber => (p.nhs[i] != 0).then(|| mix(1, p.nhs[i])),
                BlockingRule::BirthDate => p.dob[i].map(|d| mix(2, d.to_days() as u64)),
                BlockingRule::PostcodeFamilyInitial => (p.pc[i] != NONE && p.family[i] != NONE)
                    .then(|| {
                        let c = p.names[p.family[i] as usize][0] as u64;
                        mix(3, (u64::from(p.pc[i]) << 21) | c)
                    }),
                BlockingRule::FamilySoundexBirthYear => match (p.family[i] != NONE, p.dob[i]) {
                    (true, Some(d)) => {
                        let s: String = p.names[p.family[i] as usize].iter().collect();
                        soundex(&s).map(|c| {
                            let code = u64::from(u32::from_be_bytes(c));
                            mix(4, (code << 20) | (d.year as u64 & 0xFFFFF))
                        })
                    }
                    _ => None,
                },
                BlockingRule::GivenFamily => (p.given[i] != NONE && p.family[i] != NONE)
                    .then(|| mix(5, (u64::from(p.given[i]) << 32) | u64::from(p.family[i]))),
            };
            out.push(k.unwrap_or(0));
        }
        out
    }
}

/// A 64-bit mix of a rule tag and a value, never 0.
fn mix(tag: u64, v: u64) -> u64 {
    let mut z = v ^ tag.wrapping_mul(0x9E37_79B9_7F4A_7C15);
    z = (z ^ (z >> 30)).wrapping_mul(0xBF58_476D_1CE4_E5B9);
    z = (z ^ (z >> 27)).wrapping_mul(0x94D0_49BB_1331_11EB);
    (z ^ (z >> 31)) | 1
}

/// What blocking produced.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct BlockStats {
    /// Per rule: (rule name, candidate pairs it contributed after de-duplication).
    pub pairs_per_rule: Vec<(String, u64)>,
    /// Per rule: pairs the rule proposed that an earlier rule had already produced.
    pub duplicates_per_rule: Vec<(String, u64)>,
    /// Blocks skipped as larger than `max_block_size`: (rule name, block size).
    pub oversized_blocks: Vec<(String, usize)>,
}

/// Blocks of all rules, ready to enumerate in parallel chunks.
#[derive(Debug)]
pub struct Blocks {
    /// The rules.
    pub rules: Vec<BlockingRule>,
    /// Keys per rule per record.
    pub keys: Vec<Vec<u64>>,
    /// Per rule, record indices sorted by key (keyed records only).
    order: Vec<Vec<u32>>,
    /// Work chunks: (rule, start, end) ranges of `order[rule]`, cut at block edges.
    pub chunks: Vec<(usize, usize, usize)>,
    /// Blocks skipped for size.
    pub oversized: Vec<(String, usize)>,
    /// Records below this index are already linked ("known"): only pairs with at least
    /// one record at or above it are enumerated (0: every pair).
    pub first_new: u32,
}

impl Blocks {
    /// Build the blocks; `target_chunk_pairs` sets the work-chunk size.
    pub fn build(
        p: &Prepared,
        rules: &[BlockingRule],
        max_block_size: usize,
        target_chunk_pairs: u64,
    ) -> Blocks {
        Blocks::build_incremental(p, rules, max_block_size, target_chunk_pairs, 0)
    }

    /// Build the blocks for linking new records (indices `first_new..`) to each other and
    /// to known ones (`..first_new`), whose links are settled: blocks without a new record
    /// are dropped and pairs of two known records are never enumerated. A block's size
    /// (for `max_block_size`) still counts its known records.
    pub fn build_incremental(
        p: &Prepared,
        rules: &[BlockingRule],
        max_block_size: usize,
        target_chunk_pairs: u64,
        first_new: u32,
    ) -> Blocks {
        let keys: Vec<Vec<u64>> = rules.iter().map(|r| r.keys(p)).collect();
        let mut order = Vec::new();
        let mut chunks = Vec::new();
        let mut oversized = Vec::new();
        for (r, k) in keys.iter().enumerate() {
            let mut idx: Vec<u32> = (0..p.len() as u32)
                .filter(|&i| k[i as usize] != 0)
                .collect();
            idx.sort_unstable_by_key(|&i| (k[i as usize], i));
            // cut into blocks, drop singletons and oversized, pack into chunks
            let mut kept: Vec<u32> = Vec::with_capacity(idx.len());
            let mut chunk_start = 0usize;
            let mut chunk_pairs = 0u64;
            let mut s = 0;
            while s < idx.len() {
                let key = k[idx[s] as usize];
                let mut e = s + 1;
                while e < idx.len() && k[idx[e] as usize] == key {
                    e += 1;
                }
                let size = e - s;
                // sorted by index within a key: the new records come last
                let new = idx[s..e].iter().filter(|&&i| i >= first_new).count();
                if size > max_block_size && new > 0 {
                    oversized.push((rules[r].name().to_string(), size));
                } else if size >= 2 && new > 0 {
                    kept.extend_from_slice(&idx[s..e]);
                    chunk_pairs += (new * (new - 1) / 2 + new * (size - new)) as u64;
                    if chunk_pairs >= target_chunk_pairs {
                        chunks.push((r, chunk_start, kept.len()));
                        chunk_start = kept.len();
                        chunk_pairs = 0;
                    }
                }
                s = e;
            }
            if kept.len() > chunk_start {
                chunks.push((r, chunk_start, kept.len()));
            }
            order.push(kept);
        }
        Blocks {
            rules: rules.to_vec(),
            keys,
            order,
            chunks,
            oversized,
            first_new,
        }
    }

    /// Enumerate the de-duplicated pairs of chunk `c` in a fixed order, calling
    /// `f(i, j, mask)` with `i < j` and `mask` the set of rules whose keys agree.
    /// Returns the number of proposed pairs skipped as produced by an earlier rule.
    pub fn for_each_pair(&self, c: usize, mut f: impl FnMut(usize, usize, u32)) -> u64 {
        let (r, s, e) = self.chunks[c];
        let ord = &self.order[r];
        let key = &self.keys[r];
        let mut dup = 0u64;
        let mut bs = s;
        while bs < e {
            let kk = key[ord[bs] as usize];
            let mut be = bs + 1;
            while be < e && key[ord[be] as usize] == kk {
                be += 1;
            }
            // first position of a new record in the block (members are in index order)
            let nb = bs + ord[bs..be].partition_point(|&i| i < self.first_new);
            for a in bs..be {
                let i = ord[a] as usize;
                for &jj in &ord[(a + 1).max(nb)..be] {
                    let j = jj as usize;
                    let mut mask = 0u32;
                    let mut earlier = false;
                    for (q, kq) in self.keys.iter().enumerate() {
                        let ki = kq[i];
                        if ki != 0 && ki == kq[j] {
                            mask |= 1 << q;
                            if q < r {
                                earlier = true;
                                break;
                            }
                        }
                    }
                    if earlier {
                        dup += 1;
                        continue;
                    }
                    let (x, y) = if i < j { (i, j) } else { (j, i) };
                    f(x, y, mask);
                }
            }
            bs = be;
        }
        dup
    }
}
