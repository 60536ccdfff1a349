//! The real programs around the nodes of a deployment: haproxy in front of them, Prometheus
//! scraping through it, and upstream's Pushgateway for the side-by-side run. Each runs as
//! a child process on loopback with its files under the run directory, and is killed when
//! dropped. Their configurations are made from the files in `deploy/`, so that what users
//! copy is what runs here.

use std::collections::BTreeMap;
use std::path::{Path, PathBuf};
use std::time::Duration;

use anyhow::{bail, Context};
use testkit::{Process, Spec};

/// A child process that can be killed and started again with the same arguments; killed
/// when dropped.
pub struct Service {
    pub name: String,
    process: Process,
}

impl Service {
    /// Starts `program` with `args`; stdout and stderr go to `log`.
    pub fn start(name: &str, program: &Path, args: Vec<String>, log: PathBuf) -> anyhow::Result<Service> {
        let process = Process::start(Spec::new(program).args(args).log_file(log).label(name))?;
        Ok(Service { name: name.to_string(), process })
    }

    /// Starts the process again (after [`Service::kill`]).
    pub fn restart(&mut self) -> anyhow::Result<()> {
        self.process.restart()
    }

    /// SIGKILL and reap.
    pub fn kill(&mut self) {
        self.process.kill();
    }

    pub fn running(&self) -> bool {
        self.process.is_running()
    }
}

/// Waits until `url` answers 200.
pub fn wait_ok(url: &str, within: Duration) -> anyhow::Result<()> {
    let http = reqwest::blocking::Client::builder().timeout(Duration::from_secs(2)).build()?;
    let ok = || http.get(url).send().is_ok_and(|r| r.status() == 200);
    Ok(testkit::wait_until(within, &format!("{url} to answer 200"), ok)?)
}

/// Replaces the one line of `text` that starts (after indentation) with `prefix`; an
/// error if there is not exactly one, so that a changed template is noticed.
fn replace_line(text: &str, prefix: &str, with: &str) -> anyhow::Result<String> {
    let matching = text.lines().filter(|l| l.trim_start().starts_with(prefix)).count();
    if matching != 1 {
        bail!("expected one line starting with {prefix:?} in the template, found {matching}");
    }
    let lines: Vec<String> = text
        .lines()
        .map(|l| match l.trim_start().starts_with(prefix) {
            true => {
                let indent = &l[..l.len() - l.trim_start().len()];
                format!("{indent}{with}")
            }
            false => l.to_string(),
        })
        .collect();
    Ok(lines.join("\n") + "\n")
}

/// haproxy's configuration from the deployment template (`deploy/compose/haproxy.cfg`):
/// the same frontend, backends, health checks and retries, bound to `bind` and with
/// `servers` (name, address) in place of each backend's `server` lines.
pub fn haproxy_config(template: &str, bind: &str, servers: &[(String, String)]) -> anyhow::Result<String> {
    let text = replace_line(template, "bind ", &format!("bind {bind}"))?;
    let mut out = Vec::new();
    let mut placed = false;
    let mut in_block = false;
    for line in text.lines() {
        if !line.trim_start().starts_with("server ") {
            out.push(line.to_string());
            in_block = false;
            continue;
        }
        // Each backend's block of server lines becomes the given servers.
        if !in_block {
            let indent = &line[..line.len() - line.trim_start().len()];
            out.extend(servers.iter().map(|(name, addr)| format!("{indent}server {name} {addr} check")));
            placed = true;
            in_block = true;
        }
    }
    if !placed {
        bail!("the haproxy template has no server lines");
    }
    Ok(out.join("\n") + "\n")
}

/// Prometheus's configuration from the deployment template (`deploy/prometheus/prometheus.yml`):
/// the same job (`honor_labels`) and rules file, scraping `target` every `interval`.
pub fn prometheus_config(template: &str, interval: Duration, target: &str, rules: &Path) -> anyhow::Result<String> {
    let text = replace_line(template, "scrape_interval:", &format!("scrape_interval: {}ms", interval.as_millis()))?;
    let text = replace_line(&text, "- rules.yml", &format!("- {}", rules.display()))?;
    let text = replace_line(&text, "- targets:", &format!("- targets: [\"{target}\"]"))?;
    Ok(text)
}

/// One series of a range-vector query: its labels and its raw samples (time in seconds).
#[derive(Debug, Clone, PartialEq)]
pub struct Series {
    pub labels: BTreeMap<String, String>,
    pub samples: Vec<(f64, f64)>,
}

/// Runs an instant query whose result is a range vector (`expr` ends in `[...]`) at time
/// `at` (Unix seconds) and returns every series with its raw samples: exactly what was
/// scraped, with scrape timestamps, not an interpolation.
pub fn query_raw(prometheus: &str, expr: &str, at: f64) -> anyhow::Result<Vec<Series>> {
    let http = reqwest::blocking::Client::builder().timeout(Duration::from_secs(30)).build()?;
    let url = format!("{prometheus}/api/v1/query");
    let text = http.get(url).query(&[("query", expr), ("time", &format!("{at:.3}"))]).send()?.text()?;
    let doc: serde_json::Value = serde_json::from_str(&text).with_context(|| format!("query answer: {text}"))?;
    if doc["status"] != "success" || doc["data"]["resultType"] != "matrix" {
        bail!("query {expr}: {text}");
    }
    let mut out = Vec::new();
    for series in doc["data"]["result"].as_array().into_iter().flatten() {
        let labels = series["metric"]
            .as_object()
            .into_iter()
            .flatten()
            .map(|(k, v)| (k.clone(), v.as_str().unwrap_or_default().to_string()))
            .collect();
        let mut samples = Vec::new();
        for pair in series["values"].as_array().into_iter().flatten() {
            let t = pair[0].as_f64().context("sample time")?;
            let v: f64 = pair[1].as_str().context("sample value")?.parse()?;
            samples.push((t, v));
        }
        out.push(Series { labels, samples });
    }
    Ok(out)
}

/// A file of this repository (`deploy/...`). Found at run time: from cargo's
/// `CARGO_MANIFEST_DIR` when cargo runs the program, else from the working directory when
/// it is the repository (`.ci/run` starts there), else where this was compiled. A build
/// directory shared by several clones may hold a binary compiled in another clone.
pub fn repo_file(path: &str) -> PathBuf {
    let root = match std::env::var_os("CARGO_MANIFEST_DIR") {
        Some(jepsen) => Path::new(&jepsen).join(".."),
        None if Path::new("deploy").is_dir() => PathBuf::from("."),
        None => Path::new(env!("CARGO_MANIFEST_DIR")).join(".."),
    };
    root.join(path)
}

#[cfg(test)]
mod tests {
    use super::*;

    fn read(path: &str) -> String {
        std::fs::read_to_string(repo_file(path)).expect(path)
    }

    #[test]
    fn haproxy_config_keeps_the_template_and_replaces_addresses() {
        let servers = vec![("a".to_string(), "127.0.0.1:1".to_string()), ("b".to_string(), "127.0.0.1:2".to_string())];
        let text = haproxy_config(&read("deploy/compose/haproxy.cfg"), "127.0.0.1:9", &servers).unwrap();
        assert!(text.contains("\n    bind 127.0.0.1:9\n"), "{text}");
        assert!(text.contains("option httpchk GET /-/ready"));
        let block = "    server a 127.0.0.1:1 check\n    server b 127.0.0.1:2 check\n";
        assert_eq!(text.matches(block).count(), 2, "both backends get the servers: {text}");
        assert!(text.contains("option httpchk GET /-/healthy"), "reads go to every live node");
        assert!(!text.contains("pushgateway-1"), "the template's servers are gone: {text}");
    }

    #[test]
    fn prometheus_config_keeps_the_job_and_points_at_the_target() {
        let rules = Path::new("/x/rules.yml");
        let text = prometheus_config(&read("deploy/prometheus/prometheus.yml"), Duration::from_secs(1), "lb:1", rules)
            .unwrap();
        assert!(text.contains("scrape_interval: 1000ms"), "{text}");
        assert!(text.contains("honor_labels: true"));
        assert!(text.contains("- /x/rules.yml"), "{text}");
        assert!(text.contains("- targets: [\"lb:1\"]"), "{text}");
        assert!(!text.contains("haproxy:9091"));
    }

    #[test]
    fn a_template_that_changed_shape_is_an_error() {
        assert!(replace_line("a\nb\n", "c", "x").is_err());
        assert!(replace_line("bind 1\nbind 2\n", "bind", "x").is_err());
    }
}
