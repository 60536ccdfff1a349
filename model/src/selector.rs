//! Label matchers on grouping keys, as Prometheus writes them: `{job="a", instance=~"db-.*"}`.
//! What [`crate::Command::DeleteMatching`] carries and judges.
//!
//! A group matches a selector when every matcher of the selector holds for its grouping
//! labels; a label the key does not have reads as the empty string (as in Prometheus).
//! Regular expressions are fully anchored, `.` matches a newline (Prometheus compiles
//! `^(?s:re)$`), and run in time linear in the label value (the `regex` crate is a finite
//! automaton, without backtracking). Their syntax is RE2's, which the `regex` crate follows.
//!
//! Every bound is pinned here, so a selector is judged alike by every build of the same
//! replicated-format version: [`MAX_SELECTORS`], [`MAX_MATCHERS`], [`MAX_VALUE_BYTES`], and
//! the size a compiled expression may take in `apply` ([`APPLY_REGEX_BYTES`]). The HTTP side
//! refuses anything above the much smaller [`PROPOSE_REGEX_BYTES`] before proposing, so what
//! reaches the log compiles with room to spare.

use std::fmt;

use serde::{Deserialize, Serialize};

use crate::grouping_key::GroupingKey;

/// At most this many selectors in one command (groups matching any of them are chosen).
pub const MAX_SELECTORS: usize = 16;
/// At most this many matchers in one selector.
pub const MAX_MATCHERS: usize = 32;
/// At most this many bytes in a matcher's label name or value.
pub const MAX_VALUE_BYTES: usize = 4096;
/// What one compiled expression may take when `apply` compiles it.
pub const APPLY_REGEX_BYTES: usize = 16 << 20;
/// What one compiled expression may take when a request is judged before proposing.
pub const PROPOSE_REGEX_BYTES: usize = 1 << 20;

/// How a matcher compares.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub enum MatchOp {
    /// `=`
    Equal,
    /// `!=`
    NotEqual,
    /// `=~`
    Regex,
    /// `!~`
    NotRegex,
}

impl MatchOp {
    fn text(self) -> &'static str {
        match self {
            MatchOp::Equal => "=",
            MatchOp::NotEqual => "!=",
            MatchOp::Regex => "=~",
            MatchOp::NotRegex => "!~",
        }
    }
}

/// One matcher: a label name, how it compares, and the value or expression.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct LabelMatcher {
    pub name: String,
    pub op: MatchOp,
    pub value: String,
}

/// Matchers that must all hold.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct Selector {
    pub matchers: Vec<LabelMatcher>,
}

impl fmt::Display for Selector {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str("{")?;
        for (i, m) in self.matchers.iter().enumerate() {
            if i > 0 {
                f.write_str(", ")?;
            }
            write!(f, "{}{}{:?}", m.name, m.op.text(), m.value)?;
        }
        f.write_str("}")
    }
}

/// Selectors compiled to be evaluated against grouping keys; a key is chosen when any
/// selector matches it.
pub struct Compiled {
    selectors: Vec<Vec<(String, Test)>>,
}

enum Test {
    Equal(String, bool),
    Regex(regex::Regex, bool),
}

/// Compiles `selectors` within the pinned bounds, expressions limited to `regex_bytes`
/// each. The error says what is wrong, in words for the client.
pub fn compile(selectors: &[Selector], regex_bytes: usize) -> Result<Compiled, String> {
    if selectors.is_empty() {
        return Err("no selector: give at least one match[] such as {job=\"a\"}".into());
    }
    if selectors.len() > MAX_SELECTORS {
        return Err(format!("{} selectors; at most {MAX_SELECTORS} are allowed", selectors.len()));
    }
    let mut compiled = Vec::with_capacity(selectors.len());
    for selector in selectors {
        if selector.matchers.is_empty() {
            return Err("an empty selector {} would match every group; to delete every group, use the wipe".into());
        }
        if selector.matchers.len() > MAX_MATCHERS {
            return Err(format!("selector {selector} has more than {MAX_MATCHERS} matchers"));
        }
        let mut tests = Vec::with_capacity(selector.matchers.len());
        for m in &selector.matchers {
            if m.name.len() > MAX_VALUE_BYTES || m.value.len() > MAX_VALUE_BYTES {
                return Err(format!("a matcher of {selector} is longer than {MAX_VALUE_BYTES} bytes"));
            }
            let test = match m.op {
                MatchOp::Equal | MatchOp::NotEqual => Test::Equal(m.value.clone(), m.op == MatchOp::Equal),
                MatchOp::Regex | MatchOp::NotRegex => {
                    let re = regex::RegexBuilder::new(&format!("^(?s:{})$", m.value))
                        .size_limit(regex_bytes)
                        .dfa_size_limit(regex_bytes)
                        .build()
                        .map_err(|e| format!("matcher {}{}{:?}: {e}", m.name, m.op.text(), m.value))?;
                    Test::Regex(re, m.op == MatchOp::Regex)
                }
            };
            tests.push((m.name.clone(), test));
        }
        if tests.iter().all(|(_, t)| t.holds("")) {
            return Err(format!(
                "selector {selector} matches a group that lacks its labels, so every group of some job: at least \
                 one matcher must need a non-empty value (as Prometheus requires)"
            ));
        }
        compiled.push(tests);
    }
    Ok(Compiled { selectors: compiled })
}

impl Test {
    fn holds(&self, value: &str) -> bool {
        match self {
            Test::Equal(v, want) => (v == value) == *want,
            Test::Regex(re, want) => re.is_match(value) == *want,
        }
    }
}

impl Compiled {
    /// Whether any selector matches `key`: linear in the matchers and the label values.
    pub fn matches(&self, key: &GroupingKey) -> bool {
        self.selectors.iter().any(|tests| {
            tests.iter().all(|(name, test)| test.holds(key.labels().get(name).map(String::as_str).unwrap_or("")))
        })
    }
}

/// Parses one selector in Prometheus's form, `{name op "value", …}`: names as Prometheus
/// allows them (or quoted), values quoted with `"`, `'` or `` ` `` and Go's escapes, a
/// trailing comma allowed. A metric name before the braces is refused: groups have none.
pub fn parse(text: &str) -> Result<Selector, String> {
    let mut p = Parser { s: text.as_bytes(), i: 0 };
    p.space();
    if p.peek() != Some(b'{') {
        return Err(format!(
            "selector {text:?}: expected '{{': a selector of groups is only label matchers, e.g. {{job=\"a\"}}"
        ));
    }
    p.i += 1;
    let mut matchers = Vec::new();
    loop {
        p.space();
        if p.peek() == Some(b'}') {
            p.i += 1;
            break;
        }
        let name = match p.peek() {
            Some(b'"' | b'\'' | b'`') => p.string().map_err(|e| format!("selector {text:?}: {e}"))?,
            _ => p.name().ok_or_else(|| format!("selector {text:?}: expected a label name at byte {}", p.i))?,
        };
        p.space();
        let op = if p.eat("=~") {
            MatchOp::Regex
        } else if p.eat("!~") {
            MatchOp::NotRegex
        } else if p.eat("!=") {
            MatchOp::NotEqual
        } else if p.eat("=") {
            MatchOp::Equal
        } else {
            return Err(format!("selector {text:?}: expected =, !=, =~ or !~ after {name:?}"));
        };
        p.space();
        let value = p.string().map_err(|e| format!("selector {text:?}: {e}"))?;
        matchers.push(LabelMatcher { name, op, value });
        p.space();
        match p.peek() {
            Some(b',') => p.i += 1,
            Some(b'}') => {}
            _ => return Err(format!("selector {text:?}: expected ',' or '}}' at byte {}", p.i)),
        }
    }
    p.space();
    if p.i != p.s.len() {
        return Err(format!("selector {text:?}: unexpected text after '}}'"));
    }
    Ok(Selector { matchers })
}

struct Parser<'a> {
    s: &'a [u8],
    i: usize,
}

impl Parser<'_> {
    fn peek(&self) -> Option<u8> {
        self.s.get(self.i).copied()
    }

    fn space(&mut self) {
        while matches!(self.peek(), Some(b' ' | b'\t' | b'\n' | b'\r')) {
            self.i += 1;
        }
    }

    fn eat(&mut self, token: &str) -> bool {
        if self.s[self.i..].starts_with(token.as_bytes()) {
            self.i += token.len();
            true
        } else {
            false
        }
    }

    fn name(&mut self) -> Option<String> {
        let start = self.i;
        while let Some(b) = self.peek() {
            let ok = b.is_ascii_alphabetic() || b == b'_' || (self.i > start && b.is_ascii_digit());
            if !ok {
                break;
            }
            self.i += 1;
        }
        (self.i > start).then(|| String::from_utf8_lossy(&self.s[start..self.i]).into_owned())
    }

    /// A quoted string as Go's `strconv.Unquote` reads it (PromQL's rule): `"…"` and `'…'`
    /// with escapes, `` `…` `` raw.
    fn string(&mut self) -> Result<String, String> {
        let quote = self.peek().filter(|q| matches!(q, b'"' | b'\'' | b'`')).ok_or("expected a quoted value")?;
        self.i += 1;
        let mut out: Vec<u8> = Vec::new();
        loop {
            let b = self.peek().ok_or("unterminated quoted string")?;
            self.i += 1;
            if b == quote {
                break;
            }
            if b == b'\n' && quote != b'`' {
                return Err("a newline in a quoted string".into());
            }
            if b != b'\\' || quote == b'`' {
                out.push(b);
                continue;
            }
            let e = self.peek().ok_or("unterminated escape")?;
            self.i += 1;
            let simple = match e {
                b'a' => Some(7),
                b'b' => Some(8),
                b'f' => Some(12),
                b'n' => Some(b'\n'),
                b'r' => Some(b'\r'),
                b't' => Some(b'\t'),
                b'v' => Some(11),
                b'\\' => Some(b'\\'),
                b'"' | b'\'' if e == quote => Some(e),
                _ => None,
            };
            if let Some(c) = simple {
                out.push(c);
                continue;
            }
            let (digits, radix) = match e {
                b'x' => (2, 16),
                b'u' => (4, 16),
                b'U' => (8, 16),
                b'0'..=b'7' => {
                    self.i -= 1;
                    (3, 8)
                }
                _ => return Err(format!("unknown escape \\{}", e as char)),
            };
            let end = self.i + digits;
            let text = self.s.get(self.i..end).ok_or("unterminated escape")?;
            let text = std::str::from_utf8(text).map_err(|_| "invalid escape")?;
            let n = u32::from_str_radix(text, radix).map_err(|_| format!("invalid escape {text:?}"))?;
            self.i = end;
            if e == b'x' || radix == 8 {
                if n > 255 {
                    return Err(format!("invalid octal escape {text:?}"));
                }
                out.push(n as u8);
            } else {
                let c = char::from_u32(n).ok_or_else(|| format!("invalid code point escape {text:?}"))?;
                let mut buf = [0; 4];
                out.extend_from_slice(c.encode_utf8(&mut buf).as_bytes());
            }
        }
        String::from_utf8(out).map_err(|_| "a quoted string that is not UTF-8".to_string())
    }
}

#[cfg(test)]
mod tests {
    use std::collections::BTreeMap;

    use super::*;

    fn key(pairs: &[(&str, &str)]) -> GroupingKey {
        GroupingKey::new(pairs.iter().map(|(k, v)| (k.to_string(), v.to_string())).collect::<BTreeMap<_, _>>())
    }

    fn chosen(selectors: &[&str], k: &GroupingKey) -> bool {
        let parsed: Vec<Selector> = selectors.iter().map(|s| parse(s).unwrap()).collect();
        compile(&parsed, PROPOSE_REGEX_BYTES).unwrap().matches(k)
    }

    #[test]
    fn parses_prometheus_selectors() {
        let s = parse(r#"{job="a", instance=~'db-.*' , x!=`raw\n`, "quoted name"!~"\x41\u00e9\101",}"#).unwrap();
        let m = |name: &str, op, value: &str| LabelMatcher { name: name.into(), op, value: value.into() };
        assert_eq!(
            s.matchers,
            vec![
                m("job", MatchOp::Equal, "a"),
                m("instance", MatchOp::Regex, "db-.*"),
                m("x", MatchOp::NotEqual, "raw\\n"),
                m("quoted name", MatchOp::NotRegex, "AéA"),
            ]
        );
        assert_eq!(parse("{}").unwrap().matchers, vec![]);
        for bad in [
            "job=\"a\"",
            "up{job=\"a\"}",
            "{job=\"a\"",
            "{job==\"a\"}",
            "{job=a}",
            "{job=\"a\"} x",
            "{9job=\"a\"}",
            "{job=\"\\q\"}",
            "{job=\"a\" instance=\"b\"}",
            "{job=\"\\xZZ\"}",
        ] {
            assert!(parse(bad).is_err(), "{bad} should be refused");
        }
    }

    #[test]
    fn matches_as_prometheus_does() {
        let k = key(&[("job", "batch"), ("shard", "7")]);
        assert!(chosen(&[r#"{job="batch"}"#], &k));
        assert!(!chosen(&[r#"{job="batc"}"#], &k));
        assert!(chosen(&[r#"{job=~"bat.*"}"#], &k));
        assert!(!chosen(&[r#"{job=~"bat"}"#], &k), "anchored");
        assert!(!chosen(&[r#"{job=~"atc"}"#], &k), "anchored at both ends");
        assert!(chosen(&[r#"{job="batch", shard!~"[0-6]"}"#], &k));
        assert!(!chosen(&[r#"{job="batch", shard!="7"}"#], &k), "all matchers of a selector");
        assert!(chosen(&[r#"{job="other"}"#, r#"{shard="7"}"#], &k), "any selector");
        assert!(chosen(&[r#"{job="batch", instance=""}"#], &k), "an absent label is empty");
        assert!(chosen(&[r#"{job="batch", instance!~".+"}"#], &k));
        let newline = key(&[("job", "a\nb")]);
        assert!(chosen(&[r#"{job=~"a.b"}"#], &newline), "dot matches a newline");
    }

    #[test]
    fn refuses_selectors_that_would_match_everything_or_cost_too_much() {
        let refused = |s: &str| compile(&[parse(s).unwrap()], PROPOSE_REGEX_BYTES).err().unwrap();
        assert!(refused("{}").contains("wipe"));
        assert!(refused(r#"{job=~".*"}"#).contains("non-empty"));
        assert!(refused(r#"{job!="a"}"#).contains("non-empty"));
        assert!(refused(r#"{job=~"("}"#).contains("matcher"));
        assert!(refused(r#"{job=~"((a{100}){100}){100}"}"#).contains("matcher"), "too big compiled");
        let many =
            Selector { matchers: vec![LabelMatcher { name: "job".into(), op: MatchOp::Equal, value: "a".into() }; 33] };
        assert!(compile(&[many], PROPOSE_REGEX_BYTES).is_err());
        assert!(compile(&[], PROPOSE_REGEX_BYTES).is_err());
        let long = Selector {
            matchers: vec![LabelMatcher { name: "job".into(), op: MatchOp::Equal, value: "a".repeat(4097) }],
        };
        assert!(compile(&[long], PROPOSE_REGEX_BYTES).is_err());
    }
}
