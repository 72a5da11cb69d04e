//! `quantscape eval`: NLL and perplexity of a model on held-out text, and — with `--format` —
//! ΔL (paired bootstrap 95% CI over windows), KL(base‖quant) mean/p50/p90/p99 and top-1
//! agreement of the model with every quantizable weight quantized by that codec.
//! `--act-format` also quantizes every matmul's activation operands (Q·Kᵀ and attention·V
//! included) along K; `--act-sites linear|attention` restricts it to the linear layers' inputs
//! or to the attention matmuls, to tell which costs the loss. Embeddings, norms, biases and the LM head stay in fp32 (said in the report).

use std::process::ExitCode;

use anyhow::bail;
use quantscape::codecs::Method;
use quantscape::eval::metrics::Report;
use quantscape::eval::{DEFAULT_RESAMPLES, DEFAULT_TOP_K};
use quantscape::tasks::evaluate::{self, ActQuant, ActSites, EvalReport, EvalRequest, QuantConfig};

/// Arguments of `eval`.
#[derive(clap::Args, Debug)]
pub struct EvalArgs {
    /// Model folder, `org/name` in the local Hugging Face cache, or a llama `.gguf` file.
    #[arg(long)]
    pub model: String,
    /// Held-out text: a UTF-8 file or a bundled split (`eval_austen`, `eval_kjv`, …).
    #[arg(long, default_value = "eval_austen")]
    pub data: String,
    /// Weight format (a preset or a spelling); without it only the base model is measured.
    #[arg(long)]
    pub format: Option<String>,
    /// Block size, method, rounding.
    #[command(flatten)]
    pub codec: super::CodecArgs,
    /// Calibration (gptq, awq).
    #[command(flatten)]
    pub calib: super::calib::CalibArgs,
    /// Also quantize the activation operands of every matmul with this format.
    #[arg(long)]
    pub act_format: Option<String>,
    /// Which matmuls --act-format quantizes: `all`; `linear` (the activation inputs of the
    /// linear layers); `attention` (both operands of Q·Kᵀ and attention·V).
    #[arg(long, default_value = "all", value_parser = ["all", "linear", "attention"])]
    pub act_sites: String,
    /// Tokens per window, BOS included (default: 512, or the model's maximum if smaller).
    #[arg(long)]
    pub ctx: Option<usize>,
    /// Text tokens between window starts (default: non-overlapping).
    #[arg(long)]
    pub stride: Option<usize>,
    /// Windows evaluated (a seeded choice among all candidates).
    #[arg(long, default_value_t = 64)]
    pub windows: usize,
    /// Seed of the window choice and the bootstrap.
    #[arg(long, default_value_t = 0)]
    pub seed: u64,
    /// Top-k base log-probabilities kept per token for KL.
    #[arg(long, default_value_t = DEFAULT_TOP_K)]
    pub top_k: usize,
    /// Bootstrap resamples.
    #[arg(long, default_value_t = DEFAULT_RESAMPLES)]
    pub resamples: usize,
    /// Where the forward passes run: `cpu`, `gpu` (the resident wgpu forward pass; weight
    /// formats only, an error without an adapter) or `auto` (the GPU when one works and no
    /// --act-format is given, else the CPU with one warning).
    #[arg(long, default_value = "cpu", value_parser = ["cpu", "gpu", "auto"])]
    pub device: String,
    /// Print JSON instead of a table.
    #[arg(long)]
    pub json: bool,
    /// Hide progress bars.
    #[arg(long)]
    pub quiet: bool,
}

impl EvalArgs {
    /// The request these flags describe (validated where flags alone can be).
    pub fn request(&self) -> anyhow::Result<EvalRequest> {
        let weight_format = self
            .format
            .as_deref()
            .map(|f| {
                super::resolve_format(
                    f,
                    self.codec.block.as_deref(),
                    self.codec.rounding.as_deref(),
                )
            })
            .transpose()?;
        if weight_format.is_none() && (self.codec.block.is_some() || self.codec.rounding.is_some())
        {
            bail!("--block and --rounding need --format");
        }
        let act_format = self
            .act_format
            .as_deref()
            .map(|f| super::resolve_format(f, None, None))
            .transpose()?;
        if act_format.is_none() && self.act_sites != "all" {
            bail!("--act-sites needs --act-format");
        }
        let method: Method = self.codec.method.parse()?;
        if weight_format.is_none() && method.needs_calibration() {
            bail!("--method {method} needs --format");
        }
        let acts = act_format
            .map(|format| -> anyhow::Result<ActQuant> {
                Ok(ActQuant {
                    format,
                    sites: ActSites::parse(&self.act_sites)?,
                })
            })
            .transpose()?;
        let configs = if weight_format.is_some() || acts.is_some() {
            vec![QuantConfig {
                weights: weight_format,
                method,
                acts,
            }]
        } else {
            Vec::new()
        };
        let req = EvalRequest {
            model: self.model.clone(),
            data: self.data.clone(),
            configs,
            ctx: self.ctx,
            stride: self.stride,
            windows: self.windows,
            seed: self.seed,
            top_k: self.top_k,
            resamples: self.resamples,
            device: self.device.parse()?,
            calib: self.calib.settings(),
        };
        req.validate()?;
        Ok(req)
    }
}

/// Runs the command.
pub fn run(a: &EvalArgs) -> anyhow::Result<ExitCode> {
    let req = a.request()?;
    let rep = super::run_task(a.quiet, super::unit_of, |ctx| evaluate::run(&req, ctx))?;
    if let Some(n) = &rep.notice {
        eprintln!("warning: {n}");
    }
    print(a, &rep)
}

/// Prints the report as `eval` always has (JSON: one configuration's report at `report`).
fn print(a: &EvalArgs, rep: &EvalReport) -> anyhow::Result<ExitCode> {
    let row = rep.rows.first();
    let report = row.map_or_else(|| base_only(rep), |r| r.report.clone());
    let config = row.map(|r| &r.config);
    let weight_format = config.and_then(|c| c.weights);
    let act = config.and_then(|c| c.acts);
    let method = config.map_or(Method::Rtn, |c| c.method);
    let calib = row.and_then(|r| r.calibration.clone());
    let bpw = row.and_then(|r| r.bits_per_weight);
    let (dir, ctx, tok_bos) = (&rep.model, rep.ctx, rep.bos);
    let windows_candidates = rep.windows_candidates;
    let act_sites = act.map_or("all", |x| x.sites.id());
    let wf = weight_format.as_ref().map(ToString::to_string);
    let af = act.as_ref().map(|x| x.format.to_string());
    if a.json {
        let v = serde_json::json!({
            "model": dir, "architecture": rep.architecture, "data": rep.data,
            "n_params_non_embedding": rep.n_params_non_embedding,
            "weight_format": wf, "bits_per_weight": bpw, "method": method.spelling(), "act_format": af,
            "act_sites": af.as_ref().map(|_| act_sites),
            "calibration": calib, "device": rep.device,
            "ctx": ctx, "bos": tok_bos, "windows_candidates": windows_candidates, "seed": rep.seed,
            "high_precision": "embeddings, norms, biases, LM head (fp32)",
            "report": report,
        });
        outln!("{}", serde_json::to_string_pretty(&v)?);
        return Ok(ExitCode::SUCCESS);
    }
    outln!(
        "model      {} ({}, N = {})",
        dir.display(),
        rep.architecture,
        super::info::human(rep.n_params_non_embedding)
    );
    outln!(
        "data       {}: {} windows × {} tokens (of {} candidates), {} scored tokens, seed {}",
        rep.data,
        report.n_windows,
        ctx,
        windows_candidates,
        report.n_tokens,
        rep.seed
    );
    outln!("device     {}", rep.device);
    match (&wf, bpw) {
        (Some(f), Some(bits)) => outln!(
            "weights    {f} ({bits:.3} bits/weight), method {}",
            method.spelling()
        ),
        _ => outln!("weights    fp32 (no --format)"),
    }
    if let Some(c) = &calib {
        outln!(
            "calibrated on {} windows × {} tokens of {} (seed {}), {:.1} s",
            c.n_windows,
            c.ctx,
            a.calib.calib,
            a.calib.calib_seed,
            c.elapsed_secs
        );
    }
    if let Some(f) = &af {
        let which = match act_sites {
            "linear" => "on the linear layers' inputs (Q·Kᵀ and attention·V in fp32)",
            "attention" => "on both operands of Q·Kᵀ and attention·V only",
            _ => "on every matmul (Q·Kᵀ and attention·V included)",
        };
        outln!("operands   {f} {which}");
    }
    outln!("kept fp32  embeddings, norms, biases, LM head");
    outln!();
    outln!(
        "NLL base   {:.5} nats/token   perplexity {:.3}",
        report.nll_base,
        report.ppl_base
    );
    if wf.is_some() || af.is_some() {
        outln!(
            "NLL quant  {:.5} nats/token   perplexity {:.3}",
            report.nll_quant,
            report.ppl_quant
        );
        outln!(
            "ΔL         {:+.5}  95% CI [{:+.5}, {:+.5}] (paired bootstrap over windows, {} resamples)",
            report.delta_nll, report.delta_nll_ci95.lo, report.delta_nll_ci95.hi, report.bootstrap_resamples
        );
        outln!(
            "KL         mean {:.5}  p50 {:.5}  p90 {:.5}  p99 {:.5} nats (base top-{} + tail)",
            report.kl_mean,
            report.kl_p50,
            report.kl_p90,
            report.kl_p99,
            report.kl_top_k
        );
        outln!(
            "top-1      {:.2}% agreement with the base",
            100.0 * report.top1_agreement
        );
    }
    Ok(ExitCode::SUCCESS)
}

/// The base model alone, as a report against itself (ΔL, KL 0; top-1 1).
fn base_only(rep: &EvalReport) -> Report {
    Report {
        n_windows: rep.n_windows,
        n_tokens: rep.n_tokens,
        nll_base: rep.nll_base,
        nll_quant: rep.nll_base,
        ppl_base: rep.nll_base.exp(),
        ppl_quant: rep.nll_base.exp(),
        top1_agreement: 1.0,
        ..Report::default()
    }
}
