//! The area file resolved into indices the generator can use in its inner loops.

use trent_places::{AGE_BANDS, Area};

use crate::rng::cumulative;

/// An LSOA with everything above it resolved.
#[derive(Debug, Clone)]
pub struct LsoaInfo {
    /// code
    pub code: String,
    /// district code
    pub district: String,
    /// local authority index in `Geo::las`
    pub la: usize,
    /// locality index in the area file
    pub locality: usize,
    /// CCG index
    pub ccg: usize,
    /// delivery unit index
    pub du: usize,
    /// IMD decile
    pub decile: u8,
    /// postcode district
    pub postcode_district: String,
    /// residents at full scale
    pub population: u64,
}

/// Resolved geography.
#[derive(Debug, Clone)]
pub struct Geo {
    /// LSOAs
    pub lsoas: Vec<LsoaInfo>,
    /// local authority codes
    pub las: Vec<String>,
    /// CCG codes
    pub ccgs: Vec<String>,
    /// practices: (code, locality index, list size)
    pub practices: Vec<(String, usize, u64)>,
    /// per locality: practice indices and cumulative list sizes
    pub locality_practices: Vec<(Vec<usize>, Vec<f64>)>,
    /// per LA: cumulative age-band shares
    pub age_cum: Vec<Vec<f64>>,
    /// per LA: male share per band
    pub male: Vec<Vec<f64>>,
    /// per LA: ethnicity codes and cumulative shares
    pub eth: Vec<(Vec<String>, Vec<f64>)>,
    /// delivery unit: (acute provider, A&E site, community provider, elective partner)
    pub dus: Vec<(String, String, String, String)>,
    /// other providers by kind
    pub mental_health: String,
    /// ambulance provider
    pub ambulance: String,
    /// NHS 111 / out of hours provider
    pub urgent_care: String,
}

impl Geo {
    /// Resolve an (already validated) area.
    pub fn new(area: &Area) -> Geo {
        let las: Vec<String> = area
            .local_authorities
            .iter()
            .map(|l| l.code.clone())
            .collect();
        let ccgs: Vec<String> = area.ccgs.iter().map(|c| c.code.clone()).collect();
        let loc_idx = |code: &str| {
            area.localities
                .iter()
                .position(|l| l.code == code)
                .expect("validated")
        };
        let lsoas = area
            .lsoas
            .iter()
            .map(|l| {
                let locality = loc_idx(&l.locality);
                let ccg_code = &area.localities[locality].ccg;
                let ccg = ccgs.iter().position(|c| c == ccg_code).expect("validated");
                let du_code = &area.ccgs[ccg].delivery_unit;
                let du = area
                    .delivery_units
                    .iter()
                    .position(|d| &d.code == du_code)
                    .expect("validated");
                let la_code = area.la_of_district(&l.district);
                LsoaInfo {
                    code: l.code.clone(),
                    district: l.district.clone(),
                    la: las.iter().position(|x| x == la_code).expect("validated"),
                    locality,
                    ccg,
                    du,
                    decile: l.imd_decile,
                    postcode_district: l.postcode_district.clone(),
                    population: l.population,
                }
            })
            .collect();
        let practices: Vec<(String, usize, u64)> = area
            .practices
            .iter()
            .map(|p| {
                let hub = area
                    .hubs
                    .iter()
                    .find(|h| h.code == p.hub)
                    .expect("validated");
                (p.code.clone(), loc_idx(&hub.locality), p.list_size)
            })
            .collect();
        let locality_practices = (0..area.localities.len())
            .map(|li| {
                let idx: Vec<usize> = practices
                    .iter()
                    .enumerate()
                    .filter(|(_, p)| p.1 == li)
                    .map(|(i, _)| i)
                    .collect();
                let cum = cumulative(idx.iter().map(|i| practices[*i].2 as f64));
                (idx, cum)
            })
            .collect();
        let age_cum = las
            .iter()
            .map(|la| cumulative(area.age_profiles[la].shares.iter().copied()))
            .collect();
        let male = las
            .iter()
            .map(|la| area.age_profiles[la].male.clone())
            .collect();
        let eth = las
            .iter()
            .map(|la| {
                let s = area.ethnicity_shares(la);
                (
                    s.iter().map(|x| x.0.clone()).collect(),
                    cumulative(s.iter().map(|x| x.1)),
                )
            })
            .collect();
        let dus = area
            .delivery_units
            .iter()
            .map(|d| {
                (
                    d.acute_provider.clone(),
                    d.ae_site.clone(),
                    d.community_provider.clone(),
                    d.elective_partner.clone(),
                )
            })
            .collect();
        let by_kind = |k: &str| {
            area.providers
                .iter()
                .find(|p| p.kind == k)
                .map(|p| p.code.clone())
                .unwrap_or_default()
        };
        debug_assert_eq!(AGE_BANDS, 19);
        Geo {
            lsoas,
            las,
            ccgs,
            practices,
            locality_practices,
            age_cum,
            male,
            eth,
            dus,
            mental_health: by_kind("mental_health"),
            ambulance: by_kind("ambulance"),
            urgent_care: by_kind("urgent_care"),
        }
    }
}
