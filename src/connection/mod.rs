//! Shared: the connection between a page and `/events` — wire protocol, the pure state machine
//! and the pure tab-sharing piece (both sides), the Leptos hook (both sides; SSR renders
//! "connecting"), and the browser I/O that drives them (hydrate only).

mod context;
pub mod display;
pub mod hook;
pub mod machine;
pub mod policy;
pub mod protocol;
pub mod tabs;

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

pub use context::{connection_status_from_context, provide_connection_status, use_event};
pub use driver::page_query_param;
pub use hook::{use_connection_status, use_connection_status_with_options};
pub use hook::{ReceivedEvent, UseConnectionStatusOptions, UseConnectionStatusReturn};
