//! GPT-2 (`GPT2LMHeadModel`).
//!
//! LayerNorm, learned absolute positions (`wpe`), fused `c_attn` whose output is `[q | k | v]`,
//! GELU (tanh approximation, `gelu_new`), tied LM head. Linear layers are `Conv1D`, stored
//! `[in, out]`: they are transposed once at load so that every weight is `[out, in]` in memory
//! (sites keep [`Layout::InOut`] so exports write the checkpoint's own layout). Names are
//! `transformer.{wte, wpe, h.{i}.{ln_1, attn.c_attn, attn.c_proj, ln_2, mlp.c_fc, mlp.c_proj},
//! ln_f}`; checkpoints saved without the `transformer.` prefix load too.

use crate::error::Result;
use crate::model::config::ArchConfig;
use crate::model::sites::Layout;
use crate::model::transformer::{Block, Loader, Mlp, Parts, Qkv};

/// Loads a GPT-2 checkpoint.
pub fn load(ld: &mut Loader<'_>, cfg: &ArchConfig) -> Result<Parts> {
    let (d, v, ff) = (cfg.hidden_size, cfg.vocab_size, cfg.intermediate_size);
    let pre = if ld.has("transformer.wte.weight") {
        "transformer."
    } else {
        ""
    };
    let embed = ld.embedding(&format!("{pre}wte.weight"), &[v, d])?;
    let positions = ld.embedding(&format!("{pre}wpe.weight"), &[cfg.max_positions, d])?;
    let mut blocks = Vec::with_capacity(cfg.n_layers);
    for i in 0..cfg.n_layers {
        let p = format!("{pre}h.{i}");
        let ln1 = ld.norm(&format!("{p}.ln_1"), true)?;
        let c_attn = ld.linear(
            &format!("{p}.attn.c_attn"),
            i,
            (3 * d, d),
            true,
            Layout::InOut,
        )?;
        let attn_sites = ld.attention_sites(i);
        let o = ld.linear(&format!("{p}.attn.c_proj"), i, (d, d), true, Layout::InOut)?;
        let ln2 = ld.norm(&format!("{p}.ln_2"), true)?;
        let fc = ld.linear(&format!("{p}.mlp.c_fc"), i, (ff, d), true, Layout::InOut)?;
        let proj = ld.linear(&format!("{p}.mlp.c_proj"), i, (d, ff), true, Layout::InOut)?;
        blocks.push(Block {
            ln1,
            ln2,
            qkv: Qkv::FusedBlocks(c_attn),
            o,
            mlp: Mlp::Plain { fc, proj },
            attn_sites,
        });
    }
    let final_norm = ld.norm(&format!("{pre}ln_f"), true)?;
    ld.finish(embed, Some(positions), blocks, final_norm, "lm_head.weight")
}
