//! Native histograms as upstream 1.10+ shows them in `/api/v1/metrics` and on the status
//! page: buckets with their boundaries, read from the fields a protobuf push kept whole.
//!
//! Upstream converts the pushed message to Prometheus's model histogram and lists its
//! buckets: negative ones from the most negative up, the zero bucket when it holds
//! anything, positive ones upwards, empty ones left out. A bucket's bounds come from
//! Prometheus's `getBound`, whose table of bounds for schemas 1 to 8 was generated once by
//! client_golang's documented procedure (each odd entry the previous one times
//! 2^(2^-schema), each even one taken from the schema below) with Go's own `math.Exp2`, and
//! is not correctly rounded. [`bounds_table`] runs the same procedure with the same
//! exponential (fdlibm's, which Go's pure `Exp2` is), so the bounds printed here are
//! upstream's to the last bit.

use std::sync::OnceLock;

use prost::Message;

use model::go_format::format_g;

#[derive(Clone, PartialEq, Message)]
struct PbSpan {
    #[prost(sint32, optional, tag = "1")]
    offset: Option<i32>,
    #[prost(uint32, optional, tag = "2")]
    length: Option<u32>,
}

/// The native fields of `io.prometheus.client.Histogram` (client_model 0.6).
#[derive(Clone, PartialEq, Message)]
struct PbNative {
    #[prost(uint64, optional, tag = "1")]
    sample_count: Option<u64>,
    #[prost(double, optional, tag = "2")]
    sample_sum: Option<f64>,
    #[prost(double, optional, tag = "4")]
    sample_count_float: Option<f64>,
    #[prost(sint32, optional, tag = "5")]
    schema: Option<i32>,
    #[prost(double, optional, tag = "6")]
    zero_threshold: Option<f64>,
    #[prost(uint64, optional, tag = "7")]
    zero_count: Option<u64>,
    #[prost(double, optional, tag = "8")]
    zero_count_float: Option<f64>,
    #[prost(message, repeated, tag = "9")]
    negative_span: Vec<PbSpan>,
    #[prost(sint64, repeated, tag = "10")]
    negative_delta: Vec<i64>,
    #[prost(double, repeated, tag = "11")]
    negative_count: Vec<f64>,
    #[prost(message, repeated, tag = "12")]
    positive_span: Vec<PbSpan>,
    #[prost(sint64, repeated, tag = "13")]
    positive_delta: Vec<i64>,
    #[prost(double, repeated, tag = "14")]
    positive_count: Vec<f64>,
}

#[derive(Clone, PartialEq, Message)]
struct PbMetricHistogram {
    #[prost(message, optional, tag = "7")]
    histogram: Option<PbNative>,
}

/// A bucket count: integer histograms sum their deltas (and print the sum as Go's
/// `uint64` of it), float histograms carry absolute counts.
#[derive(Clone, Copy, Debug, PartialEq)]
pub enum Count {
    Int(i64),
    Float(f64),
}

impl Count {
    fn is_zero(self) -> bool {
        match self {
            Count::Int(n) => n == 0,
            Count::Float(f) => f == 0.0,
        }
    }

    /// Go's `%v` of the count.
    pub fn text(self) -> String {
        match self {
            Count::Int(n) => (n as u64).to_string(),
            Count::Float(f) => format_g(f),
        }
    }
}

/// One bucket: its bounds, whether each is included, and its count.
#[derive(Clone, Debug, PartialEq)]
pub struct Bucket {
    pub lower: f64,
    pub upper: f64,
    pub lower_inclusive: bool,
    pub upper_inclusive: bool,
    pub count: Count,
}

impl Bucket {
    /// The API's code of the boundaries: 0 `(]`, 1 `[)`, 2 `()`, 3 `[]`.
    pub fn boundaries(&self) -> u8 {
        match (self.lower_inclusive, self.upper_inclusive) {
            (true, true) => 3,
            (true, false) => 1,
            (false, true) => 0,
            (false, false) => 2,
        }
    }

    /// Prometheus's `Bucket.String()`: `(0.5,1]:4`.
    pub fn display(&self) -> String {
        format!(
            "{}{},{}{}:{}",
            if self.lower_inclusive { '[' } else { '(' },
            format_g(self.lower),
            format_g(self.upper),
            if self.upper_inclusive { ']' } else { ')' },
            self.count.text()
        )
    }
}

/// A native histogram's reading: count, sum and its non-empty buckets in upstream's order.
#[derive(Clone, Debug, PartialEq)]
pub struct Native {
    pub count: Count,
    pub sum: f64,
    pub buckets: Vec<Bucket>,
}

impl Native {
    /// Prometheus's `Histogram.String()`, which the status page shows.
    pub fn display(&self) -> String {
        let mut out = format!("{{count:{}, sum:{}", self.count.text(), format_g(self.sum));
        for b in &self.buckets {
            out.push_str(", ");
            out.push_str(&b.display());
        }
        out.push('}');
        out
    }
}

/// The native reading of a histogram kept whole, as upstream 1.10+ decides it: native
/// when the message has at least one span (on either side), whatever its classic buckets;
/// a float histogram when `sample_count_float` or `zero_count_float` is above zero.
/// `None`: no span (upstream shows the classic reading), or a schema for which upstream's
/// `getBound` has no answer (above 8, or custom buckets: upstream's request then fails
/// without an answer; here the classic reading is shown).
pub fn native(fields: &[u8]) -> Option<Native> {
    let h = PbMetricHistogram::decode(fields).ok()?.histogram?;
    if h.negative_span.is_empty() && h.positive_span.is_empty() {
        return None;
    }
    let schema = h.schema.unwrap_or(0);
    if schema > 8 || schema == CUSTOM_BUCKETS_SCHEMA {
        return None;
    }
    let float = h.sample_count_float.unwrap_or(0.0) > 0.0 || h.zero_count_float.unwrap_or(0.0) > 0.0;
    let spans = |s: &[PbSpan]| s.iter().map(|s| (s.offset.unwrap_or(0), s.length.unwrap_or(0))).collect::<Vec<_>>();
    let counts = |deltas: &[i64], absolute: &[f64]| -> Vec<Count> {
        if float {
            absolute.iter().map(|c| Count::Float(*c)).collect()
        } else {
            deltas
                .iter()
                .scan(0i64, |sum, d| {
                    *sum = sum.wrapping_add(*d);
                    Some(Count::Int(*sum))
                })
                .collect()
        }
    };
    let negative = indexed(&spans(&h.negative_span), &counts(&h.negative_delta, &h.negative_count));
    let positive = indexed(&spans(&h.positive_span), &counts(&h.positive_delta, &h.positive_count));
    let zero_threshold = h.zero_threshold.unwrap_or(0.0);
    let zero_count = if float {
        Count::Float(h.zero_count_float.unwrap_or(0.0))
    } else {
        Count::Int(h.zero_count.unwrap_or(0) as i64)
    };

    let mut buckets = Vec::new();
    for (index, count) in negative.into_iter().rev().filter(|(_, c)| !c.is_zero()) {
        let lower = -bound(index, schema);
        let upper = -bound(index.wrapping_sub(1), schema);
        buckets.push(Bucket { lower, upper, lower_inclusive: lower < 0.0, upper_inclusive: upper > 0.0, count });
    }
    if !zero_count.is_zero() {
        buckets.push(Bucket {
            lower: -zero_threshold,
            upper: zero_threshold,
            lower_inclusive: true,
            upper_inclusive: true,
            count: zero_count,
        });
    }
    for (index, count) in positive.into_iter().filter(|(_, c)| !c.is_zero()) {
        let lower = bound(index.wrapping_sub(1), schema);
        let upper = bound(index, schema);
        buckets.push(Bucket { lower, upper, lower_inclusive: lower < 0.0, upper_inclusive: upper > 0.0, count });
    }
    let count = if float {
        Count::Float(h.sample_count_float.unwrap_or(0.0))
    } else {
        Count::Int(h.sample_count.unwrap_or(0) as i64)
    };
    Some(Native { count, sum: h.sample_sum.unwrap_or(0.0), buckets })
}

/// Prometheus's schema for custom bucket bounds, which client_model 0.6 cannot carry.
const CUSTOM_BUCKETS_SCHEMA: i32 = -53;

/// Bucket indexes for the counts, span by span: the first span starts at its offset, each
/// later one that far past the end of the one before (a span of length 0 only moves the
/// index). Stops when the counts run out; counts beyond the spans are ignored.
fn indexed(spans: &[(i32, u32)], counts: &[Count]) -> Vec<(i32, Count)> {
    let mut out = Vec::with_capacity(counts.len());
    let mut counts = counts.iter();
    let mut next: i32 = 0;
    for (i, (offset, length)) in spans.iter().enumerate() {
        let mut index = if i == 0 { *offset } else { next.wrapping_add(*offset) };
        for _ in 0..*length {
            let Some(count) = counts.next() else { return out };
            out.push((index, *count));
            index = index.wrapping_add(1);
        }
        next = index;
    }
    out
}

/// The upper bound of bucket `index` at `schema` (Prometheus's `getBound` for exponential
/// schemas): 2^(index·2^-schema), except that the last bucket before the one for infinite
/// observations ends at the largest float rather than at infinity.
fn bound(index: i32, schema: i32) -> f64 {
    if schema < 0 {
        let shift = schema.unsigned_abs();
        let exp = if shift >= 64 { 0 } else { i64::from(index).wrapping_shl(shift) };
        if exp == 1024 {
            return f64::MAX;
        }
        return ldexp(1.0, exp);
    }
    let table = &bounds_table()[schema as usize];
    let fraction = table[(index & ((1 << schema) - 1)) as usize];
    let exp = i64::from(index >> schema) + 1;
    if fraction == 0.5 && exp == 1025 {
        return f64::MAX;
    }
    ldexp(fraction, exp)
}

/// `x·2^exp` with one rounding (Go's `math.Ldexp`), for `x` a normal number or zero.
fn ldexp(x: f64, exp: i64) -> f64 {
    let pow2 = |e: i64| f64::from_bits(((e + 1023) as u64) << 52);
    if x == 0.0 || !x.is_finite() {
        return x;
    }
    match exp {
        e if e > 2046 => x * f64::INFINITY,
        e if e > 1023 => x * pow2(1023) * pow2(e - 1023),
        e if e >= -1022 => x * pow2(e),
        // Exact to a normal number first, then one rounding into the subnormal range.
        e if e >= -2000 => x * pow2(e + 1022) * pow2(-1022),
        _ => x * 0.0,
    }
}

/// The fractions (in [0.5, 1)) of the bucket bounds for schemas 0 to 8, made by
/// client_golang's procedure with Go's `Exp2` (see the module's documentation).
fn bounds_table() -> &'static [Vec<f64>; 9] {
    static TABLE: OnceLock<[Vec<f64>; 9]> = OnceLock::new();
    TABLE.get_or_init(|| {
        let mut table: [Vec<f64>; 9] = Default::default();
        for schema in 0..9usize {
            let factor = go_exp2(go_exp2(-(schema as f64)));
            let mut bounds = vec![0.5];
            for j in 0..(1usize << schema) - 1 {
                let bound = if (j + 1) % 2 == 0 { table[schema - 1][j / 2 + 1] } else { bounds[j] * factor };
                bounds.push(bound);
            }
            table[schema] = bounds;
        }
        table
    })
}

/// 2^x as Go's pure `math.Exp2` computes it: fdlibm's method (Sun's `e_exp.c`): reduce to
/// x = k + t with |t| ≤ 1/2, then e^(t·ln 2) by its rational approximation with the Remez
/// coefficients P1..P5, with ln 2 split in a high and a low part; scaled by 2^k. Only
/// needed for the nine factors of [`bounds_table`]; no fused multiply-add, as in Go on
/// amd64.
// The constants are fdlibm's as published (more digits than a double holds; each parses to
// the double fdlibm gives in hex).
#[allow(clippy::excessive_precision)]
fn go_exp2(x: f64) -> f64 {
    const LN2_HI: f64 = 6.931_471_803_691_238_164_90e-01;
    const LN2_LO: f64 = 1.908_214_929_270_587_700_02e-10;
    const P1: f64 = 1.666_666_666_666_666_574_15e-01;
    const P2: f64 = -2.777_777_777_701_559_338_42e-03;
    const P3: f64 = 6.613_756_321_437_934_361_17e-05;
    const P4: f64 = -1.653_390_220_546_525_153_90e-06;
    const P5: f64 = 4.138_136_797_057_238_460_39e-08;
    let k: i64 = if x > 0.0 {
        (x + 0.5) as i64
    } else if x < 0.0 {
        (x - 0.5) as i64
    } else {
        0
    };
    let t = x - k as f64;
    let hi = t * LN2_HI;
    let lo = -t * LN2_LO;
    let r = hi - lo;
    let tt = r * r;
    let c = r - tt * (P1 + tt * (P2 + tt * (P3 + tt * (P4 + tt * P5))));
    let y = 1.0 - ((lo - (r * c) / (2.0 - c)) - hi);
    ldexp(y, k)
}

#[cfg(test)]
mod tests;
