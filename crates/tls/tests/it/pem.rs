//! PEM loading: every error names the file and the problem.

use std::fs;

use tessera_tls::{
    load_certificates, load_private_key, load_roots, DevPki, Error, Identity, PkiOptions,
};

use crate::util::dated_certificate;

#[test]
fn dev_pki_files_load_back_as_identities() {
    let dir = tempfile::tempdir().unwrap();
    DevPki::generate(&PkiOptions::default())
        .unwrap()
        .write(dir.path(), false)
        .unwrap();
    Identity::load(
        &dir.path().join("server-cert.pem"),
        &dir.path().join("server-key.pem"),
    )
    .unwrap();
    Identity::load(
        &dir.path().join("client_cert.pem"),
        &dir.path().join("ec_private_key.pem"),
    )
    .unwrap();
    assert_eq!(
        load_roots(&dir.path().join("ca_cert.pem")).unwrap().len(),
        1
    );
}

#[test]
fn errors_name_the_file_and_the_problem() {
    let dir = tempfile::tempdir().unwrap();
    DevPki::generate(&PkiOptions::default())
        .unwrap()
        .write(dir.path(), false)
        .unwrap();
    let cert = dir.path().join("server-cert.pem");
    let key = dir.path().join("server-key.pem");

    let missing = dir.path().join("missing.pem");
    let error = load_certificates(&missing).unwrap_err();
    assert!(matches!(error, Error::Io { .. }));
    assert!(error.to_string().contains("missing.pem"), "{error}");

    let garbage = dir.path().join("garbage.pem");
    fs::write(&garbage, b"\x30\x82\x01\x00 not pem").unwrap();
    let error = load_certificates(&garbage).unwrap_err();
    assert!(matches!(error, Error::InvalidPem { .. }), "{error}");
    assert!(error.to_string().contains("garbage.pem"));

    // A key where a certificate belongs, and the other way round.
    let error = load_certificates(&key).unwrap_err();
    assert!(
        matches!(&error, Error::MissingPemItem { expected: "CERTIFICATE", found, .. } if found == &["PRIVATE KEY"]),
        "{error}"
    );
    let error = load_private_key(&cert).unwrap_err();
    assert!(
        matches!(
            &error,
            Error::MissingPemItem {
                expected: "PRIVATE KEY",
                ..
            }
        ),
        "{error}"
    );
    assert!(
        error.to_string().contains("server-cert.pem")
            && error.to_string().contains("found: CERTIFICATE"),
        "{error}"
    );

    // A key that belongs to another certificate.
    let error = Identity::load(&cert, &dir.path().join("ec_private_key.pem")).unwrap_err();
    assert!(matches!(error, Error::KeyMismatch { .. }), "{error}");
    assert!(
        error.to_string().contains("ec_private_key.pem")
            && error.to_string().contains("server-cert.pem")
    );

    // An encrypted key gets a hint rather than "no key found".
    let encrypted = dir.path().join("encrypted.pem");
    fs::write(
        &encrypted,
        "-----BEGIN ENCRYPTED PRIVATE KEY-----\nAAAA\n-----END ENCRYPTED PRIVATE KEY-----\n",
    )
    .unwrap();
    assert!(matches!(
        load_private_key(&encrypted),
        Err(Error::EncryptedKey { .. })
    ));

    // Truncated PEM.
    let truncated = dir.path().join("truncated.pem");
    let text = fs::read_to_string(&cert).unwrap();
    fs::write(&truncated, &text[..text.len() / 2]).unwrap();
    assert!(matches!(
        load_certificates(&truncated),
        Err(Error::InvalidPem { .. })
    ));
}

#[test]
fn expired_and_future_certificates_are_refused_with_dates() {
    let dir = tempfile::tempdir().unwrap();
    let (cert, key, _) = dated_certificate(dir.path(), "expired", -30, -1);
    let error = Identity::load(&cert, &key).unwrap_err();
    assert!(
        matches!(
            &error,
            Error::CertificateNotValidNow {
                state: "expired",
                ..
            }
        ),
        "{error}"
    );
    assert!(error.to_string().contains("expired-cert.pem"));

    let (cert, key, _) = dated_certificate(dir.path(), "future", 2, 30);
    let error = Identity::load(&cert, &key).unwrap_err();
    assert!(
        matches!(
            &error,
            Error::CertificateNotValidNow {
                state: "not yet valid",
                ..
            }
        ),
        "{error}"
    );
}
