//! The deterministic engine: from a validated [`Plan`] to the do-nothing gap, the bridge
//! and the remaining gap of every organisation, sector, body and the system, per year, and
//! the percentage view over the provider cost base.
//!
//! Why per organisation first: the gap falls unevenly (the plan says so, §"risks"), so
//! the engine computes every line for each organisation and obtains sectors, bodies and
//! the system by adding organisations up. Totals are therefore consistent by
//! construction, and a scheme or funding line that falls on an organisation shows up in
//! exactly one place in every aggregate.
//!
//! The arithmetic (also in `docs/finance.md`):
//! - cost: `cost[t] = cost[t-1] × (1 + demographic + non_demographic + inflation)` — the
//!   three drivers add within a year (so the growth can be split exactly by driver) and
//!   compound across years;
//! - income: a body's recurrent allocation `A[0]` is its organisations' baseline income
//!   less baseline non-recurrent income; `A[t] = A[t-1] × (1 + allocation_growth[t])`;
//!   each organisation receives `A[t] + non_recurrent[t]` in proportion to its baseline
//!   income;
//! - do-nothing gap = cost − income;
//! - efficiencies: `rate[t] × cost[t]` delivered in year t, recurrent (cumulative);
//! - schemes: `net × ramp[t]`, shared over the organisations it falls on;
//! - funding lines: the year's amount, shared likewise;
//! - remaining gap = do-nothing gap − efficiencies − schemes − funding lines.
//!
//! Nothing here allocates per Monte Carlo run: the simulation reuses the deterministic
//! answer and adds each scheme's deviation (see `montecarlo`).

use std::collections::BTreeMap;

use serde::Serialize;

use crate::plan::{BridgeRow, FundingKind, Plan, PlanFile, scheme_gross, scheme_net};

/// Measures accepted by [`Evaluation::figure`] and by `[[published]] measure`.
pub const MEASURES: &[&str] = &[
    "cost",
    "income",
    "do_nothing_gap",
    "cost_growth",
    "cost_growth_demographic",
    "cost_growth_non_demographic",
    "cost_growth_inflation",
    "allocation_growth",
    "non_recurrent_income",
    "efficiencies",
    "schemes",
    "stf",
    "pfi",
    "transition",
    "stretch",
    "other_funding",
    "remaining_gap",
    "provider_cost_base",
    "pct_challenge",
    "pct_efficiencies",
    "pct_new_care_model",
    "pct_stf",
    "pct_other",
    "pct_position",
    "scheme_gross",
    "scheme_reinvestment",
    "scheme_net",
    "scheme_saving",
];

/// The level of an entity in the hierarchy organisation → sector → body → system.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize)]
#[serde(rename_all = "snake_case")]
pub enum Level {
    /// The whole system.
    System,
    /// A funding body (NHS, local authorities).
    Body,
    /// A sector.
    Sector,
    /// An organisation.
    Organisation,
}

impl Level {
    /// The snake_case name.
    pub fn as_str(self) -> &'static str {
        match self {
            Level::System => "system",
            Level::Body => "body",
            Level::Sector => "sector",
            Level::Organisation => "organisation",
        }
    }
}

/// One entity's figures in one year (£m). Growth figures are cumulative from the baseline
/// year; efficiencies, schemes and funding are the amounts in that year.
#[derive(Debug, Clone, Default, PartialEq, Serialize)]
pub struct BridgeYear {
    /// The year.
    pub year: String,
    /// Do-nothing cost.
    pub cost: f64,
    /// Income (allocation share plus non-recurrent income).
    pub income: f64,
    /// Do-nothing gap: cost − income (positive = shortfall).
    pub do_nothing_gap: f64,
    /// Cost growth since the baseline year.
    pub cost_growth: f64,
    /// … of which demographic.
    pub cost_growth_demographic: f64,
    /// … of which non-demographic.
    pub cost_growth_non_demographic: f64,
    /// … of which inflation.
    pub cost_growth_inflation: f64,
    /// Recurrent allocation growth since the baseline year.
    pub allocation_growth: f64,
    /// Non-recurrent income in the year.
    pub non_recurrent_income: f64,
    /// Organisational efficiencies delivered by this year (recurrent, cumulative).
    pub efficiencies: f64,
    /// Net scheme savings in the year.
    pub schemes: f64,
    /// Sustainability and transformation funding.
    pub stf: f64,
    /// PFI support.
    pub pfi: f64,
    /// Transition funding.
    pub transition: f64,
    /// Stretch savings.
    pub stretch: f64,
    /// Other funding lines.
    pub other_funding: f64,
    /// Remaining gap after the bridge (negative = surplus).
    pub remaining_gap: f64,
}

impl BridgeYear {
    fn add(&mut self, o: &BridgeYear) {
        self.cost += o.cost;
        self.income += o.income;
        self.do_nothing_gap += o.do_nothing_gap;
        self.cost_growth += o.cost_growth;
        self.cost_growth_demographic += o.cost_growth_demographic;
        self.cost_growth_non_demographic += o.cost_growth_non_demographic;
        self.cost_growth_inflation += o.cost_growth_inflation;
        self.allocation_growth += o.allocation_growth;
        self.non_recurrent_income += o.non_recurrent_income;
        self.efficiencies += o.efficiencies;
        self.schemes += o.schemes;
        self.stf += o.stf;
        self.pfi += o.pfi;
        self.transition += o.transition;
        self.stretch += o.stretch;
        self.other_funding += o.other_funding;
        self.remaining_gap += o.remaining_gap;
    }

    fn funding_mut(&mut self, k: FundingKind) -> &mut f64 {
        match k {
            FundingKind::Stf => &mut self.stf,
            FundingKind::Pfi => &mut self.pfi,
            FundingKind::Transition => &mut self.transition,
            FundingKind::Stretch => &mut self.stretch,
            FundingKind::Other => &mut self.other_funding,
        }
    }

    /// Total of the funding lines (STF, PFI, transition, stretch, other).
    pub fn funding_total(&self) -> f64 {
        self.stf + self.pfi + self.transition + self.stretch + self.other_funding
    }

    /// A measure by name (see [`MEASURES`]); `None` for measures not held per entity.
    pub fn get(&self, measure: &str) -> Option<f64> {
        Some(match measure {
            "cost" => self.cost,
            "income" => self.income,
            "do_nothing_gap" => self.do_nothing_gap,
            "cost_growth" => self.cost_growth,
            "cost_growth_demographic" => self.cost_growth_demographic,
            "cost_growth_non_demographic" => self.cost_growth_non_demographic,
            "cost_growth_inflation" => self.cost_growth_inflation,
            "allocation_growth" => self.allocation_growth,
            "non_recurrent_income" => self.non_recurrent_income,
            "efficiencies" => self.efficiencies,
            "schemes" => self.schemes,
            "stf" => self.stf,
            "pfi" => self.pfi,
            "transition" => self.transition,
            "stretch" => self.stretch,
            "other_funding" => self.other_funding,
            "remaining_gap" => self.remaining_gap,
            _ => return None,
        })
    }
}

/// An entity and its figures for every year.
#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct EntityBridge {
    /// Its level.
    pub level: Level,
    /// Its id (`system`, a body key, a sector or organisation id).
    pub id: String,
    /// Display name.
    pub name: String,
    /// The funding body it belongs to (empty for the system).
    pub body: String,
    /// One entry per plan year.
    pub years: Vec<BridgeYear>,
}

/// A scheme as evaluated.
#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct SchemeLine {
    /// Id.
    pub id: String,
    /// Name.
    pub name: String,
    /// Gross full-year saving (None when the plan gives only a net).
    pub gross: Option<f64>,
    /// Reinvestment (None when the plan gives only a net).
    pub reinvestment: Option<f64>,
    /// Net full-year saving.
    pub net: f64,
    /// Range of the net saving (low, high); the net itself when none is given.
    pub low: f64,
    /// High end of the range.
    pub high: f64,
    /// Percentage-view row.
    pub row: BridgeRow,
    /// Organisations and shares.
    pub falls_on: BTreeMap<String, f64>,
    /// Saving in each plan year (0 in the baseline year).
    pub savings: Vec<f64>,
}

/// One forecast year of the percentage view: each line of the body's in-year bridge
/// divided by the provider cost base of the year.
#[derive(Debug, Clone, Default, PartialEq, Serialize)]
pub struct PercentYear {
    /// The year.
    pub year: String,
    /// Do-nothing cost of the body's organisations in provider sectors (£m).
    pub provider_cost_base: f64,
    /// Saving required in the year to meet the control total, negative (fraction).
    pub challenge: f64,
    /// New organisational efficiencies in the year (and schemes reported as efficiencies).
    pub efficiencies: f64,
    /// New net savings from the new care model in the year.
    pub new_care_model: f64,
    /// Change in STF.
    pub stf: f64,
    /// Change in the other funding lines (PFI, transition, stretch, other).
    pub other: f64,
    /// Sum of the above: the in-year position against the control total.
    pub position: f64,
}

impl PercentYear {
    /// A `pct_*` measure by name.
    pub fn get(&self, measure: &str) -> Option<f64> {
        Some(match measure {
            "provider_cost_base" => self.provider_cost_base,
            "pct_challenge" => self.challenge,
            "pct_efficiencies" => self.efficiencies,
            "pct_new_care_model" => self.new_care_model,
            "pct_stf" => self.stf,
            "pct_other" => self.other,
            "pct_position" => self.position,
            _ => return None,
        })
    }
}

/// The percentage view of one body (only bodies with a provider cost base).
#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct PercentageView {
    /// Body id.
    pub body: String,
    /// One entry per forecast year.
    pub years: Vec<PercentYear>,
}

/// A published figure beside the engine's value.
#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct Reconciliation {
    /// Measure.
    pub measure: String,
    /// Entity.
    pub entity: String,
    /// Year.
    pub year: String,
    /// As published.
    pub published: f64,
    /// As modelled (NaN if the engine has no such figure).
    pub modelled: f64,
    /// Accepted difference.
    pub tolerance: f64,
    /// Whether |modelled − published| ≤ tolerance.
    pub agrees: bool,
    /// Where the plan states it.
    pub source: String,
    /// Remark (known inconsistencies).
    pub note: String,
}

/// The deterministic result of one plan.
#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct Evaluation {
    /// Plan name.
    pub plan: String,
    /// Money unit.
    pub unit: String,
    /// Plan years.
    pub years: Vec<String>,
    /// System, bodies, sectors, organisations — in that order.
    pub entities: Vec<EntityBridge>,
    /// Schemes.
    pub schemes: Vec<SchemeLine>,
    /// Percentage views.
    pub percentages: Vec<PercentageView>,
    /// Published figures reconciled.
    pub reconciliation: Vec<Reconciliation>,
}

impl Evaluation {
    /// The entity with this id.
    pub fn entity(&self, id: &str) -> Option<&EntityBridge> {
        self.entities.iter().find(|e| e.id == id)
    }

    /// Index of a year.
    pub fn year_index(&self, year: &str) -> Option<usize> {
        self.years.iter().position(|y| y == year)
    }

    /// A figure: `measure` (see [`MEASURES`]) for `entity` (system, body, sector,
    /// organisation; a scheme id for `scheme_*`; a body for `pct_*` and
    /// `provider_cost_base`) in `year`.
    pub fn figure(&self, measure: &str, entity: &str, year: &str) -> Option<f64> {
        let t = self.year_index(year)?;
        if let Some(m) = measure.strip_prefix("scheme_") {
            let s = self.schemes.iter().find(|s| s.id == entity)?;
            return match m {
                "gross" => s.gross,
                "reinvestment" => s.reinvestment,
                "net" => Some(s.net),
                "saving" => Some(s.savings[t]),
                _ => None,
            };
        }
        if measure.starts_with("pct_") || measure == "provider_cost_base" {
            let v = self.percentages.iter().find(|v| v.body == entity)?;
            return v.years.iter().find(|y| y.year == year)?.get(measure);
        }
        self.entity(entity)?.years[t].get(measure)
    }
}

/// Index of the plan's structure, shared by the engine and the Monte Carlo.
pub(crate) struct Layout {
    pub n_years: usize,
    pub org_sector: Vec<usize>,
    pub sector_body: Vec<usize>,
    pub body_ids: Vec<String>,
    pub org_index: BTreeMap<String, usize>,
}

impl Layout {
    pub fn new(p: &PlanFile) -> Layout {
        // Bodies in the order their first sector appears (the plan author's order), then
        // any body without sectors.
        let mut body_ids: Vec<String> = Vec::with_capacity(p.bodies.len());
        for id in p.sectors.iter().map(|s| &s.body).chain(p.bodies.keys()) {
            if !body_ids.contains(id) {
                body_ids.push(id.clone());
            }
        }
        let sector_body = p
            .sectors
            .iter()
            .map(|s| {
                body_ids
                    .iter()
                    .position(|b| *b == s.body)
                    .expect("validated")
            })
            .collect();
        let org_sector = p
            .organisations
            .iter()
            .map(|o| {
                p.sectors
                    .iter()
                    .position(|s| s.id == o.sector)
                    .expect("validated")
            })
            .collect();
        let org_index = p
            .organisations
            .iter()
            .enumerate()
            .map(|(i, o)| (o.id.clone(), i))
            .collect();
        Layout {
            n_years: p.plan.years.len(),
            org_sector,
            sector_body,
            body_ids,
            org_index,
        }
    }

    pub fn org_body(&self, o: usize) -> usize {
        self.sector_body[self.org_sector[o]]
    }
}

/// Evaluate a validated plan.
pub fn evaluate(plan: &Plan) -> Evaluation {
    let p = plan.file();
    let lay = Layout::new(p);
    let ny = lay.n_years;
    let years = &p.plan.years;

    // Body allocations by year.
    let mut body_income0 = vec![0.0; lay.body_ids.len()];
    for (o, org) in p.organisations.iter().enumerate() {
        body_income0[lay.org_body(o)] += org.baseline_income;
    }
    let mut alloc = vec![vec![0.0; ny]; lay.body_ids.len()];
    let mut nonrec = vec![vec![0.0; ny]; lay.body_ids.len()];
    for (b, id) in lay.body_ids.iter().enumerate() {
        let body = &p.bodies[id];
        if let Some(nr) = &body.non_recurrent_income {
            nonrec[b].clone_from(nr);
        }
        alloc[b][0] = body_income0[b] - nonrec[b][0];
        for t in 1..ny {
            alloc[b][t] = alloc[b][t - 1] * (1.0 + body.allocation_growth[t - 1]);
        }
    }

    // Organisation lines.
    let mut org_rows: Vec<Vec<BridgeYear>> = Vec::with_capacity(p.organisations.len());
    for (o, org) in p.organisations.iter().enumerate() {
        let sector = &p.sectors[lay.org_sector[o]];
        let b = lay.org_body(o);
        let w = if body_income0[b] > 0.0 {
            org.baseline_income / body_income0[b]
        } else {
            0.0
        };
        let mut rows = Vec::with_capacity(ny);
        let mut cost = org.baseline_cost;
        let (mut gd, mut gn, mut gi, mut eff) = (0.0, 0.0, 0.0, 0.0);
        for t in 0..ny {
            if t > 0 {
                let prev = cost;
                gd += prev * sector.demographic[t - 1];
                gn += prev * sector.non_demographic[t - 1];
                gi += prev * sector.inflation[t - 1];
                cost = prev
                    * (1.0
                        + sector.demographic[t - 1]
                        + sector.non_demographic[t - 1]
                        + sector.inflation[t - 1]);
                if let Some(rate) = &org.efficiency {
                    eff += rate[t - 1] * cost;
                }
            }
            let income = w * (alloc[b][t] + nonrec[b][t]);
            rows.push(BridgeYear {
                year: years[t].clone(),
                cost,
                income,
                do_nothing_gap: cost - income,
                cost_growth: cost - org.baseline_cost,
                cost_growth_demographic: gd,
                cost_growth_non_demographic: gn,
                cost_growth_inflation: gi,
                allocation_growth: w * (alloc[b][t] - alloc[b][0]),
                non_recurrent_income: w * nonrec[b][t],
                efficiencies: eff,
                ..BridgeYear::default()
            });
        }
        org_rows.push(rows);
    }

    // Schemes and funding lines fall on organisations.
    let mut schemes = Vec::with_capacity(p.schemes.len());
    for s in &p.schemes {
        let net = scheme_net(s);
        // Nothing in the baseline year; the ramp's share of the full-year net after.
        let savings: Vec<f64> = std::iter::once(0.0)
            .chain(s.ramp.iter().map(|r| net * r))
            .collect();
        for (org, share) in &s.falls_on {
            let o = lay.org_index[org];
            for (row, saving) in org_rows[o].iter_mut().zip(&savings).skip(1) {
                row.schemes += share * saving;
            }
        }
        let gross = scheme_gross(s);
        schemes.push(SchemeLine {
            id: s.id.clone(),
            name: s.name.clone(),
            gross,
            reinvestment: if s.net.is_some() {
                None
            } else {
                Some(s.reinvestment.unwrap_or(0.0))
            },
            net,
            low: s.low.unwrap_or(net),
            high: s.high.unwrap_or(net),
            row: s.row,
            falls_on: s.falls_on.clone(),
            savings,
        });
    }
    for f in &p.funding {
        for (org, share) in &f.falls_on {
            let o = lay.org_index[org];
            for (row, amount) in org_rows[o].iter_mut().skip(1).zip(&f.amounts) {
                *row.funding_mut(f.kind) += share * amount;
            }
        }
    }
    for rows in &mut org_rows {
        for r in rows.iter_mut() {
            r.remaining_gap = r.do_nothing_gap - r.efficiencies - r.schemes - r.funding_total();
        }
    }

    // Aggregate: system, bodies, sectors, organisations.
    let blank = |t: usize| BridgeYear {
        year: years[t].clone(),
        ..BridgeYear::default()
    };
    let mut system: Vec<BridgeYear> = (0..ny).map(blank).collect();
    let mut bodies: Vec<Vec<BridgeYear>> = vec![(0..ny).map(blank).collect(); lay.body_ids.len()];
    let mut sectors: Vec<Vec<BridgeYear>> = vec![(0..ny).map(blank).collect(); p.sectors.len()];
    for (o, rows) in org_rows.iter().enumerate() {
        let s = lay.org_sector[o];
        let b = lay.sector_body[s];
        for t in 0..ny {
            system[t].add(&rows[t]);
            bodies[b][t].add(&rows[t]);
            sectors[s][t].add(&rows[t]);
        }
    }

    // Percentage view per body over its provider cost base.
    let mut percentages = Vec::new();
    for (b, id) in lay.body_ids.iter().enumerate() {
        let mut base = vec![0.0; ny];
        for (o, rows) in org_rows.iter().enumerate() {
            let s = lay.org_sector[o];
            if lay.sector_body[s] == b && p.sectors[s].provider {
                for t in 0..ny {
                    base[t] += rows[t].cost;
                }
            }
        }
        if base[1..].iter().any(|x| *x <= 0.0) {
            continue;
        }
        let ct = p.bodies[id]
            .control_total
            .clone()
            .unwrap_or_else(|| vec![0.0; ny - 1]);
        // Scheme savings of this body by percentage row.
        let mut eff_row_schemes = vec![0.0; ny];
        let mut ncm_row_schemes = vec![0.0; ny];
        for (s, line) in p.schemes.iter().zip(&schemes) {
            let share: f64 = s
                .falls_on
                .iter()
                .filter(|(org, _)| lay.org_body(lay.org_index[*org]) == b)
                .map(|(_, sh)| sh)
                .sum();
            let target = match s.row {
                BridgeRow::Efficiencies => &mut eff_row_schemes,
                BridgeRow::NewCareModel => &mut ncm_row_schemes,
            };
            for (x, saving) in target.iter_mut().zip(&line.savings) {
                *x += share * saving;
            }
        }
        let by = &bodies[b];
        let mut view = Vec::with_capacity(ny - 1);
        for t in 1..ny {
            let target_now = by[t].do_nothing_gap + ct[t - 1];
            let target_before = if t == 1 {
                0.0 // the first forecast year carries the pre-existing gap
            } else {
                by[t - 1].do_nothing_gap + ct[t - 2]
            };
            let d = |f: &dyn Fn(&BridgeYear) -> f64| f(&by[t]) - f(&by[t - 1]);
            let challenge = -(target_now - target_before);
            let efficiencies = d(&|r| r.efficiencies) + eff_row_schemes[t] - eff_row_schemes[t - 1];
            let new_care_model = ncm_row_schemes[t] - ncm_row_schemes[t - 1];
            let stf = d(&|r| r.stf);
            let other = d(&|r| r.pfi + r.transition + r.stretch + r.other_funding);
            let position = challenge + efficiencies + new_care_model + stf + other;
            let bt = base[t];
            view.push(PercentYear {
                year: years[t].clone(),
                provider_cost_base: bt,
                challenge: challenge / bt,
                efficiencies: efficiencies / bt,
                new_care_model: new_care_model / bt,
                stf: stf / bt,
                other: other / bt,
                position: position / bt,
            });
        }
        percentages.push(PercentageView {
            body: id.clone(),
            years: view,
        });
    }

    // Entities as a tree: system, then each body followed by its sectors, each sector
    // followed by its organisations.
    let mut entities = Vec::with_capacity(1 + bodies.len() + sectors.len() + org_rows.len());
    entities.push(EntityBridge {
        level: Level::System,
        id: "system".into(),
        name: "System".into(),
        body: String::new(),
        years: system,
    });
    let mut sectors: Vec<Option<Vec<BridgeYear>>> = sectors.into_iter().map(Some).collect();
    let mut org_rows: Vec<Option<Vec<BridgeYear>>> = org_rows.into_iter().map(Some).collect();
    for (b, rows) in bodies.into_iter().enumerate() {
        let id = &lay.body_ids[b];
        entities.push(EntityBridge {
            level: Level::Body,
            id: id.clone(),
            name: p.bodies[id].name.clone(),
            body: id.clone(),
            years: rows,
        });
        for s in (0..p.sectors.len()).filter(|s| lay.sector_body[*s] == b) {
            entities.push(EntityBridge {
                level: Level::Sector,
                id: p.sectors[s].id.clone(),
                name: p.sectors[s].name.clone(),
                body: id.clone(),
                years: sectors[s].take().expect("each sector once"),
            });
            for o in (0..p.organisations.len()).filter(|o| lay.org_sector[*o] == s) {
                entities.push(EntityBridge {
                    level: Level::Organisation,
                    id: p.organisations[o].id.clone(),
                    name: p.organisations[o].name.clone(),
                    body: id.clone(),
                    years: org_rows[o].take().expect("each organisation once"),
                });
            }
        }
    }

    let mut ev = Evaluation {
        plan: p.plan.name.clone(),
        unit: p.plan.unit.clone(),
        years: years.clone(),
        entities,
        schemes,
        percentages,
        reconciliation: Vec::new(),
    };
    ev.reconciliation = p
        .published
        .iter()
        .map(|pb| {
            let modelled = ev
                .figure(&pb.measure, &pb.entity, &pb.year)
                .unwrap_or(f64::NAN);
            let tolerance = pb.tolerance.unwrap_or(if pb.measure.starts_with("pct_") {
                0.0005
            } else {
                0.5
            });
            Reconciliation {
                measure: pb.measure.clone(),
                entity: pb.entity.clone(),
                year: pb.year.clone(),
                published: pb.value,
                modelled,
                tolerance,
                agrees: (modelled - pb.value).abs() <= tolerance + 1e-9,
                source: pb.source.clone(),
                note: pb.note.clone(),
            }
        })
        .collect();
    ev
}
