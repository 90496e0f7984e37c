//! Every row of `tests/data/vectors.json` (the shared guard vectors), the `tessera` side.

use std::path::Path;

use serde_json::Value;
use tessera_guard::{
    parse_client, Acl, AclDefault, CanonicalPath, CertFingerprint, CertRuleConfig, CertRules,
    ClientIds, Denial, DenialReason, Limiter, LimiterConfig, PeerCert,
};
use time::{Duration, OffsetDateTime};

fn vectors() -> Value {
    let path = Path::new(env!("CARGO_MANIFEST_DIR")).join("tests/data/vectors.json");
    serde_json::from_str(
        &std::fs::read_to_string(&path).unwrap_or_else(|e| panic!("{}: {e}", path.display())),
    )
    .unwrap()
}

fn strings(value: &Value) -> Vec<String> {
    value
        .as_array()
        .map(|a| a.iter().map(|v| v.as_str().unwrap().to_owned()).collect())
        .unwrap_or_default()
}

/// The status lines themselves are Gemini's and are checked in tessera-gemini;
/// here, that every denial reason has the name the vectors use.
#[test]
fn denial_reason_names() {
    let v = vectors();
    let status = &v["gemini_status"];
    for (name, reason) in [
        ("rate_limited", DenialReason::RateLimited),
        ("access_denied", DenialReason::AccessDenied),
        ("cert_required", DenialReason::CertRequired),
        ("cert_not_authorized", DenialReason::CertNotAuthorized),
        ("cert_not_valid", DenialReason::CertNotValid),
    ] {
        assert_eq!(reason.name(), name);
        assert!(status[name]["tessera"].is_string(), "{name}");
    }
}

#[test]
fn acl_rows() {
    let v = vectors();
    let rows = v["acl"].as_array().unwrap();
    assert!(!rows.is_empty());
    for row in rows {
        let allow = strings(&row["allow"]);
        let deny = strings(&row["deny"]);
        let default = if row["default_allow"].as_bool().unwrap() {
            AclDefault::Allow
        } else {
            AclDefault::Deny
        };
        let expected = &row["tessera"];
        let acl = Acl::new(&allow, &deny, default);
        if let Some(error) = expected["config_error"].as_str() {
            let message = acl.unwrap_err().to_string();
            assert!(
                message.contains(error),
                "{}: {message} vs {error}",
                row["case"]
            );
            continue;
        }
        let acl = acl.unwrap();
        let address = parse_client(row["ip"].as_str().unwrap());
        let allowed = acl.allows(address);
        assert_eq!(
            allowed,
            expected["allowed"].as_bool().unwrap(),
            "{} {}",
            row["case"],
            row["ip"]
        );
        if !allowed {
            assert_eq!(expected["reason"], "access_denied");
        }
    }
}

#[test]
fn certificate_rule_rows() {
    let v = vectors();
    let now = OffsetDateTime::now_utc();
    let rulesets = &v["cert_auth"]["rulesets"];
    let cases = v["cert_auth"]["cases"].as_array().unwrap();
    assert!(!cases.is_empty());
    for case in cases {
        let rules: Vec<CertRuleConfig> =
            serde_json::from_value(rulesets[case["rules"].as_str().unwrap()].clone()).unwrap();
        let rules = CertRules::new(rules.iter().map(|r| r.to_rule().unwrap()).collect()).unwrap();
        let path = CanonicalPath::parse(case["path"].as_str().unwrap()).unwrap();
        let expected = &case["tessera"];
        assert_eq!(
            path.as_str(),
            expected["normalised_path"].as_str().unwrap(),
            "{}",
            case["path"]
        );
        let valid = case["cert_valid"].as_bool().unwrap_or(true);
        let cert = case["fingerprint"].as_str().map(|text| PeerCert {
            fingerprint: text.parse::<CertFingerprint>().unwrap(),
            not_before: now - Duration::days(if valid { 1 } else { 30 }),
            not_after: now + Duration::days(if valid { 1 } else { -10 }),
        });
        let result = rules.check(&path, cert.as_ref(), now);
        match expected["reason"].as_str() {
            None => assert!(
                result.is_ok(),
                "{} {:?}: {result:?}",
                case["rules"],
                case["path"]
            ),
            Some(reason) => assert_eq!(
                result.unwrap_err().reason.name(),
                reason,
                "{} {:?}",
                case["rules"],
                case["path"]
            ),
        }
    }
}

#[test]
fn rate_limit_rows() {
    let v = vectors();
    let rows = v["rate_limit"].as_array().unwrap();
    assert!(!rows.is_empty());
    for row in rows {
        let limiter = Limiter::new(&LimiterConfig {
            rate: row["rate_per_s"].as_f64().unwrap(),
            burst: row["burst"].as_u64().unwrap() as u32,
            ..LimiterConfig::default()
        })
        .unwrap();
        for event in row["events"].as_array().unwrap() {
            let at = (event["t"].as_f64().unwrap() * 1e9).round() as u64 + 1_000_000_000_000;
            let address = parse_client(event["ip"].as_str().unwrap()).unwrap();
            let expected = &event["tessera"];
            assert_eq!(
                limiter.key(address).to_string(),
                expected["key"].as_str().unwrap()
            );
            let result = limiter.check(address, at);
            assert_eq!(
                result.is_ok(),
                expected["allowed"].as_bool().unwrap(),
                "{} t={} {}",
                row["case"],
                event["t"],
                event["ip"]
            );
            if let Err(wait) = result {
                let denial = Denial {
                    reason: DenialReason::RateLimited,
                    retry_after: Some(wait),
                };
                assert_eq!(
                    denial.retry_after_secs(),
                    expected["retry_after"].as_u64().unwrap(),
                    "{} t={}",
                    row["case"],
                    event["t"]
                );
            }
        }
    }
}

#[test]
fn client_id_rows() {
    let v = vectors();
    let key_hex = v["client_id"]["tessera_key_hex"].as_str().unwrap();
    let mut key = [0u8; 32];
    hex::decode_to_slice(key_hex, &mut key).unwrap();
    let ids = ClientIds::new(key, false);
    let rows = v["client_id"]["rows"].as_array().unwrap();
    assert!(!rows.is_empty());
    for row in rows {
        let address = parse_client(row["ip"].as_str().unwrap()).unwrap();
        assert_eq!(
            ids.id(address, OffsetDateTime::now_utc()),
            row["tessera_client_id"].as_str().unwrap(),
            "{}",
            row["ip"]
        );
    }
}
