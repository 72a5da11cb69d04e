//! The sweep runner: configurations × trials → evaluated rows in the store.
//!
//! Work items are (configuration, trial index) pairs in sweep order, numbered from 0; `--shard
//! i/n` takes the items with number ≡ i (mod n), so shards never overlap and together cover
//! the sweep. Finished items (already in the store) are skipped. Per model: the model, its
//! windows and the base reference are built once; quantized weights come from a
//! [`WeightCache`] keyed by (linear site, format, method) — a trial only swaps tensors through
//! the forward-pass hook; trials whose assignment was already evaluated in this run (few sites
//! make repeats likely) reuse that evaluation, which is exact since evaluation is deterministic.
//! Calibrated methods (GPTQ, AWQ) are calibrated once per (format, method) with every linear in
//! the low format, on the bundled calibration split (never the evaluation text).
//!
//! Devices: given a GPU, trials whose forward pass has weight formats only (layer and block
//! granularity) run on the resident GPU forward pass and are compared with a base reference
//! computed on the GPU too (ΔL never mixes engines); matmul-wise trials quantize activations and
//! stay on the CPU path (with prefix reuse). A model the GPU cannot hold (a tensor larger than
//! its largest storage binding) runs on the CPU, said in [`RunSummary::notes`]. The store's
//! `devices` entry lists what evaluated.

use std::collections::HashMap;
use std::time::Instant;

use super::assign::{assign, sites, Site};
use super::cache::WeightCache;
use super::spec::{Configuration, Granularity, Operands, Shard, SweepSpec};
use super::store::{ModelRow, Store, TrialRow};
use crate::codecs::{Format, Method};
use crate::error::{Error, Result};
use crate::eval::corpus;
use crate::eval::metrics::Report;
use crate::eval::windows::{make_windows, WindowSpec};
#[cfg(feature = "gpu")]
use crate::eval::BatchOut;
use crate::eval::{Evaluator, PrefixCache};

use crate::model::calibrated::{quantize_calibrated, DEFAULT_CALIB_WINDOWS};
use crate::model::quantized::{quantize_linear, Overrides};
use crate::model::{Tokenizer, Transformer};

pub use super::models::{bundled_models_dir, expand_models, glob_match, ResolvedModel};

/// Largest memory for reusable block outputs per model (else every block is recomputed).
pub const PREFIX_BYTES: usize = 1 << 30;

/// The GPU a sweep may evaluate on.
#[cfg(feature = "gpu")]
pub type Gpu = crate::gpu::GpuContext;

/// The GPU a sweep may evaluate on: none in a build without the `gpu` feature.
#[cfg(not(feature = "gpu"))]
#[derive(Debug)]
pub enum Gpu {}

/// Reported after every trial.
#[derive(Clone, Debug)]
pub struct Progress {
    /// Items handled in this run (evaluated, reused or unreachable).
    pub done: usize,
    /// Items this run has to handle.
    pub total: usize,
    /// Current configuration key.
    pub config: String,
    /// ΔL of the trial just finished (None when unreachable).
    pub delta_nll: Option<f64>,
}

/// What a run did.
#[derive(Clone, Debug, Default, serde::Serialize)]
pub struct RunSummary {
    /// Work items in the whole sweep.
    pub items_total: usize,
    /// Items of this shard.
    pub items_shard: usize,
    /// Already in the store before this run.
    pub already_done: usize,
    /// Evaluated now.
    pub evaluated: usize,
    /// Written from an identical assignment evaluated earlier in this run.
    pub reused: usize,
    /// Trials whose target Qr no assignment reaches within the tolerance (not stored).
    pub unreachable: usize,
    /// Wall time.
    pub elapsed_secs: f64,
    /// Weight-cache hits and misses.
    pub cache_hits: usize,
    /// Weight-cache misses (tensors quantized).
    pub cache_misses: usize,
    /// Block evaluations plain forward passes would have done for the evaluated trials.
    pub blocks_total: usize,
    /// Block evaluations done (the rest were reused from the previous trial's prefix).
    pub blocks_computed: usize,
    /// Devices that evaluated trials in this run (`cpu`, `gpu: ADAPTER …`).
    pub devices: Vec<String>,
    /// What the run could not do as asked (a model the GPU could not hold ran on the CPU).
    pub notes: Vec<String>,
    /// Low-format errors ε measured after the trials (one per model × low format lacking one;
    /// the sweep task fills it).
    pub eps_measured: usize,
}

/// Per-model state.
struct ModelRun {
    model: Transformer,
    windows: crate::eval::windows::Windows,
    base: crate::eval::metrics::BaseRef,
    calib_ids: Vec<u32>,
    sites: HashMap<(Granularity, Operands), Vec<Site>>,
    memo: HashMap<String, Report>,
    prefix: PrefixCache,
    /// The base reference computed on the GPU (at its first GPU trial).
    #[cfg_attr(not(feature = "gpu"), allow(dead_code))]
    gpu_base: Option<crate::eval::metrics::BaseRef>,
}

/// Loads `m`, picks its windows (the spec's count, a token count, or a pilot for a target SE:
/// `configs` are the sweep's configurations, the pilot uses this model's at the highest Qr),
/// computes the base reference and records the model in `store`.
fn prepare(
    m: &ResolvedModel,
    spec: &SweepSpec,
    store: &Store,
    configs: &[Configuration],
    cache: &mut WeightCache,
) -> Result<ModelRun> {
    let model = Transformer::load(&m.dir)?;
    let tok = Tokenizer::load(&m.dir)?;
    let (text, label) = corpus::load_named(&spec.eval.data)?;
    let ctx = spec.eval.ctx.min(model.config.max_positions);
    let tokens = tok.encode(&text)?;
    let window_spec = |n_windows| WindowSpec {
        ctx,
        stride: None,
        n_windows,
        seed: spec.eval.seed,
    };
    let stored = store.models()?.into_iter().find(|r| r.model == m.spec);
    let calib = corpus::load(&corpus::bundled_dir(), corpus::Split::Calib)?;
    let cs = WindowSpec {
        ctx,
        stride: None,
        n_windows: DEFAULT_CALIB_WINDOWS,
        seed: 0,
    };
    let calib_ids = make_windows(&tok.encode(&calib)?, tok.bos, &cs, "calib")?.ids;
    let sites = [Granularity::Layer, Granularity::Block, Granularity::Matmul]
        .into_iter()
        .flat_map(|g| [(g, Operands::Weights), (g, Operands::WeightsAndActivations)])
        .map(|(g, o)| ((g, o), sites(&model, g, o, ctx)))
        .collect();
    let first = match spec.fixed_windows(ctx) {
        Some(n) => n,
        // Resuming: the window count the first run chose.
        None => match &stored {
            Some(r) => r.n_windows,
            None => spec.precision.as_ref().map_or(1, |p| p.pilot_windows),
        },
    };
    let windows = make_windows(&tokens, tok.bos, &window_spec(first), &label)?;
    let base = Evaluator::new(&model, &windows)?.base(spec.eval.top_k, &mut |_, _| true)?;
    let mut mr = ModelRun {
        model,
        windows,
        base,
        calib_ids,
        sites,
        memo: HashMap::new(),
        prefix: PrefixCache::new(),
        gpu_base: None,
    };
    if spec.fixed_windows(ctx).is_none() && stored.is_none() {
        let (n, note) = pilot(spec, configs, &m.spec, &mut mr, cache)?;
        store.set_meta(&format!("pilot:{}", m.spec), &note)?;
        if n > mr.windows.n_candidates {
            return Err(too_few_windows(&label, &mr.windows, n, &m.spec));
        }
        if n > mr.windows.len() {
            mr.windows = make_windows(&tokens, tok.bos, &window_spec(n), &label)?;
            mr.base =
                Evaluator::new(&mr.model, &mr.windows)?.base(spec.eval.top_k, &mut |_, _| true)?;
        }
    } else if spec.precision.is_some() && mr.windows.len() < first {
        return Err(too_few_windows(&label, &mr.windows, first, &m.spec));
    }
    let train_tokens = std::fs::read_to_string(m.dir.join("train.json"))
        .ok()
        .and_then(|t| serde_json::from_str::<serde_json::Value>(&t).ok())
        .and_then(|v| v["budget_tokens"].as_u64());
    let nll_base = mr.base.nll_mean();
    if let Some(had) = &stored {
        if !super::store::same_base(had.nll_base, nll_base) {
            return Err(Error::checkpoint(
                store.path(),
                format!(
                    "{} now has base NLL {nll_base:.6}, but its stored trials were measured at \
                     {:.6}: the checkpoint changed. Drop them with `quantscape forget {} \
                     --model {}`, or write to a new store",
                    m.spec,
                    had.nll_base,
                    store.path().display(),
                    m.spec
                ),
            ));
        }
    }
    store.put_model(&ModelRow {
        model: m.spec.clone(),
        path: m.dir.display().to_string(),
        architecture: mr.model.config.architecture.clone(),
        n_params_non_embedding: mr.model.n_params_non_embedding,
        n_params_total: mr.model.n_params_total,
        train_tokens,
        nll_base,
        n_windows: mr.windows.len(),
        ctx,
    })?;
    // Block outputs of every window for every block, kept when they fit the budget.
    let state_bytes =
        mr.model.blocks.len() * mr.windows.len() * ctx * mr.model.config.hidden_size * 4;
    mr.prefix = PrefixCache::new();
    mr.prefix.enabled = state_bytes <= PREFIX_BYTES;
    Ok(mr)
}

/// A precision target the held-out text cannot meet.
fn too_few_windows(
    label: &str,
    w: &crate::eval::windows::Windows,
    need: usize,
    model: &str,
) -> Error {
    Error::Input(format!(
        "precision: {model} needs {need} windows of {} tokens, but {label} offers {}: \
         loosen the target, shorten eval.ctx, or use a longer text",
        w.ctx, w.n_candidates
    ))
}

/// The pilot of a precision target on `mr`'s (pilot) windows: every configuration of `model` at
/// the sweep's highest Qr, trial 0's assignment; returns the windows the largest per-window
/// standard deviation of ΔL needs, and a JSON note of what was measured (stored in `meta`).
fn pilot(
    spec: &SweepSpec,
    configs: &[Configuration],
    model: &str,
    mr: &mut ModelRun,
    cache: &mut WeightCache,
) -> Result<(usize, String)> {
    let Some(precision) = &spec.precision else {
        return Ok((mr.windows.len(), String::new()));
    };
    let mine: Vec<&Configuration> = configs.iter().filter(|c| c.model == model).collect();
    let top = mine.iter().map(|c| c.qr_target).fold(0.0, f64::max);
    let (mut sd_max, mut worst) = (f64::NAN, String::new());
    let mut seen = std::collections::HashSet::new();
    let mut prefix = PrefixCache::new();
    for c in mine.iter().filter(|c| c.qr_target == top) {
        let Some(p) = plan(spec, c, 0, mr) else {
            continue;
        };
        if !seen.insert(p.memo_key.clone()) {
            continue;
        }
        let o = overrides(c, &p, mr, cache)?;
        let r = Evaluator::new(&mr.model, &mr.windows)?.compare_prefix(
            &mr.base,
            &o,
            &p.block_sigs,
            &mut prefix,
            0,
            spec.eval.seed,
        )?;
        let sd = r.delta_nll_se * (r.n_windows as f64).sqrt();
        if sd.is_finite() && (sd_max.is_nan() || sd > sd_max) {
            sd_max = sd;
            worst = c.key();
        }
    }
    let ctx = mr.windows.ctx;
    let n = precision
        .windows_from_pilot(sd_max, ctx, model)?
        .unwrap_or(mr.windows.len());
    let note = serde_json::json!({
        "pilot_windows": mr.windows.len(),
        "per_window_sd_max": sd_max,
        "worst_configuration": worst,
        "target_se": precision.se,
        "windows": n,
        "scored_tokens": n * (ctx - 1),
    })
    .to_string();
    Ok((n, note))
}

/// Weights of every linear site under `method` in `format`, through the cache.
fn weights(
    run: &ModelRun,
    cache: &mut WeightCache,
    format: &Format,
    method: &Method,
    needed: &[usize],
) -> Result<Vec<(usize, candle_core::Tensor)>> {
    let tag = format!("{format}|{}", method.spelling());
    if method.needs_calibration() && needed.iter().any(|&i| !cache.contains(i, &tag)) {
        let ctx = run.windows.ctx;
        let (o, _, _) = quantize_calibrated(
            &run.model,
            &run.calib_ids,
            ctx,
            format,
            method,
            &mut |_, _| true,
        )?;
        for (i, w) in o.weights.into_iter().enumerate() {
            if let Some(w) = w {
                cache.insert(i, &tag, w);
            }
        }
    }
    needed
        .iter()
        .map(|&i| {
            let t = cache.get_or_insert_with(i, &tag, || {
                Ok(quantize_linear(&run.model, i, format, method)?.weight)
            })?;
            Ok((i, t))
        })
        .collect()
}

/// Everything about a sweep that can be checked before its results store is created: the
/// configurations (no duplicates), the held-out text (readable, not empty), and every model's
/// folder (config, tensors and tokenizer load, as `info` loads them). A sweep whose preflight
/// passes can only fail later on I/O or cancellation.
pub fn preflight(spec: &SweepSpec, models: &[ResolvedModel]) -> Result<()> {
    let names: Vec<String> = models.iter().map(|m| m.spec.clone()).collect();
    spec.configurations(&names)?;
    let (text, label) =
        corpus::load_named(&spec.eval.data).map_err(|e| Error::Input(format!("eval.data: {e}")))?;
    if text.trim().is_empty() {
        return Err(Error::Input(format!(
            "eval.data {label}: the text is empty"
        )));
    }
    for m in models {
        Transformer::validate_folder(&m.dir)
            .and_then(|_| Tokenizer::load(&m.dir).map(drop))
            .map_err(|e| Error::Input(format!("model {}: {e}", m.spec)))?;
    }
    Ok(())
}

/// Runs the items of `shard` not yet in `store`; with `gpu`, weight-only trials evaluate on it.
pub fn run(
    spec: &SweepSpec,
    models: &[ResolvedModel],
    store: &Store,
    shard: Shard,
    cache_bytes: usize,
    gpu: Option<&Gpu>,
    progress: &mut dyn FnMut(&Progress) -> bool,
) -> Result<RunSummary> {
    let t0 = Instant::now();
    let names: Vec<String> = models.iter().map(|m| m.spec.clone()).collect();
    let configs = spec.configurations(&names)?;
    let finished = store.finished()?;
    let mut summary = RunSummary::default();
    // (item number, config index, trial index) of this shard, still to do.
    let mut todo: Vec<(usize, usize)> = Vec::new();
    let mut k = 0;
    for (ci, c) in configs.iter().enumerate() {
        for t in 0..c.trials {
            if shard.owns(k) {
                summary.items_shard += 1;
                if finished.contains(&(c.key(), c.trial_seed(spec.seed, t))) {
                    summary.already_done += 1;
                } else {
                    todo.push((ci, t));
                }
            }
            k += 1;
        }
    }
    summary.items_total = k;
    let total = todo.len();
    let mut done = 0;
    let mut cache = WeightCache::new(cache_bytes);
    let mut blocks = (0, 0);
    for m in models {
        let items: Vec<&(usize, usize)> = todo
            .iter()
            .filter(|(ci, _)| configs[*ci].model == m.spec)
            .collect();
        if items.is_empty() {
            continue;
        }
        cache.clear();
        let mut mr = prepare(m, spec, store, &configs, &mut cache)?;
        // A model the GPU cannot hold evaluates on the CPU, said in the summary.
        let weight_only = items
            .iter()
            .any(|(ci, _)| spec.operands_for(configs[*ci].granularity) == Operands::Weights);
        let model_gpu = match gpu {
            Some(g) if weight_only => match gpu_base(spec, &mut mr, g) {
                Ok(()) => Some(g),
                Err(e) => {
                    summary
                        .notes
                        .push(format!("{}: evaluated on the CPU: {e}", m.spec));
                    None
                }
            },
            _ => None,
        };
        // Draw every trial first, then evaluate in the order of their block signatures, so
        // consecutive trials share the longest prefix of identical blocks.
        let mut planned: Vec<(usize, usize, Option<Plan>)> = items
            .iter()
            .map(|&&(ci, t)| (ci, t, plan(spec, &configs[ci], t, &mr)))
            .collect();
        planned.sort_by(|a, b| {
            let key = |p: &Option<Plan>| p.as_ref().map(|p| p.block_sigs.clone());
            key(&a.2).cmp(&key(&b.2))
        });
        for (ci, t, p) in planned {
            let c = &configs[ci];
            let row = match p {
                Some(p) => {
                    let on_gpu =
                        model_gpu.filter(|_| spec.operands_for(c.granularity) == Operands::Weights);
                    let row = trial(spec, c, t, p, &mut mr, &mut cache, on_gpu, &mut summary)?;
                    let device = on_gpu.map_or_else(|| "cpu".to_string(), gpu_name);
                    if !summary.devices.contains(&device) {
                        store.add_devices(std::slice::from_ref(&device))?;
                        summary.devices.push(device);
                    }
                    Some(row)
                }
                None => {
                    summary.unreachable += 1;
                    None
                }
            };
            if let Some(r) = &row {
                store.put_trial(r)?;
            }
            done += 1;
            let p = Progress {
                done,
                total,
                config: c.key(),
                delta_nll: row.map(|r| r.delta_nll),
            };
            if !progress(&p) {
                return Err(Error::Cancelled);
            }
        }
        blocks.0 += mr.prefix.blocks_total;
        blocks.1 += mr.prefix.blocks_computed;
    }
    summary.cache_hits = cache.hits;
    summary.blocks_total = blocks.0;
    summary.blocks_computed = blocks.1;
    summary.cache_misses = cache.misses;
    summary.elapsed_secs = t0.elapsed().as_secs_f64();
    Ok(summary)
}

/// A trial's assignment and what each block computes under it.
struct Plan {
    seed: u64,
    assignment: super::assign::Assignment,
    low_linear: Vec<bool>,
    /// Matmul operand precision (with activations only): Some(low?).
    low_matmul: Vec<Option<bool>>,
    /// Per block: the formats of its weights and operands.
    block_sigs: Vec<String>,
    memo_key: String,
}

/// Draws trial `t` of `c` (None when its target Qr is unreachable).
fn plan(spec: &SweepSpec, c: &Configuration, t: usize, mr: &ModelRun) -> Option<Plan> {
    let seed = c.trial_seed(spec.seed, t);
    let ops = spec.operands_for(c.granularity);
    let sites = mr.sites.get(&(c.granularity, ops))?;
    let a = assign(sites, c.qr_target, spec.qr_tolerance, seed)?;
    let model = &mr.model;
    let mut low_linear = vec![false; model.linears.len()];
    // With activations, a matmul no site covers runs in the high format.
    let acts = ops == Operands::WeightsAndActivations;
    let mut low_matmul = vec![acts.then_some(false); model.matmuls.len()];
    for (s, l) in sites.iter().zip(&a.low) {
        for &i in &s.linears {
            low_linear[i] = *l;
        }
        for &m in &s.matmuls {
            low_matmul[m] = Some(*l);
        }
    }
    let low_w = format!("{}/{}", c.low, c.method);
    let mut block_sigs = vec![String::new(); model.blocks.len()];
    for (i, l) in model.linears.iter().enumerate() {
        let f = if low_linear[i] { &low_w } else { &c.high };
        block_sigs[l.layer].push_str(&format!("w{i}={f};"));
    }
    for (m, site) in model.matmuls.iter().enumerate() {
        if let Some(low) = low_matmul[m] {
            let f = if low { &c.low } else { &c.high };
            block_sigs[site.layer].push_str(&format!("a{m}={f};"));
        }
    }
    // What the forward pass sees, whole: equal keys give equal evaluations (a Qr = 0 trial of
    // every low format and Qb is one evaluation).
    let memo_key = block_sigs.concat();
    Some(Plan {
        seed,
        assignment: a,
        low_linear,
        low_matmul,
        block_sigs,
        memo_key,
    })
}

/// How the store names a GPU.
#[cfg(feature = "gpu")]
fn gpu_name(g: &Gpu) -> String {
    format!("gpu: {}", g.describe())
}

#[cfg(not(feature = "gpu"))]
fn gpu_name(g: &Gpu) -> String {
    match *g {}
}

/// Evaluates the weights `o` (no operand formats) on the GPU against the GPU base reference.
#[cfg(feature = "gpu")]
fn compare_on_gpu(spec: &SweepSpec, mr: &mut ModelRun, g: &Gpu, o: &Overrides) -> Result<Report> {
    gpu_base(spec, mr, g)?;
    let base = mr
        .gpu_base
        .as_ref()
        .ok_or_else(|| Error::Gpu("no GPU base reference".into()))?;
    let ev = Evaluator::new(&mr.model, &mr.windows)?.for_whole_logits();
    let gm = crate::gpu::GpuModel::new(g, &mr.model, o)?;
    ev.compare_with(
        base,
        &mut |_, ids, b| Ok(BatchOut::Logits(gm.logits(ids, b)?)),
        spec.eval.resamples,
        spec.eval.seed,
        &mut |_, _| true,
    )
}

#[cfg(not(feature = "gpu"))]
fn compare_on_gpu(_: &SweepSpec, _: &mut ModelRun, g: &Gpu, _: &Overrides) -> Result<Report> {
    match *g {}
}

/// Computes the model's base reference on the GPU once; an error means the model does not run
/// there (e.g. a tensor larger than the adapter's largest storage binding).
#[cfg(feature = "gpu")]
fn gpu_base(spec: &SweepSpec, mr: &mut ModelRun, g: &Gpu) -> Result<()> {
    if mr.gpu_base.is_none() {
        let ev = Evaluator::new(&mr.model, &mr.windows)?.for_whole_logits();
        let gm = crate::gpu::GpuModel::new(g, &mr.model, &crate::model::NoHooks)?;
        let top_k = spec.eval.top_k;
        let base = ev.base_with(
            top_k,
            &mut |_, ids, b| Ok(BatchOut::Logits(gm.logits(ids, b)?)),
            &mut |_, _| true,
        )?;
        mr.gpu_base = Some(base);
    }
    Ok(())
}

#[cfg(not(feature = "gpu"))]
fn gpu_base(_: &SweepSpec, _: &mut ModelRun, g: &Gpu) -> Result<()> {
    match *g {}
}

/// The weights and operand formats of plan `p` of `c`.
fn overrides(
    c: &Configuration,
    p: &Plan,
    mr: &ModelRun,
    cache: &mut WeightCache,
) -> Result<Overrides> {
    let (low_f, high_f, method) = (c.low_format()?, c.high_format()?, c.method()?);
    let n_lin = mr.model.linears.len();
    let lows: Vec<usize> = (0..n_lin).filter(|&i| p.low_linear[i]).collect();
    let highs: Vec<usize> = (0..n_lin).filter(|&i| !p.low_linear[i]).collect();
    let mut o = Overrides {
        weights: vec![None; n_lin],
        operands: Vec::new(),
    };
    for (i, w) in weights(mr, cache, &low_f, &method, &lows)? {
        o.weights[i] = Some(w);
    }
    for (i, w) in weights(mr, cache, &high_f, &Method::Rtn, &highs)? {
        o.weights[i] = Some(w);
    }
    if p.low_matmul.iter().any(Option::is_some) {
        o.operands = p
            .low_matmul
            .iter()
            .map(|l| l.map(|low| if low { low_f } else { high_f }))
            .collect();
    }
    Ok(o)
}

/// Evaluates trial `t` of `c` with its plan (on `gpu` when given).
#[allow(clippy::too_many_arguments)]
fn trial(
    spec: &SweepSpec,
    c: &Configuration,
    t: usize,
    p: Plan,
    mr: &mut ModelRun,
    cache: &mut WeightCache,
    gpu: Option<&Gpu>,
    summary: &mut RunSummary,
) -> Result<TrialRow> {
    let t0 = Instant::now();
    let (seed, a, low_linear, memo_key) = (p.seed, &p.assignment, &p.low_linear, &p.memo_key);
    let (low_f, high_f) = (c.low_format()?, c.high_format()?);
    let report = match mr.memo.get(memo_key) {
        Some(r) => {
            summary.reused += 1;
            r.clone()
        }
        None => {
            let o = overrides(c, &p, mr, cache)?;
            let r = match gpu {
                Some(g) => compare_on_gpu(spec, mr, g, &o)?,
                None => Evaluator::new(&mr.model, &mr.windows)?.compare_prefix(
                    &mr.base,
                    &o,
                    &p.block_sigs,
                    &mut mr.prefix,
                    spec.eval.resamples,
                    spec.eval.seed,
                )?,
            };
            summary.evaluated += 1;
            mr.memo.insert(memo_key.clone(), r.clone());
            r
        }
    };
    let (mut bits, mut n) = (0.0, 0.0);
    for (l, low) in mr.model.linears.iter().zip(low_linear) {
        let f = if *low { &low_f } else { &high_f };
        let k = l.n_params() as f64;
        bits += f.bits_per_weight(l.out_features, l.in_features) * k;
        n += k;
    }
    Ok(TrialRow {
        config_key: c.key(),
        trial_seed: seed,
        trial_index: t,
        model: c.model.clone(),
        granularity: c.granularity.id().into(),
        low: c.low.clone(),
        high: c.high.clone(),
        method: c.method.clone(),
        qb: c.qb.clone(),
        qr_target: c.qr_target,
        qr_achieved: a.qr,
        qr_weighting: c.granularity.qr_weighting().into(),
        bits_per_weight: if n > 0.0 { bits / n } else { 0.0 },
        nll_base: report.nll_base,
        nll: report.nll_quant,
        delta_nll: report.delta_nll,
        ci_lo: report.delta_nll_ci95.lo,
        ci_hi: report.delta_nll_ci95.hi,
        kl_mean: report.kl_mean,
        top1: report.top1_agreement,
        n_tokens: report.n_tokens,
        seconds: t0.elapsed().as_secs_f64(),
        assignment: a.bits(),
        delta_nll_se: report.delta_nll_se,
        kl_se: report.kl_se,
        window_delta: report.window_delta.iter().map(|&d| d as f32).collect(),
    })
}
