//! Quotas for the whole store: how many groups, series and bytes every node keeps.
//!
//! [`Usage`] is what the store holds, counted by `apply` as it changes the groups, so it
//! is a function of the applied commands alone: every node reports the same usage at the
//! same applied index. Bytes are the store's own measure of what it keeps (names, help,
//! label text and eight bytes per number, plus a fixed cost per group, family and
//! series), independent of the memory layout and of the build, so that a quota means the
//! same on every node; memory and disk are a small multiple of it (see the README).
//!
//! The quotas themselves are flags of each node, so `apply` cannot judge them: two
//! nodes with different flags would then disagree on what is stored. They are judged on
//! the HTTP side, against this node's store, before anything is proposed
//! ([`GroupStore::judge_quota`](crate::GroupStore::judge_quota)). Concurrent pushes can
//! pass the judgement together, so the store may overshoot a quota by what the pushes in
//! flight carry, each of them bounded by the push limits. A push that does not grow a
//! resource is never refused for it: at a full store the groups already there keep
//! being replaced, deleted and pushed to.

use std::fmt;
use std::ops::AddAssign;

use serde::{Deserialize, Serialize};

use crate::grouping_key::GroupingKey;
use crate::metric::{Metric, MetricFamily, Value};

/// Fixed bytes counted per group (its key, timestamps and bookkeeping).
pub const GROUP_BYTES: u64 = 64;
/// Fixed bytes counted per family, beyond its name and help.
pub const FAMILY_BYTES: u64 = 32;
/// Fixed bytes counted per series, beyond its labels and numbers.
pub const SERIES_BYTES: u64 = 32;
/// Bytes counted per number of a value (a scalar is one; a histogram has a count, a sum
/// and two per bucket).
pub const NUMBER_BYTES: u64 = 8;

/// What the store holds.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq, Serialize, Deserialize)]
pub struct Usage {
    pub groups: u64,
    pub series: u64,
    pub bytes: u64,
}

impl AddAssign for Usage {
    fn add_assign(&mut self, other: Usage) {
        self.groups += other.groups;
        self.series += other.series;
        self.bytes += other.bytes;
    }
}

impl Usage {
    /// `self` without `other`, never below zero.
    pub fn without(self, other: Usage) -> Usage {
        Usage {
            groups: self.groups.saturating_sub(other.groups),
            series: self.series.saturating_sub(other.series),
            bytes: self.bytes.saturating_sub(other.bytes),
        }
    }

    /// What a group's key and timestamps count, without its families.
    pub fn of_group(key: &GroupingKey) -> Usage {
        let labels: u64 = key.labels().iter().map(|(n, v)| (n.len() + v.len()) as u64).sum();
        Usage { groups: 1, series: 0, bytes: GROUP_BYTES + labels }
    }

    /// What a family counts. `added_label_bytes` is counted once more per series: the
    /// bytes of the labels a push's series will carry once stored (see
    /// [`Usage::of_pushed`]); 0 for a stored family. Linear in the family's size.
    pub fn of_family(family: &MetricFamily, added_label_bytes: u64) -> Usage {
        let mut usage = Usage {
            groups: 0,
            series: family.metrics.len() as u64,
            bytes: FAMILY_BYTES + family.name.len() as u64 + family.help.as_ref().map_or(0, |h| h.len() as u64),
        };
        for metric in &family.metrics {
            usage.bytes += metric_bytes(metric) + added_label_bytes;
        }
        usage
    }

    /// An upper bound of what a pushed family will count once stored, when every series
    /// has been given the grouping labels of `key` (and `instance`): exact unless a series
    /// repeats a grouping label.
    pub fn of_pushed(family: &MetricFamily, key: &GroupingKey) -> Usage {
        let labels = key.labels();
        let mut added: u64 = labels.iter().map(|(n, v)| (n.len() + v.len()) as u64).sum();
        if !labels.contains_key("instance") {
            added += "instance".len() as u64;
        }
        Usage::of_family(family, added)
    }
}

fn metric_bytes(metric: &Metric) -> u64 {
    let labels: u64 = metric.labels.iter().map(|l| (l.name.len() + l.value.len()) as u64).sum();
    let numbers = match metric.value.classic() {
        Value::Counter(_) | Value::Gauge(_) | Value::Untyped(_) => 1,
        Value::Summary(s) => 2 + 2 * s.quantiles.len() as u64,
        Value::Histogram(h) => 2 + 2 * h.buckets.len() as u64,
        Value::Missing | Value::Proto(_) => 0,
    };
    // The protobuf fields a value kept whole carries, as many bytes as they are.
    let kept = metric.value.proto_fields().map_or(0, |f| f.len() as u64);
    SERIES_BYTES + labels + numbers * NUMBER_BYTES + kept
}

/// The quotas of the store. Every field is a maximum.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct StoreQuotas {
    pub groups: u64,
    pub series: u64,
    pub bytes: u64,
}

/// Which quota a push would exceed, and whether its group exists (then its failure can
/// be recorded without storing anything new).
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct QuotaExceeded {
    pub flag: &'static str,
    pub what: &'static str,
    pub quota: u64,
    /// What the store would hold after the push.
    pub would_hold: u64,
    pub group_exists: bool,
}

impl fmt::Display for QuotaExceeded {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(
            f,
            "push refused: the store would hold {} {}, over its quota of {} (--{}); delete groups or raise the quota",
            self.would_hold, self.what, self.quota, self.flag
        )
    }
}

impl StoreQuotas {
    /// The defaults of the flags: sized for a node with a few GiB of memory (a stored
    /// series takes about 0.5 KB of memory; see the README's limits).
    pub const DEFAULT: StoreQuotas = StoreQuotas { groups: 1_000_000, series: 10_000_000, bytes: 2 << 30 };

    /// The flag of each quota, in the order they are judged.
    pub const FLAGS: [&'static str; 3] = ["store.max-groups", "store.max-series", "store.max-bytes"];

    /// Each quota with its flag and what it counts.
    pub fn entries(&self) -> [(&'static str, &'static str, u64); 3] {
        [
            (Self::FLAGS[0], "groups", self.groups),
            (Self::FLAGS[1], "series", self.series),
            (Self::FLAGS[2], "bytes", self.bytes),
        ]
    }

    /// Judges a change of the store from `before` to `after`: refused if it grows a
    /// resource beyond its quota. Growth only: a push that keeps or shrinks a resource
    /// already over its quota (after the quota was lowered) is allowed.
    pub fn check(&self, before: Usage, after: Usage, group_exists: bool) -> Result<(), QuotaExceeded> {
        let pairs = [(before.groups, after.groups), (before.series, after.series), (before.bytes, after.bytes)];
        for ((flag, what, quota), (was, will)) in self.entries().into_iter().zip(pairs) {
            if will > was && will > quota {
                return Err(QuotaExceeded { flag, what, quota, would_hold: will, group_exists });
            }
        }
        Ok(())
    }
}

impl Default for StoreQuotas {
    fn default() -> Self {
        StoreQuotas::DEFAULT
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::metric::{Bucket, LabelPair, MetricType, Timestamp};
    use std::collections::BTreeMap;

    fn key(instance: Option<&str>) -> GroupingKey {
        let mut labels = BTreeMap::from([("job".to_string(), "j".to_string())]);
        if let Some(i) = instance {
            labels.insert("instance".into(), i.into());
        }
        GroupingKey::new(labels)
    }

    #[test]
    fn bytes_count_text_and_numbers() {
        let family = MetricFamily {
            name: "abc".into(),
            help: Some("hh".into()),
            metric_type: MetricType::Histogram,
            metrics: vec![Metric {
                labels: [LabelPair::new("le_x", "12")].into(),
                value: Value::histogram(1, 1.0, vec![Bucket { upper_bound: 1.0, cumulative_count: 1 }]),
                timestamp_ms: Timestamp::NONE,
            }],
        };
        let stored = Usage::of_family(&family, 0);
        assert_eq!(stored, Usage { groups: 0, series: 1, bytes: FAMILY_BYTES + 5 + SERIES_BYTES + 6 + 4 * 8 });
        // Pushed under {job="j"}: every series gains job="j" and instance="".
        assert_eq!(Usage::of_pushed(&family, &key(None)).bytes, stored.bytes + 4 + 8);
        assert_eq!(Usage::of_pushed(&family, &key(Some("i"))).bytes, stored.bytes + 4 + 9);
        assert_eq!(Usage::of_group(&key(None)), Usage { groups: 1, series: 0, bytes: GROUP_BYTES + 4 });
    }

    #[test]
    fn only_growth_beyond_a_quota_is_refused() {
        let quotas = StoreQuotas { groups: 10, series: 100, bytes: 1000 };
        let at = |groups, series, bytes| Usage { groups, series, bytes };
        assert!(quotas.check(at(9, 0, 0), at(10, 0, 0), false).is_ok());
        let refused = quotas.check(at(10, 0, 0), at(11, 0, 0), false).unwrap_err();
        assert_eq!((refused.flag, refused.quota, refused.would_hold), ("store.max-groups", 10, 11));
        assert!(refused.to_string().contains("would hold 11 groups, over its quota of 10 (--store.max-groups)"));
        // Above a lowered quota, shrinking or keeping is allowed; growing is not.
        assert!(quotas.check(at(5, 200, 0), at(5, 150, 0), true).is_ok());
        assert!(quotas.check(at(5, 200, 0), at(5, 200, 0), true).is_ok());
        let refused = quotas.check(at(5, 200, 0), at(5, 201, 0), true).unwrap_err();
        assert_eq!((refused.flag, refused.group_exists), ("store.max-series", true));
        assert_eq!(quotas.check(at(0, 0, 1000), at(0, 0, 1001), false).unwrap_err().flag, "store.max-bytes");
    }
}
