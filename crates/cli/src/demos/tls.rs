//! `tessera tls demo`: a tour of tessera-tls with zero configuration. Generates a dev PKI in a temporary
//! directory, serves mutual TLS on 127.0.0.1 on a free port, runs good clients
//! and hostile ones, and checks that each got exactly the expected outcome.

use std::io::Write;
use std::process::ExitCode;
use std::sync::Arc;
use std::time::Instant;

use anyhow::Context;
use clap::Args;
use tessera_tls::tofu::HostKey;
use tessera_tls::{
    client_config, dangerous, server_config, server_name, ClientAuth, DevPki, PkiOptions,
    ServerAuth, TofuStore, TofuVerifier,
};

#[derive(Debug, Args)]
pub(crate) struct TlsDemoArgs {
    /// Number of concurrent well-behaved mutual-TLS clients.
    #[arg(long, default_value_t = 4)]
    clients: usize,
}

/// One demo step: what was tried, what should happen, what did.
struct Step {
    name: &'static str,
    expected: &'static str,
    outcome: String,
    passed: bool,
}

pub(crate) fn run(args: &TlsDemoArgs) -> anyhow::Result<ExitCode> {
    anyhow::ensure!(
        (1..=1000).contains(&args.clients),
        "--clients must be 1-1000"
    );
    crate::runtime()?.block_on(demo(args.clients))
}

async fn demo(clients: usize) -> anyhow::Result<ExitCode> {
    let started = Instant::now();
    let mut out = std::io::stdout().lock();
    let workdir = tempfile::tempdir().context("creating a temporary directory")?;
    let pki = DevPki::generate(&PkiOptions::default())?;
    let written = pki.write(workdir.path(), false)?;
    writeln!(
        out,
        "dev PKI (ECDSA P-256) in {}:",
        workdir.path().display()
    )?;
    for path in &written {
        writeln!(
            out,
            "  {}",
            path.file_name()
                .map(|n| n.to_string_lossy())
                .unwrap_or_default()
        )?;
    }

    let server = server_config(&pki.server.identity()?, ClientAuth::Required(pki.roots()?))?;
    let (address, server_task) = crate::demos::loopback::spawn_server(server).await?;
    writeln!(out, "mutual-TLS server listening on {address}\n")?;

    let good = client_config(
        ServerAuth::Roots(pki.roots()?),
        Some(&pki.client.identity()?),
    )?;
    let localhost = server_name("localhost")?;
    let mut steps = Vec::new();

    // Well-behaved clients, all at once.
    let tasks: Vec<_> = (0..clients)
        .map(|i| {
            let (config, name) = (good.clone(), localhost.clone());
            tokio::spawn(async move {
                let began = Instant::now();
                let result =
                    crate::demos::loopback::request(address, config, name, &format!("ping {i}"))
                        .await;
                (result, began.elapsed())
            })
        })
        .collect();
    let mut latencies = Vec::new();
    let mut negotiated = None;
    let mut ok = 0;
    for task in tasks {
        let (result, elapsed) = task.await?;
        if let Ok((answer, summary)) = result {
            if answer.starts_with("hello client: ping") {
                ok += 1;
                latencies.push(elapsed);
                negotiated = Some(summary);
            }
        }
    }
    steps.push(Step {
        name: "mutual-TLS clients",
        expected: "all answered",
        outcome: format!("{ok}/{clients} answered"),
        passed: ok == clients,
    });
    if let Some(summary) = &negotiated {
        let peer = summary
            .peer
            .as_ref()
            .map(|p| p.fingerprint().to_string())
            .unwrap_or_default();
        writeln!(
            out,
            "negotiated {} with {}; server certificate {peer}",
            summary.protocol, summary.cipher_suite
        )?;
    }
    if let (Some(min), Some(max)) = (latencies.iter().min(), latencies.iter().max()) {
        writeln!(out, "session latency {:.1}-{:.1} ms\n", ms(*min), ms(*max))?;
    }

    // No client certificate: the server refuses at the handshake.
    let anonymous = client_config(ServerAuth::Roots(pki.roots()?), None)?;
    steps.push(refused(
        "client without a certificate",
        crate::demos::loopback::request(address, anonymous, localhost.clone(), "hi").await,
    ));

    // A certificate from another CA.
    let stranger_pki = DevPki::generate(&PkiOptions::default())?;
    let stranger = client_config(
        ServerAuth::Roots(pki.roots()?),
        Some(&stranger_pki.client.identity()?),
    )?;
    steps.push(refused(
        "client certificate from another CA",
        crate::demos::loopback::request(address, stranger, localhost.clone(), "hi").await,
    ));

    // The server's certificate does not name the host the client asked for.
    steps.push(refused(
        "server name not in the certificate",
        crate::demos::loopback::request(
            address,
            good.clone(),
            server_name("not-in-the-certificate.example")?,
            "hi",
        )
        .await,
    ));

    // Insecure mode toward a non-loopback host is refused before any socket.
    let insecure = dangerous::insecure_client_config("example.org", None);
    steps.push(Step {
        name: "insecure mode toward example.org",
        expected: "refused before connecting",
        outcome: match &insecure {
            Ok(_) => "allowed".to_owned(),
            Err(error) => error.to_string(),
        },
        passed: matches!(
            insecure,
            Err(tessera_tls::Error::InsecureNotLoopback { .. })
        ),
    });

    // Trust on first use against the same server.
    let store = Arc::new(TofuStore::open(&workdir.path().join("tofu.sqlite3"))?);
    let key = HostKey::new("localhost", address.port())?;
    let tofu = |store: &Arc<TofuStore>| {
        client_config(
            ServerAuth::Tofu(Arc::new(TofuVerifier::new(store.clone(), key.clone()))),
            Some(&pki.client.identity()?),
        )
    };
    let first =
        crate::demos::loopback::request(address, tofu(&store)?, localhost.clone(), "tofu").await;
    let second =
        crate::demos::loopback::request(address, tofu(&store)?, localhost.clone(), "tofu").await;
    steps.push(Step {
        name: "TOFU first use, then match",
        expected: "both answered, one pin",
        outcome: format!(
            "{} / {}, {} pin(s)",
            if first.is_ok() { "answered" } else { "failed" },
            if second.is_ok() { "answered" } else { "failed" },
            store.len()?
        ),
        passed: first.is_ok() && second.is_ok() && store.len()? == 1,
    });
    server_task.abort();

    // The server comes back with a new certificate on the same port: mismatch.
    let rotated = DevPki::generate(&PkiOptions::default())?;
    let listener_config = server_config(&rotated.server.identity()?, ClientAuth::None)?;
    let (new_address, new_task) = crate::demos::loopback::spawn_server(listener_config).await?;
    let key = HostKey::new("localhost", new_address.port())?;
    store.trust(
        &key,
        tessera_tls::Fingerprint::of_der(pki.server.der()),
        None,
        time::OffsetDateTime::now_utc(),
    )?;
    let config = client_config(
        ServerAuth::Tofu(Arc::new(TofuVerifier::new(store.clone(), key))),
        None,
    )?;
    let changed =
        crate::demos::loopback::request(new_address, config, localhost.clone(), "tofu").await;
    new_task.abort();
    let mismatch = changed
        .as_ref()
        .err()
        .and_then(|e| tessera_tls::tofu::mismatch_in(e).cloned());
    steps.push(Step {
        name: "TOFU with a changed certificate",
        expected: "refused in the handshake",
        outcome: match (&mismatch, &changed) {
            (Some(m), _) => format!(
                "refused: pinned {} presented {}",
                m.stored.short(),
                m.presented.short()
            ),
            (None, Ok(_)) => "answered".to_owned(),
            (None, Err(e)) => format!("failed otherwise: {e}"),
        },
        passed: mismatch.is_some(),
    });

    writeln!(
        out,
        "{:<38} {:<28} {:<8} outcome",
        "step", "expected", "result"
    )?;
    for step in &steps {
        writeln!(
            out,
            "{:<38} {:<28} {:<8} {}",
            step.name,
            step.expected,
            if step.passed { "ok" } else { "FAILED" },
            step.outcome
        )?;
    }
    let passed = steps.iter().all(|s| s.passed);
    writeln!(
        out,
        "\n{} of {} steps as expected in {:.2} s",
        steps.iter().filter(|s| s.passed).count(),
        steps.len(),
        started.elapsed().as_secs_f64()
    )?;
    Ok(if passed {
        ExitCode::SUCCESS
    } else {
        ExitCode::FAILURE
    })
}

fn refused(
    name: &'static str,
    result: std::io::Result<(String, tessera_tls::HandshakeSummary)>,
) -> Step {
    let (outcome, passed) = match result {
        Ok((answer, _)) => (format!("answered {answer:?}"), false),
        Err(error) => (format!("refused: {error}"), true),
    };
    Step {
        name,
        expected: "refused",
        outcome,
        passed,
    }
}

fn ms(duration: std::time::Duration) -> f64 {
    duration.as_secs_f64() * 1000.0
}
