//! Text parser case tables. The error scenarios include the reference parser's own
//! (`expfmt/text_parse_test.go` of prometheus/common): each expected message must be
//! contained in ours.

use super::*;

fn parse(input: &str) -> Result<PushedFamilies, String> {
    parse_text(input.as_bytes()).map_err(|e| e.to_string())
}

#[test]
fn reference_error_scenarios() {
    let cases: &[(&str, &str, &str)] = &[
        ("no newline at end", "\nbla 3.14\nblubber 42", "text format parsing error in line 3: unexpected end of input stream"),
        ("invalid escape in label value", "metric{label=\"\\t\"} 3.14", "text format parsing error in line 1: invalid escape sequence"),
        ("newline in label value", "\nmetric{label=\"new\nline\"} 3.14\n", "text format parsing error in line 2: label value \"new\" contains unescaped new-line"),
        ("bad label name", "metric{@=\"bla\"} 3.14", "text format parsing error in line 1: invalid label name for metric"),
        ("reserved __name__", "metric{__name__=\"bla\"} 3.14", "text format parsing error in line 1: label name \"__name__\" is reserved"),
        ("no equals", "metric{label+=\"bla\"} 3.14", "text format parsing error in line 1: expected '=' after label name"),
        ("unquoted value", "metric{label=bla} 3.14", "text format parsing error in line 1: expected '\"' at start of label value"),
        ("bad quantile", "\n# TYPE metric summary\nmetric{quantile=\"bla\"} 3.14\n", "text format parsing error in line 3: expected float as value for 'quantile' label"),
        ("junk after value", "metric{label=\"bla\"+} 3.14", "text format parsing error in line 1: unexpected end of label value"),
        ("float timestamp", "metric{label=\"bla\"} 3.14 2.72\n", "text format parsing error in line 1: expected integer as timestamp"),
        ("spurious after timestamp", "metric{label=\"bla\"} 3.14 2 3\n", "text format parsing error in line 1: spurious string after timestamp"),
        ("word value", "metric{label=\"bla\"} blubb\n", "text format parsing error in line 1: expected float as value"),
        ("second help", "\n# HELP metric one\n# HELP metric two\n", "text format parsing error in line 3: second HELP line for metric name"),
        ("second type", "\n# TYPE metric counter\n# TYPE metric untyped\n", "text format parsing error in line 3: second TYPE line for metric name \"metric\", or TYPE reported after samples"),
        ("type after samples", "\nmetric 4.12\n# TYPE metric counter\n", "text format parsing error in line 3: second TYPE line for metric name \"metric\", or TYPE reported after samples"),
        ("unknown type", "\n# TYPE metric bla\n", "text format parsing error in line 2: unknown metric type"),
        ("bad name in comment", "\n# TYPE met-ric\n", "text format parsing error in line 2: invalid metric name in comment"),
        ("bad metric name", "@invalidmetric{label=\"bla\"} 3.14 2", "text format parsing error in line 1: invalid metric name"),
        ("no metric name", "{label=\"bla\"} 3.14 2", "text format parsing error in line 1: invalid metric name"),
        ("bad le", "\n# TYPE metric histogram\nmetric_bucket{le=\"bla\"} 3.14\n", "text format parsing error in line 3: expected float as value for 'le' label"),
        ("underscore number", "foo 1_2\n", "text format parsing error in line 1: expected float as value"),
        ("hex float", "foo 0x1p-3\n", "text format parsing error in line 1: expected float as value"),
        ("hex float upper", "foo 0x1P-3\n", "text format parsing error in line 1: expected float as value"),
        ("binary literal", "foo 0B1\n", "text format parsing error in line 1: expected float as value"),
        ("octal literal", "foo 0O1\n", "text format parsing error in line 1: expected float as value"),
        ("hex literal upper", "foo 0X1\n", "text format parsing error in line 1: expected float as value"),
        ("hex literal", "foo 0x1\n", "text format parsing error in line 1: expected float as value"),
        ("binary lower", "foo 0b1\n", "text format parsing error in line 1: expected float as value"),
        ("octal lower", "foo 0o1\n", "text format parsing error in line 1: expected float as value"),
        ("hex le", "\n# TYPE metric histogram\nmetric_bucket{le=\"0x1p-3\"} 3.14\n", "text format parsing error in line 3: expected float as value for 'le' label"),
        ("hex quantile", "\n# TYPE metric summary\nmetric{quantile=\"0x1p-3\"} 3.14\n", "text format parsing error in line 3: expected float as value for 'quantile' label"),
        ("duplicate label", "metric{label=\"bla\",label=\"bla\"} 3.14", "text format parsing error in line 1: duplicate label names for metric"),
        // Recorded against upstream 1.5.1 (see the conformance kit).
        ("crlf", "some_metric 3.14\r\n", "text format parsing error in line 1: expected float as value, got \"3.14\\r\""),
        ("trailing blank after value", "m 1 \n", "text format parsing error in line 1: expected integer as timestamp, got \"\""),
        ("comment without newline", "# c", "text format parsing error in line 1: unexpected end of input stream"),
        ("out of range", "m 1e400\n", "text format parsing error in line 1: expected float as value, got \"1e400\""),
        ("signed nan", "m -nan\n", "text format parsing error in line 1: expected float as value, got \"-nan\""),
        ("type with trailing blank", "# TYPE m gauge \nm 1\n", "text format parsing error in line 1: unknown metric type \"gauge \""),
        ("bad metric name dash", "bad-name 3\n", "text format parsing error in line 1: expected float as value, got \"-name\""),
        ("closing brace without labels", "m} 1\n", "text format parsing error in line 1: expected float as value, got \"}\""),
        ("invalid help escape", "# HELP m say \\\"hi\\\"\nm 1\n", "text format parsing error in line 1: invalid escape sequence '\\\"'"),
    ];
    for (name, input, want) in cases {
        let got = parse(input).expect_err(name);
        assert!(got.contains(want), "case {name}: got {got:?}, want {want:?}");
    }
    let got = parse_text(b"metric{l=\"\xbd\"} 3.14\n").unwrap_err().to_string();
    assert_eq!(got, "text format parsing error in line 1: invalid label value \"\\xbd\"");
    // Recorded against upstream 1.5.1: the type word's bytes quoted as Go quotes them, and
    // a repeated label name without its `=` refused for the missing `=` (Go checks the `=`
    // before it looks for duplicates).
    let cases: &[(&[u8], &str)] = &[
        (b"# TYPE m gauge\xff\n", "unknown metric type \"gauge\\xff\""),
        (b"# TYPE m \xc3\n", "unknown metric type \"\\xc3\""),
        (b"m{a=\"b\",a} 1\n", "expected '=' after label name, found '}'"),
        (b"m{a=\"1\",a\x01=\"2\"} 1\n", "expected '=' after label name, found '\\x01'"),
        (b"m{a=\"1\",b=\"2\",a ,} 1\n", "expected '=' after label name, found ','"),
        (b"m{a=\"1\",a =\"2\"} 1\n", "duplicate label names for metric \"m\""),
        (b"a{l=\"1\",l-b=\"2\"} 1\n", "expected '=' after label name, found '-'"),
    ];
    for (input, want) in cases {
        let got = parse_text(input).unwrap_err().to_string();
        assert_eq!(got, format!("text format parsing error in line 1: {want}"), "{input:?}");
    }
}

fn single(families: &PushedFamilies, name: &str) -> MetricFamily {
    families.get(name).unwrap_or_else(|| panic!("family {name} missing in {families:?}")).clone()
}

#[test]
fn accepted_scenarios() {
    /// (name, input, family, type, number of series, help)
    type Case<'a> = (&'a str, &'a str, &'a str, MetricType, usize, Option<&'a str>);
    let cases: &[Case] = &[
        ("untyped", "some_metric 3.14\n", "some_metric", MetricType::Untyped, 1, None),
        (
            "counter with help",
            "# HELP c A counter.\n# TYPE c counter\nc{a=\"1\"} 1\nc{a=\"2\"} 2\n",
            "c",
            MetricType::Counter,
            2,
            Some("A counter."),
        ),
        ("type case-insensitive", "# TYPE g Gauge\ng 2\n", "g", MetricType::Gauge, 1, None),
        ("help after samples", "m 1\n# HELP m late help\n", "m", MetricType::Untyped, 1, Some("late help")),
        (
            "whitespace variants",
            "  a 1\nb\t2\nc{x = \"1\"} 3\nd{x=\"1\",} 4\ne{} 5\n",
            "c",
            MetricType::Untyped,
            1,
            None,
        ),
        ("degenerate comments", "# HELP\n# TYPE m\nm 1\n", "m", MetricType::Untyped, 1, None),
        ("interleaved", "m 1\nx 2\nm{a=\"1\"} 2\n", "m", MetricType::Untyped, 2, None),
        (
            "summary parts",
            "# TYPE s summary\ns{quantile=\"0.5\"} 1\ns_sum 2\ns_count 3\n",
            "s",
            MetricType::Summary,
            1,
            None,
        ),
        (
            "histogram parts",
            "# TYPE h histogram\nh_bucket{le=\"1\"} 1\nh_bucket{le=\"+Inf\"} 2\nh_sum 2\nh_count 2\n",
            "h",
            MetricType::Histogram,
            1,
            None,
        ),
        ("name charset", ":m:x 1\n", ":m:x", MetricType::Untyped, 1, None),
        ("timestamp kept", "m 1 123\n", "m", MetricType::Untyped, 1, None),
    ];
    for (name, input, family, t, n, help) in cases {
        let families = parse(input).unwrap_or_else(|e| panic!("case {name}: {e}"));
        let f = single(&families, family);
        assert_eq!(f.metric_type, *t, "case {name}");
        assert_eq!(f.metrics.len(), *n, "case {name}");
        assert_eq!(f.help.as_deref(), *help, "case {name}");
    }
}

/// A sample whose `quantile` or `le` is NaN is dropped, as upstream's parser drops one
/// without the label (recorded against upstream 1.5.1: 200, the series without it); the
/// other samples of the series are kept.
#[test]
fn a_nan_quantile_or_bucket_is_no_position() {
    let families = parse(
        "# TYPE s summary\ns{quantile=\"NaN\"} 1\ns{quantile=\"0.5\"} 2\ns_count 3\n\
         # TYPE h histogram\nh_bucket{le=\"NaN\"} 1\nh_bucket{le=\"+Inf\"} 4\nh_count 4\n",
    )
    .unwrap();
    let s = single(&families, "s");
    assert_eq!(s.metrics.len(), 1);
    assert_eq!(s.metrics[0].value, Value::summary(3, 0.0, vec![Quantile { quantile: 0.5, value: 2.0 }]));
    let h = single(&families, "h");
    assert_eq!(h.metrics.len(), 1);
    let buckets = vec![Bucket { upper_bound: f64::INFINITY, cumulative_count: 4 }];
    assert_eq!(h.metrics[0].value, Value::histogram(4, 0.0, buckets));
}

#[test]
fn values_and_escapes() {
    let families =
        parse("# HELP m help with \\\\ backslash and \\n newline\nm{a=\"x\\\"y\",b=\"line\\nnext\"} -Inf\n").unwrap();
    let m = single(&families, "m");
    assert_eq!(m.help.as_deref(), Some("help with \\ backslash and \n newline"));
    assert_eq!(m.metrics[0].labels.iter().next().unwrap().value, "x\"y");
    assert_eq!(m.metrics[0].labels.iter().nth(1).unwrap().value, "line\nnext");
    assert_eq!(m.metrics[0].value, Value::Untyped(f64::NEG_INFINITY));
    let s = single(&parse("# TYPE s summary\ns_sum 2\n").unwrap(), "s");
    assert_eq!(s.metrics[0].value, Value::summary(0, 2.0, vec![]));
    let h = single(&parse("# TYPE h histogram\nh_bucket 1\n").unwrap(), "h");
    assert_eq!(h.metrics[0].value, Value::histogram(0, 0.0, vec![]));
    assert_eq!(single(&parse("m 1 -5\n").unwrap(), "m").metrics[0].timestamp_ms.get(), Some(-5));
}

#[test]
fn empty_and_comment_only_bodies_have_no_families() {
    for input in ["", "\n", "# just a comment\n\n#another\n\n", "# TYPE m gauge\n", "   \n"] {
        assert!(parse(input).unwrap().is_empty(), "{input:?}");
    }
}

#[test]
fn go_float_grammar() {
    for (s, ok) in [
        ("1", true),
        ("1.", true),
        (".5e1", true),
        ("+1", true),
        ("inf", true),
        ("-Infinity", true),
        ("NaN", true),
        ("nan", true),
        ("+nan", false),
        ("1e", false),
        ("e1", false),
        (".", false),
        ("1_0", false),
        ("0x1p3", false),
        ("", false),
        ("1e400", false),
    ] {
        assert_eq!(parse_go_float(s).is_some(), ok, "{s:?}");
    }
}

/// Go's `math.NaN()`, the bits upstream's protobuf scrape carries for a pushed `NaN`.
#[test]
fn nan_has_gos_bits() {
    for s in ["NaN", "nan", "NAN"] {
        assert_eq!(parse_go_float(s).map(f64::to_bits), Some(0x7FF8_0000_0000_0001), "{s}");
    }
}

mod properties {
    use super::*;
    use proptest::prelude::*;

    proptest! {
        #![proptest_config(ProptestConfig { cases: std::env::var("PROPTEST_CASES").ok().and_then(|c| c.parse().ok()).unwrap_or(2000), ..ProptestConfig::default() })]

        /// No input makes the parser panic.
        #[test]
        fn arbitrary_bytes_never_panic(input in proptest::collection::vec(any::<u8>(), 0..512)) {
            let _ = parse_text(&input);
            let _ = parse_text_within(&input, &PushLimits::CEILING, Names::Utf8);
        }

        /// Inputs built from the format's own tokens reach deep states without panicking.
        #[test]
        fn token_soup_never_panics(tokens in proptest::collection::vec(prop_oneof![
            Just("# HELP "), Just("# TYPE "), Just("m"), Just("m_sum"), Just("m_count"), Just("m_bucket"),
            Just("{"), Just("}"), Just("le=\"1\""), Just("quantile=\"0.5\""), Just("a=\"\\n\""), Just(","),
            Just(" "), Just("\t"), Just("\n"), Just("1"), Just("-Inf"), Just("NaN"), Just("summary"),
            Just("histogram"), Just("counter"), Just("\\"), Just("\""), Just("123"), Just("\"a.b\""),
            Just("\"a.b\"=\"v\""),
        ], 0..64)) {
            let _ = parse_text(tokens.concat().as_bytes());
            let _ = parse_text_within(tokens.concat().as_bytes(), &PushLimits::CEILING, Names::Utf8);
        }

        /// Every well-formed untyped sample round-trips its value.
        #[test]
        fn samples_keep_their_value(v in any::<f64>().prop_filter("finite", |v| v.is_finite())) {
            let body = format!("m {}\n", model::go_format::format_g(v));
            let families = parse_text(body.as_bytes()).unwrap();
            prop_assert_eq!(families["m"].metrics[0].value.scalar(), Some(v));
        }
    }
}

/// A line with 50,000 labels parses in linear time (the duplicate check would otherwise
/// compare every label with every earlier one), and a duplicate at its very end is found.
#[test]
fn many_labels_on_one_line_and_a_late_duplicate() {
    let labels: Vec<String> = (0..50_000).map(|i| format!("l{i}=\"v\"")).collect();
    let line = format!("m{{{}}} 1\n", labels.join(","));
    // Beyond every limit a push may have: the parser itself must stay linear.
    let unbounded = PushLimits { labels_per_series: usize::MAX, ..PushLimits::CEILING };
    let families = parse_text_within(line.as_bytes(), &unbounded, Names::Legacy).unwrap();
    assert_eq!(families["m"].metrics[0].labels.len(), 50_000);
    let duplicate = format!("m{{{},l7=\"w\"}} 1\n", labels.join(","));
    let err = parse_text_within(duplicate.as_bytes(), &unbounded, Names::Legacy).unwrap_err().to_string();
    assert!(err.contains("duplicate label names"), "{err}");
}

/// Over a limit, parsing stops there: the series and labels of a body never all reach
/// memory, and the refusal names the flag.
#[test]
fn parsing_stops_at_the_series_and_label_limits() {
    let limits = PushLimits { series: 10, labels_per_series: 4, ..PushLimits::DEFAULT };
    assert_eq!(
        parse_text_within("a 1\n".repeat(10).as_bytes(), &limits, Names::Legacy).map(|f| f["a"].metrics.len()),
        Ok(10)
    );
    let Err(TextParseError::Limit(e)) = parse_text_within("a 1\n".repeat(1_000).as_bytes(), &limits, Names::Legacy)
    else {
        panic!("not refused")
    };
    assert_eq!((e.flag, e.found, e.counting_stopped), ("push.max-series", 11, true));
    assert!(e.to_string().contains("series 11 or more exceeds the limit of 10 (--push.max-series)"), "{e}");
    // Quantile lines join their series: 10 summaries of 3 quantiles each fit.
    let summaries: String = (0..10)
        .map(|i| {
            format!("s{{i=\"{i}\",quantile=\"0.5\"}} 1\ns{{i=\"{i}\",quantile=\"0.9\"}} 1\ns_sum{{i=\"{i}\"}} 1\n")
        })
        .collect();
    let body = format!("# TYPE s summary\n{summaries}");
    assert_eq!(parse_text_within(body.as_bytes(), &limits, Names::Legacy).map(|f| f["s"].metrics.len()), Ok(10));

    assert!(parse_text_within(b"m{a=\"1\",b=\"1\",c=\"1\",d=\"1\"} 1\n", &limits, Names::Legacy).is_ok());
    let Err(TextParseError::Limit(e)) =
        parse_text_within(b"m{a=\"1\",b=\"1\",c=\"1\",d=\"1\",e=\"1\"} 1\n", &limits, Names::Legacy)
    else {
        panic!("not refused")
    };
    assert_eq!((e.flag, e.found), ("push.max-labels-per-series", 5));
}

fn parse_utf8(input: &str) -> Result<PushedFamilies, String> {
    parse_text_within(input.as_bytes(), &PushLimits::CEILING, Names::Utf8).map_err(|e| e.to_string())
}

/// The sample lines of a parse as `name{label=value,...} value`, sorted.
fn samples(families: &PushedFamilies) -> Vec<String> {
    let mut out: Vec<String> = families
        .values()
        .flat_map(|f| {
            f.metrics.iter().map(move |m| {
                let labels: Vec<String> = m.labels.iter().map(|l| format!("{}={}", l.name, l.value)).collect();
                format!("{}{{{}}} {:?}", f.name, labels.join(","), m.value.scalar())
            })
        })
        .collect();
    out.sort();
    out
}

/// `--push.enable-utf8-names`: upstream 1.11's quoted names (prometheus/common's parser
/// tests), and the same bodies refused without the flag with 1.11's messages.
#[test]
fn utf8_names_in_quotes() {
    let accepted = [
        ("{\"my.metric\",label=\"v\"} 1\n", "my.metric{label=v} Some(1.0)"),
        ("{\"my.metric\"} 2\n", "my.metric{} Some(2.0)"),
        ("\"my.metric\"{\"a.b\"=\"v\"} 3\n", "my.metric{a.b=v} Some(3.0)"),
        ("\"my.metric\" 4\n", "my.metric{} Some(4.0)"),
        ("m{\"a.b\"=\"v\"} 5\n", "m{a.b=v} Some(5.0)"),
        ("{a=\"b\",\"m.x\"} 6\n", "m.x{a=b} Some(6.0)"),
        ("{\"esc\\\"aped\\\\name\",\"l\\nx\"=\"v\"} 7\n", "esc\"aped\\name{l\nx=v} Some(7.0)"),
        ("{\"花火\",\"label with 😱\"=\"v\"} 8\n", "花火{label with 😱=v} Some(8.0)"),
    ];
    for (body, want) in accepted {
        let families = parse_utf8(body).unwrap_or_else(|e| panic!("{body:?}: {e}"));
        assert_eq!(samples(&families), [want], "{body:?}");
    }
    let typed = parse_utf8(
        "# HELP \"my.hist\" Help of \"it\".\n# TYPE \"my.hist\" histogram\n\
         {\"my.hist_bucket\",le=\"1\"} 1\n{\"my.hist_bucket\",le=\"+Inf\"} 2\n{\"my.hist_sum\"} 3\n\
         {\"my.hist_count\"} 2\n",
    )
    .unwrap();
    let h = &typed["my.hist"];
    assert_eq!((h.metric_type, h.help.as_deref()), (MetricType::Histogram, Some("Help of \"it\".")));
    assert_eq!(
        h.metrics[0].value,
        Value::histogram(
            2,
            3.0,
            vec![
                Bucket { upper_bound: 1.0, cumulative_count: 1 },
                Bucket { upper_bound: f64::INFINITY, cumulative_count: 2 }
            ]
        )
    );

    let refused = [
        ("{\"a.b\",\"c.d\"} 1\n", "multiple metric names for metric \"a.b\""),
        ("{\"a.b\" x} 1\n", "unexpected end of metric name 'x'"),
        ("{a=\"1\"} 1\n", "invalid metric name"),
        ("m{a.b=\"v\"} 1\n", "expected '=' after label name, found '.'"),
        ("\"\" 1\n", "invalid metric name \"\""),
        ("m{\"\"=\"v\"} 1\n", "invalid label name \"\""),
        ("\"a\\x\" 1\n", "invalid escape sequence '\\x'"),
        ("\"a\nb\" 1\n", "metric name \"a\" contains unescaped new-line"),
        ("my.metric 1\n", "expected float as value, got \".metric\""),
    ];
    for (body, want) in refused {
        let e = parse_utf8(body).expect_err(body);
        assert!(e.contains(want), "{body:?}: {e}");
    }
    // Without the flag: 1.5.1's parser, which has no quotes.
    for body in ["{\"my.metric\"} 1\n", "\"my.metric\" 1\n", "m{\"a\"=\"v\"} 1\n"] {
        assert!(parse(body).is_err(), "{body:?} without the flag");
    }
}

/// Go's `strconv.Quote`, as upstream 1.5.1 quotes what it could not parse (asked of it).
#[test]
fn quoting_escapes_what_go_does_not_call_printable() {
    let cases: &[(&str, &str)] = &[
        ("\u{2028}{a=\"b\"}", r#""\u2028{a=\"b\"}""#),
        ("\u{feff}x", r#""\ufeffx""#),
        ("\u{e000}", r#""\ue000""#),
        ("\u{3000}", r#""\u3000""#),
        ("\u{10ffff}", r#""\U0010ffff""#),
        ("é€😀 ~", r#""é€😀 ~""#),
        ("\u{7}\u{8}\u{c}\u{b}\u{1b}\u{7f}", r#""\a\b\f\v\x1b\x7f""#),
        ("\u{85}\u{a0}", r#""\u0085\u00a0""#),
    ];
    for (text, quoted) in cases {
        assert_eq!(go_quote(text.as_bytes()), *quoted, "{text:?}");
    }
    assert_eq!(go_quote(b"a\xffb"), r#""a\xffb""#);
}
