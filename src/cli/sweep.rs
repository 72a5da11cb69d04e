//! `quantscape sweep | merge | export | forget`: run a mixed-precision sweep into a SQLite
//! results store (resumable, shardable for Slurm job arrays), join shard stores, write CSV, drop
//! the rows of models that changed.

use std::path::{Path, PathBuf};
use std::process::ExitCode;

use anyhow::{bail, Context as _};
use quantscape::search::cache::DEFAULT_CACHE_BYTES;
use quantscape::search::export::{summarize, write_csv};
use quantscape::search::{Shard, Store, SweepSpec};
use quantscape::tasks::sweep::{self, SweepRequest};

/// Arguments of `sweep`.
#[derive(clap::Args, Debug)]
pub struct SweepArgs {
    /// Sweep spec (RON), e.g. assets/sweeps/demo.ron.
    pub spec: PathBuf,
    /// Results database (created, or resumed when it holds this spec's results).
    #[arg(long)]
    pub out: PathBuf,
    /// Run only work items k with k mod n = i (Slurm: $SLURM_ARRAY_TASK_ID/$SLURM_ARRAY_TASK_COUNT).
    #[arg(long, default_value = "0/1")]
    pub shard: String,
    /// Memory budget of the quantized-weight cache (MiB).
    #[arg(long, default_value_t = DEFAULT_CACHE_BYTES >> 20)]
    pub cache_mb: usize,
    /// Where trials run: `cpu`; `gpu` (layer- and block-wise trials on the GPU, against a
    /// base reference computed there; matmul-wise trials quantize activations and stay on the
    /// CPU); `auto` (the GPU when one opens).
    #[arg(long, default_value = "cpu", value_parser = ["cpu", "gpu", "auto"])]
    pub device: String,
    /// Hide the progress bar.
    #[arg(long)]
    pub quiet: bool,
}

/// Arguments of `merge`.
#[derive(clap::Args, Debug)]
pub struct MergeArgs {
    /// Shard databases of one sweep spec.
    #[arg(required = true)]
    pub inputs: Vec<PathBuf>,
    /// Merged database (created, or extended when it holds the same spec).
    #[arg(long)]
    pub out: PathBuf,
}

/// Arguments of `forget`.
#[derive(clap::Args, Debug)]
pub struct ForgetArgs {
    /// Results database.
    pub results: PathBuf,
    /// Model to drop, as the store names it (`bundled:qs-neox-s3-2M`); `*` matches any run of
    /// characters (`'bundled:qs-neox-*'`). Repeatable.
    #[arg(long = "model", required = true)]
    pub models: Vec<String>,
}

/// Arguments of `export`.
#[derive(clap::Args, Debug)]
pub struct ExportArgs {
    /// Results database.
    pub results: PathBuf,
    /// Per-trial CSV.
    #[arg(long)]
    pub csv: PathBuf,
    /// Per-configuration summary CSV (default: next to --csv, `.summary.csv`).
    #[arg(long)]
    pub summary: Option<PathBuf>,
}

fn read_spec(path: &Path) -> anyhow::Result<SweepSpec> {
    Ok(SweepSpec::load(path)?)
}

/// Runs `sweep`. Everything that can be checked is checked before the store is created; a store
/// this run created is removed again if the run fails before a trial was stored.
pub fn run_sweep(a: &SweepArgs) -> anyhow::Result<ExitCode> {
    let shard: Shard = a.shard.parse()?;
    let req = SweepRequest {
        spec: read_spec(&a.spec)?,
        out: a.out.clone(),
        shard,
        cache_bytes: a.cache_mb << 20,
        device: a.device.parse()?,
    };
    let rep = super::run_task(a.quiet, super::unit_of, |ctx| sweep::run(&req, ctx))
        .with_context(|| format!("sweep spec {}", a.spec.display()))?;
    match &rep.notice {
        Some(n) => eprintln!("warning: {n}"),
        None if rep.device != "cpu" => eprintln!("sweep trials on {}", rep.device),
        None => {}
    }
    let (spec, s) = (&req.spec, &rep.summary);
    outln!(
        "sweep `{}`: {} work items, shard {}/{} holds {} ({} already in {})",
        spec.name,
        s.items_total,
        shard.index,
        shard.count,
        s.items_shard,
        s.already_done,
        a.out.display()
    );
    outln!(
        "this run: {} evaluated, {} reused from identical assignments, {} unreachable within Qr ± {} (not stored), {:.1} s",
        s.evaluated,
        s.reused,
        s.unreachable,
        spec.qr_tolerance,
        s.elapsed_secs
    );
    for n in &s.notes {
        outln!("note: {n}");
    }
    if !s.devices.is_empty() {
        outln!("evaluated on: {}", s.devices.join("; "));
    }
    outln!(
        "weight cache: {} hits, {} tensors quantized; prefix reuse: {} of {} block evaluations done ({:.0}% saved)",
        s.cache_hits,
        s.cache_misses,
        s.blocks_computed,
        s.blocks_total,
        if s.blocks_total > 0 {
            100.0 * (1.0 - s.blocks_computed as f64 / s.blocks_total as f64)
        } else {
            0.0
        }
    );
    Ok(ExitCode::SUCCESS)
}

/// Runs `merge`. Every input is opened and read whole (models, trials, features) before the
/// output is touched; an output this command created is removed again on failure.
pub fn run_merge(a: &MergeArgs) -> anyhow::Result<ExitCode> {
    if a.inputs.iter().any(|p| p == &a.out) {
        bail!("--out must not be one of the inputs ({})", a.out.display());
    }
    let (first, spec) = Store::open_existing(&a.inputs[0])?;
    drop(first);
    for p in &a.inputs {
        let (s, other) = Store::open_existing(p)?;
        if other.canonical() != spec.canonical() {
            bail!(
                "results of another sweep spec cannot be merged ({} holds `{}`, {} holds `{}`)",
                a.inputs[0].display(),
                spec.name,
                p.display(),
                other.name
            );
        }
        s.check_readable()?;
    }
    let created = super::Created::sqlite(&a.out);
    let out = Store::open(&a.out, &spec, &quantscape::search::provenance::provenance())?;
    let mut added = 0;
    for p in &a.inputs {
        let n = out.merge_from(p)?;
        outln!("{}: {n} new trials", p.display());
        added += n;
    }
    outln!(
        "{}: {added} trials added, {} in all",
        a.out.display(),
        out.finished()?.len()
    );
    drop(out);
    created.keep();
    Ok(ExitCode::SUCCESS)
}

/// Runs `export`.
pub fn run_export(a: &ExportArgs) -> anyhow::Result<ExitCode> {
    let (store, _) = Store::open_existing(&a.results)?;
    let trials = store.trials()?;
    let models = store.models()?;
    let summary_path = a.summary.clone().unwrap_or_else(|| {
        let stem = a
            .csv
            .file_stem()
            .map_or_else(|| "results".into(), |s| s.to_string_lossy().to_string());
        a.csv.with_file_name(format!("{stem}.summary.csv"))
    });
    let summary = summarize(&trials, &models, &store.features()?);
    let created = super::Created::file(&a.csv);
    write_csv(&a.csv, &trials)?;
    write_csv(&summary_path, &summary)?;
    created.keep();
    outln!(
        "wrote {} ({} trials) and {} ({} configurations)",
        a.csv.display(),
        trials.len(),
        summary_path.display(),
        summary.len()
    );
    Ok(ExitCode::SUCCESS)
}

/// Runs `forget`: every model of the store matching a pattern loses its rows (a pattern matching
/// none is an error listing the store's models, and nothing is removed).
pub fn run_forget(a: &ForgetArgs) -> anyhow::Result<ExitCode> {
    use quantscape::search::models::glob_match;
    let (store, _) = Store::open_existing(&a.results)?;
    let mut names: Vec<String> = store.models()?.into_iter().map(|m| m.model).collect();
    names.extend(store.trials()?.into_iter().map(|t| t.model));
    names.sort();
    names.dedup();
    for pat in &a.models {
        if !names.iter().any(|n| glob_match(pat, n)) {
            bail!(
                "{}: no model matches `{pat}` (models: {})",
                a.results.display(),
                names.join(", ")
            );
        }
    }
    for n in names
        .iter()
        .filter(|n| a.models.iter().any(|p| glob_match(p, n)))
    {
        let removed = store.forget_model(n)?;
        outln!("{n}: {removed} trials removed");
    }
    outln!(
        "{}: {} trials left",
        a.results.display(),
        store.finished()?.len()
    );
    Ok(ExitCode::SUCCESS)
}
