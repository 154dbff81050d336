//! Places as configuration: an area file describes one integrated care system.
//!
//! The area is a hierarchy — practice → hub → locality → CCG → delivery unit → STP — and,
//! separately, LSOA → district → local authority, each LSOA with its deprivation decile.
//! The file also holds the area's providers, age structure, ethnicity, national unit
//! costs and the calibration targets the synthetic population is tuned to and checked
//! against. Another area is another file: nothing about Nottinghamshire is in code.
//!
//! Loading validates everything before anything else runs, and an error names the file,
//! the key and the problem. Bundled areas (`--area NAME`) are compiled in; any other file
//! is read with `--area-file PATH`.

use std::collections::{BTreeMap, HashMap, HashSet};
use std::path::Path;

use serde::Deserialize;
use sha2::{Digest, Sha256};

mod error;
pub use error::AreaError;

/// Areas shipped with trent, by name.
pub const BUNDLED: &[(&str, &str)] = &[(
    "nottinghamshire",
    include_str!("../../../config/areas/nottinghamshire.toml"),
)];

/// Number of 5-year age bands in an age profile (0-4 … 85-89, 90+).
pub const AGE_BANDS: usize = 19;

/// The whole area file.
#[derive(Debug, Clone, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct Area {
    /// `[area]`
    pub area: AreaHeader,
    /// `[[delivery_units]]`
    pub delivery_units: Vec<DeliveryUnit>,
    /// `[[local_authorities]]`
    pub local_authorities: Vec<LocalAuthority>,
    /// `[[districts]]`
    pub districts: Vec<District>,
    /// `[[ccgs]]`
    pub ccgs: Vec<Ccg>,
    /// `[[localities]]`
    pub localities: Vec<Locality>,
    /// `[[hubs]]`
    pub hubs: Vec<Hub>,
    /// `[[practices]]`
    pub practices: Vec<Practice>,
    /// `lsoas = [...]`
    pub lsoas: Vec<Lsoa>,
    /// `[[providers]]`
    pub providers: Vec<Provider>,
    /// `[age_profiles.<la code>]`
    pub age_profiles: BTreeMap<String, AgeProfile>,
    /// `[ethnicity.<la code>]`: NHS ethnic category → share (and `source`)
    pub ethnicity: BTreeMap<String, BTreeMap<String, toml::Value>>,
    /// `[demography]`
    pub demography: Demography,
    /// `[unit_costs]`
    pub unit_costs: BTreeMap<String, UnitCost>,
    /// `[[targets]]`
    pub targets: Vec<Target>,
    /// SHA-256 of the file's bytes (set by the loader).
    #[serde(skip)]
    pub config_hash: String,
    /// Where the file came from (set by the loader).
    #[serde(skip)]
    pub origin: String,
}

/// `[area]`
#[derive(Debug, Clone, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct AreaHeader {
    /// short id, e.g. `nottinghamshire`
    pub id: String,
    /// display name
    pub name: String,
    /// code of the STP / ICS footprint
    pub stp_code: String,
    /// total population at full scale
    pub population: u64,
    /// where the population figure comes from
    pub population_source: String,
    /// allowed locality size `[min, max]`
    pub locality_population: [u64; 2],
    /// allowed hub size `[min, max]`
    pub hub_population: [u64; 2],
}

/// A delivery unit and the providers that serve its residents.
#[derive(Debug, Clone, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct DeliveryUnit {
    /// code
    pub code: String,
    /// name
    pub name: String,
    /// acute trust for admissions and outpatients
    pub acute_provider: String,
    /// site of the type 1 A&E department
    pub ae_site: String,
    /// community services provider
    pub community_provider: String,
    /// provider taking a share of elective work
    pub elective_partner: String,
}

/// An upper-tier or unitary local authority.
#[derive(Debug, Clone, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct LocalAuthority {
    /// ONS code
    pub code: String,
    /// name
    pub name: String,
    /// short label used in reports (`city`, `county`)
    pub short: String,
}

/// A district (lower tier, or the unitary authority itself).
#[derive(Debug, Clone, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct District {
    /// ONS code
    pub code: String,
    /// name
    pub name: String,
    /// the local authority it belongs to
    pub la: String,
}

/// A clinical commissioning group.
#[derive(Debug, Clone, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct Ccg {
    /// ODS code
    pub code: String,
    /// name
    pub name: String,
    /// delivery unit code
    pub delivery_unit: String,
    /// registered population
    pub population: u64,
}

/// A locality (50-80k) of practices.
#[derive(Debug, Clone, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct Locality {
    /// code
    pub code: String,
    /// name
    pub name: String,
    /// parent CCG
    pub ccg: String,
    /// population
    pub population: u64,
}

/// A hub / primary care network (30-50k).
#[derive(Debug, Clone, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct Hub {
    /// code
    pub code: String,
    /// name
    pub name: String,
    /// parent locality
    pub locality: String,
    /// population
    pub population: u64,
}

/// A GP practice.
#[derive(Debug, Clone, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct Practice {
    /// code
    pub code: String,
    /// name
    pub name: String,
    /// parent hub
    pub hub: String,
    /// registered list size
    pub list_size: u64,
}

/// A lower-layer super output area.
#[derive(Debug, Clone, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct Lsoa {
    /// code
    pub code: String,
    /// district code
    pub district: String,
    /// locality whose practices its residents register with
    pub locality: String,
    /// residents
    pub population: u64,
    /// IMD decile, 1 = most deprived
    pub imd_decile: u8,
    /// postcode district for synthetic addresses (e.g. `NG7`)
    pub postcode_district: String,
}

/// A provider organisation and its sites.
#[derive(Debug, Clone, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct Provider {
    /// code
    pub code: String,
    /// name
    pub name: String,
    /// `acute`, `community`, `mental_health`, `ambulance`, `urgent_care`, `independent`
    pub kind: String,
    /// sites
    pub sites: Vec<Site>,
}

/// A provider's site.
#[derive(Debug, Clone, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct Site {
    /// code
    pub code: String,
    /// name
    pub name: String,
}

/// Age structure of a local authority.
#[derive(Debug, Clone, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct AgeProfile {
    /// relative shares of the 19 bands
    pub shares: Vec<f64>,
    /// share male in each band
    pub male: Vec<f64>,
    /// source
    pub source: String,
}

/// Births and moves.
#[derive(Debug, Clone, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct Demography {
    /// general fertility rate
    pub births_per_1000_women_15_44: f64,
    /// gross annual moves out of the area per 1,000 residents
    pub annual_moves_out_per_1000: f64,
    /// source
    pub source: String,
}

/// A unit cost with its source.
#[derive(Debug, Clone, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct UnitCost {
    /// pounds
    pub gbp: f64,
    /// source
    pub source: String,
}

/// A calibration target.
#[derive(Debug, Clone, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct Target {
    /// unique id
    pub id: String,
    /// what is measured (see `trent_synth::check` for the definitions)
    pub measure: String,
    /// local authority, where the target is for one
    pub la: Option<String>,
    /// provider, where the target is for one
    pub provider: Option<String>,
    /// CCG, where the target is for one
    pub ccg: Option<String>,
    /// comparator CCG for ratios
    pub versus: Option<String>,
    /// sex, where the target is for one
    pub sex: Option<String>,
    /// age band for growth targets
    pub band: Option<String>,
    /// the target value
    pub value: f64,
    /// false for assumptions that are not the plan's figures
    #[serde(default = "yes")]
    pub plan: bool,
    /// where the figure comes from
    pub source: String,
}

fn yes() -> bool {
    true
}

/// Measures the calibration check knows how to compute.
pub const KNOWN_MEASURES: &[&str] = &[
    "smoking_prevalence",
    "adult_overweight",
    "child_overweight_10_11",
    "alcohol_admissions_dsr",
    "ae_4h",
    "hle",
    "life_expectancy",
    "u75_cvd_mortality_dsr",
    "u75_resp_mortality_dsr",
    "physical_inactivity",
    "breastfeeding",
    "low_birth_weight_term",
    "health_check_uptake",
    "los_over80_elective",
    "los_over80_emergency",
    "emergency_65_rate_ratio",
    "ld_inpatients_per_million",
    "population_growth",
];

/// Unit-cost keys the generator needs.
pub const REQUIRED_UNIT_COSTS: &[&str] = &[
    "gp_consultation",
    "nhs111_call",
    "ambulance_hear_and_treat",
    "ambulance_see_and_treat",
    "ambulance_see_and_convey",
    "ae_type1",
    "ae_type3",
    "apc_elective_ordinary",
    "apc_day_case",
    "apc_emergency_short",
    "apc_emergency_long",
    "apc_excess_bed_day",
    "apc_maternity",
    "op_first",
    "op_follow_up",
    "community_contact",
    "mental_health_contact",
    "mental_health_bed_day",
    "social_care_assessment",
    "residential_week",
    "nursing_week",
    "home_care_week",
    "reablement_week",
    "direct_payment_week",
];

impl Area {
    /// Load a bundled area by name.
    pub fn bundled(name: &str) -> Result<Area, AreaError> {
        let (_, text) =
            BUNDLED
                .iter()
                .find(|(n, _)| *n == name)
                .ok_or_else(|| AreaError::UnknownArea {
                    name: name.to_string(),
                    known: BUNDLED.iter().map(|(n, _)| n.to_string()).collect(),
                })?;
        Area::parse(text, &format!("config/areas/{name}.toml (bundled)"))
    }

    /// Load an area file from disk.
    pub fn from_file(path: &Path) -> Result<Area, AreaError> {
        let text = std::fs::read_to_string(path).map_err(|e| AreaError::Io {
            file: path.display().to_string(),
            message: e.to_string(),
        })?;
        Area::parse(&text, &path.display().to_string())
    }

    /// Parse and validate area text; `origin` names the file in errors.
    pub fn parse(text: &str, origin: &str) -> Result<Area, AreaError> {
        let mut area: Area = toml::from_str(text).map_err(|e| AreaError::Parse {
            file: origin.to_string(),
            message: e.to_string(),
        })?;
        area.config_hash = hex(&Sha256::digest(text.as_bytes()));
        area.origin = origin.to_string();
        area.validate()?;
        Ok(area)
    }

    fn bad(&self, key: impl Into<String>, problem: impl Into<String>) -> AreaError {
        AreaError::Invalid {
            file: self.origin.clone(),
            key: key.into(),
            problem: problem.into(),
        }
    }

    /// Check that the hierarchy is complete and the populations add up.
    pub fn validate(&self) -> Result<(), AreaError> {
        fn unique<'a>(
            area: &Area,
            what: &str,
            codes: impl Iterator<Item = &'a str>,
            seen: &mut HashSet<String>,
        ) -> Result<(), AreaError> {
            for (i, c) in codes.enumerate() {
                if c.trim().is_empty() {
                    return Err(area.bad(format!("{what}[{i}].code"), "empty code"));
                }
                if !seen.insert(c.to_string()) {
                    return Err(
                        area.bad(format!("{what}[{i}].code"), format!("duplicate code {c:?}"))
                    );
                }
            }
            Ok(())
        }
        let mut seen = HashSet::new();
        unique(
            self,
            "delivery_units",
            self.delivery_units.iter().map(|x| x.code.as_str()),
            &mut seen,
        )?;
        unique(
            self,
            "ccgs",
            self.ccgs.iter().map(|x| x.code.as_str()),
            &mut seen,
        )?;
        unique(
            self,
            "localities",
            self.localities.iter().map(|x| x.code.as_str()),
            &mut seen,
        )?;
        unique(
            self,
            "hubs",
            self.hubs.iter().map(|x| x.code.as_str()),
            &mut seen,
        )?;
        unique(
            self,
            "practices",
            self.practices.iter().map(|x| x.code.as_str()),
            &mut seen,
        )?;
        unique(
            self,
            "providers",
            self.providers.iter().map(|x| x.code.as_str()),
            &mut seen,
        )?;
        let mut seen_la = HashSet::new();
        unique(
            self,
            "local_authorities",
            self.local_authorities.iter().map(|x| x.code.as_str()),
            &mut seen_la,
        )?;
        let mut seen_d = HashSet::new();
        unique(
            self,
            "districts",
            self.districts.iter().map(|x| x.code.as_str()),
            &mut seen_d,
        )?;
        let mut seen_l = HashSet::new();
        unique(
            self,
            "lsoas",
            self.lsoas.iter().map(|x| x.code.as_str()),
            &mut seen_l,
        )?;

        if self.area.population == 0 {
            return Err(self.bad("area.population", "must be positive"));
        }
        let dus: HashSet<&str> = self
            .delivery_units
            .iter()
            .map(|d| d.code.as_str())
            .collect();
        let provs: HashMap<&str, &Provider> = self
            .providers
            .iter()
            .map(|p| (p.code.as_str(), p))
            .collect();
        for (i, d) in self.delivery_units.iter().enumerate() {
            for (k, v) in [
                ("acute_provider", &d.acute_provider),
                ("community_provider", &d.community_provider),
                ("elective_partner", &d.elective_partner),
            ] {
                if !provs.contains_key(v.as_str()) {
                    return Err(self.bad(
                        format!("delivery_units[{i}].{k}"),
                        format!("unknown provider {v:?}"),
                    ));
                }
            }
            let acute = provs[d.acute_provider.as_str()];
            if !acute.sites.iter().any(|s| s.code == d.ae_site) {
                return Err(self.bad(
                    format!("delivery_units[{i}].ae_site"),
                    format!("{:?} is not a site of {}", d.ae_site, acute.code),
                ));
            }
        }
        for kind in ["ambulance", "urgent_care", "mental_health"] {
            if !self.providers.iter().any(|p| p.kind == kind) {
                return Err(self.bad("providers", format!("no provider of kind {kind:?}")));
            }
        }
        // CCGs → delivery units, populations add up to the area.
        let mut sum = 0;
        for (i, c) in self.ccgs.iter().enumerate() {
            if !dus.contains(c.delivery_unit.as_str()) {
                return Err(self.bad(
                    format!("ccgs[{i}].delivery_unit"),
                    format!("unknown delivery unit {:?}", c.delivery_unit),
                ));
            }
            sum += c.population;
        }
        if sum != self.area.population {
            return Err(self.bad(
                "ccgs[].population",
                format!(
                    "CCG populations add up to {sum}, but area.population is {}",
                    self.area.population
                ),
            ));
        }
        self.children_add_up(
            "localities",
            self.localities
                .iter()
                .map(|l| (&l.code, &l.ccg, l.population)),
            self.ccgs.iter().map(|c| (&c.code, c.population)),
            "ccg",
        )?;
        self.children_add_up(
            "hubs",
            self.hubs
                .iter()
                .map(|h| (&h.code, &h.locality, h.population)),
            self.localities.iter().map(|l| (&l.code, l.population)),
            "locality",
        )?;
        self.children_add_up(
            "practices",
            self.practices
                .iter()
                .map(|p| (&p.code, &p.hub, p.list_size)),
            self.hubs.iter().map(|h| (&h.code, h.population)),
            "hub",
        )?;
        self.children_add_up(
            "lsoas",
            self.lsoas
                .iter()
                .map(|l| (&l.code, &l.locality, l.population)),
            self.localities.iter().map(|l| (&l.code, l.population)),
            "locality",
        )?;
        let [lmin, lmax] = self.area.locality_population;
        for (i, l) in self.localities.iter().enumerate() {
            if l.population < lmin || l.population > lmax {
                return Err(self.bad(
                    format!("localities[{i}].population"),
                    format!(
                        "{} is outside area.locality_population {lmin}-{lmax}",
                        l.population
                    ),
                ));
            }
        }
        let [hmin, hmax] = self.area.hub_population;
        for (i, h) in self.hubs.iter().enumerate() {
            if h.population < hmin || h.population > hmax {
                return Err(self.bad(
                    format!("hubs[{i}].population"),
                    format!(
                        "{} is outside area.hub_population {hmin}-{hmax}",
                        h.population
                    ),
                ));
            }
        }
        for (i, p) in self.practices.iter().enumerate() {
            if p.list_size == 0 {
                return Err(self.bad(format!("practices[{i}].list_size"), "must be positive"));
            }
        }
        for (i, d) in self.districts.iter().enumerate() {
            if !seen_la.contains(&d.la) {
                return Err(self.bad(
                    format!("districts[{i}].la"),
                    format!("unknown local authority {:?}", d.la),
                ));
            }
        }
        for (i, l) in self.lsoas.iter().enumerate() {
            if !seen_d.contains(&l.district) {
                return Err(self.bad(
                    format!("lsoas[{i}].district"),
                    format!("unknown district {:?}", l.district),
                ));
            }
            if !(1..=10).contains(&l.imd_decile) {
                return Err(self.bad(
                    format!("lsoas[{i}].imd_decile"),
                    format!("{} is not a decile 1-10", l.imd_decile),
                ));
            }
            if l.population == 0 {
                return Err(self.bad(format!("lsoas[{i}].population"), "must be positive"));
            }
        }
        for la in &self.local_authorities {
            let Some(p) = self.age_profiles.get(&la.code) else {
                return Err(self.bad(
                    format!("age_profiles.{}", la.code),
                    "missing age profile for local authority",
                ));
            };
            if p.shares.len() != AGE_BANDS || p.male.len() != AGE_BANDS {
                return Err(self.bad(
                    format!("age_profiles.{}", la.code),
                    format!("shares and male need {AGE_BANDS} bands (0-4 … 85-89, 90+)"),
                ));
            }
            if p.shares.iter().any(|s| *s < 0.0) || p.shares.iter().sum::<f64>() <= 0.0 {
                return Err(self.bad(
                    format!("age_profiles.{}.shares", la.code),
                    "shares must be non-negative and not all zero",
                ));
            }
            if p.male.iter().any(|m| !(0.0..=1.0).contains(m)) {
                return Err(self.bad(
                    format!("age_profiles.{}.male", la.code),
                    "male shares must lie in 0..1",
                ));
            }
            if self.ethnicity_shares(&la.code).is_empty() {
                return Err(self.bad(
                    format!("ethnicity.{}", la.code),
                    "missing ethnicity shares for local authority",
                ));
            }
        }
        for k in REQUIRED_UNIT_COSTS {
            match self.unit_costs.get(*k) {
                None => return Err(self.bad(format!("unit_costs.{k}"), "missing unit cost")),
                Some(u) if u.gbp < 0.0 => {
                    return Err(self.bad(format!("unit_costs.{k}.gbp"), "negative cost"));
                }
                _ => {}
            }
        }
        let mut ids = HashSet::new();
        for (i, t) in self.targets.iter().enumerate() {
            if !ids.insert(&t.id) {
                return Err(self.bad(
                    format!("targets[{i}].id"),
                    format!("duplicate target id {:?}", t.id),
                ));
            }
            if !KNOWN_MEASURES.contains(&t.measure.as_str()) {
                return Err(self.bad(
                    format!("targets[{i}].measure"),
                    format!(
                        "unknown measure {:?}; known: {}",
                        t.measure,
                        KNOWN_MEASURES.join(", ")
                    ),
                ));
            }
            if let Some(la) = &t.la
                && !seen_la.contains(la)
            {
                return Err(self.bad(
                    format!("targets[{i}].la"),
                    format!("unknown local authority {la:?}"),
                ));
            }
            for c in [&t.ccg, &t.versus].into_iter().flatten() {
                if !self.ccgs.iter().any(|x| &x.code == c) {
                    return Err(self.bad(format!("targets[{i}].ccg"), format!("unknown CCG {c:?}")));
                }
            }
            if let Some(p) = &t.provider
                && !provs.contains_key(p.as_str())
            {
                return Err(self.bad(
                    format!("targets[{i}].provider"),
                    format!("unknown provider {p:?}"),
                ));
            }
        }
        Ok(())
    }

    fn children_add_up<'a>(
        &self,
        what: &str,
        children: impl Iterator<Item = (&'a String, &'a String, u64)>,
        parents: impl Iterator<Item = (&'a String, u64)>,
        parent_key: &str,
    ) -> Result<(), AreaError> {
        let parents: Vec<(&String, u64)> = parents.collect();
        let mut sums: HashMap<&str, u64> = HashMap::new();
        for (i, (code, parent, pop)) in children.enumerate() {
            if !parents.iter().any(|(p, _)| *p == parent) {
                return Err(self.bad(
                    format!("{what}[{i}].{parent_key}"),
                    format!("{code} has unknown {parent_key} {parent:?}"),
                ));
            }
            *sums.entry(parent.as_str()).or_default() += pop;
        }
        for (p, pop) in parents {
            let s = sums.get(p.as_str()).copied().unwrap_or(0);
            if s != pop {
                return Err(self.bad(
                    format!("{what}[].population"),
                    format!(
                        "{what} of {parent_key} {p} add up to {s}, but its population is {pop}"
                    ),
                ));
            }
        }
        Ok(())
    }

    /// Ethnicity shares (code, share) for a local authority, normalised to 1.
    pub fn ethnicity_shares(&self, la: &str) -> Vec<(String, f64)> {
        let Some(m) = self.ethnicity.get(la) else {
            return vec![];
        };
        let v: Vec<(String, f64)> = m
            .iter()
            .filter_map(|(k, v)| {
                v.as_float()
                    .or_else(|| v.as_integer().map(|i| i as f64))
                    .map(|f| (k.clone(), f))
            })
            .collect();
        let s: f64 = v.iter().map(|x| x.1).sum();
        v.into_iter().map(|(k, x)| (k, x / s)).collect()
    }

    /// Unit cost in pounds (validated to exist).
    pub fn cost(&self, key: &str) -> f64 {
        self.unit_costs.get(key).map(|u| u.gbp).unwrap_or(0.0)
    }

    /// The local authority of a district.
    pub fn la_of_district(&self, district: &str) -> &str {
        self.districts
            .iter()
            .find(|d| d.code == district)
            .map(|d| d.la.as_str())
            .unwrap_or("")
    }

    /// The CCG of a locality.
    pub fn ccg_of_locality(&self, locality: &str) -> &Ccg {
        let l = self
            .localities
            .iter()
            .find(|l| l.code == locality)
            .expect("validated locality");
        self.ccgs
            .iter()
            .find(|c| c.code == l.ccg)
            .expect("validated ccg")
    }

    /// The delivery unit of a CCG.
    pub fn delivery_unit(&self, code: &str) -> &DeliveryUnit {
        self.delivery_units
            .iter()
            .find(|d| d.code == code)
            .expect("validated delivery unit")
    }

    /// Practices whose hub lies in a locality.
    pub fn practices_in_locality(&self, locality: &str) -> Vec<&Practice> {
        let hubs: HashSet<&str> = self
            .hubs
            .iter()
            .filter(|h| h.locality == locality)
            .map(|h| h.code.as_str())
            .collect();
        self.practices
            .iter()
            .filter(|p| hubs.contains(p.hub.as_str()))
            .collect()
    }

    /// Targets with a given measure.
    pub fn targets_for<'a>(&'a self, measure: &'a str) -> impl Iterator<Item = &'a Target> + 'a {
        self.targets.iter().filter(move |t| t.measure == measure)
    }

    /// Share of the population living in LSOAs of the two most deprived deciles.
    pub fn most_deprived_fifth_share(&self) -> f64 {
        let tot: u64 = self.lsoas.iter().map(|l| l.population).sum();
        let dep: u64 = self
            .lsoas
            .iter()
            .filter(|l| l.imd_decile <= 2)
            .map(|l| l.population)
            .sum();
        dep as f64 / tot as f64
    }
}

fn hex(bytes: &[u8]) -> String {
    bytes.iter().map(|b| format!("{b:02x}")).collect()
}

#[cfg(test)]
mod tests;
