//! The `pushgateway` binary: parse flags, start logging, serve until SIGTERM, SIGINT
//! or `/-/quit`.

use std::net::SocketAddr;
use std::process::ExitCode;

use anyhow::Context;
use clap::Parser;
use tracing_subscriber::EnvFilter;

use pushgateway::config::Config;
use pushgateway::self_metrics::own_families;
use pushgateway::server::{router, AppState};

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

async fn run(config: Config) -> anyhow::Result<()> {
    let addrs: Vec<SocketAddr> = config.web_listen_address.iter().map(|a| socket_addr(a)).collect::<Result<_, _>>()?;
    let node = cluster::node::Node::single(own_families());
    let state = AppState::new(config, node);
    let app = router(state.clone());
    let mut servers = tokio::task::JoinSet::new();
    let stop = tokio_util_like_broadcast(state.quit.clone());
    for addr in addrs {
        let listener = tokio::net::TcpListener::bind(addr).await.with_context(|| format!("cannot listen on {addr}"))?;
        tracing::info!(address = %listener.local_addr()?, "listening");
        let app = app.clone();
        let mut stop = stop.subscribe();
        servers.spawn(async move {
            axum::serve(listener, app)
                .with_graceful_shutdown(async move {
                    let _ = stop.recv().await;
                })
                .await
        });
    }
    while let Some(result) = servers.join_next().await {
        result.context("server task failed")?.context("server failed")?;
    }
    tracing::info!("HTTP server stopped");
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

fn main() -> ExitCode {
    let config = Config::parse();
    if let Err(problem) = config.validate() {
        eprintln!("pushgateway: {problem}");
        return ExitCode::from(2);
    }
    init_logging(&config);
    let runtime = match tokio::runtime::Builder::new_multi_thread().enable_all().build() {
        Ok(r) => r,
        Err(e) => {
            eprintln!("pushgateway: cannot start runtime: {e}");
            return ExitCode::FAILURE;
        }
    };
    match runtime.block_on(run(config)) {
        Ok(()) => ExitCode::SUCCESS,
        Err(e) => {
            tracing::error!("{e:#}");
            eprintln!("pushgateway: {e:#}");
            ExitCode::FAILURE
        }
    }
}
