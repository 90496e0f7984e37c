//! A stream of tessera-wire frames: every length is checked before buffering.
#![no_main]

use bytes::BytesMut;
use tessera_wire::{Frame, Limits};

libfuzzer_sys::fuzz_target!(|data: &[u8]| {
    let limits = Limits {
        max_frame: 64 * 1024,
        ..Limits::default()
    };
    let mut buffer = BytesMut::from(data);
    while let Ok(Some(frame)) = Frame::decode(&mut buffer, &limits) {
        // A decoded frame encodes again within the same limits.
        let mut out = BytesMut::new();
        frame.encode(&limits, &mut out).expect("a decoded frame encodes");
    }
});
