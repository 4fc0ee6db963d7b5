//! Both sides: pure views of the connection signals. No I/O; they render the same on the
//! server and in the browser.

mod banner;
mod event_log;
pub mod format;
mod timeline;

pub use banner::{BannerClasses, BannerDetails, BannerStatus, ConnectionBanner};
pub use event_log::EventLog;
pub use timeline::StateTimeline;
