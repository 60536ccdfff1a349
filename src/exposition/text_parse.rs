//! Parser for the Prometheus text exposition format 0.0.4, as pushed to the gateway.
//!
//! It follows the reference parser (`expfmt.TextParser` of prometheus/common) rule for
//! rule, so a body is accepted or refused, and refused with the same message
//! (`text format parsing error in line N: ...`), exactly as upstream does it: the last
//! line must end with `\n`, CR is part of a value, TYPE keywords are case-insensitive,
//! HELP may follow samples but TYPE may not, `_sum`/`_count`/`_bucket` samples join
//! their summary or histogram, families without samples are dropped.

use std::collections::{HashMap, HashSet};
use std::fmt;

use model::check::Names;
use model::{
    Bucket, HistogramValue, LabelPair, Metric, MetricFamily, MetricType, PushLimits, PushedFamilies, Quantile,
    SummaryValue, Timestamp, Value,
};

/// Why a body is not valid text format.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum TextParseError {
    /// A syntax error at a line, printed as upstream prints it.
    Line { line: usize, message: String },
    /// A sample of a family whose type cannot hold samples in this format.
    UnexpectedType { name: String },
    /// The body holds more series, or a line more labels, than a push may carry: found
    /// while parsing, so such a body is refused before it is all in memory.
    Limit(model::LimitExceeded),
}

impl fmt::Display for TextParseError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            TextParseError::Line { line, message } => write!(f, "text format parsing error in line {line}: {message}"),
            TextParseError::UnexpectedType { name } => write!(f, "unexpected type for metric name {}", go_quote(name)),
            TextParseError::Limit(exceeded) => exceeded.fmt(f),
        }
    }
}

impl std::error::Error for TextParseError {}

/// Parses a whole body. Families are keyed by name. Bounded by [`PushLimits::CEILING`].
pub fn parse_text(input: &[u8]) -> Result<PushedFamilies, TextParseError> {
    parse_text_within(input, &PushLimits::CEILING, Names::Legacy)
}

/// Parses a whole body, refusing it as soon as it holds more series, or a line more
/// labels, than `limits` allow: what the parser keeps stays within the limits whatever
/// the body's size. (The other limits are judged on the parsed push.)
///
/// With [`Names::Legacy`] this is upstream 1.5.1's parser. With [`Names::Utf8`]
/// (`--push.enable-utf8-names`) it is 1.11's: metric and label names may be quoted
/// (`"my.metric"{"a.b"="v"} 1`, `{"my.metric",a="v"} 1`, `# TYPE "my.metric" counter`)
/// and any non-empty UTF-8 name is valid.
pub fn parse_text_within(input: &[u8], limits: &PushLimits, names: Names) -> Result<PushedFamilies, TextParseError> {
    let mut p = Parser {
        names,
        input,
        pos: 0,
        byte: 0,
        line: 0,
        families: Vec::new(),
        by_name: HashMap::new(),
        limits: *limits,
        series: 0,
    };
    p.run()?;
    Ok(p.families
        .into_iter()
        .filter(|f| !f.family.metrics.is_empty())
        .map(|f| (f.family.name.clone(), f.family))
        .collect())
}

/// A family being built, with the summary/histogram series seen so far (by their
/// labels without `quantile`/`le`), so `_sum`, `_count` and further quantiles or
/// buckets land in the same series.
struct Building {
    family: MetricFamily,
    type_set: bool,
    series_index: HashMap<Vec<LabelPair>, usize>,
}

/// What a sample's labels are judged by: its family's type and name.
struct LabelsOf<'a> {
    metric_type: MetricType,
    family_name: &'a str,
}

/// Which part of a summary/histogram a sample line fills.
#[derive(Clone, Copy, PartialEq, Eq)]
enum Part {
    Plain,
    Count,
    Sum,
}

struct Parser<'a> {
    /// The name rules, and with them the quoted-name syntax.
    names: Names,
    input: &'a [u8],
    pos: usize,
    /// The current byte (Go's `currentByte`), valid after a successful `next`.
    byte: u8,
    line: usize,
    families: Vec<Building>,
    by_name: HashMap<String, usize>,
    limits: PushLimits,
    /// Series created so far.
    series: usize,
}

/// End of input where more was needed; becomes "unexpected end of input stream".
struct Eof;

enum Stop {
    Eof,
    Err(TextParseError),
}

impl From<Eof> for Stop {
    fn from(_: Eof) -> Self {
        Stop::Eof
    }
}

type Step<T> = Result<T, Stop>;

fn is_blank_or_tab(b: u8) -> bool {
    b == b' ' || b == b'\t'
}

fn is_metric_name_start(b: u8) -> bool {
    b.is_ascii_alphabetic() || b == b'_' || b == b':'
}

fn is_metric_name_continuation(b: u8) -> bool {
    is_metric_name_start(b) || b.is_ascii_digit()
}

fn is_label_name_start(b: u8) -> bool {
    b.is_ascii_alphabetic() || b == b'_'
}

fn is_label_name_continuation(b: u8) -> bool {
    is_label_name_start(b) || b.is_ascii_digit()
}

/// Whether Go's `unicode.IsPrint` calls `c` printable: a letter, mark, number, punctuation
/// or symbol, or the ASCII space (from the Unicode version of `printable.rs`; Go 1.19,
/// which built upstream 1.5.1, has Unicode 13: characters first assigned in 14 are
/// printable here and escaped there).
pub fn is_go_printable(c: char) -> bool {
    let c = c as u32;
    let table = super::printable::PRINTABLE;
    let i = table.partition_point(|&(_, last)| last < c);
    table.get(i).is_some_and(|&(first, _)| first <= c)
}

/// Go's `%q` of a byte string (`strconv.Quote`): invalid UTF-8 bytes as `\xff`, the
/// control characters with a letter as `\a \b \f \n \r \t \v`, other ASCII controls as
/// `\x1b`, and characters Go does not call printable as `\u2028` or `\U0010ffff`
/// ([`is_go_printable`]).
pub fn go_quote(bytes: impl AsRef<[u8]>) -> String {
    let bytes = bytes.as_ref();
    let mut out = String::from("\"");
    let mut rest = bytes;
    while !rest.is_empty() {
        match std::str::from_utf8(rest) {
            Ok(s) => {
                push_escaped(&mut out, s);
                break;
            }
            Err(e) => {
                let (good, bad) = rest.split_at(e.valid_up_to());
                push_escaped(&mut out, std::str::from_utf8(good).unwrap_or_default());
                let n = e.error_len().unwrap_or(bad.len());
                for b in &bad[..n] {
                    out.push_str(&format!("\\x{b:02x}"));
                }
                rest = &bad[n..];
            }
        }
    }
    out.push('"');
    out
}

/// Go's `%q` of a byte or rune (`strconv.QuoteRune`): single-quoted, escaped as
/// [`go_quote`] escapes, `'` escaped instead of `"`.
pub fn go_quote_char(c: char) -> String {
    let mut out = String::from("'");
    match c {
        '\'' => out.push_str("\\'"),
        '"' => out.push('"'),
        c => push_escaped(&mut out, c.encode_utf8(&mut [0; 4])),
    }
    out.push('\'');
    out
}

fn push_escaped(out: &mut String, s: &str) {
    for c in s.chars() {
        match c {
            '"' => out.push_str("\\\""),
            '\\' => out.push_str("\\\\"),
            '\u{7}' => out.push_str("\\a"),
            '\u{8}' => out.push_str("\\b"),
            '\u{c}' => out.push_str("\\f"),
            '\n' => out.push_str("\\n"),
            '\r' => out.push_str("\\r"),
            '\t' => out.push_str("\\t"),
            '\u{b}' => out.push_str("\\v"),
            c if (c as u32) < 0x20 || c as u32 == 0x7f => out.push_str(&format!("\\x{:02x}", c as u32)),
            c if is_go_printable(c) => out.push(c),
            c if (c as u32) < 0x10000 => out.push_str(&format!("\\u{:04x}", c as u32)),
            c => out.push_str(&format!("\\U{:08x}", c as u32)),
        }
    }
}

/// The NaN Go's `strconv.ParseFloat` answers (`math.NaN()`): its bits reach protobuf
/// scrapes as pushed.
const GO_NAN: f64 = f64::from_bits(0x7FF8_0000_0000_0001);

/// Go's `strconv.ParseFloat` as the text parser uses it (`pP_` refused, so no hex
/// floats): decimal with optional sign and exponent, `inf`/`infinity` with optional
/// sign, `nan` without sign, all case-insensitive; out-of-range values are errors.
pub fn parse_go_float(s: &str) -> Option<f64> {
    if s.contains(['p', 'P', '_']) {
        return None;
    }
    let unsigned = s.strip_prefix(['+', '-']).unwrap_or(s);
    let lower = unsigned.to_ascii_lowercase();
    if lower == "inf" || lower == "infinity" {
        return Some(if s.starts_with('-') { f64::NEG_INFINITY } else { f64::INFINITY });
    }
    if lower == "nan" {
        return (unsigned.len() == s.len()).then_some(GO_NAN);
    }
    // Decimal grammar: digits [. digits] | . digits, then optional e[+-]digits.
    let b = unsigned.as_bytes();
    let mut i = 0;
    let int_digits = b.iter().take_while(|c| c.is_ascii_digit()).count();
    i += int_digits;
    let mut frac_digits = 0;
    if i < b.len() && b[i] == b'.' {
        i += 1;
        frac_digits = b[i..].iter().take_while(|c| c.is_ascii_digit()).count();
        i += frac_digits;
    }
    if int_digits + frac_digits == 0 {
        return None;
    }
    if i < b.len() && (b[i] == b'e' || b[i] == b'E') {
        i += 1;
        if i < b.len() && (b[i] == b'+' || b[i] == b'-') {
            i += 1;
        }
        let exp_digits = b[i..].iter().take_while(|c| c.is_ascii_digit()).count();
        if exp_digits == 0 {
            return None;
        }
        i += exp_digits;
    }
    if i != b.len() {
        return None;
    }
    let v: f64 = s.parse().ok()?;
    v.is_finite().then_some(v)
}

/// Go's `uint64(f)` on amd64, which the reference parser applies to counts.
pub fn go_float_to_u64(v: f64) -> u64 {
    const TWO_63: f64 = 9_223_372_036_854_775_808.0;
    if v.is_nan() {
        return 1 << 63;
    }
    if v < TWO_63 {
        // CVTTSD2SI: out of range gives i64::MIN, which Rust's saturating cast matches
        // for large negative values.
        (v as i64) as u64
    } else {
        let shifted = v - TWO_63;
        if shifted < TWO_63 {
            (shifted as i64 as u64) ^ (1 << 63)
        } else {
            1 << 63
        }
    }
}

impl<'a> Parser<'a> {
    /// Limit `index` of [`PushLimits::FLAGS`] exceeded, by a count that parsing stopped at.
    fn limit(&self, index: usize, found: usize) -> Stop {
        Stop::Err(TextParseError::Limit(self.limits.stopped_at(index, found)))
    }

    /// Counts a new series, refusing the body once it holds more than a push may.
    fn count_series(&mut self) -> Step<()> {
        self.series += 1;
        if self.series > self.limits.series {
            return Err(self.limit(4, self.series));
        }
        Ok(())
    }

    fn error(&self, message: impl Into<String>) -> Stop {
        Stop::Err(TextParseError::Line { line: self.line, message: message.into() })
    }

    /// Reads the next byte into `self.byte`.
    fn next(&mut self) -> Result<(), Eof> {
        match self.input.get(self.pos) {
            Some(&b) => {
                self.byte = b;
                self.pos += 1;
                Ok(())
            }
            None => Err(Eof),
        }
    }

    /// Go's `skipBlankTab`: reads bytes until one that is not blank or tab.
    fn skip_blank_tab(&mut self) -> Result<(), Eof> {
        loop {
            self.next()?;
            if !is_blank_or_tab(self.byte) {
                return Ok(());
            }
        }
    }

    fn skip_blank_tab_if_current_blank_tab(&mut self) -> Result<(), Eof> {
        if is_blank_or_tab(self.byte) {
            self.skip_blank_tab()?;
        }
        Ok(())
    }

    /// Reads a token made of bytes accepted by `start`/`cont`, starting at the current
    /// byte. Returns the token; stops at the first other byte or at the end of input
    /// (`Err(Eof)` only if the input ends inside the token).
    fn read_name(&mut self, start: fn(u8) -> bool, cont: fn(u8) -> bool) -> Result<String, Eof> {
        let mut token = String::new();
        if !start(self.byte) {
            return Ok(token);
        }
        loop {
            token.push(self.byte as char);
            self.next()?;
            if !cont(self.byte) {
                return Ok(token);
            }
        }
    }

    fn read_until_whitespace(&mut self) -> Result<Vec<u8>, Eof> {
        let mut token = Vec::new();
        while !is_blank_or_tab(self.byte) && self.byte != b'\n' {
            token.push(self.byte);
            self.next()?;
        }
        Ok(token)
    }

    /// Go's `readTokenUntilNewline`; with `escapes`, `\\` and `\n` are recognised and
    /// other escapes are errors (HELP); without, a backslash is dropped (TYPE).
    fn read_until_newline(&mut self, escapes: bool) -> Step<Vec<u8>> {
        let mut token = Vec::new();
        let mut escaped = false;
        loop {
            if escapes && escaped {
                match self.byte {
                    b'\\' => token.push(b'\\'),
                    b'n' => token.push(b'\n'),
                    other => return Err(self.error(format!("invalid escape sequence '\\{}'", other as char))),
                }
                escaped = false;
            } else {
                match self.byte {
                    b'\n' => return Ok(token),
                    b'\\' => escaped = true,
                    other => token.push(other),
                }
            }
            self.next()?;
        }
    }

    fn run(&mut self) -> Result<(), TextParseError> {
        loop {
            self.line += 1;
            match self.line_step() {
                Ok(true) => continue,
                Ok(false) => return Ok(()),
                Err(Stop::Eof) => {
                    return Err(TextParseError::Line {
                        line: self.line,
                        message: "unexpected end of input stream".to_string(),
                    })
                }
                Err(Stop::Err(e)) => return Err(e),
            }
        }
    }

    /// Parses one line. `Ok(false)` at a clean end of input.
    fn line_step(&mut self) -> Step<bool> {
        if self.skip_blank_tab().is_err() {
            return Ok(false);
        }
        match self.byte {
            b'#' => self.comment(),
            b'\n' => Ok(()),
            _ => self.sample(),
        }?;
        Ok(true)
    }

    fn comment(&mut self) -> Step<()> {
        self.skip_blank_tab()?;
        if self.byte == b'\n' {
            return Ok(());
        }
        let keyword = self.read_until_whitespace()?;
        if self.byte == b'\n' {
            return Ok(());
        }
        if keyword != b"HELP" && keyword != b"TYPE" {
            while self.byte != b'\n' {
                self.next()?;
            }
            return Ok(());
        }
        self.skip_blank_tab()?;
        let name = if self.names == Names::Utf8 && self.byte == b'"' {
            let name = self.quoted_name("metric name")?;
            self.valid_metric_name(name)?
        } else {
            self.read_name(is_metric_name_start, is_metric_name_continuation)?
        };
        if self.byte == b'\n' {
            return Ok(());
        }
        if !is_blank_or_tab(self.byte) {
            return Err(self.error("invalid metric name in comment"));
        }
        let (index, _) = self.family_for(&name);
        self.skip_blank_tab()?;
        if self.byte == b'\n' {
            return Ok(());
        }
        if keyword == b"HELP" {
            if self.families[index].family.help.is_some() {
                let name = self.families[index].family.name.clone();
                return Err(self.error(format!("second HELP line for metric name {}", go_quote(&name))));
            }
            let text = self.read_until_newline(true)?;
            self.families[index].family.help = Some(String::from_utf8_lossy(&text).into_owned());
        } else {
            if self.families[index].type_set {
                let name = self.families[index].family.name.clone();
                return Err(self.error(format!(
                    "second TYPE line for metric name {}, or TYPE reported after samples",
                    go_quote(&name)
                )));
            }
            let word = self.read_until_newline(false)?;
            let Some(t) = std::str::from_utf8(&word).ok().and_then(MetricType::from_keyword) else {
                return Err(self.error(format!("unknown metric type {}", go_quote(&word))));
            };
            let family = &mut self.families[index];
            family.family.metric_type = t;
            family.type_set = true;
        }
        Ok(())
    }

    /// Go's `setOrCreateCurrentMF`: the family a name belongs to (its own, or the
    /// summary/histogram it is a `_sum`/`_count`/`_bucket` of) and which part it is.
    fn family_for(&mut self, name: &str) -> (usize, Part) {
        if let Some(&i) = self.by_name.get(name) {
            return (i, Part::Plain);
        }
        fn part_of(name: &str, suffixes: &[&'static str]) -> Option<(String, &'static str)> {
            suffixes.iter().find_map(|s| name.strip_suffix(s).map(|base| (base.to_string(), *s)))
        }
        let to_part = |suffix: &str| match suffix {
            "_count" => Part::Count,
            "_sum" => Part::Sum,
            _ => Part::Plain,
        };
        if let Some((base, suffix)) = part_of(name, &["_count", "_sum"]) {
            if let Some(&i) = self.by_name.get(&base) {
                if self.families[i].family.metric_type == MetricType::Summary {
                    return (i, to_part(suffix));
                }
            }
        }
        if let Some((base, suffix)) = part_of(name, &["_count", "_sum", "_bucket"]) {
            if let Some(&i) = self.by_name.get(&base) {
                if self.families[i].family.metric_type == MetricType::Histogram {
                    return (i, to_part(suffix));
                }
            }
        }
        let i = self.families.len();
        self.families.push(Building {
            family: MetricFamily {
                name: name.to_string(),
                help: None,
                metric_type: MetricType::Untyped,
                metrics: Vec::new(),
            },
            type_set: false,
            series_index: HashMap::new(),
        });
        self.by_name.insert(name.to_string(), i);
        (i, Part::Plain)
    }

    fn sample(&mut self) -> Step<()> {
        if self.names == Names::Utf8 && self.byte == b'{' {
            return self.braces_sample();
        }
        let name = if self.names == Names::Utf8 && self.byte == b'"' {
            let name = self.quoted_name("metric name")?;
            self.valid_metric_name(name)?
        } else {
            self.read_name(is_metric_name_start, is_metric_name_continuation)?
        };
        if name.is_empty() {
            return Err(self.error("invalid metric name"));
        }
        self.sample_of(name, None)
    }

    /// A sample line of 1.11's braces form, `{"my.metric",a="v"} 1`: the one name in the
    /// braces without `=` is the metric's (it may come after labels). The labels are read
    /// first, then taken as the ordinary form takes them.
    fn braces_sample(&mut self) -> Step<()> {
        let mut name: Option<String> = None;
        let mut pairs: Vec<(String, String)> = Vec::new();
        loop {
            self.skip_blank_tab()?;
            if self.byte == b'}' {
                break;
            }
            let token = self.label_name_token()?;
            self.skip_blank_tab_if_current_blank_tab()?;
            if self.byte == b'=' {
                if pairs.len() > self.limits.labels_per_series {
                    return Err(self.limit(1, pairs.len()));
                }
                let value = self.after_equals()?;
                pairs.push((token, value));
                self.skip_blank_tab()?;
            } else {
                if !matches!(self.byte, b',' | b'}') {
                    return Err(
                        self.error(format!("unexpected end of metric name {}", go_quote_char(self.byte as char)))
                    );
                }
                if let Some(first) = &name {
                    return Err(self.error(format!("multiple metric names for metric {}", go_quote(first))));
                }
                name = Some(self.valid_metric_name(token)?);
            }
            match self.byte {
                b',' => continue,
                b'}' => break,
                _ => {
                    return Err(
                        self.error(format!("unexpected end of label value {}", go_quote_char(self.byte as char)))
                    )
                }
            }
        }
        let Some(name) = name else {
            return Err(self.error("invalid metric name"));
        };
        self.sample_of(name, Some(pairs))
    }

    /// `=` and then a quoted label value (the current byte is `=`).
    fn after_equals(&mut self) -> Step<String> {
        self.skip_blank_tab()?;
        if self.byte != b'"' {
            return Err(self
                .error(format!("expected '\"' at start of label value, found {}", go_quote_char(self.byte as char))));
        }
        let raw = self.label_value()?;
        String::from_utf8(raw).map_err(|e| self.error(format!("invalid label value {}", go_quote(e.as_bytes()))))
    }

    /// A label name: quoted (UTF-8 names only) or a legacy token, checked by the rules.
    fn label_name_token(&mut self) -> Step<String> {
        if self.names == Names::Utf8 && self.byte == b'"' {
            let name = self.quoted_name("label name")?;
            return match String::from_utf8(name) {
                Ok(name) if self.names.label_name_ok(&name) => Ok(name),
                Ok(name) => Err(self.error(format!("invalid label name {}", go_quote(&name)))),
                Err(e) => Err(self.error(format!("invalid label name {}", go_quote(e.as_bytes())))),
            };
        }
        Ok(self.read_name(is_label_name_start, is_label_name_continuation)?)
    }

    /// A quoted name, starting at its opening quote, read as a label value is (see
    /// [`Parser::quoted`]). Leaves the byte after the closing quote current.
    fn quoted_name(&mut self, what: &str) -> Step<Vec<u8>> {
        let token = self.quoted(what)?;
        self.next()?;
        Ok(token)
    }

    /// A metric name read in quotes (or in braces), checked by the rules.
    fn valid_metric_name(&self, name: impl Into<Vec<u8>>) -> Step<String> {
        match String::from_utf8(name.into()) {
            Ok(name) if self.names.metric_name_ok(&name) => Ok(name),
            Ok(name) => Err(self.error(format!("invalid metric name {}", go_quote(&name)))),
            Err(e) => Err(self.error(format!("invalid metric name {}", go_quote(e.as_bytes())))),
        }
    }

    /// The rest of a sample line once its metric name is known; `given` are the labels of
    /// the braces form, already read (its `}` current). Without them, a `}` right after the
    /// name is no end of labels: it is read as the value, and refused as upstream refuses it.
    fn sample_of(&mut self, name: String, given: Option<Vec<(String, String)>>) -> Step<()> {
        let (index, part) = self.family_for(&name);
        self.families[index].type_set = true;
        let metric_type = self.families[index].family.metric_type;
        let family_name = self.families[index].family.name.clone();
        self.skip_blank_tab_if_current_blank_tab()?;

        let mut labels: Vec<LabelPair> = Vec::new();
        // Label names seen so far, once there are more than a few: a linear scan for
        // duplicates would make a line with many labels quadratic.
        let mut seen: HashSet<String> = HashSet::new();
        let mut quantile: Option<f64> = None;
        let mut bucket: Option<f64> = None;
        let of = LabelsOf { metric_type, family_name: &family_name };
        if let Some(given) = given {
            for (label, value) in given {
                let special = self.label_name_valid(&of, &label)?;
                self.label_admit(special, &of, &mut labels, &mut seen, &label)?;
                self.label_value_set(special, &label, value, &mut labels, &mut quantile, &mut bucket)?;
            }
            self.skip_blank_tab()?;
        } else if self.byte == b'{' {
            loop {
                self.skip_blank_tab()?;
                if self.byte == b'}' {
                    self.skip_blank_tab()?;
                    break;
                }
                let label = self.label_name_token()?;
                let special = self.label_name_valid(&of, &label)?;
                self.skip_blank_tab_if_current_blank_tab()?;
                if self.byte != b'=' {
                    return Err(self
                        .error(format!("expected '=' after label name, found {}", go_quote_char(self.byte as char))));
                }
                // After the `=`, as upstream's parser looks for duplicates.
                self.label_admit(special, &of, &mut labels, &mut seen, &label)?;
                let value = self.after_equals()?;
                let value = self.label_value_set(special, &label, value, &mut labels, &mut quantile, &mut bucket)?;
                self.skip_blank_tab()?;
                match self.byte {
                    b',' => continue,
                    b'}' => {
                        self.skip_blank_tab()?;
                        break;
                    }
                    _ => return Err(self.error(format!("unexpected end of label value {}", go_quote(&value)))),
                }
            }
        }

        let family = &mut self.families[index];
        let aggregate = matches!(metric_type, MetricType::Summary | MetricType::Histogram);
        let metric_index = if aggregate {
            let mut key = labels.clone();
            key.sort();
            match family.series_index.get(&key) {
                Some(&i) => i,
                None => {
                    self.count_series()?;
                    let family = &mut self.families[index];
                    family.family.metrics.push(Metric {
                        labels: labels.into(),
                        value: Value::Missing,
                        timestamp_ms: Timestamp::NONE,
                    });
                    let i = family.family.metrics.len() - 1;
                    family.series_index.insert(key, i);
                    i
                }
            }
        } else {
            self.count_series()?;
            let family = &mut self.families[index];
            family.family.metrics.push(Metric {
                labels: labels.into(),
                value: Value::Missing,
                timestamp_ms: Timestamp::NONE,
            });
            family.family.metrics.len() - 1
        };

        let token = self.read_until_whitespace()?;
        let text = String::from_utf8_lossy(&token).into_owned();
        let Some(value) = parse_go_float(&text) else {
            return Err(self.error(format!("expected float as value, got {}", go_quote(&token))));
        };
        let metric = &mut self.families[index].family.metrics[metric_index];
        match metric_type {
            MetricType::Counter => metric.value = Value::Counter(value),
            MetricType::Gauge => metric.value = Value::Gauge(value),
            MetricType::Untyped => metric.value = Value::Untyped(value),
            MetricType::Summary => {
                if !matches!(metric.value, Value::Summary(_)) {
                    metric.value = Value::summary(0, 0.0, Vec::new());
                }
                if let Value::Summary(s) = &mut metric.value {
                    let SummaryValue { count, sum, quantiles } = s.as_mut();
                    match (part, quantile) {
                        (Part::Count, _) => *count = go_float_to_u64(value),
                        (Part::Sum, _) => *sum = value,
                        (Part::Plain, Some(q)) => quantiles.push(Quantile { quantile: q, value }),
                        (Part::Plain, None) => {}
                    }
                }
            }
            MetricType::Histogram => {
                if !matches!(metric.value, Value::Histogram(_)) {
                    metric.value = Value::histogram(0, 0.0, Vec::new());
                }
                if let Value::Histogram(h) = &mut metric.value {
                    let HistogramValue { count, sum, buckets } = h.as_mut();
                    match (part, bucket) {
                        (Part::Count, _) => *count = go_float_to_u64(value),
                        (Part::Sum, _) => *sum = value,
                        (Part::Plain, Some(b)) => {
                            buckets.push(Bucket { upper_bound: b, cumulative_count: go_float_to_u64(value) })
                        }
                        (Part::Plain, None) => {}
                    }
                }
            }
            // Upstream keeps a sample it cannot represent without a value; the
            // consistency check then refuses the push.
            MetricType::GaugeHistogram => {}
        }
        if self.byte == b'\n' {
            return Ok(());
        }
        self.timestamp(index, metric_index)
    }

    /// A label name of a sample, checked as soon as it is read: `Ok(true)` for the
    /// `quantile` of a summary or the `le` of a histogram (read as the value's position,
    /// not kept as a label).
    fn label_name_valid(&self, of: &LabelsOf, label: &str) -> Step<bool> {
        if label.is_empty() {
            return Err(self.error(format!("invalid label name for metric {}", go_quote(of.family_name))));
        }
        if label == "__name__" {
            return Err(self.error("label name \"__name__\" is reserved"));
        }
        Ok((of.metric_type == MetricType::Summary && label == "quantile")
            || (of.metric_type == MetricType::Histogram && label == "le"))
    }

    /// Adds a label name (its value set later) unless it is `special`, refusing a
    /// duplicate and a label past the limit. Upstream's parser looks for duplicates once
    /// the `=` after the name is found, so this comes after that check.
    fn label_admit(
        &self,
        special: bool,
        of: &LabelsOf,
        labels: &mut Vec<LabelPair>,
        seen: &mut HashSet<String>,
        label: &str,
    ) -> Step<()> {
        if special {
            return Ok(());
        }
        // Past a few labels, a set: a linear scan per label would make a line with
        // many labels quadratic.
        const SCAN_MAX: usize = 16;
        let duplicate = if labels.len() < SCAN_MAX {
            labels.iter().any(|l| l.name == label)
        } else {
            seen.extend(labels[seen.len()..].iter().map(|l| l.name.to_string()));
            seen.contains(label)
        };
        if duplicate {
            return Err(self.error(format!("duplicate label names for metric {}", go_quote(of.family_name))));
        }
        if labels.len() == self.limits.labels_per_series {
            return Err(self.limit(1, labels.len() + 1));
        }
        labels.push(LabelPair::new(label, String::new()));
        Ok(())
    }

    /// A label's value: the position of a quantile or bucket, or the value of the label
    /// last added. Returns the value (for later messages).
    fn label_value_set(
        &self,
        special: bool,
        label: &str,
        value: String,
        labels: &mut [LabelPair],
        quantile: &mut Option<f64>,
        bucket: &mut Option<f64>,
    ) -> Step<String> {
        if special {
            let Some(v) = parse_go_float(&value) else {
                return Err(
                    self.error(format!("expected float as value for '{label}' label, got {}", go_quote(&value)))
                );
            };
            // NaN is upstream's "no position": such a sample is dropped like one without
            // the label (Go's parser keeps NaN as its marker for an absent quantile or le).
            let position = Some(v).filter(|v| !v.is_nan());
            if label == "quantile" {
                *quantile = position;
            } else {
                *bucket = position;
            }
        } else if let Some(l) = labels.last_mut() {
            l.value = value.as_str().into();
        }
        Ok(value)
    }

    /// Go's `readTokenAsLabelValue`, starting at the opening quote.
    fn label_value(&mut self) -> Step<Vec<u8>> {
        self.quoted("label value")
    }

    /// Bytes up to the closing quote, starting at the opening one: `\\`, `\n` and `\"`
    /// are the escapes, any other is an error, and so is a raw new-line in `what`.
    fn quoted(&mut self, what: &str) -> Step<Vec<u8>> {
        let mut token = Vec::new();
        let mut escaped = false;
        loop {
            self.next()?;
            if escaped {
                match self.byte {
                    b'"' | b'\\' => token.push(self.byte),
                    b'n' => token.push(b'\n'),
                    other => return Err(self.error(format!("invalid escape sequence '\\{}'", other as char))),
                }
                escaped = false;
                continue;
            }
            match self.byte {
                b'"' => return Ok(token),
                b'\n' => return Err(self.error(format!("{what} {} contains unescaped new-line", go_quote(&token)))),
                b'\\' => escaped = true,
                other => token.push(other),
            }
        }
    }

    fn timestamp(&mut self, family: usize, metric: usize) -> Step<()> {
        self.skip_blank_tab()?;
        let token = self.read_until_whitespace()?;
        let text = String::from_utf8_lossy(&token).into_owned();
        let ts = parse_go_int(&text)
            .ok_or_else(|| self.error(format!("expected integer as timestamp, got {}", go_quote(&token))))?;
        self.families[family].family.metrics[metric].timestamp_ms = Some(ts).into();
        let rest = self.read_until_newline(false)?;
        if !rest.is_empty() {
            return Err(self.error(format!("spurious string after timestamp: {}", go_quote(&rest))));
        }
        Ok(())
    }
}

/// Go's `strconv.ParseInt(s, 10, 64)`.
fn parse_go_int(s: &str) -> Option<i64> {
    let digits = s.strip_prefix(['+', '-']).unwrap_or(s);
    if digits.is_empty() || !digits.bytes().all(|b| b.is_ascii_digit()) {
        return None;
    }
    s.parse().ok()
}

#[cfg(test)]
mod tests;
