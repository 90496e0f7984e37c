//! A guard configuration file (TOML): parse, then build the chain and relays.
#![no_main]

libfuzzer_sys::fuzz_target!(|data: &[u8]| {
    let Ok(text) = std::str::from_utf8(data) else {
        return;
    };
    if let Ok(config) = tessera_guard::GuardConfig::from_toml(text) {
        let _ = config.build();
        let _ = config.relays();
    }
});
