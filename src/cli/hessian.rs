//! `quantscape hessian`: curvature of the held-out loss around a checkpoint's linear weights —
//! top Hessian eigenvalue (power iteration), trace (Hutchinson; per layer too) and, with
//! `--direction quant:FORMAT[:QB[:METHOD]]`, the curvature along the quantization direction
//! u = W_q − W and the second-order prediction ΔL ≈ gᵀu + ½uᵀHu against the measured ΔL.
//! HVPs are central differences of autograd gradients (see `landscape::hessian`).

use std::process::ExitCode;

use quantscape::landscape::hessian::{report, HessianRequest, ProbeOptions};
use quantscape::model::hub;

/// Arguments of `hessian`.
#[derive(clap::Args, Debug)]
pub struct HessianArgs {
    /// Model folder, `org/name` in the local Hugging Face cache, or a llama `.gguf` file.
    #[arg(long)]
    pub model: String,
    /// Also probe along this direction: `quant:FORMAT[:QB[:METHOD]]`, `random:SEED` or
    /// `hessian[:SEED]`.
    #[arg(long)]
    pub direction: Option<String>,
    #[command(flatten)]
    pub held_out: super::heldout::HeldOutArgs,
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
    #[command(flatten)]
    pub sites: super::heldout::SitesArgs,
    /// Print JSON instead of a table.
    #[arg(long)]
    pub json: bool,
    /// Hide the progress bar.
    #[arg(long)]
    pub quiet: bool,
}

/// Runs the command.
pub fn run(a: &HessianArgs) -> anyhow::Result<ExitCode> {
    if let Some(d) = &a.direction {
        quantscape::landscape::DirectionSpec::parse(d)?;
    }
    let dir = hub::resolve(&a.model)?;
    let req = HessianRequest {
        data: a.held_out.data.clone(),
        windows: a.held_out.windows,
        ctx: a.held_out.ctx,
        direction: a.direction.clone(),
        options: ProbeOptions {
            rel_step: a.step,
            max_iter: a.max_iter,
            max_samples: a.samples,
            tol: a.tol,
            seed: a.held_out.seed,
        },
        sites: a.sites.filter()?,
    };
    let bar = super::bar(a.quiet || a.json, "hessian", "gradients");
    let r = report(&dir, &req, &|done, total| {
        bar.set_length(total as u64);
        bar.set_position(done as u64);
        true
    })?;
    bar.finish_and_clear();
    if a.json {
        let v = serde_json::json!({ "model": dir, "report": r });
        outln!("{}", serde_json::to_string_pretty(&v)?);
        return Ok(ExitCode::SUCCESS);
    }
    let p = &r.probe;
    outln!(
        "model      {} (N = {})",
        dir.display(),
        super::info::human(r.n_params_non_embedding)
    );
    outln!(
        "data       {}: {} windows × {} tokens, seed {}",
        r.data,
        r.windows,
        r.ctx,
        a.held_out.seed
    );
    outln!("sites      {}", r.sites);
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
    for (l, t) in r.trace_per_layer.iter().enumerate() {
        outln!("  layer {l:<3} {t:.4e}");
    }
    if let Some(d) = &r.along {
        outln!(
            "along {}: ‖u‖ {:.4e}, uᵀHu/‖u‖² {:.4e}",
            d.direction,
            d.norm,
            d.curvature
        );
        outln!(
            "ΔL         predicted gᵀu + ½uᵀHu = {:+.5} (gᵀu {:+.5}, ½uᵀHu {:+.5}); measured {:+.5}",
            d.predicted_delta_l,
            d.g_dot_u,
            0.5 * d.u_h_u,
            d.measured_delta_l
        );
    }
    Ok(ExitCode::SUCCESS)
}
