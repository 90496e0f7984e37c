//! tlslp lines from a peer, through the line codec into both session state
//! machines (server and client).
#![no_main]

use std::sync::Arc;
use std::time::{Duration, Instant};

use tessera_tlslp::codec::{decode, Decoded};
use tessera_tlslp::{ClientSession, Profile, Sequence, ServerSession, SessionConfig};

libfuzzer_sys::fuzz_target!(|data: &[u8]| {
    let config = Arc::new(SessionConfig {
        token: "token".into(),
        random_string: "LGTk".into(),
        n_bits: 1,
        sequence: Sequence::Tutorial,
        timeouts: tessera_tlslp::Timeouts::default(),
    });
    let now = Instant::now();
    let mut server = ServerSession::new(config, 7, now);
    let mut client = ClientSession::new(Arc::new(Profile::default()), Duration::from_secs(10), now);
    let mut rest = data;
    loop {
        match decode(rest) {
            Ok(Decoded::Line(line, used)) => {
                server.handle_line(&line, now);
                while server.poll_transmit().is_some() {}
                while server.poll_event().is_some() {}
                client.handle_line(&line, now);
                while client.poll_transmit().is_some() {}
                while client.poll_event().is_some() {}
                if client.poll_work().is_some() {
                    client.handle_solution("x", now);
                }
                rest = &rest[used..];
            }
            Ok(Decoded::Incomplete) | Err(_) => break,
        }
    }
});
