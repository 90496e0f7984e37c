//! `tessera proxy`: local apps reach a remote service through an
//! authenticated, encrypted tessera-wire link. `proxy local` listens on
//! loopback and opens a tunnel per connection; `proxy exit`, on the remote
//! node, serves tunnels to the services it names and nothing else.

use std::collections::HashMap;
use std::net::SocketAddr;
use std::process::ExitCode;

use anyhow::Context;
use clap::{Args, Subcommand};
use tessera_wire::tunnel::{TunnelEntry, TunnelEntryOptions, TunnelExit, TunnelExitOptions};
use tessera_wire::Role;

use crate::args::PeerAddr;
use crate::commands::listener_reload::{AuthLayers, HmacLayer, ListenerReload};
use crate::commands::wire::{CrlArgs, HmacArgs, PkiArgs};

#[derive(Debug, Subcommand)]
pub(crate) enum ProxyCommand {
    /// The local daemon: accept plain connections from apps on loopback and
    /// forward each over mutual TLS to the exit, which connects it to
    /// --service. An app sees its connection closed if the exit refuses
    /// (the reason is logged). Runs until SIGINT/SIGTERM.
    Local(Box<LocalArgs>),
    /// The remote end: serve tunnels to the services named with --service
    /// (never anywhere else), to clients with a certificate of the PKI and,
    /// with --hmac-secret, a valid MAC. Runs until SIGINT/SIGTERM; SIGHUP
    /// (or --watch) reloads the PKI, CRL, guard and --hmac-secret-file.
    Exit(Box<ExitArgs>),
}

#[derive(Debug, Args)]
pub(crate) struct LocalArgs {
    /// Loopback address apps connect to.
    #[arg(long, value_name = "ADDR:PORT", default_value = "127.0.0.1:7801")]
    listen: SocketAddr,
    /// The exit, as HOST:PORT (a name is resolved once, at start; its
    /// addresses are tried in order).
    #[arg(long, value_name = "HOST:PORT", value_parser = PeerAddr::parse)]
    exit: PeerAddr,
    /// The service at the exit to connect apps to.
    #[arg(long, value_name = "NAME")]
    service: String,
    /// TLS server name the exit's certificate must carry [default: the host
    /// of --exit].
    #[arg(long)]
    server_name: Option<String>,
    /// Local connections relayed at once at most.
    #[arg(long, default_value_t = 256)]
    max_connections: usize,
    #[command(flatten)]
    pki: PkiArgs,
    #[command(flatten)]
    hmac: HmacArgs,
}

#[derive(Debug, Args)]
pub(crate) struct ExitArgs {
    /// Address to listen on.
    #[arg(long, value_name = "ADDR:PORT", default_value = "127.0.0.1:7800")]
    listen: SocketAddr,
    /// A service tunnels may reach, as NAME=HOST:PORT (repeatable).
    #[arg(long = "service", value_name = "NAME=HOST:PORT", value_parser = parse_service, required = true)]
    services: Vec<(String, String)>,
    #[command(flatten)]
    pki: PkiArgs,
    #[command(flatten)]
    crl: CrlArgs,
    #[command(flatten)]
    check: crate::args::CheckConfig,
    #[command(flatten)]
    hmac: HmacArgs,
    /// Admission before TLS (the guard's certificate rules from
    /// --guard-config apply to `/tunnel/<service>`).
    #[command(flatten)]
    admission: tessera_serve::AdmissionArgs,
    /// Fleet mode: the per-client rate limit in a store other servers share.
    #[command(flatten)]
    fleet: tessera_fleet::FleetArgs,
    #[command(flatten)]
    metrics: tessera_serve::MetricsArgs,
    #[command(flatten)]
    reload: tessera_serve::ReloadArgs,
}

fn parse_service(text: &str) -> Result<(String, String), String> {
    let (name, target) = text
        .split_once('=')
        .ok_or_else(|| format!("{text:?}: expected NAME=HOST:PORT"))?;
    if name.is_empty() || name.contains('/') {
        return Err(format!(
            "{name:?}: a service name is non-empty, without '/'"
        ));
    }
    let port = target.rsplit_once(':').map(|(_, port)| port.parse::<u16>());
    if !matches!(port, Some(Ok(_))) {
        return Err(format!("{target:?}: expected HOST:PORT"));
    }
    Ok((name.to_owned(), target.to_owned()))
}

pub(crate) fn run(command: ProxyCommand) -> anyhow::Result<ExitCode> {
    match command {
        ProxyCommand::Local(args) => local(&args),
        ProxyCommand::Exit(args) => exit(&args),
    }
}

fn local(args: &LocalArgs) -> anyhow::Result<ExitCode> {
    crate::args::require(args.listen.ip().is_loopback(), || {
        format!(
            "--listen {}: apps connect in plain TCP, so the local side listens on loopback only",
            args.listen
        )
    })?;
    let options = TunnelEntryOptions {
        auth: args.hmac.auth(Role::Client)?,
        max_connections: args.max_connections,
        ..TunnelEntryOptions::default()
    };
    let exits = args.exit.resolve()?;
    let server_name = args.server_name.as_deref().unwrap_or(args.exit.host());
    let entry = TunnelEntry::new(
        exits,
        tessera_tls::server_name(server_name)?,
        args.pki.client_tls()?,
        &args.service,
        options,
    );
    crate::runtime()?.block_on(async {
        let listener = crate::listen::bind(args.listen).await?;
        let shutdown = crate::listen::ready(listener.local_addr()?)?;
        entry.serve(listener, shutdown).await?;
        anyhow::Ok(())
    })?;
    Ok(ExitCode::SUCCESS)
}

fn exit(args: &ExitArgs) -> anyhow::Result<ExitCode> {
    let mut services = HashMap::new();
    for (name, target) in args.services.iter().cloned() {
        crate::args::require(services.insert(name.clone(), target).is_none(), || {
            format!("service {name:?} given twice")
        })?;
    }
    let defaults = TunnelExitOptions::default();
    let admission = crate::admission::Admission::from_args(
        &args.admission,
        &args.fleet,
        (
            defaults.max_connections,
            defaults.max_connections_per_client,
        ),
    )?;
    let hmac = HmacLayer::new(&args.hmac)?;
    let options = TunnelExitOptions {
        auth: hmac.as_ref().map(HmacLayer::current),
        guard: admission.guard,
        proxy_from: admission.proxy_from,
        max_connections: admission.max_connections,
        max_connections_per_client: admission.max_connections_per_client,
        log_client_ip: admission.log_client_ip,
        metrics: args.metrics.metrics(),
        ..defaults
    };
    let transport = args.pki.server_transport(&args.crl)?;
    if let Some(code) = args.check.passed(&format!(
        "proxy exit on {} for {} service(s)",
        args.listen,
        services.len()
    ))? {
        return Ok(code);
    }
    crate::runtime()?.block_on(async {
        let listener = crate::listen::bind(args.listen).await?;
        crate::listen::metrics(&args.metrics, options.metrics.as_ref()).await?;
        let metrics = options.metrics.clone();
        // With a store, an open request is accepted once across the fleet:
        // recorded for twice the HMAC window, the span it could be accepted in.
        let fleet_replay = args.fleet.store.open()?.map(|store| {
            let window = std::time::Duration::from_secs(2 * args.hmac.hmac_window);
            tessera_wire::FleetFrameReplay::new(tessera_fleet::FleetReplay::new(store), window)
                .when_unknown(args.fleet.fallback)
        });
        let options = TunnelExitOptions {
            fleet: args.fleet.admission()?,
            fleet_replay,
            ..options
        };
        let exit = TunnelExit::new(listener, transport, services, options)
            .context("invalid tunnel exit")?;
        // The services stay as they were at start.
        ListenerReload {
            pki: Some(args.pki.clone()),
            crl: args.crl.clone(),
            admission: args.admission.clone(),
            fleet: args.fleet.clone(),
            caps: (
                defaults.max_connections,
                defaults.max_connections_per_client,
            ),
            connections: "open tunnel(s)",
            auth: AuthLayers {
                hmac,
                capability: None,
            },
        }
        .install(&args.reload, exit.reloader(), metrics.as_ref())?;
        let shutdown = crate::listen::ready(exit.local_addr()?)?;
        exit.run(shutdown).await;
        anyhow::Ok(())
    })?;
    Ok(ExitCode::SUCCESS)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn service_arguments_are_checked() {
        assert_eq!(
            parse_service("ssh=[::1]:22"),
            Ok(("ssh".into(), "[::1]:22".into()))
        );
        assert_eq!(
            parse_service("db=db.internal:5432").unwrap().1,
            "db.internal:5432"
        );
        for bad in [
            "ssh",
            "=host:22",
            "a/b=host:22",
            "ssh=host",
            "ssh=host:port",
        ] {
            assert!(parse_service(bad).is_err(), "{bad}");
        }
    }
}
