//! How a lake table looks to an indicator definition, written twice on purpose: as a
//! DataFusion SQL view (the fast path) and as a row-by-row reader (the reference).
//!
//! Every column of the table is offered with dates and timestamps as whole day numbers
//! since 1970-01-01; the person's `age` at the row's date (in whole years, birth taken as
//! the 15th of the birth month), `sex`, `ethnicity` and `imd_decile` are joined from
//! `person`; `activity` also offers `duration_minutes` (end − start) and `delayed_days`
//! (discharge day − medically fit day).

use std::collections::HashMap;

use arrow::array::{Array, AsArray};
use arrow::datatypes::{
    DataType, Date32Type, Float64Type, Int32Type, Int64Type, TimeUnit, TimestampMicrosecondType,
};
use datafusion::prelude::SessionContext;
use trent_model::schema::{self, ColType};
use trent_model::time;

use crate::error::ObsError;
use crate::expr::Value;

/// Derived columns of a table.
pub fn derived_columns(table: &str) -> &'static [&'static str] {
    match table {
        "activity" => &["duration_minutes", "delayed_days"],
        _ => &[],
    }
}

/// SQL of a column as the language sees it, from table alias `t`.
pub fn column_sql(table: &str, col: &str) -> String {
    let def = schema::table(table).expect("checked");
    if let Some(c) = def.columns.iter().find(|c| c.name == col) {
        return match c.ty {
            ColType::Date => format!("CAST(t.\"{col}\" AS INT)"),
            ColType::Timestamp => format!("CAST(CAST(t.\"{col}\" AS DATE) AS INT)"),
            _ => format!("t.\"{col}\""),
        };
    }
    match (table, col) {
        ("activity", "duration_minutes") => {
            "((date_part('epoch', t.\"end_ts\") - date_part('epoch', t.\"start_ts\")) / 60.0)"
                .into()
        }
        ("activity", "delayed_days") => {
            "(CAST(CAST(t.\"end_ts\" AS DATE) AS INT) - CAST(t.\"medically_fit_date\" AS INT))"
                .into()
        }
        (_, "sex" | "ethnicity" | "imd_decile") => format!("p.\"{col}\""),
        _ => panic!("column {col} of {table} was checked"),
    }
}

/// SQL DATE expression of a date or timestamp column of `t`.
pub fn date_sql(table: &str, col: &str) -> String {
    let def = schema::table(table).expect("checked");
    match def.columns.iter().find(|c| c.name == col).map(|c| c.ty) {
        Some(ColType::Timestamp) => format!("CAST(t.\"{col}\" AS DATE)"),
        _ => format!("t.\"{col}\""),
    }
}

/// SQL of the age in whole years on DATE `d` of a person `p` (birth month's 15th).
pub fn age_sql(d: &str) -> String {
    format!(
        "GREATEST(CAST(0 AS BIGINT), CAST(floor(((date_part('year', {d}) - date_part('year', p.birth_month)) * 12 + (date_part('month', {d}) - date_part('month', p.birth_month)) - CASE WHEN date_part('day', {d}) < 15 THEN 1 ELSE 0 END) / 12.0) AS BIGINT))"
    )
}

/// Age in whole years on day `d` of someone born in the month starting `birth_month`.
pub fn age_on(birth_month: i32, d: i32) -> i64 {
    let (by, bm, _) = time::ymd(birth_month);
    let (y, m, dd) = time::ymd(d);
    let months = (y - by) as i64 * 12 + (m as i64 - bm as i64) - i64::from(dd < 15);
    (months.div_euclid(12)).max(0)
}

/// SQL: the FROM clause of a table joined with its person (`t` and `p`). `p` is the
/// person-dimension table (`__pdim`: person id, birth month, dimension number), not the
/// whole `person` table: the only person columns an indicator's rows need are the birth
/// month (for the age) and the dimension, so one join serves both.
pub fn from_sql(table: &str) -> String {
    format!("\"{table}\" t JOIN __pdim p ON t.person_id = p.person_id")
}

/// A table read whole for the reference implementation: rows of values by column name.
pub struct Rows {
    /// column names
    pub names: Vec<String>,
    /// rows
    pub rows: Vec<Vec<Value>>,
    /// timestamps' microseconds, for `duration_minutes` (by column index)
    pub micros: HashMap<usize, Vec<Option<i64>>>,
}

impl Rows {
    /// Index of a column.
    pub fn col(&self, name: &str) -> Option<usize> {
        self.names.iter().position(|n| n == name)
    }
}

/// Read a whole table row by row (reference implementation; small lakes only).
pub async fn read_rows(ctx: &SessionContext, table: &str) -> Result<Rows, ObsError> {
    let def = schema::table(table).expect("checked");
    let names: Vec<String> = def.columns.iter().map(|c| c.name.to_string()).collect();
    let batches = ctx
        .sql(&format!("SELECT * FROM \"{table}\""))
        .await?
        .collect()
        .await?;
    let mut rows = vec![];
    let mut micros: HashMap<usize, Vec<Option<i64>>> = HashMap::new();
    for b in &batches {
        for i in 0..b.num_rows() {
            let mut row = Vec::with_capacity(names.len());
            for (ci, c) in def.columns.iter().enumerate() {
                let a = b.column(ci);
                let v = if a.is_null(i) {
                    if c.ty == ColType::Timestamp {
                        micros.entry(ci).or_default().push(None);
                    }
                    Value::Null
                } else {
                    match a.data_type() {
                        DataType::Utf8 => Value::Str(a.as_string::<i32>().value(i).to_string()),
                        DataType::Int64 => {
                            Value::Num(a.as_primitive::<Int64Type>().value(i) as f64)
                        }
                        DataType::Int32 => {
                            Value::Num(a.as_primitive::<Int32Type>().value(i) as f64)
                        }
                        DataType::Float64 => Value::Num(a.as_primitive::<Float64Type>().value(i)),
                        DataType::Date32 => {
                            Value::Num(a.as_primitive::<Date32Type>().value(i) as f64)
                        }
                        DataType::Timestamp(TimeUnit::Microsecond, _) => {
                            let us = a.as_primitive::<TimestampMicrosecondType>().value(i);
                            micros.entry(ci).or_default().push(Some(us));
                            Value::Num(us.div_euclid(86_400_000_000) as f64)
                        }
                        DataType::Boolean => Value::Bool(a.as_boolean().value(i)),
                        other => {
                            return Err(ObsError::Indicator {
                                id: table.into(),
                                message: format!("column {} has unexpected type {other}", c.name),
                            });
                        }
                    }
                };
                row.push(v);
            }
            rows.push(row);
        }
    }
    Ok(Rows {
        names,
        rows,
        micros,
    })
}
