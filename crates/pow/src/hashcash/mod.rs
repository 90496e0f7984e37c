//! Hashcash version 1, compatible with the Debian `hashcash` 1.22 CLI
//! (`../shared/spec/pow.md` §2): minting with a SIMD SHA-1 search, stateless
//! verification with the CLI's default rules, and spent-stamp sets.

mod mint;
mod spent;
mod stamp;

pub use mint::{mint, MAX_MINT_BITS};
pub use spent::{MemorySpentSet, SpentSet, SqliteSpentSet};
pub use stamp::{leading_zero_bits, verify, HashcashPolicy, Stamp, MAX_STAMP_LEN};

/// The alphabet of rand and counter fields (base64).
pub(crate) const BASE64: &[u8; 64] =
    b"ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789+/";
