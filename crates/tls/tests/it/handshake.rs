//! Handshakes in every mode, over real TLS on loopback.

use tessera_tls::rustls::version::TLS12;
use tessera_tls::rustls::ClientConfig;
use tessera_tls::{
    client_config, dangerous, self_signed, server_config, ClientAuth, DevPki, Error, KeyType,
    PkiOptions, ServerAuth, SubjectAltName, Usage,
};

use crate::util::{client, next_seen, server};

fn pki(key_type: KeyType) -> DevPki {
    let mut options = PkiOptions::default();
    options
        .key_type(key_type)
        .server_names(["tessera.test".to_owned()]);
    DevPki::generate(&options).unwrap()
}

/// A server requiring client certificates from the PKI's CA.
async fn mtls_server(
    pki: &DevPki,
) -> (
    std::net::SocketAddr,
    tokio::sync::mpsc::Receiver<crate::util::Seen>,
) {
    let identity = pki.server.identity().unwrap();
    server(server_config(&identity, ClientAuth::Required(pki.roots().unwrap())).unwrap()).await
}

/// A client trusting the PKI's CA and presenting its client certificate.
fn mtls_client(pki: &DevPki) -> std::sync::Arc<ClientConfig> {
    client_config(
        ServerAuth::Roots(pki.roots().unwrap()),
        Some(&pki.client.identity().unwrap()),
    )
    .unwrap()
}

#[tokio::test]
async fn mutual_tls_succeeds_and_exposes_the_client_certificate() {
    for key_type in [KeyType::EcdsaP256, KeyType::Ed25519, KeyType::Rsa2048] {
        let pki = pki(key_type);
        let (address, mut seen) = mtls_server(&pki).await;
        let config = mtls_client(&pki);
        for host in ["localhost", "LOCALHOST", "127.0.0.1", "tessera.test"] {
            let (answer, summary) = client(address, config.clone(), host)
                .await
                .unwrap_or_else(|e| panic!("{key_type} {host}: {e}"));
            assert_eq!(answer, "ok\n");
            assert_eq!(summary.protocol, "TLSv1.3");
            let server_cert = summary.peer.unwrap();
            assert_eq!(
                server_cert.fingerprint(),
                tessera_tls::Fingerprint::of_der(pki.server.der())
            );
            assert!(server_cert
                .subject_alt_names()
                .contains(&SubjectAltName::Dns("tessera.test".into())));
            assert!(server_cert
                .subject_alt_names()
                .contains(&SubjectAltName::Ip("::1".parse().unwrap())));
            let peer = next_seen(&mut seen)
                .await
                .result
                .unwrap()
                .expect("client certificate");
            assert_eq!(peer.common_name(), Some("client"));
            assert_eq!(peer.version(), 3);
            assert_eq!(
                peer.fingerprint(),
                tessera_tls::Fingerprint::of_der(pki.client.der())
            );
        }
    }
}

#[tokio::test]
async fn client_without_a_certificate_is_rejected() {
    let pki = pki(KeyType::EcdsaP256);
    let (address, mut seen) = mtls_server(&pki).await;
    let config = client_config(ServerAuth::Roots(pki.roots().unwrap()), None).unwrap();
    assert!(client(address, config, "localhost").await.is_err());
    let report = next_seen(&mut seen).await;
    assert!(report.result.is_err(), "the server must fail the handshake");
    assert!(report.received.is_empty());
}

#[tokio::test]
async fn client_certificate_from_another_ca_is_rejected() {
    let pki = pki(KeyType::EcdsaP256);
    let other = other_pki();
    let (address, mut seen) = mtls_server(&pki).await;
    let config = client_config(
        ServerAuth::Roots(pki.roots().unwrap()),
        Some(&other.client.identity().unwrap()),
    )
    .unwrap();
    assert!(client(address, config, "localhost").await.is_err());
    assert!(next_seen(&mut seen).await.result.is_err());
}

/// A second, unrelated dev PKI (its own CA key and CA name).
fn other_pki() -> DevPki {
    DevPki::generate(&PkiOptions::default()).unwrap()
}

#[tokio::test]
async fn self_signed_client_certificate_is_rejected_in_mutual_tls() {
    let pki = pki(KeyType::EcdsaP256);
    let own = self_signed("client", &[], Usage::Client, KeyType::EcdsaP256, 30).unwrap();
    let (address, mut seen) = mtls_server(&pki).await;
    let config = client_config(
        ServerAuth::Roots(pki.roots().unwrap()),
        Some(&own.identity().unwrap()),
    )
    .unwrap();
    assert!(client(address, config, "localhost").await.is_err());
    assert!(next_seen(&mut seen).await.result.is_err());
}

#[tokio::test]
async fn server_certificate_for_another_name_is_rejected() {
    let pki = pki(KeyType::EcdsaP256);
    let (address, mut seen) = mtls_server(&pki).await;
    let config = mtls_client(&pki);
    let error = client(address, config, "vm").await.unwrap_err();
    assert!(error.to_string().contains("not valid for name"), "{error}");
    let report = next_seen(&mut seen).await;
    assert!(report.result.is_err());
    assert!(
        report.received.is_empty(),
        "no request byte may reach the server"
    );
}

#[tokio::test]
async fn server_from_an_unknown_ca_is_rejected() {
    let pki = pki(KeyType::EcdsaP256);
    let other = other_pki();
    let (address, _seen) =
        server(server_config(&other.server.identity().unwrap(), ClientAuth::None).unwrap()).await;
    let config = client_config(ServerAuth::Roots(pki.roots().unwrap()), None).unwrap();
    assert!(client(address, config, "localhost").await.is_err());
}

#[tokio::test]
async fn server_auth_only_accepts_clients_without_certificates() {
    let pki = pki(KeyType::EcdsaP256);
    let (address, mut seen) =
        server(server_config(&pki.server.identity().unwrap(), ClientAuth::None).unwrap()).await;
    let config = client_config(ServerAuth::Roots(pki.roots().unwrap()), None).unwrap();
    assert_eq!(
        client(address, config, "localhost").await.unwrap().0,
        "ok\n"
    );
    assert!(next_seen(&mut seen).await.result.unwrap().is_none());
}

#[tokio::test]
async fn any_client_certificate_mode_accepts_self_signed_and_exposes_its_fingerprint() {
    let pki = pki(KeyType::EcdsaP256);
    let own = self_signed("gemini-user", &[], Usage::Client, KeyType::Ed25519, 30).unwrap();
    let (address, mut seen) =
        server(server_config(&pki.server.identity().unwrap(), ClientAuth::AnyCertificate).unwrap())
            .await;

    let with_cert = client_config(
        ServerAuth::Roots(pki.roots().unwrap()),
        Some(&own.identity().unwrap()),
    )
    .unwrap();
    assert_eq!(
        client(address, with_cert, "localhost").await.unwrap().0,
        "ok\n"
    );
    let peer = next_seen(&mut seen)
        .await
        .result
        .unwrap()
        .expect("certificate");
    assert_eq!(
        peer.fingerprint(),
        tessera_tls::Fingerprint::of_der(own.der())
    );
    assert_eq!(peer.common_name(), Some("gemini-user"));

    // The certificate is optional in this mode.
    let without = client_config(ServerAuth::Roots(pki.roots().unwrap()), None).unwrap();
    assert_eq!(
        client(address, without, "localhost").await.unwrap().0,
        "ok\n"
    );
    assert!(next_seen(&mut seen).await.result.unwrap().is_none());
}

#[tokio::test]
async fn insecure_mode_is_refused_toward_non_loopback_hosts_before_connecting() {
    for host in [
        "example.org",
        "10.0.0.1",
        "192.168.1.1",
        "::2",
        "localhost.example.org",
    ] {
        assert!(
            matches!(
                dangerous::insecure_client_config(host, None),
                Err(Error::InsecureNotLoopback { .. })
            ),
            "{host}"
        );
    }
    let pki = pki(KeyType::EcdsaP256);
    let identity = pki.server.identity().unwrap();
    assert!(matches!(
        dangerous::insecure_server_config("0.0.0.0:1234".parse().unwrap(), &identity),
        Err(Error::InsecureNotLoopback { .. })
    ));

    // Toward loopback it works, even with a certificate from nobody's CA.
    let own = self_signed("whatever", &[], Usage::Server, KeyType::EcdsaP256, 30).unwrap();
    let server_cfg =
        dangerous::insecure_server_config("127.0.0.1:0".parse().unwrap(), &own.identity().unwrap())
            .unwrap();
    let (address, _seen) = server(server_cfg).await;
    for host in ["localhost", "127.0.0.1"] {
        let config = dangerous::insecure_client_config(host, None).unwrap();
        assert_eq!(client(address, config, host).await.unwrap().0, "ok\n");
    }
}

#[tokio::test]
async fn tls_1_2_clients_are_accepted() {
    let pki = pki(KeyType::EcdsaP256);
    let (address, mut seen) = mtls_server(&pki).await;
    let identity = pki.client.identity().unwrap();
    let config = ClientConfig::builder_with_provider(tessera_tls::provider())
        .with_protocol_versions(&[&TLS12])
        .unwrap()
        .with_root_certificates(pki.roots().unwrap())
        .with_client_auth_cert(identity.chain().to_vec(), identity.key())
        .unwrap();
    let (answer, summary) = client(address, std::sync::Arc::new(config), "localhost")
        .await
        .unwrap();
    assert_eq!(answer, "ok\n");
    assert_eq!(summary.protocol, "TLSv1.2");
    assert!(next_seen(&mut seen).await.result.unwrap().is_some());
}

/// Our servers choose the SHA-256 suite even for a client that prefers
/// AES-256-GCM-SHA384 (rustls's own order, and OpenSSL's): it is as strong
/// as the key exchange and far cheaper to hash where SHA-512 has no
/// instructions of its own.
#[tokio::test]
async fn servers_choose_aes_128_gcm_sha256_over_the_clients_order() {
    let pki = pki(KeyType::EcdsaP256);
    let (address, _seen) = mtls_server(&pki).await;
    let identity = pki.client.identity().unwrap();
    let mut provider = rustls::crypto::aws_lc_rs::default_provider();
    provider
        .cipher_suites
        .sort_by_key(|suite| suite.suite() != rustls::CipherSuite::TLS13_AES_256_GCM_SHA384);
    let config = ClientConfig::builder_with_provider(std::sync::Arc::new(provider))
        .with_safe_default_protocol_versions()
        .unwrap()
        .with_root_certificates(pki.roots().unwrap())
        .with_client_auth_cert(identity.chain().to_vec(), identity.key())
        .unwrap();
    let (answer, summary) = client(address, std::sync::Arc::new(config), "localhost")
        .await
        .unwrap();
    assert_eq!(answer, "ok\n");
    assert_eq!(summary.cipher_suite, "TLS13_AES_128_GCM_SHA256");
}
