//! `trent stats METHOD --input FILE.csv …`: the Observatory's public-health methods on an
//! analyst's own file (docs/methods.md lists every option and method).

use std::path::PathBuf;
use std::process::ExitCode;

use anyhow::Result;
use trent_stats::file::{FileOptions, parse_confidence, run_file};

/// Options mirror `trent_stats::file::FileOptions` one for one.
#[derive(clap::Args)]
pub struct StatsArgs {
    /// dsr, isr, proportion, rate, le, hle, sii, funnel or spc.
    method: String,
    /// The input CSV (header row required).
    #[arg(long)]
    input: PathBuf,
    /// Write the result here (default: standard output).
    #[arg(long)]
    out: Option<PathBuf>,
    /// Columns identifying a group (repeatable or comma-separated).
    #[arg(long = "group-col", value_delimiter = ',')]
    group_cols: Vec<String>,
    /// Numerator: events, deaths, observed count.
    #[arg(long, default_value = "numerator")]
    numerator_col: String,
    /// Denominator: population, person-years, units, expected (funnel ratio).
    #[arg(long, default_value = "denominator")]
    denominator_col: String,
    /// Age band label or start age.
    #[arg(long, default_value = "age")]
    age_col: String,
    /// Standard population weight per band (dsr; default ESP 2013 by age).
    #[arg(long)]
    standard_col: Option<String>,
    /// Reference events per band (isr).
    #[arg(long, default_value = "ref_numerator")]
    ref_numerator_col: String,
    /// Reference population per band (isr).
    #[arg(long, default_value = "ref_denominator")]
    ref_denominator_col: String,
    /// Prevalence of good health, 0-1 (hle).
    #[arg(long, default_value = "prevalence")]
    prevalence_col: String,
    /// Survey sample size behind the prevalence (hle).
    #[arg(long, default_value = "sample_size")]
    sample_size_col: String,
    /// Deprivation quantile number (sii).
    #[arg(long, default_value = "quantile")]
    quantile_col: String,
    /// Value (sii, spc).
    #[arg(long, default_value = "value")]
    value_col: String,
    /// Standard error (sii; default: from the limits).
    #[arg(long)]
    se_col: Option<String>,
    /// Lower 95% limit (sii).
    #[arg(long, default_value = "lower")]
    lower_col: String,
    /// Upper 95% limit (sii).
    #[arg(long, default_value = "upper")]
    upper_col: String,
    /// Period (spc).
    #[arg(long, default_value = "period")]
    period_col: String,
    /// Confidence: 95 or 99.8.
    #[arg(long, default_value = "95")]
    confidence: String,
    /// Multiplier (defaults by method: docs/methods.md).
    #[arg(long)]
    multiplier: Option<f64>,
    /// funnel: proportion, ratio or rate.
    #[arg(long, default_value = "proportion")]
    funnel_type: String,
    /// sii: normal, rate or proportion.
    #[arg(long, default_value = "normal")]
    value_type: String,
    /// sii simulation repetitions.
    #[arg(long, default_value_t = 100_000)]
    repetitions: usize,
    /// sii simulation seed.
    #[arg(long, default_value_t = 1)]
    seed: u64,
    /// spc: increase, decrease or neutral.
    #[arg(long, default_value = "increase")]
    polarity: String,
    /// spc target (assurance).
    #[arg(long)]
    target: Option<f64>,
    /// spc: periods at which a new segment starts (repeatable).
    #[arg(long)]
    rebase: Vec<String>,
    /// spc: do not screen large moving ranges.
    #[arg(long)]
    no_screen_outliers: bool,
}

/// Run it.
pub fn run(a: StatsArgs) -> Result<ExitCode> {
    let opts = FileOptions {
        input: a.input,
        output: a.out.clone(),
        group_cols: a.group_cols,
        numerator_col: a.numerator_col,
        denominator_col: a.denominator_col,
        age_col: a.age_col,
        standard_col: a.standard_col,
        ref_numerator_col: a.ref_numerator_col,
        ref_denominator_col: a.ref_denominator_col,
        prevalence_col: a.prevalence_col,
        sample_size_col: a.sample_size_col,
        quantile_col: a.quantile_col,
        value_col: a.value_col,
        se_col: a.se_col,
        lower_col: a.lower_col,
        upper_col: a.upper_col,
        period_col: a.period_col,
        confidence: parse_confidence(&a.confidence)?,
        multiplier: a.multiplier,
        funnel_type: a.funnel_type,
        value_type: a.value_type,
        repetitions: a.repetitions,
        seed: a.seed,
        polarity: a.polarity,
        target: a.target,
        rebase: a.rebase,
        screen_outliers: !a.no_screen_outliers,
    };
    let report = run_file(&a.method, &opts)?;
    match &a.out {
        Some(p) => eprintln!(
            "{} rows in, {} rows → {}",
            report.input_rows,
            report.rows.len(),
            p.display()
        ),
        None => print!("{}", report.to_csv()?),
    }
    Ok(ExitCode::SUCCESS)
}
