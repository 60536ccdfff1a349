//! The labels of one series, packed into one allocation.

use std::fmt;

use serde::{Deserialize, Deserializer, Serialize, Serializer};

use crate::metric::LabelPair;

/// The labels of one series in the order they were given (sorted by name once stored, see
/// [`crate::check::sanitize`]), packed into one string.
///
/// A store holds one per series, a million at a time, and nearly every label is short: as
/// a boxed slice of [`LabelPair`]s three labels took 144 bytes (160 after the allocator's
/// rounding); packed they take about 30. The packing is the number of pairs, then for each
/// pair the length of its name, the name, the length of its value and the value. Each
/// number is written in bytes of six bits (`0x40` set on every byte but the last, lowest
/// bits first), all below `0x80`: the whole is valid UTF-8 and every name and value is a
/// slice of it at a character boundary. No labels is the empty string, which allocates
/// nothing.
///
/// Equality and hashing are the packed string's, the same as comparing the pairs in order
/// (the packing is one-to-one); the order is lexicographic over the `(name, value)` pairs.
/// Serialized as a sequence of `{ name, value }` pairs, exactly as the `Vec<LabelPair>` it
/// replaces.
#[derive(Clone, Default, PartialEq, Eq, Hash)]
pub struct Labels(Box<str>);

/// One label of a [`Labels`], borrowed from it.
#[derive(Clone, Copy, Debug, PartialEq, Eq, PartialOrd, Ord, Hash, Serialize)]
#[serde(rename = "LabelPair")]
pub struct Label<'a> {
    pub name: &'a str,
    pub value: &'a str,
}

impl Labels {
    /// No labels.
    pub fn new() -> Labels {
        Labels::default()
    }

    /// The pairs packed in the order given. Two passes over `pairs` (a clone of the
    /// iterator, which should be cheap to clone: a slice's, not a vector's `into_iter`):
    /// the first sizes the one allocation the second fills.
    pub fn from_pairs<'a, I>(pairs: I) -> Labels
    where
        I: IntoIterator<Item = (&'a str, &'a str)>,
        I::IntoIter: Clone,
    {
        let pairs = pairs.into_iter();
        let (mut count, mut size) = (0usize, 0usize);
        for (name, value) in pairs.clone() {
            count += 1;
            size += number_len(name.len()) + name.len() + number_len(value.len()) + value.len();
        }
        if count == 0 {
            return Labels::default();
        }
        let mut packed = String::with_capacity(number_len(count) + size);
        put_number(&mut packed, count);
        for (name, value) in pairs {
            put_number(&mut packed, name.len());
            packed.push_str(name);
            put_number(&mut packed, value.len());
            packed.push_str(value);
        }
        debug_assert_eq!(packed.len(), packed.capacity());
        Labels(packed.into_boxed_str())
    }

    /// How many labels there are (read from the front: constant time).
    pub fn len(&self) -> usize {
        if self.0.is_empty() {
            0
        } else {
            take_number(self.0.as_bytes(), &mut 0)
        }
    }

    pub fn is_empty(&self) -> bool {
        self.0.is_empty()
    }

    /// The labels in order.
    pub fn iter(&self) -> Iter<'_> {
        let mut pos = 0;
        let left = if self.0.is_empty() { 0 } else { take_number(self.0.as_bytes(), &mut pos) };
        Iter { packed: &self.0, pos, left }
    }

    /// The value of the first label named `name`.
    pub fn get(&self, name: &str) -> Option<&str> {
        self.iter().find(|l| l.name == name).map(|l| l.value)
    }

    /// Go's `metricSorter` on the labels of two series: fewer labels first, then the values
    /// position by position (the names are not compared). On the packed bytes, without the
    /// iterator's UTF-8 boundary checks: bytewise order is the strings' order. A scrape
    /// sorts every family by it once per push and checks each group's first series with
    /// it, so it is a hot loop of the first scrape after many pushes.
    pub fn exposition_cmp(&self, other: &Labels) -> std::cmp::Ordering {
        let (a, b) = (self.0.as_bytes(), other.0.as_bytes());
        let (mut i, mut j) = (0, 0);
        let count = |bytes: &[u8], pos: &mut usize| if bytes.is_empty() { 0 } else { take_number(bytes, pos) };
        let n = count(a, &mut i);
        match n.cmp(&count(b, &mut j)) {
            std::cmp::Ordering::Equal => {}
            unequal => return unequal,
        }
        for _ in 0..n {
            i += take_number(a, &mut i);
            j += take_number(b, &mut j);
            let (la, lb) = (take_number(a, &mut i), take_number(b, &mut j));
            match a[i..i + la].cmp(&b[j..j + lb]) {
                std::cmp::Ordering::Equal => {}
                unequal => return unequal,
            }
            i += la;
            j += lb;
        }
        std::cmp::Ordering::Equal
    }

    /// The labels as owned pairs, to change them.
    pub fn to_vec(&self) -> Vec<LabelPair> {
        self.iter().map(|l| LabelPair::new(l.name, l.value)).collect()
    }
}

/// The labels of a [`Labels`], in order.
#[derive(Clone)]
pub struct Iter<'a> {
    packed: &'a str,
    pos: usize,
    left: usize,
}

impl<'a> Iter<'a> {
    fn take_str(&mut self) -> &'a str {
        let len = take_number(self.packed.as_bytes(), &mut self.pos);
        let s = &self.packed[self.pos..self.pos + len];
        self.pos += len;
        s
    }
}

impl<'a> Iterator for Iter<'a> {
    type Item = Label<'a>;

    fn next(&mut self) -> Option<Label<'a>> {
        if self.left == 0 {
            return None;
        }
        self.left -= 1;
        let name = self.take_str();
        let value = self.take_str();
        Some(Label { name, value })
    }

    fn size_hint(&self) -> (usize, Option<usize>) {
        (self.left, Some(self.left))
    }
}

impl ExactSizeIterator for Iter<'_> {}

impl<'a> IntoIterator for &'a Labels {
    type Item = Label<'a>;
    type IntoIter = Iter<'a>;

    fn into_iter(self) -> Iter<'a> {
        self.iter()
    }
}

impl From<&[LabelPair]> for Labels {
    fn from(pairs: &[LabelPair]) -> Labels {
        Labels::from_pairs(pairs.iter().map(|l| (l.name.as_str(), l.value.as_str())))
    }
}

impl From<Vec<LabelPair>> for Labels {
    fn from(pairs: Vec<LabelPair>) -> Labels {
        Labels::from(&pairs[..])
    }
}

impl<const N: usize> From<[LabelPair; N]> for Labels {
    fn from(pairs: [LabelPair; N]) -> Labels {
        Labels::from(&pairs[..])
    }
}

impl FromIterator<LabelPair> for Labels {
    fn from_iter<I: IntoIterator<Item = LabelPair>>(pairs: I) -> Labels {
        Labels::from(pairs.into_iter().collect::<Vec<_>>())
    }
}

impl PartialOrd for Labels {
    fn partial_cmp(&self, other: &Labels) -> Option<std::cmp::Ordering> {
        Some(self.cmp(other))
    }
}

impl Ord for Labels {
    fn cmp(&self, other: &Labels) -> std::cmp::Ordering {
        self.iter().cmp(other.iter())
    }
}

impl fmt::Debug for Labels {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_list().entries(self.iter()).finish()
    }
}

impl Serialize for Labels {
    fn serialize<S: Serializer>(&self, serializer: S) -> Result<S::Ok, S::Error> {
        serializer.collect_seq(self.iter())
    }
}

impl<'de> Deserialize<'de> for Labels {
    /// Packed as the pairs arrive, each read as the [`LabelPair`] it was written from (short
    /// names and values stay inline in it): linear in the input, with no vector of pairs in
    /// between.
    fn deserialize<D: Deserializer<'de>>(deserializer: D) -> Result<Labels, D::Error> {
        deserializer.deserialize_seq(LabelsVisitor)
    }
}

struct LabelsVisitor;

impl<'de> serde::de::Visitor<'de> for LabelsVisitor {
    type Value = Labels;

    fn expecting(&self, f: &mut fmt::Formatter) -> fmt::Result {
        f.write_str("a sequence of label pairs")
    }

    /// The count goes first: written from the format's announced length (bincode's is
    /// exact) and the pairs after it; when the sequence turns out longer or shorter, or
    /// announced none (JSON), the pairs are packed first and the count put in front once
    /// known. The announced length sizes nothing.
    fn visit_seq<A: serde::de::SeqAccess<'de>>(self, mut seq: A) -> Result<Labels, A::Error> {
        let announced = seq.size_hint();
        let mut packed = String::new();
        if let Some(n) = announced {
            put_number(&mut packed, n);
        }
        let mut count = 0usize;
        while let Some(pair) = seq.next_element::<LabelPair>()? {
            count += 1;
            put_number(&mut packed, pair.name.len());
            packed.push_str(&pair.name);
            put_number(&mut packed, pair.value.len());
            packed.push_str(&pair.value);
        }
        if count == 0 {
            return Ok(Labels::default());
        }
        if announced == Some(count) {
            return Ok(Labels(packed.into_boxed_str()));
        }
        let body = &packed[announced.map_or(0, number_len)..];
        let mut whole = String::with_capacity(number_len(count) + body.len());
        put_number(&mut whole, count);
        whole.push_str(body);
        Ok(Labels(whole.into_boxed_str()))
    }
}

/// Bytes [`put_number`] writes for `n`.
fn number_len(mut n: usize) -> usize {
    let mut len = 1;
    while n >= 0x40 {
        n >>= 6;
        len += 1;
    }
    len
}

fn put_number(out: &mut String, mut n: usize) {
    while n >= 0x40 {
        out.push(char::from(0x40 | (n & 0x3f) as u8));
        n >>= 6;
    }
    out.push(char::from(n as u8));
}

/// Reads a number [`put_number`] wrote at `*pos`, and moves `*pos` past it.
fn take_number(bytes: &[u8], pos: &mut usize) -> usize {
    let (mut n, mut shift) = (0usize, 0);
    loop {
        let b = bytes[*pos];
        *pos += 1;
        n |= usize::from(b & 0x3f) << shift;
        if b & 0x40 == 0 {
            return n;
        }
        shift += 6;
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn pairs(labels: &Labels) -> Vec<(String, String)> {
        labels.iter().map(|l| (l.name.to_string(), l.value.to_string())).collect()
    }

    #[test]
    fn pairs_come_back_as_given() {
        let long = "x".repeat(5_000);
        let cases: Vec<Vec<(&str, &str)>> = vec![
            vec![],
            vec![("", "")],
            vec![("job", "a"), ("instance", ""), ("job", "b")],
            vec![("ä\u{0}", "\u{7f}\u{80}🦀"), (long.as_str(), "v"), ("n", long.as_str())],
        ];
        for case in cases {
            let labels = Labels::from_pairs(case.iter().copied());
            assert_eq!(labels.len(), case.len());
            assert_eq!(labels.is_empty(), case.is_empty());
            let back = pairs(&labels);
            let want: Vec<(String, String)> = case.iter().map(|(n, v)| (n.to_string(), v.to_string())).collect();
            assert_eq!(back, want);
            assert_eq!(Labels::from(labels.to_vec()), labels);
        }
    }

    #[test]
    fn numbers_of_every_width_round_trip() {
        for n in [0, 1, 0x3f, 0x40, 0x41, 0xfff, 0x1000, 1 << 20, usize::MAX >> 1, usize::MAX] {
            let mut s = String::new();
            put_number(&mut s, n);
            assert_eq!(s.len(), number_len(n), "{n}");
            assert!(s.bytes().all(|b| b < 0x80), "{n}");
            let mut pos = 0;
            assert_eq!(take_number(s.as_bytes(), &mut pos), n);
            assert_eq!(pos, s.len());
        }
        let many: Vec<LabelPair> = (0..70_000).map(|i| LabelPair::new(format!("l{i}"), "v")).collect();
        let labels = Labels::from(&many[..]);
        assert_eq!(labels.len(), 70_000);
        assert_eq!(labels.to_vec(), many);
    }

    #[test]
    fn three_short_labels_fit_in_a_small_allocation() {
        let labels = Labels::from_pairs([("instance", "g1234"), ("job", "fill"), ("k", "57")]);
        assert_eq!(labels.0.len(), 1 + (1 + 8 + 1 + 5) + (1 + 3 + 1 + 4) + (1 + 1 + 1 + 2));
        assert_eq!(std::mem::size_of::<Labels>(), 16);
    }

    #[test]
    fn equality_and_order_are_the_pairs() {
        let a = Labels::from_pairs([("a", "1"), ("b", "2")]);
        let b = Labels::from_pairs([("a", "1"), ("b", "10")]);
        let c = Labels::from_pairs([("ab", ""), ("b", "2")]);
        assert_ne!(a, b);
        assert_eq!(a.cmp(&b), [("a", "1"), ("b", "2")].cmp(&[("a", "1"), ("b", "10")]));
        assert_eq!(a.cmp(&c), std::cmp::Ordering::Less);
        assert_eq!(a.get("b"), Some("2"));
        assert_eq!(a.get("c"), None);
    }

    /// The order on packed bytes is the one on the pairs: label count, then the values in
    /// order, names ignored (multi-byte characters, prefixes, empty values included).
    #[test]
    fn exposition_order_is_counts_then_values() {
        use proptest::prelude::*;
        let pair = ("[a-c]{0,2}", "([a-c]|é|\u{10000}){0,3}");
        let labels = prop::collection::vec(pair, 0..4).prop_map(|v| {
            let pairs: Vec<LabelPair> = v.into_iter().map(|(n, v)| LabelPair::new(n, v)).collect();
            Labels::from(pairs)
        });
        proptest!(ProptestConfig::with_cases(2_000), |(a in labels.clone(), b in labels)| {
            let values = |l: &Labels| l.iter().map(|l| l.value.to_string()).collect::<Vec<_>>();
            let expected = a.len().cmp(&b.len()).then_with(|| values(&a).cmp(&values(&b)));
            prop_assert_eq!(a.exposition_cmp(&b), expected);
            prop_assert_eq!(b.exposition_cmp(&a), expected.reverse());
            prop_assert_eq!(a.exposition_cmp(&a), std::cmp::Ordering::Equal);
        });
    }

    #[test]
    fn serialized_as_a_vector_of_pairs() {
        let config = bincode::config::standard();
        for case in [vec![], vec![LabelPair::new("a", "b"), LabelPair::new("", "ü")]] {
            let old = bincode::serde::encode_to_vec(&case, config).unwrap();
            let labels = Labels::from(case.clone());
            assert_eq!(bincode::serde::encode_to_vec(&labels, config).unwrap(), old);
            let (back, _): (Labels, _) = bincode::serde::decode_from_slice(&old, config).unwrap();
            assert_eq!(back, labels);
            assert_eq!(serde_json::to_value(&labels).unwrap(), serde_json::to_value(&case).unwrap());
        }
    }

    /// Read straight into the packed form from every way a sequence arrives: bincode (exact
    /// length announced, strings borrowed), JSON text (no length, escapes owned), and a
    /// sequence announcing a wrong length (more, fewer, none); counts of one and two bytes.
    #[test]
    fn deserialized_as_the_pairs_read() {
        use serde::de::value::SeqAccessDeserializer;
        struct Announcing(std::vec::IntoIter<serde_json::Value>, Option<usize>);
        impl<'de> serde::de::SeqAccess<'de> for Announcing {
            type Error = serde_json::Error;
            fn next_element_seed<T: serde::de::DeserializeSeed<'de>>(
                &mut self,
                seed: T,
            ) -> Result<Option<T::Value>, Self::Error> {
                self.0.next().map(|v| seed.deserialize(v)).transpose()
            }
            fn size_hint(&self) -> Option<usize> {
                self.1
            }
        }
        let many: Vec<LabelPair> = (0..70).map(|i| LabelPair::new(format!("n{i}"), "v\"\u{0}é")).collect();
        let cases =
            [vec![], vec![LabelPair::new("a", "b")], vec![LabelPair::new("", "ü"), LabelPair::new("a\n", "")], many];
        let config = bincode::config::standard();
        for case in cases {
            let want = Labels::from(case.clone());
            let bytes = bincode::serde::encode_to_vec(&case, config).unwrap();
            let (got, _): (Labels, _) = bincode::serde::decode_from_slice(&bytes, config).unwrap();
            assert_eq!(got, want);
            let json = serde_json::to_string(&case).unwrap();
            assert_eq!(serde_json::from_str::<Labels>(&json).unwrap(), want);
            let values: Vec<serde_json::Value> = case.iter().map(|p| serde_json::to_value(p).unwrap()).collect();
            for announced in [None, Some(0), Some(1), Some(case.len()), Some(case.len() + 1), Some(100)] {
                let seq = Announcing(values.clone().into_iter(), announced);
                let got = Labels::deserialize(SeqAccessDeserializer::new(seq)).unwrap();
                assert_eq!(got, want, "announced {announced:?}");
            }
        }
        assert!(serde_json::from_str::<Labels>(r#"[{"name":"a"}]"#).is_err());
        assert!(serde_json::from_str::<Labels>(r#"{"name":"a","value":"b"}"#).is_err());
    }
}
