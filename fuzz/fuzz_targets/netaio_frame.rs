//! A stream of netaio 0.0.9 frames (the compat server's decoder).
#![no_main]

use bytes::BytesMut;
use tessera_wire::netaio::NetaioCodec;
use tokio_util::codec::Decoder;

libfuzzer_sys::fuzz_target!(|data: &[u8]| {
    let mut codec = NetaioCodec::new(4096);
    let mut buffer = BytesMut::from(data);
    while let Ok(Some(_)) = codec.decode(&mut buffer) {}
});
