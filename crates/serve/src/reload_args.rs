//! `--watch`, the flag every reloading server offers next to SIGHUP.

use std::path::PathBuf;

/// The reload flag (with the `cli` feature): flatten into a server's arguments.
#[derive(Clone, Debug, Default, clap::Args)]
pub struct ReloadArgs {
    /// Reload when a file the server reads changes (its directory is
    /// watched, so renames and symlink swaps count), as on SIGHUP.
    #[arg(long)]
    pub watch: bool,
}

impl ReloadArgs {
    /// The files to watch: `files` with --watch, none without.
    pub fn watched(&self, files: impl IntoIterator<Item = PathBuf>) -> Vec<PathBuf> {
        if self.watch {
            files.into_iter().collect()
        } else {
            Vec::new()
        }
    }
}
