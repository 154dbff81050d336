//! The definition language's expressions: a small, typed subset of SQL that an indicator
//! uses to say which rows count (`where`) and what they add up (`value`).
//!
//! Why not plain SQL strings? Because every expression has to run two ways and agree
//! exactly: compiled to Apache DataFusion SQL for the fast path, and evaluated row by row
//! by the reference implementation the tests compare it with. A grammar this small can be
//! parsed, checked against the data model (unknown columns are errors naming the file and
//! field) and evaluated without an SQL engine.
//!
//! Grammar (case-insensitive keywords):
//!
//! ```text
//! expr    := and ('or' and)*
//! and     := not ('and' not)*
//! not     := 'not' not | cmp
//! cmp     := sum (('=' | '!=' | '<>' | '<' | '<=' | '>' | '>=') sum
//!                | 'in' '(' literal (',' literal)* ')'
//!                | 'is' ['not'] 'null'
//!                | 'starts_with' string)?
//! sum     := product (('+' | '-') product)*
//! product := unary (('*' | '/') unary)*
//! unary   := '-' unary | atom
//! atom    := number | 'string' | column | '(' expr ')' | 'true' | 'false'
//! ```
//!
//! Values are numbers, strings, booleans or null. Dates and timestamps are whole days
//! since 1970-01-01, so `end_date - medically_fit_date` is a number of days. SQL's
//! three-valued logic holds: a comparison with null is null, and `where` keeps a row
//! only when its expression is true.

use std::fmt::Write;

/// A value during row-by-row evaluation.
#[derive(Debug, Clone, PartialEq)]
pub enum Value {
    /// SQL null
    Null,
    /// a number (integers, floats, and dates as days since 1970-01-01)
    Num(f64),
    /// a string
    Str(String),
    /// a boolean
    Bool(bool),
}

impl Value {
    /// The number, if it is one.
    pub fn num(&self) -> Option<f64> {
        match self {
            Value::Num(x) => Some(*x),
            Value::Bool(b) => Some(f64::from(u8::from(*b))),
            _ => None,
        }
    }
    /// True only for a true boolean (SQL `WHERE` semantics).
    pub fn is_true(&self) -> bool {
        matches!(self, Value::Bool(true))
    }
}

/// Binary operators.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Op {
    /// or
    Or,
    /// and
    And,
    /// =
    Eq,
    /// !=
    Ne,
    /// <
    Lt,
    /// <=
    Le,
    /// >
    Gt,
    /// >=
    Ge,
    /// +
    Add,
    /// -
    Sub,
    /// *
    Mul,
    /// /
    Div,
}

impl Op {
    fn sql(self) -> &'static str {
        match self {
            Op::Or => "OR",
            Op::And => "AND",
            Op::Eq => "=",
            Op::Ne => "<>",
            Op::Lt => "<",
            Op::Le => "<=",
            Op::Gt => ">",
            Op::Ge => ">=",
            Op::Add => "+",
            Op::Sub => "-",
            Op::Mul => "*",
            Op::Div => "/",
        }
    }
}

/// A parsed expression.
#[derive(Debug, Clone, PartialEq)]
pub enum Expr {
    /// a literal
    Lit(Value),
    /// a column of the unit's table (or a derived column)
    Col(String),
    /// `not e`
    Not(Box<Expr>),
    /// `-e`
    Neg(Box<Expr>),
    /// `a op b`
    Bin(Op, Box<Expr>, Box<Expr>),
    /// `e [not] in (literals)`
    In(Box<Expr>, Vec<Value>, bool),
    /// `e is [not] null`
    IsNull(Box<Expr>, bool),
    /// `e starts_with 'prefix'`
    StartsWith(Box<Expr>, String),
}

/// A syntax error with its byte position.
#[derive(Debug, Clone, PartialEq)]
pub struct ParseError {
    /// byte offset in the expression
    pub at: usize,
    /// what is wrong
    pub message: String,
}

impl std::fmt::Display for ParseError {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(f, "at character {}: {}", self.at + 1, self.message)
    }
}

#[derive(Debug, Clone, PartialEq)]
enum Tok {
    Num(f64),
    Str(String),
    Ident(String),
    Sym(&'static str),
}

fn lex(s: &str) -> Result<Vec<(usize, Tok)>, ParseError> {
    let b = s.as_bytes();
    let mut i = 0;
    let mut out = Vec::new();
    while i < b.len() {
        let c = b[i] as char;
        if c.is_ascii_whitespace() {
            i += 1;
        } else if c.is_ascii_digit() || (c == '.' && i + 1 < b.len() && b[i + 1].is_ascii_digit()) {
            let st = i;
            while i < b.len()
                && (b[i].is_ascii_digit() || b[i] == b'.' || b[i] == b'e' || b[i] == b'E')
            {
                i += 1;
            }
            let t = &s[st..i];
            let v: f64 = t.parse().map_err(|_| ParseError {
                at: st,
                message: format!("bad number `{t}`"),
            })?;
            out.push((st, Tok::Num(v)));
        } else if c == '\'' {
            let st = i;
            i += 1;
            let mut v = String::new();
            loop {
                if i >= b.len() {
                    return Err(ParseError {
                        at: st,
                        message: "unterminated string".into(),
                    });
                }
                if b[i] == b'\'' {
                    if i + 1 < b.len() && b[i + 1] == b'\'' {
                        v.push('\'');
                        i += 2;
                        continue;
                    }
                    i += 1;
                    break;
                }
                let ch = s[i..].chars().next().expect("in bounds");
                v.push(ch);
                i += ch.len_utf8();
            }
            out.push((st, Tok::Str(v)));
        } else if c.is_ascii_alphabetic() || c == '_' {
            let st = i;
            while i < b.len() && (b[i].is_ascii_alphanumeric() || b[i] == b'_') {
                i += 1;
            }
            out.push((st, Tok::Ident(s[st..i].to_string())));
        } else {
            let two = if i + 1 < b.len() { &s[i..i + 2] } else { "" };
            let sym: &'static str = match two {
                "<=" => "<=",
                ">=" => ">=",
                "!=" => "!=",
                "<>" => "!=",
                _ => match c {
                    '=' => "=",
                    '<' => "<",
                    '>' => ">",
                    '+' => "+",
                    '-' => "-",
                    '*' => "*",
                    '/' => "/",
                    '(' => "(",
                    ')' => ")",
                    ',' => ",",
                    _ => {
                        return Err(ParseError {
                            at: i,
                            message: format!("unexpected character `{c}`"),
                        });
                    }
                },
            };
            out.push((i, Tok::Sym(sym)));
            i += if sym.len() == 2 || two == "<>" { 2 } else { 1 };
        }
    }
    Ok(out)
}

struct Parser {
    toks: Vec<(usize, Tok)>,
    pos: usize,
    len: usize,
}

impl Parser {
    fn at(&self) -> usize {
        self.toks.get(self.pos).map(|t| t.0).unwrap_or(self.len)
    }
    fn err<T>(&self, m: impl Into<String>) -> Result<T, ParseError> {
        Err(ParseError {
            at: self.at(),
            message: m.into(),
        })
    }
    fn kw(&mut self, k: &str) -> bool {
        if let Some((_, Tok::Ident(s))) = self.toks.get(self.pos)
            && s.eq_ignore_ascii_case(k)
        {
            self.pos += 1;
            return true;
        }
        false
    }
    fn sym(&mut self, k: &str) -> bool {
        if let Some((_, Tok::Sym(s))) = self.toks.get(self.pos)
            && *s == k
        {
            self.pos += 1;
            return true;
        }
        false
    }
    fn expr(&mut self) -> Result<Expr, ParseError> {
        let mut l = self.and()?;
        while self.kw("or") {
            let r = self.and()?;
            l = Expr::Bin(Op::Or, Box::new(l), Box::new(r));
        }
        Ok(l)
    }
    fn and(&mut self) -> Result<Expr, ParseError> {
        let mut l = self.not()?;
        while self.kw("and") {
            let r = self.not()?;
            l = Expr::Bin(Op::And, Box::new(l), Box::new(r));
        }
        Ok(l)
    }
    fn not(&mut self) -> Result<Expr, ParseError> {
        if self.kw("not") {
            return Ok(Expr::Not(Box::new(self.not()?)));
        }
        self.cmp()
    }
    fn literal(&mut self) -> Result<Value, ParseError> {
        let neg = self.sym("-");
        match self.toks.get(self.pos).cloned() {
            Some((_, Tok::Num(v))) => {
                self.pos += 1;
                Ok(Value::Num(if neg { -v } else { v }))
            }
            Some((_, Tok::Str(s))) if !neg => {
                self.pos += 1;
                Ok(Value::Str(s))
            }
            _ => self.err("expected a number or a 'string'"),
        }
    }
    fn cmp(&mut self) -> Result<Expr, ParseError> {
        let l = self.sum()?;
        for (s, op) in [
            ("=", Op::Eq),
            ("!=", Op::Ne),
            ("<=", Op::Le),
            (">=", Op::Ge),
            ("<", Op::Lt),
            (">", Op::Gt),
        ] {
            if self.sym(s) {
                let r = self.sum()?;
                return Ok(Expr::Bin(op, Box::new(l), Box::new(r)));
            }
        }
        let save = self.pos;
        let negated = self.kw("not");
        if self.kw("in") {
            if !self.sym("(") {
                return self.err("expected `(` after `in`");
            }
            let mut vals = vec![self.literal()?];
            while self.sym(",") {
                vals.push(self.literal()?);
            }
            if !self.sym(")") {
                return self.err("expected `)` to close the `in` list");
            }
            return Ok(Expr::In(Box::new(l), vals, negated));
        }
        self.pos = save;
        if self.kw("is") {
            let not = self.kw("not");
            if !self.kw("null") {
                return self.err("expected `null` after `is`");
            }
            return Ok(Expr::IsNull(Box::new(l), not));
        }
        if self.kw("starts_with") {
            match self.toks.get(self.pos).cloned() {
                Some((_, Tok::Str(s))) => {
                    self.pos += 1;
                    return Ok(Expr::StartsWith(Box::new(l), s));
                }
                _ => return self.err("expected a 'string' after `starts_with`"),
            }
        }
        Ok(l)
    }
    fn sum(&mut self) -> Result<Expr, ParseError> {
        let mut l = self.product()?;
        loop {
            let op = if self.sym("+") {
                Op::Add
            } else if self.sym("-") {
                Op::Sub
            } else {
                return Ok(l);
            };
            let r = self.product()?;
            l = Expr::Bin(op, Box::new(l), Box::new(r));
        }
    }
    fn product(&mut self) -> Result<Expr, ParseError> {
        let mut l = self.unary()?;
        loop {
            let op = if self.sym("*") {
                Op::Mul
            } else if self.sym("/") {
                Op::Div
            } else {
                return Ok(l);
            };
            let r = self.unary()?;
            l = Expr::Bin(op, Box::new(l), Box::new(r));
        }
    }
    fn unary(&mut self) -> Result<Expr, ParseError> {
        if self.sym("-") {
            return Ok(Expr::Neg(Box::new(self.unary()?)));
        }
        match self.toks.get(self.pos).cloned() {
            Some((_, Tok::Num(v))) => {
                self.pos += 1;
                Ok(Expr::Lit(Value::Num(v)))
            }
            Some((_, Tok::Str(s))) => {
                self.pos += 1;
                Ok(Expr::Lit(Value::Str(s)))
            }
            Some((_, Tok::Sym("("))) => {
                self.pos += 1;
                let e = self.expr()?;
                if !self.sym(")") {
                    return self.err("expected `)`");
                }
                Ok(e)
            }
            Some((_, Tok::Ident(s))) => {
                const RESERVED: &[&str] = &["and", "or", "not", "in", "is", "null", "starts_with"];
                if RESERVED.iter().any(|r| r.eq_ignore_ascii_case(&s)) {
                    return self.err(format!("unexpected keyword `{s}`"));
                }
                self.pos += 1;
                if s.eq_ignore_ascii_case("true") {
                    Ok(Expr::Lit(Value::Bool(true)))
                } else if s.eq_ignore_ascii_case("false") {
                    Ok(Expr::Lit(Value::Bool(false)))
                } else {
                    Ok(Expr::Col(s.to_ascii_lowercase()))
                }
            }
            _ => self.err("expected a value, a column or `(`"),
        }
    }
}

/// Parse an expression.
pub fn parse(s: &str) -> Result<Expr, ParseError> {
    let toks = lex(s)?;
    let mut p = Parser {
        toks,
        pos: 0,
        len: s.len(),
    };
    let e = p.expr()?;
    if p.pos < p.toks.len() {
        return p.err("unexpected text after the expression");
    }
    Ok(e)
}

fn sql_lit(v: &Value, out: &mut String) {
    match v {
        Value::Null => out.push_str("NULL"),
        Value::Num(x) => {
            if x.fract() == 0.0 && x.abs() < 1e15 {
                let _ = write!(out, "{}", *x as i64);
            } else {
                let _ = write!(out, "CAST({x:?} AS DOUBLE)");
            }
        }
        Value::Str(s) => {
            out.push('\'');
            out.push_str(&s.replace('\'', "''"));
            out.push('\'');
        }
        Value::Bool(b) => out.push_str(if *b { "TRUE" } else { "FALSE" }),
    }
}

impl Expr {
    /// The columns this expression reads.
    pub fn columns(&self, out: &mut Vec<String>) {
        match self {
            Expr::Lit(_) => {}
            Expr::Col(c) => {
                if !out.contains(c) {
                    out.push(c.clone());
                }
            }
            Expr::Not(e) | Expr::Neg(e) => e.columns(out),
            Expr::Bin(_, a, b) => {
                a.columns(out);
                b.columns(out);
            }
            Expr::In(e, _, _) | Expr::IsNull(e, _) | Expr::StartsWith(e, _) => e.columns(out),
        }
    }

    /// DataFusion SQL for this expression; columns are qualified with `qual.` when given.
    /// Arithmetic is done in DOUBLE so that integer division never truncates.
    pub fn sql(&self, qual: Option<&str>) -> String {
        let mut s = String::new();
        self.write_sql(qual, &mut s);
        s
    }

    fn write_sql(&self, q: Option<&str>, out: &mut String) {
        match self {
            Expr::Lit(v) => sql_lit(v, out),
            Expr::Col(c) => {
                if let Some(q) = q {
                    out.push_str(q);
                    out.push('.');
                }
                out.push('"');
                out.push_str(c);
                out.push('"');
            }
            Expr::Not(e) => {
                out.push_str("(NOT ");
                e.write_sql(q, out);
                out.push(')');
            }
            Expr::Neg(e) => {
                out.push_str("(-CAST(");
                e.write_sql(q, out);
                out.push_str(" AS DOUBLE))");
            }
            // chains of one logical operator are written flat, so a long `or` list does
            // not nest parentheses past the SQL parser's recursion limit
            Expr::Bin(op @ (Op::And | Op::Or), _, _) => {
                let mut terms = vec![];
                self.flatten(*op, &mut terms);
                out.push('(');
                for (i, t) in terms.iter().enumerate() {
                    if i > 0 {
                        out.push(' ');
                        out.push_str(op.sql());
                        out.push(' ');
                    }
                    t.write_sql(q, out);
                }
                out.push(')');
            }
            Expr::Bin(op, a, b) => {
                let arith = matches!(op, Op::Add | Op::Sub | Op::Mul | Op::Div);
                out.push('(');
                if arith {
                    out.push_str("CAST(");
                }
                a.write_sql(q, out);
                if arith {
                    out.push_str(" AS DOUBLE)");
                }
                out.push(' ');
                out.push_str(op.sql());
                out.push(' ');
                // division by zero is null, as in the reference evaluator
                if *op == Op::Div {
                    out.push_str("NULLIF(");
                }
                if arith {
                    out.push_str("CAST(");
                }
                b.write_sql(q, out);
                if arith {
                    out.push_str(" AS DOUBLE)");
                }
                if *op == Op::Div {
                    out.push_str(", 0)");
                }
                out.push(')');
            }
            Expr::In(e, vals, neg) => {
                out.push('(');
                e.write_sql(q, out);
                out.push_str(if *neg { " NOT IN (" } else { " IN (" });
                for (i, v) in vals.iter().enumerate() {
                    if i > 0 {
                        out.push_str(", ");
                    }
                    sql_lit(v, out);
                }
                out.push_str("))");
            }
            Expr::IsNull(e, not) => {
                out.push('(');
                e.write_sql(q, out);
                out.push_str(if *not { " IS NOT NULL)" } else { " IS NULL)" });
            }
            Expr::StartsWith(e, p) => {
                out.push_str("starts_with(");
                e.write_sql(q, out);
                out.push_str(", ");
                sql_lit(&Value::Str(p.clone()), out);
                out.push(')');
            }
        }
    }

    fn flatten<'a>(&'a self, op: Op, out: &mut Vec<&'a Expr>) {
        match self {
            Expr::Bin(o, a, b) if *o == op => {
                a.flatten(op, out);
                b.flatten(op, out);
            }
            e => out.push(e),
        }
    }

    /// Evaluate on one row; `get` returns a column's value.
    pub fn eval(&self, get: &dyn Fn(&str) -> Value) -> Value {
        match self {
            Expr::Lit(v) => v.clone(),
            Expr::Col(c) => get(c),
            Expr::Not(e) => match e.eval(get) {
                Value::Bool(b) => Value::Bool(!b),
                _ => Value::Null,
            },
            Expr::Neg(e) => match e.eval(get).num() {
                Some(x) => Value::Num(-x),
                None => Value::Null,
            },
            Expr::Bin(op, a, b) => {
                let (x, y) = (a.eval(get), b.eval(get));
                match op {
                    Op::And => match (&x, &y) {
                        (Value::Bool(false), _) | (_, Value::Bool(false)) => Value::Bool(false),
                        (Value::Bool(true), Value::Bool(true)) => Value::Bool(true),
                        _ => Value::Null,
                    },
                    Op::Or => match (&x, &y) {
                        (Value::Bool(true), _) | (_, Value::Bool(true)) => Value::Bool(true),
                        (Value::Bool(false), Value::Bool(false)) => Value::Bool(false),
                        _ => Value::Null,
                    },
                    Op::Add | Op::Sub | Op::Mul | Op::Div => match (x.num(), y.num()) {
                        (Some(x), Some(y)) => match op {
                            Op::Add => Value::Num(x + y),
                            Op::Sub => Value::Num(x - y),
                            Op::Mul => Value::Num(x * y),
                            _ if y == 0.0 => Value::Null,
                            _ => Value::Num(x / y),
                        },
                        _ => Value::Null,
                    },
                    _ => {
                        let ord = match (&x, &y) {
                            (Value::Null, _) | (_, Value::Null) => return Value::Null,
                            (Value::Str(a), Value::Str(b)) => a.cmp(b),
                            _ => match (x.num(), y.num()) {
                                (Some(a), Some(b)) => match a.partial_cmp(&b) {
                                    Some(o) => o,
                                    None => return Value::Null,
                                },
                                _ => return Value::Null,
                            },
                        };
                        use std::cmp::Ordering::*;
                        Value::Bool(match op {
                            Op::Eq => ord == Equal,
                            Op::Ne => ord != Equal,
                            Op::Lt => ord == Less,
                            Op::Le => ord != Greater,
                            Op::Gt => ord == Greater,
                            _ => ord != Less,
                        })
                    }
                }
            }
            Expr::In(e, vals, neg) => {
                let v = e.eval(get);
                if v == Value::Null {
                    return Value::Null;
                }
                let hit = vals.iter().any(|w| match (&v, w) {
                    (Value::Str(a), Value::Str(b)) => a == b,
                    _ => v.num().is_some() && v.num() == w.num(),
                });
                Value::Bool(hit != *neg)
            }
            Expr::IsNull(e, not) => Value::Bool((e.eval(get) == Value::Null) != *not),
            Expr::StartsWith(e, p) => match e.eval(get) {
                Value::Str(s) => Value::Bool(s.starts_with(p.as_str())),
                Value::Null => Value::Null,
                _ => Value::Bool(false),
            },
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn row(c: &str) -> Value {
        match c {
            "setting" => Value::Str("apc".into()),
            "los_days" => Value::Num(3.0),
            "dx" => Value::Null,
            "code" => Value::Str("I219".into()),
            _ => Value::Null,
        }
    }

    #[test]
    fn parses_and_evaluates() {
        let e = parse("setting = 'apc' and los_days >= 2 and not (los_days > 10)").unwrap();
        assert!(e.eval(&row).is_true());
        assert!(parse("code starts_with 'I2'").unwrap().eval(&row).is_true());
        assert!(
            parse("code in ('I219', 'I10')")
                .unwrap()
                .eval(&row)
                .is_true()
        );
        assert!(parse("code not in ('I10')").unwrap().eval(&row).is_true());
        assert!(parse("dx is null").unwrap().eval(&row).is_true());
        // three-valued logic: null comparisons are not true
        assert_eq!(parse("dx = 'x'").unwrap().eval(&row), Value::Null);
        assert!(!parse("not (dx = 'x')").unwrap().eval(&row).is_true());
        assert_eq!(
            parse("los_days * 2 - 1").unwrap().eval(&row),
            Value::Num(5.0)
        );
        assert_eq!(parse("los_days / 0").unwrap().eval(&row), Value::Null);
        assert_eq!(
            parse("setting = 'a''b'").unwrap().sql(Some("u")),
            "(u.\"setting\" = 'a''b')"
        );
    }

    #[test]
    fn errors_say_where() {
        let e = parse("setting = ").unwrap_err();
        assert_eq!(e.at, 10);
        assert!(parse("code in 'x'").unwrap_err().message.contains("("));
        assert!(
            parse("a = 'open")
                .unwrap_err()
                .message
                .contains("unterminated")
        );
        assert!(parse("a = 1 b").unwrap_err().message.contains("after"));
        assert!(
            parse("a ; b")
                .unwrap_err()
                .message
                .contains("unexpected character")
        );
    }
}
