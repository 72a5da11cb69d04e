//! Sweep specifications (`assets/sweeps/*.ron`) and the configurations they enumerate.
//!
//! A configuration = model × granularity × low format × high format × method × Qb × target Qr
//! (DESIGN §3). Qb applies to the low-precision format (weights and, matmul-wise, activation
//! operands); the high-precision format keeps its own block size. The method applies to the
//! weights of low-precision sites; high-precision weights and every activation operand are
//! rounded to nearest. At Qr = 0 and Qr = 1 every assignment is the same, so such a
//! configuration runs one trial, not `trials`.
//!
//! Configurations are enumerated in a fixed order (models, granularities, low, high, methods,
//! Qb, Qr), each with a canonical key; a trial's seed is derived from the spec seed, the key and
//! the trial index, so a configuration's trials are the same on every machine and every shard.

use std::fmt;

use serde::{Deserialize, Serialize};

use crate::codecs::{BlockSize, Format, Method};
use crate::error::{Error, Result};
use crate::limits;

/// How sites are chosen.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum Granularity {
    /// Each quantizable linear layer (weights only; Qr weighted by parameters).
    Layer,
    /// Each decoder block's linear layers together (weights only; Qr weighted by parameters).
    Block,
    /// Every matmul, Q·Kᵀ and attention·V included (weights and activation operands; Qr
    /// weighted by multiply–accumulates per token).
    Matmul,
}

impl Granularity {
    /// Snake-case id.
    pub fn id(self) -> &'static str {
        match self {
            Granularity::Layer => "layer",
            Granularity::Block => "block",
            Granularity::Matmul => "matmul",
        }
    }

    /// What Qr is a fraction of.
    pub fn qr_weighting(self) -> &'static str {
        match self {
            Granularity::Layer | Granularity::Block => "parameters",
            Granularity::Matmul => "MACs per token",
        }
    }
}

impl fmt::Display for Granularity {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.id())
    }
}

/// Which operands a low-precision site puts in the low format, the same rule at every
/// granularity: the weights of the linear layers it covers and, with
/// [`Operands::WeightsAndActivations`], the input activations of every matmul it covers. A
/// layer site covers one linear (its matmul included); a block site covers its linears and its
/// attention matmuls (Q·Kᵀ, attention·V); a matmul site covers one matmul. With weights only,
/// the attention matmuls (no weights) are not sites; with activations, matmuls no site covers
/// (the attention matmuls at layer granularity) run in the high format.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum Operands {
    /// Weights only.
    Weights,
    /// Weights and the activation operands of every covered matmul.
    WeightsAndActivations,
}

impl Operands {
    /// Snake-case id.
    pub fn id(self) -> &'static str {
        match self {
            Operands::Weights => "weights",
            Operands::WeightsAndActivations => "weights_and_activations",
        }
    }

    /// What sweeps did before the option existed: layer and block sites quantized weights,
    /// matmul sites weights and activations.
    pub fn legacy(g: Granularity) -> Self {
        match g {
            Granularity::Layer | Granularity::Block => Operands::Weights,
            Granularity::Matmul => Operands::WeightsAndActivations,
        }
    }
}

impl fmt::Display for Operands {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.id())
    }
}

/// How many tokens every trial scores: a fixed count, or as many as a target standard error of
/// ΔL needs. For a target, the runner evaluates a pilot of `pilot_windows` windows on every
/// configuration of the model at the spec's highest Qr (trial 0's assignment), takes the
/// largest per-window standard deviation s of ΔL among them, and gives every trial of that
/// model ⌈(s/se)²⌉ windows (at least the pilot's): one window set per model, so that every
/// configuration of a model is compared on the same text. A model needing more than
/// `max_tokens` is an error, not a silently weaker sweep.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct Precision {
    /// Target standard error of a trial's ΔL (nats/token).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub se: Option<f64>,
    /// Scored tokens per trial (rounded up to whole windows).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub tokens: Option<usize>,
    /// Most scored tokens a trial may take.
    #[serde(default = "Precision::default_max_tokens")]
    pub max_tokens: usize,
    /// Windows of the pilot (a target SE only).
    #[serde(default = "Precision::default_pilot_windows")]
    pub pilot_windows: usize,
}

impl Precision {
    fn default_max_tokens() -> usize {
        1 << 17
    }

    fn default_pilot_windows() -> usize {
        32
    }

    /// Windows holding at least `tokens` scored tokens at `ctx` (ctx − 1 per window).
    pub fn windows_for(tokens: usize, ctx: usize) -> usize {
        tokens.div_ceil(ctx.saturating_sub(1).max(1))
    }

    /// Windows a pilot standard deviation `sd` (per-window ΔL) needs for this target, or an
    /// error naming `model` when the cap is below it. None for a fixed token count.
    pub fn windows_from_pilot(&self, sd: f64, ctx: usize, model: &str) -> Result<Option<usize>> {
        let Some(se) = self.se else {
            return Ok(None);
        };
        let cap = Self::windows_for(self.max_tokens, ctx).max(1);
        let need = if sd.is_finite() {
            ((sd / se).powi(2).ceil() as usize).max(self.pilot_windows)
        } else {
            return Err(Error::Input(format!(
                "precision: the pilot of {model} gave no per-window spread (sd {sd})"
            )));
        };
        if need > cap {
            return Err(Error::Input(format!(
                "precision: se {se} on {model} needs about {need} windows ({} tokens; pilot \
                 per-window sd {sd:.5} over {} windows), above max_tokens {} ({cap} windows): \
                 raise max_tokens or loosen se",
                need * (ctx - 1),
                self.pilot_windows,
                self.max_tokens
            )));
        }
        Ok(Some(need))
    }

    fn validate(&self, ctx: usize) -> Result<()> {
        let per = ctx.saturating_sub(1).max(1);
        match (self.se, self.tokens) {
            (Some(_), Some(_)) => {
                return Err(bad("precision: give `se` or `tokens`, not both"));
            }
            (None, None) => {
                return Err(bad(
                    "precision: give a target `se` (nats) or a `tokens` count",
                ));
            }
            (Some(se), None) if !(se.is_finite() && se > 0.0) => {
                return Err(bad(format!(
                    "precision: se {se} must be a positive number of nats"
                )));
            }
            (None, Some(t)) if t > self.max_tokens => {
                return Err(bad(format!(
                    "precision: tokens {t} exceeds max_tokens {}",
                    self.max_tokens
                )));
            }
            (None, Some(0)) => return Err(bad("precision: tokens must be at least 1")),
            _ => {}
        }
        if self.max_tokens < per {
            return Err(bad(format!(
                "precision: max_tokens {} is less than one window ({per} scored tokens at ctx {ctx})",
                self.max_tokens
            )));
        }
        limits::WINDOWS
            .named("precision windows (max_tokens / (ctx − 1))")
            .check(Self::windows_for(self.max_tokens, ctx))
            .map_err(|e| bad(e.to_string()))?;
        if self.se.is_some()
            && !(2..=Self::windows_for(self.max_tokens, ctx)).contains(&self.pilot_windows)
        {
            return Err(bad(format!(
                "precision: pilot_windows {} must be at least 2 and within max_tokens ({} windows)",
                self.pilot_windows,
                Self::windows_for(self.max_tokens, ctx)
            )));
        }
        Ok(())
    }
}

/// Which per-configuration statistic of the trials a fit or figure uses by default.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash, Serialize, Deserialize, Default)]
#[serde(rename_all = "snake_case")]
pub enum Statistic {
    /// Mean over trials (random assignments): what a random mixed-precision choice costs.
    #[default]
    Mean,
    /// Median over trials.
    Median,
    /// Lowest over trials: what a random search of T trials finds (best of T).
    Best,
}

impl Statistic {
    /// Every statistic.
    pub const ALL: [Statistic; 3] = [Statistic::Mean, Statistic::Median, Statistic::Best];

    /// Snake-case id.
    pub fn id(self) -> &'static str {
        match self {
            Statistic::Mean => "mean",
            Statistic::Median => "median",
            Statistic::Best => "best",
        }
    }

    /// How a report says it.
    pub fn label(self) -> &'static str {
        match self {
            Statistic::Mean => "mean over trials",
            Statistic::Median => "median over trials",
            Statistic::Best => "best of T trials",
        }
    }
}

impl std::str::FromStr for Statistic {
    type Err = Error;

    fn from_str(s: &str) -> Result<Self> {
        Statistic::ALL
            .into_iter()
            .find(|x| {
                x.id().eq_ignore_ascii_case(s.trim())
                    || (s.trim() == "min" && *x == Statistic::Best)
            })
            .ok_or_else(|| {
                Error::Input(format!(
                    "unknown statistic `{s}` (expected mean, median or best)"
                ))
            })
    }
}

impl fmt::Display for Statistic {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.id())
    }
}

/// What a fit or figure measures the cost of quantization by.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash, Serialize, Deserialize, Default)]
#[serde(rename_all = "snake_case")]
pub enum Metric {
    /// ΔL = NLL(quantized) − NLL(base), nats/token.
    #[default]
    DeltaNll,
    /// KL(base‖quantized) per token, nats (llama.cpp's KLD): positive, and far less noisy than
    /// ΔL at small degradations.
    Kl,
}

impl Metric {
    /// Both metrics.
    pub const ALL: [Metric; 2] = [Metric::DeltaNll, Metric::Kl];

    /// Snake-case id.
    pub fn id(self) -> &'static str {
        match self {
            Metric::DeltaNll => "delta_nll",
            Metric::Kl => "kl",
        }
    }

    /// Axis label.
    pub fn label(self) -> &'static str {
        match self {
            Metric::DeltaNll => "ΔL (nats/token)",
            Metric::Kl => "KL(base, quantized) (nats/token)",
        }
    }

    /// The per-configuration column of `search::export` holding `stat` of this metric.
    pub fn column(self, stat: Statistic) -> &'static str {
        match (self, stat) {
            (Metric::DeltaNll, Statistic::Mean) => "delta_loss",
            (Metric::DeltaNll, Statistic::Median) => "delta_nll_median",
            (Metric::DeltaNll, Statistic::Best) => "delta_nll_best",
            (Metric::Kl, Statistic::Mean) => "kl_mean",
            (Metric::Kl, Statistic::Median) => "kl_median",
            (Metric::Kl, Statistic::Best) => "kl_best",
        }
    }
}

impl std::str::FromStr for Metric {
    type Err = Error;

    fn from_str(s: &str) -> Result<Self> {
        match s.trim().to_ascii_lowercase().as_str() {
            "delta_nll" | "delta" | "dl" | "delta_loss" => Ok(Metric::DeltaNll),
            "kl" | "kld" => Ok(Metric::Kl),
            _ => Err(Error::Input(format!(
                "unknown metric `{s}` (expected delta_nll or kl)"
            ))),
        }
    }
}

/// Evaluation settings shared by every configuration.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
#[serde(default)]
pub struct EvalSpec {
    /// Held-out text: a bundled split or a file.
    pub data: String,
    /// Windows per evaluation.
    pub windows: usize,
    /// Tokens per window (capped at each model's maximum).
    pub ctx: usize,
    /// Window-selection and bootstrap seed.
    pub seed: u64,
    /// Bootstrap resamples for the ΔL CI.
    pub resamples: usize,
    /// Top-k base log-probabilities kept per token for KL.
    pub top_k: usize,
}

impl Default for EvalSpec {
    fn default() -> Self {
        Self {
            data: "eval_austen".into(),
            windows: 32,
            ctx: 128,
            seed: 0,
            resamples: 200,
            top_k: 32,
        }
    }
}

/// A sweep as written in RON.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
#[serde(default)]
pub struct SweepSpec {
    /// Name (stored with the results).
    pub name: String,
    /// Models: `bundled:NAME` (assets/models/NAME), `bundled:PATTERN` (`*` wildcards, e.g.
    /// `bundled:qs-*-2M`), a folder, or an `org/name` in the Hugging Face cache.
    pub models: Vec<String>,
    /// Site granularities.
    pub granularities: Vec<Granularity>,
    /// Low-precision formats (presets or spellings).
    pub low_formats: Vec<String>,
    /// High-precision formats.
    pub high_formats: Vec<String>,
    /// Methods for the low-precision weights (`rtn`, `hqq`, `gptq`, `awq`, with options).
    pub methods: Vec<String>,
    /// Qb grid for the low format: integers, `channel`, `tensor`.
    pub block_sizes: Vec<String>,
    /// Target Qr grid, each in [0, 1].
    pub qr: Vec<f64>,
    /// Trials per configuration (paper: 100).
    pub trials: usize,
    /// Largest |achieved Qr − target| accepted for a trial.
    pub qr_tolerance: f64,
    /// Seed of every random assignment.
    pub seed: u64,
    /// Evaluation.
    pub eval: EvalSpec,
    /// Tokens per trial (a fixed count or a target SE); without it every trial scores
    /// `eval.windows` windows.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub precision: Option<Precision>,
    /// Operands of a low-precision site; without it, the rule of sweeps written before the
    /// option ([`Operands::legacy`]).
    #[serde(skip_serializing_if = "Option::is_none")]
    pub operands: Option<Operands>,
    /// The statistic over trials that fits and figures use unless told otherwise.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub statistic: Option<Statistic>,
}

impl Default for SweepSpec {
    fn default() -> Self {
        Self {
            name: "sweep".into(),
            models: Vec::new(),
            granularities: vec![Granularity::Layer],
            low_formats: vec!["mxint4".into()],
            high_formats: vec!["mxint8".into()],
            methods: vec!["rtn".into()],
            block_sizes: vec!["32".into()],
            qr: vec![0.0, 0.25, 0.5, 0.75, 1.0],
            trials: 100,
            qr_tolerance: 0.05,
            seed: 0,
            eval: EvalSpec::default(),
            precision: None,
            operands: None,
            statistic: None,
        }
    }
}

/// One configuration (model resolved to its spec string).
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
pub struct Configuration {
    /// Model as written in the spec (after `bundled:PREFIX*` expansion).
    pub model: String,
    /// Site granularity.
    pub granularity: Granularity,
    /// Low-precision format with Qb applied (canonical spelling).
    pub low: String,
    /// High-precision format (canonical spelling).
    pub high: String,
    /// Method spelling.
    pub method: String,
    /// Qb spelling.
    pub qb: String,
    /// Target Qr.
    pub qr_target: f64,
    /// Trials to run.
    pub trials: usize,
}

impl Configuration {
    /// Canonical key, unique within a sweep.
    pub fn key(&self) -> String {
        format!(
            "{}|{}|{}|{}|{}|{}|{:.6}",
            self.model, self.granularity, self.low, self.high, self.method, self.qb, self.qr_target
        )
    }

    /// Seed of trial `index` (stable across machines and shards).
    pub fn trial_seed(&self, sweep_seed: u64, index: usize) -> u64 {
        fnv1a(format!("{sweep_seed}|{}|{index}", self.key()).as_bytes())
    }

    /// The parsed low format (Qb applied).
    pub fn low_format(&self) -> Result<Format> {
        self.low.parse()
    }

    /// The parsed high format.
    pub fn high_format(&self) -> Result<Format> {
        self.high.parse()
    }

    /// The parsed method.
    pub fn method(&self) -> Result<Method> {
        self.method.parse()
    }
}

/// 64-bit FNV-1a.
pub fn fnv1a(bytes: &[u8]) -> u64 {
    bytes.iter().fold(0xcbf2_9ce4_8422_2325u64, |h, b| {
        (h ^ u64::from(*b)).wrapping_mul(0x0000_0100_0000_01b3)
    })
}

/// Configurations one spec may enumerate (before `bundled:` patterns expand).
const CONFIGURATIONS: limits::Cap = limits::Cap {
    what: "configurations",
    max: 100_000,
    why: "every configuration is stored and listed (the demo sweep has 2,160)",
};

fn bad(reason: impl Into<String>) -> Error {
    Error::Input(format!("sweep spec: {}", reason.into()))
}

impl SweepSpec {
    /// Parses RON text (`what` names the file in errors).
    pub fn from_ron(text: &str, what: &str) -> Result<Self> {
        // Optional fields are written bare (`precision: (se: 0.0005)`), `Some(…)` also reads.
        ron::Options::default()
            .with_default_extension(ron::extensions::Extensions::IMPLICIT_SOME)
            .from_str(text)
            .map_err(|e| bad(format!("{what}: {e}")))
    }

    /// Reads and validates a spec file.
    pub fn load(path: &std::path::Path) -> Result<Self> {
        let text = std::fs::read_to_string(path).map_err(|e| Error::io("read", path, e))?;
        let spec = Self::from_ron(&text, &path.display().to_string())?;
        spec.validate()
            .map_err(|e| Error::Input(format!("{e} ({})", path.display())))?;
        Ok(spec)
    }

    /// Canonical JSON of the spec (stored with results; equal specs give equal text).
    pub fn canonical(&self) -> String {
        serde_json::to_string(self).unwrap_or_default()
    }

    /// Checks every grid and spelling; returns the parsed pieces.
    pub fn validate(&self) -> Result<()> {
        let nonempty = |n: usize, what: &str| {
            if n == 0 {
                Err(bad(format!("`{what}` is empty")))
            } else {
                Ok(())
            }
        };
        nonempty(self.models.len(), "models")?;
        nonempty(self.granularities.len(), "granularities")?;
        nonempty(self.low_formats.len(), "low_formats")?;
        nonempty(self.high_formats.len(), "high_formats")?;
        nonempty(self.methods.len(), "methods")?;
        nonempty(self.block_sizes.len(), "block_sizes")?;
        nonempty(self.qr.len(), "qr")?;
        if self.trials == 0 {
            return Err(bad("`trials` must be at least 1"));
        }
        let cap = |c: limits::Cap, what: &'static str, v: usize| {
            c.named(what).check(v).map_err(|e| bad(e.to_string()))
        };
        cap(limits::TRIALS, "`trials`", self.trials)?;
        cap(limits::WINDOWS, "`eval.windows`", self.eval.windows)?;
        cap(limits::CTX, "`eval.ctx`", self.eval.ctx)?;
        cap(limits::RESAMPLES, "`eval.resamples`", self.eval.resamples)?;
        cap(limits::TOP_K, "`eval.top_k`", self.eval.top_k)?;
        let n_configs = [
            self.granularities.len(),
            self.low_formats.len(),
            self.high_formats.len(),
            self.methods.len(),
            self.block_sizes.len(),
            self.qr.len(),
            self.models.len(),
        ]
        .iter()
        .try_fold(1usize, |a, &b| a.checked_mul(b))
        .unwrap_or(usize::MAX);
        cap(
            CONFIGURATIONS,
            "configurations (the product of the grids)",
            n_configs,
        )?;
        if !(0.0..=0.5).contains(&self.qr_tolerance) {
            return Err(bad(format!(
                "`qr_tolerance` {} is outside [0, 0.5]",
                self.qr_tolerance
            )));
        }
        if let Some(q) = self.qr.iter().find(|q| !(0.0..=1.0).contains(*q)) {
            return Err(bad(format!("Qr {q} is outside [0, 1]")));
        }
        for f in self.low_formats.iter().chain(&self.high_formats) {
            f.parse::<Format>()
                .map_err(|e| bad(format!("format `{f}`: {e}")))?;
        }
        for m in &self.methods {
            m.parse::<Method>()
                .map_err(|e| bad(format!("method `{m}`: {e}")))?;
        }
        for b in &self.block_sizes {
            b.parse::<BlockSize>()
                .map_err(|e| bad(format!("block size `{b}`: {e}")))?;
        }
        if self.eval.windows == 0 || self.eval.ctx < 2 {
            return Err(bad("eval needs windows ≥ 1 and ctx ≥ 2"));
        }
        if let Some(p) = &self.precision {
            p.validate(self.eval.ctx)?;
        }
        Ok(())
    }

    /// The operands rule of granularity `g`.
    pub fn operands_for(&self, g: Granularity) -> Operands {
        self.operands.unwrap_or_else(|| Operands::legacy(g))
    }

    /// Windows every trial scores when the count does not depend on a pilot (no precision, or
    /// a token count), at context `ctx` (the spec's, capped by the model).
    pub fn fixed_windows(&self, ctx: usize) -> Option<usize> {
        match &self.precision {
            None => Some(self.eval.windows),
            Some(p) => p.tokens.map(|t| Precision::windows_for(t, ctx)),
        }
    }

    /// Every configuration for the models already expanded in `models`, in sweep order.
    pub fn configurations(&self, models: &[String]) -> Result<Vec<Configuration>> {
        self.validate()?;
        let mut out = Vec::new();
        for model in models {
            for &granularity in &self.granularities {
                for low in &self.low_formats {
                    for high in &self.high_formats {
                        let high_f: Format = high.parse()?;
                        for method in &self.methods {
                            let m: Method = method.parse()?;
                            for qb in &self.block_sizes {
                                let block: BlockSize = qb.parse()?;
                                let low_f = low.parse::<Format>()?.with_block(block).validate()?;
                                for &q in &self.qr {
                                    let trials = if q == 0.0 || q == 1.0 { 1 } else { self.trials };
                                    out.push(Configuration {
                                        model: model.clone(),
                                        granularity,
                                        low: low_f.to_string(),
                                        high: high_f.to_string(),
                                        method: m.spelling(),
                                        qb: block.id(),
                                        qr_target: q,
                                        trials,
                                    });
                                }
                            }
                        }
                    }
                }
            }
        }
        let mut keys = std::collections::HashSet::new();
        if let Some(c) = out.iter().find(|c| !keys.insert(c.key())) {
            return Err(bad(format!(
                "configuration listed twice (duplicate grid values?): {}",
                c.key()
            )));
        }
        Ok(out)
    }
}

/// `--shard i/n`: work item `k` belongs to shard `k mod n`.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct Shard {
    /// This shard, 0-based.
    pub index: usize,
    /// Shard count.
    pub count: usize,
}

impl Shard {
    /// The whole sweep.
    pub const ALL: Shard = Shard { index: 0, count: 1 };

    /// Whether work item `k` is this shard's.
    pub fn owns(self, k: usize) -> bool {
        k % self.count == self.index
    }
}

impl std::str::FromStr for Shard {
    type Err = Error;

    fn from_str(s: &str) -> Result<Self> {
        let err = || {
            Error::Input(format!(
                "--shard `{s}`: expected i/n with 0 ≤ i < n (e.g. $SLURM_ARRAY_TASK_ID/$SLURM_ARRAY_TASK_COUNT with --array=0-(n-1))"
            ))
        };
        let (i, n) = s.split_once('/').ok_or_else(err)?;
        let (index, count): (usize, usize) = (
            i.trim().parse().map_err(|_| err())?,
            n.trim().parse().map_err(|_| err())?,
        );
        if count == 0 || index >= count {
            return Err(err());
        }
        Ok(Shard { index, count })
    }
}
