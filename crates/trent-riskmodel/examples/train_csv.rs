//! Generate a synthetic emergency-admission matrix, or train and evaluate trent's
//! models on CSV matrices. `bench/riskmodel/run.sh` uses both to set trent beside
//! LightGBM on the same data.
//!
//! ```text
//! train_csv generate --rows N --seed S --train-out train.csv --test-out test.csv [--test-fraction 0.2]
//! train_csv train --train train.csv --test test.csv [--iterations 200] [--leaves 31]
//!           [--learning-rate 0.1] [--min-data 20] [--threads 2] [--logistic]
//!           [--predictions p.csv] [--artefact model.json] [--report]
//! ```
//!
//! The synthetic truth is non-linear on purpose (an age curve with a knee at 80, a
//! U-shaped BMI effect, interactions of dementia with living alone and of heart
//! failure with low eGFR, a recent-admission step, missingness that carries risk) and
//! includes an unobserved frailty term, so no model can reach an AUROC of 1. The
//! intercept is solved for a 5% prevalence. All data are synthetic.

use std::io::Write;
use std::time::Instant;
use trent_riskmodel::{
    Artefact, FeatureMatrix, GbtParams, LogisticParams, Model, TrainParams, evaluate, sigmoid,
    train,
};
use trent_stats::rng::Rng;

fn main() {
    if let Err(e) = run() {
        eprintln!("error: {e}");
        std::process::exit(1);
    }
}

type Res<T> = Result<T, Box<dyn std::error::Error>>;

fn arg(args: &[String], name: &str) -> Option<String> {
    args.iter()
        .position(|a| a == name)
        .and_then(|i| args.get(i + 1).cloned())
}

fn num<T: std::str::FromStr>(args: &[String], name: &str, default: T) -> Res<T> {
    match arg(args, name) {
        None => Ok(default),
        Some(v) => v
            .parse()
            .map_err(|_| format!("{name}: '{v}' is not a valid number").into()),
    }
}

fn run() -> Res<()> {
    let args: Vec<String> = std::env::args().skip(1).collect();
    match args.first().map(String::as_str) {
        Some("generate") => generate(&args),
        Some("train") => train_cmd(&args),
        _ => Err("usage: train_csv generate|train [options] (see the file's docs)".into()),
    }
}

const HEADER: &[&str] = &[
    "id",
    "label",
    "age:num",
    "female:bin",
    "imd_decile:num",
    "ethnicity:cat",
    "emergency_admissions_12m:num",
    "emergency_admissions_24m:num",
    "ae_attendances_12m:num",
    "outpatient_attendances_12m:num",
    "gp_contacts_12m:num",
    "n_ltc:num",
    "diabetes:bin",
    "copd:bin",
    "asthma:bin",
    "heart_failure:bin",
    "ckd:bin",
    "atrial_fibrillation:bin",
    "dementia:bin",
    "cancer:bin",
    "depression:bin",
    "smi:bin",
    "frailty_index:num",
    "n_medicines:num",
    "bmi:num",
    "egfr:num",
    "systolic_bp:num",
    "hba1c:num",
    "smoking:cat",
    "lives_alone:bin",
    "care_home:bin",
    "carer:bin",
    "days_since_admission:num",
    "bed_days_12m:num",
    "community_contacts_12m:num",
    "mental_health_contacts_12m:num",
    "alcohol_flag:bin",
    "noise_1:num",
    "noise_2:num",
    "noise_3:num",
    "noise_4:num",
    "noise_5:num",
    "sex:group",
    "age_band:group",
    "deprivation_quintile:group",
    "ethnic_group:group",
    "segment:group",
];

struct Person {
    values: Vec<f64>, // 40 features in HEADER order (NaN = missing)
    eta: f64,
    groups: [String; 5],
}

fn person(rng: &mut Rng) -> Person {
    let bern = |rng: &mut Rng, p: f64| rng.chance(p.clamp(0.0, 1.0)) as u8 as f64;
    let age = (18.0 + 82.0 * rng.f64().powf(1.3)).floor();
    let female = bern(rng, 0.51);
    let imd = (1 + rng.below(10)) as f64;
    let eth = [1.0, 1.0, 1.0, 1.0, 1.0, 1.0, 2.0, 3.0, 4.0, 5.0][rng.below(10) as usize];
    let frail_latent = rng.normal();
    let a = (age - 18.0) / 82.0; // 0..1
    let dep = (10.0 - imd) / 9.0; // 1 = most deprived
    let pr = |base: f64, k: f64| sigmoid(base + 3.0 * a + 0.6 * dep + k * frail_latent);
    let diabetes = bern(rng, pr(-3.6, 0.4));
    let copd = bern(rng, pr(-4.8, 0.5));
    let asthma = bern(rng, 0.1);
    let chf = bern(rng, pr(-6.0, 0.6));
    let ckd = bern(rng, pr(-5.0, 0.4));
    let af = bern(rng, pr(-5.5, 0.3));
    let dementia = bern(rng, pr(-7.5, 0.5) * (age > 60.0) as u8 as f64);
    let cancer = bern(rng, pr(-5.0, 0.2));
    let depression = bern(rng, 0.12 + 0.05 * dep);
    let smi = bern(rng, 0.012 + 0.01 * dep);
    let n_ltc = diabetes
        + copd
        + asthma
        + chf
        + ckd
        + af
        + dementia
        + cancer
        + depression
        + smi
        + rng.poisson(0.5 + 1.5 * a) as f64;
    let frailty =
        (0.02 + 0.25 * a * a + 0.03 * n_ltc + 0.04 * frail_latent.max(0.0)).clamp(0.0, 0.8);
    let util = (0.6 * frail_latent + 0.25 * n_ltc + 1.2 * a + 0.3 * dep - 1.8).exp();
    let adm12 = rng.poisson(0.15 * util) as f64;
    let adm24 = adm12 + rng.poisson(0.12 * util) as f64;
    let ae = adm12 + rng.poisson(0.35 * util + 0.1 * dep) as f64;
    let op = rng.poisson(1.0 + 1.5 * util) as f64;
    let gp = rng.poisson(3.0 + 4.0 * util) as f64;
    let meds = rng.poisson(0.5 + 1.5 * n_ltc) as f64;
    let bmi = if rng.chance(0.2) {
        f64::NAN
    } else {
        (27.0 + 5.0 * rng.normal()).clamp(14.0, 60.0)
    };
    let egfr_measured = rng.chance(0.4 + 0.4 * (ckd + diabetes).min(1.0));
    let egfr = if egfr_measured {
        (95.0 - 40.0 * a - 35.0 * ckd + 10.0 * rng.normal()).clamp(5.0, 130.0)
    } else {
        f64::NAN
    };
    let sbp = if rng.chance(0.3) {
        f64::NAN
    } else {
        125.0 + 20.0 * a + 15.0 * rng.normal()
    };
    let hba1c = if diabetes == 1.0 || rng.chance(0.1) {
        48.0 + 20.0 * diabetes + 10.0 * rng.normal().abs()
    } else {
        f64::NAN
    };
    let smoking = if rng.chance(0.1) {
        f64::NAN
    } else {
        [0.0, 0.0, 0.0, 1.0, 1.0, 2.0][rng.below(6) as usize]
    };
    let lives_alone = bern(rng, 0.1 + 0.3 * a);
    let care_home = bern(
        rng,
        if age > 75.0 {
            0.02 + 0.2 * (frailty - 0.2).max(0.0)
        } else {
            0.002
        },
    );
    let carer = bern(rng, 0.08);
    let days_since = if adm24 > 0.0 {
        if adm12 > 0.0 {
            rng.uniform(1.0, 365.0).floor()
        } else {
            rng.uniform(366.0, 730.0).floor()
        }
    } else {
        f64::NAN
    };
    let bed_days = if adm12 > 0.0 {
        (adm12 * rng.exp(4.0 + 6.0 * a)).round()
    } else {
        0.0
    };
    let community = rng.poisson(0.2 + 2.0 * frailty * util) as f64;
    let mh = rng.poisson(0.1 + 1.5 * smi + 0.3 * depression) as f64;
    let alcohol = bern(rng, 0.03 + 0.03 * dep);
    let noise: Vec<f64> = (0..5).map(|_| rng.normal()).collect();

    // The truth (log-odds before the intercept).
    let mut eta = 0.035 * (age - 50.0)
        + 0.06 * (age - 80.0).max(0.0)
        + 0.55 * adm12.ln_1p()
        + 0.2 * (adm24 - adm12).ln_1p()
        + 0.3 * ae.ln_1p()
        + 0.06 * n_ltc
        + 0.5 * chf
        + 0.45 * copd
        + 0.25 * ckd
        + 0.4 * dementia
        + 0.35 * cancer
        + 0.15 * diabetes
        + 2.0 * frailty
        + 0.25 * (imd <= 2.0) as u8 as f64
        + 0.8 * lives_alone * dementia
        + 0.6 * care_home
        + 0.2 * (smoking == 2.0) as u8 as f64
        + 0.3 * alcohol
        + 0.15 * smi
        + 0.1 * community.ln_1p();
    if chf == 1.0 && egfr < 45.0 {
        eta += 0.5;
    }
    if days_since < 90.0 {
        eta += 0.6;
    }
    if !bmi.is_nan() {
        eta += (0.01 * (bmi - 26.0).powi(2)).min(1.0);
    } else {
        eta += 0.1;
    }
    if !hba1c.is_nan() && hba1c > 75.0 {
        eta += 0.3;
    }
    eta += 0.35 * frail_latent; // unobserved

    let values = vec![
        age,
        female,
        imd,
        eth,
        adm12,
        adm24,
        ae,
        op,
        gp,
        n_ltc,
        diabetes,
        copd,
        asthma,
        chf,
        ckd,
        af,
        dementia,
        cancer,
        depression,
        smi,
        frailty,
        meds,
        bmi,
        egfr,
        sbp,
        hba1c,
        smoking,
        lives_alone,
        care_home,
        carer,
        days_since,
        bed_days,
        community,
        mh,
        alcohol,
        noise[0],
        noise[1],
        noise[2],
        noise[3],
        noise[4],
    ];
    let age_band = match age as u32 {
        0..=44 => "18-44",
        45..=64 => "45-64",
        65..=79 => "65-79",
        _ => "80+",
    };
    let ethnic = ["White", "Asian", "Black", "Mixed", "Other"][eth as usize - 1];
    let segment = if n_ltc == 0.0 {
        "healthy"
    } else if frailty >= 0.25 || care_home == 1.0 {
        "frail"
    } else if n_ltc >= 3.0 {
        "complex"
    } else {
        "long-term condition"
    };
    Person {
        values,
        eta,
        groups: [
            if female == 1.0 { "F" } else { "M" }.to_string(),
            age_band.to_string(),
            format!("Q{}", (imd as u32).div_ceil(2)),
            ethnic.to_string(),
            segment.to_string(),
        ],
    }
}

/// CPU seconds used by this process so far, all threads (Linux `/proc/self/stat`,
/// assuming the usual 100 ticks per second); `None` elsewhere.
fn cpu_seconds() -> Option<f64> {
    let stat = std::fs::read_to_string("/proc/self/stat").ok()?;
    // Fields after the parenthesised command name; utime and stime are the 12th and 13th.
    let rest = stat.rsplit_once(')')?.1;
    let f: Vec<&str> = rest.split_whitespace().collect();
    let ticks = f.get(11)?.parse::<f64>().ok()? + f.get(12)?.parse::<f64>().ok()?;
    Some(ticks / 100.0)
}

fn generate(args: &[String]) -> Res<()> {
    let rows: usize = num(args, "--rows", 100_000)?;
    let seed: u64 = num(args, "--seed", 1)?;
    let test_fraction: f64 = num(args, "--test-fraction", 0.2)?;
    let train_out = arg(args, "--train-out").ok_or("--train-out is required")?;
    let test_out = arg(args, "--test-out").ok_or("--test-out is required")?;
    let t0 = Instant::now();
    let mut rng = Rng::stream(seed, 1);
    let people: Vec<Person> = (0..rows).map(|_| person(&mut rng)).collect();
    // Intercept for a 5% prevalence, by bisection.
    let (mut lo, mut hi) = (-20.0, 5.0);
    for _ in 0..60 {
        let mid = 0.5 * (lo + hi);
        let prev = people.iter().map(|p| sigmoid(mid + p.eta)).sum::<f64>() / rows as f64;
        if prev > 0.05 { hi = mid } else { lo = mid }
    }
    let intercept = 0.5 * (lo + hi);
    let mut train_w = std::io::BufWriter::new(std::fs::File::create(&train_out)?);
    let mut test_w = std::io::BufWriter::new(std::fs::File::create(&test_out)?);
    let header = HEADER.join(",");
    writeln!(train_w, "{header}")?;
    writeln!(test_w, "{header}")?;
    let mut split = Rng::stream(seed, 2);
    let mut line = String::new();
    for (i, p) in people.iter().enumerate() {
        use std::fmt::Write as _;
        line.clear();
        let y = rng.chance(sigmoid(intercept + p.eta)) as u8;
        // Pseudonymous ids: a fixed odd multiplier scrambles the row number.
        let id = ((i as u64 + 1).wrapping_mul(0x9E37_79B9_7F4A_7C15) >> 1) as i64;
        write!(line, "{id},{y}")?;
        for v in &p.values {
            if v.is_nan() {
                line.push(',');
            } else if v.fract() == 0.0 {
                write!(line, ",{}", *v as i64)?;
            } else {
                write!(line, ",{:.4}", v)?;
            }
        }
        for g in &p.groups {
            write!(line, ",{g}")?;
        }
        line.push('\n');
        let w = if split.chance(test_fraction) {
            &mut test_w
        } else {
            &mut train_w
        };
        w.write_all(line.as_bytes())?;
    }
    train_w.flush()?;
    test_w.flush()?;
    println!(
        "{{\"rows\": {rows}, \"intercept\": {intercept:.4}, \"seconds\": {:.2}}}",
        t0.elapsed().as_secs_f64()
    );
    Ok(())
}

fn train_cmd(args: &[String]) -> Res<()> {
    let train_path = arg(args, "--train").ok_or("--train is required")?;
    let test_path = arg(args, "--test").ok_or("--test is required")?;
    let t0 = Instant::now();
    let tr = FeatureMatrix::from_csv(&train_path, "id", "label")?;
    let te = FeatureMatrix::from_csv(&test_path, "id", "label")?;
    let load_s = t0.elapsed().as_secs_f64();
    let params = if args.iter().any(|a| a == "--logistic") {
        TrainParams::Logistic(LogisticParams {
            threads: num(args, "--threads", 2)?,
            ..LogisticParams::default()
        })
    } else {
        TrainParams::Gbt(GbtParams {
            num_iterations: num(args, "--iterations", 200)?,
            num_leaves: num(args, "--leaves", 31)?,
            learning_rate: num(args, "--learning-rate", 0.1)?,
            min_data_in_leaf: num(args, "--min-data", 20)?,
            threads: num(args, "--threads", 2)?,
            seed: num(args, "--seed", 0)?,
            ..GbtParams::default()
        })
    };
    let t1 = Instant::now();
    let c1 = cpu_seconds();
    let model = train(&tr, None, &params)?;
    let train_s = t1.elapsed().as_secs_f64();
    let train_cpu_s = match (c1, cpu_seconds()) {
        (Some(a), Some(b)) => b - a,
        _ => f64::NAN,
    };
    let t2 = Instant::now();
    let p = model.predict(&te)?;
    let predict_s = t2.elapsed().as_secs_f64();
    let t3 = Instant::now();
    let ev = evaluate(&model, &te)?;
    let eval_s = t3.elapsed().as_secs_f64();
    if let Some(path) = arg(args, "--predictions") {
        let mut w = std::io::BufWriter::new(std::fs::File::create(&path)?);
        writeln!(w, "id,label,p")?;
        for ((id, y), p) in te.ids().iter().zip(te.labels()).zip(&p) {
            writeln!(w, "{id},{y},{p:.17e}")?;
        }
        w.flush()?;
    }
    if let Some(path) = arg(args, "--artefact") {
        let meta = serde_json::json!({"train": train_path, "test": test_path, "synthetic": true});
        Artefact::new(model.clone(), &tr, meta, Some(ev.clone()))?.save(&path)?;
    }
    if args.iter().any(|a| a == "--report") {
        eprintln!("{ev}");
        if let Model::Gbt(g) = &model {
            let mut imp = g.gain_importance();
            imp.sort_by(|a, b| b.1.total_cmp(&a.1));
            eprintln!("gain importance: {:?}", &imp[..imp.len().min(10)]);
        }
        let e = model.explain(&te, 0, 5)?;
        eprintln!("row 0 top reasons: {e:?}");
    }
    let auc = ev.overall.auroc.map(|a| a.value).unwrap_or(f64::NAN);
    println!(
        "{{\"model\": \"{}\", \"train_rows\": {}, \"test_rows\": {}, \"load_s\": {load_s:.3}, \"train_s\": {train_s:.3}, \"train_cpu_s\": {train_cpu_s:.2}, \"predict_s\": {predict_s:.3}, \"evaluate_s\": {eval_s:.3}, \"auroc\": {auc:.6}}}",
        model.kind(),
        tr.n_rows(),
        te.n_rows()
    );
    Ok(())
}
