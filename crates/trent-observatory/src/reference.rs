//! The reference implementation: every indicator computed row by row, in plain Rust, from
//! whole tables held in memory — slow, obvious and independent of the SQL the fast path
//! generates. Tests run both on small lakes and require the same numbers.
//!
//! What is shared with the fast path on purpose: reading the Parquet files, the roll-up
//! of a unit to its places ([`Rollup::add`]) and the statistics; what is not: choosing the
//! units (filters, dates, ages, snapshots, requirements, one-per-person), their numerators
//! and denominators, and counting the population.

use std::collections::HashMap;

use datafusion::prelude::SessionContext;

use crate::definition::{Grain, Indicator, Per, Population, Require};
use crate::engine::{PersonRow, pop_periods};
use crate::error::ObsError;
use crate::expr::Value;
use crate::period;
use crate::rollup::{Cell, Dims, Places, Rollup, age_group};
use crate::views::{Rows, age_on, read_rows};

/// Tables read once for the reference.
pub struct Tables {
    tables: HashMap<String, (Rows, HashMap<i64, Vec<usize>>)>,
    person: HashMap<i64, usize>,
}

impl Tables {
    /// Read every lake table the indicators need.
    pub async fn read(ctx: &SessionContext, names: &[&str]) -> Result<Tables, ObsError> {
        let mut tables = HashMap::new();
        let mut wanted: Vec<&str> = names.to_vec();
        wanted.push("person");
        for t in wanted {
            if tables.contains_key(t) {
                continue;
            }
            let rows = read_rows(ctx, t).await?;
            let pi = rows
                .col("person_id")
                .expect("every lake table has person_id");
            let mut by_person: HashMap<i64, Vec<usize>> = HashMap::new();
            for (i, r) in rows.rows.iter().enumerate() {
                if let Some(id) = r[pi].num() {
                    by_person.entry(id as i64).or_default().push(i);
                }
            }
            tables.insert(t.to_string(), (rows, by_person));
        }
        let (prows, _) = &tables["person"];
        let pi = prows.col("person_id").expect("person_id");
        let person = prows
            .rows
            .iter()
            .enumerate()
            .map(|(i, r)| (r[pi].num().expect("not null") as i64, i))
            .collect();
        Ok(Tables { tables, person })
    }

    fn person_val(&self, id: i64, col: &str) -> Value {
        let (rows, _) = &self.tables["person"];
        match (self.person.get(&id), rows.col(col)) {
            (Some(&i), Some(c)) => rows.rows[i][c].clone(),
            _ => Value::Null,
        }
    }

    /// A column of row `i` of `table` as the language sees it, on day `day`.
    fn get(&self, table: &str, i: usize, col: &str, day: i32) -> Value {
        let (rows, _) = &self.tables[table];
        let r = &rows.rows[i];
        if let Some(c) = rows.col(col) {
            return r[c].clone();
        }
        let pid = r[rows.col("person_id").expect("person_id")]
            .num()
            .unwrap_or(-1.0) as i64;
        match col {
            "age" => match self.person_val(pid, "birth_month").num() {
                Some(b) => Value::Num(age_on(b as i32, day) as f64),
                None => Value::Null,
            },
            "duration_minutes" => {
                let (s, e) = (
                    rows.col("start_ts").expect("activity"),
                    rows.col("end_ts").expect("activity"),
                );
                match (rows.micros[&s][i], rows.micros[&e][i]) {
                    (Some(s), Some(e)) => Value::Num((e as f64 / 1e6 - s as f64 / 1e6) / 60.0),
                    _ => Value::Null,
                }
            }
            "delayed_days" => {
                let e = r[rows.col("end_ts").expect("activity")].num();
                let f = r[rows.col("medically_fit_date").expect("activity")].num();
                match (e, f) {
                    (Some(e), Some(f)) => Value::Num(e - f),
                    _ => Value::Null,
                }
            }
            _ => self.person_val(pid, col),
        }
    }

    fn exists(&self, table: &str, i: usize, day: i32, pid: i64, r: &Require) -> bool {
        let anchor = match self.get(table, i, &r.anchor, day).num() {
            Some(a) => a as i64,
            None => return false,
        };
        let self_key = r.not_same.as_ref().map(|k| self.get(table, i, k, day));
        let (orows, oidx) = &self.tables[&r.table];
        let wc = orows.col(&r.when).expect("checked");
        for &j in oidx.get(&pid).map(|v| v.as_slice()).unwrap_or(&[]) {
            let Some(w) = orows.rows[j][wc].num() else {
                continue;
            };
            let w = w as i64;
            if w < anchor + r.within[0] as i64 || w > anchor + r.within[1] as i64 {
                continue;
            }
            if let Some(k) = &self_key {
                let other = self.get(&r.table, j, r.not_same.as_deref().expect("some"), w as i32);
                // `<>` with a null is not true
                if *k == Value::Null || other == Value::Null || *k == other {
                    continue;
                }
            }
            if let Some(f) = &r.filter
                && !f.eval(&|c| self.get(&r.table, j, c, w as i32)).is_true()
            {
                continue;
            }
            return true;
        }
        false
    }
}

struct Unit {
    pid: i64,
    period: i64,
    day: i32,
    num: f64,
    den: f64,
    age: i64,
    provider: Option<String>,
}

/// Compute an indicator's units row by row and roll them up.
pub fn units(
    t: &Tables,
    ind: &Indicator,
    start: i32,
    end: i32,
    places: &mut Places,
    rollup: &mut Rollup,
) {
    let table = ind.table.as_str();
    let (rows, _) = &t.tables[table];
    let pcol = rows.col("person_id").expect("person_id");
    let grain = ind.def.grain;
    let mut units: Vec<Unit> = vec![];
    for i in 0..rows.rows.len() {
        let pid = match rows.rows[i][pcol].num() {
            Some(p) => p as i64,
            None => continue,
        };
        if !t.person.contains_key(&pid) {
            continue; // the inner join with person
        }
        // (period, day) of each unit this row makes
        let mut at: Vec<(i64, i32)> = vec![];
        match (&ind.when, &ind.active) {
            (Some(w), _) => {
                if let Some(d) = rows.rows[i][rows.col(w).expect("checked")].num() {
                    let d = d as i32;
                    if d >= start && d < end {
                        at.push((period::of_month(grain, period::month_index(d)), d));
                    }
                }
            }
            (None, Some([a, b])) => {
                let s = rows.rows[i][rows.col(a).expect("checked")].num();
                let e = rows.rows[i][rows.col(b).expect("checked")].num();
                let g = if grain == Grain::Rolling12m {
                    Grain::Month
                } else {
                    grain
                };
                if let Some(s) = s {
                    for p in period::within(g, start, end) {
                        let mid = period::mid(g, p);
                        if (s as i32) <= mid
                            && e.is_none_or(|e| (e as i32) > mid)
                            && mid >= start
                            && mid < end
                        {
                            at.push((p, mid));
                        }
                    }
                }
            }
            _ => unreachable!("checked"),
        }
        for (p, day) in at {
            let get = |c: &str| t.get(table, i, c, day);
            if let Some(f) = &ind.filter
                && !f.eval(&get).is_true()
            {
                continue;
            }
            if !ind
                .require
                .iter()
                .all(|r| t.exists(table, i, day, pid, r) != r.absent)
            {
                continue;
            }
            let num_ok = ind
                .num_filter
                .as_ref()
                .is_none_or(|f| f.eval(&get).is_true())
                && ind
                    .num_require
                    .iter()
                    .all(|r| t.exists(table, i, day, pid, r) != r.absent);
            let val = |e: &Option<crate::expr::Expr>| match e {
                Some(v) => v.eval(&get).num().unwrap_or(0.0),
                None => 1.0,
            };
            let num = if num_ok { val(&ind.num_value) } else { 0.0 };
            let den = if ind.population.is_some() {
                0.0
            } else if ind
                .den_filter
                .as_ref()
                .is_none_or(|f| f.eval(&get).is_true())
            {
                val(&ind.den_value)
            } else {
                0.0
            };
            let age = match get("age").num() {
                Some(a) => a as i64,
                None => 0,
            };
            let provider = if ind.provider {
                match get("provider_code") {
                    Value::Str(s) => Some(s),
                    _ => None,
                }
            } else {
                None
            };
            units.push(Unit {
                pid,
                period: p,
                day,
                num,
                den,
                age,
                provider,
            });
        }
    }
    if ind.per != Per::Row {
        let latest = ind.per == Per::PersonLatest;
        let mut best: HashMap<(i64, i64), usize> = HashMap::new();
        for (k, u) in units.iter().enumerate() {
            let e = best.entry((u.pid, u.period)).or_insert(k);
            let b = &units[*e];
            let better = if u.day != b.day {
                (u.day > b.day) == latest
            } else if u.num != b.num {
                u.num > b.num
            } else {
                u.den > b.den
            };
            if better {
                *e = k;
            }
        }
        let mut keep: Vec<usize> = best.into_values().collect();
        keep.sort();
        units = keep
            .into_iter()
            .map(|k| {
                std::mem::replace(
                    &mut units[k],
                    Unit {
                        pid: 0,
                        period: 0,
                        day: 0,
                        num: 0.0,
                        den: 0.0,
                        age: 0,
                        provider: None,
                    },
                )
            })
            .collect();
    }
    for u in &units {
        let s = |c: &str| match t.person_val(u.pid, c) {
            Value::Str(s) => s,
            _ => String::new(),
        };
        let (practice, district, sex, eth) =
            (s("practice_code"), s("district"), s("sex"), s("ethnicity"));
        let imd = t.person_val(u.pid, "imd_decile").num().unwrap_or(0.0) as i64;
        let d = Dims {
            period: u.period,
            practice: &practice,
            district: &district,
            imd,
            sex: &sex,
            ag: age_group(u.age),
            ethnicity: &eth,
            provider: u.provider.as_deref(),
        };
        let cell = Cell {
            n: 1.0,
            num: u.num,
            num2: u.num * u.num,
            den: u.den,
            ..Cell::default()
        };
        rollup.add(places, &d, &cell);
    }
}

/// Population row by row: every person, every period, through [`Rollup::add`].
pub fn population(
    people: &[PersonRow],
    places: &mut Places,
    grain: Grain,
    pop: &Population,
    start: i32,
    end: i32,
) -> Rollup {
    let mut r = Rollup::new(
        true,
        false,
        vec![0, 2, 6],
        vec![1, 2],
        grain == Grain::Rolling12m,
    );
    let (_, ps) = pop_periods(grain, start, end);
    for &(p, mid, py) in &ps {
        for person in people {
            if person.reg_start > mid || person.reg_end <= mid {
                continue;
            }
            let sex = if person.sex == 1 { "M" } else { "F" };
            if pop.sex.as_deref().is_some_and(|s| s != sex) {
                continue;
            }
            let age = age_on(person.birth, mid);
            if age < pop.ages[0] as i64 || age > pop.ages[1] as i64 {
                continue;
            }
            let practice = places.codes[person.practice as usize].clone();
            let district = places.codes[person.district as usize].clone();
            let d = Dims {
                period: p,
                practice: &practice,
                district: &district,
                imd: person.imd,
                sex,
                ag: age_group(age),
                ethnicity: &person.ethnicity,
                provider: None,
            };
            r.add(
                places,
                &d,
                &Cell {
                    py,
                    ..Cell::default()
                },
            );
        }
    }
    r
}
