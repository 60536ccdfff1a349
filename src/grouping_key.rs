//! The grouping key in a push URL: `/metrics/job/<job>{/<label>/<value>}`, with
//! `@base64` after a name to mark a URL-safe base64 value (padding optional, `=` alone
//! for the empty value). Parsed once, here, for PUT, POST and DELETE alike, answering
//! bad keys with upstream's messages.

use std::collections::BTreeMap;

use base64::alphabet::URL_SAFE;
use base64::engine::general_purpose::{GeneralPurpose, GeneralPurposeConfig};
use base64::engine::DecodePaddingMode;
use base64::Engine;

use model::check::{is_reserved_label_name, Names};
use model::{GroupingKey, Ttl};

use crate::exposition::escaping::unescape_values;
use crate::exposition::text_parse::go_quote;

/// Why a grouping key was refused (400). Display gives upstream's message.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum GroupingKeyError {
    /// The job name as far as it decoded (Go's decoder hands back the whole quanta before
    /// the error), quoted, and the error.
    #[error("invalid base64 encoding in job name {0}: {1}")]
    JobBase64(String, String),
    #[error("odd number of components in label string {0}")]
    OddComponents(String),
    #[error("improper label name {0}")]
    ImproperLabelName(String),
    #[error("invalid base64 encoding for label {name}={value}: {error}")]
    LabelBase64 { name: String, value: String, error: String },
    #[error("job name is required")]
    JobRequired,
    /// Upstream accepts such a key and then can never expose the group; we refuse a push
    /// to it, and a delete of it deletes nothing (202, as upstream answers it). Reported
    /// only when the path has no other error.
    #[error("label value {0} in the URL is not valid UTF-8")]
    NotUtf8(String),
    /// `__ttl__` with a value that is not a positive duration, or given twice.
    #[error("{TTL_LABEL} {0}: give a positive duration such as 90s, 15m or 2h")]
    Ttl(String),
}

/// The reserved grouping label that names a group's time to live instead of a label:
/// upstream refuses every name starting with `__`, so no group it could store has it,
/// and client libraries pass it through their grouping keys unchanged (which is why it
/// is a grouping label and not a header: no client needs custom code to send it).
pub const TTL_LABEL: &str = "__ttl__";

const SUFFIX: &str = "@base64";

/// Go's `base64.RawURLEncoding` (lenient about trailing bits).
const RAW_URL: GeneralPurpose = GeneralPurpose::new(
    &URL_SAFE,
    GeneralPurposeConfig::new()
        .with_decode_allow_trailing_bits(true)
        .with_decode_padding_mode(DecodePaddingMode::RequireNone),
);

/// Decodes a base64 value as upstream does: trailing `=` trimmed, then raw URL-safe, with
/// `\r` and `\n` skipped wherever they stand (Go's decoder ignores them). An error gives
/// what decoded before it (the whole 4-character quanta before the bad one, as Go hands
/// back) and Go's message, its offset counted in the value as given.
fn decode_base64(raw: &[u8]) -> Result<Vec<u8>, (Vec<u8>, String)> {
    let end = raw.iter().rposition(|&b| b != b'=').map_or(0, |i| i + 1);
    let (positions, kept): (Vec<usize>, Vec<u8>) =
        raw[..end].iter().enumerate().filter(|(_, b)| !matches!(b, b'\r' | b'\n')).map(|(i, b)| (i, *b)).unzip();
    RAW_URL.decode(&kept).map_err(|e| {
        let at = match e {
            base64::DecodeError::InvalidByte(offset, _) | base64::DecodeError::InvalidLastSymbol(offset, _) => offset,
            base64::DecodeError::InvalidLength(len) => len.saturating_sub(1) / 4 * 4,
            base64::DecodeError::InvalidPadding => kept.len(),
        };
        let decoded = RAW_URL.decode(&kept[..at / 4 * 4]).unwrap_or_default();
        let offset = positions.get(at).copied().unwrap_or(end);
        (decoded, format!("illegal base64 data at input byte {offset}"))
    })
}

fn utf8(bytes: Vec<u8>) -> Result<String, GroupingKeyError> {
    String::from_utf8(bytes).map_err(|e| GroupingKeyError::NotUtf8(go_quote(e.as_bytes())))
}

/// Parses the grouping key of a push or delete URL.
///
/// `job` is the (percent-decoded) job segment, `job_base64` whether the route was
/// `job@base64`, and `labels` the rest of the path after the job, starting with `/`
/// (empty when there is none). With [`Names::Utf8`] (`--push.enable-utf8-names`) a label
/// name may be any non-empty UTF-8 and `U__…` names are unescaped, as upstream 1.11 does.
pub fn parse_grouping_key(
    job: &[u8],
    job_base64: bool,
    labels: &[u8],
    names: Names,
) -> Result<GroupingKey, GroupingKeyError> {
    Ok(parse_push_target(job, job_base64, labels, names)?.0)
}

/// [`parse_grouping_key`], and the group's time to live if the path names one with the
/// reserved label [`TTL_LABEL`] (anywhere among the labels, `@base64` allowed), which is
/// not part of the key.
pub fn parse_push_target(
    job: &[u8],
    job_base64: bool,
    labels: &[u8],
    names: Names,
) -> Result<(GroupingKey, Option<Ttl>), GroupingKeyError> {
    let job = match job_base64 {
        true => decode_base64(job).map_err(|(decoded, e)| GroupingKeyError::JobBase64(go_quote(decoded), e))?,
        false => job.to_vec(),
    };
    let (mut pairs, ttl, not_utf8) = split_labels(labels, names)?;
    if job.is_empty() {
        return Err(GroupingKeyError::JobRequired);
    }
    // Last: upstream takes such a key (see [`GroupingKeyError::NotUtf8`]), so every other
    // error of the path comes first, and a delete of it is a delete of nothing. A `job`
    // label is the job segment's, whatever the labels said.
    let first_bad = not_utf8.into_iter().filter(|(name, _)| name != "job").min_by_key(|(_, (at, _))| *at);
    if let Some((_, (_, e))) = first_bad {
        return Err(e);
    }
    pairs.insert("job".to_string(), utf8(job)?);
    Ok((GroupingKey::new(pairs), ttl))
}

/// A [`TTL_LABEL`] value: a positive Go duration, to the millisecond.
fn parse_ttl(value: &str) -> Result<Ttl, GroupingKeyError> {
    let bad = || GroupingKeyError::Ttl(format!("{value:?} is not a positive duration"));
    let duration = crate::config::parse_go_duration(value).map_err(|_| bad())?;
    let millis = u64::try_from(duration.as_millis()).map_err(|_| bad())?;
    if millis == 0 {
        return Err(bad());
    }
    Ok(Ttl(millis))
}

type Labels = BTreeMap<String, String>;

/// Upstream's `splitLabels`: the name without `@base64`, unescaped (UTF-8 names only),
/// must pass the name rules, and its escaped form must not start with `__`; except
/// [`TTL_LABEL`], returned apart. A label value that is not UTF-8 is no error of its
/// own here (upstream's is none): each such label is returned apart, by name with its
/// place in the path, unless a later value of the same name replaced it (the last value of
/// a name wins, as in upstream's map).
fn split_labels(labels: &[u8], names: Names) -> Result<(Labels, Option<Ttl>, NotUtf8Labels), GroupingKeyError> {
    let mut out = BTreeMap::new();
    let mut ttl = None;
    let mut not_utf8 = NotUtf8Labels::new();
    if labels.len() <= 1 {
        return Ok((out, ttl, not_utf8));
    }
    let components: Vec<&[u8]> = labels[1..].split(|&b| b == b'/').collect();
    if components.len() % 2 != 0 {
        return Err(GroupingKeyError::OddComponents(go_quote(labels)));
    }
    for (at, pair) in components.chunks(2).enumerate() {
        let (name, value) = (pair[0], pair[1]);
        let trimmed = name.strip_suffix(SUFFIX.as_bytes()).unwrap_or(name);
        let trimmed_str = std::str::from_utf8(trimmed).unwrap_or("");
        if trimmed_str == TTL_LABEL {
            let value = if trimmed.len() == name.len() {
                value.to_vec()
            } else {
                decode_base64(value).map_err(|(_, e)| GroupingKeyError::Ttl(e))?
            };
            if ttl.is_some() {
                return Err(GroupingKeyError::Ttl("given twice".to_string()));
            }
            let value = String::from_utf8(value)
                .map_err(|e| GroupingKeyError::Ttl(format!("{} is not UTF-8", go_quote(e.as_bytes()))))?;
            ttl = Some(parse_ttl(&value)?);
            continue;
        }
        let unescaped = match names {
            Names::Utf8 => unescape_values(trimmed_str),
            Names::Legacy => trimmed_str.into(),
        };
        if !names.label_name_ok(&unescaped) || is_reserved_label_name(trimmed_str) {
            return Err(GroupingKeyError::ImproperLabelName(go_quote(trimmed)));
        }
        let value = if trimmed.len() == name.len() {
            value.to_vec()
        } else {
            decode_base64(value).map_err(|(_, error)| GroupingKeyError::LabelBase64 {
                name: trimmed_str.to_string(),
                value: go_quote(value),
                error,
            })?
        };
        match utf8(value) {
            Ok(value) => {
                not_utf8.remove(unescaped.as_ref());
                out.insert(unescaped.into_owned(), value);
            }
            Err(e) => {
                out.remove(unescaped.as_ref());
                not_utf8.insert(unescaped.into_owned(), (at, e));
            }
        }
    }
    Ok((out, ttl, not_utf8))
}

/// Grouping labels whose last value is not UTF-8: by name, their place in the path and the
/// error.
type NotUtf8Labels = BTreeMap<String, (usize, GroupingKeyError)>;

#[cfg(test)]
mod tests {
    use super::*;

    fn key(pairs: &[(&str, &str)]) -> GroupingKey {
        GroupingKey::new(pairs.iter().map(|(k, v)| (k.to_string(), v.to_string())).collect())
    }

    #[test]
    fn grouping_key_cases() {
        type Case = (&'static str, &'static str, bool, &'static str, Result<GroupingKey, String>);
        let cases: Vec<Case> = vec![
            ("plain job", "j", false, "", Ok(key(&[("job", "j")]))),
            ("trailing slash only", "j", false, "/", Ok(key(&[("job", "j")]))),
            ("one pair", "j", false, "/instance/i", Ok(key(&[("job", "j"), ("instance", "i")]))),
            ("base64 job", "YS9i", true, "", Ok(key(&[("job", "a/b")]))),
            ("base64 job padded", "YS9i==", true, "", Ok(key(&[("job", "a/b")]))),
            ("base64 value unpadded", "g", false, "/v@base64/YQ", Ok(key(&[("job", "g"), ("v", "a")]))),
            ("base64 value padded", "g", false, "/v@base64/YQ==", Ok(key(&[("job", "g"), ("v", "a")]))),
            ("base64 empty value", "g", false, "/v@base64/=", Ok(key(&[("job", "g"), ("v", "")]))),
            ("job pair overridden", "a", false, "/job/b", Ok(key(&[("job", "a")]))),
            ("utf8 value", "t", false, "/name/Προμηθεύς", Ok(key(&[("job", "t"), ("name", "Προμηθεύς")]))),
            ("empty job", "", false, "", Err("job name is required".into())),
            ("base64 empty job", "=", true, "", Err("job name is required".into())),
            (
                "base64 invalid job",
                "!!",
                true,
                "",
                Err("invalid base64 encoding in job name \"\": illegal base64 data at input byte 0".into()),
            ),
            (
                "standard alphabet refused",
                "f",
                false,
                "/v@base64/a+b",
                Err("invalid base64 encoding for label v=\"a+b\": illegal base64 data at input byte 1".into()),
            ),
            ("odd components", "b", false, "/x/1/", Err("odd number of components in label string \"/x/1/\"".into())),
            ("odd single", "c", false, "/d", Err("odd number of components in label string \"/d\"".into())),
            ("digit label name", "a", false, "/1x/b", Err("improper label name \"1x\"".into())),
            ("dash label name", "a", false, "/bad-name/b", Err("improper label name \"bad-name\"".into())),
            ("reserved label name", "a", false, "/__x/b", Err("improper label name \"__x\"".into())),
            ("base64 improper name", "e", false, "/1x@base64/Yg", Err("improper label name \"1x\"".into())),
        ];
        for (name, job, b64, labels, want) in cases {
            let got =
                parse_grouping_key(job.as_bytes(), b64, labels.as_bytes(), Names::Legacy).map_err(|e| e.to_string());
            assert_eq!(got, want, "case {name}");
        }
    }

    /// With `--push.enable-utf8-names`, as upstream 1.11's handler tests have it.
    #[test]
    fn utf8_label_names() {
        let utf8 =
            |labels: &str| parse_grouping_key(b"j", false, labels.as_bytes(), Names::Utf8).map_err(|e| e.to_string());
        let legacy =
            |labels: &str| parse_grouping_key(b"j", false, labels.as_bytes(), Names::Legacy).map_err(|e| e.to_string());
        assert_eq!(
            utf8("/instance/i/U__dotted_2e_label_2e_name/v"),
            Ok(key(&[("job", "j"), ("instance", "i"), ("dotted.label.name", "v")]))
        );
        assert_eq!(
            utf8("/label_name1@base64/bGFiZWwvdmFsdWUx/U__label_2e_name2@base64/bGFiZWwvdmFsdWUy"),
            Ok(key(&[("job", "j"), ("label_name1", "label/value1"), ("label.name2", "label/value2")]))
        );
        assert_eq!(utf8("/U__foo_1f60a_/x"), Ok(key(&[("job", "j"), ("foo😊", "x")])));
        assert_eq!(utf8("/U___55_____/x"), Ok(key(&[("job", "j"), ("U__", "x")])));
        assert_eq!(utf8("/dotted.name/x"), Ok(key(&[("job", "j"), ("dotted.name", "x")])));
        assert_eq!(utf8("/U__in_xxx_valid/x"), Ok(key(&[("job", "j"), ("U__in_xxx_valid", "x")])));
        assert_eq!(utf8("/U__/x"), Err("improper label name \"U__\"".into()));
        assert_eq!(utf8("/__x.y/x"), Err("improper label name \"__x.y\"".into()));
        // Without the flag: the literal name, or upstream's refusal.
        assert_eq!(legacy("/U__foo_2e_bar/x"), Ok(key(&[("job", "j"), ("U__foo_2e_bar", "x")])));
        assert_eq!(legacy("/foo.bar/x"), Err("improper label name \"foo.bar\"".into()));
    }

    /// `__ttl__` names the TTL, anywhere among the labels, and is not part of the key.
    #[test]
    fn the_ttl_label_is_taken_out_of_the_key() {
        let target =
            |labels: &str| parse_push_target(b"j", false, labels.as_bytes(), Names::Legacy).map_err(|e| e.to_string());
        assert_eq!(
            target("/a/1/__ttl__/90s/b/2"),
            Ok((key(&[("job", "j"), ("a", "1"), ("b", "2")]), Some(Ttl(90_000))))
        );
        assert_eq!(target("/__ttl__/1h30m"), Ok((key(&[("job", "j")]), Some(Ttl(5_400_000)))));
        assert_eq!(target("/__ttl__@base64/NW0"), Ok((key(&[("job", "j")]), Some(Ttl(300_000)))), "5m in base64");
        assert_eq!(target("/a/1"), Ok((key(&[("job", "j"), ("a", "1")]), None)));
        for bad in [
            "/__ttl__/0",
            "/__ttl__/-5m",
            "/__ttl__/5",
            "/__ttl__/soon",
            "/__ttl__/1m/__ttl__/2m",
            "/__ttl__/",
            "/__ttl__/99999999999999999999999999y",
        ] {
            let err = target(bad).unwrap_err();
            assert!(err.contains("__ttl__") || err.contains("odd"), "{bad}: {err}");
        }
        assert_eq!(target("/__ttlx__/1m"), Err("improper label name \"__ttlx__\"".into()), "other names stay reserved");
    }

    /// A value that is not UTF-8 is reported only when nothing else in the path is wrong
    /// (upstream takes such a key; its other errors come as they would without it).
    #[test]
    fn invalid_utf8_value_is_refused_after_every_other_error() {
        let key_of = key;
        let err = parse_grouping_key(b"u", false, b"/lbl/\xff", Names::Legacy).unwrap_err();
        assert!(matches!(err, GroupingKeyError::NotUtf8(_)));
        let err = parse_grouping_key(b"\xff", false, b"", Names::Legacy).unwrap_err();
        assert!(matches!(err, GroupingKeyError::NotUtf8(_)));
        let err = parse_grouping_key(b"u", false, b"/lbl/\xff/a-b/1", Names::Legacy).unwrap_err();
        assert_eq!(err.to_string(), "improper label name \"a-b\"");
        let err = parse_grouping_key(b"", false, b"/lbl/\xff", Names::Legacy).unwrap_err();
        assert_eq!(err, GroupingKeyError::JobRequired);
        let err = parse_grouping_key(b"u", false, b"/lbl/\xff/b@base64/!", Names::Legacy).unwrap_err();
        assert!(matches!(err, GroupingKeyError::LabelBase64 { .. }), "{err}");
        // A later value of the same name replaces it, and the job segment a `job` label,
        // as in upstream's map: then the key is UTF-8 (upstream 1.5.1 stores it, asked).
        let key = parse_grouping_key(b"u", false, b"/l/\xff/l/v", Names::Legacy).unwrap();
        assert_eq!(key, key_of(&[("job", "u"), ("l", "v")]));
        let key = parse_grouping_key(b"u", false, b"/job/\xff", Names::Legacy).unwrap();
        assert_eq!(key, key_of(&[("job", "u")]));
        let key = parse_grouping_key(b"u", false, b"/l@base64/_w/l/v", Names::Legacy).unwrap();
        assert_eq!(key, key_of(&[("job", "u"), ("l", "v")]));
        let err = parse_grouping_key(b"u", false, b"/l/v/l/\xff", Names::Legacy).unwrap_err();
        assert!(matches!(err, GroupingKeyError::NotUtf8(_)), "the last value counts");
        let err = parse_grouping_key(b"u", false, b"/a/v/b/\xfe/c/\xff", Names::Legacy).unwrap_err();
        assert_eq!(err.to_string(), "label value \"\\xfe\" in the URL is not valid UTF-8", "the first in the path");
        // A TTL that is not UTF-8 is a bad TTL (a delete naming it must not be a no-op 202).
        let err = parse_push_target(b"u", false, b"/__ttl__/\xff", Names::Legacy).unwrap_err();
        assert!(matches!(err, GroupingKeyError::Ttl(_)), "{err}");
    }
}

#[cfg(test)]
mod properties {
    use super::*;
    use base64::engine::general_purpose::{URL_SAFE, URL_SAFE_NO_PAD};
    use proptest::prelude::*;

    proptest! {
        #![proptest_config(ProptestConfig { cases: std::env::var("PROPTEST_CASES").ok().and_then(|c| c.parse().ok()).unwrap_or(2000), ..ProptestConfig::default() })]

        #[test]
        fn arbitrary_paths_never_panic(job in proptest::collection::vec(any::<u8>(), 0..32), b64 in any::<bool>(), rest in proptest::collection::vec(any::<u8>(), 0..64)) {
            let _ = parse_grouping_key(&job, b64, &rest, Names::Legacy);
            let _ = parse_grouping_key(&job, b64, &rest, Names::Utf8);
        }

        /// Any value survives base64 in the URL, padded or not.
        #[test]
        fn base64_values_round_trip(value in "\\PC{0,24}", padded in any::<bool>()) {
            let encoded = if value.is_empty() { "=".to_string() } else if padded { URL_SAFE.encode(&value) } else { URL_SAFE_NO_PAD.encode(&value) };
            let rest = format!("/v@base64/{encoded}");
            let key = parse_grouping_key(b"j", false, rest.as_bytes(), Names::Legacy).unwrap();
            prop_assert_eq!(key.labels().get("v"), Some(&value));
        }
    }
}
