//! Sessions driven in memory: a server session against a client session, and
//! byte literals for every FAIL path.

use std::sync::Arc;
use std::time::{Duration, Instant};

use proptest::prelude::*;

use super::*;
use crate::client::{ClientOutcome, ClientSession};
use crate::profile::Profile;

const TOKEN: &str = "gkcjcibIFynKssuJnJpSrgvawiVjLjEbdFuYQzuWROTeTaSmqFCAzuwkwLCRgIIq";

fn config(sequence: Sequence, n_bits: i64) -> Arc<SessionConfig> {
    Arc::new(SessionConfig {
        token: TOKEN.to_owned(),
        random_string: "LGTk".to_owned(),
        n_bits,
        sequence,
        timeouts: Timeouts::default(),
    })
}

/// A session's start; tests step time from here.
fn t0() -> Instant {
    Instant::now()
}

fn new_server(sequence: Sequence, n_bits: i64, seed: u64) -> ServerSession {
    ServerSession::new(config(sequence, n_bits), seed, t0())
}

fn new_client(now: Instant) -> ClientSession {
    ClientSession::new(Arc::new(Profile::default()), Duration::from_secs(10), now)
}

/// Runs a server and a client session against each other, one second a
/// line; returns the lines each sent.
fn converse(
    server: &mut ServerSession,
    client: &mut ClientSession,
    start: Instant,
) -> (Vec<String>, Vec<String>) {
    let (mut sent, mut replies) = (Vec::new(), Vec::new());
    let mut now = start;
    while let Some(line) = server.poll_transmit() {
        now += Duration::from_secs(1);
        sent.push(line.clone());
        client.handle_line(&line, now);
        if let Some(puzzle) = client.poll_work() {
            let solution = puzzle
                .solve(&tessera_pow::SearchOptions::default())
                .unwrap();
            now += Duration::from_secs(1);
            client.handle_solution(&solution.suffix, now);
        }
        if line.starts_with("FAIL") {
            assert!(matches!(
                client.outcome(),
                Some(ClientOutcome::ServerFail(_))
            ));
            assert_eq!(client.poll_transmit(), None);
            break;
        }
        if let Some(ClientOutcome::Failed(error)) = client.outcome() {
            panic!("client failed: {error}");
        }
        let reply = client
            .poll_transmit()
            .expect("a reply to every server line");
        replies.push(reply.clone());
        server.handle_line(&reply, now);
    }
    (sent, replies)
}

#[test]
fn tutorial_session_runs_every_body_command_in_order() {
    let start = t0();
    let mut server = ServerSession::new(config(Sequence::Tutorial, 12), 0, start);
    let mut client = new_client(start);
    let (sent, replies) = converse(&mut server, &mut client, start);
    assert_eq!(server.outcome(), Some(&Outcome::Done));
    assert!(matches!(client.outcome(), Some(ClientOutcome::Done)));
    // WORK went out after the HELLO reply (second 1); the suffix came at second 3.
    assert_eq!(server.work_time(), Some(Duration::from_secs(2)));
    let commands: Vec<&str> = sent.iter().map(|l| l.split(' ').next().unwrap()).collect();
    assert_eq!(
        commands,
        [
            "HELLO",
            "WORK",
            "FULL_NAME",
            "EMAIL1",
            "EMAIL2",
            "SOCIAL",
            "BIRTHDATE",
            "COUNTRY",
            "ADDR_LINE1",
            "ADDR_LINE2",
            "DONE"
        ]
    );
    assert_eq!(sent[1], format!("WORK {TOKEN} 12"));
    assert_eq!(sent[2], "FULL_NAME LGTk");
    assert_eq!(replies[0], "HELLOBACK");
    assert_eq!(
        replies[2],
        "28295607f05351eb24707046f3fa046e8a7afdabb32e6f0fba3de596cbf7c27b Sample Person"
    );
    assert_eq!(replies.last().unwrap(), "OK");
    assert_eq!(server.values().len(), 8);
    let infos: Vec<String> = std::iter::from_fn(|| server.poll_event())
        .filter(|e| e.level == Level::Info)
        .map(|e| e.message)
        .collect();
    assert_eq!(infos[0], "Step: handshake");
    assert_eq!(infos[1], "Step: 'full_name'");
    assert_eq!(infos[2], "Received 'Sample Person'");
    assert_eq!(infos[infos.len() - 2], "Step: done");
    assert_eq!(infos[infos.len() - 1], "Received 'OK'");
}

#[test]
fn random_sessions_make_at_most_twenty_picks_and_end_in_done_or_fail() {
    let mut done = 0;
    let mut failed = 0;
    for seed in 0..200 {
        let start = t0();
        let mut server = ServerSession::new(config(Sequence::Random, 0), seed, start);
        let mut client = new_client(start);
        let (sent, _) = converse(&mut server, &mut client, start);
        let bodies = sent
            .iter()
            .filter(|l| !["HELLO", "WORK", "DONE", "FAIL"].contains(&l.split(' ').next().unwrap()))
            .count();
        assert!(bodies <= PICKS);
        match server.outcome().unwrap() {
            Outcome::Done => {
                done += 1;
                assert_eq!(bodies, PICKS);
            }
            Outcome::Fail(FailReason::Random) => {
                failed += 1;
                assert_eq!(sent.last().unwrap(), "FAIL LGTk");
            }
            other => panic!("{other:?}"),
        }
    }
    // (8/9)^20 ≈ 9.5 % reach DONE; with 200 seeded sessions both outcomes occur.
    assert!(done > 0 && failed > done);
}

#[test]
fn wrong_suffix_and_checksum_get_their_fail_lines() {
    let mut server = new_server(Sequence::Tutorial, 20, 0);
    assert_eq!(server.poll_transmit().unwrap(), "HELLO");
    server.handle_line("anything at all", t0());
    assert_eq!(server.poll_transmit().unwrap(), format!("WORK {TOKEN} 20"));
    server.handle_line("urRb", t0());
    assert_eq!(
        server.poll_transmit().unwrap(),
        "FAIL Invalid suffix returned from client."
    );
    assert_eq!(
        server.outcome(),
        Some(&Outcome::Fail(FailReason::InvalidSuffix))
    );
    assert_eq!(server.awaiting(), None);

    let mut server = new_server(Sequence::Tutorial, 20, 0);
    server.handle_line("HELLOBACK\r", t0());
    server.handle_line("urRa", t0()); // 20 trailing zero bits (spec §4.3 example)
    let _ = std::iter::from_fn(|| server.poll_transmit()).count();
    server.handle_line(&format!("{} x", "0".repeat(64)), t0());
    assert_eq!(
        server.poll_transmit().unwrap(),
        "FAIL Invalid checksum received."
    );
    // Upper-case hex and a tab are rejected too.
    for reply in [
        "28295607F05351EB24707046F3FA046E8A7AFDABB32E6F0FBA3DE596CBF7C27B x",
        "28295607f05351eb24707046f3fa046e8a7afdabb32e6f0fba3de596cbf7c27b\tx",
    ] {
        let mut server = new_server(Sequence::Tutorial, 0, 0);
        server.handle_line("HELLOBACK", t0());
        server.handle_line("", t0());
        let _ = std::iter::from_fn(|| server.poll_transmit()).count();
        server.handle_line(reply, t0());
        assert_eq!(
            server.outcome(),
            Some(&Outcome::Fail(FailReason::InvalidChecksum)),
            "{reply}"
        );
    }
}

#[test]
fn framing_errors_fail_with_receiving() {
    let mut server = new_server(Sequence::Tutorial, 0, 0);
    let _ = server.poll_transmit();
    server.handle_framing_error(&Error::LineTooLong);
    assert_eq!(server.poll_transmit().unwrap(), "FAIL receiving.");
    assert_eq!(
        server.outcome(),
        Some(&Outcome::Fail(FailReason::Receiving))
    );
}

#[test]
fn each_reply_is_due_by_its_own_deadline() {
    let start = t0();
    let mut server = ServerSession::new(config(Sequence::Tutorial, 0), 0, start);
    assert_eq!(server.poll_timeout(), Some(start + Duration::from_secs(10)));
    // Early wake-ups change nothing.
    server.handle_timeout(start + Duration::from_secs(9));
    assert_eq!(server.outcome(), None);
    let replied = start + Duration::from_secs(5);
    server.handle_line("HELLOBACK", replied);
    // WORK gets the long timeout, counted from when it was queued.
    assert_eq!(
        server.poll_timeout(),
        Some(replied + Duration::from_secs(1800))
    );
    server.handle_timeout(replied + Duration::from_secs(1799));
    assert_eq!(server.outcome(), None);
    server.handle_timeout(replied + Duration::from_secs(1800));
    assert_eq!(server.outcome(), Some(&Outcome::TimedOut(Awaiting::Work)));
    assert_eq!(server.poll_timeout(), None);
    // A late line after the timeout is ignored.
    server.handle_line("", replied + Duration::from_secs(1801));
    assert_eq!(
        std::iter::from_fn(|| server.poll_transmit()).collect::<Vec<_>>(),
        ["HELLO", &format!("WORK {TOKEN} 0")]
    );
}

#[test]
fn the_client_waits_for_the_server_but_not_while_it_solves() {
    let start = t0();
    let mut client = new_client(start);
    assert_eq!(client.poll_timeout(), Some(start + Duration::from_secs(10)));
    client.handle_line("HELLO", start + Duration::from_secs(1));
    assert_eq!(client.poll_transmit().as_deref(), Some("HELLOBACK"));
    assert_eq!(client.poll_timeout(), Some(start + Duration::from_secs(11)));
    client.handle_line(&format!("WORK {TOKEN} 0"), start + Duration::from_secs(2));
    assert!(client.poll_work().is_some());
    assert!(client.poll_work().is_none(), "a puzzle is handed out once");
    assert_eq!(client.poll_timeout(), None);
    client.handle_timeout(start + Duration::from_secs(100));
    assert!(client.outcome().is_none());
    client.handle_solution("x", start + Duration::from_secs(100));
    assert_eq!(client.poll_transmit().as_deref(), Some("x"));
    client.handle_timeout(start + Duration::from_secs(110));
    assert!(matches!(
        client.outcome(),
        Some(ClientOutcome::Failed(Error::Timeout(_)))
    ));
}

#[test]
fn the_client_refuses_a_body_command_before_work() {
    let start = t0();
    let mut client = new_client(start);
    client.handle_line("FULL_NAME LGTk", start);
    assert!(matches!(
        client.outcome(),
        Some(ClientOutcome::Failed(Error::UnexpectedLine(_)))
    ));
    assert_eq!(client.poll_transmit(), None);
}

#[test]
fn the_work_rule_of_the_spec() {
    let digest = tessera_pow::digest(TOKEN, "TlVR_");
    assert!(suffix_passes(&digest, 28));
    assert!(!suffix_passes(&digest, 29));
    assert!(suffix_passes(&digest, -5));
    assert!(suffix_passes(&tessera_pow::digest(TOKEN, "urRb"), 0));
    assert!(!suffix_passes(&[0u8; 32], 257));
    assert!(suffix_passes(&[0u8; 32], 256));
}

proptest! {
    #[test]
    fn arbitrary_replies_never_panic_and_always_end_defined(lines in proptest::collection::vec(".{0,120}", 0..30)) {
        let mut server = new_server(Sequence::Random, 4, 7);
        for line in &lines {
            server.handle_line(line, t0());
            while server.poll_transmit().is_some() {}
        }
        // Either still waiting for a reply, or ended with an outcome.
        prop_assert!(server.awaiting().is_some() || server.outcome().is_some());
    }

    #[test]
    fn arbitrary_server_lines_never_panic_the_client(lines in proptest::collection::vec(".{0,120}", 0..30)) {
        let start = t0();
        let mut client = new_client(start);
        for line in &lines {
            client.handle_line(line, start);
            while client.poll_transmit().is_some() {}
            if let Some(puzzle) = client.poll_work() {
                prop_assert!(puzzle.bits() < 64);
                client.handle_solution("x", start);
            }
        }
        // Either still reading, or ended with an outcome.
        prop_assert!(client.poll_timeout().is_some() || client.outcome().is_some());
    }
}
