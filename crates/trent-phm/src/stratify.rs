//! The stratification run (`trent stratify`): features, indices, segments and the risk of
//! an emergency admission in the next 12 months for everyone registered on an index date,
//! written to the lake with the model and data that made them.
//!
//! Without a model file the run trains one on the lake itself, with a temporal split:
//!
//! - evaluation date E: the latest index date whose following year the lake covers
//!   (the scoring date D itself when it has its outcome, else a year before the day after
//!   the lake's last);
//! - training date T = E − 1 year, with one person in ten (by pseudonymous id) held out
//!   for early stopping;
//! - gradient-boosted trees and a logistic-regression baseline, both trained on T and
//!   evaluated on E — people and outcomes a year later than any the model saw.
//!
//! The trained model is a versioned artefact (`models/…json` in the lake generation) holding its features,
//! training window and evaluation. A model file (`--model`: an artefact, or a scorecard
//! TOML for a published model) is used as given and still evaluated on E when it can be.
//!
//! Outputs (derived tables of the lake generation): `phm_features` (every feature of every
//! person) and `risk_stratification` (segment, eFI band, risk, centile, risk band, rising
//! risk, the three features that pushed each higher-risk person's risk up most, the model).

use std::path::{Path, PathBuf};
use std::sync::Arc;
use std::time::Instant;

use arrow::array::{
    Array, ArrayRef, AsArray, BooleanArray, Float64Array, Int64Array, RecordBatch, StringArray,
};
use arrow::datatypes::{DataType, Field, Schema};
use trent_lake::Lake;
use trent_model::codes::ETHNIC_GROUPS;
use trent_model::time;
use trent_riskmodel::{
    Artefact, Evaluation, FeatureKind, FeatureMatrix, GbtParams, GroupColumn, LogisticParams,
    Model, Scorecard, TrainParams,
};

use crate::PhmError;
use crate::features::{self, Column, Features, IndexDate, Kind, Precision};
use crate::segment::{self, EFI_BANDS, Segment};

/// Table of every feature.
pub const FEATURES_TABLE: &str = "phm_features";
/// Table of risks, segments and reasons.
pub const RISK_TABLE: &str = "risk_stratification";

/// What to run.
#[derive(Debug, Clone, Default)]
pub struct StratifyOptions {
    /// index date (ISO); default: the day after the lake's last
    pub index_date: Option<String>,
    /// a model artefact (.json) or scorecard (.toml) to use instead of training
    pub model: Option<PathBuf>,
    /// boosting rounds (default 300, with early stopping)
    pub rounds: Option<usize>,
}

/// What the run did.
#[derive(Debug)]
pub struct StratifyReport {
    /// the scoring date
    pub index_date: String,
    /// people scored
    pub people: usize,
    /// the model artefact used (written when trained here)
    pub model_file: PathBuf,
    /// the model kind
    pub model_kind: String,
    /// training date and people, when trained here
    pub trained: Option<(String, usize)>,
    /// evaluation date, the model's evaluation, and the logistic baseline's when trained here
    pub evaluation: Option<(String, Evaluation, Option<Evaluation>)>,
    /// people per segment
    pub segments: Vec<(Segment, usize)>,
    /// people flagged rising risk
    pub rising: usize,
    /// risk at the 95th centile (the high-risk threshold)
    pub high_threshold: f64,
    /// codes the indices could not read
    pub malformed_codes: usize,
    /// seconds by stage
    pub timings: Vec<(&'static str, f64)>,
}

/// The age bands the evaluation is broken down by.
const AGE_BANDS: [&str; 6] = ["0-17", "18-44", "45-64", "65-74", "75-84", "85+"];

/// The [`AGE_BANDS`] band of an age (a missing age, NaN, in the first).
fn age_band(age: f64) -> usize {
    match age as i64 {
        ..18 => 0,
        18..45 => 1,
        45..65 => 2,
        65..75 => 3,
        75..85 => 4,
        _ => 5,
    }
}

/// For each of `people`, its value in `values` (keyed by `ids`), if it has one: a merge
/// of two ascending id lists (feature sets keep their ids ascending), else a lookup.
fn aligned(people: &[i64], ids: &[i64], values: &[f64]) -> Vec<Option<f64>> {
    let ascending = |v: &[i64]| v.windows(2).all(|w| w[0] < w[1]);
    if !(ascending(people) && ascending(ids)) {
        let m: std::collections::HashMap<i64, f64> =
            ids.iter().copied().zip(values.iter().copied()).collect();
        return people.iter().map(|p| m.get(p).copied()).collect();
    }
    let mut j = 0;
    people
        .iter()
        .map(|&p| {
            while j < ids.len() && ids[j] < p {
                j += 1;
            }
            (j < ids.len() && ids[j] == p).then(|| values[j])
        })
        .collect()
}

/// The model's matrix of a feature set, with the fairness groups: its f32 columns shared,
/// not copied ([`Column::f32s`]).
pub fn matrix(f: &Features) -> Result<FeatureMatrix, PhmError> {
    assemble_matrix(f, Some(fairness_groups(f)))
}

/// [`matrix`] without the fairness groups, for scoring only (nothing is evaluated on it).
pub fn scoring_matrix(f: &Features) -> Result<FeatureMatrix, PhmError> {
    assemble_matrix(f, None)
}

/// The groups the evaluation is broken down by.
fn fairness_groups(f: &Features) -> Vec<GroupColumn> {
    // (every value read here is a whole number or missing, the same in f32 and f64)
    let col = |n: &str| f.column(n).expect("feature set has its own columns").iter();
    // a missing decile (NaN) is "Q0", as it always was
    const QUINTILES: [&str; 6] = ["Q0", "Q1", "Q2", "Q3", "Q4", "Q5"];
    let segments = Segment::ALL.map(Segment::name);
    vec![
        group(
            "segment",
            &segments,
            segment::segments(f).into_iter().map(|s| s as usize),
        ),
        group(
            "imd_quintile",
            &QUINTILES,
            col("imd_decile").map(|d| (d.clamp(1.0, 10.0) as usize).div_ceil(2)),
        ),
        group(
            "sex",
            &["F", "M"],
            col("sex_male").map(|x| usize::from(x > 0.0)),
        ),
        group("age_band", &AGE_BANDS, col("age").map(age_band)),
        group(
            "ethnicity",
            ETHNIC_GROUPS,
            col("ethnic_group").map(|e| (e as usize).min(ETHNIC_GROUPS.len() - 1)),
        ),
    ]
}

/// A group column from each person's level (an index into `levels`): the levels in order
/// of first appearance, as [`GroupColumn::from_values`] gives them from the labels, with
/// no label made or compared a person.
fn group(name: &str, levels: &[&str], of: impl Iterator<Item = usize>) -> GroupColumn {
    let mut code = vec![u32::MAX; levels.len()];
    let mut seen: Vec<String> = vec![];
    let codes = of
        .map(|k| {
            if code[k] == u32::MAX {
                code[k] = seen.len() as u32;
                seen.push(levels[k].to_string());
            }
            code[k]
        })
        .collect();
    GroupColumn {
        name: name.to_string(),
        levels: seen,
        codes,
    }
}

fn assemble_matrix(
    f: &Features,
    groups: Option<Vec<GroupColumn>>,
) -> Result<FeatureMatrix, PhmError> {
    let err = |e: trent_riskmodel::Error| PhmError::Other(format!("feature matrix: {e}"));
    let labels = f.outcome.clone().unwrap_or_else(|| vec![0; f.len()]);
    let mut m = FeatureMatrix::new(f.person_id.clone(), labels).map_err(err)?;
    for ((name, kind), col) in f.names.iter().zip(&f.kinds).zip(&f.columns) {
        let k = match kind {
            Kind::Numeric => FeatureKind::Numeric,
            Kind::Binary => FeatureKind::Binary,
            Kind::Categorical => FeatureKind::Categorical,
        };
        m.add_shared_feature(name, k, col.f32s()).map_err(err)?;
    }
    for g in groups.into_iter().flatten() {
        m.add_group_column(g).map_err(err)?;
    }
    Ok(m)
}

fn rm(e: trent_riskmodel::Error) -> PhmError {
    PhmError::Other(e.to_string())
}

/// Load a model file: an artefact (.json) or a scorecard (.toml).
pub fn load_model(path: &Path, m: &FeatureMatrix) -> Result<(Model, Option<Artefact>), PhmError> {
    if path.extension().is_some_and(|e| e == "toml") {
        let s = Scorecard::load(path).map_err(rm)?;
        let model = Model::Scorecard(s);
        // a scorecard naming a feature the matrix lacks is refused here
        model
            .predict_log_odds(&m.select_rows(&[0]).map_err(rm)?)
            .map_err(rm)?;
        Ok((model, None))
    } else {
        let a = Artefact::load_for(path, m).map_err(rm)?;
        Ok((a.model.clone(), Some(a)))
    }
}

fn f64col(v: impl Iterator<Item = f64>) -> ArrayRef {
    Arc::new(
        v.map(|x| (!x.is_nan()).then_some(x))
            .collect::<Float64Array>(),
    )
}

/// The index dates (days) a run computes features for: the scoring date D, a year before it
/// (rising risk), the evaluation date E and — when training — the training date T.
pub fn feature_dates(
    lake: &Lake,
    index_date: Option<&str>,
    training: bool,
) -> Result<Vec<i32>, PhmError> {
    let (start, end) = (&lake.catalog.span_start, &lake.catalog.span_end);
    let end_day = time::parse(end).ok_or_else(|| PhmError::Other(format!("lake end {end}")))?;
    let date = index_date.map_or_else(|| time::iso(end_day + 1), str::to_string);
    let d = IndexDate::check(&date, start, end)?;
    let e = if d.has_outcome {
        d.day
    } else {
        time::add_years(end_day + 1, -1)
    };
    let mut out = vec![d.day];
    for x in [
        Some(time::add_years(d.day, -1)),
        Some(e),
        training.then(|| time::add_years(e, -1)),
    ]
    .into_iter()
    .flatten()
    {
        if IndexDate::check(&time::iso(x), start, end).is_ok() && !out.contains(&x) {
            out.push(x);
        }
    }
    Ok(out)
}

/// The features at `x`: the index date's, or one of the others computed beside them.
fn pick<'a>(
    now: &'a Features,
    others: &'a std::collections::HashMap<i32, Features>,
    x: IndexDate,
) -> Result<&'a Features, PhmError> {
    if x.day == now.index_day {
        return Ok(now);
    }
    others
        .get(&x.day)
        .ok_or_else(|| PhmError::Other(format!("no features computed for {}", time::iso(x.day))))
}

/// Run it.
pub async fn stratify(lake: &Lake, opts: &StratifyOptions) -> Result<StratifyReport, PhmError> {
    let mut timings = vec![];
    let t = Instant::now();
    let (start, end) = (&lake.catalog.span_start, &lake.catalog.span_end);
    let end_day = time::parse(end).ok_or_else(|| PhmError::Other(format!("lake end {end}")))?;
    let date = opts
        .index_date
        .clone()
        .unwrap_or_else(|| time::iso(end_day + 1));
    let d = IndexDate::check(&date, start, end)?;
    let ctx = lake.session().await?;
    // every date the run needs, in one pass over the lake
    let days = feature_dates(lake, Some(&date), opts.model.is_none())?;
    let ids = days
        .iter()
        .map(|&x| IndexDate::check(&time::iso(x), start, end))
        .collect::<Result<Vec<_>, _>>()?;
    // evaluation date: D if it has its outcome, else the latest that does
    let e_day = if d.has_outcome {
        d.day
    } else {
        time::add_years(end_day + 1, -1)
    };
    let eval_date = IndexDate::check(&time::iso(e_day), start, end).ok();
    // with a model, another evaluation date's features serve only its matrix: they are
    // computed in f32, as the matrix's own columns
    let precision: Vec<Precision> = days
        .iter()
        .map(|&x| {
            if opts.model.is_some() && x == e_day && x != d.day {
                Precision::Model
            } else {
                Precision::Full
            }
        })
        .collect();
    let mut computed: std::collections::HashMap<i32, Features> = Default::default();
    let mut for_model: Option<Features> = None;
    for ((x, p), f) in days
        .iter()
        .zip(&precision)
        .zip(features::compute_dates(&ctx, &ids, &precision).await?)
    {
        match p {
            Precision::Full => {
                computed.insert(*x, f);
            }
            Precision::Model => for_model = Some(f),
        }
    }
    let now = computed
        .remove(&d.day)
        .ok_or_else(|| PhmError::Other("no features at the index date".into()))?;
    let mut early_em: Option<(FeatureMatrix, f64)> = None;
    if let Some(ef) = for_model {
        let t = Instant::now();
        // (its f32 columns become the matrix's; the features are dropped here)
        early_em = Some((matrix(&ef)?, t.elapsed().as_secs_f64()));
    }
    let tm = Instant::now();
    // (nothing is evaluated on the scoring date's matrix: no fairness groups)
    let now_m = scoring_matrix(&now)?;
    if std::env::var_os("TRENT_TRACE").is_some() {
        // (the matrices are part of `features`: the evaluation date's fairness groups and
        // segments, and for each date the f32 copy of its f64 columns)
        eprintln!(
            "scoring date's matrix {:.2} s, evaluation date's {:.2} s",
            tm.elapsed().as_secs_f64(),
            early_em.as_ref().map_or(0.0, |e| e.1)
        );
    }
    let early_secs = early_em.as_ref().map_or(0.0, |e| e.1);
    timings.push(("features", t.elapsed().as_secs_f64() - early_secs));
    // beside the derived tables, not among them (every folder there is a table)
    let models_dir = lake.generation.join("models");
    // the evaluation date's features, kept: by default it is also the previous year's
    // date that rising risk compares with
    let mut kept: Option<(i32, Vec<i64>, Vec<f64>)> = None;
    let (model, trained, evaluation, model_file) = match &opts.model {
        Some(path) => {
            let (model, _) = load_model(path, &now_m)?;
            let evaluation = match eval_date {
                Some(ed) => {
                    let t = Instant::now();
                    let em = match early_em.take() {
                        Some((em, secs)) => {
                            timings.push(("evaluation features", secs));
                            em
                        }
                        None => {
                            let em = matrix(pick(&now, &computed, ed)?)?;
                            timings.push(("evaluation features", t.elapsed().as_secs_f64()));
                            em
                        }
                    };
                    let t = Instant::now();
                    let p = model.predict(&em).map_err(rm)?;
                    timings.push(("evaluation score", t.elapsed().as_secs_f64()));
                    let t = Instant::now();
                    let ev = trent_riskmodel::evaluate_scores(&p, em.labels(), em.groups())
                        .map_err(rm)?;
                    timings.push(("evaluate", t.elapsed().as_secs_f64()));
                    kept = Some((ed.day, em.ids().to_vec(), p));
                    Some((time::iso(ed.day), ev, None))
                }
                None => None,
            };
            (model, None, evaluation, path.clone())
        }
        None => {
            let ed = eval_date.ok_or_else(|| PhmError::IndexDate {
                date: date.clone(),
                why: "the lake holds no year with a known outcome to evaluate on; supply --model"
                    .into(),
            })?;
            let td = IndexDate::check(&time::iso(time::add_years(ed.day, -1)), start, end).map_err(|_| {
                PhmError::IndexDate {
                    date: date.clone(),
                    why: format!(
                        "training needs an index date a year before the evaluation date {} with a year of history; the lake ({start} to {end}) is too short — supply --model",
                        time::iso(ed.day)
                    ),
                }
            })?;
            let t = Instant::now();
            let tf = pick(&now, &computed, td)?;
            let tm = matrix(tf)?;
            let (fit, hold): (Vec<usize>, Vec<usize>) =
                (0..tm.n_rows()).partition(|&i| tf.person_id[i].rem_euclid(10) != 0);
            let fit_m = tm.select_rows(&fit).map_err(rm)?;
            let hold_m = tm.select_rows(&hold).map_err(rm)?;
            drop(tm); // the training rows live on in fit_m and hold_m only
            if td.day != time::add_years(d.day, -1) {
                computed.remove(&td.day); // not needed for rising risk either
            }
            let ef = pick(&now, &computed, ed)?;
            let em = matrix(ef)?;
            let eval_n = em.n_rows();
            timings.push(("training features", t.elapsed().as_secs_f64()));
            let t = Instant::now();
            let params = GbtParams {
                num_iterations: opts.rounds.unwrap_or(300),
                learning_rate: 0.05,
                num_leaves: 31,
                min_data_in_leaf: 50,
                lambda_l2: 1.0,
                early_stopping_rounds: 30,
                seed: 42,
                ..GbtParams::default()
            };
            let gbt = trent_riskmodel::train(&fit_m, Some(&hold_m), &TrainParams::Gbt(params))
                .map_err(rm)?;
            timings.push(("train gbt", t.elapsed().as_secs_f64()));
            let t = Instant::now();
            let logit = trent_riskmodel::train(
                &fit_m,
                None,
                &TrainParams::Logistic(LogisticParams::default()),
            )
            .map_err(rm)?;
            timings.push(("train logistic", t.elapsed().as_secs_f64()));
            let t = Instant::now();
            let gp = gbt.predict(&em).map_err(rm)?;
            let ev = trent_riskmodel::evaluate_scores(&gp, em.labels(), em.groups()).map_err(rm)?;
            let lev = trent_riskmodel::evaluate(&logit, &em).map_err(rm)?;
            timings.push(("evaluate", t.elapsed().as_secs_f64()));
            let meta = |kind: &str| {
                serde_json::json!({
                    "outcome": "emergency admission (APC, admission method emergency) beginning within 365 days of the index date",
                    "training_index_date": time::iso(td.day),
                    "training_people": fit.len(),
                    "early_stopping_people": hold.len(),
                    "evaluation_index_date": time::iso(ed.day),
                    "evaluation_people": eval_n,
                    "lake_generation": lake.generation.file_name().and_then(|s| s.to_str()),
                    "lake_run_id": lake.catalog.run_id,
                    "lake_span": [start, end],
                    "model": kind,
                })
            };
            std::fs::create_dir_all(&models_dir)
                .map_err(|e| PhmError::Other(format!("{}: {e}", models_dir.display())))?;
            let file = models_dir.join(format!(
                "emergency-admission-gbt-{}.json",
                time::iso(td.day)
            ));
            kept = Some((ed.day, ef.person_id.clone(), gp));
            drop(em);
            Artefact::new(gbt.clone(), &fit_m, meta("gbt"), Some(ev.clone()))
                .map_err(rm)?
                .save(&file)
                .map_err(rm)?;
            let lfile = models_dir.join(format!(
                "emergency-admission-logistic-{}.json",
                time::iso(td.day)
            ));
            Artefact::new(logit, &fit_m, meta("logistic"), Some(lev.clone()))
                .map_err(rm)?
                .save(&lfile)
                .map_err(rm)?;
            (
                gbt,
                Some((time::iso(td.day), fit.len())),
                Some((time::iso(ed.day), ev, Some(lev))),
                file,
            )
        }
    };
    // score everyone at D, and a year earlier for rising risk
    let t = Instant::now();
    let risk = model.predict(&now_m).map_err(rm)?;
    let cent = segment::centiles(&risk);
    timings.push(("score", t.elapsed().as_secs_f64()));
    let t = Instant::now();
    let previous: (Vec<i64>, Vec<f64>) =
        match IndexDate::check(&time::iso(time::add_years(d.day, -1)), start, end) {
            Ok(pd) => {
                let (ids, pr) = match kept.take() {
                    Some((day, ids, p)) if day == pd.day => (ids, p),
                    _ => {
                        let pf = pick(&now, &computed, pd)?;
                        let pm = scoring_matrix(pf)?;
                        (pf.person_id.clone(), model.predict(&pm).map_err(rm)?)
                    }
                };
                (ids, pr)
            }
            Err(_) => Default::default(),
        };
    drop(kept);
    let segs = segment::segments(&now);
    let before = aligned(&now.person_id, &previous.0, &previous.1);
    drop(previous);
    let rising: Vec<bool> = (0..now.len())
        .map(|i| segment::rising_risk(cent[i], risk[i], before[i]))
        .collect();
    timings.push(("rising risk", t.elapsed().as_secs_f64()));
    // reasons stored for the top 1%; worklists explain their members on demand
    // (TreeSHAP costs milliseconds a person: everyone would take most of an hour)
    let t = Instant::now();
    let explain: Vec<usize> = (0..now.len()).filter(|&i| cent[i] >= 99.0).collect();
    let reasons = explain_rows(&model, &now_m, &explain)?;
    let mut why = vec![[None, None, None]; now.len()];
    for (&i, r) in explain.iter().zip(reasons) {
        why[i] = r;
    }
    timings.push(("explain", t.elapsed().as_secs_f64()));
    let mut sorted = risk.clone();
    sorted.sort_by(f64::total_cmp);
    let high_threshold = sorted
        .get(((sorted.len() as f64) * 0.95) as usize)
        .copied()
        .unwrap_or(f64::NAN);
    // write
    let t = Instant::now();
    let n = now.len();
    let batch_name = lake
        .generation
        .file_name()
        .and_then(|s| s.to_str())
        .unwrap_or("")
        .to_string();
    let model_name = std::fs::canonicalize(&model_file)
        .unwrap_or_else(|_| model_file.clone())
        .display()
        .to_string();
    let mut fields = vec![
        Field::new("person_id", DataType::Int64, false),
        Field::new("index_date", DataType::Utf8, false),
        Field::new("practice", DataType::Utf8, false),
    ];
    let mut cols: Vec<ArrayRef> = vec![
        Arc::new(Int64Array::from(now.person_id.clone())),
        Arc::new(StringArray::from(vec![date.clone(); n])),
        Arc::new(StringArray::from(now.practice.clone())),
    ];
    for (name, c) in now.names.iter().zip(&now.columns) {
        fields.push(Field::new(name, DataType::Float64, true));
        cols.push(f64col(c.iter()));
    }
    if let Some(o) = &now.outcome {
        fields.push(Field::new("outcome_emergency_365", DataType::Float64, true));
        cols.push(f64col(o.iter().map(|&x| f64::from(x))));
    }
    let fb = RecordBatch::try_new(Arc::new(Schema::new(fields)), cols)?;
    lake.write_derived(FEATURES_TABLE, &[fb])?;
    let efi = now.column("efi_band").expect("efi_band");
    let band = |i: usize| {
        if cent[i] >= 95.0 {
            "high"
        } else if rising[i] {
            "rising"
        } else if cent[i] >= 50.0 {
            "moderate"
        } else {
            "low"
        }
    };
    let reason = |k: usize| -> StringArray { why.iter().map(|w| w[k].clone()).collect() };
    let schema = Arc::new(Schema::new(vec![
        Field::new("person_id", DataType::Int64, false),
        Field::new("index_date", DataType::Utf8, false),
        Field::new("practice", DataType::Utf8, false),
        Field::new("segment", DataType::Utf8, false),
        Field::new("efi_band", DataType::Utf8, false),
        Field::new("risk", DataType::Float64, false),
        Field::new("centile", DataType::Float64, false),
        Field::new("risk_band", DataType::Utf8, false),
        Field::new("rising_risk", DataType::Boolean, false),
        Field::new("reason_1", DataType::Utf8, true),
        Field::new("reason_2", DataType::Utf8, true),
        Field::new("reason_3", DataType::Utf8, true),
        Field::new("model", DataType::Utf8, false),
        Field::new("lake_batch", DataType::Utf8, false),
    ]));
    let rb = RecordBatch::try_new(
        schema,
        vec![
            Arc::new(Int64Array::from(now.person_id.clone())),
            Arc::new(StringArray::from(vec![date.clone(); n])),
            Arc::new(StringArray::from(now.practice.clone())),
            Arc::new(StringArray::from(
                segs.iter().map(|s| s.name()).collect::<Vec<_>>(),
            )),
            Arc::new(StringArray::from(
                efi.iter()
                    .map(|b| EFI_BANDS[(b as usize).min(3)])
                    .collect::<Vec<_>>(),
            )),
            Arc::new(Float64Array::from(risk.clone())),
            Arc::new(Float64Array::from(cent.clone())),
            Arc::new(StringArray::from((0..n).map(band).collect::<Vec<_>>())),
            Arc::new(BooleanArray::from(rising.clone())),
            Arc::new(reason(0)),
            Arc::new(reason(1)),
            Arc::new(reason(2)),
            Arc::new(StringArray::from(vec![model_name; n])),
            Arc::new(StringArray::from(vec![batch_name; n])),
        ],
    )?;
    lake.write_derived(RISK_TABLE, &[rb])?;
    timings.push(("write", t.elapsed().as_secs_f64()));
    let segments = Segment::ALL
        .iter()
        .map(|s| (*s, segs.iter().filter(|x| *x == s).count()))
        .collect();
    Ok(StratifyReport {
        index_date: date,
        people: n,
        model_kind: model.kind().to_string(),
        model_file,
        trained,
        evaluation,
        segments,
        rising: rising.iter().filter(|x| **x).count(),
        high_threshold,
        malformed_codes: now.malformed_codes,
        timings,
    })
}

/// Features of the rows of a `phm_features` batch (columns by name), for explaining.
pub fn features_from_batch(b: &RecordBatch) -> Result<Features, PhmError> {
    let specs = features::specs();
    let mut columns = vec![];
    for (name, _) in &specs {
        let c = b.column_by_name(name).ok_or_else(|| {
            PhmError::Other(format!(
                "{FEATURES_TABLE} has no column {name}: run `trent stratify` again"
            ))
        })?;
        let c = arrow::compute::cast(c, &DataType::Float64)?;
        let a = c.as_primitive::<arrow::datatypes::Float64Type>();
        columns.push(Column::of(
            (0..a.len())
                .map(|i| if a.is_null(i) { f64::NAN } else { a.value(i) })
                .collect(),
        ));
    }
    let pid = b
        .column_by_name("person_id")
        .ok_or_else(|| PhmError::Other(format!("{FEATURES_TABLE} has no person_id")))?
        .as_primitive::<arrow::datatypes::Int64Type>();
    Ok(Features {
        index_day: 0,
        person_id: pid.values().to_vec(),
        practice: vec![String::new(); b.num_rows()],
        names: specs.iter().map(|s| s.0.clone()).collect(),
        kinds: specs.iter().map(|s| s.1).collect(),
        columns,
        outcome: None,
        malformed_codes: 0,
    })
}

/// Load the model a stratification used (its `model` column) and explain rows of a
/// `phm_features` batch: the three features that pushed each one's risk up most.
pub fn explain_batch(
    model_file: &Path,
    b: &RecordBatch,
) -> Result<Vec<[Option<String>; 3]>, PhmError> {
    let f = features_from_batch(b)?;
    let m = scoring_matrix(&f)?;
    let (model, _) = load_model(model_file, &m)?;
    let rows: Vec<usize> = (0..m.n_rows()).collect();
    explain_rows(&model, &m, &rows)
}

/// The three features that pushed each row's risk up most (`name (+0.42)` on the
/// log-odds scale), on two threads.
fn explain_rows(
    model: &Model,
    m: &FeatureMatrix,
    rows: &[usize],
) -> Result<Vec<[Option<String>; 3]>, PhmError> {
    let one = |part: &[usize]| -> Result<Vec<[Option<String>; 3]>, PhmError> {
        Ok(model
            .explain_rows(m, part, 3)
            .map_err(rm)?
            .into_iter()
            .map(|top| {
                let mut out = [None, None, None];
                for (k, (name, c)) in top.into_iter().enumerate().take(3) {
                    out[k] = Some(format!("{name} ({c:+.2})"));
                }
                out
            })
            .collect())
    };
    let (a, b) = rows.split_at(rows.len() / 2);
    std::thread::scope(|s| {
        let h = s.spawn(|| one(b));
        let mut x = one(a)?;
        x.extend(h.join().expect("explanation thread")?);
        Ok(x)
    })
}

#[cfg(test)]
mod tests {
    use super::{AGE_BANDS, GroupColumn, age_band, aligned, group};

    /// A group coded from each person's level is the group the labels give: the same
    /// levels in the same order (first appearance) and the same codes.
    #[test]
    fn coded_groups_equal_groups_from_labels() {
        let ages = [
            40.0,
            90.0,
            f64::NAN,
            17.0,
            18.0,
            84.9,
            65.0,
            40.0,
            75.0,
            44.0,
        ];
        let labels: Vec<&str> = ages.iter().map(|&a| AGE_BANDS[age_band(a)]).collect();
        assert_eq!(
            labels,
            [
                "18-44", "85+", "0-17", "0-17", "18-44", "75-84", "65-74", "18-44", "75-84",
                "18-44"
            ]
        );
        assert_eq!(
            group("age_band", &AGE_BANDS, ages.iter().map(|&a| age_band(a))),
            GroupColumn::from_values("age_band", &labels)
        );
    }

    /// Each person gets their own earlier value or none, by merge on ascending ids and by
    /// lookup otherwise.
    #[test]
    fn earlier_values_align_by_person() {
        let people = [2, 3, 5, 8, 13, 21];
        let ids = [1, 2, 5, 6, 13, 30];
        let values = [0.1, 0.2, 0.5, 0.6, 0.13, 0.3];
        let want = vec![Some(0.2), None, Some(0.5), None, Some(0.13), None];
        assert_eq!(aligned(&people, &ids, &values), want);
        let shuffled_ids = [13, 1, 30, 5, 2, 6];
        let shuffled = [0.13, 0.1, 0.3, 0.5, 0.2, 0.6];
        assert_eq!(aligned(&people, &shuffled_ids, &shuffled), want);
        assert_eq!(aligned(&people, &[], &[]), vec![None; 6]);
    }
}
