//! `apply` as a story: each case pushes into a fresh store and checks the outcome and
//! the state it leaves.

use std::collections::{BTreeMap, BTreeSet};

use super::*;
use crate::labels::Labels;
use crate::metric::{LabelPair, Metric, MetricFamily, Quantile, Timestamp, Value};
use crate::own_families::OwnFamily;

fn key(pairs: &[(&str, &str)]) -> GroupingKey {
    GroupingKey::new(pairs.iter().map(|(k, v)| (k.to_string(), v.to_string())).collect())
}

fn family(name: &str, t: MetricType, series: &[(&[(&str, &str)], f64)]) -> MetricFamily {
    MetricFamily {
        name: name.into(),
        help: None,
        metric_type: t,
        metrics: series
            .iter()
            .map(|(labels, v)| Metric {
                labels: labels.iter().map(|(k, v)| LabelPair::new(*k, *v)).collect(),
                value: match t {
                    MetricType::Counter => Value::Counter(*v),
                    MetricType::Gauge => Value::Gauge(*v),
                    MetricType::Summary => Value::summary(1, *v, vec![Quantile { quantile: 0.5, value: *v }]),
                    MetricType::Histogram => Value::histogram(1, *v, vec![]),
                    _ => Value::Untyped(*v),
                },
                timestamp_ms: Timestamp::NONE,
            })
            .collect(),
    }
}

fn push(store: &mut GroupStore, k: &GroupingKey, families: Vec<MetricFamily>, replace: bool, t: i64) -> Outcome {
    let families: PushedFamilies = families.into_iter().map(|f| (f.name.clone(), f)).collect();
    store.apply(Command::Push { key: k.clone(), families, replace, time: UnixNanos(t), defect: None })
}

/// Two own families (sorted by name), with short help texts.
fn own() -> &'static [OwnFamily] {
    &[
        OwnFamily {
            name: "pushgateway_build_info",
            metric_type: MetricType::Gauge,
            help: "build",
            help_must_match: false,
        },
        OwnFamily {
            name: "pushgateway_http_push_size_bytes",
            metric_type: MetricType::Summary,
            help: "size",
            help_must_match: true,
        },
    ]
}

fn names(store: &GroupStore, k: &GroupingKey) -> Vec<String> {
    store.group(k).map(|g| g.families.keys().cloned().collect()).unwrap_or_default()
}

fn rejected(o: &Outcome) -> bool {
    matches!(o, Outcome::Rejected { .. })
}

const NO_LABELS: &[(&str, &str)] = &[];

#[test]
fn put_replaces_and_post_merges() {
    let mut s = GroupStore::with_own_families(own());
    let j = key(&[("job", "j")]);
    push(
        &mut s,
        &j,
        vec![
            family("a", MetricType::Untyped, &[(NO_LABELS, 1.0)]),
            family("b", MetricType::Untyped, &[(NO_LABELS, 2.0)]),
        ],
        true,
        1,
    );
    push(
        &mut s,
        &j,
        vec![
            family("b", MetricType::Untyped, &[(NO_LABELS, 20.0)]),
            family("c", MetricType::Untyped, &[(NO_LABELS, 30.0)]),
        ],
        false,
        2,
    );
    assert_eq!(names(&s, &j), ["a", "b", "c"]);
    push(&mut s, &j, vec![family("c", MetricType::Untyped, &[(NO_LABELS, 3.0)])], true, 3);
    assert_eq!(names(&s, &j), ["c"]);
    let g = s.group(&j).unwrap();
    assert_eq!(g.push_time, UnixNanos(3));
    assert!(g.push_failure_time.is_never());
    // Series carry the grouping labels and instance="", sorted by name.
    let labels: Vec<_> = g.families["c"].family.metrics[0].labels.iter().map(|l| (l.name, l.value)).collect();
    assert_eq!(labels, [("instance", ""), ("job", "j")]);
    // An empty PUT clears the families but keeps the group.
    assert_eq!(push(&mut s, &j, vec![], true, 4), Outcome::Pushed);
    assert!(names(&s, &j).is_empty());
    assert_eq!(s.group(&j).unwrap().push_time, UnixNanos(4));
}

#[test]
fn grouping_labels_override_body_labels() {
    let mut s = GroupStore::with_own_families(own());
    let k = key(&[("job", "a"), ("instance", "i")]);
    push(
        &mut s,
        &k,
        vec![family("m", MetricType::Gauge, &[(&[("job", "other"), ("instance", "x"), ("z", "1")], 1.0)])],
        true,
        1,
    );
    let m = &s.group(&k).unwrap().families["m"].family.metrics[0];
    let labels: Vec<_> = m.labels.iter().map(|l| (l.name, l.value)).collect();
    assert_eq!(labels, [("instance", "i"), ("job", "a"), ("z", "1")]);
}

#[test]
fn type_conflict_across_groups_is_rejected_and_recorded() {
    let mut s = GroupStore::with_own_families(own());
    let (a, b) = (key(&[("job", "a")]), key(&[("job", "b")]));
    push(&mut s, &a, vec![family("m", MetricType::Untyped, &[(NO_LABELS, 1.0)])], true, 1);
    push(&mut s, &b, vec![family("x", MetricType::Gauge, &[(NO_LABELS, 1.0)])], true, 2);
    let o = push(&mut s, &a, vec![family("x", MetricType::Counter, &[(NO_LABELS, 1.0)])], true, 3);
    let Outcome::Rejected { reason } = o else { panic!("accepted a type conflict") };
    // Upstream's usual words (it gathers the stored group first): the pushed series is not
    // of the stored family's type.
    let expected = "collected metric \"x\" { label:<name:\"instance\" value:\"\" > label:<name:\"job\" value:\"a\" > \
                    counter:<value:1 > } is not a GAUGE";
    assert_eq!(reason, expected);
    // Pushed without series, the stored group's first series is named, not of the pushed type.
    let o = push(&mut s, &a, vec![family("x", MetricType::Counter, &[])], true, 3);
    let Outcome::Rejected { reason } = o else { panic!("accepted a type conflict") };
    assert!(reason.contains("value:\"b\" > gauge:<value:1 > } is not a COUNTER"), "{reason}");
    let g = s.group(&a).unwrap();
    assert_eq!(names(&s, &a), ["m"], "a failed push leaves the group's metrics alone");
    assert_eq!(g.push_failure_time, UnixNanos(3));
    assert_eq!(g.push_time, UnixNanos(1));
    assert!(!g.last_push_successful());
    // The same type change within one group is fine (the old family is replaced).
    assert_eq!(push(&mut s, &b, vec![family("x", MetricType::Counter, &[(NO_LABELS, 1.0)])], true, 4), Outcome::Pushed);
}

/// Upstream merges same-named families of all groups into one, of the type of whichever
/// group Go's map order gives first, and checks each series against it: families without
/// series never clash, whatever their types. From version 8 on they are taken alike (and,
/// having no series, exposed by no scrape); a family with series beside one of another
/// type without series, which upstream takes or refuses by that order, is still refused.
#[test]
fn version_8_lets_families_without_series_differ_in_type() {
    let (a, b, c) = (key(&[("job", "a")]), key(&[("job", "b")]), key(&[("job", "c")]));
    let mut before = GroupStore::with_own_families(own());
    before.apply(Command::SetVersion { version: version::V7 });
    let mut s = before.clone();
    s.apply(Command::SetVersion { version: version::V8 });
    for store in [&mut before, &mut s] {
        assert_eq!(push(store, &a, vec![family("x", MetricType::Counter, &[])], true, 1), Outcome::Pushed);
    }
    let o = push(&mut before, &b, vec![family("x", MetricType::Summary, &[])], true, 2);
    let Outcome::Rejected { reason } = o else { panic!("version 7 took two types of x") };
    assert_eq!(reason, "gathered metric family x has inconsistent types");

    assert_eq!(push(&mut s, &b, vec![family("x", MetricType::Summary, &[])], true, 2), Outcome::Pushed);
    // A third group's series of either type, or of another, meets a family of another type.
    for t in [MetricType::Counter, MetricType::Summary, MetricType::Gauge] {
        assert!(rejected(&push(&mut s, &c, vec![family("x", t, &[(NO_LABELS, 1.0)])], true, 3)), "{t:?}");
    }
    // Nor may a group give its own family series while another's has another type.
    let o = push(&mut s, &a, vec![family("x", MetricType::Counter, &[(NO_LABELS, 1.0)])], true, 4);
    let Outcome::Rejected { reason } = o else { panic!("took a series beside a family of another type") };
    assert!(reason.ends_with("counter:<value:1 > } is not a SUMMARY"), "{reason}");
    // Suffixes are judged against every type the name has: x_count beside a summary x,
    // also in a group whose own x (kept by a POST, or pushed with it) is the counter.
    assert!(rejected(&push(&mut s, &c, vec![family("x_count", MetricType::Gauge, &[])], true, 5)));
    assert!(rejected(&push(&mut s, &a, vec![family("x_count", MetricType::Gauge, &[(NO_LABELS, 1.0)])], false, 5)));
    let both = vec![family("x", MetricType::Counter, &[]), family("x_sum", MetricType::Gauge, &[(NO_LABELS, 1.0)])];
    assert!(rejected(&push(&mut s, &a, both, true, 5)));
    assert_eq!(push(&mut s, &c, vec![family("y", MetricType::Gauge, &[])], true, 5), Outcome::Pushed);

    // Once only one type is left, series of it are taken; then a family of another type
    // without series is refused, in upstream's words for the order it usually takes.
    s.apply(Command::Delete { key: b.clone() });
    assert_eq!(push(&mut s, &c, vec![family("x", MetricType::Counter, &[(NO_LABELS, 1.0)])], true, 6), Outcome::Pushed);
    let o = push(&mut s, &b, vec![family("x", MetricType::Gauge, &[])], true, 7);
    let Outcome::Rejected { reason } = o else { panic!("took a family of another type beside series") };
    assert!(reason.ends_with("value:\"c\" > counter:<value:1 > } is not a GAUGE"), "{reason}");
    let mut counted = GroupStore::with_own_families(own());
    counted.replace_groups(s.groups().cloned());
    assert_eq!(s.families, counted.families);
}

/// Upstream refuses a `quantile` label on any series that carries a summary message,
/// whatever its family's type: a protobuf metric of a gauge family may carry one beside
/// its gauge (kept with the value). A rule of version 8.
#[test]
fn version_8_refuses_a_quantile_label_beside_a_summary_in_any_family() {
    let series = |t: MetricType, value: Value, summary: bool| {
        let mut fields = Vec::new();
        crate::wire::put_len(2, &[0x09, 0, 0, 0, 0, 0, 0, 0xf0, 0x3f], &mut fields);
        if summary {
            crate::wire::put_len(4, &[], &mut fields);
        }
        MetricFamily {
            name: "m".into(),
            help: None,
            metric_type: t,
            metrics: vec![Metric {
                labels: [LabelPair::new("quantile", "x")].into_iter().collect(),
                value: Value::Proto(Box::new(crate::ProtoValue { classic: value, fields })),
                timestamp_ms: Timestamp::NONE,
            }],
        }
    };
    let a = key(&[("job", "a")]);
    let mut v7 = GroupStore::with_own_families(own());
    v7.apply(Command::SetVersion { version: version::V7 });
    let mut v8 = v7.clone();
    v8.apply(Command::SetVersion { version: version::V8 });
    let gauge_with_summary = || series(MetricType::Gauge, Value::Gauge(1.0), true);
    assert_eq!(push(&mut v7, &a, vec![gauge_with_summary()], true, 1), Outcome::Pushed, "version 7 took it");
    let Outcome::Rejected { reason } = push(&mut v8, &a, vec![gauge_with_summary()], true, 1) else {
        panic!("version 8 took a quantile label beside a summary")
    };
    assert!(reason.ends_with("must not have an explicit \"quantile\" label"), "{reason}");
    let counter = series(MetricType::Counter, Value::Counter(1.0), true);
    assert!(rejected(&push(&mut v8, &a, vec![counter], true, 2)));
    // Without a summary the label is an ordinary one.
    assert_eq!(push(&mut v8, &a, vec![series(MetricType::Gauge, Value::Gauge(1.0), false)], true, 3), Outcome::Pushed);
}

#[test]
fn duplicate_series_within_and_across_groups() {
    let mut s = GroupStore::with_own_families(own());
    let a = key(&[("job", "a")]);
    assert!(rejected(&push(
        &mut s,
        &a,
        vec![family("m", MetricType::Untyped, &[(NO_LABELS, 3.0), (NO_LABELS, 4.0)])],
        true,
        1
    )));
    let g = s.group(&a).unwrap();
    assert!(g.push_time.is_never() && g.push_failure_time == UnixNanos(1), "a failed push creates the group");
    push(&mut s, &a, vec![family("m", MetricType::Untyped, &[(&[("x", "1")], 1.0)])], true, 2);
    let ax = key(&[("job", "a"), ("x", "1")]);
    assert!(rejected(&push(&mut s, &ax, vec![family("m", MetricType::Untyped, &[(NO_LABELS, 2.0)])], true, 3)));
    // Another job can never collide: same body, different job.
    let other = key(&[("job", "b"), ("x", "1")]);
    assert_eq!(
        push(&mut s, &other, vec![family("m", MetricType::Untyped, &[(NO_LABELS, 2.0)])], true, 4),
        Outcome::Pushed
    );
}

#[test]
fn explicit_empty_instance_never_breaks_the_store() {
    let mut s = GroupStore::with_own_families(own());
    let j = key(&[("job", "j")]);
    let j_empty = key(&[("job", "j"), ("instance", "")]);
    push(&mut s, &j, vec![family("m", MetricType::Untyped, &[(NO_LABELS, 1.0)])], true, 1);
    assert!(rejected(&push(&mut s, &j_empty, vec![], true, 2)));
    assert!(s.group(&j_empty).is_none(), "the failure must not create a colliding group");
    assert_eq!(
        push(
            &mut s,
            &key(&[("job", "unrelated")]),
            vec![family("u", MetricType::Untyped, &[(NO_LABELS, 1.0)])],
            true,
            3
        ),
        Outcome::Pushed
    );
    // Alone, {job=j,instance=""} is a fine group.
    s.apply(Command::Delete { key: j.clone() });
    assert_eq!(
        push(&mut s, &j_empty, vec![family("m", MetricType::Untyped, &[(NO_LABELS, 1.0)])], true, 4),
        Outcome::Pushed
    );
}

#[test]
fn suffix_collisions_both_orders() {
    let mut s = GroupStore::with_own_families(own());
    let k = |j: &str| key(&[("job", j)]);
    assert_eq!(
        push(&mut s, &k("a"), vec![family("m", MetricType::Summary, &[(NO_LABELS, 1.0)])], true, 1),
        Outcome::Pushed
    );
    assert!(rejected(&push(&mut s, &k("b"), vec![family("m_sum", MetricType::Gauge, &[(NO_LABELS, 5.0)])], true, 2)));
    assert_eq!(
        push(&mut s, &k("c"), vec![family("y_count", MetricType::Gauge, &[(NO_LABELS, 1.0)])], true, 3),
        Outcome::Pushed
    );
    assert!(rejected(&push(&mut s, &k("d"), vec![family("y", MetricType::Summary, &[(NO_LABELS, 1.0)])], true, 4)));
    assert_eq!(
        push(&mut s, &k("e"), vec![family("x", MetricType::Histogram, &[(NO_LABELS, 1.0)])], true, 5),
        Outcome::Pushed
    );
    assert!(rejected(&push(
        &mut s,
        &k("f"),
        vec![family("x_bucket", MetricType::Untyped, &[(NO_LABELS, 1.0)])],
        true,
        6
    )));
    // Counters own no suffix.
    assert_eq!(
        push(&mut s, &k("g"), vec![family("z", MetricType::Counter, &[(NO_LABELS, 1.0)])], true, 7),
        Outcome::Pushed
    );
    assert_eq!(
        push(&mut s, &k("h"), vec![family("z_total", MetricType::Untyped, &[(NO_LABELS, 1.0)])], true, 8),
        Outcome::Pushed
    );
    // Deleting the summary frees its names.
    s.apply(Command::Delete { key: k("a") });
    assert_eq!(
        push(&mut s, &k("b"), vec![family("m_sum", MetricType::Gauge, &[(NO_LABELS, 5.0)])], true, 9),
        Outcome::Pushed
    );
}

#[test]
fn own_families_are_respected() {
    let mut s = GroupStore::with_own_families(own());
    let a = key(&[("job", "a")]);
    let o = push(&mut s, &a, vec![family("pushgateway_build_info", MetricType::Counter, &[(NO_LABELS, 1.0)])], true, 1);
    assert!(
        matches!(&o, Outcome::Rejected { reason } if reason.contains("has type COUNTER but should have GAUGE")),
        "{o:?}"
    );
    assert!(rejected(&push(
        &mut s,
        &a,
        vec![family("pushgateway_http_push_size_bytes_sum", MetricType::Gauge, &[(NO_LABELS, 1.0)])],
        true,
        2
    )));
    assert_eq!(
        push(&mut s, &a, vec![family("pushgateway_build_info", MetricType::Gauge, &[(NO_LABELS, 1.0)])], true, 3),
        Outcome::Pushed
    );
    // HTTP metrics: the help must match too.
    let mut size = family("pushgateway_http_push_size_bytes", MetricType::Summary, &[(NO_LABELS, 1.0)]);
    assert!(rejected(&push(&mut s, &a, vec![size.clone()], true, 4)));
    size.help = Some("size".into());
    assert_eq!(push(&mut s, &a, vec![size], true, 5), Outcome::Pushed);
}

#[test]
fn invalid_series_are_rejected() {
    let mut s = GroupStore::with_own_families(own());
    let a = key(&[("job", "a")]);
    let mut timestamped = family("m", MetricType::Untyped, &[(NO_LABELS, 1.0)]);
    timestamped.metrics[0].timestamp_ms = Some(5).into();
    let cases: Vec<(&str, MetricFamily, &str)> = vec![
        ("timestamp", timestamped, "pushed metrics must not have timestamps"),
        ("reserved label", family("m", MetricType::Untyped, &[(&[("__x", "x")], 1.0)]), "invalid name: __x"),
        (
            "quantile label",
            family("s", MetricType::Summary, &[(&[("quantile", "0.5")], 1.0)]),
            "explicit \"quantile\" label",
        ),
        ("le label", family("h", MetricType::Histogram, &[(&[("le", "0.5")], 1.0)]), "explicit \"le\" label"),
        ("empty name", family("", MetricType::Gauge, &[(NO_LABELS, 1.0)]), "invalid name"),
        (
            "value of another type",
            MetricFamily { metric_type: MetricType::Gauge, ..family("g", MetricType::Counter, &[(NO_LABELS, 1.0)]) },
            "is not a GAUGE",
        ),
    ];
    for (name, f, want) in cases {
        match push(&mut s, &a, vec![f], true, 1) {
            Outcome::Rejected { reason } => assert!(reason.contains(want), "case {name}: {reason}"),
            other => panic!("case {name}: {other:?}"),
        }
    }
    let defect = s.apply(Command::Push {
        key: a.clone(),
        families: BTreeMap::new(),
        replace: true,
        time: UnixNanos(9),
        defect: Some("bad utf8".into()),
    });
    assert_eq!(defect, Outcome::Rejected { reason: "bad utf8".into() });
    assert_eq!(s.group(&a).unwrap().push_failure_time, UnixNanos(9));
}

#[test]
fn delete_and_wipe() {
    let mut s = GroupStore::with_own_families(own());
    for j in ["a", "b", "c"] {
        push(&mut s, &key(&[("job", j)]), vec![family("m", MetricType::Gauge, &[(NO_LABELS, 1.0)])], true, 1);
    }
    assert_eq!(s.apply(Command::Delete { key: key(&[("job", "a")]) }), Outcome::Deleted);
    assert_eq!(s.apply(Command::Delete { key: key(&[("job", "nope")]) }), Outcome::Deleted);
    assert_eq!(s.len(), 2);
    assert_eq!(s.apply(Command::Wipe), Outcome::Wiped { groups: 2 });
    assert!(s.is_empty());
    // The family index is empty too: a counter named like the old gauge is fine now.
    assert_eq!(
        push(&mut s, &key(&[("job", "z")]), vec![family("m", MetricType::Counter, &[(NO_LABELS, 1.0)])], true, 2),
        Outcome::Pushed
    );
}

mod properties {
    use super::*;
    use proptest::prelude::*;

    fn command() -> impl Strategy<Value = Command> {
        let job = prop_oneof![Just("a"), Just("b")];
        let extra = prop_oneof![Just(None), Just(Some(("x", "1"))), Just(Some(("instance", "")))];
        let name = prop_oneof![Just("m"), Just("m_sum"), Just("n")];
        let t = prop_oneof![Just(MetricType::Gauge), Just(MetricType::Counter), Just(MetricType::Summary)];
        // A series without labels, one with a label, or none (a family without series).
        let series = prop_oneof![Just(Some(None)), Just(Some(Some(("x", "1")))), Just(None)];
        let version = prop_oneof![Just(1), Just(2), Just(version::V7), Just(version::V8)];
        (job, extra, name, t, series, any::<bool>(), 0u8..10, version).prop_map(
            |(job, extra, name, t, series, replace, op, version)| {
                let mut pairs = vec![("job", job)];
                pairs.extend(extra);
                let k = key(&pairs);
                match op {
                    0 => Command::Delete { key: k },
                    1 => Command::Wipe,
                    2 => Command::SetVersion { version },
                    _ => {
                        let f = match series {
                            Some(label) => {
                                let labels: Vec<(&str, &str)> = label.into_iter().collect();
                                family(name, t, &[(&labels, 1.0)])
                            }
                            None => family(name, t, &[]),
                        };
                        Command::Push {
                            key: k,
                            families: [(f.name.clone(), f)].into(),
                            replace,
                            time: UnixNanos(op as i64),
                            defect: None,
                        }
                    }
                }
            },
        )
    }

    /// Exposed series of the whole store, to check the invariant.
    fn all_series(s: &GroupStore) -> Vec<(String, Labels)> {
        let mut out = Vec::new();
        for g in s.groups() {
            for (f, _) in g.timestamp_families() {
                out.push((f.name.clone(), f.metrics[0].labels.clone()));
            }
            for stored in g.families.values() {
                for m in &stored.family.metrics {
                    out.push((stored.family.name.clone(), m.labels.clone()));
                }
            }
        }
        out
    }

    proptest! {
        /// Any command sequence leaves a store that can be exposed: no duplicate series,
        /// one type per family name; and applying it twice gives the same state.
        #[test]
        fn store_stays_consistent_and_deterministic(commands in proptest::collection::vec(command(), 0..40)) {
            let mut first = GroupStore::with_own_families(own());
            let mut second = GroupStore::with_own_families(own());
            for c in &commands {
                let a = first.apply(c.clone());
                let b = second.apply(c.clone());
                prop_assert_eq!(a, b);
            }
            prop_assert_eq!(first.groups().cloned().collect::<Vec<_>>(), second.groups().cloned().collect::<Vec<_>>());
            let series = all_series(&first);
            let unique: std::collections::HashSet<_> = series.iter().collect();
            prop_assert_eq!(unique.len(), series.len(), "duplicate series in {:?}", series);
            // One type per family name once one of its families has series (several,
            // from version 8 on, only while none has).
            let mut types: BTreeMap<String, BTreeSet<MetricType>> = BTreeMap::new();
            let mut with_series: BTreeSet<String> = BTreeSet::new();
            for g in first.groups() {
                for f in g.families.values() {
                    types.entry(f.family.name.clone()).or_default().insert(f.family.metric_type);
                    if !f.family.metrics.is_empty() {
                        with_series.insert(f.family.name.clone());
                    }
                }
            }
            for (name, of_name) in &types {
                prop_assert!(of_name.len() == 1 || !with_series.contains(name), "{} has types {:?}", name, of_name);
                for suffix in ["_sum", "_count"] {
                    if let Some(base) = name.strip_suffix(suffix) {
                        let summary = types.get(base).is_some_and(|t| t.contains(&MetricType::Summary));
                        prop_assert!(!summary, "{} next to summary {}", name, base);
                    }
                }
            }
        }

        /// The usage kept up to date by every command is what counting the store from
        /// scratch gives (as a snapshot install does), whatever the commands were.
        #[test]
        fn usage_and_family_index_are_kept_exactly(commands in proptest::collection::vec(command(), 0..40)) {
            let mut store = GroupStore::with_own_families(own());
            for c in commands {
                store.apply(c);
                let mut counted = GroupStore::with_own_families(own());
                counted.replace_groups(store.groups().cloned());
                prop_assert_eq!(store.usage(), counted.usage());
                prop_assert_eq!(&store.families, &counted.families, "the family index is what counting gives");
                prop_assert_eq!(store.usage().groups, store.len() as u64);
            }
        }
    }
}

/// A store at replicated-format version 2 (where `apply` judges the ceiling).
fn store_v2() -> GroupStore {
    let mut store = GroupStore::new();
    assert_eq!(store.apply(Command::SetVersion { version: version::V2 }), Outcome::VersionSet { version: 2 });
    store
}

/// The poison pill of a replicated log: a push whose merged size is the product of its
/// dimensions (many grouping labels times many series). Fed to `apply` directly, as an
/// older node or a peer could have put it in the log, it is refused before any work,
/// with the same outcome on every store, and stores nothing, not even a failure time.
#[test]
fn a_push_over_the_ceiling_is_refused_first_and_alike_everywhere() {
    let ceiling = PushLimits::CEILING;
    let mut labels: Vec<(String, String)> =
        (0..ceiling.grouping_labels).map(|i| (format!("l{i:04}"), "v".to_string())).collect();
    labels.push(("job".into(), "poison".into()));
    let wide = GroupingKey::new(labels.into_iter().collect());
    let series: Vec<(&[(&str, &str)], f64)> = vec![(&[], 1.0); 2000];
    let poison = vec![family("a", MetricType::Untyped, &series)];
    let mut stores = [store_v2(), store_v2()];
    let outcomes: Vec<Outcome> = stores.iter_mut().map(|s| push(s, &wide, poison.clone(), true, 1)).collect();
    assert_eq!(outcomes[0], outcomes[1]);
    let Outcome::Rejected { reason } = &outcomes[0] else { panic!("stored: {outcomes:?}") };
    assert!(reason.contains("--push.max-grouping-labels"), "{reason}");
    assert!(stores.iter().all(GroupStore::is_empty), "a refusal over a limit stores nothing");

    // Every other limit, each over the ceiling by one.
    let k = key(&[("job", "j")]);
    let name = "n".repeat(ceiling.label_name_bytes + 1);
    let value = "v".repeat(ceiling.label_value_bytes + 1);
    let cases: Vec<(&str, Vec<MetricFamily>)> = vec![
        ("--push.max-label-name-bytes", vec![family("a", MetricType::Untyped, &[(&[(name.as_str(), "v")], 1.0)])]),
        ("--push.max-label-value-bytes", vec![family("a", MetricType::Untyped, &[(&[("n", value.as_str())], 1.0)])]),
    ];
    for (flag, families) in cases {
        let mut store = store_v2();
        match push(&mut store, &k, families.clone(), true, 1) {
            Outcome::Rejected { reason } => assert!(reason.contains(flag), "{flag}: {reason}"),
            other => panic!("{flag}: {other:?}"),
        }
        assert!(store.is_empty(), "{flag}");
        // Version 1 is the rule of the builds before the cluster version: they apply
        // such an entry, so a store at version 1 must too, or two builds would diverge.
        let mut v1 = GroupStore::new();
        assert_eq!(push(&mut v1, &k, families, true, 1), Outcome::Pushed, "{flag} at version 1");
    }
}

/// Version 2 judges pushes against the own families it adds (the store's usage and
/// quotas); version 1, as the builds before it, judges those names as any other.
#[test]
fn version_2_judges_the_store_families_as_own() {
    let k = key(&[("job", "j")]);
    let usage = || vec![family("pushgateway_store_usage", MetricType::Counter, &[(&[], 1.0)])];
    let mut v1 = GroupStore::new();
    assert_eq!(push(&mut v1, &k, usage(), true, 1), Outcome::Pushed);
    let mut v2 = store_v2();
    match push(&mut v2, &k, usage(), true, 1) {
        Outcome::Rejected { reason } => assert!(reason.contains("pushgateway_store_usage"), "{reason}"),
        other => panic!("{other:?}"),
    }
    let gauge = vec![family("pushgateway_store_usage", MetricType::Gauge, &[(&[], 1.0)])];
    assert_eq!(push(&mut v2, &k, gauge, true, 1), Outcome::Pushed, "of the listed type it is taken");
    let mut reloaded = GroupStore::new();
    reloaded.replace_all(Vec::new(), version::V2);
    assert!(reloaded.own_family("pushgateway_store_quota").is_some(), "a store loaded at version 2 judges so too");
}

/// Version 6 judges pushes against upstream's Go runtime families as upstream does (a type
/// clash and a clash with a summary's `_sum` are refused in upstream's words); version 5,
/// as the builds before it, takes them as any other names.
#[test]
fn version_6_judges_the_go_runtime_families_as_own() {
    let k = key(&[("job", "j")]);
    let counter = || vec![family("go_goroutines", MetricType::Counter, &[(&[], 1.0)])];
    let sum = || vec![family("go_gc_duration_seconds_sum", MetricType::Gauge, &[(&[], 1.0)])];
    let at = |v| {
        let mut store = GroupStore::new();
        assert_eq!(store.apply(Command::SetVersion { version: v }), Outcome::VersionSet { version: v });
        store
    };
    let mut v5 = at(version::V5);
    assert_eq!(push(&mut v5, &k, counter(), true, 1), Outcome::Pushed);
    assert_eq!(push(&mut v5, &k, sum(), true, 2), Outcome::Pushed);
    let mut v6 = at(version::V6);
    let refused = |outcome| match outcome {
        Outcome::Rejected { reason } => reason,
        other => panic!("{other:?}"),
    };
    assert_eq!(
        refused(push(&mut v6, &k, counter(), true, 1)),
        "gathered metric family go_goroutines has type COUNTER but should have GAUGE"
    );
    assert_eq!(
        refused(push(&mut v6, &k, sum(), true, 2)),
        "collected metric named \"go_gc_duration_seconds_sum\" collides with previously collected summary named \"go_gc_duration_seconds\""
    );
    let gauge = vec![family("go_goroutines", MetricType::Gauge, &[(&[], 5.0)])];
    assert_eq!(push(&mut v6, &k, gauge, true, 3), Outcome::Pushed, "of the listed type, with any help, it is taken");
    assert_eq!(
        v6.own_family("go_goroutines").map(|f| f.help),
        Some("Number of goroutines that currently exist."),
        "the help scrapes show"
    );
}

/// Version 6 refuses, as upstream does, a timestamp on a pushed series of the two
/// timestamp families, which are otherwise dropped from a push: before it, such a push was
/// taken without them (and still is by a store at version 5, as by the builds before).
#[test]
fn version_6_refuses_timestamps_on_the_timestamp_families() {
    let k = key(&[("job", "j")]);
    for name in [crate::PUSH_TIME_NAME, crate::PUSH_FAILURE_TIME_NAME] {
        let pushed = || {
            let mut stamp = family(name, MetricType::Untyped, &[(NO_LABELS, 5.0)]);
            stamp.metrics[0].timestamp_ms = Some(1000).into();
            vec![stamp, family("other", MetricType::Untyped, &[(NO_LABELS, 1.0)])]
        };
        let mut v5 = GroupStore::new();
        v5.apply(Command::SetVersion { version: version::V5 });
        assert_eq!(push(&mut v5, &k, pushed(), true, 1), Outcome::Pushed, "{name} at version 5");

        let mut v6 = GroupStore::new();
        v6.apply(Command::SetVersion { version: version::V6 });
        let untimed = vec![family(name, MetricType::Untyped, &[(NO_LABELS, 5.0)])];
        assert_eq!(push(&mut v6, &k, untimed, true, 1), Outcome::Pushed, "{name} without a timestamp is dropped");
        assert_eq!(
            push(&mut v6, &k, pushed(), true, 2),
            Outcome::Rejected { reason: "pushed metrics must not have timestamps".into() },
            "{name}"
        );
        let group = v6.group(&k).expect("the group stays");
        assert!(!group.families.contains_key("other"), "{name}: nothing of the refused push is stored");
        assert_eq!(group.push_failure_time, UnixNanos(2), "{name}: the failure is recorded");
    }
}

/// A value kept whole (protobuf fields the classic values cannot hold) is version 3's:
/// before the switch `apply` refuses the push alike everywhere and stores nothing.
#[test]
fn values_kept_whole_wait_for_version_3() {
    let k = key(&[("job", "j")]);
    let kept = || {
        let mut f = family("h", MetricType::Histogram, &[]);
        f.metrics.push(Metric {
            labels: Labels::new(),
            value: Value::Proto(Box::new(crate::ProtoValue {
                classic: Value::histogram(7, 1.5, vec![]),
                fields: vec![0x3a, 0x02, 0x28, 0x06],
            })),
            timestamp_ms: Timestamp::NONE,
        });
        vec![f]
    };
    let mut v2 = store_v2();
    assert_eq!(push(&mut v2, &k, kept(), true, 1), Outcome::Rejected { reason: NEEDS_V3.to_string() });
    assert!(v2.is_empty(), "nothing stored, not even a failure time");
    let mut v3 = GroupStore::new();
    assert_eq!(v3.apply(Command::SetVersion { version: version::V3 }), Outcome::VersionSet { version: 3 });
    assert_eq!(push(&mut v3, &k, kept(), true, 1), Outcome::Pushed);
    let stored = &v3.group(&k).unwrap().families["h"].family.metrics[0];
    assert_eq!(stored.value.proto_fields(), Some(&[0x3a, 0x02, 0x28, 0x06][..]));
    let plain = vec![family("g", MetricType::Gauge, &[(&[], 1.0)])];
    assert_eq!(push(&mut v2, &k, plain, true, 1), Outcome::Pushed, "classic values need no switch");
}

/// Every problem of a push is listed, as upstream's gathering lists them (recorded, compat
/// case errors-several-listed); a family refused as a whole is not looked into, and is
/// left out of what the next families are checked against, so two pushed families whose
/// names collide are one problem, not two.
#[test]
fn every_problem_is_listed_once() {
    let k = key(&[("job", "j")]);
    let mut store = GroupStore::new();
    let twice = family("m", MetricType::Gauge, &[(&[("a", "1")], 1.0), (&[("a", "1")], 2.0), (&[("a", "1")], 3.0)]);
    let Outcome::Rejected { reason } = push(&mut store, &k, vec![twice], true, 1) else { panic!("accepted") };
    assert!(reason.starts_with("2 error(s) occurred:\n* collected metric \"m\" {"), "{reason}");
    assert_eq!(reason.matches("was collected before").count(), 2, "{reason}");

    let colliding = vec![
        family("m_sum", MetricType::Counter, &[(&[], 1.0)]),
        family("m", MetricType::Summary, &[]),
        family("n", MetricType::Gauge, &[(&[("a", "1")], 1.0), (&[("a", "1")], 2.0)]),
    ];
    let Outcome::Rejected { reason } = push(&mut store, &k, colliding, true, 2) else { panic!("accepted") };
    assert!(reason.starts_with("2 error(s) occurred:\n"), "{reason}");
    assert_eq!(reason.matches("collides with").count(), 1, "{reason}");
    assert_eq!(reason.matches("was collected before").count(), 1, "{reason}");
    assert_eq!(one_message_of(&[]), Ok(()));
    assert_eq!(one_message_of(&["a"]), Err("a".to_string()));
    let many: Vec<&str> = vec!["e"; crate::check::MAX_LISTED_ERRORS + 5];
    let listed = one_message_of(&many).unwrap_err();
    assert!(listed.starts_with(&format!("{} error(s) occurred:\n* e\n", many.len())), "{listed}");
    assert_eq!(listed.matches("\n* e").count(), crate::check::MAX_LISTED_ERRORS);
    assert!(listed.ends_with("\n* ... and 5 more"), "{listed}");
}

fn one_message_of(errors: &[&str]) -> Result<(), String> {
    let mut problems = crate::check::Problems::default();
    for e in errors {
        problems.add(|| e.to_string());
    }
    problems.into_result()
}

/// Label extras (a pushed label pair's fields besides its name and value, kept in the
/// value's fields) are version 7's: a build before it would serve them as a label pair of
/// their own, so before the switch `apply` refuses the push and stores nothing.
#[test]
fn label_extras_wait_for_version_7() {
    let k = key(&[("job", "j")]);
    // Label extras for "a" (an unknown varint field 3 = 7), then a gauge of value 1.
    let fields = vec![0x0a, 0x05, 0x0a, 0x01, b'a', 0x18, 0x07, 0x12, 0x09, 0x09, 0, 0, 0, 0, 0, 0, 0xf0, 0x3f];
    let with_extras = |fields: Vec<u8>| {
        let mut f = family("g", MetricType::Gauge, &[]);
        f.metrics.push(Metric {
            labels: Labels::from([LabelPair::new("a", "v")]),
            value: Value::Proto(Box::new(crate::ProtoValue { classic: Value::Gauge(1.0), fields })),
            timestamp_ms: Timestamp::NONE,
        });
        vec![f]
    };
    let mut v6 = GroupStore::new();
    v6.apply(Command::SetVersion { version: version::V6 });
    assert_eq!(
        push(&mut v6, &k, with_extras(fields.clone()), true, 1),
        Outcome::Rejected { reason: NEEDS_V7.to_string() }
    );
    assert!(v6.is_empty(), "nothing stored, not even a failure time");
    assert_eq!(
        push(&mut v6, &k, with_extras(fields[7..].to_vec()), true, 1),
        Outcome::Pushed,
        "kept fields alone are version 3's"
    );

    let mut v7 = GroupStore::new();
    v7.apply(Command::SetVersion { version: version::V7 });
    assert_eq!(push(&mut v7, &k, with_extras(fields.clone()), true, 1), Outcome::Pushed);
    let stored = &v7.group(&k).unwrap().families["g"].family.metrics[0];
    assert_eq!(stored.value.proto_fields(), Some(&fields[..]));
}

/// UTF-8 names are judged by the rule the entry carries: a `Push` by the legacy rules on
/// every node, a `PushUtf8` (version 4) by the UTF-8 ones; the reserved `__` prefix and
/// every other rule stay. Before version 4 a `PushUtf8` is refused and stores nothing.
#[test]
fn utf8_names_are_judged_by_the_rule_in_the_entry() {
    let k = key(&[("job", "j"), ("host.name", "h1")]);
    let dotted = || vec![family("http.requests", MetricType::Counter, &[(&[("method.name", "GET")], 5.0)])];
    let utf8 = |store: &mut GroupStore, families: Vec<MetricFamily>| {
        let families: PushedFamilies = families.into_iter().map(|f| (f.name.clone(), f)).collect();
        store.apply(Command::PushUtf8 { key: k.clone(), families, replace: true, time: UnixNanos(1), defect: None })
    };
    let mut v3 = GroupStore::new();
    v3.apply(Command::SetVersion { version: version::V3 });
    assert_eq!(utf8(&mut v3, dotted()), Outcome::Rejected { reason: NEEDS_V4.to_string() });
    assert!(v3.is_empty(), "nothing stored, not even a failure time");

    let mut v4 = GroupStore::new();
    v4.apply(Command::SetVersion { version: version::V4 });
    match push(&mut v4, &k, dotted(), true, 1) {
        Outcome::Rejected { reason } => assert!(reason.contains("invalid name"), "{reason}"),
        other => panic!("a legacy push with dotted names: {other:?}"),
    }
    assert_eq!(utf8(&mut v4, dotted()), Outcome::Pushed);
    let stored = &v4.group(&k).unwrap().families["http.requests"].family.metrics[0];
    assert!(stored.labels.iter().any(|l| l.name == "host.name" && l.value == "h1"), "{stored:?}");
    let reserved = vec![family("m", MetricType::Gauge, &[(&[("__x.y", "v")], 1.0)])];
    assert!(rejected(&utf8(&mut v4, reserved)), "the reserved prefix stays reserved");
    let empty_label = vec![family("m", MetricType::Gauge, &[(&[("", "v")], 1.0)])];
    assert!(rejected(&utf8(&mut v4, empty_label)), "an empty label name is no name");
    assert!(rejected(&utf8(&mut v4, vec![family("", MetricType::Gauge, &[(&[], 1.0)])])), "nor an empty metric name");
}

/// The version in force only rises, changes nothing but the rules, and a version this
/// build does not know changes nothing at all (the caller stops before, see
/// `version::unsupported`).
#[test]
fn the_version_only_rises_and_unknown_versions_change_nothing() {
    let mut store = GroupStore::new();
    assert_eq!(store.version(), version::V1);
    let k = key(&[("job", "j")]);
    assert_eq!(push(&mut store, &k, vec![family("a", MetricType::Gauge, &[(&[], 1.0)])], true, 1), Outcome::Pushed);
    let before: Vec<Group> = store.groups().cloned().collect();
    assert_eq!(store.apply(Command::SetVersion { version: 2 }), Outcome::VersionSet { version: 2 });
    assert_eq!(store.apply(Command::SetVersion { version: 1 }), Outcome::VersionSet { version: 2 }, "never down");
    assert_eq!(
        store.apply(Command::SetVersion { version: version::SUPPORTED + 1 }),
        Outcome::VersionSet { version: 2 }
    );
    assert_eq!(store.version(), 2);
    assert_eq!(store.groups().cloned().collect::<Vec<_>>(), before, "the groups are untouched");
    assert!(version::unsupported(version::SUPPORTED).is_none());
    let message = version::unsupported(version::SUPPORTED + 1).expect("unknown");
    assert!(message.contains("stops applying"), "{message}");
}

/// Sanitizing merges the grouping labels in: the first same-named body label takes the
/// key's value, a repeated one stays (and is refused as upstream refuses it), a body
/// `instance` is kept when the key has none, `instance=""` is added when neither has one.
#[test]
fn grouping_labels_are_merged_as_upstream_does() {
    let k = key(&[("job", "j"), ("b", "key")]);
    let merged = |labels: &[(&str, &str)]| -> Vec<(String, String)> {
        let f = family("m", MetricType::Untyped, &[(labels, 1.0)]);
        let families: PushedFamilies = BTreeMap::from([("m".to_string(), f)]);
        let out = sanitize(families, &k);
        out["m"].metrics[0].labels.iter().map(|l| (l.name.to_string(), l.value.to_string())).collect()
    };
    let pairs = |p: &[(&str, &str)]| p.iter().map(|(a, b)| (a.to_string(), b.to_string())).collect::<Vec<_>>();
    assert_eq!(
        merged(&[("z", "1"), ("a", "2")]),
        pairs(&[("a", "2"), ("b", "key"), ("instance", ""), ("job", "j"), ("z", "1")])
    );
    assert_eq!(merged(&[("b", "body"), ("instance", "i")]), pairs(&[("b", "key"), ("instance", "i"), ("job", "j")]));
    assert_eq!(
        merged(&[("b", "first"), ("c", "x"), ("b", "second")]),
        pairs(&[("b", "key"), ("b", "second"), ("c", "x"), ("instance", ""), ("job", "j")])
    );
    let mut store = GroupStore::new();
    let repeated = family("m", MetricType::Untyped, &[(&[("b", "1"), ("b", "2")], 1.0)]);
    match push(&mut store, &k, vec![repeated], true, 1) {
        Outcome::Rejected { reason } => {
            assert!(reason.contains("two or more labels with the same name: b"), "{reason}")
        }
        other => panic!("{other:?}"),
    }
    // An empty label name, in upstream 1.5.1's words (recorded): refused as a repeated one.
    let empty = family("m", MetricType::Untyped, &[(&[("", "1")], 1.0)]);
    match push(&mut store, &k, vec![empty], true, 2) {
        Outcome::Rejected { reason } => {
            assert!(reason.ends_with("} has two or more labels with the same name: "), "{reason}")
        }
        other => panic!("{other:?}"),
    }
}

/// Quotas are judged against what the push would add, net of what it replaces: at a
/// full store new groups and growth are refused, replacing what is there is not.
#[test]
fn quotas_refuse_growth_and_let_replacements_through() {
    let mut store = GroupStore::with_own_families(own());
    let a = key(&[("job", "a")]);
    let two = |v: f64| vec![family("m", MetricType::Gauge, &[(&[("x", "1")], v), (&[("x", "2")], v)])];
    assert_eq!(push(&mut store, &a, two(1.0), true, 1), Outcome::Pushed);
    let usage = store.usage();
    assert_eq!((usage.groups, usage.series), (1, 2));
    let full = StoreQuotas { groups: 1, series: 2, bytes: usage.bytes };
    let families = |f: Vec<MetricFamily>| -> PushedFamilies { f.into_iter().map(|f| (f.name.clone(), f)).collect() };

    // The same push again (PUT or POST) neither grows nor is refused.
    assert_eq!(store.judge_quota(&a, &families(two(2.0)), true, &full), Ok(()));
    assert_eq!(store.judge_quota(&a, &families(two(2.0)), false, &full), Ok(()));
    // A new group is one group too many.
    let b = key(&[("job", "b")]);
    let refused = store.judge_quota(&b, &families(two(1.0)), true, &full).unwrap_err();
    assert_eq!((refused.flag, refused.would_hold, refused.group_exists), ("store.max-groups", 2, false));
    // A third series in the existing group.
    let three = vec![family("n", MetricType::Gauge, &[(&[], 1.0)])];
    let refused = store.judge_quota(&a, &families(three.clone()), false, &full).unwrap_err();
    assert_eq!((refused.flag, refused.would_hold, refused.group_exists), ("store.max-series", 3, true));
    // ... which fits once it replaces the group's two (PUT).
    assert_eq!(store.judge_quota(&a, &families(three), true, &full), Ok(()));
    // Longer label values grow the bytes only.
    let longer = vec![family("m", MetricType::Gauge, &[(&[("x", "111")], 1.0), (&[("x", "2")], 1.0)])];
    assert_eq!(store.judge_quota(&a, &families(longer), true, &full).unwrap_err().flag, "store.max-bytes");
    // What was judged is what apply counts: pushing the judged replacement keeps usage.
    assert_eq!(push(&mut store, &a, two(3.0), false, 2), Outcome::Pushed);
    assert_eq!(store.usage(), usage);
    // Deleting gives everything back.
    store.apply(Command::Delete { key: a });
    assert_eq!(store.usage(), Usage::default());
}

fn pushed(k: &GroupingKey, families: Vec<MetricFamily>, t: i64, ttl: Option<u64>) -> Push {
    let families: PushedFamilies = families.into_iter().map(|f| (f.name.clone(), f)).collect();
    Push {
        key: k.clone(),
        families,
        replace: true,
        time: UnixNanos(t),
        defect: None,
        utf8_names: false,
        ttl: ttl.map(Ttl),
    }
}

fn v5() -> GroupStore {
    let mut store = GroupStore::new();
    store.apply(Command::SetVersion { version: version::V5 });
    store
}

const SECOND: i64 = 1_000_000_000;

/// A group expires when its own TTL (else the default) has run out since its last
/// successful push, judged at the time the entry carries, and not a nanosecond before.
/// A push without a TTL takes the group's own away; a failed push changes nothing.
#[test]
fn expiry_removes_exactly_the_groups_whose_ttl_ran_out() {
    let mut store = v5();
    let (a, b, c) = (key(&[("job", "a")]), key(&[("job", "b")]), key(&[("job", "c")]));
    let g = || vec![family("g", MetricType::Gauge, &[(&[], 1.0)])];
    assert_eq!(store.apply(Command::PushWith(pushed(&a, g(), 10 * SECOND, Some(5_000)))), Outcome::Pushed);
    assert_eq!(store.apply(Command::PushWith(pushed(&b, g(), 10 * SECOND, Some(60_000)))), Outcome::Pushed);
    assert_eq!(push(&mut store, &c, g(), true, 10 * SECOND), Outcome::Pushed);
    assert_eq!(store.group(&a).unwrap().expires_at(None), Some(UnixNanos(15 * SECOND)));
    assert_eq!(store.group(&c).unwrap().expires_at(None), None);
    let expire =
        |now: i64, default: Option<u64>| Command::Expire { now: UnixNanos(now), default_ttl: default.map(Ttl) };

    assert!(!store.any_expired(UnixNanos(15 * SECOND - 1), None));
    assert_eq!(store.apply(expire(15 * SECOND - 1, None)), Outcome::Expired { groups: 0 }, "not before");
    assert!(store.any_expired(UnixNanos(15 * SECOND), None));
    let (outcome, changed) = store.apply_noting(expire(15 * SECOND, None));
    assert_eq!(outcome, Outcome::Expired { groups: 1 });
    assert_eq!(changed, Changed::Groups(vec![a.clone()]));
    assert!(store.group(&a).is_none() && store.group(&b).is_some() && store.group(&c).is_some());

    // A failed push does not refresh b; a push without a TTL takes b's away.
    let clash = vec![family("g", MetricType::Counter, &[(&[], 1.0)])];
    store.apply(Command::PushWith(pushed(&c, vec![family("g", MetricType::Gauge, &[(&[("x", "1")], 1.0)])], 11, None)));
    assert!(rejected(&push(&mut store, &b, clash, true, 69 * SECOND)));
    assert_eq!(store.group(&b).unwrap().expires_at(None), Some(UnixNanos(70 * SECOND)));
    assert_eq!(store.apply(expire(70 * SECOND, None)), Outcome::Expired { groups: 1 });
    assert!(store.group(&b).is_none());

    // The default applies to groups without their own TTL, from their last push.
    assert_eq!(store.apply(expire(100 * SECOND, Some(100_000))), Outcome::Expired { groups: 0 });
    assert_eq!(store.apply(expire(110 * SECOND, Some(100_000))), Outcome::Expired { groups: 1 });
    assert!(store.is_empty());
    assert_eq!(store.usage(), Usage::default());
}

/// Before version 5 every new command is refused and changes nothing.
#[test]
fn the_commands_of_version_5_change_nothing_before_it() {
    let mut store = GroupStore::new();
    store.apply(Command::SetVersion { version: version::V4 });
    let k = key(&[("job", "a")]);
    assert_eq!(push(&mut store, &k, vec![family("g", MetricType::Gauge, &[(&[], 1.0)])], true, 1), Outcome::Pushed);
    let before: Vec<Group> = store.groups().cloned().collect();
    let g = vec![family("h", MetricType::Gauge, &[(&[], 1.0)])];
    let needs = Outcome::Rejected { reason: NEEDS_V5.to_string() };
    assert_eq!(store.apply(Command::PushWith(pushed(&k, g.clone(), 2, Some(1)))), needs);
    assert_eq!(store.apply(Command::PushAll { pushes: vec![pushed(&k, g, 2, None)] }), needs);
    assert_eq!(store.apply(Command::Expire { now: UnixNanos(i64::MAX), default_ttl: Some(Ttl(1)) }), needs);
    let selectors = vec![crate::selector::parse(r#"{job="a"}"#).unwrap()];
    assert_eq!(store.apply(Command::DeleteMatching { selectors }), needs);
    assert_eq!(store.groups().cloned().collect::<Vec<_>>(), before);
}

/// A batch is stored whole, or not at all: one inconsistent group (here against another
/// group of the same batch) leaves every group as it was, except the refused group's
/// failure time, as a single push of it would.
#[test]
fn a_batch_is_all_or_nothing() {
    let mut store = v5();
    let (a, b, c) = (key(&[("job", "a")]), key(&[("job", "b")]), key(&[("job", "c")]));
    let gauge = |name: &str, v: f64| vec![family(name, MetricType::Gauge, &[(&[], v)])];
    assert_eq!(push(&mut store, &a, gauge("old", 1.0), true, 1), Outcome::Pushed);
    let before: Vec<Group> = store.groups().cloned().collect();
    let usage = store.usage();

    let batch = vec![
        pushed(&a, gauge("shared", 1.0), 5, Some(1000)),
        pushed(&b, gauge("other", 2.0), 5, None),
        pushed(&c, vec![family("shared", MetricType::Counter, &[(&[], 3.0)])], 5, None),
    ];
    let (outcome, changed) = store.apply_noting(Command::PushAll { pushes: batch });
    match outcome {
        Outcome::Rejected { reason } => assert!(reason.starts_with("group {job=\"c\"}:"), "{reason}"),
        other => panic!("{other:?}"),
    }
    assert_eq!(store.group(&a), before.first(), "a as it was, its TTL too");
    assert!(store.group(&b).is_none(), "b not stored");
    let c_group = store.group(&c).expect("c records the failure, as a single push");
    assert!(c_group.families.is_empty() && c_group.push_failure_time == UnixNanos(5));
    assert!(usage.groups + 1 == store.usage().groups && usage.series == store.usage().series);
    assert_eq!(changed, Changed::Groups(vec![a.clone(), b.clone(), c.clone()]), "every group touched is written");
    assert!(
        store.apply(Command::Expire { now: UnixNanos(i64::MAX), default_ttl: None }) == Outcome::Expired { groups: 0 }
    );

    let good = vec![pushed(&a, gauge("shared", 1.0), 6, Some(1000)), pushed(&b, gauge("shared", 2.0), 6, None)];
    assert_eq!(store.apply(Command::PushAll { pushes: good }), Outcome::Pushed);
    assert_eq!(names(&store, &a), vec!["shared".to_string()], "PUT replaced a's families");
    assert_eq!(store.group(&a).unwrap().ttl, Some(Ttl(1000)));
    assert_eq!(names(&store, &b), vec!["shared".to_string()]);

    let twice = vec![pushed(&a, gauge("x", 1.0), 7, None), pushed(&a, gauge("y", 1.0), 7, None)];
    assert!(rejected(&store.apply(Command::PushAll { pushes: twice })));
    assert!(rejected(&store.apply(Command::PushAll { pushes: vec![] })));
    assert_eq!(names(&store, &a), vec!["shared".to_string()]);
}

/// Delete by match removes exactly the matching groups; a selector `apply` cannot
/// compile refuses the whole command.
#[test]
fn delete_by_match_removes_the_matching_groups() {
    let mut store = v5();
    let g = || vec![family("g", MetricType::Gauge, &[(&[], 1.0)])];
    for (job, shard) in [("batch", "1"), ("batch", "2"), ("batch", "10"), ("web", "1")] {
        let k = key(&[("job", job), ("shard", shard)]);
        assert_eq!(push(&mut store, &k, g(), true, 1), Outcome::Pushed);
    }
    let selectors = |texts: &[&str]| texts.iter().map(|t| crate::selector::parse(t).unwrap()).collect::<Vec<_>>();
    let delete = |s: &mut GroupStore, texts: &[&str]| s.apply(Command::DeleteMatching { selectors: selectors(texts) });
    assert_eq!(delete(&mut store, &[r#"{job="batch", shard=~"[0-9]"}"#]), Outcome::DeletedMatching { groups: 2 });
    assert_eq!(store.len(), 2);
    assert!(rejected(&delete(&mut store, &[r#"{job=~"("}"#])));
    assert!(rejected(&delete(&mut store, &[r#"{job=~".*"}"#])), "would match every group");
    assert_eq!(store.len(), 2);
    assert_eq!(delete(&mut store, &[r#"{job="nothing"}"#, r#"{shard="10"}"#]), Outcome::DeletedMatching { groups: 1 });
    assert_eq!(store.groups().map(|g| g.key.job().to_string()).collect::<Vec<_>>(), vec!["web"]);
}

/// `{job="j"}` and `{job="j",instance=""}` would expose identical timestamp series: the
/// second push is refused with upstream's message, naming both series as the refused
/// group would have them (`push_failure_time_seconds` at 0, `push_time_seconds` at the
/// push's time; upstream lists them in either order), and the refused group is not created.
#[test]
fn a_group_whose_timestamp_series_another_group_exposes_is_refused() {
    let mut store = GroupStore::new();
    let gauge = |name: &str| family(name, MetricType::Gauge, &[(&[], 1.0)]);
    assert_eq!(push(&mut store, &key(&[("job", "j")]), vec![gauge("a")], true, 5), Outcome::Pushed);
    let outcome = push(&mut store, &key(&[("job", "j"), ("instance", "")]), vec![gauge("b")], true, 6);
    let expected = "2 error(s) occurred:\n\
                    * collected metric \"push_failure_time_seconds\" { label:<name:\"instance\" value:\"\" > \
                    label:<name:\"job\" value:\"j\" > gauge:<value:0 > } was collected before with the same name and \
                    label values\n\
                    * collected metric \"push_time_seconds\" { label:<name:\"instance\" value:\"\" > \
                    label:<name:\"job\" value:\"j\" > gauge:<value:6e-09 > } was collected before with the same name \
                    and label values";
    assert_eq!(outcome, Outcome::Rejected { reason: expected.to_string() });
    assert_eq!(store.groups().count(), 1);
    // A key of another shape that does not collide is accepted.
    let other = key(&[("job", "j"), ("instance", "i")]);
    assert_eq!(push(&mut store, &other, vec![gauge("c")], true, 7), Outcome::Pushed);
}
