use super::*;

/// A hand encoder of the histogram fields used below (field-number order).
#[derive(Default)]
struct H {
    count: Option<u64>,
    sum: f64,
    count_float: Option<f64>,
    schema: i32,
    zero_threshold: f64,
    zero_count: Option<u64>,
    zero_count_float: Option<f64>,
    negative: (Vec<(i32, u32)>, Vec<i64>, Vec<f64>),
    positive: (Vec<(i32, u32)>, Vec<i64>, Vec<f64>),
}

impl H {
    fn encode(&self) -> Vec<u8> {
        let spans = |s: &[(i32, u32)]| s.iter().map(|(o, l)| PbSpan { offset: Some(*o), length: Some(*l) }).collect();
        let h = PbNative {
            sample_count: self.count,
            sample_sum: Some(self.sum),
            sample_count_float: self.count_float,
            schema: Some(self.schema),
            zero_threshold: Some(self.zero_threshold),
            zero_count: self.zero_count,
            zero_count_float: self.zero_count_float,
            negative_span: spans(&self.negative.0),
            negative_delta: self.negative.1.clone(),
            negative_count: self.negative.2.clone(),
            positive_span: spans(&self.positive.0),
            positive_delta: self.positive.1.clone(),
            positive_count: self.positive.2.clone(),
        };
        PbMetricHistogram { histogram: Some(h) }.encode_to_vec()
    }
}

fn api(n: &Native) -> Vec<(u8, String, String, String)> {
    n.buckets.iter().map(|b| (b.boundaries(), format_g(b.lower), format_g(b.upper), b.count.text())).collect()
}

fn row(code: u8, lower: &str, upper: &str, count: &str) -> (u8, String, String, String) {
    (code, lower.into(), upper.into(), count.into())
}

#[test]
fn the_bounds_are_upstreams_table_not_correctly_rounded_powers() {
    let table = bounds_table();
    // Entries of Prometheus's exponentialBounds; several lie 1 to 4 ulps below the
    // correctly rounded 2^(j/2^schema)/2 (0.7071067811865476 for the first).
    assert_eq!(table[0], [0.5]);
    assert_eq!(table[1], [0.5, 0.7071067811865475]);
    assert_eq!(table[2], [0.5, 0.5946035575013605, 0.7071067811865475, 0.8408964152537144]);
    assert_eq!(
        table[3],
        [
            0.5,
            0.5452538663326288,
            0.5946035575013605,
            0.6484197773255048,
            0.7071067811865475,
            0.7711054127039704,
            0.8408964152537144,
            0.9170040432046711
        ]
    );
    let eight = &table[8];
    assert_eq!(eight.len(), 256);
    for (j, want) in
        [(1, 0.5013556375251013), (218, 0.9022270839033115), (219, 0.9046732696855155), (222, 0.9120516927035263)]
    {
        assert_eq!(eight[j], want, "schema 8, entry {j}");
    }
    assert_eq!(eight[250], 0.9838856116165875);
    assert_eq!(eight[255], 0.9972960560854698);
    // Every schema's even entries are the schema below's.
    for s in 1..9 {
        for j in (0..1 << s).step_by(2) {
            assert_eq!(table[s][j], table[s - 1][j / 2]);
        }
    }
}

#[test]
fn bounds_at_the_edges() {
    assert_eq!(bound(0, 0), 1.0);
    assert_eq!(bound(-1, 0), 0.5);
    assert_eq!(bound(1024, 0), f64::MAX, "the last finite bucket ends at the largest float");
    assert_eq!(bound(1025, 0), f64::INFINITY);
    assert_eq!(bound(8192, 3), f64::MAX);
    assert_eq!(bound(-1074, 0), 5e-324);
    assert_eq!(bound(-1075, 0), 0.0);
    assert_eq!(bound(1, -2), 16.0);
    assert_eq!(bound(64, -4), f64::MAX);
    assert_eq!(bound(65, -4), f64::INFINITY);
    assert_eq!(bound(-3, -4), 2f64.powi(-48));
    assert_eq!(bound(i32::MAX, 8), f64::INFINITY);
    assert_eq!(bound(i32::MIN, 8), 0.0);
    assert_eq!(bound(i32::MIN, -1), 0.0);
}

/// Upstream's own API test: schema 1, spans {0,2},{0,2} on both sides, deltas [0,2,-2,0].
#[test]
fn upstreams_api_example() {
    let h = H {
        count: Some(4),
        sum: 2.0,
        schema: 1,
        negative: (vec![(0, 2), (0, 2)], vec![0, 2, -2, 0], vec![]),
        positive: (vec![(0, 2), (0, 2)], vec![0, 2, -2, 0], vec![]),
        ..H::default()
    };
    let n = native(&h.encode()).unwrap();
    assert_eq!(api(&n), [row(1, "-1.414213562373095", "-1", "2"), row(0, "1", "1.414213562373095", "2")]);
    assert_eq!(n.count.text(), "4");
}

#[test]
fn integer_histogram_with_zero_bucket_and_both_sides() {
    let h = H {
        count: Some(9),
        sum: 7.5,
        schema: 3,
        zero_threshold: 2.938735877055719e-39,
        zero_count: Some(1),
        negative: (vec![(-1, 1)], vec![1], vec![]),
        positive: (vec![(0, 2), (3, 1)], vec![2, -1, 3], vec![]),
        ..H::default()
    };
    let n = native(&h.encode()).unwrap();
    assert_eq!(
        api(&n),
        [
            row(1, "-0.9170040432046711", "-0.8408964152537144", "1"),
            row(3, "-2.938735877055719e-39", "2.938735877055719e-39", "1"),
            row(0, "0.9170040432046711", "1", "2"),
            row(0, "1", "1.0905077326652577", "1"),
            row(0, "1.414213562373095", "1.5422108254079407", "4"),
        ]
    );
    assert_eq!(
        n.display(),
        "{count:9, sum:7.5, [-0.9170040432046711,-0.8408964152537144):1, \
         [-2.938735877055719e-39,2.938735877055719e-39]:1, (0.9170040432046711,1]:2, \
         (1,1.0905077326652577]:1, (1.414213562373095,1.5422108254079407]:4}"
    );
}

#[test]
fn float_histogram_uses_absolute_counts() {
    let h = H {
        count_float: Some(9.5),
        sum: 12.25,
        zero_threshold: 0.001,
        zero_count_float: Some(0.5),
        positive: (vec![(0, 2)], vec![], vec![4.0, 5.0]),
        ..H::default()
    };
    let n = native(&h.encode()).unwrap();
    assert_eq!(api(&n), [row(3, "-0.001", "0.001", "0.5"), row(0, "0.5", "1", "4"), row(0, "1", "2", "5")]);
    assert_eq!(n.count.text(), "9.5");
}

#[test]
fn which_histograms_read_as_native() {
    // No span: the classic reading.
    assert_eq!(native(&H { count: Some(3), zero_count: Some(3), ..H::default() }.encode()), None);
    // client_golang's empty native histogram: a span of length 0, no buckets at all.
    let empty = native(&H { positive: (vec![(0, 0)], vec![], vec![]), ..H::default() }.encode()).unwrap();
    assert!(empty.buckets.is_empty());
    // A zero threshold of 0 prints its lower bound as -0.
    let zero =
        native(&H { zero_count: Some(2), positive: (vec![(0, 0)], vec![], vec![]), ..H::default() }.encode()).unwrap();
    assert_eq!(api(&zero), [row(3, "-0", "0", "2")]);
    // Schemas upstream cannot render: the classic reading.
    assert_eq!(native(&H { schema: 9, positive: (vec![(0, 1)], vec![1], vec![]), ..H::default() }.encode()), None);
    assert_eq!(native(&H { schema: -53, positive: (vec![(0, 1)], vec![1], vec![]), ..H::default() }.encode()), None);
    // Spans longer than the counts stop at the last count; a negative running sum wraps as
    // Go's uint64 of it; zero-length spans only move the index.
    let odd = native(&H { positive: (vec![(1, 0), (2, 3)], vec![1, -3], vec![]), ..H::default() }.encode()).unwrap();
    assert_eq!(api(&odd), [row(0, "4", "8", "1"), row(0, "8", "16", "18446744073709551614")]);
}
