//! The grouping key: the labels in a push's URL that name its group.

use std::collections::BTreeMap;
use std::fmt;

use serde::{Deserialize, Serialize};

use crate::labels::Labels;

/// The labels that identify a group: `job` plus any further pairs from the URL.
///
/// Ordered by `job` first, then by the remaining pairs, so all groups of one job are
/// adjacent in an ordered map; the consistency check relies on that.
///
/// The key also keeps that order as bytes (`order`, derived from the labels when the key
/// is built and never serialized): the store's map compares keys several times per push,
/// and one `memcmp` replaces a lookup of `job` and a walk over both maps. Equality and
/// hashing use the same bytes, which name the labels exactly.
#[derive(Clone)]
pub struct GroupingKey {
    labels: BTreeMap<String, String>,
    order: Box<[u8]>,
}

/// `GroupingKey`'s serialized form: its labels only (the order bytes are derived).
#[derive(Serialize)]
#[serde(rename = "GroupingKey")]
struct KeyRef<'a> {
    labels: &'a BTreeMap<String, String>,
}

#[derive(Deserialize)]
#[serde(rename = "GroupingKey")]
struct KeyOwned {
    labels: BTreeMap<String, String>,
}

impl Serialize for GroupingKey {
    fn serialize<S: serde::Serializer>(&self, serializer: S) -> Result<S::Ok, S::Error> {
        KeyRef { labels: &self.labels }.serialize(serializer)
    }
}

impl<'de> Deserialize<'de> for GroupingKey {
    fn deserialize<D: serde::Deserializer<'de>>(deserializer: D) -> Result<Self, D::Error> {
        KeyOwned::deserialize(deserializer).map(|k| GroupingKey::from_labels(k.labels))
    }
}

impl GroupingKey {
    /// Builds a key; `labels` must contain `job`.
    pub fn new(labels: BTreeMap<String, String>) -> Self {
        debug_assert!(labels.contains_key("job"));
        GroupingKey::from_labels(labels)
    }

    fn from_labels(labels: BTreeMap<String, String>) -> Self {
        let order = order_bytes(&labels);
        GroupingKey { labels, order }
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

/// The key's order as bytes whose bytewise order is the order of the tuple (whether it has a
/// job, the job, then every other name and value in name order): each string's bytes with
/// 0x00 written as 0x00 0xFF, then 0x00 0x01 to end it. Two strings first differ inside
/// their escaped bytes or where the shorter one ends (its 0x00 0x01 sorts below any byte
/// and below an escaped 0x00), so comparing the encodings compares the strings; a tuple
/// that is a prefix of another encodes to a prefix of its bytes.
fn order_bytes(labels: &BTreeMap<String, String>) -> Box<[u8]> {
    fn put(out: &mut Vec<u8>, s: &str) {
        for &b in s.as_bytes() {
            out.push(b);
            if b == 0 {
                out.push(0xFF);
            }
        }
        out.extend_from_slice(&[0x00, 0x01]);
    }
    let len: usize = labels.iter().map(|(k, v)| k.len() + v.len() + 4).sum();
    let mut out = Vec::with_capacity(len + 1);
    // Every key built here has a job; one that arrived without (only a damaged or foreign
    // entry could) still orders and compares apart from `job=""`.
    match labels.get("job") {
        Some(job) => {
            out.push(1);
            put(&mut out, job);
        }
        None => out.push(0),
    }
    for (k, v) in labels.iter().filter(|(k, _)| k.as_str() != "job") {
        put(&mut out, k);
        put(&mut out, v);
    }
    out.into_boxed_slice()
}

/// The labels only: the order bytes are derived from them.
impl fmt::Debug for GroupingKey {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("GroupingKey").field("labels", &self.labels).finish()
    }
}

impl PartialEq for GroupingKey {
    fn eq(&self, other: &Self) -> bool {
        self.order == other.order
    }
}

impl Eq for GroupingKey {}

impl std::hash::Hash for GroupingKey {
    fn hash<H: std::hash::Hasher>(&self, state: &mut H) {
        self.order.hash(state)
    }
}

impl Ord for GroupingKey {
    fn cmp(&self, other: &Self) -> std::cmp::Ordering {
        self.order.cmp(&other.order)
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

#[cfg(test)]
mod tests {
    use super::*;

    fn key(pairs: &[(&str, &str)]) -> GroupingKey {
        GroupingKey::from_labels(pairs.iter().map(|(k, v)| (k.to_string(), v.to_string())).collect())
    }

    /// The order as defined on the labels: job first, then the other pairs in name order.
    fn expected_cmp(a: &GroupingKey, b: &GroupingKey) -> std::cmp::Ordering {
        let job = |k: &GroupingKey| k.labels.get("job").cloned();
        let rest = |k: &GroupingKey| {
            k.labels
                .iter()
                .filter(|(n, _)| n.as_str() != "job")
                .map(|(n, v)| (n.clone(), v.clone()))
                .collect::<Vec<_>>()
        };
        job(a).cmp(&job(b)).then_with(|| rest(a).cmp(&rest(b)))
    }

    /// The order bytes order, compare and hash keys as their labels do: NUL bytes, a job
    /// that is a prefix of another, names and values running into each other, keys
    /// without a job.
    #[test]
    fn order_bytes_order_as_the_labels_do() {
        use proptest::prelude::*;
        let text = "(a|b|\u{0}|\u{1}|é|\u{ff}){0,3}";
        let labels =
            prop::collection::btree_map(prop_oneof!["job", "[a-c]{0,2}", Just("\u{0}".to_string())], text, 0..4);
        proptest!(ProptestConfig::with_cases(3_000), |(a in labels.clone(), b in labels)| {
            let (a, b) = (GroupingKey::from_labels(a), GroupingKey::from_labels(b));
            let expected = expected_cmp(&a, &b);
            prop_assert_eq!(a.cmp(&b), expected);
            prop_assert_eq!(b.cmp(&a), expected.reverse());
            prop_assert_eq!(a == b, a.labels == b.labels);
        });
    }

    #[test]
    fn order_bytes_cases() {
        use std::cmp::Ordering::*;
        let cases = [
            (key(&[("job", "a")]), key(&[("job", "ab")]), Less),
            (key(&[("job", "a"), ("x", "1")]), key(&[("job", "ab")]), Less),
            (key(&[("job", "a\u{0}")]), key(&[("job", "a")]), Greater),
            (key(&[("job", "a\u{0}x")]), key(&[("job", "a\u{1}")]), Less),
            (key(&[("job", "j")]), key(&[("job", "j"), ("a", "")]), Less),
            (key(&[("job", "j"), ("a", "b")]), key(&[("job", "j"), ("ab", "")]), Less),
            (key(&[("a", "b"), ("job", "z")]), key(&[("job", "j"), ("b", "a")]), Greater),
            (key(&[("job", "")]), key(&[]), Greater),
        ];
        for (a, b, want) in cases {
            assert_eq!(a.cmp(&b), want, "{a} vs {b}");
            assert_eq!(expected_cmp(&a, &b), want, "{a} vs {b}");
        }
        assert_eq!(format!("{:?}", key(&[("job", "j")])), r#"GroupingKey { labels: {"job": "j"} }"#);
    }

    /// Serialized as before the order bytes were kept: the labels alone, so entries and
    /// stored groups read the same in every build.
    #[test]
    fn serialized_as_its_labels() {
        #[derive(Serialize, Deserialize)]
        struct GroupingKey {
            labels: BTreeMap<String, String>,
        }
        let labels: BTreeMap<String, String> =
            [("job", "j"), ("instance", "\u{0}é")].iter().map(|(k, v)| (k.to_string(), v.to_string())).collect();
        let old = GroupingKey { labels: labels.clone() };
        let new = super::GroupingKey::new(labels);
        let config = bincode::config::standard();
        let bytes = bincode::serde::encode_to_vec(&old, config).unwrap();
        assert_eq!(bincode::serde::encode_to_vec(&new, config).unwrap(), bytes);
        let (back, _): (super::GroupingKey, _) = bincode::serde::decode_from_slice(&bytes, config).unwrap();
        assert_eq!(back, new);
        assert_eq!(back.order, new.order);
        let json = serde_json::to_string(&old).unwrap();
        assert_eq!(serde_json::to_string(&new).unwrap(), json);
        assert_eq!(serde_json::from_str::<super::GroupingKey>(&json).unwrap(), new);
    }
}
