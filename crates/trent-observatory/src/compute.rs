//! From rolled-up counts to published values: the statistic and its interval by method,
//! the sex and age-band breakdowns read from the cells, disclosure control, the plan's
//! baseline, target and trajectory.

use std::collections::HashMap;

use crate::definition::{Indicator, Mark, Method, Polarity};
use crate::period;
use crate::rollup::{
    AGE_BANDS, AGE_GROUPS, Agg, Cell, ETHNIC_GROUPS, Key, LEVELS, Places, QUINTILES,
    STORED_BREAKDOWNS, age_band, esp_band,
};
use crate::stat;

/// Which (sex, age group) cells a breakdown row reads.
type Pick = Box<dyn Fn(usize, usize) -> bool>;

/// One row of `indicator_value`.
#[derive(Debug, Clone, PartialEq, serde::Serialize)]
pub struct IndicatorValue {
    /// indicator id
    pub indicator: String,
    /// definition version (sha-256 of the definition file, 12 hex digits)
    pub definition_version: String,
    /// the lake generation the value was computed from
    pub lake_batch: String,
    /// place level
    pub level: String,
    /// place code
    pub place: String,
    /// place name
    pub place_name: String,
    /// period label
    pub period: String,
    /// first day of the period (ISO)
    pub period_start: String,
    /// last day of the period (ISO)
    pub period_end: String,
    /// breakdown (`all`, `sex`, `age_band`, `imd_quintile`, `ethnicity`)
    pub breakdown: String,
    /// breakdown value (`all` for none)
    pub breakdown_value: String,
    /// numerator after disclosure control (None: redacted)
    pub numerator: Option<f64>,
    /// denominator after disclosure control (person-years for rates)
    pub denominator: Option<f64>,
    /// value in the indicator's unit (None: redacted or undefined)
    pub value: Option<f64>,
    /// lower 95% limit
    pub lower: Option<f64>,
    /// upper 95% limit
    pub upper: Option<f64>,
    /// the plan's baseline (rows of the place the plan's figure is for)
    pub baseline: Option<f64>,
    /// the plan's target
    pub target: Option<f64>,
    /// the straight-line trajectory from baseline to target at this period
    pub trajectory: Option<f64>,
    /// is the value on or better than the trajectory
    pub on_trajectory: Option<bool>,
    /// SPC variation at this point
    pub variation: Option<String>,
    /// SPC assurance of the series against the target
    pub assurance: Option<String>,
    /// were counts redacted
    pub suppressed: bool,
    /// unit
    pub unit: String,
}

/// Exact (pre-disclosure) figures of one output cell, for tests and funnels.
#[derive(Debug, Clone, Copy, Default, PartialEq)]
pub struct Exact {
    /// units
    pub n: f64,
    /// numerator
    pub num: f64,
    /// denominator (person-years for population methods)
    pub den: f64,
    /// Σ numerator² (spread of means)
    pub num2: f64,
    /// value
    pub value: Option<f64>,
    /// lower
    pub lower: Option<f64>,
    /// upper
    pub upper: Option<f64>,
}

fn sum_cells(a: &Agg, pick: &dyn Fn(usize, usize) -> bool) -> Cell {
    let mut c = Cell::default();
    for (s, row) in a.iter().enumerate() {
        for (g, x) in row.iter().enumerate() {
            if pick(s, g) {
                c.n += x.n;
                c.num += x.num;
                c.num2 += x.num2;
                c.den += x.den;
                c.py += x.py;
                c.asked += x.asked;
                c.bad += x.bad;
            }
        }
    }
    c
}

/// The statistic of one cell subset.
pub fn statistic(
    ind: &Indicator,
    units: &Agg,
    pop: Option<&Agg>,
    health: Option<&Agg>,
    pick: &dyn Fn(usize, usize) -> bool,
) -> Exact {
    let m = ind.def.multiplier;
    let u = sum_cells(units, pick);
    let py = pop.map(|p| sum_cells(p, pick).py).unwrap_or(0.0);
    let mut e = Exact {
        n: u.n,
        num: u.num,
        den: u.den,
        num2: u.num2,
        ..Exact::default()
    };
    match ind.def.method {
        Method::Proportion => {
            if u.den > 0.0 {
                e.value = Some(u.num / u.den * m);
                let (lo, hi) = stat::wilson(u.num, u.den);
                e.lower = Some(lo * m);
                e.upper = Some(hi * m);
            }
        }
        Method::Mean => {
            if u.den > 0.0 {
                let mean = u.num / u.den;
                e.value = Some(mean * m);
                if u.den > 1.0 {
                    let var = ((u.num2 - u.num * u.num / u.den) / (u.den - 1.0)).max(0.0);
                    let hw = 1.959_963_984_540_054 * (var / u.den).sqrt();
                    e.lower = Some((mean - hw) * m);
                    e.upper = Some((mean + hw) * m);
                }
            }
        }
        Method::Count => {
            e.value = Some(u.num * m);
            let (lo, hi) = stat::byar(u.num);
            e.lower = Some(lo * m);
            e.upper = Some(hi * m);
        }
        Method::Rate => {
            e.den = py;
            if py > 0.0 {
                e.value = Some(u.num / py * m);
                let (lo, hi) = stat::byar(u.num);
                e.lower = Some(lo / py * m);
                e.upper = Some(hi / py * m);
            }
        }
        Method::Dsr => {
            e.den = py;
            let mut ev = [0.0; 19];
            let mut p = [0.0; 19];
            for s in 0..2 {
                for g in 0..AGE_GROUPS {
                    if pick(s, g) {
                        ev[esp_band(g)] += units[s][g].num;
                        p[esp_band(g)] += pop.map(|x| x[s][g].py).unwrap_or(0.0);
                    }
                }
            }
            if let Some((v, lo, hi)) = stat::dsr(&ev, &p) {
                e.value = Some(v * m);
                e.lower = Some(lo * m);
                e.upper = Some(hi * m);
            }
        }
        Method::Le | Method::Hle => {
            e.den = py;
            let mut deaths = [0.0; AGE_GROUPS];
            let mut p = [0.0; AGE_GROUPS];
            let mut bad = [(0.0, 0.0); AGE_GROUPS];
            for s in 0..2 {
                for g in 0..AGE_GROUPS {
                    if pick(s, g) {
                        deaths[g] += units[s][g].num;
                        p[g] += pop.map(|x| x[s][g].py).unwrap_or(0.0);
                        if let Some(h) = health {
                            bad[g].0 += h[s][g].num;
                            bad[g].1 += h[s][g].n;
                        }
                    }
                }
            }
            let r = if ind.def.method == Method::Le {
                stat::life_expectancy(&deaths, &p)
            } else {
                stat::healthy_life_expectancy(&deaths, &p, &bad)
            };
            if let Some((v, lo, hi)) = r {
                e.value = Some(v);
                e.lower = Some(lo);
                e.upper = Some(hi);
            }
        }
        Method::Sii | Method::Import => {}
    }
    e
}

/// NHS England's rule: counts of 1 to 7 are redacted, others rounded to the nearest 5.
pub fn disclose(x: f64) -> Option<f64> {
    if x > 0.0 && x < 7.5 {
        None
    } else {
        Some((x / 5.0).round() * 5.0)
    }
}

/// Mid-day of a mark's period.
fn mark_day(m: &Mark) -> Option<i32> {
    let (g, p) = period::parse_label(&m.period)?;
    Some(period::mid(g, p))
}

/// The straight line from (baseline day, value) to (target day, value), at a day: None
/// before the baseline, the target after its date.
pub fn trajectory(b: (i32, f64), t: (i32, f64), day: i32) -> Option<f64> {
    if day < b.0 {
        return None;
    }
    if day >= t.0 || t.0 == b.0 {
        return Some(t.1);
    }
    Some(b.1 + (t.1 - b.1) * (day - b.0) as f64 / (t.0 - b.0) as f64)
}

/// Is `value` on or better than `aim`?
pub fn meets(polarity: Polarity, value: f64, aim: f64) -> Option<bool> {
    match polarity {
        Polarity::Higher => Some(value >= aim),
        Polarity::Lower => Some(value <= aim),
        Polarity::Neither => None,
    }
}

/// Inputs of one indicator's output.
pub struct Inputs<'a> {
    /// the indicator
    pub ind: &'a Indicator,
    /// units
    pub units: &'a HashMap<Key, Agg>,
    /// population
    pub pop: Option<&'a HashMap<Key, Agg>>,
    /// health responses (HLE)
    pub health: Option<&'a HashMap<Key, Agg>>,
    /// places
    pub places: &'a Places,
    /// lake generation
    pub lake_batch: &'a str,
    /// the periods wholly inside the lake
    pub periods: &'a [i64],
}

/// Every output row of one indicator, with its exact figures, sorted.
pub fn rows(inp: &Inputs) -> Vec<(IndicatorValue, Exact)> {
    let ind = inp.ind;
    let empty: Agg = [[Cell::default(); AGE_GROUPS]; 2];
    // every key that has units or population
    let mut keys: Vec<Key> = inp.units.keys().copied().collect();
    if let Some(p) = inp.pop {
        keys.extend(p.keys().filter(|k| !inp.units.contains_key(k)).copied());
    }
    let bd_levels: Vec<&str> = match &ind.def.breakdown_levels {
        Some(l) => l.iter().map(|s| s.as_str()).collect(),
        None => vec!["stp", "local_authority", "ccg"],
    };
    let wants = |b: &str| ind.def.breakdowns.iter().any(|x| x == b);
    keys.retain(|k| {
        inp.periods.contains(&k.period)
            && (ind.provider || k.level != 9)
            && (ind.residence || k.level == 9 || k.level == 0)
            && (k.breakdown == 0
                || (bd_levels.contains(&LEVELS[k.level as usize])
                    && wants(STORED_BREAKDOWNS[k.breakdown as usize])))
    });
    keys.sort();
    keys.dedup();
    let life = matches!(ind.def.method, Method::Le | Method::Hle);
    let mut out = vec![];
    for k in keys {
        let u = inp.units.get(&k).unwrap_or(&empty);
        let p = inp.pop.map(|m| m.get(&k).unwrap_or(&empty));
        let h = inp.health.map(|m| m.get(&k).unwrap_or(&empty));
        let level = LEVELS[k.level as usize];
        let mut variants: Vec<(&str, String, Pick)> = vec![];
        let (bd, bv) = match k.breakdown {
            0 => ("all", "all".to_string()),
            1 => ("imd_quintile", QUINTILES[k.value as usize].to_string()),
            _ => ("ethnicity", ETHNIC_GROUPS[k.value as usize].to_string()),
        };
        if life {
            if k.breakdown == 0 {
                for (s, name) in [(0usize, "F"), (1, "M")] {
                    variants.push(("sex", name.into(), Box::new(move |x, _| x == s)));
                }
            }
        } else {
            variants.push((bd, bv, Box::new(|_, _| true)));
            if k.breakdown == 0 && bd_levels.contains(&level) {
                if wants("sex") {
                    for (s, name) in [(0usize, "F"), (1, "M")] {
                        variants.push(("sex", name.into(), Box::new(move |x, _| x == s)));
                    }
                }
                if wants("age_band") {
                    for (bi, (name, _)) in AGE_BANDS.iter().enumerate() {
                        variants.push((
                            "age_band",
                            (*name).into(),
                            Box::new(move |_, g| age_band(g) == bi),
                        ));
                    }
                }
            }
        }
        let (ps, pe) = period::bounds(ind.def.grain, k.period);
        let place = &inp.places.codes[k.place as usize];
        for (bd, bv, pick) in variants {
            let e = statistic(ind, u, p, h, &*pick);
            let nhse = ind.def.disclosure == "nhse";
            let counted = !matches!(ind.def.method, Method::Le | Method::Hle);
            let red_num = nhse && counted && disclose(e.n).is_none();
            let red_den = nhse
                && counted
                && matches!(ind.def.method, Method::Proportion)
                && disclose(e.den).is_none();
            let suppressed = red_num || red_den;
            let is_count_num = ind.num_value.is_none();
            let numerator = if !counted {
                Some(e.num)
            } else if suppressed {
                None
            } else if nhse && is_count_num {
                disclose(e.num)
            } else {
                Some(e.num)
            };
            let denominator = if suppressed && red_den {
                None
            } else if nhse && ind.den_value.is_none() && ind.population.is_none() {
                disclose(e.den)
            } else {
                Some(e.den)
            };
            let mut row = IndicatorValue {
                indicator: ind.def.id.clone(),
                definition_version: ind.version.clone(),
                lake_batch: inp.lake_batch.to_string(),
                level: level.to_string(),
                place: place.clone(),
                place_name: inp.places.names[k.place as usize].clone(),
                period: period::label(ind.def.grain, k.period),
                period_start: trent_model::time::iso(ps),
                period_end: trent_model::time::iso(pe - 1),
                breakdown: bd.to_string(),
                breakdown_value: bv,
                numerator,
                denominator,
                value: if suppressed { None } else { e.value },
                lower: if suppressed { None } else { e.lower },
                upper: if suppressed { None } else { e.upper },
                baseline: None,
                target: None,
                trajectory: None,
                on_trajectory: None,
                variation: None,
                assurance: None,
                suppressed,
                unit: ind.def.unit.clone(),
            };
            apply_marks(ind, &mut row, inp.places, (ps + pe) / 2);
            out.push((row, e));
        }
    }
    out
}

/// Baseline, target and trajectory on the rows of the place (and sex) the plan's figures
/// are for (default: the whole area, all people).
pub fn apply_marks(ind: &Indicator, row: &mut IndicatorValue, places: &Places, day: i32) {
    let (Some(b), t) = (&ind.def.baseline, &ind.def.target) else {
        return;
    };
    let stp = &places.codes[places.stp as usize];
    let place = b.place.as_deref().unwrap_or(stp);
    let sex_ok = match &b.sex {
        Some(s) => row.breakdown == "sex" && row.breakdown_value == *s,
        None => row.breakdown == "all",
    };
    if row.place != place || !sex_ok {
        return;
    }
    let Some(bv) = b.value else { return };
    row.baseline = Some(bv);
    if let Some(t) = t
        && let (Some(tv), Some(bd), Some(td)) = (t.value, mark_day(b), mark_day(t))
    {
        row.target = Some(tv);
        row.trajectory = trajectory((bd, bv), (td, tv), day);
        if let (Some(v), Some(aim)) = (row.value, row.trajectory) {
            row.on_trajectory = meets(ind.def.polarity, v, aim);
        }
    }
}

/// A target stated as a change (`[target] change = -30`): every place and breakdown gets
/// its own baseline — the mean of its values in the baseline period — its own target
/// (baseline × (1 + change/100)) and the straight line between them.
pub fn apply_relative(ind: &Indicator, rows: &mut [(IndicatorValue, Exact)]) {
    let (Some(b), Some(t)) = (&ind.def.baseline, &ind.def.target) else {
        return;
    };
    let (Some(change), Some(bd), Some(td)) = (t.change, mark_day(b), mark_day(t)) else {
        return;
    };
    let Some((bg, bp)) = period::parse_label(&b.period) else {
        return;
    };
    let (b0, b1) = period::bounds(bg, bp);
    let (b0, b1) = (trent_model::time::iso(b0), trent_model::time::iso(b1 - 1));
    let mut base: HashMap<(String, String, String, String), (f64, f64)> = HashMap::new();
    for (r, _) in rows.iter() {
        if r.period_start >= b0
            && r.period_end <= b1
            && let Some(v) = r.value
        {
            let e = base
                .entry((
                    r.level.clone(),
                    r.place.clone(),
                    r.breakdown.clone(),
                    r.breakdown_value.clone(),
                ))
                .or_default();
            e.0 += v;
            e.1 += 1.0;
        }
    }
    for (r, _) in rows.iter_mut() {
        let k = (
            r.level.clone(),
            r.place.clone(),
            r.breakdown.clone(),
            r.breakdown_value.clone(),
        );
        let Some(&(sum, n)) = base.get(&k) else {
            continue;
        };
        let bv = sum / n;
        let tv = bv * (1.0 + change / 100.0);
        let day = trent_model::time::parse(&r.period_start).unwrap_or(0)
            + (trent_model::time::parse(&r.period_end).unwrap_or(0)
                - trent_model::time::parse(&r.period_start).unwrap_or(0))
                / 2;
        r.baseline = Some(bv);
        r.target = Some(tv);
        r.trajectory = trajectory((bd, bv), (td, tv), day);
        if let (Some(v), Some(aim)) = (r.value, r.trajectory) {
            r.on_trajectory = meets(ind.def.polarity, v, aim);
        }
    }
}
