//! Shared helpers: oracle file reader, seeded weights, tiny checkpoints.

use std::collections::BTreeMap;
use std::path::{Path, PathBuf};

use rand::{Rng as _, SeedableRng as _};
use rand_distr::{Distribution as _, Normal, StudentT};

/// An array from an oracle file.
pub enum Array {
    F32(Vec<f32>),
    U8(Vec<u8>),
}

impl Array {
    pub fn f32(&self) -> &[f32] {
        match self {
            Array::F32(v) => v,
            Array::U8(_) => panic!("expected f32 array"),
        }
    }
    pub fn u8(&self) -> &[u8] {
        match self {
            Array::U8(v) => v,
            Array::F32(_) => panic!("expected u8 array"),
        }
    }
}

/// Reads a `QSOR` file written by scripts/make_oracles.py.
pub fn read_oracle(name: &str) -> BTreeMap<String, Array> {
    let path = data_dir().join(name);
    let b = std::fs::read(&path).unwrap_or_else(|e| panic!("{}: {e}", path.display()));
    assert_eq!(&b[..4], b"QSOR");
    let u32_at = |i: usize| u32::from_le_bytes(b[i..i + 4].try_into().unwrap()) as usize;
    let n = u32_at(4);
    let mut pos = 8;
    let mut out = BTreeMap::new();
    for _ in 0..n {
        let len = u32_at(pos);
        let name = String::from_utf8(b[pos + 4..pos + 4 + len].to_vec()).unwrap();
        pos += 4 + len;
        let kind = b[pos];
        let count = u32_at(pos + 1);
        pos += 5;
        let arr = if kind == 0 {
            let v = b[pos..pos + 4 * count]
                .chunks_exact(4)
                .map(|c| f32::from_le_bytes(c.try_into().unwrap()))
                .collect();
            pos += 4 * count;
            Array::F32(v)
        } else {
            let v = b[pos..pos + count].to_vec();
            pos += count;
            Array::U8(v)
        };
        out.insert(name, arr);
    }
    out
}

pub fn data_dir() -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR"))
        .join("tests")
        .join("data")
}

/// Seeded Gaussian weights N(0, std²).
pub fn gaussian(n: usize, std: f32, seed: u64) -> Vec<f32> {
    let mut rng = rand::rngs::StdRng::seed_from_u64(seed);
    let d = Normal::new(0.0f32, std).unwrap();
    (0..n).map(|_| d.sample(&mut rng)).collect()
}

/// Seeded heavy-tailed weights (Student-t, 3 degrees of freedom) scaled by `std`.
pub fn student_t(n: usize, std: f32, seed: u64) -> Vec<f32> {
    let mut rng = rand::rngs::StdRng::seed_from_u64(seed);
    let d = StudentT::new(3.0f32).unwrap();
    (0..n).map(|_| d.sample(&mut rng) * std).collect()
}

/// Random values spanning many binades, both signs.
pub fn log_uniform(n: usize, lo_exp: f32, hi_exp: f32, seed: u64) -> Vec<f32> {
    let mut rng = rand::rngs::StdRng::seed_from_u64(seed);
    (0..n)
        .map(|_| {
            let e: f32 = rng.random_range(lo_exp..hi_exp);
            let s = if rng.random_bool(0.5) { 1.0 } else { -1.0 };
            s * e.exp2()
        })
        .collect()
}

/// Bitwise equality that treats every NaN as equal to every NaN.
pub fn same_bits(a: f32, b: f32) -> bool {
    (a.is_nan() && b.is_nan()) || a.to_bits() == b.to_bits()
}

/// The `config.json` of [`tiny_checkpoint`]: a complete Llama config (GQA 3 heads of 16, 1 KV
/// head), so the folder loads as `info` and `quantize` require.
pub const TINY_CONFIG: &str = r#"{"architectures":["LlamaForCausalLM"],"model_type":"llama",
"vocab_size":64,"hidden_size":48,"intermediate_size":100,"num_hidden_layers":2,
"num_attention_heads":3,"num_key_value_heads":1,"max_position_embeddings":64,
"rms_norm_eps":1e-5,"rope_theta":10000.0}"#;

/// Writes a tiny Llama-like checkpoint folder with F32/F16/BF16 tensors.
pub fn tiny_checkpoint(dir: &Path, dtype: &str) {
    use quantscape::model::checkpoint::{f32_to_bytes, write_safetensors, DType, OutTensor};
    std::fs::create_dir_all(dir).unwrap();
    let dt = match dtype {
        "F32" => DType::F32,
        "F16" => DType::F16,
        _ => DType::BF16,
    };
    let mut ts = Vec::new();
    let mut add = |name: &str, shape: Vec<usize>, seed: u64| {
        let n: usize = shape.iter().product();
        let v = gaussian(n, 0.05, seed);
        ts.push(OutTensor {
            name: name.into(),
            dtype: dt,
            shape,
            data: f32_to_bytes(&v, dt).unwrap(),
        });
    };
    add("model.embed_tokens.weight", vec![64, 48], 1);
    for l in 0..2u64 {
        for (k, shape) in [
            ("self_attn.q_proj", vec![48, 48]),
            ("self_attn.k_proj", vec![16, 48]),
            ("self_attn.v_proj", vec![16, 48]),
            ("self_attn.o_proj", vec![48, 48]),
            ("mlp.gate_proj", vec![100, 48]),
            ("mlp.up_proj", vec![100, 48]),
            ("mlp.down_proj", vec![48, 100]),
        ] {
            add(&format!("model.layers.{l}.{k}.weight"), shape, 10 + l);
        }
        for norm in ["input_layernorm", "post_attention_layernorm"] {
            add(&format!("model.layers.{l}.{norm}.weight"), vec![48], 3);
        }
    }
    add("model.norm.weight", vec![48], 4);
    add("lm_head.weight", vec![64, 48], 2);
    write_safetensors(&dir.join("model.safetensors"), &ts, None).unwrap();
    std::fs::write(dir.join("config.json"), TINY_CONFIG).unwrap();
    std::fs::write(dir.join("tokenizer.json"), "{}").unwrap();
}

/// Runs the `quantscape` binary in `cwd`.
pub fn qs(args: &[&str], cwd: &Path) -> std::process::Output {
    std::process::Command::new(env!("CARGO_BIN_EXE_quantscape"))
        .args(args)
        .current_dir(cwd)
        .output()
        .unwrap()
}

/// Rewrites the dtype of `tensor` in a safetensors file's header, keeping its bytes (a forged
/// label of the same element size, e.g. BF16 → I16, F32 → I32). The header keeps its length
/// (padded with spaces, which the format allows).
pub fn relabel_dtype(file: &Path, tensor: &str, dtype: &str) {
    let b = std::fs::read(file).unwrap();
    let n = u64::from_le_bytes(b[..8].try_into().unwrap()) as usize;
    let mut h: serde_json::Value = serde_json::from_slice(&b[8..8 + n]).unwrap();
    h[tensor]["dtype"] = serde_json::Value::String(dtype.into());
    let mut text = serde_json::to_string(&h).unwrap();
    assert!(text.len() <= n, "the new header must not be longer");
    while text.len() < n {
        text.push(' ');
    }
    let mut out = b[..8].to_vec();
    out.extend_from_slice(text.as_bytes());
    out.extend_from_slice(&b[8 + n..]);
    std::fs::write(file, out).unwrap();
}
