//! Float formatting as the Prometheus Go libraries print it.
//!
//! Exposition and the JSON API must match upstream byte for byte, and upstream prints
//! floats with Go's `strconv.FormatFloat(f, 'g', -1, 64)`: the shortest representation
//! that round-trips, in exponent form when the decimal exponent is below -4 or at least
//! 6 (`1e+06`, `2.5e-07`), otherwise plain (`100000`, `0.0001`).

/// Go's `strconv.FormatFloat(v, 'g', -1, 64)`: `NaN`, `+Inf`, `-Inf`, `-0` included.
pub fn format_g(v: f64) -> String {
    if v.is_nan() {
        return "NaN".to_string();
    }
    if v.is_infinite() {
        return if v > 0.0 { "+Inf" } else { "-Inf" }.to_string();
    }
    if v == 0.0 {
        return if v.is_sign_negative() { "-0" } else { "0" }.to_string();
    }
    // Rust's `{:e}` gives the shortest round-trip digits: "1.2345e6", "-5e-324".
    let sci = format!("{v:e}");
    let (mantissa, exp) = sci.split_once('e').expect("`{:e}` always has an exponent");
    let exp: i32 = exp.parse().expect("`{:e}` exponent is an integer");
    if !(-4..6).contains(&exp) {
        let sign = if exp < 0 { '-' } else { '+' };
        format!("{mantissa}e{sign}{:02}", exp.abs())
    } else {
        // Rust's `Display` for f64 is the shortest round-trip form without exponent.
        format!("{v}")
    }
}

/// The text exposition's float format (`expfmt.writeFloat`): like [`format_g`] but
/// `-0` prints as `0`.
pub fn format_exposition(v: f64) -> String {
    if v == 0.0 {
        return "0".to_string();
    }
    format_g(v)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
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
        ];
        for (name, v, want) in cases {
            assert_eq!(format_g(*v), *want, "case {name}");
        }
        assert_eq!(format_exposition(-0.0), "0");
    }
}
