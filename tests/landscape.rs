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
