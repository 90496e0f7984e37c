//! What a completed handshake negotiated, for logs and summaries.

use rustls::CommonState;

use crate::CertificateInfo;

/// The negotiated parameters and the peer's certificate of one TLS connection.
#[derive(Clone, Debug)]
pub struct HandshakeSummary {
    /// "TLSv1.3" or "TLSv1.2".
    pub protocol: String,
    /// IANA name of the cipher suite.
    pub cipher_suite: String,
    /// The peer's end-entity certificate, if it sent one.
    pub peer: Option<CertificateInfo>,
}

impl HandshakeSummary {
    /// Reads the summary off a connection whose handshake has completed.
    pub fn of(connection: &CommonState) -> Self {
        let protocol = match connection.protocol_version() {
            Some(rustls::ProtocolVersion::TLSv1_3) => "TLSv1.3".to_owned(),
            Some(rustls::ProtocolVersion::TLSv1_2) => "TLSv1.2".to_owned(),
            Some(other) => format!("{other:?}"),
            None => "none".to_owned(),
        };
        let cipher_suite = connection
            .negotiated_cipher_suite()
            .and_then(|suite| suite.suite().as_str())
            .unwrap_or("none")
            .to_owned();
        let peer = connection
            .peer_certificates()
            .and_then(<[_]>::first)
            .and_then(|der| CertificateInfo::from_rustls(der).ok());
        Self {
            protocol,
            cipher_suite,
            peer,
        }
    }
}
