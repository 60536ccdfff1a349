//! The deployment files in `deploy/` checked against the binary, since no container
//! engine or Kubernetes runs here: every file parses; every flag they pass is one this
//! binary accepts, in a combination it starts with; ports, probe paths and peer
//! addresses agree between the files; the Dockerfile builds the way the README says.

use std::collections::BTreeMap;
use std::path::PathBuf;

use axum::http::Method;
use clap::Parser;
use pushgateway::config::Config;
use pushgateway::routes::{Endpoint, RouteTable, Routed};
use serde_json::Value as Yaml;

/// The repository, from cargo's environment at run time: a build directory shared by
/// several clones may hold this test compiled in another clone.
fn repo() -> PathBuf {
    std::env::var_os("CARGO_MANIFEST_DIR").map_or_else(|| PathBuf::from(env!("CARGO_MANIFEST_DIR")), PathBuf::from)
}

fn read(path: &str) -> String {
    std::fs::read_to_string(repo().join(path)).unwrap_or_else(|e| panic!("{path}: {e}"))
}

/// Every document of a YAML file, parsed by PyYAML (`.ci/run` installs it) into JSON
/// values: a YAML parser without adding a Rust dependency to the build.
fn yaml_docs(path: &str) -> Vec<Yaml> {
    const LOAD: &str = "import json, sys, yaml; print(json.dumps(list(yaml.safe_load_all(open(sys.argv[1])))))";
    let out =
        std::process::Command::new("python3").args(["-c", LOAD]).arg(repo().join(path)).output().expect("python3 runs");
    assert!(out.status.success(), "{path} is not YAML: {}", String::from_utf8_lossy(&out.stderr));
    serde_json::from_slice(&out.stdout).expect("JSON from python")
}

/// Parses and validates a node's flags as the binary does at start-up. Validation reads
/// the secret file, which the deployment provides (a mounted Secret, a file on the host)
/// and this machine does not: a valid stand-in at a temporary path takes its place.
fn node_config(origin: &str, args: &[String]) -> Config {
    let stand_in = tempfile::NamedTempFile::new().expect("temp file");
    std::fs::write(stand_in.path(), "stand-in-secret-0123456789\n").expect("write secret");
    let with_stand_in = |arg: &String| match arg.strip_prefix("--cluster.secret-file=") {
        Some(_) => format!("--cluster.secret-file={}", stand_in.path().display()),
        None => arg.clone(),
    };
    let argv = std::iter::once("pushgateway".to_string()).chain(args.iter().map(with_stand_in));
    let config = Config::try_parse_from(argv).unwrap_or_else(|e| panic!("{origin}: flags refused: {e}\n{args:?}"));
    config.validate().unwrap_or_else(|e| panic!("{origin}: flags refused: {e}\n{args:?}"));
    assert!(config.command.is_none(), "{origin}: runs a subcommand, not a server");
    config
}

fn strings(y: &Yaml) -> Vec<String> {
    y.as_array()
        .unwrap_or_else(|| panic!("not a list: {y:?}"))
        .iter()
        .map(|v| v.as_str().expect("a string").to_string())
        .collect()
}

fn port_of(addr: &str) -> u16 {
    addr.rsplit(':').next().and_then(|p| p.parse().ok()).unwrap_or_else(|| panic!("no port in {addr:?}"))
}

/// Whether `path` reaches `endpoint` in the binary's route table (default prefix).
fn routes_to(path: &str, endpoint: Endpoint) -> bool {
    let table = RouteTable::new(&Config::parse_from(["pushgateway"]));
    matches!(table.route(&Method::GET, path.as_bytes()), Routed::Matched { endpoint: e, .. } if e == endpoint)
}

/// Checks a set of nodes (id → config) forms one cluster: the same initial members
/// everywhere, and each member's advertised address is its entry there.
fn assert_one_cluster(origin: &str, nodes: &BTreeMap<u64, Config>) {
    let members: Vec<_> = nodes.values().map(|c| c.initial_members().expect("members")).collect();
    assert!(members.windows(2).all(|w| w[0] == w[1]), "{origin}: nodes disagree on the initial members");
    let members = &members[0];
    assert_eq!(members.keys().copied().collect::<Vec<_>>(), nodes.keys().copied().collect::<Vec<_>>(), "{origin}");
    for (id, config) in nodes {
        assert_eq!(members[id], config.cluster_advertise_address, "{origin}: node {id} advertises another address");
        assert_eq!(port_of(&members[id]), port_of(&config.cluster_listen_address), "{origin}: node {id} peer port");
    }
}

#[test]
fn compose_nodes_form_one_cluster_behind_the_load_balancer() {
    let doc = &yaml_docs("deploy/compose/compose.yaml")[0];
    let services = doc["services"].as_object().expect("services");
    let mut nodes = BTreeMap::new();
    let mut node_services = Vec::new();
    for (name, service) in services {
        let name = name.as_str();
        if !name.starts_with("pushgateway-") {
            continue;
        }
        let config = node_config(&format!("compose {name}"), &strings(&service["command"]));
        assert_eq!(config.web_listen_address, vec![":9091".to_string()], "compose {name}");
        assert!(config.cluster_advertise_address.starts_with(&format!("{name}:")), "compose {name}");
        assert!(service["volumes"].as_array().is_some(), "compose {name} keeps its data in a volume");
        assert!(!config.cluster_secret_file.is_empty(), "compose {name}: peer traffic carries the secret");
        assert!(!config.cluster_insecure_no_secret, "compose {name}");
        nodes.insert(config.cluster_node_id, config);
        node_services.push(name.to_string());
    }
    assert_eq!(nodes.len(), 3, "three nodes");
    assert_one_cluster("compose", &nodes);

    let haproxy = read("deploy/compose/haproxy.cfg");
    assert!(haproxy.contains("option httpchk GET /-/ready"), "haproxy checks readiness");
    assert!(routes_to("/-/ready", Endpoint::Ready));
    for name in &node_services {
        assert!(haproxy.contains(&format!("server {name} {name}:9091 check")), "haproxy routes to {name}");
    }
    let bind = haproxy.lines().find_map(|l| l.trim().strip_prefix("bind ")).expect("haproxy binds");
    let prometheus = &yaml_docs("deploy/prometheus/prometheus.yml")[0];
    let job = &prometheus["scrape_configs"][0];
    assert_eq!(job["honor_labels"].as_bool(), Some(true), "pushed job/instance labels are kept");
    let target = job["static_configs"][0]["targets"][0].as_str().expect("a target");
    assert_eq!(target, format!("haproxy{bind}"), "Prometheus scrapes through the load balancer");
    assert!(prometheus["rule_files"][0].as_str() == Some("rules.yml"));
}

#[test]
fn kubernetes_statefulset_probes_ports_and_peers_agree() {
    let docs = yaml_docs("deploy/kubernetes/pushgateway.yaml");
    let kind = |k: &'static str| docs.iter().filter(move |d| d["kind"].as_str() == Some(k));
    let set = kind("StatefulSet").next().expect("a StatefulSet");
    let replicas = set["spec"]["replicas"].as_i64().expect("replicas") as u64;
    assert_eq!(replicas, 3);
    let headless = set["spec"]["serviceName"].as_str().expect("serviceName");
    let peers = kind("Service").find(|s| s["metadata"]["name"].as_str() == Some(headless)).expect("headless service");
    assert_eq!(peers["spec"]["clusterIP"].as_str(), Some("None"), "the peer service is headless");
    let pdb = kind("PodDisruptionBudget").next().expect("a PodDisruptionBudget");
    assert_eq!(pdb["spec"]["maxUnavailable"].as_i64(), Some(1), "a quorum of three survives evictions");
    assert!(set["spec"]["volumeClaimTemplates"][0]["metadata"]["name"].as_str().is_some(), "persistent volumes");

    let container = &set["spec"]["template"]["spec"]["containers"][0];
    let ports: BTreeMap<String, u16> = container["ports"]
        .as_array()
        .expect("ports")
        .iter()
        .map(|p| (p["name"].as_str().unwrap().to_string(), p["containerPort"].as_i64().unwrap() as u16))
        .collect();
    let mount = container["volumeMounts"][0]["mountPath"].as_str().expect("a data mount");
    assert_eq!(container["readinessProbe"]["httpGet"]["path"].as_str(), Some("/-/ready"));
    assert_eq!(container["livenessProbe"]["httpGet"]["path"].as_str(), Some("/-/healthy"));
    assert!(routes_to("/-/ready", Endpoint::Ready) && routes_to("/-/healthy", Endpoint::Healthy));

    // Each pod's arguments, with the environment Kubernetes substitutes.
    let pod_name = set["metadata"]["name"].as_str().expect("name");
    let mut nodes = BTreeMap::new();
    for index in 0..replicas {
        let args: Vec<String> = strings(&container["args"])
            .iter()
            .map(|a| {
                a.replace("$(POD_INDEX)", &index.to_string()).replace("$(POD_NAME)", &format!("{pod_name}-{index}"))
            })
            .collect();
        let config = node_config(&format!("pod {index}"), &args);
        assert_eq!(config.storage_path, mount, "the data directory is the volume");
        assert_eq!(port_of(&config.web_listen_address[0]), ports["http"]);
        assert_eq!(port_of(&config.cluster_listen_address), ports["peer"]);
        assert!(config.cluster_advertise_address.contains(&format!(".{headless}:")), "peers by the headless name");
        nodes.insert(config.cluster_node_id, config);
    }
    assert_one_cluster("kubernetes", &nodes);

    let scrape = &yaml_docs("deploy/kubernetes/prometheus-scrape.yaml")[0]["scrape_configs"];
    assert_eq!(scrape[0]["honor_labels"].as_bool(), Some(true));
    // Pushed series once through the Service, node metrics per pod: never both in one job.
    assert_eq!(scrape[0]["metric_relabel_configs"][0]["action"].as_str(), Some("drop"));
    assert_eq!(scrape[1]["metrics_path"].as_str(), Some("/-/metrics"), "pods' own metrics alone");
    assert!(routes_to("/-/metrics", Endpoint::NodeMetrics));
    let service = kind("Service").find(|s| s["metadata"]["name"].as_str() == Some("pushgateway")).expect("service");
    let service_port = service["spec"]["ports"][0]["port"].as_i64().expect("port");
    assert_eq!(scrape[0]["static_configs"][0]["targets"][0].as_str(), Some(&*format!("pushgateway:{service_port}")));
}

#[test]
fn systemd_unit_and_its_flags() {
    let unit = read("deploy/systemd/pushgateway.service");
    assert!(unit.contains("ExecStart=/usr/local/bin/pushgateway $PUSHGATEWAY_ARGS"));
    let env = read("deploy/systemd/pushgateway.env.example");
    let line = env.lines().find_map(|l| l.strip_prefix("PUSHGATEWAY_ARGS=")).expect("PUSHGATEWAY_ARGS");
    let args: Vec<String> = line.trim_matches('"').split_whitespace().map(String::from).collect();
    let host1 = node_config("systemd host1", &args);
    let state_dir = unit.lines().find_map(|l| l.strip_prefix("StateDirectory=")).expect("StateDirectory");
    assert_eq!(host1.storage_path, format!("/var/lib/{state_dir}"), "the data directory is the unit's state directory");
    // host2 and host3 as the example's comment says: another id and advertised address.
    let mut nodes = BTreeMap::from([(1, host1)]);
    for id in [2u64, 3] {
        let args: Vec<String> = args
            .iter()
            .map(|a| a.replace("--cluster.node-id=1", &format!("--cluster.node-id={id}")))
            .map(|a| a.replace("--cluster.advertise-address=host1", &format!("--cluster.advertise-address=host{id}")))
            .collect();
        nodes.insert(id, node_config(&format!("systemd host{id}"), &args));
    }
    assert_one_cluster("systemd", &nodes);
}

#[test]
fn dockerfile_builds_as_the_readme_says() {
    let dockerfile = read("deploy/docker/Dockerfile");
    let readme = read("README.md");
    // The README runs `cargo run --release --bin pushgateway`; the image builds the same.
    let build = "cargo build --release --bin pushgateway";
    assert!(readme.contains("apt-get update -qq && apt-get install -y -qq libclang-dev"));
    assert!(readme.contains("&& cargo run --release --bin pushgateway"));
    assert!(!readme.contains("sudo apt-get"), "the quick start works as root, where there is no sudo");
    assert!(dockerfile.contains("libclang-dev"), "the Dockerfile installs the build dependency");
    assert!(dockerfile.contains(&format!("RUN {build}")), "the Dockerfile runs the README's build");
    let stages = dockerfile.lines().filter(|l| l.starts_with("FROM ")).count();
    assert_eq!(stages, 2, "a build stage and a final stage");
    let entry = dockerfile.lines().find_map(|l| l.strip_prefix("ENTRYPOINT ")).expect("ENTRYPOINT");
    assert_eq!(entry, r#"["/bin/pushgateway"]"#);
    let cmd = dockerfile.lines().find_map(|l| l.strip_prefix("CMD ")).expect("CMD");
    let args: Vec<String> = serde_json::from_str(cmd).expect("CMD is a JSON list");
    let config = node_config("Dockerfile", &args);
    let volume = dockerfile.lines().find_map(|l| l.strip_prefix("VOLUME ")).expect("VOLUME");
    assert_eq!(serde_json::from_str::<Vec<String>>(volume).unwrap(), vec![config.storage_path.clone()]);
    for port in dockerfile.lines().find_map(|l| l.strip_prefix("EXPOSE ")).expect("EXPOSE").split_whitespace() {
        assert!(["9091", "9092"].contains(&port), "exposes {port}");
    }
}

#[test]
fn alert_rules_parse_and_name_existing_jobs() {
    let rules = &yaml_docs("deploy/prometheus/rules.yml")[0];
    let mut count = 0;
    for group in rules["groups"].as_array().expect("groups") {
        for rule in group["rules"].as_array().expect("rules") {
            let expr = rule["expr"].as_str().expect("expr");
            assert!(rule["alert"].as_str().is_some() && !expr.is_empty());
            count += 1;
        }
    }
    assert!(count >= 5);
    // Every metric an alert names is one the binary exposes (or Prometheus's own `up`).
    let own: Vec<&str> = model::own_families::OWN_FAMILIES
        .iter()
        .chain(model::own_families::ADDED_IN_V2)
        .chain(model::own_families::ADDED_IN_V4)
        .map(|f| f.name)
        .collect();
    for group in rules["groups"].as_array().expect("groups") {
        for rule in group["rules"].as_array().expect("rules") {
            let expr = rule["expr"].as_str().expect("expr");
            for word in expr.split(|c: char| !(c.is_ascii_alphanumeric() || c == '_')) {
                if word.starts_with("pushgateway_") {
                    assert!(own.contains(&word), "{word} in {expr} is not a metric of the binary");
                }
            }
        }
    }
    let jobs = ["job=\"pushgateway\"", "job=\"pushgateway-nodes\""];
    let text = read("deploy/prometheus/rules.yml");
    for job in jobs {
        assert!(text.contains(job));
    }
    let scrape = read("deploy/kubernetes/prometheus-scrape.yaml");
    assert!(scrape.contains("job_name: pushgateway-nodes") && scrape.contains("job_name: pushgateway\n"));
}

/// Prometheus itself accepts the scrape configuration and the alert rules, and the rules'
/// unit tests pass (`deploy/prometheus/rules.test.yml`: a failover alerts only for the
/// node that is down and clears, a lost majority, a lagging node, a quota filling up).
/// `promtool` comes with Debian's `prometheus` package, which `.ci/run` installs. The
/// Kubernetes scrape example is left out: Debian's build has no Kubernetes service
/// discovery.
#[test]
fn promtool_accepts_the_prometheus_configuration_and_rules() {
    for args in [
        ["check", "rules", "deploy/prometheus/rules.yml"],
        ["check", "config", "deploy/prometheus/prometheus.yml"],
        ["test", "rules", "deploy/prometheus/rules.test.yml"],
    ] {
        let out = std::process::Command::new("promtool")
            .args(args)
            .current_dir(repo())
            .output()
            .expect("promtool not found: install Debian's prometheus package (bash .ci/run does)");
        let text = String::from_utf8_lossy(&out.stdout).to_string() + &String::from_utf8_lossy(&out.stderr);
        assert!(out.status.success(), "promtool {args:?} refused it:\n{text}");
        assert!(text.contains("SUCCESS"), "{text}");
    }
}

/// The README's TLS and basic-authentication setup, run as written in an empty directory
/// (with this build's binary first on `PATH`, and a free port through the environment).
#[test]
fn the_readme_tls_setup_works_when_copied() {
    use std::os::unix::process::CommandExt;
    let readme = read("README.md");
    let block = readme
        .split("<!-- tls-setup:")
        .nth(1)
        .and_then(|rest| rest.split("```sh\n").nth(1))
        .and_then(|b| b.split("\n```").next())
        .expect("the README's TLS setup block");
    let port = std::net::TcpListener::bind("127.0.0.1:0").unwrap().local_addr().unwrap().port();
    let script = block.replace("localhost:9091", &format!("localhost:{port}"));
    let dir = tempfile::tempdir().unwrap();
    let bin = PathBuf::from(env!("CARGO_BIN_EXE_pushgateway"));
    let path = format!("{}:{}", bin.parent().unwrap().display(), std::env::var("PATH").unwrap_or_default());
    let child = std::process::Command::new("bash")
        .args(["-c", &script])
        .current_dir(dir.path())
        .env("PATH", path)
        .env("PUSHGATEWAY_WEB_LISTEN_ADDRESS", format!("127.0.0.1:{port}"))
        .stdout(std::process::Stdio::piped())
        .stderr(std::process::Stdio::piped())
        .process_group(0)
        .spawn()
        .expect("bash runs");
    let group = child.id();
    let out = child.wait_with_output().expect("bash ends");
    // Whatever the script left running goes with its process group.
    let _ = std::process::Command::new("kill").args(["-KILL", "--", &format!("-{group}")]).status();
    let stdout = String::from_utf8_lossy(&out.stdout);
    assert!(
        stdout.contains("some_metric{instance=\"\",job=\"some_job\"} 3.14"),
        "the pushed metric was not scraped back over TLS:\n{stdout}\n{}",
        String::from_utf8_lossy(&out.stderr)
    );
}

/// The README's Limits table lists every push limit with the default and the ceiling the
/// code has, so the table cannot drift from what the server enforces.
#[test]
fn the_readme_lists_every_push_limit_as_enforced() {
    let readme = read("README.md");
    let defaults = model::PushLimits::DEFAULT.entries();
    let ceilings = model::PushLimits::CEILING.entries();
    for ((flag, _, default), (_, _, ceiling)) in defaults.into_iter().zip(ceilings) {
        let row = format!("| `--{flag}` | `{default}` | `{ceiling}` |");
        assert!(readme.contains(&row), "README's Limits table lacks {row}");
    }
    for (flag, _, default) in model::StoreQuotas::DEFAULT.entries() {
        let row = format!("| `--{flag}` | `{default}` |");
        assert!(readme.contains(&row), "README's Quotas table lacks {row}");
    }
}
