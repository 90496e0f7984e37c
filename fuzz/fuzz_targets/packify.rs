//! netaio's packify values (the bodies of its frames).
#![no_main]

libfuzzer_sys::fuzz_target!(|data: &[u8]| {
    if let Ok(value) = tessera_wire::netaio::Value::decode(data) {
        // What decodes, encodes and decodes to the same value.
        let again = tessera_wire::netaio::Value::decode(&value.encode()).expect("re-decodes");
        assert_eq!(again, value);
    }
});
