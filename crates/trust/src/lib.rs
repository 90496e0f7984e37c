//! Biscuit capability tokens with per-request proof of possession, wire
//! compatible with trust-core 0.1.0 and with its weaknesses fixed
//! (`../shared/spec/trust.md`): keys, minting, the v1 canonical string and its
//! header/query forms, `authenticate` and `check_policy` with typed errors,
//! replay protection, job signatures with Python-exact JSON, and the signer
//! sidecar.
//!
//! ```
//! use tessera_trust::{mint, prove, MintRequest, Request, SecretKey, Verifier};
//!
//! # fn main() -> Result<(), tessera_trust::Error> {
//! let issuer = SecretKey::generate();
//! let holder = SecretKey::generate();
//! let token = mint(&issuer, &MintRequest {
//!     worker_public: holder.public().to_hex(),
//!     holder_id: "gpu-1".into(),
//!     facts: vec![("right".into(), vec!["lease".into()])],
//!     revocation_id: "rev-1".into(),
//!     expires_at: 2_000_000_000.0,
//! })?;
//! let request = Request { method: "POST", path: "/lease", body: b"{}" };
//! let proof = prove(&holder, &token, &request, "1700000000", "n-1");
//! let verified = Verifier::new(&issuer.public())?.authenticate(&proof, &request, 1_700_000_000.0)?;
//! assert_eq!(verified.identity().holder_id, "gpu-1");
//! # Ok(())
//! # }
//! ```
#![forbid(unsafe_code)]
#![warn(missing_docs)]
#![cfg_attr(
    not(test),
    warn(clippy::unwrap_used, clippy::print_stdout, clippy::print_stderr)
)]

mod error;
mod job;
mod keys;
mod mint;
mod proof;
mod replay;
mod revocation;
pub mod signer;
mod signer_metrics;
mod strict_json;
mod verify;

pub use error::{Error, FrameFault};
pub use job::{
    job_message, job_message_as, parse_job, sign_job, sign_job_as, verify_job, verify_job_as,
    JobFormat, JOB_V2_CONTEXT,
};
pub use keys::{PublicKey, SecretKey};
pub use mint::{
    is_identifier, mint, mint_requiring_pop_v2, random_revocation_id, MintRequest, RESERVED,
};
pub use proof::{
    canonical_v1, canonical_v2, parse_timestamp, prove, prove_v2, Proof, Request, V2Context,
    MAX_NONCE,
};
pub use replay::{MemoryReplayCache, ReplayCache};
pub use revocation::{RevocationList, WhenUnknown};
pub use verify::{Authenticated, Identity, TokenCache, Verifier};
