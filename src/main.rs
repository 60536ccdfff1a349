//! The `pushgateway` binary: parse flags, start logging, serve until SIGTERM, SIGINT
//! or `/-/quit`.

use std::process::ExitCode;
use std::sync::Arc;

use anyhow::Context;
use clap::Parser;
use tracing_subscriber::EnvFilter;

use base64::Engine as _;
use cluster::Node;
use pushgateway::access::{AccessConfig, LiveAccessConfig};
use pushgateway::config::{ClientOptions, ClusterCommand, Config, Settings, Subcommand};
use pushgateway::http::{router, AppState};
use pushgateway::listener::TlsListener;
use pushgateway::live_file::Reloadable;
use pushgateway::web_config::{LiveWebConfig, WebConfig};

fn init_logging(config: &Config) {
    // An empty RUST_LOG is no filter of its own (`RUST_LOG= pushgateway` is `--log.level`'s).
    let filter = match std::env::var(EnvFilter::DEFAULT_ENV) {
        Ok(directives) if !directives.trim().is_empty() => EnvFilter::try_new(directives).ok(),
        _ => None,
    };
    let filter = filter.unwrap_or_else(|| EnvFilter::new(config.log_filter()));
    let builder = tracing_subscriber::fmt().with_env_filter(filter).with_writer(std::io::stderr);
    let format = pushgateway::logfmt::Logfmt { debug: config.log_level == "debug", json: config.log_format == "json" };
    builder.with_ansi(false).event_format(format).init();
}

/// Waits for SIGTERM, SIGINT or `/-/quit`. The signal handlers are installed before this
/// returns its future, not when the future first runs: a signal that comes right after
/// the listeners are announced must not meet the default action (death without a
/// graceful stop).
fn shutdown_signal(quit: std::sync::Arc<tokio::sync::Notify>) -> impl std::future::Future<Output = ()> {
    use tokio::signal::unix::{signal, SignalKind};
    let mut term = signal(SignalKind::terminate()).ok();
    let mut interrupt = signal(SignalKind::interrupt()).ok();
    async fn wait(signal: Option<&mut tokio::signal::unix::Signal>) {
        match signal {
            Some(s) => {
                s.recv().await;
            }
            None => std::future::pending::<()>().await,
        }
    }
    async move {
        tokio::select! {
            _ = wait(interrupt.as_mut()) => tracing::info!("received SIGINT; exiting gracefully"),
            _ = wait(term.as_mut()) => tracing::info!("received SIGTERM; exiting gracefully"),
            _ = quit.notified() => tracing::warn!("received termination request via web service; exiting gracefully"),
        }
    }
}

/// Serves HTTP on the current runtime; the node (Raft, the proposer, the peer listener)
/// is started on `cluster_runtime`, whose tasks it spawns stay there.
async fn run(
    config: Config,
    settings: Settings,
    web: WebConfig,
    access: AccessConfig,
    cluster_runtime: tokio::runtime::Handle,
) -> anyhow::Result<()> {
    let limits = config.web_limits();
    raise_open_file_limit(limits.max_connections * settings.web_listen.len() + config.cluster_max_connections);
    // Both listeners are bound before anything starts: a port in use stops start-up at
    // once, and the node learns the peer listener's address (port 0 included) from it.
    let peer_listener = match settings.peer_listen {
        None => None,
        Some(listen) => {
            Some(std::net::TcpListener::bind(listen).with_context(|| format!("cannot listen on {listen}"))?)
        }
    };
    let mut web_listeners = Vec::new();
    let bound: Vec<std::net::TcpListener> = if config.web_systemd_socket {
        pushgateway::systemd::listeners().map_err(anyhow::Error::msg)?
    } else {
        let mut bound = Vec::new();
        for addr in settings.web_listen {
            bound.push(std::net::TcpListener::bind(addr).with_context(|| format!("cannot listen on {addr}"))?);
        }
        bound
    };
    for listener in bound {
        listener.set_nonblocking(true)?;
        tracing::info!(tls = web.tls.is_some(), address = %listener.local_addr()?, "listening");
        web_listeners.push(listener);
    }
    let web = Arc::new(LiveWebConfig::new(&config.web_config_file, web));
    let access = Arc::new(LiveAccessConfig::new(&config.web_access_config_file, access));
    let quit = Arc::new(tokio::sync::Notify::new());
    let stop = tokio_util_like_broadcast(quit.clone());

    // Served from now on: while the node starts (it may wait for its peers to say who it
    // is, see `cluster::Node::start`), requests wait for it, up to `STARTING_WAIT`.
    let (app_tx, app_rx) = tokio::sync::watch::channel::<Option<axum::Router>>(None);
    let app = waiting_for(app_rx);
    let mut servers = tokio::task::JoinSet::new();
    for listener in web_listeners {
        let mut stop = stop.subscribe();
        let stopped = async move {
            let _ = stop.recv().await;
        };
        servers.spawn(serve_web(listener, app.clone(), web.clone(), limits, stopped)?);
    }
    let mut signalled = stop.subscribe();
    let node = tokio::select! {
        node = cluster_runtime.spawn(Node::start(settings.cluster, peer_listener)) => node??,
        _ = signalled.recv() => {
            tracing::info!("stopped while the node was starting");
            while servers.join_next().await.is_some() {}
            return Ok(());
        }
    };
    tracing::info!(node = node.id(), storage = %config.effective_storage_path(), "node started");
    let mut state = AppState::new(config, node.clone()).with_web_config(web.clone()).with_access_config(access);
    state.quit = quit;
    pushgateway::http::import::spawn_import_at_start(&mut state);
    let _ = app_tx.send(Some(router(state)));
    while let Some(result) = servers.join_next().await {
        result.context("server task failed")?;
    }
    tracing::info!("HTTP server stopped");
    node.shutdown().await;
    Ok(())
}

/// Serves `app` on `listener` (with TLS when the web config has it) until `stopped`.
fn serve_web(
    listener: std::net::TcpListener,
    app: axum::Router,
    web: Arc<LiveWebConfig>,
    limits: serve::Limits,
    stopped: impl std::future::Future<Output = ()> + Send + 'static,
) -> anyhow::Result<impl std::future::Future<Output = ()> + Send + 'static> {
    let listener = tokio::net::TcpListener::from_std(listener)?;
    Ok(async move {
        if web.current().tls.is_some() {
            match TlsListener::new(listener, web.clone(), limits.max_connections) {
                Ok(listener) => serve::serve(listener, app, limits, stopped).await,
                Err(e) => tracing::error!(error = %e, "cannot serve TLS"),
            }
        } else {
            // TCP_NODELAY: answers are written as soon as they are ready, not held back by
            // Nagle's algorithm until the client acknowledges the previous segment (the TLS
            // listener sets it too).
            let listener = axum::serve::ListenerExt::tap_io(listener, |tcp| {
                let _ = tcp.set_nodelay(true);
            });
            serve::serve(listener, app, limits, stopped).await
        }
    })
}

/// How long a request that comes while the node starts waits for it.
const STARTING_WAIT: std::time::Duration = std::time::Duration::from_secs(10);

/// The web app: `app` once it is there. Before, while the node starts, `/-/healthy`
/// answers 200 and `/-/ready` 503 at once, and any other request waits for the node up to
/// [`STARTING_WAIT`], then 503. A node that starts at once (the usual case) is, to clients,
/// ready as soon as it listens, as upstream is.
fn waiting_for(app: tokio::sync::watch::Receiver<Option<axum::Router>>) -> axum::Router {
    use axum::http::StatusCode;
    use axum::response::IntoResponse;
    use tower::ServiceExt;
    axum::Router::new().fallback(move |request: axum::extract::Request| {
        let mut app = app.clone();
        async move {
            let ready = app.borrow().clone();
            let app = match ready {
                Some(app) => app,
                None => {
                    let path = request.uri().path();
                    if path.ends_with("/-/healthy") {
                        return (StatusCode::OK, "OK").into_response();
                    }
                    let starting = (
                        StatusCode::SERVICE_UNAVAILABLE,
                        "Service Unavailable: the node is starting (finding out its identity from its peers)\n",
                    );
                    if path.ends_with("/-/ready") {
                        return starting.into_response();
                    }
                    match tokio::time::timeout(STARTING_WAIT, app.wait_for(Option::is_some)).await {
                        Ok(Ok(app)) => app.clone().expect("set"),
                        _ => return starting.into_response(),
                    }
                }
            };
            app.oneshot(request).await.into_response()
        }
    })
}

/// Raises the soft limit of open files to the hard limit, as Go's runtime does at start:
/// every connection and every RocksDB file takes a descriptor. Warns when the limit leaves
/// too little room for `connections` (the listeners' caps) beside the database.
fn raise_open_file_limit(connections: usize) {
    match rlimit::increase_nofile_limit(u64::MAX) {
        Ok(limit) => {
            let wanted = connections as u64 + 1024;
            if limit < wanted {
                tracing::warn!(
                    limit,
                    wanted,
                    "the open-file limit is below the connection caps plus room for the database: raise it (LimitNOFILE=, ulimit -n) or lower --web.max-connections"
                );
            } else {
                tracing::debug!(limit, "open-file limit");
            }
        }
        Err(e) => tracing::warn!(error = %e, "cannot raise the open-file limit"),
    }
}

/// The file `T::FLAG` names, loaded at start-up; `None` (logged and said on stderr) if it
/// cannot be served.
fn load_at_start<T: Reloadable>(path: &str) -> Option<T> {
    T::load(path)
        .map_err(|problem| {
            tracing::error!(error = %problem, "invalid {}", T::FLAG);
            eprintln!("pushgateway: {} {problem}", T::FLAG);
        })
        .ok()
}

/// A client for a node's HTTP API as `options` say (TLS, client certificate, basic
/// authentication or a bearer token), and the base URL.
fn api_client(options: &ClientOptions) -> anyhow::Result<(reqwest::Client, String)> {
    let mut builder = reqwest::Client::builder().use_rustls_tls();
    if !options.tls_ca_file.is_empty() {
        let pem =
            std::fs::read(&options.tls_ca_file).with_context(|| format!("--tls.ca-file {}", options.tls_ca_file))?;
        for cert in reqwest::Certificate::from_pem_bundle(&pem).context("--tls.ca-file: not PEM certificates")? {
            builder = builder.add_root_certificate(cert);
        }
    }
    if !options.tls_cert_file.is_empty() {
        let mut pem = std::fs::read(&options.tls_cert_file)
            .with_context(|| format!("--tls.cert-file {}", options.tls_cert_file))?;
        pem.push(b'\n');
        pem.extend(
            std::fs::read(&options.tls_key_file).with_context(|| format!("--tls.key-file {}", options.tls_key_file))?,
        );
        builder = builder.identity(reqwest::Identity::from_pem(&pem).context("--tls.cert-file/--tls.key-file")?);
    }
    if options.tls_insecure_skip_verify {
        builder = builder.danger_accept_invalid_certs(true);
    }
    let authorization = if !options.auth_token_file.is_empty() {
        let token = std::fs::read_to_string(&options.auth_token_file)
            .with_context(|| format!("--auth.token-file {}", options.auth_token_file))?;
        Some(format!("Bearer {}", token.trim_end()))
    } else if !options.auth_username.is_empty() {
        let password = if options.auth_password_file.is_empty() {
            String::new()
        } else {
            let p = std::fs::read_to_string(&options.auth_password_file)
                .with_context(|| format!("--auth.password-file {}", options.auth_password_file))?;
            p.trim_end_matches(['\r', '\n']).to_string()
        };
        let token = base64::engine::general_purpose::STANDARD.encode(format!("{}:{password}", options.auth_username));
        Some(format!("Basic {token}"))
    } else {
        None
    };
    if let Some(authorization) = authorization {
        let mut headers = reqwest::header::HeaderMap::new();
        let mut value = reqwest::header::HeaderValue::from_str(&authorization)
            .context("the credentials cannot be sent in an HTTP header")?;
        value.set_sensitive(true);
        headers.insert(reqwest::header::AUTHORIZATION, value);
        builder = builder.default_headers(headers);
    }
    Ok((builder.build()?, options.server.trim_end_matches('/').to_string()))
}

/// `pushgateway cluster ...` and `pushgateway import`: one HTTP call to a node's API, its
/// JSON answer printed.
async fn run_subcommand(command: Subcommand) -> anyhow::Result<()> {
    let command = match command {
        Subcommand::Cluster(command) => command,
        Subcommand::Import { file, client } => {
            let body = std::fs::read(&file).with_context(|| format!("cannot read {file}"))?;
            let (http, server) = api_client(&client)?;
            let response = http
                .post(format!("{server}/api/v1/admin/import"))
                .header(reqwest::header::CONTENT_TYPE, "application/octet-stream")
                .body(body)
                .send()
                .await?;
            return print_answer(response).await;
        }
    };
    // The admin calls take JSON, declared as such (the server refuses anything else).
    let admin = |client: &ClientOptions, call: &str, body: serde_json::Value| -> anyhow::Result<_> {
        let (http, server) = api_client(client)?;
        Ok(http
            .post(format!("{server}/api/v1/admin/cluster/{call}"))
            .header(reqwest::header::CONTENT_TYPE, "application/json")
            .body(body.to_string())
            .send())
    };
    let response = match &command {
        ClusterCommand::Status { client } => {
            let (http, server) = api_client(client)?;
            http.get(format!("{server}/api/v1/cluster")).send().await?
        }
        ClusterCommand::Add { client, id, address, learner_only } => {
            admin(client, "add", serde_json::json!({ "id": id, "address": address, "learner_only": learner_only }))?
                .await?
        }
        ClusterCommand::Remove { client, id } => admin(client, "remove", serde_json::json!({ "id": id }))?.await?,
        ClusterCommand::Checkpoint { client, path } => {
            admin(client, "checkpoint", serde_json::json!({ "path": path }))?.await?
        }
        ClusterCommand::ForceNewCluster { storage_path, id, address } => {
            let done = cluster::force_new_cluster(std::path::Path::new(storage_path), *id, address)
                .map_err(anyhow::Error::msg)?;
            println!(
                "node {id} at {address} is now the only voter: membership at entry {}, state applied to {}, \
                 {} more entries to apply once it has elected itself; start it, then add nodes",
                done.membership_index, done.applied_index, done.unapplied_entries
            );
            return Ok(());
        }
    };
    print_answer(response).await
}

/// Prints a node's answer; an error status is the command's failure.
async fn print_answer(response: reqwest::Response) -> anyhow::Result<()> {
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
    let signalled = shutdown_signal(quit);
    tokio::spawn(async move {
        signalled.await;
        let _ = sender.send(());
    });
    tx
}

/// mimalloc instead of the system allocator: the store is millions of small strings and
/// vectors, which glibc's malloc keeps in larger chunks and fragments under churn
/// (resident memory per stored series and CPU per push both drop with it).
#[global_allocator]
static ALLOCATOR: mimalloc::MiMalloc = mimalloc::MiMalloc;

/// Crash-only: a panic anywhere (the proposer task, a render, a peer handler) ends the
/// process at once, after logging it. A process that lost a task but kept running would
/// answer 503 to every push while `/-/ready` said 200; a process that is gone is
/// restarted whole by its supervisor and recovers from its log like after any crash.
fn install_panic_hook() {
    let default = std::panic::take_hook();
    std::panic::set_hook(Box::new(move |info| {
        tracing::error!(panic = %info, "panic: aborting the process");
        default(info);
        std::process::abort();
    }));
}

/// RocksDB's own memory (C++, glibc's malloc): large blocks, such as the write batch of a
/// checkpoint of the applied state (up to 1,024 encoded groups), are mapped and given back
/// when freed. glibc raises its threshold for that to the size of each mapped block freed,
/// after which such blocks come from its heaps and stay there: one node at a million series
/// held 15-30 MB more (221 against 236 MB before checkpoints, 228 against 256 MB with them).
/// Setting the threshold fixes it where it is.
fn fix_glibc_mmap_threshold() {
    #[cfg(all(target_os = "linux", target_env = "gnu"))]
    // SAFETY: `mallopt` changes a tunable of glibc's allocator; called before any thread
    // starts, with a valid parameter and value.
    unsafe {
        libc::mallopt(libc::M_MMAP_THRESHOLD, 1 << 20);
    }
}

fn main() -> ExitCode {
    fix_glibc_mmap_threshold();
    install_panic_hook();
    // Refused flags end as upstream's do: exit code 1 for a value its flag parser refuses
    // (kingpin), 2 for routes its router cannot list (`config::FlagError`).
    let args = match pushgateway::config::kingpin_args(std::env::args_os()) {
        Ok(args) => args,
        Err(e) => {
            eprintln!("pushgateway: {e}");
            return ExitCode::FAILURE;
        }
    };
    let config = match Config::try_parse_from(args) {
        Ok(config) => config,
        Err(e) => {
            let _ = e.print();
            return if e.use_stderr() { ExitCode::FAILURE } else { ExitCode::SUCCESS };
        }
    };
    if let Some(command) = config.command.clone() {
        let runtime = tokio::runtime::Builder::new_current_thread().enable_all().build().expect("runtime");
        return match runtime.block_on(run_subcommand(command)) {
            Ok(()) => ExitCode::SUCCESS,
            Err(e) => {
                eprintln!("pushgateway: {e:#}");
                ExitCode::FAILURE
            }
        };
    }
    let settings = match config.validate() {
        Ok(settings) => settings,
        Err(problem) => {
            eprintln!("pushgateway: {problem}");
            return ExitCode::from(problem.exit_code());
        }
    };
    init_logging(&config);
    // As upstream: a web configuration that cannot be served as written stops start-up.
    let (web, access) = match (
        load_at_start::<WebConfig>(&config.web_config_file),
        load_at_start::<AccessConfig>(&config.web_access_config_file),
    ) {
        (Some(web), Some(access)) => (web, access),
        _ => return ExitCode::FAILURE,
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
    // with three nodes). The log's synced append runs on this thread too, blocking it
    // while the disk syncs (docs/decisions/0024).
    let cluster_runtime =
        match tokio::runtime::Builder::new_multi_thread().worker_threads(1).thread_name("cluster").enable_all().build()
        {
            Ok(r) => r,
            Err(e) => {
                eprintln!("pushgateway: cannot start runtime: {e}");
                return ExitCode::FAILURE;
            }
        };
    let result = runtime.block_on(run(config, settings, web, access, cluster_runtime.handle().clone()));
    // The node's tasks end (and release the database) before the process exits.
    cluster_runtime.shutdown_timeout(std::time::Duration::from_secs(10));
    drop(runtime);
    match result {
        Ok(()) => ExitCode::SUCCESS,
        Err(e) => {
            tracing::error!("{e:#}");
            eprintln!("pushgateway: {e:#}");
            ExitCode::FAILURE
        }
    }
}
