//! What a wire listener (the echo server, the proxy exit) reads again on
//! SIGHUP, and with --watch when one of its files changes.

use std::path::PathBuf;
use std::sync::{Arc, Mutex, PoisonError};

use tessera_wire::{FrameAuth, HmacAuth, Role, Transport};
use zeroize::Zeroizing;

use crate::commands::wire::{stacked, CrlArgs, HmacArgs, PkiArgs};

/// The PKI's certificate, key and CA, the CRL, the guard and the HMAC
/// secret file. New connections get them; open ones keep the keys they
/// started with, and those whose certificate the CRL now lists (or whose
/// client the new ACL denies) are closed.
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
    /// The HMAC layer, and the capability layer stacked after it.
    pub(crate) hmac: Option<(HmacLayer, Option<Arc<dyn FrameAuth>>)>,
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
        let secret_file = self.hmac.as_ref().and_then(|(h, _)| h.args.secret_file());
        files.extend(secret_file.map(PathBuf::from));
        let watched = reload.watched(files);
        tessera_serve::on_reload(&watched, metrics, move || {
            self.apply(&reloader).map_err(|e| format!("{e:#}"))
        })?;
        Ok(())
    }

    fn apply(&self, reloader: &tessera_wire::Reloader) -> anyhow::Result<String> {
        // Everything is read before anything changes: a bad file keeps it all.
        let rekeyed = match &self.hmac {
            Some((layer, _)) => layer.reread()?,
            None => None,
        };
        let transport = match &self.pki {
            Some(pki) => pki.server_transport(&self.crl)?,
            None => Transport::PlainLoopback,
        };
        let admission =
            crate::admission::Admission::from_args(&self.admission, &self.fleet, self.caps)?;
        let revoked = self.crl.revoked()?;
        let listed = revoked.len();
        let closed = reloader.reload(transport, admission.guard, revoked)?;
        let secret = match (rekeyed, &self.hmac) {
            (Some(rekeyed), Some((layer, capability))) => {
                let auth = rekeyed.auth.clone();
                layer.put(rekeyed);
                reloader.set_auth(stacked(Some(auth), capability.clone()));
                ", a new HMAC secret for new connections"
            }
            _ => "",
        };
        Ok(format!(
            "{listed} revoked certificate(s) listed, {closed} {} closed{secret}",
            self.connections
        ))
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
        *self.current.lock().unwrap_or_else(PoisonError::into_inner) = keyed;
    }

    fn keyed(&self) -> std::sync::MutexGuard<'_, Keyed> {
        self.current.lock().unwrap_or_else(PoisonError::into_inner)
    }
}
