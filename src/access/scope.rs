//! Push rules: the groups a principal may push to and delete. A rule matches a grouping
//! key when its job pattern matches the job and each of its label patterns matches that
//! label's value (a label the key does not have counts as `""`); a principal with rules
//! may change a group when any rule matches it. Pure: keys and patterns in, verdicts out.

use std::collections::BTreeMap;
use std::fmt;

use model::GroupingKey;

/// A pattern on one value, matching the whole value.
#[derive(Clone, Debug)]
pub enum Pattern {
    /// `*` is any run of characters (none included), `?` exactly one; every other
    /// character stands for itself.
    Glob(String),
    /// A regular expression (Rust's `regex` syntax, which is RE2's, as Prometheus'),
    /// anchored at both ends as Prometheus anchors relabelling regexes.
    Regex { source: String, regex: regex::Regex },
}

impl Pattern {
    /// `source` anchored: `^(?:source)$`.
    pub fn regex(source: &str) -> Result<Pattern, regex::Error> {
        let regex = regex::Regex::new(&format!("^(?:{source})$"))?;
        Ok(Pattern::Regex { source: source.to_string(), regex })
    }

    pub fn matches(&self, value: &str) -> bool {
        match self {
            Pattern::Glob(glob) => glob_matches(glob, value),
            Pattern::Regex { regex, .. } => regex.is_match(value),
        }
    }
}

/// How a refusal names the pattern: `"batch-*"`, `matching "nightly-.+"`.
impl fmt::Display for Pattern {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            Pattern::Glob(glob) => write!(f, "{glob:?}"),
            Pattern::Regex { source, .. } => write!(f, "matching {source:?}"),
        }
    }
}

/// Whether `glob` matches all of `value`. Linear in the value for each `*` tried: the
/// last `*` seen absorbs one more character at each mismatch.
fn glob_matches(glob: &str, value: &str) -> bool {
    let glob: Vec<char> = glob.chars().collect();
    let value: Vec<char> = value.chars().collect();
    let (mut g, mut v) = (0, 0);
    // The last `*` seen and the position in the value it absorbs up to.
    let mut star: Option<(usize, usize)> = None;
    while v < value.len() {
        match glob.get(g) {
            Some('*') => {
                star = Some((g, v));
                g += 1;
            }
            Some(&c) if c == '?' || c == value[v] => {
                g += 1;
                v += 1;
            }
            _ => match star {
                Some((star_g, star_v)) => {
                    star = Some((star_g, star_v + 1));
                    g = star_g + 1;
                    v = star_v + 1;
                }
                None => return false,
            },
        }
    }
    glob[g..].iter().all(|&c| c == '*')
}

/// One rule: the job and, optionally, other grouping labels.
#[derive(Clone, Debug)]
pub struct PushRule {
    pub job: Pattern,
    /// Label name to the pattern its value must match (`job` is not among them).
    pub labels: BTreeMap<String, Pattern>,
}

impl PushRule {
    pub fn matches(&self, key: &GroupingKey) -> bool {
        self.job.matches(key.job())
            && self
                .labels
                .iter()
                .all(|(name, pattern)| pattern.matches(key.labels().get(name).map(String::as_str).unwrap_or("")))
    }
}

/// `job "batch-*" with shard "*"`.
impl fmt::Display for PushRule {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "job {}", self.job)?;
        for (i, (name, pattern)) in self.labels.iter().enumerate() {
            let joint = if i == 0 { "with" } else { "and" };
            write!(f, " {joint} {name} {pattern}")?;
        }
        Ok(())
    }
}

/// The rules of one principal, at least one: a group is allowed when any matches.
#[derive(Clone, Debug)]
pub struct PushScope {
    rules: Vec<PushRule>,
}

impl PushScope {
    /// `None` for no rules: a scope that allows nothing is a mistake, not a setting.
    pub fn new(rules: Vec<PushRule>) -> Option<PushScope> {
        (!rules.is_empty()).then_some(PushScope { rules })
    }

    pub fn allows(&self, key: &GroupingKey) -> bool {
        self.rules.iter().any(|rule| rule.matches(key))
    }
}

/// The rules joined by `; `.
impl fmt::Display for PushScope {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        for (i, rule) in self.rules.iter().enumerate() {
            if i > 0 {
                f.write_str("; ")?;
            }
            write!(f, "{rule}")?;
        }
        Ok(())
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn key(labels: &[(&str, &str)]) -> GroupingKey {
        GroupingKey::new(labels.iter().map(|(k, v)| (k.to_string(), v.to_string())).collect())
    }

    fn glob(text: &str) -> Pattern {
        Pattern::Glob(text.to_string())
    }

    #[test]
    fn globs_match_whole_values() {
        let cases = [
            // (glob, value, matches)
            ("batch-*", "batch-1", true),
            ("batch-*", "batch-", true),
            ("batch-*", "nightly-batch-1", false),
            ("batch", "batch-1", false),
            ("*-batch", "x-batch", true),
            ("a?c", "abc", true),
            ("a?c", "ac", false),
            ("a?c", "abbc", false),
            ("*", "", true),
            ("*", "anything/with/slashes", true),
            ("", "", true),
            ("", "a", false),
            ("a*b*c", "aXbYbZc", true),
            ("a*b*c", "aXbYbZ", false),
            ("**a", "a", true),
            ("é?", "éü", true),
        ];
        for (i, (g, value, want)) in cases.into_iter().enumerate() {
            assert_eq!(glob(g).matches(value), want, "case {}: {g:?} on {value:?}", i + 1);
        }
    }

    /// Anchored at both ends, as Prometheus anchors relabelling regexes: a regex that
    /// matches part of the value does not match the value.
    #[test]
    fn regexes_are_anchored() {
        let re = Pattern::regex("nightly-.+").unwrap();
        assert!(re.matches("nightly-1"));
        assert!(!re.matches("nightly-"));
        assert!(!re.matches("x-nightly-1"), "anchored at the start");
        assert!(!re.matches("nightly-1\nother"), "anchored at the end, `.` stops at a newline");
        let alternation = Pattern::regex("a|b").unwrap();
        assert!(alternation.matches("a") && alternation.matches("b"));
        assert!(!alternation.matches("ab"), "the alternation is grouped before anchoring");
        assert!(Pattern::regex("(").is_err());
    }

    #[test]
    fn a_rule_matches_the_job_and_its_labels_with_an_absent_label_as_empty() {
        let mut labels = BTreeMap::new();
        labels.insert("shard".to_string(), glob("*"));
        let any_shard = PushRule { job: glob("batch-*"), labels };
        assert!(any_shard.matches(&key(&[("job", "batch-1"), ("shard", "3")])));
        assert!(any_shard.matches(&key(&[("job", "batch-1")])), "`*` matches the absent label's \"\"");
        assert!(!any_shard.matches(&key(&[("job", "other"), ("shard", "3")])));

        let mut labels = BTreeMap::new();
        labels.insert("shard".to_string(), Pattern::regex("[0-9]+").unwrap());
        let numbered = PushRule { job: glob("*"), labels };
        assert!(numbered.matches(&key(&[("job", "a"), ("shard", "12")])));
        assert!(!numbered.matches(&key(&[("job", "a"), ("shard", "x12")])));
        assert!(!numbered.matches(&key(&[("job", "a")])), "an absent label is \"\", which [0-9]+ does not match");

        let mut labels = BTreeMap::new();
        labels.insert("zone".to_string(), glob(""));
        let no_zone = PushRule { job: glob("a"), labels };
        assert!(no_zone.matches(&key(&[("job", "a")])));
        assert!(no_zone.matches(&key(&[("job", "a"), ("zone", "")])));
        assert!(!no_zone.matches(&key(&[("job", "a"), ("zone", "eu")])));
        assert!(no_zone.matches(&key(&[("job", "a"), ("other", "x")])), "labels not named are free");
    }

    #[test]
    fn a_scope_allows_what_any_rule_matches_and_names_its_rules() {
        let mut labels = BTreeMap::new();
        labels.insert("shard".to_string(), glob("*"));
        labels.insert("zone".to_string(), Pattern::regex("eu-.*").unwrap());
        let scope = PushScope::new(vec![
            PushRule { job: glob("a"), labels: BTreeMap::new() },
            PushRule { job: Pattern::regex("nightly-.+").unwrap(), labels },
        ])
        .unwrap();
        assert!(scope.allows(&key(&[("job", "a")])));
        assert!(scope.allows(&key(&[("job", "nightly-1"), ("zone", "eu-west")])));
        assert!(!scope.allows(&key(&[("job", "nightly-1"), ("zone", "us-east")])));
        assert!(!scope.allows(&key(&[("job", "b")])));
        assert_eq!(scope.to_string(), r#"job "a"; job matching "nightly-.+" with shard "*" and zone matching "eu-.*""#);
        assert!(PushScope::new(Vec::new()).is_none());
    }
}
