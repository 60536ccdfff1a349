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
    parse_yaml(path, read(path).as_bytes())
}

/// Every document of `text` (from `origin`), parsed as [`yaml_docs`] does.
fn parse_yaml(origin: &str, text: &[u8]) -> Vec<Yaml> {
    use std::io::Write;
    const LOAD: &str = "import json, sys, yaml; print(json.dumps(list(yaml.safe_load_all(sys.stdin))))";
    let mut child = std::process::Command::new("python3")
        .args(["-c", LOAD])
        .stdin(std::process::Stdio::piped())
        .stdout(std::process::Stdio::piped())
        .stderr(std::process::Stdio::piped())
        .spawn()
        .expect("python3 runs");
    child.stdin.take().expect("stdin").write_all(text).expect("write to python3");
    let out = child.wait_with_output().expect("python3 ends");
    assert!(out.status.success(), "{origin} is not YAML: {}", String::from_utf8_lossy(&out.stderr));
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
/// everywhere, each of them among the nodes and advertising its entry there, and
/// `joiners` further nodes (which join through the initial members) advertising
/// addresses of their own.
fn assert_one_cluster(origin: &str, nodes: &BTreeMap<u64, Config>, joiners: usize) {
    let members: Vec<_> = nodes.values().map(|c| c.initial_members().expect("members")).collect();
    assert!(members.windows(2).all(|w| w[0] == w[1]), "{origin}: nodes disagree on the initial members");
    let members = &members[0];
    assert_eq!(members.len() + joiners, nodes.len(), "{origin}: initial members and joiners");
    for id in members.keys() {
        assert!(nodes.contains_key(id), "{origin}: initial member {id} is none of the nodes");
    }
    let mut advertised = std::collections::BTreeSet::new();
    for (id, config) in nodes {
        if let Some(entry) = members.get(id) {
            assert_eq!(*entry, config.cluster_advertise_address, "{origin}: node {id} advertises another address");
        }
        assert!(advertised.insert(&config.cluster_advertise_address), "{origin}: node {id}'s address is taken");
        assert_eq!(
            port_of(&config.cluster_advertise_address),
            port_of(&config.cluster_listen_address),
            "{origin}: node {id} peer port"
        );
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
    assert_one_cluster("compose", &nodes, 0);

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

/// The kustomize directory `dir` rendered by `kubectl kustomize` (Debian's
/// `kubernetes-client`, which `.ci/run` installs; its kubectl 1.20 embeds kustomize
/// v2.0.3, the oldest the manifests are written for), as the objects it prints.
fn kustomize(dir: &str) -> Vec<Yaml> {
    let out = std::process::Command::new("kubectl")
        .args(["kustomize", &repo().join(dir).display().to_string()])
        .output()
        .unwrap_or_else(|e| panic!("kubectl: {e}: install Debian's kubernetes-client (bash .ci/run does)"));
    assert!(out.status.success(), "kubectl kustomize {dir} failed:\n{}", String::from_utf8_lossy(&out.stderr));
    parse_yaml(&format!("kubectl kustomize {dir}"), &out.stdout)
}

fn named<'a>(docs: &'a [Yaml], kind: &str, name: &str) -> &'a Yaml {
    docs.iter()
        .find(|d| d["kind"].as_str() == Some(kind) && d["metadata"]["name"].as_str() == Some(name))
        .unwrap_or_else(|| panic!("no {kind} {name}"))
}

fn only<'a>(docs: &'a [Yaml], kind: &str) -> &'a Yaml {
    let mut found = docs.iter().filter(|d| d["kind"].as_str() == Some(kind));
    let one = found.next().unwrap_or_else(|| panic!("no {kind}"));
    assert!(found.next().is_none(), "more than one {kind}");
    one
}

/// Whether a label selector (`matchLabels` only) selects pods labelled `labels`.
fn selects(selector: &Yaml, labels: &Yaml) -> bool {
    let wanted = selector.as_object().filter(|m| !m.is_empty());
    wanted.is_some_and(|wanted| wanted.iter().all(|(k, v)| labels.get(k) == Some(v)))
}

/// The pods' HTTP and peer ports (by container port name) and the address of the
/// Service `name` in front of one of them, as `name:port`.
fn service_target(docs: &[Yaml], name: &str, ports: &BTreeMap<String, u16>, pod_labels: &Yaml) -> String {
    let service = named(docs, "Service", name);
    assert!(selects(&service["spec"]["selector"], pod_labels), "Service {name} selects the set's pods");
    let port = &service["spec"]["ports"][0];
    let target = port["targetPort"].as_str().expect("a named target port");
    assert_eq!(ports.get(target), Some(&9091), "Service {name} forwards to the pods' HTTP port");
    format!("{name}:{}", port["port"].as_i64().expect("port"))
}

/// A container's ports by name.
fn container_ports(container: &Yaml) -> BTreeMap<String, u16> {
    container["ports"]
        .as_array()
        .expect("ports")
        .iter()
        .map(|p| (p["name"].as_str().unwrap().to_string(), p["containerPort"].as_i64().unwrap() as u16))
        .collect()
}

/// What one rendering must hold, whichever overlay: everything the pods need to form one
/// cluster (flags, ports, probes, peer names, volumes, the secret), the hardening, and
/// the Services, budget and network policy around them. Returns the pods' labels, their
/// container ports by name and the rendering's replica count.
fn check_rendered_cluster(origin: &str, docs: &[Yaml], required_spread: bool) -> (Yaml, BTreeMap<String, u16>, u64) {
    let set = only(docs, "StatefulSet");
    let replicas = set["spec"]["replicas"].as_i64().expect("replicas") as u64;
    let pod = &set["spec"]["template"];
    let labels = &pod["metadata"]["labels"];
    assert!(selects(&set["spec"]["selector"]["matchLabels"], labels), "{origin}: the set selects its own pods");
    let headless = set["spec"]["serviceName"].as_str().expect("serviceName");
    let peers = named(docs, "Service", headless);
    assert_eq!(peers["spec"]["clusterIP"].as_str(), Some("None"), "{origin}: the peer service is headless");
    assert_eq!(peers["spec"]["publishNotReadyAddresses"].as_bool(), Some(true), "{origin}: peers resolve unready");
    assert!(selects(&peers["spec"]["selector"], labels), "{origin}: the peer service selects the set's pods");

    let container = &pod["spec"]["containers"][0];
    let ports = container_ports(container);
    assert_eq!(container["readinessProbe"]["httpGet"]["path"].as_str(), Some("/-/ready"), "{origin}");
    assert_eq!(container["livenessProbe"]["httpGet"]["path"].as_str(), Some("/-/healthy"), "{origin}");
    assert!(routes_to("/-/ready", Endpoint::Ready) && routes_to("/-/healthy", Endpoint::Healthy));

    // The image Dockerfile builds for this version, never a moving tag.
    let image = container["image"].as_str().expect("image");
    assert!(!image.ends_with(":latest"), "{origin}: {image}");
    assert_eq!(image, format!("localhost/pushgateway:{}", env!("CARGO_PKG_VERSION")), "{origin}");

    // Hardening: the image's non-root user, a read-only root, nothing to escalate to.
    let pod_security = &pod["spec"]["securityContext"];
    assert_eq!(pod_security["runAsNonRoot"].as_bool(), Some(true), "{origin}");
    for field in ["runAsUser", "runAsGroup", "fsGroup"] {
        assert_eq!(pod_security[field].as_i64(), Some(65532), "{origin}: {field}");
    }
    assert_eq!(pod_security["fsGroupChangePolicy"].as_str(), Some("OnRootMismatch"), "{origin}");
    let security = &container["securityContext"];
    assert_eq!(security["allowPrivilegeEscalation"].as_bool(), Some(false), "{origin}");
    assert_eq!(security["readOnlyRootFilesystem"].as_bool(), Some(true), "{origin}");
    assert_eq!(strings(&security["capabilities"]["drop"]), vec!["ALL".to_string()], "{origin}");

    // Pods spread over machines: preferred, or required where asked for.
    let anti = &pod["spec"]["affinity"]["podAntiAffinity"];
    let terms: Vec<&Yaml> = if required_spread {
        assert!(anti["preferredDuringSchedulingIgnoredDuringExecution"].is_null(), "{origin}: required alone");
        anti["requiredDuringSchedulingIgnoredDuringExecution"]
            .as_array()
            .expect("required anti-affinity")
            .iter()
            .collect()
    } else {
        let preferred = anti["preferredDuringSchedulingIgnoredDuringExecution"].as_array().expect("anti-affinity");
        preferred.iter().map(|p| &p["podAffinityTerm"]).collect()
    };
    assert!(
        terms.iter().any(|t| t["topologyKey"].as_str() == Some("kubernetes.io/hostname")
            && selects(&t["labelSelector"]["matchLabels"], labels)),
        "{origin}: no anti-affinity of the set's pods per machine: {anti}"
    );

    // A budget that leaves a majority of the voters: of the replicas, and of the initial
    // members, the only voters while further pods are still joining as learners.
    let pdb = only(docs, "PodDisruptionBudget");
    assert!(selects(&pdb["spec"]["selector"]["matchLabels"], labels), "{origin}: the budget covers the pods");
    let unavailable = pdb["spec"]["maxUnavailable"].as_i64().expect("maxUnavailable as a number") as u64;

    // The volume and the secret the flags name.
    let mounts: BTreeMap<&str, &str> = container["volumeMounts"]
        .as_array()
        .expect("volumeMounts")
        .iter()
        .map(|m| (m["mountPath"].as_str().unwrap(), m["name"].as_str().unwrap()))
        .collect();
    let claims: Vec<&str> = set["spec"]["volumeClaimTemplates"]
        .as_array()
        .expect("persistent volumes")
        .iter()
        .map(|c| c["metadata"]["name"].as_str().unwrap())
        .collect();
    let volumes = pod["spec"]["volumes"].as_array().expect("volumes");

    // Every $(VAR) of the arguments comes from the pod's own fields.
    let env: BTreeMap<&str, &str> = container["env"]
        .as_array()
        .expect("env")
        .iter()
        .map(|e| (e["name"].as_str().unwrap(), e["valueFrom"]["fieldRef"]["fieldPath"].as_str().unwrap()))
        .collect();
    assert_eq!(env.get("POD_NAME"), Some(&"metadata.name"), "{origin}");
    assert_eq!(env.get("POD_INDEX"), Some(&"metadata.labels['apps.kubernetes.io/pod-index']"), "{origin}");
    let args = strings(&container["args"]);
    for var in args.iter().flat_map(|a| a.split("$(").skip(1)).map(|rest| rest.split(')').next().unwrap()) {
        assert!(env.contains_key(var), "{origin}: $({var}) is not set");
    }

    // Each pod's arguments, with the environment Kubernetes substitutes.
    let set_name = set["metadata"]["name"].as_str().expect("name");
    let mut nodes = BTreeMap::new();
    for index in 0..replicas {
        let pod_args: Vec<String> = args
            .iter()
            .map(|a| {
                a.replace("$(POD_INDEX)", &index.to_string()).replace("$(POD_NAME)", &format!("{set_name}-{index}"))
            })
            .collect();
        let config = node_config(&format!("{origin} pod {index}"), &pod_args);
        assert_eq!(mounts.get(config.storage_path.as_str()).copied(), Some(claims[0]), "{origin}: data on the volume");
        // (The config holds a stand-in for the secret file: the path is the argument's.)
        let secret_file = pod_args.iter().find_map(|a| a.strip_prefix("--cluster.secret-file=")).expect("a secret");
        let secret_dir = secret_file.rsplit_once('/').expect("a secret file path").0;
        let secret_volume = mounts.get(secret_dir).expect("the secret's directory is mounted");
        assert!(
            volumes.iter().any(|v| v["name"].as_str() == Some(secret_volume) && v["secret"]["secretName"].is_string()),
            "{origin}: the cluster secret comes from a Secret"
        );
        assert_eq!(port_of(&config.web_listen_address[0]), ports["http"], "{origin}");
        assert_eq!(port_of(&config.cluster_listen_address), ports["peer"], "{origin}");
        assert_eq!(
            config.cluster_advertise_address,
            format!("{set_name}-{index}.{headless}:{}", ports["peer"]),
            "{origin}: peers by the headless name"
        );
        nodes.insert(config.cluster_node_id, config);
    }
    let initial = nodes.values().next().expect("a pod").initial_members().expect("members").len() as u64;
    assert_one_cluster(origin, &nodes, (replicas - initial) as usize);
    for voters in [replicas, initial] {
        assert!(
            voters - unavailable > voters / 2,
            "{origin}: evicting {unavailable} of {voters} voters loses the majority"
        );
    }

    // The Services: pushes to ready pods only, scrapes also through pods that are not.
    let push = named(docs, "Service", "pushgateway");
    assert_ne!(
        push["spec"]["publishNotReadyAddresses"].as_bool(),
        Some(true),
        "{origin}: pushes reach ready pods only"
    );
    service_target(docs, "pushgateway", &ports, labels);
    let read = named(docs, "Service", "pushgateway-read");
    assert_eq!(read["spec"]["publishNotReadyAddresses"].as_bool(), Some(true), "{origin}: reads without a majority");
    service_target(docs, "pushgateway-read", &ports, labels);

    // The peer port only from the set's own pods; the HTTP port from anywhere.
    let policy = only(docs, "NetworkPolicy");
    assert!(selects(&policy["spec"]["podSelector"]["matchLabels"], labels), "{origin}: the policy covers the pods");
    assert!(strings(&policy["spec"]["policyTypes"]).contains(&"Ingress".to_string()), "{origin}");
    let rules = policy["spec"]["ingress"].as_array().expect("ingress rules");
    // A rule without ports admits every port; a named port is the container's.
    let admits = |rule: &Yaml, port: u16| {
        rule["ports"].as_array().is_none_or(|ps| {
            ps.iter().any(|p| {
                p["port"].as_i64() == Some(port.into()) || p["port"].as_str().and_then(|n| ports.get(n)) == Some(&port)
            })
        })
    };
    let mut peer_rules = 0;
    for rule in rules.iter().filter(|r| admits(r, ports["peer"])) {
        let from = rule["from"].as_array().filter(|f| !f.is_empty()).expect("the peer port from some sources only");
        for source in from {
            assert!(source["namespaceSelector"].is_null() && source["ipBlock"].is_null(), "{origin}: {source}");
            assert!(
                selects(&source["podSelector"]["matchLabels"], labels),
                "{origin}: peers from the set's pods: {source}"
            );
        }
        peer_rules += 1;
    }
    assert!(peer_rules > 0, "{origin}: the set's pods cannot reach each other's peer port");
    assert!(
        rules.iter().any(|r| admits(r, ports["http"]) && r["from"].is_null()),
        "{origin}: the HTTP port is open to every source"
    );
    (labels.clone(), ports, replicas)
}

#[test]
fn kubernetes_overlays_render_with_probes_ports_peers_and_hardening_agreeing() {
    let (labels, ports, replicas) = check_rendered_cluster("base", &kustomize("deploy/kubernetes/base"), false);
    assert_eq!(replicas, 3);
    for (overlay, replicas) in [("production", 3), ("five-nodes", 5)] {
        let docs = kustomize(&format!("deploy/kubernetes/overlays/{overlay}"));
        let rendered = check_rendered_cluster(overlay, &docs, true);
        assert_eq!(rendered, (labels.clone(), ports.clone(), replicas), "{overlay}");
    }
}

#[test]
fn kubernetes_scrape_configs_read_through_the_read_service() {
    let docs = kustomize("deploy/kubernetes/base");
    let set = only(&docs, "StatefulSet");
    let labels = &set["spec"]["template"]["metadata"]["labels"];
    let container = &set["spec"]["template"]["spec"]["containers"][0];
    let ports = container_ports(container);
    let read = service_target(&docs, "pushgateway-read", &ports, labels);
    let drop_own = |rule: &Yaml, source: &str| {
        rule["action"].as_str() == Some("drop")
            && rule["regex"].as_str() == Some("(pushgateway|process)_.*")
            && strings(&rule[source]) == vec!["__name__".to_string()]
    };
    assert!(routes_to("/-/metrics", Endpoint::NodeMetrics));

    // Plain Prometheus: pushed series once through the read Service, node metrics per pod:
    // never both in one job.
    let scrape = &yaml_docs("deploy/kubernetes/prometheus-scrape.yaml")[0]["scrape_configs"];
    assert_eq!(scrape[0]["job_name"].as_str(), Some("pushgateway"));
    assert_eq!(scrape[0]["honor_labels"].as_bool(), Some(true));
    assert!(drop_own(&scrape[0]["metric_relabel_configs"][0], "source_labels"), "{}", scrape[0]);
    assert_eq!(scrape[0]["static_configs"][0]["targets"][0].as_str(), Some(&*read));
    assert_eq!(scrape[1]["metrics_path"].as_str(), Some("/-/metrics"), "pods' own metrics alone");

    // The prometheus-operator's: the same two jobs, and no ServiceMonitor (it would scrape
    // every pod behind the Service, each pushed series once per pod).
    let operator = kustomize("deploy/kubernetes/prometheus-operator");
    assert!(operator.iter().all(|d| d["kind"].as_str() != Some("ServiceMonitor")));
    let config = &only(&operator, "ScrapeConfig")["spec"];
    assert_eq!(config["jobName"].as_str(), Some("pushgateway"));
    assert_eq!(config["honorLabels"].as_bool(), Some(true));
    assert!(drop_own(&config["metricRelabelings"][0], "sourceLabels"), "{config}");
    assert_eq!(strings(&config["staticConfigs"][0]["targets"]), vec![read]);
    let monitor = &only(&operator, "PodMonitor")["spec"];
    assert!(selects(&monitor["selector"]["matchLabels"], labels), "the PodMonitor selects the set's pods");
    let endpoint = &monitor["podMetricsEndpoints"][0];
    assert_eq!(endpoint["path"].as_str(), Some("/-/metrics"));
    assert_eq!(ports.get(endpoint["port"].as_str().expect("a named port")), Some(&9091));
    let job = &endpoint["relabelings"][0];
    assert_eq!((job["targetLabel"].as_str(), job["replacement"].as_str()), (Some("job"), Some("pushgateway-nodes")));
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
    assert_one_cluster("systemd", &nodes, 0);
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
