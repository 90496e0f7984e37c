//! End-to-end encrypted chat between nodes on one link, in library code.
//!
//! Run it in two terminals: `cargo run -p tessera-wire --example chat -- alice`
//! and `... -- bob`. Nodes find each other by multicast on IPv4 and IPv6 with
//! signed adverts; every line goes to each peer sealed by its Noise session.

use std::collections::HashMap;

use tessera_wire::node::{Node, NodeConfig, NodeEvent, NodeIdentity};
use tokio::io::{AsyncBufReadExt, BufReader};

#[tokio::main]
async fn main() -> Result<(), Box<dyn std::error::Error>> {
    let name = std::env::args()
        .nth(1)
        .unwrap_or_else(|| "anonymous".into());
    let config = NodeConfig {
        name: name.clone(),
        ..NodeConfig::default()
    };
    let (node, mut events) = Node::start(NodeIdentity::generate(), config).await?;
    println!(
        "{name} is on {}; type to chat, end input to leave",
        node.local_addr()
    );

    let mut names = HashMap::new();
    let mut lines = BufReader::new(tokio::io::stdin()).lines();
    loop {
        tokio::select! {
            line = lines.next_line() => match line? {
                Some(line) => {
                    let sent = node.broadcast(line.into_bytes()).await?;
                    if sent == 0 {
                        println!("(nobody here yet)");
                    }
                }
                None => break,
            },
            Some(event) = events.recv() => match event {
                NodeEvent::PeerJoined(peer) => {
                    println!("* {} joined from {}", peer.name, peer.addr);
                    names.insert(peer.id, peer.name);
                }
                NodeEvent::PeerLeft { peer, reason } => {
                    println!("* {} left ({reason:?})", peer.name);
                }
                NodeEvent::Message { from, payload } => {
                    let who = names.get(&from).cloned().unwrap_or_else(|| from.short());
                    // Drop control characters: a peer must not drive our terminal.
                    let text: String = String::from_utf8_lossy(&payload)
                        .chars()
                        .filter(|c| !c.is_control())
                        .collect();
                    println!("<{who}> {text}");
                }
            },
        }
    }
    node.stop().await; // Says goodbye, so peers drop us at once.
    Ok(())
}
