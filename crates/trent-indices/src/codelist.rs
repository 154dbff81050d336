//! Prefix code lists. The published algorithms list ICD-10 categories (`I50`) and
//! subcategories (`I42.5`-`I42.9`); a recorded code belongs to a condition when one of
//! the condition's entries is a prefix of it. Lists live in `data/` as `key|label|codes`
//! lines so they can be read against the source table; each file cites its table.

use std::collections::HashMap;

/// One condition of an index: key, label and its code prefixes (expanded).
#[derive(Debug, Clone)]
pub struct Condition {
    /// short key (also the output column name)
    pub key: &'static str,
    /// label from the source table
    pub label: &'static str,
    /// code prefixes, no dots
    pub codes: Vec<String>,
}

/// A parsed list of conditions with a prefix index.
#[derive(Debug, Clone)]
pub struct CodeList {
    /// conditions in file order
    pub conditions: Vec<Condition>,
    by_prefix: HashMap<String, Vec<usize>>,
}

/// Expand `A-B` (equal length, same leading letter, numeric tail) into every code between.
fn expand(tok: &str) -> Result<Vec<String>, String> {
    let Some((a, b)) = tok.split_once('-') else {
        return Ok(vec![tok.to_string()]);
    };
    if a.len() != b.len() || a.len() < 2 || a[..1] != b[..1] {
        return Err(format!("bad range {tok}"));
    }
    let (lo, hi): (u32, u32) = (
        a[1..].parse().map_err(|_| format!("bad range {tok}"))?,
        b[1..].parse().map_err(|_| format!("bad range {tok}"))?,
    );
    if lo > hi {
        return Err(format!("empty range {tok}"));
    }
    let w = a.len() - 1;
    Ok((lo..=hi).map(|n| format!("{}{:0w$}", &a[..1], n)).collect())
}

impl CodeList {
    /// Parse a `key|label|codes` file (embedded with `include_str!`; an error here is a
    /// bug in the shipped data, caught by the unit tests).
    pub fn parse(text: &'static str) -> Result<CodeList, String> {
        let mut conditions = Vec::new();
        for (i, line) in text.lines().enumerate() {
            let line = line.trim();
            if line.is_empty() || line.starts_with('#') {
                continue;
            }
            let mut parts = line.splitn(3, '|');
            let (Some(key), Some(label), Some(codes)) = (parts.next(), parts.next(), parts.next())
            else {
                return Err(format!("line {}: expected key|label|codes", i + 1));
            };
            let mut v = Vec::new();
            for tok in codes.split_whitespace() {
                v.extend(expand(tok).map_err(|e| format!("line {}: {e}", i + 1))?);
            }
            conditions.push(Condition {
                key,
                label,
                codes: v,
            });
        }
        Ok(CodeList::from_conditions(conditions))
    }

    /// Build the prefix index.
    pub fn from_conditions(conditions: Vec<Condition>) -> CodeList {
        let mut by_prefix: HashMap<String, Vec<usize>> = HashMap::new();
        for (i, c) in conditions.iter().enumerate() {
            for code in &c.codes {
                let e = by_prefix.entry(code.clone()).or_default();
                if !e.contains(&i) {
                    e.push(i);
                }
            }
        }
        CodeList {
            conditions,
            by_prefix,
        }
    }

    /// Condition indices a normalised code belongs to (a code can belong to several, e.g.
    /// I11.0 is both congestive heart failure and complicated hypertension in Elixhauser).
    pub fn matches(&self, code: &str, out: &mut Vec<usize>) {
        for n in 1..=code.len() {
            if let Some(v) = self.by_prefix.get(&code[..n]) {
                for &i in v {
                    if !out.contains(&i) {
                        out.push(i);
                    }
                }
            }
        }
    }

    /// The conditions of one normalised code as a bit set (bit k: condition k), for lists
    /// of at most 128 conditions: what a caller that scores many people caches per
    /// distinct code.
    pub fn mask(&self, code: &str) -> u128 {
        let mut buf = Vec::new();
        self.matches(code, &mut buf);
        buf.iter().fold(0, |m, &i| m | 1 << i)
    }

    /// Flags (one per condition) for a set of normalised codes.
    pub fn flags<'a>(&self, codes: impl IntoIterator<Item = &'a str>) -> Vec<bool> {
        let mut f = vec![false; self.conditions.len()];
        let mut buf = Vec::new();
        for c in codes {
            buf.clear();
            self.matches(c, &mut buf);
            for &i in &buf {
                f[i] = true;
            }
        }
        f
    }

    /// Position of a key.
    pub fn index_of(&self, key: &str) -> Option<usize> {
        self.conditions.iter().position(|c| c.key == key)
    }
}

/// Conditions coded both as exact SNOMED CT concept ids and as ICD-10 prefixes (eFI and
/// CMS as trent codes them), indexed once: an event is looked up, not compared with
/// every condition's list in turn (which was most of those indices' time over a whole
/// population).
#[derive(Debug)]
pub(crate) struct SnomedIcd10 {
    snomed: HashMap<&'static str, Vec<usize>>,
    icd10: CodeList,
}

impl SnomedIcd10 {
    /// From each condition's key, label, SNOMED CT ids and ICD-10 prefixes, in order.
    pub(crate) fn new(
        conditions: impl IntoIterator<
            Item = (
                &'static str,
                &'static str,
                &'static [&'static str],
                &'static [&'static str],
            ),
        >,
    ) -> SnomedIcd10 {
        let mut snomed: HashMap<&'static str, Vec<usize>> = HashMap::new();
        let mut icd = Vec::new();
        for (i, (key, label, sct, icd10)) in conditions.into_iter().enumerate() {
            for &c in sct {
                let e = snomed.entry(c).or_default();
                if !e.contains(&i) {
                    e.push(i);
                }
            }
            icd.push(Condition {
                key,
                label,
                codes: icd10.iter().map(|p| p.to_string()).collect(),
            });
        }
        SnomedIcd10 {
            snomed,
            icd10: CodeList::from_conditions(icd),
        }
    }

    /// Conditions listing this exact (normalised) SNOMED CT id.
    pub(crate) fn snomed(&self, code: &str) -> &[usize] {
        self.snomed.get(code).map_or(&[], Vec::as_slice)
    }

    /// Conditions with an ICD-10 prefix of this normalised code, added to `out`.
    pub(crate) fn icd10(&self, code: &str, out: &mut Vec<usize>) {
        self.icd10.matches(code, out);
    }
}

/// Flags (at most 128) as a bit set, bit k for `flags[k]`.
pub(crate) fn bits(flags: &[bool]) -> u128 {
    debug_assert!(flags.len() <= 128);
    flags
        .iter()
        .enumerate()
        .fold(0, |m, (k, &f)| m | (u128::from(f) << k))
}

/// The set bits of `m`, lowest first.
pub(crate) fn ones(mut m: u128) -> impl Iterator<Item = usize> {
    std::iter::from_fn(move || {
        (m != 0).then(|| {
            let k = m.trailing_zeros() as usize;
            m &= m - 1;
            k
        })
    })
}

/// Normalise ICD-10 codes, returning the valid ones and the malformed ones.
pub(crate) fn split_icd10<'a>(
    codes: impl IntoIterator<Item = &'a str>,
) -> (Vec<String>, Vec<crate::code::Malformed>) {
    let mut ok = Vec::new();
    let mut bad = Vec::new();
    for c in codes {
        match crate::code::normalise_icd10(c) {
            Ok(n) => ok.push(n),
            Err(m) => bad.push(m),
        }
    }
    (ok, bad)
}
