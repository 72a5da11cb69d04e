//! Llama family: `LlamaForCausalLM`, `MistralForCausalLM`, `Qwen2ForCausalLM`.
//!
//! RMSNorm, rotary embeddings on the full head (rotate-half convention), grouped-query attention
//! (`num_key_value_heads`), gated SiLU MLP, optional q/k/v biases (always on for Qwen2),
//! optional tied embeddings (`tie_word_embeddings`; the `lm_head.weight` tensor is then absent).
//! Names: `model.embed_tokens`, `model.layers.{i}.{input_layernorm, self_attn.{q,k,v,o}_proj,
//! post_attention_layernorm, mlp.{gate,up,down}_proj}`, `model.norm`, `lm_head`.

use crate::error::Result;
use crate::model::config::ArchConfig;
use crate::model::sites::Layout;
use crate::model::transformer::{Block, Loader, Mlp, Parts, Qkv};

/// Loads a Llama-family checkpoint.
pub fn load(ld: &mut Loader<'_>, cfg: &ArchConfig) -> Result<Parts> {
    let (d, v, ff) = (cfg.hidden_size, cfg.vocab_size, cfg.intermediate_size);
    let (q_out, kv_out) = (cfg.n_heads * cfg.head_dim, cfg.n_kv_heads * cfg.head_dim);
    let embed = ld.embedding("model.embed_tokens.weight", &[v, d])?;
    let mut blocks = Vec::with_capacity(cfg.n_layers);
    for i in 0..cfg.n_layers {
        let p = format!("model.layers.{i}");
        let ln1 = ld.norm(&format!("{p}.input_layernorm"), false)?;
        let lin = |ld: &mut Loader<'_>, name: &str, shape, bias| {
            ld.linear(&format!("{p}.{name}"), i, shape, bias, Layout::OutIn)
        };
        let q = lin(ld, "self_attn.q_proj", (q_out, d), cfg.qkv_bias)?;
        let k = lin(ld, "self_attn.k_proj", (kv_out, d), cfg.qkv_bias)?;
        let vv = lin(ld, "self_attn.v_proj", (kv_out, d), cfg.qkv_bias)?;
        let attn_sites = ld.attention_sites(i);
        let o = lin(ld, "self_attn.o_proj", (d, q_out), cfg.o_bias)?;
        let ln2 = ld.norm(&format!("{p}.post_attention_layernorm"), false)?;
        let gate = lin(ld, "mlp.gate_proj", (ff, d), cfg.mlp_bias)?;
        let up = lin(ld, "mlp.up_proj", (ff, d), cfg.mlp_bias)?;
        let down = lin(ld, "mlp.down_proj", (d, ff), cfg.mlp_bias)?;
        blocks.push(Block {
            ln1,
            ln2,
            qkv: Qkv::Separate(q, k, vv),
            o,
            mlp: Mlp::Gated { gate, up, down },
            attn_sites,
        });
    }
    let final_norm = ld.norm("model.norm", false)?;
    ld.finish(embed, None, blocks, final_norm, "lm_head.weight")
}
