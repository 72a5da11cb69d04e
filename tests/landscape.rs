//! Loss landscape: the quantization direction's endpoints are the base and the quantized model
//! bit for bit, filter normalisation, seeded random directions, 2-D grids, and the CLI.

use quantscape::codecs::{Format, Method};
use quantscape::eval::windows::{make_windows, WindowSpec};
use quantscape::eval::Evaluator;
use quantscape::landscape::{
    build, filter_normalize, linear_weights, point, slice, steps, DirectionSpec,
};
use quantscape::model::quantized::quantize_all;
use quantscape::model::{Tokenizer, Transformer};

use crate::util::{data_dir, qs};

fn setup(name: &str) -> (Transformer, quantscape::eval::windows::Windows) {
    let dir = data_dir().join("tiny").join(name);
    let model = Transformer::load(&dir).unwrap();
    let tok = Tokenizer::load(&dir).unwrap();
    let text = std::fs::read_to_string(data_dir().join("tiny/sample.txt")).unwrap();
    let spec = WindowSpec {
        ctx: 16,
        stride: None,
        n_windows: 6,
        seed: 1,
    };
    let w = make_windows(&tok.encode(&text).unwrap(), tok.bos, &spec, "sample").unwrap();
    (model, w)
}

#[test]
fn quant_direction_endpoints_are_the_base_and_quantized_models_bit_for_bit() {
    for name in ["llama", "gpt2", "gpt_neox", "qwen2"] {
        let (model, windows) = setup(name);
        let ev = Evaluator::new(&model, &windows).unwrap();
        let weights = linear_weights(&model).unwrap();
        let format = Format::parse("mxfp4").unwrap();
        let spec = DirectionSpec::parse("quant:mxfp4:32").unwrap();
        let d = build(&model, &weights, &spec).unwrap();
        assert!(d.norm > 0.0);
        let ts = steps(-1.0, 2.0, 4);
        assert_eq!(ts, vec![-1.0, 0.0, 1.0, 2.0]);
        let v = slice(
            &model,
            &ev,
            &weights,
            (&d, None),
            (&ts, &[]),
            &mut |_, _| true,
        )
        .unwrap();
        let base = ev.base(4, &mut |_, _| true).unwrap();
        let (q, _) = quantize_all(&model, &format, &Method::Rtn).unwrap();
        let rep = ev.compare(&base, &q, 10, 0, &mut |_, _| true).unwrap();
        assert_eq!(
            v[1].to_bits(),
            base.nll_mean().to_bits(),
            "{name}: t = 0 is the base model"
        );
        assert_eq!(
            v[2].to_bits(),
            rep.nll_quant.to_bits(),
            "{name}: t = 1 is the quantized model"
        );
        assert!(v.iter().all(|x| x.is_finite()), "{name}: {v:?}");
    }
}

#[test]
fn random_directions_are_seeded_and_filter_normalised() {
    let (model, windows) = setup("llama");
    let weights = linear_weights(&model).unwrap();
    let r0 = build(&model, &weights, &DirectionSpec::parse("random:0").unwrap()).unwrap();
    let r0b = build(&model, &weights, &DirectionSpec::parse("random:0").unwrap()).unwrap();
    let r1 = build(&model, &weights, &DirectionSpec::parse("random:1").unwrap()).unwrap();
    assert_eq!(r0.delta, r0b.delta);
    assert_ne!(r0.delta, r1.delta);
    for (site, (d, w)) in model.linears.iter().zip(r0.delta.iter().zip(&weights)) {
        for (dr, wr) in d.chunks(site.in_features).zip(w.chunks(site.in_features)) {
            let n = |x: &[f32]| x.iter().map(|v| f64::from(*v).powi(2)).sum::<f64>().sqrt();
            assert!(
                (n(dr) - n(wr)).abs() <= 1e-5 * n(wr).max(1e-6),
                "row norms match"
            );
        }
    }
    let mut zero_row = vec![1.0f32, 2.0, 0.0, 0.0];
    filter_normalize(&mut zero_row, &[3.0, 4.0, 0.0, 0.0], 2);
    // Row [1, 2] takes the norm of [3, 4] (5); a zero row stays zero.
    let want = [5.0 / 5f64.sqrt(), 10.0 / 5f64.sqrt()];
    assert!((f64::from(zero_row[0]) - want[0]).abs() < 1e-5);
    assert!((f64::from(zero_row[1]) - want[1]).abs() < 1e-5);
    assert_eq!(&zero_row[2..], &[0.0, 0.0]);
    // A 2-D grid: every (α, β) point, and (0, 0) is the base model.
    let ev = Evaluator::new(&model, &windows).unwrap();
    let q = build(
        &model,
        &weights,
        &DirectionSpec::parse("quant:int4_asym:16").unwrap(),
    )
    .unwrap();
    let (a, b) = (vec![0.0, 1.0], vec![-0.5, 0.0, 0.5]);
    let v = slice(
        &model,
        &ev,
        &weights,
        (&q, Some(&r0)),
        (&a, &b),
        &mut |_, _| true,
    )
    .unwrap();
    assert_eq!(v.len(), 6);
    let base = ev
        .nll_mean(&quantscape::model::NoHooks, &mut |_, _| true)
        .unwrap();
    assert_eq!(v[2].to_bits(), base.to_bits(), "(α, β) = (0, 0)");
    let p = point(&model, &weights, (&q, 0.0), Some((&r0, 0.0))).unwrap();
    assert_eq!(p.weights.len(), model.linears.len());
    let mut n = 0;
    let e = slice(&model, &ev, &weights, (&q, None), (&a, &[]), &mut |_, _| {
        n += 1;
        false
    });
    assert!(matches!(e, Err(quantscape::Error::Cancelled)) && n == 1);
}

#[test]
fn bad_directions_and_the_cli() {
    for bad in [
        "quant",
        "quant:nope",
        "quant:mxfp4:0",
        "random:x",
        "sideways:1",
        "quant:mxfp4:32:gptq",
    ] {
        assert!(DirectionSpec::parse(bad).is_err(), "{bad}");
    }
    let tmp = tempfile::tempdir().unwrap();
    let model = data_dir().join("tiny/llama");
    let sample = data_dir().join("tiny/sample.txt");
    let args = |out: &str, range: &str| {
        vec![
            "landscape".to_string(),
            "--model".into(),
            model.display().to_string(),
            "--data".into(),
            sample.display().to_string(),
            "--windows".into(),
            "4".into(),
            "--ctx".into(),
            "16".into(),
            "--grid".into(),
            "3".into(),
            format!("--range={range}"),
            "--direction2".into(),
            "random:3".into(),
            "--out".into(),
            out.into(),
            "--quiet".into(),
        ]
    };
    let run = |a: Vec<String>| {
        qs(
            &a.iter().map(String::as_str).collect::<Vec<_>>(),
            tmp.path(),
        )
    };
    let o = run(args("s.json", "-1,2"));
    assert!(o.status.success(), "{}", String::from_utf8_lossy(&o.stderr));
    let s: quantscape::landscape::Slice =
        serde_json::from_slice(&std::fs::read(tmp.path().join("s.json")).unwrap()).unwrap();
    assert_eq!(s.alpha, vec![-1.0, 0.0, 0.5, 1.0, 2.0]);
    assert_eq!(s.values.len(), s.alpha.len() * s.beta.len());
    assert_eq!(s.norms.len(), 2);
    let o = run(args("t.json", "2,1"));
    assert_eq!(o.status.code(), Some(2));
    assert!(String::from_utf8_lossy(&o.stderr).contains("--range"));
    assert!(!tmp.path().join("t.json").exists());
}

/// L(x) = ½ xᵀAx + bᵀx over the concatenation of two blocks (2 + 4 values), with
/// A = Q·diag(λ)·Qᵀ, Q a Householder reflection: eigenvalues λ, trace Σλ, exactly.
struct Quadratic {
    a: Vec<Vec<f64>>,
    b: Vec<f64>,
}

const LAMBDAS: [f64; 6] = [5.0, -1.0, 2.0, 0.5, 3.0, 0.25];

impl Quadratic {
    fn new() -> Self {
        let w = [1.0, -2.0, 0.5, 1.5, -1.0, 0.75];
        let nn: f64 = w.iter().map(|x| x * x).sum();
        let q = |i: usize, j: usize| f64::from(u8::from(i == j)) - 2.0 * w[i] * w[j] / nn;
        let a = (0..6)
            .map(|i| {
                (0..6)
                    .map(|j| (0..6).map(|k| q(i, k) * LAMBDAS[k] * q(j, k)).sum())
                    .collect()
            })
            .collect();
        Self {
            a,
            b: vec![0.3, -0.2, 0.1, 0.0, 0.5, -0.4],
        }
    }
}

impl quantscape::landscape::hessian::LossGrad for Quadratic {
    fn loss_grad(&self, x: &[Vec<f32>]) -> quantscape::Result<(f64, Vec<Vec<f32>>)> {
        let flat: Vec<f64> = x.iter().flatten().map(|v| f64::from(*v)).collect();
        let ax: Vec<f64> = self
            .a
            .iter()
            .map(|r| r.iter().zip(&flat).map(|(p, q)| p * q).sum())
            .collect();
        let loss = 0.5 * ax.iter().zip(&flat).map(|(p, q)| p * q).sum::<f64>()
            + self.b.iter().zip(&flat).map(|(p, q)| p * q).sum::<f64>();
        let g: Vec<f32> = ax
            .iter()
            .zip(&self.b)
            .map(|(p, q)| (p + q) as f32)
            .collect();
        Ok((loss, vec![g[..2].to_vec(), g[2..].to_vec()]))
    }
}

#[test]
fn hessian_probes_recover_an_exact_quadratic() {
    use quantscape::landscape::hessian::{along, hutchinson, hvp, top_eigenvalue, ProbeOptions};
    let f = Quadratic::new();
    let x = vec![vec![0.5f32, -1.0], vec![2.0, 0.25, -0.5, 1.0]];
    let o = ProbeOptions {
        max_iter: 500,
        max_samples: 4000,
        tol: 1e-7,
        ..ProbeOptions::default()
    };
    // Largest |λ| = 5.
    let (lambda, v, _, err) = top_eigenvalue(&f, &x, &o).unwrap();
    assert!((lambda - 5.0).abs() < 1e-3, "top eigenvalue {lambda}");
    assert!(
        err < 1e-3,
        "finite differences of an exact quadratic are exact: {err}"
    );
    // The eigenvector satisfies Hv = λv.
    let hv = hvp(&f, &x, &v, 1e-3).unwrap();
    for (a, b) in hv.iter().flatten().zip(v.iter().flatten()) {
        assert!((f64::from(*a) - 5.0 * f64::from(*b)).abs() < 1e-3);
    }
    let (trace, per_block, n) = hutchinson(&f, &x, &o).unwrap();
    let want: f64 = LAMBDAS.iter().sum();
    assert!(
        (trace - want).abs() < 0.05 * want,
        "trace {trace} vs {want} after {n} samples"
    );
    assert!((per_block.iter().sum::<f64>() - trace).abs() < 1e-9);
    // Symmetry: uᵀ(Hv) = vᵀ(Hu); and the second-order expansion is exact for a quadratic.
    let u = vec![vec![1.0f32, 0.0], vec![0.0, -1.0, 2.0, 0.5]];
    let w = vec![vec![0.0f32, 1.0], vec![1.0, 0.0, 0.0, -1.0]];
    let d = |a: &[Vec<f32>], b: &[Vec<f32>]| -> f64 {
        a.iter()
            .flatten()
            .zip(b.iter().flatten())
            .map(|(p, q)| f64::from(*p) * f64::from(*q))
            .sum()
    };
    let (hu, hw) = (
        hvp(&f, &x, &u, 1e-3).unwrap(),
        hvp(&f, &x, &w, 1e-3).unwrap(),
    );
    assert!((d(&w, &hu) - d(&u, &hw)).abs() < 1e-4);
    use quantscape::landscape::hessian::LossGrad as _;
    let (_, g) = f.loss_grad(&x).unwrap();
    let (gu, uhu, _) = along(&f, &x, &g, &u, 1e-3).unwrap();
    let shifted: Vec<Vec<f32>> = x
        .iter()
        .zip(&u)
        .map(|(a, b)| a.iter().zip(b).map(|(p, q)| p + q).collect())
        .collect();
    let measured = f.loss_grad(&shifted).unwrap().0 - f.loss_grad(&x).unwrap().0;
    assert!(
        (gu + 0.5 * uhu - measured).abs() < 1e-4,
        "{gu} + ½{uhu} vs {measured}"
    );
}

#[test]
fn hessian_probes_of_a_language_model_are_consistent() {
    use quantscape::landscape::hessian::{hvp, probe, LossGrad as _, ModelLoss, ProbeOptions};
    let (_, windows) = setup("llama");
    let f = ModelLoss::new(&data_dir().join("tiny/llama"), &windows).unwrap();
    let x = f.weights().unwrap();
    // The gradient matches a finite difference of the loss along a random direction.
    let mut rng = 7u64;
    let mut rnd = || {
        rng ^= rng << 13;
        rng ^= rng >> 7;
        rng ^= rng << 17;
        (rng >> 40) as f32 / (1u64 << 24) as f32 - 0.5
    };
    let v: Vec<Vec<f32>> = x
        .iter()
        .map(|b| b.iter().map(|_| rnd()).collect())
        .collect();
    let w: Vec<Vec<f32>> = x
        .iter()
        .map(|b| b.iter().map(|_| rnd()).collect())
        .collect();
    let (l0, g) = f.loss_grad(&x).unwrap();
    let d = |a: &[Vec<f32>], b: &[Vec<f32>]| -> f64 {
        a.iter()
            .flatten()
            .zip(b.iter().flatten())
            .map(|(p, q)| f64::from(*p) * f64::from(*q))
            .sum()
    };
    let eps = 1e-3;
    let at = |s: f64| -> Vec<Vec<f32>> {
        x.iter()
            .zip(&v)
            .map(|(a, b)| {
                a.iter()
                    .zip(b)
                    .map(|(p, q)| (f64::from(*p) + s * f64::from(*q)) as f32)
                    .collect()
            })
            .collect()
    };
    let fd = (f.loss_grad(&at(eps)).unwrap().0 - f.loss_grad(&at(-eps)).unwrap().0) / (2.0 * eps);
    let gv = d(&g, &v);
    assert!(
        (fd - gv).abs() <= 0.02 * gv.abs() + 1e-4,
        "finite difference {fd} vs gᵀv {gv}"
    );
    // HVP symmetry to finite-difference accuracy.
    let (hv, hw) = (
        hvp(&f, &x, &v, 1e-3).unwrap(),
        hvp(&f, &x, &w, 1e-3).unwrap(),
    );
    let (a, b) = (d(&w, &hv), d(&v, &hw));
    assert!(
        (a - b).abs() <= 0.05 * a.abs().max(b.abs()) + 1e-3,
        "wᵀHv {a} vs vᵀHw {b}"
    );
    let o = ProbeOptions {
        max_iter: 8,
        max_samples: 6,
        tol: 1e-2,
        ..ProbeOptions::default()
    };
    let p = probe(&f, &x, &o).unwrap();
    assert!((p.loss - l0).abs() < 1e-9 && p.loss > 0.0);
    assert!(
        p.top_eigenvalue.is_finite() && p.top_eigenvalue > 0.0,
        "{p:?}"
    );
    assert!(p.trace.is_finite() && p.trace_per_block.len() == x.len());
    assert!(p.hvp_rel_error < 0.1, "step error {}", p.hvp_rel_error);
}

#[test]
fn hessian_cli_reports_curvature_and_the_second_order_prediction() {
    let root = std::path::Path::new(env!("CARGO_MANIFEST_DIR"));
    let o = qs(
        &[
            "hessian",
            "--model",
            "tests/data/tiny/llama",
            "--data",
            "tests/data/tiny/sample.txt",
            "--windows",
            "3",
            "--ctx",
            "16",
            "--direction",
            "quant:int4_asym:32",
            "--max-iter",
            "4",
            "--samples",
            "10",
            "--json",
        ],
        root,
    );
    assert!(o.status.success(), "{}", String::from_utf8_lossy(&o.stderr));
    let v: serde_json::Value = serde_json::from_slice(&o.stdout).unwrap();
    let v = &v["report"];
    assert!(v["probe"]["top_eigenvalue"].as_f64().unwrap().is_finite());
    assert_eq!(v["probe"]["trace_samples"].as_u64(), Some(10));
    let along = &v["along"];
    let (pred, meas) = (
        along["predicted_delta_l"].as_f64().unwrap(),
        along["measured_delta_l"].as_f64().unwrap(),
    );
    assert!(pred.is_finite() && meas.is_finite());
    let o = qs(
        &[
            "hessian",
            "--model",
            "tests/data/tiny/llama",
            "--direction",
            "bogus",
        ],
        root,
    );
    assert_eq!(o.status.code(), Some(2));
}

#[test]
fn refinement_halves_the_intervals_at_zero_and_one_where_the_loss_bends() {
    use quantscape::landscape::refine;
    let run = |f: &dyn Fn(f64) -> f64, levels: usize| {
        let mut alpha = vec![-1.0, 0.0, 1.0, 2.0];
        let mut values: Vec<f64> = alpha.iter().map(|t| f(*t)).collect();
        let mut calls = 0;
        refine(&mut alpha, &mut values, levels, &mut |t| {
            calls += 1;
            Ok(f(t))
        })
        .unwrap();
        assert!(alpha.windows(2).all(|w| w[0] < w[1]), "{alpha:?}");
        for (t, v) in alpha.iter().zip(&values) {
            assert_eq!(*v, f(*t));
        }
        (alpha, calls)
    };
    // A straight line: one look at each interval next to 0 or 1, nothing more.
    let (a, calls) = run(&|t| 0.5 * t + 3.0, 4);
    assert_eq!((a.len(), calls), (7, 3));
    // A parabola (range 4, tolerance 0.08): the chord misses by h²/4, so intervals of 1 are
    // halved and intervals of 0.5 are not.
    let (a, _) = run(&|t| t * t, 4);
    assert!(a.contains(&-0.5) && a.contains(&0.5) && a.contains(&1.5));
    assert!(a.contains(&-0.25) && a.contains(&0.25) && a.contains(&0.75) && a.contains(&1.25));
    assert!(!a.contains(&0.125), "{a:?}");
    // No levels, no refinement; and a failing evaluation stops it with the error.
    assert_eq!(run(&|t| t * t, 0).0.len(), 4);
    let mut alpha = vec![0.0, 1.0];
    let mut values = vec![0.0, 1.0];
    let e = refine(&mut alpha, &mut values, 2, &mut |_| {
        Err(quantscape::Error::Cancelled)
    });
    assert!(e.is_err());
}
