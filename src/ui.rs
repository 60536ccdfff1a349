//! The web pages: the status page at `/` and `/status` (groups, their labels, last push
//! time and metrics, a delete button per group), its static files, and a `/debug/pprof/`
//! page that says what is available instead of Go's profiles.

use std::fmt::Write as _;

use base64::engine::general_purpose::URL_SAFE;
use base64::Engine;

use cluster::NodeStatus;
use model::go_format::format_g;
use model::{StoreView, Value};

use crate::api::rfc3339;

fn esc(s: &str) -> String {
    s.replace('&', "&amp;").replace('<', "&lt;").replace('>', "&gt;").replace('"', "&quot;").replace('\'', "&#39;")
}

/// The path that deletes a group: every value base64-encoded, so any value works.
fn delete_path(prefix: &str, labels: &std::collections::BTreeMap<String, String>) -> String {
    let enc = |v: &str| if v.is_empty() { "=".to_string() } else { URL_SAFE.encode(v) };
    let mut path = format!("{prefix}/metrics/job@base64/{}", enc(labels.get("job").map(String::as_str).unwrap_or("")));
    for (k, v) in labels.iter().filter(|(k, _)| k.as_str() != "job") {
        let _ = write!(path, "/{k}@base64/{}", enc(v));
    }
    path
}

/// The status page.
pub fn status_page(store: &StoreView, prefix: &str, node: &NodeStatus, flags: &[(&str, String)]) -> String {
    let mut body = String::new();
    let _ = write!(
        body,
        "<!DOCTYPE html><html><head><meta charset=\"utf-8\"><title>Pushgateway</title>\
         <link rel=\"stylesheet\" href=\"{prefix}/static/prometheus.css\"><script src=\"{prefix}/static/functions.js\"></script></head><body>\
         <h1>Pushgateway</h1><h2>Cluster</h2><p>Node {} is {} in term {}; leader: {}; log index {}, applied index {}.</p><table>",
        node.node_id,
        esc(&node.role),
        node.term,
        node.leader.map(|l| l.to_string()).unwrap_or_else(|| "unknown".into()),
        node.last_log_index,
        node.applied_index,
    );
    for (id, addr) in &node.voters {
        let _ = write!(body, "<tr><td>{id}</td><td>voter</td><td>{}</td></tr>", esc(addr));
    }
    for (id, addr) in &node.learners {
        let _ = write!(body, "<tr><td>{id}</td><td>learner</td><td>{}</td></tr>", esc(addr));
    }
    body.push_str("</table><h2>Metrics</h2>");
    if store.is_empty() {
        body.push_str("<p>No metrics pushed yet.</p>");
    }
    for group in store.groups() {
        let labels: Vec<String> = group
            .key
            .labels()
            .iter()
            .map(|(k, v)| format!("<span class=\"label\">{}=\"{}\"</span>", esc(k), esc(v)))
            .collect();
        let _ = write!(
            body,
            "<div class=\"group\"><h3>{}</h3><p>Last push: {} &middot; last push successful: {} \
             <button onclick=\"deleteGroup('{}')\">Delete group</button></p><ul>",
            labels.join(" "),
            if group.push_time.is_never() { "never".to_string() } else { rfc3339(group.push_time) },
            group.last_push_successful(),
            esc(&delete_path(prefix, group.key.labels()))
        );
        for stored in group.families.values() {
            let f = &stored.family;
            let _ = write!(body, "<li><b>{}</b> ({})", esc(&f.name), f.metric_type.lower_name());
            if let Some(h) = &f.help {
                let _ = write!(body, " &mdash; {}", esc(h));
            }
            body.push_str("<ul>");
            for m in &f.metrics {
                let ls: Vec<String> = m.labels.iter().map(|l| format!("{}=\"{}\"", l.name, l.value)).collect();
                let v = match m.value.classic() {
                    Value::Summary(s) => format!("count {}, sum {}", s.count, format_g(s.sum)),
                    Value::Histogram(h) => match m.value.proto_fields().and_then(crate::exposition::native::native) {
                        // As upstream 1.9+: the native representation, and the classic buckets beside.
                        Some(native) if h.buckets.is_empty() => format!("native {}", native.display()),
                        Some(native) => {
                            format!("native {}; classic count {}, sum {}", native.display(), h.count, format_g(h.sum))
                        }
                        None => format!("count {}, sum {}", h.count, format_g(h.sum)),
                    },
                    other => format_g(other.scalar().unwrap_or(0.0)),
                };
                let _ = write!(body, "<li>{{{}}} {}</li>", esc(&ls.join(",")), esc(&v));
            }
            body.push_str("</ul></li>");
        }
        body.push_str("</ul></div>");
    }
    body.push_str("<h2>Flags</h2><table>");
    for (k, v) in flags {
        let _ = write!(body, "<tr><td>{}</td><td>{}</td></tr>", esc(k), esc(v));
    }
    body.push_str("</table></body></html>");
    body
}

/// Files under `/static/`: `(content type, body)`. `/` lists them, as Go's file
/// server lists a directory (1.11's Go writes the doctype and viewport lines).
pub fn static_file(path: &[u8]) -> Option<(&'static str, String)> {
    const FILES: &[(&str, &str)] = &[
        (
            "functions.js",
            "function deleteGroup(path) {\n  if (!confirm('Delete this group?')) { return; }\n  \
             fetch(path, { method: 'DELETE' }).then(function () { location.reload(); });\n}\n",
        ),
        (
            "prometheus.css",
            "body { font-family: sans-serif; margin: 2em; }\n.group { border: 1px solid #ccc; padding: 0.5em; margin: 0.5em 0; }\n\
             .label { background: #eef; padding: 0 0.3em; margin-right: 0.3em; }\n",
        ),
    ];
    if path == b"/" {
        let mut listing =
            String::from("<!doctype html>\n<meta name=\"viewport\" content=\"width=device-width\">\n<pre>\n");
        for (name, _) in FILES {
            let _ = writeln!(listing, "<a href=\"{name}\">{name}</a>");
        }
        listing.push_str("</pre>\n");
        return Some(("text/html; charset=utf-8", listing));
    }
    let name = path.strip_prefix(b"/")?;
    FILES.iter().find(|(n, _)| n.as_bytes() == name).map(|(n, body)| (static_content_type(n), body.to_string()))
}

/// The content type of a static file by its extension: the fixed table of prometheus/common's
/// `StaticFileServer` (the same from 1.5.1 to 1.11; no charset), `text/plain; charset=utf-8`
/// for anything else (what Go's sniffing gives the text files without an extension).
pub fn static_content_type(name: &str) -> &'static str {
    match name.rsplit_once('.').map(|(_, ext)| ext) {
        Some("cjs" | "js") => "application/javascript",
        Some("css") => "text/css",
        Some("eot") => "font/eot",
        Some("gif") => "image/gif",
        Some("ico") => "image/x-icon",
        Some("jpg") => "image/jpeg",
        Some("json" | "map") => "application/json",
        Some("less" | "txt") => "text/plain",
        Some("otf") => "font/otf",
        Some("png") => "image/png",
        Some("svg") => "image/svg+xml",
        Some("ttf") => "font/ttf",
        Some("woff") => "font/woff",
        Some("woff2") => "font/woff2",
        _ => "text/plain; charset=utf-8",
    }
}

/// `/debug/pprof/`: this server is not a Go program; say what exists instead.
pub fn pprof_page() -> &'static str {
    "<html><head><title>/debug/pprof/</title></head><body>\
     <p>Go runtime profiles are not available: this Pushgateway is written in Rust. \
     Process metrics are exposed as process_* on the telemetry path.</p></body></html>\n"
}
