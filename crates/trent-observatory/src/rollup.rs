//! Rolling units up to every place of the hierarchy, period and breakdown.
//!
//! A unit (reference path) or a group of identical units (fast path) carries its period,
//! the person's practice, district, deprivation decile, sex, age group and ethnic group,
//! and optionally a provider. [`Rollup::add`] adds it to the total of every place it
//! belongs to: practice → hub → locality → CCG → delivery unit → STP, district → local
//! authority, the deprivation decile, the provider; and, at the breakdown levels, to the
//! deprivation-quintile and ethnic-group breakdowns. Sex and age-band breakdowns are read
//! from the per-sex, per-age-group cells every total keeps, so no unit is added twice.

use std::collections::HashMap;

/// Life-table age groups: 0, 1-4, 5-9, …, 85-89, 90+ (20).
pub const AGE_GROUPS: usize = 20;

/// Age group of an age.
pub fn age_group(age: i64) -> usize {
    match age {
        a if a <= 0 => 0,
        1..=4 => 1,
        a => ((a / 5) as usize + 1).min(AGE_GROUPS - 1),
    }
}

/// ESP 2013 band (0-4 … 90+, 19) of an age group.
pub fn esp_band(ag: usize) -> usize {
    ag.saturating_sub(1)
}

/// Breakdown age bands (labels) and the first age group of each.
pub const AGE_BANDS: &[(&str, usize)] = &[
    ("0-14", 0),
    ("15-44", 4),
    ("45-64", 10),
    ("65-74", 14),
    ("75-84", 16),
    ("85+", 18),
];

/// Breakdown age band of an age group.
pub fn age_band(ag: usize) -> usize {
    AGE_BANDS.iter().rposition(|(_, g)| ag >= *g).unwrap_or(0)
}

pub use trent_model::codes::{ETHNIC_GROUPS, ethnic_group};

/// Quintile labels (IMD deciles 1-2 → Q1 most deprived).
pub const QUINTILES: &[&str] = &[
    "Q1 (most deprived)",
    "Q2",
    "Q3",
    "Q4",
    "Q5 (least deprived)",
];

/// Place levels.
pub const LEVELS: &[&str] = &[
    "stp",
    "delivery_unit",
    "ccg",
    "locality",
    "hub",
    "practice",
    "local_authority",
    "district",
    "imd_decile",
    "provider",
];

/// Breakdown kinds stored in keys (sex and age band are derived from cells).
pub const STORED_BREAKDOWNS: &[&str] = &["all", "imd_quintile", "ethnicity"];

/// Additive measures of a set of units.
#[derive(Debug, Clone, Copy, Default, PartialEq)]
pub struct Cell {
    /// units
    pub n: f64,
    /// Σ numerator
    pub num: f64,
    /// Σ numerator²
    pub num2: f64,
    /// Σ denominator (units mode)
    pub den: f64,
    /// person-years (population mode)
    pub py: f64,
    /// health responses (HLE)
    pub asked: f64,
    /// of which not in good health (HLE)
    pub bad: f64,
}

impl Cell {
    fn add(&mut self, o: &Cell) {
        self.n += o.n;
        self.num += o.num;
        self.num2 += o.num2;
        self.den += o.den;
        self.py += o.py;
        self.asked += o.asked;
        self.bad += o.bad;
    }
}

/// Measures by sex (0 = F, 1 = M) and age group.
pub type Agg = [[Cell; AGE_GROUPS]; 2];

/// Key of one output cell before breakdowns by sex and age band.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub struct Key {
    /// index into [`LEVELS`]
    pub level: u8,
    /// interned place code
    pub place: u32,
    /// period index
    pub period: i64,
    /// index into [`STORED_BREAKDOWNS`]
    pub breakdown: u8,
    /// breakdown value index
    pub value: u8,
}

/// The area's places, read from the lake's `organisation` table.
#[derive(Debug, Clone, Default)]
pub struct Places {
    /// interned codes
    pub codes: Vec<String>,
    /// names by code index
    pub names: Vec<String>,
    index: HashMap<String, u32>,
    /// practice → [hub, locality, ccg, delivery unit, stp] code indexes
    pub practice_chain: HashMap<u32, [u32; 5]>,
    /// district → local authority
    pub district_la: HashMap<u32, u32>,
    /// the area (stp) code index
    pub stp: u32,
}

impl Places {
    /// Intern a code.
    pub fn intern(&mut self, code: &str) -> u32 {
        if let Some(&i) = self.index.get(code) {
            return i;
        }
        let i = self.codes.len() as u32;
        self.codes.push(code.to_string());
        self.names.push(code.to_string());
        self.index.insert(code.to_string(), i);
        i
    }
    /// Index of a known code.
    pub fn get(&self, code: &str) -> Option<u32> {
        self.index.get(code).copied()
    }
    /// Build from (code, name, type, parent) rows.
    pub fn from_orgs(rows: &[(String, String, String, Option<String>)]) -> Places {
        let mut p = Places::default();
        let parent: HashMap<&str, Option<&str>> = rows
            .iter()
            .map(|r| (r.0.as_str(), r.3.as_deref()))
            .collect();
        for r in rows {
            let i = p.intern(&r.0);
            p.names[i as usize] = r.1.clone();
        }
        for r in rows {
            match r.2.as_str() {
                "practice" => {
                    let mut chain = [0u32; 5];
                    let mut cur = r.3.as_deref();
                    for c in chain.iter_mut() {
                        let code = cur.unwrap_or("?");
                        *c = p.intern(code);
                        cur = parent.get(code).copied().flatten();
                    }
                    let i = p.get(&r.0).expect("interned");
                    p.practice_chain.insert(i, chain);
                }
                "district" => {
                    let i = p.get(&r.0).expect("interned");
                    let la = p.intern(r.3.as_deref().unwrap_or("?"));
                    p.district_la.insert(i, la);
                }
                "stp" => p.stp = p.get(&r.0).expect("interned"),
                _ => {}
            }
        }
        // a unitary authority has no districts: it is its own district
        for r in rows.iter().filter(|r| r.2 == "local_authority") {
            let la = p.get(&r.0).expect("interned");
            if !p.district_la.values().any(|&x| x == la) {
                p.district_la.insert(la, la);
            }
        }
        p
    }
}

/// Where a unit (or group of units) belongs.
#[derive(Debug, Clone)]
pub struct Dims<'a> {
    /// period index
    pub period: i64,
    /// practice code
    pub practice: &'a str,
    /// district code
    pub district: &'a str,
    /// IMD decile 1-10
    pub imd: i64,
    /// sex F/M
    pub sex: &'a str,
    /// age group
    pub ag: usize,
    /// ethnic category code
    pub ethnicity: &'a str,
    /// provider code
    pub provider: Option<&'a str>,
}

/// A fast hasher for small integer keys (FxHash's multiply-rotate): the roll-up does tens
/// of millions of lookups and SipHash's DoS resistance buys nothing on our own keys.
#[derive(Default, Clone, Copy)]
pub struct FxHasher(u64);

impl std::hash::Hasher for FxHasher {
    fn finish(&self) -> u64 {
        self.0
    }
    fn write(&mut self, bytes: &[u8]) {
        for b in bytes {
            self.write_u64(u64::from(*b));
        }
    }
    fn write_u8(&mut self, i: u8) {
        self.write_u64(u64::from(i));
    }
    fn write_u32(&mut self, i: u32) {
        self.write_u64(u64::from(i));
    }
    fn write_i64(&mut self, i: i64) {
        self.write_u64(i as u64);
    }
    fn write_usize(&mut self, i: usize) {
        self.write_u64(i as u64);
    }
    fn write_u64(&mut self, i: u64) {
        self.0 = (self.0.rotate_left(5) ^ i).wrapping_mul(0x51_7c_c1_b7_27_22_0a_95);
    }
}

/// A (level, place) a unit is added to.
type Target = (u8, u32);

/// A HashMap with [`FxHasher`].
pub type FxMap<K, V> = HashMap<K, V, std::hash::BuildHasherDefault<FxHasher>>;

/// The roll-up of one indicator.
#[derive(Debug, Clone)]
pub struct Rollup {
    /// totals by key (monthly for rolling windows until [`Rollup::finish`])
    pub cells: FxMap<Key, Agg>,
    /// residence levels
    pub residence: bool,
    /// provider level
    pub provider: bool,
    /// levels (indexes into LEVELS) that get breakdowns
    pub breakdown_levels: Vec<u8>,
    /// stored breakdowns computed (indexes into STORED_BREAKDOWNS)
    pub breakdowns: Vec<u8>,
    /// rolling 12-month windows: each month is added to the 12 windows ending in it and
    /// after, by [`Rollup::finish`]
    pub rolling: bool,
    /// the places a (practice, district, decile, provider) rolls up to, computed once:
    /// an index into `target_lists`
    targets: FxMap<(u32, u32, i64, u32), usize>,
    target_lists: Vec<Vec<Target>>,
}

/// A unit's attributes as the roll-up indexes them ([`Rollup::intern`]).
#[derive(Debug, Clone, Copy)]
pub struct Interned {
    /// practice code index (`u32::MAX` without residence levels)
    pub pr: u32,
    /// district code index (`u32::MAX` without residence levels)
    pub di: u32,
    /// IMD decile
    pub imd: i64,
    /// 0 = F, 1 = M
    pub sex: usize,
    /// ethnic group
    pub eth: u8,
}

fn put(cells: &mut FxMap<Key, Agg>, key: Key, sex: usize, ag: usize, c: &Cell) {
    cells
        .entry(key)
        .or_insert_with(|| [[Cell::default(); AGE_GROUPS]; 2])[sex][ag]
        .add(c);
}

impl Rollup {
    /// An empty roll-up.
    pub fn new(
        residence: bool,
        provider: bool,
        breakdown_levels: Vec<u8>,
        breakdowns: Vec<u8>,
        rolling: bool,
    ) -> Rollup {
        Rollup {
            cells: FxMap::default(),
            residence,
            provider,
            breakdown_levels,
            breakdowns,
            rolling,
            targets: FxMap::default(),
            target_lists: vec![],
        }
    }

    fn targets_of(
        &self,
        places: &mut Places,
        pr: u32,
        di: u32,
        imd: i64,
        pv: u32,
    ) -> Vec<(u8, u32)> {
        let mut targets: Vec<(u8, u32)> = Vec::with_capacity(10);
        targets.push((0, places.stp));
        if self.residence {
            if let Some([hub, loc, ccg, du, _]) = places.practice_chain.get(&pr).copied() {
                targets.extend([(1, du), (2, ccg), (3, loc), (4, hub)]);
            }
            targets.push((5, pr));
            if let Some(&la) = places.district_la.get(&di) {
                targets.push((6, la));
            }
            targets.push((7, di));
            let dec = places.intern(&format!("IMD{imd}"));
            targets.push((8, dec));
        }
        if self.provider && pv != u32::MAX {
            targets.push((9, pv));
        }
        targets
    }

    /// A unit's place and breakdown attributes as indexes, computed once per attribute
    /// combination rather than per unit.
    pub fn intern(
        &self,
        places: &mut Places,
        practice: &str,
        district: &str,
        imd: i64,
        sex: &str,
        ethnicity: &str,
    ) -> Interned {
        Interned {
            pr: if self.residence {
                places.intern(practice)
            } else {
                u32::MAX
            },
            di: if self.residence {
                places.intern(district)
            } else {
                u32::MAX
            },
            imd,
            sex: usize::from(sex == "M"),
            eth: ethnic_group(ethnicity) as u8,
        }
    }

    /// Add a unit, or a group of units with the same dims.
    pub fn add(&mut self, places: &mut Places, d: &Dims, c: &Cell) {
        let x = self.intern(places, d.practice, d.district, d.imd, d.sex, d.ethnicity);
        let pv = match (self.provider, d.provider) {
            (true, Some(p)) => places.intern(p),
            _ => u32::MAX,
        };
        self.add_interned(places, d.period, &x, d.ag, pv, c);
    }

    /// [`Rollup::add`] with the attributes already interned (`pv`: the provider's code
    /// index, `u32::MAX` for none).
    pub fn add_interned(
        &mut self,
        places: &mut Places,
        period: i64,
        x: &Interned,
        ag: usize,
        pv: u32,
        c: &Cell,
    ) {
        let (sex, e) = (x.sex, x.eth);
        let ag = ag.min(AGE_GROUPS - 1);
        let q = ((x.imd.clamp(1, 10) - 1) / 2) as u8;
        let pv = if self.provider { pv } else { u32::MAX };
        let tk = (x.pr, x.di, x.imd, pv);
        let ti = match self.targets.get(&tk) {
            Some(&i) => i,
            None => {
                let t = self.targets_of(places, x.pr, x.di, x.imd, pv);
                self.target_lists.push(t);
                let i = self.target_lists.len() - 1;
                self.targets.insert(tk, i);
                i
            }
        };
        let d_period = period;
        for &(level, place) in &self.target_lists[ti] {
            let base = Key {
                level,
                place,
                period: d_period,
                breakdown: 0,
                value: 0,
            };
            put(&mut self.cells, base, sex, ag, c);
            if self.breakdown_levels.contains(&level) {
                for &b in &self.breakdowns {
                    let value = if b == 1 { q } else { e };
                    put(
                        &mut self.cells,
                        Key {
                            breakdown: b,
                            value,
                            ..base
                        },
                        sex,
                        ag,
                        c,
                    );
                }
            }
        }
    }

    /// The totals; with rolling windows, each month's totals added to the 12 windows
    /// that end in it and the 11 months after.
    pub fn finish(self) -> HashMap<Key, Agg> {
        if !self.rolling {
            return self.cells.into_iter().collect();
        }
        let mut out: HashMap<Key, Agg> = HashMap::with_capacity(self.cells.len() * 2);
        for (k, a) in self.cells {
            for m in 0..12 {
                let e = out
                    .entry(Key {
                        period: k.period + m,
                        ..k
                    })
                    .or_insert_with(|| [[Cell::default(); AGE_GROUPS]; 2]);
                for (es, as_) in e.iter_mut().zip(&a) {
                    for (ec, ac) in es.iter_mut().zip(as_) {
                        ec.add(ac);
                    }
                }
            }
        }
        out
    }
}
