//! A Gemini request line, as a client sends it after the handshake.
#![no_main]

libfuzzer_sys::fuzz_target!(|data: &[u8]| {
    if let Ok(request) = tessera_gemini::parse_request(data) {
        // What a parsed request reports must itself be printable.
        let _ = format!("{request:?}");
    }
});
