//! The sweep task: a sweep spec run into a SQLite results store (resumable: finished trials are
//! skipped; shardable). `quantscape sweep` and the Sweep view both run [`run`].
//!
//! Invariants: the spec is validated and every model preflighted (config, tokenizer, weights)
//! before the store is created; a store this run created is removed again when the run fails
//! before a trial was stored; trials already stored are never lost (each is committed as it
//! finishes). Weight-only trials evaluate on the request's device, matmul-wise trials on the CPU.
//! After the trials, ε = 1/SQNR of every low format on every model is measured once and stored
//! with the sweep ([`super::pareto::fill_eps`]), the input of the format-aware laws.

use std::path::PathBuf;

use super::engine::Device;
use crate::error::Result;
use crate::jobs::JobCtx;
use crate::search::runner::{bundled_models_dir, expand_models, preflight, RunSummary};
use crate::search::{Shard, Store, SweepSpec};

/// A sweep to run.
#[derive(Clone, Debug)]
pub struct SweepRequest {
    /// The spec (already parsed; [`run`] validates it).
    pub spec: SweepSpec,
    /// The results store (created, or resumed when it exists).
    pub out: PathBuf,
    /// Which share of the work items.
    pub shard: Shard,
    /// Bytes of quantized weights cached between trials.
    pub cache_bytes: usize,
    /// Where weight-only trials evaluate.
    pub device: Device,
}

/// What the run did, and where.
#[derive(Clone, Debug)]
pub struct SweepReport {
    /// The runner's summary.
    pub summary: RunSummary,
    /// Where weight-only trials ran.
    pub device: String,
    /// Why the request's device was not used, if it was not.
    pub notice: Option<String>,
}

/// Runs the sweep (stage `trials`; the detail names each trial's ΔL and configuration).
pub fn run(req: &SweepRequest, ctx: &JobCtx) -> Result<SweepReport> {
    req.spec.validate()?;
    let models = expand_models(&req.spec, &bundled_models_dir())?;
    preflight(&req.spec, &models)?;
    let opened = req.device.open(None)?;
    let existed = req.out.exists();
    let store = Store::open(
        &req.out,
        &req.spec,
        &crate::search::provenance::provenance(),
    )?;
    let s = crate::search::runner::run(
        &req.spec,
        &models,
        &store,
        req.shard,
        req.cache_bytes,
        opened.engine.gpu(),
        &mut |p| {
            let detail = p.delta_nll.map(|d| format!("ΔL {d:+.4}  {}", p.config));
            ctx.report_detail("trials", p.done, p.total, detail.as_deref());
            !ctx.cancelled()
        },
    );
    // ε of every low format on every model, for the format-aware laws (cheap: RTN on the
    // weights once per format; already measured ones are skipped).
    let s = s.and_then(|mut summary| {
        if !ctx.cancelled() {
            summary.eps_measured = super::pareto::fill_eps(&store, &models, ctx)?;
        }
        Ok(summary)
    });
    drop(store);
    if s.is_err() && !existed {
        Store::discard_if_empty(&req.out);
    }
    Ok(SweepReport {
        summary: s?,
        device: opened.engine.describe(),
        notice: opened.notice,
    })
}
