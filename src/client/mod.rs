//! Both sides (the browser runs it; the server renders its first state): the library's client.
//! The pure connection machine and tab-sharing rules (host-tested, no I/O), the Leptos hook and
//! its context, the banner with its texts in each language, and the browser driver that feeds
//! the machine from `EventSource`, timers and other tabs (features `hydrate`/`csr`; on the
//! server an inert stand-in). Imports [`protocol`](crate::protocol) and nothing above it.

mod banner;
mod context;
// Durations and counts for people: the banner's countdown, and the dashboard's figures (`app`).
#[cfg_attr(not(feature = "app"), allow(dead_code))]
pub(crate) mod format;
mod hook;
pub(crate) mod i18n;
mod signals;

// The pure machines run in the browser; a server build renders only their initial state (and
// the host tests drive every rule), so much of them is unused there.
#[cfg_attr(not(feature = "browser"), allow(dead_code))]
pub(crate) mod display;
#[cfg_attr(not(feature = "browser"), allow(dead_code))]
pub(crate) mod machine;
#[cfg_attr(not(feature = "browser"), allow(dead_code))]
pub(crate) mod policy;
#[cfg_attr(not(feature = "browser"), allow(dead_code))]
pub(crate) mod tabs;
pub(crate) mod target;

#[cfg(feature = "browser")]
#[path = "browser.rs"]
mod driver;
#[cfg(not(feature = "browser"))]
#[path = "inert.rs"]
mod driver;
#[cfg(feature = "browser")]
mod share_io;

#[cfg(test)]
mod machine_tests;
#[cfg(test)]
mod tabs_tests;

pub use banner::{BannerClasses, BannerDetails, BannerStatus, ConnectionBanner, BANNER_CSS};
pub use context::{
    on_event, provide_connection_status, use_connection_diagnostics, use_connection_status,
    use_event,
};
pub use display::{Timeline, TimelineEntry};
#[cfg(feature = "app")]
pub(crate) use driver::page_query_param;
pub use hook::{
    use_connection_status_with_options, ConnectionDiagnostics, UseConnectionStatusReturn,
};
pub use i18n::{
    clock_time, page_lang, provide_language, use_language, BannerTexts, CauseTexts, Lang,
};
pub use machine::{Cause, Phase, ServerHello, State};
pub use policy::Policy;
pub use signals::{ReceivedEvent, UseConnectionStatusOptions};
pub use tabs::{TabRole, TabSharing};
