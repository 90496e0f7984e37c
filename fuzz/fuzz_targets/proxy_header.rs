//! A PROXY v1/v2 header from a trusted relay: a header lies within its
//! input, reads the same alone, and every prefix of it is incomplete (bytes
//! still to come never turn a valid header into a refused one).
#![no_main]

use tessera_guard::{parse_proxy_details, parse_proxy_header, ProxyHeader, MAX_PROXY_HEADER};

libfuzzer_sys::fuzz_target!(|data: &[u8]| {
    let _ = parse_proxy_details(data, 4096);
    if let Ok(header @ ProxyHeader::Complete { length, .. }) = parse_proxy_header(data) {
        assert!(length <= data.len().min(MAX_PROXY_HEADER), "a header lies within its input");
        assert!(
            matches!(parse_proxy_header(&data[..length]), Ok(alone) if alone == header),
            "the header alone is the same header"
        );
        for cut in 0..length {
            assert!(
                matches!(parse_proxy_header(&data[..cut]), Ok(ProxyHeader::Incomplete)),
                "a prefix of {length} bytes cut at {cut} is incomplete"
            );
        }
    }
});
