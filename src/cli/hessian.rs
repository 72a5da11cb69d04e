//! `quantscape hessian`: curvature of the held-out loss around a checkpoint's linear weights —
//! top Hessian eigenvalue (power iteration), trace (Hutchinson; per layer too) and, with
//! `--direction quant:FORMAT[:QB[:METHOD]]`, the curvature along the quantization direction
//! u = W_q − W and the second-order prediction ΔL ≈ gᵀu + ½uᵀHu against the measured ΔL.
//! HVPs are central differences of autograd gradients (see `landscape::hessian`).

use std::process::ExitCode;

use quantscape::eval::windows::{make_windows, WindowSpec};
use quantscape::landscape::hessian::{along, probe, LossGrad as _, ModelLoss, ProbeOptions};
use quantscape::landscape::{build, DirectionSpec};
use quantscape::model::{hub, Tokenizer};

/// Arguments of `hessian`.
#[derive(clap::Args, Debug)]
pub struct HessianArgs {
    /// Model folder, `org/name` in the local Hugging Face cache, or a llama `.gguf` file.
    #[arg(long)]
    pub model: String,
    /// Also probe along this direction: `quant:FORMAT[:QB[:METHOD]]` or `random:SEED`.
    #[arg(long)]
    pub direction: Option<String>,
    /// Held-out text: a bundled split name or a file.
    #[arg(long, default_value = "eval_austen")]
    pub data: String,
    /// Windows (one batch).
    #[arg(long, default_value_t = 8)]
    pub windows: usize,
    /// Tokens per window.
    #[arg(long, default_value_t = 128)]
    pub ctx: usize,
    /// Seed of the windows and the random probe vectors.
    #[arg(long, default_value_t = 0)]
    pub seed: u64,
    /// Finite-difference step relative to ‖W‖.
    #[arg(long, default_value_t = 1e-3)]
    pub step: f64,
    /// Power-iteration products at most.
    #[arg(long, default_value_t = 20)]
    pub max_iter: usize,
    /// Hutchinson samples at most.
    #[arg(long, default_value_t = 30)]
    pub samples: usize,
    /// Relative tolerance of the stopping rules.
    #[arg(long, default_value_t = 1e-3)]
    pub tol: f64,
    /// Print JSON instead of a table.
    #[arg(long)]
    pub json: bool,
}

/// Runs the command.
pub fn run(a: &HessianArgs) -> anyhow::Result<ExitCode> {
    let spec = a
        .direction
        .as_deref()
        .map(DirectionSpec::parse)
        .transpose()?;
    let dir = hub::resolve(&a.model)?;
    let tok = Tokenizer::load(&dir)?;
    let (text, label) = quantscape::eval::corpus::load_named(&a.data)?;
    let f0 = quantscape::model::Transformer::load(&dir)?;
    let ws = WindowSpec {
        ctx: a.ctx.min(f0.config.max_positions),
        stride: None,
        n_windows: a.windows,
        seed: a.seed,
    };
    let windows = make_windows(&tok.encode(&text)?, tok.bos, &ws, &label)?;
    let f = ModelLoss::new(&dir, &windows)?;
    let x = f.weights()?;
    let o = ProbeOptions {
        rel_step: a.step,
        max_iter: a.max_iter,
        max_samples: a.samples,
        tol: a.tol,
        seed: a.seed,
    };
    let p = probe(&f, &x, &o)?;
    let model = f.model();
    let n_layers = model.blocks.len();
    let mut per_layer = vec![0.0; n_layers];
    for (site, t) in model.linears.iter().zip(&p.trace_per_block) {
        if let Some(s) = per_layer.get_mut(site.layer) {
            *s += t;
        }
    }
    let direction = match &spec {
        Some(s) => {
            let d = build(&f0, &x, s)?;
            let (gu, uhu, norm) = along(&f, &x, &d.delta, a.step)?;
            let shifted: Vec<Vec<f32>> = match &d.endpoint {
                Some(e) => e.clone(),
                None => x
                    .iter()
                    .zip(&d.delta)
                    .map(|(w, u)| w.iter().zip(u).map(|(p, q)| p + q).collect())
                    .collect(),
            };
            let measured = f.loss_grad(&shifted)?.0 - p.loss;
            Some(serde_json::json!({
                "direction": a.direction, "norm": norm, "g_dot_u": gu, "u_h_u": uhu,
                "curvature": uhu / (norm * norm).max(1e-30),
                "predicted_delta_l": gu + 0.5 * uhu, "measured_delta_l": measured,
            }))
        }
        None => None,
    };
    if a.json {
        let v = serde_json::json!({
            "model": dir, "n_params_non_embedding": model.n_params_non_embedding,
            "data": label, "windows": windows.len(), "ctx": windows.ctx,
            "probe": p, "trace_per_layer": per_layer, "along": direction,
        });
        outln!("{}", serde_json::to_string_pretty(&v)?);
        return Ok(ExitCode::SUCCESS);
    }
    outln!(
        "model      {} (N = {})",
        dir.display(),
        super::info::human(model.n_params_non_embedding)
    );
    outln!(
        "data       {label}: {} windows × {} tokens, seed {}",
        windows.len(),
        windows.ctx,
        a.seed
    );
    outln!("loss       {:.5} nats/token", p.loss);
    outln!(
        "top λ      {:.5e}  ({} products; HVP step error {:.1e})",
        p.top_eigenvalue,
        p.eig_iterations,
        p.hvp_rel_error
    );
    outln!(
        "trace      {:.5e}  ({} Hutchinson samples)",
        p.trace,
        p.trace_samples
    );
    for (l, t) in per_layer.iter().enumerate() {
        outln!("  layer {l:<3} {t:.4e}");
    }
    if let Some(d) = direction {
        outln!(
            "along {}: ‖u‖ {:.4e}, uᵀHu/‖u‖² {:.4e}",
            d["direction"].as_str().unwrap_or(""),
            d["norm"].as_f64().unwrap_or(f64::NAN),
            d["curvature"].as_f64().unwrap_or(f64::NAN)
        );
        outln!(
            "ΔL         predicted gᵀu + ½uᵀHu = {:+.5} (gᵀu {:+.5}, ½uᵀHu {:+.5}); measured {:+.5}",
            d["predicted_delta_l"].as_f64().unwrap_or(f64::NAN),
            d["g_dot_u"].as_f64().unwrap_or(f64::NAN),
            0.5 * d["u_h_u"].as_f64().unwrap_or(f64::NAN),
            d["measured_delta_l"].as_f64().unwrap_or(f64::NAN)
        );
    }
    Ok(ExitCode::SUCCESS)
}
