//! Both sides (feature `app`): who this page streams as. The server reads the grant from the
//! request's `sse_access` cookie (with the demo's signer), renders it, and writes it into
//! `<html data-subject data-topics data-demo-users>`; the browser reads it back from there before
//! hydrating (the cookie is HttpOnly), so both render the same.

/// The topic every demo user may read besides their own.
pub(crate) const PUBLIC_TOPIC: &str = "public";

/// The page's access: the subject and granted topics (empty when anonymous), and the demo
/// users offered for sign-in (empty when the demo is off).
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub(crate) struct PageAccess {
    pub(crate) subject: Option<String>,
    pub(crate) topics: Vec<String>,
    pub(crate) demo_users: Vec<String>,
}

/// What the server render needs to read a request's grant: the signer and the demo's users.
/// The app's router provides it to each render (with `--demo-users`).
#[cfg(feature = "app-server")]
#[derive(Clone, Debug)]
pub(crate) struct AccessContext {
    pub(crate) tokens: crate::server::JwtAuthorizer,
    pub(crate) demo_users: Vec<String>,
}

/// The access this render starts with (see the module's documentation).
pub(crate) fn initial_access() -> PageAccess {
    side::initial()
}

#[cfg(feature = "browser")]
mod side {
    use super::PageAccess;

    /// Read back what the server wrote into `<html>`.
    pub(super) fn initial() -> PageAccess {
        let html = leptos::prelude::document().document_element();
        let attr = |name: &str| html.as_ref().and_then(|h| h.get_attribute(name));
        let list = |name: &str| {
            attr(name)
                .map(|v| v.split_whitespace().map(str::to_owned).collect())
                .unwrap_or_default()
        };
        PageAccess {
            subject: attr("data-subject").filter(|s| !s.is_empty()),
            topics: list("data-topics"),
            demo_users: list("data-demo-users"),
        }
    }
}

#[cfg(not(feature = "browser"))]
mod side {
    use super::PageAccess;

    /// The request's grant, from the context the app's router provides (the demo); anonymous
    /// outside a request or without the demo.
    pub(super) fn initial() -> PageAccess {
        #[cfg(feature = "app-server")]
        if let Some(demo) = leptos::prelude::use_context::<super::AccessContext>() {
            let parts = leptos::prelude::use_context::<axum::http::request::Parts>();
            let grant = parts
                .as_ref()
                .and_then(|p| crate::server::access_token(&p.headers))
                .and_then(|token| demo.tokens.check(token).ok());
            return PageAccess {
                subject: grant.as_ref().and_then(|g| g.subject.clone()),
                topics: grant
                    .map(|g| g.topics.iter().map(|t| t.to_string()).collect())
                    .unwrap_or_default(),
                demo_users: demo.demo_users.clone(),
            };
        }
        PageAccess::default()
    }
}
