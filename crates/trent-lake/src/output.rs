//! Query results as text for people and for other programs: an aligned table, CSV
//! (RFC 4180) or JSON Lines. Written against Arrow's display formatter rather than the
//! `arrow-csv`/`arrow-json` writers so that the build keeps one feature set of arrow for
//! DataFusion (a feature change would rebuild DataFusion).

use arrow::array::{Array, RecordBatch};
use arrow::datatypes::DataType;
use arrow::error::ArrowError;
use arrow::util::display::{ArrayFormatter, FormatOptions};

/// How `trent query` prints.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum OutputFormat {
    /// Box-drawn table for people.
    Table,
    /// CSV with a header row; nulls are empty fields.
    Csv,
    /// One JSON object per row; nulls are `null`, numbers are numbers.
    Json,
}

impl std::str::FromStr for OutputFormat {
    type Err = String;
    fn from_str(s: &str) -> Result<Self, String> {
        match s {
            "table" => Ok(OutputFormat::Table),
            "csv" => Ok(OutputFormat::Csv),
            "json" => Ok(OutputFormat::Json),
            other => Err(format!("--format {other:?}: expected table, csv or json")),
        }
    }
}

/// Render batches in a format.
pub fn render(batches: &[RecordBatch], format: OutputFormat) -> Result<String, ArrowError> {
    match format {
        OutputFormat::Table => Ok(format!(
            "{}\n",
            arrow::util::pretty::pretty_format_batches(batches)?
        )),
        OutputFormat::Csv => csv(batches),
        OutputFormat::Json => json(batches),
    }
}

fn formatters<'a>(
    b: &'a RecordBatch,
    opts: &'a FormatOptions<'a>,
) -> Result<Vec<ArrayFormatter<'a>>, ArrowError> {
    b.columns()
        .iter()
        .map(|c| ArrayFormatter::try_new(c.as_ref(), opts))
        .collect()
}

fn csv_field(s: &str) -> String {
    if s.contains([',', '"', '\n', '\r']) {
        format!("\"{}\"", s.replace('"', "\"\""))
    } else {
        s.to_string()
    }
}

fn csv(batches: &[RecordBatch]) -> Result<String, ArrowError> {
    let mut out = String::new();
    let Some(first) = batches.first() else {
        return Ok(out);
    };
    let schema = first.schema();
    let header: Vec<String> = schema
        .fields()
        .iter()
        .map(|f| csv_field(f.name()))
        .collect();
    out.push_str(&header.join(","));
    out.push('\n');
    let opts = FormatOptions::default();
    for b in batches {
        let cols = formatters(b, &opts)?;
        for i in 0..b.num_rows() {
            let row: Vec<String> = cols
                .iter()
                .zip(b.columns())
                .map(|(f, c)| {
                    if c.is_null(i) {
                        String::new()
                    } else {
                        csv_field(&f.value(i).to_string())
                    }
                })
                .collect();
            out.push_str(&row.join(","));
            out.push('\n');
        }
    }
    Ok(out)
}

fn json(batches: &[RecordBatch]) -> Result<String, ArrowError> {
    let mut out = String::new();
    let opts = FormatOptions::default();
    for b in batches {
        let schema = b.schema();
        let cols = formatters(b, &opts)?;
        for i in 0..b.num_rows() {
            let mut obj = serde_json::Map::new();
            for ((f, c), field) in cols.iter().zip(b.columns()).zip(schema.fields()) {
                let v = if c.is_null(i) {
                    serde_json::Value::Null
                } else {
                    let text = f.value(i).to_string();
                    let numeric = c.data_type().is_numeric();
                    match c.data_type() {
                        DataType::Boolean => serde_json::Value::Bool(text == "true"),
                        _ if numeric => text
                            .parse::<i64>()
                            .map(serde_json::Value::from)
                            .or_else(|_| text.parse::<f64>().map(serde_json::Value::from))
                            .unwrap_or(serde_json::Value::String(text)),
                        _ => serde_json::Value::String(text),
                    }
                };
                obj.insert(field.name().clone(), v);
            }
            out.push_str(&serde_json::Value::Object(obj).to_string());
            out.push('\n');
        }
    }
    Ok(out)
}

#[cfg(test)]
mod tests {
    use super::*;
    use arrow::array::{Float64Array, Int64Array, StringArray};
    use std::sync::Arc;

    fn batch() -> RecordBatch {
        RecordBatch::try_from_iter(vec![
            (
                "id",
                Arc::new(Int64Array::from(vec![Some(1), None])) as Arc<dyn Array>,
            ),
            (
                "name",
                Arc::new(StringArray::from(vec![Some("a,\"b\""), Some("")])) as _,
            ),
            (
                "x",
                Arc::new(Float64Array::from(vec![Some(0.5), Some(2.0)])) as _,
            ),
        ])
        .unwrap()
    }

    #[test]
    fn csv_quotes_and_leaves_nulls_empty() {
        let s = render(&[batch()], OutputFormat::Csv).unwrap();
        assert_eq!(s, "id,name,x\n1,\"a,\"\"b\"\"\",0.5\n,,2.0\n");
    }

    #[test]
    fn json_keeps_types_and_nulls() {
        let s = render(&[batch()], OutputFormat::Json).unwrap();
        let rows: Vec<serde_json::Value> = s
            .lines()
            .map(|l| serde_json::from_str(l).unwrap())
            .collect();
        assert_eq!(rows[0]["id"], 1);
        assert_eq!(rows[0]["name"], "a,\"b\"");
        assert_eq!(rows[0]["x"], 0.5);
        assert!(rows[1]["id"].is_null());
        assert_eq!(rows[1]["name"], "");
    }
}
