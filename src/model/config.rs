//! `config.json` of a Hugging Face causal LM → [`ArchConfig`], the one description every
//! architecture file builds from.
//!
//! Supported `architectures`: see [`SUPPORTED`]. Both spellings of the rotary settings are read:
//! transformers ≥ 5 writes `rope_parameters { rope_theta, partial_rotary_factor, rope_type }`,
//! older checkpoints write `rope_theta` / `rotary_emb_base` / `rotary_pct` at the top level.
//! RoPE scaling other than `default` (e.g. `llama3`, `yarn`) is refused with a clear error rather
//! than silently computed wrong. Sizes are checked (heads divide the hidden size, KV heads divide
//! heads, nothing zero) so a forward pass never meets an inconsistent shape.

use std::path::Path;

use serde_json::Value;

use crate::error::{Error, Result};
use crate::limits::{self, ConfigBound};

/// The `architectures` values quantscape can run.
pub const SUPPORTED: [&str; 5] = [
    "LlamaForCausalLM",
    "MistralForCausalLM",
    "Qwen2ForCausalLM",
    "GPT2LMHeadModel",
    "GPTNeoXForCausalLM",
];

/// Architecture family (one file each under `model/arch/`).
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Family {
    /// Llama, Mistral, Qwen2: RMSNorm, RoPE, gated SiLU MLP, GQA.
    Llama,
    /// GPT-2: LayerNorm, learned positions, Conv1D weights, GELU (tanh).
    Gpt2,
    /// GPT-NeoX / Pythia: LayerNorm, fused QKV, partial rotary, parallel residual.
    GptNeox,
}

/// Activation of the MLP.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Activation {
    /// x·σ(x).
    Silu,
    /// The tanh approximation (`gelu_new`, `gelu_pytorch_tanh`).
    GeluTanh,
    /// The exact erf GELU (`gelu`).
    GeluErf,
    /// max(x, 0).
    Relu,
}

/// Everything the forward pass needs from `config.json`.
#[derive(Clone, Debug, PartialEq)]
pub struct ArchConfig {
    /// The `architectures[0]` string.
    pub architecture: String,
    /// Family derived from it.
    pub family: Family,
    /// `model_type`.
    pub model_type: String,
    /// Vocabulary size V.
    pub vocab_size: usize,
    /// Model width d.
    pub hidden_size: usize,
    /// Number of transformer blocks.
    pub n_layers: usize,
    /// Query heads.
    pub n_heads: usize,
    /// Key/value heads (GQA); equals `n_heads` without GQA.
    pub n_kv_heads: usize,
    /// Per-head width.
    pub head_dim: usize,
    /// MLP inner width.
    pub intermediate_size: usize,
    /// Longest context the model was built for.
    pub max_positions: usize,
    /// Epsilon of RMSNorm / LayerNorm.
    pub norm_eps: f64,
    /// RoPE base θ (unused by GPT-2).
    pub rope_theta: f64,
    /// Number of rotated dims per head (head_dim × partial factor, even).
    pub rotary_dims: usize,
    /// q/k/v projections carry a bias (Qwen2, `attention_bias`).
    pub qkv_bias: bool,
    /// Output projection carries a bias.
    pub o_bias: bool,
    /// MLP linears carry biases.
    pub mlp_bias: bool,
    /// MLP activation.
    pub activation: Activation,
    /// GPT-NeoX: x + attn(ln1 x) + mlp(ln2 x) instead of the sequential residual.
    pub parallel_residual: bool,
    /// The LM head shares the token embedding.
    pub tie_word_embeddings: bool,
    /// BOS token id, if any.
    pub bos_token_id: Option<u32>,
    /// EOS token id, if any.
    pub eos_token_id: Option<u32>,
}

fn get<'a>(v: &'a Value, keys: &[&str]) -> Option<&'a Value> {
    keys.iter().find_map(|k| v.get(*k).filter(|x| !x.is_null()))
}

/// The first of `keys` present, as a count within `bound` (errors name the key the file used).
fn usize_of(v: &Value, keys: &[&str], bound: ConfigBound, path: &Path) -> Result<usize> {
    let (key, x) = keys
        .iter()
        .find_map(|k| v.get(*k).filter(|x| !x.is_null()).map(|x| (*k, x)))
        .ok_or_else(|| Error::checkpoint(path, format!("config has no {}", keys[0])))?;
    let n = x
        .as_u64()
        .and_then(|u| usize::try_from(u).ok())
        .ok_or_else(|| Error::checkpoint(path, format!("config {key} is not a count: {x}")))?;
    bound.check(key, n, path)
}

/// Like [`usize_of`] for an optional key: `default` when absent.
fn opt_usize_of(
    v: &Value,
    keys: &[&str],
    bound: ConfigBound,
    default: usize,
    path: &Path,
) -> Result<usize> {
    match get(v, keys) {
        None => Ok(default),
        Some(_) => usize_of(v, keys, bound, path),
    }
}

fn f64_of(v: &Value, keys: &[&str], default: f64) -> f64 {
    get(v, keys).and_then(Value::as_f64).unwrap_or(default)
}

fn bool_of(v: &Value, keys: &[&str], default: bool) -> bool {
    get(v, keys).and_then(Value::as_bool).unwrap_or(default)
}

fn token_id(v: &Value, key: &str) -> Option<u32> {
    match v.get(key)? {
        Value::Number(n) => n.as_u64().and_then(|u| u32::try_from(u).ok()),
        Value::Array(a) => a
            .first()
            .and_then(Value::as_u64)
            .and_then(|u| u32::try_from(u).ok()),
        _ => None,
    }
}

impl ArchConfig {
    /// Reads `dir/config.json`.
    pub fn load(dir: &Path) -> Result<Self> {
        let path = dir.join("config.json");
        let text =
            std::fs::read_to_string(&path).map_err(|e| Error::io("cannot read", &path, e))?;
        let v: Value = serde_json::from_str(&text)
            .map_err(|e| Error::checkpoint(&path, format!("config.json is not JSON: {e}")))?;
        Self::from_json(&v, &path)
    }

    /// Parses a `config.json` value; `path` names the file in errors. Every size is checked
    /// against its sane range ([`crate::limits`]) and against the others (heads divide the
    /// width, KV heads divide heads), ε and θ must be positive and finite, so no forward pass or
    /// allocation ever meets an inconsistent or absurd shape.
    pub fn from_json(v: &Value, path: &Path) -> Result<Self> {
        let architecture = get(v, &["architectures"])
            .and_then(|a| a.get(0))
            .and_then(Value::as_str)
            .unwrap_or("")
            .to_string();
        let family = family_of(&architecture, path)?;
        let model_type = get(v, &["model_type"])
            .and_then(Value::as_str)
            .unwrap_or("")
            .to_string();
        let rope = rope_parameters(v, path)?;
        let rope_f = |keys: &[&str], default: f64| {
            rope.and_then(|r| get(r, keys))
                .and_then(Value::as_f64)
                .unwrap_or_else(|| f64_of(v, keys, default))
        };
        let s = Sizes::read(v, family, path)?;
        let partial = rope_f(&["partial_rotary_factor", "rotary_pct"], 1.0);
        if !(partial > 0.0 && partial <= 1.0) {
            return Err(Error::checkpoint(
                path,
                format!("partial_rotary_factor {partial} is outside (0, 1]"),
            ));
        }
        let rotary_dims = match family {
            Family::Gpt2 => 0,
            _ => ((s.head_dim as f64 * partial) as usize) & !1,
        };
        let rope_theta = rope_f(&["rope_theta", "rotary_emb_base"], 10_000.0);
        if rotary_dims > 0 && !(rope_theta > 0.0 && rope_theta.is_finite()) {
            return Err(Error::checkpoint(
                path,
                format!("rope_theta {rope_theta} must be positive and finite"),
            ));
        }
        let activation = activation_of(v, family, path)?;
        let qkv_bias = match (family, model_type.as_str()) {
            (Family::Llama, "qwen2") => true,
            (Family::Llama, _) => bool_of(v, &["attention_bias"], false),
            _ => bool_of(v, &["attention_bias"], true),
        };
        let o_bias = match family {
            Family::Llama => model_type != "qwen2" && qkv_bias,
            _ => qkv_bias,
        };
        let mlp_bias = match family {
            Family::Llama => bool_of(v, &["mlp_bias"], false),
            _ => true,
        };
        Ok(Self {
            architecture,
            family,
            model_type,
            vocab_size: usize_of(v, &["vocab_size"], limits::VOCAB, path)?,
            hidden_size: s.hidden,
            n_layers: s.n_layers,
            n_heads: s.n_heads,
            n_kv_heads: s.n_kv_heads,
            head_dim: s.head_dim,
            intermediate_size: s.intermediate,
            max_positions: s.max_positions,
            norm_eps: s.norm_eps,
            rope_theta,
            rotary_dims,
            qkv_bias,
            o_bias,
            mlp_bias,
            activation,
            parallel_residual: family == Family::GptNeox
                && bool_of(v, &["use_parallel_residual"], true),
            tie_word_embeddings: match family {
                Family::Gpt2 => true,
                Family::Llama => bool_of(v, &["tie_word_embeddings"], false),
                Family::GptNeox => bool_of(v, &["tie_word_embeddings"], false),
            },
            bos_token_id: token_id(v, "bos_token_id"),
            eos_token_id: token_id(v, "eos_token_id"),
        })
    }
}

fn family_of(architecture: &str, path: &Path) -> Result<Family> {
    match architecture {
        "LlamaForCausalLM" | "MistralForCausalLM" | "Qwen2ForCausalLM" => Ok(Family::Llama),
        "GPT2LMHeadModel" => Ok(Family::Gpt2),
        "GPTNeoXForCausalLM" => Ok(Family::GptNeox),
        other => Err(Error::checkpoint(
            path,
            format!(
                "unsupported architecture {:?}; supported: {}",
                other,
                SUPPORTED.join(", ")
            ),
        )),
    }
}

/// The rotary settings object, if any; RoPE scaling other than `default` is refused.
fn rope_parameters<'a>(v: &'a Value, path: &Path) -> Result<Option<&'a Value>> {
    let rope = v
        .get("rope_parameters")
        .or_else(|| v.get("rope_scaling"))
        .filter(|r| !r.is_null());
    if let Some(kind) = rope
        .and_then(|r| get(r, &["rope_type", "type"]))
        .and_then(Value::as_str)
    {
        if kind != "default" {
            return Err(Error::checkpoint(
                path,
                format!(
                    "RoPE scaling {kind:?} is not supported (only the default rotary embedding)"
                ),
            ));
        }
    }
    Ok(rope)
}

fn activation_of(v: &Value, family: Family, path: &Path) -> Result<Activation> {
    let act_name = get(v, &["hidden_act", "activation_function"])
        .and_then(Value::as_str)
        .unwrap_or("");
    Ok(match act_name {
        "silu" | "swish" => Activation::Silu,
        "gelu_new" | "gelu_pytorch_tanh" | "gelu_fast" => Activation::GeluTanh,
        "gelu" => Activation::GeluErf,
        "relu" => Activation::Relu,
        "" if family == Family::Llama => Activation::Silu,
        other => {
            return Err(Error::checkpoint(
                path,
                format!("unsupported activation {other:?}"),
            ))
        }
    })
}

/// The shape-defining sizes of a config, each within its sane range and consistent.
struct Sizes {
    hidden: usize,
    n_layers: usize,
    n_heads: usize,
    n_kv_heads: usize,
    head_dim: usize,
    intermediate: usize,
    max_positions: usize,
    norm_eps: f64,
}

impl Sizes {
    fn read(v: &Value, family: Family, path: &Path) -> Result<Self> {
        use limits::{HEADS, HEAD_DIM, HIDDEN, INTERMEDIATE, LAYERS, POSITIONS};
        let (hidden, n_layers, n_heads, intermediate, max_positions, norm_eps) = match family {
            Family::Gpt2 => {
                let d = usize_of(v, &["n_embd", "hidden_size"], HIDDEN, path)?;
                (
                    d,
                    usize_of(v, &["n_layer", "num_hidden_layers"], LAYERS, path)?,
                    usize_of(v, &["n_head", "num_attention_heads"], HEADS, path)?,
                    opt_usize_of(v, &["n_inner"], INTERMEDIATE, 4 * d, path)?,
                    usize_of(
                        v,
                        &["n_positions", "max_position_embeddings"],
                        POSITIONS,
                        path,
                    )?,
                    f64_of(v, &["layer_norm_epsilon"], 1e-5),
                )
            }
            _ => (
                usize_of(v, &["hidden_size"], HIDDEN, path)?,
                usize_of(v, &["num_hidden_layers"], LAYERS, path)?,
                usize_of(v, &["num_attention_heads"], HEADS, path)?,
                usize_of(v, &["intermediate_size"], INTERMEDIATE, path)?,
                usize_of(v, &["max_position_embeddings"], POSITIONS, path)?,
                f64_of(v, &["rms_norm_eps", "layer_norm_eps"], 1e-5),
            ),
        };
        if !(norm_eps > 0.0 && norm_eps < 1.0) {
            return Err(Error::checkpoint(
                path,
                format!("normalisation epsilon {norm_eps} is outside (0, 1)"),
            ));
        }
        let n_kv_heads = match family {
            Family::Llama => opt_usize_of(v, &["num_key_value_heads"], HEADS, n_heads, path)?,
            _ => n_heads,
        };
        let head_dim = match get(v, &["head_dim"]) {
            Some(_) => usize_of(v, &["head_dim"], HEAD_DIM, path)?,
            None if hidden % n_heads == 0 => HEAD_DIM.check("head_dim", hidden / n_heads, path)?,
            None => {
                return Err(Error::checkpoint(
                    path,
                    format!("hidden size {hidden} is not a multiple of {n_heads} heads"),
                ))
            }
        };
        if n_heads % n_kv_heads != 0 {
            return Err(Error::checkpoint(
                path,
                format!("{n_heads} heads are not a multiple of {n_kv_heads} key/value heads"),
            ));
        }
        Ok(Self {
            hidden,
            n_layers,
            n_heads,
            n_kv_heads,
            head_dim,
            intermediate,
            max_positions,
            norm_eps,
        })
    }
}
