//! Landscape directions restricted to sites, the Hessian eigenvector direction, landscape
//! features and the forest predictor on a results store (library and CLI).

use quantscape::codecs::{fake_quant, Format, Method};
use quantscape::landscape::features::{measure, FeatureRequest};
use quantscape::landscape::hessian::{hutchinson, top_eigenvalue, Blocks, LossGrad, Masked};
use quantscape::landscape::{build, build_in, linear_weights, DirectionSpec, Scope, SiteFilter};
use quantscape::model::Transformer;

use crate::util::{data_dir, qs};

fn tiny(name: &str) -> std::path::PathBuf {
    data_dir().join("tiny").join(name)
}

/// L(x) = ½ Σ_i c_i ‖x_i‖² over blocks: H = diag(c_i I), so the top eigenvalue is max c_i with
/// its eigenvector inside that block, and the trace is Σ c_i·len_i.
struct BlockQuadratic {
    c: Vec<f64>,
}

impl LossGrad for BlockQuadratic {
    fn loss_grad(&self, x: &[Vec<f32>]) -> quantscape::Result<(f64, Blocks)> {
        let mut loss = 0.0;
        let g = x
            .iter()
            .zip(&self.c)
            .map(|(b, c)| {
                loss += 0.5 * c * b.iter().map(|v| f64::from(*v).powi(2)).sum::<f64>();
                b.iter().map(|v| (c * f64::from(*v)) as f32).collect()
            })
            .collect();
        Ok((loss, g))
    }
}

fn sq(b: &[f32]) -> f64 {
    b.iter().map(|v| f64::from(*v).powi(2)).sum()
}

#[test]
fn masked_probes_see_only_the_selected_blocks() {
    let f = BlockQuadratic {
        c: vec![1.0, 4.0, 2.0],
    };
    let x = vec![vec![0.5f32; 3], vec![-1.0; 5], vec![2.0; 2]];
    let o = quantscape::landscape::hessian::ProbeOptions {
        max_iter: 200,
        tol: 1e-9,
        max_samples: 12,
        ..Default::default()
    };
    let mask = [true, false, true];
    let m = Masked {
        inner: &f,
        mask: &mask,
    };
    let (lambda, v, _, _) = top_eigenvalue(&m, &x, &o).unwrap();
    assert!(
        (lambda - 2.0).abs() < 1e-2,
        "restricted top eigenvalue {lambda}"
    );
    assert!(sq(&v[1]) == 0.0, "no component in the excluded block");
    // Rademacher probes of a diagonal Hessian are exact: zᵀDz = Σ d_i.
    let (trace, per_block, _) = hutchinson(&m, &x, &o).unwrap();
    assert!((trace - 7.0).abs() < 1e-2, "restricted trace {trace}");
    assert_eq!(per_block[1], 0.0);
    let (full, _, _) = hutchinson(&f, &x, &o).unwrap();
    assert!((full - 27.0).abs() < 1e-2, "full trace {full}");
}

#[test]
fn hessian_direction_is_the_top_eigenvector_scaled_to_the_covered_weights() {
    let model = Transformer::load(&tiny("llama")).unwrap();
    let w = linear_weights(&model).unwrap();
    let n = w.len();
    // c_i = 2^i: the last site has the largest curvature, the next one half of it.
    let f = BlockQuadratic {
        c: (0..n).map(|i| 2f64.powi(i as i32)).collect(),
    };
    let spec = DirectionSpec::parse("hessian:3").unwrap();
    assert_eq!(spec, DirectionSpec::Hessian { seed: 3 });
    assert!(
        build(&model, &w, &spec).is_err(),
        "needs the loss it follows"
    );
    let all = Scope {
        mask: vec![true; n],
        loss: Some(&f),
    };
    let d = build_in(&model, &w, &spec, &all).unwrap();
    let top = 2f64.powi(n as i32 - 1);
    let lambda = d.eigenvalue.unwrap();
    assert!((lambda - top).abs() < 1e-2 * top, "λ {lambda} vs {top}");
    let w_norm = w.iter().map(|b| sq(b)).sum::<f64>().sqrt();
    assert!((d.norm - w_norm).abs() < 1e-4 * w_norm, "‖d‖ = ‖W‖");
    assert!(sq(&d.delta[n - 1]) > 0.99 * d.norm * d.norm);
    // Restricted to every site but the last: the next block's curvature, nothing outside.
    let mut mask = vec![true; n];
    mask[n - 1] = false;
    let some = Scope {
        mask,
        loss: Some(&f),
    };
    let d = build_in(&model, &w, &spec, &some).unwrap();
    assert!((d.eigenvalue.unwrap() - top / 2.0).abs() < 1e-2 * top);
    assert_eq!(sq(&d.delta[n - 1]), 0.0);
    let covered = w[..n - 1].iter().map(|b| sq(b)).sum::<f64>().sqrt();
    assert!((d.norm - covered).abs() < 1e-4 * covered);
}

#[test]
fn restricted_directions_leave_other_sites_trained() {
    let model = Transformer::load(&tiny("llama")).unwrap();
    let w = linear_weights(&model).unwrap();
    let mask = SiteFilter::parse(Some("0"), Some("mlp"))
        .unwrap()
        .mask(&model.linears)
        .unwrap();
    assert!(mask.iter().any(|m| *m) && mask.iter().any(|m| !*m));
    let scope = Scope { mask, loss: None };
    let format = Format::parse("mxint4").unwrap();
    let q = DirectionSpec::Quant {
        format,
        method: Method::Rtn,
    };
    let d = build_in(&model, &w, &q, &scope).unwrap();
    let ends = d.endpoint.as_ref().unwrap();
    for (i, site) in model.linears.iter().enumerate() {
        if scope.mask[i] {
            assert!(site.layer == 0 && site.name.contains(".mlp."));
            let want = fake_quant(
                &w[i],
                site.out_features,
                site.in_features,
                &format,
                &Method::Rtn,
            )
            .unwrap();
            assert_eq!(ends[i], want, "{}", site.name);
        } else {
            assert_eq!(ends[i], w[i], "{} stays trained", site.name);
            assert_eq!(sq(&d.delta[i]), 0.0);
        }
    }
    let r = build_in(&model, &w, &DirectionSpec::Random { seed: 1 }, &scope).unwrap();
    for (i, site) in model.linears.iter().enumerate() {
        let cols = site.in_features;
        for (dr, wr) in r.delta[i].chunks(cols).zip(w[i].chunks(cols)) {
            let want = if scope.mask[i] { sq(wr).sqrt() } else { 0.0 };
            assert!((sq(dr).sqrt() - want).abs() < 1e-4 * (1.0 + want));
        }
    }
    let e = SiteFilter::parse(None, Some("w_gate"))
        .unwrap()
        .mask(&model.linears)
        .unwrap_err()
        .to_string();
    assert!(e.contains("q_proj"), "{e}");
}

#[test]
fn landscape_features_are_consistent() {
    let dir = tiny("llama");
    let data = data_dir().join("tiny/sample.txt").display().to_string();
    let format = Format::parse("int4_asym")
        .unwrap()
        .with_block("32".parse().unwrap());
    let req = FeatureRequest {
        data: data.clone(),
        windows: 4,
        ctx: 32,
        n_directions: 2,
        rho: 0.05,
        quant: vec![(
            "q".into(),
            DirectionSpec::Quant {
                format,
                method: Method::Rtn,
            },
        )],
        ..FeatureRequest::default()
    };
    let f = measure(&dir, &req, &|_, _| true).unwrap();
    let wider = measure(
        &dir,
        &FeatureRequest {
            rho: 0.1,
            hessian: None,
            ..req.clone()
        },
        &|_, _| true,
    )
    .unwrap();
    // {±ρ, ±2ρ} ⊇ {±ρ} along the same seeded directions.
    assert!(
        wider.sharpness >= f.sharpness,
        "{} < {}",
        wider.sharpness,
        f.sharpness
    );
    assert_eq!(f.nll_base.to_bits(), wider.nll_base.to_bits());
    assert!(f.flatness > 0.0 && f.flatness <= req.max_radius);
    assert!(f.top_eigenvalue.unwrap().is_finite() && f.trace.unwrap().is_finite());
    let qf = &f.quant[0];
    let model = Transformer::load(&dir).unwrap();
    let w = linear_weights(&model).unwrap();
    let (mut ww, mut uu) = (0.0, 0.0);
    for (site, b) in model.linears.iter().zip(&w) {
        let q = fake_quant(
            b,
            site.out_features,
            site.in_features,
            &format,
            &Method::Rtn,
        )
        .unwrap();
        ww += sq(b);
        uu += b
            .iter()
            .zip(&q)
            .map(|(a, c)| f64::from(a - c).powi(2))
            .sum::<f64>();
    }
    assert!((qf.sqnr_db - 10.0 * (ww / uu).log10()).abs() < 1e-6);
    let a = qf.along.as_ref().unwrap();
    assert!(a.measured_delta_l.is_finite() && a.predicted_delta_l.is_finite());
    assert!(wider.quant[0].along.is_none(), "no Hessian, no curvature");
    let rows = f.rows();
    for key in [
        "sharpness",
        "flatness",
        "top_eigenvalue",
        "trace",
        "curvature_u",
    ] {
        assert!(rows.iter().any(|(k, _, _)| k == key), "{key} stored");
    }
    let cancelled = measure(&dir, &req, &|d, _| d < 3);
    assert!(matches!(cancelled, Err(quantscape::Error::Cancelled)));
}

#[test]
fn features_and_forest_run_on_a_results_store() {
    let tmp = tempfile::tempdir().unwrap();
    let spec = format!(
        r#"SweepSpec(
    name: "features",
    models: ["{}", "{}"],
    granularities: [layer],
    low_formats: ["mxint4", "int4_asym"],
    high_formats: ["bf16"],
    block_sizes: ["16", "32"],
    qr: [0.0, 0.5, 1.0],
    trials: 2,
    qr_tolerance: 0.2,
    seed: 1,
    eval: (windows: 2, ctx: 32, resamples: 20, top_k: 4),
)"#,
        tiny("llama").display(),
        tiny("gpt_neox").display()
    );
    std::fs::write(tmp.path().join("spec.ron"), spec).unwrap();
    let o = qs(
        &["sweep", "spec.ron", "--out", "r.sqlite", "--quiet"],
        tmp.path(),
    );
    assert!(o.status.success(), "{}", String::from_utf8_lossy(&o.stderr));
    let data = data_dir().join("tiny/sample.txt").display().to_string();
    let o = qs(
        &[
            "features",
            "r.sqlite",
            "--windows",
            "2",
            "--ctx",
            "32",
            "--directions",
            "1",
            "--data",
            &data,
            "--quiet",
        ],
        tmp.path(),
    );
    let out = String::from_utf8_lossy(&o.stdout);
    assert!(
        o.status.success(),
        "{out}{}",
        String::from_utf8_lossy(&o.stderr)
    );
    assert!(out.contains("features of 2 model(s)"), "{out}");
    let (store, _) =
        quantscape::search::Store::open_existing(&tmp.path().join("r.sqlite")).unwrap();
    let feats = store.features().unwrap();
    // Per model: 5 model-wide features and, per (low, Qb) pair, SQNR, curvature, predicted
    // and measured ΔL.
    assert_eq!(feats.len(), 2 * (5 + 4 * 4), "{feats:?}");
    let points = quantscape::landscape::predictor::dataset(&store).unwrap();
    assert_eq!(points.len(), 2 * 4 * 2);
    assert!(points.iter().all(|p| p.features.curvature_u.is_some()));
    let o = qs(
        &["forest", "r.sqlite", "--trees", "20", "--json"],
        tmp.path(),
    );
    assert!(o.status.success(), "{}", String::from_utf8_lossy(&o.stderr));
    let v: serde_json::Value = serde_json::from_slice(&o.stdout).unwrap();
    assert_eq!(v["n_points"], 16);
    assert_eq!(v["with_landscape"]["groups"].as_array().unwrap().len(), 2);
    assert_eq!(v["models_with_features"].as_array().unwrap().len(), 2);
    // Merging carries the features along; a missing store is named.
    let o = qs(&["merge", "r.sqlite", "--out", "m.sqlite"], tmp.path());
    assert!(o.status.success(), "{}", String::from_utf8_lossy(&o.stderr));
    let (m, _) = quantscape::search::Store::open_existing(&tmp.path().join("m.sqlite")).unwrap();
    assert_eq!(m.features().unwrap(), feats);
    let o = qs(&["features", "nope.sqlite"], tmp.path());
    assert!(!o.status.success());
    assert!(String::from_utf8_lossy(&o.stderr).contains("nope.sqlite"));
}
