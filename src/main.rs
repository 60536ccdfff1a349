//! The `pushgateway` binary: parse flags, start logging, serve until SIGTERM, SIGINT
//! or `/-/quit`.

use std::net::SocketAddr;
use std::process::ExitCode;
use std::sync::Arc;

use anyhow::Context;
use clap::Parser;
use tracing_subscriber::EnvFilter;

use cluster::node::{ClusterConfig, Node, ReadConsistency};
use pushgateway::config::{ClusterCommand, Config, Subcommand};
use pushgateway::listener::TlsListener;
use pushgateway::self_metrics::own_families;
use pushgateway::server::{router, AppState};
use pushgateway::web_config::{LiveWebConfig, WebConfig};

/// `:9091` means every interface, as in Go.
fn socket_addr(listen: &str) -> anyhow::Result<SocketAddr> {
    let full = if listen.starts_with(':') { format!("0.0.0.0{listen}") } else { listen.to_string() };
    full.parse().with_context(|| format!("invalid --web.listen-address {listen:?}"))
}

fn init_logging(config: &Config) {
    let filter = EnvFilter::try_from_default_env().unwrap_or_else(|_| EnvFilter::new(&config.log_level));
    let builder = tracing_subscriber::fmt().with_env_filter(filter).with_writer(std::io::stderr);
    if config.log_format == "json" {
        builder.json().init();
    } else {
        builder.with_ansi(false).init();
    }
}

async fn shutdown_signal(quit: std::sync::Arc<tokio::sync::Notify>) {
    let term = async {
        match tokio::signal::unix::signal(tokio::signal::unix::SignalKind::terminate()) {
            Ok(mut s) => {
                s.recv().await;
            }
            Err(_) => std::future::pending::<()>().await,
        }
    };
    tokio::select! {
        _ = tokio::signal::ctrl_c() => tracing::info!("received SIGINT; exiting gracefully"),
        _ = term => tracing::info!("received SIGTERM; exiting gracefully"),
        _ = quit.notified() => tracing::warn!("received termination request via web service; exiting gracefully"),
    }
}

/// The node's cluster settings from the flags (already validated).
fn cluster_config(config: &Config) -> anyhow::Result<ClusterConfig> {
    let listen =
        if config.cluster_listen_address.is_empty() { None } else { Some(config.cluster_listen_address.parse()?) };
    let advertise = (!config.cluster_advertise_address.is_empty()).then(|| config.cluster_advertise_address.clone());
    Ok(ClusterConfig {
        node_id: config.cluster_node_id,
        data_dir: config.effective_storage_path().into(),
        listen,
        advertise,
        initial_members: config.initial_members().map_err(anyhow::Error::msg)?,
        join: (!config.cluster_join.is_empty()).then(|| config.cluster_join.clone()),
        heartbeat: config.cluster_heartbeat_interval,
        election_timeout: (config.cluster_election_timeout, config.cluster_election_timeout * 2),
        propose_timeout: config.cluster_propose_timeout,
        read_consistency: if config.cluster_read_consistency == "local" {
            ReadConsistency::Local
        } else {
            ReadConsistency::Linearizable
        },
        snapshot_logs: config.cluster_snapshot_logs,
        own_families: own_families(),
        peer_secret: config.cluster_secret().map_err(anyhow::Error::msg)?,
        unsafe_skip_fsync: config.debug_unsafe_skip_fsync,
    })
}

/// Serves HTTP on the current runtime; the node (Raft, the proposer, the peer listener)
/// is started on `cluster_runtime`, whose tasks it spawns stay there.
async fn run(config: Config, web: WebConfig, cluster_runtime: tokio::runtime::Handle) -> anyhow::Result<()> {
    let addrs: Vec<SocketAddr> = config.web_listen_address.iter().map(|a| socket_addr(a)).collect::<Result<_, _>>()?;
    let node = cluster_runtime.spawn(Node::start(cluster_config(&config)?)).await??;
    tracing::info!(node = node.id(), storage = %config.effective_storage_path(), "node started");
    let tls = web.tls.is_some();
    let web = Arc::new(LiveWebConfig::new(&config.web_config_file, web));
    let state = AppState::new(config, node.clone()).with_web_config(web.clone());
    let app = router(state.clone());
    let mut servers = tokio::task::JoinSet::new();
    let stop = tokio_util_like_broadcast(state.quit.clone());
    for addr in addrs {
        let listener = tokio::net::TcpListener::bind(addr).await.with_context(|| format!("cannot listen on {addr}"))?;
        tracing::info!(tls, address = %listener.local_addr()?, "listening");
        let app = app.clone();
        let mut stop = stop.subscribe();
        let stopped = async move {
            let _ = stop.recv().await;
        };
        if tls {
            let listener = TlsListener::new(listener, web.clone())?;
            servers.spawn(async move { axum::serve(listener, app).with_graceful_shutdown(stopped).await });
        } else {
            // TCP_NODELAY: answers are written as soon as they are ready, not held back by
            // Nagle's algorithm until the client acknowledges the previous segment (the TLS
            // listener sets it too).
            let listener = axum::serve::ListenerExt::tap_io(listener, |tcp| {
                let _ = tcp.set_nodelay(true);
            });
            servers.spawn(async move { axum::serve(listener, app).with_graceful_shutdown(stopped).await });
        }
    }
    while let Some(result) = servers.join_next().await {
        result.context("server task failed")?.context("server failed")?;
    }
    tracing::info!("HTTP server stopped");
    node.shutdown().await;
    Ok(())
}

/// `pushgateway cluster ...`: one HTTP call to a node's API, its JSON answer printed.
async fn run_cluster_command(command: ClusterCommand) -> anyhow::Result<()> {
    let client = reqwest::Client::new();
    let response = match &command {
        ClusterCommand::Status { server } => client.get(format!("{server}/api/v1/cluster")).send().await?,
        ClusterCommand::Add { server, id, address, learner_only } => {
            let body = serde_json::json!({ "id": id, "address": address, "learner_only": learner_only });
            client.post(format!("{server}/api/v1/admin/cluster/add")).body(body.to_string()).send().await?
        }
        ClusterCommand::Remove { server, id } => {
            let body = serde_json::json!({ "id": id });
            client.post(format!("{server}/api/v1/admin/cluster/remove")).body(body.to_string()).send().await?
        }
        ClusterCommand::Checkpoint { server, path } => {
            let body = serde_json::json!({ "path": path });
            client.post(format!("{server}/api/v1/admin/cluster/checkpoint")).body(body.to_string()).send().await?
        }
        ClusterCommand::ForceNewCluster { storage_path, id, address } => {
            let done = cluster::recovery::force_new_cluster(std::path::Path::new(storage_path), *id, address)
                .map_err(anyhow::Error::msg)?;
            println!(
                "node {id} at {address} is now the only voter: membership at entry {}, state applied to {}, \
                 {} more entries to apply once it has elected itself; start it, then add nodes",
                done.membership_index, done.applied_index, done.unapplied_entries
            );
            return Ok(());
        }
    };
    let status = response.status();
    let text = response.text().await?;
    println!("{}", text.trim_end());
    if !status.is_success() {
        anyhow::bail!("{status}");
    }
    Ok(())
}

/// Fans the one shutdown trigger out to every listener.
fn tokio_util_like_broadcast(quit: std::sync::Arc<tokio::sync::Notify>) -> tokio::sync::broadcast::Sender<()> {
    let (tx, _) = tokio::sync::broadcast::channel(1);
    let sender = tx.clone();
    tokio::spawn(async move {
        shutdown_signal(quit).await;
        let _ = sender.send(());
    });
    tx
}

/// mimalloc instead of the system allocator: the store is millions of small strings and
/// vectors, which glibc's malloc keeps in larger chunks and fragments under churn
/// (resident memory per stored series and CPU per push both drop with it).
#[global_allocator]
static ALLOCATOR: mimalloc::MiMalloc = mimalloc::MiMalloc;

fn main() -> ExitCode {
    let config = Config::parse();
    if let Some(Subcommand::Cluster(command)) = config.command.clone() {
        let runtime = tokio::runtime::Builder::new_current_thread().enable_all().build().expect("runtime");
        return match runtime.block_on(run_cluster_command(command)) {
            Ok(()) => ExitCode::SUCCESS,
            Err(e) => {
                eprintln!("pushgateway: {e:#}");
                ExitCode::FAILURE
            }
        };
    }
    if let Err(problem) = config.validate() {
        eprintln!("pushgateway: {problem}");
        return ExitCode::from(2);
    }
    init_logging(&config);
    // As upstream: a web configuration that cannot be served as written stops start-up.
    let web = match WebConfig::load(&config.web_config_file) {
        Ok(web) => web,
        Err(problem) => {
            tracing::error!(error = %problem, "invalid --web.config.file");
            eprintln!("pushgateway: --web.config.file {problem}");
            return ExitCode::FAILURE;
        }
    };
    let runtime = match tokio::runtime::Builder::new_multi_thread().enable_all().build() {
        Ok(r) => r,
        Err(e) => {
            eprintln!("pushgateway: cannot start runtime: {e}");
            return ExitCode::FAILURE;
        }
    };
    // Raft's tasks (an append flushed, a commit, an apply, a heartbeat) are short and on
    // every push's path; on their own worker thread they do not wait in line behind the
    // parsing of requests on the HTTP workers (measured: more pushes per second, mostly
    // with three nodes).
    let cluster_runtime =
        match tokio::runtime::Builder::new_multi_thread().worker_threads(1).thread_name("cluster").enable_all().build()
        {
            Ok(r) => r,
            Err(e) => {
                eprintln!("pushgateway: cannot start runtime: {e}");
                return ExitCode::FAILURE;
            }
        };
    let result = runtime.block_on(run(config, web, cluster_runtime.handle().clone()));
    cluster_runtime.shutdown_background();
    match result {
        Ok(()) => ExitCode::SUCCESS,
        Err(e) => {
            tracing::error!("{e:#}");
            eprintln!("pushgateway: {e:#}");
            ExitCode::FAILURE
        }
    }
}
