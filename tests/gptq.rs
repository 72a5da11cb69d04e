//! Calibrated methods: GPTQ against the reference algorithm (numpy oracle), GPTQ ≤ RTN on the
//! layer loss for every preset, GPTQ = RTN when H = I (edge shapes included), AWQ ≤ RTN on its
//! own loss, sequential calibration through real models, and ΔL(GPTQ) < ΔL(RTN) end to end.

use std::path::{Path, PathBuf};

use quantscape::codecs::awq::reconstruction_loss;
use quantscape::codecs::{
    awq, fake_quant, gptq, AwqLayer, AwqParams, Format, GptqParams, Kernel, Method, PRESET_NAMES,
};
use quantscape::eval::windows::{make_windows, WindowSpec};
use quantscape::eval::{corpus, Evaluator};
use quantscape::model::calibrated::{input_groups, quantize_calibrated};
use quantscape::model::quantized::quantize_all;
use quantscape::model::{Tokenizer, Transformer};
use quantscape::Error;
use rand::{Rng as _, SeedableRng as _};

use crate::util::{data_dir, gaussian, same_bits};

/// Least fraction of weights the oracle and quantscape must round identically (f32 operation
/// order differs, so a weight sitting on a rounding boundary may flip and nudge its row).
const ORACLE_SAME_FRACTION: f64 = 0.98;
/// Largest relative difference of the layer loss ‖(W − Ŵ)X‖² between oracle and quantscape.
const ORACLE_LOSS_REL: f64 = 0.01;

/// Correlated inputs with uneven channel scales: H = 2XᵀX/n (`cols × cols`, f64).
fn hessian(cols: usize, n: usize, seed: u64) -> Vec<f64> {
    let mut rng = rand::rngs::StdRng::seed_from_u64(seed);
    let mix: Vec<f64> = (0..cols * cols)
        .map(|i| {
            let g: f64 = rng.sample(rand_distr::StandardNormal);
            0.3 * g + if i / cols == i % cols { 1.0 } else { 0.0 }
        })
        .collect();
    let scale: Vec<f64> = (0..cols).map(|_| rng.random_range(0.2..3.0)).collect();
    let mut x = vec![0f64; n * cols];
    for r in 0..n {
        let z: Vec<f64> = (0..cols)
            .map(|_| rng.sample(rand_distr::StandardNormal))
            .collect();
        for c in 0..cols {
            let v: f64 = (0..cols).map(|k| z[k] * mix[k * cols + c]).sum();
            x[r * cols + c] = v * scale[c];
        }
    }
    let mut h = vec![0f64; cols * cols];
    for r in 0..n {
        let row = &x[r * cols..(r + 1) * cols];
        for i in 0..cols {
            for j in 0..cols {
                h[i * cols + j] += 2.0 * row[i] * row[j] / n as f64;
            }
        }
    }
    h
}

fn layer_loss(w: &[f32], q: &[f32], cols: usize, h: &[f64]) -> f64 {
    let hf: Vec<f32> = h.iter().map(|v| *v as f32).collect();
    reconstruction_loss(w, q, cols, &hf)
}

#[test]
fn matches_the_reference_algorithm() {
    let path = data_dir().join("gptq_oracle.json");
    let text = std::fs::read_to_string(&path).unwrap();
    let v: serde_json::Value = serde_json::from_str(&text).unwrap();
    let rows = v["rows"].as_u64().unwrap() as usize;
    let cols = v["cols"].as_u64().unwrap() as usize;
    let floats = |x: &serde_json::Value| -> Vec<f64> {
        x.as_array()
            .unwrap()
            .iter()
            .map(|e| e.as_f64().unwrap())
            .collect()
    };
    let w: Vec<f32> = floats(&v["w"]).iter().map(|x| *x as f32).collect();
    let h = floats(&v["h"]);
    for (name, case) in v["cases"].as_object().unwrap() {
        let group = case["groupsize"].as_i64().unwrap();
        let block = if group > 0 {
            group.to_string()
        } else {
            "channel".into()
        };
        let format: Format = format!("int4_asym,scale=fp32,block={block}")
            .parse()
            .unwrap();
        let p = GptqParams {
            percdamp: v["percdamp"].as_f64().unwrap(),
            block_cols: case["blocksize"].as_u64().unwrap() as u32,
            act_order: case["actorder"].as_bool().unwrap(),
        };
        let want: Vec<f32> = floats(&case["q"]).iter().map(|x| *x as f32).collect();
        let got = gptq(&w, rows, cols, &h, &format, &p).unwrap();
        assert_eq!(got.dead_cols, 1, "{name}");
        let same = want
            .iter()
            .zip(&got.weights)
            .filter(|(a, b)| a.to_bits() == b.to_bits())
            .count() as f64
            / want.len() as f64;
        assert!(
            same >= ORACLE_SAME_FRACTION,
            "{name}: only {same:.4} identical"
        );
        let (lw, lg) = (
            layer_loss(&w, &want, cols, &h),
            layer_loss(&w, &got.weights, cols, &h),
        );
        assert!(
            (lg - lw).abs() <= ORACLE_LOSS_REL * lw,
            "{name}: loss {lg} vs oracle {lw}"
        );
        let rtn = fake_quant(&w, rows, cols, &format, &Method::Rtn).unwrap();
        assert!(
            lg < 0.8 * layer_loss(&w, &rtn, cols, &h),
            "{name}: GPTQ should beat RTN clearly here"
        );
    }
}

#[test]
fn beats_round_to_nearest_for_every_preset() {
    // 200 columns: not a multiple of any preset's block (16, 32, 64, 128).
    let (rows, cols) = (24, 200);
    let h = hessian(cols, 400, 7);
    let w = gaussian(rows * cols, 0.05, 11);
    for name in PRESET_NAMES {
        let f = Format::preset(name).unwrap();
        let rtn = fake_quant(&w, rows, cols, &f, &Method::Rtn).unwrap();
        let l_rtn = layer_loss(&w, &rtn, cols, &h);
        for act_order in [true, false] {
            let p = GptqParams {
                act_order,
                ..GptqParams::default()
            };
            let out = gptq(&w, rows, cols, &h, &f, &p).unwrap();
            let l = layer_loss(&w, &out.weights, cols, &h);
            // Every output lies on the grid of the block parameters GPTQ reports.
            let k = Kernel::new(&f).unwrap();
            let blen = f.block.block_len(cols);
            let bpr = cols.div_ceil(blen);
            for (r, row) in out.weights.chunks(cols).enumerate() {
                for (b, xs) in row.chunks(blen).enumerate() {
                    let p = out.params[if out.params.len() == 1 {
                        0
                    } else {
                        r * bpr + b
                    }];
                    let mut again = vec![0f32; xs.len()];
                    k.fake_block(xs, &p, &mut again);
                    assert!(
                        xs.iter().zip(&again).all(|(a, b)| same_bits(*a, *b)),
                        "{name}: row {r} block {b} is off its grid"
                    );
                }
            }
            assert!(
                l < l_rtn,
                "{name} act_order={act_order}: GPTQ {l:.4e} ≥ RTN {l_rtn:.4e}"
            );
        }
    }
}

#[test]
fn identity_hessian_is_round_to_nearest() {
    // Edge shapes: one element, shorter than a block, not a multiple, many blocks.
    for (rows, cols) in [(1, 1), (3, 5), (4, 37), (7, 300)] {
        let w = gaussian(rows * cols, 0.1, (rows * cols) as u64);
        let mut h = vec![0f64; cols * cols];
        for i in 0..cols {
            h[i * cols + i] = 1.0;
        }
        for name in PRESET_NAMES {
            let f = Format::preset(name).unwrap();
            let rtn = fake_quant(&w, rows, cols, &f, &Method::Rtn).unwrap();
            for act_order in [true, false] {
                let p = GptqParams {
                    act_order,
                    ..GptqParams::default()
                };
                let out = gptq(&w, rows, cols, &h, &f, &p).unwrap();
                assert!(
                    rtn.iter().zip(&out.weights).all(|(a, b)| same_bits(*a, *b)),
                    "{name} {rows}×{cols} act_order={act_order}"
                );
            }
        }
    }
    // Empty layer.
    let f = Format::preset("mxfp4").unwrap();
    let out = gptq(&[], 0, 4, &[1.0; 16], &f, &GptqParams::default()).unwrap();
    assert!(out.weights.is_empty());
}

#[test]
fn bad_inputs_are_errors() {
    let f = Format::preset("int4_asym").unwrap();
    let p = GptqParams::default();
    let h = vec![1.0, 0.0, 0.0, 1.0];
    let e = gptq(&[1.0, f32::NAN], 1, 2, &h, &f, &p).unwrap_err();
    assert!(matches!(e, Error::Numerical(_)), "{e}");
    let e = gptq(&[1.0, 2.0], 1, 2, &[1.0, f64::INFINITY, 0.0, 1.0], &f, &p).unwrap_err();
    assert!(matches!(e, Error::Numerical(_)), "{e}");
    let e = gptq(&[1.0, 2.0, 3.0], 1, 2, &h, &f, &p).unwrap_err();
    assert!(matches!(e, Error::Shape { .. }), "{e}");
    let e = fake_quant(&[1.0], 1, 1, &f, &Method::Gptq(p)).unwrap_err();
    assert!(e.to_string().contains("calibration"), "{e}");
}

#[test]
fn awq_never_loses_to_round_to_nearest_on_its_loss() {
    let (cols, h) = (96, hessian(96, 300, 3));
    let w1 = gaussian(32 * cols, 0.05, 1);
    let w2 = gaussian(16 * cols, 0.05, 2);
    let layers = [
        AwqLayer {
            weights: &w1,
            rows: 32,
        },
        AwqLayer {
            weights: &w2,
            rows: 16,
        },
    ];
    let x_abs: Vec<f32> = (0..cols).map(|i| h[i * cols + i].sqrt() as f32).collect();
    for name in ["int4_asym", "int3_asym", "mxfp4", "mxint4", "nf4"] {
        let f = Format::preset(name).unwrap();
        let out = awq(&layers, cols, &h, &x_abs, &f, &AwqParams::default()).unwrap();
        assert!(out.loss <= out.loss_plain, "{name}");
        assert_eq!(out.scales.len(), cols);
        let l: f64 = [(&w1, &out.weights[0]), (&w2, &out.weights[1])]
            .iter()
            .map(|(w, q)| layer_loss(w, q, cols, &h))
            .sum();
        assert!((l - out.loss).abs() <= 1e-3 * out.loss.max(1e-12), "{name}");
    }
}

fn tiny(name: &str) -> PathBuf {
    data_dir().join("tiny").join(name)
}

fn calib_ids(model: &Transformer, tok: &Tokenizer, n: usize, ctx: usize) -> Vec<u32> {
    let text = corpus::load(&corpus::bundled_dir(), corpus::Split::Calib).unwrap();
    let tokens = tok.encode(&text).unwrap();
    let ctx = ctx.min(model.config.max_positions);
    let spec = WindowSpec {
        ctx,
        stride: None,
        n_windows: n,
        seed: 0,
    };
    make_windows(&tokens, tok.bos, &spec, "calib").unwrap().ids
}

#[test]
fn sequential_calibration_runs_on_every_architecture() {
    for arch in ["llama", "qwen2", "gpt2", "gpt_neox", "gpt_neox_seq"] {
        let dir = tiny(arch);
        let model = Transformer::load(&dir).unwrap();
        let tok = Tokenizer::load(&dir).unwrap();
        let ctx = model.config.max_positions.min(32);
        let ids = calib_ids(&model, &tok, 8, ctx);
        let groups: usize = model.blocks.iter().map(|b| input_groups(b).len()).sum();
        let f = Format::preset("int4_asym").unwrap();
        for method in ["gptq", "awq"] {
            let m: Method = method.parse().unwrap();
            let mut calls = Vec::new();
            let (o, stats, rep) = quantize_calibrated(&model, &ids, ctx, &f, &m, &mut |d, t| {
                calls.push((d, t));
                true
            })
            .unwrap();
            assert_eq!(
                o.weights.iter().filter(|w| w.is_some()).count(),
                model.linears.len()
            );
            assert_eq!(stats.len(), model.linears.len());
            assert_eq!(calls.len(), groups + 1, "{arch} {method}");
            assert_eq!(
                calls.last(),
                Some(&(model.linears.len(), model.linears.len()))
            );
            assert!(stats.iter().all(|s| s.mse.is_finite() && s.mse > 0.0));
            assert_eq!(rep.n_windows, 8);
        }
        // Cancel after the first group.
        let m: Method = "gptq".parse().unwrap();
        let e = quantize_calibrated(&model, &ids, ctx, &f, &m, &mut |d, _| d == 0).unwrap_err();
        assert!(matches!(e, Error::Cancelled), "{arch}: {e}");
        // Windows that do not tile the ids are refused.
        let e = quantize_calibrated(&model, &ids[..ids.len() - 1], ctx, &f, &m, &mut |_, _| true)
            .unwrap_err();
        assert!(matches!(e, Error::Input(_)), "{arch}: {e}");
    }
}

/// ΔL of `method` on the bundled model, on held-out Persuasion windows (fixed seed).
fn delta_loss(dir: &Path, format: &str, method: &str) -> f64 {
    let model = Transformer::load(dir).unwrap();
    let tok = Tokenizer::load(dir).unwrap();
    let ctx = model.config.max_positions;
    let text = corpus::load(&corpus::bundled_dir(), corpus::Split::EvalAusten).unwrap();
    let tokens = tok.encode(&text).unwrap();
    let spec = WindowSpec {
        ctx,
        stride: None,
        n_windows: 48,
        seed: 1,
    };
    let windows = make_windows(&tokens, tok.bos, &spec, "persuasion").unwrap();
    let ev = Evaluator::new(&model, &windows).unwrap();
    let base = ev.base(8, &mut |_, _| true).unwrap();
    let f: Format = format.parse().unwrap();
    let m: Method = method.parse().unwrap();
    let hooks = if m.needs_calibration() {
        let ids = calib_ids(&model, &tok, 64, ctx);
        quantize_calibrated(&model, &ids, ctx, &f, &m, &mut |_, _| true)
            .unwrap()
            .0
    } else {
        quantize_all(&model, &f, &m).unwrap().0
    };
    ev.compare(&base, &hooks, 10, 0, &mut |_, _| true)
        .unwrap()
        .delta_nll
}

#[test]
fn gptq_lowers_delta_loss_on_a_bundled_model() {
    let dir = Path::new(env!("CARGO_MANIFEST_DIR")).join("assets/models/qs-llama-s2-1M");
    for format in ["int4_asym,block=channel", "int3_asym,block=channel"] {
        let rtn = delta_loss(&dir, format, "rtn");
        let gptq = delta_loss(&dir, format, "gptq");
        assert!(rtn > 0.0, "{format}: RTN should cost loss ({rtn})");
        assert!(gptq < rtn, "{format}: ΔL GPTQ {gptq:.5} ≥ RTN {rtn:.5}");
    }
}

fn qs(args: &[&str]) -> std::process::Output {
    crate::util::qs(args, Path::new(env!("CARGO_MANIFEST_DIR")))
}

#[test]
fn cli_calibrates_in_eval_and_quantize() {
    let model = tiny("llama");
    let m = model.to_str().unwrap();
    // eval: bundled splits for --data and --calib; JSON names the calibration.
    let o = qs(&[
        "eval",
        "--model",
        m,
        "--data",
        "eval_kjv",
        "--format",
        "int4_asym",
        "--block",
        "32",
        "--method",
        "gptq:act_order=false",
        "--calib-windows",
        "8",
        "--windows",
        "4",
        "--json",
        "--quiet",
    ]);
    assert!(o.status.success(), "{}", String::from_utf8_lossy(&o.stderr));
    let v: serde_json::Value = serde_json::from_slice(&o.stdout).unwrap();
    assert_eq!(v["method"], "gptq:act_order=false");
    assert_eq!(v["data"], "bundled:eval_kjv");
    assert_eq!(v["calibration"]["n_windows"], 8);
    assert!(v["report"]["delta_nll"].as_f64().unwrap().is_finite());
    // Calibrating on the evaluation text is refused.
    let o = qs(&[
        "eval", "--model", m, "--data", "calib", "--format", "mxfp4", "--method", "awq", "--quiet",
    ]);
    assert_eq!(o.status.code(), Some(2));
    assert!(String::from_utf8_lossy(&o.stderr).contains("same text"));
    // quantize: writes a checkpoint that loads, with the method in its report.
    let tmp = tempfile::tempdir().unwrap();
    let out = tmp.path().join("q");
    let o = qs(&[
        "quantize",
        "--model",
        m,
        "--format",
        "int3_asym",
        "--method",
        "awq",
        "--calib-windows",
        "8",
        "--out",
        out.to_str().unwrap(),
        "--quiet",
    ]);
    assert!(o.status.success(), "{}", String::from_utf8_lossy(&o.stderr));
    assert!(String::from_utf8_lossy(&o.stdout).contains("method awq"));
    let q = Transformer::load(&out).unwrap();
    assert_eq!(
        q.linears.len(),
        Transformer::load(&model).unwrap().linears.len()
    );
    // Unknown method options fail fast.
    let o = qs(&[
        "eval",
        "--model",
        m,
        "--format",
        "mxfp4",
        "--method",
        "gptq:dmp=1",
        "--quiet",
    ]);
    assert_eq!(o.status.code(), Some(2));
    assert!(String::from_utf8_lossy(&o.stderr).contains("unknown option"));
}
