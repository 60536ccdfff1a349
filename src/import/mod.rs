//! Import of upstream's persistence file (`--persistence.file`): the gob encoding of its
//! `map[string]MetricGroup` (storage/interface.go, the same from 1.0 to 1.11), each group
//! its grouping labels and, per family name, the time of the push that last wrote the
//! family and the family as protobuf bytes, `push_time_seconds` and
//! `push_failure_time_seconds` among them.
//!
//! A group becomes the pushes that rebuild it as upstream holds it: a `PUT` at the
//! group's creation (the earliest time it carries), then one `POST` per push time of its
//! families (the families that share a time came in one push), an empty `POST` at its last
//! push time if that push left no family, and a failed push at its last failure time. The
//! commands are judged by `apply` like any push; the caller proposes all of them as one
//! log entry, so every node gets the whole file or nothing of it.

pub mod gob;

use std::collections::BTreeMap;

use model::check::Names;
use model::group::{PUSH_FAILURE_TIME_NAME, PUSH_TIME_NAME};
use model::{GroupingKey, PushLimits, PushedFamilies, UnixNanos};

use crate::exposition::protobuf;
use gob::{go_time_unix_nanos, GobValue};

/// The largest file imported (bytes): it becomes one log entry, replicated to every node,
/// so it is held to the size of the largest push (`--push.max-body-bytes`' default).
pub const MAX_FILE_BYTES: usize = 64 * 1024 * 1024;

/// Why a file could not be imported. Nothing of it is stored.
#[derive(Debug, thiserror::Error)]
pub enum ImportError {
    #[error("the file is {0} bytes; at most {MAX_FILE_BYTES} are imported")]
    TooLarge(usize),
    #[error("not an upstream persistence file: {0}")]
    Gob(#[from] gob::GobError),
    #[error("not an upstream persistence file: {0}")]
    Shape(String),
    /// A group whose families this server would refuse as a push.
    #[error("group {labels:?}: {reason}")]
    Group { labels: BTreeMap<String, String>, reason: String },
}

/// One group of the file.
#[derive(Debug, Clone, PartialEq)]
pub struct FileGroup {
    pub labels: BTreeMap<String, String>,
    /// `(name, time of the push that wrote it, encoded MetricFamily)`.
    pub families: Vec<(String, Option<UnixNanos>, Vec<u8>)>,
}

/// One push that rebuilds part of a group: what a push handler would have judged.
#[derive(Debug, Clone)]
pub struct ImportPush {
    pub key: GroupingKey,
    pub families: PushedFamilies,
    pub replace: bool,
    pub time: UnixNanos,
    /// Set for the push that records the group's last failure: `apply` refuses it and
    /// records the time, as it records a failed push.
    pub defect: Option<String>,
}

/// The message a recorded failure carries.
pub const FAILURE_RECORD: &str = "the last push to this group failed before it was imported from upstream's file";

/// Reads the groups of an upstream persistence file.
pub fn read_file(bytes: &[u8]) -> Result<Vec<FileGroup>, ImportError> {
    if bytes.len() > MAX_FILE_BYTES {
        return Err(ImportError::TooLarge(bytes.len()));
    }
    let shape = |what: &str| ImportError::Shape(format!("expected {what}"));
    let GobValue::Map(groups) = gob::decode_value(bytes)? else { return Err(shape("a map of groups")) };
    let mut out = Vec::with_capacity(groups.len());
    for (_, group) in groups {
        let mut labels = BTreeMap::new();
        match group.field("Labels") {
            Some(GobValue::Map(entries)) => {
                for (k, v) in entries {
                    let (GobValue::String(k), GobValue::String(v)) = (k, v) else {
                        return Err(shape("string labels"));
                    };
                    labels.insert(k.clone(), v.clone());
                }
            }
            None => {}
            Some(_) => return Err(shape("a map of labels")),
        }
        let mut families = Vec::new();
        match group.field("Metrics") {
            Some(GobValue::Map(entries)) => {
                for (name, family) in entries {
                    let GobValue::String(name) = name else { return Err(shape("family names")) };
                    let time = match family.field("Timestamp") {
                        None => None,
                        Some(GobValue::Encoded(t)) => {
                            Some(UnixNanos(go_time_unix_nanos(t).ok_or_else(|| shape("a Go time of 15 or 16 bytes"))?))
                        }
                        Some(_) => return Err(shape("an encoded time")),
                    };
                    let encoded = match family.field("GobbableMetricFamily") {
                        Some(GobValue::Encoded(b)) => b.clone(),
                        None => continue,
                        Some(_) => return Err(shape("an encoded MetricFamily")),
                    };
                    families.push((name.clone(), time, encoded));
                }
            }
            None => {}
            Some(_) => return Err(shape("a map of families")),
        }
        out.push(FileGroup { labels, families });
    }
    Ok(out)
}

impl FileGroup {
    /// The pushes that rebuild this group, judged against `limits` as pushes are.
    pub fn pushes(&self, limits: &PushLimits) -> Result<Vec<ImportPush>, ImportError> {
        let key = GroupingKey::new(self.labels.clone());
        let refused = |reason: String| ImportError::Group { labels: self.labels.clone(), reason };
        let decode = |encoded: &[&[u8]]| -> Result<PushedFamilies, ImportError> {
            let mut delimited = Vec::with_capacity(encoded.iter().map(|e| e.len() + 10).sum());
            for e in encoded {
                prost::encoding::encode_varint(e.len() as u64, &mut delimited);
                delimited.extend_from_slice(e);
            }
            let decoded = protobuf::parse_delimited_within(&delimited, limits).map_err(|e| refused(e.to_string()))?;
            if let Some(defect) = decoded.defect(&key) {
                return Err(refused(defect));
            }
            Ok(decoded.families)
        };
        // The two timestamp families: their value says whether the time was ever set, the
        // family's push time is that time exactly (or, never set, the group's creation).
        let set_time = |name: &str| -> Result<Option<UnixNanos>, ImportError> {
            let Some((_, time, encoded)) = self.families.iter().find(|(n, _, _)| n == name) else { return Ok(None) };
            let family = decode(&[encoded])?;
            let value = family.values().next().and_then(|f| f.metrics.first()).and_then(|m| m.value.scalar());
            Ok(if value.unwrap_or(0.0) != 0.0 { *time } else { None })
        };
        let pushed = set_time(PUSH_TIME_NAME)?;
        let failed = set_time(PUSH_FAILURE_TIME_NAME)?;
        let Some(created) = self.families.iter().filter_map(|(_, t, _)| *t).min() else {
            return Err(refused("the group carries no push time".into()));
        };

        let mut by_time: BTreeMap<UnixNanos, Vec<&[u8]>> = BTreeMap::new();
        for (name, time, encoded) in &self.families {
            if name != PUSH_TIME_NAME && name != PUSH_FAILURE_TIME_NAME {
                by_time.entry(time.unwrap_or(created)).or_default().push(encoded);
            }
        }
        let push = |families, replace, time, defect| ImportPush { key: key.clone(), families, replace, time, defect };
        let mut out = Vec::new();
        let failure = |time| push(PushedFamilies::new(), false, time, Some(FAILURE_RECORD.to_string()));
        // Created by a failed push and never pushed to successfully: the failures alone.
        let only_failed = pushed.is_none() && by_time.is_empty();
        if only_failed {
            out.push(failure(created));
        } else {
            out.push(push(PushedFamilies::new(), true, created, None));
            let mut last = created;
            for (time, encoded) in by_time {
                out.push(push(decode(&encoded)?, false, time, None));
                last = time;
            }
            if let Some(time) = pushed.filter(|t| *t > last) {
                out.push(push(PushedFamilies::new(), false, time, None));
            }
        }
        if let Some(time) = failed.filter(|t| !(only_failed && *t == created)) {
            out.push(failure(time));
        }
        for p in &out {
            limits.check(&p.key, &p.families).map_err(|e| refused(e.to_string()))?;
        }
        Ok(out)
    }

    /// Whether every name in the group passes the legacy rules (else the pushes need the
    /// UTF-8 rules, which upstream 1.11 with `--push.enable-utf8-names` may have stored).
    pub fn names(pushes: &[ImportPush]) -> Names {
        if pushes.iter().all(|p| model::check::legacy_names_only(&p.key, &p.families)) {
            Names::Legacy
        } else {
            Names::Utf8
        }
    }
}

#[cfg(test)]
mod tests;
