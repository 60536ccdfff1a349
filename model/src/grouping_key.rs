//! The grouping key: the labels in a push's URL that name its group.

use std::collections::BTreeMap;
use std::fmt;

use serde::{Deserialize, Serialize};

use crate::labels::Labels;

/// The labels that identify a group: `job` plus any further pairs from the URL.
///
/// Ordered by `job` first, then by the remaining pairs, so all groups of one job are
/// adjacent in an ordered map; the consistency check relies on that.
#[derive(Clone, Debug, PartialEq, Eq, Hash, Serialize, Deserialize)]
pub struct GroupingKey {
    labels: BTreeMap<String, String>,
}

impl GroupingKey {
    /// Builds a key; `labels` must contain `job`.
    pub fn new(labels: BTreeMap<String, String>) -> Self {
        debug_assert!(labels.contains_key("job"));
        GroupingKey { labels }
    }

    pub fn job(&self) -> &str {
        self.labels.get("job").map(String::as_str).unwrap_or("")
    }

    pub fn labels(&self) -> &BTreeMap<String, String> {
        &self.labels
    }

    /// Whether `self` and `other` agree on every label name they share. Only such
    /// groups can ever expose identical series.
    pub fn compatible_with(&self, other: &GroupingKey) -> bool {
        self.labels.iter().all(|(k, v)| other.labels.get(k).is_none_or(|w| w == v))
    }

    /// The labels every series of this group carries: the grouping labels plus
    /// `instance=""` when the key has no instance, sorted by name.
    pub fn series_labels(&self) -> Labels {
        let mut out: Vec<(&str, &str)> = self.labels.iter().map(|(k, v)| (k.as_str(), v.as_str())).collect();
        if !self.labels.contains_key("instance") {
            let at = out.partition_point(|(k, _)| *k < "instance");
            out.insert(at, ("instance", ""));
        }
        Labels::from_pairs(out.iter().copied())
    }

    /// A canonical byte form, stable across versions: `job` value, then `name=value`
    /// pairs in name order, separated by 0xFF (which never occurs in UTF-8).
    pub fn canonical_bytes(&self) -> Vec<u8> {
        let mut out = Vec::new();
        out.extend_from_slice(self.job().as_bytes());
        for (k, v) in self.labels.iter().filter(|(k, _)| k.as_str() != "job") {
            out.push(0xFF);
            out.extend_from_slice(k.as_bytes());
            out.push(0xFF);
            out.extend_from_slice(v.as_bytes());
        }
        out
    }
}

impl Ord for GroupingKey {
    fn cmp(&self, other: &Self) -> std::cmp::Ordering {
        self.job().cmp(other.job()).then_with(|| {
            let a = self.labels.iter().filter(|(k, _)| k.as_str() != "job");
            let b = other.labels.iter().filter(|(k, _)| k.as_str() != "job");
            a.cmp(b)
        })
    }
}

impl PartialOrd for GroupingKey {
    fn partial_cmp(&self, other: &Self) -> Option<std::cmp::Ordering> {
        Some(self.cmp(other))
    }
}

impl fmt::Display for GroupingKey {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str("{")?;
        for (i, (k, v)) in self.labels.iter().enumerate() {
            if i > 0 {
                f.write_str(",")?;
            }
            write!(f, "{k}={v:?}")?;
        }
        f.write_str("}")
    }
}
