//! Where Tessera keeps state by default: XDG directories via `directories`.

use std::path::PathBuf;

use anyhow::Context;

/// `$XDG_DATA_HOME/tessera` (usually `~/.local/share/tessera`).
pub(crate) fn data_dir() -> anyhow::Result<PathBuf> {
    let dirs = directories::ProjectDirs::from("", "", "tessera")
        .context("cannot determine the home directory; pass the path explicitly")?;
    Ok(dirs.data_dir().to_owned())
}

/// The default TOFU store, `$XDG_DATA_HOME/tessera/tofu.sqlite3`.
pub(crate) fn default_tofu_db() -> anyhow::Result<PathBuf> {
    Ok(tessera_tls::TofuStore::default_path(&data_dir()?))
}
