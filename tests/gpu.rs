//! GPU engine against the CPU reference: shader validation (naga, no GPU needed), then codec
//! kernels bit for bit and matmuls to a named tolerance on edge shapes. GPU tests run on any
//! adapter (lavapipe in CI) and skip with the printed reason only when none exists.

use std::sync::OnceLock;

use quantscape::codecs::{self, Format, Method, PRESET_NAMES};
use quantscape::gpu::{self, GpuContext, MxFormats};
use rand::{Rng as _, SeedableRng as _};

/// Relative tolerance of a GPU fp32 GEMM against the f64 CPU sum, scaled by Σ|a·b|.
const GEMM_REL_TOL: f64 = 1e-5;

fn ctx() -> Option<&'static GpuContext> {
    static CTX: OnceLock<Option<GpuContext>> = OnceLock::new();
    CTX.get_or_init(|| match GpuContext::try_new() {
        Ok(c) => {
            eprintln!("GPU tests run on {}", c.describe());
            Some(c)
        }
        Err(why) => {
            eprintln!("skipping GPU tests: {why}");
            None
        }
    })
    .as_ref()
}

#[test]
fn every_shader_validates_with_naga() {
    for (name, src) in gpu::shader_modules() {
        let module = naga::front::wgsl::parse_str(&src)
            .unwrap_or_else(|e| panic!("{name}.wgsl: {}", e.emit_to_string(&src)));
        naga::valid::Validator::new(
            naga::valid::ValidationFlags::all(),
            naga::valid::Capabilities::empty(),
        )
        .validate(&module)
        .unwrap_or_else(|e| panic!("{name}.wgsl: {e:?}"));
    }
}

/// Values that stress a codec: Gaussian with varied scales, exact zeros of both signs,
/// subnormals, huge values, ties of common grids, and (with `specials`) NaN and ±Inf.
fn stress_values(n: usize, seed: u64, specials: bool) -> Vec<f32> {
    let mut rng = rand::rngs::StdRng::seed_from_u64(seed);
    (0..n)
        .map(|i| {
            let pick = rng.random_range(0..100u32);
            let g: f32 = rng.random_range(-1.0f32..1.0) + rng.random_range(-1.0f32..1.0);
            match pick {
                0..=59 => g * [1.0, 1e-3, 30.0, 1e4][i % 4],
                60..=64 => 0.0,
                65..=67 => -0.0,
                68..=71 => f32::from_bits(rng.random_range(1..0x0080_0000u32)) * g.signum(),
                72..=74 => 3.0e38 * g.signum(),
                75..=84 => (rng.random_range(-24i32..24) as f32) * 0.25,
                85..=89 => (rng.random_range(-16i32..16) as f32 + 0.5) * 0.5,
                90 if specials => f32::NAN,
                91 if specials => f32::INFINITY,
                92 if specials => f32::NEG_INFINITY,
                _ => g * 1e-38,
            }
        })
        .collect()
}

/// Equal bit patterns, or both NaN (NaN payloads are not part of the contract).
fn same_bits(a: &[f32], b: &[f32]) -> Option<usize> {
    assert_eq!(a.len(), b.len());
    a.iter()
        .zip(b)
        .position(|(x, y)| !(x.to_bits() == y.to_bits() || (x.is_nan() && y.is_nan())))
}

/// (rows, cols) edge shapes: empty, one element, shorter than a block, not a multiple of the
/// block, several blocks, rows not a multiple of the workgroup.
const SHAPES: [(usize, usize); 7] = [
    (0, 0),
    (1, 1),
    (3, 7),
    (5, 33),
    (2, 200),
    (17, 130),
    (300, 3),
];

fn check_format(c: &GpuContext, spec: &str, seed: u64) {
    let f = Format::parse(spec).unwrap();
    for (si, &(rows, cols)) in SHAPES.iter().enumerate() {
        for specials in [false, true] {
            let w = stress_values(rows * cols, seed + si as u64, specials);
            let want = codecs::fake_quant(&w, rows, cols, &f, &Method::Rtn).unwrap();
            let got = gpu::fake_quant(c, &w, rows, cols, &f).unwrap();
            if let Some(i) = same_bits(&want, &got) {
                panic!(
                    "{spec} {rows}×{cols} (specials {specials}): fake_quant differs at {i}: \
                     x = {:e} ({:#010x}), cpu {:e} ({:#010x}), gpu {:e} ({:#010x})",
                    w[i],
                    w[i].to_bits(),
                    want[i],
                    want[i].to_bits(),
                    got[i],
                    got[i].to_bits()
                );
            }
            let q_cpu = codecs::quantize(&w, rows, cols, &f, &Method::Rtn).unwrap();
            let q_gpu = gpu::quantize(c, &w, rows, cols, &f).unwrap();
            assert_eq!(q_cpu.codes, q_gpu.codes, "{spec} {rows}×{cols}: codes");
            assert_eq!(q_cpu.scales, q_gpu.scales, "{spec} {rows}×{cols}: scales");
            assert_eq!(q_cpu.zeros, q_gpu.zeros, "{spec} {rows}×{cols}: zeros");
            assert_eq!(
                q_cpu.global_scale.map(f32::to_bits),
                q_gpu.global_scale.map(f32::to_bits),
                "{spec} {rows}×{cols}: global scale"
            );
            let d_gpu = gpu::dequantize(c, &q_cpu).unwrap();
            assert_eq!(
                same_bits(&want, &d_gpu),
                None,
                "{spec} {rows}×{cols}: dequantize"
            );
        }
    }
}

#[test]
fn every_preset_is_bit_identical_to_the_cpu_reference() {
    let Some(c) = ctx() else { return };
    for (i, name) in PRESET_NAMES.iter().enumerate() {
        check_format(c, name, 100 * i as u64);
    }
}

#[test]
fn rounding_scale_rules_and_custom_elements_are_bit_identical() {
    let Some(c) = ctx() else { return };
    let specs = [
        "mxfp4,round=away",
        "mxfp4,round=zero",
        "mxfp8_e5m2,overflow=infnan",
        "mxfp8_e4m3,scale=e8m0_ceil",
        "mxfp6_e2m3,scale=e8m0_even",
        "mxfp4,scale=e8m0_rceil,block=16",
        "mxint8,scale=e8m0_rceil",
        "mxint4,round=away,block=7",
        "elem=e3m4,scale=bf16,block=48",
        "elem=e5m10,scale=fp32,block=channel",
        "elem=e8m3_ieee,scale=e8m0,block=32",
        "elem=e1m2,scale=fp16,block=5",
        "nf4,round=zero,block=tensor",
        "nf4,scale=fp16,round=away",
        "int4_asym,zero=fp16,block=32",
        "int3_asym,zero=bf16,scale=bf16,block=channel",
        "int2_asym,zero=fp32,scale=fp32,block=3",
        "int8,block=tensor",
        "int4_sym,scale=e4m3,block=16",
        "elem=int5,scale=e8m0,block=32,round=zero",
        "nvfp4,block=32",
        "fp16,round=zero",
        "bf16,overflow=saturate",
        "elem=e4m3,scale=none,round=away",
    ];
    for (i, spec) in specs.iter().enumerate() {
        check_format(c, spec, 7000 + 10 * i as u64);
    }
}

fn gemm_ref(a: &[f32], b: &[f32], m: usize, k: usize, n: usize) -> (Vec<f64>, Vec<f64>) {
    let mut c = vec![0.0; m * n];
    let mut mag = vec![0.0; m * n];
    for i in 0..m {
        for j in 0..n {
            for p in 0..k {
                let t = f64::from(a[i * k + p]) * f64::from(b[j * k + p]);
                c[i * n + j] += t;
                mag[i * n + j] += t.abs();
            }
        }
    }
    (c, mag)
}

fn assert_gemm_close(got: &[f32], want: &(Vec<f64>, Vec<f64>), k: usize, what: &str) {
    for (i, (&g, (&w, &mag))) in got.iter().zip(want.0.iter().zip(&want.1)).enumerate() {
        let tol = GEMM_REL_TOL * mag.max(1e-30) * (k.max(1) as f64).sqrt();
        assert!(
            (f64::from(g) - w).abs() <= tol,
            "{what}: C[{i}] = {g}, want {w} (tol {tol:e})"
        );
    }
}

#[test]
fn gemm_and_mx_matmul_match_the_cpu_on_odd_shapes() {
    let Some(c) = ctx() else { return };
    let mut rng = rand::rngs::StdRng::seed_from_u64(5);
    let shapes = [
        (1, 1, 1),
        (3, 5, 7),
        (65, 33, 70),
        (130, 97, 63),
        (2, 300, 129),
        (0, 4, 3),
        (4, 0, 3),
    ];
    let wf = Format::parse("mxfp4").unwrap();
    let af = Format::parse("mxint8,block=16").unwrap();
    for &(m, k, n) in &shapes {
        let a: Vec<f32> = (0..m * k).map(|_| rng.random_range(-2.0f32..2.0)).collect();
        let b: Vec<f32> = (0..n * k).map(|_| rng.random_range(-1.0f32..1.0)).collect();
        let got = gpu::gemm(c, &a, &b, m, k, n).unwrap();
        assert_eq!(got.len(), m * n);
        assert_gemm_close(
            &got,
            &gemm_ref(&a, &b, m, k, n),
            k,
            &format!("gemm {m}×{k}×{n}"),
        );
        // MX: K not a multiple of either block size in most shapes.
        let formats = MxFormats {
            a: Some(&af),
            b: Some(&wf),
        };
        let got = gpu::mx_matmul(c, &a, &b, m, k, n, formats).unwrap();
        let aq = codecs::fake_quant(&a, m, k, &af, &Method::Rtn).unwrap();
        let bq = codecs::fake_quant(&b, n, k, &wf, &Method::Rtn).unwrap();
        assert_gemm_close(
            &got,
            &gemm_ref(&aq, &bq, m, k, n),
            k,
            &format!("mx {m}×{k}×{n}"),
        );
    }
    assert!(
        gpu::gemm(c, &[1.0; 5], &[1.0; 6], 2, 3, 2).is_err(),
        "a wrong shape is an error"
    );
}

#[test]
fn resident_passes_equal_the_host_functions() {
    let Some(c) = ctx() else { return };
    let (rows, cols) = (37, 100);
    let w = stress_values(rows * cols, 99, true);
    let f = Format::parse("nvfp4").unwrap();
    let t = c.upload_tensor(&w, rows, cols).unwrap();
    let plan = gpu::CodecPlan::new(c, &w, cols, &f).unwrap();
    let q = plan.fake_quant(c, &t).unwrap();
    let want = codecs::fake_quant(&w, rows, cols, &f, &Method::Rtn).unwrap();
    assert_eq!(same_bits(&want, &c.read_tensor(&q).unwrap()), None);
    let copy = c.copy_tensor(&t);
    assert_eq!(same_bits(&w, &c.read_tensor(&copy).unwrap()), None);
    let a: Vec<f32> = (0..5 * cols).map(|i| (i % 7) as f32 - 3.0).collect();
    let ta = c.upload_tensor(&a, 5, cols).unwrap();
    let wq = want
        .iter()
        .map(|v| if v.abs() < 1e6 { *v } else { 0.0 })
        .collect::<Vec<_>>();
    let tw = c.upload_tensor(&wq, rows, cols).unwrap();
    let y = c
        .read_tensor(&gpu::gemm_resident(c, &ta, &tw).unwrap())
        .unwrap();
    assert_gemm_close(&y, &gemm_ref(&a, &wq, 5, cols, rows), cols, "resident gemm");
    assert!(gpu::gemm_resident(c, &ta, &c.upload_tensor(&[0.0; 6], 2, 3).unwrap()).is_err());
    assert!(
        c.upload_tensor(&[0.0; 5], 2, 3).is_err(),
        "a wrong shape is an error"
    );
}

#[test]
fn cli_quantize_on_the_gpu_writes_the_cpu_checkpoint() {
    if ctx().is_none() {
        return;
    }
    let tmp = tempfile::tempdir().unwrap();
    crate::util::tiny_checkpoint(&tmp.path().join("model"), "F32");
    for (device, out) in [("cpu", "qc"), ("gpu", "qg")] {
        let o = crate::util::qs(
            &[
                "quantize", "--model", "model", "--format", "nvfp4", "--out", out, "--device",
                device, "--quiet",
            ],
            tmp.path(),
        );
        assert!(o.status.success(), "{}", String::from_utf8_lossy(&o.stderr));
    }
    let a = quantscape::model::checkpoint::Checkpoint::open(&tmp.path().join("qc")).unwrap();
    let b = quantscape::model::checkpoint::Checkpoint::open(&tmp.path().join("qg")).unwrap();
    for name in a.tensors.keys() {
        assert_eq!(
            a.read_f32(name).unwrap(),
            b.read_f32(name).unwrap(),
            "{name}"
        );
    }
    let o = crate::util::qs(
        &[
            "quantize",
            "--model",
            "model",
            "--format",
            "int4_asym",
            "--method",
            "hqq",
            "--out",
            "qh",
            "--device",
            "gpu",
        ],
        tmp.path(),
    );
    assert_eq!(
        o.status.code(),
        Some(2),
        "GPU + HQQ is refused: {}",
        String::from_utf8_lossy(&o.stderr)
    );
}

#[test]
fn block_errors_match_the_cpu_statistics() {
    let Some(c) = ctx() else { return };
    for (spec, rows, cols) in [
        ("mxfp4", 9, 70),
        ("int4_asym", 3, 300),
        ("int8,block=tensor", 5, 40),
        ("nf4", 1, 1),
    ] {
        let f = Format::parse(spec).unwrap();
        let w = stress_values(rows * cols, 3, true)
            .into_iter()
            .map(|v| if v.abs() > 1e30 { v.signum() * 50.0 } else { v })
            .collect::<Vec<_>>();
        let (q, blocks, st) = gpu::fake_quant_with_errors(c, &w, rows, cols, &f).unwrap();
        let want_q = codecs::fake_quant(&w, rows, cols, &f, &Method::Rtn).unwrap();
        assert_eq!(same_bits(&want_q, &q), None, "{spec}");
        let want = codecs::ErrorStats::compute(&w, &want_q);
        assert_eq!(
            (st.n_values, st.n_nonfinite),
            (want.n_values, want.n_nonfinite),
            "{spec}"
        );
        let rel = |a: f64, b: f64| (a - b).abs() <= 1e-5 * b.abs().max(1e-30);
        assert!(
            rel(st.mse, want.mse) && rel(st.signal_power, want.signal_power),
            "{spec}: {st:?} vs {want:?}"
        );
        assert!(rel(st.max_abs_err, want.max_abs_err), "{spec}");
        let n_blocks = match f.block {
            codecs::BlockSize::PerTensor => rows,
            b => rows * cols.div_ceil(b.block_len(cols)),
        };
        assert_eq!(blocks.len(), n_blocks, "{spec}");
        // Block 0 by hand.
        let blen = f.block.block_len(cols).min(cols);
        let b0 = codecs::ErrorStats::compute(&w[..blen], &want_q[..blen]);
        assert!(
            (f64::from(blocks[0].mse) - b0.mse).abs() <= 1e-5 * b0.mse.max(1e-30),
            "{spec}"
        );
    }
}

/// Largest |GPU − CPU| logit allowed, relative to the largest |logit| of the batch.
const LOGIT_REL_TOL: f32 = 1e-4;
/// Relative tolerance on the mean NLL (issue #6).
const NLL_REL_TOL: f64 = 1e-5;

#[test]
fn resident_forward_pass_matches_the_cpu_on_every_architecture() {
    use quantscape::model::{NoHooks, Transformer};
    let Some(c) = ctx() else { return };
    let root = std::path::Path::new(env!("CARGO_MANIFEST_DIR"));
    let dirs = [
        "tests/data/tiny/llama",
        "tests/data/tiny/gpt2",
        "tests/data/tiny/gpt_neox",
        "tests/data/tiny/qwen2",
        "tests/data/tiny/gpt_neox_seq",
        "assets/models/qs-llama-s2-500k",
    ];
    for dir in dirs {
        let model = Transformer::load(&root.join(dir)).unwrap();
        let v = model.config.vocab_size as u32;
        let (batch, t) = (3, 37.min(model.config.max_positions));
        let ids: Vec<u32> = (0..batch * t).map(|i| (i as u32 * 7919 + 13) % v).collect();
        let cpu = model
            .forward(&ids, batch, &NoHooks)
            .unwrap()
            .flatten_all()
            .unwrap()
            .to_vec1::<f32>()
            .unwrap();
        let gm = gpu::GpuModel::new(c, &model, &NoHooks).unwrap();
        let got = gm.logits(&ids, batch).unwrap();
        assert_eq!(got.dims(), &[batch, t, v as usize], "{dir}");
        let got = got.flatten_all().unwrap().to_vec1::<f32>().unwrap();
        let scale = cpu.iter().fold(0f32, |m, x| m.max(x.abs()));
        let worst = cpu
            .iter()
            .zip(&got)
            .map(|(a, b)| (a - b).abs())
            .fold(0f32, f32::max);
        assert!(
            worst <= LOGIT_REL_TOL * scale,
            "{dir}: max |Δlogit| {worst} vs scale {scale}"
        );
        assert!(gm.logits(&[v], 1).is_err(), "{dir}: out-of-vocabulary id");
    }
}

#[test]
fn eval_on_the_gpu_gives_the_cpu_nll_for_a_quantized_model() {
    use quantscape::eval::windows::{make_windows, WindowSpec};
    use quantscape::eval::Evaluator;
    use quantscape::model::{Tokenizer, Transformer};
    let Some(c) = ctx() else { return };
    let dir =
        std::path::Path::new(env!("CARGO_MANIFEST_DIR")).join("assets/models/qs-llama-s2-500k");
    let model = Transformer::load(&dir).unwrap();
    let tok = Tokenizer::load(&dir).unwrap();
    let text = std::fs::read_to_string(
        std::path::Path::new(env!("CARGO_MANIFEST_DIR")).join("tests/data/tiny/sample.txt"),
    )
    .unwrap();
    let tokens = tok.encode(&text.repeat(20)).unwrap();
    let spec = WindowSpec {
        ctx: 128,
        stride: None,
        n_windows: 6,
        seed: 1,
    };
    let windows = make_windows(&tokens, tok.bos, &spec, "sample").unwrap();
    let ev = Evaluator::new(&model, &windows).unwrap().for_whole_logits();
    let f = Format::parse("int4_asym,block=32").unwrap();
    let (hooks, _) = quantscape::model::quantized::quantize_all(&model, &f, &Method::Rtn).unwrap();
    let cpu = ev.nll_mean(&hooks, &mut |_, _| true).unwrap();
    let gm = gpu::GpuModel::new(c, &model, &hooks).unwrap();
    let got = ev
        .nll_mean_with(
            &mut |_, ids, b| Ok(quantscape::eval::BatchOut::Logits(gm.logits(ids, b)?)),
            &mut |_, _| true,
        )
        .unwrap();
    assert!(
        (got - cpu).abs() <= NLL_REL_TOL * cpu,
        "GPU NLL {got} vs CPU {cpu}"
    );
    let mut act = hooks.clone();
    act.operands = vec![Some(f); model.matmuls.len()];
    assert!(
        gpu::GpuModel::new(c, &model, &act).is_err(),
        "activation formats are refused"
    );
}

#[test]
fn cli_eval_on_the_gpu_reports_the_cpu_figures() {
    if ctx().is_none() {
        return;
    }
    let root = std::path::Path::new(env!("CARGO_MANIFEST_DIR"));
    let model = root.join("assets/models/qs-llama-s2-500k");
    let run = |device: &str, extra: &[&str]| {
        let mut args = vec![
            "eval",
            "--model",
            model.to_str().unwrap(),
            "--format",
            "int4_asym",
            "--windows",
            "4",
            "--quiet",
            "--json",
            "--device",
            device,
        ];
        args.extend_from_slice(extra);
        crate::util::qs(&args, root)
    };
    let report = |o: &std::process::Output| -> serde_json::Value {
        assert!(o.status.success(), "{}", String::from_utf8_lossy(&o.stderr));
        serde_json::from_slice::<serde_json::Value>(&o.stdout).unwrap()
    };
    let (cpu, gpu) = (report(&run("cpu", &[])), report(&run("gpu", &[])));
    assert!(gpu["device"].as_str().unwrap().starts_with("gpu: "));
    for key in ["nll_base", "nll_quant"] {
        let (a, b) = (
            cpu["report"][key].as_f64().unwrap(),
            gpu["report"][key].as_f64().unwrap(),
        );
        assert!((a - b).abs() <= NLL_REL_TOL * a, "{key}: cpu {a} gpu {b}");
    }
    let o = run("gpu", &["--act-format", "mxint8"]);
    assert_eq!(
        o.status.code(),
        Some(2),
        "activation formats on the GPU are refused"
    );
}
