//! Bounds on what one push may carry, judged in time linear in the push's size.
//!
//! The HTTP side judges a push against the limits its flags set before it proposes
//! anything (400 with a message naming the flag). `apply` judges every push again, first
//! and before any other work, against [`PushLimits::CEILING`]: pinned data, the same on
//! every node of a version, so a push that reached the log some other way (an older node,
//! a node with other flags, a peer) is refused identically everywhere and can never make
//! `apply` work beyond a bound. Flags may lower a limit, never raise it past the ceiling
//! (start-up refuses that). Changing the ceiling changes what `apply` decides: it is a
//! change of the replicated format, like the own-family list.

use std::fmt;

use crate::grouping_key::GroupingKey;
use crate::metric::PushedFamilies;

/// The limits of one push. Every field is a maximum; `usize` counts.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct PushLimits {
    /// Labels in the grouping key, `job` included.
    pub grouping_labels: usize,
    /// Labels of one series as pushed (before the grouping labels are added).
    pub labels_per_series: usize,
    /// Bytes of a label name or a metric name.
    pub label_name_bytes: usize,
    /// Bytes of a label value, in the body or in the grouping key.
    pub label_value_bytes: usize,
    /// Series (metrics) in the whole push.
    pub series: usize,
    /// Label pairs of the whole push once every series carries the grouping labels and
    /// `instance`: what the stored group will hold.
    pub label_pairs: usize,
}

/// Which limit a push exceeded, with the flag that sets it, what it allows and what the
/// push carried: enough for a message a user can act on.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct LimitExceeded {
    pub flag: &'static str,
    pub what: &'static str,
    pub allowed: usize,
    pub found: usize,
    /// Whether counting stopped at `found` (a parser refuses a body as soon as it is
    /// over, without reading the rest): then the push carries at least that many.
    pub counting_stopped: bool,
}

impl fmt::Display for LimitExceeded {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        let more = if self.counting_stopped { " or more" } else { "" };
        write!(
            f,
            "push refused: {} {}{more} exceeds the limit of {} (--{})",
            self.what, self.found, self.allowed, self.flag
        )
    }
}

impl PushLimits {
    /// What `apply` enforces whatever the flags: pinned, part of the replicated format.
    /// Every limit is generous (ten times or more the default) so that only pushes no
    /// flag could allow are refused here.
    pub const CEILING: PushLimits = PushLimits {
        grouping_labels: 1_000,
        labels_per_series: 2_000,
        label_name_bytes: 16 * 1024,
        label_value_bytes: 1024 * 1024,
        series: 5_000_000,
        label_pairs: 40_000_000,
    };

    /// The defaults of the flags.
    pub const DEFAULT: PushLimits = PushLimits {
        grouping_labels: 64,
        labels_per_series: 128,
        label_name_bytes: 1024,
        label_value_bytes: 64 * 1024,
        series: 500_000,
        label_pairs: 4_000_000,
    };

    /// The flag of each limit, with the field it sets, in the order they are judged.
    pub const FLAGS: [&'static str; 6] = [
        "push.max-grouping-labels",
        "push.max-labels-per-series",
        "push.max-label-name-bytes",
        "push.max-label-value-bytes",
        "push.max-series",
        "push.max-label-pairs",
    ];

    /// Each limit with its flag and a short description, in [`PushLimits::FLAGS`] order.
    pub fn entries(&self) -> [(&'static str, &'static str, usize); 6] {
        [
            (Self::FLAGS[0], "grouping labels", self.grouping_labels),
            (Self::FLAGS[1], "labels on one series", self.labels_per_series),
            (Self::FLAGS[2], "bytes in a label or metric name", self.label_name_bytes),
            (Self::FLAGS[3], "bytes in a label value", self.label_value_bytes),
            (Self::FLAGS[4], "series", self.series),
            (Self::FLAGS[5], "label pairs after adding the grouping labels", self.label_pairs),
        ]
    }

    /// Limit `index` (in [`PushLimits::FLAGS`] order) exceeded by a count that stopped at
    /// `found`: what a parser reports when it refuses a body without reading the rest.
    pub fn stopped_at(&self, index: usize, found: usize) -> LimitExceeded {
        let (flag, what, allowed) = self.entries()[index];
        LimitExceeded { flag, what, allowed, found, counting_stopped: true }
    }

    /// The first limit that is above the ceiling, as a message for start-up.
    pub fn above_ceiling(&self) -> Option<String> {
        let ceiling = Self::CEILING.entries();
        self.entries().into_iter().zip(ceiling).find_map(|((flag, _, mine), (_, _, max))| {
            (mine > max || mine == 0).then(|| format!("--{flag} must be between 1 and {max}, not {mine}"))
        })
    }

    /// Judges `key` and `families` (as pushed, not yet sanitized). Reads every name,
    /// value and label once and allocates nothing: linear in the size of the push, and
    /// the first check of a push, before any work that could grow faster.
    pub fn check(&self, key: &GroupingKey, families: &PushedFamilies) -> Result<(), LimitExceeded> {
        let exceeded = |index: usize, allowed: usize, found: usize| {
            let (flag, what, _) = self.entries()[index];
            Err(LimitExceeded { flag, what, allowed, found, counting_stopped: false })
        };
        let key_labels = key.labels();
        if key_labels.len() > self.grouping_labels {
            return exceeded(0, self.grouping_labels, key_labels.len());
        }
        for (name, value) in key_labels {
            if name.len() > self.label_name_bytes {
                return exceeded(2, self.label_name_bytes, name.len());
            }
            if value.len() > self.label_value_bytes {
                return exceeded(3, self.label_value_bytes, value.len());
            }
        }
        // Every series ends up with every grouping label and `instance`, and keeps its
        // own labels of other names: at most this many pairs each (an upper bound that
        // needs no lookup; exact when the body repeats no grouping label).
        let added = key_labels.len() + usize::from(!key_labels.contains_key("instance"));
        let mut series = 0usize;
        let mut pairs = 0usize;
        for (name, family) in families {
            if name.len() > self.label_name_bytes {
                return exceeded(2, self.label_name_bytes, name.len());
            }
            for metric in &family.metrics {
                series += 1;
                if series > self.series {
                    return exceeded(4, self.series, families.values().map(|f| f.metrics.len()).sum());
                }
                if metric.labels.len() > self.labels_per_series {
                    return exceeded(1, self.labels_per_series, metric.labels.len());
                }
                for label in &metric.labels {
                    if label.name.len() > self.label_name_bytes {
                        return exceeded(2, self.label_name_bytes, label.name.len());
                    }
                    if label.value.len() > self.label_value_bytes {
                        return exceeded(3, self.label_value_bytes, label.value.len());
                    }
                }
                pairs = pairs.saturating_add(metric.labels.len() + added);
                if pairs > self.label_pairs {
                    return exceeded(5, self.label_pairs, pairs);
                }
            }
        }
        Ok(())
    }
}

impl Default for PushLimits {
    fn default() -> Self {
        PushLimits::DEFAULT
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::labels::Labels;
    use crate::metric::{LabelPair, Metric, MetricFamily, MetricType, Timestamp, Value};
    use std::collections::BTreeMap;

    fn key(pairs: usize) -> GroupingKey {
        let mut labels: BTreeMap<String, String> = (0..pairs).map(|i| (format!("l{i}"), "v".to_string())).collect();
        labels.insert("job".into(), "j".into());
        GroupingKey::new(labels)
    }

    fn families(series: usize, labels: usize) -> PushedFamilies {
        let metrics = (0..series)
            .map(|s| Metric {
                labels: (0..labels).map(|l| LabelPair::new(format!("n{l}"), format!("{s}"))).collect(),
                value: Value::Untyped(1.0),
                timestamp_ms: Timestamp::NONE,
            })
            .collect();
        let family = MetricFamily { name: "m".into(), help: None, metric_type: MetricType::Untyped, metrics };
        BTreeMap::from([("m".to_string(), family)])
    }

    #[test]
    fn the_defaults_fit_under_the_ceiling() {
        assert_eq!(PushLimits::DEFAULT.above_ceiling(), None);
        assert_eq!(PushLimits::CEILING.above_ceiling(), None);
        let over = PushLimits { series: PushLimits::CEILING.series + 1, ..PushLimits::DEFAULT };
        assert!(over.above_ceiling().unwrap().contains("--push.max-series"));
    }

    #[test]
    fn each_limit_is_named_when_exceeded() {
        let limits = PushLimits {
            grouping_labels: 3,
            labels_per_series: 2,
            label_name_bytes: 8,
            label_value_bytes: 4,
            series: 10,
            label_pairs: 60,
        };
        let flag = |k: &GroupingKey, f: &PushedFamilies| limits.check(k, f).err().map(|e| e.flag);
        assert_eq!(flag(&key(1), &families(10, 2)), None);
        assert_eq!(flag(&key(3), &families(1, 1)), Some("push.max-grouping-labels"));
        assert_eq!(flag(&key(1), &families(1, 3)), Some("push.max-labels-per-series"));
        assert_eq!(flag(&key(1), &families(11, 0)), Some("push.max-series"));
        // Ten series of two labels, plus job, l0 and instance each: 50 pairs.
        assert_eq!(flag(&key(1), &families(10, 2)), None);
        let tight = PushLimits { label_pairs: 49, ..limits };
        let err = tight.check(&key(1), &families(10, 2)).unwrap_err();
        assert_eq!((err.flag, err.found), ("push.max-label-pairs", 50));
        let mut long = families(1, 1);
        long.get_mut("m").unwrap().metrics[0].labels = Labels::from([LabelPair::new("n0", "12345")]);
        assert_eq!(flag(&key(1), &long), Some("push.max-label-value-bytes"));
        let mut long_name = families(1, 1);
        long_name.get_mut("m").unwrap().metrics[0].labels = Labels::from([LabelPair::new("abcdefghi", "0")]);
        assert_eq!(flag(&key(1), &long_name), Some("push.max-label-name-bytes"));
        let message = limits.check(&key(3), &families(1, 1)).unwrap_err().to_string();
        assert_eq!(message, "push refused: grouping labels 4 exceeds the limit of 3 (--push.max-grouping-labels)");
    }

    proptest::proptest! {
        #![proptest_config(proptest::prelude::ProptestConfig::with_cases(64))]
        /// At large dimensions (up to the ceiling and past it), the single-pass check
        /// refuses exactly the pushes a plain count of every dimension finds over a limit.
        #[test]
        fn the_verdict_is_the_plain_count(
            grouping in 1usize..1_500,
            series in 0usize..2_500,
            labels in 0usize..250,
            value_bytes in 0usize..2_000,
        ) {
            let limits = PushLimits {
                grouping_labels: 1_000,
                labels_per_series: 200,
                label_name_bytes: 64,
                label_value_bytes: 1_000,
                series: 2_000,
                label_pairs: 300_000,
            };
            let key = key(grouping - 1);
            // One long value, on the first label of the last series: the rest are short.
            let value = |s: usize, l: usize| if s + 1 == series && l == 0 { "v".repeat(value_bytes) } else { "v".into() };
            let metrics = (0..series)
                .map(|s| Metric {
                    labels: (0..labels).map(|l| LabelPair::new(format!("n{l}"), value(s, l))).collect(),
                    value: Value::Untyped(1.0),
                    timestamp_ms: Timestamp::NONE,
                })
                .collect();
            let family = MetricFamily { name: "m".into(), help: None, metric_type: MetricType::Untyped, metrics };
            let pushed = BTreeMap::from([("m".to_string(), family)]);
            // Every series carries the key's labels and `instance` once stored.
            let pairs = series * (labels + grouping + 1);
            let over = grouping > limits.grouping_labels
                || series > limits.series
                || (series > 0 && labels > limits.labels_per_series)
                || (series > 0 && labels > 0 && value_bytes > limits.label_value_bytes)
                || pairs > limits.label_pairs;
            proptest::prop_assert_eq!(limits.check(&key, &pushed).is_err(), over);
        }
    }
}
