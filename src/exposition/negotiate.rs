//! Content negotiation of a scrape (`expfmt.Negotiate`) and the media-type parsing a
//! push's `Content-Type` uses too.

use std::collections::BTreeMap;

use super::escaping::Escaping;

/// Exposition formats a scrape can ask for.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum ScrapeFormat {
    Text,
    ProtoDelimited,
    ProtoText,
    ProtoCompactText,
}

impl ScrapeFormat {
    pub fn content_type(self) -> &'static str {
        match self {
            ScrapeFormat::Text => "text/plain; version=0.0.4; charset=utf-8",
            ScrapeFormat::ProtoDelimited => {
                "application/vnd.google.protobuf; proto=io.prometheus.client.MetricFamily; encoding=delimited"
            }
            ScrapeFormat::ProtoText => {
                "application/vnd.google.protobuf; proto=io.prometheus.client.MetricFamily; encoding=text"
            }
            ScrapeFormat::ProtoCompactText => {
                "application/vnd.google.protobuf; proto=io.prometheus.client.MetricFamily; encoding=compact-text"
            }
        }
    }
}

/// A media type and its parameters as Go's `mime.ParseMediaType` reads a `Content-Type`:
/// the type lower-cased and trimmed, which must be a token or `token/token`; then
/// `; name=value` pairs, names tokens (lower-cased), values tokens or quoted strings
/// (`\` escapes the next character), whitespace allowed around each part, one trailing
/// `;` ignored; RFC 2231 names (`name*`, `name*0`, `name*1*` …) stitched and decoded.
/// `None` where Go answers an error: anything else, a repeated name included. Upstream
/// reads a push whose `Content-Type` does not parse as text.
pub fn parse_media_type(value: &str) -> Option<(String, Vec<(String, String)>)> {
    let (media, mut rest) = value.split_at(value.find(';').unwrap_or(value.len()));
    let media = media.to_lowercase().trim().to_string();
    let (kind, after) = take_token(&media);
    let valid = match after.strip_prefix('/') {
        _ if kind.is_empty() => false,
        None => after.is_empty(),
        Some(sub) => matches!(take_token(sub), (sub, "") if !sub.is_empty()),
    };
    if !valid {
        return None;
    }
    let mut params: Vec<(String, String)> = Vec::new();
    // Names with a `*`, by the name before it: RFC 2231's pieces.
    let mut starred: BTreeMap<String, Vec<(String, String)>> = BTreeMap::new();
    loop {
        rest = rest.trim_start();
        if rest.is_empty() {
            break;
        }
        let Some((name, value, after)) = media_param(rest) else {
            // One trailing semicolon is not an error.
            return (rest.trim() == ";").then_some((media, params));
        };
        let pieces = match name.find('*') {
            Some(star) => starred.entry(name[..star].to_string()).or_default(),
            None => &mut params,
        };
        if pieces.iter().any(|(n, _)| *n == name) {
            return None;
        }
        pieces.push((name, value));
        rest = after;
    }
    for (base, pieces) in starred {
        let piece = |name: &str| pieces.iter().find(|(n, _)| n == name).map(|(_, v)| v.as_str());
        if let Some(v) = piece(&format!("{base}*")) {
            params.retain(|(n, _)| *n != base);
            params.push((base, decode_2231(v)));
            continue;
        }
        let mut joined = String::new();
        let mut any = false;
        for n in 0.. {
            if let Some(v) = piece(&format!("{base}*{n}")) {
                joined.push_str(v);
            } else if let Some(v) = piece(&format!("{base}*{n}*")) {
                joined.push_str(&if n == 0 { decode_2231(v) } else { percent_unescape(v).unwrap_or_default() });
            } else {
                break;
            }
            any = true;
        }
        if any {
            params.retain(|(n, _)| *n != base);
            params.push((base, joined));
        }
    }
    Some((media, params))
}

/// Go's RFC 2045 token characters: printable ASCII but space and `()<>@,;:\"/[]?=`.
fn is_token_char(c: char) -> bool {
    c > ' ' && c < '\u{7f}' && !"()<>@,;:\\\"/[]?=".contains(c)
}

/// The longest token at the start of `s`, and what follows it.
fn take_token(s: &str) -> (&str, &str) {
    s.split_at(s.find(|c| !is_token_char(c)).unwrap_or(s.len()))
}

/// One `; name=value` at the start of `s` (Go's `consumeMediaParam`): the lower-cased name,
/// the value (a token, or a quoted string unquoted) and what follows; `None` if there is
/// none, or the value is empty.
fn media_param(s: &str) -> Option<(String, String, &str)> {
    let s = s.trim_start().strip_prefix(';')?.trim_start();
    let (name, s) = take_token(s);
    if name.is_empty() {
        return None;
    }
    let s = s.trim_start().strip_prefix('=')?.trim_start();
    let (value, rest) = match s.strip_prefix('"') {
        None => {
            let (token, rest) = take_token(s);
            (token.to_string(), rest)
        }
        Some(quoted) => {
            let mut value = String::new();
            let mut escaped = false;
            let mut end = None;
            for (i, c) in quoted.char_indices() {
                match c {
                    c if escaped => {
                        value.push(c);
                        escaped = false;
                    }
                    '"' => {
                        end = Some(i + 1);
                        break;
                    }
                    '\\' => escaped = true,
                    '\r' | '\n' => return None,
                    c => value.push(c),
                }
            }
            (value, &quoted[end?..])
        }
    };
    (!value.is_empty()).then(|| (name.to_lowercase(), value, rest))
}

/// An RFC 2231 `charset'language'value`, of US-ASCII or UTF-8 (else empty, as Go).
fn decode_2231(v: &str) -> String {
    let parts: Vec<&str> = v.splitn(3, '\'').collect();
    match parts.as_slice() {
        [charset, _, value] if ["us-ascii", "utf-8"].contains(&charset.to_lowercase().as_str()) => {
            percent_unescape(value).unwrap_or_default()
        }
        _ => String::new(),
    }
}

/// `%XX` unescaped; `None` for a `%` not followed by two hex digits.
fn percent_unescape(s: &str) -> Option<String> {
    let b = s.as_bytes();
    let mut out = Vec::with_capacity(b.len());
    let mut i = 0;
    while i < b.len() {
        if b[i] == b'%' {
            let hex = b.get(i + 1..i + 3).and_then(|h| std::str::from_utf8(h).ok());
            out.push(
                hex.filter(|h| h.bytes().all(|c| c.is_ascii_hexdigit()))
                    .and_then(|h| u8::from_str_radix(h, 16).ok())?,
            );
            i += 3;
        } else {
            out.push(b[i]);
            i += 1;
        }
    }
    Some(String::from_utf8_lossy(&out).into_owned())
}

/// A media range of an `Accept` header as upstream reads it (`goautoneg.ParseAccept`):
/// only spaces are trimmed (around the range, the type, the subtype, parameter names and
/// values), type and parameter names keep their case and values their quotes (expfmt then
/// compares them exactly, so `APPLICATION/VND.GOOGLE.PROTOBUF;…` is answered with text),
/// `q` is read untrimmed (one that does not parse, `q= 0.9` say, is 0), a repeated
/// parameter keeps its last value, and a range that is not `type/subtype` or `*` is
/// skipped.
fn parse_media_range(range: &str) -> Option<MediaRange> {
    let spaces = |s: &str| s.trim_matches(' ').to_string();
    let mut parts = range.trim_matches(' ').split(';');
    let media = parts.next().unwrap_or("");
    let mut halves = media.split('/');
    let kind = spaces(halves.next().unwrap_or(""));
    let sub = match (halves.next(), halves.next()) {
        (None, _) if kind == "*" => "*".to_string(),
        (Some(sub), None) => spaces(sub),
        _ => return None,
    };
    let mut q = 1.0;
    let mut params: Vec<(String, String)> = Vec::new();
    for param in parts {
        let Some((name, value)) = param.split_once('=') else { continue };
        let name = spaces(name);
        if name == "q" {
            q = value.parse::<f32>().map_or(0.0, f64::from);
        } else {
            params.retain(|(n, _)| *n != name);
            params.push((name, spaces(value)));
        }
    }
    Some((q, format!("{kind}/{sub}"), params))
}

/// goautoneg's order of media ranges: Go's `sort.Sort` with its `Less` (a higher quality
/// first; at equal quality, moved before a `*` type or subtype). Up to 12 ranges Go sorts
/// by insertion, and so does this, exactly; beyond, a stable sort by quality, then by a
/// concrete type and subtype before `*`, in O(n log n): an insertion sort of a hostile
/// header of thousands of ranges would hold a scrape for seconds.
fn sort_ranges(ranges: &mut [MediaRange]) {
    /// Go's `sort.Sort` sorts this many elements or fewer by insertion.
    const INSERTION_MAX: usize = 12;
    let wildcards = |r: &MediaRange| {
        let (kind, sub) = r.1.split_once('/').unwrap_or(("", ""));
        (kind == "*", sub == "*")
    };
    if ranges.len() > INSERTION_MAX {
        ranges.sort_by(|a, b| b.0.total_cmp(&a.0).then_with(|| wildcards(a).cmp(&wildcards(b))));
        return;
    }
    let less = |a: &MediaRange, b: &MediaRange| {
        let ((a_type, a_sub), (b_type, b_sub)) = (wildcards(a), wildcards(b));
        a.0 > b.0 || (!a_type && b_type) || (!a_sub && b_sub)
    };
    for i in 1..ranges.len() {
        let mut j = i;
        while j > 0 && less(&ranges[j], &ranges[j - 1]) {
            ranges.swap(j, j - 1);
            j -= 1;
        }
    }
}

pub fn param<'a>(params: &'a [(String, String)], name: &str) -> Option<&'a str> {
    params.iter().find(|(k, _)| k == name).map(|(_, v)| v.as_str())
}

/// A media range of an `Accept` header: quality, media type, parameters.
type MediaRange = (f64, String, Vec<(String, String)>);

/// `expfmt.Negotiate`: the first acceptable format by descending quality.
pub fn negotiate(accept: Option<&str>) -> ScrapeFormat {
    negotiate_escaping(accept).0
}

/// `expfmt.Negotiate` of upstream 1.11: the format, and the escaping scheme of names. Every
/// media range up to the chosen one (in quality order) that names a known `escaping=`
/// sets it, whether or not it matches; [`Escaping::Underscores`] when none does.
pub fn negotiate_escaping(accept: Option<&str>) -> (ScrapeFormat, Escaping) {
    let mut ranges: Vec<MediaRange> = accept.unwrap_or("").split(',').filter_map(parse_media_range).collect();
    sort_ranges(&mut ranges);
    let mut escaping = Escaping::Underscores;
    for (_, media, params) in &ranges {
        if let Some(scheme) = param(params, "escaping").and_then(Escaping::from_param) {
            escaping = scheme;
        }
        if media == "application/vnd.google.protobuf"
            && param(params, "proto") == Some("io.prometheus.client.MetricFamily")
        {
            match param(params, "encoding") {
                Some("delimited") => return (ScrapeFormat::ProtoDelimited, escaping),
                Some("text") => return (ScrapeFormat::ProtoText, escaping),
                Some("compact-text") => return (ScrapeFormat::ProtoCompactText, escaping),
                _ => {}
            }
        }
        if media == "text/plain" && matches!(param(params, "version"), None | Some("" | "0.0.4")) {
            return (ScrapeFormat::Text, escaping);
        }
    }
    (ScrapeFormat::Text, escaping)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn negotiation_cases() {
        let cases = [
            ("none", None, ScrapeFormat::Text),
            ("protobuf", Some("application/vnd.google.protobuf;proto=io.prometheus.client.MetricFamily;encoding=delimited"), ScrapeFormat::ProtoDelimited),
            (
                "prometheus prefers protobuf",
                Some("application/vnd.google.protobuf;proto=io.prometheus.client.MetricFamily;encoding=delimited;q=0.7,text/plain;version=0.0.4;q=0.3,*/*;q=0.1"),
                ScrapeFormat::ProtoDelimited,
            ),
            (
                "openmetrics falls back to text",
                Some("application/openmetrics-text;version=1.0.0,application/openmetrics-text;version=0.0.1;q=0.75,text/plain;version=0.0.4;q=0.5,*/*;q=0.1"),
                ScrapeFormat::Text,
            ),
            ("text over protobuf by q", Some("text/plain;q=0.9,application/vnd.google.protobuf;proto=io.prometheus.client.MetricFamily;encoding=delimited;q=0.5"), ScrapeFormat::Text),
            ("compact text", Some("application/vnd.google.protobuf;proto=io.prometheus.client.MetricFamily;encoding=compact-text"), ScrapeFormat::ProtoCompactText),
            // Recorded against upstream 1.5.1: compared exactly, case included.
            ("upper-case type", Some("APPLICATION/VND.GOOGLE.PROTOBUF;proto=io.prometheus.client.MetricFamily;encoding=delimited"), ScrapeFormat::Text),
            ("upper-case parameter name", Some("application/vnd.google.protobuf;PROTO=io.prometheus.client.MetricFamily;encoding=delimited"), ScrapeFormat::Text),
            ("upper-case q is no quality", Some("application/vnd.google.protobuf;proto=io.prometheus.client.MetricFamily;encoding=delimited;Q=0.5,text/plain;q=0.6"), ScrapeFormat::ProtoDelimited),
            ("a quoted value is not unquoted", Some("application/vnd.google.protobuf;proto=io.prometheus.client.MetricFamily;encoding=\"delimited\""), ScrapeFormat::Text),
            ("a quoted text version is no version", Some("application/vnd.google.protobuf;proto=io.prometheus.client.MetricFamily;encoding=delimited;q=0.9,text/plain;version=\"0.0.4\";q=1"), ScrapeFormat::ProtoDelimited),
            ("a q that does not parse is 0", Some("application/vnd.google.protobuf;proto=io.prometheus.client.MetricFamily;encoding=delimited;q=abc, text/plain;q=0.5"), ScrapeFormat::Text),
            ("a q after a space is 0", Some("application/vnd.google.protobuf;proto=io.prometheus.client.MetricFamily;encoding=delimited;q= 0.9, text/plain;q=0.5"), ScrapeFormat::Text),
            ("the last of a repeated parameter", Some("application/vnd.google.protobuf;proto=io.prometheus.client.MetricFamily;encoding=text;encoding=delimited"), ScrapeFormat::ProtoDelimited),
            ("only spaces are trimmed", Some("application/vnd.google.protobuf;proto=io.prometheus.client.MetricFamily;encoding=\tdelimited"), ScrapeFormat::Text),
            ("spaces around the slash", Some("application / vnd.google.protobuf;proto=io.prometheus.client.MetricFamily;encoding=delimited"), ScrapeFormat::ProtoDelimited),
        ];
        for (name, accept, want) in cases {
            assert_eq!(negotiate(accept), want, "case {name}");
        }
    }

    /// Past twelve ranges the order is a stable sort by quality (Go's sort there is not
    /// an insertion sort either): a header of 20,000 ranges negotiates by its best one.
    #[test]
    fn many_ranges_are_sorted_by_quality() {
        let mut accept = vec!["text/html;q=0.5"; 20_000].join(",");
        accept.push_str(
            ",application/vnd.google.protobuf;proto=io.prometheus.client.MetricFamily;encoding=delimited;q=0.9",
        );
        assert_eq!(negotiate(Some(&accept)), ScrapeFormat::ProtoDelimited);
        let ranges = |header: &str| {
            let mut r: Vec<MediaRange> = header.split(',').filter_map(parse_media_range).collect();
            sort_ranges(&mut r);
            r.into_iter().map(|(q, media, _)| (q, media)).collect::<Vec<_>>()
        };
        let many = ["*/*;q=0.1", "a/*;q=0.5", "a/b;q=0.5"].repeat(5).join(",");
        let sorted = ranges(&many);
        assert!(sorted.windows(2).all(|w| w[0].0 >= w[1].0), "{sorted:?}");
        assert_eq!(
            (sorted[4].1.as_str(), sorted[5].1.as_str()),
            ("a/b", "a/*"),
            "a concrete subtype before a wildcard at equal quality: {sorted:?}"
        );
    }

    #[test]
    fn escaping_schemes() {
        let cases = [
            (None, ScrapeFormat::Text, Escaping::Underscores),
            (Some("text/plain;version=0.0.4;escaping=allow-utf-8"), ScrapeFormat::Text, Escaping::AllowUtf8),
            (
                Some("application/vnd.google.protobuf;proto=io.prometheus.client.MetricFamily;encoding=delimited;escaping=values"),
                ScrapeFormat::ProtoDelimited,
                Escaping::Values,
            ),
            (Some("text/plain;escaping=Dots"), ScrapeFormat::Text, Escaping::Underscores),
            (Some("application/openmetrics-text;escaping=dots,text/plain;q=0.5"), ScrapeFormat::Text, Escaping::Dots),
            (Some("application/openmetrics-text;escaping=allow-utf-8"), ScrapeFormat::Text, Escaping::AllowUtf8),
        ];
        for (accept, format, escaping) in cases {
            assert_eq!(negotiate_escaping(accept), (format, escaping), "{accept:?}");
        }
    }
}
