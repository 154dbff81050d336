//! Plain aligned text tables and CSV for the reports (numbers right-aligned), so every
//! command prints the same way without pulling in a table crate.

/// How a report prints.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum OutputFormat {
    /// Aligned text for people.
    Table,
    /// JSON (one document).
    Json,
    /// CSV with a header row (the main table of the report).
    Csv,
}

impl std::str::FromStr for OutputFormat {
    type Err = String;
    fn from_str(s: &str) -> Result<Self, String> {
        match s {
            "table" => Ok(OutputFormat::Table),
            "json" => Ok(OutputFormat::Json),
            "csv" => Ok(OutputFormat::Csv),
            other => Err(format!("--format {other:?}: expected table, json or csv")),
        }
    }
}

/// A table under construction.
pub(crate) struct Table {
    head: Vec<String>,
    rows: Vec<Vec<String>>,
}

fn numeric(s: &str) -> bool {
    let t = s.trim_start_matches(['-', '+', '£']).trim_end_matches('%');
    !t.is_empty()
        && t.chars()
            .all(|c| c.is_ascii_digit() || c == '.' || c == ',')
}

impl Table {
    pub(crate) fn new(head: &[&str]) -> Table {
        Table {
            head: head.iter().map(|s| s.to_string()).collect(),
            rows: Vec::new(),
        }
    }

    pub(crate) fn row(&mut self, cells: Vec<String>) {
        self.rows.push(cells);
    }

    pub(crate) fn text(&self) -> String {
        let n = self.head.len();
        let mut w = vec![0usize; n];
        for r in std::iter::once(&self.head).chain(&self.rows) {
            for (i, c) in r.iter().enumerate().take(n) {
                w[i] = w[i].max(c.chars().count());
            }
        }
        let mut out = String::new();
        for (k, r) in std::iter::once(&self.head).chain(&self.rows).enumerate() {
            let cells: Vec<String> = r
                .iter()
                .enumerate()
                .take(n)
                .map(|(i, c)| {
                    let pad = w[i] - c.chars().count();
                    if k > 0 && numeric(c) {
                        format!("{}{c}", " ".repeat(pad))
                    } else {
                        format!("{c}{}", " ".repeat(pad))
                    }
                })
                .collect();
            out.push_str("  ");
            out.push_str(cells.join("  ").trim_end());
            out.push('\n');
            if k == 0 {
                out.push_str("  ");
                out.push_str(
                    &w.iter()
                        .map(|x| "-".repeat(*x))
                        .collect::<Vec<_>>()
                        .join("  "),
                );
                out.push('\n');
            }
        }
        out
    }

    pub(crate) fn csv(&self) -> String {
        let f = |c: &str| {
            if c.contains([',', '"', '\n']) {
                format!("\"{}\"", c.replace('"', "\"\""))
            } else {
                c.to_string()
            }
        };
        let mut out = String::new();
        for r in std::iter::once(&self.head).chain(&self.rows) {
            out.push_str(&r.iter().map(|c| f(c)).collect::<Vec<_>>().join(","));
            out.push('\n');
        }
        out
    }
}

/// £m with one decimal (or two below £10m).
pub(crate) fn m(x: f64) -> String {
    if x.abs() < 10.0 {
        format!("{x:.2}")
    } else {
        format!("{x:.1}")
    }
}

/// A fraction as a percentage with one decimal.
pub(crate) fn pct(x: f64) -> String {
    format!("{:.1}%", 100.0 * x)
}

/// A count with no decimals.
pub(crate) fn n0(x: f64) -> String {
    format!("{x:.0}")
}

/// Signed money: `+£1.23m`, `−£0.40m`.
pub(crate) fn signed_m(x: f64) -> String {
    let sign = if x < 0.0 { "−" } else { "+" };
    format!("{sign}£{}m", m(x.abs()))
}
