//! Both sides: the example's document and its one page — its own header with sse-status's
//! `ConnectionBanner`, a form that publishes through a server function, and the latest
//! published note, received over the stream as a typed event.

use leptos::prelude::*;
use serde::{Deserialize, Serialize};
use sse_status::client::{
    provide_connection_status, use_event, ConnectionBanner, UseConnectionStatusOptions,
};

/// Where the server mounts the stream (`.nest("/live", hub.stream_router())` in `main.rs`).
pub const STREAM_URL: &str = "/live/events";
/// The application event this page publishes and listens for.
pub const NOTE_EVENT: &str = "note";

/// What a `note` event carries.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
pub struct Note {
    /// What the user typed.
    pub text: String,
}

/// The HTML document, rendered on the server.
pub fn shell(options: LeptosOptions) -> impl IntoView {
    view! {
        <!DOCTYPE html>
        <html lang="en">
            <head>
                <meta charset="utf-8"/>
                <meta name="viewport" content="width=device-width, initial-scale=1"/>
                <title>"Notes — an app that embeds sse-status"</title>
                <link rel="icon" type="image/svg+xml" href="/favicon.svg"/>
                <link id="leptos" rel="stylesheet" href="/pkg/embed.css"/>
                <AutoReload options=options.clone()/>
                <HydrationScripts options/>
            </head>
            <body>
                <App/>
            </body>
        </html>
    }
}

/// Publish a note to every open page. Runs on the server: the [`LiveHub`] comes from the
/// context `main.rs` provides to server functions.
///
/// [`LiveHub`]: sse_status::server::LiveHub
#[server]
pub async fn publish_note(text: String) -> Result<String, ServerFnError> {
    let hub = use_context::<sse_status::server::LiveHub>()
        .ok_or_else(|| ServerFnError::new("the server did not provide a LiveHub"))?;
    let text = text.trim().to_owned();
    if text.is_empty() {
        return Err(ServerFnError::new("write something first"));
    }
    hub.publish(NOTE_EVENT, &Note { text })
        .await
        .map_err(|err| ServerFnError::new(err.to_string()))
}

/// The page.
#[component]
pub fn App() -> impl IntoView {
    // One connection for the whole page, shared through context.
    let status = provide_connection_status(
        UseConnectionStatusOptions::default()
            .url(STREAM_URL)
            .event_names([NOTE_EVENT]),
    );
    let note = use_event::<Note>(NOTE_EVENT);
    let publish = ServerAction::<PublishNote>::new();
    let answer = move || match publish.value().get() {
        Some(Ok(id)) => format!("published as {id}"),
        Some(Err(err)) => format!("not published: {err}"),
        None => String::new(),
    };
    view! {
        <header class="app-header">
            <span class="app-name">"Notes"</span>
            <ConnectionBanner status/>
        </header>
        <main class="app-main">
            <h1>"Latest note"</h1>
            <p class="note" data-testid="latest-note">
                {move || note.get().map(|n| n.text).unwrap_or_else(|| "(none yet)".into())}
            </p>
            <ActionForm action=publish>
                <label>
                    "New note " <input type="text" name="text" data-testid="note-input" required/>
                </label>
                <button type="submit" data-testid="publish">"Publish to every open page"</button>
            </ActionForm>
            <p class="answer" data-testid="publish-answer">{answer}</p>
        </main>
    }
}
