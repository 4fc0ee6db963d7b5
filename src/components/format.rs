//! Both sides, pure: how durations and countdowns are written for people.

/// A duration in ms as people read it: `0.4 s`, `12 s`, `3 min 5 s`, `2 h 1 min`.
pub fn duration(ms: f64) -> String {
    // Integer arithmetic only: float formatting costs ~10 KB of browser bundle.
    let ms = ms.max(0.0) as u64;
    if ms < 10_000 {
        let tenths = (ms + 50) / 100;
        return format!("{}.{} s", tenths / 10, tenths % 10);
    }
    let secs = ms / 1000;
    match secs {
        0..=59 => format!("{secs} s"),
        60..=3599 => format!("{} min {} s", secs / 60, secs % 60),
        _ => format!("{} h {} min", secs / 3600, (secs % 3600) / 60),
    }
}

/// Whole seconds left until `at` (rounded up, never negative).
pub fn countdown_secs(at: f64, now: f64) -> u64 {
    ((at - now).max(0.0) / 1000.0).ceil() as u64
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn durations_read_naturally() {
        let cases = [
            (-5.0, "0.0 s"),
            (0.0, "0.0 s"),
            (430.0, "0.4 s"),
            (9_949.0, "9.9 s"),
            (9_960.0, "10.0 s"),
            (12_300.0, "12 s"),
            (185_000.0, "3 min 5 s"),
            (7_260_000.0, "2 h 1 min"),
        ];
        for (ms, want) in cases {
            assert_eq!(duration(ms), want, "{ms} ms");
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
}
