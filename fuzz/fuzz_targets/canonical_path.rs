//! The canonical path every path rule and handler sees: it must be a fixed
//! point (the property whose failure let a request around a certificate rule).
#![no_main]

use tessera_guard::CanonicalPath;

libfuzzer_sys::fuzz_target!(|data: &[u8]| {
    let Ok(raw) = std::str::from_utf8(data) else {
        return;
    };
    if let Ok(path) = CanonicalPath::parse(raw) {
        let again = CanonicalPath::parse(path.as_str()).expect("a canonical path parses");
        assert_eq!(again.as_str(), path.as_str(), "canonicalisation is a fixed point");
    }
});
