//! Comorbidity and frailty indices computed exactly as their papers publish them, so
//! population health management can stratify people by burden of illness and an analyst
//! can score their own file and get the same numbers.
//!
//! Every index is a pure function from a person's codes to a result; nothing here reads
//! the lake, so the lead feeds person-level code lists in and Ballista-style engines can
//! call the same functions. Modules:
//!
//! - `code`: normalising ICD-10 / SNOMED CT / BNF codes as they arrive from SUS and GP
//!   systems, and the malformed-code report (a malformed code is counted, never scored as
//!   absent silently);
//! - `codelist`: prefix code lists read from `data/` (each file cites its source table);
//! - `charlson`, `elixhauser`, `hfrs`: hospital (ICD-10) indices;
//! - `efi`, `cms`: primary-care indices over SNOMED CT, ICD-10 and BNF events;
//! - `batch`: one result row per id over (id, code) rows, in order of first appearance;
//! - `file`: the same on an analyst's CSV file (`trent score`).
//!
//! `docs/indices.md` states which published version each index follows and every
//! deviation.

pub mod batch;
pub mod charlson;
pub mod cms;
pub mod code;
pub mod codelist;
pub mod efi;
pub mod elixhauser;
pub mod file;
pub mod hfrs;

pub use batch::{Index, IndexConfig, PersonScore, score_rows};
pub use charlson::{CharlsonMapping, CharlsonResult, CharlsonWeights, charlson};
pub use cms::{CmsResult, CmsWeights, cms};
pub use code::{CodeSystem, Event, Malformed};
pub use efi::{EfiResult, efi};
pub use elixhauser::{ElixhauserResult, elixhauser};
pub use file::{ScoreError, ScoreOptions, ScoreReport, score_file};
pub use hfrs::{HfrsResult, hfrs};
