//! `trent score INDEX --input FILE.csv …`: comorbidity and frailty indices on an analyst's
//! own file, one row per id (docs/indices.md).

use std::path::PathBuf;
use std::process::ExitCode;

use anyhow::{Result, bail};
use trent_indices::Index;
use trent_indices::file::{ScoreOptions, score_file};

/// Options mirror `trent_indices::ScoreOptions`.
#[derive(clap::Args)]
pub struct ScoreArgs {
    /// charlson, elixhauser, hfrs, efi or cms.
    index: String,
    /// Input CSV (header row required), one row per (id, code).
    #[arg(long)]
    input: PathBuf,
    /// Output CSV (default: standard output).
    #[arg(long)]
    out: Option<PathBuf>,
    /// Column of the person (or spell) id.
    #[arg(long, default_value = "id")]
    id_col: String,
    /// Column of the code (ICD-10 with or without the dot; SNOMED CT; BNF).
    #[arg(long, default_value = "code")]
    code_col: String,
    /// Column naming each row's code system (icd10, snomed, bnf); needed by efi and cms.
    #[arg(long)]
    system_col: Option<String>,
    /// Column of days before the index date, for efi and cms look-backs.
    #[arg(long)]
    days_col: Option<String>,
    /// Charlson mapping: quan (default) or shmi.
    #[arg(long)]
    mapping: Option<String>,
    /// Weights: charlson, quan2011, shmi (Charlson); vw (Elixhauser); general, mortality (CMS).
    #[arg(long)]
    weights: Option<String>,
}

/// Run it.
pub fn run(a: ScoreArgs) -> Result<ExitCode> {
    let Some(index) = Index::parse(&a.index) else {
        bail!(
            "unknown index {:?}: charlson, elixhauser, hfrs, efi or cms",
            a.index
        );
    };
    let opts = ScoreOptions {
        input: a.input,
        output: a.out.clone(),
        id_col: a.id_col,
        code_col: a.code_col,
        system_col: a.system_col,
        days_col: a.days_col,
        mapping: a.mapping,
        weights: a.weights,
    };
    let report = score_file(index, &opts)?;
    match &a.out {
        Some(_) => eprintln!("{report}"),
        None => {
            let csv = report.to_csv();
            print!("{csv}");
            if !csv.ends_with('\n') {
                println!();
            }
            eprintln!("{report}");
        }
    }
    Ok(ExitCode::SUCCESS)
}
