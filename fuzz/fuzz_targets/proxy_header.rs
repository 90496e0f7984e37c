//! A PROXY v1/v2 header from a trusted relay.
#![no_main]

use tessera_guard::{parse_proxy_header, ProxyHeader, MAX_PROXY_HEADER};

libfuzzer_sys::fuzz_target!(|data: &[u8]| {
    if let Ok(ProxyHeader::Complete { length, .. }) = parse_proxy_header(data) {
        assert!(length <= data.len().min(MAX_PROXY_HEADER), "a header lies within its input");
    }
});
