//! Both sides (feature `app`): this app's pages — the dashboard and its parts (state timeline,
//! event log), and the 404 page.

mod dashboard;
mod event_log;
#[cfg(feature = "app-server")]
mod not_found;
mod timeline;

pub(crate) use dashboard::Dashboard;
#[cfg(feature = "app-server")]
pub(crate) use not_found::NotFound;
