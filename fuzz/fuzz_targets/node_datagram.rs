//! A UDP datagram from anyone on the LAN, into a node core.
#![no_main]

libfuzzer_sys::fuzz_target!(|data: &[u8]| {
    tessera_wire::node::fuzzing::handle_datagram(data);
});
