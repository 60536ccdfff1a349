//! Go-compatible formatting, shared by the renderers and the messages of the
//! consistency check: floats as the Prometheus Go libraries print them, the escaping of
//! the text exposition, and the compact protobuf text of a metric in upstream's messages.
//!
//! Exposition and the JSON API must match upstream byte for byte, and upstream prints
//! floats with Go's `strconv.FormatFloat(f, 'g', -1, 64)`: the shortest representation
//! that round-trips, in exponent form when the decimal exponent is below -4 or at least
//! 6 (`1e+06`, `2.5e-07`), otherwise plain (`100000`, `0.0001`).

use std::fmt::Write as _;

use crate::metric::{HistogramValue, Metric, SummaryValue, Value};

/// Go's `strconv.FormatFloat(v, 'g', -1, 64)`: `NaN`, `+Inf`, `-Inf`, `-0` included.
pub fn format_g(v: f64) -> String {
    let mut out = String::new();
    write_g(&mut out, v);
    out
}

/// The text exposition's float format (`expfmt.writeFloat`): like [`format_g`] but
/// `-0` prints as `0`.
pub fn format_exposition(v: f64) -> String {
    let mut out = String::new();
    write_exposition(&mut out, v);
    out
}

/// [`format_exposition`], appended to `out` without allocating: the scrape renderer
/// writes one of these per sample.
pub fn write_exposition(out: &mut String, v: f64) {
    if v == 0.0 {
        out.push('0');
    } else {
        write_g(out, v);
    }
}

/// [`format_g`], appended to `out` without allocating.
pub fn write_g(out: &mut String, v: f64) {
    if v.is_nan() {
        return out.push_str("NaN");
    }
    if v.is_infinite() {
        return out.push_str(if v > 0.0 { "+Inf" } else { "-Inf" });
    }
    if v == 0.0 {
        return out.push_str(if v.is_sign_negative() { "-0" } else { "0" });
    }
    // Whole numbers below 1e6 (most counters and gauges) print as integers in both
    // forms; the cast is exact for them.
    if v.fract() == 0.0 && v.abs() < 1e6 {
        return push_integer(out, v as i64);
    }
    // Rust's `{:e}` gives the shortest round-trip digits ("-1.2345e6", "5e-324"), the
    // digits Go chooses too; only the layout differs.
    let mut sci = StackText::default();
    let _ = std::fmt::Write::write_fmt(&mut sci, format_args!("{v:e}"));
    if let Some(last) = tie_rounded_up(v, sci.as_str()) {
        sci.buf[last] -= 1;
    }
    let sci = sci.as_str();
    let (mantissa, exp) = sci.split_once('e').expect("`{:e}` always has an exponent");
    let exp: i32 = exp.parse().expect("`{:e}` exponent is an integer");
    if !(-4..6).contains(&exp) {
        out.push_str(mantissa);
        out.push('e');
        out.push(if exp < 0 { '-' } else { '+' });
        if exp.abs() < 10 {
            out.push('0');
        }
        push_integer(out, exp.abs() as i64);
        return;
    }
    let (sign, mantissa) = match mantissa.strip_prefix('-') {
        Some(m) => ("-", m),
        None => ("", mantissa),
    };
    out.push_str(sign);
    let mut digits = mantissa.bytes().filter(|b| *b != b'.').map(char::from);
    if exp < 0 {
        out.push_str("0.");
        (0..-exp - 1).for_each(|_| out.push('0'));
        out.extend(digits);
    } else {
        let whole = exp as usize + 1;
        let mut written = 0;
        for d in digits.by_ref().take(whole) {
            out.push(d);
            written += 1;
        }
        (written..whole).for_each(|_| out.push('0'));
        let mut rest = digits.peekable();
        if rest.peek().is_some() {
            out.push('.');
            out.extend(rest);
        }
    }
}

/// Where Rust's shortest digits and Go's differ: when `v` lies exactly halfway between
/// two shortest round-trip candidates, Rust takes the one of larger magnitude and Go's
/// Ryu the one with an even last digit (`1796524546.66015625` is `1.7965245466601562e+09`
/// in Go, `1.7965245466601563e9` in Rust). Answers the index in `sci` (`{v:e}` of `v`)
/// of a last digit that must go down by one, or `None`.
///
/// Two candidates can both round-trip only with 15 digits or more, and Go's choice
/// differs only for an odd last digit; only then is the exact expansion asked for (at
/// most 767 significant digits), and only if the digit after the candidate's, correctly
/// rounded, is a 5.
fn tie_rounded_up(v: f64, sci: &str) -> Option<usize> {
    let (mantissa, exp) = sci.split_once('e')?;
    let digits = mantissa.bytes().filter(u8::is_ascii_digit).count();
    let last = mantissa.len() - 1;
    if digits < 15 || (mantissa.as_bytes()[last] - b'0') % 2 == 0 {
        return None;
    }
    let mut lower = StackText::default();
    let _ = std::fmt::Write::write_fmt(
        &mut lower,
        format_args!("{}{}e{exp}", &mantissa[..last], char::from(mantissa.as_bytes()[last] - 1)),
    );
    if lower.as_str().parse::<f64>().ok()? != v {
        return None;
    }
    // The exact value, digit for digit: the lower candidate's digits, a 5, then only zeros.
    let exact = format!("{:.800e}", v.abs());
    let exact_digits = exact.split_once('e')?.0.bytes().filter(u8::is_ascii_digit);
    let lower_digits = lower.as_str().split_once('e')?.0.bytes().filter(u8::is_ascii_digit);
    let mut rest = exact_digits.clone().skip(digits);
    let tie = exact_digits.take(digits).eq(lower_digits) && rest.next() == Some(b'5') && rest.all(|d| d == b'0');
    tie.then_some(last)
}

fn push_integer(out: &mut String, n: i64) {
    let mut buf = [0u8; 20];
    let mut i = buf.len();
    let mut rest = n.unsigned_abs();
    loop {
        i -= 1;
        buf[i] = b'0' + (rest % 10) as u8;
        rest /= 10;
        if rest == 0 {
            break;
        }
    }
    if n < 0 {
        out.push('-');
    }
    out.push_str(std::str::from_utf8(&buf[i..]).expect("ASCII digits"));
}

/// A fixed buffer for one formatted float (`{:e}` of an f64 is at most 24 bytes).
#[derive(Default)]
struct StackText {
    buf: [u8; 32],
    len: usize,
}

impl StackText {
    fn as_str(&self) -> &str {
        std::str::from_utf8(&self.buf[..self.len]).expect("formatted text is UTF-8")
    }
}

impl std::fmt::Write for StackText {
    fn write_str(&mut self, s: &str) -> std::fmt::Result {
        let end = self.len + s.len();
        if end > self.buf.len() {
            return Err(std::fmt::Error);
        }
        self.buf[self.len..end].copy_from_slice(s.as_bytes());
        self.len = end;
        Ok(())
    }
}

/// Appends a label value escaped as the text exposition escapes it (`\\`, `\"`, `\n`).
pub fn escape_label_value_into(out: &mut String, v: &str) {
    if !v.bytes().any(|b| matches!(b, b'\\' | b'"' | b'\n')) {
        return out.push_str(v);
    }
    for c in v.chars() {
        match c {
            '\\' => out.push_str("\\\\"),
            '"' => out.push_str("\\\""),
            '\n' => out.push_str("\\n"),
            c => out.push(c),
        }
    }
}

/// A `# HELP` text escaped as the text exposition escapes it (`\\`, `\n`).
pub fn escape_help(help: &str) -> String {
    help.replace('\\', "\\\\").replace('\n', "\\n")
}

/// A string as the protobuf text format of upstream's Go library writes it: quoted, `\n`,
/// `\r`, `\t`, `\"` and `\\` escaped, every other byte outside printable ASCII (UTF-8
/// included) as a three-digit octal escape (`é` is `\303\251`).
pub fn proto_text_string(s: impl AsRef<[u8]>) -> String {
    let s = s.as_ref();
    let mut out = String::with_capacity(s.len() + 2);
    out.push('"');
    for &b in s {
        match b {
            b'\n' => out.push_str("\\n"),
            b'\r' => out.push_str("\\r"),
            b'\t' => out.push_str("\\t"),
            b'"' => out.push_str("\\\""),
            b'\\' => out.push_str("\\\\"),
            0x20..=0x7e => out.push(b as char),
            _ => {
                let _ = write!(out, "\\{b:03o}");
            }
        }
    }
    out.push('"');
    out
}

/// A double as the protobuf text format of upstream's Go library writes it: Go's `%g`
/// (shortest), the special values as `inf`, `-inf` and `nan`.
pub fn proto_text_float(v: f64) -> String {
    match v {
        v if v.is_nan() => "nan".to_string(),
        f64::INFINITY => "inf".to_string(),
        f64::NEG_INFINITY => "-inf".to_string(),
        v => format_g(v),
    }
}

/// A metric in the compact protobuf text form upstream puts in its messages:
/// `label:<name:"job" value:"a" > gauge:<value:1 > `.
pub fn metric_debug(m: &Metric) -> String {
    let mut out = String::new();
    for l in &m.labels {
        let _ = write!(out, "label:<name:{} value:{} > ", proto_text_string(l.name), proto_text_string(l.value));
    }
    let f = proto_text_float;
    match m.value.classic() {
        Value::Counter(v) => {
            let _ = write!(out, "counter:<value:{} > ", f(*v));
        }
        Value::Gauge(v) => {
            let _ = write!(out, "gauge:<value:{} > ", f(*v));
        }
        Value::Untyped(v) => {
            let _ = write!(out, "untyped:<value:{} > ", f(*v));
        }
        Value::Summary(s) => {
            let SummaryValue { count, sum, quantiles } = s.as_ref();
            let _ = write!(out, "summary:<sample_count:{count} sample_sum:{} ", f(*sum));
            for q in quantiles {
                let _ = write!(out, "quantile:<quantile:{} value:{} > ", f(q.quantile), f(q.value));
            }
            out.push_str("> ");
        }
        Value::Histogram(h) => {
            let HistogramValue { count, sum, buckets } = h.as_ref();
            let _ = write!(out, "histogram:<sample_count:{count} sample_sum:{} ", f(*sum));
            for b in buckets {
                let _ =
                    write!(out, "bucket:<cumulative_count:{} upper_bound:{} > ", b.cumulative_count, f(b.upper_bound));
            }
            out.push_str("> ");
        }
        Value::Missing | Value::Proto(_) => {}
    }
    if let Some(ts) = m.timestamp_ms.get() {
        let _ = write!(out, "timestamp_ms:{ts} ");
    }
    out
}

#[cfg(test)]
mod tests {
    use super::*;

    /// As upstream 1.5.1 writes them in its "collected before" message (asked of it).
    #[test]
    fn protobuf_text_strings_and_floats_as_go_writes_them() {
        assert_eq!(proto_text_string("é\u{1}"), r#""\303\251\001""#);
        assert_eq!(proto_text_string("x\ty\n\"\\\u{7f}~ "), r#""x\ty\n\"\\\177~ ""#);
        assert_eq!(proto_text_string("\r\u{2028}"), r#""\r\342\200\250""#);
        assert_eq!(proto_text_float(f64::NAN), "nan");
        assert_eq!(proto_text_float(f64::INFINITY), "inf");
        assert_eq!(proto_text_float(f64::NEG_INFINITY), "-inf");
        assert_eq!(proto_text_float(1e6), "1e+06");
    }

    #[test]
    // The ties are written as their exact values, more digits than round-tripping needs.
    #[allow(clippy::excessive_precision)]
    fn go_g_format_cases() {
        let cases: &[(&str, f64, &str)] = &[
            ("million uses exponent", 1e6, "1e+06"),
            ("hundred thousand plain", 1e5, "100000"),
            ("many digits exponent", 123456789.0, "1.23456789e+08"),
            ("small plain", 0.0001, "0.0001"),
            ("smaller exponent", 0.00001, "1e-05"),
            ("negative zero", -0.0, "-0"),
            ("huge", 1e300, "1e+300"),
            ("fraction", 1500.0, "1500"),
            ("nan", f64::NAN, "NaN"),
            ("inf", f64::INFINITY, "+Inf"),
            ("minus inf", f64::NEG_INFINITY, "-Inf"),
            ("u64-ish", 12345678901234567890.0, "1.2345678901234567e+19"),
            ("tiny", 2.5e-7, "2.5e-07"),
            ("denormal", 5e-324, "5e-324"),
            ("seven digits", 1234567.0, "1.234567e+06"),
            ("fraction digits", 0.000123456, "0.000123456"),
            ("push time", 1795545856.7681065, "1.7955458567681065e+09"),
            ("negative", -0.5, "-0.5"),
            // Exactly halfway between two shortest candidates: Go takes the even one
            // (upstream 1.5.1 scrapes these as written here).
            ("tie to even", 1796524546.66015625, "1.7965245466601562e+09"),
            ("no tie", 1796524546.66015675, "1.7965245466601567e+09"),
            ("negative tie", -1796524546.66015625, "-1.7965245466601562e+09"),
            ("tie just above a billion", 1000000000.00390625, "1.0000000000039062e+09"),
            ("tie in plain layout", 123456.000244140625, "123456.00024414062"),
            ("tie whose even candidate is above", 123456.000732421875, "123456.00073242188"),
            ("shortest kept", 0.30000000000000004, "0.30000000000000004"),
        ];
        for (name, v, want) in cases {
            assert_eq!(format_g(*v), *want, "case {name}");
        }
        assert_eq!(format_exposition(-0.0), "0");
    }

    /// Go's layout rebuilt from Rust's formatting, allocation and all: the reference the
    /// fast writer must agree with. As many digits as Rust's shortest round-trip form has,
    /// but the value correctly rounded to them (`{:.N e}`, ties to even), which is Go's
    /// choice where two candidates of that length round-trip.
    fn reference_g(v: f64) -> String {
        if v.is_nan() || v.is_infinite() || v == 0.0 {
            return format_g(v);
        }
        let shortest = format!("{v:e}");
        let digits = shortest.split_once('e').unwrap().0.bytes().filter(u8::is_ascii_digit).count();
        let sci = format!("{v:.*e}", digits - 1);
        let (mantissa, exp) = sci.split_once('e').unwrap();
        let exp: i32 = exp.parse().unwrap();
        if !(-4..6).contains(&exp) {
            format!("{mantissa}e{}{:02}", if exp < 0 { '-' } else { '+' }, exp.abs())
        } else {
            format!("{v:.*}", (digits as i32 - 1 - exp).max(0) as usize)
        }
    }

    /// The input proptest found where the reference had taken Rust's tie (the larger
    /// candidate) and the writer Go's (the even one).
    #[test]
    fn a_tie_found_by_proptest_takes_the_even_digit() {
        let v = f64::from_bits(14056572869768143013);
        assert_eq!(format_g(v), "-1.3355080930488732e+15");
        assert_eq!(reference_g(v), format_g(v));
    }

    proptest::proptest! {
        #[test]
        fn fast_writer_matches_the_reference_for_any_bits(bits in proptest::num::u64::ANY) {
            let v = f64::from_bits(bits);
            proptest::prop_assert_eq!(format_g(v), reference_g(v));
        }

        #[test]
        fn fast_writer_matches_the_reference_near_the_layout_edges(
            mantissa in -999_999i64..999_999, exp in -8i32..9
        ) {
            let v = mantissa as f64 * 10f64.powi(exp);
            proptest::prop_assert_eq!(format_g(v), reference_g(v));
        }
    }
}
