//! The features engine behind [`crate::features::compute`]: each table is read once by a
//! DataFusion plan — projection and the date window pushed down to the Parquet scan, its
//! files split across partitions — and every partition's record batches are folded per
//! person into dense accumulators by trent's own aggregation, then merged (sums and
//! maxima, the partial/final shape of any grouped aggregate).
//!
//! Why not one grouped SQL statement (kept in [`crate::features::sql`], which DuckDB runs
//! in the benchmark and a test runs through DataFusion to check it gives the same numbers)?
//! Because every feature is keyed by the same 1M people: a hash aggregate with two dozen
//! `CASE` expressions re-hashes the person id of every row for every group, while a fold
//! into columns indexed by the person's row does one lookup per run of rows of the same
//! person (the lake writes a person's rows together) and a few integer compares per row.
//! The per-partition fold is still a DataFusion plan's output stream, so the same code runs
//! over any executor that yields record batches (Ballista at national scale).
//!
//! The codes the indices read (conditions ever before D, prescriptions in the year) are
//! interned per partition, merged into one dictionary, gathered per person by a counting
//! sort, and each person's long-term conditions, medicine counts and five indices come out
//! of one pass over their run of codes.

use std::collections::HashMap;
use std::sync::Arc;
use std::time::Instant;

use arrow::array::{Array, ArrayRef, AsArray, RecordBatch};
use arrow::datatypes::{
    DataType, Date32Type, Int32Type, Int64Type, TimeUnit, TimestampMicrosecondType,
};
use datafusion::physical_plan::ExecutionPlan;
use datafusion::prelude::SessionContext;
use futures::StreamExt;
use trent_indices::code::CodeSystem;
use trent_model::codes::{CONDITIONS, ethnic_group};
use trent_model::time;

use crate::PhmError;
use crate::features::{
    Column, ColumnBuilder, Features, IndexDate, POLYPHARMACY, Precision, RECENT, TWO_YEARS,
    Timings, YEAR, indices_profile, specs,
};

/// Microseconds in a day (the lake's timestamps are µs since 1970-01-01).
const DAY_US: i64 = 86_400_000_000;

/// Lake person id → row of the population (ids ascending). A dense table when the ids
/// are dense enough (the lake numbers people), else a hash map.
pub(crate) struct PersonIndex {
    base: i64,
    dense: Vec<u32>,
    map: HashMap<i64, u32>,
}

const NO_ROW: u32 = u32::MAX;

impl PersonIndex {
    pub(crate) fn new(ids: &[i64]) -> PersonIndex {
        let (Some(&lo), Some(&hi)) = (ids.first(), ids.last()) else {
            return PersonIndex {
                base: 0,
                dense: vec![],
                map: HashMap::new(),
            };
        };
        let span = (hi as i128 - lo as i128 + 1) as u128;
        if span <= (4 * ids.len() + 1024) as u128 {
            let mut dense = vec![NO_ROW; span as usize];
            for (i, &p) in ids.iter().enumerate() {
                dense[(p - lo) as usize] = i as u32;
            }
            PersonIndex {
                base: lo,
                dense,
                map: HashMap::new(),
            }
        } else {
            PersonIndex {
                base: 0,
                dense: vec![],
                map: ids
                    .iter()
                    .enumerate()
                    .map(|(i, &p)| (p, i as u32))
                    .collect(),
            }
        }
    }

    #[inline]
    pub(crate) fn row(&self, id: i64) -> Option<u32> {
        if self.dense.is_empty() {
            return self.map.get(&id).copied();
        }
        let k = id.wrapping_sub(self.base);
        if k < 0 || k as usize >= self.dense.len() {
            return None;
        }
        let r = self.dense[k as usize];
        (r != NO_ROW).then_some(r)
    }

    /// Rows of a batch's person ids (`NO_ROW` for people not in the population), one
    /// lookup per run of equal ids.
    fn rows(&self, pid: &[i64], out: &mut Vec<u32>) {
        out.clear();
        let mut last = None;
        let mut r = NO_ROW;
        for &p in pid {
            if last != Some(p) {
                last = Some(p);
                r = self.row(p).unwrap_or(NO_ROW);
            }
            out.push(r);
        }
    }
}

/// The physical plan of `sql`.
async fn plan(ctx: &SessionContext, sql: &str) -> Result<Arc<dyn ExecutionPlan>, PhmError> {
    Ok(ctx.sql(sql).await?.create_physical_plan().await?)
}

/// Run `plan` and fold every output partition's batches into its own accumulator, the
/// partitions in parallel tasks; the accumulators come back to be merged.
async fn fold<A, I, F>(
    ctx: &SessionContext,
    plan: Arc<dyn ExecutionPlan>,
    init: I,
    step: F,
) -> Result<Vec<A>, PhmError>
where
    A: Send + 'static,
    I: Fn() -> A,
    F: Fn(&mut A, &RecordBatch) -> Result<(), PhmError> + Send + Sync + 'static,
{
    let streams = datafusion::physical_plan::execute_stream_partitioned(plan, ctx.task_ctx())?;
    let step = Arc::new(step);
    let mut tasks = Vec::with_capacity(streams.len());
    for mut s in streams {
        let step = step.clone();
        let mut acc = init();
        tasks.push(tokio::spawn(async move {
            while let Some(b) = s.next().await {
                step(&mut acc, &b?)?;
            }
            Ok::<A, PhmError>(acc)
        }));
    }
    let mut out = Vec::with_capacity(tasks.len());
    for t in tasks {
        out.push(
            t.await
                .map_err(|e| PhmError::Other(format!("features task: {e}")))??,
        );
    }
    Ok(out)
}

/// The plan of `sql` (a scan of a table registered by [`with_views`] without row
/// filtering, under a `WHERE` on its columns) for a fold that applies the same
/// conditions itself: the condition still prunes the files and row groups whose
/// statistics rule them out, but no row is filtered.
///
/// Why: the lake writes each person's rows together, so a date window's rows are spread
/// over every page. Filtering them in the Parquet reader (DataFusion's
/// `pushdown_filters`, on in lake sessions) decodes the condition's column, builds a
/// selection of scattered runs and decodes the other columns through it; a filter above
/// the scan instead copies every column of every batch. The activity fold checks each
/// row against every index date's windows anyway, so either was work done twice
/// (docs/benchmarks.md). Only a filter directly over a Parquet scan is removed: a plan of
/// any other shape runs as it is, and gives the fold the same rows within its windows.
async fn pruning_scan(ctx: &SessionContext, sql: &str) -> Result<Arc<dyn ExecutionPlan>, PhmError> {
    use datafusion::common::tree_node::{Transformed, TreeNode};
    use datafusion::datasource::source::DataSourceExec;
    use datafusion::physical_plan::filter::FilterExec;
    // planned with the reader's row filter off: DataFusion pushes a filter into the
    // Parquet scan when the session or the table asks for it
    let mut state = ctx.state();
    state
        .config_mut()
        .options_mut()
        .execution
        .parquet
        .pushdown_filters = false;
    let plan = SessionContext::new_with_state(state)
        .sql(sql)
        .await?
        .create_physical_plan()
        .await?;
    let plan = plan.transform_up(|p| {
        if let Some(f) = p.downcast_ref::<FilterExec>()
            && f.input().downcast_ref::<DataSourceExec>().is_some()
        {
            // the filter's projection (its output columns) is kept; the fold reads the
            // columns by name, the projection only puts them in the SELECT's order
            let input = f.input().clone();
            let out: Arc<dyn ExecutionPlan> = match f.projection() {
                Some(cols) => {
                    let schema = input.schema();
                    let exprs: Vec<(Arc<dyn datafusion::physical_expr::PhysicalExpr>, String)> =
                        cols.iter()
                            .map(|&i| {
                                let name = schema.field(i).name().clone();
                                (
                                    Arc::new(datafusion::physical_expr::expressions::Column::new(
                                        &name, i,
                                    )) as _,
                                    name,
                                )
                            })
                            .collect();
                    Arc::new(
                        datafusion::physical_plan::projection::ProjectionExec::try_new(
                            exprs, input,
                        )?,
                    )
                }
                None => input,
            };
            return Ok(Transformed::yes(out));
        }
        Ok(Transformed::no(p))
    })?;
    Ok(plan.data)
}

/// `table` registered again as `{table}_views`, its text columns read as string views:
/// the Parquet reader then points each row at its dictionary entry (a short code sits
/// inside the view itself) instead of copying every string and its offset out of the
/// dictionary page, and the folds only compare or hash the text. A table that is not a
/// listing table (a test's in-memory one) is read as it is.
///
/// `row_filter: false` registers it as `{table}_scan`, whose Parquet reader prunes by a
/// query's conditions but filters no row ([`pruning_scan`]).
async fn with_views(
    ctx: &SessionContext,
    table: &str,
    row_filter: bool,
) -> Result<String, PhmError> {
    use arrow::datatypes::{Field, Schema};
    use datafusion::datasource::file_format::parquet::ParquetFormat;
    use datafusion::datasource::listing::{ListingTable, ListingTableConfig};
    let name = if row_filter {
        format!("{table}_views")
    } else {
        format!("{table}_scan")
    };
    if ctx.table_exist(name.as_str())? {
        return Ok(name);
    }
    let provider = ctx.table_provider(table).await?;
    let Some(lt) = provider.downcast_ref::<ListingTable>() else {
        return Ok(table.to_string());
    };
    let fields: Vec<Field> = provider
        .schema()
        .fields()
        .iter()
        .map(|f| match f.data_type() {
            DataType::Utf8 => f.as_ref().clone().with_data_type(DataType::Utf8View),
            _ => f.as_ref().clone(),
        })
        .collect();
    let mut options = lt.options().clone();
    if let Some(pq) = options.format.downcast_ref::<ParquetFormat>() {
        let mut o = pq.options().clone();
        o.global.pushdown_filters &= row_filter;
        options.format = Arc::new(ParquetFormat::default().with_options(o));
    }
    let config = ListingTableConfig::new_with_multi_paths(lt.table_paths().clone())
        .with_listing_options(options)
        .with_schema(Arc::new(Schema::new(fields)));
    ctx.register_table(name.as_str(), Arc::new(ListingTable::try_new(config)?))?;
    Ok(name)
}

fn column<'a>(b: &'a RecordBatch, name: &str) -> Result<&'a ArrayRef, PhmError> {
    b.column_by_name(name)
        .ok_or_else(|| PhmError::Other(format!("features scan returned no column {name}")))
}

/// A column as Int64 values (cast if the lake stores it narrower).
fn i64s(b: &RecordBatch, name: &str) -> Result<ArrayRef, PhmError> {
    let c = column(b, name)?;
    Ok(if c.data_type() == &DataType::Int64 {
        c.clone()
    } else {
        arrow::compute::cast(c, &DataType::Int64)?
    })
}

/// Visit each row's string (None for null) of a string column of any encoding.
fn each_str(a: &ArrayRef, mut f: impl FnMut(usize, Option<&str>)) -> Result<(), PhmError> {
    match a.data_type() {
        DataType::Utf8View => {
            let s = a.as_string_view();
            for i in 0..s.len() {
                f(i, (!s.is_null(i)).then(|| s.value(i)));
            }
        }
        DataType::Utf8 => {
            let s = a.as_string::<i32>();
            for i in 0..s.len() {
                f(i, (!s.is_null(i)).then(|| s.value(i)));
            }
        }
        _ => {
            let c = arrow::compute::cast(a, &DataType::Utf8)?;
            let s = c.as_string::<i32>();
            for i in 0..s.len() {
                f(i, (!s.is_null(i)).then(|| s.value(i)));
            }
        }
    }
    Ok(())
}

/// Small codes of a string column: `classify` maps each value (0 for null).
fn classify(
    b: &RecordBatch,
    name: &str,
    classify: impl Fn(&str) -> u8,
) -> Result<Vec<u8>, PhmError> {
    let a = column(b, name)?;
    let mut out = vec![0u8; a.len()];
    if a.data_type() == &DataType::Utf8View {
        // equal views are equal strings within an array: a string of up to 12 bytes is
        // all in its 16-byte view (length, then the bytes), a longer one is its length,
        // prefix, buffer and offset (the Parquet reader points every row of a dictionary
        // entry at the same bytes). So each distinct view is classified once, and the
        // code of every other row is found in a direct-mapped table by one compare.
        const EMPTY: u16 = u16::MAX;
        let s = a.as_string_view();
        let mut slots = [(0u128, EMPTY); 64];
        for (i, (&v, o)) in s.views().iter().zip(out.iter_mut()).enumerate() {
            if s.is_null(i) {
                continue;
            }
            let h = (((v as u64) ^ (v >> 64) as u64).wrapping_mul(0x9e37_79b9_7f4a_7c15) >> 58)
                as usize;
            let slot = &mut slots[h];
            if slot.1 != EMPTY && slot.0 == v {
                *o = slot.1 as u8;
            } else {
                *o = classify(s.value(i));
                *slot = (v, u16::from(*o));
            }
        }
        return Ok(out);
    }
    each_str(a, |i, s| {
        if let Some(s) = s {
            out[i] = classify(s);
        }
    })?;
    Ok(out)
}

fn dates(b: &RecordBatch, name: &str) -> Result<ArrayRef, PhmError> {
    let c = column(b, name)?;
    Ok(if c.data_type() == &DataType::Date32 {
        c.clone()
    } else {
        arrow::compute::cast(c, &DataType::Date32)?
    })
}

// activity counters, per person (index into `Act::c`)
const EM365: usize = 0;
const EM730: usize = 1;
const EL365: usize = 2;
const MAT365: usize = 3;
const AE365: usize = 4;
const AE90: usize = 5;
const AEAMB: usize = 6;
const OP: usize = 7;
const GP: usize = 8;
const COMMUNITY: usize = 9;
const MH: usize = 10;
const AMBULANCE: usize = 11;
const NHS111: usize = 12;
const GP90: usize = 13;
const OUTCOME: usize = 14;
const NC: usize = 15;

/// Activity folded per person: counters, bed days, the last emergency admission.
struct Act {
    c: Vec<u32>,
    bed: Vec<i64>,
    last: Vec<i64>,
    rows: Vec<u32>,
}

impl Act {
    fn new(n: usize) -> Act {
        Act {
            c: vec![0; n * NC],
            bed: vec![0; n],
            last: vec![i64::MIN; n],
            rows: vec![],
        }
    }
    fn merge(&mut self, o: &Act) {
        for (a, b) in self.c.iter_mut().zip(&o.c) {
            *a += b;
        }
        for (a, b) in self.bed.iter_mut().zip(&o.bed) {
            *a += b;
        }
        for (a, b) in self.last.iter_mut().zip(&o.last) {
            *a = (*a).max(*b);
        }
    }
}

const S_GP: u8 = 1;
const S_AE: u8 = 2;
const S_APC: u8 = 3;
const S_OP: u8 = 4;
const S_COMMUNITY: u8 = 5;
const S_MH: u8 = 6;
const S_AMBULANCE: u8 = 7;
const S_NHS111: u8 = 8;

fn setting(s: &str) -> u8 {
    match s {
        "gp" => S_GP,
        "ae" => S_AE,
        "apc" => S_APC,
        "op" => S_OP,
        "community" => S_COMMUNITY,
        "mental_health" => S_MH,
        "ambulance" => S_AMBULANCE,
        "nhs111" => S_NHS111,
        _ => 0,
    }
}

fn method(s: &str) -> u8 {
    match s {
        "emergency" => 1,
        "elective" => 2,
        "maternity" => 3,
        _ => 0,
    }
}

/// The bounds (µs) of one index date's activity windows.
#[derive(Clone, Copy)]
struct Window {
    t0: i64,
    t365: i64,
    t730: i64,
    t90: i64,
    t1: i64,
}

impl Window {
    fn new(d: i32) -> Window {
        let t0 = i64::from(d) * DAY_US;
        Window {
            t0,
            t365: t0 - i64::from(YEAR) * DAY_US,
            t730: t0 - i64::from(TWO_YEARS) * DAY_US,
            t90: t0 - i64::from(RECENT) * DAY_US,
            t1: t0 + i64::from(YEAR) * DAY_US,
        }
    }
}

/// One person's activity in one date's windows, summed over a run of their rows.
#[derive(Clone, Copy)]
struct Local {
    c: [u32; NC],
    bed: i64,
    last: i64,
}

impl Local {
    const EMPTY: Local = Local {
        c: [0; NC],
        bed: 0,
        last: i64::MIN,
    };
}

/// Ask for the cache line of `v[i]` ahead of its use (a hint: nothing happens on a
/// machine without the instruction).
#[inline(always)]
#[allow(unsafe_code)]
fn prefetch<T>(v: &[T], i: usize) {
    #[cfg(target_arch = "x86_64")]
    if let Some(x) = v.get(i) {
        // SAFETY: a prefetch of a valid address, which reads nothing and cannot fault
        unsafe {
            std::arch::x86_64::_mm_prefetch::<{ std::arch::x86_64::_MM_HINT_T0 }>(
                (x as *const T).cast::<i8>(),
            )
        };
    }
    #[cfg(not(target_arch = "x86_64"))]
    let _ = (v, i);
}

/// The activity fold over one batch: each row counted for every index date whose
/// windows it falls in (`acc[k]` is date `k`'s).
///
/// The lake writes a person's rows together, so the rows come in runs of one person:
/// each run is summed in a small local total per date and added to the person's
/// accumulators once, and the next run's accumulators are fetched into cache while this
/// one is summed (a million people's counters are far bigger than the caches, so each
/// person's first touch is a miss that would otherwise stall the fold).
fn activity_step(
    people: &PersonIndex,
    wins: &[Window],
    acc: &mut [Act],
    b: &RecordBatch,
) -> Result<(), PhmError> {
    let pid = i64s(b, "person_id")?;
    let pid = pid.as_primitive::<Int64Type>();
    let mut rows = std::mem::take(&mut acc[0].rows);
    people.rows(pid.values(), &mut rows);
    let set = classify(b, "setting", setting)?;
    let meth = classify(b, "admission_method", method)?;
    let arrival = classify(b, "arrival_mode", |s| u8::from(s == "ambulance"))?;
    let st = column(b, "start_ts")?;
    let st = arrow::compute::cast(st, &DataType::Timestamp(TimeUnit::Microsecond, None))?;
    let st = st.as_primitive::<TimestampMicrosecondType>();
    let los = column(b, "los_days")?;
    let los = arrow::compute::cast(los, &DataType::Int32)?;
    let los = los.as_primitive::<Int32Type>();
    let mut local = vec![Local::EMPTY; wins.len()];
    let n = b.num_rows();
    let mut i = 0;
    while i < n {
        let r = rows[i];
        let mut end = i + 1;
        while end < n && rows[end] == r {
            end += 1;
        }
        if r == NO_ROW {
            i = end;
            continue;
        }
        if let Some(&next) = rows.get(end)
            && next != NO_ROW
        {
            let next = next as usize;
            for a in acc.iter() {
                prefetch(&a.c, next * NC);
                prefetch(&a.bed, next);
                prefetch(&a.last, next);
            }
        }
        local.fill(Local::EMPTY);
        for i in i..end {
            if st.is_null(i) {
                continue;
            }
            let t = st.value(i);
            for (w, acc) in wins.iter().zip(local.iter_mut()) {
                if t < w.t730 || t >= w.t1 {
                    continue;
                }
                let c = &mut acc.c;
                let before = t < w.t0;
                let year = before && t >= w.t365;
                let two = before;
                let recent = before && t >= w.t90;
                match set[i] {
                    S_APC => {
                        if year && !los.is_null(i) {
                            acc.bed += i64::from(los.value(i));
                        }
                        match meth[i] {
                            1 => {
                                c[EM365] += u32::from(year);
                                if two {
                                    c[EM730] += 1;
                                    acc.last = acc.last.max(t);
                                }
                                c[OUTCOME] += u32::from(!before);
                            }
                            2 => c[EL365] += u32::from(year),
                            3 => c[MAT365] += u32::from(year),
                            _ => {}
                        }
                    }
                    S_AE => {
                        if year {
                            c[AE365] += 1;
                            c[AEAMB] += u32::from(arrival[i]);
                        }
                        c[AE90] += u32::from(recent);
                    }
                    S_GP => {
                        c[GP] += u32::from(year);
                        c[GP90] += u32::from(recent);
                    }
                    S_OP => c[OP] += u32::from(year),
                    S_COMMUNITY => c[COMMUNITY] += u32::from(year),
                    S_MH => c[MH] += u32::from(year),
                    S_AMBULANCE => c[AMBULANCE] += u32::from(year),
                    S_NHS111 => c[NHS111] += u32::from(year),
                    _ => {}
                }
            }
        }
        let r = r as usize;
        for (l, a) in local.iter().zip(acc.iter_mut()) {
            for (x, y) in a.c[r * NC..(r + 1) * NC].iter_mut().zip(&l.c) {
                *x += y;
            }
            a.bed[r] += l.bed;
            a.last[r] = a.last[r].max(l.last);
        }
        i = end;
    }
    acc[0].rows = rows;
    Ok(())
}

/// Codes of one partition: its own dictionary (system, code) → local id, and the rows
/// (person row, local id, days before D).
#[derive(Default)]
struct Codes {
    /// foldhash, not the standard SipHash: every row's code is looked up here, and the
    /// keys are the lake's own codes, not input chosen to collide
    ids: [HashMap<String, u32, foldhash::fast::FixedState>; 3],
    values: Vec<(CodeSystem, String)>,
    /// (person row, local id, days before D), in chunks: a batch's rows go into one chunk
    /// with room for them all, so the rows are never copied into a grown vector and its
    /// fresh pages (codes 0.58-0.63 → 0.56-0.59 s, docs/benchmarks.md)
    rows: Vec<Vec<(u32, u32, u32)>>,
    people: Vec<u32>,
    /// short codes by their string view (a code of up to 12 bytes is all inside its
    /// view, so equal views are equal codes in any batch): per system, direct-mapped
    /// slots of (view, id + 1), 0 an empty slot
    short: Vec<[(u128, u32); SHORT_SLOTS]>,
}

const SHORT_SLOTS: usize = 256;

fn sys_slot(s: CodeSystem) -> usize {
    match s {
        CodeSystem::Icd10 => 0,
        CodeSystem::Snomed => 1,
        CodeSystem::Bnf => 2,
    }
}

/// Rows a chunk of [`Codes::rows`] has room for, at least.
const CHUNK_ROWS: usize = 1 << 20;

impl Codes {
    /// The chunk a batch of `n` rows is added to, taken out (put back with
    /// `self.rows.push`): the last one if it has room, else a new one.
    fn take_chunk(&mut self, n: usize) -> Vec<(u32, u32, u32)> {
        match self.rows.pop() {
            Some(c) if c.capacity() - c.len() >= n => c,
            last => {
                self.rows.extend(last);
                Vec::with_capacity(n.max(CHUNK_ROWS))
            }
        }
    }

    /// [`Codes::id`] of a code held inline in its string view `v` (at most 12 bytes):
    /// two integer compares when the code was seen before, whatever its length.
    #[inline]
    fn id_short(&mut self, sys: CodeSystem, v: u128, code: &str) -> u32 {
        if self.short.is_empty() {
            self.short = vec![[(0, 0); SHORT_SLOTS]; 3];
        }
        let h = ((v as u64) ^ (v >> 64) as u64).wrapping_mul(0x9e37_79b9_7f4a_7c15) >> 56;
        let slot = &self.short[sys_slot(sys)][h as usize];
        if slot.1 != 0 && slot.0 == v {
            return slot.1 - 1;
        }
        let id = self.id(sys, code);
        self.short[sys_slot(sys)][h as usize] = (v, id + 1);
        id
    }

    fn id(&mut self, sys: CodeSystem, code: &str) -> u32 {
        let m = &mut self.ids[sys_slot(sys)];
        if let Some(&i) = m.get(code) {
            return i;
        }
        let i = self.values.len() as u32;
        m.insert(code.to_string(), i);
        self.values.push((sys, code.to_string()));
        i
    }
}

/// The codes fold: conditions (`code_system` present) or medicines (BNF).
fn codes_step(
    people: &PersonIndex,
    d: i32,
    date_col: &'static str,
    acc: &mut Codes,
    b: &RecordBatch,
) -> Result<(), PhmError> {
    let pid = i64s(b, "person_id")?;
    let pid = pid.as_primitive::<Int64Type>();
    let mut rows = std::mem::take(&mut acc.people);
    people.rows(pid.values(), &mut rows);
    let icd = if b.column_by_name("code_system").is_some() {
        Some(classify(b, "code_system", |s| u8::from(s == "ICD10"))?)
    } else {
        None
    };
    let day = dates(b, date_col)?;
    let day = day.as_primitive::<Date32Type>();
    let code = column(b, "code")?;
    let system = |i: usize| match &icd {
        Some(x) if x[i] == 1 => CodeSystem::Icd10,
        Some(_) => CodeSystem::Snomed,
        None => CodeSystem::Bnf,
    };
    let mut out = acc.take_chunk(b.num_rows());
    if code.data_type() == &DataType::Utf8View {
        let sv = code.as_string_view();
        for (i, &v) in sv.views().iter().enumerate() {
            let r = rows[i];
            if r == NO_ROW || sv.is_null(i) || day.is_null(i) {
                continue;
            }
            let sys = system(i);
            let id = if v as u32 <= 12 {
                acc.id_short(sys, v, sv.value(i))
            } else {
                acc.id(sys, sv.value(i))
            };
            out.push((r, id, (d - day.value(i)) as u32));
        }
        acc.rows.push(out);
        acc.people = rows;
        return Ok(());
    }
    each_str(code, |i, c| {
        let r = rows[i];
        let Some(c) = c else { return };
        if r == NO_ROW || day.is_null(i) {
            return;
        }
        let id = acc.id(system(i), c);
        out.push((r, id, (d - day.value(i)) as u32));
    })?;
    acc.rows.push(out);
    acc.people = rows;
    Ok(())
}

/// Everyone who may be registered on one of the index dates, ids ascending, with what
/// each date needs to decide who is registered and how old they are. The person table is
/// read once however many dates a run computes.
struct Universe {
    person_id: Vec<i64>,
    practice: Vec<String>,
    /// birth month as months since year 0 (`i32::MIN`: unknown)
    birth_months: Vec<i32>,
    sex_male: Vec<f64>,
    imd: Vec<f64>,
    ethnic: Vec<f64>,
    /// registration start, end and death as days (`i32::MAX`: none; a missing start never
    /// registers, as SQL's `NULL <= D` is not true)
    reg_start: Vec<i32>,
    reg_end: Vec<i32>,
    death: Vec<i32>,
}

impl Universe {
    /// The rows registered on day `d` (registration started on or before D, not ended and
    /// not dead by D), ascending.
    fn registered(&self, d: i32) -> Vec<u32> {
        (0..self.person_id.len())
            .filter(|&r| self.reg_start[r] <= d && self.reg_end[r] > d && self.death[r] > d)
            .map(|r| r as u32)
            .collect()
    }
}

fn days_or_max(b: &RecordBatch, name: &str, out: &mut Vec<i32>) -> Result<(), PhmError> {
    let c = dates(b, name)?;
    let c = c.as_primitive::<Date32Type>();
    out.extend((0..c.len()).map(|i| if c.is_null(i) { i32::MAX } else { c.value(i) }));
    Ok(())
}

/// The positions of `ids` in ascending id order (a repeated id keeps all its positions,
/// for the caller to refuse). Ids dense enough (the lake numbers people) are placed by a
/// table over their span in one pass, not sorted.
fn id_order(ids: &[i64]) -> Vec<u32> {
    let (Some(&lo), Some(&hi)) = (ids.iter().min(), ids.iter().max()) else {
        return vec![];
    };
    let span = (hi as i128 - lo as i128 + 1) as u128;
    if span <= (4 * ids.len() + 1024) as u128 {
        let mut at = vec![u32::MAX; span as usize];
        let mut repeated = false;
        for (i, &id) in ids.iter().enumerate() {
            let slot = &mut at[(id - lo) as usize];
            repeated |= *slot != u32::MAX;
            *slot = i as u32;
        }
        if !repeated {
            return at.into_iter().filter(|&i| i != u32::MAX).collect();
        }
    }
    let mut order: Vec<u32> = (0..ids.len() as u32).collect();
    order.sort_unstable_by_key(|&i| ids[i as usize]);
    order
}

async fn universe(ctx: &SessionContext, first: i32, last: i32) -> Result<Universe, PhmError> {
    let dd = |d: i32| format!("DATE '{}'", time::iso(d));
    let sql = format!(
        "SELECT person_id, practice_code, birth_month, sex, imd_decile, ethnicity, \
         registration_start, registration_end, death_date FROM person \
         WHERE registration_start <= {} AND (registration_end IS NULL OR registration_end > {}) \
         AND (death_date IS NULL OR death_date > {})",
        dd(last),
        dd(first),
        dd(first)
    );
    let batches = ctx.sql(&sql).await?.collect().await?;
    let n: usize = batches.iter().map(|b| b.num_rows()).sum();
    let mut p = Universe {
        person_id: Vec::with_capacity(n),
        practice: Vec::with_capacity(n),
        birth_months: Vec::with_capacity(n),
        sex_male: Vec::with_capacity(n),
        imd: Vec::with_capacity(n),
        ethnic: Vec::with_capacity(n),
        reg_start: Vec::with_capacity(n),
        reg_end: Vec::with_capacity(n),
        death: Vec::with_capacity(n),
    };
    // each batch freed once read, so the ordering below reuses its memory
    for b in batches {
        let b = &b;
        let pid = i64s(b, "person_id")?;
        p.person_id
            .extend_from_slice(pid.as_primitive::<Int64Type>().values());
        each_str(column(b, "practice_code")?, |_, s| {
            p.practice.push(s.unwrap_or_default().to_string())
        })?;
        let bm = dates(b, "birth_month")?;
        let bm = bm.as_primitive::<Date32Type>();
        p.birth_months.extend((0..bm.len()).map(|i| {
            if bm.is_null(i) {
                return i32::MIN;
            }
            let (by, bmo, _) = time::ymd(bm.value(i));
            by * 12 + bmo as i32 - 1
        }));
        each_str(column(b, "sex")?, |_, s| {
            p.sex_male.push(f64::from(u8::from(s == Some("M"))))
        })?;
        let imd = arrow::compute::cast(column(b, "imd_decile")?, &DataType::Float64)?;
        let imd = imd.as_primitive::<arrow::datatypes::Float64Type>();
        p.imd.extend((0..imd.len()).map(|i| {
            if imd.is_null(i) {
                f64::NAN
            } else {
                imd.value(i)
            }
        }));
        each_str(column(b, "ethnicity")?, |_, s| {
            p.ethnic.push(ethnic_group(s.unwrap_or_default()) as f64)
        })?;
        days_or_max(b, "registration_start", &mut p.reg_start)?;
        days_or_max(b, "registration_end", &mut p.reg_end)?;
        days_or_max(b, "death_date", &mut p.death)?;
    }
    // ids ascending: the table's files interleave people, so the rows are put in order
    // here (one sort of the ids, then a gather per column) rather than by an `ORDER BY`,
    // which sorts and merges every column's values through the engine
    if !p.person_id.is_sorted() {
        let order = id_order(&p.person_id);
        fn gather<T: Clone>(v: &mut Vec<T>, order: &[u32]) {
            *v = order.iter().map(|&i| v[i as usize].clone()).collect();
        }
        gather(&mut p.person_id, &order);
        let mut practice = std::mem::take(&mut p.practice);
        p.practice = order
            .iter()
            .map(|&i| std::mem::take(&mut practice[i as usize]))
            .collect();
        gather(&mut p.birth_months, &order);
        gather(&mut p.sex_male, &order);
        gather(&mut p.imd, &order);
        gather(&mut p.ethnic, &order);
        gather(&mut p.reg_start, &order);
        gather(&mut p.reg_end, &order);
        gather(&mut p.death, &order);
    }
    if !p.person_id.windows(2).all(|w| w[0] < w[1]) {
        return Err(PhmError::Other(
            "person table holds a person id twice".into(),
        ));
    }
    Ok(p)
}

/// What one person's codes give: long-term conditions (bit k = `CONDITIONS[k]`), medicine
/// counts, the five indices.
#[derive(Clone, Copy)]
pub(crate) struct CodeFeatures {
    pub(crate) ltc: u32,
    pub(crate) med_items: u32,
    pub(crate) med_distinct_90: u32,
    pub(crate) indices: [f64; 6],
}

/// Features of everyone registered on D, with the seconds each step took.
pub(crate) async fn compute(
    ctx: &SessionContext,
    d: IndexDate,
) -> Result<(Features, Timings), PhmError> {
    let (mut f, t) = compute_many(ctx, &[d], &[Precision::Full]).await?;
    let f = f.pop().expect("one date, one feature set");
    Ok((f, t))
}

/// Features at several index dates from one read of each table: the person table once,
/// activity and codes once over the union of the dates' windows, each row counted for
/// every date whose windows it falls in. The same numbers as one [`compute`] per date.
pub(crate) async fn compute_many(
    ctx: &SessionContext,
    ds: &[IndexDate],
    precision: &[Precision],
) -> Result<(Vec<Features>, Timings), PhmError> {
    if precision.len() != ds.len() {
        return Err(PhmError::Other(format!(
            "{} index dates, {} precisions",
            ds.len(),
            precision.len()
        )));
    }
    let mut timings = Timings::new();
    let (Some(first), Some(last)) = (
        ds.iter().map(|d| d.day).min(),
        ds.iter().map(|d| d.day).max(),
    ) else {
        return Ok((vec![], timings));
    };
    let t = Instant::now();
    let pop = universe(ctx, first, last).await?;
    let n = pop.person_id.len();
    let people = Arc::new(PersonIndex::new(&pop.person_id));
    let sel: Vec<Vec<u32>> = ds.iter().map(|d| pop.registered(d.day)).collect();
    timings.push(("population".into(), t.elapsed().as_secs_f64()));

    let t = Instant::now();
    let ts = |day: i32| format!("TIMESTAMP '{} 00:00:00'", time::iso(day));
    let act_sql = format!(
        "SELECT person_id, setting, admission_method, arrival_mode, start_ts, los_days FROM {} \
         WHERE start_ts >= {} AND start_ts < {}",
        with_views(ctx, "activity", false).await?,
        ts(first - TWO_YEARS),
        ts(last + YEAR)
    );
    let pp = people.clone();
    let wins: Vec<Window> = ds.iter().map(|d| Window::new(d.day)).collect();
    let k = ds.len();
    // the fold counts a row only inside a date's windows: the scan prunes by the window
    // but filters no row
    let mut parts = fold(
        ctx,
        pruning_scan(ctx, &act_sql).await?,
        || (0..k).map(|_| Act::new(n)).collect::<Vec<_>>(),
        move |acc, b| activity_step(&pp, &wins, acc, b),
    )
    .await?;
    let mut acts = parts
        .pop()
        .unwrap_or_else(|| (0..k).map(|_| Act::new(n)).collect());
    for p in &parts {
        for (a, b) in acts.iter_mut().zip(p) {
            a.merge(b);
        }
    }
    drop(parts);
    timings.push(("activity".into(), t.elapsed().as_secs_f64()));

    let t = Instant::now();
    let date = |day: i32| format!("DATE '{}'", time::iso(day));
    let cond_sql = format!(
        "SELECT person_id, code_system, code, recorded_date FROM {} WHERE recorded_date < {}",
        with_views(ctx, "condition", true).await?,
        date(last)
    );
    let med_sql = format!(
        "SELECT person_id, code, issue_date FROM {} WHERE issue_date >= {} AND issue_date < {}",
        with_views(ctx, "medication", true).await?,
        date(first - YEAR),
        date(last)
    );
    // days are counted back from the latest date; each date reads them shifted
    let pp = people.clone();
    let mut parts = fold(
        ctx,
        plan(ctx, &cond_sql).await?,
        Codes::default,
        move |acc, b| codes_step(&pp, last, "recorded_date", acc, b),
    )
    .await?;
    let pp = people.clone();
    parts.extend(
        fold(
            ctx,
            plan(ctx, &med_sql).await?,
            Codes::default,
            move |acc, b| codes_step(&pp, last, "issue_date", acc, b),
        )
        .await?,
    );
    // one dictionary: each partition's local ids remapped
    let mut global = Codes::default();
    let remaps: Vec<Vec<u32>> = parts
        .iter()
        .map(|p| p.values.iter().map(|(s, c)| global.id(*s, c)).collect())
        .collect();
    let views: Vec<crate::features::CodeRows> = parts
        .iter()
        .zip(&remaps)
        .flat_map(|(p, m)| p.rows.iter().map(|c| (c.as_slice(), m.as_slice())))
        .collect();
    let mut ev = crate::features::by_person(n, &views);
    drop(views);
    drop(parts);
    ev.sort();
    let (codes, systems): (Vec<String>, Vec<CodeSystem>) =
        global.values.into_iter().map(|(s, c)| (c, s)).unzip();
    // long-term condition of each code (the SQL's `code IN (snomed, icd10)`)
    let ltc_of: Vec<u8> = codes
        .iter()
        .zip(&systems)
        .map(|(c, s)| {
            if *s == CodeSystem::Bnf {
                return u8::MAX;
            }
            CONDITIONS
                .iter()
                .position(|k| c == k.snomed || c == k.icd10)
                .map_or(u8::MAX, |k| k as u8)
        })
        .collect();
    timings.push(("codes".into(), t.elapsed().as_secs_f64()));

    // the indices on two threads, each with half of every date's people
    let t = Instant::now();
    let shift = |d: &IndexDate| (last - d.day) as u32;
    let halves: Vec<(&[u32], &[u32], u32)> = sel
        .iter()
        .zip(ds)
        .map(|(s, d)| {
            let (a, b) = s.split_at(s.len() / 2);
            (a, b, shift(d))
        })
        .collect();
    let work_a: Vec<(&[u32], u32)> = halves.iter().map(|h| (h.0, h.2)).collect();
    let work_b: Vec<(&[u32], u32)> = halves.iter().map(|h| (h.1, h.2)).collect();
    // each distinct code normalised and looked up once, then everyone's indices are
    // folds over their codes' facts
    let facts = crate::features::CodeIndexFacts::all(&codes, &systems);
    let per: Vec<(Vec<CodeFeatures>, usize)> = std::thread::scope(|s| {
        let h = s.spawn(|| indices_profile(&ev, &facts, &systems, &ltc_of, &work_b));
        let a = indices_profile(&ev, &facts, &systems, &ltc_of, &work_a);
        let b = h.join().expect("index scoring thread");
        a.into_iter()
            .zip(b)
            .map(|((mut x, bx), (y, by))| {
                x.extend(y);
                (x, bx + by)
            })
            .collect()
    });
    drop(ev);
    timings.push(("indices".into(), t.elapsed().as_secs_f64()));

    let t = Instant::now();
    let sc_sql = format!(
        "SELECT person_id, service, start_date, end_date FROM social_care \
         WHERE start_date <= {} AND (end_date IS NULL OR end_date > {})",
        date(last),
        date(first)
    );
    // per date, by universe row
    let mut sc_active = vec![vec![0.0; n]; k];
    let mut care_home = vec![vec![0.0; n]; k];
    for b in ctx.sql(&sc_sql).await?.collect().await? {
        let pid = i64s(&b, "person_id")?;
        let pid = pid.as_primitive::<Int64Type>();
        let (mut from, mut to) = (vec![], vec![]);
        days_or_max(&b, "start_date", &mut from)?;
        days_or_max(&b, "end_date", &mut to)?;
        each_str(column(&b, "service")?, |i, s| {
            let Some(r) = people.row(pid.value(i)) else {
                return;
            };
            let home = matches!(s, Some("residential" | "nursing"));
            for (j, d) in ds.iter().enumerate() {
                if from[i] <= d.day && to[i] > d.day {
                    sc_active[j][r as usize] = 1.0;
                    if home {
                        care_home[j][r as usize] = 1.0;
                    }
                }
            }
        })?;
    }
    // the dates' columns on two threads: most of the time is the kernel faulting in
    // fresh pages (docs/benchmarks.md), which both cores do
    let dates: Vec<usize> = (0..k).collect();
    let (first_half, second_half) = dates.split_at(k / 2);
    let build = |js: &[usize]| {
        js.iter()
            .map(|&j| {
                let (d, sel, act, per, sc, ch) = (
                    ds[j],
                    &sel[j],
                    &acts[j],
                    &per[j],
                    &sc_active[j],
                    &care_home[j],
                );
                columns(d, precision[j], &pop, sel, act, &per.0, sc, ch, per.1)
            })
            .collect::<Result<Vec<Features>, PhmError>>()
    };
    let (a, b) = std::thread::scope(|s| {
        let h = s.spawn(|| build(first_half));
        let b = build(second_half);
        (h.join().expect("feature columns thread"), b)
    });
    let mut out = a?;
    out.extend(b?);
    timings.push(("columns".into(), t.elapsed().as_secs_f64()));
    Ok((out, timings))
}

/// One date's feature set: the columns, in spec order, of the people registered on it
/// (`sel`, universe rows; `per` in the same order; the rest by universe row). Each column
/// is stored at the precision asked for ([`ColumnBuilder`]) as it is worked out.
#[allow(clippy::too_many_arguments)]
fn columns<'a>(
    d: IndexDate,
    precision: Precision,
    pop: &'a Universe,
    sel: &'a [u32],
    act: &'a Act,
    per: &'a [CodeFeatures],
    sc_active: &'a [f64],
    care_home: &'a [f64],
    bad: usize,
) -> Result<Features, PhmError> {
    let specs = specs();
    let (y, m, _) = time::ymd(d.day);
    let dmi = y * 12 + m as i32 - 1;
    // where each column's values come from, found by name once
    enum Src<'a> {
        Age,
        Pop(&'a [f64]),
        Count(usize),
        BedDays,
        DaysSince,
        LtcCount,
        LtcBit(usize),
        MedItems,
        MedDistinct,
        Polypharmacy,
        Index(usize),
    }
    let srcs = specs
        .iter()
        .map(|(name, _)| {
            Ok(match name.as_str() {
                "age" => Src::Age,
                "sex_male" => Src::Pop(&pop.sex_male),
                "imd_decile" => Src::Pop(&pop.imd),
                "ethnic_group" => Src::Pop(&pop.ethnic),
                "ltc_count" => Src::LtcCount,
                "emergency_365" => Src::Count(EM365),
                "emergency_730" => Src::Count(EM730),
                "elective_365" => Src::Count(EL365),
                "maternity_365" => Src::Count(MAT365),
                "bed_days_365" => Src::BedDays,
                "days_since_emergency" => Src::DaysSince,
                "ae_365" => Src::Count(AE365),
                "ae_90" => Src::Count(AE90),
                "ae_ambulance_365" => Src::Count(AEAMB),
                "op_365" => Src::Count(OP),
                "gp_365" => Src::Count(GP),
                "community_365" => Src::Count(COMMUNITY),
                "mental_health_365" => Src::Count(MH),
                "ambulance_365" => Src::Count(AMBULANCE),
                "nhs111_365" => Src::Count(NHS111),
                "gp_90" => Src::Count(GP90),
                "med_items_365" => Src::MedItems,
                "med_distinct_90" => Src::MedDistinct,
                "polypharmacy" => Src::Polypharmacy,
                "social_care_active" => Src::Pop(sc_active),
                "care_home" => Src::Pop(care_home),
                "charlson" => Src::Index(0),
                "elixhauser" => Src::Index(1),
                "hfrs" => Src::Index(2),
                "efi" => Src::Index(3),
                "efi_band" => Src::Index(4),
                "cms" => Src::Index(5),
                other => match other
                    .strip_prefix("ltc_")
                    .and_then(|k| CONDITIONS.iter().position(|c| c.key == k))
                {
                    Some(k) => Src::LtcBit(k),
                    None => {
                        return Err(PhmError::Other(format!(
                            "feature {other} has no column in the engine"
                        )));
                    }
                },
            })
        })
        .collect::<Result<Vec<Src>, PhmError>>()?;
    // a block of people at a time, every column: the block's strided counters and code
    // records are read from the cache by each column after the first, not from memory
    // once a column (15 counters and 26 conditions a person)
    const BLOCK: usize = 2048;
    if per.len() != sel.len() {
        return Err(PhmError::Other(format!(
            "{} people's code features for {} people",
            per.len(),
            sel.len()
        )));
    }
    let mut built: Vec<ColumnBuilder> = srcs
        .iter()
        .map(|_| ColumnBuilder::new(sel.len(), precision))
        .collect();
    for (rows, pers) in sel.chunks(BLOCK).zip(per.chunks(BLOCK)) {
        for (src, b) in srcs.iter().zip(&mut built) {
            match *src {
                Src::Age => b.extend(rows.iter().map(|&r| match pop.birth_months[r as usize] {
                    i32::MIN => f64::NAN,
                    b => f64::from((dmi - b).div_euclid(12)),
                })),
                Src::Pop(v) => b.extend(rows.iter().map(|&r| v[r as usize])),
                Src::Count(k) => {
                    b.extend(rows.iter().map(|&r| f64::from(act.c[r as usize * NC + k])))
                }
                Src::BedDays => b.extend(rows.iter().map(|&r| act.bed[r as usize] as f64)),
                Src::DaysSince => b.extend(rows.iter().map(|&r| match act.last[r as usize] {
                    i64::MIN => f64::NAN,
                    l => f64::from(d.day - l.div_euclid(DAY_US) as i32),
                })),
                Src::LtcCount => b.extend(pers.iter().map(|p| f64::from(p.ltc.count_ones()))),
                Src::LtcBit(k) => b.extend(pers.iter().map(|p| f64::from((p.ltc >> k) & 1))),
                Src::MedItems => b.extend(pers.iter().map(|p| f64::from(p.med_items))),
                Src::MedDistinct => b.extend(pers.iter().map(|p| f64::from(p.med_distinct_90))),
                Src::Polypharmacy => b
                    .extend(pers.iter().map(|p| {
                        f64::from(u8::from(f64::from(p.med_distinct_90) >= POLYPHARMACY))
                    })),
                Src::Index(j) => b.extend(pers.iter().map(|p| p.indices[j])),
            }
        }
    }
    let columns: Vec<Column> = built.into_iter().map(ColumnBuilder::finish).collect();
    let outcome = d.has_outcome.then(|| {
        sel.iter()
            .map(|&r| u8::from(act.c[r as usize * NC + OUTCOME] > 0))
            .collect()
    });
    Ok(Features::in_spec_order(
        d,
        sel.iter().map(|&r| pop.person_id[r as usize]).collect(),
        sel.iter()
            .map(|&r| pop.practice[r as usize].clone())
            .collect(),
        columns,
        outcome,
        bad,
    ))
}

#[cfg(test)]
mod tests {
    use super::{Codes, NO_ROW, PersonIndex, RecordBatch, codes_step, id_order};
    use arrow::array::{Date32Array, Int64Array, StringArray, StringViewArray};
    use arrow::datatypes::{DataType, Field, Schema};
    use std::sync::Arc;
    use trent_indices::code::CodeSystem;

    /// The codes fold gives one id per (system, text) whatever the path: codes inline in
    /// their string view (at most 12 bytes, found by view) and longer ones (found by
    /// text), across batches, in view and plain string columns; null codes, null days
    /// and people outside the population are skipped.
    #[test]
    fn codes_fold_gives_one_id_per_code_on_every_path() {
        let people = PersonIndex::new(&[10, 11, 12]);
        let codes = [
            Some("0212000B0AAABAB"),
            Some("I10"),
            None,
            Some("0212000B0AAABAB"),
            Some("123456789012"),
            Some("1234567890123"),
            Some(""),
            Some("I10"),
            Some("123456789012"),
        ];
        let n = codes.len();
        let batch = |view: bool| {
            let code: arrow::array::ArrayRef = if view {
                Arc::new(StringViewArray::from(codes.to_vec()))
            } else {
                Arc::new(StringArray::from(codes.to_vec()))
            };
            let days: Vec<Option<i32>> =
                (0..n).map(|i| (i != 5).then_some(100 + i as i32)).collect();
            RecordBatch::try_new(
                Arc::new(Schema::new(vec![
                    Field::new("person_id", DataType::Int64, false),
                    Field::new("code", code.data_type().clone(), true),
                    Field::new("issue_date", DataType::Date32, true),
                ])),
                vec![
                    Arc::new(Int64Array::from_iter_values(
                        (0..n as i64).map(|i| 10 + i % 4),
                    )),
                    code,
                    Arc::new(Date32Array::from(days)),
                ],
            )
            .unwrap()
        };
        let mut acc = Codes::default();
        for view in [true, false, true] {
            codes_step(&people, 200, "issue_date", &mut acc, &batch(view)).unwrap();
        }
        // person 13 (row 3, 7) is not in the population; row 2's code and row 5's day are null
        let kept: Vec<usize> = (0..n).filter(|&i| i % 4 != 3 && i != 2 && i != 5).collect();
        let rows: Vec<(u32, u32, u32)> = acc.rows.concat();
        assert_eq!(rows.len(), 3 * kept.len());
        for (k, &(r, id, days)) in rows.iter().enumerate() {
            let i = kept[k % kept.len()];
            assert_ne!(r, NO_ROW);
            assert_eq!(r as usize, i % 4);
            assert_eq!(days, 100 - i as u32);
            assert_eq!(
                acc.values[id as usize],
                (CodeSystem::Bnf, codes[i].unwrap().to_string())
            );
        }
        // one id per distinct text
        let mut texts: Vec<&str> = kept.iter().map(|&i| codes[i].unwrap()).collect();
        texts.sort_unstable();
        texts.dedup();
        assert_eq!(acc.values.len(), texts.len());
    }

    /// Classifying by view gives each row its own value's class: short values (inside
    /// the view), long ones (the same text in several places of the buffer, so equal
    /// strings with different views), more distinct values than the table has slots,
    /// and nulls (class 0); the plain string path agrees.
    #[test]
    fn classify_by_view_gives_every_row_its_value_class() {
        use super::classify;
        let class = |s: &str| s.bytes().fold(7u8, |h, c| h.wrapping_mul(31) ^ c);
        let values: Vec<Option<String>> = (0..3000)
            .map(|i| match i % 7 {
                0 => None,
                1 | 2 => Some(["gp", "ae", "apc", "mental_health"][i % 4].to_string()),
                3 => Some(format!("social_care_assessment_{}", i % 3)),
                _ => Some(format!("v{}", i % 150)),
            })
            .collect();
        let expect: Vec<u8> = values
            .iter()
            .map(|v| v.as_deref().map_or(0, class))
            .collect();
        // a view array built value by value stores every long string again, so equal
        // long strings have different views
        let views = StringViewArray::from_iter(values.iter().map(|v| v.as_deref()));
        let plain = StringArray::from_iter(values.iter().map(|v| v.as_deref()));
        for col in [
            Arc::new(views) as arrow::array::ArrayRef,
            Arc::new(plain) as arrow::array::ArrayRef,
        ] {
            let dt = col.data_type().clone();
            let b = RecordBatch::try_new(
                Arc::new(Schema::new(vec![Field::new("s", dt, true)])),
                vec![col],
            )
            .unwrap();
            assert_eq!(classify(&b, "s", class).unwrap(), expect);
        }
    }

    /// Dense ids (placed by table), sparse ones (sorted) and repeated ones (sorted, every
    /// position kept) all come out in ascending id order.
    #[test]
    fn id_order_puts_ids_in_ascending_order() {
        let mut rng = trent_stats::rng::Rng::stream(17, 0);
        let mut next = move || rng.next_u64();
        let dense: Vec<i64> = {
            let mut v: Vec<i64> = (0..5_000).filter(|i| i % 3 != 1).map(|i| i - 40).collect();
            for i in (1..v.len()).rev() {
                v.swap(i, next() as usize % (i + 1));
            }
            v
        };
        let sparse: Vec<i64> = (0..3_000)
            .map(|_| (next() % 1_000_000_000) as i64)
            .collect();
        let mut repeated = dense.clone();
        repeated.extend_from_slice(&dense[..10]);
        for ids in [dense, sparse, repeated, vec![], vec![7]] {
            let order = id_order(&ids);
            assert_eq!(order.len(), ids.len());
            let got: Vec<i64> = order.iter().map(|&i| ids[i as usize]).collect();
            let mut want = ids.clone();
            want.sort_unstable();
            assert_eq!(got, want);
        }
    }
}

#[cfg(test)]
mod scan_tests {
    use super::{pruning_scan, with_views};
    use arrow::array::{AsArray, RecordBatch};
    use arrow::datatypes::Int64Type;
    use datafusion::physical_plan::{ExecutionPlan, displayable};
    use datafusion::prelude::{ParquetReadOptions, SessionConfig, SessionContext};
    use std::sync::Arc;

    fn ids(batches: &[RecordBatch]) -> Vec<i64> {
        let mut v: Vec<i64> = batches
            .iter()
            .flat_map(|b| {
                let c = b.column_by_name("person_id").expect("person_id");
                c.as_primitive::<Int64Type>().values().to_vec()
            })
            .collect();
        v.sort();
        v
    }

    /// The activity scan prunes by its window and filters no row: a file wholly outside
    /// the window is skipped by its statistics, a file that straddles it gives all its
    /// rows (the fold checks each row's dates itself), and the plan holds no filter.
    /// The same table read with the reader's row filter gives only the rows inside.
    #[tokio::test]
    async fn the_activity_scan_prunes_by_statistics_and_filters_no_row() {
        let dir = tempfile::tempdir().unwrap();
        let t = dir.path().join("activity");
        std::fs::create_dir(&t).unwrap();
        let write = SessionContext::new();
        for (file, rows) in [
            // straddles the window: one row before it, one inside
            (
                "a",
                "(1, TIMESTAMP '2015-01-01 00:00:00'), (2, TIMESTAMP '2017-01-01 00:00:00')",
            ),
            // wholly before it
            (
                "b",
                "(3, TIMESTAMP '2014-01-01 00:00:00'), (4, TIMESTAMP '2014-06-01 00:00:00')",
            ),
        ] {
            let sql = format!(
                "COPY (SELECT column1 AS person_id, column2 AS start_ts FROM (VALUES {rows})) \
                 TO '{}/{file}.parquet' STORED AS PARQUET",
                t.display()
            );
            write.sql(&sql).await.unwrap().collect().await.unwrap();
        }
        // as a lake session is: filters pushed into the Parquet reader
        let mut config = SessionConfig::new();
        config.options_mut().execution.parquet.pushdown_filters = true;
        let ctx = SessionContext::new_with_config(config);
        ctx.register_parquet(
            "activity",
            format!("{}/", t.display()),
            ParquetReadOptions::default(),
        )
        .await
        .unwrap();
        let window = "WHERE start_ts >= TIMESTAMP '2016-01-01 00:00:00'";

        let scan = with_views(&ctx, "activity", false).await.unwrap();
        let plan = pruning_scan(
            &ctx,
            &format!("SELECT person_id, start_ts FROM {scan} {window}"),
        )
        .await
        .unwrap();
        let shown = displayable(plan.as_ref()).indent(true).to_string();
        assert!(!shown.contains("FilterExec"), "{shown}");
        assert!(shown.contains("pruning_predicate"), "{shown}");
        let got =
            datafusion::physical_plan::collect(plan as Arc<dyn ExecutionPlan>, ctx.task_ctx())
                .await
                .unwrap();
        assert_eq!(ids(&got), [1, 2]);

        let filtered = with_views(&ctx, "activity", true).await.unwrap();
        let got = ctx
            .sql(&format!(
                "SELECT person_id, start_ts FROM {filtered} {window}"
            ))
            .await
            .unwrap()
            .collect()
            .await
            .unwrap();
        assert_eq!(ids(&got), [2]);
    }
}
