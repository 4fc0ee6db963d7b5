//! Both sides, pure: how durations, countdowns and counts are written for people — the one
//! place numbers are formatted, for the banner and for apps.

use crate::client::i18n::Lang;

/// Units of durations in `lang`: seconds, minutes, hours.
fn units(lang: Lang) -> (&'static str, &'static str, &'static str) {
    match lang {
        Lang::En => ("s", "min", "h"),
        Lang::ZhCn => ("秒", "分", "小时"),
    }
}

/// A duration in ms as people of `lang` read it: `0.4 s`, `12 s`, `3 min 5 s`, `2 h 1 min`
/// (`0.4 秒`, `3 分 5 秒`, `2 小时 1 分`).
pub fn duration(ms: f64, lang: Lang) -> String {
    let (s, min, h) = units(lang);
    // Integer arithmetic only: float formatting costs ~10 KB of browser bundle.
    let ms = ms.max(0.0) as u64;
    if ms < 10_000 {
        let tenths = (ms + 50) / 100;
        return format!("{}.{} {s}", tenths / 10, tenths % 10);
    }
    let secs = ms / 1000;
    match secs {
        0..=59 => format!("{secs} {s}"),
        60..=3599 => format!("{} {min} {} {s}", secs / 60, secs % 60),
        _ => format!("{} {h} {} {min}", secs / 3600, (secs % 3600) / 60),
    }
}

/// Whole seconds left until `at` (rounded up, never negative).
pub fn countdown_secs(at: f64, now: f64) -> u64 {
    ((at - now).max(0.0) / 1000.0).ceil() as u64
}

/// `1234567` → `1,234,567` (English and Chinese both group by thousands with a comma).
pub fn thousands(n: u64) -> String {
    let digits = n.to_string();
    let mut out = String::with_capacity(digits.len() + digits.len() / 3);
    for (i, c) in digits.chars().enumerate() {
        if i > 0 && (digits.len() - i).is_multiple_of(3) {
            out.push(',');
        }
        out.push(c);
    }
    out
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn durations_read_naturally() {
        let cases = [
            (-5.0, "0.0 s", "0.0 秒"),
            (0.0, "0.0 s", "0.0 秒"),
            (430.0, "0.4 s", "0.4 秒"),
            (9_949.0, "9.9 s", "9.9 秒"),
            (9_960.0, "10.0 s", "10.0 秒"),
            (12_300.0, "12 s", "12 秒"),
            (185_000.0, "3 min 5 s", "3 分 5 秒"),
            (7_260_000.0, "2 h 1 min", "2 小时 1 分"),
        ];
        for (ms, en, zh) in cases {
            assert_eq!(duration(ms, Lang::En), en, "{ms} ms");
            assert_eq!(duration(ms, Lang::ZhCn), zh, "{ms} ms");
        }
    }

    #[test]
    fn countdown_rounds_up_and_stops_at_zero() {
        assert_eq!(countdown_secs(10_000.0, 9_999.0), 1);
        assert_eq!(countdown_secs(10_000.0, 8_000.0), 2);
        assert_eq!(countdown_secs(10_000.0, 7_999.0), 3);
        assert_eq!(countdown_secs(10_000.0, 10_000.0), 0);
        assert_eq!(countdown_secs(10_000.0, 12_000.0), 0);
    }

    #[test]
    fn thousands_are_grouped() {
        assert_eq!(thousands(1_234_567), "1,234,567");
        assert_eq!(thousands(999), "999");
        assert_eq!(thousands(1000), "1,000");
        assert_eq!(thousands(0), "0");
    }
}
