//! `tessera trust bench`: operations per second on one core for mint, prove,
//! authenticate, authenticate + check_policy and verify_job, next to trust-core
//! 0.1.0 run in the same command (`benches/trust_core_bench.py`).

use std::process::ExitCode;
use std::time::Duration;

use clap::Args;
use tessera_trust::{mint, prove, MintRequest, Request, SecretKey, Verifier};

use crate::benches::rate;

#[derive(Debug, Args)]
pub(crate) struct BenchArgs {
    /// Seconds per measurement.
    #[arg(long, default_value_t = 1.0)]
    seconds: f64,
    /// Also run benches/trust_core_bench.py (python3 + trust-core 0.1.0).
    #[arg(long)]
    baseline: bool,
    /// Print one JSON object.
    #[arg(long)]
    json: bool,
}

const NOW: f64 = 1_700_000_000.0;
const ALLOW: &str = "allow if req_right($r), right($r)";

pub(crate) fn run(args: &BenchArgs) -> anyhow::Result<ExitCode> {
    anyhow::ensure!(
        args.seconds > 0.0 && args.seconds <= 60.0,
        "--seconds must be in (0, 60]"
    );
    let issuer = SecretKey::from_hex(&hex::encode((0u8..32).collect::<Vec<_>>()))?;
    let holder = SecretKey::from_hex(&hex::encode((1u8..33).collect::<Vec<_>>()))?;
    let request = MintRequest {
        worker_public: holder.public().to_hex(),
        holder_id: "gpu-1".into(),
        facts: vec![
            ("right".into(), vec!["lease".into(), "status".into()]),
            ("lane".into(), vec!["transcribe".into()]),
        ],
        revocation_id: "rev-1".into(),
        expires_at: NOW + 3600.0,
    };
    let token = mint(&issuer, &request)?;
    let body = br#"{"job":1}"#;
    let http = Request {
        method: "POST",
        path: "/lease",
        body,
    };
    let proof = prove(&holder, &token, &http, "1700000000", "n-0");
    let verifier = Verifier::new(&issuer.public())?;
    let facts = vec![("req_right".to_owned(), "lease".to_owned())];
    let mut job = tessera_trust::parse_job(
        r#"{"job_id":"j-1","kind":"transcribe","input":"s3://bucket/a.wav"}"#,
    )?;
    let signature = tessera_trust::sign_job(&issuer, &job, "gpu-1")?;
    job.insert("sig".into(), serde_json::Value::String(signature));
    let public = issuer.public();

    let duration = Duration::from_secs_f64(args.seconds);
    let mut results = serde_json::Map::new();
    let mut measure = |key: &str, op: &mut dyn FnMut() -> anyhow::Result<()>| {
        anyhow::Ok(results.insert(key.into(), rate(duration, op)?.into()))
    };
    measure("mint_per_s", &mut || {
        mint(&issuer, &request)?;
        Ok(())
    })?;
    measure("prove_per_s", &mut || {
        prove(&holder, &token, &http, "1700000000", "n-1");
        Ok(())
    })?;
    measure("authenticate_per_s", &mut || {
        verifier.authenticate(&proof, &http, NOW)?;
        Ok(())
    })?;
    measure("authenticate_policy_per_s", &mut || {
        let verified = verifier.authenticate(&proof, &http, NOW)?;
        verifier.check_policy(&verified, &facts, ALLOW, NOW)?;
        Ok(())
    })?;
    measure("verify_job_per_s", &mut || {
        tessera_trust::verify_job(&public, &job, "gpu-1")?;
        Ok(())
    })?;

    let baseline = if args.baseline {
        crate::benches::python_baseline(
            "trust_core_bench.py",
            &["--seconds".into(), args.seconds.to_string()],
            "trust-core==0.1.0",
        )
    } else {
        None
    };
    crate::benches::Report {
        first_column: "operation (one core, per s)",
        baseline_key: "trust_core",
        baseline_title: "trust-core",
        decimals: 0,
    }
    .print(results, baseline, args.json)?;
    Ok(ExitCode::SUCCESS)
}
