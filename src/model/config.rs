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

fn usize_of(v: &Value, keys: &[&str], path: &Path) -> Result<usize> {
    let x = get(v, keys)
        .ok_or_else(|| Error::checkpoint(path, format!("config has no {}", keys[0])))?;
    x.as_u64()
        .and_then(|u| usize::try_from(u).ok())
        .ok_or_else(|| Error::checkpoint(path, format!("config {} is not a count: {x}", keys[0])))
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

    /// Parses a `config.json` value; `path` names the file in errors.
    pub fn from_json(v: &Value, path: &Path) -> Result<Self> {
        let architecture = get(v, &["architectures"])
            .and_then(|a| a.get(0))
            .and_then(Value::as_str)
            .unwrap_or("")
            .to_string();
        let family = match architecture.as_str() {
            "LlamaForCausalLM" | "MistralForCausalLM" | "Qwen2ForCausalLM" => Family::Llama,
            "GPT2LMHeadModel" => Family::Gpt2,
            "GPTNeoXForCausalLM" => Family::GptNeox,
            other => {
                return Err(Error::checkpoint(
                    path,
                    format!(
                        "unsupported architecture {:?}; supported: {}",
                        other,
                        SUPPORTED.join(", ")
                    ),
                ))
            }
        };
        let model_type = get(v, &["model_type"])
            .and_then(Value::as_str)
            .unwrap_or("")
            .to_string();
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
                    format!("RoPE scaling {kind:?} is not supported (only the default rotary embedding)"),
                ));
            }
        }
        let rope_f = |keys: &[&str], default: f64| {
            rope.and_then(|r| get(r, keys))
                .and_then(Value::as_f64)
                .unwrap_or_else(|| f64_of(v, keys, default))
        };
        let (hidden, n_layers, n_heads, intermediate, max_positions, norm_eps) = match family {
            Family::Gpt2 => {
                let d = usize_of(v, &["n_embd", "hidden_size"], path)?;
                let inner = get(v, &["n_inner"])
                    .and_then(Value::as_u64)
                    .map_or(4 * d, |u| u as usize);
                (
                    d,
                    usize_of(v, &["n_layer", "num_hidden_layers"], path)?,
                    usize_of(v, &["n_head", "num_attention_heads"], path)?,
                    inner,
                    usize_of(v, &["n_positions", "max_position_embeddings"], path)?,
                    f64_of(v, &["layer_norm_epsilon"], 1e-5),
                )
            }
            _ => (
                usize_of(v, &["hidden_size"], path)?,
                usize_of(v, &["num_hidden_layers"], path)?,
                usize_of(v, &["num_attention_heads"], path)?,
                usize_of(v, &["intermediate_size"], path)?,
                usize_of(v, &["max_position_embeddings"], path)?,
                f64_of(v, &["rms_norm_eps", "layer_norm_eps"], 1e-5),
            ),
        };
        let n_kv_heads = match family {
            Family::Llama => get(v, &["num_key_value_heads"])
                .and_then(Value::as_u64)
                .map_or(n_heads, |u| u as usize),
            _ => n_heads,
        };
        if hidden == 0 || n_layers == 0 || n_heads == 0 || n_kv_heads == 0 || intermediate == 0 {
            return Err(Error::checkpoint(path, "config has a zero size"));
        }
        let head_dim = match get(v, &["head_dim"]).and_then(Value::as_u64) {
            Some(h) => h as usize,
            None if hidden % n_heads == 0 => hidden / n_heads,
            None => {
                return Err(Error::checkpoint(
                    path,
                    format!("hidden size {hidden} is not a multiple of {n_heads} heads"),
                ))
            }
        };
        if n_heads % n_kv_heads != 0 || head_dim == 0 {
            return Err(Error::checkpoint(
                path,
                format!("{n_heads} heads are not a multiple of {n_kv_heads} key/value heads"),
            ));
        }
        let partial = rope_f(&["partial_rotary_factor", "rotary_pct"], 1.0);
        let rotary_dims = match family {
            Family::Gpt2 => 0,
            _ => ((head_dim as f64 * partial) as usize) & !1,
        };
        let act_name = get(v, &["hidden_act", "activation_function"])
            .and_then(Value::as_str)
            .unwrap_or("");
        let activation = match act_name {
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
        };
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
            vocab_size: usize_of(v, &["vocab_size"], path)?,
            hidden_size: hidden,
            n_layers,
            n_heads,
            n_kv_heads,
            head_dim,
            intermediate_size: intermediate,
            max_positions,
            norm_eps,
            rope_theta: rope_f(&["rope_theta", "rotary_emb_base"], 10_000.0),
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
