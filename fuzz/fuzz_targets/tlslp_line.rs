//! tlslp lines from a peer, through the line codec into both session state
//! machines (server and client).
#![no_main]

use std::sync::Arc;

use tessera_tlslp::codec::{decode, Decoded};
use tessera_tlslp::{ClientSession, Profile, Sequence, ServerSession, SessionConfig};

libfuzzer_sys::fuzz_target!(|data: &[u8]| {
    let config = Arc::new(SessionConfig {
        token: "token".into(),
        random_string: "LGTk".into(),
        n_bits: 1,
        sequence: Sequence::Tutorial,
    });
    let mut server = ServerSession::new(config, 7);
    let mut client = ClientSession::new(Arc::new(Profile::default()));
    let mut rest = data;
    loop {
        match decode(rest) {
            Ok(Decoded::Line(line, used)) => {
                server.handle_line(&line);
                while server.poll_transmit().is_some() {}
                while server.poll_event().is_some() {}
                let _ = client.handle_line(&line);
                rest = &rest[used..];
            }
            Ok(Decoded::Incomplete) | Err(_) => break,
        }
    }
});
