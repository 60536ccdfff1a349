//! The one configuration struct: upstream's flag names and defaults, each also settable
//! from the environment as `PUSHGATEWAY_` + the flag name upper-cased with `.` and `-`
//! as `_` (`--web.listen-address` is `PUSHGATEWAY_WEB_LISTEN_ADDRESS`).

use std::net::SocketAddr;
use std::time::Duration;

use clap::{ArgAction, Parser};
use cluster::{ClusterConfig, Faults, ReadConsistency};
use model::{PushLimits, StoreQuotas};

/// Flags of the server. Bad values and unsupported combinations are refused at
/// start-up ([`FlagError`] says with which exit code).
#[derive(Clone, Debug, Parser)]
#[command(name = "pushgateway", version, about = "A clustered, replicated, drop-in compatible Prometheus Pushgateway")]
pub struct Config {
    /// Administration commands against a running node (`pushgateway cluster ...`).
    #[command(subcommand)]
    pub command: Option<Subcommand>,

    /// Addresses on which to expose metrics and web interface (repeatable). Default `:9091`.
    #[arg(long = "web.listen-address", env = "PUSHGATEWAY_WEB_LISTEN_ADDRESS", default_value = ":9091", action = ArgAction::Append, value_delimiter = None)]
    pub web_listen_address: Vec<String>,

    /// Path to a configuration file that can enable TLS or authentication, in
    /// exporter-toolkit's format (`tls_server_config`, `basic_auth_users`,
    /// `http_server_config`). Checked at start-up (a bad file stops it), then read again
    /// when it or a file it names changes.
    #[arg(long = "web.config.file", env = "PUSHGATEWAY_WEB_CONFIG_FILE", default_value = "")]
    pub web_config_file: String,

    /// Path to a file of users (basic authentication) and bearer tokens with roles
    /// (`push`, `read`, `admin`) and, for pushers, the groups they may push to and delete
    /// (see the README). With it every request must authenticate; the users of
    /// `--web.config.file` keep every role. Checked at start-up (a bad file stops it),
    /// then read again when it changes. Empty (the default): off.
    #[arg(long = "web.access-config.file", env = "PUSHGATEWAY_WEB_ACCESS_CONFIG_FILE", default_value = "")]
    pub web_access_config_file: String,

    /// Use systemd socket activation: serve on the sockets systemd passes (LISTEN_FDS)
    /// instead of --web.listen-address.
    #[arg(long = "web.systemd-socket", env = "PUSHGATEWAY_WEB_SYSTEMD_SOCKET", default_value_t = false, num_args = 0..=1, default_missing_value = "true", action = ArgAction::Set)]
    pub web_systemd_socket: bool,

    /// Path to static assets/templates. Accepted for compatibility and ignored: the web
    /// pages are built into the binary.
    #[arg(long = "web.local-assets", env = "PUSHGATEWAY_WEB_LOCAL_ASSETS", default_value = "")]
    pub web_local_assets: String,

    /// Path under which to expose metrics. Default `/metrics`.
    #[arg(long = "web.telemetry-path", env = "PUSHGATEWAY_WEB_TELEMETRY_PATH", default_value = "/metrics")]
    pub web_telemetry_path: String,

    /// The URL under which the Pushgateway is externally reachable. Its path becomes the
    /// route prefix unless `--web.route-prefix` is set.
    #[arg(long = "web.external-url", env = "PUSHGATEWAY_WEB_EXTERNAL_URL", default_value = "")]
    pub web_external_url: String,

    /// Prefix for the internal routes of web endpoints. Defaults to the path of
    /// `--web.external-url`.
    #[arg(long = "web.route-prefix", env = "PUSHGATEWAY_WEB_ROUTE_PREFIX", default_value = "")]
    pub web_route_prefix: String,

    /// Enable shutdown via HTTP request (`PUT`/`POST /-/quit`). Default off.
    #[arg(long = "web.enable-lifecycle", env = "PUSHGATEWAY_WEB_ENABLE_LIFECYCLE", default_value_t = false, num_args = 0..=1, default_missing_value = "true", action = ArgAction::Set)]
    pub web_enable_lifecycle: bool,

    /// Enable API endpoints for admin control actions (`PUT /api/v1/admin/wipe`). Default off.
    #[arg(long = "web.enable-admin-api", env = "PUSHGATEWAY_WEB_ENABLE_ADMIN_API", default_value_t = false, num_args = 0..=1, default_missing_value = "true", action = ArgAction::Set)]
    pub web_enable_admin_api: bool,

    /// How long a request head may take, from when the server starts waiting for it: on
    /// a new connection, and between requests on a kept-alive one (so it is also the idle
    /// timeout). Past it the connection is closed. Default 30s.
    #[arg(long = "web.header-read-timeout", env = "PUSHGATEWAY_WEB_HEADER_READ_TIMEOUT", default_value = "30s", value_parser = parse_go_duration)]
    pub web_header_read_timeout: Duration,

    /// The longest pause while a request body arrives; past it the request is answered
    /// 408 and the connection closed. Default 30s.
    #[arg(long = "web.body-read-timeout", env = "PUSHGATEWAY_WEB_BODY_READ_TIMEOUT", default_value = "30s", value_parser = parse_go_duration)]
    pub web_body_read_timeout: Duration,

    /// Most connections each web listener serves at once; one more is answered 503 and
    /// closed. Default 4096.
    #[arg(long = "web.max-connections", env = "PUSHGATEWAY_WEB_MAX_CONNECTIONS", default_value_t = 4096)]
    pub web_max_connections: usize,

    /// Upstream's persistence file. Accepted so an upstream unit file starts unchanged;
    /// an empty value is valid. See the README for what it does here.
    #[arg(long = "persistence.file", env = "PUSHGATEWAY_PERSISTENCE_FILE", default_value = "")]
    pub persistence_file: String,

    /// Upstream's minimum interval between persistence writes. Accepted for
    /// compatibility. Default `5m`.
    #[arg(long = "persistence.interval", env = "PUSHGATEWAY_PERSISTENCE_INTERVAL", default_value = "5m", value_parser = parse_signed_go_duration)]
    pub persistence_interval: Duration,

    /// Answer pushes with 202 as soon as they are applied, without reporting whether
    /// they were consistent. Inconsistent pushes are still never stored.
    #[arg(long = "push.disable-consistency-check", env = "PUSHGATEWAY_PUSH_DISABLE_CONSISTENCY_CHECK", default_value_t = false, num_args = 0..=1, default_missing_value = "true", action = ArgAction::Set)]
    pub push_disable_consistency_check: bool,

    /// The TTL of a group whose last push named none (see `__ttl__` in the README): a
    /// group not pushed for this long is removed on every node. `0` (the default): such
    /// groups never expire, as upstream's. Set it alike on every node: the leader's is the
    /// one that counts.
    #[arg(long = "push.default-ttl", env = "PUSHGATEWAY_PUSH_DEFAULT_TTL", default_value = "0", value_parser = parse_go_duration)]
    pub push_default_ttl: Duration,

    /// Allow UTF-8 characters in metric and label names (upstream 1.11): quoted names in
    /// text pushes, `U__`-escaped grouping label names in push URLs, UTF-8 names in
    /// protobuf pushes, and scrapes escaping names as their `Accept` header asks.
    #[arg(long = "push.enable-utf8-names", env = "PUSHGATEWAY_PUSH_ENABLE_UTF8_NAMES", default_value_t = false, num_args = 0..=1, default_missing_value = "true", action = ArgAction::Set)]
    pub push_enable_utf8_names: bool,

    /// Largest accepted request body in bytes, counted after decompression too; larger
    /// bodies get 413. Default 64 MiB.
    #[arg(long = "push.max-body-bytes", env = "PUSHGATEWAY_PUSH_MAX_BODY_BYTES", default_value_t = 64 * 1024 * 1024)]
    pub push_max_body_bytes: usize,

    /// Most labels in a grouping key (the URL), `job` included; more: 400.
    #[arg(long = "push.max-grouping-labels", env = "PUSHGATEWAY_PUSH_MAX_GROUPING_LABELS", default_value_t = PushLimits::DEFAULT.grouping_labels)]
    pub push_max_grouping_labels: usize,

    /// Most labels on one pushed series, before the grouping labels are added; more: 400.
    #[arg(long = "push.max-labels-per-series", env = "PUSHGATEWAY_PUSH_MAX_LABELS_PER_SERIES", default_value_t = PushLimits::DEFAULT.labels_per_series)]
    pub push_max_labels_per_series: usize,

    /// Most bytes in a label name or metric name, in the body or the URL; more: 400.
    #[arg(long = "push.max-label-name-bytes", env = "PUSHGATEWAY_PUSH_MAX_LABEL_NAME_BYTES", default_value_t = PushLimits::DEFAULT.label_name_bytes)]
    pub push_max_label_name_bytes: usize,

    /// Most bytes in a label value, in the body or the URL; more: 400.
    #[arg(long = "push.max-label-value-bytes", env = "PUSHGATEWAY_PUSH_MAX_LABEL_VALUE_BYTES", default_value_t = PushLimits::DEFAULT.label_value_bytes)]
    pub push_max_label_value_bytes: usize,

    /// Most series in one push; more: 400.
    #[arg(long = "push.max-series", env = "PUSHGATEWAY_PUSH_MAX_SERIES", default_value_t = PushLimits::DEFAULT.series)]
    pub push_max_series: usize,

    /// Most label pairs in one push once every series carries the grouping labels and
    /// `instance` (what the group will hold); more: 400.
    #[arg(long = "push.max-label-pairs", env = "PUSHGATEWAY_PUSH_MAX_LABEL_PAIRS", default_value_t = PushLimits::DEFAULT.label_pairs)]
    pub push_max_label_pairs: usize,

    /// Most groups the store keeps; a push that would create more: 507.
    #[arg(long = "store.max-groups", env = "PUSHGATEWAY_STORE_MAX_GROUPS", default_value_t = StoreQuotas::DEFAULT.groups)]
    pub store_max_groups: u64,

    /// Most series the store keeps; a push that would add more: 507.
    #[arg(long = "store.max-series", env = "PUSHGATEWAY_STORE_MAX_SERIES", default_value_t = StoreQuotas::DEFAULT.series)]
    pub store_max_series: u64,

    /// Most bytes the store keeps, as it counts them (label and help text, 8 bytes per
    /// number, fixed costs per group, family and series); a push that would add more: 507.
    #[arg(long = "store.max-bytes", env = "PUSHGATEWAY_STORE_MAX_BYTES", default_value_t = StoreQuotas::DEFAULT.bytes)]
    pub store_max_bytes: u64,

    /// The directory `POST /api/v1/admin/cluster/checkpoint` may write into (its path
    /// relative to it, or absolute below it); empty: checkpoints are refused.
    #[arg(long = "storage.checkpoint-dir", env = "PUSHGATEWAY_STORAGE_CHECKPOINT_DIR", default_value = "")]
    pub storage_checkpoint_dir: String,

    /// Data directory of this node. Default `data/`, or `<--persistence.file>.d` when
    /// only `--persistence.file` is given (so an upstream unit file keeps its data where
    /// upstream kept it).
    #[arg(long = "storage.path", env = "PUSHGATEWAY_STORAGE_PATH", default_value = "")]
    pub storage_path: String,

    /// This node's id in the cluster: a number below 2^32. A node that lost its data
    /// keeps it and rejoins under a new incarnation by itself. Default 1.
    #[arg(long = "cluster.node-id", env = "PUSHGATEWAY_CLUSTER_NODE_ID", default_value_t = 1)]
    pub cluster_node_id: u64,

    /// Address of the peer (Raft) listener, e.g. `0.0.0.0:9092`. Empty: a one-member
    /// cluster that binds no peer port.
    #[arg(long = "cluster.listen-address", env = "PUSHGATEWAY_CLUSTER_LISTEN_ADDRESS", default_value = "")]
    pub cluster_listen_address: String,

    /// Address peers use to reach this node's peer listener. Default: the listen address.
    #[arg(long = "cluster.advertise-address", env = "PUSHGATEWAY_CLUSTER_ADVERTISE_ADDRESS", default_value = "")]
    pub cluster_advertise_address: String,

    /// Members of a fresh cluster, `1=host:port,2=host:port,3=host:port` (peer
    /// addresses). The lowest id initializes the cluster once; restarts re-initialize nothing.
    /// A node whose id is not listed refuses to start (a mistyped id), unless
    /// `--cluster.auto-join` is set.
    #[arg(long = "cluster.initial-members", env = "PUSHGATEWAY_CLUSTER_INITIAL_MEMBERS", default_value = "")]
    pub cluster_initial_members: String,

    /// File holding the secret every member's peer (Raft) traffic carries; peer requests
    /// without it are refused, so a process that is not a member cannot append entries,
    /// vote or join. The same file on every node; at least 16 bytes (trailing whitespace
    /// is ignored). Empty: peer traffic is not authenticated.
    #[arg(long = "cluster.secret-file", env = "PUSHGATEWAY_CLUSTER_SECRET_FILE", default_value = "")]
    pub cluster_secret_file: String,

    /// Serve a peer listener that other machines can reach without a secret. Anyone who
    /// reaches it can then wipe the store or join as a voter: only for tests on networks
    /// nobody else reaches. Default off (start-up refuses such a listener).
    #[arg(long = "cluster.insecure-no-secret", env = "PUSHGATEWAY_CLUSTER_INSECURE_NO_SECRET", default_value_t = false, num_args = 0..=1, default_missing_value = "true", action = ArgAction::Set)]
    pub cluster_insecure_no_secret: bool,

    /// A node whose id is not among `--cluster.initial-members` joins the cluster through
    /// them by itself, and becomes a voter once it has caught up: a StatefulSet scaled up
    /// runs the same flags on every pod. Off by default, so that a mistyped id stops the
    /// node instead of adding a voter nobody meant (a voter that later stays away leaves
    /// the cluster one failure short).
    #[arg(long = "cluster.auto-join", env = "PUSHGATEWAY_CLUSTER_AUTO_JOIN", default_value_t = false, num_args = 0..=1, default_missing_value = "true", action = ArgAction::Set)]
    pub cluster_auto_join: bool,

    /// Peer address of an existing member: join the cluster as a learner through it.
    #[arg(long = "cluster.join", env = "PUSHGATEWAY_CLUSTER_JOIN", default_value = "")]
    pub cluster_join: String,

    /// Most connections the peer listener serves at once (timeouts as the web
    /// listener's defaults); one more is answered 503 and closed. Default 256.
    #[arg(long = "cluster.max-connections", env = "PUSHGATEWAY_CLUSTER_MAX_CONNECTIONS", default_value_t = cluster::PEER_LIMITS.max_connections)]
    pub cluster_max_connections: usize,

    /// Raft heartbeat interval; also the time a replication RPC may take. Default 250ms.
    #[arg(long = "cluster.heartbeat-interval", env = "PUSHGATEWAY_CLUSTER_HEARTBEAT_INTERVAL", default_value = "250ms", value_parser = parse_go_duration)]
    pub cluster_heartbeat_interval: Duration,

    /// Minimum election timeout (the maximum is twice this). A follower that hears
    /// nothing from the leader for a random timeout between minimum and maximum asks the
    /// others whether they would vote for it, and stands if a majority would (the
    /// election gate, docs/decisions/0017); a voter refuses while it heard from a leader
    /// within the minimum (the lease on votes). So a killed leader is replaced after
    /// 0.6-1.2 s of silence with the default. A leader that no majority has answered for
    /// the maximum is not ready. Default 600ms.
    #[arg(long = "cluster.election-timeout", env = "PUSHGATEWAY_CLUSTER_ELECTION_TIMEOUT", default_value = "600ms", value_parser = parse_go_duration)]
    pub cluster_election_timeout: Duration,

    /// How long a push or delete may wait for commit before the answer is 504 (the
    /// change may still be applied). Default 5s.
    #[arg(long = "cluster.propose-timeout", env = "PUSHGATEWAY_CLUSTER_PROPOSE_TIMEOUT", default_value = "5s", value_parser = parse_go_duration)]
    pub cluster_propose_timeout: Duration,

    /// Build a snapshot (and compact the log) every this many applied entries. Default 1000.
    #[arg(long = "cluster.snapshot-logs", env = "PUSHGATEWAY_CLUSTER_SNAPSHOT_LOGS", default_value_t = 1000)]
    pub cluster_snapshot_logs: u64,

    /// `linearizable` (default): every read sees every acknowledged push, on any node;
    /// `local`: serve what this node has applied, even without a leader.
    #[arg(
        long = "cluster.read-consistency",
        env = "PUSHGATEWAY_CLUSTER_READ_CONSISTENCY",
        default_value = "linearizable",
        value_enum
    )]
    pub cluster_read_consistency: ReadConsistencyFlag,

    /// With linearizable reads: a read (a scrape, the API, the status page) that cannot
    /// confirm it is up to date within this long (an election, a partition, a lost
    /// majority) is served from what this node has applied, marked with the
    /// `X-Pushgateway-Stale-Seconds` header and counted in `pushgateway_cluster_stale_reads_total`.
    /// `0s`: such a read waits up to --cluster.propose-timeout and then fails (503).
    #[arg(long = "cluster.stale-reads-after", env = "PUSHGATEWAY_CLUSTER_STALE_READS_AFTER", default_value = "500ms", value_parser = parse_go_duration)]
    pub cluster_stale_reads_after: Duration,

    /// Test-only fault: answer PUT pushes 200 without replicating them (acknowledge
    /// before commit), so the fault-injection harness can prove it catches lost writes.
    /// Never on by default; hidden from --help.
    #[arg(long = "debug.unsafe-ack-before-commit", hide = true, default_value_t = false)]
    pub debug_unsafe_ack_before_commit: bool,

    /// Test-only fault: write the Raft log and state without fsync, so the fault-injection
    /// harness can prove its power-loss nemesis catches it. Never on by default; hidden.
    #[arg(long = "debug.unsafe-skip-fsync", hide = true, default_value_t = false)]
    pub debug_unsafe_skip_fsync: bool,

    /// Test-only fault: a node that was the leader when it stopped resumes leadership at
    /// start without an election (openraft 0.9's own behaviour), so the power-loss nemesis
    /// can prove that, with the unsynced apply, this loses acknowledged pushes. Never on
    /// by default; hidden.
    #[arg(long = "debug.unsafe-resume-leadership", hide = true, default_value_t = false)]
    pub debug_unsafe_resume_leadership: bool,

    /// Only log messages with the given severity or above: debug, info, warn, error.
    #[arg(long = "log.level", env = "PUSHGATEWAY_LOG_LEVEL", default_value = "info", value_parser = ["debug", "info", "warn", "error"])]
    pub log_level: String,

    /// Output format of log messages: logfmt or json.
    #[arg(long = "log.format", env = "PUSHGATEWAY_LOG_FORMAT", default_value = "logfmt", value_parser = ["logfmt", "json"])]
    pub log_format: String,
}

impl Config {
    /// The log filter `--log.level` asks for: this server's events at that level, and
    /// openraft's one level quieter. Upstream logs nothing while it serves; openraft logs
    /// twenty lines at `info` when a node starts and eight more with every snapshot and log
    /// purge (one per thousand entries: several lines a second under load), so at `info`
    /// only its warnings and errors show, and this server's own messages say what an
    /// operator needs (a new leader, members joining, imports). `debug` shows openraft's
    /// `info` too. A non-empty `RUST_LOG` replaces this filter whole (see the binary).
    pub fn log_filter(&self) -> String {
        let raft = match self.log_level.as_str() {
            "debug" => "info",
            "info" => "warn",
            other => other,
        };
        format!("{},openraft={raft}", self.log_level)
    }

    /// The route prefix as upstream computes it: `--web.route-prefix`, else the path of
    /// `--web.external-url`; `/` becomes empty; otherwise `/` + the trimmed value.
    pub fn route_prefix(&self) -> String {
        let raw = if self.web_route_prefix.is_empty() {
            external_url_path(&self.web_external_url).unwrap_or_default()
        } else {
            self.web_route_prefix.clone()
        };
        normalize_prefix(&raw)
    }

    /// Checks every flag and turns them into the typed values the server runs with; an
    /// error must stop start-up, the secret file's problems included.
    pub fn validate(&self) -> Result<Settings, FlagError> {
        external_url_path(&self.web_external_url).map_err(|e| format!("--web.external-url: {e}"))?;
        if !self.web_telemetry_path.starts_with('/') {
            return Err(FlagError::Routes(format!(
                "--web.telemetry-path must start with '/': {:?}",
                self.web_telemetry_path
            )));
        }
        if let Some(conflict) = crate::routes::RouteTable::new(self).conflict() {
            return Err(FlagError::Routes(format!(
                "--web.route-prefix or --web.telemetry-path puts two routes in one place ({conflict}); \
                 upstream's router refuses this too"
            )));
        }
        self.settings().map_err(FlagError::Invalid)
    }

    /// [`Config::validate`] past the routes.
    fn settings(&self) -> Result<Settings, String> {
        if self.push_max_body_bytes == 0 {
            return Err("--push.max-body-bytes must be positive".into());
        }
        if let Some(problem) = self.push_limits().above_ceiling() {
            return Err(problem);
        }
        if let Some((flag, _, _)) = self.store_quotas().entries().into_iter().find(|(_, _, quota)| *quota == 0) {
            return Err(format!("--{flag} must be at least 1"));
        }
        let web_listen = self.web_listen_address.iter().map(|a| go_listen_address(a)).collect::<Result<Vec<_>, _>>()?;
        let members = self.initial_members()?;
        let clustered = !members.is_empty() || !self.cluster_join.is_empty();
        if clustered && self.cluster_listen_address.is_empty() {
            return Err("--cluster.initial-members and --cluster.join need --cluster.listen-address".into());
        }
        if !members.is_empty() && !self.cluster_join.is_empty() {
            return Err("--cluster.initial-members and --cluster.join exclude each other".into());
        }
        if !members.is_empty() && !members.contains_key(&self.cluster_node_id) && !self.cluster_auto_join {
            return Err(format!(
                "--cluster.initial-members has no member {}: set --cluster.auto-join to let a node outside them \
                 join by itself (a StatefulSet scaled up)",
                self.cluster_node_id
            ));
        }
        let peer_listen = match self.cluster_listen_address.as_str() {
            "" => None,
            listen => {
                Some(listen.parse::<SocketAddr>().map_err(|e| format!("--cluster.listen-address {listen:?}: {e}"))?)
            }
        };
        if let Some(listen) = peer_listen {
            if !listen.ip().is_loopback() && self.cluster_secret_file.is_empty() && !self.cluster_insecure_no_secret {
                return Err(format!(
                    "--cluster.listen-address {listen} can be reached from other machines, and without \
                     --cluster.secret-file anyone who reaches it can change the cluster: give every member the \
                     same secret (openssl rand -hex 32 > FILE; --cluster.secret-file=FILE), or, on a network \
                     nobody else reaches, --cluster.insecure-no-secret"
                ));
            }
        }
        if self.cluster_snapshot_logs == 0 {
            return Err("--cluster.snapshot-logs must be positive".into());
        }
        if self.web_max_connections == 0 || self.cluster_max_connections == 0 {
            return Err("--web.max-connections and --cluster.max-connections must be at least 1".into());
        }
        if self.web_header_read_timeout.is_zero() || self.web_body_read_timeout.is_zero() {
            return Err("--web.header-read-timeout and --web.body-read-timeout must be positive".into());
        }
        if self.cluster_heartbeat_interval * 2 >= self.cluster_election_timeout {
            return Err("--cluster.election-timeout must be more than twice --cluster.heartbeat-interval".into());
        }
        let non_empty = |s: &str| (!s.is_empty()).then(|| s.to_string());
        let cluster = ClusterConfig {
            node_id: self.cluster_node_id,
            data_dir: self.effective_storage_path().into(),
            advertise: non_empty(&self.cluster_advertise_address),
            initial_members: members,
            join: non_empty(&self.cluster_join),
            heartbeat: self.cluster_heartbeat_interval,
            election_timeout: (self.cluster_election_timeout, self.cluster_election_timeout * 2),
            propose_timeout: self.cluster_propose_timeout,
            read_consistency: match self.cluster_read_consistency {
                ReadConsistencyFlag::Linearizable => ReadConsistency::Linearizable,
                ReadConsistencyFlag::Local => ReadConsistency::Local,
            },
            stale_reads_after: (!self.cluster_stale_reads_after.is_zero()).then_some(self.cluster_stale_reads_after),
            snapshot_logs: self.cluster_snapshot_logs,
            peer_secret: self.cluster_secret()?,
            peer_limits: serve::Limits { max_connections: self.cluster_max_connections, ..cluster::PEER_LIMITS },
            faults: Faults {
                skip_fsync: self.debug_unsafe_skip_fsync,
                resume_leadership: self.debug_unsafe_resume_leadership,
            },
            default_ttl: self.default_ttl(),
        };
        Ok(Settings { web_listen, peer_listen, cluster })
    }

    /// `--push.default-ttl` as the log carries it: none for 0.
    pub fn default_ttl(&self) -> Option<model::Ttl> {
        let millis = u64::try_from(self.push_default_ttl.as_millis()).unwrap_or(u64::MAX);
        (millis > 0).then_some(model::Ttl(millis))
    }

    /// The limits of one push, from the `--push.max-*` flags.
    pub fn push_limits(&self) -> PushLimits {
        PushLimits {
            grouping_labels: self.push_max_grouping_labels,
            labels_per_series: self.push_max_labels_per_series,
            label_name_bytes: self.push_max_label_name_bytes,
            label_value_bytes: self.push_max_label_value_bytes,
            series: self.push_max_series,
            label_pairs: self.push_max_label_pairs,
        }
    }

    /// The bounds of each web listener, from the `--web.*-timeout` and
    /// `--web.max-connections` flags.
    pub fn web_limits(&self) -> serve::Limits {
        serve::Limits {
            header_read_timeout: self.web_header_read_timeout,
            body_read_timeout: self.web_body_read_timeout,
            max_connections: self.web_max_connections,
            max_connections_flag: "web.max-connections",
        }
    }

    /// The quotas of the whole store, from the `--store.max-*` flags.
    pub fn store_quotas(&self) -> StoreQuotas {
        StoreQuotas { groups: self.store_max_groups, series: self.store_max_series, bytes: self.store_max_bytes }
    }

    /// The peer secret from `--cluster.secret-file` (`None` when the flag is empty).
    pub fn cluster_secret(&self) -> Result<Option<String>, String> {
        if self.cluster_secret_file.is_empty() {
            return Ok(None);
        }
        let text = std::fs::read_to_string(&self.cluster_secret_file)
            .map_err(|e| format!("--cluster.secret-file {}: {e}", self.cluster_secret_file))?;
        let secret = text.trim_end().to_string();
        if secret.len() < 16 || !secret.bytes().all(|b| b.is_ascii_graphic()) {
            return Err(format!(
                "--cluster.secret-file {}: the secret must be at least 16 printable ASCII characters without \
                 spaces (e.g. from `openssl rand -hex 32`)",
                self.cluster_secret_file
            ));
        }
        Ok(Some(secret))
    }

    /// `--cluster.initial-members` as `id -> peer address`.
    pub fn initial_members(&self) -> Result<std::collections::BTreeMap<u64, String>, String> {
        let mut out = std::collections::BTreeMap::new();
        for part in self.cluster_initial_members.split(',').map(str::trim).filter(|p| !p.is_empty()) {
            let (id, addr) = part
                .split_once('=')
                .ok_or_else(|| format!("--cluster.initial-members: {part:?} is not id=host:port"))?;
            let id: u64 = id.trim().parse().map_err(|_| format!("--cluster.initial-members: bad id in {part:?}"))?;
            if out.insert(id, addr.trim().to_string()).is_some() {
                return Err(format!("--cluster.initial-members: id {id} appears twice"));
            }
        }
        Ok(out)
    }

    /// The data directory actually used (see `--storage.path`).
    pub fn effective_storage_path(&self) -> String {
        if !self.storage_path.is_empty() {
            self.storage_path.clone()
        } else if !self.persistence_file.is_empty() {
            format!("{}.d", self.persistence_file)
        } else {
            "data/".to_string()
        }
    }

    /// The name rules of pushes: UTF-8 with `--push.enable-utf8-names`, else legacy.
    pub fn names(&self) -> model::check::Names {
        if self.push_enable_utf8_names {
            model::check::Names::Utf8
        } else {
            model::check::Names::Legacy
        }
    }

    /// Flag values as `/api/v1/status` reports them (upstream's names and spelling).
    pub fn flag_map(&self) -> Vec<(&'static str, String)> {
        vec![
            ("log.format", self.log_format.clone()),
            ("log.level", self.log_level.clone()),
            ("persistence.file", self.persistence_file.clone()),
            ("persistence.interval", format_go_duration(self.persistence_interval)),
            ("push.default-ttl", format_go_duration(self.push_default_ttl)),
            ("push.disable-consistency-check", self.push_disable_consistency_check.to_string()),
            ("push.enable-utf8-names", self.push_enable_utf8_names.to_string()),
            ("push.max-body-bytes", self.push_max_body_bytes.to_string()),
            ("push.max-grouping-labels", self.push_max_grouping_labels.to_string()),
            ("push.max-labels-per-series", self.push_max_labels_per_series.to_string()),
            ("push.max-label-name-bytes", self.push_max_label_name_bytes.to_string()),
            ("push.max-label-value-bytes", self.push_max_label_value_bytes.to_string()),
            ("push.max-series", self.push_max_series.to_string()),
            ("push.max-label-pairs", self.push_max_label_pairs.to_string()),
            ("store.max-groups", self.store_max_groups.to_string()),
            ("store.max-series", self.store_max_series.to_string()),
            ("store.max-bytes", self.store_max_bytes.to_string()),
            ("storage.path", self.effective_storage_path()),
            ("storage.checkpoint-dir", self.storage_checkpoint_dir.clone()),
            ("cluster.node-id", self.cluster_node_id.to_string()),
            ("cluster.listen-address", self.cluster_listen_address.clone()),
            ("cluster.advertise-address", self.cluster_advertise_address.clone()),
            ("cluster.initial-members", self.cluster_initial_members.clone()),
            ("cluster.auto-join", self.cluster_auto_join.to_string()),
            ("cluster.join", self.cluster_join.clone()),
            ("cluster.secret-file", self.cluster_secret_file.clone()),
            ("cluster.insecure-no-secret", self.cluster_insecure_no_secret.to_string()),
            ("cluster.heartbeat-interval", format_go_duration(self.cluster_heartbeat_interval)),
            ("cluster.election-timeout", format_go_duration(self.cluster_election_timeout)),
            ("cluster.propose-timeout", format_go_duration(self.cluster_propose_timeout)),
            ("cluster.read-consistency", self.cluster_read_consistency.name().to_string()),
            ("cluster.stale-reads-after", format_go_duration(self.cluster_stale_reads_after)),
            ("cluster.snapshot-logs", self.cluster_snapshot_logs.to_string()),
            ("cluster.max-connections", self.cluster_max_connections.to_string()),
            ("web.config.file", self.web_config_file.clone()),
            ("web.access-config.file", self.web_access_config_file.clone()),
            ("web.enable-admin-api", self.web_enable_admin_api.to_string()),
            ("web.enable-lifecycle", self.web_enable_lifecycle.to_string()),
            ("web.header-read-timeout", format_go_duration(self.web_header_read_timeout)),
            ("web.body-read-timeout", format_go_duration(self.web_body_read_timeout)),
            ("web.max-connections", self.web_max_connections.to_string()),
            ("web.external-url", self.web_external_url.clone()),
            ("web.listen-address", self.web_listen_address.join(",")),
            ("web.local-assets", self.web_local_assets.clone()),
            // The prefix in use, as upstream shows it (it overwrites the flag's value).
            ("web.route-prefix", self.route_prefix()),
            ("web.systemd-socket", self.web_systemd_socket.to_string()),
            ("web.telemetry-path", self.web_telemetry_path.clone()),
        ]
    }
}

/// The values of `--cluster.read-consistency`.
#[derive(Clone, Copy, Debug, PartialEq, Eq, clap::ValueEnum)]
pub enum ReadConsistencyFlag {
    Linearizable,
    Local,
}

impl ReadConsistencyFlag {
    /// The flag's value as written.
    pub fn name(self) -> &'static str {
        match self {
            ReadConsistencyFlag::Linearizable => "linearizable",
            ReadConsistencyFlag::Local => "local",
        }
    }
}

/// Why the flags cannot start a server, with the exit code upstream stops with in the
/// same case, so that a script or an orchestrator that reads it sees what it saw before.
#[derive(Clone, Debug, PartialEq)]
pub enum FlagError {
    /// A value refused (upstream's flag parser, kingpin, exits 1 for its own refusals,
    /// and `main` for an invalid `--web.external-url`); also every refusal of flags
    /// upstream does not have.
    Invalid(String),
    /// Routes that cannot be served: upstream's router panics while it lists them (exit
    /// code 2).
    Routes(String),
}

impl FlagError {
    pub fn exit_code(&self) -> u8 {
        match self {
            FlagError::Invalid(_) => 1,
            FlagError::Routes(_) => 2,
        }
    }
}

impl std::fmt::Display for FlagError {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        match self {
            FlagError::Invalid(problem) | FlagError::Routes(problem) => f.write_str(problem),
        }
    }
}

impl From<String> for FlagError {
    fn from(problem: String) -> Self {
        FlagError::Invalid(problem)
    }
}

/// What the flags come to once validated ([`Config::validate`]): the typed values the
/// server runs with.
#[derive(Clone, Debug)]
pub struct Settings {
    /// Where the web listeners bind (`--web.listen-address`, `:9091` as every interface).
    pub web_listen: Vec<SocketAddr>,
    /// Where the peer listener binds; `None` for a one-member cluster without peers.
    pub peer_listen: Option<SocketAddr>,
    /// The node's settings (`--storage.path`, `--cluster.*`).
    pub cluster: ClusterConfig,
}

/// A Go listen address: `:9091` means every interface.
fn go_listen_address(listen: &str) -> Result<SocketAddr, String> {
    let full = if listen.starts_with(':') { format!("0.0.0.0{listen}") } else { listen.to_string() };
    full.parse().map_err(|e| format!("invalid --web.listen-address {listen:?}: {e}"))
}

/// `pushgateway <subcommand>`.
#[derive(Clone, Debug, clap::Subcommand)]
pub enum Subcommand {
    /// Inspect or change the cluster through a node's HTTP API.
    #[command(subcommand)]
    Cluster(ClusterCommand),
    /// Import upstream's persistence file (its `--persistence.file`) through a node's HTTP
    /// API (needs `--web.enable-admin-api` there): every node gets all of its groups in one
    /// log entry; a group replaces the stored group with the same grouping key.
    Import {
        /// The file upstream wrote.
        file: String,
        #[command(flatten)]
        client: ClientOptions,
    },
}

/// How the subcommands reach a node's HTTP API: its URL, TLS (a CA to trust, a client
/// certificate) and basic authentication or a bearer token, as its `--web.config.file`
/// and `--web.access-config.file` ask.
#[derive(Clone, Debug, clap::Args)]
pub struct ClientOptions {
    /// Base URL of a node, e.g. http://127.0.0.1:9091 or https://pushgateway:9091
    #[arg(long, env = "PUSHGATEWAY_SERVER", default_value = "http://127.0.0.1:9091")]
    pub server: String,
    /// PEM file of the CA that signed the node's certificate (besides the system's CAs).
    #[arg(long = "tls.ca-file", env = "PUSHGATEWAY_TLS_CA_FILE", default_value = "")]
    pub tls_ca_file: String,
    /// PEM files of a client certificate and its key, for a node that asks for one.
    #[arg(long = "tls.cert-file", env = "PUSHGATEWAY_TLS_CERT_FILE", default_value = "", requires = "tls_key_file")]
    pub tls_cert_file: String,
    #[arg(long = "tls.key-file", env = "PUSHGATEWAY_TLS_KEY_FILE", default_value = "", requires = "tls_cert_file")]
    pub tls_key_file: String,
    /// Accept any server certificate (tests only: anyone in between can read and answer).
    #[arg(long = "tls.insecure-skip-verify", default_value_t = false)]
    pub tls_insecure_skip_verify: bool,
    /// Basic-authentication user name.
    #[arg(long = "auth.username", env = "PUSHGATEWAY_AUTH_USERNAME", default_value = "")]
    pub auth_username: String,
    /// File holding the basic-authentication password (trailing newline ignored); a
    /// password is never taken on the command line, where other users can read it.
    #[arg(
        long = "auth.password-file",
        env = "PUSHGATEWAY_AUTH_PASSWORD_FILE",
        default_value = "",
        requires = "auth_username"
    )]
    pub auth_password_file: String,
    /// File holding a bearer token of the node's `--web.access-config.file` (trailing
    /// whitespace ignored), sent as `Authorization: Bearer <token>`; instead of a user.
    #[arg(
        long = "auth.token-file",
        env = "PUSHGATEWAY_AUTH_TOKEN_FILE",
        default_value = "",
        conflicts_with = "auth_username"
    )]
    pub auth_token_file: String,
}

/// `pushgateway cluster ...`: talks to the HTTP API of any node (membership changes
/// need `--web.enable-admin-api` there and are carried out by the leader).
#[derive(Clone, Debug, clap::Subcommand)]
pub enum ClusterCommand {
    /// Show role, term, leader, log and applied index and the members.
    Status {
        #[command(flatten)]
        client: ClientOptions,
    },
    /// Add a node: as a learner, then (once caught up) as a voter.
    Add {
        #[command(flatten)]
        client: ClientOptions,
        /// Id of the new node (never reuse an id).
        #[arg(long)]
        id: u64,
        /// Peer address of the new node (its --cluster.advertise-address).
        #[arg(long)]
        address: String,
        /// Keep it a learner (it replicates but does not vote).
        #[arg(long, default_value_t = false)]
        learner_only: bool,
    },
    /// Remove a node (a voter or a learner).
    Remove {
        #[command(flatten)]
        client: ClientOptions,
        #[arg(long)]
        id: u64,
    },
    /// Write a consistent copy of the node's database (a backup) into a new directory on
    /// the node's machine; start a node on it with `force-new-cluster` to restore.
    Checkpoint {
        #[command(flatten)]
        client: ClientOptions,
        /// Directory to create, on the server's file system.
        #[arg(long)]
        path: String,
    },
    /// Offline, on a stopped node's data directory: make the node the only voter of a new
    /// cluster, keeping its data (after losing a majority for good, or to restore a
    /// checkpoint). Start it afterwards with this id and peer address, then grow it.
    ForceNewCluster {
        /// The node's --storage.path.
        #[arg(long = "storage.path")]
        storage_path: String,
        /// The id it will run under (its --cluster.node-id).
        #[arg(long)]
        id: u64,
        /// Its peer address (its --cluster.advertise-address).
        #[arg(long)]
        address: String,
    },
}

/// The path of `--web.external-url` as Go's `url.Parse` (upstream's flag parser) reads it,
/// percent-decoded as `url.URL.Path` is (`http://host/p%20q?x` -> `/p q`), or the error
/// that stops upstream at start-up, in Go's words. Go's rules, not a URL library's: without
/// a scheme the whole value is the path (`example.com/ext` -> `/example.com/ext`); a scheme
/// followed by no `/` is opaque, so no path (`localhost:9091/ext` -> ``); `//host/x` has a
/// host; the query and fragment are cut off first.
pub fn external_url_path(raw: &str) -> Result<String, String> {
    use crate::exposition::text_parse::go_quote;
    let parse_error = |url: &str, why: String| format!("invalid URL: parse {}: {why}", go_quote(url));
    let (url, fragment) = raw.split_once('#').map_or((raw, None), |(u, f)| (u, Some(f)));
    if url.bytes().any(|b| b < 0x20 || b == 0x7f) {
        return Err(parse_error(url, "net/url: invalid control character in URL".into()));
    }
    let path = url_path(url).map_err(|why| parse_error(url, why))?;
    if let Some(fragment) = fragment {
        go_unescape(fragment, Escaping::Other).map_err(|why| parse_error(raw, why))?;
    }
    Ok(path)
}

/// Go's `url.parse(url, false)`, keeping only the path.
fn url_path(url: &str) -> Result<String, String> {
    if url == "*" {
        return Ok("*".into());
    }
    // The scheme: letters, then letters, digits, `+`, `-` or `.`, up to a `:`.
    let mut scheme = "";
    let mut rest = url;
    for (i, c) in url.bytes().enumerate() {
        match c {
            b'a'..=b'z' | b'A'..=b'Z' => {}
            b'0'..=b'9' | b'+' | b'-' | b'.' if i > 0 => {}
            b':' if i == 0 => return Err("missing protocol scheme".into()),
            b':' => {
                (scheme, rest) = (&url[..i], &url[i + 1..]);
                break;
            }
            _ => break,
        }
    }
    // The query goes (Go's `ForceQuery` case, a lone `?` at the end, leaves the same path).
    let rest = rest.split_once('?').map_or(rest, |(r, _)| r);
    if !rest.starts_with('/') {
        if !scheme.is_empty() {
            return Ok(String::new()); // opaque
        }
        if rest.split('/').next().unwrap_or("").contains(':') {
            return Err("first path segment in URL cannot contain colon".into());
        }
    }
    let mut path = rest;
    if (!scheme.is_empty() || !rest.starts_with("///")) && rest.starts_with("//") {
        let authority = &rest[2..];
        let (authority, after) = authority.find('/').map_or((authority, ""), |i| (&authority[..i], &authority[i..]));
        url_authority(authority)?;
        path = after;
    }
    go_unescape(path, Escaping::Other)
}

/// Go's `parseAuthority`: `[userinfo@]host[:port]`, checked, nothing kept.
fn url_authority(authority: &str) -> Result<(), String> {
    use crate::exposition::text_parse::go_quote;
    let (userinfo, host) = authority.rsplit_once('@').map_or((None, authority), |(u, h)| (Some(u), h));
    let port_ok = |colon_port: &str| {
        colon_port.is_empty() || colon_port.strip_prefix(':').is_some_and(|p| p.bytes().all(|b| b.is_ascii_digit()))
    };
    let bad_port = |colon_port: &str| format!("invalid port {} after host", go_quote(colon_port));
    if host.starts_with('[') {
        let Some(i) = host.rfind(']') else { return Err("missing ']' in host".into()) };
        if !port_ok(&host[i + 1..]) {
            return Err(bad_port(&host[i + 1..]));
        }
        // A zone (`%25…`) may escape anything; only the address part is checked.
        let checked = host[..i].find("%25").map_or(host, |zone| &host[..zone]);
        go_unescape(checked, Escaping::Host)?;
    } else {
        if let Some(i) = host.rfind(':') {
            if !port_ok(&host[i..]) {
                return Err(bad_port(&host[i..]));
            }
        }
        go_unescape(host, Escaping::Host)?;
    }
    if let Some(userinfo) = userinfo {
        let valid = userinfo.chars().all(|c| c.is_ascii_alphanumeric() || "-._:~!$&'()*+,;=%@".contains(c));
        if !valid {
            return Err("net/url: invalid userinfo".into());
        }
        for part in userinfo.splitn(2, ':') {
            go_unescape(part, Escaping::Other)?;
        }
    }
    Ok(())
}

#[derive(Clone, Copy, PartialEq)]
enum Escaping {
    /// A host: `%XX` only for bytes from 0x80 (or `%25`), and only Go's host characters.
    Host,
    Other,
}

/// Go's `url.unescape`: `%XX` decoded, a malformed escape refused as Go words it.
fn go_unescape(s: &str, mode: Escaping) -> Result<String, String> {
    use crate::exposition::text_parse::go_quote;
    let b = s.as_bytes();
    let mut i = 0;
    while i < b.len() {
        match b[i] {
            b'%' => {
                if i + 2 >= b.len() || !b[i + 1].is_ascii_hexdigit() || !b[i + 2].is_ascii_hexdigit() {
                    let end = (i + 3).min(b.len());
                    return Err(format!("invalid URL escape {}", go_quote(&s[i..end])));
                }
                if mode == Escaping::Host && b[i + 1] < b'8' && &s[i..i + 3] != "%25" {
                    return Err(format!("invalid URL escape {}", go_quote(&s[i..i + 3])));
                }
                i += 3;
            }
            c => {
                let host_char = c.is_ascii_alphanumeric() || b"!$&'()*+,;=:[]<>\"-_.~".contains(&c);
                if mode == Escaping::Host && c < 0x80 && !host_char {
                    return Err(format!("invalid character {} in host name", go_quote(&s[i..i + 1])));
                }
                i += 1;
            }
        }
    }
    Ok(percent_encoding::percent_decode_str(s).decode_utf8_lossy().into_owned())
}

fn normalize_prefix(prefix: &str) -> String {
    if prefix.is_empty() || prefix == "/" {
        return String::new();
    }
    format!("/{}", prefix.trim_matches('/'))
}

/// A Go duration that may carry a sign, as Go's `time.ParseDuration` takes it (upstream
/// starts with `--persistence.interval=-1s`); a negative one is zero here.
fn parse_signed_go_duration(s: &str) -> Result<Duration, String> {
    match s.as_bytes().first() {
        Some(b'+') => parse_go_duration(&s[1..]),
        Some(b'-') => parse_go_duration(&s[1..]).map(|_| Duration::ZERO),
        _ => parse_go_duration(s),
    }
}

/// The command line as kingpin (upstream's flag parser) reads it, in the words this
/// parser reads: an `@file` argument is the file's lines, one argument each (lines
/// starting with `#` skipped); `--no-<flag>` of a boolean flag is `--<flag>=false`;
/// `--help-long` and `--help-man` are `--help`. So an upstream command line starts this
/// server unchanged.
pub fn kingpin_args(args: impl IntoIterator<Item = std::ffi::OsString>) -> Result<Vec<std::ffi::OsString>, String> {
    use clap::CommandFactory;
    // The boolean flags that take `=false` (not the hidden switches that take no value).
    let booleans: Vec<String> = Config::command()
        .get_arguments()
        .filter(|a| a.get_default_values() == ["false"] && a.get_action().takes_values())
        .filter_map(|a| a.get_long().map(str::to_string))
        .collect();
    let mut args = args.into_iter();
    let mut out: Vec<std::ffi::OsString> = args.next().into_iter().collect();
    translate(args.collect(), &booleans, 0, &mut out)?;
    Ok(out)
}

/// [`kingpin_args`] for the arguments after the program's name; an `@file`'s lines are
/// read as arguments themselves (nested files too, a few deep), and nothing after `--`.
fn translate(
    args: Vec<std::ffi::OsString>,
    booleans: &[String],
    depth: usize,
    out: &mut Vec<std::ffi::OsString>,
) -> Result<(), String> {
    let mut args = args.into_iter();
    while let Some(arg) = args.next() {
        let text = arg.to_string_lossy().into_owned();
        if text == "--" {
            out.push(arg);
            out.extend(args);
            return Ok(());
        }
        if let Some(file) = text.strip_prefix('@') {
            if depth >= 8 {
                return Err(format!("arguments from {file:?}: files nested more than 8 deep"));
            }
            let content =
                std::fs::read_to_string(file).map_err(|e| format!("cannot read arguments from {file:?}: {e}"))?;
            let lines = content.lines().filter(|l| !l.starts_with('#')).map(std::ffi::OsString::from).collect();
            translate(lines, booleans, depth + 1, out)?;
        } else if let Some(flag) = text.strip_prefix("--no-").filter(|f| booleans.iter().any(|b| b == f)) {
            out.push(format!("--{flag}=false").into());
        } else if text == "--help-long" || text == "--help-man" {
            out.push("--help".into());
        } else {
            out.push(arg);
        }
    }
    Ok(())
}

/// Parses a Go duration such as `5m`, `1h30m`, `1.5s`, `300ms`.
pub fn parse_go_duration(s: &str) -> Result<Duration, String> {
    let bad = || format!("invalid duration {s:?}");
    if s == "0" {
        return Ok(Duration::ZERO);
    }
    let mut rest = s;
    let mut total = 0f64;
    if rest.is_empty() {
        return Err(bad());
    }
    while !rest.is_empty() {
        let num_len = rest.find(|c: char| !(c.is_ascii_digit() || c == '.')).ok_or_else(bad)?;
        let value: f64 = rest[..num_len].parse().map_err(|_| bad())?;
        rest = &rest[num_len..];
        let unit_len = rest.find(|c: char| c.is_ascii_digit() || c == '.').unwrap_or(rest.len());
        let unit = match &rest[..unit_len] {
            "ns" => 1e-9,
            "us" | "µs" => 1e-6,
            "ms" => 1e-3,
            "s" => 1.0,
            "m" => 60.0,
            "h" => 3600.0,
            "d" => 86400.0,
            "w" => 7.0 * 86400.0,
            "y" => 365.0 * 86400.0,
            _ => return Err(bad()),
        };
        total += value * unit;
        rest = &rest[unit_len..];
    }
    // Fallible: a push URL's `__ttl__` reaches here, and 10^30 years must not panic.
    Duration::try_from_secs_f64(total).map_err(|_| bad())
}

/// Go's `time.Duration.String()` for whole and fractional seconds (`5m0s`, `1h0m0s`,
/// `1.5s`, `300ms`).
pub fn format_go_duration(d: Duration) -> String {
    if d.is_zero() {
        return "0s".into();
    }
    if d < Duration::from_secs(1) {
        let ns = d.as_nanos();
        return if ns % 1_000_000 == 0 {
            format!("{}ms", ns / 1_000_000)
        } else if ns % 1000 == 0 {
            format!("{}µs", ns / 1000)
        } else {
            format!("{ns}ns")
        };
    }
    let total = d.as_secs();
    let (h, m, s) = (total / 3600, (total / 60) % 60, total % 60);
    let frac = d.subsec_nanos();
    let secs = if frac == 0 {
        format!("{s}s")
    } else {
        let f = format!("{:09}", frac);
        format!("{s}.{}s", f.trim_end_matches('0'))
    };
    if h > 0 {
        format!("{h}h{m}m{secs}")
    } else if m > 0 {
        format!("{m}m{secs}")
    } else {
        secs
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_cluster_secret_is_long_and_printable() {
        let dir = tempfile::tempdir().unwrap();
        let secret = |text: &str| {
            let path = dir.path().join("secret");
            std::fs::write(&path, text).unwrap();
            let config = Config::try_parse_from(["pushgateway", &format!("--cluster.secret-file={}", path.display())]);
            config.unwrap().cluster_secret()
        };
        assert_eq!(secret("0123456789abcdef0123\n"), Ok(Some("0123456789abcdef0123".to_string())));
        assert!(secret("short\n").is_err());
        assert!(secret("0123456789 abcdef0123\n").is_err(), "a space");
        assert!(secret("0123456789\u{e9}abcdef0123").is_err(), "not ASCII");
        let none = Config::try_parse_from(["pushgateway"]).unwrap();
        assert_eq!(none.cluster_secret(), Ok(None));
    }

    /// A node outside its initial members starts only with `--cluster.auto-join`: a
    /// mistyped id must not add a voter.
    #[test]
    fn a_node_outside_the_initial_members_needs_auto_join() {
        let validate = |extra: &[&str]| {
            let mut argv = vec![
                "pushgateway",
                "--cluster.node-id=4",
                "--cluster.listen-address=127.0.0.1:9092",
                "--cluster.initial-members=1=127.0.0.1:9092,2=127.0.0.1:9093,3=127.0.0.1:9094",
            ];
            argv.extend(extra);
            Config::try_parse_from(argv).unwrap().validate().map(|_| ()).map_err(|e| e.to_string())
        };
        let refused = validate(&[]).unwrap_err();
        assert!(refused.contains("has no member 4") && refused.contains("--cluster.auto-join"), "{refused}");
        assert_eq!(validate(&["--cluster.auto-join"]), Ok(()));
    }

    /// A peer listener other machines can reach needs the secret, or the explicit
    /// insecure flag; one on loopback does not.
    #[test]
    fn a_reachable_peer_listener_needs_a_secret() {
        let dir = tempfile::tempdir().unwrap();
        let secret = dir.path().join("secret");
        std::fs::write(&secret, "0123456789abcdef0123\n").unwrap();
        let validate = |extra: &[&str]| {
            let mut argv = vec!["pushgateway".to_string(), "--cluster.initial-members=1=10.0.0.1:9092".to_string()];
            argv.extend(extra.iter().map(|s| s.to_string()));
            Config::try_parse_from(argv).unwrap().validate().map(|_| ()).map_err(|e| e.to_string())
        };
        let refused = validate(&["--cluster.listen-address=0.0.0.0:9092"]).unwrap_err();
        assert!(
            refused.contains("--cluster.secret-file") && refused.contains("--cluster.insecure-no-secret"),
            "{refused}"
        );
        assert!(validate(&["--cluster.listen-address=10.0.0.1:9092"]).is_err());
        let with_secret = format!("--cluster.secret-file={}", secret.display());
        assert_eq!(validate(&["--cluster.listen-address=0.0.0.0:9092", &with_secret]), Ok(()));
        assert_eq!(validate(&["--cluster.listen-address=0.0.0.0:9092", "--cluster.insecure-no-secret"]), Ok(()));
        assert_eq!(validate(&["--cluster.listen-address=127.0.0.1:9092"]), Ok(()));
    }

    /// The subcommands send a user or a token, not both.
    #[test]
    fn a_token_file_excludes_a_user() {
        let parse = |extra: &[&str]| {
            let mut argv = vec!["pushgateway", "cluster", "status"];
            argv.extend(extra);
            Config::try_parse_from(argv).map(|_| ())
        };
        assert!(parse(&["--auth.token-file=token"]).is_ok());
        assert!(parse(&["--auth.username=ci", "--auth.password-file=pw"]).is_ok());
        assert!(parse(&["--auth.username=ci", "--auth.token-file=token"]).is_err());
    }

    #[test]
    fn route_prefix_cases() {
        let cases = [
            ("prefix with slashes", "/pg/", "", "/pg"),
            ("root prefix is empty", "/", "", ""),
            ("external url path", "", "http://example.com/ext/", "/ext"),
            ("external url without path", "", "http://example.com", ""),
            ("prefix wins over url", "a/b", "http://example.com/ext/", "/a/b"),
            ("url path decoded", "", "http://example.com/p%20q/x%2Fy", "/p q/x/y"),
            // Go's url.Parse, as upstream 1.5.1 answered each of these.
            ("no scheme: all path", "", "example.com/ext", "/example.com/ext"),
            ("no scheme, no slash", "", "pgw.example.com", "/pgw.example.com"),
            ("host:port is a scheme and an opaque rest", "", "localhost:9091/ext", ""),
            ("network-path reference", "", "//example.com/ext", "/ext"),
            ("query cut first", "", "http://example.com?x=/y", ""),
            ("fragment cut first", "", "http://example.com#/y", ""),
            ("triple slash is a path", "", "///ext", "/ext"),
        ];
        for (name, prefix, url, want) in cases {
            let mut c = Config::parse_from(["pushgateway"]);
            c.web_route_prefix = prefix.into();
            c.web_external_url = url.into();
            assert_eq!(c.route_prefix(), want, "case {name}");
            let shown = c.flag_map().into_iter().find(|(flag, _)| *flag == "web.route-prefix").map(|(_, v)| v);
            assert_eq!(shown.as_deref(), Some(want), "case {name}: /api/v1/status shows the prefix in use");
        }
    }

    /// The values Go's `url.Parse` refuses stop start-up, in Go's words, as upstream's do;
    /// the others start (each as upstream 1.5.1 answered it).
    #[test]
    fn external_urls_go_refuses_stop_start_up() {
        let cases: [(&str, Result<&str, &str>); 18] = [
            (":bad", Err(r#"parse ":bad": missing protocol scheme"#)),
            ("http://x/%zz", Err(r#"parse "http://x/%zz": invalid URL escape "%zz""#)),
            ("http://x:y/", Err(r#"parse "http://x:y/": invalid port ":y" after host"#)),
            ("http://a b/", Err(r#"parse "http://a b/": invalid character " " in host name"#)),
            ("http://[::1/", Err(r#"parse "http://[::1/": missing ']' in host"#)),
            ("http://u{@x/", Err(r#"parse "http://u{@x/": net/url: invalid userinfo"#)),
            ("/p%4", Err(r#"parse "/p%4": invalid URL escape "%4""#)),
            ("http://x/#%zz", Err(r#"parse "http://x/#%zz": invalid URL escape "%zz""#)),
            ("1http://x/a", Err(r#"parse "1http://x/a": first path segment in URL cannot contain colon"#)),
            ("%41:b", Err(r#"parse "%41:b": first path segment in URL cannot contain colon"#)),
            ("http://x%41/", Err(r#"parse "http://x%41/": invalid URL escape "%41""#)),
            ("a:b", Ok("")),
            ("c:d/e", Ok("")),
            ("x/a:b", Ok("x/a:b")),
            ("a/b:c", Ok("a/b:c")),
            ("./c:d", Ok("./c:d")),
            ("http://[::1%25en0]:80/a", Ok("/a")),
            ("http://x%C3%A9/a", Ok("/a")),
        ];
        for (url, want) in cases {
            let got = external_url_path(url);
            let mut c = Config::parse_from(["pushgateway"]);
            c.web_external_url = url.into();
            match want {
                Ok(path) => {
                    assert_eq!(got.as_deref(), Ok(path), "{url}");
                    assert!(c.validate().is_ok(), "{url} starts");
                }
                Err(words) => {
                    assert_eq!(got, Err(format!("invalid URL: {words}")), "{url}");
                    assert_eq!(
                        c.validate().err(),
                        Some(FlagError::Invalid(format!("--web.external-url: invalid URL: {words}"))),
                        "{url}"
                    );
                }
            }
        }
    }

    /// Upstream's command lines start this server: `@file`, `--no-` of its boolean flags,
    /// `--help-long`, a signed `--persistence.interval`.
    #[test]
    fn kingpin_command_lines_are_read() {
        let dir = std::env::temp_dir().join(format!("pgw-args-{}", std::process::id()));
        std::fs::create_dir_all(&dir).unwrap();
        let file = dir.join("args");
        let lines = "# flags\n--web.enable-admin-api\n--web.telemetry-path=/m\n--no-push.enable-utf8-names\n";
        std::fs::write(&file, lines).unwrap();
        let argv = |args: &[&str]| kingpin_args(args.iter().map(std::ffi::OsString::from));
        let args = argv(&["pushgateway", &format!("@{}", file.display()), "--no-web.enable-lifecycle"]).unwrap();
        let c = Config::try_parse_from(args).unwrap();
        assert!(c.web_enable_admin_api);
        assert!(!c.web_enable_lifecycle);
        assert_eq!(c.web_telemetry_path, "/m");
        // Given twice, refused, as kingpin refuses a repeated flag.
        let twice = argv(&["pushgateway", "--web.enable-lifecycle", "--no-web.enable-lifecycle"]).unwrap();
        assert!(Config::try_parse_from(twice).is_err());
        assert_eq!(argv(&["pushgateway", "--help-long"]).unwrap(), ["pushgateway", "--help"]);
        assert_eq!(
            argv(&["pushgateway", "--no-web.listen-address"]).unwrap(),
            ["pushgateway", "--no-web.listen-address"]
        );
        assert!(argv(&["pushgateway", "@/nonexistent/args"]).is_err());
        let after_dashes = argv(&["pushgateway", "--", "--no-web.enable-lifecycle"]).unwrap();
        assert_eq!(after_dashes, ["pushgateway", "--", "--no-web.enable-lifecycle"]);
        let switch = "--no-debug.unsafe-skip-fsync";
        assert_eq!(argv(&["pushgateway", switch]).unwrap(), ["pushgateway", switch], "a switch without a value");
        for (given, secs) in [("-1s", 0), ("+5s", 5), ("5s", 5)] {
            let c = Config::try_parse_from(["pushgateway", &format!("--persistence.interval={given}")]).unwrap();
            assert_eq!(c.persistence_interval, Duration::from_secs(secs), "{given}");
        }
        std::fs::remove_dir_all(dir).unwrap();
    }

    #[test]
    fn go_durations() {
        for (text, secs, shown) in
            [("5m", 300.0, "5m0s"), ("1h30m", 5400.0, "1h30m0s"), ("1.5s", 1.5, "1.5s"), ("300ms", 0.3, "300ms")]
        {
            let d = parse_go_duration(text).unwrap();
            assert!((d.as_secs_f64() - secs).abs() < 1e-9, "{text}");
            assert_eq!(format_go_duration(d), shown);
        }
        assert!(parse_go_duration("5x").is_err());
        assert!(parse_go_duration("").is_err());
    }
}
