//! Server only (feature `app-server`): this app's router — the hub's routes, the dashboard,
//! static files and the 404 page.

use axum::extract::Request;
use axum::middleware::{self, Next};
use axum::response::{IntoResponse, Response};
use axum::routing::{any, get};
use axum::Router;
use tower_http::classify::StatusInRangeAsFailures;
use tower_http::compression::CompressionLayer;
use tower_http::trace::TraceLayer;

use leptos::config::LeptosOptions;

use crate::app::access::AccessContext;
use crate::app::demo::Demo;
use crate::app::documents::{not_found_shell, shell};
use crate::app::page_cache::{serve_cached, PageCache};
use crate::server::error::ApiError;
use crate::server::LiveHub;

/// Requests whose target is not a path (authority-form `host:port`, `*`) get 400 here, before
/// any handler: the static-file fallback assumes a path. Our connection loop refuses them first;
/// this guard keeps the router safe when something else serves it.
async fn require_path(req: Request, next: Next) -> Response {
    if !req.uri().path().starts_with('/') || req.uri().path_and_query().is_none() {
        return ApiError::BadRequest {
            reason: "the request target must be a path such as /events".into(),
        }
        .into_response();
    }
    next.run(req).await
}

/// Every route of this repo's own server: the [`LiveHub`]'s routes, the dashboard at `/`, static
/// files and the 404 page. Compression uses tower-http's default predicate, which skips
/// `text/event-stream` (a compressor would hold SSE frames in its buffer). Only 500–502 count as
/// failures in the request log: a 503 (full, draining) is a deliberate answer, counted in
/// `/metrics`, and under a flood an ERROR line per refusal would flood the log too.
pub fn site_router(hub: &LiveHub, options: LeptosOptions) -> Router {
    site_router_with(hub, options, None, true)
}

/// [`site_router`], with the demo sign-in (`--demo-users`) when `demo` is set: its `/demo/*`
/// routes, and its signer in the render's context (the page shows whom it streams as). With
/// `page_cache`, anonymous readers get the render of the last second (`page_cache.rs`).
pub(crate) fn site_router_with(
    hub: &LiveHub,
    options: LeptosOptions,
    demo: Option<Demo>,
    page_cache: bool,
) -> Router {
    // Leptos renders spawn tasks; run them on tokio (a second call is a harmless no-op).
    let _ = any_spawner::Executor::init_tokio();
    let shell_options = options.clone();
    let context = demo.as_ref().map(|d| AccessContext {
        tokens: d.tokens.clone(),
        demo_users: d.users.clone(),
    });
    let site = Router::new()
        .route(
            "/",
            get(leptos_axum::render_app_to_stream_with_context(
                move || {
                    if let Some(context) = context.clone() {
                        leptos::prelude::provide_context(context);
                    }
                },
                move || shell(shell_options.clone()),
            ))
            .layer(middleware::from_fn_with_state(
                PageCache::new(page_cache),
                serve_cached,
            )),
        )
        // Static files (the site's pkg/ and assets), else the 404 page with status 404.
        .fallback(leptos_axum::file_and_error_handler::<LeptosOptions, _>(
            not_found_shell,
        ))
        .with_state(options);
    let demo_routes = demo.map(|d| d.router(hub)).unwrap_or_default();
    hub.router()
        .route("/api/{*rest}", any(api_not_found))
        .merge(demo_routes)
        .merge(site)
        .layer(CompressionLayer::new())
        .layer(TraceLayer::new(
            StatusInRangeAsFailures::new(500..=502).into_make_classifier(),
        ))
        .layer(middleware::from_fn(require_path))
}

/// `/api/*` paths that do not exist get the JSON 404, not the HTML page.
async fn api_not_found(uri: axum::http::Uri) -> ApiError {
    ApiError::NotFound {
        path: uri.path().to_owned(),
    }
}
