//! The evaluate task: one checkpoint, one set of held-out windows, the base model once, then
//! every [`QuantConfig`] compared against it — ΔL with its paired-bootstrap 95 % CI, KL(base‖quant)
//! and top-1 agreement (units: nats/token; top-1 as a fraction). `quantscape eval` runs it with
//! one configuration (or none: the base alone); the Evaluate view with several.
//!
//! Weights are quantized on the CPU (calibrated methods read [`CalibSettings`]); the forward
//! passes run on the request's [`Device`] (activation formats keep them on the CPU).
//! Embeddings, norms, biases and the LM head stay in fp32.

use std::fmt;
use std::path::PathBuf;

use serde::{Deserialize, Serialize};

use super::calibrate::{quantize_model, CalibSettings};
use super::engine::{Device, Engine};
use crate::codecs::{Format, Method};
use crate::error::{Error, Result};
use crate::eval::metrics::Report;
use crate::eval::windows::{make_windows, WindowSpec};
use crate::eval::{Evaluator, DEFAULT_RESAMPLES, DEFAULT_TOP_K};
use crate::jobs::JobCtx;
use crate::model::calibrated::CalibReport;
use crate::model::quantized::Overrides;
use crate::model::{hub, MatmulKind, Tokenizer, Transformer};

/// Which matmuls an activation format applies to.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum ActSites {
    /// Every matmul, Q·Kᵀ and attention·V included.
    #[default]
    All,
    /// The activation inputs of the linear layers.
    Linear,
    /// Both operands of Q·Kᵀ and attention·V.
    Attention,
}

impl ActSites {
    /// `all`, `linear`, `attention`.
    pub fn id(self) -> &'static str {
        match self {
            Self::All => "all",
            Self::Linear => "linear",
            Self::Attention => "attention",
        }
    }

    /// Parses [`ActSites::id`].
    pub fn parse(s: &str) -> Result<Self> {
        match s {
            "all" => Ok(Self::All),
            "linear" => Ok(Self::Linear),
            "attention" => Ok(Self::Attention),
            other => Err(Error::Input(format!(
                "activation sites `{other}`: expected all, linear or attention"
            ))),
        }
    }

    fn covers(self, kind: MatmulKind) -> bool {
        let attention = matches!(kind, MatmulKind::QueryKey | MatmulKind::AttnValue);
        match self {
            Self::All => true,
            Self::Linear => !attention,
            Self::Attention => attention,
        }
    }
}

/// Activation quantization: the format of both operands of the chosen matmuls, along K.
#[derive(Clone, Copy, Debug, PartialEq, Serialize, Deserialize)]
pub struct ActQuant {
    /// The operands' format.
    pub format: Format,
    /// Which matmuls.
    pub sites: ActSites,
}

/// One configuration compared against the base.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
pub struct QuantConfig {
    /// The weights' format (None: fp32 weights).
    pub weights: Option<Format>,
    /// How the weights are quantized.
    pub method: Method,
    /// Activation quantization, if any.
    pub acts: Option<ActQuant>,
}

impl QuantConfig {
    /// Weights only, with `method`.
    pub fn weights(format: Format, method: Method) -> Self {
        Self {
            weights: Some(format),
            method,
            acts: None,
        }
    }
}

impl fmt::Display for QuantConfig {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match &self.weights {
            Some(w) => write!(f, "{w} · {}", self.method.spelling())?,
            None => f.write_str("fp32 weights")?,
        }
        if let Some(a) = &self.acts {
            write!(f, " · acts {} on {}", a.format, a.sites.id())?;
        }
        Ok(())
    }
}

/// Everything an evaluation needs.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
pub struct EvalRequest {
    /// Model folder, `org/name` in the local Hugging Face cache, or a llama `.gguf` file.
    pub model: String,
    /// Held-out text: a file or a bundled split.
    pub data: String,
    /// Configurations (none: the base model alone).
    pub configs: Vec<QuantConfig>,
    /// Tokens per window, BOS included (None: 512 or the model's maximum if smaller).
    pub ctx: Option<usize>,
    /// Text tokens between window starts (None: non-overlapping).
    pub stride: Option<usize>,
    /// Windows (a seeded choice among all candidates).
    pub windows: usize,
    /// Seed of the window choice and the bootstrap.
    pub seed: u64,
    /// Top-k base log-probabilities kept per token for KL.
    pub top_k: usize,
    /// Bootstrap resamples.
    pub resamples: usize,
    /// Where the forward passes run.
    pub device: Device,
    /// Calibration of GPTQ/AWQ configurations.
    pub calib: CalibSettings,
}

impl EvalRequest {
    /// The defaults of `quantscape eval` for `model` on `data`.
    pub fn new(model: impl Into<String>, data: impl Into<String>) -> Self {
        Self {
            model: model.into(),
            data: data.into(),
            configs: Vec::new(),
            ctx: None,
            stride: None,
            windows: 64,
            seed: 0,
            top_k: DEFAULT_TOP_K,
            resamples: DEFAULT_RESAMPLES,
            device: Device::Cpu,
            calib: CalibSettings::default(),
        }
    }

    /// Checks what can be checked before loading anything.
    pub fn validate(&self) -> Result<()> {
        crate::limits::TOP_K.check(self.top_k)?;
        crate::limits::RESAMPLES.check(self.resamples)?;
        crate::limits::WINDOWS.check(self.windows)?;
        for c in &self.configs {
            if let Some(w) = &c.weights {
                w.validate()?;
            } else if c.method.needs_calibration() {
                return Err(Error::Input(format!(
                    "--method {} needs --format",
                    c.method
                )));
            }
            if let Some(a) = &c.acts {
                a.format.validate()?;
            }
        }
        Ok(())
    }
}

/// One configuration's result.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
pub struct ConfigReport {
    /// The configuration.
    pub config: QuantConfig,
    /// Stored bits per quantized linear weight, parameter-weighted (None: fp32 weights).
    pub bits_per_weight: Option<f64>,
    /// Calibration details of GPTQ/AWQ.
    pub calibration: Option<CalibReport>,
    /// ΔL, KL, top-1 against the base.
    pub report: Report,
}

/// The evaluation.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
pub struct EvalReport {
    /// The resolved checkpoint folder.
    pub model: PathBuf,
    /// Its architecture.
    pub architecture: String,
    /// Non-embedding parameters (N).
    pub n_params_non_embedding: usize,
    /// The text's label.
    pub data: String,
    /// Tokens per window.
    pub ctx: usize,
    /// The BOS id prepended to every window.
    pub bos: Option<u32>,
    /// Windows the text offered.
    pub windows_candidates: usize,
    /// Seed of the window choice and the bootstrap.
    pub seed: u64,
    /// Where the forward passes ran.
    pub device: String,
    /// Why the request's device was not used, if it was not.
    pub notice: Option<String>,
    /// Base NLL (nats/token) over the windows.
    pub nll_base: f64,
    /// Windows and scored tokens.
    pub n_windows: usize,
    /// Scored tokens.
    pub n_tokens: usize,
    /// One per configuration, in request order.
    pub rows: Vec<ConfigReport>,
}

/// Parameter-weighted bits per quantized linear weight of `format` on `model`.
pub fn bits_per_weight(model: &Transformer, format: &Format) -> f64 {
    let n: usize = model.linears.iter().map(|l| l.n_params()).sum();
    let bits: f64 = model
        .linears
        .iter()
        .map(|l| format.bits_per_weight(l.out_features, l.in_features) * l.n_params() as f64)
        .sum();
    bits / n.max(1) as f64
}

/// Runs the evaluation (stages `base`, the method's id for calibration, `config i/n`).
pub fn run(req: &EvalRequest, ctx: &JobCtx) -> Result<EvalReport> {
    req.validate()?;
    let (text, data_label) = crate::eval::corpus::load_named(&req.data)?;
    let dir = hub::resolve(&req.model)?;
    let model = Transformer::load(&dir)?;
    let tok = Tokenizer::load(&dir)?;
    if tok.vocab_size() > model.config.vocab_size {
        return Err(Error::Input(format!(
            "tokenizer has {} tokens but the model only {} ({})",
            tok.vocab_size(),
            model.config.vocab_size,
            dir.display()
        )));
    }
    let max = model.config.max_positions;
    let n_ctx = req.ctx.unwrap_or(512.min(max));
    if n_ctx > max {
        return Err(Error::Input(format!(
            "--ctx {n_ctx} is longer than the model allows ({max} positions, {})",
            dir.display()
        )));
    }
    let tokens = tok.encode(&text)?;
    let spec = WindowSpec {
        ctx: n_ctx,
        stride: req.stride,
        n_windows: req.windows,
        seed: req.seed,
    };
    let windows = make_windows(&tokens, tok.bos, &spec, &data_label)?;
    let cpu_only = req
        .configs
        .iter()
        .any(|c| c.acts.is_some())
        .then(|| "activation formats (--act-format) run on the CPU".to_string());
    let opened = req.device.open(cpu_only)?;
    let engine = opened.engine;
    let ev = match engine {
        Engine::Cpu => Evaluator::new(&model, &windows)?,
        // The GPU hands back whole B·T·V logits: smaller batches.
        _ => Evaluator::new(&model, &windows)?.for_whole_logits(),
    };
    let n_win = windows.len();
    let base = engine.with_logits(&model, &crate::model::NoHooks, |logits| {
        ev.base_with(req.top_k, logits, &mut |done, _| {
            ctx.report("base", done, n_win);
            !ctx.cancelled()
        })
    })?;
    ctx.check()?;
    let mut rows = Vec::with_capacity(req.configs.len());
    let n_configs = req.configs.len();
    for (i, c) in req.configs.iter().enumerate() {
        let mut hooks = Overrides::default();
        let mut calibration = None;
        if let Some(f) = &c.weights {
            let (o, _, rep) = quantize_model(
                &model,
                &tok,
                f,
                &c.method,
                &req.calib,
                Some(&data_label),
                ctx,
            )?;
            hooks = o;
            calibration = c.method.needs_calibration().then_some(rep);
        }
        if let Some(a) = &c.acts {
            hooks.operands = model
                .matmuls
                .iter()
                .map(|m| a.sites.covers(m.kind).then_some(a.format))
                .collect();
        }
        let stage = if n_configs > 1 {
            format!("config {}/{n_configs}", i + 1)
        } else {
            "quantized".to_string()
        };
        let report = engine.with_logits(&model, &hooks, |logits| {
            ev.compare_with(&base, logits, req.resamples, req.seed, &mut |done, _| {
                ctx.report(&stage, done, n_win);
                !ctx.cancelled()
            })
        })?;
        ctx.check()?;
        rows.push(ConfigReport {
            config: c.clone(),
            bits_per_weight: c.weights.as_ref().map(|f| bits_per_weight(&model, f)),
            calibration,
            report,
        });
    }
    let n_tokens = base.n_tokens();
    let nll_base = base.nll.iter().map(|&x| f64::from(x)).sum::<f64>() / n_tokens.max(1) as f64;
    Ok(EvalReport {
        model: dir,
        architecture: model.config.architecture.clone(),
        n_params_non_embedding: model.n_params_non_embedding,
        data: data_label,
        ctx: n_ctx,
        bos: tok.bos,
        windows_candidates: windows.n_candidates,
        seed: req.seed,
        device: engine.describe(),
        notice: opened.notice,
        nll_base,
        n_windows: n_win,
        n_tokens,
        rows,
    })
}
