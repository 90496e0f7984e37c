//! `tessera chat`: a room of nodes on one link. Nodes find each other by
//! multicast (or `--seed` addresses), and every line typed is sent to every
//! peer sealed under its own Noise session: nobody else on the link, nor a
//! relay, can read or forge it.

use std::collections::HashMap;
use std::io::Write;
use std::net::SocketAddr;
use std::os::unix::fs::OpenOptionsExt;
use std::path::{Path, PathBuf};
use std::process::ExitCode;

use anyhow::Context;
use clap::Args;
use tessera_wire::node::{
    display_safe, Discovery, LeaveReason, Node, NodeConfig, NodeEvent, NodeId, NodeIdentity,
    DISCOVERY_PORT, MAX_PAYLOAD,
};
use tokio::io::{AsyncBufReadExt, BufReader};

/// Longest chat line sent, in bytes; longer input is refused with a note.
const MAX_LINE: usize = 4096;

#[derive(Debug, Args)]
pub(crate) struct ChatArgs {
    /// Your name in the room (peers see at most 64 bytes of it).
    #[arg(long, env = "USER", default_value = "anonymous")]
    name: String,
    /// The node's UDP socket. The default takes any free port, IPv6 and IPv4.
    #[arg(long, default_value = "[::]:0")]
    listen: SocketAddr,
    /// The UDP port of multicast discovery (IPv4 239.255.77.77, IPv6 ff12::7757).
    #[arg(long, default_value_t = DISCOVERY_PORT)]
    discovery_port: u16,
    /// No multicast: find peers only through --seed.
    #[arg(long)]
    no_multicast: bool,
    /// A peer's node address to announce ourselves to directly, for links
    /// without multicast (repeatable).
    #[arg(long = "seed", value_name = "HOST:PORT", value_parser = crate::args::PeerAddr::parse)]
    seeds: Vec<crate::args::PeerAddr>,
    /// Keep this node's keys in FILE (created, mode 0600, if missing), so that
    /// peers see the same id after a restart. Without it the keys are fresh.
    #[arg(long, value_name = "FILE")]
    key: Option<PathBuf>,
}

pub(crate) fn run(args: ChatArgs) -> anyhow::Result<ExitCode> {
    let identity = match &args.key {
        Some(path) => load_or_create_identity(path)?,
        None => NodeIdentity::generate(),
    };
    let runtime = crate::runtime()?;
    let result = runtime.block_on(chat(args, identity));
    // Standard input is read on a blocking thread that a pending read keeps
    // alive: waiting for it (as dropping the runtime does) would leave the
    // user at a dead prompt after Ctrl-C until they press Enter.
    runtime.shutdown_background();
    result
}

async fn chat(args: ChatArgs, identity: NodeIdentity) -> anyhow::Result<ExitCode> {
    let config = NodeConfig {
        name: args.name.clone(),
        listen: args.listen,
        discovery: if args.no_multicast {
            Vec::new()
        } else {
            Discovery::defaults(args.discovery_port)
        },
        seeds: args
            .seeds
            .iter()
            .map(crate::args::PeerAddr::resolve)
            .collect::<anyhow::Result<Vec<_>>>()?
            .concat(),
        ..NodeConfig::default()
    };
    let (node, mut events) = Node::start(identity, config)
        .await
        .with_context(|| format!("cannot start a node on {}", args.listen))?;
    let shutdown = crate::listen::ready(node.local_addr())?;
    let groups: Vec<String> = node.discovery().iter().map(ToString::to_string).collect();
    match (args.no_multicast, groups.is_empty()) {
        (true, _) => {}
        (false, true) => say("* multicast discovery is not available here; only --seed peers")?,
        (false, false) => say(&format!("* discovery on {}", groups.join(" and ")))?,
    }
    say(&format!(
        "* you are {} ({}); type a line to send it to everyone, /help for commands",
        args.name,
        node.id().short()
    ))?;
    let mut names: HashMap<NodeId, String> = HashMap::new();
    let mut input = BufReader::new(tokio::io::stdin()).lines();
    tokio::pin!(shutdown);
    loop {
        tokio::select! {
            line = input.next_line() => match line.context("reading standard input")? {
                Some(line) => {
                    if !command(&node, line.trim_end()).await? {
                        break;
                    }
                }
                None => break,
            },
            event = events.recv() => match event {
                Some(event) => show(&event, &mut names)?,
                None => break,
            },
            () = &mut shutdown => break,
        }
    }
    node.stop().await;
    Ok(ExitCode::SUCCESS)
}

/// Handles one input line; false to leave.
async fn command(node: &Node, line: &str) -> anyhow::Result<bool> {
    match line {
        "" => {}
        "/quit" => return Ok(false),
        "/help" => say("* /peers lists who is here, /quit leaves (so does end of input)")?,
        "/peers" => {
            let peers = node.peers().await;
            if peers.is_empty() {
                say("* nobody here yet")?;
            }
            for peer in peers {
                say(&format!(
                    "* {} ({}) at {}",
                    peer.name,
                    peer.id.short(),
                    peer.addr
                ))?;
            }
        }
        text if text.starts_with('/') => say("* unknown command; /help lists them")?,
        text if text.len() > MAX_LINE.min(MAX_PAYLOAD) => {
            say(&format!(
                "* not sent: lines are limited to {MAX_LINE} bytes"
            ))?;
        }
        text => match node.broadcast(text.as_bytes().to_vec()).await {
            Ok(0) => say("* not sent: nobody here yet")?,
            Ok(_) => {}
            Err(error) => say(&format!("* not sent: {error}"))?,
        },
    }
    Ok(true)
}

fn show(event: &NodeEvent, names: &mut HashMap<NodeId, String>) -> anyhow::Result<()> {
    match event {
        NodeEvent::PeerJoined(peer) => {
            names.insert(peer.id, peer.name.clone());
            say(&format!(
                "* {} ({}) joined from {}",
                peer.name,
                peer.id.short(),
                peer.addr
            ))
        }
        NodeEvent::PeerLeft { peer, reason } => {
            names.remove(&peer.id);
            let why = match reason {
                LeaveReason::Goodbye => "left",
                LeaveReason::Timeout => "timed out",
            };
            say(&format!("* {} ({}) {why}", peer.name, peer.id.short()))
        }
        NodeEvent::Message { from, payload } => {
            let name = names.get(from).cloned().unwrap_or_else(|| from.short());
            say(&format!(
                "<{name}> {}",
                // A message must not move the cursor, clear the screen,
                // reorder text or fake a line from someone else.
                display_safe(&String::from_utf8_lossy(payload))
            ))
        }
    }
}

fn say(line: &str) -> anyhow::Result<()> {
    let mut out = std::io::stdout().lock();
    writeln!(out, "{line}")?;
    out.flush()?;
    Ok(())
}

/// The node keys in `path`: 64 secret bytes as 128 hex digits.
fn load_or_create_identity(path: &Path) -> anyhow::Result<NodeIdentity> {
    match std::fs::read_to_string(path) {
        Ok(text) => {
            let bytes = hex::decode(text.trim())
                .with_context(|| format!("{}: not a node key file", path.display()))?;
            NodeIdentity::from_secret_bytes(&bytes)
                .with_context(|| format!("{}: not a node key file", path.display()))
        }
        Err(error) if error.kind() == std::io::ErrorKind::NotFound => {
            let identity = NodeIdentity::generate();
            let mut file = std::fs::OpenOptions::new()
                .write(true)
                .create_new(true)
                .mode(0o600)
                .open(path)
                .with_context(|| format!("cannot create {}", path.display()))?;
            writeln!(file, "{}", hex::encode(&*identity.to_secret_bytes()))
                .with_context(|| format!("cannot write {}", path.display()))?;
            Ok(identity)
        }
        Err(error) => Err(error).with_context(|| format!("cannot read {}", path.display())),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_key_file_keeps_the_node_id() {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("node.key");
        let first = load_or_create_identity(&path).unwrap();
        let again = load_or_create_identity(&path).unwrap();
        assert_eq!(first.id(), again.id());
        std::fs::write(&path, "zz").unwrap();
        assert!(load_or_create_identity(&path).is_err());
    }
}
