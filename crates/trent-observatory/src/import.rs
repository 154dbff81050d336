//! Indicators that cannot come from person-level data (air quality, fuel poverty, survey
//! results, workforce, estates, data the lake does not carry) are imported from a
//! published area-level CSV: `place,period,value[,lower,upper,numerator,denominator]`.
//! Unknown places, bad periods, non-numbers and duplicate rows are errors naming the
//! file and line.

use std::collections::HashSet;
use std::path::Path;

use crate::compute::{Exact, IndicatorValue, apply_marks};
use crate::definition::{BUNDLED_FILES, Indicator};
use crate::error::ObsError;
use crate::period;
use crate::rollup::{LEVELS, Places};

/// Rows of an imported indicator.
pub fn rows(
    ind: &Indicator,
    dir: Option<&Path>,
    places: &Places,
    lake_batch: &str,
) -> Result<Vec<(IndicatorValue, Exact)>, ObsError> {
    let imp = ind.def.import.as_ref().expect("checked");
    let (name, text) = match dir {
        Some(d) => {
            let p = d.join(&imp.file);
            let t = std::fs::read_to_string(&p).map_err(|e| ObsError::File {
                path: p.display().to_string(),
                message: e.to_string(),
            })?;
            (p.display().to_string(), t)
        }
        None => {
            let t = BUNDLED_FILES
                .iter()
                .find(|(n, _)| *n == imp.file)
                .map(|(_, t)| t.to_string())
                .ok_or_else(|| ObsError::File {
                    path: format!("config/indicators/{}", imp.file),
                    message: "not bundled".into(),
                })?;
            (format!("config/indicators/{}", imp.file), t)
        }
    };
    let err = |line: usize, m: String| ObsError::File {
        path: format!("{name}:{line}"),
        message: m,
    };
    let mut lines = text.lines().enumerate();
    let header: Vec<&str> = lines
        .next()
        .map(|(_, h)| h.split(',').map(str::trim).collect())
        .unwrap_or_default();
    let col = |n: &str| header.iter().position(|h| *h == n);
    let (Some(cp), Some(cpe), Some(_)) = (col("place"), col("period"), col("value")) else {
        return Err(err(
            1,
            format!(
                "the header must name place, period and value (found: {})",
                header.join(",")
            ),
        ));
    };
    let opt = |f: &[&str], n: &str, line: usize| -> Result<Option<f64>, ObsError> {
        match col(n)
            .and_then(|i| f.get(i))
            .map(|s| s.trim())
            .filter(|s| !s.is_empty())
        {
            None => Ok(None),
            Some(s) => s
                .parse()
                .map(Some)
                .map_err(|_| err(line, format!("{n} `{s}` is not a number"))),
        }
    };
    let mut seen = HashSet::new();
    let mut out = vec![];
    for (i, l) in lines {
        let line = i + 1;
        if l.trim().is_empty() {
            continue;
        }
        let f: Vec<&str> = l.split(',').collect();
        if f.len() != header.len() {
            return Err(err(
                line,
                format!("{} fields, the header has {}", f.len(), header.len()),
            ));
        }
        let place = f[cp].trim();
        let Some(pi) = places.get(place) else {
            return Err(err(line, format!("unknown place `{place}`")));
        };
        let Some((g, p)) = period::parse_label(f[cpe].trim()) else {
            return Err(err(line, format!("`{}` is not a period", f[cpe].trim())));
        };
        if !seen.insert((place.to_string(), f[cpe].trim().to_string())) {
            return Err(err(
                line,
                format!("duplicate row for {place} {}", f[cpe].trim()),
            ));
        }
        let value = opt(&f, "value", line)?.ok_or_else(|| err(line, "value is empty".into()))?;
        let (a, b) = period::bounds(g, p);
        let level = level_of(places, pi);
        let mut row = IndicatorValue {
            indicator: ind.def.id.clone(),
            definition_version: ind.version.clone(),
            lake_batch: lake_batch.to_string(),
            level: level.to_string(),
            place: place.to_string(),
            place_name: places.names[pi as usize].clone(),
            period: period::label(g, p),
            period_start: trent_model::time::iso(a),
            period_end: trent_model::time::iso(b - 1),
            breakdown: "all".into(),
            breakdown_value: "all".into(),
            numerator: opt(&f, "numerator", line)?,
            denominator: opt(&f, "denominator", line)?,
            value: Some(value),
            lower: opt(&f, "lower", line)?,
            upper: opt(&f, "upper", line)?,
            baseline: None,
            target: None,
            trajectory: None,
            on_trajectory: None,
            variation: None,
            assurance: None,
            suppressed: false,
            unit: ind.def.unit.clone(),
        };
        apply_marks(ind, &mut row, places, a + (b - a) / 2);
        out.push((
            row,
            Exact {
                value: Some(value),
                ..Exact::default()
            },
        ));
    }
    Ok(out)
}

fn level_of(places: &Places, pi: u32) -> &'static str {
    if pi == places.stp {
        return LEVELS[0];
    }
    if places.district_la.values().any(|&l| l == pi) {
        return "local_authority";
    }
    if places.district_la.contains_key(&pi) {
        return "district";
    }
    if places.practice_chain.contains_key(&pi) {
        return "practice";
    }
    for chain in places.practice_chain.values() {
        if let Some(k) = chain.iter().position(|&c| c == pi) {
            return ["hub", "locality", "ccg", "delivery_unit", "stp"][k];
        }
    }
    "provider"
}
