//! Masking identifying values in quarantine messages before they reach the lake.
//!
//! A rejection message names the field and the value (`nhs_number "9434765918" fails the
//! modulus 11 check`), which is what a data manager needs — and the value may identify
//! someone. The lake's `quarantine` table keeps the message with every quoted value and
//! every run of five or more digits replaced by `•`; the full message and the raw record
//! stay in the vault (`quarantine_raw`), shown only by `trent quarantine --raw`.

/// The message with quoted strings (`"…"` and `'…'`) and digit runs of length ≥ 5
/// replaced by `•`.
pub fn mask(message: &str) -> String {
    let mut out = String::with_capacity(message.len());
    let chars: Vec<char> = message.chars().collect();
    let mut i = 0;
    while i < chars.len() {
        let c = chars[i];
        if c == '"' || c == '\'' {
            // a quote that closes later: mask its contents
            if let Some(len) = chars[i + 1..].iter().position(|&d| d == c) {
                // an apostrophe inside a word (`person's`) is not a quote
                let word_apostrophe = c == '\'' && i > 0 && chars[i - 1].is_alphanumeric();
                if !word_apostrophe {
                    out.push(c);
                    out.push('•');
                    out.push(c);
                    i += len + 2;
                    continue;
                }
            }
            if c == '"' {
                // an unterminated quote: mask everything after it
                out.push('"');
                out.push('•');
                break;
            }
            out.push(c);
            i += 1;
        } else if c.is_ascii_digit() {
            let start = i;
            while i < chars.len() && chars[i].is_ascii_digit() {
                i += 1;
            }
            if i - start >= 5 {
                out.push('•');
            } else {
                out.extend(&chars[start..i]);
            }
        } else {
            out.push(c);
            i += 1;
        }
    }
    out
}

#[cfg(test)]
mod tests {
    use super::mask;

    #[test]
    fn masks_values_keeps_fields() {
        assert_eq!(
            mask(r#"nhs_number "9434765918" fails the modulus 11 check"#),
            r#"nhs_number "•" fails the modulus 11 check"#
        );
        assert_eq!(
            mask("postcode 'NG7 2UH' at line 12"),
            "postcode '•' at line 12"
        );
        assert_eq!(mask("value 94347659 bad"), "value • bad");
        assert_eq!(mask("the person's date 2019"), "the person's date 2019");
        assert_eq!(mask(r#"unterminated "quote"#), r#"unterminated "•"#);
    }
}
