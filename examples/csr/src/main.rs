//! Server only (feature `ssr`): the example's server — the static site `build.sh` writes
//! (`index.html`, `pkg/`, the banner's CSS) and sse-status's hub at the root (`GET /events`,
//! `POST /api/publish`, `/healthz`, `/readyz`, `/metrics`), with a graceful shutdown.

#[cfg(feature = "ssr")]
#[tokio::main]
async fn main() -> anyhow::Result<()> {
    use anyhow::{ensure, Context};
    use clap::Parser;
    use sse_status::server::{shutdown_signal, HubConfig, LiveHub};
    use tower_http::services::ServeDir;
    use tower_http::trace::TraceLayer;

    let args = Args::parse();
    tracing_subscriber::fmt()
        .with_env_filter(
            tracing_subscriber::EnvFilter::try_from_default_env()
                .unwrap_or_else(|_| "info,tower_http=warn".into()),
        )
        .init();
    let index = args.site_root.join("index.html");
    ensure!(
        index.is_file(),
        "no {}: build the browser side first with examples/csr/build.sh",
        index.display()
    );

    let mut config = HubConfig::default();
    config.publish_token = args.publish_token;
    let hub = LiveHub::new(config).context("hub settings")?;
    let app = hub
        .router()
        .fallback_service(ServeDir::new(&args.site_root))
        .layer(TraceLayer::new_for_http());

    let listener = tokio::net::TcpListener::bind(args.addr)
        .await
        .with_context(|| format!("listen on {}", args.addr))?;
    tracing::info!("listening on http://{}", args.addr);
    let stopping = hub.clone();
    axum::serve(listener, app)
        .with_graceful_shutdown(async move {
            // Ctrl-C or SIGTERM: pages say "restarting" and come back when it does.
            shutdown_signal().await;
            // Open streams would hold the graceful shutdown forever: end them first.
            stopping.shutdown().await;
        })
        .await
        .context("serve")
}

/// The server's command line (each flag also reads its environment variable).
#[cfg(feature = "ssr")]
#[derive(clap::Parser)]
#[command(name = "csr", about = "sse-status's client-side-rendered example")]
struct Args {
    /// Address to listen on.
    #[arg(long, env = "CSR_ADDR", default_value = "127.0.0.1:3100")]
    addr: std::net::SocketAddr,
    /// Bearer token that `POST /api/publish` requires. Unset: publishing is refused (403).
    #[arg(long, env = "SSE_PUBLISH_TOKEN", hide_env_values = true)]
    publish_token: Option<String>,
    /// The directory build.sh writes (index.html, pkg/).
    #[arg(long, env = "CSR_SITE_ROOT", default_value = concat!(env!("CARGO_MANIFEST_DIR"), "/site"))]
    site_root: std::path::PathBuf,
}

#[cfg(not(feature = "ssr"))]
fn main() {
    // The browser side starts in `csr::start`; the server needs `--features ssr`.
}
