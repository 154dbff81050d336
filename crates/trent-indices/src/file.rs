//! `trent score INDEX`: the indices on an analyst's own CSV file of (id, code) rows, so a
//! PHM analyst can score a SUS extract without R or Python and get the published numbers.
//!
//! One entry point, `score_file`. Problems with the file (unreadable, missing column,
//! empty id, unknown code system, bad day count) are errors naming the file, the line
//! (the header is line 1) and the column. Malformed codes are not errors: they are
//! counted per id and in total, and the report's `Display` shows the first few as
//! `file:line`. Options mirror the CLI flags; `docs/indices.md` lists them.

use crate::batch::{Index, IndexConfig, PersonScore, score_rows};
use crate::charlson::{CharlsonMapping, CharlsonWeights};
use crate::cms::CmsWeights;
use crate::code::{CodeSystem, Event};
use std::fmt;
use std::path::{Path, PathBuf};

/// How many malformed-code examples the report keeps.
pub const MAX_EXAMPLES: usize = 5;

/// Options for `score_file`; each field is the CLI flag of the same name.
#[derive(Debug, Clone, PartialEq)]
pub struct ScoreOptions {
    /// `--input`: CSV with a header row
    pub input: PathBuf,
    /// `--out`: output CSV (`None`: the caller writes `ScoreReport::to_csv`)
    pub output: Option<PathBuf>,
    /// `--id-col` (default `id`)
    pub id_col: String,
    /// `--code-col` (default `code`)
    pub code_col: String,
    /// `--system-col`: code system per row (`icd10`, `snomed`, `bnf`); required for `efi`
    /// and `cms`; for the hospital indices rows of other systems are counted and skipped
    pub system_col: Option<String>,
    /// `--days-col`: days before the index date (non-negative integer, empty = undated)
    /// for the look-back windows of `efi` and `cms`
    pub days_col: Option<String>,
    /// `--mapping`: `quan` (default) or `shmi` (Charlson only)
    pub mapping: Option<String>,
    /// `--weights`: Charlson `charlson` (default with `quan`), `quan2011`, `shmi` (default
    /// with `shmi`); Elixhauser `vw` (default, the only one); CMS `general` (default) or
    /// `mortality`
    pub weights: Option<String>,
}

impl Default for ScoreOptions {
    fn default() -> Self {
        ScoreOptions {
            input: PathBuf::new(),
            output: None,
            id_col: "id".into(),
            code_col: "code".into(),
            system_col: None,
            days_col: None,
            mapping: None,
            weights: None,
        }
    }
}

/// What went wrong with the file or the options.
#[derive(Debug)]
pub enum ScoreError {
    /// the file could not be read or written
    Io {
        /// the file
        path: PathBuf,
        /// the cause
        source: std::io::Error,
    },
    /// a named column is not in the header
    MissingColumn {
        /// the file
        path: PathBuf,
        /// option that named it
        option: &'static str,
        /// the column asked for
        column: String,
        /// the header's columns
        available: Vec<String>,
    },
    /// the CSV itself is broken (e.g. a row with the wrong number of fields)
    Csv {
        /// the file
        path: PathBuf,
        /// line number, if known
        line: Option<u64>,
        /// parser message
        message: String,
    },
    /// a value that cannot be used
    BadValue {
        /// the file
        path: PathBuf,
        /// line number (header is 1)
        line: u64,
        /// column name
        column: String,
        /// the value
        value: String,
        /// why
        reason: &'static str,
    },
    /// an option value that is not allowed
    BadOption {
        /// flag name
        option: &'static str,
        /// value given
        value: String,
        /// what is allowed
        allowed: &'static str,
    },
}

impl fmt::Display for ScoreError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            ScoreError::Io { path, source } => write!(f, "{}: {source}", path.display()),
            ScoreError::MissingColumn {
                path,
                option,
                column,
                available,
            } => write!(
                f,
                "{}: no column {column:?} (from {option}); the header has: {}",
                path.display(),
                available.join(", ")
            ),
            ScoreError::Csv {
                path,
                line,
                message,
            } => match line {
                Some(l) => write!(f, "{}:{l}: {message}", path.display()),
                None => write!(f, "{}: {message}", path.display()),
            },
            ScoreError::BadValue {
                path,
                line,
                column,
                value,
                reason,
            } => write!(
                f,
                "{}:{line}: column {column:?}: {value:?}: {reason}",
                path.display()
            ),
            ScoreError::BadOption {
                option,
                value,
                allowed,
            } => write!(f, "{option} {value:?}: expected {allowed}"),
        }
    }
}

impl std::error::Error for ScoreError {}

/// A malformed code and where it was.
#[derive(Debug, Clone, PartialEq)]
pub struct MalformedExample {
    /// line in the input (header is 1)
    pub line: u64,
    /// the id on that line
    pub id: String,
    /// the code as written
    pub code: String,
    /// why it was rejected
    pub reason: &'static str,
}

/// The result of scoring a file.
#[derive(Debug, Clone)]
pub struct ScoreReport {
    /// the index scored
    pub index: Index,
    /// the configuration used
    pub config: IndexConfig,
    /// input file
    pub input: PathBuf,
    /// data rows read
    pub rows: usize,
    /// one result per id, in order of first appearance
    pub people: Vec<PersonScore>,
    /// malformed codes in total
    pub malformed: usize,
    /// the first `MAX_EXAMPLES` malformed codes
    pub examples: Vec<MalformedExample>,
    /// rows of a code system the index does not read (hospital indices)
    pub other_system: usize,
    /// where the output was written, if it was
    pub output: Option<PathBuf>,
}

impl ScoreReport {
    /// The output table: id, score, band (HFRS and eFI), one 0/1 column per condition,
    /// malformed_codes.
    pub fn to_csv(&self) -> String {
        let mut w = csv::Writer::from_writer(Vec::new());
        let cols = self.index.columns();
        let mut header = vec!["id", "score"];
        if self.index.has_band() {
            header.push("band");
        }
        header.extend(cols.iter());
        header.push("malformed_codes");
        // Writing to a Vec cannot fail; a failure would be a bug in csv.
        w.write_record(&header).expect("write to memory");
        for p in &self.people {
            let mut rec = vec![p.id.clone(), self.index.format_score(p.score)];
            if self.index.has_band() {
                rec.push(p.band.unwrap_or("").to_string());
            }
            rec.extend(
                p.flags
                    .iter()
                    .map(|f| if *f { "1" } else { "0" }.to_string()),
            );
            rec.push(p.malformed.len().to_string());
            w.write_record(&rec).expect("write to memory");
        }
        String::from_utf8(w.into_inner().expect("flush to memory")).expect("CSV is UTF-8")
    }
}

impl fmt::Display for ScoreReport {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        writeln!(
            f,
            "{}: {} rows, {} ids scored with {}",
            self.input.display(),
            self.rows,
            self.people.len(),
            describe(self.index, &self.config)
        )?;
        if self.other_system > 0 {
            writeln!(
                f,
                "{} rows skipped: code system other than ICD-10",
                self.other_system
            )?;
        }
        if self.malformed > 0 {
            let ids = self
                .people
                .iter()
                .filter(|p| !p.malformed.is_empty())
                .count();
            writeln!(
                f,
                "{} malformed codes (in {ids} ids; counted in malformed_codes, not scored), e.g.:",
                self.malformed
            )?;
            for e in &self.examples {
                writeln!(
                    f,
                    "  {}:{}: id {}: {:?}: {}",
                    self.input.display(),
                    e.line,
                    e.id,
                    e.code,
                    e.reason
                )?;
            }
        }
        if let Some(o) = &self.output {
            writeln!(f, "wrote {}", o.display())?;
        }
        Ok(())
    }
}

fn describe(index: Index, cfg: &IndexConfig) -> String {
    match index {
        Index::Charlson => format!(
            "Charlson ({} mapping, {} weights)",
            match cfg.charlson_mapping {
                CharlsonMapping::Quan => "Quan 2005",
                CharlsonMapping::Shmi => "SHMI",
            },
            match cfg.charlson_weights {
                CharlsonWeights::Charlson1987 => "Charlson 1987",
                CharlsonWeights::Quan2011 => "Quan 2011",
                CharlsonWeights::Shmi => "SHMI",
            }
        ),
        Index::Elixhauser => "Elixhauser (Quan 2005 mapping, van Walraven 2009 weights)".into(),
        Index::Hfrs => "Hospital Frailty Risk Score (Gilbert 2018)".into(),
        Index::Efi => "electronic Frailty Index (Clegg 2016, trent SNOMED CT translation)".into(),
        Index::Cms => format!(
            "Cambridge Multimorbidity Score (Payne 2020, {} weights)",
            match cfg.cms_weights {
                CmsWeights::General => "general-outcome",
                CmsWeights::Mortality => "mortality",
            }
        ),
    }
}

/// Resolve `--mapping` and `--weights` for an index.
pub fn config_for(
    index: Index,
    mapping: Option<&str>,
    weights: Option<&str>,
) -> Result<IndexConfig, ScoreError> {
    let mut cfg = IndexConfig::default();
    if let Some(m) = mapping {
        if index != Index::Charlson {
            return Err(ScoreError::BadOption {
                option: "--mapping",
                value: m.into(),
                allowed: "no --mapping (only charlson has mappings)",
            });
        }
        cfg.charlson_mapping = match m.to_ascii_lowercase().as_str() {
            "quan" => CharlsonMapping::Quan,
            "shmi" => {
                cfg.charlson_weights = CharlsonWeights::Shmi;
                CharlsonMapping::Shmi
            }
            _ => {
                return Err(ScoreError::BadOption {
                    option: "--mapping",
                    value: m.into(),
                    allowed: "quan or shmi",
                });
            }
        };
    }
    if let Some(w) = weights {
        let lw = w.to_ascii_lowercase();
        match index {
            Index::Charlson => {
                cfg.charlson_weights = match lw.as_str() {
                    "charlson" => CharlsonWeights::Charlson1987,
                    "quan2011" | "quan" => CharlsonWeights::Quan2011,
                    "shmi" => CharlsonWeights::Shmi,
                    _ => {
                        return Err(ScoreError::BadOption {
                            option: "--weights",
                            value: w.into(),
                            allowed: "charlson, quan2011 or shmi (for charlson)",
                        });
                    }
                }
            }
            Index::Elixhauser if lw == "vw" => {}
            Index::Elixhauser => {
                return Err(ScoreError::BadOption {
                    option: "--weights",
                    value: w.into(),
                    allowed: "vw (for elixhauser)",
                });
            }
            Index::Cms => {
                cfg.cms_weights = match lw.as_str() {
                    "general" => CmsWeights::General,
                    "mortality" => CmsWeights::Mortality,
                    _ => {
                        return Err(ScoreError::BadOption {
                            option: "--weights",
                            value: w.into(),
                            allowed: "general or mortality (for cms)",
                        });
                    }
                }
            }
            Index::Hfrs | Index::Efi => {
                return Err(ScoreError::BadOption {
                    option: "--weights",
                    value: w.into(),
                    allowed: "no --weights (hfrs and efi have fixed weights)",
                });
            }
        }
    }
    Ok(cfg)
}

fn column(
    path: &Path,
    header: &csv::StringRecord,
    option: &'static str,
    name: &str,
) -> Result<usize, ScoreError> {
    header
        .iter()
        .position(|h| h.trim() == name)
        .ok_or_else(|| ScoreError::MissingColumn {
            path: path.to_path_buf(),
            option,
            column: name.to_string(),
            available: header.iter().map(str::to_string).collect(),
        })
}

/// Score a CSV file with one of the indices. Writes `opts.output` when set.
pub fn score_file(index: Index, opts: &ScoreOptions) -> Result<ScoreReport, ScoreError> {
    let config = config_for(index, opts.mapping.as_deref(), opts.weights.as_deref())?;
    let path = opts.input.as_path();
    let mut rdr = csv::ReaderBuilder::new()
        .flexible(false)
        .from_path(path)
        .map_err(|e| csv_err(path, e))?;
    let header = rdr.headers().map_err(|e| csv_err(path, e))?.clone();
    let id_i = column(path, &header, "--id-col", &opts.id_col)?;
    let code_i = column(path, &header, "--code-col", &opts.code_col)?;
    let sys_i = match &opts.system_col {
        Some(c) => Some(column(path, &header, "--system-col", c)?),
        None if !index.icd10_only() => {
            return Err(ScoreError::BadOption {
                option: "--system-col",
                value: String::new(),
                allowed: "a column giving icd10, snomed or bnf per row (required for efi and cms)",
            });
        }
        None => None,
    };
    let days_i = match &opts.days_col {
        Some(c) => Some(column(path, &header, "--days-col", c)?),
        None => None,
    };
    struct Raw {
        line: u64,
        id: String,
        system: CodeSystem,
        code: String,
        days: Option<u32>,
    }
    let mut raws: Vec<Raw> = Vec::new();
    for rec in rdr.records() {
        let rec = rec.map_err(|e| csv_err(path, e))?;
        let line = rec.position().map_or(0, |p| p.line());
        let get = |i: usize| rec.get(i).unwrap_or("");
        let id = get(id_i).trim();
        if id.is_empty() {
            return Err(ScoreError::BadValue {
                path: path.to_path_buf(),
                line,
                column: opts.id_col.clone(),
                value: String::new(),
                reason: "empty id",
            });
        }
        let system = match sys_i {
            None => CodeSystem::Icd10,
            Some(i) => CodeSystem::parse(get(i)).ok_or_else(|| ScoreError::BadValue {
                path: path.to_path_buf(),
                line,
                column: opts.system_col.clone().unwrap_or_default(),
                value: get(i).to_string(),
                reason: "code system must be icd10, snomed or bnf",
            })?,
        };
        let days = match days_i {
            None => None,
            Some(i) if get(i).trim().is_empty() => None,
            Some(i) => Some(
                get(i)
                    .trim()
                    .parse::<u32>()
                    .map_err(|_| ScoreError::BadValue {
                        path: path.to_path_buf(),
                        line,
                        column: opts.days_col.clone().unwrap_or_default(),
                        value: get(i).to_string(),
                        reason: "days before the index date must be a non-negative integer",
                    })?,
            ),
        };
        raws.push(Raw {
            line,
            id: id.to_string(),
            system,
            code: get(code_i).to_string(),
            days,
        });
    }
    let people = score_rows(
        index,
        &config,
        raws.iter().map(|r| {
            (
                r.id.as_str(),
                Event {
                    system: r.system,
                    code: r.code.as_str(),
                    days_ago: r.days,
                },
            )
        }),
    );
    // Examples with line numbers: re-check rows in file order (cheap; the malformed set
    // per person is already known, this only recovers where they were).
    let mut examples = Vec::new();
    let mut other_system = 0;
    for r in &raws {
        if index.icd10_only() && r.system != CodeSystem::Icd10 {
            other_system += 1;
            continue;
        }
        if examples.len() < MAX_EXAMPLES
            && let Err(m) = r.system.normalise(&r.code)
        {
            examples.push(MalformedExample {
                line: r.line,
                id: r.id.clone(),
                code: m.code,
                reason: m.reason,
            });
        }
    }
    let malformed = people.iter().map(|p| p.malformed.len()).sum();
    let mut report = ScoreReport {
        index,
        config,
        input: path.to_path_buf(),
        rows: raws.len(),
        people,
        malformed,
        examples,
        other_system,
        output: None,
    };
    if let Some(out) = &opts.output {
        std::fs::write(out, report.to_csv()).map_err(|source| ScoreError::Io {
            path: out.clone(),
            source,
        })?;
        report.output = Some(out.clone());
    }
    Ok(report)
}

fn csv_err(path: &Path, e: csv::Error) -> ScoreError {
    let line = e.position().map(|p| p.line());
    match e.kind() {
        csv::ErrorKind::Io(_) => {
            let msg = e.to_string();
            match e.into_kind() {
                csv::ErrorKind::Io(source) => ScoreError::Io {
                    path: path.to_path_buf(),
                    source,
                },
                _ => ScoreError::Csv {
                    path: path.to_path_buf(),
                    line,
                    message: msg,
                },
            }
        }
        _ => ScoreError::Csv {
            path: path.to_path_buf(),
            line,
            message: e.to_string(),
        },
    }
}
