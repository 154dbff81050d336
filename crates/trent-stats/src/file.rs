//! `trent stats METHOD`: the public-health methods on an analyst's own CSV file, so a
//! council or ICB analyst can get PHE-method figures for their data without R.
//!
//! One entry point, `run_file`, reads the file, groups rows, calls `crate::methods` /
//! `crate::spc` per group and returns a table the caller writes as CSV. Column names are
//! options with defaults (`FileOptions::default()`); `docs/methods.md` tabulates them so
//! the CLI mirrors them. Every problem in the file is an error naming the file, the line
//! (the header is line 1) and the column — never a panic, never a silently dropped row.

use crate::methods::{self, Estimate, MethodError, SiiValueType};
use crate::spc::{self, Direction, SpcOptions};
use crate::stats::ESP2013;
use std::collections::HashMap;
use std::path::PathBuf;

/// The methods `run_file` knows.
pub const METHODS: [&str; 9] = [
    "dsr",
    "isr",
    "proportion",
    "rate",
    "le",
    "hle",
    "sii",
    "funnel",
    "spc",
];

/// Options for `run_file`; every field is a CLI flag of the same name (`--numerator-col`
/// for `numerator_col`, …). `Default` gives the documented defaults.
#[derive(Debug, Clone, PartialEq)]
pub struct FileOptions {
    /// Input CSV (header row required).
    pub input: PathBuf,
    /// Output CSV; `None` leaves writing to the caller (`FileReport::to_csv`).
    pub output: Option<PathBuf>,
    /// Columns whose values identify a group (empty: see `docs/methods.md`).
    pub group_cols: Vec<String>,
    /// Numerator: events, deaths, observed count (default `numerator`).
    pub numerator_col: String,
    /// Denominator: population, person-years, or expected count for a ratio funnel
    /// (default `denominator`).
    pub denominator_col: String,
    /// Age band label or start age (default `age`).
    pub age_col: String,
    /// Standard population weight per band for `dsr` (default none: ESP2013 by age).
    pub standard_col: Option<String>,
    /// Reference events per band for `isr` (default `ref_numerator`).
    pub ref_numerator_col: String,
    /// Reference population per band for `isr` (default `ref_denominator`).
    pub ref_denominator_col: String,
    /// Prevalence of good health (0–1) for `hle` (default `prevalence`).
    pub prevalence_col: String,
    /// Survey sample size behind the prevalence for `hle` (default `sample_size`).
    pub sample_size_col: String,
    /// Quantile (deprivation decile/quintile number) for `sii` (default `quantile`).
    pub quantile_col: String,
    /// Value for `sii` and `spc` (default `value`).
    pub value_col: String,
    /// Standard error for `sii` (default none: from `lower_col`/`upper_col`).
    pub se_col: Option<String>,
    /// Lower 95% limit for `sii` (default `lower`).
    pub lower_col: String,
    /// Upper 95% limit for `sii` (default `upper`).
    pub upper_col: String,
    /// Time period for `spc`, sorted numerically if all numbers, else as text (default
    /// `period`).
    pub period_col: String,
    /// Confidence level as a fraction: 0.95 or 0.998 (default 0.95).
    pub confidence: f64,
    /// Multiplier (default: 1 for proportion, sii and ratio/proportion funnels; 100,000
    /// for rate, dsr and rate funnels; 100 for isr). 100 turns a proportion into a
    /// percentage.
    pub multiplier: Option<f64>,
    /// `funnel`: proportion | ratio | rate (default proportion).
    pub funnel_type: String,
    /// `sii`: normal | rate | proportion (default normal).
    pub value_type: String,
    /// `sii` simulation repetitions (default 100,000).
    pub repetitions: usize,
    /// `sii` simulation seed (default 1).
    pub seed: u64,
    /// `spc`: increase | decrease | neutral (default increase).
    pub polarity: String,
    /// `spc` target for the assurance icon.
    pub target: Option<f64>,
    /// `spc` periods at which a new segment starts.
    pub rebase: Vec<String>,
    /// `spc`: screen large moving ranges (default true).
    pub screen_outliers: bool,
}

impl Default for FileOptions {
    fn default() -> Self {
        FileOptions {
            input: PathBuf::new(),
            output: None,
            group_cols: Vec::new(),
            numerator_col: "numerator".into(),
            denominator_col: "denominator".into(),
            age_col: "age".into(),
            standard_col: None,
            ref_numerator_col: "ref_numerator".into(),
            ref_denominator_col: "ref_denominator".into(),
            prevalence_col: "prevalence".into(),
            sample_size_col: "sample_size".into(),
            quantile_col: "quantile".into(),
            value_col: "value".into(),
            se_col: None,
            lower_col: "lower".into(),
            upper_col: "upper".into(),
            period_col: "period".into(),
            confidence: 0.95,
            multiplier: None,
            funnel_type: "proportion".into(),
            value_type: "normal".into(),
            repetitions: 100_000,
            seed: 1,
            polarity: "increase".into(),
            target: None,
            rebase: Vec::new(),
            screen_outliers: true,
        }
    }
}

/// The result table.
#[derive(Debug, Clone, PartialEq)]
pub struct FileReport {
    /// Column names.
    pub header: Vec<String>,
    /// Rows of cells (numbers in shortest round-trip form; empty where suppressed).
    pub rows: Vec<Vec<String>>,
    /// Data rows read.
    pub input_rows: usize,
}

impl FileReport {
    /// The table as CSV text.
    pub fn to_csv(&self) -> Result<String, MethodError> {
        let mut w = csv::Writer::from_writer(Vec::new());
        let io = |e: csv::Error| MethodError::Io {
            file: "<output>".into(),
            message: e.to_string(),
        };
        w.write_record(&self.header).map_err(io)?;
        for r in &self.rows {
            w.write_record(r).map_err(io)?;
        }
        let bytes = w.into_inner().map_err(|e| MethodError::Io {
            file: "<output>".into(),
            message: e.to_string(),
        })?;
        String::from_utf8(bytes).map_err(|e| MethodError::Io {
            file: "<output>".into(),
            message: e.to_string(),
        })
    }
}

/// Run `method` (one of `METHODS`) on `opts.input`, writing `opts.output` if set.
pub fn run_file(method: &str, opts: &FileOptions) -> Result<FileReport, MethodError> {
    if !(opts.confidence > 0.0 && opts.confidence < 1.0) {
        return Err(MethodError::Invalid(format!(
            "confidence {} must be a fraction (0.95 or 0.998); for 95 or 99.8 use parse_confidence",
            opts.confidence
        )));
    }
    let table = Table::read(opts)?;
    let report = match method {
        "proportion" | "rate" => crude(method, &table, opts)?,
        "dsr" => dsr(&table, opts)?,
        "isr" => isr(&table, opts)?,
        "le" | "hle" => le(method == "hle", &table, opts)?,
        "sii" => sii(&table, opts)?,
        "funnel" => funnel(&table, opts)?,
        "spc" => spc_chart(&table, opts)?,
        other => {
            return Err(MethodError::Invalid(format!(
                "unknown method '{other}': expected one of {}",
                METHODS.join(", ")
            )));
        }
    };
    if let Some(out) = &opts.output {
        let text = report.to_csv()?;
        std::fs::write(out, text).map_err(|e| MethodError::Io {
            file: out.display().to_string(),
            message: e.to_string(),
        })?;
    }
    Ok(report)
}

/// Parse a confidence level given as 95 / 99.8 or 0.95 / 0.998.
pub fn parse_confidence(s: &str) -> Result<f64, MethodError> {
    let v: f64 = s
        .trim()
        .trim_end_matches('%')
        .parse()
        .map_err(|_| MethodError::Invalid(format!("confidence '{s}' is not a number")))?;
    let c = if v > 1.0 { v / 100.0 } else { v };
    if !(c > 0.0 && c < 1.0) {
        return Err(MethodError::Invalid(format!(
            "confidence '{s}' must be between 0 and 100%"
        )));
    }
    Ok(c)
}

// ---------------------------------------------------------------------------------

/// A group: its key cells and its row indices.
type Group = (Vec<String>, Vec<usize>);

struct Table {
    file: String,
    header: Vec<String>,
    cols: HashMap<String, usize>,
    rows: Vec<csv::StringRecord>,
    lines: Vec<u64>,
}

impl Table {
    fn read(opts: &FileOptions) -> Result<Table, MethodError> {
        let file = opts.input.display().to_string();
        let mut rdr = csv::ReaderBuilder::new()
            .trim(csv::Trim::All)
            .from_path(&opts.input)
            .map_err(|e| MethodError::Io {
                file: file.clone(),
                message: e.to_string(),
            })?;
        let header: Vec<String> = rdr
            .headers()
            .map_err(|e| MethodError::Input {
                file: file.clone(),
                line: Some(1),
                column: None,
                message: e.to_string(),
            })?
            .iter()
            .map(str::to_string)
            .collect();
        let cols = header
            .iter()
            .enumerate()
            .map(|(i, h)| (h.clone(), i))
            .collect();
        let mut rows = Vec::new();
        let mut lines = Vec::new();
        for rec in rdr.records() {
            let rec = rec.map_err(|e| MethodError::Input {
                file: file.clone(),
                line: e.position().map(|p| p.line()),
                column: None,
                message: e.to_string(),
            })?;
            lines.push(rec.position().map(|p| p.line()).unwrap_or(0));
            rows.push(rec);
        }
        if rows.is_empty() {
            return Err(MethodError::Input {
                file,
                line: None,
                column: None,
                message: "no data rows".into(),
            });
        }
        Ok(Table {
            file,
            header,
            cols,
            rows,
            lines,
        })
    }

    fn err(&self, row: Option<usize>, col: Option<&str>, msg: impl Into<String>) -> MethodError {
        MethodError::Input {
            file: self.file.clone(),
            line: row.map(|r| self.lines[r]),
            column: col.map(str::to_string),
            message: msg.into(),
        }
    }

    fn col(&self, name: &str) -> Result<usize, MethodError> {
        self.cols.get(name).copied().ok_or_else(|| {
            self.err(
                None,
                Some(name),
                format!(
                    "no such column (the header has: {})",
                    self.header.join(", ")
                ),
            )
        })
    }

    fn text(&self, row: usize, col: usize) -> &str {
        self.rows[row].get(col).unwrap_or("")
    }

    fn num(&self, row: usize, col: usize) -> Result<f64, MethodError> {
        let s = self.text(row, col);
        let name = &self.header[col];
        if s.is_empty() {
            return Err(self.err(Some(row), Some(name), "empty value"));
        }
        let v: f64 = s
            .parse()
            .map_err(|_| self.err(Some(row), Some(name), format!("'{s}' is not a number")))?;
        if !v.is_finite() {
            return Err(self.err(Some(row), Some(name), format!("'{s}' is not finite")));
        }
        Ok(v)
    }

    fn count(&self, row: usize, col: usize) -> Result<f64, MethodError> {
        let v = self.num(row, col)?;
        if v < 0.0 {
            return Err(self.err(
                Some(row),
                Some(&self.header[col]),
                format!("{v} is negative: counts cannot be"),
            ));
        }
        Ok(v)
    }

    fn positive(&self, row: usize, col: usize) -> Result<f64, MethodError> {
        let v = self.count(row, col)?;
        if v == 0.0 {
            return Err(self.err(
                Some(row),
                Some(&self.header[col]),
                "denominator is 0: the statistic is undefined",
            ));
        }
        Ok(v)
    }

    /// Groups in first-appearance order: (key cells, row indices). No group columns:
    /// one group of every row if `whole`, else one group per row.
    fn groups(&self, group_cols: &[String], whole: bool) -> Result<Vec<Group>, MethodError> {
        let idx: Vec<usize> = group_cols
            .iter()
            .map(|c| self.col(c))
            .collect::<Result<_, _>>()?;
        if idx.is_empty() {
            return Ok(if whole {
                vec![(Vec::new(), (0..self.rows.len()).collect())]
            } else {
                (0..self.rows.len())
                    .map(|r| (vec![self.lines[r].to_string()], vec![r]))
                    .collect()
            });
        }
        let mut order: Vec<Group> = Vec::new();
        let mut at: HashMap<Vec<String>, usize> = HashMap::new();
        for r in 0..self.rows.len() {
            let key: Vec<String> = idx.iter().map(|c| self.text(r, *c).to_string()).collect();
            match at.get(&key) {
                Some(i) => order[*i].1.push(r),
                None => {
                    at.insert(key.clone(), order.len());
                    order.push((key, vec![r]));
                }
            }
        }
        Ok(order)
    }

    fn group_header(&self, opts: &FileOptions) -> Vec<String> {
        if opts.group_cols.is_empty() {
            Vec::new()
        } else {
            opts.group_cols.clone()
        }
    }

    /// A method's error for a group, pointing at the group's first line.
    fn group_err(&self, key: &[String], rows: &[usize], e: MethodError) -> MethodError {
        let what = if key.is_empty() {
            String::new()
        } else {
            format!("group '{}': ", key.join(", "))
        };
        self.err(rows.first().copied(), None, format!("{what}{e}"))
    }
}

fn f(x: f64) -> String {
    if x.is_nan() {
        String::new()
    } else {
        format!("{x}")
    }
}

fn est(e: &Estimate) -> [String; 3] {
    [f(e.value), f(e.lower), f(e.upper)]
}

fn conf_label(c: f64) -> String {
    format!("{}%", (c * 1000.0).round() / 10.0)
}

fn crude(method: &str, t: &Table, o: &FileOptions) -> Result<FileReport, MethodError> {
    let nc = t.col(&o.numerator_col)?;
    let dc = t.col(&o.denominator_col)?;
    let mult = o
        .multiplier
        .unwrap_or(if method == "rate" { 100_000.0 } else { 1.0 });
    let mut header = if o.group_cols.is_empty() {
        vec!["line".to_string()]
    } else {
        t.group_header(o)
    };
    header.extend(
        [
            "numerator",
            "denominator",
            "value",
            "lower",
            "upper",
            "confidence",
            "method",
        ]
        .map(String::from),
    );
    let mut rows = Vec::new();
    for (key, idx) in t.groups(&o.group_cols, false)? {
        let (mut num, mut den) = (0.0, 0.0);
        for &r in &idx {
            num += t.count(r, nc)?;
            den += t.count(r, dc)?;
        }
        if den == 0.0 {
            return Err(t.err(
                Some(idx[0]),
                Some(&o.denominator_col),
                "denominator is 0: the statistic is undefined",
            ));
        }
        let (e, m) = if method == "rate" {
            let e = methods::crude_rate(num, den, mult, o.confidence);
            (e, if num < 10.0 { "Exact" } else { "Byar" })
        } else {
            (methods::proportion(num, den, o.confidence, mult), "Wilson")
        };
        let e = e.map_err(|e| t.group_err(&key, &idx, e))?;
        let mut row = key;
        row.extend([f(num), f(den)]);
        row.extend(est(&e));
        row.extend([conf_label(o.confidence), m.to_string()]);
        rows.push(row);
    }
    Ok(FileReport {
        header,
        rows,
        input_rows: t.rows.len(),
    })
}

/// ESP2013 band of an age label: its first whole number, /5 (0-4 → 0 … 90+ → 18).
fn esp_band(t: &Table, r: usize, c: usize) -> Result<usize, MethodError> {
    let age = first_number(t, r, c)?;
    if age % 5 != 0 || age > 90 {
        return Err(t.err(
            Some(r),
            Some(&t.header[c]),
            format!(
                "age band '{}' is not one of ESP2013's 0-4 … 85-89, 90+ (or give --standard-col)",
                t.text(r, c)
            ),
        ));
    }
    Ok(age as usize / 5)
}

fn first_number(t: &Table, r: usize, c: usize) -> Result<u32, MethodError> {
    let s = t.text(r, c);
    let digits: String = s
        .chars()
        .skip_while(|ch| !ch.is_ascii_digit())
        .take_while(|ch| ch.is_ascii_digit())
        .collect();
    digits.parse().map_err(|_| {
        t.err(
            Some(r),
            Some(&t.header[c]),
            format!("age '{s}' has no start age"),
        )
    })
}

fn dsr(t: &Table, o: &FileOptions) -> Result<FileReport, MethodError> {
    let nc = t.col(&o.numerator_col)?;
    let dc = t.col(&o.denominator_col)?;
    let sc = o.standard_col.as_ref().map(|c| t.col(c)).transpose()?;
    let ac = if sc.is_none() {
        Some(t.col(&o.age_col)?)
    } else {
        None
    };
    let mult = o.multiplier.unwrap_or(100_000.0);
    let mut header = t.group_header(o);
    header.extend(
        [
            "total_count",
            "total_pop",
            "value",
            "lower",
            "upper",
            "confidence",
            "note",
        ]
        .map(String::from),
    );
    let mut rows = Vec::new();
    let (mut ev, mut pop, mut w) = (Vec::new(), Vec::new(), Vec::new());
    for (key, idx) in t.groups(&o.group_cols, true)? {
        ev.clear();
        pop.clear();
        w.clear();
        if let Some(ac) = ac {
            // ESP2013: exactly one row per band
            let mut seen = [None; 19];
            for &r in &idx {
                let b = esp_band(t, r, ac)?;
                if let Some(prev) = seen[b] {
                    return Err(t.err(
                        Some(r),
                        Some(&o.age_col),
                        format!(
                            "age band '{}' repeats line {} in this group",
                            t.text(r, ac),
                            t.lines[prev]
                        ),
                    ));
                }
                seen[b] = Some(r);
            }
            for (b, s) in seen.iter().enumerate() {
                let Some(r) = s else {
                    return Err(t.group_err(
                        &key,
                        &idx,
                        MethodError::Invalid(format!(
                            "ESP2013 band starting at age {} is missing (19 bands needed)",
                            b * 5
                        )),
                    ));
                };
                ev.push(t.count(*r, nc)?);
                pop.push(t.positive(*r, dc)?);
                w.push(ESP2013[b]);
            }
        } else if let Some(sc) = sc {
            for &r in &idx {
                ev.push(t.count(r, nc)?);
                pop.push(t.positive(r, dc)?);
                w.push(t.count(r, sc)?);
            }
        }
        let d = methods::dsr(&ev, &pop, &w, mult, o.confidence)
            .map_err(|e| t.group_err(&key, &idx, e))?;
        let mut row = key;
        row.extend([f(d.total_count), f(d.total_pop)]);
        row.extend(est(&d.estimate));
        row.push(conf_label(o.confidence));
        row.push(if d.estimate.value.is_nan() {
            "fewer than 10 events: PHE does not publish".into()
        } else {
            String::new()
        });
        rows.push(row);
    }
    Ok(FileReport {
        header,
        rows,
        input_rows: t.rows.len(),
    })
}

fn isr(t: &Table, o: &FileOptions) -> Result<FileReport, MethodError> {
    let nc = t.col(&o.numerator_col)?;
    let dc = t.col(&o.denominator_col)?;
    let rn = t.col(&o.ref_numerator_col)?;
    let rd = t.col(&o.ref_denominator_col)?;
    let mult = o.multiplier.unwrap_or(100.0);
    let mut header = t.group_header(o);
    header.extend(
        [
            "observed",
            "expected",
            "value",
            "lower",
            "upper",
            "confidence",
            "method",
        ]
        .map(String::from),
    );
    let mut rows = Vec::new();
    for (key, idx) in t.groups(&o.group_cols, true)? {
        let (mut obs, mut exp) = (0.0, 0.0);
        for &r in &idx {
            obs += t.count(r, nc)?;
            exp += t.count(r, rn)? / t.positive(r, rd)? * t.count(r, dc)?;
        }
        let e =
            methods::isr(obs, exp, mult, o.confidence).map_err(|e| t.group_err(&key, &idx, e))?;
        let mut row = key;
        row.extend([f(obs), f(exp)]);
        row.extend(est(&e));
        row.push(conf_label(o.confidence));
        row.push(if obs < 10.0 { "Exact" } else { "Byar" }.into());
        rows.push(row);
    }
    Ok(FileReport {
        header,
        rows,
        input_rows: t.rows.len(),
    })
}

fn le(healthy: bool, t: &Table, o: &FileOptions) -> Result<FileReport, MethodError> {
    let nc = t.col(&o.numerator_col)?;
    let dc = t.col(&o.denominator_col)?;
    let ac = t.col(&o.age_col)?;
    let (pc, ssc) = if healthy {
        (
            Some(t.col(&o.prevalence_col)?),
            Some(t.col(&o.sample_size_col)?),
        )
    } else {
        (None, None)
    };
    let mut header = t.group_header(o);
    header.extend(["age", "value", "lower", "upper", "se", "confidence", "note"].map(String::from));
    let mut rows = Vec::new();
    for (key, mut idx) in t.groups(&o.group_cols, true)? {
        let mut ages = Vec::with_capacity(idx.len());
        for &r in &idx {
            ages.push((first_number(t, r, ac)?, r));
        }
        ages.sort_unstable();
        for w in ages.windows(2) {
            if w[0].0 == w[1].0 {
                return Err(t.err(
                    Some(w[1].1),
                    Some(&o.age_col),
                    format!(
                        "age band starting at {} repeats line {} in this group",
                        w[1].0, t.lines[w[0].1]
                    ),
                ));
            }
        }
        idx = ages.iter().map(|a| a.1).collect();
        let start: Vec<f64> = ages.iter().map(|a| a.0 as f64).collect();
        let mut d = Vec::with_capacity(idx.len());
        let mut p = Vec::with_capacity(idx.len());
        for &r in &idx {
            d.push(t.count(r, nc)?);
            p.push(t.positive(r, dc)?);
        }
        let res = if let (Some(pc), Some(ssc)) = (pc, ssc) {
            let mut prev = Vec::with_capacity(idx.len());
            let mut n = Vec::with_capacity(idx.len());
            for &r in &idx {
                prev.push(t.num(r, pc)?);
                n.push(t.count(r, ssc)?);
            }
            methods::healthy_life_expectancy(&start, &d, &p, &prev, &n, o.confidence)
        } else {
            methods::life_expectancy(&start, &d, &p, o.confidence)
        }
        .map_err(|e| t.group_err(&key, &idx, e))?;
        for (x, r) in res.iter().zip(&idx) {
            let mut row = key.clone();
            row.push(t.text(*r, ac).to_string());
            row.extend(est(&x.estimate));
            row.push(f(x.se));
            row.push(conf_label(o.confidence));
            row.push(x.note.unwrap_or("").to_string());
            rows.push(row);
        }
    }
    Ok(FileReport {
        header,
        rows,
        input_rows: t.rows.len(),
    })
}

fn sii(t: &Table, o: &FileOptions) -> Result<FileReport, MethodError> {
    let qc = t.col(&o.quantile_col)?;
    let dc = t.col(&o.denominator_col)?;
    let vc = t.col(&o.value_col)?;
    let vt = match o.value_type.as_str() {
        "normal" => SiiValueType::Normal,
        "rate" => SiiValueType::Rate,
        "proportion" => SiiValueType::Proportion,
        other => {
            return Err(MethodError::Invalid(format!(
                "value type '{other}': expected normal, rate or proportion"
            )));
        }
    };
    let se_c = o.se_col.as_ref().map(|c| t.col(c)).transpose()?;
    let lu = if se_c.is_none() {
        Some((t.col(&o.lower_col)?, t.col(&o.upper_col)?))
    } else {
        None
    };
    let mult = o.multiplier.unwrap_or(1.0);
    let mut header = t.group_header(o);
    header.extend(
        [
            "quantiles",
            "sii",
            "sii_lower",
            "sii_upper",
            "rii",
            "rii_lower",
            "rii_upper",
            "confidence",
            "method",
        ]
        .map(String::from),
    );
    let mut rows = Vec::new();
    for (key, idx) in t.groups(&o.group_cols, true)? {
        let mut q = Vec::with_capacity(idx.len());
        for &r in &idx {
            q.push((t.num(r, qc)?, r));
        }
        q.sort_by(|a, b| a.0.total_cmp(&b.0));
        for w in q.windows(2) {
            if w[0].0 == w[1].0 {
                return Err(t.err(
                    Some(w[1].1),
                    Some(&o.quantile_col),
                    format!("quantile {} repeats line {}", w[1].0, t.lines[w[0].1]),
                ));
            }
        }
        let (mut pop, mut val, mut se) = (Vec::new(), Vec::new(), Vec::new());
        for &(_, r) in &q {
            pop.push(t.positive(r, dc)?);
            let v = t.num(r, vc)?;
            val.push(v);
            se.push(match (se_c, lu) {
                (Some(c), _) => t.count(r, c)?,
                (None, Some((lc, uc))) => {
                    let (l, u) = (t.num(r, lc)?, t.num(r, uc)?);
                    if l > u {
                        return Err(t.err(
                            Some(r),
                            Some(&o.lower_col),
                            format!("lower limit {l} exceeds upper limit {u}"),
                        ));
                    }
                    methods::sii_se_from_limits(l, u, vt)
                }
                _ => unreachable!("either a standard error or limits column is resolved"),
            });
        }
        let s = methods::sii(
            &pop,
            &val,
            &se,
            vt,
            mult,
            o.confidence,
            o.repetitions,
            o.seed,
        )
        .map_err(|e| t.group_err(&key, &idx, e))?;
        let mut row = key;
        row.push(q.len().to_string());
        row.extend(est(&s.sii));
        row.extend(est(&s.rii));
        row.push(conf_label(o.confidence));
        row.push(format!(
            "simulation {} reps, seed {}",
            o.repetitions, o.seed
        ));
        rows.push(row);
    }
    Ok(FileReport {
        header,
        rows,
        input_rows: t.rows.len(),
    })
}

fn funnel(t: &Table, o: &FileOptions) -> Result<FileReport, MethodError> {
    let nc = t.col(&o.numerator_col)?;
    let dc = t.col(&o.denominator_col)?;
    let kind = o.funnel_type.as_str();
    let mult = o.multiplier.unwrap_or(match kind {
        "rate" => 100_000.0,
        _ => 1.0,
    });
    if !matches!(kind, "proportion" | "ratio" | "rate") {
        return Err(MethodError::Invalid(format!(
            "funnel type '{kind}': expected proportion, ratio or rate"
        )));
    }
    let mut units = Vec::new();
    let (mut sn, mut sd) = (0.0, 0.0);
    for (key, idx) in t.groups(&o.group_cols, false)? {
        let (mut num, mut den) = (0.0, 0.0);
        for &r in &idx {
            num += t.count(r, nc)?;
            den += t.positive(r, dc)?;
        }
        if kind == "proportion" && num > den {
            return Err(t.err(
                Some(idx[0]),
                Some(&o.numerator_col),
                format!("numerator {num} exceeds denominator {den}: not a proportion"),
            ));
        }
        sn += num;
        sd += den;
        units.push((key, num, den));
    }
    let avg = sn / sd;
    let mut header = if o.group_cols.is_empty() {
        vec!["line".to_string()]
    } else {
        t.group_header(o)
    };
    header.extend(
        [
            "numerator",
            "denominator",
            "value",
            "average",
            "lower_95",
            "upper_95",
            "lower_99_8",
            "upper_99_8",
            "significance",
        ]
        .map(String::from),
    );
    let mut rows = Vec::new();
    for (key, num, den) in units {
        let (value, base, l2, u2, l3, u3, sig) = match kind {
            "proportion" => {
                let (l2, u2) = methods::funnel_proportion_limits(den, avg, 0.95);
                let (l3, u3) = methods::funnel_proportion_limits(den, avg, 0.998);
                let s = methods::funnel_proportion_significance(num, den, avg);
                (num / den, avg, l2, u2, l3, u3, s)
            }
            "ratio" => {
                let (l2, u2) = methods::funnel_poisson_limits(den, 0.95);
                let (l3, u3) = methods::funnel_poisson_limits(den, 0.998);
                let s = methods::funnel_poisson_significance(num, den)
                    .map_err(|e| t.group_err(&key, &[], e))?;
                (num / den, 1.0, l2, u2, l3, u3, s)
            }
            _ => {
                let e = avg * den;
                let (l2, u2) = methods::funnel_poisson_limits(e, 0.95);
                let (l3, u3) = methods::funnel_poisson_limits(e, 0.998);
                let s = methods::funnel_poisson_significance(num, e)
                    .map_err(|e| t.group_err(&key, &[], e))?;
                (num / den, avg, l2 * avg, u2 * avg, l3 * avg, u3 * avg, s)
            }
        };
        let mut row = key;
        row.extend([f(num), f(den)]);
        for x in [value, base, l2, u2, l3, u3] {
            row.push(f(x * mult));
        }
        row.push(sig.label().to_string());
        rows.push(row);
    }
    Ok(FileReport {
        header,
        rows,
        input_rows: t.rows.len(),
    })
}

fn spc_chart(t: &Table, o: &FileOptions) -> Result<FileReport, MethodError> {
    let pc = t.col(&o.period_col)?;
    let vc = t.col(&o.value_col)?;
    let direction = match o.polarity.as_str() {
        "increase" | "higher" => Direction::Increase,
        "decrease" | "lower" => Direction::Decrease,
        "neutral" | "neither" => Direction::Neutral,
        other => {
            return Err(MethodError::Invalid(format!(
                "polarity '{other}': expected increase, decrease or neutral"
            )));
        }
    };
    let opts = SpcOptions {
        direction,
        screen_outliers: o.screen_outliers,
        fix_after_n_points: None,
        target: o.target,
    };
    let mut header = t.group_header(o);
    header.extend(
        [
            "period",
            "value",
            "segment",
            "mean",
            "lpl",
            "upl",
            "special_cause",
            "variation",
            "chart_variation",
            "assurance",
        ]
        .map(String::from),
    );
    let mut rows = Vec::new();
    let mut rebase_found = vec![false; o.rebase.len()];
    for (key, mut idx) in t.groups(&o.group_cols, true)? {
        let numeric = idx.iter().all(|r| t.text(*r, pc).parse::<f64>().is_ok());
        if numeric {
            idx.sort_by(|a, b| {
                let x: f64 = t.text(*a, pc).parse().unwrap_or(0.0);
                let y: f64 = t.text(*b, pc).parse().unwrap_or(0.0);
                x.total_cmp(&y)
            });
        } else {
            idx.sort_by(|a, b| t.text(*a, pc).cmp(t.text(*b, pc)));
        }
        for w in idx.windows(2) {
            if t.text(w[0], pc) == t.text(w[1], pc) {
                return Err(t.err(
                    Some(w[1]),
                    Some(&o.period_col),
                    format!(
                        "period '{}' repeats line {}",
                        t.text(w[1], pc),
                        t.lines[w[0]]
                    ),
                ));
            }
        }
        let mut values = Vec::with_capacity(idx.len());
        for &r in &idx {
            values.push(t.num(r, vc)?);
        }
        let mut rebase = Vec::new();
        for (k, p) in o.rebase.iter().enumerate() {
            if let Some(i) = idx.iter().position(|r| t.text(*r, pc) == p) {
                rebase.push(i);
                rebase_found[k] = true;
            }
        }
        let chart = spc::xmr(&values, &rebase, &opts).map_err(|e| t.group_err(&key, &idx, e))?;
        for (pt, r) in chart.points.iter().zip(&idx) {
            let mut row = key.clone();
            row.push(t.text(*r, pc).to_string());
            row.extend([
                f(pt.value),
                pt.segment.to_string(),
                f(pt.mean),
                f(pt.lpl),
                f(pt.upl),
            ]);
            row.push(pt.special_cause.label().into());
            row.push(pt.variation.label().into());
            row.push(chart.variation.label().into());
            row.push(chart.assurance.map(|a| a.label()).unwrap_or("").into());
            rows.push(row);
        }
    }
    if let Some(k) = rebase_found.iter().position(|f| !f) {
        return Err(t.err(
            None,
            Some(&o.period_col),
            format!("rebase period '{}' is not in the file", o.rebase[k]),
        ));
    }
    Ok(FileReport {
        header,
        rows,
        input_rows: t.rows.len(),
    })
}
