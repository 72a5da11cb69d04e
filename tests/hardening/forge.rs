//! A GGUF writer that can forge anything: a tiny valid llama file (one block, d 8, vocab 8)
//! whose metadata and alignment the hardening tests replace with hostile values.

use std::path::Path;

pub enum Meta {
    U32(u32),
    F32(f32),
    Str(&'static str),
    Strs(Vec<String>),
}

fn gguf_bytes(meta: &[(&str, Meta)], alignment: usize) -> Vec<u8> {
    let (d, ff, v) = (8usize, 16usize, 8usize);
    // (name, GGUF dims innermost first)
    let tensors: Vec<(String, Vec<usize>)> = vec![
        ("token_embd.weight".into(), vec![d, v]),
        ("blk.0.attn_norm.weight".into(), vec![d]),
        ("blk.0.attn_q.weight".into(), vec![d, d]),
        ("blk.0.attn_k.weight".into(), vec![d, d]),
        ("blk.0.attn_v.weight".into(), vec![d, d]),
        ("blk.0.attn_output.weight".into(), vec![d, d]),
        ("blk.0.ffn_norm.weight".into(), vec![d]),
        ("blk.0.ffn_gate.weight".into(), vec![d, ff]),
        ("blk.0.ffn_up.weight".into(), vec![d, ff]),
        ("blk.0.ffn_down.weight".into(), vec![ff, d]),
        ("output_norm.weight".into(), vec![d]),
    ];
    let mut b = b"GGUF".to_vec();
    b.extend(3u32.to_le_bytes());
    b.extend((tensors.len() as u64).to_le_bytes());
    b.extend((meta.len() as u64).to_le_bytes());
    let string = |b: &mut Vec<u8>, s: &str| {
        b.extend((s.len() as u64).to_le_bytes());
        b.extend(s.as_bytes());
    };
    for (k, m) in meta {
        string(&mut b, k);
        match m {
            Meta::U32(x) => {
                b.extend(4u32.to_le_bytes());
                b.extend(x.to_le_bytes());
            }
            Meta::F32(x) => {
                b.extend(6u32.to_le_bytes());
                b.extend(x.to_le_bytes());
            }
            Meta::Str(s) => {
                b.extend(8u32.to_le_bytes());
                string(&mut b, s);
            }
            Meta::Strs(v) => {
                b.extend(9u32.to_le_bytes());
                b.extend(8u32.to_le_bytes());
                b.extend((v.len() as u64).to_le_bytes());
                for s in v {
                    string(&mut b, s);
                }
            }
        }
    }
    let mut offset = 0usize;
    for (name, dims) in &tensors {
        string(&mut b, name);
        b.extend((dims.len() as u32).to_le_bytes());
        for x in dims {
            b.extend((*x as u64).to_le_bytes());
        }
        b.extend(0u32.to_le_bytes()); // F32
        b.extend((offset as u64).to_le_bytes());
        offset += 4 * dims.iter().product::<usize>();
        offset = offset.div_ceil(32) * 32;
    }
    let align = alignment.max(1);
    while !b.len().is_multiple_of(align) {
        b.push(0);
    }
    for (i, (_, dims)) in tensors.iter().enumerate() {
        let n: usize = dims.iter().product();
        let start = b.len();
        for j in 0..n {
            let x = if dims.len() == 1 {
                1.0f32
            } else {
                ((i * 31 + j * 7) % 13) as f32 / 13.0 - 0.5
            };
            b.extend(x.to_le_bytes());
        }
        while !(b.len() - start).is_multiple_of(32) {
            b.push(0);
        }
    }
    b
}

/// A tiny llama GGUF with `changes` applied to its metadata (replacing or adding keys).
pub fn tiny_gguf(path: &Path, changes: Vec<(&str, Meta)>) {
    let tokens: Vec<String> = "abcdefgh".chars().map(|c| c.to_string()).collect();
    let mut meta: Vec<(&str, Meta)> = vec![
        ("general.architecture", Meta::Str("llama")),
        ("llama.embedding_length", Meta::U32(8)),
        ("llama.block_count", Meta::U32(1)),
        ("llama.attention.head_count", Meta::U32(2)),
        ("llama.attention.head_count_kv", Meta::U32(2)),
        ("llama.feed_forward_length", Meta::U32(16)),
        ("llama.context_length", Meta::U32(32)),
        ("llama.attention.layer_norm_rms_epsilon", Meta::F32(1e-5)),
        ("tokenizer.ggml.model", Meta::Str("gpt2")),
        ("tokenizer.ggml.tokens", Meta::Strs(tokens)),
        ("tokenizer.ggml.merges", Meta::Strs(Vec::new())),
    ];
    let mut alignment = 32;
    for (k, m) in changes {
        if k == "general.alignment" {
            if let Meta::U32(a) = m {
                alignment = a as usize;
            }
        }
        meta.retain(|(key, _)| *key != k);
        meta.push((k, m));
    }
    std::fs::write(path, gguf_bytes(&meta, alignment)).unwrap();
}
