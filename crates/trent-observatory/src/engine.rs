//! The fast path: each indicator's units selected, joined, de-duplicated and grouped by
//! Apache DataFusion over the lake's Parquet (one SQL plan per indicator, so the same
//! plan can run on Ballista), then rolled up to every place in one pass; population
//! denominators counted in one pass over `person` into dense arrays.

use std::collections::HashMap;
use std::sync::Arc;

use arrow::array::{Array, AsArray, Date32Array, Int32Array, Int64Array, RecordBatch};
use arrow::datatypes::{DataType, Date32Type, Field, Float64Type, Int32Type, Int64Type, Schema};
use datafusion::datasource::MemTable;
use datafusion::prelude::SessionContext;

use crate::definition::{Grain, Indicator, Per, Population, Require};
use crate::error::ObsError;
use crate::period;
use crate::rollup::{
    AGE_GROUPS, Agg, Cell, Interned, Key, Places, Rollup, age_group, ethnic_group,
};
use crate::views::{age_sql, column_sql, date_sql, from_sql};

/// The lake's span and the session the fast path runs in.
pub struct Ctx {
    /// DataFusion session with the lake registered
    pub ctx: SessionContext,
    /// first day of the lake
    pub start: i32,
    /// first day after the lake
    pub end: i32,
    /// the person dimensions [`PDIM`] numbers (index = `__dim`)
    pub dims: Vec<DimRow>,
}

/// The table that numbers each person's place and breakdown attributes (`person_id`,
/// `__dim`), so the fine grouping is by integers: DataFusion groups five string columns
/// several times slower than one integer, and these attributes are fixed per person.
pub const PDIM: &str = "__pdim";

/// The same numbering as SQL, for the DuckDB benchmark (`--dump-sql`): the numbers differ
/// from trent's but name the same groups.
pub const PDIM_SQL: &str = "CREATE TEMP TABLE __pdim AS SELECT person_id, birth_month, CAST(dense_rank() OVER (ORDER BY practice_code, district, imd_decile, sex, ethnicity) AS INT) AS __dim FROM person";

/// One combination of a person's place and breakdown attributes.
#[derive(Debug, Clone, PartialEq, Eq, Hash)]
pub struct DimRow {
    /// practice code
    pub practice: String,
    /// district code
    pub district: String,
    /// IMD decile
    pub imd: i64,
    /// sex F/M
    pub sex: String,
    /// ethnic category code
    pub ethnicity: String,
}

/// Number every person's attribute combination and register [`PDIM`].
pub async fn register_dims(ctx: &SessionContext) -> Result<Vec<DimRow>, ObsError> {
    let batches = ctx
        .sql("SELECT person_id, practice_code, district, CAST(imd_decile AS BIGINT), sex, ethnicity, birth_month FROM person")
        .await?
        .collect()
        .await?;
    let mut index: HashMap<DimRow, i32> = HashMap::new();
    let mut dims: Vec<DimRow> = vec![];
    let mut out = vec![];
    let schema = Arc::new(Schema::new(vec![
        Field::new("person_id", DataType::Int64, false),
        Field::new("birth_month", DataType::Date32, true),
        Field::new("__dim", DataType::Int32, false),
    ]));
    for b in &batches {
        let utf8 = |i: usize| arrow::compute::cast(b.column(i), &DataType::Utf8);
        let (pr, di, sex, eth) = (utf8(1)?, utf8(2)?, utf8(4)?, utf8(5)?);
        let (pr, di, sex, eth) = (
            pr.as_string::<i32>(),
            di.as_string::<i32>(),
            sex.as_string::<i32>(),
            eth.as_string::<i32>(),
        );
        let imd = b.column(3).as_primitive::<Int64Type>();
        let mut ids = Vec::with_capacity(b.num_rows());
        for i in 0..b.num_rows() {
            let d = DimRow {
                practice: pr.value(i).to_string(),
                district: di.value(i).to_string(),
                imd: imd.value(i),
                sex: sex.value(i).to_string(),
                ethnicity: eth.value(i).to_string(),
            };
            let n = dims.len() as i32;
            let id = *index.entry(d.clone()).or_insert_with(|| {
                dims.push(d);
                n
            });
            ids.push(id);
        }
        out.push(RecordBatch::try_new(
            schema.clone(),
            vec![
                b.column(0).clone(),
                arrow::compute::cast(b.column(6), &DataType::Date32)?,
                Arc::new(Int32Array::from(ids)),
            ],
        )?);
    }
    ctx.deregister_table(PDIM)?;
    ctx.register_table(PDIM, Arc::new(MemTable::try_new(schema, vec![out])?))?;
    Ok(dims)
}

/// Register the period table of a grain (`__per_<grain>`: p, mid, mid_date).
pub async fn register_periods(c: &Ctx, grain: Grain) -> Result<String, ObsError> {
    let name = format!("__per_{grain:?}").to_lowercase();
    if c.ctx.table_exist(name.as_str())? {
        return Ok(name);
    }
    let g = if grain == Grain::Rolling12m {
        Grain::Month
    } else {
        grain
    };
    let ps = period::within(g, c.start, c.end);
    let schema = Arc::new(Schema::new(vec![
        Field::new("p", DataType::Int64, false),
        Field::new("mid", DataType::Int32, false),
        Field::new("mid_date", DataType::Date32, false),
    ]));
    let mids: Vec<i32> = ps.iter().map(|&p| period::mid(g, p)).collect();
    let batch = RecordBatch::try_new(
        schema.clone(),
        vec![
            Arc::new(Int64Array::from(ps.clone())),
            Arc::new(Int32Array::from(mids.clone())),
            Arc::new(Date32Array::from(mids)),
        ],
    )?;
    c.ctx.register_table(
        name.as_str(),
        Arc::new(MemTable::try_new(schema, vec![vec![batch]])?),
    )?;
    Ok(name)
}

fn q(c: &str) -> String {
    format!("\"{c}\"")
}

/// Name of the materialised units table of an indicator with requirements.
pub fn units_table(ind: &Indicator) -> String {
    format!("__units_{}", ind.def.id)
}

/// SQL of the units of an indicator, grouped to fine dims: (stage 1, stage 2), in the
/// portable form written by `--dump-sql` for a peer engine: one unit per person and
/// period is chosen with a `row_number()` window. trent itself runs [`units_sql_fast`].
///
/// With requirements, stage 1 selects the units with a row number and is materialised
/// (as [`units_table`]) so the number is stable: DataFusion inlines CTEs, and a window
/// computed twice over a parallel scan need not number rows the same way twice.
pub fn units_sql(
    ind: &Indicator,
    grain: Grain,
    start: i32,
    end: i32,
    per_table: &str,
) -> (Option<String>, String) {
    units_sql_form(ind, grain, start, end, per_table, true)
}

/// [`units_sql`] as trent runs it: the same units, but one unit per person and period
/// (`person_latest`, `person_first`) is chosen by a grouped `first_value(… ORDER BY …)`
/// aggregate rather than a window. DataFusion answers the window by sorting every unit;
/// the aggregate keeps the best row per group in a hash table, several times faster.
/// The choice is the same: the ordering (day, then numerator, then denominator, both
/// descending) is the window's, and rows tied on all three have equal numerator,
/// denominator and age (one day), and one person's `__dim` is fixed, so which of the
/// tied rows is kept cannot change the result. Indicators also placed by provider keep
/// the window (tied rows may differ in provider).
pub fn units_sql_fast(
    ind: &Indicator,
    grain: Grain,
    start: i32,
    end: i32,
    per_table: &str,
) -> (Option<String>, String) {
    units_sql_form(ind, grain, start, end, per_table, ind.provider)
}

fn units_sql_form(
    ind: &Indicator,
    grain: Grain,
    start: i32,
    end: i32,
    per_table: &str,
    windowed: bool,
) -> (Option<String>, String) {
    let t = ind.table.as_str();
    // columns the expressions read
    let mut used: Vec<String> = vec![];
    for e in [
        &ind.filter,
        &ind.num_filter,
        &ind.num_value,
        &ind.den_filter,
        &ind.den_value,
    ]
    .into_iter()
    .flatten()
    {
        e.columns(&mut used);
    }
    for r in ind.require.iter().chain(&ind.num_require) {
        if !used.contains(&r.anchor) {
            used.push(r.anchor.clone());
        }
        if let Some(k) = &r.not_same
            && !used.contains(k)
        {
            used.push(k.clone());
        }
    }
    let (day, date, join) = match (&ind.when, &ind.active) {
        (Some(w), _) => (column_sql(t, w), date_sql(t, w), String::new()),
        (None, Some([a, b])) => (
            "per.mid".to_string(),
            "per.mid_date".to_string(),
            format!(
                " JOIN {per_table} per ON {} <= per.mid AND ({} IS NULL OR {} > per.mid)",
                column_sql(t, a),
                column_sql(t, b),
                column_sql(t, b)
            ),
        ),
        _ => unreachable!("checked"),
    };
    let mut cols = vec!["t.person_id AS person_id".to_string()];
    for c in &used {
        if c == "person_id" {
            continue;
        }
        let s = if c == "age" {
            age_sql(&date)
        } else {
            column_sql(t, c)
        };
        cols.push(format!("{s} AS {}", q(c)));
    }
    let pidx = if ind.active.is_some() {
        "per.p".to_string()
    } else {
        period::sql(grain, &date)
    };
    cols.push(format!("{day} AS __day"));
    cols.push(format!("{pidx} AS __p"));
    cols.push(format!("{} AS __age", age_sql(&date)));
    cols.push("p.__dim AS __dim".into());
    if ind.provider {
        cols.push("t.provider_code AS __prov".into());
    }
    let head = format!(
        "WITH b0 AS (SELECT {} FROM {}{join}),\n b AS (SELECT * FROM b0 WHERE __day >= {start} AND __day < {end}{})",
        cols.join(", "),
        from_sql(t),
        ind.filter
            .as_ref()
            .map(|f| format!(" AND {}", f.sql(None)))
            .unwrap_or_default()
    );
    let needs_uid = !(ind.require.is_empty() && ind.num_require.is_empty());
    let (stage1, mut sql) = if needs_uid {
        (
            Some(format!(
                "{head}\nSELECT *, row_number() OVER () AS __uid FROM b"
            )),
            format!("WITH u0 AS (SELECT * FROM {})", units_table(ind)),
        )
    } else {
        (None, format!("{head},\n u0 AS (SELECT * FROM b)"))
    };
    let req_cte = |name: &str, src: &str, r: &Require| -> String {
        let mut ocols = vec![
            "t.person_id AS __pid".to_string(),
            format!("{} AS __w", column_sql(&r.table, &r.when)),
        ];
        let mut oused = vec![];
        if let Some(f) = &r.filter {
            f.columns(&mut oused);
        }
        let odate = date_sql(&r.table, &r.when);
        for c in &oused {
            let s = if c == "age" {
                age_sql(&odate)
            } else {
                column_sql(&r.table, c)
            };
            ocols.push(format!("{s} AS {}", q(c)));
        }
        if let Some(k) = &r.not_same {
            ocols.push(format!("{} AS __k", column_sql(&r.table, k)));
        }
        let ofilter = r
            .filter
            .as_ref()
            .map(|f| format!(" WHERE {}", f.sql(None)))
            .unwrap_or_default();
        let same = r
            .not_same
            .as_ref()
            .map(|k| format!(" AND o.__k <> u.{}", q(k)))
            .unwrap_or_default();
        format!(
            ",\n {name} AS (SELECT DISTINCT u.__uid FROM {src} u JOIN (SELECT * FROM (SELECT {} FROM {}) WHERE TRUE{}) o ON u.person_id = o.__pid AND o.__w >= u.{a} + {lo} AND o.__w <= u.{a} + {hi}{same})",
            ocols.join(", "),
            from_sql(&r.table),
            ofilter.replacen(" WHERE", " AND", 1),
            a = q(&r.anchor),
            lo = r.within[0],
            hi = r.within[1],
        )
    };
    let mut src = "u0".to_string();
    for (i, r) in ind.require.iter().enumerate() {
        sql.push_str(&req_cte(&format!("r{i}"), &src, r));
        let next = format!("u0r{i}");
        sql.push_str(&format!(
            ",\n {next} AS (SELECT * FROM {src} WHERE __uid {} (SELECT __uid FROM r{i}))",
            if r.absent { "NOT IN" } else { "IN" }
        ));
        src = next;
    }
    let mut flags = vec![];
    let mut joins = String::new();
    for (i, r) in ind.num_require.iter().enumerate() {
        sql.push_str(&req_cte(&format!("n{i}"), &src, r));
        joins.push_str(&format!(" LEFT JOIN n{i} ON n{i}.__uid = x.__uid"));
        flags.push(format!(
            "n{i}.__uid IS {}NULL",
            if r.absent { "" } else { "NOT " }
        ));
    }
    let mut num_cond = vec![];
    if let Some(f) = &ind.num_filter {
        num_cond.push(f.sql(Some("x")));
    }
    num_cond.extend(flags);
    let num_val = ind
        .num_value
        .as_ref()
        .map(|v| format!("COALESCE(CAST({} AS DOUBLE), 0.0)", v.sql(Some("x"))))
        .unwrap_or_else(|| "1.0".into());
    let num = if num_cond.is_empty() {
        num_val
    } else {
        format!(
            "CASE WHEN {} THEN {num_val} ELSE 0.0 END",
            num_cond.join(" AND ")
        )
    };
    let den = if ind.population.is_some() {
        "0.0".to_string()
    } else {
        let v = ind
            .den_value
            .as_ref()
            .map(|v| format!("COALESCE(CAST({} AS DOUBLE), 0.0)", v.sql(Some("x"))))
            .unwrap_or_else(|| "1.0".into());
        match &ind.den_filter {
            Some(f) => format!("CASE WHEN {} THEN {v} ELSE 0.0 END", f.sql(Some("x"))),
            None => v,
        }
    };
    sql.push_str(&format!(
        ",\n m AS (SELECT x.*, {num} AS __num, {den} AS __den FROM {src} x{joins})"
    ));
    let last = match ind.per {
        Per::Row => "m".to_string(),
        p => {
            let dir = if p == Per::PersonLatest {
                "DESC"
            } else {
                "ASC"
            };
            if windowed {
                sql.push_str(&format!(
                    ",\n d AS (SELECT * FROM (SELECT *, row_number() OVER (PARTITION BY person_id, __p ORDER BY __day {dir}, __num DESC, __den DESC) AS __rn FROM m) WHERE __rn = 1)"
                ));
            } else {
                let pick = |c: &str| {
                    format!("first_value({c} ORDER BY __day {dir}, __num DESC, __den DESC) AS {c}")
                };
                sql.push_str(&format!(
                    ",\n d AS (SELECT person_id, __p, __dim, {}, {}, {} FROM m GROUP BY person_id, __p, __dim)",
                    pick("__age"),
                    pick("__num"),
                    pick("__den")
                ));
            }
            "d".to_string()
        }
    };
    sql.push_str(&format!(
        "\nSELECT __p, __dim, CASE WHEN __age <= 0 THEN 0 WHEN __age <= 4 THEN 1 ELSE LEAST(CAST(19 AS BIGINT), __age / 5 + 1) END AS __ag, CAST(COUNT(*) AS DOUBLE) AS n, SUM(__num) AS num, SUM(__num * __num) AS num2, SUM(__den) AS den{} FROM {last} GROUP BY 1, 2, 3{}",
        if ind.provider { ", __prov" } else { "" },
        if ind.provider { ", 8" } else { "" },
    ));
    (stage1, sql)
}

/// Run an indicator's units through DataFusion and roll them up.
pub async fn units(
    c: &Ctx,
    ind: &Indicator,
    places: &mut Places,
    rollup: &mut Rollup,
) -> Result<(), ObsError> {
    let per = register_periods(c, ind.def.grain).await?;
    let (stage1, sql) = units_sql_fast(ind, ind.def.grain, c.start, c.end, &per);
    let fail = |what: &str, e: datafusion::error::DataFusionError| ObsError::Indicator {
        id: ind.def.id.clone(),
        message: format!("{what}: {e}"),
    };
    let name = units_table(ind);
    let t0 = std::time::Instant::now();
    if let Some(s1) = stage1 {
        let df = c
            .ctx
            .sql(&s1)
            .await
            .map_err(|e| fail("planning its units failed", e))?;
        let schema = Arc::new(df.schema().as_arrow().clone());
        let parts = df
            .collect_partitioned()
            .await
            .map_err(|e| fail("selecting its units failed", e))?;
        c.ctx.deregister_table(name.as_str())?;
        c.ctx
            .register_table(name.as_str(), Arc::new(MemTable::try_new(schema, parts)?))?;
    }
    let df = c.ctx.sql(&sql).await.map_err(|e| ObsError::Indicator {
        id: ind.def.id.clone(),
        message: format!("planning its query failed: {e}"),
    })?;
    let batches = df.collect().await.map_err(|e| ObsError::Indicator {
        id: ind.def.id.clone(),
        message: format!("its query failed: {e}"),
    })?;
    c.ctx.deregister_table(name.as_str())?;
    if std::env::var_os("TRENT_TRACE").is_some() {
        eprintln!(
            "  {}: query done in {:.2} s, {} fine rows",
            ind.def.id,
            t0.elapsed().as_secs_f64(),
            batches.iter().map(|b| b.num_rows()).sum::<usize>()
        );
    }
    let idims: Vec<Interned> = c
        .dims
        .iter()
        .map(|x| {
            rollup.intern(
                places,
                &x.practice,
                &x.district,
                x.imd,
                &x.sex,
                &x.ethnicity,
            )
        })
        .collect();
    for b in &batches {
        let p = b.column(0).as_primitive::<Int64Type>();
        let dim = b.column(1).as_primitive::<Int32Type>();
        let ag = b.column(2).as_primitive::<Int64Type>();
        let n = b.column(3).as_primitive::<Float64Type>();
        let num = b.column(4).as_primitive::<Float64Type>();
        let num2 = b.column(5).as_primitive::<Float64Type>();
        let den = b.column(6).as_primitive::<Float64Type>();
        let prov = if b.num_columns() > 7 {
            Some(arrow::compute::cast(b.column(7), &DataType::Utf8)?)
        } else {
            None
        };
        let prov = prov.as_ref().map(|a| a.as_string::<i32>());
        for i in 0..b.num_rows() {
            let x = &idims[dim.value(i) as usize];
            let pv = match prov {
                Some(a) if !a.is_null(i) => places.intern(a.value(i)),
                _ => u32::MAX,
            };
            let cell = Cell {
                n: n.value(i),
                num: num.value(i),
                num2: num2.value(i),
                den: den.value(i),
                ..Cell::default()
            };
            rollup.add_interned(places, p.value(i), x, ag.value(i) as usize, pv, &cell);
        }
    }
    Ok(())
}

/// One person, as population denominators need them.
#[derive(Debug, Clone)]
pub struct PersonRow {
    /// practice code index (Places)
    pub practice: u32,
    /// district code index (Places)
    pub district: u32,
    /// IMD decile
    pub imd: i64,
    /// 0 = F, 1 = M
    pub sex: usize,
    /// ethnic group
    pub eth: usize,
    /// ethnic category code
    pub ethnicity: String,
    /// birth month (day number of its 1st)
    pub birth: i32,
    /// registered from
    pub reg_start: i32,
    /// registered until (exclusive), i32::MAX if still registered
    pub reg_end: i32,
}

/// Read every person once.
pub async fn people(ctx: &SessionContext, places: &mut Places) -> Result<Vec<PersonRow>, ObsError> {
    let batches = ctx
        .sql("SELECT practice_code, district, CAST(imd_decile AS BIGINT), sex, ethnicity, birth_month, registration_start, registration_end FROM person")
        .await?
        .collect()
        .await?;
    let mut out = vec![];
    for b in &batches {
        let pr = b.column(0).as_string::<i32>();
        let di = b.column(1).as_string::<i32>();
        let imd = b.column(2).as_primitive::<Int64Type>();
        let sex = b.column(3).as_string::<i32>();
        let eth = b.column(4).as_string::<i32>();
        let bm = b.column(5).as_primitive::<Date32Type>();
        let rs = b.column(6).as_primitive::<Date32Type>();
        let re = b.column(7).as_primitive::<Date32Type>();
        for i in 0..b.num_rows() {
            out.push(PersonRow {
                practice: places.intern(pr.value(i)),
                district: places.intern(di.value(i)),
                imd: imd.value(i),
                sex: usize::from(sex.value(i) == "M"),
                eth: ethnic_group(eth.value(i)),
                ethnicity: eth.value(i).to_string(),
                birth: bm.value(i),
                reg_start: rs.value(i),
                reg_end: if re.is_null(i) { i32::MAX } else { re.value(i) },
            });
        }
    }
    Ok(out)
}

/// The periods population is counted in for a grain (months for rolling windows) and
/// each one's person-years per person.
pub fn pop_periods(grain: Grain, start: i32, end: i32) -> (Grain, Vec<(i64, i32, f64)>) {
    let g = if grain == Grain::Rolling12m {
        Grain::Month
    } else {
        grain
    };
    let ps = period::within(g, start, end)
        .into_iter()
        .map(|p| {
            let (a, b) = period::bounds(g, p);
            (p, period::mid(g, p), (b - a) as f64 / 365.25)
        })
        .collect();
    (g, ps)
}

/// Population denominators by dense arrays: registered residents on each period's middle
/// day, as person-years, for every place level and the stored breakdowns at the STP,
/// local authority and CCG levels.
pub fn population(
    people: &[PersonRow],
    places: &Places,
    grain: Grain,
    pop: &Population,
    start: i32,
    end: i32,
) -> HashMap<Key, Agg> {
    let (_, ps) = pop_periods(grain, start, end);
    // local indexes
    let mut practices: Vec<u32> = places.practice_chain.keys().copied().collect();
    practices.sort();
    let pr_local: HashMap<u32, usize> =
        practices.iter().enumerate().map(|(i, &p)| (p, i)).collect();
    let mut districts: Vec<u32> = places.district_la.keys().copied().collect();
    districts.sort();
    let di_local: HashMap<u32, usize> =
        districts.iter().enumerate().map(|(i, &p)| (p, i)).collect();
    let (np, nd) = (practices.len() + 1, districts.len() + 1);
    let sex_ok = |s: usize| match pop.sex.as_deref() {
        Some("F") => s == 0,
        Some("M") => s == 1,
        _ => true,
    };
    const CELLS: usize = 2 * AGE_GROUPS;
    let mut out: HashMap<Key, Agg> = HashMap::new();
    let rolling = grain == Grain::Rolling12m;
    let mut put = |key: Key, arr: &[f64]| {
        if arr.iter().all(|x| *x == 0.0) {
            return;
        }
        for k in 0..(if rolling { 12 } else { 1 }) {
            let e = out
                .entry(Key {
                    period: key.period + k,
                    ..key
                })
                .or_insert_with(|| [[Cell::default(); AGE_GROUPS]; 2]);
            for s in 0..2 {
                for a in 0..AGE_GROUPS {
                    e[s][a].py += arr[s * AGE_GROUPS + a];
                }
            }
        }
    };
    let pr_of: Vec<usize> = people
        .iter()
        .map(|r| pr_local.get(&r.practice).copied().unwrap_or(np - 1))
        .collect();
    let di_of: Vec<usize> = people
        .iter()
        .map(|r| di_local.get(&r.district).copied().unwrap_or(nd - 1))
        .collect();
    // one compact row per person who can count: the sex filter, offsets and birth month
    // resolved once, so the per-period loop is integer arithmetic and seven additions
    struct Row {
        reg_start: i32,
        reg_end: i32,
        birth_months: i64,
        sex: usize,
        pr: usize,
        di: usize,
        imd: usize,
        q: usize,
        eth: usize,
    }
    let rows: Vec<Row> = people
        .iter()
        .enumerate()
        .filter(|(_, r)| sex_ok(r.sex))
        .map(|(i, r)| {
            let (by, bm, _) = trent_model::time::ymd(r.birth);
            Row {
                reg_start: r.reg_start,
                reg_end: r.reg_end,
                birth_months: by as i64 * 12 + bm as i64,
                sex: r.sex,
                pr: pr_of[i],
                di: di_of[i],
                imd: (r.imd.clamp(1, 10) - 1) as usize,
                q: ((r.imd.clamp(1, 10) - 1) / 2) as usize,
                eth: r.eth,
            }
        })
        .collect();
    type Arrays = [Vec<f64>; 7];
    let count = |mid: i32, py: f64| -> Arrays {
        let mut a: Arrays = [
            vec![0.0; np * CELLS],
            vec![0.0; nd * CELLS],
            vec![0.0; 10 * CELLS],
            vec![0.0; np * 5 * CELLS],
            vec![0.0; np * 6 * CELLS],
            vec![0.0; nd * 5 * CELLS],
            vec![0.0; nd * 6 * CELLS],
        ];
        let (y, m, d) = trent_model::time::ymd(mid);
        let mid_months = y as i64 * 12 + m as i64 - i64::from(d < 15);
        for r in &rows {
            if r.reg_start > mid || r.reg_end <= mid {
                continue;
            }
            let age = (mid_months - r.birth_months).div_euclid(12).max(0);
            if age < pop.ages[0] as i64 || age > pop.ages[1] as i64 {
                continue;
            }
            let c = r.sex * AGE_GROUPS + age_group(age);
            a[0][r.pr * CELLS + c] += py;
            a[1][r.di * CELLS + c] += py;
            a[2][r.imd * CELLS + c] += py;
            a[3][(r.pr * 5 + r.q) * CELLS + c] += py;
            a[4][(r.pr * 6 + r.eth) * CELLS + c] += py;
            a[5][(r.di * 5 + r.q) * CELLS + c] += py;
            a[6][(r.di * 6 + r.eth) * CELLS + c] += py;
        }
        a
    };
    // periods counted on two threads (the machine's cores)
    let half = ps.len().div_ceil(2);
    let counted: Vec<Arrays> = std::thread::scope(|sc| {
        let h = sc.spawn(|| {
            ps[half..]
                .iter()
                .map(|&(_, mid, py)| count(mid, py))
                .collect::<Vec<_>>()
        });
        let mut first: Vec<Arrays> = ps[..half]
            .iter()
            .map(|&(_, mid, py)| count(mid, py))
            .collect();
        first.extend(h.join().expect("population thread"));
        first
    });
    for (&(p, _, _), arrays) in ps.iter().zip(counted) {
        let [a_pr, a_di, a_imd, q_pr, e_pr, q_di, e_di] = arrays;
        let key = |level: u8, place: u32| Key {
            level,
            place,
            period: p,
            breakdown: 0,
            value: 0,
        };
        // practices and their chain
        let mut chain_sum: HashMap<(u8, u32), Vec<f64>> = HashMap::new();
        let add = |m: &mut HashMap<(u8, u32), Vec<f64>>, k: (u8, u32), arr: &[f64]| {
            let e = m.entry(k).or_insert_with(|| vec![0.0; arr.len()]);
            for (x, y) in e.iter_mut().zip(arr) {
                *x += y;
            }
        };
        for (li, &pr) in practices.iter().enumerate() {
            let arr = &a_pr[li * CELLS..(li + 1) * CELLS];
            put(key(5, pr), arr);
            let [hub, loc, ccg, du, _] = places.practice_chain[&pr];
            for (l, c) in [(1u8, du), (2, ccg), (3, loc), (4, hub)] {
                add(&mut chain_sum, (l, c), arr);
            }
            for b in 0..5 {
                add(
                    &mut chain_sum,
                    (100 + b as u8, ccg),
                    &q_pr[(li * 5 + b) * CELLS..(li * 5 + b + 1) * CELLS],
                );
            }
            for b in 0..6 {
                add(
                    &mut chain_sum,
                    (110 + b as u8, ccg),
                    &e_pr[(li * 6 + b) * CELLS..(li * 6 + b + 1) * CELLS],
                );
            }
        }
        for (li, &di) in districts.iter().enumerate() {
            let arr = &a_di[li * CELLS..(li + 1) * CELLS];
            put(key(7, di), arr);
            let la = places.district_la[&di];
            add(&mut chain_sum, (6, la), arr);
            for b in 0..5 {
                add(
                    &mut chain_sum,
                    (120 + b as u8, la),
                    &q_di[(li * 5 + b) * CELLS..(li * 5 + b + 1) * CELLS],
                );
            }
            for b in 0..6 {
                add(
                    &mut chain_sum,
                    (130 + b as u8, la),
                    &e_di[(li * 6 + b) * CELLS..(li * 6 + b + 1) * CELLS],
                );
            }
        }
        for (d, arr) in a_imd.chunks(CELLS).enumerate() {
            if let Some(pl) = places.get(&format!("IMD{}", d + 1)) {
                put(key(8, pl), arr);
            }
        }
        // the STP: every practice slot, including unknown practices
        let mut stp = vec![0.0; CELLS];
        let mut stp_q = vec![0.0; 5 * CELLS];
        let mut stp_e = vec![0.0; 6 * CELLS];
        for li in 0..np {
            for c in 0..CELLS {
                stp[c] += a_pr[li * CELLS + c];
            }
            for b in 0..5 {
                for c in 0..CELLS {
                    stp_q[b * CELLS + c] += q_pr[(li * 5 + b) * CELLS + c];
                }
            }
            for b in 0..6 {
                for c in 0..CELLS {
                    stp_e[b * CELLS + c] += e_pr[(li * 6 + b) * CELLS + c];
                }
            }
        }
        put(key(0, places.stp), &stp);
        for b in 0..5 {
            put(
                Key {
                    breakdown: 1,
                    value: b as u8,
                    ..key(0, places.stp)
                },
                &stp_q[b * CELLS..(b + 1) * CELLS],
            );
        }
        for b in 0..6 {
            put(
                Key {
                    breakdown: 2,
                    value: b as u8,
                    ..key(0, places.stp)
                },
                &stp_e[b * CELLS..(b + 1) * CELLS],
            );
        }
        let mut sums: Vec<_> = chain_sum.into_iter().collect();
        sums.sort_by_key(|(k, _)| *k);
        for ((l, place), arr) in sums {
            match l {
                0..=9 => put(key(l, place), &arr),
                100..=104 => put(
                    Key {
                        breakdown: 1,
                        value: l - 100,
                        ..key(2, place)
                    },
                    &arr,
                ),
                110..=115 => put(
                    Key {
                        breakdown: 2,
                        value: l - 110,
                        ..key(2, place)
                    },
                    &arr,
                ),
                120..=124 => put(
                    Key {
                        breakdown: 1,
                        value: l - 120,
                        ..key(6, place)
                    },
                    &arr,
                ),
                _ => put(
                    Key {
                        breakdown: 2,
                        value: l - 130,
                        ..key(6, place)
                    },
                    &arr,
                ),
            }
        }
    }
    out
}

/// For a peer engine: every person-dimension number (`__dim`, as [`PDIM_SQL`] numbers
/// them) with each place it rolls up to — `level` (index into [`crate::rollup::LEVELS`]), place code —
/// and each stored breakdown (`bd` index into [`crate::rollup::STORED_BREAKDOWNS`], `bv` its value: IMD
/// quintile 0-4, ethnic group 0-5), and sex (0 F, 1 M): what [`crate::rollup::Rollup::add_interned`]
/// computes from a unit's practice, district, decile and ethnicity. The quintile and
/// ethnic-group rules are spelled again here as SQL (`trent_model::codes::ethnic_group`);
/// the test `dumped_rollup_sql_equals_trents_rollup` fails if the two drift apart.
pub const MEMBERS_SQL: &str = "CREATE TEMP TABLE __member AS \
WITH d AS (SELECT DISTINCT __dim, practice_code, district, imd_decile, sex, ethnicity FROM (SELECT practice_code, district, imd_decile, sex, ethnicity, CAST(dense_rank() OVER (ORDER BY practice_code, district, imd_decile, sex, ethnicity) AS INT) AS __dim FROM person) x), \
ch AS (SELECT o1.org_code AS practice, o1.parent_code AS hub, o2.parent_code AS loc, o3.parent_code AS ccg, o4.parent_code AS du FROM organisation o1 LEFT JOIN organisation o2 ON o2.org_code = o1.parent_code LEFT JOIN organisation o3 ON o3.org_code = o2.parent_code LEFT JOIN organisation o4 ON o4.org_code = o3.parent_code WHERE o1.org_type = 'practice'), \
dla AS (SELECT org_code AS district, parent_code AS la FROM organisation WHERE org_type = 'district'), \
b AS (SELECT d.__dim, CASE WHEN d.sex = 'M' THEN 1 ELSE 0 END AS sex, \
CASE WHEN d.imd_decile <= 2 THEN 0 WHEN d.imd_decile <= 4 THEN 1 WHEN d.imd_decile <= 6 THEN 2 WHEN d.imd_decile <= 8 THEN 3 ELSE 4 END AS q, \
CASE WHEN substr(d.ethnicity, 1, 1) IN ('A', 'B', 'C') THEN 0 WHEN substr(d.ethnicity, 1, 1) IN ('D', 'E', 'F', 'G') THEN 1 WHEN substr(d.ethnicity, 1, 1) IN ('H', 'J', 'K', 'L') THEN 2 WHEN substr(d.ethnicity, 1, 1) IN ('M', 'N', 'P') THEN 3 WHEN substr(d.ethnicity, 1, 1) IN ('R', 'S') THEN 4 ELSE 5 END AS eth, \
ch.hub, ch.loc, ch.ccg, ch.du, d.practice_code, COALESCE(dla.la, d.district) AS la, d.district, concat('IMD', CAST(d.imd_decile AS VARCHAR)) AS dec \
FROM d LEFT JOIN ch ON ch.practice = d.practice_code LEFT JOIN dla ON dla.district = d.district), \
lv AS (SELECT __dim, sex, q, eth, 0 AS level, 'STP' AS place FROM b UNION ALL SELECT __dim, sex, q, eth, 1, du FROM b UNION ALL SELECT __dim, sex, q, eth, 2, ccg FROM b UNION ALL SELECT __dim, sex, q, eth, 3, loc FROM b UNION ALL SELECT __dim, sex, q, eth, 4, hub FROM b UNION ALL SELECT __dim, sex, q, eth, 5, practice_code FROM b UNION ALL SELECT __dim, sex, q, eth, 6, la FROM b UNION ALL SELECT __dim, sex, q, eth, 7, district FROM b UNION ALL SELECT __dim, sex, q, eth, 8, dec FROM b) \
SELECT __dim, sex, level, place, 0 AS bd, 0 AS bv FROM lv UNION ALL SELECT __dim, sex, level, place, 1, q FROM lv UNION ALL SELECT __dim, sex, level, place, 2, eth FROM lv";

/// For a peer engine: the roll-up of an indicator's fine groups (materialised as
/// `__fine`: `__p, __dim, __ag, n, num, num2, den[, __prov]`) to every place, period,
/// stored breakdown, sex and age group — the work [`crate::rollup::Rollup`] does in
/// trent — including the rolling 12-month windows.
pub fn rollup_sql(ind: &Indicator) -> String {
    let r = crate::run::new_rollup(ind);
    let list = |v: &[u8]| {
        if v.is_empty() {
            "-1".to_string()
        } else {
            v.iter().map(u8::to_string).collect::<Vec<_>>().join(", ")
        }
    };
    let levels: Vec<u8> = if r.residence {
        (0..=8).collect()
    } else {
        vec![0]
    };
    let (off_join, period) = if r.rolling {
        (
            " CROSS JOIN (VALUES (0), (1), (2), (3), (4), (5), (6), (7), (8), (9), (10), (11)) AS o(m)",
            "f.__p + o.m",
        )
    } else {
        ("", "f.__p")
    };
    let bds: Vec<u8> = r.breakdowns.iter().copied().filter(|&b| b != 0).collect();
    let sums = "SUM(f.n) AS n, SUM(f.num) AS num, SUM(f.num2) AS num2, SUM(f.den) AS den";
    let mut sql = format!(
        "SELECT m.level, m.place, {period} AS period, m.bd, m.bv, m.sex, f.__ag, {sums} FROM __fine f JOIN __member m ON f.__dim = m.__dim{off_join} WHERE m.level IN ({}) AND (m.bd = 0 OR (m.level IN ({}) AND m.bd IN ({}))) GROUP BY 1, 2, 3, 4, 5, 6, 7",
        list(&levels),
        list(&r.breakdown_levels),
        list(&bds)
    );
    if r.provider {
        sql.push_str(&format!(
            " UNION ALL SELECT 9 AS level, CAST(f.__prov AS VARCHAR) AS place, {period} AS period, m.bd, m.bv, m.sex, f.__ag, {sums} FROM __fine f JOIN __member m ON f.__dim = m.__dim AND m.level = 0{off_join} WHERE f.__prov IS NOT NULL AND (m.bd = 0 OR ({} AND m.bd IN ({}))) GROUP BY 1, 2, 3, 4, 5, 6, 7",
            if r.breakdown_levels.contains(&9) { "TRUE" } else { "FALSE" },
            list(&bds)
        ));
    }
    sql
}

/// The SQL statements that select every indicator's units into fine groups, roll them up
/// to every place ([`MEMBERS_SQL`], [`rollup_sql`]: the roll-up reads the fine groups a
/// peer keeps as `__fine`) and count its population, for running the same work in another
/// SQL engine (the DuckDB benchmark in bench/peers).
/// Period tables are created from VALUES; units with requirements are materialised as
/// temporary tables, as the fast path does. Dates are day numbers via `CAST(… AS INT)`,
/// DataFusion's spelling; a peer translates that one idiom.
pub fn dump_sql(inds: &[Indicator], start: i32, end: i32) -> Vec<(String, String)> {
    let mut out = vec![];
    let mut grains: Vec<Grain> = inds.iter().map(|i| i.def.grain).collect();
    grains.sort_by_key(|g| format!("{g:?}"));
    grains.dedup();
    for g in grains {
        let name = format!("__per_{g:?}").to_lowercase();
        let pg = if g == Grain::Rolling12m {
            Grain::Month
        } else {
            g
        };
        let rows: Vec<String> = period::within(pg, start, end)
            .into_iter()
            .map(|p| {
                let mid = period::mid(pg, p);
                format!("({p}, {mid}, DATE '{}')", trent_model::time::iso(mid))
            })
            .collect();
        out.push((
            format!("periods-{}", name.trim_start_matches("__per_")),
            format!(
                "CREATE TEMP TABLE {name} AS SELECT * FROM (VALUES {}) AS v(p, mid, mid_date)",
                rows.join(", ")
            ),
        ));
    }
    out.push(("person-dims".into(), PDIM_SQL.into()));
    out.push(("rollup-members".into(), MEMBERS_SQL.into()));
    let mut pops: Vec<(Grain, Population)> = vec![];
    for ind in inds {
        if ind.def.units.is_none() {
            continue;
        }
        let per = format!("__per_{:?}", ind.def.grain).to_lowercase();
        let (s1, s2) = units_sql(ind, ind.def.grain, start, end, &per);
        if let Some(s1) = s1 {
            out.push((
                format!("{}-units", ind.def.id),
                format!("CREATE TEMP TABLE {} AS {s1}", units_table(ind)),
            ));
        }
        out.push((ind.def.id.clone(), s2));
        out.push((format!("{}-rollup", ind.def.id), rollup_sql(ind)));
        if let Some(h) = crate::run::health_indicator(ind) {
            let (h1, h2) = units_sql(&h, h.def.grain, start, end, &per);
            if let Some(h1) = h1 {
                out.push((
                    format!("{}-health-units", ind.def.id),
                    format!("CREATE TEMP TABLE {} AS {h1}", units_table(&h)),
                ));
            }
            out.push((format!("{}-health", ind.def.id), h2));
            out.push((format!("{}-health-rollup", ind.def.id), rollup_sql(&h)));
        }
        if let Some(p) = &ind.population
            && !pops.iter().any(|(g, q)| *g == ind.def.grain && q == p)
        {
            pops.push((ind.def.grain, p.clone()));
        }
    }
    for (g, p) in pops {
        let per = format!("__per_{g:?}").to_lowercase();
        let sex = p
            .sex
            .as_ref()
            .map(|s| format!(" AND p.sex = '{s}'"))
            .unwrap_or_default();
        let age = age_sql("per.mid_date");
        out.push((
            format!("population-{}-{}-{}{}", per.trim_start_matches("__per_"), p.ages[0], p.ages[1], p.sex.clone().unwrap_or_default()),
            format!(
                "SELECT per.p, p.practice_code, p.district, p.imd_decile, p.sex, CASE WHEN a <= 0 THEN 0 WHEN a <= 4 THEN 1 ELSE LEAST(19, a / 5 + 1) END AS ag, p.ethnicity, COUNT(*) AS n FROM (SELECT p.*, per.p AS pp, {age} AS a FROM person p JOIN {per} per ON p.registration_start <= per.mid_date AND (p.registration_end IS NULL OR p.registration_end > per.mid_date)) p JOIN {per} per ON per.p = p.pp WHERE p.a BETWEEN {} AND {}{sex} GROUP BY 1, 2, 3, 4, 5, 6, 7",
                p.ages[0], p.ages[1]
            ),
        ));
    }
    out
}
