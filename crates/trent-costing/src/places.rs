//! The place hierarchy (practice → hub → locality → ccg → delivery_unit → stp) as the lake's
//! `organisation` table states it.
//!
//! Why from the lake and not the area file: a lake is self-describing (it may come from
//! another area file, or from real feeds), and the organisation table is what its
//! `practice_code`s refer to. The table is small (hundreds of rows), so it is read once
//! into memory and walked here; the person-level work stays in DataFusion.

use std::collections::{BTreeMap, BTreeSet};

use datafusion::prelude::SessionContext;
use serde::Serialize;

use crate::{CostingError, strings};

/// The levels of the place hierarchy, bottom up.
pub const LEVELS: [&str; 6] = ["practice", "hub", "locality", "ccg", "delivery_unit", "stp"];

/// One organisation or place.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct Org {
    /// Code.
    pub code: String,
    /// Name.
    pub name: String,
    /// `org_type`.
    pub org_type: String,
    /// Parent code.
    pub parent: Option<String>,
}

/// The organisations of a lake by code.
#[derive(Debug, Clone, Default)]
pub struct Places {
    orgs: BTreeMap<String, Org>,
}

impl Places {
    /// Read the `organisation` table.
    pub async fn load(ctx: &SessionContext) -> Result<Places, CostingError> {
        let batches = ctx
            .sql("select org_code, name, org_type, parent_code from organisation")
            .await?
            .collect()
            .await?;
        let mut orgs = BTreeMap::new();
        for b in &batches {
            let (c, n, t, p) = (
                strings(b, 0)?,
                strings(b, 1)?,
                strings(b, 2)?,
                strings(b, 3)?,
            );
            for i in 0..b.num_rows() {
                let code = c[i].clone().unwrap_or_default();
                orgs.insert(
                    code.clone(),
                    Org {
                        code,
                        name: n[i].clone().unwrap_or_default(),
                        org_type: t[i].clone().unwrap_or_default(),
                        parent: p[i].clone(),
                    },
                );
            }
        }
        Ok(Places { orgs })
    }

    /// From a list of organisations (for tests and other callers).
    pub fn from_orgs(orgs: impl IntoIterator<Item = Org>) -> Places {
        Places {
            orgs: orgs.into_iter().map(|o| (o.code.clone(), o)).collect(),
        }
    }

    /// An organisation by code.
    pub fn get(&self, code: &str) -> Option<&Org> {
        self.orgs.get(code)
    }

    /// Its name, or the code if unknown.
    pub fn name<'a>(&'a self, code: &'a str) -> &'a str {
        self.orgs.get(code).map_or(code, |o| o.name.as_str())
    }

    /// The ancestor of `code` (itself included) at `level`, if any.
    pub fn ancestor(&self, code: &str, level: &str) -> Option<&str> {
        let mut cur = self.orgs.get(code)?;
        for _ in 0..16 {
            if cur.org_type == level {
                return Some(cur.code.as_str());
            }
            cur = self.orgs.get(cur.parent.as_deref()?)?;
        }
        None
    }

    /// Every practice code in the lake.
    pub fn practices(&self) -> impl Iterator<Item = &str> {
        self.orgs
            .values()
            .filter(|o| o.org_type == "practice")
            .map(|o| o.code.as_str())
    }

    /// The practices in any of `places` (codes at any level of the hierarchy). An
    /// unknown code, or one that is not a place, is an error naming the code.
    pub fn practices_in(&self, places: &[String]) -> Result<Vec<String>, CostingError> {
        let mut out = BTreeSet::new();
        for p in places {
            let Some(o) = self.orgs.get(p) else {
                return Err(CostingError::Invalid(format!(
                    "place {p:?}: not an organisation code of the lake (see `trent query \"select org_code, org_type, name from organisation\"`)"
                )));
            };
            if !LEVELS.contains(&o.org_type.as_str()) {
                return Err(CostingError::Invalid(format!(
                    "place {p:?}: is a {}, not a place of the hierarchy ({})",
                    o.org_type,
                    LEVELS.join(", ")
                )));
            }
            for pr in self.practices() {
                if self.ancestor(pr, &o.org_type) == Some(p.as_str()) {
                    out.insert(pr.to_string());
                }
            }
        }
        Ok(out.into_iter().collect())
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn org(code: &str, t: &str, parent: Option<&str>) -> Org {
        Org {
            code: code.into(),
            name: code.to_lowercase(),
            org_type: t.into(),
            parent: parent.map(str::to_string),
        }
    }

    #[test]
    fn practices_are_found_under_any_level() {
        let p = Places::from_orgs([
            org("S", "stp", None),
            org("D", "delivery_unit", Some("S")),
            org("C", "ccg", Some("D")),
            org("L", "locality", Some("C")),
            org("H", "hub", Some("L")),
            org("H2", "hub", Some("L")),
            org("P1", "practice", Some("H")),
            org("P2", "practice", Some("H2")),
            org("R", "provider", None),
        ]);
        assert_eq!(p.practices_in(&["D".into()]).unwrap(), ["P1", "P2"]);
        assert_eq!(p.practices_in(&["H2".into()]).unwrap(), ["P2"]);
        assert_eq!(p.ancestor("P1", "ccg"), Some("C"));
        assert_eq!(p.ancestor("P1", "practice"), Some("P1"));
        assert!(p.practices_in(&["X".into()]).is_err());
        assert!(p.practices_in(&["R".into()]).is_err());
    }
}
