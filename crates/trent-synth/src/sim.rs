//! Simulating one partition: a group of LSOAs of one locality, its people from the start
//! date for the requested years, with births, moves, deaths and every contact with care.
//!
//! Each partition has its own random stream and its own id sequence
//! (`id = k × partitions + partition + 1`), so partitions can run on any number of
//! threads and the lake is identical. People are simulated one at a time over the whole
//! span, so each person's rows are contiguous in every part file.

use trent_lake::{LakeError, LakeWriter};
use trent_model::codes::{self, CONDITIONS};
use trent_model::schema;

use crate::buffers::{TableBuf, V};
use crate::calibrate::{self, Calibration, intern_eth};
use crate::geo::Geo;
use crate::model::{self, Person, c};
use crate::names;
use crate::rng::Rng;
use crate::stats::logistic;
use crate::time;
use trent_places::Area;

/// What a partition covers.
#[derive(Debug, Clone)]
pub struct PartitionSpec {
    /// partition index
    pub index: usize,
    /// number of partitions in the run
    pub total: usize,
    /// (LSOA index, people at the start)
    pub lsoas: Vec<(usize, u64)>,
}

/// Row counts of a finished partition.
#[derive(Debug, Clone, Default)]
pub struct PartStats {
    /// partition
    pub index: usize,
    /// (table, file, rows) for each lake table
    pub files: Vec<(String, String, u64)>,
    /// vault (file, rows)
    pub vault: (String, u64),
    /// people simulated
    pub people: u64,
    /// events written (all tables but person)
    pub events: u64,
}

/// Shared, read-only inputs of every partition.
pub struct Ctx<'a> {
    /// the area
    pub area: &'a Area,
    /// resolved geography
    pub geo: &'a Geo,
    /// calibrated parameters
    pub cal: &'a Calibration,
    /// run seed
    pub seed: u64,
    /// first day
    pub start: i32,
    /// years simulated
    pub years: i32,
    /// unit costs, looked up once
    pub cost: Costs,
}

/// Unit costs in pounds.
#[allow(missing_docs)]
#[derive(Debug, Clone)]
pub struct Costs {
    pub gp: f64,
    pub n111: f64,
    pub amb_ht: f64,
    pub amb_st: f64,
    pub amb_sc: f64,
    pub ae: f64,
    pub el: f64,
    pub dc: f64,
    pub em_short: f64,
    pub em_long: f64,
    pub xbd: f64,
    pub mat: f64,
    pub op1: f64,
    pub opf: f64,
    pub comm: f64,
    pub mh: f64,
    pub mh_bed: f64,
    pub assess: f64,
    pub res: f64,
    pub nurs: f64,
    pub home: f64,
    pub reab: f64,
    pub dp: f64,
}

impl Costs {
    /// From the area's unit costs.
    pub fn new(a: &Area) -> Costs {
        Costs {
            gp: a.cost("gp_consultation"),
            n111: a.cost("nhs111_call"),
            amb_ht: a.cost("ambulance_hear_and_treat"),
            amb_st: a.cost("ambulance_see_and_treat"),
            amb_sc: a.cost("ambulance_see_and_convey"),
            ae: a.cost("ae_type1"),
            el: a.cost("apc_elective_ordinary"),
            dc: a.cost("apc_day_case"),
            em_short: a.cost("apc_emergency_short"),
            em_long: a.cost("apc_emergency_long"),
            xbd: a.cost("apc_excess_bed_day"),
            mat: a.cost("apc_maternity"),
            op1: a.cost("op_first"),
            opf: a.cost("op_follow_up"),
            comm: a.cost("community_contact"),
            mh: a.cost("mental_health_contact"),
            mh_bed: a.cost("mental_health_bed_day"),
            assess: a.cost("social_care_assessment"),
            res: a.cost("residential_week"),
            nurs: a.cost("nursing_week"),
            home: a.cost("home_care_week"),
            reab: a.cost("reablement_week"),
            dp: a.cost("direct_payment_week"),
        }
    }
}

struct Out {
    person: TableBuf,
    activity: TableBuf,
    condition: TableBuf,
    observation: TableBuf,
    medication: TableBuf,
    social_care: TableBuf,
    referral: TableBuf,
    vault: TableBuf,
    events: u64,
}

/// Drugs prescribed for each condition (indices into `codes::MEDICINES`).
fn drugs_for(k: usize) -> &'static [usize] {
    match k {
        c::HYPERTENSION => &[0, 1],
        c::DIABETES => &[2, 3],
        c::CHD => &[3, 21, 4],
        c::HF => &[5, 4, 1],
        c::STROKE => &[3, 21],
        c::AF => &[6],
        c::COPD => &[9, 7],
        c::ASTHMA => &[7, 8],
        c::DEMENTIA => &[10],
        c::SMI => &[11],
        c::DEPRESSION => &[12],
        c::OA => &[14, 13],
        c::EPILEPSY => &[15],
        c::RA => &[16],
        c::PARKINSONS => &[17],
        c::OSTEOPOROSIS => &[18],
        c::ALCOHOL_DEP => &[19],
        _ => &[],
    }
}

const DAY: i64 = 86_400;

fn ts(day: i32, secs: i64) -> i64 {
    day as i64 * DAY + secs
}

struct Sim<'a> {
    ctx: &'a Ctx<'a>,
    spec: &'a PartitionSpec,
    rng: Rng,
    out: Out,
    people: Vec<Person>,
    next_person: u64,
    next_activity: u64,
    next_referral: u64,
    next_nhs: u64,
    year_starts: Vec<i32>,
    end: i32,
    /// extra yearly moving away by growth band, steered while the partition's initial
    /// people are simulated (see `steer_growth`)
    extra_out: [f64; 4],
    /// initial people simulated so far: present at the start / at the end, by band
    grown_from: [f64; 4],
    grown_to: [f64; 4],
}

/// Run one partition and write its part files into the staged generation.
pub fn run_partition(
    ctx: &Ctx<'_>,
    spec: &PartitionSpec,
    writer: &LakeWriter,
) -> Result<PartStats, LakeError> {
    let p = spec.index;
    let out = Out {
        person: TableBuf::new(&schema::PERSON, writer.part(&schema::PERSON, p)?),
        activity: TableBuf::new(&schema::ACTIVITY, writer.part(&schema::ACTIVITY, p)?),
        condition: TableBuf::new(&schema::CONDITION, writer.part(&schema::CONDITION, p)?),
        observation: TableBuf::new(&schema::OBSERVATION, writer.part(&schema::OBSERVATION, p)?),
        medication: TableBuf::new(&schema::MEDICATION, writer.part(&schema::MEDICATION, p)?),
        social_care: TableBuf::new(&schema::SOCIAL_CARE, writer.part(&schema::SOCIAL_CARE, p)?),
        referral: TableBuf::new(&schema::REFERRAL, writer.part(&schema::REFERRAL, p)?),
        vault: TableBuf::new(&trent_model::VAULT, writer.vault_part(p)?),
        events: 0,
    };
    let year_starts: Vec<i32> = (0..=ctx.years)
        .map(|y| time::add_years(ctx.start, y))
        .collect();
    let end = *year_starts.last().expect("years ≥ 1");
    let mut sim = Sim {
        ctx,
        spec,
        rng: Rng::stream(ctx.seed, p as u64),
        out,
        people: Vec::new(),
        next_person: 0,
        next_activity: 0,
        next_referral: 0,
        next_nhs: 0,
        year_starts,
        end,
        extra_out: ctx.cal.extra_out,
        grown_from: [0.0; 4],
        grown_to: [0.0; 4],
    };
    sim.run()?;
    let Sim { out, people, .. } = sim;
    let mut files = Vec::new();
    let mut people_n = 0;
    for (name, buf) in [
        ("person", out.person),
        ("activity", out.activity),
        ("condition", out.condition),
        ("observation", out.observation),
        ("medication", out.medication),
        ("social_care", out.social_care),
        ("referral", out.referral),
    ] {
        let (f, n) = buf.finish()?;
        if name == "person" {
            people_n = n;
        }
        files.push((name.to_string(), f, n));
    }
    let vault = out.vault.finish()?;
    debug_assert_eq!(people_n as usize, people.len());
    Ok(PartStats {
        index: p,
        files,
        vault,
        people: people_n,
        events: out.events,
    })
}

impl<'a> Sim<'a> {
    fn id(&self, k: u64) -> i64 {
        (k * self.spec.total as u64 + self.spec.index as u64 + 1) as i64
    }
    fn new_person_id(&mut self) -> i64 {
        let id = self.id(self.next_person);
        self.next_person += 1;
        id
    }
    fn new_activity_id(&mut self) -> i64 {
        let id = self.id(self.next_activity);
        self.next_activity += 1;
        id
    }

    fn practice_for(&mut self, lsoa: usize) -> u32 {
        let loc = self.ctx.geo.lsoas[lsoa].locality;
        let (idx, cum) = &self.ctx.geo.locality_practices[loc];
        idx[self.rng.pick_cum(cum)] as u32
    }

    /// A person present at `day` (start, or arriving), with prevalent state.
    fn make_person(&mut self, lsoa: usize, day: i32, band: Option<(i32, i32)>) -> Person {
        let (mut p, age) =
            calibrate::draw_demographics(&mut self.rng, self.ctx.geo, lsoa, day, band);
        p.id = self.new_person_id();
        p.practice = self.practice_for(lsoa);
        let l = &self.ctx.geo.lsoas[lsoa];
        let (decile, la) = (l.decile, l.la);
        model::draw_lifestyle(&mut self.rng, &mut p, age, decile, la, self.ctx.cal);
        model::draw_prevalent_conditions(&mut self.rng, &mut p, age, day, decile, self.ctx.cal);
        p.reg_start = day;
        // ongoing care at arrival
        if age >= 65 {
            let h_ch = care_home_hazard(&p, age);
            if self.rng.chance((3.0 * h_ch).min(0.5)) {
                p.care_home = Some(day - 1 - self.rng.exp(700.0) as i32);
            } else if self.rng.chance((1.2 * home_care_hazard(&p, age)).min(0.5)) {
                p.home_care_until = Some(day + self.rng.exp(548.0) as i32 + 1);
            }
        }
        if p.has(c::LD) && (18..65).contains(&age) {
            if self.rng.chance(self.ctx.cal.ld_inpatient_share) {
                p.mh_inpatient_until = Some(day + 1 + self.rng.exp(LD_STAY) as i32);
            }
            p.direct_payment = self.rng.chance(0.3);
        }
        p
    }

    fn run(&mut self) -> Result<(), LakeError> {
        let start = self.ctx.start;
        let lsoas = self.spec.lsoas.clone();
        for (lsoa, n) in &lsoas {
            for _ in 0..*n {
                let p = self.make_person(*lsoa, start, None);
                self.people.push(p);
            }
        }
        // baseline rows for people present at the start
        let initial = self.people.len();
        let mut i = 0;
        while i < self.people.len() {
            self.simulate(i)?;
            if i < initial {
                self.steer_growth(i);
            }
            i += 1;
        }
        // migration: fill each year's deficit against the growth targets, by band
        let bands: [(i32, i32); 4] = [(0, 14), (15, 64), (65, 84), (85, 105)];
        let count = |people: &[Person], day: i32| -> [f64; 4] {
            let mut n = [0.0; 4];
            for p in people.iter().filter(|p| p.present(day)) {
                let a = p.age(day);
                let b = bands
                    .iter()
                    .position(|(lo, hi)| (*lo..=*hi).contains(&a))
                    .unwrap_or(3);
                n[b] += 1.0;
            }
            n
        };
        let base = count(&self.people[..initial], start);
        // arrivals settle in LSOAs in proportion to their populations
        let lsoa_cum = crate::rng::cumulative(lsoas.iter().map(|x| x.1 as f64 + 0.01));
        for y in 1..=self.ctx.years {
            let day = self.year_starts[y as usize] - 1;
            let now = count(&self.people, day);
            let t = y as f64 / 5.0;
            for b in 0..4 {
                let want = base[b] * (1.0 + self.ctx.cal.growth[b]).powf(t);
                let deficit = (want - now[b]).round();
                if deficit <= 0.0 {
                    continue;
                }
                for _ in 0..deficit as u64 {
                    let lsoa = lsoas[self.rng.pick_cum(&lsoa_cum)].0;
                    let y0 = self.year_starts[y as usize - 1];
                    let arrive = y0 + self.rng.below((day - y0).max(1) as u64) as i32;
                    let (lo, hi) = bands[b];
                    let mut p = self.make_person(lsoa, arrive, Some((lo, hi.min(100))));
                    // make sure the arrival is in the band at the year end as counted
                    if p.age(day) > hi {
                        p.birth += 365;
                    }
                    self.people.push(p);
                    let idx = self.people.len() - 1;
                    self.simulate(idx)?;
                    // babies born to arrivals are simulated too
                    let mut j = idx + 1;
                    while j < self.people.len() {
                        self.simulate(j)?;
                        j += 1;
                    }
                }
            }
        }
        Ok(())
    }

    /// Natural change of the old bands, steered to stay just below the growth target.
    ///
    /// The year-end top-up with arrivals can only add people, so a partition whose old
    /// population grows faster than the target by itself (fewer deaths than calibration
    /// expected) would overshoot. While the partition's initial people are simulated,
    /// one by one, the growth they realise so far (people of the band at the end over
    /// people of the band at the start) is compared with the target less a margin, and
    /// the band's extra moving away for the people still to come is raised or lowered by
    /// the difference per year. Deterministic: it depends only on the partition's stream.
    fn steer_growth(&mut self, i: usize) {
        let p = &self.people[i];
        let (start, last) = (self.ctx.start, self.end - 1);
        if p.present(start) {
            self.grown_from[calibrate::growth_band(p.age(start))] += 1.0;
        }
        if p.present(last) {
            self.grown_to[calibrate::growth_band(p.age(last))] += 1.0;
        }
        let years = self.ctx.years as f64;
        for b in 2..4 {
            if self.grown_from[b] < 30.0 {
                continue;
            }
            let realised = self.grown_to[b] / self.grown_from[b];
            // margin: the band's own sampling noise in a small partition (a year's
            // deaths are ~15% of an 85+ band), at least the calibrated margin
            let noise = (0.15 / self.grown_from[b]).sqrt();
            let margin = calibrate::GROWTH_MARGIN[b].max(noise);
            let want = (1.0 + self.ctx.cal.growth[b]).powf(years / 5.0) - margin * years;
            self.extra_out[b] = (self.ctx.cal.extra_out[b] + (realised - want) / years).max(0.0);
        }
    }

    fn simulate(&mut self, i: usize) -> Result<(), LakeError> {
        let mut p = self.people[i].clone();
        let g = self.ctx.geo;
        // prevalent conditions recorded in the GP record
        for k in 0..model::N_COND {
            if p.has(k) {
                self.condition_row(&p, k, p.onset[k].max(p.birth), None)?;
            }
        }
        // ongoing social care and inpatient stays at arrival
        let lsoa0 = p.lsoa as usize;
        let la_code = g.las[g.lsoas[lsoa0].la].clone();
        if let Some(since) = p.care_home {
            let nursing = self.rng.chance(0.4);
            self.social_row(
                &p,
                if nursing { "nursing" } else { "residential" },
                since,
                None,
                if nursing {
                    self.ctx.cost.nurs
                } else {
                    self.ctx.cost.res
                },
                &la_code,
            )?;
        }
        if let Some(until) = p.home_care_until {
            let since = p.reg_start - 1 - self.rng.exp(400.0) as i32;
            self.social_row(
                &p,
                "home_care",
                since,
                Some(until),
                self.ctx.cost.home,
                &la_code,
            )?;
        }
        if p.direct_payment {
            let since = p.reg_start - 1 - self.rng.exp(900.0) as i32;
            self.social_row(
                &p,
                "direct_payment",
                since,
                None,
                self.ctx.cost.dp,
                &la_code,
            )?;
        }
        if let Some(until) = p.mh_inpatient_until {
            let since = p.reg_start - 1 - self.rng.exp(LD_STAY) as i32;
            self.ld_spell(&p, since, until)?;
        }
        let first_year = self
            .year_starts
            .iter()
            .rposition(|y| *y <= p.reg_start)
            .unwrap_or(0);
        for y in first_year..self.ctx.years as usize {
            let (t0, t1) = (self.year_starts[y], self.year_starts[y + 1]);
            let w0 = t0.max(p.reg_start);
            if w0 >= t1 {
                continue;
            }
            if p.left().is_some_and(|l| l <= w0) {
                break;
            }
            self.year(&mut p, y, w0, t1)?;
        }
        // close packages still open at death or move
        self.person_row(&p)?;
        self.vault_row(&p)?;
        self.people[i] = p;
        Ok(())
    }

    #[allow(clippy::too_many_lines)]
    fn year(&mut self, p: &mut Person, y: usize, w0: i32, t1: i32) -> Result<(), LakeError> {
        let ctx = self.ctx;
        let g = ctx.geo;
        let cal = ctx.cal;
        let lsoa = p.lsoa as usize;
        let l = &g.lsoas[lsoa];
        let (decile, la, ccg, du) = (l.decile, l.la, l.ccg, l.du);
        let la_code = g.las[la].clone();
        let age = p.age(w0);
        let female = p.female;
        let first_of_life = w0 == p.reg_start;
        // new conditions (onset within the year) and lifestyle change
        if !first_of_life && age > 0 {
            for k in 0..model::N_COND {
                if self
                    .rng
                    .chance(model::incidence(k, p, age - 1, decile, cal))
                {
                    p.conds |= 1 << k;
                    let d = w0 + self.rng.below((t1 - w0) as u64) as i32;
                    p.onset[k] = d;
                    self.condition_row(p, k, d, None)?;
                }
            }
            if p.smoke == model::CURRENT && self.rng.chance(0.04) {
                p.smoke = model::EX;
            } else if p.smoke == model::NEVER && (16..25).contains(&age) && self.rng.chance(0.02) {
                p.smoke = model::CURRENT;
            }
        }
        // death and moving away, decided at the start of the year
        let hz = model::death_hazards(p, age, la, cal);
        let h: f64 = hz.iter().sum();
        let frac_full = (t1 - w0) as f64 / 365.25;
        let mut w1 = t1;
        if self.rng.chance(1.0 - (-h * frac_full).exp()) {
            let d = w0 + self.rng.below((t1 - w0) as u64) as i32;
            let cause = self.rng.pick_cum(&crate::rng::cumulative(hz));
            p.death = Some(d);
            p.death_cause = Some(death_code(&mut self.rng, p, cause));
            w1 = d;
        } else if p.mh_inpatient_until.is_none_or(|u| u < w0) {
            let f = calibrate::move_factor(age);
            let extra = self.extra_out[calibrate::growth_band(age)];
            if self.rng.chance(
                (ctx.area.demography.annual_moves_out_per_1000 / 1000.0 * f + extra) * frac_full,
            ) {
                let d = w0 + self.rng.below((t1 - w0) as u64) as i32;
                p.moved_out = Some(d);
                w1 = d;
            } else if self.rng.chance(0.02 * frac_full) {
                // a move within the locality's partition: new LSOA, same practice
                let opts = &self.spec.lsoas;
                p.lsoa = opts[self.rng.below(opts.len() as u64) as usize].0 as u32;
            }
        }
        if w1 <= w0 {
            return Ok(());
        }
        let frac = (w1 - w0) as f64 / 365.25;
        let span = (w1 - w0) as u64;
        let nconds = p.n_conds() as f64;
        let practice = g.practices[p.practice as usize].0.clone();
        let (acute, ae_site, community, partner) = g.dus[du].clone();
        let day_in = |rng: &mut Rng| w0 + rng.below(span) as i32;

        // --- primary care ---------------------------------------------------------------
        let lam_gp = (2.2 + 0.035 * (age as f64 - 20.0).max(0.0) + 1.1 * nconds)
            * if female && (15..60).contains(&age) {
                1.3
            } else {
                1.0
            }
            * (1.0 + 0.03 * model::dep(decile))
            * p.u.sqrt();
        for _ in 0..self.rng.poisson(lam_gp * frac) {
            let d = day_in(&mut self.rng);
            let secs = 8 * 3600 + self.rng.below(10 * 3600) as i64;
            let id = self.new_activity_id();
            self.act(Act {
                id,
                person: p.id,
                setting: "gp",
                start: ts(d, secs),
                end: Some(ts(d, secs + 600)),
                provider: &practice,
                cost: ctx.cost.gp,
                ..Act::default()
            })?;
        }
        let adult = age >= 18;
        let yr0 = y == 0;
        if adult && self.rng.chance(if yr0 { 0.85 } else { 0.5 }) {
            let d = day_in(&mut self.rng);
            let code = match p.smoke {
                model::CURRENT => codes::OBS_SMOKER,
                model::EX => codes::OBS_EX_SMOKER,
                _ => codes::OBS_NEVER_SMOKED,
            };
            self.obs(p.id, code, None, d)?;
        }
        if adult && self.rng.chance(if yr0 { 0.7 } else { 0.4 }) {
            let d = day_in(&mut self.rng);
            let v = ((p.bmi + 0.3 * self.rng.normal()) * 10.0).round() / 10.0;
            let v = if p.bmi >= 25.0 {
                v.max(25.0)
            } else {
                v.min(24.9)
            };
            self.obs(p.id, codes::OBS_BMI, Some(v), d)?;
        }
        if adult && self.rng.chance(if yr0 { 0.6 } else { 0.3 }) {
            let d = day_in(&mut self.rng);
            let v = if p.inactive {
                self.rng.below(30) as f64
            } else {
                30.0 + self.rng.exp(150.0).round()
            };
            self.obs(p.id, codes::OBS_ACTIVITY, Some(v), d)?;
        }
        if adult && self.rng.chance(if yr0 { 0.5 } else { 0.3 }) {
            let d = day_in(&mut self.rng);
            self.obs(p.id, codes::OBS_ALCOHOL, Some(p.alcohol_units.round()), d)?;
        }
        if self.rng.chance(0.7) {
            let d = day_in(&mut self.rng);
            let s = usize::from(!female);
            let bad = self.rng.chance(logistic(
                cal.srh[la][s] + model::bad_health_lp(p, age, decile),
            ));
            self.obs(
                p.id,
                codes::OBS_SELF_RATED_HEALTH,
                Some(if bad { 0.0 } else { 1.0 }),
                d,
            )?;
        }
        if p.has(c::HYPERTENSION) || (adult && self.rng.chance(0.3)) {
            let d = day_in(&mut self.rng);
            let (ms, md) = if p.has(c::HYPERTENSION) {
                (140.0, 84.0)
            } else {
                (124.0, 77.0)
            };
            let (sy, di) = (
                (ms + 14.0 * self.rng.normal()).round(),
                (md + 9.0 * self.rng.normal()).round(),
            );
            self.obs(p.id, codes::OBS_SYSTOLIC, Some(sy), d)?;
            self.obs(p.id, codes::OBS_DIASTOLIC, Some(di), d)?;
        }
        if p.has(c::DIABETES) {
            for _ in 0..self.rng.poisson(2.0 * frac) {
                let d = day_in(&mut self.rng);
                let v = (58.0 + 12.0 * self.rng.normal()).max(30.0).round();
                self.obs(p.id, codes::OBS_HBA1C, Some(v), d)?;
            }
        }
        if age == 10 || age == 4 {
            let d = day_in(&mut self.rng);
            let shift = if age == 4 { -0.6 } else { 0.0 };
            let over = self.rng.chance(logistic(
                cal.child_overweight[la] + shift + model::LifestyleLp::child_overweight(decile),
            ));
            let v = if over {
                self.rng.uniform(85.0, 99.9)
            } else {
                self.rng.uniform(1.0, 84.9)
            };
            self.obs(
                p.id,
                codes::OBS_NCMP_CENTILE,
                Some((v * 10.0).round() / 10.0),
                d,
            )?;
        }
        let cvd_free = ![
            c::CHD,
            c::STROKE,
            c::DIABETES,
            c::HYPERTENSION,
            c::CKD,
            c::HF,
            c::AF,
            c::PVD,
        ]
        .iter()
        .any(|k| p.has(*k));
        if (40..75).contains(&age) && cvd_free && self.rng.chance(0.2) {
            let d = day_in(&mut self.rng);
            self.obs(p.id, codes::OBS_HEALTH_CHECK_INVITED, None, d)?;
            if self.rng.chance(logistic(
                cal.health_check[la] + model::LifestyleLp::health_check(age, decile),
            )) {
                let done = d + 7 + self.rng.below(80) as i32;
                if done < w1 {
                    self.obs(p.id, codes::OBS_HEALTH_CHECK_DONE, None, done)?;
                } else {
                    // completed after this window: still recorded if the person is present
                    self.obs(
                        p.id,
                        codes::OBS_HEALTH_CHECK_DONE,
                        None,
                        done.min(self.end - 1),
                    )?;
                }
            }
        }
        // repeat prescriptions: every 56 days for each drug of each condition
        let mut drugs: Vec<usize> = (0..model::N_COND)
            .filter(|k| p.has(*k))
            .flat_map(|k| drugs_for(k).iter().copied())
            .collect();
        if age >= 65 && nconds >= 3.0 {
            drugs.push(20);
        }
        drugs.sort_unstable();
        drugs.dedup();
        for dr in drugs {
            let mut d = w0 + self.rng.below(56) as i32;
            while d < w1 {
                let (code, _, c28) = codes::MEDICINES[dr];
                self.out.medication.row(&[
                    V::I(p.id),
                    V::S(code),
                    V::D(d),
                    V::F((c28 * 2.0 * 100.0).round() / 100.0),
                    V::I(56),
                ])?;
                self.out.events += 1;
                d += 56;
            }
        }
        for _ in 0..self.rng.poisson(0.25 * frac) {
            let d = day_in(&mut self.rng);
            let (code, _, c28) = codes::MEDICINES[22];
            self.out.medication.row(&[
                V::I(p.id),
                V::S(code),
                V::D(d),
                V::F(c28 / 4.0),
                V::I(7),
            ])?;
            self.out.events += 1;
        }
        // NHS 111
        for _ in 0..self.rng.poisson((0.2 + 0.03 * nconds) * frac) {
            let d = day_in(&mut self.rng);
            let s = self.rng.below(DAY as u64) as i64;
            let id = self.new_activity_id();
            self.act(Act {
                id,
                person: p.id,
                setting: "nhs111",
                start: ts(d, s),
                end: Some(ts(d, s + 900)),
                provider: &g.urgent_care,
                cost: ctx.cost.n111,
                ..Act::default()
            })?;
        }
        // --- urgent and emergency care ----------------------------------------------------
        let mut lam_em = model::emergency_rate(p, age, decile);
        if age >= 65 {
            lam_em *= cal.emerg65[ccg];
        }
        let n_em = self.rng.poisson(lam_em * frac);
        let n_alc = self
            .rng
            .poisson(model::alcohol_rate(p, age) * cal.m_alcohol[la] * frac);
        let mut admissions: Vec<(i32, bool)> = Vec::with_capacity((n_em + n_alc) as usize);
        for k in 0..n_em + n_alc {
            admissions.push((day_in(&mut self.rng), k >= n_em));
        }
        admissions.sort_unstable();
        let mut free_from = w0;
        p.recent_emergencies = n_em;
        for (d, alcohol) in admissions {
            let d = d.max(free_from);
            if d >= w1 {
                break;
            }
            let dx = if alcohol {
                alcohol_dx(&mut self.rng, p)
            } else {
                emergency_dx(&mut self.rng, p, age)
            };
            let arrive = ts(d, self.rng.below(DAY as u64) as i64);
            let mut start = arrive;
            if self.rng.chance(if alcohol { 0.9 } else { 0.75 }) {
                let by_amb = self.rng.chance(if age >= 65 { 0.5 } else { 0.3 });
                if by_amb {
                    self.ambulance(p.id, arrive, "see_and_convey")?;
                }
                let dur = self.ae_minutes(&acute);
                let id = self.new_activity_id();
                let dep = arrive + dur * 60;
                self.act(Act {
                    id,
                    person: p.id,
                    setting: "ae",
                    start: arrive,
                    end: Some(dep),
                    provider: &acute,
                    site: Some(&ae_site),
                    class: Some("type1"),
                    dx: Some(dx),
                    cost: ctx.cost.ae,
                    disch: Some("admitted"),
                    arrival: Some(if by_amb { "ambulance" } else { "walk_in" }),
                    ..Act::default()
                })?;
                start = dep;
            }
            let los_mean =
                calibrate::los_mean(age, true) * if age >= 80 { cal.los80[ccg].1 } else { 1.0 };
            let los = self.rng.geometric(los_mean) as i32;
            let sday = (start / DAY) as i32;
            let dis = sday + los;
            let delayed = age >= 65 && los >= 2 && self.rng.chance(0.2);
            let fit = if delayed {
                dis - (1 + self.rng.geometric(4.0) as i32).min(los)
            } else {
                dis
            };
            let to_care_home = age >= 75
                && p.care_home.is_none()
                && self
                    .rng
                    .chance(0.04 * (1.0 + 2.0 * f64::from(u8::from(p.has(c::DEMENTIA)))));
            let cost = if los <= 1 {
                ctx.cost.em_short
            } else {
                ctx.cost.em_long + (los - 5).max(0) as f64 * ctx.cost.xbd
            };
            let spec = specialty_for(dx, age);
            let id = self.new_activity_id();
            let end = ts(dis, 10 * 3600 + self.rng.below(8 * 3600) as i64);
            let end = end.max(start + 3600);
            self.act(Act {
                id,
                person: p.id,
                setting: "apc",
                start,
                end: Some(end),
                provider: &acute,
                site: Some(&ae_site),
                method: Some("emergency"),
                class: Some("ordinary"),
                dx: Some(dx),
                spec: Some(spec),
                cost,
                disch: Some(if to_care_home {
                    "care_home"
                } else {
                    "usual_residence"
                }),
                los: Some(los),
                fit: Some(fit),
                ..Act::default()
            })?;
            self.secondary_dx(p, age, dis, id)?;
            free_from = dis + 1;
            if to_care_home {
                p.care_home = Some(dis);
                p.home_care_until = None;
                let nursing = self.rng.chance(0.4);
                self.social_care_start(
                    p,
                    if nursing { "nursing" } else { "residential" },
                    dis,
                    None,
                    &la_code,
                )?;
            } else if age >= 65 && self.rng.chance(0.15) {
                self.social_care_start(p, "reablement", dis, Some(dis + 42), &la_code)?;
            }
            if age >= 75 {
                for k in 0..2 {
                    let cd = dis + 3 + 7 * k;
                    if cd < w1 {
                        let id = self.new_activity_id();
                        self.act(Act {
                            id,
                            person: p.id,
                            setting: "community",
                            start: ts(cd, 11 * 3600),
                            end: Some(ts(cd, 11 * 3600 + 1800)),
                            provider: &community,
                            class: Some("contact"),
                            cost: ctx.cost.comm,
                            ..Act::default()
                        })?;
                    }
                }
            }
        }
        // A&E attendances that did not lead to admission
        let lam_ae = (0.2 + 0.6 * lam_em)
            * if (15..30).contains(&age) { 1.3 } else { 1.0 }
            * (1.0 + 0.04 * model::dep(decile));
        for _ in 0..self.rng.poisson(lam_ae * frac) {
            let d = day_in(&mut self.rng);
            let arrive = ts(d, self.rng.below(DAY as u64) as i64);
            let by_amb = self.rng.chance(if age >= 65 { 0.3 } else { 0.1 });
            if by_amb {
                self.ambulance(p.id, arrive, "see_and_convey")?;
            }
            let dur = self.ae_minutes(&acute);
            let dx = self.rng.pick_str(&[
                "S099", "S610", "S934", "R104", "R074", "R51", "T141", "J069", "L039",
            ]);
            let id = self.new_activity_id();
            self.act(Act {
                id,
                person: p.id,
                setting: "ae",
                start: arrive,
                end: Some(arrive + dur * 60),
                provider: &acute,
                site: Some(&ae_site),
                class: Some("type1"),
                dx: Some(dx),
                cost: ctx.cost.ae,
                disch: Some("discharged"),
                arrival: Some(if by_amb { "ambulance" } else { "walk_in" }),
                ..Act::default()
            })?;
        }
        for _ in 0..self
            .rng
            .poisson((0.01 + if age >= 75 { 0.04 } else { 0.0 }) * frac)
        {
            let d = day_in(&mut self.rng);
            let t = ts(d, self.rng.below(DAY as u64) as i64);
            self.ambulance(p.id, t, "see_and_treat")?;
        }
        for _ in 0..self.rng.poisson(0.01 * frac) {
            let d = day_in(&mut self.rng);
            let t = ts(d, self.rng.below(DAY as u64) as i64);
            self.ambulance(p.id, t, "hear_and_treat")?;
        }
        // --- planned care -----------------------------------------------------------------
        let lam_el = (0.03 + 0.003 * (age as f64 - 30.0).max(0.0)) * (1.0 + 0.15 * nconds);
        for _ in 0..self.rng.poisson(lam_el * frac) {
            let d = day_in(&mut self.rng).max(free_from);
            if d >= w1 {
                break;
            }
            let (dx, spec) = elective_dx(&mut self.rng, p);
            let day_case = self.rng.chance(0.75);
            let prov = if partner != acute && self.rng.chance(0.3) {
                partner.clone()
            } else {
                acute.clone()
            };
            let (los, cost, class) = if day_case {
                (0, ctx.cost.dc, "day_case")
            } else {
                let m = calibrate::los_mean(age, false)
                    * if age >= 80 { cal.los80[ccg].0 } else { 1.0 };
                (
                    1 + self.rng.geometric(m - 1.0) as i32,
                    ctx.cost.el,
                    "ordinary",
                )
            };
            let start = ts(d, 8 * 3600);
            let id = self.new_activity_id();
            self.act(Act {
                id,
                person: p.id,
                setting: "apc",
                start,
                end: Some(ts(d + los, 16 * 3600)),
                provider: &prov,
                method: Some("elective"),
                class: Some(class),
                dx: Some(dx),
                spec: Some(spec),
                cost,
                disch: Some("usual_residence"),
                los: Some(los),
                fit: Some(d + los),
                ..Act::default()
            })?;
            self.secondary_dx(p, age, d + los, id)?;
            free_from = d + los + 1;
        }
        // referrals and outpatients
        let lam_ref = 0.1 + 0.004 * age as f64 + 0.06 * nconds;
        for _ in 0..self.rng.poisson(lam_ref * frac) {
            let d = day_in(&mut self.rng);
            let (_, spec) = elective_dx(&mut self.rng, p);
            let r = self.rng.f64();
            let (prio, wait) = if age > 40 && r < 0.08 {
                ("two_week_wait", 7 + self.rng.below(8) as i32)
            } else if r < 0.23 {
                ("urgent", 14 + self.rng.below(28) as i32)
            } else {
                ("routine", 28 + self.rng.below(98) as i32)
            };
            let rid = self.id(self.next_referral);
            self.next_referral += 1;
            self.out.referral.row(&[
                V::I(rid),
                V::I(p.id),
                V::S(&practice),
                V::S(spec),
                V::D(d),
                V::S(prio),
            ])?;
            self.out.events += 1;
            let prov = if partner != acute && self.rng.chance(0.25) {
                partner.clone()
            } else {
                acute.clone()
            };
            let mut od = d + wait;
            if od < w1 {
                let id = self.new_activity_id();
                let t = ts(od, 9 * 3600 + self.rng.below(8 * 3600) as i64);
                self.act(Act {
                    id,
                    person: p.id,
                    setting: "op",
                    start: t,
                    provider: &prov,
                    class: Some("first"),
                    spec: Some(spec),
                    cost: ctx.cost.op1,
                    referral: Some(rid),
                    ..Act::default()
                })?;
                for _ in 0..self.rng.poisson(1.2) {
                    od += 30 + self.rng.below(150) as i32;
                    if od >= w1 {
                        break;
                    }
                    let id = self.new_activity_id();
                    let t = ts(od, 9 * 3600 + self.rng.below(8 * 3600) as i64);
                    self.act(Act {
                        id,
                        person: p.id,
                        setting: "op",
                        start: t,
                        provider: &prov,
                        class: Some("follow_up"),
                        spec: Some(spec),
                        cost: ctx.cost.opf,
                        ..Act::default()
                    })?;
                }
            }
        }
        // --- community and mental health --------------------------------------------------
        let lam_comm = if age >= 75 {
            (1.0 + 0.5 * nconds) * p.u
        } else if nconds >= 3.0 {
            0.3
        } else {
            0.03
        };
        for _ in 0..self.rng.poisson(lam_comm * frac) {
            let d = day_in(&mut self.rng);
            let id = self.new_activity_id();
            let t = ts(d, 9 * 3600 + self.rng.below(9 * 3600) as i64);
            self.act(Act {
                id,
                person: p.id,
                setting: "community",
                start: t,
                provider: &community,
                class: Some("contact"),
                cost: ctx.cost.comm,
                ..Act::default()
            })?;
        }
        let mh = g.mental_health.clone();
        let lam_mh = if p.has(c::SMI) { 6.0 } else { 0.0 }
            + if p.has(c::DEPRESSION) { 0.4 } else { 0.0 }
            + if p.has(c::DEMENTIA) { 1.0 } else { 0.0 }
            + if age < 18 { 0.03 } else { 0.0 };
        for _ in 0..self.rng.poisson(lam_mh * frac) {
            let d = day_in(&mut self.rng);
            let spec = if age < 18 {
                "711"
            } else if p.has(c::DEMENTIA) {
                "715"
            } else {
                "710"
            };
            let id = self.new_activity_id();
            self.act(Act {
                id,
                person: p.id,
                setting: "mental_health",
                start: ts(d, 10 * 3600),
                provider: &mh,
                class: Some("contact"),
                spec: Some(spec),
                cost: ctx.cost.mh,
                ..Act::default()
            })?;
        }
        if p.has(c::SMI) && p.mh_inpatient_until.is_none_or(|u| u < w0) {
            for _ in 0..self.rng.poisson(0.04 * frac) {
                let d = day_in(&mut self.rng);
                let los = 1 + self.rng.geometric(34.0) as i32;
                let open = d + los >= self.end;
                let id = self.new_activity_id();
                let days = if open { self.end - d } else { los };
                self.act(Act {
                    id,
                    person: p.id,
                    setting: "mental_health",
                    start: ts(d, 14 * 3600),
                    end: if open {
                        None
                    } else {
                        Some(ts(d + los, 11 * 3600))
                    },
                    provider: &mh,
                    site: Some("RHAHIG"),
                    method: Some("emergency"),
                    class: Some("inpatient"),
                    dx: Some("F209"),
                    spec: Some("710"),
                    cost: days as f64 * ctx.cost.mh_bed,
                    disch: if open { None } else { Some("usual_residence") },
                    los: if open { None } else { Some(los) },
                    ..Act::default()
                })?;
                p.mh_inpatient_until = Some(d + los);
            }
        }
        if p.has(c::LD) && (18..65).contains(&age) && p.mh_inpatient_until.is_none_or(|u| u < w0) {
            let s = cal.ld_inpatient_share;
            if self.rng.chance(s / (LD_STAY / 365.25 * (1.0 - s)) * frac) {
                let d = day_in(&mut self.rng);
                let until = d + 1 + self.rng.exp(LD_STAY) as i32;
                p.mh_inpatient_until = Some(until);
                self.ld_spell(p, d, until)?;
            }
        }
        // --- social care ------------------------------------------------------------------
        if age >= 65 && p.care_home.is_none() && self.rng.chance(care_home_hazard(p, age) * frac) {
            let d = day_in(&mut self.rng);
            p.care_home = Some(d);
            p.home_care_until = None;
            let nursing = self.rng.chance(0.4);
            self.social_care_start(
                p,
                if nursing { "nursing" } else { "residential" },
                d,
                None,
                &la_code,
            )?;
        }
        if age >= 65
            && p.care_home.is_none()
            && p.home_care_until.is_none_or(|u| u < w0)
            && self.rng.chance(home_care_hazard(p, age) * frac)
        {
            let d = day_in(&mut self.rng);
            let until = d + 1 + self.rng.exp(548.0) as i32;
            p.home_care_until = Some(until);
            self.social_care_start(p, "home_care", d, Some(until), &la_code)?;
        }
        if (18..65).contains(&age)
            && !p.direct_payment
            && nconds >= 3.0
            && self.rng.chance(0.005 * frac)
        {
            let d = day_in(&mut self.rng);
            p.direct_payment = true;
            self.social_care_start(p, "direct_payment", d, None, &la_code)?;
        }
        // --- births -----------------------------------------------------------------------
        if female
            && calibrate::fertility(age) > 0.0
            && self
                .rng
                .chance(calibrate::fertility(age) * cal.fertility_scale[la] * frac)
        {
            let d = day_in(&mut self.rng);
            self.birth(p, d, &acute, &ae_site)?;
        }
        // --- death in hospital ------------------------------------------------------------
        if let (Some(dd), true) = (p.death, w1 < t1)
            && self.rng.chance(0.45)
            && dd > free_from
        {
            {
                let los = (self.rng.geometric(6.0) as i32).min(dd - free_from);
                let s = dd - los;
                let id = self.new_activity_id();
                let dx = p.death_cause.unwrap_or("R69");
                let cost = if los <= 1 {
                    ctx.cost.em_short
                } else {
                    ctx.cost.em_long + (los - 5).max(0) as f64 * ctx.cost.xbd
                };
                self.act(Act {
                    id,
                    person: p.id,
                    setting: "apc",
                    start: ts(s, 12 * 3600),
                    end: Some(ts(dd, 12 * 3600)),
                    provider: &acute,
                    site: Some(&ae_site),
                    method: Some("emergency"),
                    class: Some("ordinary"),
                    dx: Some(dx),
                    spec: Some(specialty_for(dx, age)),
                    cost,
                    disch: Some("died"),
                    los: Some(los),
                    fit: Some(dd),
                    ..Act::default()
                })?;
                self.secondary_dx(p, age, dd, id)?;
            }
        }
        Ok(())
    }

    fn ae_minutes(&mut self, provider: &str) -> i64 {
        let breach = self.ctx.cal.ae_breach.get(provider).copied().unwrap_or(0.1);
        if self.rng.chance(breach) {
            241 + self.rng.exp(100.0) as i64
        } else {
            20 + self.rng.below(220) as i64
        }
    }

    fn ambulance(
        &mut self,
        person: i64,
        arrival: i64,
        kind: &'static str,
    ) -> Result<(), LakeError> {
        let r = self.rng.f64();
        let cat = if r < 0.08 {
            "red1"
        } else if r < 0.5 {
            "red2"
        } else {
            "green"
        };
        let median: f64 = if cat == "green" { 20.0 } else { 6.9 };
        let resp = if kind == "hear_and_treat" {
            None
        } else {
            Some(((median.ln() + 0.45 * self.rng.normal()).exp() * 10.0).round() / 10.0)
        };
        let call = arrival - 60 * (resp.unwrap_or(0.0) as i64 + 35);
        let cost = match kind {
            "see_and_convey" => self.ctx.cost.amb_sc,
            "see_and_treat" => self.ctx.cost.amb_st,
            _ => self.ctx.cost.amb_ht,
        };
        let id = self.new_activity_id();
        let amb = self.ctx.geo.ambulance.clone();
        self.act(Act {
            id,
            person,
            setting: "ambulance",
            start: call,
            end: Some(arrival),
            provider: &amb,
            class: Some(kind),
            cost,
            amb_cat: Some(cat),
            resp,
            ..Act::default()
        })
    }

    fn ld_spell(&mut self, p: &Person, since: i32, until: i32) -> Result<(), LakeError> {
        let open = until >= self.end;
        let days = (until.min(self.end) - since.max(self.ctx.start)).max(0);
        let id = self.new_activity_id();
        let mh = self.ctx.geo.mental_health.clone();
        self.act(Act {
            id,
            person: p.id,
            setting: "mental_health",
            start: ts(since, 12 * 3600),
            end: if open {
                None
            } else {
                Some(ts(until, 12 * 3600))
            },
            provider: &mh,
            site: Some("RHAHIG"),
            method: Some("transfer"),
            class: Some("inpatient"),
            dx: Some("F79"),
            spec: Some("700"),
            cost: days as f64 * self.ctx.cost.mh_bed,
            disch: if open { None } else { Some("usual_residence") },
            los: if open { None } else { Some(until - since) },
            ..Act::default()
        })
    }

    fn birth(&mut self, mother: &Person, d: i32, acute: &str, site: &str) -> Result<(), LakeError> {
        let cal = self.ctx.cal;
        let l = &self.ctx.geo.lsoas[mother.lsoa as usize];
        let (la, decile) = (l.la, l.decile);
        let mage = mother.age(d);
        // the mother's maternity spell
        let los = self.rng.geometric(1.5) as i32;
        let id = self.new_activity_id();
        self.act(Act {
            id,
            person: mother.id,
            setting: "apc",
            start: ts(d, 6 * 3600),
            end: Some(ts(d + los, 15 * 3600)),
            provider: acute,
            site: Some(site),
            method: Some("maternity"),
            class: Some("ordinary"),
            dx: Some("O800"),
            spec: Some("501"),
            cost: self.ctx.cost.mat,
            disch: Some("usual_residence"),
            los: Some(los),
            fit: Some(d + los),
            ..Act::default()
        })?;
        // the baby
        let reg = d + 5 + self.rng.below(6) as i32;
        let mut b = mother.clone();
        b.id = self.new_person_id();
        b.female = self.rng.chance(0.487);
        b.birth = d;
        b.eth = intern_eth(if self.rng.chance(0.95) {
            mother.eth
        } else {
            "D"
        });
        b.u = self.rng.gamma(2.0) / 2.0;
        b.conds = 0;
        b.onset = [0; model::N_COND];
        b.reg_start = reg;
        b.moved_out = None;
        b.death = None;
        b.death_cause = None;
        b.care_home = None;
        b.home_care_until = None;
        b.direct_payment = false;
        b.mh_inpatient_until = None;
        b.recent_emergencies = 0;
        b.mother_smoked = mother.smoke == model::CURRENT;
        model::draw_lifestyle(&mut self.rng, &mut b, 0, decile, la, cal);
        model::draw_prevalent_conditions(&mut self.rng, &mut b, 0, d, decile, cal);
        let term = self.rng.chance(0.925);
        let gest = if term {
            37 + self.rng.below(5)
        } else {
            24 + self.rng.below(13)
        };
        let weight = if term {
            cal.birth_weight_mean[la]
                + calibrate::birth_weight_shift(decile, b.mother_smoked)
                + calibrate::BIRTH_WEIGHT_SD * self.rng.normal()
        } else {
            2300.0 + 600.0 * self.rng.normal() - 120.0 * (36 - gest as i32) as f64
        };
        let rec = reg + 3 + self.rng.below(8) as i32;
        self.obs(
            b.id,
            codes::OBS_BIRTH_WEIGHT,
            Some(weight.round().max(400.0)),
            rec,
        )?;
        self.obs(b.id, codes::OBS_GESTATION, Some(gest as f64), rec)?;
        let bf = self.rng.chance(logistic(
            cal.breastfeeding[la] + model::LifestyleLp::breastfeeding(mage, decile, mother.eth),
        ));
        let bd = d + 42 + self.rng.below(14) as i32;
        self.obs(
            b.id,
            codes::OBS_BREASTFEEDING,
            Some(if bf { 1.0 } else { 0.0 }),
            bd,
        )?;
        self.people.push(b);
        Ok(())
    }

    fn social_care_start(
        &mut self,
        p: &Person,
        service: &'static str,
        d: i32,
        until: Option<i32>,
        la: &str,
    ) -> Result<(), LakeError> {
        if d >= self.end {
            return Ok(()); // the package would begin after the lake's span
        }
        let cost = match service {
            "residential" => self.ctx.cost.res,
            "nursing" => self.ctx.cost.nurs,
            "home_care" => self.ctx.cost.home,
            "reablement" => self.ctx.cost.reab,
            _ => self.ctx.cost.dp,
        };
        let id = self.new_activity_id();
        self.act(Act {
            id,
            person: p.id,
            setting: "social_care_assessment",
            start: ts(d - 3, 10 * 3600),
            end: Some(ts(d - 3, 11 * 3600)),
            provider: la,
            cost: self.ctx.cost.assess,
            ..Act::default()
        })?;
        self.social_row(p, service, d, until, cost, la)
    }

    fn social_row(
        &mut self,
        p: &Person,
        service: &str,
        start: i32,
        end: Option<i32>,
        weekly: f64,
        la: &str,
    ) -> Result<(), LakeError> {
        if start >= self.end {
            return Ok(()); // begins after the lake's span
        }
        // packages end at death or moving away; those still running stay open (null)
        let left = p.left();
        let end = match (end, left) {
            (Some(e), Some(l)) => Some(e.min(l)),
            (Some(e), None) => Some(e),
            (None, l) => l,
        };
        let end = end.filter(|e| *e < self.end);
        self.out.social_care.row(&[
            V::I(p.id),
            V::S(service),
            V::D(start),
            end.map_or(V::N, V::D),
            V::F(weekly),
            V::S(la),
        ])?;
        self.out.events += 1;
        Ok(())
    }

    fn condition_row(
        &mut self,
        p: &Person,
        k: usize,
        d: i32,
        activity: Option<i64>,
    ) -> Result<(), LakeError> {
        if d >= self.end {
            return Ok(()); // after the lake's span: not yet recorded
        }
        let cc = &CONDITIONS[k];
        if let Some(a) = activity {
            self.out.condition.row(&[
                V::I(p.id),
                V::S("ICD10"),
                V::S(cc.icd10),
                V::D(d),
                V::I(a),
            ])?;
        } else {
            self.out.condition.row(&[
                V::I(p.id),
                V::S("SNOMED"),
                V::S(cc.snomed),
                V::D(d),
                V::N,
            ])?;
        }
        self.out.events += 1;
        Ok(())
    }

    fn secondary_dx(
        &mut self,
        p: &Person,
        age: i32,
        d: i32,
        activity: i64,
    ) -> Result<(), LakeError> {
        for k in 0..model::N_COND {
            if p.has(k) && self.rng.chance(0.8) {
                self.condition_row(p, k, d, Some(activity))?;
            }
        }
        if age >= 75 {
            // frailty-related codes (Hospital Frailty Risk Score inputs)
            let frail =
                0.1 + 0.08 * p.n_conds() as f64 + if p.has(c::DEMENTIA) { 0.2 } else { 0.0 };
            for code in ["R296", "W19", "Z741", "R410", "N390", "F051", "L899", "E86"] {
                if self.rng.chance(frail.min(0.6) * 0.5) && d < self.end {
                    self.out.condition.row(&[
                        V::I(p.id),
                        V::S("ICD10"),
                        V::S(code),
                        V::D(d),
                        V::I(activity),
                    ])?;
                    self.out.events += 1;
                }
            }
        }
        Ok(())
    }

    fn obs(
        &mut self,
        person: i64,
        code: codes::ObsCode,
        value: Option<f64>,
        d: i32,
    ) -> Result<(), LakeError> {
        if d >= self.end {
            return Ok(()); // after the lake's span
        }
        self.out.observation.row(&[
            V::I(person),
            V::S(code.code),
            value.map_or(V::N, V::F),
            code.unit.map_or(V::N, V::S),
            V::D(d),
        ])?;
        self.out.events += 1;
        Ok(())
    }

    /// Write an activity row as the lake sees it on its last day: contacts that begin
    /// after the span are not there yet, and those still running at its end are open
    /// (no end, length of stay or discharge destination).
    fn act(&mut self, mut a: Act<'_>) -> Result<(), LakeError> {
        fn s(x: Option<&str>) -> V<'_> {
            x.map_or(V::N, V::S)
        }
        let span_end = ts(self.end, 0);
        if a.start >= span_end {
            return Ok(());
        }
        if a.end.is_some_and(|e| e > span_end) {
            a.end = None;
            a.los = None;
            a.disch = None;
        }
        self.out.activity.row(&[
            V::I(a.id),
            V::I(a.person),
            V::S(a.setting),
            V::T(a.start),
            a.end.map_or(V::N, V::T),
            V::S(a.provider),
            s(a.site),
            s(a.method),
            s(a.class),
            s(a.dx),
            s(a.spec),
            V::F((a.cost * 100.0).round() / 100.0),
            s(a.disch),
            a.los.map_or(V::N, |x| V::I(x as i64)),
            a.fit.map_or(V::N, V::D),
            s(a.arrival),
            s(a.amb_cat),
            a.resp.map_or(V::N, V::F),
            a.referral.map_or(V::N, V::I),
        ])?;
        self.out.events += 1;
        Ok(())
    }

    fn person_row(&mut self, p: &Person) -> Result<(), LakeError> {
        let g = self.ctx.geo;
        let l = &g.lsoas[p.lsoa as usize];
        let left = p.left().filter(|d| *d < self.end);
        self.out.person.row(&[
            V::I(p.id),
            V::S(if p.female { "F" } else { "M" }),
            V::D(time::month_start(p.birth)),
            p.death.filter(|d| *d < self.end).map_or(V::N, V::D),
            p.death
                .filter(|d| *d < self.end)
                .and(p.death_cause)
                .map_or(V::N, V::S),
            V::S(&l.code),
            V::I(l.decile as i64),
            V::S(&g.las[l.la]),
            V::S(&l.district),
            V::S(&g.practices[p.practice as usize].0),
            V::S(p.eth),
            V::D(p.reg_start),
            left.map_or(V::N, V::D),
        ])
    }

    fn vault_row(&mut self, p: &Person) -> Result<(), LakeError> {
        // NHS number: a bijective scramble of this partition's sequence over the
        // 8-digit stems, skipping stems whose check digit would be 10
        let nhs = loop {
            let k = self.next_nhs * self.spec.total as u64 + self.spec.index as u64;
            self.next_nhs += 1;
            let stem = ((k % 100_000_000) * 7_654_321 + 1_234_567) % 100_000_000;
            if let Some(n) = trent_model::nhs_number::test_range_number(stem as u32) {
                break n;
            }
        };
        let given = if p.female {
            *self.rng.pick(names::FEMALE)
        } else {
            *self.rng.pick(names::MALE)
        };
        let family = *self.rng.pick(names::FAMILY);
        let l = &self.ctx.geo.lsoas[p.lsoa as usize];
        const LETTERS: &[u8] = b"ABDEFGHJLNPQRSTUWXYZ";
        let pc = format!(
            "{} {}{}{}",
            l.postcode_district,
            1 + self.rng.below(9),
            LETTERS[self.rng.below(LETTERS.len() as u64) as usize] as char,
            LETTERS[self.rng.below(LETTERS.len() as u64) as usize] as char
        );
        let addr = format!(
            "{} {}",
            1 + self.rng.below(180),
            self.rng.pick(names::STREETS)
        );
        let practice = self.ctx.geo.practices[p.practice as usize].0.clone();
        self.out.vault.row(&[
            V::I(p.id),
            V::S(&nhs),
            V::S(given),
            V::S(family),
            V::D(p.birth),
            V::S(if p.female { "F" } else { "M" }),
            V::S(&pc),
            V::S(&addr),
            V::S(&practice),
        ])
    }
}

/// One `activity` row being written: the columns of `docs/schema.md`, named, so that a
/// call site says only what a contact has (`..Act::default()` leaves the rest null).
#[derive(Default)]
struct Act<'s> {
    id: i64,
    person: i64,
    setting: &'s str,
    /// seconds since the epoch
    start: i64,
    end: Option<i64>,
    provider: &'s str,
    site: Option<&'s str>,
    method: Option<&'s str>,
    class: Option<&'s str>,
    dx: Option<&'s str>,
    spec: Option<&'s str>,
    cost: f64,
    disch: Option<&'s str>,
    los: Option<i32>,
    fit: Option<i32>,
    arrival: Option<&'s str>,
    amb_cat: Option<&'s str>,
    resp: Option<f64>,
    referral: Option<i64>,
}

/// Mean length (days) of a learning disability inpatient stay.
pub const LD_STAY: f64 = 500.0;

fn care_home_hazard(p: &Person, age: i32) -> f64 {
    0.003
        * (0.1 * (age as f64 - 80.0)).exp()
        * if p.has(c::DEMENTIA) { 4.0 } else { 1.0 }
        * (1.0 + 0.2 * p.n_conds() as f64)
        * p.u
}

fn home_care_hazard(p: &Person, age: i32) -> f64 {
    0.012
        * (0.08 * (age as f64 - 75.0)).exp()
        * (1.0 + 0.3 * p.n_conds() as f64)
        * if p.has(c::DEMENTIA) { 2.0 } else { 1.0 }
}

fn death_code(rng: &mut Rng, p: &Person, cause: usize) -> &'static str {
    match cause {
        model::CVD => {
            if p.has(c::HF) {
                "I500"
            } else if p.has(c::STROKE) {
                "I639"
            } else if p.has(c::CHD) {
                rng.pick_str(&["I219", "I251"])
            } else {
                rng.pick_str(&["I219", "I251", "I64", "I709"])
            }
        }
        model::RESP => {
            if p.has(c::COPD) {
                "J449"
            } else {
                rng.pick_str(&["J189", "J449", "J841"])
            }
        }
        model::CANCER => {
            if p.smoke != model::NEVER && rng.chance(0.4) {
                "C349"
            } else if p.female {
                rng.pick_str(&["C509", "C189", "C56", "C259"])
            } else {
                rng.pick_str(&["C61", "C189", "C259", "C169"])
            }
        }
        _ => {
            if p.has(c::DEMENTIA) {
                "F03"
            } else if p.has(c::LIVER) {
                "K703"
            } else if p.has(c::CKD) {
                "N185"
            } else if p.has(c::PARKINSONS) {
                "G20"
            } else {
                rng.pick_str(&["A419", "K922", "X59", "E149", "G309", "R54"])
            }
        }
    }
}

fn alcohol_dx(rng: &mut Rng, p: &Person) -> &'static str {
    if p.has(c::LIVER) {
        "K703"
    } else if p.has(c::ALCOHOL_DEP) {
        rng.pick_str(&["F102", "F103", "F100"])
    } else {
        rng.pick_str(&["F100", "F100", "T510", "K292", "K860"])
    }
}

fn emergency_dx(rng: &mut Rng, p: &Person, age: i32) -> &'static str {
    let mut opts: Vec<&'static str> = Vec::with_capacity(8);
    if p.has(c::HF) {
        opts.push("I500");
    }
    if p.has(c::COPD) {
        opts.extend(["J441", "J440"]);
    }
    if p.has(c::DIABETES) {
        opts.push("E162");
    }
    if p.has(c::CHD) {
        opts.extend(["I214", "I209"]);
    }
    if p.has(c::STROKE) || p.has(c::AF) {
        opts.push("I639");
    }
    if p.has(c::ASTHMA) {
        opts.push("J459");
    }
    if p.has(c::CANCER) {
        opts.push("C809");
    }
    if p.has(c::EPILEPSY) {
        opts.push("G409");
    }
    if age >= 75 {
        opts.extend(["N390", "S720", "J189", "R296", "F051"]);
    }
    if opts.is_empty() || rng.chance(0.4) {
        let general: &[&str] = if age < 16 {
            &["J219", "R509", "A099", "S069", "J069"]
        } else {
            &[
                "R074", "R104", "L031", "A419", "K358", "S069", "J189", "N390", "K590",
            ]
        };
        return rng.pick_str(general);
    }
    opts[rng.below(opts.len() as u64) as usize]
}

fn elective_dx(rng: &mut Rng, p: &Person) -> (&'static str, &'static str) {
    if p.has(c::OA) && rng.chance(0.3) {
        return ("M171", "110");
    }
    if p.has(c::CANCER) && rng.chance(0.4) {
        return ("C809", "370");
    }
    *rng.pick(&[
        ("H251", "130"),
        ("K409", "100"),
        ("K802", "100"),
        ("K219", "301"),
        ("N40", "101"),
        ("M232", "110"),
        ("N920", "502"),
        ("J342", "120"),
        ("L989", "330"),
        ("I209", "320"),
        ("G560", "110"),
    ])
}

fn specialty_for(dx: &str, age: i32) -> &'static str {
    if age < 16 {
        return "420";
    }
    match dx.as_bytes().first() {
        Some(b'S') | Some(b'W') => "110",
        Some(b'K') => "100",
        Some(b'J') => "340",
        Some(b'I') if dx.starts_with("I2") => "320",
        Some(b'F') => "300",
        Some(b'C') => "370",
        _ if age >= 75 => "430",
        _ => "300",
    }
}

/// Split the area into partitions: consecutive LSOAs of one locality holding at most
/// `max_people` people at the start.
pub fn partitions(geo: &Geo, scale: f64, max_people: u64) -> Vec<PartitionSpec> {
    let mut out: Vec<Vec<(usize, u64)>> = Vec::new();
    let mut cur: Vec<(usize, u64)> = Vec::new();
    let mut cur_n = 0;
    let mut cur_loc = usize::MAX;
    for (i, l) in geo.lsoas.iter().enumerate() {
        let n = (l.population as f64 * scale).round() as u64;
        if (l.locality != cur_loc || cur_n + n > max_people) && !cur.is_empty() {
            out.push(std::mem::take(&mut cur));
            cur_n = 0;
        }
        cur_loc = l.locality;
        cur.push((i, n));
        cur_n += n;
    }
    if !cur.is_empty() {
        out.push(cur);
    }
    let total = out.len();
    out.into_iter()
        .enumerate()
        .map(|(index, lsoas)| PartitionSpec {
            index,
            total,
            lsoas,
        })
        .collect()
}
