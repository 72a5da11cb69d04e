//! `quantscape features | forest`: measure the loss-landscape features of every model of a sweep
//! (sharpness, flatness, top Hessian eigenvalue, trace, curvature and SQNR along each
//! configuration's quantization direction) into its results store, and evaluate the
//! random-forest PTQ predictor on the store with leave-one-model-out (or -family-out) splits.

use std::collections::BTreeSet;
use std::path::PathBuf;
use std::process::ExitCode;

use anyhow::Context as _;
use quantscape::landscape::features::{measure, FeatureRequest};
use quantscape::landscape::predictor::{dataset, evaluate, HoldOut};
use quantscape::landscape::DirectionSpec;
use quantscape::laws::forest::ForestConfig;
use quantscape::search::runner::{bundled_models_dir, expand_models};
use quantscape::search::store::{FeatureRow, Store};

/// Arguments of `features`.
#[derive(clap::Args, Debug)]
pub struct FeaturesArgs {
    /// Results store of a sweep (the features are written into it).
    pub store: PathBuf,
    /// Only models whose spec contains this text.
    #[arg(long)]
    pub only: Option<String>,
    #[command(flatten)]
    pub held_out: super::heldout::HeldOutArgs,
    /// Random directions for sharpness and flatness.
    #[arg(long, default_value_t = 4)]
    pub directions: usize,
    /// Sharpness radius ρ (relative weight perturbation).
    #[arg(long, default_value_t = 0.05)]
    pub rho: f64,
    /// Loss rise ε (nats) that defines the flatness radius.
    #[arg(long, default_value_t = 0.1)]
    pub epsilon: f64,
    /// Skip the Hessian probes (eigenvalue, trace, curvature along u).
    #[arg(long)]
    pub no_hessian: bool,
    /// Hide the progress bar.
    #[arg(long)]
    pub quiet: bool,
}

/// Runs `features`.
pub fn run_features(a: &FeaturesArgs) -> anyhow::Result<ExitCode> {
    let (store, spec) = Store::open_existing(&a.store)?;
    let stored: BTreeSet<String> = store.models()?.into_iter().map(|m| m.model).collect();
    let models = expand_models(&spec, &bundled_models_dir())?;
    let configs = spec.configurations(
        &models
            .iter()
            .map(|m| m.spec.clone())
            .collect::<Vec<String>>(),
    )?;
    let mut done = 0;
    outln!(
        "{:<34} {:>9} {:>9} {:>9} {:>10} {:>10} {:>7}",
        "model",
        "NLL",
        "sharp",
        "flat",
        "top λ",
        "trace",
        "secs"
    );
    for m in &models {
        if !stored.contains(&m.spec) || a.only.as_ref().is_some_and(|o| !m.spec.contains(o)) {
            continue;
        }
        let mut quant: Vec<(String, DirectionSpec)> = Vec::new();
        for c in configs.iter().filter(|c| c.model == m.spec) {
            let method: quantscape::codecs::Method = c.method.parse()?;
            let key = format!("{}|{}", c.low, c.method);
            if method.needs_calibration() || quant.iter().any(|(k, _)| *k == key) {
                continue;
            }
            quant.push((
                key,
                DirectionSpec::Quant {
                    format: c.low_format()?,
                    method,
                },
            ));
        }
        let req = FeatureRequest {
            data: a.held_out.data.clone(),
            windows: a.held_out.windows,
            ctx: a.held_out.ctx,
            seed: a.held_out.seed,
            n_directions: a.directions,
            rho: a.rho,
            epsilon: a.epsilon,
            hessian: (!a.no_hessian)
                .then(|| FeatureRequest::default().hessian)
                .flatten(),
            quant,
            ..FeatureRequest::default()
        };
        let bar = super::bar(a.quiet, "features", "evaluations");
        let f = measure(&m.dir, &req, &|d, n| {
            bar.set_length(n as u64);
            bar.set_position(d as u64);
            true
        })
        .with_context(|| format!("measuring the landscape features of {}", m.spec))?;
        bar.finish_and_clear();
        let settings = serde_json::to_string(&req)?;
        let rows: Vec<FeatureRow> = f
            .rows()
            .into_iter()
            .map(|(feature, direction, value)| FeatureRow {
                model: m.spec.clone(),
                feature,
                direction,
                value,
                settings: settings.clone(),
            })
            .collect();
        store.put_features(&m.spec, &rows)?;
        let opt = |v: Option<f64>| v.map_or("-".to_string(), |v| format!("{v:.4e}"));
        outln!(
            "{:<34} {:>9.5} {:>9.5} {:>9.4} {:>10} {:>10} {:>7.1}",
            m.spec,
            f.nll_base,
            f.sharpness,
            f.flatness,
            opt(f.top_eigenvalue),
            opt(f.trace),
            f.elapsed_secs
        );
        done += 1;
    }
    if done == 0 {
        anyhow::bail!(
            "{}: no model of the store matched (models: {})",
            a.store.display(),
            stored.into_iter().collect::<Vec<_>>().join(", ")
        );
    }
    outln!(
        "features of {done} model(s) written to {}",
        a.store.display()
    );
    Ok(ExitCode::SUCCESS)
}

/// Arguments of `forest`.
#[derive(clap::Args, Debug)]
pub struct ForestArgs {
    /// Results store of a sweep (with `quantscape features` run on it for landscape inputs).
    pub store: PathBuf,
    /// Hold out one model or one family at a time.
    #[arg(long, value_enum, default_value = "model")]
    pub hold_out: HoldOut,
    /// Trees.
    #[arg(long, default_value_t = 200)]
    pub trees: usize,
    /// Seed.
    #[arg(long, default_value_t = 0)]
    pub seed: u64,
    /// Print JSON instead of tables.
    #[arg(long)]
    pub json: bool,
}

/// Runs `forest`.
pub fn run_forest(a: &ForestArgs) -> anyhow::Result<ExitCode> {
    let (store, _) = Store::open_existing(&a.store)?;
    let points = dataset(&store)?;
    let cfg = ForestConfig {
        n_trees: a.trees,
        seed: a.seed,
        ..ForestConfig::default()
    };
    let r = evaluate(&points, a.hold_out, &cfg)
        .with_context(|| format!("evaluating the predictor on {}", a.store.display()))?;
    if a.json {
        outln!("{}", serde_json::to_string_pretty(&r)?);
        return Ok(ExitCode::SUCCESS);
    }
    outln!(
        "{} configurations (Qr > 0); landscape features for {} model(s); held out: one {:?} at a time",
        r.n_points,
        r.models_with_features.len(),
        r.hold_out
    );
    outln!(
        "{:<34} {:>6} {:>14} {:>14} {:>14}",
        "held out",
        "points",
        "RMSE forest",
        "no landscape",
        "size only"
    );
    for (w, wo) in r
        .with_landscape
        .groups
        .iter()
        .zip(&r.without_landscape.groups)
    {
        outln!(
            "{:<34} {:>6} {:>14.5} {:>14.5} {:>14.5}",
            w.group,
            w.n_points,
            w.rmse_forest,
            wo.rmse_forest,
            w.rmse_baseline
        );
    }
    outln!(
        "{:<34} {:>6} {:>14.5} {:>14.5} {:>14.5}",
        "all",
        r.n_points,
        r.with_landscape.rmse_forest,
        r.without_landscape.rmse_forest,
        r.with_landscape.rmse_baseline
    );
    outln!("feature importance (forest on every point):");
    let mut imp = r.importances.clone();
    imp.sort_by(|x, y| y.1.total_cmp(&x.1));
    for (n, v) in imp.iter().filter(|(_, v)| *v > 0.0) {
        outln!("  {n:<30} {:>6.1}%", 100.0 * v);
    }
    Ok(ExitCode::SUCCESS)
}
