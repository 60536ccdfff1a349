//! Every route of the server, and request routing that answers exactly as upstream's
//! stack does (Go's `ServeMux` in front of two `httprouter` trees):
//!
//! 1. the decoded path is cleaned (`//`, `.`, `..`); if that changes it: 301 to the
//!    cleaned path;
//! 2. `<prefix>/api/v1` is redirected to `<prefix>/api/v1/`; below it the API tree
//!    answers (CORS headers, no gzip wrapper);
//! 3. everything else goes to the main tree (behind the gzip request wrapper);
//! 4. in a tree: a match runs the handler; otherwise a trailing-slash variant or a
//!    case-insensitive match is redirected (301 for GET, 307 otherwise); otherwise
//!    OPTIONS answers the allowed methods, another method 405 with `Allow`, else 404.

use axum::http::Method;

use crate::access::Role;
use crate::config::Config;

/// What a matched request is for.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Endpoint {
    Healthy,
    Ready,
    Scrape,
    /// PUT (`replace`) or POST push.
    Push {
        replace: bool,
        job_base64: bool,
    },
    Delete {
        job_base64: bool,
    },
    /// PUT (`replace`) or POST of several groups at once (`/metrics/batch`).
    Batch {
        replace: bool,
    },
    Static,
    StatusPage,
    Pprof,
    Quit,
    QuitForbidden,
    QuitWrongMethod,
    ApiStatus,
    ApiMetrics,
    ApiWipe,
    ApiOptions,
    /// Cluster status of this node.
    ApiCluster,
    /// Every member's status, asked from each.
    ApiClusterMembers,
    /// Membership changes (admin API).
    ApiClusterAdd,
    ApiClusterRemove,
    ApiClusterCheckpoint,
    /// Import of upstream's persistence file (admin API).
    ApiImport,
    /// Deletion of the groups matching label selectors (admin API).
    ApiDeleteMatching,
    /// `/-/metrics`: this node's own metrics alone.
    NodeMetrics,
}

impl Endpoint {
    /// The `handler` label of `pushgateway_http_requests_total`, as upstream names it.
    pub fn metric_name(self) -> &'static str {
        match self {
            Endpoint::Healthy => "healthy",
            Endpoint::Ready => "ready",
            Endpoint::Scrape => "metrics",
            Endpoint::Push { .. } => "push",
            Endpoint::Delete { .. } => "delete",
            Endpoint::Batch { .. } => "batch",
            Endpoint::Static => "static",
            Endpoint::StatusPage => "status",
            Endpoint::Pprof => "pprof",
            Endpoint::Quit | Endpoint::QuitForbidden | Endpoint::QuitWrongMethod => "quit",
            Endpoint::ApiStatus => "api/v1/status",
            Endpoint::ApiMetrics => "api/v1/metrics",
            Endpoint::ApiWipe => "wipe",
            Endpoint::ApiOptions => "api/v1/options",
            Endpoint::ApiCluster => "api/v1/cluster",
            Endpoint::ApiClusterMembers => "api/v1/cluster/members",
            Endpoint::ApiClusterAdd => "api/v1/admin/cluster/add",
            Endpoint::ApiClusterRemove => "api/v1/admin/cluster/remove",
            Endpoint::ApiClusterCheckpoint => "api/v1/admin/cluster/checkpoint",
            Endpoint::ApiImport => "api/v1/admin/import",
            Endpoint::ApiDeleteMatching => "api/v1/admin/delete",
            Endpoint::NodeMetrics => "node_metrics",
        }
    }
}

impl Endpoint {
    /// The role a principal of `--web.access-config.file` needs for the endpoint (`None`:
    /// any authenticated principal: the health checks, CORS preflight). Exhaustive on
    /// purpose: a new endpoint does not compile until it says who may call it.
    pub fn required_role(self) -> Option<Role> {
        match self {
            Endpoint::Healthy | Endpoint::Ready | Endpoint::ApiOptions => None,
            // A batch is also checked group by group against the push rules.
            Endpoint::Push { .. } | Endpoint::Delete { .. } | Endpoint::Batch { .. } => Some(Role::Push),
            Endpoint::Scrape
            | Endpoint::NodeMetrics
            | Endpoint::Static
            | Endpoint::StatusPage
            | Endpoint::Pprof
            | Endpoint::ApiStatus
            | Endpoint::ApiMetrics
            | Endpoint::ApiCluster
            | Endpoint::ApiClusterMembers => Some(Role::Read),
            Endpoint::ApiWipe
            | Endpoint::ApiDeleteMatching
            | Endpoint::ApiImport
            | Endpoint::ApiClusterAdd
            | Endpoint::ApiClusterRemove
            | Endpoint::ApiClusterCheckpoint
            | Endpoint::Quit
            | Endpoint::QuitForbidden
            | Endpoint::QuitWrongMethod => Some(Role::Admin),
        }
    }
}

#[derive(Clone, Debug, PartialEq, Eq)]
enum Segment {
    Static(String),
    /// `:name`: one non-empty segment.
    Param,
    /// `*name`: the rest of the path, starting with `/`.
    CatchAll,
}

#[derive(Clone, Debug)]
struct Route {
    method: Method,
    /// As listed, for the words of a conflict.
    pattern: String,
    segments: Vec<Segment>,
    /// Whether the pattern ends with `/` (only `<prefix>/`).
    trailing_slash: bool,
    endpoint: Endpoint,
}

/// Values captured by `:job` and `*labels`.
#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub struct Params {
    pub job: Vec<u8>,
    pub rest: Vec<u8>,
}

/// The result of routing one request.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum Routed {
    Matched {
        endpoint: Endpoint,
        params: Params,
    },
    Redirect {
        location: Vec<u8>,
        status: u16,
    },
    /// A redirect of Go's `ServeMux` in front of both trees (a path it cleans, or
    /// `<prefix>/api/v1` to `<prefix>/api/v1/`): 301, and an empty query (`…?`) is not
    /// kept, as Go builds the new URL from the path and the raw query alone (a tree's own
    /// redirects keep it).
    MuxRedirect {
        location: Vec<u8>,
    },
    /// OPTIONS on a known path: 200 with `Allow`.
    Options {
        allow: String,
    },
    MethodNotAllowed {
        allow: String,
    },
    NotFound,
}

fn parse_pattern(pattern: &str) -> (Vec<Segment>, bool) {
    let trailing = pattern.len() > 1 && pattern.ends_with('/');
    let segments = pattern
        .trim_matches('/')
        .split('/')
        .filter(|s| !s.is_empty())
        .map(|s| {
            if s.starts_with(':') {
                Segment::Param
            } else if s.starts_with('*') {
                Segment::CatchAll
            } else {
                Segment::Static(s.to_string())
            }
        })
        .collect();
    (segments, trailing)
}

/// Whether httprouter refuses `a` beside `b` (same method): the same path, or, past the
/// segments they share, a wildcard facing anything but the same wildcard.
fn clash(a: &Route, b: &Route) -> bool {
    for (x, y) in a.segments.iter().zip(&b.segments) {
        match (x, y) {
            (Segment::Static(s), Segment::Static(t)) if s == t => {}
            (Segment::Static(_), Segment::Static(_)) => return false,
            (Segment::Param, Segment::Param) | (Segment::CatchAll, Segment::CatchAll) => {}
            _ => return true,
        }
    }
    a.segments.len() == b.segments.len() && a.trailing_slash == b.trailing_slash
}

/// A routing tree (a list of routes; upstream has two: main and API).
#[derive(Clone, Debug, Default)]
struct Tree {
    routes: Vec<Route>,
}

impl Tree {
    fn add(&mut self, method: Method, pattern: &str, endpoint: Endpoint) {
        let (segments, trailing_slash) = parse_pattern(pattern);
        self.routes.push(Route { method, pattern: pattern.to_string(), segments, trailing_slash, endpoint });
    }

    /// The first pair of routes upstream's router (httprouter) refuses to hold together,
    /// which stops upstream at start-up: one path twice for a method, a wildcard where
    /// another route of the method has anything else at the same place, or a `*` that does
    /// not start the last segment. Routes come from flags (the prefix, the telemetry path),
    /// so this is checked once, before the server starts; quadratic in the few routes.
    fn conflict(&self) -> Option<String> {
        for (i, a) in self.routes.iter().enumerate() {
            let last = a.segments.len().saturating_sub(1);
            let misplaced_star = a.segments.iter().enumerate().any(|(k, seg)| match seg {
                Segment::Static(s) => s.contains('*'),
                Segment::CatchAll => k != last,
                Segment::Param => false,
            });
            if misplaced_star {
                return Some(format!(
                    "{} {}: a catch-all (*) is allowed only as the last segment",
                    a.method, a.pattern
                ));
            }
            if let Some(b) = self.routes[..i].iter().find(|b| b.method == a.method && clash(a, b)) {
                return Some(format!("{} {} conflicts with {} {}", a.method, a.pattern, b.method, b.pattern));
            }
        }
        None
    }

    fn find(&self, method: &Method, path: &[u8], case_insensitive: bool) -> Option<(&Route, Params, Vec<u8>)> {
        self.routes
            .iter()
            .filter(|r| r.method == *method)
            .find_map(|r| match_route(r, path, case_insensitive).map(|(p, fixed)| (r, p, fixed)))
    }

    /// httprouter's trailing slash recommendation for `path` in `method`'s tree.
    fn trailing_slash_redirect(&self, method: &Method, path: &[u8]) -> Option<Vec<u8>> {
        if let Some(stripped) = path.strip_suffix(b"/") {
            if self.find(method, stripped, false).is_some() {
                return Some(stripped.to_vec());
            }
            // `/metrics/job/` where a `:job` parameter follows: httprouter recommends
            // dropping the slash, because its tree splits `job` from `job@base64` right
            // at that slash. (`/metrics/job@base64/` has no such node: plain 404.)
            let depth = stripped.split(|&b| b == b'/').filter(|s| !s.is_empty()).count();
            let routes: Vec<&Route> = self.routes.iter().filter(|r| r.method == *method).collect();
            let param_follows = routes.iter().any(|r| {
                depth > 0
                    && r.segments.len() > depth
                    && r.segments[depth] == Segment::Param
                    && match_prefix(&r.segments[..depth], stripped)
                    && matches!(&r.segments[depth - 1], Segment::Static(s) if routes.iter().any(|o| {
                        matches!(o.segments.get(depth - 1), Some(Segment::Static(t)) if t.len() > s.len() && t.starts_with(s.as_str()))
                    }))
            });
            if param_follows {
                return Some(stripped.to_vec());
            }
        } else {
            let mut with = path.to_vec();
            with.push(b'/');
            if self.find(method, &with, false).is_some() {
                return Some(with);
            }
        }
        None
    }

    /// Methods other than `except` that have a route for `path`, plus OPTIONS, sorted.
    fn allowed(&self, path: &[u8], except: &Method) -> String {
        let mut methods: Vec<&str> = self
            .routes
            .iter()
            .filter(|r| r.method != *except && r.method != Method::OPTIONS && match_route(r, path, false).is_some())
            .map(|r| r.method.as_str())
            .collect();
        if methods.is_empty() {
            return String::new();
        }
        methods.push("OPTIONS");
        methods.sort_unstable();
        methods.dedup();
        methods.join(", ")
    }

    fn route(&self, method: &Method, path: &[u8]) -> Routed {
        if let Some((route, params, _)) = self.find(method, path, false) {
            return Routed::Matched { endpoint: route.endpoint, params };
        }
        if *method != Method::CONNECT && path != b"/" {
            let status = if *method == Method::GET { 301 } else { 307 };
            if let Some(location) = self.trailing_slash_redirect(method, path) {
                return Routed::Redirect { location, status };
            }
            // Case-insensitive match, also with the trailing slash fixed.
            let toggled = match path.strip_suffix(b"/") {
                Some(stripped) => stripped.to_vec(),
                None => [path, b"/"].concat(),
            };
            for candidate in [path, toggled.as_slice()] {
                if let Some((_, _, fixed)) = self.find(method, candidate, true) {
                    return Routed::Redirect { location: fixed, status };
                }
            }
        }
        let allow = self.allowed(path, method);
        if allow.is_empty() {
            Routed::NotFound
        } else if *method == Method::OPTIONS {
            Routed::Options { allow }
        } else {
            Routed::MethodNotAllowed { allow }
        }
    }
}

fn match_prefix(segments: &[Segment], path: &[u8]) -> bool {
    let parts: Vec<&[u8]> = path.split(|&b| b == b'/').filter(|s| !s.is_empty()).collect();
    parts.len() == segments.len()
        && segments.iter().zip(parts).all(|(s, p)| match s {
            Segment::Static(t) => t.as_bytes() == p,
            _ => true,
        })
}

/// Matches `path` against a route. Returns the captured parameters and the path as
/// the route spells it (differs from `path` only in case, when `case_insensitive`).
fn match_route(route: &Route, path: &[u8], case_insensitive: bool) -> Option<(Params, Vec<u8>)> {
    let mut params = Params::default();
    let mut fixed: Vec<u8> = Vec::with_capacity(path.len());
    let mut rest = path.strip_prefix(b"/")?;
    for (i, segment) in route.segments.iter().enumerate() {
        match segment {
            Segment::CatchAll => {
                // The catch-all starts at the `/` before it.
                let start = path.len() - rest.len() - 1;
                if path.get(start) != Some(&b'/') {
                    return None;
                }
                params.rest = path[start..].to_vec();
                fixed.extend_from_slice(&path[start..]);
                return Some((params, fixed));
            }
            _ => {
                let end = rest.iter().position(|&b| b == b'/').unwrap_or(rest.len());
                let part = &rest[..end];
                match segment {
                    Segment::Static(s) => {
                        let same = if case_insensitive {
                            s.as_bytes().eq_ignore_ascii_case(part)
                        } else {
                            s.as_bytes() == part
                        };
                        if !same {
                            return None;
                        }
                        fixed.push(b'/');
                        fixed.extend_from_slice(s.as_bytes());
                    }
                    Segment::Param => {
                        if part.is_empty() {
                            return None;
                        }
                        params.job = part.to_vec();
                        fixed.push(b'/');
                        fixed.extend_from_slice(part);
                    }
                    Segment::CatchAll => unreachable!("handled above"),
                }
                rest = &rest[end..];
                let last = i + 1 == route.segments.len();
                if last {
                    break;
                }
                // The next segment is a catch-all: it needs the `/` still in `rest`.
                if matches!(route.segments.get(i + 1), Some(Segment::CatchAll)) {
                    if rest.is_empty() {
                        return None;
                    }
                    rest = &rest[1..];
                    continue;
                }
                rest = rest.strip_prefix(b"/")?;
            }
        }
    }
    if route.segments.is_empty() {
        // `<prefix>/` or `/`: nothing after the slash.
        return rest.is_empty().then(|| (params, b"/".to_vec()));
    }
    if route.trailing_slash {
        if rest == b"/" {
            fixed.push(b'/');
            return Some((params, fixed));
        }
        return None;
    }
    rest.is_empty().then_some((params, fixed))
}

/// The two routing trees and the path prefixes, built once from the configuration.
#[derive(Clone, Debug)]
pub struct RouteTable {
    main: Tree,
    api: Tree,
    /// `<prefix>/api/v1`.
    api_root: String,
    /// [`Config::route_prefix`], computed once (it parses `--web.external-url`).
    prefix: String,
}

impl RouteTable {
    /// Lists every route of the server.
    pub fn new(config: &Config) -> Self {
        let p = config.route_prefix();
        let mut main = Tree::default();
        main.add(Method::GET, &format!("{p}/-/healthy"), Endpoint::Healthy);
        main.add(Method::GET, &format!("{p}/-/ready"), Endpoint::Ready);
        main.add(Method::GET, &join_path(&p, &config.web_telemetry_path), Endpoint::Scrape);
        let node_metrics = format!("{p}/-/metrics");
        if node_metrics != join_path(&p, &config.web_telemetry_path) {
            main.add(Method::GET, &node_metrics, Endpoint::NodeMetrics);
        }
        for (suffix, job_base64) in [("", false), ("@base64", true)] {
            for tail in ["/:job/*labels", "/:job"] {
                let pattern = format!("{p}/metrics/job{suffix}{tail}");
                main.add(Method::PUT, &pattern, Endpoint::Push { replace: true, job_base64 });
                main.add(Method::POST, &pattern, Endpoint::Push { replace: false, job_base64 });
                main.add(Method::DELETE, &pattern, Endpoint::Delete { job_base64 });
            }
        }
        main.add(Method::PUT, &format!("{p}/metrics/batch"), Endpoint::Batch { replace: true });
        main.add(Method::POST, &format!("{p}/metrics/batch"), Endpoint::Batch { replace: false });
        main.add(Method::GET, &format!("{p}/static/*filepath"), Endpoint::Static);
        main.add(Method::GET, &format!("{p}/status"), Endpoint::StatusPage);
        main.add(Method::GET, &format!("{p}/"), Endpoint::StatusPage);
        main.add(Method::GET, &format!("{p}/debug/pprof/*pprof"), Endpoint::Pprof);
        let quit = if config.web_enable_lifecycle { Endpoint::Quit } else { Endpoint::QuitForbidden };
        main.add(Method::PUT, &format!("{p}/-/quit"), quit);
        main.add(Method::POST, &format!("{p}/-/quit"), quit);
        main.add(Method::GET, "/-/quit", Endpoint::QuitWrongMethod);

        let mut api = Tree::default();
        api.add(Method::OPTIONS, "/*path", Endpoint::ApiOptions);
        api.add(Method::GET, "/status", Endpoint::ApiStatus);
        api.add(Method::GET, "/metrics", Endpoint::ApiMetrics);
        api.add(Method::GET, "/cluster", Endpoint::ApiCluster);
        api.add(Method::GET, "/cluster/members", Endpoint::ApiClusterMembers);
        if config.web_enable_admin_api {
            api.add(Method::PUT, "/admin/wipe", Endpoint::ApiWipe);
            api.add(Method::POST, "/admin/cluster/add", Endpoint::ApiClusterAdd);
            api.add(Method::POST, "/admin/cluster/remove", Endpoint::ApiClusterRemove);
            api.add(Method::POST, "/admin/cluster/checkpoint", Endpoint::ApiClusterCheckpoint);
            api.add(Method::POST, "/admin/import", Endpoint::ApiImport);
            // PUT, as the wipe: the API's CORS answer does not allow it, so no web page
            // can send it from a browser.
            api.add(Method::PUT, "/admin/delete", Endpoint::ApiDeleteMatching);
        }
        RouteTable { main, api, api_root: format!("{p}/api/v1"), prefix: p }
    }

    /// The route prefix every route starts with (empty for none).
    pub fn prefix(&self) -> &str {
        &self.prefix
    }

    /// Why upstream would not start with these routes (see [`Tree::conflict`]): the route
    /// prefix or the telemetry path lands on another route.
    pub fn conflict(&self) -> Option<String> {
        self.main.conflict().or_else(|| self.api.conflict())
    }

    /// Routes a request by method and percent-decoded path.
    pub fn route(&self, method: &Method, path: &[u8]) -> Routed {
        self.route_wrapped(method, path).0
    }

    /// Routes a request as [`RouteTable::route`] does, and says whether the answer comes
    /// from the main tree, behind upstream's gzip request wrapper (step 3): such a request
    /// is refused for a bad gzip header before the tree answers anything, a match, 404,
    /// 405, `OPTIONS` or a redirect of its own.
    pub fn route_wrapped(&self, method: &Method, path: &[u8]) -> (Routed, bool) {
        // Go's `ServeMux`: a path that is (once cleaned) `<prefix>/api/v1` goes to
        // `<prefix>/api/v1/` at once; another path that cleaning changes, to the cleaned one.
        let cleaned = if *method == Method::CONNECT { path.to_vec() } else { clean_path(path) };
        let api_root = self.api_root.as_bytes();
        if cleaned == api_root {
            let mut location = cleaned;
            location.push(b'/');
            return (Routed::MuxRedirect { location }, false);
        }
        if cleaned != path {
            return (Routed::MuxRedirect { location: cleaned }, false);
        }
        if let Some(rest) = path.strip_prefix(api_root).filter(|r| r.starts_with(b"/")) {
            return (self.api.route(method, rest), false);
        }
        (self.main.route(method, path), true)
    }

    /// Routes a request by its path as sent (still percent-encoded; `None` if an escape is
    /// malformed) as [`RouteTable::route_wrapped`] routes the decoded path. Upstream mounts its API tree with Go's
    /// `http.StripPrefix("<prefix>/api/v1")`, which strips the prefix from the path as sent
    /// too whenever that is not Go's own encoding of the decoded path, and answers 404 if
    /// it cannot: `/ap%69/v1/metrics` and `/api%2Fv1%2Fmetrics` are 404 (and nothing is
    /// wiped by `PUT /ap%69/v1/admin/wipe`), while `/api/v1/metric%73` is the API's.
    /// Redirects come first, as Go's `ServeMux` cleans the path before any handler.
    pub fn route_sent(&self, method: &Method, sent: &str) -> Option<(Routed, bool)> {
        let path = decode_path(sent)?;
        let (routed, wrapped) = self.route_wrapped(method, &path);
        let in_api = !wrapped && !matches!(routed, Routed::MuxRedirect { .. });
        if in_api && !sent.starts_with(self.api_root.as_str()) && sent != go_escape_path(&path) {
            return Some((Routed::NotFound, false));
        }
        Some((routed, wrapped))
    }
}

/// Percent-decodes a request path; `None` if an escape is malformed.
fn decode_path(raw: &str) -> Option<Vec<u8>> {
    let b = raw.as_bytes();
    let mut out = Vec::with_capacity(b.len());
    let mut i = 0;
    while i < b.len() {
        if b[i] == b'%' {
            let hex = b.get(i + 1..i + 3)?;
            let s = std::str::from_utf8(hex).ok()?;
            out.push(u8::from_str_radix(s, 16).ok()?);
            i += 3;
        } else {
            out.push(b[i]);
            i += 1;
        }
    }
    Some(out)
}

/// Go's escaping of a decoded path (`url.URL.EscapedPath` without a raw path): every byte
/// but letters, digits and `-_.~$&+,/:;=@` as `%XX` in upper case.
pub fn go_escape_path(path: &[u8]) -> String {
    let mut out = String::with_capacity(path.len());
    for &b in path {
        if b.is_ascii_alphanumeric() || b"-_.~$&+,/:;=@".contains(&b) {
            out.push(b as char);
        } else {
            out.push_str(&format!("%{b:02X}"));
        }
    }
    out
}

/// Go's `path.Join(prefix, path)` for the telemetry route: cleaned, and without a
/// trailing slash (`--web.telemetry-path=/metrics/` serves `/metrics`, as upstream).
fn join_path(prefix: &str, path: &str) -> String {
    let joined = format!("{prefix}/{path}");
    let mut cleaned = String::from_utf8(clean_path(joined.as_bytes())).unwrap_or(joined);
    if cleaned.len() > 1 && cleaned.ends_with('/') {
        cleaned.pop();
    }
    cleaned
}

/// Go's `cleanPath` of `net/http`: a rooted path without `//`, `.` or `..` elements,
/// keeping a trailing slash.
pub fn clean_path(path: &[u8]) -> Vec<u8> {
    if path.is_empty() {
        return b"/".to_vec();
    }
    let mut parts: Vec<&[u8]> = Vec::new();
    for part in path.split(|&b| b == b'/') {
        match part {
            b"" | b"." => {}
            b".." => {
                parts.pop();
            }
            p => parts.push(p),
        }
    }
    let mut out = Vec::with_capacity(path.len());
    for p in &parts {
        out.push(b'/');
        out.extend_from_slice(p);
    }
    if out.is_empty() || path.ends_with(b"/") {
        out.push(b'/');
    }
    out
}

#[cfg(test)]
mod tests {
    use super::*;
    use clap::Parser;

    fn table(args: &[&str]) -> RouteTable {
        let mut argv = vec!["pushgateway"];
        argv.extend_from_slice(args);
        RouteTable::new(&Config::parse_from(argv))
    }

    /// The route prefixes and telemetry paths upstream 1.5.1 refused to start with (its
    /// router panics: exit code 2) are refused; those it started with are not.
    #[test]
    fn flags_that_put_two_routes_in_one_place_are_refused() {
        let refused: &[&[&str]] = &[
            &["--web.route-prefix=/:p"],
            &["--web.route-prefix=/a*b"],
            &["--web.telemetry-path=/"],
            &["--web.telemetry-path=/status"],
            &["--web.telemetry-path=/-/healthy"],
            &["--web.telemetry-path=/-/ready"],
            &["--web.telemetry-path=/-/quit"],
            &["--web.telemetry-path=/static/x"],
            &["--web.telemetry-path=/debug/pprof/x"],
            &["--web.telemetry-path=/-/:x"],
            &["--web.route-prefix=/p", "--web.telemetry-path=/status"],
        ];
        let started: &[&[&str]] = &[
            &[],
            &["--web.enable-admin-api", "--web.enable-lifecycle"],
            &["--web.route-prefix=/a:b"],
            &["--web.route-prefix=/x/:p/y"],
            &["--web.route-prefix=/metrics"],
            &["--web.telemetry-path=/static"],
            &["--web.telemetry-path=/-/x"],
            &["--web.telemetry-path=/status/x"],
            &["--web.telemetry-path=/x/"],
            &["--web.telemetry-path=/m/:x"],
            &["--web.telemetry-path=/m/*x"],
            &["--web.telemetry-path=/-/metrics"],
            &["--web.telemetry-path=/metrics/job/x"],
        ];
        for args in refused {
            assert!(table(args).conflict().is_some(), "{args:?} is refused");
            let mut argv = vec!["pushgateway"];
            argv.extend_from_slice(args);
            let problem = Config::parse_from(argv).validate().err();
            assert!(
                matches!(&problem, Some(crate::config::FlagError::Routes(p)) if p.contains("upstream's router refuses this too")),
                "{args:?}: {problem:?}"
            );
        }
        for args in started {
            assert_eq!(table(args).conflict(), None, "{args:?} starts");
        }
    }

    #[test]
    fn routing_cases() {
        let t = table(&["--web.enable-admin-api"]);
        let push = |replace| Endpoint::Push { replace, job_base64: false };
        let cases: Vec<(&str, Method, &str, Routed)> = vec![
            (
                "push",
                Method::PUT,
                "/metrics/job/a",
                Routed::Matched { endpoint: push(true), params: Params { job: b"a".to_vec(), rest: vec![] } },
            ),
            (
                "push with labels",
                Method::POST,
                "/metrics/job/a/x/1",
                Routed::Matched {
                    endpoint: push(false),
                    params: Params { job: b"a".to_vec(), rest: b"/x/1".to_vec() },
                },
            ),
            (
                "push trailing slash",
                Method::PUT,
                "/metrics/job/c/",
                Routed::Matched { endpoint: push(true), params: Params { job: b"c".to_vec(), rest: b"/".to_vec() } },
            ),
            (
                "double slash cleaned",
                Method::PUT,
                "/metrics/job/a/path//var",
                Routed::MuxRedirect { location: b"/metrics/job/a/path/var".to_vec() },
            ),
            (
                "metrics slash",
                Method::GET,
                "/metrics/",
                Routed::Redirect { location: b"/metrics".to_vec(), status: 301 },
            ),
            (
                "job without name",
                Method::PUT,
                "/metrics/job/",
                Routed::Redirect { location: b"/metrics/job".to_vec(), status: 307 },
            ),
            ("case fixed", Method::GET, "/METRICS", Routed::Redirect { location: b"/metrics".to_vec(), status: 301 }),
            (
                "case and slash fixed",
                Method::GET,
                "/Metrics/",
                Routed::Redirect { location: b"/metrics".to_vec(), status: 301 },
            ),
            ("base64 job without name", Method::PUT, "/metrics/job@base64/", Routed::NotFound),
            ("head not allowed", Method::HEAD, "/metrics", Routed::MethodNotAllowed { allow: "GET, OPTIONS".into() }),
            (
                "get on push route",
                Method::GET,
                "/metrics/job/x",
                Routed::MethodNotAllowed { allow: "DELETE, OPTIONS, POST, PUT".into() },
            ),
            ("options", Method::OPTIONS, "/metrics", Routed::Options { allow: "GET, OPTIONS".into() }),
            ("unknown", Method::GET, "/nonexistent", Routed::NotFound),
            ("api redirect", Method::GET, "/api/v1", Routed::MuxRedirect { location: b"/api/v1/".to_vec() }),
            (
                "cleaned to the api root",
                Method::GET,
                "/api/v1/x/..",
                Routed::MuxRedirect { location: b"/api/v1/".to_vec() },
            ),
            (
                "cleaned to the api root, dot",
                Method::GET,
                "/api/v1/.",
                Routed::MuxRedirect { location: b"/api/v1/".to_vec() },
            ),
            ("api root", Method::GET, "/api/v1/", Routed::NotFound),
            (
                "api wipe get",
                Method::GET,
                "/api/v1/admin/wipe",
                Routed::MethodNotAllowed { allow: "OPTIONS, PUT".into() },
            ),
            (
                "api metrics post",
                Method::POST,
                "/api/v1/metrics",
                Routed::MethodNotAllowed { allow: "GET, OPTIONS".into() },
            ),
            (
                "quit get",
                Method::GET,
                "/-/quit",
                Routed::Matched { endpoint: Endpoint::QuitWrongMethod, params: Params::default() },
            ),
            (
                "quit delete",
                Method::DELETE,
                "/-/quit",
                Routed::MethodNotAllowed { allow: "GET, OPTIONS, POST, PUT".into() },
            ),
            (
                "root page",
                Method::GET,
                "/",
                Routed::Matched { endpoint: Endpoint::StatusPage, params: Params::default() },
            ),
        ];
        for (name, method, path, want) in cases {
            assert_eq!(t.route(&method, path.as_bytes()), want, "case {name}");
        }
    }

    /// Only the main tree is behind upstream's gzip request wrapper: not the API tree, not
    /// the cleaning and API redirects in front of both.
    #[test]
    fn the_main_tree_is_behind_the_gzip_wrapper() {
        let t = table(&[]);
        for (case, method, path, wrapped) in [
            ("a push", Method::PUT, "/metrics/job/a", true),
            ("not found", Method::GET, "/nonexistent", true),
            ("a tree's trailing-slash redirect", Method::GET, "/metrics/", true),
            ("the API", Method::GET, "/api/v1/status", false),
            ("the API's redirect", Method::GET, "/api/v1", false),
            ("a cleaning redirect", Method::GET, "/a//b", false),
        ] {
            assert_eq!(t.route_wrapped(&method, path.as_bytes()).1, wrapped, "{case}");
        }
    }

    #[test]
    fn path_decoding() {
        assert_eq!(decode_path("/a%20b").unwrap(), b"/a b");
        assert_eq!(decode_path("/%FF").unwrap(), b"/\xff");
        assert!(decode_path("/%zz").is_none());
        assert!(decode_path("/%2").is_none());
        let t = table(&[]);
        assert_eq!(t.route_sent(&Method::GET, "/%zz"), None);
    }

    /// Recorded against upstream 1.5.1: its API tree sits behind Go's `http.StripPrefix`,
    /// which also looks at the path as sent.
    #[test]
    fn the_api_prefix_is_matched_as_sent_too() {
        /// What upstream answered: a route of the API tree (or of the main tree), 404, a redirect.
        #[derive(Debug)]
        enum Want {
            Route(Endpoint),
            NotFound,
            Redirect,
        }
        let check = |t: &RouteTable, method: Method, sent: &str, want: Want| {
            let routed = t.route_sent(&method, sent).expect("well-formed escapes").0;
            let ok = match want {
                Want::Route(endpoint) => matches!(routed, Routed::Matched { endpoint: e, .. } if e == endpoint),
                Want::NotFound => routed == Routed::NotFound,
                Want::Redirect => matches!(routed, Routed::MuxRedirect { .. }),
            };
            assert!(ok, "{method} {sent}: {routed:?}, upstream {want:?}");
        };
        let t = table(&["--web.enable-admin-api"]);
        for (method, sent, want) in [
            (Method::GET, "/ap%69/v1/metrics", Want::NotFound),
            (Method::GET, "/api%2Fv1%2Fmetrics", Want::NotFound),
            (Method::GET, "/ap%69/v1/status", Want::NotFound),
            (Method::GET, "/ap%69/v1/", Want::NotFound),
            (Method::OPTIONS, "/ap%69/v1/metrics", Want::NotFound),
            (Method::PUT, "/ap%69/v1/admin/wipe", Want::NotFound),
            (Method::GET, "/api/v1/metric%73", Want::Route(Endpoint::ApiMetrics)),
            (Method::GET, "/api/v1/%6detrics", Want::Route(Endpoint::ApiMetrics)),
            (Method::GET, "/api/v1%2Fmetrics", Want::Route(Endpoint::ApiMetrics)),
            (Method::PUT, "/api/v1/admin/wip%65", Want::Route(Endpoint::ApiWipe)),
            (Method::GET, "/ap%69/v1", Want::Redirect),
            (Method::GET, "/ap%69/v1/x/../metrics", Want::Redirect),
            // The main tree decodes first, as upstream's.
            (Method::GET, "/-/h%65althy", Want::Route(Endpoint::Healthy)),
        ] {
            check(&t, method, sent, want);
        }
        // A prefix Go escapes: the path as sent in Go's own encoding passes, any other 404s.
        let t = table(&["--web.route-prefix=/p g"]);
        check(&t, Method::GET, "/p%20g/api/v1/metrics", Want::Route(Endpoint::ApiMetrics));
        check(&t, Method::GET, "/p%20g/api/v1/metric%73", Want::NotFound);
        check(&t, Method::GET, "/p%20g/ap%69/v1/metrics", Want::NotFound);
    }

    #[test]
    fn prefix_routing() {
        let t = table(&["--web.route-prefix=/pg/"]);
        assert_eq!(t.prefix(), "/pg");
        assert_eq!(table(&["--web.external-url=http://h:9091/ext/"]).prefix(), "/ext");
        assert_eq!(table(&["--web.external-url=http://h/ext", "--web.route-prefix=/r"]).prefix(), "/r");
        assert_eq!(table(&["--web.external-url=http://h/"]).prefix(), "");
        assert!(matches!(t.route(&Method::GET, b"/pg/-/healthy"), Routed::Matched { endpoint: Endpoint::Healthy, .. }));
        assert_eq!(t.route(&Method::GET, b"/-/healthy"), Routed::NotFound);
        assert_eq!(t.route(&Method::GET, b"/pg"), Routed::Redirect { location: b"/pg/".to_vec(), status: 301 });
        assert!(matches!(t.route(&Method::GET, b"/pg/"), Routed::Matched { endpoint: Endpoint::StatusPage, .. }));
        assert!(matches!(
            t.route(&Method::GET, b"/-/quit"),
            Routed::Matched { endpoint: Endpoint::QuitWrongMethod, .. }
        ));
        assert!(matches!(
            t.route(&Method::GET, b"/pg/api/v1/status"),
            Routed::Matched { endpoint: Endpoint::ApiStatus, .. }
        ));
        assert_eq!(t.route(&Method::PUT, b"/pg/api/v1/admin/wipe"), Routed::NotFound);
    }

    /// The telemetry path is joined to the prefix as Go's `path.Join` joins it: a trailing
    /// slash is dropped (upstream 1.5.1 serves `/m` for `--web.telemetry-path=/m/`).
    #[test]
    fn the_telemetry_path_is_joined_as_go_joins_it() {
        for (args, path) in [
            (&["--web.telemetry-path=/m/"][..], "/m"),
            (&["--web.telemetry-path=/metrics/"], "/metrics"),
            (&["--web.telemetry-path=/m/", "--web.route-prefix=/a"], "/a/m"),
            (&["--web.telemetry-path=//x//y/"], "/x/y"),
        ] {
            let t = table(args);
            let scrape = t.route(&Method::GET, path.as_bytes());
            assert!(matches!(scrape, Routed::Matched { endpoint: Endpoint::Scrape, .. }), "{args:?}: {scrape:?}");
            let slash = t.route(&Method::GET, format!("{path}/").as_bytes());
            assert_eq!(slash, Routed::Redirect { location: path.as_bytes().to_vec(), status: 301 }, "{args:?}");
        }
    }

    #[test]
    fn clean_path_cases() {
        for (input, want) in [("/a//b", "/a/b"), ("/a/./b/", "/a/b/"), ("/a/../b", "/b"), ("/", "/"), ("/a/", "/a/")] {
            assert_eq!(clean_path(input.as_bytes()), want.as_bytes(), "{input}");
        }
    }
}
