//! Training recipes (RON, `assets/recipes/*.ron`): one file describes a model family — its
//! architecture, the sizes, the token budgets and the optimiser — and every (size, budget) pair
//! is one run named `{family}-{size}-{budget}` (e.g. `qs-llama-s3-1M`).
//!
//! Architectures: `Llama` (RMSNorm, SwiGLU, full RoPE, tied embeddings; HF
//! `LlamaForCausalLM`) and `Neox` (LayerNorm with biases, exact GELU, parallel residual, rotary on
//! 25% of each head, untied head; HF `GPTNeoXForCausalLM`). [`SizeSpec::config_json`] writes the
//! Hugging Face `config.json` that both quantscape and transformers load.

use std::path::Path;

use serde_json::json;

use super::optim::AdamWParams;
use crate::error::{Error, Result};

/// Architecture of a family.
#[derive(Clone, Copy, Debug, PartialEq, Eq, serde::Serialize, serde::Deserialize)]
pub enum Arch {
    /// RMSNorm, SwiGLU, RoPE.
    Llama,
    /// LayerNorm, GELU, parallel residual, partial rotary.
    Neox,
}

/// One model size.
#[derive(Clone, Debug, PartialEq, serde::Serialize, serde::Deserialize)]
pub struct SizeSpec {
    /// Short name (`s1`…).
    pub name: String,
    /// Hidden size d.
    pub d_model: usize,
    /// Transformer blocks.
    pub n_layers: usize,
    /// Attention heads (d divisible by it).
    pub n_heads: usize,
    /// MLP width (default: SwiGLU 8d/3 rounded up to 32; GELU 4d).
    #[serde(default)]
    pub ffn: Option<usize>,
    /// Peak learning rate.
    pub lr: f64,
}

/// A family recipe.
#[derive(Clone, Debug, PartialEq, serde::Serialize, serde::Deserialize)]
pub struct FamilyRecipe {
    /// Family name (`qs-llama`).
    pub name: String,
    /// Architecture.
    pub arch: Arch,
    /// Tokens per training window, BOS included (also `max_position_embeddings`).
    pub context: usize,
    /// Windows per optimiser step.
    pub batch_windows: usize,
    /// Seed of initialisation and data order.
    pub seed: u64,
    /// σ of the normal initialisation.
    pub init_std: f64,
    /// Fraction of steps spent warming up.
    pub warmup_fraction: f64,
    /// Final learning rate as a fraction of the peak.
    pub min_lr_ratio: f64,
    /// Global gradient-norm clip.
    pub clip_norm: f64,
    /// AdamW hyper-parameters.
    pub adamw: AdamWParams,
    /// Steps between held-out evaluations.
    pub eval_every_steps: u64,
    /// Windows per held-out evaluation (per split).
    pub eval_windows: usize,
    /// Steps between resumable checkpoints.
    pub checkpoint_every_steps: u64,
    /// Sizes.
    pub sizes: Vec<SizeSpec>,
    /// Token budgets D (training tokens seen, text tokens only); each is its own run.
    pub budgets_tokens: Vec<u64>,
}

impl FamilyRecipe {
    /// Whether `other` trains the same way: equal in everything that shapes the weights (name,
    /// architecture, context, batch, seed, initialisation, schedule, clipping, AdamW); the sizes,
    /// budgets and the evaluation and checkpoint cadence may differ.
    pub fn same_training(&self, other: &FamilyRecipe) -> bool {
        let bare = |r: &FamilyRecipe| FamilyRecipe {
            eval_every_steps: 0,
            eval_windows: 0,
            checkpoint_every_steps: 0,
            sizes: Vec::new(),
            budgets_tokens: Vec::new(),
            ..r.clone()
        };
        bare(self) == bare(other)
    }

    /// Reads and validates a recipe.
    pub fn load(path: &Path) -> Result<Self> {
        let text = std::fs::read_to_string(path).map_err(|e| Error::io("read", path, e))?;
        let r: Self = ron::from_str(&text)
            .map_err(|e| Error::checkpoint(path, format!("not a valid recipe: {e}")))?;
        r.validate().map_err(|msg| Error::checkpoint(path, msg))?;
        Ok(r)
    }

    fn validate(&self) -> std::result::Result<(), String> {
        if self.context < 2 || self.batch_windows == 0 || self.sizes.is_empty() {
            return Err("context ≥ 2, batch_windows ≥ 1 and at least one size are required".into());
        }
        if self.budgets_tokens.is_empty() || self.budgets_tokens.contains(&0) {
            return Err("budgets_tokens must list positive token counts".into());
        }
        for s in &self.sizes {
            if s.n_heads == 0 || s.d_model % s.n_heads != 0 || (s.d_model / s.n_heads) % 2 != 0 {
                return Err(format!(
                    "size {}: d_model must split into heads of even size",
                    s.name
                ));
            }
            if !(s.lr > 0.0 && s.lr.is_finite()) || s.n_layers == 0 {
                return Err(format!(
                    "size {}: needs a positive lr and at least one layer",
                    s.name
                ));
            }
        }
        Ok(())
    }

    /// Optimiser steps for a budget (ceil(D / tokens per step)).
    pub fn steps_for(&self, budget_tokens: u64) -> u64 {
        let per_step = (self.batch_windows * (self.context - 1)) as u64;
        budget_tokens.div_ceil(per_step)
    }

    /// Run name of (size, budget).
    pub fn run_name(&self, size: &SizeSpec, budget_tokens: u64) -> String {
        format!(
            "{}-{}-{}",
            self.name,
            size.name,
            tokens_label(budget_tokens)
        )
    }
}

/// `500k`, `1M`, `2.5M`.
pub fn tokens_label(n: u64) -> String {
    let (v, unit) = if n >= 1_000_000 {
        (n as f64 / 1e6, "M")
    } else {
        (n as f64 / 1e3, "k")
    };
    let s = format!("{v:.2}");
    let s = s.trim_end_matches('0').trim_end_matches('.');
    format!("{s}{unit}")
}

impl SizeSpec {
    /// MLP width.
    pub fn ffn_width(&self, arch: Arch) -> usize {
        self.ffn.unwrap_or(match arch {
            Arch::Llama => (8 * self.d_model / 3).div_ceil(32) * 32,
            Arch::Neox => 4 * self.d_model,
        })
    }

    /// The Hugging Face `config.json` of this size.
    pub fn config_json(&self, arch: Arch, vocab_size: usize, context: usize) -> serde_json::Value {
        let (d, l, h) = (self.d_model, self.n_layers, self.n_heads);
        match arch {
            Arch::Llama => json!({
                "architectures": ["LlamaForCausalLM"],
                "model_type": "llama",
                "vocab_size": vocab_size,
                "hidden_size": d,
                "intermediate_size": self.ffn_width(arch),
                "num_hidden_layers": l,
                "num_attention_heads": h,
                "num_key_value_heads": h,
                "head_dim": d / h,
                "max_position_embeddings": context,
                "rms_norm_eps": 1e-5,
                "rope_theta": 10000.0,
                "hidden_act": "silu",
                "tie_word_embeddings": true,
                "attention_bias": false,
                "mlp_bias": false,
                "bos_token_id": 0,
                "eos_token_id": 0,
                "torch_dtype": "bfloat16",
            }),
            Arch::Neox => json!({
                "architectures": ["GPTNeoXForCausalLM"],
                "model_type": "gpt_neox",
                "vocab_size": vocab_size,
                "hidden_size": d,
                "intermediate_size": self.ffn_width(arch),
                "num_hidden_layers": l,
                "num_attention_heads": h,
                "max_position_embeddings": context,
                "rotary_pct": 0.25,
                "rotary_emb_base": 10000,
                "layer_norm_eps": 1e-5,
                "hidden_act": "gelu",
                "use_parallel_residual": true,
                "tie_word_embeddings": false,
                "attention_bias": true,
                "bos_token_id": 0,
                "eos_token_id": 0,
                "torch_dtype": "bfloat16",
            }),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn labels_and_steps() {
        assert_eq!(tokens_label(500_000), "500k");
        assert_eq!(tokens_label(1_000_000), "1M");
        assert_eq!(tokens_label(2_500_000), "2.5M");
    }
}
