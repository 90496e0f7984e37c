//! The `bench` subcommands, each measuring ours against its baseline in one
//! run, and the measuring they share.

mod cpu;
pub(crate) mod fleet;
pub(crate) mod gemini;
mod measure;
pub(crate) mod tls;
pub(crate) mod tlslp;
pub(crate) mod trust;
pub(crate) mod wire;

pub(crate) use cpu::{pin_self_away_from, process_and_children_cpu_seconds, process_cpu_seconds};
pub(crate) use measure::{python_baseline, rate, KillOnDrop, Report};
