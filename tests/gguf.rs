//! GGUF conversion: the Q/K un-permutation inverts llama.cpp's, and — when the SmolLM2 GGUF is
//! in the cache (.ci/run puts it there; `QS_SMOLLM2_GGUF` overrides the path) — the converted
//! model loads and predicts Persuasion at a sane perplexity. (scripts/check_gguf_transformers.py
//! checks the same export tensor by tensor against transformers' own GGUF loader: exact.)

use std::path::PathBuf;

use candle_core::{Device, Tensor};
use quantscape::eval::corpus::{self, Split};
use quantscape::eval::windows::{make_windows, WindowSpec};
use quantscape::model::gguf::{convert, permute_rows, unpermute_rows};
use quantscape::model::hub;
use quantscape::model::tokenizer::Tokenizer;
use quantscape::model::transformer::Transformer;
use quantscape::train::probe_loss;

/// Where .ci/run caches the GGUF.
pub fn smollm2_gguf() -> Option<PathBuf> {
    let p = std::env::var_os("QS_SMOLLM2_GGUF")
        .map(PathBuf::from)
        .or_else(|| {
            let home = std::env::var_os("HOME")?;
            Some(PathBuf::from(home).join(".cache/quantscape/SmolLM2-135M-Instruct.Q4_1.gguf"))
        })?;
    p.is_file().then_some(p)
}

#[test]
fn unpermute_inverts_llama_cpp_row_order() {
    let (heads, hd, k) = (3, 8, 5);
    let w = Tensor::arange(0f32, (heads * hd * k) as f32, &Device::Cpu)
        .unwrap()
        .reshape((heads * hd, k))
        .unwrap();
    let g = permute_rows(&w, heads).unwrap();
    // llama.cpp: within a head, GGUF row 2j + i holds HF row i·hd/2 + j.
    let row = |t: &Tensor, r: usize| t.get(r).unwrap().to_vec1::<f32>().unwrap();
    // head 1, j = 1, i = 1
    assert_eq!(row(&g, hd + 3), row(&w, hd + hd / 2 + 1));
    assert_eq!(row(&g, 2 * 3), row(&w, 3));
    let back = unpermute_rows(&g, heads).unwrap();
    assert_eq!(back.to_vec2::<f32>().unwrap(), w.to_vec2::<f32>().unwrap());
}

#[test]
fn smollm2_gguf_converts_and_predicts_austen() {
    let Some(gguf) = smollm2_gguf() else {
        eprintln!("skipped: SmolLM2-135M-Instruct.Q4_1.gguf not in ~/.cache/quantscape (run .ci/run or set QS_SMOLLM2_GGUF)");
        return;
    };
    let tmp = tempfile::tempdir().unwrap();
    // Through the cache, as `--model file.gguf` does: converted once, then reused.
    let out = hub::gguf_folder(&gguf, tmp.path()).unwrap();
    assert!(out.starts_with(tmp.path().join("gguf")));
    assert_eq!(hub::gguf_folder(&gguf, tmp.path()).unwrap(), out);
    let prov: serde_json::Value =
        serde_json::from_str(&std::fs::read_to_string(out.join("PROVENANCE.json")).unwrap())
            .unwrap();
    assert_eq!(prov["source_dtypes"]["Q4_1"], 210, "{prov}");
    let tok = Tokenizer::load(&out).unwrap();
    assert_eq!(tok.vocab_size(), 49152);
    assert_eq!(tok.bos, None, "SmolLM2 adds no BOS");
    assert_eq!(
        tok.encode("1811").unwrap().len(),
        4,
        "digits are split individually"
    );
    let mut model = Transformer::load(&out).unwrap();
    assert_eq!(model.config.n_kv_heads, 3);
    let text = corpus::load(&corpus::bundled_dir(), Split::EvalAusten).unwrap();
    let ids = tok.encode(&text[..20_000]).unwrap();
    let w = make_windows(
        &ids,
        tok.bos,
        &WindowSpec {
            ctx: 128,
            stride: None,
            n_windows: 2,
            seed: 0,
        },
        "persuasion",
    )
    .unwrap();
    let nll = probe_loss(&mut model, &w).unwrap();
    // 135M parameters on Jane Austen: perplexity in the tens. A wrong Q/K order gives > 6 nats.
    assert!((2.5..4.5).contains(&nll), "NLL {nll}");
    let e = convert(&gguf, &out).unwrap_err().to_string();
    assert!(e.contains("exists"), "{e}");
}

#[test]
fn non_gguf_input_is_refused_with_the_file_named() {
    let tmp = tempfile::tempdir().unwrap();
    let p = tmp.path().join("model.gguf");
    std::fs::write(&p, b"GGUF but not really").unwrap();
    let e = convert(&p, &tmp.path().join("out"))
        .unwrap_err()
        .to_string();
    assert!(e.contains("model.gguf"), "{e}");
    assert!(!tmp.path().join("out").exists());
    let e = hub::gguf_folder(&p, &tmp.path().join("cache"))
        .unwrap_err()
        .to_string();
    assert!(e.contains("model.gguf"), "{e}");
    let left = std::fs::read_dir(tmp.path().join("cache").join("gguf"))
        .unwrap()
        .count();
    assert_eq!(left, 0, "a failed conversion leaves nothing in the cache");
}
