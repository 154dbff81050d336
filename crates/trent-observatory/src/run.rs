//! A whole Observatory run: load the definitions, compute each indicator (a bad one is
//! reported and the others go on), apply SPC, import the area-level files, derive SIIs,
//! and write `indicator_value` beside the lake.

use std::collections::HashMap;
use std::path::{Path, PathBuf};
use std::time::Instant;

use arrow::array::AsArray;
use trent_lake::Lake;

use crate::compute::{Exact, IndicatorValue, Inputs};
use crate::definition::{self, Grain, Indicator, Method, Population};
use crate::engine::{self, Ctx, PersonRow};
use crate::error::{DefError, ObsError};
use crate::rollup::{Agg, Key, LEVELS, Places, Rollup, STORED_BREAKDOWNS};
use crate::{period, reference};

/// What to run.
#[derive(Debug, Clone, Default)]
pub struct RunOptions {
    /// only these indicator ids (empty: all)
    pub only: Vec<String>,
    /// a definitions folder instead of the bundled catalogue
    pub dir: Option<PathBuf>,
    /// compute with the row-by-row reference instead of the fast path (small lakes)
    pub reference: bool,
}

/// The result of a run.
#[derive(Debug, Default)]
pub struct RunReport {
    /// every value
    pub values: Vec<IndicatorValue>,
    /// exact figures beside each value (same order), for tests and funnels
    pub exact: Vec<Exact>,
    /// definitions that could not be read
    pub def_errors: Vec<DefError>,
    /// indicators that failed while running: (id, message)
    pub failed: Vec<(String, String)>,
    /// seconds per indicator
    pub timings: Vec<(String, f64)>,
    /// the indicators run
    pub indicators: Vec<Indicator>,
    /// funnel-plot points of every indicator
    pub funnels: Vec<crate::funnel::FunnelPoint>,
    /// the referral dashboard (full runs only)
    pub referrals: Vec<crate::referrals::ReferralRow>,
}

/// Read the organisation table into places.
pub async fn places(ctx: &datafusion::prelude::SessionContext) -> Result<Places, ObsError> {
    let batches = ctx
        .sql("SELECT org_code, name, org_type, parent_code FROM organisation")
        .await?
        .collect()
        .await?;
    let mut rows = vec![];
    for b in &batches {
        let (c, n, t, p) = (
            b.column(0).as_string::<i32>(),
            b.column(1).as_string::<i32>(),
            b.column(2).as_string::<i32>(),
            b.column(3).as_string::<i32>(),
        );
        for i in 0..b.num_rows() {
            use arrow::array::Array;
            rows.push((
                c.value(i).to_string(),
                n.value(i).to_string(),
                t.value(i).to_string(),
                (!p.is_null(i)).then(|| p.value(i).to_string()),
            ));
        }
    }
    let mut places = Places::from_orgs(&rows);
    for d in 1..=10 {
        let i = places.intern(&format!("IMD{d}"));
        places.names[i as usize] = format!(
            "IMD decile {d}{}",
            match d {
                1 => " (most deprived)",
                10 => " (least deprived)",
                _ => "",
            }
        );
    }
    Ok(places)
}

/// An empty roll-up with an indicator's levels, breakdowns and windows.
pub fn new_rollup(ind: &Indicator) -> Rollup {
    let levels: Vec<u8> = ind
        .def
        .breakdown_levels
        .clone()
        .unwrap_or_else(|| vec!["stp".into(), "local_authority".into(), "ccg".into()])
        .iter()
        .filter_map(|l| LEVELS.iter().position(|x| x == l).map(|i| i as u8))
        .collect();
    let bds: Vec<u8> = ind
        .def
        .breakdowns
        .iter()
        .filter_map(|b| {
            STORED_BREAKDOWNS
                .iter()
                .position(|x| x == b)
                .map(|i| i as u8)
        })
        .collect();
    Rollup::new(
        ind.residence,
        ind.provider,
        levels,
        bds,
        ind.def.grain == Grain::Rolling12m,
    )
}

/// The HLE health question as an indicator of its own (units: responses; numerator: not good).
pub(crate) fn health_indicator(ind: &Indicator) -> Option<Indicator> {
    let (table, when, filter, bad) = ind.health.clone()?;
    let mut h = ind.clone();
    h.table = table;
    h.when = Some(when);
    h.active = None;
    h.filter = Some(filter);
    h.per = definition::Per::Row;
    h.require = vec![];
    h.num_filter = Some(bad);
    h.num_value = None;
    h.num_require = vec![];
    h.den_filter = None;
    h.den_value = None;
    h.population = None;
    h.provider = false;
    Some(h)
}

/// A population denominator's grain, ages and sex.
type PopKey = (Grain, [i32; 2], Option<String>);

struct State<'a> {
    c: Ctx,
    places: Places,
    people: Vec<PersonRow>,
    pops: HashMap<PopKey, HashMap<Key, Agg>>,
    tables: Option<reference::Tables>,
    lake: &'a Lake,
}

impl State<'_> {
    async fn units(
        &mut self,
        ind: &Indicator,
        reference: bool,
    ) -> Result<HashMap<Key, Agg>, ObsError> {
        let mut r = new_rollup(ind);
        if reference {
            let t = self.tables.as_ref().expect("read");
            reference::units(t, ind, self.c.start, self.c.end, &mut self.places, &mut r);
        } else {
            engine::units(&self.c, ind, &mut self.places, &mut r).await?;
        }
        let out = r.finish();
        if std::env::var_os("TRENT_TRACE").is_some() {
            eprintln!("  {}: rolled up to {} keys", ind.def.id, out.len());
        }
        Ok(out)
    }

    fn population(
        &mut self,
        grain: Grain,
        pop: &Population,
        reference: bool,
    ) -> &HashMap<Key, Agg> {
        let key = (grain, pop.ages, pop.sex.clone());
        if !self.pops.contains_key(&key) {
            let m = if reference {
                reference::population(
                    &self.people,
                    &mut self.places,
                    grain,
                    pop,
                    self.c.start,
                    self.c.end,
                )
                .finish()
            } else {
                engine::population(
                    &self.people,
                    &self.places,
                    grain,
                    pop,
                    self.c.start,
                    self.c.end,
                )
            };
            self.pops.insert(key.clone(), m);
        }
        &self.pops[&key]
    }
}

/// Run the Observatory over a lake.
pub async fn run(lake: &Lake, opts: &RunOptions) -> Result<RunReport, ObsError> {
    let (mut inds, def_errors) = definition::load(opts.dir.as_deref());
    if !opts.only.is_empty() {
        for id in &opts.only {
            if !inds.iter().any(|i| &i.def.id == id)
                && !def_errors.iter().any(|e| e.file.contains(id.as_str()))
            {
                return Err(ObsError::Indicator {
                    id: id.clone(),
                    message: "no such indicator in the catalogue".into(),
                });
            }
        }
        let needed: Vec<String> = inds
            .iter()
            .filter(|i| opts.only.contains(&i.def.id))
            .filter_map(|i| i.def.sii.as_ref().map(|s| s.of.clone()))
            .collect();
        inds.retain(|i| opts.only.contains(&i.def.id) || needed.contains(&i.def.id));
    }
    let ctx = lake.session().await?;
    let start = trent_model::time::parse(&lake.catalog.span_start).unwrap_or(0);
    let end = trent_model::time::parse(&lake.catalog.span_end)
        .map(|d| d + 1)
        .unwrap_or(0);
    let mut places = places(&ctx).await?;
    let people = engine::people(&ctx, &mut places).await?;
    let tables = if opts.reference {
        let mut names: Vec<&str> = vec![];
        for i in &inds {
            if i.def.units.is_some() {
                names.push(i.table.as_str());
            }
            for r in i.require.iter().chain(&i.num_require) {
                names.push(r.table.as_str());
            }
            if let Some(h) = &i.health {
                names.push(h.0.as_str());
            }
        }
        Some(reference::Tables::read(&ctx, &names).await?)
    } else {
        None
    };
    let mut st = State {
        c: Ctx {
            dims: engine::register_dims(&ctx).await?,
            ctx,
            start,
            end,
        },
        places,
        people,
        pops: HashMap::new(),
        tables,
        lake,
    };
    let mut report = RunReport {
        def_errors,
        ..RunReport::default()
    };
    // SIIs and imports after the indicators they read
    inds.sort_by_key(|i| matches!(i.def.method, Method::Sii));
    report.indicators = inds.clone();
    for ind in &inds {
        let t0 = Instant::now();
        let res = compute_one(&mut st, ind, opts, &report).await;
        match res {
            Ok(rows) => {
                let t1 = Instant::now();
                let mut rows = rows;
                crate::compute::apply_relative(ind, &mut rows);
                let rows = crate::spc::apply(ind, rows);
                report.funnels.extend(crate::funnel::points(ind, &rows));
                if std::env::var_os("TRENT_TRACE").is_some() {
                    eprintln!(
                        "  {}: rows {:.2} s, spc+funnels {:.2} s",
                        ind.def.id,
                        t0.elapsed().as_secs_f64(),
                        t1.elapsed().as_secs_f64()
                    );
                }
                for (v, e) in rows {
                    report.values.push(v);
                    report.exact.push(e);
                }
            }
            Err(e) => report.failed.push((ind.def.id.clone(), e.to_string())),
        }
        report
            .timings
            .push((ind.def.id.clone(), t0.elapsed().as_secs_f64()));
    }
    if opts.only.is_empty() && !opts.reference {
        report.referrals = crate::referrals::dashboard(&st.c, &st.people, &st.places).await?;
    }
    Ok(report)
}

async fn compute_one(
    st: &mut State<'_>,
    ind: &Indicator,
    opts: &RunOptions,
    so_far: &RunReport,
) -> Result<Vec<(IndicatorValue, Exact)>, ObsError> {
    let lake_batch = st
        .lake
        .generation
        .file_name()
        .and_then(|s| s.to_str())
        .unwrap_or("")
        .to_string();
    match ind.def.method {
        Method::Import => {
            let dir = opts.dir.clone();
            return crate::import::rows(ind, dir.as_deref(), &st.places, &lake_batch);
        }
        Method::Sii => {
            return crate::sii::rows(ind, so_far, &st.places, &lake_batch);
        }
        _ => {}
    }
    let grain = ind.def.grain;
    let g = if grain == Grain::Rolling12m {
        Grain::Month
    } else {
        grain
    };
    let periods: Vec<i64> = if grain == Grain::Rolling12m {
        period::within(Grain::Rolling12m, st.c.start, st.c.end)
    } else {
        period::within(g, st.c.start, st.c.end)
    };
    if periods.is_empty() {
        return Err(ObsError::Indicator {
            id: ind.def.id.clone(),
            message: format!(
                "the lake ({} to {}) holds no whole {grain:?} period",
                st.lake.catalog.span_start, st.lake.catalog.span_end
            ),
        });
    }
    let trace = std::env::var_os("TRENT_TRACE").is_some();
    let t0 = std::time::Instant::now();
    let units = st.units(ind, opts.reference).await?;
    if trace {
        eprintln!(
            "  {}: units {:.2} s",
            ind.def.id,
            t0.elapsed().as_secs_f64()
        );
    }
    let health = match health_indicator(ind) {
        Some(h) => Some(st.units(&h, opts.reference).await?),
        None => None,
    };
    let pop = ind
        .population
        .as_ref()
        .map(|p| st.population(grain, p, opts.reference).clone());
    if trace {
        eprintln!(
            "  {}: + health, population {:.2} s",
            ind.def.id,
            t0.elapsed().as_secs_f64()
        );
    }
    Ok(crate::compute::rows(&Inputs {
        ind,
        units: &units,
        pop: pop.as_ref(),
        health: health.as_ref(),
        places: &st.places,
        lake_batch: &lake_batch,
        periods: &periods,
    }))
}

/// Where derived tables of a lake generation live.
pub fn derived_dir(lake: &Lake) -> PathBuf {
    lake.generation.join("derived")
}

/// Unused-path guard for callers that pass a folder.
pub fn exists(p: &Path) -> bool {
    p.exists()
}
