//! `tessera completions SHELL` and `tessera man --out DIR`: shell completion
//! scripts and man pages, generated from the same definitions that parse the
//! flags, so they never drift from the program.

use std::io::Write as _;
use std::path::{Path, PathBuf};
use std::process::ExitCode;

use anyhow::Context;
use clap::{Args, Command};
use tessera_tlslp::cli::{ClientArgs, ServerArgs};

/// `tessera completions`.
#[derive(Debug, Args)]
pub(crate) struct CompletionsArgs {
    /// The shell: bash, zsh, fish, elvish or powershell.
    shell: clap_complete::Shell,
}

/// `tessera man`.
#[derive(Debug, Args)]
pub(crate) struct ManArgs {
    /// Directory to write the pages into (created if missing): tessera.1,
    /// one page per subcommand (tessera-certs-dev.1, …), tlslp-server.1 and
    /// tlslp-client.1.
    #[arg(long, value_name = "DIR")]
    out: PathBuf,
}

/// Prints the completion script for `shell` to stdout.
pub(crate) fn completions(args: &CompletionsArgs) -> anyhow::Result<ExitCode> {
    let mut command = crate::command();
    // Rendered first: the generator panics on a write error (a closed pipe).
    let mut script = Vec::new();
    clap_complete::generate(args.shell, &mut command, "tessera", &mut script);
    std::io::stdout().lock().write_all(&script)?;
    Ok(ExitCode::SUCCESS)
}

/// Writes every man page into `--out` and lists them on stdout.
pub(crate) fn man(args: &ManArgs) -> anyhow::Result<ExitCode> {
    std::fs::create_dir_all(&args.out)
        .with_context(|| format!("creating {}", args.out.display()))?;
    let mut written = Vec::new();
    let mut tessera = crate::command();
    tessera.build();
    write_tree(&tessera, "tessera", &args.out, &mut written)?;
    for program in tlslp_programs() {
        let name = program.get_name().to_owned();
        write_page(program, &name, &args.out, &mut written)?;
    }
    let mut stdout = std::io::stdout().lock();
    for path in written {
        writeln!(stdout, "{}", path.display())?;
    }
    Ok(ExitCode::SUCCESS)
}

/// The tlslp drop-in binaries, defined as they define themselves.
fn tlslp_programs() -> [Command; 2] {
    let version = env!("CARGO_PKG_VERSION");
    [
        ServerArgs::augment_args(Command::new("tlslp-server").version(version)),
        ClientArgs::augment_args(Command::new("tlslp-client").version(version)),
    ]
}

/// Writes `command`'s page as `name.1`, then each subcommand's as `name-sub.1`.
fn write_tree(
    command: &Command,
    name: &str,
    out: &Path,
    written: &mut Vec<PathBuf>,
) -> anyhow::Result<()> {
    write_page(command.clone().name(name.to_owned()), name, out, written)?;
    for sub in command
        .get_subcommands()
        .filter(|sub| sub.get_name() != "help")
    {
        write_tree(sub, &format!("{name}-{}", sub.get_name()), out, written)?;
    }
    Ok(())
}

fn write_page(
    command: Command,
    name: &str,
    out: &Path,
    written: &mut Vec<PathBuf>,
) -> anyhow::Result<()> {
    let mut page = Vec::new();
    clap_mangen::Man::new(command)
        .render(&mut page)
        .with_context(|| format!("rendering the {name} page"))?;
    let path = out.join(format!("{name}.1"));
    std::fs::write(&path, page).with_context(|| format!("writing {}", path.display()))?;
    written.push(path);
    Ok(())
}
