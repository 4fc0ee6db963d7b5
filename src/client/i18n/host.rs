//! Server (and host tests): times of day in UTC; no document to read a language from.

use super::lang::Lang;

/// `HH:MM:SS` in UTC: a server has no reader's time zone (and never renders received events).
pub fn clock_time(wall_ms: f64, _lang: Lang) -> String {
    let secs = (wall_ms.max(0.0) / 1000.0) as u64 % 86_400;
    format!("{:02}:{:02}:{:02}", secs / 3600, secs / 60 % 60, secs % 60)
}

/// English: outside a browser there is no `<html lang>`.
pub fn page_lang() -> Lang {
    Lang::En
}
