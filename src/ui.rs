//! The web pages: the status page at `/` and `/status`, its static files, and a
//! `/debug/pprof/` page that says what is available instead of Go's profiles.
//!
//! The status page follows upstream's: a navbar with a Metrics and a Status tab; on the
//! Metrics tab one foldable panel per group (closed until clicked), with its labels as
//! badges, its last push time, whether that push succeeded, a delete button, and every
//! family with its series (histogram buckets and summary quantiles included); on the
//! Status tab the cluster's members, the start time, the build and the flags. It is
//! built here as one string, with no per-group work in the browser but the relative
//! times, so that it stays fast with thousands of groups; the style and the scripts are
//! the two small files of [`static_file`], with nothing loaded from elsewhere.

use std::collections::BTreeMap;
use std::fmt::Write as _;

use base64::engine::general_purpose::URL_SAFE;
use base64::Engine;

use cluster::{MemberStatus, NodeStatus};
use model::go_format::write_g;
use model::{Group, MetricFamily, StoreView, UnixNanos, Value};

use chrono::{DateTime, SecondsFormat, Utc};

use crate::api::{build_information, rfc3339};

/// Appends `s` escaped for HTML text and attribute values (quoted with either quote).
fn push_esc(out: &mut String, s: &str) {
    for c in s.chars() {
        match c {
            '&' => out.push_str("&amp;"),
            '<' => out.push_str("&lt;"),
            '>' => out.push_str("&gt;"),
            '"' => out.push_str("&quot;"),
            '\'' => out.push_str("&#39;"),
            c => out.push(c),
        }
    }
}

fn esc(s: &str) -> String {
    let mut out = String::with_capacity(s.len());
    push_esc(&mut out, s);
    out
}

/// The path that deletes a group: every value base64-encoded, so any value works.
fn delete_path(prefix: &str, labels: &BTreeMap<String, String>) -> String {
    let enc = |v: &str| if v.is_empty() { "=".to_string() } else { URL_SAFE.encode(v) };
    let mut path = format!("{prefix}/metrics/job@base64/{}", enc(labels.get("job").map(String::as_str).unwrap_or("")));
    for (k, v) in labels.iter().filter(|(k, _)| k.as_str() != "job") {
        let _ = write!(path, "/{k}@base64/{}", enc(v));
    }
    path
}

/// One label as a badge, coloured as upstream does: `job`, `instance`, any other.
fn push_label_badge(out: &mut String, name: &str, value: &str) {
    let class = match name {
        "job" => "b-job",
        "instance" => "b-instance",
        _ => "b-label",
    };
    let _ = write!(out, "<span class=\"badge {class}\">");
    push_esc(out, name);
    out.push_str("=&quot;");
    push_esc(out, value);
    out.push_str("&quot;</span> ");
}

/// A point in time: its RFC 3339 text to the second, as upstream's page shows it (what
/// shows without scripts; the full precision in `datetime` and the tooltip), and an empty
/// `span.ago` whose `data-unix` (seconds) the page's script turns into "3 minutes ago".
fn push_time(out: &mut String, t: UnixNanos) {
    if push_time_only(out, t) {
        let _ = write!(out, " <span class=\"ago\" data-unix=\"{}\"></span>", t.0.div_euclid(1_000_000_000));
    }
}

/// [`push_time`] without the relative time (the families' times: no work in the browser
/// for each); false for "never".
fn push_time_only(out: &mut String, t: UnixNanos) -> bool {
    if t.is_never() {
        out.push_str("never");
        return false;
    }
    let full = rfc3339(t);
    let seconds = t.0.div_euclid(1_000_000_000);
    let text =
        DateTime::<Utc>::from_timestamp(seconds, 0).unwrap_or_default().to_rfc3339_opts(SecondsFormat::Secs, true);
    let _ = write!(out, "<time datetime=\"{full}\" title=\"{full}\">{text}</time>");
    true
}

/// A sample value as upstream's page writes it (Go's `FormatFloat(f, 'f', -1, 64)`): the
/// shortest decimal that reads back the same, never an exponent.
fn push_number(out: &mut String, v: f64) {
    if v.is_nan() {
        out.push_str("NaN");
    } else if v.is_infinite() {
        out.push_str(if v > 0.0 { "+Inf" } else { "-Inf" });
    } else {
        let _ = write!(out, "{v}");
    }
}

/// A row of a value's table: a heading (HTML) and a number that `cell` writes.
fn push_row(out: &mut String, heading: &str, cell: impl FnOnce(&mut String)) {
    let _ = write!(out, "<tr><th>{heading}</th><td>");
    cell(out);
    out.push_str("</td></tr>");
}

/// One series' value as upstream's page shows it: a scalar as a number; a summary as
/// its quantiles, count and sum; a histogram as its native representation (when it has
/// native buckets) and its classic buckets (`le` and cumulative count), count and sum.
fn push_value(out: &mut String, value: &Value) {
    match value.classic() {
        Value::Summary(s) => {
            out.push_str("<table class=\"dist\">");
            for q in &s.quantiles {
                let mut heading = String::from("Quantile ");
                write_g(&mut heading, q.quantile);
                push_row(out, &heading, |out| push_number(out, q.value));
            }
            push_row(out, "Sample Count", |out| {
                let _ = write!(out, "{}", s.count);
            });
            push_row(out, "Sample Sum", |out| push_number(out, s.sum));
            out.push_str("</table>");
        }
        Value::Histogram(h) => {
            out.push_str("<table class=\"dist\">");
            let native = value.proto_fields().and_then(crate::exposition::native::native);
            if let Some(native) = &native {
                push_row(out, "Native Histogram representation", |out| push_esc(out, &native.display()));
            }
            for b in &h.buckets {
                let mut heading = String::from("Sample values &le; ");
                push_number(&mut heading, b.upper_bound);
                push_row(out, &heading, |out| {
                    let _ = write!(out, "{}", b.cumulative_count);
                });
            }
            // As upstream: a native histogram without classic buckets shows its native
            // representation alone (which holds the count and sum).
            if native.is_none() || !h.buckets.is_empty() {
                push_row(out, "Total sample Count", |out| {
                    let _ = write!(out, "{}", h.count);
                });
                push_row(out, "Sample Sum", |out| push_number(out, h.sum));
            }
            out.push_str("</table>");
        }
        other => {
            push_number(out, other.scalar().unwrap_or(0.0));
        }
    }
}

/// One family: name, type, help, when it was pushed, and a table of its series.
fn push_family(out: &mut String, f: &MetricFamily, pushed_at: UnixNanos) {
    out.push_str("<div class=\"family\"><h3><span class=\"fname\">");
    push_esc(out, &f.name);
    let _ = write!(out, "</span> <span class=\"badge b-type\">{}</span> ", f.metric_type.upper_name());
    if let Some(help) = f.help.as_deref().filter(|h| !h.is_empty()) {
        out.push_str("<span class=\"help\">");
        push_esc(out, help);
        out.push_str("</span> ");
    }
    out.push_str("<span class=\"muted\">last pushed: ");
    push_time_only(out, pushed_at);
    out.push_str("</span></h3><table class=\"series\"><thead><tr><th>Labels</th><th>Value</th></tr></thead><tbody>");
    for m in &f.metrics {
        out.push_str("<tr><td>");
        for l in &m.labels {
            push_label_badge(out, l.name, l.value);
        }
        out.push_str("</td><td>");
        push_value(out, &m.value);
        out.push_str("</td></tr>");
    }
    out.push_str("</tbody></table></div>");
}

/// One group's panel: a `<details>` element, closed until its header is clicked.
fn push_group(out: &mut String, prefix: &str, n: usize, group: &Group, default_ttl: Option<model::Ttl>) {
    let ok = group.last_push_successful();
    let _ = write!(
        out,
        "<details class=\"group{}\" id=\"group-panel-{n}\"><summary><span class=\"caret\"></span>",
        if ok { "" } else { " failed" }
    );
    let labels = group.key.labels();
    for (k, v) in labels {
        push_label_badge(out, k, v);
    }
    out.push_str("<span class=\"muted pushed\">last pushed: ");
    push_time(out, group.push_time);
    out.push_str("</span>");
    if let Some(expiry) = crate::api::expiry_json(group, default_ttl) {
        let text = |k: &str| expiry[k].as_str().unwrap_or_default().to_string();
        let _ = write!(
            out,
            " <span class=\"muted expiry\" title=\"TTL {} ({})\">expires: {}</span>",
            esc(&text("ttl")),
            if text("source") == "push" { "named by its last push" } else { "--push.default-ttl" },
            esc(&text("expires_at")),
        );
    }
    if !ok {
        out.push_str(" <span class=\"badge b-fail\" role=\"alert\">Last push failed!</span> <span class=\"muted\">at ");
        push_time(out, group.push_failure_time);
        out.push_str("</span>");
    }
    out.push_str("<button type=\"button\" class=\"btn danger del\" data-path=\"");
    push_esc(out, &delete_path(prefix, labels));
    out.push_str("\" data-group=\"{");
    for (i, (k, v)) in labels.iter().enumerate() {
        if i > 0 {
            out.push_str(", ");
        }
        push_esc(out, k);
        out.push_str("=&quot;");
        push_esc(out, v);
        out.push_str("&quot;");
    }
    out.push_str("}\">Delete Group</button></summary><div class=\"group-body\">");
    // The pushed families and the two timestamp families in name order, as upstream lists them.
    let stamps = group.timestamp_families();
    let mut families: Vec<(&MetricFamily, UnixNanos)> = group
        .families
        .values()
        .map(|s| (&s.family, s.pushed_at))
        .chain(stamps.iter().map(|(f, at)| (f, *at)))
        .collect();
    families.sort_by(|a, b| a.0.name.cmp(&b.0.name));
    for (f, at) in families {
        push_family(out, f, at);
    }
    out.push_str("</div></details>");
}

/// The cluster's members as the answering node knows them: one row each, the leader
/// and this node marked, a member that did not answer (or whose Raft stopped) in red,
/// a lag above 0 highlighted.
fn push_cluster(out: &mut String, node: &NodeStatus, members: &[MemberStatus]) {
    let _ = write!(
        out,
        "<h2>Cluster</h2><p class=\"muted\">This is node {} ({}), term {}; leader: {}.</p>\
         <table class=\"cluster\"><thead><tr><th>ID</th><th>Peer address</th><th>Membership</th><th>Role</th>\
         <th>Term</th><th>Leader</th><th>Applied index</th><th>Last log index</th><th>Lag</th><th>Health</th>\
         <th>Format version</th><th>Read staleness</th></tr></thead><tbody>",
        node.node_id,
        esc(&node.role),
        node.term,
        node.leader.map(|l| l.to_string()).unwrap_or_else(|| "unknown".into()),
    );
    for m in members {
        let down = m.status.as_ref().is_none_or(|s| s.stopped.is_some());
        let leader = node.leader == Some(m.id);
        let _ = write!(
            out,
            "<tr class=\"member{}{}\" data-id=\"{}\"><td>{}",
            if down { " down" } else { "" },
            if leader { " leader" } else { "" },
            m.id,
            m.id
        );
        if leader {
            out.push_str(" <span class=\"badge b-leader\">leader</span>");
        }
        if m.id == node.node_id {
            out.push_str(" <span class=\"badge b-self\">this node</span>");
        }
        out.push_str("</td><td>");
        if m.address.is_empty() {
            out.push_str("&mdash;");
        }
        push_esc(out, &m.address);
        let _ = write!(out, "</td><td>{}</td>", if m.voter { "voter" } else { "learner" });
        match &m.status {
            Some(s) => {
                let lag = m.lag(members).unwrap_or(0);
                let _ = write!(
                    out,
                    "<td>{}</td><td>{}</td><td>{}</td><td class=\"num\">{}</td><td class=\"num\">{}</td>\
                     <td class=\"num{}\">{lag}</td>",
                    esc(&s.role),
                    s.term,
                    s.leader.map(|l| l.to_string()).unwrap_or_else(|| "none".into()),
                    s.applied_index,
                    s.last_log_index,
                    if lag > 0 { " lag" } else { "" },
                );
                match &s.stopped {
                    Some(why) => {
                        out.push_str("<td class=\"bad\">stopped: ");
                        push_esc(out, why);
                        out.push_str("</td>");
                    }
                    None => out.push_str("<td class=\"good\">answered</td>"),
                }
                let _ = write!(
                    out,
                    "<td>{} (supports {})</td><td>{}.{:03} s ({} stale reads)</td>",
                    s.format_version,
                    s.format_supported,
                    s.read_staleness_millis / 1000,
                    s.read_staleness_millis % 1000,
                    s.stale_reads
                );
            }
            None => {
                out.push_str("<td>&mdash;</td><td>&mdash;</td><td>&mdash;</td><td>&mdash;</td><td>&mdash;</td><td>&mdash;</td><td class=\"bad\">");
                push_esc(out, m.error.as_deref().unwrap_or("no answer"));
                out.push_str("</td><td>&mdash;</td><td>&mdash;</td>");
            }
        }
        out.push_str("</tr>");
    }
    out.push_str("</tbody></table>");
}

/// A table of names and values (build information, flags).
fn push_key_values<'a>(out: &mut String, title: &str, rows: impl Iterator<Item = (&'a str, &'a str)>) {
    let _ = write!(out, "<h2>{title}</h2><table class=\"kv\"><tbody>");
    for (k, v) in rows {
        out.push_str("<tr><th scope=\"row\">");
        push_esc(out, k);
        out.push_str("</th><td>");
        push_esc(out, v);
        out.push_str("</td></tr>");
    }
    out.push_str("</tbody></table>");
}

/// The status page. `prefix` is the route prefix (empty or `/something`), which every
/// link and every path the page's script calls starts with; `members` the cluster's
/// members as this node knows them; `flags` the flags in force; `started` when this
/// process started. "Delete All Groups" is offered only where the admin API is enabled,
/// as upstream does; a group's "Delete Group" always.
pub fn status_page(
    store: &StoreView,
    prefix: &str,
    node: &NodeStatus,
    members: &[MemberStatus],
    flags: &[(&str, String)],
    started: UnixNanos,
) -> String {
    let mut body = String::with_capacity(4096 + store.len() * 2048);
    // The icon is empty: browsers would otherwise ask for `/favicon.ico`, which is not served.
    let p = esc(prefix);
    let _ = write!(
        body,
        "<!DOCTYPE html><html lang=\"en\"><head><meta charset=\"utf-8\"><meta name=\"robots\" content=\"noindex,nofollow\">\
         <meta name=\"viewport\" content=\"width=device-width, initial-scale=1\"><title>Prometheus Pushgateway</title><link rel=\"icon\" href=\"data:,\">\
         <link rel=\"stylesheet\" href=\"{p}/static/prometheus.css\"><script src=\"{p}/static/functions.js\" defer></script>\
         </head><body><nav class=\"navbar\"><a class=\"brand\" href=\"#metrics\">Pushgateway</a>\
         <a class=\"tab active\" id=\"metrics-li\" href=\"#metrics\">Metrics</a><a class=\"tab\" id=\"status-li\" href=\"#status\">Status</a>\
         <span class=\"node\">node {} &middot; {}</span></nav><main><section id=\"metrics-div\">",
        node.node_id,
        esc(&node.role),
    );
    let groups = store.len();
    let _ = write!(
        body,
        "<div class=\"toolbar\"><span class=\"muted\">{groups} group{}</span>",
        if groups == 1 { "" } else { "s" }
    );
    if flags.iter().any(|(k, v)| *k == "web.enable-admin-api" && v == "true") {
        let _ = write!(
            body,
            "<button type=\"button\" class=\"btn danger\" id=\"del-all\" data-path=\"{p}/api/v1/admin/wipe\"{}>\
             Delete All <span class=\"badge b-count\" id=\"del-all-counter\">{groups}</span> Groups</button>",
            if groups == 0 { " disabled" } else { "" }
        );
    }
    body.push_str("</div>");
    if store.is_empty() {
        body.push_str("<p class=\"empty\">No metrics pushed yet.</p>");
    }
    let default_ttl = flags
        .iter()
        .find(|(k, _)| *k == "push.default-ttl")
        .and_then(|(_, v)| crate::config::parse_go_duration(v).ok())
        .map(|d| model::Ttl(d.as_millis() as u64))
        .filter(|t| t.millis() > 0);
    for (n, group) in store.groups().enumerate() {
        push_group(&mut body, prefix, n + 1, group, default_ttl);
    }
    body.push_str("</section><section id=\"status-div\" hidden>");
    push_cluster(&mut body, node, members);
    body.push_str("<h2>Runtime Information</h2><table class=\"kv\"><tbody><tr><th scope=\"row\">Started</th><td>");
    push_time(&mut body, started);
    body.push_str("</td></tr></tbody></table>");
    push_key_values(&mut body, "Build Information", build_information().into_iter());
    push_key_values(&mut body, "Startup Flags", flags.iter().map(|(k, v)| (*k, v.as_str())));
    body.push_str("</section></main></body></html>");
    body
}

/// The answer to `GET /static/<path>`.
#[derive(Debug, PartialEq, Eq)]
pub enum StaticAnswer {
    /// A file, or the listing of the directory: its content type and its body.
    File(&'static str, String),
    /// Go's file server redirecting (301, no body) to this location, relative to the
    /// request's path; the request's query is kept.
    Moved(String),
    NotFound,
}

/// Files under `/static/`, answered as Go's file server answers them (`path` is the
/// decoded path after `/static`, already cleaned as Go's ServeMux cleans it): `/` lists
/// them (1.11's Go writes the doctype and viewport lines); a path ending in `/index.html`
/// is moved to `./` whether or not it exists, and a file's path with a trailing slash to
/// `../<file>`.
pub fn static_file(path: &[u8]) -> StaticAnswer {
    const FILES: &[(&str, &str)] = &[
        ("functions.js", include_str!("ui_static/functions.js")),
        ("prometheus.css", include_str!("ui_static/prometheus.css")),
    ];
    if path == b"/" {
        let mut listing =
            String::from("<!doctype html>\n<meta name=\"viewport\" content=\"width=device-width\">\n<pre>\n");
        for (name, _) in FILES {
            let _ = writeln!(listing, "<a href=\"{name}\">{name}</a>");
        }
        listing.push_str("</pre>\n");
        return StaticAnswer::File("text/html; charset=utf-8", listing);
    }
    if path.ends_with(b"/index.html") {
        return StaticAnswer::Moved("./".to_string());
    }
    let Some(name) = path.strip_prefix(b"/") else { return StaticAnswer::NotFound };
    let (name, slash) = match name.strip_suffix(b"/") {
        Some(name) => (name, true),
        None => (name, false),
    };
    match FILES.iter().find(|(n, _)| n.as_bytes() == name) {
        Some((n, _)) if slash => StaticAnswer::Moved(format!("../{n}")),
        Some((n, body)) => StaticAnswer::File(static_content_type(n), body.to_string()),
        None => StaticAnswer::NotFound,
    }
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

#[cfg(test)]
pub(crate) mod tests {
    use model::{Command, GroupStore, GroupingKey};

    use super::*;
    use crate::exposition::text_parse::parse_text;

    /// Go's file server: `index.html` moved to its directory whether it exists or not, a
    /// file's path with a trailing slash moved to the file, anything else unknown.
    #[test]
    fn static_paths_move_as_gos_file_server_moves_them() {
        assert_eq!(static_file(b"/index.html"), StaticAnswer::Moved("./".into()));
        assert_eq!(static_file(b"/nope/index.html"), StaticAnswer::Moved("./".into()));
        assert_eq!(static_file(b"/functions.js/"), StaticAnswer::Moved("../functions.js".into()));
        assert_eq!(static_file(b"/prometheus.css/"), StaticAnswer::Moved("../prometheus.css".into()));
        assert_eq!(static_file(b"/index.html/"), StaticAnswer::NotFound);
        assert_eq!(static_file(b"/nope.js/"), StaticAnswer::NotFound);
        assert_eq!(static_file(b"/functions.js/x"), StaticAnswer::NotFound);
        assert!(matches!(static_file(b"/functions.js"), StaticAnswer::File("application/javascript", _)));
        assert!(matches!(static_file(b"/"), StaticAnswer::File("text/html; charset=utf-8", _)));
    }

    /// A node of a three-voter cluster whose leader is `leader`.
    pub(crate) fn node(id: u64, leader: u64, last_log_index: u64, applied_index: u64) -> NodeStatus {
        NodeStatus {
            node_id: id,
            role: if id == leader { "leader" } else { "follower" }.into(),
            term: 3,
            leader: Some(leader),
            last_log_index,
            applied_index,
            purged_index: 0,
            voters: (1..=3).map(|i| (i, format!("10.0.0.{i}:9092"))).collect(),
            learners: BTreeMap::new(),
            millis_since_quorum_ack: None,
            storage_bytes: 0,
            snapshot_bytes: 0,
            format_version: 4,
            format_supported: 4,
            stopped: None,
            read_staleness_millis: 1500,
            stale_reads: 0,
        }
    }

    fn page(store: &GroupStore, members: &[MemberStatus], admin: bool) -> String {
        let flags = [("web.enable-admin-api", admin.to_string())];
        status_page(&store.view(), "/pgw", &node(1, 1, 10, 10), members, &flags, UnixNanos(1_000_000_000))
    }

    #[test]
    fn user_text_is_escaped_and_every_path_has_the_prefix() {
        let mut store = GroupStore::new();
        let key = GroupingKey::new([("job", "j"), ("note", "<b>&\"'")].map(|(k, v)| (k.into(), v.into())).into());
        let families = parse_text(b"# HELP m <script>x</script>\nm{v=\"<i>\"} 1\n").expect("valid body");
        let outcome = store.apply(Command::Push { key, families, replace: true, time: UnixNanos(7), defect: None });
        assert_eq!(outcome, model::Outcome::Pushed);
        let html = page(&store, &[], false);
        assert!(html.contains("note=&quot;&lt;b&gt;&amp;&quot;&#39;&quot;"), "{html}");
        assert!(html.contains("&lt;script&gt;x&lt;/script&gt;") && !html.contains("<script>x"), "{html}");
        assert!(html.contains("v=&quot;&lt;i&gt;&quot;") && !html.contains("<i>"), "{html}");
        assert!(
            html.contains("href=\"/pgw/static/prometheus.css\"") && html.contains("src=\"/pgw/static/functions.js\"")
        );
        assert!(html.contains("data-path=\"/pgw/metrics/job@base64/ag==/note@base64/PGI-JiIn\""), "{html}");
        assert!(!html.contains("id=\"del-all\""), "no Delete All without the admin API");
        assert!(page(&store, &[], true).contains("data-path=\"/pgw/api/v1/admin/wipe\""));
    }

    #[test]
    fn the_cluster_table_marks_the_leader_the_unreachable_and_the_lagging() {
        let member = |id: u64, status: Option<NodeStatus>| MemberStatus {
            id,
            address: format!("10.0.0.{id}:9092"),
            voter: true,
            error: status.is_none().then(|| "timed out <after 1s>".into()),
            status,
        };
        let members = [member(1, Some(node(1, 1, 10, 10))), member(2, Some(node(2, 1, 9, 7))), member(3, None)];
        let html = page(&GroupStore::new(), &members, false);
        assert!(html.contains("<tr class=\"member leader\" data-id=\"1\">"), "{html}");
        assert!(html.contains("<tr class=\"member\" data-id=\"2\">"), "{html}");
        assert!(html.contains("<td class=\"num lag\">3</td>"), "member 2 applied 7 of 10: {html}");
        assert!(html.contains("<tr class=\"member down\" data-id=\"3\">"), "{html}");
        assert!(html.contains("timed out &lt;after 1s&gt;"), "{html}");
        assert!(html.contains("No metrics pushed yet."));
    }
}
