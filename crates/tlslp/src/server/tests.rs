//! Sessions driven in memory: a server session against a client session, and
//! byte literals for every FAIL path.

use std::sync::Arc;

use proptest::prelude::*;

use super::*;
use crate::client::{Action, ClientSession};
use crate::profile::Profile;

const TOKEN: &str = "gkcjcibIFynKssuJnJpSrgvawiVjLjEbdFuYQzuWROTeTaSmqFCAzuwkwLCRgIIq";

fn config(sequence: Sequence, n_bits: i64) -> Arc<SessionConfig> {
    Arc::new(SessionConfig {
        token: TOKEN.to_owned(),
        random_string: "LGTk".to_owned(),
        n_bits,
        sequence,
    })
}

/// Runs a server and a client session against each other; returns the lines each sent.
fn converse(server: &mut ServerSession, client: &mut ClientSession) -> (Vec<String>, Vec<String>) {
    let (mut sent, mut replies) = (Vec::new(), Vec::new());
    while let Some(line) = server.poll_transmit() {
        sent.push(line.clone());
        if server.outcome().is_some() && server.awaiting().is_none() && line.starts_with("FAIL") {
            assert!(matches!(
                client.handle_line(&line).unwrap(),
                Action::Failed(_)
            ));
            break;
        }
        let reply = match client.handle_line(&line).unwrap() {
            Action::Reply(reply) | Action::Finish(reply) => reply,
            Action::Solve(puzzle) => {
                let solution = puzzle
                    .solve(&tessera_pow::SearchOptions::default())
                    .unwrap();
                match client.handle_solution(&solution.suffix) {
                    Action::Reply(reply) => reply,
                    other => panic!("{other:?}"),
                }
            }
            Action::Failed(text) => panic!("client saw FAIL {text}"),
        };
        replies.push(reply.clone());
        server.handle_line(&reply);
    }
    (sent, replies)
}

#[test]
fn tutorial_session_runs_every_body_command_in_order() {
    let mut server = ServerSession::new(config(Sequence::Tutorial, 12), 0);
    let mut client = ClientSession::new(Arc::new(Profile::default()));
    let (sent, replies) = converse(&mut server, &mut client);
    assert_eq!(server.outcome(), Some(&Outcome::Done));
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
        let mut server = ServerSession::new(config(Sequence::Random, 0), seed);
        let mut client = ClientSession::new(Arc::new(Profile::default()));
        let (sent, _) = converse(&mut server, &mut client);
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
    let mut server = ServerSession::new(config(Sequence::Tutorial, 20), 0);
    assert_eq!(server.poll_transmit().unwrap(), "HELLO");
    server.handle_line("anything at all");
    assert_eq!(server.poll_transmit().unwrap(), format!("WORK {TOKEN} 20"));
    server.handle_line("urRb");
    assert_eq!(
        server.poll_transmit().unwrap(),
        "FAIL Invalid suffix returned from client."
    );
    assert_eq!(
        server.outcome(),
        Some(&Outcome::Fail(FailReason::InvalidSuffix))
    );
    assert_eq!(server.awaiting(), None);

    let mut server = ServerSession::new(config(Sequence::Tutorial, 20), 0);
    server.handle_line("HELLOBACK\r");
    server.handle_line("urRa"); // 20 trailing zero bits (spec §4.3 example)
    let _ = std::iter::from_fn(|| server.poll_transmit()).count();
    server.handle_line(&format!("{} x", "0".repeat(64)));
    assert_eq!(
        server.poll_transmit().unwrap(),
        "FAIL Invalid checksum received."
    );
    // Upper-case hex and a tab are rejected too.
    for reply in [
        "28295607F05351EB24707046F3FA046E8A7AFDABB32E6F0FBA3DE596CBF7C27B x",
        "28295607f05351eb24707046f3fa046e8a7afdabb32e6f0fba3de596cbf7c27b\tx",
    ] {
        let mut server = ServerSession::new(config(Sequence::Tutorial, 0), 0);
        server.handle_line("HELLOBACK");
        server.handle_line("");
        let _ = std::iter::from_fn(|| server.poll_transmit()).count();
        server.handle_line(reply);
        assert_eq!(
            server.outcome(),
            Some(&Outcome::Fail(FailReason::InvalidChecksum)),
            "{reply}"
        );
    }
}

#[test]
fn framing_errors_fail_with_receiving() {
    let mut server = ServerSession::new(config(Sequence::Tutorial, 0), 0);
    let _ = server.poll_transmit();
    server.handle_framing_error(&Error::LineTooLong);
    assert_eq!(server.poll_transmit().unwrap(), "FAIL receiving.");
    assert_eq!(
        server.outcome(),
        Some(&Outcome::Fail(FailReason::Receiving))
    );
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
        let mut server = ServerSession::new(config(Sequence::Random, 4), 7);
        for line in &lines {
            server.handle_line(line);
            while server.poll_transmit().is_some() {}
        }
        // Either still waiting for a reply, or ended with an outcome.
        prop_assert!(server.awaiting().is_some() || server.outcome().is_some());
    }

    #[test]
    fn arbitrary_server_lines_never_panic_the_client(lines in proptest::collection::vec(".{0,120}", 0..30)) {
        let mut client = ClientSession::new(Arc::new(Profile::default()));
        for line in &lines {
            let _ = client.handle_line(line);
        }
    }
}
