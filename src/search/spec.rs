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
        ron::from_str(text).map_err(|e| bad(format!("{what}: {e}")))
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
        Ok(())
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
