//! GPT-NeoX / Pythia (`GPTNeoXForCausalLM`).
//!
//! LayerNorm, fused `query_key_value` whose output is laid out per head as `[q_h | k_h | v_h]`,
//! rotary embeddings on the first `rotary_pct · head_dim` dims of each head (rotate-half),
//! exact GELU, and the parallel residual x + attn(ln1 x) + mlp(ln2 x) when
//! `use_parallel_residual` (Pythia) — sequential otherwise. Untied `embed_out` head.
//! Names: `gpt_neox.{embed_in, layers.{i}.{input_layernorm, attention.query_key_value,
//! attention.dense, post_attention_layernorm, mlp.dense_h_to_4h, mlp.dense_4h_to_h},
//! final_layer_norm}`, `embed_out`.

use crate::error::Result;
use crate::model::config::ArchConfig;
use crate::model::sites::Layout;
use crate::model::transformer::{Block, Loader, Mlp, Parts, Qkv};

/// Loads a GPT-NeoX checkpoint.
pub fn load(ld: &mut Loader<'_>, cfg: &ArchConfig) -> Result<Parts> {
    let (d, v, ff) = (cfg.hidden_size, cfg.vocab_size, cfg.intermediate_size);
    let hd_all = cfg.n_heads * cfg.head_dim;
    let embed = ld.embedding("gpt_neox.embed_in.weight", &[v, d])?;
    let mut blocks = Vec::with_capacity(cfg.n_layers);
    for i in 0..cfg.n_layers {
        let p = format!("gpt_neox.layers.{i}");
        let ln1 = ld.norm(&format!("{p}.input_layernorm"), true)?;
        let qkv = ld.linear(
            &format!("{p}.attention.query_key_value"),
            i,
            (3 * hd_all, d),
            cfg.qkv_bias,
            Layout::OutIn,
        )?;
        let attn_sites = ld.attention_sites(i);
        let o = ld.linear(
            &format!("{p}.attention.dense"),
            i,
            (d, hd_all),
            cfg.o_bias,
            Layout::OutIn,
        )?;
        let ln2 = ld.norm(&format!("{p}.post_attention_layernorm"), true)?;
        let fc = ld.linear(
            &format!("{p}.mlp.dense_h_to_4h"),
            i,
            (ff, d),
            true,
            Layout::OutIn,
        )?;
        let proj = ld.linear(
            &format!("{p}.mlp.dense_4h_to_h"),
            i,
            (d, ff),
            true,
            Layout::OutIn,
        )?;
        blocks.push(Block {
            ln1,
            ln2,
            qkv: Qkv::FusedPerHead(qkv),
            o,
            mlp: Mlp::Plain { fc, proj },
            attn_sites,
        });
    }
    let final_norm = ld.norm("gpt_neox.final_layer_norm", true)?;
    ld.finish(embed, None, blocks, final_norm, "embed_out.weight")
}
