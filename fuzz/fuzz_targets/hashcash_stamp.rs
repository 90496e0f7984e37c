//! A Hashcash v1 stamp as a client presents it.
#![no_main]

libfuzzer_sys::fuzz_target!(|data: &[u8]| {
    let Ok(stamp) = std::str::from_utf8(data) else {
        return;
    };
    let policy = tessera_pow::hashcash::HashcashPolicy::new(8, "fuzz@example.org");
    let now = time::OffsetDateTime::from_unix_timestamp(1_700_000_000).expect("a valid time");
    let _ = tessera_pow::hashcash::verify(stamp, &policy, now);
});
