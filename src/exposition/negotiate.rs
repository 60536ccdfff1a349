//! Content negotiation of a scrape (`expfmt.Negotiate`) and the media-type parsing a
//! push's `Content-Type` uses too.

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

/// A media type with lower-cased type and parameter names (Go's `mime.ParseMediaType`).
pub fn parse_media_type(value: &str) -> (String, Vec<(String, String)>) {
    split_media(value, true)
}

/// A media range of an `Accept` header as upstream reads it (`goautoneg.ParseAccept`):
/// type and parameter names keep their case, and `expfmt.Negotiate` compares them
/// exactly, so `APPLICATION/VND.GOOGLE.PROTOBUF;…` is answered with text, as upstream does.
fn parse_media_range(value: &str) -> (String, Vec<(String, String)>) {
    split_media(value, false)
}

fn split_media(value: &str, fold_case: bool) -> (String, Vec<(String, String)>) {
    let fold = |s: &str| if fold_case { s.to_ascii_lowercase() } else { s.to_string() };
    let mut parts = value.split(';');
    let media = fold(parts.next().unwrap_or("").trim());
    let params = parts
        .filter_map(|p| {
            let (k, v) = p.split_once('=')?;
            Some((fold(k.trim()), v.trim().trim_matches('"').to_string()))
        })
        .collect();
    (media, params)
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
    let mut ranges: Vec<MediaRange> = accept
        .unwrap_or("")
        .split(',')
        .map(|r| {
            let (media, params) = parse_media_range(r);
            let q = param(&params, "q").and_then(|q| q.parse().ok()).unwrap_or(1.0);
            (q, media, params)
        })
        .collect();
    ranges.sort_by(|a, b| b.0.partial_cmp(&a.0).unwrap_or(std::cmp::Ordering::Equal));
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
        if media == "text/plain" && matches!(param(params, "version"), None | Some("0.0.4")) {
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
        ];
        for (name, accept, want) in cases {
            assert_eq!(negotiate(accept), want, "case {name}");
        }
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
