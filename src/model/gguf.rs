//! GGUF checkpoints (llama.cpp) → Hugging Face folders: the `llama` architecture, tensors
//! F32/F16/BF16/Q8_0/Q4_0/Q4_1 and the k-quants (dequantized by candle's GGUF reader), and the
//! embedded GPT-2-style BPE tokenizer.
//!
//! llama.cpp's converter permutes the rows of `attn_q`/`attn_k` so that its RoPE can rotate
//! adjacent pairs; within each head, GGUF row `2j + i` is Hugging Face row `i·hd/2 + j`. This
//! module inverts that permutation, so the exported folder uses the HF rotate-half convention
//! our forward pass (and transformers) implement — without it perplexity is nonsense.
//! Names: `token_embd` → `model.embed_tokens`, `blk.N.attn_{q,k,v,output}` →
//! `model.layers.N.self_attn.{q,k,v,o}_proj`, `ffn_{gate,up,down}` → `mlp.*_proj`,
//! `attn_norm`/`ffn_norm` → `input_layernorm`/`post_attention_layernorm`, `output_norm` →
//! `model.norm`, `output` → `lm_head` (absent = tied).
//! The exported weights are the dequantized values in fp32: for a quantized GGUF they — not the
//! original training weights — are the reference every quantscape report measures against.

use std::collections::BTreeMap;
use std::path::{Path, PathBuf};

use candle_core::quantized::gguf_file::{Content, Value};
use candle_core::{Device, Tensor};
use serde_json::json;

use super::checkpoint::{f32_to_bytes, write_safetensors, DType, OutDir, OutTensor};
use crate::error::{candle_message, guard_panics, Error, Result};

/// What a conversion produced.
#[derive(Clone, Debug, serde::Serialize)]
pub struct GgufReport {
    /// Source file.
    pub source: PathBuf,
    /// `general.name`.
    pub name: String,
    /// Storage types of the source tensors and how many of each.
    pub dtypes: BTreeMap<String, usize>,
    /// Tensors written.
    pub n_tensors: usize,
    /// Parameters written.
    pub n_params: usize,
}

fn meta<'a>(c: &'a Content, key: &str, path: &Path) -> Result<&'a Value> {
    c.metadata
        .get(key)
        .ok_or_else(|| Error::checkpoint(path, format!("GGUF metadata has no `{key}`")))
}

fn meta_usize(c: &Content, key: &str, path: &Path) -> Result<usize> {
    let v = meta(c, key, path)?;
    v.to_u32()
        .map(|x| x as usize)
        .or_else(|_| v.to_u64().map(|x| x as usize))
        .map_err(|e| Error::checkpoint(path, format!("`{key}`: {}", candle_message(&e))))
}

fn meta_f64(c: &Content, key: &str, default: f64) -> f64 {
    c.metadata
        .get(key)
        .and_then(|v| v.to_f32().ok())
        .map_or(default, f64::from)
}

fn strings(c: &Content, key: &str, path: &Path) -> Result<Vec<String>> {
    let arr = meta(c, key, path)?
        .to_vec()
        .map_err(|e| Error::checkpoint(path, format!("`{key}`: {}", candle_message(&e))))?;
    arr.iter()
        .map(|v| {
            v.to_string()
                .cloned()
                .map_err(|e| Error::checkpoint(path, format!("`{key}`: {}", candle_message(&e))))
        })
        .collect()
}

/// Inverts llama.cpp's Q/K row permutation for `n_heads` heads of a `[out, in]` weight.
pub fn unpermute_rows(w: &Tensor, n_heads: usize) -> Result<Tensor> {
    let (out, inp) = w.dims2()?;
    let hd = out / n_heads.max(1);
    Ok(w.reshape((n_heads, hd / 2, 2, inp))?
        .transpose(1, 2)?
        .contiguous()?
        .reshape((out, inp))?)
}

/// The inverse of [`unpermute_rows`] (llama.cpp's permutation), for tests.
pub fn permute_rows(w: &Tensor, n_heads: usize) -> Result<Tensor> {
    let (out, inp) = w.dims2()?;
    let hd = out / n_heads.max(1);
    Ok(w.reshape((n_heads, 2, hd / 2, inp))?
        .transpose(1, 2)?
        .contiguous()?
        .reshape((out, inp))?)
}

fn hf_name(gguf: &str) -> Option<String> {
    let fixed = match gguf {
        "token_embd.weight" => Some("model.embed_tokens.weight"),
        "output_norm.weight" => Some("model.norm.weight"),
        "output.weight" => Some("lm_head.weight"),
        _ => None,
    };
    if let Some(f) = fixed {
        return Some(f.to_string());
    }
    let rest = gguf.strip_prefix("blk.")?;
    let (layer, part) = rest.split_once('.')?;
    let (kind, suffix) = part.rsplit_once('.')?;
    let hf = match kind {
        "attn_q" => "self_attn.q_proj",
        "attn_k" => "self_attn.k_proj",
        "attn_v" => "self_attn.v_proj",
        "attn_output" => "self_attn.o_proj",
        "ffn_gate" => "mlp.gate_proj",
        "ffn_up" => "mlp.up_proj",
        "ffn_down" => "mlp.down_proj",
        "attn_norm" => "input_layernorm",
        "ffn_norm" => "post_attention_layernorm",
        _ => return None,
    };
    Some(format!("model.layers.{layer}.{hf}.{suffix}"))
}

/// The embedded tokenizer as a `tokenizers` JSON (byte-level BPE; the `smollm` pre-tokenizer
/// splits digits individually before the GPT-2 byte-level regex; control tokens are special).
fn tokenizer_json(c: &Content, path: &Path) -> Result<String> {
    use tokenizers::decoders::byte_level::ByteLevel as ByteLevelDecoder;
    use tokenizers::models::bpe::BPE;
    use tokenizers::pre_tokenizers::byte_level::ByteLevel;
    use tokenizers::pre_tokenizers::digits::Digits;
    use tokenizers::pre_tokenizers::sequence::Sequence;
    use tokenizers::{AddedToken, Tokenizer};

    let fail = |e: String| Error::checkpoint(path, format!("embedded tokenizer: {e}"));
    let model = meta(c, "tokenizer.ggml.model", path)?
        .to_string()
        .map_err(|e| fail(candle_message(&e)))?;
    if model != "gpt2" {
        return Err(fail(format!(
            "tokenizer model `{model}` is not supported (only gpt2-style BPE)"
        )));
    }
    let tokens = strings(c, "tokenizer.ggml.tokens", path)?;
    let merges: Vec<(String, String)> = strings(c, "tokenizer.ggml.merges", path)?
        .iter()
        .map(|m| {
            m.split_once(' ')
                .map(|(a, b)| (a.to_string(), b.to_string()))
        })
        .collect::<Option<_>>()
        .ok_or_else(|| fail("a merge is not two space-separated tokens".into()))?;
    let vocab: tokenizers::models::bpe::Vocab = tokens
        .iter()
        .enumerate()
        .map(|(i, t)| (t.clone(), i as u32))
        .collect();
    let bpe = BPE::builder()
        .vocab_and_merges(vocab, merges)
        .build()
        .map_err(|e| fail(e.to_string()))?;
    let mut tok = Tokenizer::new(bpe);
    let pre = c
        .metadata
        .get("tokenizer.ggml.pre")
        .and_then(|v| v.to_string().ok())
        .cloned()
        .unwrap_or_default();
    let byte_level = ByteLevel::new(false, true, true);
    match pre.as_str() {
        "smollm" | "gpt-2" | "gpt2" | "" => {
            if pre == "smollm" {
                tok.with_pre_tokenizer(Some(Sequence::new(vec![
                    Digits::new(true).into(),
                    byte_level.into(),
                ])));
            } else {
                tok.with_pre_tokenizer(Some(byte_level));
            }
        }
        other => {
            return Err(fail(format!(
                "pre-tokenizer `{other}` is not supported (smollm, gpt2)"
            )))
        }
    }
    tok.with_decoder(Some(ByteLevelDecoder::default()));
    let types: Vec<i64> = match c
        .metadata
        .get("tokenizer.ggml.token_type")
        .and_then(|v| v.to_vec().ok())
    {
        Some(v) => v.iter().map(|x| x.to_i32().map_or(1, i64::from)).collect(),
        None => Vec::new(),
    };
    let specials: Vec<AddedToken> = tokens
        .iter()
        .zip(&types)
        .filter(|(_, &t)| t == 3)
        .map(|(s, _)| AddedToken::from(s.clone(), true))
        .collect();
    tok.add_special_tokens(specials)
        .map_err(|e| fail(e.to_string()))?;
    tok.to_string(true).map_err(|e| fail(e.to_string()))
}

/// The Hugging Face `config.json` of a llama GGUF's metadata, with the query and key/value head
/// counts (the Q/K un-permutation needs them). Sizes are checked when the converted folder is
/// validated.
fn hf_config(c: &Content, gguf: &Path) -> Result<(serde_json::Value, usize, usize)> {
    let k = |s: &str| format!("llama.{s}");
    let d = meta_usize(c, &k("embedding_length"), gguf)?;
    let n_layers = meta_usize(c, &k("block_count"), gguf)?;
    let n_heads = meta_usize(c, &k("attention.head_count"), gguf)?;
    let n_kv = meta_usize(c, &k("attention.head_count_kv"), gguf).unwrap_or(n_heads);
    let ff = meta_usize(c, &k("feed_forward_length"), gguf)?;
    let tokens = strings(c, "tokenizer.ggml.tokens", gguf)?;
    let vocab = meta_usize(c, &k("vocab_size"), gguf).unwrap_or(tokens.len());
    let tied = !c.tensor_infos.contains_key("output.weight");
    let id = |key: &str| c.metadata.get(key).and_then(|v| v.to_u32().ok());
    let config = json!({
        "architectures": ["LlamaForCausalLM"],
        "model_type": "llama",
        "vocab_size": vocab,
        "hidden_size": d,
        "intermediate_size": ff,
        "num_hidden_layers": n_layers,
        "num_attention_heads": n_heads,
        "num_key_value_heads": n_kv,
        "head_dim": d / n_heads.max(1),
        "max_position_embeddings": meta_usize(c, &k("context_length"), gguf).unwrap_or(2048),
        "rms_norm_eps": meta_f64(c, &k("attention.layer_norm_rms_epsilon"), 1e-5),
        "rope_theta": meta_f64(c, &k("rope.freq_base"), 10_000.0),
        "hidden_act": "silu",
        "tie_word_embeddings": tied,
        "bos_token_id": id("tokenizer.ggml.bos_token_id"),
        "eos_token_id": id("tokenizer.ggml.eos_token_id"),
        "torch_dtype": "float32",
    });
    Ok((config, n_heads, n_kv))
}

/// Converts `gguf` into a Hugging Face folder `out` (config.json, fp32 model.safetensors,
/// tokenizer.json, PROVENANCE.json), written atomically.
pub fn convert(gguf: &Path, out: &Path) -> Result<GgufReport> {
    super::gguf_check::check(gguf)?;
    let mut file = std::fs::File::open(gguf).map_err(|e| Error::io("open", gguf, e))?;
    let c = guard_panics(gguf, "reading the GGUF header", || {
        Content::read(&mut file).map_err(|e| {
            Error::checkpoint(gguf, format!("not a GGUF file: {}", candle_message(&e)))
        })
    })?;
    let arch = meta(&c, "general.architecture", gguf)?
        .to_string()
        .map_err(|e| Error::checkpoint(gguf, candle_message(&e)))?
        .clone();
    if arch != "llama" {
        return Err(Error::checkpoint(
            gguf,
            format!("GGUF architecture `{arch}` is not supported (only llama)"),
        ));
    }
    let (config, n_heads, n_kv) = hf_config(&c, gguf)?;
    let name = c
        .metadata
        .get("general.name")
        .and_then(|v| v.to_string().ok())
        .cloned()
        .unwrap_or_default();
    let mut dtypes = BTreeMap::new();
    let mut tensors = Vec::with_capacity(c.tensor_infos.len());
    let mut names: Vec<&String> = c.tensor_infos.keys().collect();
    names.sort();
    for gname in names {
        let hf = hf_name(gname)
            .ok_or_else(|| Error::checkpoint(gguf, format!("unexpected tensor `{gname}`")))?;
        let qt = guard_panics(gguf, &format!("reading tensor `{gname}`"), || {
            c.tensor(&mut file, gname, &Device::Cpu).map_err(|e| {
                Error::checkpoint(gguf, format!("tensor `{gname}`: {}", candle_message(&e)))
            })
        })?;
        *dtypes.entry(format!("{:?}", qt.dtype())).or_insert(0) += 1;
        let mut t = qt.dequantize(&Device::Cpu).map_err(|e| {
            Error::checkpoint(gguf, format!("tensor `{gname}`: {}", candle_message(&e)))
        })?;
        if gname.contains("attn_q.") {
            t = unpermute_rows(&t, n_heads)?;
        } else if gname.contains("attn_k.") {
            t = unpermute_rows(&t, n_kv)?;
        }
        let values = t.flatten_all()?.to_vec1::<f32>()?;
        if let Some(i) = values.iter().position(|x| !x.is_finite()) {
            return Err(Error::checkpoint(
                gguf,
                format!("tensor `{gname}` dequantizes to a non-finite value at {i}"),
            ));
        }
        let data = f32_to_bytes(&values, DType::F32).unwrap_or_default();
        tensors.push(OutTensor {
            name: hf,
            dtype: DType::F32,
            shape: t.dims().to_vec(),
            data,
        });
    }
    let report = GgufReport {
        source: gguf.to_path_buf(),
        name,
        dtypes,
        n_tensors: tensors.len(),
        n_params: tensors
            .iter()
            .map(|t| t.shape.iter().product::<usize>())
            .sum(),
    };
    let dir = OutDir::create(out)?;
    let write = |file: &str, text: String| -> Result<()> {
        let p = dir.join(file);
        std::fs::write(&p, text + "\n").map_err(|e| Error::io("write", &p, e))
    };
    let pretty = |v: &serde_json::Value| serde_json::to_string_pretty(v).unwrap_or_default();
    write("config.json", pretty(&config))?;
    write("tokenizer.json", tokenizer_json(&c, gguf)?)?;
    let provenance = json!({
        "converted_from": gguf.display().to_string(),
        "source_dtypes": report.dtypes,
        "note": "Weights are the dequantized GGUF values (fp32); for a quantized GGUF they, not the original training weights, are the reference. Q/K rows are un-permuted from llama.cpp's interleaved-RoPE order to the Hugging Face rotate-half order.",
    });
    write("PROVENANCE.json", pretty(&provenance))?;
    write_safetensors(
        &dir.join("model.safetensors"),
        &tensors,
        Some([("format".to_string(), "pt".to_string())].into()),
    )?;
    // Exit 0 means our own loader reads the result: a GGUF whose metadata claims sizes its
    // tensors do not have (a 2^31-token context, 2^32 blocks) fails here, and nothing is kept.
    super::transformer::Transformer::validate_folder(&dir.tmp).map_err(|e| {
        Error::checkpoint(gguf, format!("the converted checkpoint does not load: {e}"))
    })?;
    dir.commit()?;
    Ok(report)
}
