//! The forward pass against Hugging Face transformers (PyTorch fp32): tiny random checkpoints
//! of every supported architecture, batch 2, context at the model's maximum
//! (scripts/make_tiny_models.py wrote the checkpoints and the logits).

use quantscape::codecs::Format;
use quantscape::model::{Hooks, NoHooks, Transformer};

use crate::util::{data_dir, read_oracle};

/// fp32 logits: max |ours − transformers|.
const LOGIT_TOL: f32 = 1e-4;

pub const ARCHS: [&str; 5] = ["llama", "qwen2", "gpt2", "gpt_neox", "gpt_neox_seq"];

fn model(name: &str) -> Transformer {
    Transformer::load(&data_dir().join("tiny").join(name)).unwrap()
}

#[test]
fn logits_match_transformers_for_every_architecture() {
    for name in ARCHS {
        let m = model(name);
        let o = read_oracle(&format!("tiny/{name}.logits.bin"));
        let shape: Vec<usize> = o["shape"].f32().iter().map(|&x| x as usize).collect();
        let (b, t, v) = (shape[0], shape[1], shape[2]);
        assert_eq!(
            t, m.config.max_positions,
            "{name}: the oracle runs at the maximum context"
        );
        assert!(b > 1);
        let ids: Vec<u32> = o["ids"].f32().iter().map(|&x| x as u32).collect();
        let logits = m.forward(&ids, b, &NoHooks).unwrap();
        assert_eq!(logits.dims(), &[b, t, v]);
        let ours = logits.flatten_all().unwrap().to_vec1::<f32>().unwrap();
        let theirs = o["logits"].f32();
        let max_err = ours
            .iter()
            .zip(theirs)
            .map(|(a, b)| (a - b).abs())
            .fold(0.0f32, f32::max);
        let spread = theirs.iter().fold(0.0f32, |m, x| m.max(x.abs()));
        assert!(
            max_err <= LOGIT_TOL,
            "{name}: max |Δlogit| = {max_err:e} (logits up to {spread})"
        );
        assert!(
            spread > 1.0,
            "{name}: logits too flat to test anything ({spread})"
        );
        // Rows are independent: the second row alone gives the same logits.
        let row = m
            .forward(&ids[t..], 1, &NoHooks)
            .unwrap()
            .flatten_all()
            .unwrap()
            .to_vec1::<f32>()
            .unwrap();
        let err = row
            .iter()
            .zip(&ours[t * v..])
            .map(|(a, b)| (a - b).abs())
            .fold(0.0f32, f32::max);
        assert!(
            err <= LOGIT_TOL,
            "{name}: batch row differs from single row by {err:e}"
        );
    }
}

#[test]
fn sites_and_parameter_counts() {
    for name in ARCHS {
        let m = model(name);
        let per_layer = m.linears.iter().filter(|l| l.layer == 0).count();
        let expect = if name.starts_with("llama") || name == "qwen2" {
            7
        } else {
            4
        };
        assert_eq!(per_layer, expect, "{name}");
        assert_eq!(
            m.matmuls.len(),
            m.linears.len() + 2 * m.config.n_layers,
            "{name}"
        );
        let ck =
            quantscape::model::checkpoint::Checkpoint::open(&data_dir().join("tiny").join(name))
                .unwrap();
        let stored: usize = ck
            .tensors
            .values()
            .map(|e| e.shape.iter().product::<usize>())
            .sum();
        assert_eq!(
            m.n_params_total, stored,
            "{name}: every stored tensor is used once"
        );
        assert!(m.n_params_non_embedding < m.n_params_total);
        for l in &m.linears {
            let e = &ck.tensors[&l.name];
            let layout =
                quantscape::model::sites::quantizable(&m.config.model_type, &l.name, &e.shape);
            assert_eq!(
                layout,
                Some(l.layout),
                "{name}: {} agrees with sites.rs",
                l.name
            );
        }
    }
}

struct Overrides(Vec<Option<candle_core::Tensor>>, Option<Format>);

impl Hooks for Overrides {
    fn weight(&self, linear: usize) -> Option<&candle_core::Tensor> {
        self.0.get(linear)?.as_ref()
    }
    fn operand_format(&self, _matmul: usize) -> Option<&Format> {
        self.1.as_ref()
    }
}

#[test]
fn weight_override_and_operand_quantization_change_the_output() {
    let m = model("llama");
    let ids: Vec<u32> = (0..32).map(|i| (i * 7 % 90) as u32).collect();
    let base = m
        .forward(&ids, 2, &NoHooks)
        .unwrap()
        .flatten_all()
        .unwrap()
        .to_vec1::<f32>()
        .unwrap();
    // Overriding a weight with itself changes nothing; zeroing the down projections changes the output.
    let same = Overrides(m.linears.iter().map(|_| None).collect(), None);
    let out = m
        .forward(&ids, 2, &same)
        .unwrap()
        .flatten_all()
        .unwrap()
        .to_vec1::<f32>()
        .unwrap();
    assert_eq!(out, base);
    let zeros: Vec<_> = m
        .linears
        .iter()
        .map(|l| {
            l.name.contains("down_proj").then(|| {
                candle_core::Tensor::zeros(
                    (l.out_features, l.in_features),
                    candle_core::DType::F32,
                    &candle_core::Device::Cpu,
                )
                .unwrap()
            })
        })
        .collect();
    let out = m
        .forward(&ids, 2, &Overrides(zeros, None))
        .unwrap()
        .flatten_all()
        .unwrap()
        .to_vec1::<f32>()
        .unwrap();
    assert!(out.iter().zip(&base).any(|(a, b)| (a - b).abs() > 1e-3));
    // Error grows as operands get coarser: fp16 < mxint8 < mxfp4 (this random model amplifies
    // operand errors about 3x, so absolute bounds would say little).
    let fmt = |s: &str| Overrides(vec![], Some(s.parse().unwrap()));
    let diff = |h: &Overrides| {
        let o = m
            .forward(&ids, 2, h)
            .unwrap()
            .flatten_all()
            .unwrap()
            .to_vec1::<f32>()
            .unwrap();
        o.iter()
            .zip(&base)
            .map(|(a, b)| (a - b).abs())
            .fold(0.0f32, f32::max)
    };
    let d16 = diff(&fmt("fp16"));
    let d8 = diff(&fmt("mxint8"));
    let d4 = diff(&fmt("mxfp4"));
    let spread = base.iter().fold(0.0f32, |m, x| m.max(x.abs()));
    assert!(
        d16 > 0.0 && d16 < 0.01 * spread && d8 > 5.0 * d16,
        "fp16 {d16}, mxint8 {d8}"
    );
    assert!(
        d4 > 2.0 * d8,
        "mxfp4 operands ({d4}) hurt more than mxint8 ({d8})"
    );
}

#[test]
fn bad_checkpoints_and_inputs_are_clear_errors() {
    let dir = tempfile::tempdir().unwrap();
    let src = data_dir().join("tiny").join("llama");
    for f in ["model.safetensors", "tokenizer.json"] {
        std::fs::copy(src.join(f), dir.path().join(f)).unwrap();
    }
    let cfg = std::fs::read_to_string(src.join("config.json")).unwrap();
    let write = |c: &str| std::fs::write(dir.path().join("config.json"), c).unwrap();
    write(&cfg.replace("LlamaForCausalLM", "MambaForCausalLM"));
    let e = Transformer::load(dir.path()).err().unwrap().to_string();
    assert!(
        e.contains("MambaForCausalLM") && e.contains("GPT2LMHeadModel"),
        "{e}"
    );
    write(&cfg.replace("\"intermediate_size\": 64", "\"intermediate_size\": 65"));
    let e = Transformer::load(dir.path()).err().unwrap().to_string();
    assert!(
        e.contains("gate_proj") && e.contains("model.safetensors"),
        "{e}"
    );
    write(&cfg.replace("\"rope_type\": \"default\"", "\"rope_type\": \"yarn\""));
    let e = Transformer::load(dir.path()).err().unwrap().to_string();
    assert!(e.contains("yarn"), "{e}");
    let m = model("gpt2");
    let long = vec![1u32; m.config.max_positions + 1];
    let e = m.forward(&long, 1, &NoHooks).err().unwrap().to_string();
    assert!(e.contains("exceeds"), "{e}");
    let e = m.forward(&[1000], 1, &NoHooks).err().unwrap().to_string();
    assert!(e.contains("vocabulary"), "{e}");
}

struct Capture(std::sync::Mutex<Vec<(usize, Vec<usize>)>>);

impl Hooks for Capture {
    fn captures(&self) -> bool {
        true
    }
    fn capture(&self, linear: usize, input: &candle_core::Tensor) -> quantscape::Result<()> {
        self.0.lock().unwrap().push((linear, input.dims().to_vec()));
        Ok(())
    }
}

#[test]
fn capture_hook_sees_every_linear_input_in_order() {
    for name in ARCHS {
        let m = model(name);
        let ids: Vec<u32> = (0..30).map(|i| (i * 5 % 90) as u32).collect();
        let cap = Capture(std::sync::Mutex::new(Vec::new()));
        let with = m
            .forward(&ids, 3, &cap)
            .unwrap()
            .flatten_all()
            .unwrap()
            .to_vec1::<f32>()
            .unwrap();
        let without = m
            .forward(&ids, 3, &NoHooks)
            .unwrap()
            .flatten_all()
            .unwrap()
            .to_vec1::<f32>()
            .unwrap();
        assert_eq!(with, without, "{name}: capturing changes nothing");
        let got = cap.0.into_inner().unwrap();
        assert_eq!(got.len(), m.linears.len(), "{name}");
        for (i, (site, dims)) in got.iter().enumerate() {
            assert_eq!(*site, i, "{name}: forward order");
            assert_eq!(
                dims,
                &vec![30, m.linears[i].in_features],
                "{name}: [B·T, in]"
            );
        }
    }
}
