//! Weighted capitation: each unit's fair share of a budget from its population's need,
//! against what it spends now; and the control total of a set of units.
//!
//! Why: capitated budgets and control totals are how the plan's delivery units, localities,
//! hubs and practices are to be held to one system budget. A fair share must follow need,
//! not history: two practices with the same list size but different ages, illnesses and
//! deprivation need different budgets.
//!
//! Method (in the spirit of NHS England's weighted capitation formula and its
//! person-based resource allocation: an age/sex cost curve, then an adjustment for
//! additional need; not its exact coefficients, which are fitted nationally):
//! 1. **Population.** Everyone registered with a practice in the year, counted by
//!    person-years of registration in it (joiners, leavers and deaths count in part), with
//!    their age at 1 October in 5-year bands (0-4 … 90+), sex, the number of long-term
//!    conditions recorded in their GP record **before the year began** (0, 1, 2, 3, 4+;
//!    prospective, so the budget does not follow diagnoses made in the year) and the IMD
//!    quintile of their LSOA.
//! 2. **Spend.** Their NHS cost in the year: every activity row (`cost_gbp`, all settings
//!    except council social care assessments) plus primary-care prescribing
//!    (`medication.cost_gbp`).
//! 3. **Need model.** Expected cost per person-year = `age_sex[sex, band] × ltc[n] ×
//!    imd[q]`, a multiplicative (log-link) model of cost per person-year fitted to one
//!    year of the whole lake by Poisson maximum likelihood, which for categorical main
//!    effects is iterative proportional fitting on the margins (so fitted and observed
//!    cost agree in every age/sex cell, every LTC count and every quintile). `--risk`
//!    chooses the factors (`age-sex` only, `ltc`, `imd`, or `ltc+imd`, the default).
//! 4. **Weighted population** of a unit = Σ person-years × expected cost ÷ the area's mean
//!    cost per person-year; it adds up to the area's person-years.
//! 5. **Fair share** = total × the unit's weighted population ÷ the area's; the total
//!    defaults to the current total spend (so shares redistribute today's money), or is
//!    given (`--total`, £m at full scale). **Difference** = current spend − fair share, also
//!    as a percentage of the fair share (positive: spends above its fair share).
//!
//! Privacy: a unit of fewer than [`crate::SUPPRESS_BELOW`] people shows only its code.
//!
//! Speed: one DataFusion query reduces the lake to (practice, sex, band, ltc, quintile)
//! cells; the fit and the roll-up run on those few thousand cells in microseconds.

use std::collections::{BTreeMap, BTreeSet};

use serde::Serialize;

use crate::places::LEVELS;
use crate::table::{Table, m, n0, signed_m};
use crate::{
    CostingError, FinancialYear, LakeView, OutputFormat, SUPPRESS_BELOW, floats, ints, lit, strings,
};

/// Age bands: 0-4 … 85-89, 90+.
pub const BANDS: usize = 19;
/// LTC count groups: 0, 1, 2, 3, 4+.
pub const LTC_GROUPS: usize = 5;
/// IMD quintiles, 1 = most deprived.
pub const QUINTILES: usize = 5;

/// Which need factors adjust the age/sex curve.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize)]
pub struct RiskModel {
    /// Number of long-term conditions.
    pub ltc: bool,
    /// Deprivation (IMD quintile).
    pub imd: bool,
}

impl Default for RiskModel {
    fn default() -> Self {
        RiskModel {
            ltc: true,
            imd: true,
        }
    }
}

impl std::str::FromStr for RiskModel {
    type Err = String;
    fn from_str(s: &str) -> Result<Self, String> {
        match s {
            "age-sex" | "none" => Ok(RiskModel {
                ltc: false,
                imd: false,
            }),
            "ltc" => Ok(RiskModel {
                ltc: true,
                imd: false,
            }),
            "imd" => Ok(RiskModel {
                ltc: false,
                imd: true,
            }),
            "ltc+imd" => Ok(RiskModel::default()),
            o => Err(format!(
                "--risk {o:?}: expected age-sex, ltc, imd or ltc+imd"
            )),
        }
    }
}

/// One cell of the lake: a practice × sex × band × LTC group × quintile.
#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct Cell {
    /// Practice code.
    pub practice: String,
    /// 0 = female, 1 = male.
    pub sex: usize,
    /// Age band index.
    pub band: usize,
    /// LTC group index.
    pub ltc: usize,
    /// IMD quintile index (0 = most deprived).
    pub quintile: usize,
    /// People in the cell.
    pub people: u64,
    /// Person-years registered in the year.
    pub person_years: f64,
    /// Cost in the year, £ (lake scale).
    pub cost_gbp: f64,
}

/// Read the cells of one year.
pub async fn cells(view: &LakeView, year: &FinancialYear) -> Result<Vec<Cell>, CostingError> {
    let (s, e) = (year.start, year.end);
    let (ys, ms, _) = trent_model::time::ymd(s);
    // Age at 1 October of the year: months since birth month, integer years.
    let mid = ys as i64 * 12 + (ms as i64 - 1) + 6;
    let ltc_codes: Vec<String> = trent_model::codes::CONDITIONS
        .iter()
        .map(|c| lit(c.snomed))
        .collect();
    let sql = format!(
        "WITH pp AS (\
            SELECT person_id, practice_code, sex, imd_decile, \
              GREATEST(0, LEAST({last}, ({mid} - (CAST(date_part('year', birth_month) AS BIGINT) * 12 + CAST(date_part('month', birth_month) AS BIGINT) - 1)) / 60)) AS band, \
              GREATEST(0, LEAST(COALESCE(CAST(registration_end AS INT), {e}), COALESCE(CAST(death_date AS INT), {e}), {e}) - GREATEST(CAST(registration_start AS INT), {s})) AS days \
            FROM person), \
         ltc AS (SELECT person_id, COUNT(DISTINCT code) AS n FROM condition \
            WHERE code_system = 'SNOMED' AND code IN ({codes}) AND recorded_date < DATE '{sd}' GROUP BY person_id), \
         act AS (SELECT person_id, SUM(cost_gbp) AS c FROM activity \
            WHERE {ts} AND setting <> 'social_care_assessment' GROUP BY person_id), \
         med AS (SELECT person_id, SUM(cost_gbp) AS c FROM medication WHERE {md} GROUP BY person_id) \
         SELECT pp.practice_code, pp.sex, pp.band, LEAST(COALESCE(ltc.n, 0), {lmax}) AS ltc, \
            (pp.imd_decile + 1) / 2 AS q, COUNT(*) AS people, SUM(pp.days) AS days, \
            SUM(COALESCE(act.c, 0) + COALESCE(med.c, 0)) AS cost \
         FROM pp LEFT JOIN ltc ON pp.person_id = ltc.person_id \
            LEFT JOIN act ON pp.person_id = act.person_id \
            LEFT JOIN med ON pp.person_id = med.person_id \
         WHERE pp.days > 0 GROUP BY 1, 2, 3, 4, 5",
        last = BANDS - 1,
        lmax = LTC_GROUPS - 1,
        codes = ltc_codes.join(", "),
        sd = trent_model::time::iso(s),
        ts = year.ts_sql("start_ts"),
        md = year.date_sql("issue_date"),
    );
    let mut out = Vec::new();
    for b in view.query(&sql).await? {
        let pr = strings(&b, 0)?;
        let sex = strings(&b, 1)?;
        let band = ints(&b, 2)?;
        let ltc = ints(&b, 3)?;
        let q = ints(&b, 4)?;
        let people = ints(&b, 5)?;
        let days = floats(&b, 6)?;
        let cost = floats(&b, 7)?;
        for i in 0..b.num_rows() {
            out.push(Cell {
                practice: pr[i].clone().unwrap_or_default(),
                sex: usize::from(sex[i].as_deref() == Some("M")),
                band: (band[i].clamp(0, BANDS as i64 - 1)) as usize,
                ltc: (ltc[i].clamp(0, LTC_GROUPS as i64 - 1)) as usize,
                quintile: ((q[i] - 1).clamp(0, QUINTILES as i64 - 1)) as usize,
                people: people[i].max(0) as u64,
                person_years: days[i] / year.days(),
                cost_gbp: cost[i],
            });
        }
    }
    Ok(out)
}

/// The fitted need model.
#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct NeedModel {
    /// Factors used.
    pub risk: RiskModel,
    /// Cost per person-year, £, by sex (0 = F, 1 = M) and band, for someone with no
    /// long-term condition in the least deprived quintile (the reference).
    pub age_sex: Vec<[f64; BANDS]>,
    /// Cost multipliers by LTC count (0, 1, 2, 3, 4+), relative to none.
    pub ltc: [f64; LTC_GROUPS],
    /// Cost multipliers by IMD quintile (1 = most deprived … 5), relative to quintile 5.
    pub imd: [f64; QUINTILES],
    /// The area's mean cost per person-year, £.
    pub mean_cost: f64,
    /// Iterations the fit took.
    pub iterations: usize,
}

impl NeedModel {
    /// Expected cost per person-year of a cell, £.
    pub fn rate(&self, sex: usize, band: usize, ltc: usize, q: usize) -> f64 {
        self.age_sex[sex][band] * self.ltc[ltc] * self.imd[q]
    }

    /// Need index of a cell: expected cost ÷ the area's mean.
    pub fn index(&self, c: &Cell) -> f64 {
        if self.mean_cost > 0.0 {
            self.rate(c.sex, c.band, c.ltc, c.quintile) / self.mean_cost
        } else {
            1.0
        }
    }
}

/// Fit the multiplicative model to cells by iterative proportional fitting (Poisson
/// maximum likelihood with a log link and person-years as exposure).
pub fn fit(cells: &[Cell], risk: RiskModel) -> NeedModel {
    let mut base = vec![[0.0f64; BANDS]; 2];
    let mut r = [1.0f64; LTC_GROUPS];
    let mut d = [1.0f64; QUINTILES];
    let (mut te, mut tc) = (0.0, 0.0);
    let mut c_sb = vec![[0.0f64; BANDS]; 2];
    let mut c_l = [0.0f64; LTC_GROUPS];
    let mut c_q = [0.0f64; QUINTILES];
    for c in cells {
        te += c.person_years;
        tc += c.cost_gbp;
        c_sb[c.sex][c.band] += c.cost_gbp;
        c_l[c.ltc] += c.cost_gbp;
        c_q[c.quintile] += c.cost_gbp;
    }
    let upd = |obs: f64, exp: f64, old: f64| if exp > 0.0 { obs / exp } else { old };
    let mut iterations = 0;
    for it in 0..500 {
        iterations = it + 1;
        let mut e_sb = vec![[0.0f64; BANDS]; 2];
        for c in cells {
            e_sb[c.sex][c.band] += c.person_years * r[c.ltc] * d[c.quintile];
        }
        for s in 0..2 {
            for b in 0..BANDS {
                base[s][b] = upd(c_sb[s][b], e_sb[s][b], base[s][b]);
            }
        }
        let mut change: f64 = 0.0;
        if risk.ltc {
            let mut e_l = [0.0f64; LTC_GROUPS];
            for c in cells {
                e_l[c.ltc] += c.person_years * base[c.sex][c.band] * d[c.quintile];
            }
            for l in 0..LTC_GROUPS {
                let new = upd(c_l[l], e_l[l], r[l]);
                change = change.max((new - r[l]).abs() / r[l].abs().max(1e-12));
                r[l] = new;
            }
        }
        if risk.imd {
            let mut e_q = [0.0f64; QUINTILES];
            for c in cells {
                e_q[c.quintile] += c.person_years * base[c.sex][c.band] * r[c.ltc];
            }
            for q in 0..QUINTILES {
                let new = upd(c_q[q], e_q[q], d[q]);
                change = change.max((new - d[q]).abs() / d[q].abs().max(1e-12));
                d[q] = new;
            }
        }
        if change < 1e-12 {
            break;
        }
    }
    // Reference: no LTC, least deprived quintile.
    let (r0, d0) = (
        if r[0] > 0.0 { r[0] } else { 1.0 },
        if d[QUINTILES - 1] > 0.0 {
            d[QUINTILES - 1]
        } else {
            1.0
        },
    );
    for row in base.iter_mut() {
        for x in row.iter_mut() {
            *x *= r0 * d0;
        }
    }
    r.iter_mut().for_each(|x| *x /= r0);
    d.iter_mut().for_each(|x| *x /= d0);
    NeedModel {
        risk,
        age_sex: base,
        ltc: r,
        imd: d,
        mean_cost: if te > 0.0 { tc / te } else { 0.0 },
        iterations,
    }
}

/// One unit's capitation.
#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct Unit {
    /// Code.
    pub code: String,
    /// Name.
    pub name: String,
    /// Registered people in the year (the lake's count).
    pub people: u64,
    /// True if fewer than [`SUPPRESS_BELOW`] people: every figure below is withheld.
    pub suppressed: bool,
    /// Person-years registered (lake).
    pub person_years: Option<f64>,
    /// Need-weighted person-years (lake).
    pub weighted_population: Option<f64>,
    /// weighted ÷ person-years (1 = the area's average need).
    pub need_index: Option<f64>,
    /// Fair share of the total, £m (full scale).
    pub fair_share_m: Option<f64>,
    /// Current spend, £m (full scale).
    pub current_spend_m: Option<f64>,
    /// Current − fair, £m.
    pub difference_m: Option<f64>,
    /// (current − fair) ÷ fair.
    pub difference_pct: Option<f64>,
}

/// A control total across a set of units.
#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct ControlTotal {
    /// The codes asked for.
    pub codes: Vec<String>,
    /// Units in the set.
    pub units: usize,
    /// People in the set.
    pub people: u64,
    /// Σ fair shares, £m: the set's control total.
    pub fair_share_m: Option<f64>,
    /// Σ current spend, £m.
    pub current_spend_m: Option<f64>,
    /// Current − control total, £m.
    pub difference_m: Option<f64>,
}

/// Options of a capitation run.
#[derive(Debug, Clone, PartialEq, Default)]
pub struct CapitationOptions {
    /// Level: practice, hub, locality, ccg, delivery_unit or stp.
    pub level: String,
    /// Total to share, £m at full scale; default the current total spend.
    pub total_m: Option<f64>,
    /// Need factors.
    pub risk: RiskModel,
    /// Codes (any level) whose units form the control-total set; empty: none.
    pub only: Vec<String>,
}

/// The capitation report.
#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct CapitationReport {
    /// Level.
    pub level: String,
    /// Year.
    pub year: FinancialYear,
    /// Lake scale.
    pub scale: f64,
    /// How figures were scaled.
    pub scale_note: String,
    /// Total shared, £m.
    pub total_m: f64,
    /// Whether the total was given or is the current spend.
    pub total_is_current_spend: bool,
    /// The fitted model.
    pub model: NeedModel,
    /// Units (all of the level, or those in the set when `only` is given).
    pub units: Vec<Unit>,
    /// The set's control total when `only` is given.
    pub control_total: Option<ControlTotal>,
}

/// Capitation at a level from already-read cells (pure; [`capitation`] reads them).
pub fn capitation_from_cells(
    view_places: &crate::Places,
    cells: &[Cell],
    scale: f64,
    year: &FinancialYear,
    scale_note: String,
    opts: &CapitationOptions,
) -> Result<CapitationReport, CostingError> {
    if !LEVELS.contains(&opts.level.as_str()) {
        return Err(CostingError::Invalid(format!(
            "--level {:?}: expected one of {}",
            opts.level,
            LEVELS.join(", ")
        )));
    }
    let model = fit(cells, opts.risk);
    #[derive(Default)]
    struct Acc {
        people: u64,
        py: f64,
        w: f64,
        cost: f64,
    }
    let mut units: BTreeMap<String, Acc> = BTreeMap::new();
    let mut total = Acc::default();
    for c in cells {
        let code = view_places
            .ancestor(&c.practice, &opts.level)
            .unwrap_or("(unknown)")
            .to_string();
        let w = c.person_years * model.index(c);
        let u = units.entry(code).or_default();
        u.people += c.people;
        u.py += c.person_years;
        u.w += w;
        u.cost += c.cost_gbp;
        total.people += c.people;
        total.py += c.person_years;
        total.w += w;
        total.cost += c.cost_gbp;
    }
    let current_total_m = total.cost / scale / 1e6;
    let total_m = opts.total_m.unwrap_or(current_total_m);
    if !(total_m.is_finite() && total_m >= 0.0) {
        return Err(CostingError::Invalid(format!(
            "--total {total_m}: must be a finite amount in £m, not negative"
        )));
    }
    let fair = |w: f64| {
        if total.w > 0.0 {
            total_m * w / total.w
        } else {
            0.0
        }
    };
    let set: Option<BTreeSet<String>> = if opts.only.is_empty() {
        None
    } else {
        let mut s = BTreeSet::new();
        for code in &opts.only {
            let Some(o) = view_places.get(code) else {
                return Err(CostingError::Invalid(format!(
                    "--only {code:?}: not an organisation code of the lake"
                )));
            };
            let lvl = LEVELS.iter().position(|l| *l == o.org_type);
            let want = LEVELS.iter().position(|l| *l == opts.level);
            match (lvl, want) {
                (Some(a), Some(b)) if a >= b => {}
                _ => {
                    return Err(CostingError::Invalid(format!(
                        "--only {code:?}: a {} cannot contain {} units",
                        o.org_type, opts.level
                    )));
                }
            }
            for u in units.keys() {
                if view_places.ancestor(u, &o.org_type) == Some(code.as_str()) {
                    s.insert(u.clone());
                }
            }
        }
        Some(s)
    };
    let mut out = Vec::new();
    let mut ct = (0usize, 0u64, 0.0, 0.0);
    for (code, a) in &units {
        if let Some(s) = &set {
            if !s.contains(code) {
                continue;
            }
            ct.0 += 1;
            ct.1 += a.people;
            ct.2 += fair(a.w);
            ct.3 += a.cost / scale / 1e6;
        }
        let suppressed = a.people < SUPPRESS_BELOW;
        let f = fair(a.w);
        let cur = a.cost / scale / 1e6;
        let show = |x: f64| (!suppressed).then_some(x);
        out.push(Unit {
            code: code.clone(),
            name: view_places.name(code).to_string(),
            people: a.people,
            suppressed,
            person_years: show(a.py),
            weighted_population: show(a.w),
            need_index: show(if a.py > 0.0 { a.w / a.py } else { 0.0 }),
            fair_share_m: show(f),
            current_spend_m: show(cur),
            difference_m: show(cur - f),
            difference_pct: show(if f > 0.0 { (cur - f) / f } else { 0.0 }),
        });
    }
    let control_total = set.map(|_| {
        let ok = ct.1 >= SUPPRESS_BELOW;
        ControlTotal {
            codes: opts.only.clone(),
            units: ct.0,
            people: ct.1,
            fair_share_m: ok.then_some(ct.2),
            current_spend_m: ok.then_some(ct.3),
            difference_m: ok.then_some(ct.3 - ct.2),
        }
    });
    Ok(CapitationReport {
        level: opts.level.clone(),
        year: year.clone(),
        scale,
        scale_note,
        total_m,
        total_is_current_spend: opts.total_m.is_none(),
        model,
        units: out,
        control_total,
    })
}

/// Capitation for every unit of a level from one year of the lake.
pub async fn capitation(
    view: &LakeView,
    year: &FinancialYear,
    opts: &CapitationOptions,
) -> Result<CapitationReport, CostingError> {
    let cells = cells(view, year).await?;
    capitation_from_cells(
        &view.places,
        &cells,
        view.scale,
        year,
        view.scale_note(),
        opts,
    )
}

const SUPPRESSED: &str = "suppressed";

fn opt(x: Option<f64>, f: impl Fn(f64) -> String) -> String {
    x.map_or_else(|| SUPPRESSED.to_string(), f)
}

impl CapitationReport {
    /// Render as text, JSON, or CSV (the units table).
    pub fn render(&self, format: OutputFormat) -> String {
        let mut t = Table::new(&[
            "code",
            "name",
            "people",
            "person-years",
            "weighted pop",
            "need index",
            "fair share £m",
            "current £m",
            "difference £m",
            "difference %",
        ]);
        for u in &self.units {
            t.row(vec![
                u.code.clone(),
                u.name.clone(),
                if u.suppressed {
                    format!("<{SUPPRESS_BELOW}")
                } else {
                    u.people.to_string()
                },
                opt(u.person_years, n0),
                opt(u.weighted_population, n0),
                opt(u.need_index, |x| format!("{x:.3}")),
                opt(u.fair_share_m, |x| format!("{x:.2}")),
                opt(u.current_spend_m, |x| format!("{x:.2}")),
                opt(u.difference_m, |x| format!("{x:+.2}")),
                opt(u.difference_pct, |x| format!("{:+.1}%", 100.0 * x)),
            ]);
        }
        match format {
            OutputFormat::Json => serde_json::to_string_pretty(self).unwrap_or_default() + "\n",
            OutputFormat::Csv => t.csv(),
            OutputFormat::Table => {
                let md = &self.model;
                let mut out = format!(
                    "Weighted capitation by {} — year {}\n{}\n\
                     Total shared: £{}m ({}). Need model: age/sex cost curve{}{}; mean £{:.0} per person-year.\n",
                    self.level,
                    self.year.label,
                    self.scale_note,
                    m(self.total_m),
                    if self.total_is_current_spend {
                        "the current total spend"
                    } else {
                        "given"
                    },
                    if md.risk.ltc {
                        " × long-term conditions"
                    } else {
                        ""
                    },
                    if md.risk.imd { " × deprivation" } else { "" },
                    md.mean_cost
                );
                if md.risk.ltc {
                    out.push_str(&format!(
                        "  LTC multipliers (0, 1, 2, 3, 4+): {}\n",
                        md.ltc.map(|x| format!("{x:.2}")).join(", ")
                    ));
                }
                if md.risk.imd {
                    out.push_str(&format!(
                        "  IMD quintile multipliers (1 most deprived … 5): {}\n",
                        md.imd.map(|x| format!("{x:.2}")).join(", ")
                    ));
                }
                let mut a = Table::new(&["age", "F £/person-year", "M £/person-year"]);
                for b in 0..BANDS {
                    let label = if b + 1 == BANDS {
                        "90+".to_string()
                    } else {
                        format!("{}-{}", 5 * b, 5 * b + 4)
                    };
                    a.row(vec![label, n0(md.age_sex[0][b]), n0(md.age_sex[1][b])]);
                }
                out.push_str(
                    "\nAge/sex cost curve (no long-term condition, least deprived quintile):\n",
                );
                out.push_str(&a.text());
                out.push('\n');
                out.push_str(&t.text());
                if let Some(c) = &self.control_total {
                    out.push_str(&format!(
                        "\nControl total for {} ({} units, {} people): fair share £{}m, current £{}m, difference {}\n",
                        c.codes.join(", "),
                        c.units,
                        if c.people < SUPPRESS_BELOW {
                            format!("<{SUPPRESS_BELOW}")
                        } else {
                            c.people.to_string()
                        },
                        opt(c.fair_share_m, m),
                        opt(c.current_spend_m, m),
                        opt(c.difference_m, signed_m),
                    ));
                }
                out.push_str(&format!(
                    "\nUnits of fewer than {SUPPRESS_BELOW} people are suppressed. Difference = current − fair share (% of the fair share); positive = spends above its fair share.\n"
                ));
                out
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn cell(p: &str, sex: usize, band: usize, ltc: usize, q: usize, py: f64, cost: f64) -> Cell {
        Cell {
            practice: p.into(),
            sex,
            band,
            ltc,
            quintile: q,
            people: py as u64,
            person_years: py,
            cost_gbp: cost,
        }
    }

    #[test]
    fn the_fit_recovers_a_multiplicative_model_exactly() {
        // Cost = base(sex, band) × ltc factor × imd factor, exactly.
        let base = |s: usize, b: usize| 100.0 + 50.0 * b as f64 + 20.0 * s as f64;
        let lf = [1.0, 1.5, 2.5, 3.0, 5.0];
        let qf = [1.4, 1.3, 1.2, 1.1, 1.0];
        let mut cells = Vec::new();
        for s in 0..2 {
            for b in 0..BANDS {
                for (l, fl) in lf.iter().enumerate() {
                    for (q, fq) in qf.iter().enumerate() {
                        let py = 10.0 + ((s + b + l + q) % 7) as f64;
                        cells.push(cell("P", s, b, l, q, py, py * base(s, b) * fl * fq));
                    }
                }
            }
        }
        let m = fit(&cells, RiskModel::default());
        for (got, want) in m.ltc.iter().zip(lf) {
            assert!((got - want).abs() < 1e-6, "{:?}", m.ltc);
        }
        for (got, want) in m.imd.iter().zip(qf) {
            assert!((got - want).abs() < 1e-6, "{:?}", m.imd);
        }
        assert!((m.age_sex[1][3] - base(1, 3)).abs() < 1e-6);
    }

    #[test]
    fn small_units_are_suppressed_but_counted_in_the_totals() {
        use crate::places::{Org, Places};
        let org = |c: &str, t: &str, p: Option<&str>| Org {
            code: c.into(),
            name: c.into(),
            org_type: t.into(),
            parent: p.map(str::to_string),
        };
        let places = Places::from_orgs([
            org("H", "hub", None),
            org("P1", "practice", Some("H")),
            org("P2", "practice", Some("H")),
        ]);
        let cells = vec![
            cell("P1", 0, 3, 0, 2, 100.0, 50_000.0),
            cell("P2", 0, 3, 0, 2, 4.0, 2_000.0),
        ];
        let y = FinancialYear::starting(2015);
        let r = capitation_from_cells(
            &places,
            &cells,
            1.0,
            &y,
            String::new(),
            &CapitationOptions {
                level: "practice".into(),
                ..CapitationOptions::default()
            },
        )
        .unwrap();
        let p2 = r.units.iter().find(|u| u.code == "P2").unwrap();
        assert!(p2.suppressed && p2.fair_share_m.is_none() && p2.current_spend_m.is_none());
        assert!((r.total_m - 0.052).abs() < 1e-12);
        let text = r.render(OutputFormat::Table);
        assert!(
            text.contains("suppressed") && text.contains("<10"),
            "{text}"
        );
        assert!(!text.contains("0.0020"), "{text}");
    }
}
