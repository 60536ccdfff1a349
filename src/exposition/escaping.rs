//! Names outside the legacy character set (upstream 1.11's UTF-8 names): how a scrape
//! escapes them for clients that asked for an escaping scheme (`escaping=` in `Accept`),
//! and how a grouping label name in a push URL is unescaped (`U__…`, the `values` scheme).
//! The rules are prometheus/common's `EscapeName` and `UnescapeName`.

use std::borrow::Cow;
use std::fmt::Write as _;

use model::check::is_valid_metric_name;

/// How names that are not legacy-valid are written in a scrape.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Escaping {
    /// As they are (text scrapes quote them).
    AllowUtf8,
    /// Each character outside the legacy set becomes `_`.
    Underscores,
    /// `.` becomes `_dot_`, `_` becomes `__`, any other character outside the set `__`.
    Dots,
    /// `U__` and then `_` as `__`, any character outside the set as `_<hex code point>_`.
    Values,
}

impl Escaping {
    /// The scheme named by an `escaping=` parameter (case-sensitive, as upstream).
    pub fn from_param(value: &str) -> Option<Escaping> {
        match value {
            "allow-utf-8" => Some(Escaping::AllowUtf8),
            "underscores" => Some(Escaping::Underscores),
            "dots" => Some(Escaping::Dots),
            "values" => Some(Escaping::Values),
            _ => None,
        }
    }

    /// The parameter's value, echoed in the scrape's `Content-Type`.
    pub fn param(self) -> &'static str {
        match self {
            Escaping::AllowUtf8 => "allow-utf-8",
            Escaping::Underscores => "underscores",
            Escaping::Dots => "dots",
            Escaping::Values => "values",
        }
    }

    /// A metric or label name as the scrape writes it: a legacy-valid metric name (the
    /// rule upstream applies to label names here too) is never changed.
    pub fn apply(self, name: &str) -> Cow<'_, str> {
        if self == Escaping::AllowUtf8 || is_valid_metric_name(name) {
            return Cow::Borrowed(name);
        }
        let mut out = String::with_capacity(name.len() + 8);
        if self == Escaping::Values {
            out.push_str("U__");
        }
        for (i, c) in name.char_indices() {
            match (self, c) {
                (Escaping::Underscores, c) if legacy_char(c, i) => out.push(c),
                (Escaping::Underscores, _) => out.push('_'),
                (_, '_') => out.push_str("__"),
                (Escaping::Dots, '.') => out.push_str("_dot_"),
                (_, c) if legacy_char(c, i) => out.push(c),
                (Escaping::Dots, _) => out.push_str("__"),
                (_, c) => {
                    let _ = write!(out, "_{:x}_", u32::from(c));
                }
            }
        }
        Cow::Owned(out)
    }
}

/// A character of a legacy metric name at byte offset `i`: `[a-zA-Z_:]`, or a digit
/// after the first.
fn legacy_char(c: char, i: usize) -> bool {
    c.is_ascii_alphabetic() || c == '_' || c == ':' || (c.is_ascii_digit() && i > 0)
}

/// A grouping label name from a push URL with `--push.enable-utf8-names`: `U__…` decoded
/// by the `values` scheme (`__` is `_`, `_<hex>_` a code point of at most five hex
/// digits); a name without the prefix, or one that does not decode, stays as it is.
pub fn unescape_values(name: &str) -> Cow<'_, str> {
    let Some(escaped) = name.strip_prefix("U__") else { return Cow::Borrowed(name) };
    let mut out = String::with_capacity(escaped.len());
    let mut chars = escaped.chars();
    while let Some(c) = chars.next() {
        if c != '_' {
            out.push(c);
            continue;
        }
        match chars.next() {
            None => return Cow::Borrowed(name),
            Some('_') => out.push('_'),
            Some(first) => {
                // One to five hex digits, then `_`.
                let (mut value, mut count, mut digit) = (0u32, 0, first);
                while digit != '_' {
                    match digit.to_digit(16) {
                        Some(v) if count < 5 => value = value * 16 + v,
                        _ => return Cow::Borrowed(name),
                    }
                    count += 1;
                    match chars.next() {
                        Some(next) => digit = next,
                        None => return Cow::Borrowed(name),
                    }
                }
                match char::from_u32(value) {
                    Some(c) => out.push(c),
                    None => return Cow::Borrowed(name),
                }
            }
        }
    }
    Cow::Owned(out)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn escaping_as_upstream_documents_it() {
        let cases = [
            ("my.metric", "my_metric", "my_dot_metric", "U__my_2e_metric"),
            ("foo.bar_baz", "foo_bar_baz", "foo_dot_bar__baz", "U__foo_2e_bar__baz"),
            ("label with 😱", "label_with__", "label__with____", "U__label_20_with_20__1f631_"),
            ("花火", "__", "____", "U___82b1__706b_"),
            ("1abc", "_abc", "__abc", "U___31_abc"),
            ("http.status:sum", "http_status:sum", "http_dot_status:sum", "U__http_2e_status:sum"),
            ("legacy_name:ok", "legacy_name:ok", "legacy_name:ok", "legacy_name:ok"),
        ];
        for (name, underscores, dots, values) in cases {
            assert_eq!(Escaping::Underscores.apply(name), underscores, "{name}");
            assert_eq!(Escaping::Dots.apply(name), dots, "{name}");
            assert_eq!(Escaping::Values.apply(name), values, "{name}");
            assert_eq!(Escaping::AllowUtf8.apply(name), name);
        }
    }

    #[test]
    fn unescaping_url_label_names() {
        let cases = [
            ("U__dotted_2e_label_2e_name", "dotted.label.name"),
            ("U__foo_1f60a_", "foo😊"),
            ("U___55_____", "U__"),
            ("U__", ""),
            ("U__in_xxx_valid", "U__in_xxx_valid"),
            ("U__x_d800_", "U__x_d800_"),
            ("U__a_10ffff_", "U__a_10ffff_"),
            ("U__trailing_", "U__trailing_"),
            ("U__open_2e", "U__open_2e"),
            ("dotted.name", "dotted.name"),
            ("plain", "plain"),
        ];
        for (escaped, name) in cases {
            assert_eq!(unescape_values(escaped), name, "{escaped}");
        }
        for name in ["my.metric", "label with 😱", "花火", "foo.bar_baz"] {
            assert_eq!(unescape_values(&Escaping::Values.apply(name)), name, "round trip of {name}");
        }
    }
}
