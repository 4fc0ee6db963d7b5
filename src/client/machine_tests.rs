//! Host tests of the machine, the backoff and the display rules: one test (or table) per rule.

use super::display::{banner_phase, Timeline};
use super::machine::*;
use super::policy::Policy;
use super::target::Target;

fn env(now: f64) -> Env {
    Env {
        now,
        wall: now,
        rand: 0.5,
    }
}

fn hello(server: &str) -> Input {
    Input::Hello {
        hello: ServerHello {
            connection_id: format!("{server}-c1"),
            server_id: server.into(),
            heartbeat_ms: 1000,
            retry_ms: 0,
            replayed: 0,
        },
        id: Some(format!("{server}-0")),
    }
}

/// Drive a machine through inputs, returning the final state and the last step's commands.
struct Run {
    s: State,
    p: Policy,
    cmds: Vec<Command>,
}

impl Run {
    fn new() -> Self {
        Run::with(Policy::default())
    }
    fn with(p: Policy) -> Self {
        Run {
            s: State::initial(),
            p,
            cmds: vec![],
        }
    }
    fn at(&mut self, now: f64, input: Input) -> &mut Self {
        self.at_env(env(now), input)
    }
    fn at_env(&mut self, e: Env, input: Input) -> &mut Self {
        let (s, cmds) = step(&self.s, &input, e, &self.p);
        self.s = s;
        self.cmds = cmds;
        self
    }
    /// Started and connected at t=0.
    fn connected() -> Self {
        let mut r = Run::new();
        r.at(
            0.0,
            Input::Start {
                online: true,
                hidden: false,
            },
        )
        .at(10.0, hello("s1"));
        r
    }
    /// Tick every 250 ms (as the browser driver does) from `from` up to and including `to`.
    fn ticks(&mut self, from: f64, to: f64) -> &mut Self {
        let mut t = from;
        while t < to {
            self.at(t, Input::Tick);
            t += 250.0;
        }
        self.at(to, Input::Tick)
    }
    fn phase(&self) -> Phase {
        self.s.phase
    }
}

fn open_cmd(id: Option<&str>) -> Command {
    Command::Open {
        last_event_id: id.map(str::to_owned),
    }
}

#[test]
fn start_online_opens_and_shows_connecting() {
    let mut r = Run::new();
    r.at(
        0.0,
        Input::Start {
            online: true,
            hidden: false,
        },
    );
    assert_eq!(r.phase(), Phase::Connecting);
    assert_eq!(r.cmds, vec![open_cmd(None)]);
}

#[test]
fn start_offline_opens_nothing() {
    let mut r = Run::new();
    r.at(
        0.0,
        Input::Start {
            online: false,
            hidden: false,
        },
    );
    assert_eq!(r.phase(), Phase::Offline);
    assert!(r.cmds.is_empty());
}

#[test]
fn connected_event_means_connected_and_resets_attempts() {
    let mut r = Run::connected();
    assert_eq!(r.phase(), Phase::Connected);
    assert_eq!(r.s.cause, Cause::None);
    // fail twice, then connect: attempts back to 0
    r.at(
        100.0,
        Input::Error {
            ready_state: ReadyState::Connecting,
        },
    );
    assert_eq!(r.s.attempt, 1);
    let due = r.s.retry_at.unwrap();
    r.at(due, Input::Tick);
    r.at(
        due + 1.0,
        Input::Error {
            ready_state: ReadyState::Connecting,
        },
    );
    assert_eq!(r.s.attempt, 2);
    let due = r.s.retry_at.unwrap();
    r.at(due, Input::Tick).at(due + 5.0, hello("s1"));
    assert_eq!(r.phase(), Phase::Connected);
    assert_eq!(r.s.attempt, 0);
    assert_eq!(r.s.reconnects, 1);
}

#[test]
fn error_while_connecting_means_browser_retrying_so_we_take_over_with_backoff() {
    let mut r = Run::connected();
    r.at(
        500.0,
        Input::Error {
            ready_state: ReadyState::Connecting,
        },
    );
    assert_eq!(r.phase(), Phase::Reconnecting);
    assert_eq!(r.s.cause, Cause::Unreachable);
    assert_eq!(
        r.cmds,
        vec![Command::Close],
        "no probe: a network error needs no classification"
    );
    let at = r.s.retry_at.expect("a retry is scheduled");
    assert!(at > 500.0 && at <= 500.0 + 500.0);
}

#[test]
fn closed_means_browser_gave_up_so_we_probe_then_reopen_after_a_delay() {
    let mut r = Run::connected();
    r.at(
        500.0,
        Input::Error {
            ready_state: ReadyState::Closed,
        },
    );
    assert_eq!(
        r.phase(),
        Phase::Reconnecting,
        "never 'closed' or 'failed' for a 5xx"
    );
    assert_eq!(r.cmds, vec![Command::Close, Command::Probe]);
    assert_eq!(r.s.retry_at, None, "waits for the probe");
    r.at(520.0, Input::Probe(ProbeOutcome::Status(503)));
    assert_eq!(r.s.cause, Cause::ServerError);
    let at = r.s.retry_at.expect("own reopen scheduled");
    r.at(at - 1.0, Input::Tick);
    assert!(r.cmds.is_empty());
    r.at(at, Input::Tick);
    assert_eq!(r.cmds, vec![open_cmd(Some("s1-0"))]);
}

#[test]
fn probe_outcomes_classify_the_fatal_close() {
    let cases = [
        (
            ProbeOutcome::Status(401),
            Phase::Rejected,
            Cause::Rejected,
            false,
        ),
        (
            ProbeOutcome::Status(403),
            Phase::Rejected,
            Cause::Rejected,
            false,
        ),
        (
            ProbeOutcome::Status(204),
            Phase::Closed,
            Cause::ServerClosed,
            false,
        ),
        (
            ProbeOutcome::Status(500),
            Phase::Reconnecting,
            Cause::ServerError,
            true,
        ),
        (
            ProbeOutcome::Status(200),
            Phase::Reconnecting,
            Cause::ServerError,
            true,
        ),
        (
            ProbeOutcome::NetworkError,
            Phase::Reconnecting,
            Cause::Unreachable,
            true,
        ),
    ];
    for (outcome, phase, cause, retries) in cases {
        let mut r = Run::connected();
        r.at(
            500.0,
            Input::Error {
                ready_state: ReadyState::Closed,
            },
        )
        .at(510.0, Input::Probe(outcome));
        assert_eq!((r.phase(), r.s.cause), (phase, cause), "{outcome:?}");
        assert_eq!(r.s.retry_at.is_some(), retries, "{outcome:?}");
        // settled states do not retry by themselves, however long we wait
        r.at(1_000_000.0, Input::Tick);
        assert_eq!(
            r.cmds.iter().any(|c| matches!(c, Command::Open { .. })),
            retries,
            "{outcome:?}"
        );
    }
}

#[test]
fn attempts_count_up_and_max_attempts_gives_failed() {
    let p = Policy {
        max_attempts: Some(2),
        ..Policy::default()
    };
    let mut r = Run::with(p);
    r.at(
        0.0,
        Input::Start {
            online: true,
            hidden: false,
        },
    );
    let mut now = 0.0;
    for want in [1, 2] {
        now += 1.0;
        r.at(
            now,
            Input::Error {
                ready_state: ReadyState::Connecting,
            },
        );
        assert_eq!((r.phase(), r.s.attempt), (Phase::Reconnecting, want));
        now = r.s.retry_at.unwrap();
        r.at(now, Input::Tick);
    }
    r.at(
        now + 1.0,
        Input::Error {
            ready_state: ReadyState::Connecting,
        },
    );
    assert_eq!(r.phase(), Phase::Failed);
    assert_eq!(r.s.cause, Cause::Unreachable);
    r.at(now + 100_000.0, Input::Tick);
    assert!(r.cmds.is_empty(), "failed never retries by itself");
    r.at(now + 100_001.0, Input::RetryNow);
    assert_eq!(r.phase(), Phase::Reconnecting);
    assert_eq!(
        r.s.attempt, 1,
        "retry-now after failed starts counting again"
    );
    assert_eq!(r.cmds, vec![open_cmd(None)]);
}

#[test]
fn without_max_attempts_it_never_gives_up_and_stays_at_the_cap() {
    let mut r = Run::new();
    r.at(
        0.0,
        Input::Start {
            online: true,
            hidden: false,
        },
    );
    let mut now = 0.0;
    for _ in 0..200 {
        now += 1.0;
        r.at(
            now,
            Input::Error {
                ready_state: ReadyState::Connecting,
            },
        );
        let wait = r.s.retry_at.unwrap() - now;
        assert!(wait <= 30_000.0);
        now = r.s.retry_at.unwrap();
        r.at(now, Input::Tick);
    }
    assert_eq!(r.phase(), Phase::Reconnecting);
    assert_eq!(r.s.attempt, 200);
}

#[test]
fn backoff_doubles_its_window_caps_it_and_honours_the_floor() {
    let p = Policy::default();
    let table = [
        // attempt, floor, rand, want
        (1, 0.0, 1.0, 500.0),
        (2, 0.0, 1.0, 1_000.0),
        (3, 0.0, 1.0, 2_000.0),
        (7, 0.0, 1.0, 30_000.0),
        (40, 0.0, 1.0, 30_000.0),
        (1, 0.0, 0.0, 0.0),
        (1, 1_000.0, 0.0, 1_000.0),
        (1, 1_000.0, 0.5, 1_250.0),
        (10, 1_000.0, 1.0, 30_000.0),
        (1, 40_000.0, 0.7, 40_000.0),
    ];
    for (attempt, floor, rand, want) in table {
        let got = backoff_delay(attempt, floor, rand, &p);
        assert!(
            (got - want).abs() < 1e-9,
            "attempt {attempt} floor {floor} rand {rand}: {got}"
        );
    }
}

#[test]
fn server_retry_is_a_floor_for_our_reconnect() {
    let mut r = Run::new();
    r.at(
        0.0,
        Input::Start {
            online: true,
            hidden: false,
        },
    )
    .at(
        1.0,
        Input::Hello {
            hello: ServerHello {
                connection_id: "c".into(),
                server_id: "s".into(),
                heartbeat_ms: 1000,
                retry_ms: 4_000,
                replayed: 0,
            },
            id: None,
        },
    );
    r.at_env(
        Env {
            now: 10.0,
            wall: 10.0,
            rand: 0.0,
        },
        Input::Error {
            ready_state: ReadyState::Connecting,
        },
    );
    assert_eq!(r.s.retry_at, Some(10.0 + 4_000.0));
}

#[test]
fn first_retries_of_many_clients_spread_evenly_over_the_window() {
    // 10,000 clients lose the same server at the same instant; their first retries must not
    // arrive together. Deterministic "random" numbers from a simple LCG stand in for Math.random.
    let mut seed: u64 = 0x2545_f491_4f6c_dd1d;
    let mut buckets = [0u32; 10];
    for _ in 0..10_000 {
        seed = seed
            .wrapping_mul(6_364_136_223_846_793_005)
            .wrapping_add(1_442_695_040_888_963_407);
        let rand = (seed >> 11) as f64 / (1u64 << 53) as f64;
        let mut r = Run::connected();
        r.at_env(
            Env {
                now: 100.0,
                wall: 100.0,
                rand,
            },
            Input::Error {
                ready_state: ReadyState::Connecting,
            },
        );
        let delay = r.s.retry_at.unwrap() - 100.0;
        assert!((0.0..500.0).contains(&delay));
        buckets[(delay / 50.0) as usize] += 1;
    }
    // each 50 ms slice holds ~1,000; no slice is a herd
    for (i, n) in buckets.iter().enumerate() {
        assert!((850..=1150).contains(n), "slice {i} has {n} of 10,000");
    }
}

#[test]
fn watchdog_fires_after_twice_the_heartbeat_plus_slack_then_reopens_with_last_id() {
    let mut r = Run::connected(); // connected at 10, heartbeat 1000 → deadline 10 + 3000
    r.at(1_000.0, Input::Event { id: None });
    r.at(
        1_200.0,
        Input::Event {
            id: Some("s1-7".into()),
        },
    );
    r.at(4_199.0, Input::Tick);
    assert_eq!(r.phase(), Phase::Connected);
    r.at(4_200.0, Input::Tick);
    assert_eq!(r.phase(), Phase::Stale);
    assert_eq!(r.s.cause, Cause::HeartbeatMissed);
    assert_eq!(r.cmds, vec![Command::Close, open_cmd(Some("s1-7"))]);
    // the reopen works
    r.at(4_300.0, hello("s1"));
    assert_eq!(r.phase(), Phase::Connected);
}

#[test]
fn pings_keep_the_watchdog_quiet() {
    let mut r = Run::connected();
    for t in (1..20).map(|i| f64::from(i) * 1_000.0) {
        r.at(t, Input::Event { id: None })
            .at(t + 500.0, Input::Tick);
        assert_eq!(r.phase(), Phase::Connected);
    }
}

#[test]
fn a_reopen_that_never_answers_times_out_into_backoff() {
    let mut r = Run::connected();
    r.ticks(250.0, 3_010.0); // stale, reopened at 3010
    assert_eq!(r.phase(), Phase::Stale);
    r.ticks(3_250.0, 13_009.0);
    assert_eq!(r.phase(), Phase::Stale, "one reopen in flight: still stale");
    r.at(13_010.0, Input::Tick);
    assert_eq!(r.phase(), Phase::Reconnecting);
    assert_eq!(r.s.cause, Cause::HeartbeatMissed);
    assert_eq!(r.cmds, vec![Command::Close]);
    assert!(r.s.retry_at.is_some());
}

#[test]
fn offline_closes_and_waits_online_reopens_at_once() {
    let mut r = Run::connected();
    r.at(100.0, Input::Offline);
    assert_eq!(r.phase(), Phase::Offline);
    assert_eq!(r.cmds, vec![Command::Close]);
    for t in [1_000.0, 60_000.0, 600_000.0] {
        r.at(t, Input::Tick);
        assert!(r.cmds.is_empty(), "no requests while offline");
        r.at(
            t + 1.0,
            Input::Error {
                ready_state: ReadyState::Connecting,
            },
        );
        assert_eq!(
            r.phase(),
            Phase::Offline,
            "late errors do not leave offline"
        );
    }
    r.at(700_000.0, Input::Online);
    assert_eq!(r.phase(), Phase::Reconnecting);
    assert_eq!(r.cmds, vec![open_cmd(Some("s1-0"))]);
    r.at(700_050.0, hello("s1"));
    assert_eq!(r.phase(), Phase::Connected);
}

#[test]
fn offline_during_backoff_cancels_the_retry() {
    let mut r = Run::connected();
    r.at(
        100.0,
        Input::Error {
            ready_state: ReadyState::Connecting,
        },
    );
    r.at(150.0, Input::Offline);
    assert_eq!(r.s.retry_at, None);
    assert!(r.cmds.is_empty(), "nothing open to close");
    r.at(100_000.0, Input::Tick);
    assert!(r.cmds.is_empty());
}

#[test]
fn hidden_past_grace_pauses_and_visible_resumes_at_once() {
    let mut r = Run::connected();
    r.at(1_000.0, Input::Visibility { hidden: true });
    r.at(1_000.0 + 299_999.0, Input::Event { id: None });
    r.at(1_000.0 + 299_999.0, Input::Tick);
    assert_eq!(
        r.phase(),
        Phase::Connected,
        "within the grace period nothing changes"
    );
    r.at(301_000.0, Input::Tick);
    assert_eq!(r.phase(), Phase::Paused);
    assert_eq!(r.cmds, vec![Command::Close]);
    r.at(900_000.0, Input::Tick);
    assert!(r.cmds.is_empty());
    r.at(900_001.0, Input::Visibility { hidden: false });
    assert_eq!(r.phase(), Phase::Reconnecting);
    assert_eq!(r.s.cause, Cause::Hidden);
    assert_eq!(r.cmds, vec![open_cmd(Some("s1-0"))]);
}

#[test]
fn a_short_hide_changes_nothing() {
    let mut r = Run::connected();
    r.at(1_000.0, Input::Visibility { hidden: true })
        .at(1_100.0, Input::Event { id: None })
        .at(2_000.0, Input::Visibility { hidden: false })
        .at(2_100.0, Input::Tick);
    assert_eq!(r.phase(), Phase::Connected);
    assert!(r.cmds.is_empty());
}

#[test]
fn wall_clock_jump_reconnects_at_once() {
    let mut r = Run::connected();
    r.at_env(
        Env {
            now: 250.0,
            wall: 250.0,
            rand: 0.5,
        },
        Input::Tick,
    );
    r.at_env(
        Env {
            now: 260.0,
            wall: 260.0,
            rand: 0.5,
        },
        Input::Event { id: None },
    );
    // monotonic moved 250 ms, the wall clock an hour: the machine slept
    r.at_env(
        Env {
            now: 500.0,
            wall: 3_600_500.0,
            rand: 0.5,
        },
        Input::Tick,
    );
    assert_eq!(r.phase(), Phase::Reconnecting);
    assert_eq!(r.s.cause, Cause::ClockJump);
    assert_eq!(r.cmds, vec![Command::Close, open_cmd(Some("s1-0"))]);
}

#[test]
fn timers_that_did_not_fire_for_long_count_as_a_jump_too() {
    let mut r = Run::connected();
    r.at_env(
        Env {
            now: 250.0,
            wall: 250.0,
            rand: 0.5,
        },
        Input::Tick,
    );
    r.at_env(
        Env {
            now: 20_250.0,
            wall: 20_250.0,
            rand: 0.5,
        },
        Input::Tick,
    );
    assert_eq!(r.s.cause, Cause::ClockJump);
    assert!(r.cmds.contains(&Command::Close));
}

#[test]
fn a_clock_jump_while_hidden_is_ignored() {
    let mut r = Run::connected();
    r.at_env(
        Env {
            now: 250.0,
            wall: 250.0,
            rand: 0.5,
        },
        Input::Tick,
    );
    r.at_env(
        Env {
            now: 300.0,
            wall: 300.0,
            rand: 0.5,
        },
        Input::Visibility { hidden: true },
    );
    r.at_env(
        Env {
            now: 301.0,
            wall: 301.0,
            rand: 0.5,
        },
        Input::Event { id: None },
    );
    r.at_env(
        Env {
            now: 2_000.0,
            wall: 60_000.0,
            rand: 0.5,
        },
        Input::Event { id: None },
    );
    r.at_env(
        Env {
            now: 2_100.0,
            wall: 60_100.0,
            rand: 0.5,
        },
        Input::Tick,
    );
    assert_eq!(r.phase(), Phase::Connected);
}

#[test]
fn small_tick_jitter_is_not_a_jump() {
    let mut r = Run::connected();
    let mut t = 0.0;
    for i in 0..20 {
        t += 250.0 + f64::from(i % 3) * 40.0;
        r.at_env(
            Env {
                now: t,
                wall: t + f64::from(i) * 3.0,
                rand: 0.5,
            },
            Input::Event { id: None },
        );
        r.at_env(
            Env {
                now: t,
                wall: t + f64::from(i) * 3.0,
                rand: 0.5,
            },
            Input::Tick,
        );
        assert_eq!(r.phase(), Phase::Connected);
    }
}

#[test]
fn retry_now_skips_the_backoff() {
    let mut r = Run::connected();
    r.at(
        100.0,
        Input::Error {
            ready_state: ReadyState::Connecting,
        },
    );
    assert!(r.s.retry_at.is_some());
    r.at(150.0, Input::RetryNow);
    assert_eq!(r.cmds, vec![open_cmd(Some("s1-0"))]);
    assert_eq!(r.s.retry_at, None, "countdown reset");
    assert_eq!(r.s.cause, Cause::RetryNow);
    r.at(170.0, hello("s1"));
    assert_eq!(r.phase(), Phase::Connected);
}

#[test]
fn close_by_the_page_ends_the_stream_and_every_retry() {
    // Connected: the stream is closed, the phase says who closed it, ticks never reopen.
    let mut r = Run::connected();
    r.at(100.0, Input::Close);
    assert_eq!(r.cmds, vec![Command::Close]);
    assert_eq!((r.phase(), r.s.cause), (Phase::Closed, Cause::ClosedByPage));
    for t in [1_000.0, 60_000.0, 3_600_000.0] {
        r.at(t, Input::Tick);
        assert!(r.cmds.is_empty(), "tick at {t} did something: {:?}", r.cmds);
    }
    assert_eq!(r.phase(), Phase::Closed);
    // Waiting out a backoff: nothing to close, the countdown is gone, a late probe is ignored.
    let mut r = Run::connected();
    r.at(
        100.0,
        Input::Error {
            ready_state: ReadyState::Closed,
        },
    );
    r.at(200.0, Input::Close);
    assert!(!r.cmds.contains(&Command::Close) || r.s.opening_since.is_none());
    assert_eq!(r.s.retry_at, None);
    assert_eq!(r.s.attempt, 0);
    r.at(300.0, Input::Probe(ProbeOutcome::NetworkError));
    assert_eq!((r.phase(), r.s.cause), (Phase::Closed, Cause::ClosedByPage));
    r.at(100_000.0, Input::Tick).at(100_001.0, Input::Online);
    assert!(r.cmds.is_empty());
    assert_eq!(r.phase(), Phase::Closed);
}

fn reauth(id: &str) -> Input {
    Input::Reauth {
        last_event_id: Some(id.into()),
    }
}

#[test]
fn reauth_renews_then_resumes_after_the_last_event_without_counting_a_failure() {
    let mut r = Run::connected();
    r.at(100.0, reauth("s1-7"));
    assert_eq!(r.cmds, vec![Command::Close, Command::Refresh]);
    assert_eq!((r.phase(), r.s.cause), (Phase::Reconnecting, Cause::Reauth));
    assert_eq!(r.s.attempt, 0, "an expiry is not a failure");
    r.at(150.0, Input::Refreshed(RefreshOutcome::Done));
    assert_eq!(
        r.cmds,
        vec![open_cmd(Some("s1-7"))],
        "resumes where the stream ended"
    );
    r.at(180.0, hello("s1"));
    assert_eq!(r.phase(), Phase::Connected);
    // Quick enough: the banner never showed anything but connected.
    let banner = banner_phase(Phase::Connected, &r.s, 180.0, &r.p);
    assert_eq!(banner, Phase::Connected);
}

#[test]
fn a_refused_renewal_signs_out_for_good_and_retry_now_renews_first() {
    let mut r = Run::connected();
    r.at(100.0, reauth("s1-7"))
        .at(150.0, Input::Refreshed(RefreshOutcome::Denied));
    assert_eq!((r.phase(), r.s.cause), (Phase::Rejected, Cause::SignedOut));
    for t in [1_000.0, 60_000.0, 600_000.0] {
        r.at(t, Input::Tick);
        assert!(
            r.cmds.is_empty(),
            "no retry loop with a dead credential: {:?}",
            r.cmds
        );
    }
    r.at(600_100.0, Input::RetryNow);
    assert_eq!(
        r.cmds,
        vec![Command::Refresh],
        "the user's retry renews first"
    );
}

#[test]
fn a_failed_renewal_backs_off_and_renews_again() {
    let mut r = Run::connected();
    r.at(100.0, reauth("s1-7"))
        .at(150.0, Input::Refreshed(RefreshOutcome::Failed));
    assert_eq!(r.phase(), Phase::Reconnecting);
    let at = r.s.retry_at.expect("a backoff");
    r.at(at + 1.0, Input::Tick);
    assert_eq!(r.cmds, vec![Command::Refresh]);
    r.at(at + 50.0, Input::Refreshed(RefreshOutcome::Done));
    assert_eq!(r.cmds, vec![open_cmd(Some("s1-7"))]);
}

#[test]
fn a_refusal_after_reauth_means_signed_out_not_forbidden() {
    let mut r = Run::connected();
    r.at(100.0, reauth("s1-7"))
        .at(150.0, Input::Refreshed(RefreshOutcome::Done))
        .at(
            200.0,
            Input::Error {
                ready_state: ReadyState::Closed,
            },
        )
        .at(250.0, Input::Probe(ProbeOutcome::Status(401)));
    assert_eq!((r.phase(), r.s.cause), (Phase::Rejected, Cause::SignedOut));
    // Without a reauth first, a 403 is a plain refusal.
    let mut r = Run::connected();
    r.at(
        200.0,
        Input::Error {
            ready_state: ReadyState::Closed,
        },
    )
    .at(250.0, Input::Probe(ProbeOutcome::Status(403)));
    assert_eq!((r.phase(), r.s.cause), (Phase::Rejected, Cause::Rejected));
}

#[test]
fn revoked_ends_the_stream_and_never_reconnects_by_itself() {
    let mut r = Run::connected();
    r.at(100.0, Input::Revoked);
    assert_eq!(r.cmds, vec![Command::Close]);
    assert_eq!((r.phase(), r.s.cause), (Phase::Rejected, Cause::Revoked));
    r.at(100_000.0, Input::Tick).at(100_001.0, Input::Online);
    assert!(r.cmds.is_empty());
    // A late reauth from the closed stream changes nothing.
    r.at(100_002.0, reauth("s1-9"));
    assert!(r.cmds.is_empty());
    assert_eq!(r.s.cause, Cause::Revoked);
}

#[test]
fn retry_now_does_nothing_while_connected_or_offline() {
    let mut r = Run::connected();
    r.at(100.0, Input::RetryNow);
    assert!(r.cmds.is_empty());
    r.at(200.0, Input::Offline).at(300.0, Input::RetryNow);
    assert!(r.cmds.is_empty());
    assert_eq!(r.phase(), Phase::Offline);
}

#[test]
fn draining_waits_for_the_servers_hint_and_says_restarting() {
    let mut r = Run::connected();
    r.at(
        100.0,
        Input::Draining {
            reconnect_after_ms: 700,
        },
    );
    assert_eq!(r.phase(), Phase::Reconnecting);
    assert_eq!(r.s.cause, Cause::ServerRestarting);
    assert_eq!(r.cmds, vec![Command::Close]);
    assert_eq!(r.s.retry_at, Some(800.0));
    r.at(800.0, Input::Tick);
    assert_eq!(r.cmds, vec![open_cmd(Some("s1-0"))]);
    r.at(900.0, hello("s2"));
    assert!(r.s.server_restarted, "a new server id is noticed");
}

#[test]
fn events_carry_the_resume_point_and_pings_do_not_move_it() {
    let mut r = Run::connected();
    r.at(
        100.0,
        Input::Event {
            id: Some("s1-5".into()),
        },
    )
    .at(200.0, Input::Event { id: None });
    assert_eq!(r.s.last_event_id.as_deref(), Some("s1-5"));
}

#[test]
fn late_callbacks_of_a_closed_stream_are_ignored() {
    let mut r = Run::connected();
    r.at(
        100.0,
        Input::Error {
            ready_state: ReadyState::Connecting,
        },
    );
    let before = r.s.clone();
    r.at(
        110.0,
        Input::Error {
            ready_state: ReadyState::Closed,
        },
    );
    r.at(
        120.0,
        Input::Event {
            id: Some("x-1".into()),
        },
    );
    r.at(130.0, hello("s1"));
    assert_eq!(r.s.attempt, before.attempt);
    assert_eq!(r.s.last_event_id, before.last_event_id);
    assert_eq!(r.phase(), Phase::Reconnecting);
}

#[test]
fn phase_and_cause_names_match_the_contract() {
    let names: Vec<_> = [
        Phase::Connecting,
        Phase::Connected,
        Phase::Reconnecting,
        Phase::Stale,
        Phase::Offline,
        Phase::Rejected,
        Phase::Paused,
        Phase::Closed,
        Phase::Failed,
    ]
    .iter()
    .map(|p| p.as_str())
    .collect();
    assert_eq!(
        names,
        [
            "connecting",
            "connected",
            "reconnecting",
            "stale",
            "offline",
            "rejected",
            "paused",
            "closed",
            "failed"
        ]
    );
    assert_eq!(Cause::ServerError.code(), "server-error");
    assert_eq!(Cause::Unreachable.describe(), "Server unreachable");
}

#[test]
fn banner_debounces_transient_trouble_but_not_definitive_states() {
    let p = Policy::default();
    let mut r = Run::connected();
    r.at(
        1_000.0,
        Input::Error {
            ready_state: ReadyState::Connecting,
        },
    );
    assert_eq!(
        banner_phase(Phase::Connected, &r.s, 1_000.0, &p),
        Phase::Connected
    );
    assert_eq!(
        banner_phase(Phase::Connected, &r.s, 1_499.0, &p),
        Phase::Connected
    );
    assert_eq!(
        banner_phase(Phase::Connected, &r.s, 1_500.0, &p),
        Phase::Reconnecting
    );
    // once shown, further trouble shows at once
    assert_eq!(
        banner_phase(Phase::Reconnecting, &r.s, 1_000.0, &p),
        Phase::Reconnecting
    );
    // a blip that recovers within 500 ms never leaves "connected"
    let due = r.s.retry_at.unwrap();
    r.at(due, Input::Tick).at(due + 10.0, hello("s1"));
    assert!(due + 10.0 - 1_000.0 < 500.0);
    assert_eq!(
        banner_phase(Phase::Connected, &r.s, due + 10.0, &p),
        Phase::Connected
    );
    // stale already waited out the watchdog's deadline: it shows at once
    let mut silent = Run::connected();
    silent.ticks(250.0, 3_010.0);
    assert_eq!(silent.phase(), Phase::Stale);
    assert_eq!(
        banner_phase(Phase::Connected, &silent.s, 3_010.0, &p),
        Phase::Stale
    );
    // definitive states show at once
    r.at(2_000.0, Input::Offline);
    assert_eq!(
        banner_phase(Phase::Connected, &r.s, 2_000.0, &p),
        Phase::Offline
    );
    // the first connection shows connecting from the start
    let mut fresh = Run::new();
    fresh.at(
        0.0,
        Input::Start {
            online: true,
            hidden: false,
        },
    );
    assert_eq!(
        banner_phase(Phase::Connecting, &fresh.s, 0.0, &p),
        Phase::Connecting
    );
}

#[test]
fn timeline_records_changes_with_durations_newest_first() {
    let mut t = Timeline::new(3);
    let mut r = Run::new();
    r.at(
        0.0,
        Input::Start {
            online: true,
            hidden: false,
        },
    );
    t.record(&r.s, 0.0);
    r.at(100.0, hello("s1"));
    t.record(&r.s, 100.0);
    r.at(150.0, Input::Event { id: None });
    t.record(&r.s, 150.0); // no change: no entry
    r.at(
        400.0,
        Input::Error {
            ready_state: ReadyState::Connecting,
        },
    );
    t.record(&r.s, 400.0);
    let e = t.entries();
    assert_eq!(e.len(), 3);
    assert_eq!(e[0].phase, Phase::Reconnecting);
    assert_eq!(e[1].phase, Phase::Connected);
    assert_eq!(e[1].duration(1_000.0), 300.0);
    assert_eq!(
        e[0].duration(1_000.0),
        600.0,
        "the current entry is still running"
    );
    r.at(500.0, Input::Offline);
    t.record(&r.s, 500.0);
    assert_eq!(t.entries().len(), 3, "bounded");
}

#[test]
fn resync_marks_lost_events_until_the_next_connected() {
    let mut r = Run::connected();
    r.at(
        100.0,
        Input::Resync {
            reason: "other-server".into(),
        },
    );
    assert_eq!(r.s.resync.as_deref(), Some("other-server"));
    assert_eq!(r.phase(), Phase::Connected);
    r.at(
        200.0,
        Input::Error {
            ready_state: ReadyState::Connecting,
        },
    );
    let due = r.s.retry_at.unwrap();
    r.at(due, Input::Tick).at(due + 1.0, hello("s1"));
    assert_eq!(r.s.resync, None, "a clean resume clears it");
}

#[test]
fn a_restart_stays_a_restart_while_the_successor_comes_up() {
    let mut r = Run::connected();
    r.at(
        100.0,
        Input::Draining {
            reconnect_after_ms: 500,
        },
    );
    r.ticks(350.0, 600.0); // reopens at 600
    r.at(
        610.0,
        Input::Error {
            ready_state: ReadyState::Connecting,
        },
    ); // successor not up yet
    assert_eq!(
        (r.phase(), r.s.cause),
        (Phase::Reconnecting, Cause::ServerRestarting)
    );
    // long after the announcement, a failure is what it is
    r.s.restarting_since = Some(100.0);
    let due = r.s.retry_at.unwrap();
    r.ticks(850.0, due);
    r.at(
        40_000.0,
        Input::Error {
            ready_state: ReadyState::Connecting,
        },
    );
    assert_eq!(r.s.cause, Cause::Unreachable);
    // and a connected clears it
    r.at(40_100.0, Input::RetryNow).at(40_150.0, hello("s2"));
    assert_eq!(r.s.restarting_since, None);
}

#[test]
fn next_due_is_the_earliest_deadline_a_tick_would_act_on() {
    let p = Policy::default();
    // Connected: the watchdog (connected at 10, heartbeat 1000 → 10 + 2 × 1000 + 1000).
    let mut r = Run::connected();
    assert_eq!(r.s.next_due(&p), Some(3_010.0));
    r.at(1_000.0, Input::Event { id: None });
    assert_eq!(r.s.next_due(&p), Some(4_000.0));
    // Reconnecting with a backoff: its end; a tick at that moment opens.
    r.at(
        1_500.0,
        Input::Error {
            ready_state: ReadyState::Connecting,
        },
    );
    let at = r.s.retry_at.expect("a retry is scheduled");
    assert_eq!(r.s.next_due(&p), Some(at));
    r.at(at, Input::Tick);
    assert!(
        matches!(r.cmds.as_slice(), [Command::Open { .. }]),
        "{:?}",
        r.cmds
    );
    // Opening: the open timeout.
    assert_eq!(r.s.next_due(&p), Some(at + p.open_timeout_ms));
    // Settled states wait for the user or the browser: nothing due.
    r.at(at + 1.0, Input::Offline);
    assert_eq!(r.s.next_due(&p), None);
}

#[test]
fn the_banner_is_due_when_the_debounce_ends() {
    use super::display::banner_due;
    let p = Policy::default();
    let mut r = Run::connected();
    assert_eq!(banner_due(Phase::Connected, &r.s, 100.0, &p), None);
    r.at(
        1_000.0,
        Input::Error {
            ready_state: ReadyState::Connecting,
        },
    );
    assert_eq!(
        banner_due(Phase::Connected, &r.s, 1_000.0, &p),
        Some(1_500.0)
    );
    assert_eq!(
        banner_due(Phase::Connected, &r.s, 1_499.0, &p),
        Some(1_500.0)
    );
    assert_eq!(banner_due(Phase::Connected, &r.s, 1_500.0, &p), None);
    assert_eq!(banner_due(Phase::Reconnecting, &r.s, 1_000.0, &p), None);
}

#[test]
fn ticks_add_no_timeline_entry() {
    let mut r = Run::connected();
    let mut t = Timeline::new(10);
    t.record(&r.s, 10.0);
    r.ticks(250.0, 2_000.0);
    assert!(!t.is_new(&r.s), "same phase and cause");
    r.at(
        2_100.0,
        Input::Error {
            ready_state: ReadyState::Connecting,
        },
    );
    assert!(t.is_new(&r.s));
}

// --- The page switches streams (reactive URL and topics), and opens when it wants to ---

fn switch(fresh: bool) -> Input {
    Input::Switch { fresh }
}

/// Connected at t=0 to server "s1", with an application event `s1-5` seen at t=100.
fn connected_with_an_event() -> Run {
    let mut r = Run::connected();
    r.at(
        100.0,
        Input::Event {
            id: Some("s1-5".into()),
        },
    );
    r
}

#[test]
fn a_topic_switch_resumes_after_the_last_id_and_never_counts_as_a_failure() {
    let p = Policy::default();
    let mut r = connected_with_an_event();
    r.at(1_000.0, switch(false));
    assert_eq!(r.cmds, vec![Command::Close, open_cmd(Some("s1-5"))]);
    assert_eq!((r.phase(), r.s.cause), (Phase::Connecting, Cause::Switch));
    assert_eq!(r.s.attempt, 0, "not a failed attempt");
    assert!(r.s.hello.is_some(), "the same server");
    // The banner's debounce hides it, as any short reconnect …
    assert_eq!(
        banner_phase(Phase::Connected, &r.s, 1_499.0, &p),
        Phase::Connected
    );
    // … and a slow one says "connecting" (to the new topics), never reconnecting or failed.
    assert_eq!(
        banner_phase(Phase::Connected, &r.s, 1_500.0, &p),
        Phase::Connecting
    );
    r.at(1_100.0, hello("s1"));
    assert_eq!((r.phase(), r.s.cause), (Phase::Connected, Cause::None));
    assert_eq!(r.s.reconnects, 0, "the page asked for it: not a reconnect");
    assert!(!r.s.server_restarted);
    // An open that never answers is then trouble like any other (and says so).
    let mut slow = connected_with_an_event();
    slow.at(1_000.0, switch(false))
        .ticks(1_250.0, 1_000.0 + p.open_timeout_ms);
    assert_eq!(
        (slow.phase(), slow.s.cause, slow.s.attempt),
        (Phase::Reconnecting, Cause::Unreachable, 1)
    );
}

#[test]
fn a_url_switch_starts_fresh() {
    let mut r = connected_with_an_event();
    r.at(1_000.0, switch(true));
    assert_eq!(r.cmds, vec![Command::Close, open_cmd(None)]);
    assert_eq!(r.s.last_event_id, None, "another server's ids mean nothing");
    assert_eq!(r.s.hello, None);
    assert_eq!((r.phase(), r.s.cause), (Phase::Connecting, Cause::Switch));
    // The other server's hello is not a restart of this one, nor a reconnect.
    r.at(1_100.0, hello("s2"));
    assert_eq!(r.phase(), Phase::Connected);
    assert!(!r.s.server_restarted);
    assert_eq!(r.s.reconnects, 0);
    assert_eq!(r.s.last_event_id.as_deref(), Some("s2-0"));
}

#[test]
fn an_equal_url_and_topic_set_is_no_switch() {
    let t = |url: &str, topics: &[&str]| {
        let topics: Vec<String> = topics.iter().map(|t| t.to_string()).collect();
        Target::new(url, &topics)
    };
    let now = t("/events", &["docs/1", "presence"]);
    // The same set in another order, with a repeat: nothing happens.
    assert_eq!(
        now.switch_to(&t("/events", &["presence", "docs/1", "docs/1"])),
        None
    );
    assert_eq!(now.switch_to(&now.clone()), None);
    assert_eq!(
        now.switch_to(&t("/events", &["docs/2", "presence"])),
        Some(switch(false))
    );
    assert_eq!(now.switch_to(&t("/events", &[])), Some(switch(false)));
    assert_eq!(
        now.switch_to(&t("/eu/events", &["docs/1", "presence"])),
        Some(switch(true))
    );
    // A reopen after close() resumes on the same URL only.
    let id = || Some("s1-5".to_owned());
    assert_eq!(now.resume_point(&t("/events", &["docs/2"]), id()), id());
    assert_eq!(now.resume_point(&t("/eu/events", &["docs/1"]), id()), None);
}

#[test]
fn immediate_false_stays_not_opened_until_the_page_opens() {
    let idle = State::not_opened();
    assert_eq!((idle.phase, idle.cause), (Phase::Closed, Cause::NotOpened));
    // Nothing the browser, the clock or the user's Retry now does opens it; nor does a switch
    // (the next open goes to the new stream).
    let mut r = Run::new();
    r.s = idle.clone();
    let inputs = [
        Input::Tick,
        Input::Offline,
        Input::Online,
        Input::Visibility { hidden: true },
        Input::Visibility { hidden: false },
        Input::TabVisibility { hidden: false },
        Input::Audience { hidden: false },
        Input::Recheck {
            stream_closed: true,
        },
        Input::RetryNow,
        switch(false),
        switch(true),
        Input::Error {
            ready_state: ReadyState::Closed,
        },
        Input::Probe(ProbeOutcome::Status(503)),
        Input::Event { id: None },
        hello("s1"),
    ];
    for (i, input) in inputs.into_iter().enumerate() {
        r.at(1_000.0 * i as f64, input.clone());
        assert!(r.cmds.is_empty(), "{input:?} did {:?}", r.cmds);
        assert_eq!(
            (r.phase(), r.s.cause),
            (Phase::Closed, Cause::NotOpened),
            "{input:?}"
        );
    }
    assert_eq!(r.s.next_due(&r.p), None, "no timer wakes it");
    // The banner says so from the first render on.
    assert_eq!(
        banner_phase(Phase::Closed, &idle, 0.0, &Policy::default()),
        Phase::Closed
    );
}

#[test]
fn open_from_not_opened_connects() {
    let mut r = Run::new();
    r.s = State::not_opened();
    r.at(
        50.0,
        Input::Start {
            online: true,
            hidden: false,
        },
    );
    assert_eq!(r.cmds, vec![open_cmd(None)]);
    assert_eq!((r.phase(), r.s.cause), (Phase::Connecting, Cause::None));
    r.at(60.0, hello("s1"));
    assert_eq!(r.phase(), Phase::Connected);
    assert_eq!(r.s.reconnects, 0);
    // Offline at that moment: it says offline and waits for `online`.
    let mut r = Run::new();
    r.s = State::not_opened();
    r.at(
        50.0,
        Input::Start {
            online: false,
            hidden: false,
        },
    );
    assert!(r.cmds.is_empty());
    assert_eq!(r.phase(), Phase::Offline);
}

#[test]
fn retry_now_leaves_a_stream_the_page_closed_to_the_page() {
    let mut r = Run::connected();
    r.at(100.0, Input::Close).at(200.0, Input::RetryNow);
    assert!(r.cmds.is_empty());
    assert_eq!((r.phase(), r.s.cause), (Phase::Closed, Cause::ClosedByPage));
    // A stream the server closed (204) is the user's to retry.
    let mut r = Run::connected();
    r.at(
        100.0,
        Input::Error {
            ready_state: ReadyState::Closed,
        },
    )
    .at(110.0, Input::Probe(ProbeOutcome::Status(204)))
    .at(200.0, Input::RetryNow);
    assert_eq!(r.phase(), Phase::Reconnecting);
    assert_eq!(r.cmds, vec![open_cmd(Some("s1-0"))]);
}

#[test]
fn switch_table_what_opens_the_new_stream_in_each_phase() {
    // Waiting out a backoff: the schedule stands, the due try opens the new stream.
    let mut r = connected_with_an_event();
    r.at(
        1_000.0,
        Input::Error {
            ready_state: ReadyState::Connecting,
        },
    );
    let due = r.s.retry_at.unwrap();
    r.at(1_100.0, switch(true));
    assert!(r.cmds.is_empty());
    assert_eq!(
        (r.phase(), r.s.cause, r.s.attempt, r.s.retry_at),
        (Phase::Reconnecting, Cause::Unreachable, 1, Some(due))
    );
    r.at(due, Input::Tick);
    assert_eq!(r.cmds, vec![open_cmd(None)], "fresh: no resume point");

    // Probing a refused stream: the probe was about the old stream; the new one opens now,
    // and the trouble keeps its name and count.
    let mut r = connected_with_an_event();
    r.at(
        1_000.0,
        Input::Error {
            ready_state: ReadyState::Closed,
        },
    )
    .at(1_100.0, switch(false));
    assert_eq!(r.cmds, vec![open_cmd(Some("s1-5"))]);
    assert_eq!(
        (r.phase(), r.s.cause),
        (Phase::Reconnecting, Cause::ServerError)
    );
    r.at(1_200.0, Input::Probe(ProbeOutcome::Status(403)));
    assert_eq!(
        r.phase(),
        Phase::Reconnecting,
        "the old probe's answer is ignored"
    );

    // Refused (403: a topic outside the grant), failed or told to stop (204): the new stream is
    // a new question, asked at once with a fresh count.
    let refused = |status| {
        let mut r = connected_with_an_event();
        r.at(
            1_000.0,
            Input::Error {
                ready_state: ReadyState::Closed,
            },
        )
        .at(1_100.0, Input::Probe(ProbeOutcome::Status(status)));
        r
    };
    for (status, phase) in [(403, Phase::Rejected), (204, Phase::Closed)] {
        let mut r = refused(status);
        assert_eq!(r.phase(), phase);
        r.at(2_000.0, switch(false));
        assert_eq!(r.cmds, vec![open_cmd(Some("s1-5"))], "{status}");
        assert_eq!(
            (r.phase(), r.s.cause, r.s.attempt),
            (Phase::Connecting, Cause::Switch, 0)
        );
    }
    let mut failed = Run::with(Policy {
        max_attempts: Some(1),
        ..Policy::default()
    });
    failed
        .at(
            0.0,
            Input::Start {
                online: true,
                hidden: false,
            },
        )
        .at(
            10.0,
            Input::Error {
                ready_state: ReadyState::Connecting,
            },
        );
    let due = failed.s.retry_at.unwrap();
    failed.at(due, Input::Tick).at(
        due + 10.0,
        Input::Error {
            ready_state: ReadyState::Connecting,
        },
    );
    assert_eq!(failed.phase(), Phase::Failed);
    failed.at(due + 100.0, switch(true));
    assert_eq!(failed.cmds, vec![open_cmd(None)]);
    assert_eq!(failed.phase(), Phase::Connecting);

    // Signed out or revoked: the credentials were refused, not the address.
    let mut r = Run::connected();
    r.at(100.0, Input::Revoked).at(200.0, switch(false));
    assert!(r.cmds.is_empty());
    assert_eq!((r.phase(), r.s.cause), (Phase::Rejected, Cause::Revoked));

    // Offline: nothing opens until `online`, which opens the new stream (fresh: no id).
    let mut r = connected_with_an_event();
    r.at(1_000.0, Input::Offline).at(1_100.0, switch(true));
    assert!(r.cmds.is_empty());
    assert_eq!(r.phase(), Phase::Offline);
    r.at(1_200.0, Input::Online);
    assert_eq!(r.cmds, vec![open_cmd(None)]);

    // Closed by the page: the next open() goes to the new stream; the switch opens nothing.
    let mut r = connected_with_an_event();
    r.at(1_000.0, Input::Close).at(1_100.0, switch(false));
    assert!(r.cmds.is_empty());
    assert_eq!((r.phase(), r.s.cause), (Phase::Closed, Cause::ClosedByPage));

    // Renewing access (after `reauth`): the renewal opens the new stream when it is done.
    let mut r = connected_with_an_event();
    r.at(1_000.0, reauth("s1-6"));
    assert_eq!(r.cmds, vec![Command::Close, Command::Refresh]);
    r.at(1_050.0, switch(false));
    assert!(r.cmds.is_empty(), "one renewal, not two");
    r.at(1_100.0, Input::Refreshed(RefreshOutcome::Done));
    assert_eq!(r.cmds, vec![open_cmd(Some("s1-6"))]);
}
