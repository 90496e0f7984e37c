//! `tessera guard check` and `tessera guard bench` as operators and scripts use them.

use crate::common::tessera;

#[test]
fn check_prints_the_decision_and_exits_by_it() {
    let dir = tempfile::tempdir().unwrap();
    let config = dir.path().join("guard.toml");
    std::fs::write(
        &config,
        r#"
[guard.acl]
deny = ["203.0.113.0/24"]

[[guard.cert_rules]]
prefix = "/private/"
require_cert = true
"#,
    )
    .unwrap();
    let config = config.to_str().unwrap();
    let allowed = tessera(&[
        "guard",
        "check",
        "--config",
        config,
        "--ip",
        "192.0.2.1",
        "--path",
        "/public/",
    ]);
    assert!(allowed.status.success());
    assert!(String::from_utf8_lossy(&allowed.stdout).contains("allow"));
    let denied = tessera(&[
        "guard",
        "check",
        "--config",
        config,
        "--ip",
        "::ffff:203.0.113.9",
    ]);
    assert_eq!(denied.status.code(), Some(1));
    assert!(
        String::from_utf8_lossy(&denied.stdout).contains("deny: access_denied (53 Access denied)")
    );
    let no_cert = tessera(&[
        "guard",
        "check",
        "--config",
        config,
        "--ip",
        "192.0.2.1",
        "--path",
        "/public/../private/x",
    ]);
    assert!(String::from_utf8_lossy(&no_cert.stdout).contains("60 Client certificate required"));
    let as_json = tessera(&[
        "guard",
        "check",
        "--json",
        "--config",
        config,
        "--ip",
        "192.0.2.1",
        "--path",
        "/public/../private/x",
    ]);
    assert_eq!(as_json.status.code(), Some(1));
    let decision: serde_json::Value = serde_json::from_slice(&as_json.stdout).unwrap();
    assert_eq!(
        (
            &decision["allowed"],
            &decision["gemini_status"],
            &decision["path"]
        ),
        (
            &serde_json::json!(false),
            &serde_json::json!(60),
            &serde_json::json!("/private/x")
        )
    );
    // A log level that is none: a usage error, not a filter that logs nothing.
    let bogus_level = tessera(&[
        "--log-level",
        "nope",
        "guard",
        "check",
        "--config",
        config,
        "--ip",
        "192.0.2.1",
    ]);
    assert_eq!(bogus_level.status.code(), Some(2));
    let python_level = tessera(&[
        "--log-level",
        "WARNING",
        "guard",
        "check",
        "--config",
        config,
        "--ip",
        "192.0.2.1",
    ]);
    assert!(python_level.status.success());
    // Not an address: a usage error (2), not a check of "no address".
    let not_an_ip = tessera(&["guard", "check", "--config", config, "--ip", "notanip"]);
    assert_eq!(not_an_ip.status.code(), Some(2));
    assert!(String::from_utf8_lossy(&not_an_ip.stderr).contains("is not an IP address"));
    let bad = dir.path().join("bad.toml");
    std::fs::write(&bad, "[guard.acl]\nallow = [\"192.168.1.100/24\"]\n").unwrap();
    let error = tessera(&[
        "guard",
        "check",
        "--config",
        bad.to_str().unwrap(),
        "--ip",
        "192.0.2.1",
    ]);
    assert!(!error.status.success());
    assert!(String::from_utf8_lossy(&error.stderr).contains("host bits set"));
}

#[test]
fn bench_prints_the_keys_scripts_rely_on() {
    let output = tessera(&[
        "guard",
        "bench",
        "--seconds",
        "0.02",
        "--clients",
        "2000",
        "--json",
    ]);
    assert!(
        output.status.success(),
        "{}",
        String::from_utf8_lossy(&output.stderr)
    );
    let value: serde_json::Value = serde_json::from_slice(&output.stdout).unwrap();
    for key in [
        "limiter_warm_per_s",
        "limiter_new_key_per_s",
        "acl_100_per_s",
        "acl_1000_per_s",
        "acl_100000_per_s",
        "chain_per_s",
        "rss_growth_mib_1m_clients",
        "tracked_clients_after_1m",
    ] {
        assert!(value[key].is_number(), "{key} missing in {value}");
    }
}
