//! Server only (features `ssr` + `app`): the `sse-status` binary; the wiring is in the app layer.

#[tokio::main]
async fn main() -> anyhow::Result<()> {
    sse_status::app::main().await
}
