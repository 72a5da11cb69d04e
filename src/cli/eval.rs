//! `quantscape eval`: NLL and perplexity of a model on held-out text, and — with `--format` —
//! ΔL (paired bootstrap 95% CI over windows), KL(base‖quant) mean/p50/p90/p99 and top-1
//! agreement of the model with every quantizable weight quantized by that codec.
//! `--act-format` also quantizes every matmul's activation operands (Q·Kᵀ and attention·V
//! included) along K; `--act-sites linear|attention` restricts it to the linear layers' inputs
//! or to the attention matmuls, to tell which costs the loss. Embeddings, norms, biases and the LM head stay in fp32 (said in the report).

use std::process::ExitCode;

use anyhow::{bail, Context as _};
use quantscape::codecs::Method;
use quantscape::eval::windows::{make_windows, WindowSpec};
use quantscape::eval::{Evaluator, DEFAULT_RESAMPLES, DEFAULT_TOP_K};
use quantscape::model::quantized::Overrides;
use quantscape::model::{hub, MatmulKind, Tokenizer, Transformer};

use super::engine::Engine;

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

/// Runs `f` with the batch-logits function of `model` under `hooks` on this engine.
fn with_logits<T>(
    engine: &Engine,
    model: &Transformer,
    hooks: &dyn quantscape::model::Hooks,
    f: impl FnOnce(&mut quantscape::eval::BatchLogits<'_>) -> quantscape::Result<T>,
) -> anyhow::Result<T> {
    match engine {
        Engine::Cpu => Ok(f(&mut |_, ids, b| model.forward(ids, b, hooks))?),
        #[cfg(feature = "gpu")]
        Engine::Gpu(ctx) => {
            let gm = quantscape::gpu::GpuModel::new(ctx, model, hooks)?;
            Ok(f(&mut |_, ids, b| gm.logits(ids, b))?)
        }
    }
}

/// Runs the command.
pub fn run(a: &EvalArgs) -> anyhow::Result<ExitCode> {
    let weight_format = a
        .format
        .as_deref()
        .map(|f| super::resolve_format(f, a.codec.block.as_deref(), a.codec.rounding.as_deref()))
        .transpose()?;
    if weight_format.is_none() && (a.codec.block.is_some() || a.codec.rounding.is_some()) {
        bail!("--block and --rounding need --format");
    }
    let act_format = a
        .act_format
        .as_deref()
        .map(|f| super::resolve_format(f, None, None))
        .transpose()?;
    if act_format.is_none() && a.act_sites != "all" {
        bail!("--act-sites needs --act-format");
    }
    let method: Method = a.codec.method.parse()?;
    quantscape::limits::TOP_K.check(a.top_k)?;
    quantscape::limits::RESAMPLES.check(a.resamples)?;
    quantscape::limits::WINDOWS.check(a.windows)?;
    let (text, data_label) = super::calib::load_text(&a.data).context("--data")?;
    let dir = hub::resolve(&a.model)?;
    let model = Transformer::load(&dir)?;
    let tok = Tokenizer::load(&dir)?;
    if tok.vocab_size() > model.config.vocab_size {
        bail!(
            "tokenizer has {} tokens but the model only {} ({})",
            tok.vocab_size(),
            model.config.vocab_size,
            dir.display()
        );
    }
    let max = model.config.max_positions;
    let ctx = a.ctx.unwrap_or(512.min(max));
    if ctx > max {
        bail!(
            "--ctx {ctx} is longer than the model allows ({max} positions, {})",
            dir.display()
        );
    }
    let tokens = tok.encode(&text)?;
    let spec = WindowSpec {
        ctx,
        stride: a.stride,
        n_windows: a.windows,
        seed: a.seed,
    };
    let windows = make_windows(&tokens, tok.bos, &spec, &data_label)?;
    let ev = Evaluator::new(&model, &windows)?;
    let cpu_only = act_format
        .is_some()
        .then(|| "activation formats (--act-format) run on the CPU".to_string());
    let engine = Engine::open(&a.device, cpu_only, "evaluating")?;

    let b = super::bar(a.quiet, "base", "windows");
    b.set_length(windows.len() as u64);
    let base = with_logits(&engine, &model, &quantscape::model::NoHooks, |logits| {
        ev.base_with(a.top_k, logits, &mut |done, _| {
            b.set_position(done as u64);
            true
        })
    })?;
    b.finish_and_clear();

    let mut hooks = Overrides::default();
    let mut calib = None;
    if let Some(f) = &weight_format {
        let (o, _, rep) = super::calib::quantize_model(
            &model,
            &tok,
            f,
            &method,
            &a.calib,
            Some(&data_label),
            a.quiet,
        )?;
        hooks = o;
        calib = method.needs_calibration().then_some(rep);
    } else if method.needs_calibration() {
        bail!("--method {method} needs --format");
    }
    if let Some(f) = &act_format {
        hooks.operands = model
            .matmuls
            .iter()
            .map(|m| {
                let attention = matches!(m.kind, MatmulKind::QueryKey | MatmulKind::AttnValue);
                let on = match a.act_sites.as_str() {
                    "linear" => !attention,
                    "attention" => attention,
                    _ => true,
                };
                on.then_some(*f)
            })
            .collect();
    }
    let b = super::bar(a.quiet, "quantized", "windows");
    b.set_length(windows.len() as u64);
    let report = with_logits(&engine, &model, &hooks, |logits| {
        ev.compare_with(&base, logits, a.resamples, a.seed, &mut |done, _| {
            b.set_position(done as u64);
            true
        })
    })?;
    b.finish_and_clear();

    let wf = weight_format.as_ref().map(ToString::to_string);
    let af = act_format.as_ref().map(ToString::to_string);
    // Parameter-weighted over the quantized linear weights (partial blocks, global scales).
    let bpw = weight_format.as_ref().map(|f| {
        let n: usize = model.linears.iter().map(|l| l.n_params()).sum();
        let bits: f64 = model
            .linears
            .iter()
            .map(|l| f.bits_per_weight(l.out_features, l.in_features) * l.n_params() as f64)
            .sum();
        bits / n.max(1) as f64
    });
    if a.json {
        let v = serde_json::json!({
            "model": dir, "architecture": model.config.architecture, "data": data_label,
            "n_params_non_embedding": model.n_params_non_embedding,
            "weight_format": wf, "bits_per_weight": bpw, "method": method.spelling(), "act_format": af,
            "act_sites": af.as_ref().map(|_| a.act_sites.as_str()),
            "calibration": calib, "device": engine.describe(),
            "ctx": ctx, "bos": tok.bos, "windows_candidates": windows.n_candidates, "seed": a.seed,
            "high_precision": "embeddings, norms, biases, LM head (fp32)",
            "report": report,
        });
        outln!("{}", serde_json::to_string_pretty(&v)?);
        return Ok(ExitCode::SUCCESS);
    }
    outln!(
        "model      {} ({}, N = {})",
        dir.display(),
        model.config.architecture,
        super::info::human(model.n_params_non_embedding)
    );
    outln!(
        "data       {}: {} windows × {} tokens (of {} candidates), {} scored tokens, seed {}",
        data_label,
        report.n_windows,
        ctx,
        windows.n_candidates,
        report.n_tokens,
        a.seed
    );
    outln!("device     {}", engine.describe());
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
        let which = match a.act_sites.as_str() {
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
