//! Which tensors of a checkpoint are quantizable weights (DESIGN §3), and their layout.
//!
//! Quantizable: every 2-D `*.weight` inside the transformer blocks (names with a block index:
//! `layers.N.`, `h.N.`, `blocks.N.`), i.e. q/k/v/o, fused QKV, gate/up/down, fc1/fc2.
//! Not quantizable (unless a flag says otherwise, later): embeddings, norms, biases, LM head.
//! GPT-2 stores its linear layers as `Conv1D` with weights `[in, out]`: the reduction dimension
//! K is then dim 0, so blocks run down the columns ([`Layout::InOut`]).

/// How a 2-D weight is laid out relative to the matmul's reduction dimension K.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Layout {
    /// `[out, in]` (torch `Linear`): K = dim 1, blocks along rows.
    OutIn,
    /// `[in, out]` (GPT-2 `Conv1D`): K = dim 0, blocks along columns.
    InOut,
}

/// Substrings of tensor names that are never quantized by default.
const EXCLUDED: [&str; 8] = [
    "norm",
    "embed",
    "wte",
    "wpe",
    "lm_head",
    "ln_",
    "embed_out",
    "rotary",
];

/// Whether `name` with `shape` is a quantizable linear weight, and its layout.
/// `model_type` is `config.json`'s `model_type` (empty when unknown).
pub fn quantizable(model_type: &str, name: &str, shape: &[usize]) -> Option<Layout> {
    if shape.len() != 2 || !name.ends_with(".weight") {
        return None;
    }
    if EXCLUDED.iter().any(|e| name.contains(e)) {
        return None;
    }
    let in_block = name.split('.').collect::<Vec<_>>().windows(2).any(|w| {
        matches!(w[0], "layers" | "h" | "blocks" | "layer" | "block")
            && w[1].parse::<usize>().is_ok()
    });
    if !in_block {
        return None;
    }
    if model_type == "gpt2" {
        Some(Layout::InOut)
    } else {
        Some(Layout::OutIn)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn llama_and_gpt2_names() {
        let q = "model.layers.0.self_attn.q_proj.weight";
        assert_eq!(quantizable("llama", q, &[8, 8]), Some(Layout::OutIn));
        assert_eq!(
            quantizable("llama", "model.embed_tokens.weight", &[8, 8]),
            None
        );
        assert_eq!(quantizable("llama", "lm_head.weight", &[8, 8]), None);
        assert_eq!(
            quantizable("llama", "model.layers.0.input_layernorm.weight", &[8]),
            None
        );
        assert_eq!(
            quantizable("llama", "model.layers.0.self_attn.q_proj.bias", &[8]),
            None
        );
        let c = "transformer.h.3.attn.c_attn.weight";
        assert_eq!(quantizable("gpt2", c, &[8, 24]), Some(Layout::InOut));
        assert_eq!(quantizable("gpt2", "transformer.wte.weight", &[8, 8]), None);
        let neox = "gpt_neox.layers.1.attention.query_key_value.weight";
        assert_eq!(quantizable("gpt_neox", neox, &[24, 8]), Some(Layout::OutIn));
        assert_eq!(quantizable("gpt_neox", "embed_out.weight", &[8, 8]), None);
    }
}
