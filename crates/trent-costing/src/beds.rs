//! Bed capacity from the lake — the "fifth test" for bed closures: beds needed per site
//! and trust from admissions and lengths of stay, what a bed reduction needs in fewer
//! admissions, shorter stays or fewer delayed discharges, and whether the alternative
//! community provision is in place.
//!
//! Why: the plan takes 200 beds out of Nottingham University Hospitals and 20 out of
//! Sherwood Forest. NHS England's fifth test for service change (2017) asks that a bed
//! closure show enough alternative provision, or a workable plan to need fewer beds,
//! before the beds go. That is a capacity question about the admissions and stays in the
//! lake; `trent_finance::beds` holds the queueing maths, this module feeds it.
//!
//! Method: one financial year of admitted patient care (`activity.setting = 'apc'`,
//! day cases excluded — they do not occupy an overnight bed), grouped by provider and
//! site (elective spells without a recorded site form their own line). Admissions a day
//! λ = spells ÷ days in the year ÷ the lake's scale (full population); the lengths of stay
//! are the observed `los_days` (scale-free). Beds needed = the fewest beds c with offered
//! load ÷ c at most the target occupancy (default 92%; the Erlang model's own occupancy
//! a(1 − B)/c is then below it too); the
//! probability that an admission finds no bed is Erlang B at those beds, checked by a
//! seeded discrete-event simulation that draws stays from the observed ones. A trust's
//! reduction is analysed on its pooled sites: the offered load the smaller bed base can
//! carry at today's probability of no bed gives the fewer admissions a day (at today's
//! stays), the shorter mean stay (at today's admissions), and the bed days to remove as a
//! share of today's delayed-discharge (excess) bed days — days from `medically_fit_date`
//! to discharge. The alternative provision: the growth in the trust's delivery units'
//! community contacts between the lake's first and last complete years, against the bed
//! days removed × contacts needed per bed day avoided (default 1: a daily visit at home).

use std::collections::BTreeMap;

use serde::Serialize;
use trent_finance::beds::{
    BedDemand, BedReduction, BedSimOptions, BedSimulation, bed_reduction, beds_for_occupancy,
    erlang_b, occupancy, simulate,
};
use trent_places::Area;

use crate::table::{Table, n0, pct};
use crate::{CostingError, FinancialYear, LakeView, OutputFormat, floats, ints, lit, strings};

/// The plan's bed reductions: 200 at NUH (`RX1`), 20 at Sherwood Forest (`RK5`).
pub const PLAN_REDUCTIONS: [(&str, u32); 2] = [("RX1", 200), ("RK5", 20)];

/// Options of the bed model.
#[derive(Debug, Clone, PartialEq)]
pub struct BedOptions {
    /// Target mean occupancy (0.92).
    pub occupancy: f64,
    /// Only this site or provider code.
    pub site: Option<String>,
    /// Bed reductions by provider code.
    pub reductions: Vec<(String, u32)>,
    /// Simulated days per site (after a 200-day warm-up).
    pub sim_days: f64,
    /// Simulation seed.
    pub seed: u64,
    /// Community contacts needed per bed day avoided.
    pub contacts_per_bed_day: f64,
}

impl Default for BedOptions {
    fn default() -> Self {
        BedOptions {
            occupancy: 0.92,
            site: None,
            reductions: PLAN_REDUCTIONS
                .iter()
                .map(|(p, n)| (p.to_string(), *n))
                .collect(),
            sim_days: 5_000.0,
            seed: 1,
            contacts_per_bed_day: 1.0,
        }
    }
}

/// Beds for one site (or one trust, pooled).
#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct SiteBeds {
    /// Provider code.
    pub provider: String,
    /// Site code (`(not recorded)` for spells without one; `(all sites)` for a trust).
    pub site: String,
    /// Name.
    pub name: String,
    /// Spells in the lake in the year.
    pub lake_spells: u64,
    /// Admissions a day at full scale.
    pub admissions_per_day: f64,
    /// Mean length of stay, days.
    pub mean_los: f64,
    /// Offered load, erlangs (mean occupied beds with unlimited beds).
    pub offered_load: f64,
    /// Beds needed at the target occupancy.
    pub beds: u32,
    /// Mean occupancy at those beds.
    pub occupancy: f64,
    /// Probability an admission finds no bed (Erlang B).
    pub erlang_b: f64,
    /// The simulation's check.
    pub simulation: BedSimulation,
    /// Whether simulation and Erlang B agree (within 4 standard errors + 0.002).
    pub agree: bool,
    /// Delayed-discharge (excess) bed days a day, full scale.
    pub delayed_bed_days_per_day: f64,
    /// Delayed bed days as a share of all bed days.
    pub delayed_share: f64,
}

/// The community-provision check of a reduction.
#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct CommunityCheck {
    /// Community providers of the trust's delivery units.
    pub community_providers: Vec<String>,
    /// First and last complete years compared.
    pub years: (String, String),
    /// Contacts a year, full scale, in the first and last year.
    pub contacts: (f64, f64),
    /// Growth in contacts a year.
    pub growth: f64,
    /// Contacts a year needed to replace the bed days removed.
    pub needed: f64,
    /// growth ≥ needed.
    pub in_place: bool,
}

/// What a trust's bed reduction needs.
#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct ReductionNeed {
    /// Provider code.
    pub provider: String,
    /// Name.
    pub name: String,
    /// The reduction analysed (beds at the target occupancy → fewer).
    pub reduction: BedReduction,
    /// Fewer admissions needed, as a fraction of today's.
    pub admissions_cut: f64,
    /// Shorter mean stay needed, as a fraction of today's.
    pub los_cut: f64,
    /// Bed days a day to remove (offered load now − after).
    pub bed_days_per_day: f64,
    /// Delayed-discharge bed days a day now.
    pub delayed_bed_days_per_day: f64,
    /// Bed days to remove ÷ delayed bed days (≤ 1: ending that share of delays suffices).
    pub share_of_delays: f64,
    /// The alternative provision (None when the area file is not known).
    pub community: Option<CommunityCheck>,
}

/// The bed report.
#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct BedsReport {
    /// Year.
    pub year: FinancialYear,
    /// Lake scale.
    pub scale: f64,
    /// How figures were scaled.
    pub scale_note: String,
    /// Target occupancy.
    pub target_occupancy: f64,
    /// Per site.
    pub sites: Vec<SiteBeds>,
    /// Per trust, sites pooled.
    pub trusts: Vec<SiteBeds>,
    /// The reductions.
    pub reductions: Vec<ReductionNeed>,
}

struct Group {
    los: Vec<f64>,
    excess: f64,
}

fn site_beds(
    provider: &str,
    site: &str,
    name: String,
    g: &Group,
    year: &FinancialYear,
    scale: f64,
    opts: &BedOptions,
) -> Result<(SiteBeds, BedDemand), CostingError> {
    let n = g.los.len() as f64;
    let lambda = n / year.days() / scale;
    let demand = BedDemand::from_samples(lambda, &g.los)?;
    let load = demand.offered_load();
    // The planning convention (offered load ÷ beds ≤ target) — which also bounds the
    // Erlang occupancy a(1 − B)/c; the Erlang criterion alone would accept a small ward
    // that meets the target only by turning admissions away.
    let beds = beds_for_occupancy(load, opts.occupancy)?
        .max((load / opts.occupancy).ceil() as u32)
        .max(1);
    let sim = simulate(
        &demand,
        beds,
        BedSimOptions {
            days: opts.sim_days,
            warmup_days: 200.0,
            batches: 20,
            seed: opts.seed,
        },
    )?;
    let agree = (sim.blocking - sim.erlang_b).abs() <= 4.0 * sim.std_error + 0.002;
    let total_days: f64 = g.los.iter().sum();
    Ok((
        SiteBeds {
            provider: provider.to_string(),
            site: site.to_string(),
            name,
            lake_spells: g.los.len() as u64,
            admissions_per_day: lambda,
            mean_los: demand.mean_los(),
            offered_load: load,
            beds,
            occupancy: occupancy(beds, load),
            erlang_b: erlang_b(beds, load),
            simulation: sim,
            agree,
            delayed_bed_days_per_day: g.excess / year.days() / scale,
            delayed_share: if total_days > 0.0 {
                g.excess / total_days
            } else {
                0.0
            },
        },
        demand,
    ))
}

/// Community contacts a year (lake scale) of some providers.
async fn community_contacts(
    view: &LakeView,
    providers: &[String],
    year: &FinancialYear,
) -> Result<f64, CostingError> {
    let sql = format!(
        "SELECT COUNT(*) FROM activity WHERE setting = 'community' AND {} AND {}",
        crate::in_list("provider_code", providers),
        year.ts_sql("start_ts")
    );
    let mut n = 0.0;
    for b in view.query(&sql).await? {
        n += ints(&b, 0)?.iter().sum::<i64>() as f64;
    }
    Ok(n)
}

/// The bed model on one year of the lake. `area` (the lake's area file, if known) gives
/// each trust's delivery units and their community provider for the provision check.
pub async fn beds(
    view: &LakeView,
    year: &FinancialYear,
    area: Option<&Area>,
    opts: &BedOptions,
) -> Result<BedsReport, CostingError> {
    if !(opts.occupancy > 0.0 && opts.occupancy < 1.0) {
        return Err(CostingError::Invalid(format!(
            "--occupancy {}: a target occupancy is a fraction between 0 and 1 (0.92 = 92%)",
            opts.occupancy
        )));
    }
    let filter = match &opts.site {
        Some(s) => format!(
            " AND (provider_code = {} OR site_code = {})",
            lit(s),
            lit(s)
        ),
        None => String::new(),
    };
    let sql = format!(
        "SELECT provider_code, COALESCE(site_code, '') AS site, CAST(los_days AS DOUBLE) AS los, \
           CAST(GREATEST(0, LEAST(los_days, COALESCE(CAST(CAST(end_ts AS DATE) AS INT) - CAST(medically_fit_date AS INT), 0))) AS DOUBLE) AS excess \
         FROM activity WHERE setting = 'apc' AND COALESCE(patient_class, '') <> 'day_case' \
           AND los_days IS NOT NULL AND {}{filter}",
        year.ts_sql("start_ts")
    );
    let mut sites: BTreeMap<(String, String), Group> = BTreeMap::new();
    for b in view.query(&sql).await? {
        let p = strings(&b, 0)?;
        let s = strings(&b, 1)?;
        let los = floats(&b, 2)?;
        let ex = floats(&b, 3)?;
        for i in 0..b.num_rows() {
            let g = sites
                .entry((
                    p[i].clone().unwrap_or_default(),
                    s[i].clone().unwrap_or_default(),
                ))
                .or_insert(Group {
                    los: Vec::new(),
                    excess: 0.0,
                });
            g.los.push(los[i]);
            g.excess += ex[i];
        }
    }
    if sites.is_empty() {
        return Err(CostingError::Invalid(format!(
            "no admitted patient care spells in {}{}",
            year.label,
            opts.site
                .as_ref()
                .map(|s| format!(" at {s:?}"))
                .unwrap_or_default()
        )));
    }
    let mut site_rows = Vec::new();
    let mut pooled: BTreeMap<String, Group> = BTreeMap::new();
    for ((p, s), g) in &sites {
        let label = if s.is_empty() { "(not recorded)" } else { s };
        let name = if s.is_empty() {
            format!("{}, site not recorded", view.places.name(p))
        } else {
            view.places.name(s).to_string()
        };
        site_rows.push(site_beds(p, label, name, g, year, view.scale, opts)?.0);
        let t = pooled.entry(p.clone()).or_insert(Group {
            los: Vec::new(),
            excess: 0.0,
        });
        t.los.extend_from_slice(&g.los);
        t.excess += g.excess;
    }
    let mut trusts = Vec::new();
    let mut demands = BTreeMap::new();
    for (p, g) in &pooled {
        let (row, d) = site_beds(
            p,
            "(all sites)",
            view.places.name(p).to_string(),
            g,
            year,
            view.scale,
            opts,
        )?;
        demands.insert(p.clone(), (d, row.beds, row.delayed_bed_days_per_day));
        trusts.push(row);
    }
    let mut reductions = Vec::new();
    for (p, n) in &opts.reductions {
        let Some((d, beds_now, delayed)) = demands.get(p) else {
            if opts.site.is_some() {
                continue;
            }
            return Err(CostingError::Invalid(format!(
                "--reduce {p}={n}: no admitted patient care at provider {p:?} in {}",
                year.label
            )));
        };
        let r = bed_reduction(d, *beds_now, *n)?;
        let bed_days = r.load_now - r.load_after;
        let community = match area {
            Some(a) => community_check(view, a, p, bed_days, opts).await?,
            None => None,
        };
        reductions.push(ReductionNeed {
            provider: p.clone(),
            name: view.places.name(p).to_string(),
            admissions_cut: r.admissions_reduction / r.admissions_now,
            los_cut: r.los_reduction_days / r.mean_los_now,
            bed_days_per_day: bed_days,
            delayed_bed_days_per_day: *delayed,
            share_of_delays: if *delayed > 0.0 {
                bed_days / delayed
            } else {
                f64::INFINITY
            },
            reduction: r,
            community,
        });
    }
    Ok(BedsReport {
        year: year.clone(),
        scale: view.scale,
        scale_note: view.scale_note(),
        target_occupancy: opts.occupancy,
        sites: site_rows,
        trusts,
        reductions,
    })
}

async fn community_check(
    view: &LakeView,
    area: &Area,
    provider: &str,
    bed_days_per_day: f64,
    opts: &BedOptions,
) -> Result<Option<CommunityCheck>, CostingError> {
    let mut providers: Vec<String> = area
        .delivery_units
        .iter()
        .filter(|d| d.acute_provider == provider)
        .map(|d| d.community_provider.clone())
        .collect();
    providers.sort();
    providers.dedup();
    let (Some(first), Some(last)) = (view.years.first(), view.years.last()) else {
        return Ok(None);
    };
    if providers.is_empty() || first == last {
        return Ok(None);
    }
    let a = community_contacts(view, &providers, first).await? / view.scale;
    let b = community_contacts(view, &providers, last).await? / view.scale;
    let needed = bed_days_per_day * 365.0 * opts.contacts_per_bed_day;
    Ok(Some(CommunityCheck {
        community_providers: providers,
        years: (first.label.clone(), last.label.clone()),
        contacts: (a, b),
        growth: b - a,
        needed,
        in_place: b - a >= needed,
    }))
}

fn prob(x: f64) -> String {
    if x == 0.0 {
        "0".into()
    } else if x < 1e-4 {
        format!("{x:.1e}")
    } else {
        format!("{:.3}%", 100.0 * x)
    }
}

impl BedsReport {
    /// Render as text, JSON or CSV (sites and trusts).
    pub fn render(&self, format: OutputFormat) -> String {
        let mut t = Table::new(&[
            "provider",
            "site",
            "name",
            "admissions/day",
            "mean LOS",
            "load (erlangs)",
            "beds needed",
            "occupancy",
            "P(no bed) Erlang B",
            "P(no bed) simulated",
            "± s.e.",
            "agree",
            "delayed bed days/day",
        ]);
        for s in self.sites.iter().chain(&self.trusts) {
            t.row(vec![
                s.provider.clone(),
                s.site.clone(),
                s.name.clone(),
                format!("{:.1}", s.admissions_per_day),
                format!("{:.2}", s.mean_los),
                format!("{:.1}", s.offered_load),
                s.beds.to_string(),
                pct(s.occupancy),
                prob(s.erlang_b),
                prob(s.simulation.blocking),
                prob(s.simulation.std_error),
                if s.agree { "yes" } else { "NO" }.into(),
                format!(
                    "{:.1} ({})",
                    s.delayed_bed_days_per_day,
                    pct(s.delayed_share)
                ),
            ]);
        }
        match format {
            OutputFormat::Json => serde_json::to_string_pretty(self).unwrap_or_default() + "\n",
            OutputFormat::Csv => t.csv(),
            OutputFormat::Table => {
                let mut out = format!(
                    "Bed capacity — admitted patient care (ordinary spells; day cases excluded), year {}\n{}\n\
                     Beds needed for a mean occupancy of at most {} (Erlang loss model, M/G/c/c); \
                     P(no bed) = probability an admission finds every bed full, checked by a discrete-event simulation of the observed stays.\n\n",
                    self.year.label,
                    self.scale_note,
                    pct(self.target_occupancy)
                );
                out.push_str(&t.text());
                for r in &self.reductions {
                    let x = &r.reduction;
                    out.push_str(&format!(
                        "\n{} ({}): {} → {} beds at the same P(no bed) ({}) needs ONE of\n\
                         \x20 • {:.1} fewer admissions a day ({} of {:.1}), at today's stays;\n\
                         \x20 • a mean stay of {:.2} days instead of {:.2} ({} shorter), at today's admissions;\n\
                         \x20 • {:.1} fewer occupied bed days a day: {} of today's {:.1} delayed-discharge bed days a day{}.\n",
                        r.name,
                        r.provider,
                        x.beds_now,
                        x.beds_after,
                        prob(x.blocking),
                        x.admissions_reduction,
                        pct(r.admissions_cut),
                        x.admissions_now,
                        x.mean_los_after,
                        x.mean_los_now,
                        pct(r.los_cut),
                        r.bed_days_per_day,
                        if r.share_of_delays.is_finite() { pct(r.share_of_delays) } else { "∞".into() },
                        r.delayed_bed_days_per_day,
                        if r.share_of_delays > 1.0 {
                            " — more than all delayed discharges, so delays alone cannot do it"
                        } else {
                            ""
                        }
                    ));
                    match &r.community {
                        Some(c) => out.push_str(&format!(
                            "  Alternative provision ({}): community contacts {} → {} a year ({} to {}), growth {:+.0}; replacing {:.0} bed days a year needs {:.0} more contacts a year — {}.\n",
                            c.community_providers.join(", "),
                            n0(c.contacts.0),
                            n0(c.contacts.1),
                            c.years.0,
                            c.years.1,
                            c.growth,
                            r.bed_days_per_day * 365.0,
                            c.needed,
                            if c.in_place { "IN PLACE" } else { "NOT in place" }
                        )),
                        None => out.push_str("  Alternative provision: not assessed (the lake's area file, or more than one complete year, is needed).\n"),
                    }
                }
                out
            }
        }
    }
}
