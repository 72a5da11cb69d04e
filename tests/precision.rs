//! Measurement-grade sweeps (issue 27): precision by design (a token count or a target SE met
//! through a pilot), standard errors stored per trial and per configuration, the operands rule
//! applied the same way at every granularity, fits weighted by SE and naming their statistic,
//! stores of schema 1 opened and upgraded, and bad specs refused with nothing written.

use std::path::{Path, PathBuf};

use quantscape::laws::fit::precision_weights;
use quantscape::laws::Space;
use quantscape::model::{MatmulKind, Transformer};
use quantscape::search::assign::sites;
use quantscape::search::export::{read_store, StatSummary};
use quantscape::search::{Granularity, Operands, Store, SweepSpec};

use crate::util::{data_dir, qs};

fn tiny(name: &str) -> PathBuf {
    data_dir().join("tiny").join(name)
}

/// A one-model spec with extra top-level fields `extra` (RON, each ending in a comma).
fn spec_text(grans: &str, qr: &str, extra: &str) -> String {
    format!(
        r#"SweepSpec(
    name: "precision",
    models: ["{}"],
    granularities: [{grans}],
    low_formats: ["mxint4"],
    high_formats: ["mxint8"],
    block_sizes: ["32"],
    qr: [{qr}],
    trials: 3,
    qr_tolerance: 0.1,
    seed: 5,
    eval: (windows: 4, ctx: 32, resamples: 50, top_k: 8),
    {extra}
)"#,
        tiny("llama").display()
    )
}

fn run_sweep(dir: &Path, text: &str, out: &str) -> std::process::Output {
    std::fs::write(dir.join("spec.ron"), text).unwrap();
    qs(&["sweep", "spec.ron", "--out", out, "--quiet"], dir)
}

#[test]
fn a_token_count_fixes_every_trials_windows_and_each_trial_stores_its_se() {
    let tmp = tempfile::tempdir().unwrap();
    let dir = tmp.path();
    let text = spec_text("layer", "0.0, 0.5, 1.0", "precision: (tokens: 300),");
    let o = run_sweep(dir, &text, "r.sqlite");
    assert!(o.status.success(), "{}", String::from_utf8_lossy(&o.stderr));
    let (store, spec) = Store::open_existing(&dir.join("r.sqlite")).unwrap();
    assert_eq!(spec.precision.as_ref().and_then(|p| p.tokens), Some(300));
    let trials = store.trials().unwrap();
    assert!(!trials.is_empty());
    for t in &trials {
        // ⌈300 / 31⌉ = 10 windows of 31 scored tokens.
        assert_eq!(t.n_tokens, 310, "{t:?}");
        assert_eq!(t.window_delta.len(), 10);
        let mean = t.window_delta.iter().map(|&d| f64::from(d)).sum::<f64>() / 10.0;
        assert!(
            (mean - t.delta_nll).abs() < 1e-5,
            "{mean} vs {}",
            t.delta_nll
        );
        if t.qr_target > 0.0 {
            assert!(t.delta_nll_se > 0.0 && t.kl_se > 0.0, "{t:?}");
            // The SE is the spread of the windows: sd/√n.
            let sd = (t
                .window_delta
                .iter()
                .map(|&d| (f64::from(d) - mean).powi(2))
                .sum::<f64>()
                / 9.0)
                .sqrt();
            assert!((sd / 10f64.sqrt() - t.delta_nll_se).abs() < 1e-5);
        }
    }
    // The summary carries SEs of the mean, median and best, and the token count.
    let c = read_store(&dir.join("r.sqlite")).unwrap();
    let mid = c.summary.iter().find(|s| s.qr_target == 0.5).unwrap();
    assert_eq!(mid.n_scored_tokens, 310);
    assert!(mid.delta_loss_se > 0.0 && mid.kl_mean_se > 0.0 && mid.delta_nll_best_se > 0.0);
    assert!(mid.delta_nll_best <= mid.delta_nll_median && mid.kl_best <= mid.kl_median);
    // `export` writes the SE columns.
    let o = qs(&["export", "r.sqlite", "--csv", "t.csv"], dir);
    assert!(o.status.success(), "{}", String::from_utf8_lossy(&o.stderr));
    let csv = std::fs::read_to_string(dir.join("t.csv")).unwrap()
        + &std::fs::read_to_string(dir.join("t.summary.csv")).unwrap();
    for col in [
        "delta_loss_se",
        "delta_nll_best_se",
        "kl_mean_se",
        "delta_nll_se",
    ] {
        assert!(csv.contains(col), "no {col} in the export");
    }
}

#[test]
fn a_target_se_runs_a_pilot_and_gives_every_trial_the_windows_it_needs() {
    let tmp = tempfile::tempdir().unwrap();
    let dir = tmp.path();
    let text = spec_text(
        "layer",
        "0.0, 0.5, 1.0",
        "precision: (se: 0.01, max_tokens: 20000, pilot_windows: 6),",
    );
    let o = run_sweep(dir, &text, "r.sqlite");
    assert!(o.status.success(), "{}", String::from_utf8_lossy(&o.stderr));
    let (store, _) = Store::open_existing(&dir.join("r.sqlite")).unwrap();
    let meta = store.meta().unwrap();
    let pilot: serde_json::Value = serde_json::from_str(
        meta.iter()
            .find(|(k, _)| k.starts_with("pilot:"))
            .map(|(_, v)| v.as_str())
            .expect("the pilot is recorded"),
    )
    .unwrap();
    let sd = pilot["per_window_sd_max"].as_f64().unwrap();
    let windows = pilot["windows"].as_u64().unwrap() as usize;
    assert_eq!(windows, ((sd / 0.01).powi(2).ceil() as usize).max(6));
    assert_eq!(pilot["pilot_windows"], 6);
    let models = store.models().unwrap();
    assert_eq!(models[0].n_windows, windows);
    let trials = store.trials().unwrap();
    assert!(trials.iter().all(|t| t.n_tokens == windows * 31));
    // The target is met on the configuration the pilot found worst (up to the pilot's own
    // sampling error: within 1.5×).
    let worst = trials.iter().map(|t| t.delta_nll_se).fold(0.0, f64::max);
    assert!(worst <= 0.015, "worst SE {worst} for a target of 0.01");
    // Resuming reuses the stored window count without a new pilot.
    let before = store.finished().unwrap().len();
    drop(store);
    let o = run_sweep(dir, &text, "r.sqlite");
    assert!(o.status.success(), "{}", String::from_utf8_lossy(&o.stderr));
    let (store, _) = Store::open_existing(&dir.join("r.sqlite")).unwrap();
    assert_eq!(store.finished().unwrap().len(), before);
}

#[test]
fn a_target_the_token_cap_cannot_meet_is_a_clear_error_and_leaves_nothing() {
    let tmp = tempfile::tempdir().unwrap();
    let dir = tmp.path();
    let text = spec_text(
        "layer",
        "0.0, 1.0",
        "precision: (se: 0.00001, max_tokens: 2000, pilot_windows: 4),",
    );
    let o = run_sweep(dir, &text, "r.sqlite");
    assert!(!o.status.success());
    let err = String::from_utf8_lossy(&o.stderr);
    assert!(
        err.contains("precision") && err.contains("max_tokens 2000") && err.contains("windows"),
        "{err}"
    );
    assert!(
        !dir.join("r.sqlite").exists(),
        "a failed sweep leaves no store"
    );
}

#[test]
fn bad_precision_and_statistic_specs_are_refused_before_anything_runs() {
    let tmp = tempfile::tempdir().unwrap();
    let dir = tmp.path();
    let cases = [
        ("precision: (se: 0.001, tokens: 1000),", "not both"),
        ("precision: (se: -1.0),", "positive"),
        ("precision: (),", "give a target"),
        (
            "precision: (tokens: 5000, max_tokens: 1000),",
            "exceeds max_tokens",
        ),
        (
            "precision: (se: 0.01, max_tokens: 10),",
            "less than one window",
        ),
        ("precision: (sd: 0.01),", "sd"),
        ("statistic: average,", "average"),
        ("operands: activations,", "activations"),
    ];
    for (extra, says) in cases {
        let o = run_sweep(dir, &spec_text("layer", "0.0, 1.0", extra), "r.sqlite");
        let err = String::from_utf8_lossy(&o.stderr);
        assert!(!o.status.success(), "{extra} was accepted");
        assert!(err.contains(says), "{extra}: {err}");
        assert!(!dir.join("r.sqlite").exists(), "{extra} left a store");
    }
    // The same spellings parse when they are right, with `Some(…)` or without.
    for extra in [
        "precision: (se: 0.001), statistic: best, operands: weights_and_activations,",
        "precision: Some((tokens: 64)), statistic: Some(median),",
    ] {
        let s = SweepSpec::from_ron(&spec_text("layer", "0.0", extra), "spec").unwrap();
        s.validate().unwrap();
    }
}

#[test]
fn the_operands_rule_is_the_same_at_every_granularity() {
    let model = Transformer::load(&tiny("llama")).unwrap();
    let attention = |m: usize| !matches!(model.matmuls[m].kind, MatmulKind::Linear(_));
    for g in [Granularity::Layer, Granularity::Block, Granularity::Matmul] {
        let w = sites(&model, g, Operands::Weights, 32);
        // Weights only: no site quantizes an activation, and every linear is covered once.
        assert!(w.iter().all(|s| s.matmuls.is_empty()), "{g}");
        let mut lin: Vec<usize> = w.iter().flat_map(|s| s.linears.clone()).collect();
        lin.sort_unstable();
        assert_eq!(lin, (0..model.linears.len()).collect::<Vec<_>>(), "{g}");
        // With activations every site covers the matmuls of its linears, and only the layer
        // granularity leaves the attention matmuls to the high format.
        let a = sites(&model, g, Operands::WeightsAndActivations, 32);
        let covered: Vec<usize> = a.iter().flat_map(|s| s.matmuls.clone()).collect();
        for s in &a {
            for &i in &s.linears {
                assert!(
                    s.matmuls
                        .iter()
                        .any(|&m| matches!(model.matmuls[m].kind, MatmulKind::Linear(j) if j == i)),
                    "{g}: {} covers linear {i} but not its matmul",
                    s.name
                );
            }
        }
        let attn_covered = covered.iter().any(|&m| attention(m));
        assert_eq!(attn_covered, g != Granularity::Layer, "{g}");
    }
    // Matmul-wise with weights only is layer-wise with another Qr weighting: the same sites.
    let l = sites(&model, Granularity::Layer, Operands::Weights, 32);
    let m = sites(&model, Granularity::Matmul, Operands::Weights, 32);
    assert_eq!(
        l.iter().map(|s| s.linears.clone()).collect::<Vec<_>>(),
        m.iter().map(|s| s.linears.clone()).collect::<Vec<_>>()
    );
}

#[test]
fn matched_operands_quantize_activations_at_the_layer_granularity_too() {
    let tmp = tempfile::tempdir().unwrap();
    let dir = tmp.path();
    let at_one = |operands: &str, out: &str| {
        let text = spec_text("layer", "1.0", &format!("operands: {operands},"));
        let o = run_sweep(dir, &text, out);
        assert!(o.status.success(), "{}", String::from_utf8_lossy(&o.stderr));
        let (s, _) = Store::open_existing(&dir.join(out)).unwrap();
        s.trials().unwrap()[0].delta_nll
    };
    let w = at_one("weights", "w.sqlite");
    let wa = at_one("weights_and_activations", "wa.sqlite");
    assert!(w.is_finite() && wa.is_finite());
    assert_ne!(w, wa, "activations in MXINT4 change the result");
}

/// The schema-1 trials table (stores written before the SE columns).
const SCHEMA_1: &str = "
CREATE TABLE meta (key TEXT PRIMARY KEY, value TEXT NOT NULL);
CREATE TABLE models (
  model TEXT PRIMARY KEY, path TEXT NOT NULL, architecture TEXT NOT NULL,
  n_params_non_embedding INTEGER NOT NULL, n_params_total INTEGER NOT NULL,
  train_tokens INTEGER, nll_base REAL NOT NULL, n_windows INTEGER NOT NULL, ctx INTEGER NOT NULL
);
CREATE TABLE trials (
  config_key TEXT NOT NULL, trial_seed INTEGER NOT NULL, trial_index INTEGER NOT NULL,
  model TEXT NOT NULL, granularity TEXT NOT NULL, low TEXT NOT NULL, high TEXT NOT NULL,
  method TEXT NOT NULL, qb TEXT NOT NULL, qr_target REAL NOT NULL, qr_achieved REAL NOT NULL,
  qr_weighting TEXT NOT NULL, bits_per_weight REAL NOT NULL, nll_base REAL NOT NULL,
  nll REAL NOT NULL, delta_nll REAL NOT NULL, ci_lo REAL NOT NULL, ci_hi REAL NOT NULL,
  kl_mean REAL NOT NULL, top1 REAL NOT NULL, n_tokens INTEGER NOT NULL, seconds REAL NOT NULL,
  assignment TEXT NOT NULL,
  PRIMARY KEY (config_key, trial_seed)
);
";

#[test]
fn a_store_of_schema_1_opens_upgraded_and_resumes() {
    let tmp = tempfile::tempdir().unwrap();
    let dir = tmp.path();
    // A schema-1 store of this spec, holding one finished trial.
    let text = spec_text("layer", "0.0, 0.5", "");
    std::fs::write(dir.join("spec.ron"), &text).unwrap();
    let spec = SweepSpec::from_ron(&text, "spec").unwrap();
    let db = dir.join("old.sqlite");
    {
        let c = rusqlite::Connection::open(&db).unwrap();
        c.execute_batch(SCHEMA_1).unwrap();
        let hash = format!(
            "{:016x}",
            quantscape::search::spec::fnv1a(spec.canonical().as_bytes())
        );
        for (k, v) in [
            ("spec", spec.canonical()),
            ("spec_hash", hash),
            ("schema", "1".into()),
        ] {
            c.execute("INSERT INTO meta VALUES (?1, ?2)", [k, v.as_str()])
                .unwrap();
        }
        c.execute_batch(&format!(
            "INSERT INTO trials VALUES ('old-key', 7, 0, '{m}', 'layer', 'mxint4,block=32',
               'mxint8', 'rtn', '32', 0.5, 0.5, 'parameters', 6.0, 5.0, 5.1, 0.1, 0.0608, 0.1392,
               0.05, 0.9, 124, 1.0, '01');
             PRAGMA user_version = 1;",
            m = tiny("llama").display()
        ))
        .unwrap();
    }
    let (store, _) = Store::open_existing(&db).unwrap();
    let t = &store.trials().unwrap()[0];
    assert!((t.delta_nll_se - 0.0784 / 3.92).abs() < 1e-12, "{t:?}");
    assert!(t.kl_se.is_nan() && t.window_delta.is_empty());
    assert!(store.meta().unwrap().contains_key("migrated_from_schema_1"));
    drop(store);
    let c = rusqlite::Connection::open(&db).unwrap();
    let v: i64 = c
        .query_row("PRAGMA user_version", [], |r| r.get(0))
        .unwrap();
    assert_eq!(v, quantscape::search::store::SCHEMA_VERSION);
    drop(c);
    // Reading it whole, and fitting from it, name the SE; resuming adds the missing trials.
    let s = read_store(&db).unwrap();
    assert!((s.summary[0].delta_loss_se - 0.02).abs() < 1e-12);
    let o = run_sweep(dir, &text, "old.sqlite");
    assert!(o.status.success(), "{}", String::from_utf8_lossy(&o.stderr));
    let (store, _) = Store::open_existing(&db).unwrap();
    assert!(store.trials().unwrap().len() > 1);
}

#[test]
fn configuration_statistics_count_trial_and_window_noise() {
    // One trial: the window SE alone.
    let one = StatSummary::of(&[0.3], &[0.02], 1);
    assert_eq!(
        (one.mean, one.mean_se, one.best, one.best_se),
        (0.3, 0.02, 0.3, 0.02)
    );
    // Four trials: s²/T + w̄² for the mean.
    let v = [0.1, 0.2, 0.3, 0.4];
    let s = StatSummary::of(&v, &[0.01, 0.01, 0.03, 0.03], 1);
    let var: f64 = v.iter().map(|x| (x - 0.25f64).powi(2)).sum::<f64>() / 3.0;
    assert!((s.mean_se - (var / 4.0 + 0.02f64.powi(2)).sqrt()).abs() < 1e-12);
    assert_eq!(s.best, 0.1);
    assert!(s.best_se >= 0.01 && s.median_se >= 0.02);
    // Equal trials: no trial noise left.
    let e = StatSummary::of(&[0.2; 5], &[0.01; 5], 1);
    assert!((e.mean_se - 0.01).abs() < 1e-12 && (e.median_se - 0.01).abs() < 1e-12);
}

#[test]
fn precision_weights_follow_the_residual_space_and_need_every_se() {
    let y = [0.1, 0.2, 0.4];
    let se = [0.01, 0.01, 0.04];
    let w = precision_weights(&y, &se, Space::Log).unwrap();
    // σ = se/y = 0.1, 0.05, 0.1 → w ∝ 100, 400, 100, mean 1.
    assert!((w[0] - 0.5).abs() < 1e-12 && (w[1] - 2.0).abs() < 1e-12);
    let lin = precision_weights(&y, &se, Space::Linear).unwrap();
    assert!(lin[0] > lin[2]);
    assert!(precision_weights(&y, &[0.01, f64::NAN, 0.01], Space::Log).is_none());
    // A tiny SE is floored at a tenth of the median σ.
    let f = precision_weights(&[1.0, 1.0, 1.0], &[1e-9, 0.1, 0.1], Space::Linear).unwrap();
    assert!((f[0] / f[1] - 100.0).abs() < 1e-9);
}

#[test]
fn fits_name_their_statistic_and_weighting_and_read_kl() {
    let tmp = tempfile::tempdir().unwrap();
    let dir = tmp.path();
    let demo = data_dir()
        .join("../../assets/demo/demo.sqlite")
        .canonicalize()
        .unwrap();
    let fit = |extra: &[&str]| {
        let mut a = vec![
            "fit",
            demo.to_str().unwrap(),
            "--law",
            "unified-weak",
            "--bootstrap",
            "0",
            "--where",
            "granularity=layer",
            "--where",
            "low=mxint4",
            "--where",
            "high=bf16",
            "--json",
        ];
        a.extend_from_slice(extra);
        let o = qs(&a, dir);
        assert!(o.status.success(), "{}", String::from_utf8_lossy(&o.stderr));
        serde_json::from_slice::<serde_json::Value>(&o.stdout).unwrap()
    };
    let mean = fit(&[]);
    assert_eq!(mean["target"], "delta_loss");
    assert_eq!(mean["statistic"], "mean over trials");
    assert!(mean["weighting"]
        .as_str()
        .unwrap()
        .contains("delta_loss_se"));
    let kl = fit(&["--metric", "kl", "--statistic", "best"]);
    assert_eq!(kl["target"], "kl_best");
    assert_eq!(kl["statistic"], "best of T trials");
    let flat = fit(&["--unweighted"]);
    assert!(flat["weighting"].as_str().unwrap().starts_with("none"));
    assert_ne!(flat["params"], mean["params"], "weights change the fit");
    let o = qs(
        &[
            "fit",
            demo.to_str().unwrap(),
            "--law",
            "unified-weak",
            "--statistic",
            "mode",
        ],
        dir,
    );
    assert!(!o.status.success());
    assert!(String::from_utf8_lossy(&o.stderr).contains("unknown statistic `mode`"));
}

#[test]
fn analyze_tests_the_takeaways_on_a_store_and_refuses_bad_filters() {
    let tmp = tempfile::tempdir().unwrap();
    let dir = tmp.path();
    let text = spec_text("layer, block", "0.0, 0.5, 1.0", "precision: (tokens: 200),");
    let o = run_sweep(dir, &text, "r.sqlite");
    assert!(o.status.success(), "{}", String::from_utf8_lossy(&o.stderr));
    let o = qs(&["analyze", "r.sqlite", "--json"], dir);
    assert!(o.status.success(), "{}", String::from_utf8_lossy(&o.stderr));
    let v: serde_json::Value = serde_json::from_slice(&o.stdout).unwrap();
    let ids: Vec<&str> = v["takeaways"]
        .as_array()
        .unwrap()
        .iter()
        .map(|t| t["id"].as_str().unwrap())
        .collect();
    assert_eq!(ids, ["a", "b", "c1", "c2", "d", "e", "power"]);
    // Layer and block share the weights-only rule here: they are compared.
    let d = &v["takeaways"][4];
    assert!(d["groups"].as_u64().unwrap() > 0, "{d}");
    assert!(d["test"].as_str().unwrap().contains("layer vs block"));
    let o = qs(
        &[
            "analyze",
            "r.sqlite",
            "--where",
            "low=mxint4",
            "--metric",
            "kl",
        ],
        dir,
    );
    assert!(o.status.success(), "{}", String::from_utf8_lossy(&o.stderr));
    assert!(String::from_utf8_lossy(&o.stdout).contains("| power |"));
    for (bad, says) in [
        (["--where", "colour=red"], "expected granularity"),
        (["--where", "low=nf4"], "no trial matches"),
        (["--metric", "ppl"], "unknown metric"),
    ] {
        let mut a = vec!["analyze", "r.sqlite"];
        a.extend_from_slice(&bad);
        let o = qs(&a, dir);
        assert!(!o.status.success());
        assert!(String::from_utf8_lossy(&o.stderr).contains(says), "{bad:?}");
    }
}
