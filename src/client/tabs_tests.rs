//! Host tests of the tab-sharing piece and of the machine's take-over rules: one test per rule.

use super::machine::{step, Cause, Command, Env, Input, Phase, ServerHello, State};
use super::policy::Policy;
use super::tabs::*;

fn msg(m: Msg) -> TabsInput {
    TabsInput::Message(Box::new(m))
}

fn policy() -> Policy {
    Policy::default()
}

fn hello(hb: u64) -> ServerHello {
    ServerHello {
        connection_id: "c1".into(),
        server_id: "s1".into(),
        heartbeat_ms: hb,
        retry_ms: 1000,
        replayed: 0,
    }
}

fn connected_state(at: f64) -> State {
    State {
        phase: Phase::Connected,
        since: at,
        connected_at: Some(at),
        last_event_at: Some(at),
        hello: Some(hello(1000)),
        last_event_id: Some("s1-3".into()),
        ..State::initial()
    }
}

fn state_msg(from: &str, term: u64, tabs: u32, state: &State, sender_now: f64) -> Msg {
    Msg::State {
        from: from.into(),
        term,
        hidden: false,
        tabs,
        state: Box::new(Snapshot::of(state, sender_now)),
    }
}

fn event_msg(from: &str, term: u64, id: Option<&str>) -> Msg {
    Msg::Event {
        from: from.into(),
        term,
        name: if id.is_some() { "demo" } else { "ping" }.into(),
        id: id.map(Into::into),
        data: "{}".into(),
        time: "12:00:00".into(),
    }
}

/// A started tab (a follower waiting for the lock).
fn started(me: &str, patience: f64) -> Tabs {
    let mut t = Tabs::new(me.into(), patience, Election::Locks);
    t.step(
        TabsInput::Start {
            online: true,
            hidden: false,
        },
        0.0,
        &policy(),
    );
    t
}

/// A tab that got the lock at t=10.
fn leader(me: &str) -> Tabs {
    let mut t = started(me, 0.5);
    t.step(TabsInput::LockGranted, 10.0, &policy());
    t
}

/// A tab following leader "L" (term 1), last heard at t=100.
fn follower(me: &str, patience: f64) -> Tabs {
    let mut t = started(me, patience);
    t.step(
        msg(state_msg("L", 1, 2, &connected_state(0.0), 0.0)),
        100.0,
        &policy(),
    );
    t
}

fn logged_ids(cmds: &[TabsCommand]) -> Vec<Option<String>> {
    cmds.iter()
        .filter_map(|c| match c {
            TabsCommand::Log(e) => Some(e.id.clone()),
            _ => None,
        })
        .collect()
}

#[test]
fn start_announces_the_tab_and_queues_for_the_lock() {
    let mut t = Tabs::new("A".into(), 0.5, Election::Locks);
    let cmds = t.step(
        TabsInput::Start {
            online: true,
            hidden: true,
        },
        0.0,
        &policy(),
    );
    assert_eq!(
        cmds,
        vec![
            TabsCommand::Post(Msg::Join {
                from: "A".into(),
                hidden: true
            }),
            TabsCommand::RequestLock,
        ]
    );
    assert_eq!(t.role, TabRole::Follower);
}

#[test]
fn elect_the_lock_holder_leads_and_adopts_what_the_old_leader_said() {
    // First tab: nothing heard, so it adopts the initial state (and the machine opens).
    let mut t = started("A", 0.5);
    let cmds = t.step(TabsInput::LockGranted, 10.0, &policy());
    assert_eq!(t.role, TabRole::Leader);
    assert_eq!(t.term, 1);
    match &cmds[..] {
        [TabsCommand::Lead { state, input }, TabsCommand::PostState] => {
            assert_eq!(
                *state, None,
                "the machine keeps its own state (and resume point)"
            );
            assert_eq!(
                *input,
                Input::Adopt {
                    online: true,
                    tab_hidden: false,
                    audience_hidden: false
                }
            );
        }
        other => panic!("{other:?}"),
    }
    // A follower that gets the lock takes the term after the one it saw and the last state.
    let mut f = follower("B", 0.5);
    let cmds = f.step(TabsInput::LockGranted, 200.0, &policy());
    assert_eq!(f.term, 2);
    match &cmds[0] {
        TabsCommand::Lead {
            state: Some(state), ..
        } => {
            assert_eq!(state.phase, Phase::Connected);
            assert_eq!(state.last_event_id.as_deref(), Some("s1-3"));
        }
        other => panic!("{other:?}"),
    }
}

#[test]
fn follow_a_follower_shows_the_leaders_state_on_its_own_clock() {
    let mut t = started("B", 0.5);
    // The leader's clock says 5 000; its last event came 400 ms before that.
    let mut s = connected_state(4_600.0);
    s.since = 4_000.0;
    let cmds = t.step(msg(state_msg("L", 3, 4, &s, 5_000.0)), 70.0, &policy());
    match &cmds[0] {
        TabsCommand::Show(shown) => {
            assert_eq!(shown.phase, Phase::Connected);
            assert_eq!(shown.last_event_at, Some(70.0 - 400.0));
            assert_eq!(shown.since, 70.0 - 1_000.0);
        }
        other => panic!("{other:?}"),
    }
    assert_eq!(t.term, 3);
    assert_eq!(t.leader_heard_at, 70.0);
    assert_eq!(t.count(), 4, "a follower shows the leader's count");
}

#[test]
fn snapshot_round_trips_through_the_channel_text() {
    let mut s = connected_state(1_000.0);
    s.phase = Phase::Reconnecting;
    s.cause = Cause::Handover;
    s.retry_at = Some(3_500.0);
    s.resync = Some("too-old".into());
    s.last_event_id = Some(String::new()); // Some("") is not None
    let text = state_msg("L", 1, 2, &s, 2_000.0).encode();
    let Some(Msg::State { state, tabs: 2, .. }) = Msg::decode(&text) else {
        panic!("{text:?}")
    };
    let mut expect = s.clone();
    expect.last_tick = None;
    assert_eq!(state.to_state(2_000.0), Some(expect));
    let mut no_hello = State::initial();
    no_hello.hello = None;
    let text = state_msg("L", 1, 2, &no_hello, 0.0).encode();
    let Some(Msg::State { state, .. }) = Msg::decode(&text) else {
        panic!("{text:?}")
    };
    assert_eq!(state.to_state(0.0), Some(no_hello));
}

#[test]
fn every_message_round_trips_and_event_data_may_hold_anything() {
    let msgs = [
        Msg::Join {
            from: "a1".into(),
            hidden: true,
        },
        Msg::Presence {
            from: "a1".into(),
            hidden: false,
        },
        Msg::Leave {
            from: "a1".into(),
            heir: None,
        },
        Msg::Leave {
            from: "a1".into(),
            heir: Some("b2".into()),
        },
        Msg::RetryNow { from: "a1".into() },
        Msg::Event {
            from: "a1".into(),
            term: 7,
            name: "demo".into(),
            id: Some("s1-9".into()),
            data: "{\"x\":\"a\u{1f}b\"}\nline 2".into(),
            time: "12:00:01".into(),
        },
        Msg::Event {
            from: "a1".into(),
            term: 7,
            name: "ping".into(),
            id: None,
            data: String::new(),
            time: String::new(),
        },
    ];
    for m in msgs {
        assert_eq!(Msg::decode(&m.encode()), Some(m.clone()), "{m:?}");
    }
    for junk in [
        "",
        "hello",
        "join",
        "state\u{1f}L\u{1f}x",
        "{\"t\":\"join\"}",
    ] {
        assert_eq!(Msg::decode(junk), None, "{junk:?}");
    }
}

#[test]
fn leader_silent_past_the_deadline_a_follower_steals() {
    // Heartbeat 1 s: watchdog deadline 3 s; patience 0 steals at 3/4 of it, 0.99 near the end.
    let p = policy();
    for (patience, quiet_until, steal_at) in [(0.0, 2_349.0, 2_350.0), (0.99, 3_092.0, 3_093.0)] {
        let mut t = follower("B", patience);
        let before = t.step(TabsInput::Tick, quiet_until, &p);
        assert!(!before.contains(&TabsCommand::StealLock), "{patience}");
        let at = t.step(TabsInput::Tick, steal_at, &p);
        assert!(at.contains(&TabsCommand::StealLock), "{patience}: {at:?}");
        // Once per deadline, not every tick.
        let next = t.step(TabsInput::Tick, steal_at + 250.0, &p);
        assert!(!next.contains(&TabsCommand::StealLock));
    }
}

#[test]
fn any_message_of_the_leader_keeps_the_followers_watchdog_quiet() {
    let p = policy();
    let mut t = follower("B", 0.0);
    t.step(msg(event_msg("L", 1, None)), 2_000.0, &p);
    let cmds = t.step(TabsInput::Tick, 4_000.0, &p);
    assert!(!cmds.contains(&TabsCommand::StealLock));
    let cmds = t.step(TabsInput::Tick, 4_800.0, &p);
    assert!(cmds.contains(&TabsCommand::StealLock));
}

#[test]
fn deposed_leader_speaking_late_is_ignored() {
    let p = policy();
    let mut t = follower("B", 0.0);
    t.step(
        msg(state_msg("N", 2, 2, &connected_state(0.0), 0.0)),
        200.0,
        &p,
    );
    // The frozen old leader (term 1) wakes and says "reconnecting", and replays an event.
    let mut old = connected_state(0.0);
    old.phase = Phase::Reconnecting;
    assert!(t
        .step(msg(state_msg("L", 1, 2, &old, 0.0)), 300.0, &p)
        .is_empty());
    assert!(logged_ids(&t.step(msg(event_msg("L", 1, Some("s1-9"))), 300.0, &p)).is_empty());
    assert_eq!(t.leader_heard_at, 200.0);
}

#[test]
fn leader_closed_lock_lost_steps_down_and_queues_again() {
    let mut t = leader("A");
    let cmds = t.step(TabsInput::LockLost, 500.0, &policy());
    assert_eq!(cmds, vec![TabsCommand::StepDown, TabsCommand::RequestLock]);
    assert_eq!(t.role, TabRole::Follower);
    // A follower's abandoned request settling means nothing.
    assert!(t.step(TabsInput::LockLost, 600.0, &policy()).is_empty());
}

#[test]
fn deposed_leader_hearing_a_later_term_steps_down_and_follows() {
    let p = policy();
    let mut t = leader("A"); // term 1
    let cmds = t.step(
        msg(state_msg("B", 2, 3, &connected_state(0.0), 0.0)),
        500.0,
        &p,
    );
    assert_eq!(t.role, TabRole::Follower);
    assert_eq!(t.term, 2);
    assert!(matches!(
        &cmds[..],
        [
            TabsCommand::StepDown,
            TabsCommand::RequestLock,
            TabsCommand::Show(_),
            ..
        ]
    ));
    // A rival of the same term does not depose a leader (the lock decides).
    let mut t = leader("A");
    t.step(
        msg(state_msg("B", 1, 3, &connected_state(0.0), 0.0)),
        500.0,
        &p,
    );
    assert_eq!(t.role, TabRole::Leader);
}

#[test]
fn dedupe_each_event_id_is_logged_once() {
    let p = policy();
    let mut t = follower("B", 0.5);
    let mut ids = Vec::new();
    for (at, id) in [
        (1.0, Some("s1-4")),
        (2.0, Some("s1-5")),
        (3.0, None), // pings have no id: always logged
        (4.0, Some("s1-5")),
        (5.0, None),
        (6.0, Some("s1-6")),
    ] {
        ids.extend(logged_ids(&t.step(msg(event_msg("L", 1, id)), at, &p)));
    }
    let want: Vec<Option<String>> = vec![
        Some("s1-4".into()),
        Some("s1-5".into()),
        None,
        None,
        Some("s1-6".into()),
    ];
    assert_eq!(ids, want);
    // The same memory applies once this tab leads and the server replays.
    t.step(TabsInput::LockGranted, 10.0, &p);
    let replay = |t: &mut Tabs, id: &str| {
        t.step(
            TabsInput::StreamEvent(LoggedEvent {
                name: "demo".into(),
                id: Some(id.into()),
                data: "{}".into(),
                time: String::new(),
            }),
            11.0,
            &p,
        )
    };
    assert!(replay(&mut t, "s1-6").is_empty());
    let cmds = replay(&mut t, "s1-7");
    assert!(matches!(
        &cmds[0],
        TabsCommand::Post(Msg::Event { term: 2, .. })
    ));
    assert_eq!(logged_ids(&cmds), vec![Some("s1-7".to_string())]);
}

#[test]
fn dedupe_does_not_apply_to_connected_whose_id_is_a_resume_point() {
    let p = policy();
    let mut t = leader("A");
    let ev = |name: &str| {
        TabsInput::StreamEvent(LoggedEvent {
            name: name.into(),
            id: Some("s1-5".into()),
            data: "{}".into(),
            time: String::new(),
        })
    };
    assert_eq!(logged_ids(&t.step(ev("demo"), 1.0, &p)).len(), 1);
    assert_eq!(logged_ids(&t.step(ev("connected"), 2.0, &p)).len(), 1);
}

#[test]
fn all_hidden_pause_only_when_every_sharing_tab_is_hidden() {
    let p = policy();
    let mut t = leader("A");
    let presence = |from: &str, hidden: bool| {
        msg(Msg::Presence {
            from: from.into(),
            hidden,
        })
    };
    t.step(presence("B", false), 20.0, &p);
    // The leader's tab hides: B is still visible, so nothing changes for the stream.
    let cmds = t.step(TabsInput::Visibility { hidden: true }, 30.0, &p);
    assert!(cmds.contains(&TabsCommand::Machine(Input::TabVisibility { hidden: true })));
    assert!(!cmds
        .iter()
        .any(|c| matches!(c, TabsCommand::Machine(Input::Audience { .. }))));
    // B hides too: now every tab is hidden and the machine's grace period starts.
    let cmds = t.step(presence("B", true), 40.0, &p);
    assert_eq!(
        cmds,
        vec![TabsCommand::Machine(Input::Audience { hidden: true })]
    );
    // B comes back: the stream must run again.
    let cmds = t.step(presence("B", false), 50.0, &p);
    assert_eq!(
        cmds,
        vec![TabsCommand::Machine(Input::Audience { hidden: false })]
    );
    // B leaves while A is hidden: every remaining tab is hidden.
    let cmds = t.step(
        msg(Msg::Leave {
            from: "B".into(),
            heir: None,
        }),
        60.0,
        &p,
    );
    assert_eq!(
        cmds,
        vec![TabsCommand::Machine(Input::Audience { hidden: true })]
    );
}

#[test]
fn count_of_sharing_tabs_joins_leaves_and_silent_tabs() {
    let p = policy();
    let mut t = leader("A");
    assert_eq!(t.count(), 1);
    let cmds = t.step(
        msg(Msg::Join {
            from: "B".into(),
            hidden: false,
        }),
        100.0,
        &p,
    );
    assert_eq!(
        cmds,
        vec![TabsCommand::PostState],
        "a newcomer hears the state at once"
    );
    t.step(
        msg(Msg::Presence {
            from: "C".into(),
            hidden: false,
        }),
        200.0,
        &p,
    );
    t.step(
        msg(Msg::Presence {
            from: "C".into(),
            hidden: false,
        }),
        300.0,
        &p,
    );
    assert_eq!(t.count(), 3);
    t.step(
        msg(Msg::Leave {
            from: "B".into(),
            heir: None,
        }),
        400.0,
        &p,
    );
    assert_eq!(t.count(), 2);
    // C goes silent (closed without a word, or frozen): it stops counting after the timeout.
    t.step(TabsInput::Tick, 300.0 + p.share_peer_timeout_ms - 1.0, &p);
    assert_eq!(t.count(), 2);
    t.step(TabsInput::Tick, 300.0 + p.share_peer_timeout_ms, &p);
    assert_eq!(t.count(), 1);
    // Its own messages never count.
    t.step(
        msg(Msg::Presence {
            from: "A".into(),
            hidden: false,
        }),
        9_000.0,
        &p,
    );
    assert_eq!(t.count(), 1);
}

#[test]
fn beacons_leader_posts_state_and_followers_presence_every_interval() {
    let p = policy();
    let mut l = leader("A");
    assert!(!l
        .step(TabsInput::Tick, 500.0, &p)
        .contains(&TabsCommand::PostState));
    assert!(l
        .step(TabsInput::Tick, 1_010.0, &p)
        .contains(&TabsCommand::PostState));
    let mut f = started("B", 0.5);
    assert!(f.step(TabsInput::Tick, 900.0, &p).is_empty());
    let cmds = f.step(TabsInput::Tick, 1_000.0, &p);
    assert_eq!(
        cmds,
        vec![TabsCommand::Post(Msg::Presence {
            from: "B".into(),
            hidden: false
        })]
    );
}

#[test]
fn retry_now_in_a_follower_asks_the_leader_and_steals_from_a_quiet_one() {
    let p = policy();
    let mut f = follower("B", 0.5);
    let cmds = f.step(TabsInput::RetryNow, 600.0, &p);
    assert_eq!(
        cmds,
        vec![TabsCommand::Post(Msg::RetryNow { from: "B".into() })]
    );
    let cmds = f.step(TabsInput::RetryNow, 2_100.0, &p);
    assert!(cmds.contains(&TabsCommand::StealLock), "{cmds:?}");
    // The leader acts on the shared stream.
    let mut l = leader("A");
    let cmds = l.step(msg(Msg::RetryNow { from: "B".into() }), 50.0, &p);
    assert_eq!(cmds, vec![TabsCommand::Machine(Input::RetryNow)]);
}

#[test]
fn offline_comes_from_the_tabs_own_navigator() {
    let p = policy();
    let mut f = follower("B", 0.5);
    match &f.step(TabsInput::Online(false), 200.0, &p)[..] {
        [TabsCommand::Show(s)] => {
            assert_eq!(
                (s.phase, s.cause, s.since),
                (Phase::Offline, Cause::Offline, 200.0)
            )
        }
        other => panic!("{other:?}"),
    }
    // The leader's next word does not reset how long this tab has been offline.
    match &f.step(
        msg(state_msg("L", 1, 2, &connected_state(0.0), 0.0)),
        900.0,
        &p,
    )[..]
    {
        [TabsCommand::Show(s), ..] => assert_eq!((s.phase, s.since), (Phase::Offline, 200.0)),
        other => panic!("{other:?}"),
    }
    match &f.step(TabsInput::Online(true), 300.0, &p)[..] {
        [TabsCommand::Show(s)] => assert_eq!(s.phase, Phase::Connected),
        other => panic!("{other:?}"),
    }
    let mut l = leader("A");
    assert_eq!(
        l.step(TabsInput::Online(false), 20.0, &p),
        vec![TabsCommand::Machine(Input::Offline)]
    );
}

// --- The machine's side of sharing ---

fn env(now: f64) -> Env {
    Env {
        now,
        wall: now,
        rand: 0.5,
    }
}

fn adopt(s: &State, now: f64, online: bool, audience_hidden: bool) -> (State, Vec<Command>) {
    step(
        s,
        &Input::Adopt {
            online,
            tab_hidden: false,
            audience_hidden,
        },
        env(now),
        &policy(),
    )
}

#[test]
fn adopt_table() {
    let open = vec![Command::Open {
        last_event_id: Some("s1-3".into()),
    }];
    let with = |phase: Phase, retry_at: Option<f64>| State {
        phase,
        retry_at,
        ..connected_state(0.0)
    };
    // (state announced by the old leader, online, every tab hidden) -> (phase, cause, commands)
    let cases: Vec<(State, bool, bool, Phase, Cause, Vec<Command>)> = vec![
        (
            with(Phase::Connected, None),
            true,
            false,
            Phase::Connecting,
            Cause::Handover,
            open.clone(),
        ),
        (
            with(Phase::Reconnecting, Some(5_000.0)),
            true,
            false,
            Phase::Reconnecting,
            Cause::None,
            vec![],
        ),
        (
            with(Phase::Reconnecting, None),
            true,
            false,
            Phase::Reconnecting,
            Cause::None,
            open.clone(),
        ),
        (
            with(Phase::Stale, None),
            true,
            false,
            Phase::Stale,
            Cause::None,
            open.clone(),
        ),
        (
            with(Phase::Failed, None),
            true,
            false,
            Phase::Failed,
            Cause::None,
            vec![],
        ),
        (
            with(Phase::Paused, None),
            true,
            true,
            Phase::Paused,
            Cause::None,
            vec![],
        ),
        (
            with(Phase::Paused, None),
            true,
            false,
            Phase::Reconnecting,
            Cause::Hidden,
            open.clone(),
        ),
        (
            with(Phase::Connected, None),
            false,
            false,
            Phase::Offline,
            Cause::Offline,
            vec![],
        ),
        (
            with(Phase::Offline, None),
            true,
            false,
            Phase::Reconnecting,
            Cause::Offline,
            open.clone(),
        ),
    ];
    for (s, online, hidden, phase, cause, cmds) in cases {
        let from = s.phase;
        let (next, got) = adopt(&s, 1_000.0, online, hidden);
        assert_eq!((next.phase, next.cause), (phase, cause), "from {from:?}");
        assert_eq!(got, cmds, "from {from:?}");
        assert!(!next.probing);
    }
}

#[test]
fn hand_over_is_not_counted_as_a_reconnect_and_the_banner_stays_connected() {
    let p = policy();
    let (s, _) = adopt(&connected_state(0.0), 1_000.0, true, false);
    assert_eq!(
        super::display::banner_phase(Phase::Connected, &s, 1_200.0, &p),
        Phase::Connected,
        "a quick hand-over never reaches the banner"
    );
    let (s, _) = step(
        &s,
        &Input::Hello {
            hello: hello(1000),
            id: Some("s1-3".into()),
        },
        env(1_150.0),
        &p,
    );
    assert_eq!(s.phase, Phase::Connected);
    assert_eq!(s.reconnects, 0);
}

#[test]
fn audience_hidden_past_grace_pauses_while_the_tab_itself_may_be_visible() {
    let p = policy();
    let s = connected_state(0.0);
    let (s, _) = step(&s, &Input::Audience { hidden: true }, env(1_000.0), &p);
    assert!(!s.tab_hidden);
    let (s, cmds) = step(&s, &Input::Tick, env(1_000.0 + p.hidden_grace_ms), &p);
    assert_eq!(s.phase, Phase::Paused);
    assert_eq!(cmds, vec![Command::Close]);
    let (s, cmds) = step(&s, &Input::Audience { hidden: false }, env(400_000.0), &p);
    assert_eq!(s.phase, Phase::Reconnecting);
    assert!(matches!(cmds[..], [Command::Open { .. }]));
}

#[test]
fn clock_jump_rule_follows_the_tabs_own_visibility() {
    let p = policy();
    let mut s = connected_state(0.0);
    s.last_tick = Some((0.0, 0.0));
    s.last_event_at = Some(19_900.0);
    // This tab hidden (its timers throttled), other tabs visible: a long timer gap is no jump.
    let (s, _) = step(&s, &Input::TabVisibility { hidden: true }, env(10.0), &p);
    assert!(s.hidden_since.is_none(), "the audience is not hidden");
    let (hidden, cmds) = step(&s, &Input::Tick, env(20_000.0), &p);
    assert!(cmds.is_empty(), "{cmds:?}");
    assert_eq!(hidden.phase, Phase::Connected);
}

// --- Electing over the channel alone (no Web Locks), visibility, pagehide ---

/// A started tab that elects over the channel (no Web Locks).
fn channel_started(me: &str, patience: f64, hidden: bool) -> Tabs {
    let mut t = Tabs::new(me.into(), patience, Election::Channel);
    t.step(
        TabsInput::Start {
            online: true,
            hidden,
        },
        0.0,
        &policy(),
    );
    t
}

/// A channel tab following leader "L" (term 1), last heard at t=100.
fn channel_follower(me: &str, patience: f64) -> Tabs {
    let mut t = channel_started(me, patience, false);
    t.step(
        msg(state_msg("L", 1, 2, &connected_state(0.0), 0.0)),
        100.0,
        &policy(),
    );
    t
}

/// A channel tab that led after nobody answered (term 1), at t=300.
fn channel_leader(me: &str) -> Tabs {
    let mut t = channel_started(me, 0.5, false);
    t.step(TabsInput::Tick, 300.0, &policy());
    assert_eq!(t.role, TabRole::Leader);
    t
}

fn leads(cmds: &[TabsCommand]) -> bool {
    cmds.iter().any(|c| matches!(c, TabsCommand::Lead { .. }))
}

fn hidden_state_msg(from: &str, term: u64, hidden: bool) -> Msg {
    Msg::State {
        from: from.into(),
        term,
        hidden,
        tabs: 3,
        state: Box::new(Snapshot::of(&connected_state(0.0), 0.0)),
    }
}

#[test]
fn channel_start_joins_without_a_lock_and_leads_when_nobody_answers() {
    let p = policy();
    let mut t = Tabs::new("A".into(), 0.5, Election::Channel);
    let cmds = t.step(
        TabsInput::Start {
            online: true,
            hidden: false,
        },
        0.0,
        &p,
    );
    assert_eq!(
        cmds,
        vec![TabsCommand::Post(Msg::Join {
            from: "A".into(),
            hidden: false
        })]
    );
    assert!(!leads(&t.step(
        TabsInput::Tick,
        p.share_join_wait_ms - 1.0,
        &p
    )));
    let cmds = t.step(TabsInput::Tick, p.share_join_wait_ms, &p);
    assert!(leads(&cmds), "{cmds:?}");
    assert_eq!((t.role, t.term), (TabRole::Leader, 1));
    assert!(cmds.contains(&TabsCommand::PostState));
}

#[test]
fn channel_newcomer_follows_the_leader_that_answers_its_hello() {
    let p = policy();
    let mut t = channel_started("B", 0.5, false);
    t.step(
        msg(state_msg("L", 4, 2, &connected_state(0.0), 0.0)),
        30.0,
        &p,
    );
    assert_eq!(t.leader.as_deref(), Some("L"));
    for at in [300.0, 1_000.0, 2_000.0] {
        assert!(!leads(&t.step(TabsInput::Tick, at, &p)), "{at}");
    }
    assert_eq!((t.role, t.term), (TabRole::Follower, 4));
    // The leader answers a hello with its state at once.
    let mut l = channel_leader("A");
    let cmds = l.step(
        msg(Msg::Join {
            from: "C".into(),
            hidden: false,
        }),
        400.0,
        &p,
    );
    assert_eq!(cmds, vec![TabsCommand::PostState]);
}

#[test]
fn channel_lease_lapsed_a_follower_leads_with_the_next_term_and_the_last_state() {
    // Heartbeat 1 s: deadline 3 s; patience 0 takes over at 3/4 of it after the last word (t=100).
    let p = policy();
    let mut t = channel_follower("B", 0.0);
    assert!(!leads(&t.step(TabsInput::Tick, 2_349.0, &p)));
    let cmds = t.step(TabsInput::Tick, 2_350.0, &p);
    assert_eq!((t.role, t.term), (TabRole::Leader, 2));
    match &cmds[..] {
        [TabsCommand::Lead {
            state: Some(state),
            input: Input::Adopt { .. },
        }, TabsCommand::PostState] => {
            assert_eq!(state.last_event_id.as_deref(), Some("s1-3"))
        }
        other => panic!("{other:?}"),
    }
}

#[test]
fn channel_hidden_follower_waits_a_beacon_longer_than_a_visible_one() {
    let p = policy();
    let mut visible = channel_follower("B", 0.0);
    let mut hidden = channel_follower("C", 0.0);
    hidden.step(TabsInput::Visibility { hidden: true }, 150.0, &p);
    assert_eq!(
        hidden.steal_at(&p),
        visible.steal_at(&p) + p.share_beacon_ms
    );
    assert!(leads(&visible.step(TabsInput::Tick, 2_350.0, &p)));
    assert!(!leads(&hidden.step(TabsInput::Tick, 2_350.0, &p)));
    assert!(leads(&hidden.step(TabsInput::Tick, 3_350.0, &p)));
}

#[test]
fn channel_rivals_of_one_term_the_outranked_leader_steps_down_the_other_answers() {
    let p = policy();
    // Same term 1, both visible: the higher id wins.
    let mut a = channel_leader("A");
    let cmds = a.step(msg(hidden_state_msg("B", 1, false)), 400.0, &p);
    assert_eq!(a.role, TabRole::Follower);
    assert!(matches!(
        &cmds[..],
        [TabsCommand::StepDown, TabsCommand::Show(_), ..]
    ));
    assert_eq!(a.leader.as_deref(), Some("B"));
    let mut b = channel_leader("B");
    let cmds = b.step(msg(hidden_state_msg("A", 1, false)), 400.0, &p);
    assert_eq!(b.role, TabRole::Leader);
    assert_eq!(cmds, vec![TabsCommand::PostState], "answers at once");
    // Visible before hidden, whatever the ids.
    let mut z = channel_leader("Z");
    z.step(TabsInput::Visibility { hidden: true }, 350.0, &p);
    z.step(msg(hidden_state_msg("A", 1, false)), 400.0, &p);
    assert_eq!(z.role, TabRole::Follower);
    let mut a = channel_leader("A");
    a.step(msg(hidden_state_msg("Z", 1, true)), 400.0, &p);
    assert_eq!(a.role, TabRole::Leader);
    // With Web Locks the lock decides, not the rank.
    let mut l = leader("A");
    l.step(msg(hidden_state_msg("B", 1, false)), 400.0, &p);
    assert_eq!(l.role, TabRole::Leader);
}

#[test]
fn channel_leader_hearing_a_stale_leader_answers_and_a_later_term_deposes_it() {
    let p = policy();
    let mut a = channel_leader("A");
    a.step(msg(hidden_state_msg("N", 3, false)), 350.0, &p);
    assert_eq!((a.role, a.term), (TabRole::Follower, 3));
    // N leads term 3; a newcomer that heard nobody in time leads term 1: N answers at once.
    let cmds = a.step(TabsInput::Tick, 360.0, &p);
    assert!(!leads(&cmds));
    let mut n = channel_follower("N", 0.5);
    n.step(TabsInput::Tick, 2_900.0, &p); // takes over: term 2
    assert_eq!((n.role, n.term), (TabRole::Leader, 2));
    let cmds = n.step(msg(hidden_state_msg("Late", 1, false)), 3_000.0, &p);
    assert_eq!(cmds, vec![TabsCommand::PostState]);
    assert_eq!(n.role, TabRole::Leader);
}

#[test]
fn leave_a_leader_names_its_heir_visible_first_then_the_higher_id() {
    let p = policy();
    let mut l = channel_leader("M");
    for (id, hidden) in [("A", false), ("Z", true), ("C", false)] {
        l.step(
            msg(Msg::Presence {
                from: id.into(),
                hidden,
            }),
            400.0,
            &p,
        );
    }
    assert_eq!(l.heir().as_deref(), Some("C"));
    let cmds = l.step(TabsInput::Leave, 500.0, &p);
    assert_eq!(
        cmds,
        vec![
            TabsCommand::Post(Msg::Leave {
                from: "M".into(),
                heir: Some("C".into())
            }),
            TabsCommand::StepDown,
        ],
        "pagehide gives the stream up at once"
    );
    // Followers and lock holders name none (with locks, the lock's queue decides).
    let mut f = channel_follower("B", 0.5);
    assert_eq!(f.heir(), None);
    let mut k = leader("K");
    k.step(
        msg(Msg::Presence {
            from: "A".into(),
            hidden: false,
        }),
        20.0,
        &p,
    );
    assert_eq!(
        k.step(TabsInput::Leave, 30.0, &p),
        vec![
            TabsCommand::Post(Msg::Leave {
                from: "K".into(),
                heir: None
            }),
            TabsCommand::StepDown,
            TabsCommand::CancelLock,
        ]
    );
    assert_eq!(f.step(TabsInput::Leave, 40.0, &p).len(), 1);
}

#[test]
fn leave_of_the_leader_its_heir_leads_at_once_the_others_give_it_a_lease() {
    let p = policy();
    let leave = |heir: Option<&str>| {
        msg(Msg::Leave {
            from: "L".into(),
            heir: heir.map(Into::into),
        })
    };
    let mut heir = channel_follower("B", 0.99);
    let cmds = heir.step(leave(Some("B")), 500.0, &p);
    assert!(leads(&cmds));
    assert_eq!((heir.role, heir.term), (TabRole::Leader, 2));
    let mut other = channel_follower("C", 0.0);
    assert!(!leads(&other.step(leave(Some("B")), 500.0, &p)));
    assert_eq!(
        other.leader_heard_at, 500.0,
        "the lease restarts for the heir"
    );
    // No heir named: the best ranked follower this tab knows takes over.
    let mut best = channel_follower("Y", 0.5);
    best.step(
        msg(Msg::Presence {
            from: "X".into(),
            hidden: false,
        }),
        200.0,
        &p,
    );
    assert!(leads(&best.step(leave(None), 500.0, &p)));
    let mut x = channel_follower("X", 0.5);
    x.step(
        msg(Msg::Presence {
            from: "Y".into(),
            hidden: false,
        }),
        200.0,
        &p,
    );
    assert!(!leads(&x.step(leave(None), 500.0, &p)));
    // A follower leaving changes nothing but the count.
    let mut f = channel_follower("B", 0.5);
    let cmds = f.step(
        msg(Msg::Leave {
            from: "Q".into(),
            heir: None,
        }),
        500.0,
        &p,
    );
    assert!(cmds.is_empty());
}

#[test]
fn pagehide_the_tab_takes_part_in_nothing_until_pageshow_brings_it_back() {
    let p = policy();
    let mut t = channel_follower("B", 0.0);
    t.step(TabsInput::Leave, 200.0, &p);
    assert!(t.left);
    for input in [
        TabsInput::Tick,
        msg(hidden_state_msg("L", 1, false)),
        msg(Msg::Leave {
            from: "L".into(),
            heir: Some("B".into()),
        }),
        TabsInput::Visibility { hidden: false },
    ] {
        assert!(t.step(input, 9_000.0, &p).is_empty());
    }
    // Back from the back/forward cache: a hello, then the usual wait for the leader.
    let cmds = t.step(TabsInput::Return { hidden: false }, 10_000.0, &p);
    assert_eq!(
        cmds,
        vec![TabsCommand::Post(Msg::Join {
            from: "B".into(),
            hidden: false
        })]
    );
    assert!(!t.left);
    assert!(leads(&t.step(
        TabsInput::Tick,
        10_000.0 + p.share_join_wait_ms,
        &p
    )));
    // With locks: queued again; a grant racing the departure is let go at once.
    let mut k = follower("K", 0.5);
    k.step(TabsInput::Leave, 200.0, &p);
    assert_eq!(
        k.step(TabsInput::LockGranted, 210.0, &p),
        vec![TabsCommand::StepDown]
    );
    assert_eq!(k.role, TabRole::Follower);
    assert!(k
        .step(TabsInput::Return { hidden: false }, 300.0, &p)
        .contains(&TabsCommand::RequestLock));
}

#[test]
fn hidden_leader_a_visible_follower_takes_over_after_the_hysteresis() {
    let p = policy();
    let h = p.share_visible_ms;
    // Channel: leads at once (a later term, so the hidden leader steps down on its first word).
    let mut t = channel_follower("B", 0.5);
    t.step(msg(hidden_state_msg("L", 1, true)), 1_000.0, &p);
    assert!(!leads(&t.step(TabsInput::Tick, 1_000.0 + h - 1.0, &p)));
    let cmds = t.step(TabsInput::Tick, 1_000.0 + h, &p);
    assert!(leads(&cmds), "{cmds:?}");
    assert_eq!(t.term, 2);
    // Locks: steals the lock.
    let mut k = follower("K", 0.5);
    k.step(msg(hidden_state_msg("L", 1, true)), 1_000.0, &p);
    assert!(k
        .step(TabsInput::Tick, 1_000.0 + h, &p)
        .contains(&TabsCommand::StealLock));
    // Not before the leader says it is visible again, nor while this tab is hidden.
    let mut t = channel_follower("B", 0.5);
    t.step(msg(hidden_state_msg("L", 1, true)), 1_000.0, &p);
    t.step(msg(hidden_state_msg("L", 1, false)), 1_200.0, &p);
    assert!(!leads(&t.step(TabsInput::Tick, 1_000.0 + 2.0 * h, &p)));
    let mut t = channel_follower("B", 0.5);
    t.step(TabsInput::Visibility { hidden: true }, 500.0, &p);
    t.step(msg(hidden_state_msg("L", 1, true)), 1_000.0, &p);
    assert!(!leads(&t.step(TabsInput::Tick, 1_000.0 + 2.0 * h, &p)));
}

#[test]
fn hidden_leader_quick_switches_move_nothing_and_the_best_visible_follower_goes_first() {
    let p = policy();
    let h = p.share_visible_ms;
    // This tab was hidden and shows for less than the hysteresis: it does not take over from a
    // leader hidden for long.
    let mut t = channel_follower("B", 0.5);
    t.step(TabsInput::Visibility { hidden: true }, 200.0, &p);
    // The hidden leader keeps talking (its state, every beacon).
    let beacon = |t: &mut Tabs, at: f64| t.step(msg(hidden_state_msg("L", 1, true)), at, &p);
    beacon(&mut t, 300.0);
    beacon(&mut t, 4_900.0);
    assert!(!leads(&t.step(
        TabsInput::Visibility { hidden: false },
        5_000.0,
        &p
    )));
    assert!(!leads(&t.step(TabsInput::Tick, 5_000.0 + h - 1.0, &p)));
    t.step(
        TabsInput::Visibility { hidden: true },
        5_000.0 + h - 1.0,
        &p,
    );
    beacon(&mut t, 5_600.0);
    assert!(!leads(&t.step(TabsInput::Tick, 5_000.0 + 2.0 * h, &p)));
    assert_eq!(t.role, TabRole::Follower);
    // Shown for the hysteresis: now it does.
    t.step(TabsInput::Visibility { hidden: false }, 6_000.0, &p);
    assert!(!leads(&t.step(TabsInput::Tick, 6_000.0 + h - 1.0, &p)));
    assert!(leads(&t.step(TabsInput::Tick, 6_000.0 + h, &p)));
    // Two visible followers: the higher id takes over; the other does not.
    let mut b = channel_follower("B", 0.5);
    let mut c = channel_follower("C", 0.5);
    for (t, other) in [(&mut b, "C"), (&mut c, "B")] {
        t.step(
            msg(Msg::Presence {
                from: other.into(),
                hidden: false,
            }),
            900.0,
            &p,
        );
        t.step(msg(hidden_state_msg("L", 1, true)), 1_000.0, &p);
    }
    assert!(!leads(&b.step(TabsInput::Tick, 1_000.0 + h, &p)));
    assert!(leads(&c.step(TabsInput::Tick, 1_000.0 + h, &p)));
}

#[test]
fn back_in_view_the_leader_rechecks_its_stream_a_follower_its_leader() {
    let p = policy();
    let mut l = channel_leader("A");
    l.step(TabsInput::Visibility { hidden: true }, 400.0, &p);
    let cmds = l.step(TabsInput::Visibility { hidden: false }, 60_000.0, &p);
    assert!(cmds.contains(&TabsCommand::Recheck), "{cmds:?}");
    assert!(!l
        .step(TabsInput::Visibility { hidden: true }, 60_100.0, &p)
        .contains(&TabsCommand::Recheck));
    // A follower back in view takes over a leader silent for two beacons, not a talking one.
    let mut f = channel_follower("B", 0.99);
    f.step(TabsInput::Visibility { hidden: true }, 150.0, &p);
    let cmds = f.step(
        TabsInput::Visibility { hidden: false },
        100.0 + 2.0 * p.share_beacon_ms,
        &p,
    );
    assert!(leads(&cmds), "{cmds:?}");
    let mut f = channel_follower("B", 0.99);
    f.step(TabsInput::Visibility { hidden: true }, 150.0, &p);
    let cmds = f.step(TabsInput::Visibility { hidden: false }, 1_000.0, &p);
    assert!(!leads(&cmds));
}

#[test]
fn take_over_resumes_from_the_last_event_the_tab_saw() {
    let p = policy();
    let mut t = channel_follower("B", 0.5);
    t.step(msg(event_msg("L", 1, Some("s1-7"))), 200.0, &p);
    t.step(msg(event_msg("L", 1, None)), 300.0, &p); // a ping: no id
    let cmds = t.step(
        msg(Msg::Leave {
            from: "L".into(),
            heir: Some("B".into()),
        }),
        400.0,
        &p,
    );
    match &cmds[0] {
        TabsCommand::Lead {
            state: Some(state), ..
        } => assert_eq!(state.last_event_id.as_deref(), Some("s1-7")),
        other => panic!("{other:?}"),
    }
}

#[test]
fn recheck_table() {
    let p = policy();
    // Heartbeat 1 s, slack 1 s: connected and silent for 2 s is a dead stream (the watchdog would
    // wait 3 s).
    let mut s = connected_state(0.0);
    s.last_event_at = Some(1_000.0);
    let reopen = vec![
        Command::Close,
        Command::Open {
            last_event_id: Some("s1-3".into()),
        },
    ];
    // (state, now, stream closed) -> (phase, commands)
    let cases: Vec<(State, f64, bool, Phase, Vec<Command>)> = vec![
        (s.clone(), 2_999.0, false, Phase::Connected, vec![]),
        (s.clone(), 3_000.0, false, Phase::Stale, reopen.clone()),
        (s.clone(), 1_500.0, true, Phase::Stale, reopen.clone()),
        (
            State {
                phase: Phase::Reconnecting,
                retry_at: Some(9_000.0),
                ..s.clone()
            },
            5_000.0,
            true,
            Phase::Reconnecting,
            vec![],
        ),
        (
            State {
                phase: Phase::Paused,
                ..s.clone()
            },
            50_000.0,
            true,
            Phase::Paused,
            vec![],
        ),
    ];
    for (state, now, stream_closed, phase, want) in cases {
        let from = state.phase;
        let (next, cmds) = step(&state, &Input::Recheck { stream_closed }, env(now), &p);
        assert_eq!(next.phase, phase, "from {from:?} at {now}");
        assert_eq!(cmds, want, "from {from:?} at {now}");
    }
}

#[test]
fn next_due_the_join_wait_and_the_hysteresis_end_nothing_for_a_leader() {
    let p = policy();
    let t = channel_started("B", 0.5, false);
    assert_eq!(t.next_due(&p), Some(p.share_join_wait_ms));
    let mut f = channel_follower("B", 0.5);
    assert_eq!(f.next_due(&p), None, "a talking, visible leader");
    f.step(msg(hidden_state_msg("L", 1, true)), 1_000.0, &p);
    assert_eq!(f.next_due(&p), Some(1_000.0 + p.share_visible_ms));
    f.step(TabsInput::Tick, 1_000.0 + p.share_visible_ms, &p);
    assert_eq!(f.role, TabRole::Leader);
    assert_eq!(f.next_due(&p), None);
    assert_eq!(
        follower("K", 0.5).next_due(&p),
        None,
        "with locks: the queue"
    );
}

// --- A page that switches streams moves to another group of tabs ---

#[test]
fn group_key_one_group_per_url_topic_set_and_event_names() {
    use super::target::Target;
    let key = |url: &str, topics: &[&str], names: &[&str]| {
        let topics: Vec<String> = topics.iter().map(|t| t.to_string()).collect();
        let names: Vec<String> = names.iter().map(|n| n.to_string()).collect();
        group_key(&Target::new(url, &topics).stream_url(), &names)
    };
    let a = key("/events", &["users/alice", "public"], &["demo"]);
    assert_eq!(
        a,
        key("/events", &["public", "users/alice"], &["demo"]),
        "a set"
    );
    assert_ne!(a, key("/events", &["public"], &["demo"]), "another set");
    assert_ne!(
        a,
        key("/live/events", &["users/alice", "public"], &["demo"])
    );
    assert_ne!(a, key("/events", &["users/alice", "public"], &["chat"]));
}

#[test]
fn regroup_with_locks_the_old_group_gets_a_new_leader_and_the_tab_follows_the_new_ones() {
    let p = policy();
    // Group A: this tab leads (after a few take-overs: term 3); B waits in the lock's queue.
    let mut me = leader("M");
    me.term = 3;
    let mut b = follower("B", 0.5);
    // The page switches topics: this tab leaves A as on pagehide …
    let (cmds, mut next) = me.regroup(false, 500.0, &p);
    assert!(
        cmds.contains(&TabsCommand::StepDown),
        "its stream closes, its lock goes"
    );
    assert!(cmds.contains(&TabsCommand::CancelLock));
    assert!(cmds
        .iter()
        .any(|c| matches!(c, TabsCommand::Post(Msg::Leave { from, .. }) if from == "M")));
    // … so the browser grants A's lock to the next tab in its queue, which leads A.
    let cmds = b.step(TabsInput::LockGranted, 510.0, &p);
    assert!(matches!(cmds[0], TabsCommand::Lead { .. }));
    assert_eq!(b.role, TabRole::Leader);
    // In group B it starts afresh: queued for B's lock, following B's leader, whose terms
    // start over (term 1 < the 3 it had in A, yet not "a deposed leader speaking late").
    assert_eq!(next.me, "M");
    let cmds = next.step(
        TabsInput::Start {
            online: true,
            hidden: false,
        },
        520.0,
        &p,
    );
    assert!(cmds.contains(&TabsCommand::RequestLock));
    let cmds = next.step(
        msg(state_msg("K", 1, 3, &connected_state(0.0), 0.0)),
        530.0,
        &p,
    );
    assert!(matches!(cmds[0], TabsCommand::Show(_)), "{cmds:?}");
    assert_eq!(
        (next.role, next.leader.as_deref()),
        (TabRole::Follower, Some("K"))
    );
    // Nobody leads B: the browser grants its lock at once, and the tab leads B.
    let mut alone = leader("N").regroup(false, 500.0, &p).1;
    alone.step(
        TabsInput::Start {
            online: true,
            hidden: false,
        },
        520.0,
        &p,
    );
    assert!(leads(&alone.step(TabsInput::LockGranted, 521.0, &p)));
}

#[test]
fn regroup_over_the_channel_the_heir_leads_the_old_group_at_once() {
    let p = policy();
    let mut me = channel_leader("M");
    me.step(
        msg(Msg::Presence {
            from: "B".into(),
            hidden: false,
        }),
        400.0,
        &p,
    );
    let (cmds, mut next) = me.regroup(false, 500.0, &p);
    let heir = cmds.iter().find_map(|c| match c {
        TabsCommand::Post(Msg::Leave { heir, .. }) => Some(heir.clone()),
        _ => None,
    });
    assert_eq!(heir, Some(Some("B".into())));
    // The heir hears it (from "M", its leader) and leads group A.
    let mut b = channel_started("B", 0.5, false);
    b.step(
        msg(state_msg("M", 1, 2, &connected_state(0.0), 0.0)),
        450.0,
        &p,
    );
    assert!(leads(&b.step(
        msg(Msg::Leave {
            from: "M".into(),
            heir: Some("B".into()),
        }),
        510.0,
        &p,
    )));
    // In group B the tab says hello; with no answer within the join wait it leads B.
    next.step(
        TabsInput::Start {
            online: true,
            hidden: false,
        },
        520.0,
        &p,
    );
    assert!(leads(&next.step(
        TabsInput::Tick,
        520.0 + p.share_join_wait_ms,
        &p
    )));
}

#[test]
fn regroup_keeps_the_logged_ids_on_the_same_url_only() {
    let p = policy();
    let relayed =
        |t: &mut Tabs, now| logged_ids(&t.step(msg(event_msg("K", 1, Some("s1-9"))), now, &p));
    let mut me = follower("M", 0.5);
    me.step(msg(event_msg("L", 1, Some("s1-9"))), 200.0, &p);
    // The same broadcast, relayed by the new group's leader too: listed once.
    let mut next = me.regroup(false, 300.0, &p).1;
    assert!(relayed(&mut next, 310.0).is_empty());
    // Another URL's server: an equal id is another event.
    let mut me = follower("M", 0.5);
    me.step(msg(event_msg("L", 1, Some("s1-9"))), 200.0, &p);
    let mut next = me.regroup(true, 300.0, &p).1;
    assert_eq!(relayed(&mut next, 310.0), [Some("s1-9".to_owned())]);
}
