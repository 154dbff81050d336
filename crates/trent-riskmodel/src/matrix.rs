//! The dense feature matrix every model trains on and scores.
//!
//! Column-major f32 because the lead builds it column by column from the lake and the
//! tree learner bins one column at a time; 1M people × 40 features is 160 MB. A column
//! can be shared with its maker ([`FeatureMatrix::add_shared_feature`]): a population's
//! features already held in f32 become a matrix without a copy. Missing
//! values are NaN (never a sentinel such as −1 or 0, which a model would take as data).
//! Group columns (segment, deprivation quintile, sex, age band, ethnicity) are not
//! features: they exist so evaluation can say for whom the model works.
//!
//! The CSV reader takes a self-describing header: a column named `name:num`, `name:bin`
//! or `name:cat` is a numeric, binary or categorical (integer codes) feature, and
//! `name:group` is a group column; a bare `name` is a feature whose kind is inferred
//! (binary if every value is 0, 1 or missing, otherwise numeric). Missing values are
//! empty cells, `NA`, `NaN` or `null`.

use std::sync::Arc;

use crate::{Error, Result};
use serde::{Deserialize, Serialize};

/// How a feature is to be treated.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum FeatureKind {
    /// A number on an ordered scale (age, count of admissions, eGFR).
    Numeric,
    /// 0 or 1 (has diabetes).
    Binary,
    /// Integer codes with no order (ethnic group code, practice code).
    Categorical,
}

impl FeatureKind {
    /// The header suffix the CSV reader uses for this kind.
    pub fn suffix(self) -> &'static str {
        match self {
            FeatureKind::Numeric => "num",
            FeatureKind::Binary => "bin",
            FeatureKind::Categorical => "cat",
        }
    }
}

/// A string-valued column used to break evaluation down by subgroup.
#[derive(Debug, Clone, PartialEq)]
pub struct GroupColumn {
    /// Column name (for example `deprivation_quintile`).
    pub name: String,
    /// Distinct values, in order of first appearance.
    pub levels: Vec<String>,
    /// Per row, the index into `levels`.
    pub codes: Vec<u32>,
}

impl GroupColumn {
    /// Build from one string per row.
    pub fn from_values<S: AsRef<str>>(name: &str, values: &[S]) -> GroupColumn {
        let mut levels: Vec<String> = Vec::new();
        let mut index = std::collections::HashMap::new();
        // the strings already seen, by address and length: group labels are usually a
        // handful of constants, so a row's label is found by two integer compares (the
        // same address and length is the same text) before any text is compared; labels
        // at a new address each (owned strings) stop the search after 256 misses
        let mut seen: Vec<(*const u8, usize, u32)> = Vec::new();
        let mut misses = 0;
        let codes = values
            .iter()
            .map(|v| {
                let v = v.as_ref();
                let at = (v.as_ptr(), v.len());
                if misses <= 256 {
                    if let Some(&(_, _, k)) = seen.iter().find(|s| (s.0, s.1) == at) {
                        return k;
                    }
                    misses += 1;
                }
                // a handful of levels (segments, bands, sexes): comparing with each is
                // cheaper than hashing the row's string; beyond that, look up by &str
                // (a String is made once a level, not once a row)
                let found = if levels.len() <= 16 {
                    levels.iter().position(|l| l == v).map(|k| k as u32)
                } else {
                    index.get(v).copied()
                };
                let k = found.unwrap_or_else(|| {
                    levels.push(v.to_string());
                    let k = (levels.len() - 1) as u32;
                    index.insert(v.to_string(), k);
                    k
                });
                if seen.len() < 32 && misses <= 256 {
                    seen.push((at.0, at.1, k));
                }
                k
            })
            .collect();
        GroupColumn {
            name: name.to_string(),
            levels,
            codes,
        }
    }
}

/// Features, labels, ids and group columns for one cohort at one index date.
#[derive(Debug, Clone, PartialEq)]
pub struct FeatureMatrix {
    names: Vec<String>,
    kinds: Vec<FeatureKind>,
    columns: Vec<Arc<Vec<f32>>>,
    ids: Vec<i64>,
    labels: Vec<u8>,
    groups: Vec<GroupColumn>,
}

impl FeatureMatrix {
    /// An empty matrix for these people and outcomes (labels must be 0 or 1).
    pub fn new(ids: Vec<i64>, labels: Vec<u8>) -> Result<FeatureMatrix> {
        if ids.len() != labels.len() {
            return Err(Error::Invalid(format!(
                "{} row ids but {} labels",
                ids.len(),
                labels.len()
            )));
        }
        if let Some(i) = labels.iter().position(|l| *l > 1) {
            return Err(Error::Invalid(format!(
                "label of row {i} (id {}) is {}, not 0 or 1",
                ids[i], labels[i]
            )));
        }
        Ok(FeatureMatrix {
            names: Vec::new(),
            kinds: Vec::new(),
            columns: Vec::new(),
            ids,
            labels,
            groups: Vec::new(),
        })
    }

    /// Add a feature column. Binary columns must hold only 0, 1 or NaN and categorical
    /// columns only integer codes or NaN; infinities are refused everywhere.
    pub fn add_feature(&mut self, name: &str, kind: FeatureKind, values: Vec<f32>) -> Result<()> {
        self.add_shared_feature(name, kind, Arc::new(values))
    }

    /// [`FeatureMatrix::add_feature`] for a column shared with its maker (checked the
    /// same way; never copied).
    pub fn add_shared_feature(
        &mut self,
        name: &str,
        kind: FeatureKind,
        values: Arc<Vec<f32>>,
    ) -> Result<()> {
        if values.len() != self.ids.len() {
            return Err(Error::Invalid(format!(
                "feature '{name}' has {} values for {} rows",
                values.len(),
                self.ids.len()
            )));
        }
        if self.names.iter().any(|n| n == name) || self.groups.iter().any(|g| g.name == name) {
            return Err(Error::Invalid(format!("feature '{name}' added twice")));
        }
        // one branch-free pass first (a population's matrix is 60 million values); the
        // message only for a column that fails it
        // (the kind fixed outside the loop, so each loop is the kind's own test)
        let all_valid = |k: FeatureKind| values.iter().fold(true, |ok, &v| ok & valid(v, k));
        let ok = match kind {
            FeatureKind::Numeric => all_valid(FeatureKind::Numeric),
            FeatureKind::Binary => all_valid(FeatureKind::Binary),
            FeatureKind::Categorical => all_valid(FeatureKind::Categorical),
        };
        if !ok {
            for (i, v) in values.iter().enumerate() {
                if let Some(why) = check_value(*v, kind) {
                    return Err(Error::Invalid(format!(
                        "feature '{name}', row {i} (id {}): {why}",
                        self.ids[i]
                    )));
                }
            }
        }
        self.names.push(name.to_string());
        self.kinds.push(kind);
        self.columns.push(values);
        Ok(())
    }

    /// Add a group column (one string per row).
    pub fn add_group<S: AsRef<str>>(&mut self, name: &str, values: &[S]) -> Result<()> {
        self.add_group_column(GroupColumn::from_values(name, values))
    }

    /// [`FeatureMatrix::add_group`] for a group column already coded (each code an index
    /// into its levels, checked here).
    pub fn add_group_column(&mut self, g: GroupColumn) -> Result<()> {
        if g.codes.len() != self.ids.len() {
            return Err(Error::Invalid(format!(
                "group column '{}' has {} values for {} rows",
                g.name,
                g.codes.len(),
                self.ids.len()
            )));
        }
        if self.names.contains(&g.name) || self.groups.iter().any(|x| x.name == g.name) {
            return Err(Error::Invalid(format!(
                "group column '{}' added twice",
                g.name
            )));
        }
        if let Some(c) = g.codes.iter().find(|&&c| c as usize >= g.levels.len()) {
            return Err(Error::Invalid(format!(
                "group column '{}' has code {c} for {} levels",
                g.name,
                g.levels.len()
            )));
        }
        self.groups.push(g);
        Ok(())
    }

    /// Number of rows (people).
    pub fn n_rows(&self) -> usize {
        self.ids.len()
    }

    /// Number of feature columns.
    pub fn n_features(&self) -> usize {
        self.names.len()
    }

    /// Feature names, in column order.
    pub fn names(&self) -> &[String] {
        &self.names
    }

    /// Feature kinds, in column order.
    pub fn kinds(&self) -> &[FeatureKind] {
        &self.kinds
    }

    /// One feature column.
    pub fn column(&self, j: usize) -> &[f32] {
        &self.columns[j]
    }

    /// The column index of a feature, if the matrix has it.
    pub fn index_of(&self, name: &str) -> Option<usize> {
        self.names.iter().position(|n| n == name)
    }

    /// Pseudonymous row ids.
    pub fn ids(&self) -> &[i64] {
        &self.ids
    }

    /// Outcomes (1 = emergency admission in the outcome window).
    pub fn labels(&self) -> &[u8] {
        &self.labels
    }

    /// Group columns for subgroup evaluation.
    pub fn groups(&self) -> &[GroupColumn] {
        &self.groups
    }

    /// The rows at `rows`, in that order (for the caller's own splits).
    pub fn select_rows(&self, rows: &[usize]) -> Result<FeatureMatrix> {
        if let Some(r) = rows.iter().find(|r| **r >= self.n_rows()) {
            return Err(Error::Invalid(format!(
                "row {r} selected from a matrix of {} rows",
                self.n_rows()
            )));
        }
        Ok(FeatureMatrix {
            names: self.names.clone(),
            kinds: self.kinds.clone(),
            columns: self
                .columns
                .iter()
                .map(|c| Arc::new(rows.iter().map(|r| c[*r]).collect()))
                .collect(),
            ids: rows.iter().map(|r| self.ids[*r]).collect(),
            labels: rows.iter().map(|r| self.labels[*r]).collect(),
            groups: self
                .groups
                .iter()
                .map(|g| GroupColumn {
                    name: g.name.clone(),
                    levels: g.levels.clone(),
                    codes: rows.iter().map(|r| g.codes[*r]).collect(),
                })
                .collect(),
        })
    }

    /// Read a CSV file with a header (see the module docs for the header suffixes).
    /// `id_col` holds integer ids and `label_col` 0/1 outcomes; every other column is a
    /// feature or (with `:group`) a group column.
    pub fn from_csv(
        path: impl AsRef<std::path::Path>,
        id_col: &str,
        label_col: &str,
    ) -> Result<FeatureMatrix> {
        let path = path.as_ref();
        let file = path.display().to_string();
        let input = |line: Option<u64>, column: Option<&str>, message: String| Error::Input {
            file: file.clone(),
            line,
            column: column.map(str::to_string),
            message,
        };
        let mut rdr = csv::ReaderBuilder::new()
            .has_headers(true)
            .from_path(path)
            .map_err(|e| match e.into_kind() {
                csv::ErrorKind::Io(source) => Error::Io {
                    file: file.clone(),
                    source,
                },
                other => input(None, None, format!("{other:?}")),
            })?;
        let header = rdr
            .headers()
            .map_err(|e| input(Some(1), None, e.to_string()))?
            .clone();
        enum Role {
            Id,
            Label,
            Feature(usize),
            Group(usize),
        }
        let mut roles = Vec::new();
        let mut feat_names: Vec<(String, Option<FeatureKind>)> = Vec::new();
        let mut group_names: Vec<String> = Vec::new();
        let (mut id_at, mut label_at) = (None, None);
        let mut seen = std::collections::HashSet::new();
        for (c, raw) in header.iter().enumerate() {
            let raw = raw.trim();
            let (name, suffix) = match raw.rsplit_once(':') {
                Some((n, s)) if ["num", "bin", "cat", "group"].contains(&s) => (n, Some(s)),
                _ => (raw, None),
            };
            if name.is_empty() {
                return Err(input(
                    Some(1),
                    None,
                    format!("column {} has no name", c + 1),
                ));
            }
            if !seen.insert(name.to_string()) {
                return Err(input(Some(1), Some(name), "column appears twice".into()));
            }
            if name == id_col {
                id_at = Some(c);
                roles.push(Role::Id);
            } else if name == label_col {
                label_at = Some(c);
                roles.push(Role::Label);
            } else if suffix == Some("group") {
                roles.push(Role::Group(group_names.len()));
                group_names.push(name.to_string());
            } else {
                let kind = match suffix {
                    Some("num") => Some(FeatureKind::Numeric),
                    Some("bin") => Some(FeatureKind::Binary),
                    Some("cat") => Some(FeatureKind::Categorical),
                    _ => None,
                };
                roles.push(Role::Feature(feat_names.len()));
                feat_names.push((name.to_string(), kind));
            }
        }
        if id_at.is_none() {
            return Err(input(
                Some(1),
                Some(id_col),
                "id column not in the header".into(),
            ));
        }
        if label_at.is_none() {
            return Err(input(
                Some(1),
                Some(label_col),
                "label column not in the header".into(),
            ));
        }
        let mut ids = Vec::new();
        let mut labels = Vec::new();
        let mut cols: Vec<Vec<f32>> = vec![Vec::new(); feat_names.len()];
        let mut gvals: Vec<Vec<String>> = vec![Vec::new(); group_names.len()];
        let mut rec = csv::StringRecord::new();
        loop {
            let more = rdr.read_record(&mut rec).map_err(|e| {
                let line = e.position().map(|p| p.line());
                input(line, None, e.to_string())
            })?;
            if !more {
                break;
            }
            let line = rec.position().map(|p| p.line()).unwrap_or(0);
            if rec.len() != roles.len() {
                return Err(input(
                    Some(line),
                    None,
                    format!("{} fields, the header has {}", rec.len(), roles.len()),
                ));
            }
            for (c, field) in rec.iter().enumerate() {
                let field = field.trim();
                match roles[c] {
                    Role::Id => ids.push(field.parse::<i64>().map_err(|_| {
                        input(
                            Some(line),
                            Some(id_col),
                            format!("id '{field}' is not an integer"),
                        )
                    })?),
                    Role::Label => labels.push(match field {
                        "0" => 0u8,
                        "1" => 1u8,
                        _ => {
                            return Err(input(
                                Some(line),
                                Some(label_col),
                                format!("label '{field}' is not 0 or 1"),
                            ));
                        }
                    }),
                    Role::Group(g) => gvals[g].push(field.to_string()),
                    Role::Feature(f) => {
                        let v = parse_value(field).ok_or_else(|| {
                            input(
                                Some(line),
                                Some(&feat_names[f].0),
                                format!(
                                    "'{field}' is not a number (use ':group' for text columns)"
                                ),
                            )
                        })?;
                        if let Some(kind) = feat_names[f].1
                            && let Some(why) = check_value(v, kind)
                        {
                            return Err(input(Some(line), Some(&feat_names[f].0), why));
                        }
                        if v.is_infinite() {
                            return Err(input(
                                Some(line),
                                Some(&feat_names[f].0),
                                "infinite value".into(),
                            ));
                        }
                        cols[f].push(v);
                    }
                }
            }
        }
        if ids.is_empty() {
            return Err(input(None, None, "no data rows".into()));
        }
        let mut m = FeatureMatrix::new(ids, labels)?;
        for ((name, kind), col) in feat_names.into_iter().zip(cols) {
            let kind = kind.unwrap_or_else(|| {
                if col.iter().all(|v| v.is_nan() || *v == 0.0 || *v == 1.0) {
                    FeatureKind::Binary
                } else {
                    FeatureKind::Numeric
                }
            });
            m.add_feature(&name, kind, col)?;
        }
        for (name, vals) in group_names.into_iter().zip(gvals) {
            m.add_group(&name, &vals)?;
        }
        Ok(m)
    }
}

fn parse_value(s: &str) -> Option<f32> {
    match s {
        "" | "NA" | "NaN" | "nan" | "null" | "NULL" => Some(f32::NAN),
        _ => s.parse::<f32>().ok().filter(|v| !v.is_nan()),
    }
}

/// Whether `v` is a valid value of this kind: NaN (missing) always; infinities never;
/// a binary 0 or 1; a categorical integer code exact in f32.
#[inline(always)]
fn valid(v: f32, kind: FeatureKind) -> bool {
    v.is_nan()
        | (!v.is_infinite()
            & match kind {
                FeatureKind::Numeric => true,
                FeatureKind::Binary => (v == 0.0) | (v == 1.0),
                // (a whole number by two conversions, not `fract`, a call into libm
                // without SSE4.1)
                FeatureKind::Categorical => (v.abs() < 16_777_216.0) & ((v as i32) as f32 == v),
            })
}

/// Why `v` is not a valid value of this kind, if it is not ([`valid`] says whether).
fn check_value(v: f32, kind: FeatureKind) -> Option<String> {
    if valid(v, kind) {
        return None;
    }
    if v.is_infinite() {
        return Some("infinite value".into());
    }
    match kind {
        FeatureKind::Numeric => None,
        FeatureKind::Binary => Some(format!("binary feature has value {v}, not 0 or 1")),
        FeatureKind::Categorical => Some(format!(
            "categorical feature has value {v}, not an integer code"
        )),
    }
}
