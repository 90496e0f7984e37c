//! The certificate rules around the capsule (`../shared/spec/guard.md` §8–9):
//! the request's canonical path is checked before the disk is touched, and
//! the canonical path of what would be served after it, so neither an index
//! file nor a symbolic link inside the root can lead a request around a rule.

use tessera_guard::{CanonicalPath, Chain, Decision, Denial, PeerCert};
use time::OffsetDateTime;

use crate::{Capsule, Resolved};

/// Resolves `path` in `capsule` if the rules of `chain` let `cert` see both
/// the path asked for and the file or listing it leads to.
pub(crate) fn authorise(
    chain: &Chain,
    capsule: &Capsule,
    path: &CanonicalPath,
    cert: Option<&PeerCert>,
    wall: OffsetDateTime,
) -> Result<Resolved, Denial> {
    if let Decision::Deny(denial) = chain.check_certs(path, cert, wall) {
        return Err(denial);
    }
    let resolved = capsule.resolve(path);
    if let Some(served) = resolved.served().filter(|served| *served != path) {
        if let Decision::Deny(denial) = chain.check_certs(served, cert, wall) {
            return Err(denial);
        }
    }
    Ok(resolved)
}

#[cfg(test)]
mod tests;
