//! Browser only (feature `csr`): the example's one page — a header with sse-status's
//! `ConnectionBanner` in the language `<html lang>` declares, the latest `note` event, and every
//! `note` the page has received.

use leptos::prelude::*;
use serde::Deserialize;
use sse_status::client::{
    page_lang, provide_connection_status, provide_language, use_event, ConnectionBanner,
    UseConnectionStatusOptions,
};

/// Where the server mounts the stream (`hub.router()` at the root, in `main.rs`).
pub const STREAM_URL: &str = "/events";
/// The application event this page listens for (published with `POST /api/publish`).
pub const NOTE_EVENT: &str = "note";

/// What a `note` event carries: `{"event":"note","data":{"text":"…"}}` on the publish API.
#[derive(Clone, Debug, PartialEq, Deserialize)]
pub struct Note {
    /// The note's text.
    pub text: String,
}

/// The page.
#[component]
pub fn App() -> impl IntoView {
    // A CSR page has no server to choose a language: the static index.html's `<html lang>` does.
    provide_language(page_lang());
    // One connection for the whole page, shared through context; it opens right away (CSR).
    let status = provide_connection_status(
        UseConnectionStatusOptions::default()
            .url(STREAM_URL)
            .event_names([NOTE_EVENT]),
    );
    // The newest note only (a repeat of the same text is no change).
    let last = use_event::<Note>(NOTE_EVENT);
    // Every note still in the hook's bounded event log, newest first, keyed by arrival.
    let events = status.events;
    let notes = move || {
        events.with(|log| {
            log.iter()
                .filter(|e| e.name == NOTE_EVENT)
                .filter_map(|e| {
                    let note = serde_json::from_str::<Note>(&e.data).ok()?;
                    Some((e.seq, e.time.clone(), note.text))
                })
                .collect::<Vec<_>>()
        })
    };
    view! {
        <header class="app-header">
            <span class="app-name">"Notes (client-side rendered)"</span>
            <ConnectionBanner status/>
        </header>
        <main class="app-main">
            <h1>"Latest note"</h1>
            <p class="note" data-testid="last-note">
                {move || last.get().map(|n| n.text).unwrap_or_else(|| "(none yet)".into())}
            </p>
            <h2>"Received"</h2>
            <ul class="notes" data-testid="notes">
                <For each=notes key=|(seq, _, _)| *seq let((_, time, text))>
                    <li>
                        <time>{time}</time>
                        " "
                        <span data-testid="note-text">{text}</span>
                    </li>
                </For>
            </ul>
        </main>
    }
}
