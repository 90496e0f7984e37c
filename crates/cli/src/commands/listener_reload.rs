//! What a wire listener (the echo server, the proxy exit) reads again on
//! SIGHUP, and with --watch when one of its files changes.

use std::path::PathBuf;
use std::sync::{Arc, Mutex, PoisonError};

use tessera_wire::{CapabilityAuth, FrameAuth, HmacAuth, Role, Transport};
use zeroize::Zeroizing;

use crate::commands::wire::{read_issuer, stacked, CrlArgs, HmacArgs, PkiArgs};

/// The PKI's certificate, key and CA, the CRL, the guard, the HMAC secret
/// file and the capability issuer file. New connections get them; open ones
/// keep the keys they started with, and those whose certificate the CRL now
/// lists (or whose client the new ACL denies) are closed.
pub(crate) struct ListenerReload {
    /// The PKI; `None` for a plain listener.
    pub(crate) pki: Option<PkiArgs>,
    pub(crate) crl: CrlArgs,
    pub(crate) admission: tessera_serve::AdmissionArgs,
    pub(crate) fleet: tessera_fleet::FleetArgs,
    /// The server's default caps, as at start.
    pub(crate) caps: (usize, usize),
    /// What its open connections are called in the reload's line.
    pub(crate) connections: &'static str,
    /// The auth layers, which a reload may rekey.
    pub(crate) auth: AuthLayers,
}

impl ListenerReload {
    /// Reloads on SIGHUP (and the `reload` flags' file changes) from now on.
    pub(crate) fn install(
        self,
        reload: &tessera_serve::ReloadArgs,
        reloader: tessera_wire::Reloader,
        metrics: Option<&tessera_serve::Metrics>,
    ) -> anyhow::Result<()> {
        let mut files: Vec<PathBuf> = match &self.pki {
            Some(pki) => pki.server_files(&self.crl, &self.admission)?,
            None => self.admission.guard_config.clone().into_iter().collect(),
        };
        files.extend(self.auth.files());
        let watched = reload.watched(files);
        tessera_serve::on_reload(&watched, metrics, move || {
            self.apply(&reloader).map_err(|e| format!("{e:#}"))
        })?;
        Ok(())
    }

    fn apply(&self, reloader: &tessera_wire::Reloader) -> anyhow::Result<String> {
        // Everything is read before anything changes: a bad file keeps it all.
        let rekeyed = self.auth.reread()?;
        let transport = match &self.pki {
            Some(pki) => pki.server_transport(&self.crl)?,
            None => Transport::PlainLoopback,
        };
        let admission =
            crate::admission::Admission::from_args(&self.admission, &self.fleet, self.caps)?;
        let revoked = self.crl.revoked()?;
        let listed = revoked.len();
        let closed = reloader.reload(transport, admission.guard, revoked)?;
        let keys = self.auth.put(rekeyed, reloader);
        Ok(format!(
            "{listed} revoked certificate(s) listed, {closed} {} closed{keys}",
            self.connections
        ))
    }
}

/// A server's auth layers: HMAC, then a capability token, each when given.
pub(crate) struct AuthLayers {
    pub(crate) hmac: Option<HmacLayer>,
    pub(crate) capability: Option<CapabilityLayer>,
}

/// What a reload read: the layers whose key changed.
pub(crate) struct Rekeyed {
    hmac: Option<Keyed>,
    capability: Option<Issued>,
}

impl AuthLayers {
    /// The stack new connections get now.
    pub(crate) fn current(&self) -> Option<Arc<dyn FrameAuth>> {
        stacked(
            self.hmac.as_ref().map(HmacLayer::current),
            self.capability.as_ref().map(CapabilityLayer::current),
        )
    }

    /// The key files a reload reads again.
    fn files(&self) -> Vec<PathBuf> {
        let hmac = self.hmac.as_ref().and_then(|h| h.args.secret_file());
        let capability = self.capability.as_ref().and_then(|c| c.file.as_deref());
        hmac.into_iter()
            .chain(capability)
            .map(PathBuf::from)
            .collect()
    }

    /// Reads the key files; nothing changes until [`Self::put`].
    fn reread(&self) -> anyhow::Result<Rekeyed> {
        Ok(Rekeyed {
            hmac: match &self.hmac {
                Some(layer) => layer.reread()?,
                None => None,
            },
            capability: match &self.capability {
                Some(layer) => layer.reread()?,
                None => None,
            },
        })
    }

    /// Puts what changed in use for new connections; says what, for the
    /// reload's line.
    fn put(&self, rekeyed: Rekeyed, reloader: &tessera_wire::Reloader) -> String {
        let mut changed = Vec::new();
        if let (Some(keyed), Some(layer)) = (rekeyed.hmac, &self.hmac) {
            layer.put(keyed);
            changed.push("a new HMAC secret");
        }
        if let (Some(issued), Some(layer)) = (rekeyed.capability, &self.capability) {
            layer.put(issued);
            changed.push("a new capability issuer");
        }
        if changed.is_empty() {
            return String::new();
        }
        reloader.set_auth(self.current());
        format!(", {} for new connections", changed.join(" and "))
    }
}

/// A server's HMAC layer. A reload reads `--hmac-secret-file` again and,
/// when it holds a new secret, new connections get a layer rekeyed from this
/// one (which remembers the frames this one accepted); a secret from the
/// command line or the environment cannot change.
pub(crate) struct HmacLayer {
    args: HmacArgs,
    current: Mutex<Keyed>,
}

/// A secret and the layer built from it.
pub(crate) struct Keyed {
    secret: Zeroizing<String>,
    auth: Arc<HmacAuth>,
}

impl HmacLayer {
    /// The server's layer, when the flags give a secret.
    pub(crate) fn new(args: &HmacArgs) -> anyhow::Result<Option<Self>> {
        let Some(secret) = args.secret()? else {
            return Ok(None);
        };
        let auth = Arc::new(args.layer(&secret, Role::Server)?);
        Ok(Some(Self {
            args: args.clone(),
            current: Mutex::new(Keyed { secret, auth }),
        }))
    }

    /// The layer in use.
    pub(crate) fn current(&self) -> Arc<dyn FrameAuth> {
        self.keyed().auth.clone()
    }

    /// A layer for the secret the file holds now; `None` when it is the one
    /// in use (or there is no file). Nothing changes until [`Self::put`].
    fn reread(&self) -> anyhow::Result<Option<Keyed>> {
        if self.args.secret_file().is_none() {
            return Ok(None);
        }
        let Some(secret) = self.args.secret()? else {
            return Ok(None);
        };
        let current = self.keyed();
        if *secret == *current.secret {
            return Ok(None);
        }
        let auth = Arc::new(
            current
                .auth
                .rekeyed(self.args.key_id(), secret.as_bytes())?,
        );
        Ok(Some(Keyed { secret, auth }))
    }

    fn put(&self, keyed: Keyed) {
        *self.keyed() = keyed;
    }

    fn keyed(&self) -> std::sync::MutexGuard<'_, Keyed> {
        self.current.lock().unwrap_or_else(PoisonError::into_inner)
    }
}

/// A server's capability layer. With `--capability-issuer-file`, a reload
/// reads the issuer key again and, when it changed, new connections accept
/// the new issuer's tokens (with the same replay cache and revocations).
pub(crate) struct CapabilityLayer {
    file: Option<PathBuf>,
    current: Mutex<Issued>,
}

/// An issuer key and the layer that trusts it.
pub(crate) struct Issued {
    issuer: tessera_trust::PublicKey,
    auth: Arc<CapabilityAuth>,
}

impl CapabilityLayer {
    /// `auth` trusts `issuer`, which `file` (if given) holds.
    pub(crate) fn new(
        issuer: tessera_trust::PublicKey,
        auth: CapabilityAuth,
        file: Option<PathBuf>,
    ) -> Self {
        Self {
            file,
            current: Mutex::new(Issued {
                issuer,
                auth: Arc::new(auth),
            }),
        }
    }

    fn current(&self) -> Arc<dyn FrameAuth> {
        self.issued().auth.clone()
    }

    /// A layer for the issuer the file holds now; `None` when unchanged.
    fn reread(&self) -> anyhow::Result<Option<Issued>> {
        let Some(file) = &self.file else {
            return Ok(None);
        };
        let issuer = read_issuer(file)?;
        let current = self.issued();
        if issuer.to_hex() == current.issuer.to_hex() {
            return Ok(None);
        }
        let auth = current
            .auth
            .rekeyed(&issuer)
            .map_err(|e| {
                anyhow::anyhow!("the capability issuer {}: {}", file.display(), e.detail())
            })?
            .ok_or_else(|| anyhow::anyhow!("a client's capability layer has no issuer"))?;
        Ok(Some(Issued {
            issuer,
            auth: Arc::new(auth),
        }))
    }

    fn put(&self, issued: Issued) {
        *self.issued() = issued;
    }

    fn issued(&self) -> std::sync::MutexGuard<'_, Issued> {
        self.current.lock().unwrap_or_else(PoisonError::into_inner)
    }
}
