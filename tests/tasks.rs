//! One request, one report, whichever face asked: the CLI (the binary, flags → request → JSON)
//! and the explorer's panels (controls → request → job) run the same tasks, so their reports
//! are equal field for field — evaluate, quantize and fit. And one GPU context per process.

use std::path::PathBuf;
#[cfg(feature = "gui")]
use std::time::{Duration, Instant};

use crate::util::data_dir;
#[cfg(feature = "gui")]
use crate::util::qs;

fn tiny(name: &str) -> PathBuf {
    data_dir().join("tiny").join(name)
}

#[cfg(feature = "gui")]
/// The first path where `a` and `b` differ, with both values (None when equal).
fn first_difference(a: &serde_json::Value, b: &serde_json::Value, at: &str) -> Option<String> {
    use serde_json::Value as V;
    match (a, b) {
        (V::Object(x), V::Object(y)) => {
            let keys: std::collections::BTreeSet<&String> = x.keys().chain(y.keys()).collect();
            keys.into_iter().find_map(|k| match (x.get(k), y.get(k)) {
                (Some(p), Some(q)) => first_difference(p, q, &format!("{at}.{k}")),
                _ => Some(format!("{at}.{k}: present on one side only")),
            })
        }
        (V::Array(x), V::Array(y)) if x.len() == y.len() => x
            .iter()
            .zip(y)
            .enumerate()
            .find_map(|(i, (p, q))| first_difference(p, q, &format!("{at}[{i}]"))),
        _ if a == b => None,
        _ => Some(format!("{at}: {a} vs {b}")),
    }
}

#[cfg(feature = "gui")]
/// `a` (the explorer's) equals `b` (the CLI's, parsed from its output). Both go through text and
/// the same parser (serde_json's default float parsing may be off by an ULP, the same ULP for
/// the same text).
fn assert_same(a: &impl serde::Serialize, b: &serde_json::Value) {
    let a: serde_json::Value = serde_json::from_str(&serde_json::to_string(a).unwrap()).unwrap();
    if let Some(d) = first_difference(&a, b, "") {
        panic!("the explorer and the CLI differ at {d}");
    }
}

#[cfg(feature = "gui")]
fn json(o: &std::process::Output) -> serde_json::Value {
    assert!(o.status.success(), "{}", String::from_utf8_lossy(&o.stderr));
    serde_json::from_slice(&o.stdout).unwrap()
}

#[cfg(feature = "gui")]
fn wait(what: &str, mut busy: impl FnMut() -> bool) {
    let t = Instant::now();
    while busy() {
        assert!(
            t.elapsed() < Duration::from_secs(300),
            "{what} did not finish"
        );
        std::thread::sleep(Duration::from_millis(5));
    }
}

#[cfg(feature = "gui")]
#[test]
fn eval_gives_the_same_report_in_the_cli_and_the_evaluate_view() {
    use quantscape::app::evaluate::{Config, EvaluatePanel};
    use quantscape::session::EvaluateState;
    let (model, data) = (tiny("llama"), tiny("sample.txt"));
    let v = json(&qs(
        &[
            "eval",
            "--model",
            model.to_str().unwrap(),
            "--data",
            data.to_str().unwrap(),
            "--format",
            "mxfp4",
            "--block",
            "16",
            "--ctx",
            "24",
            "--windows",
            "8",
            "--json",
            "--quiet",
        ],
        &data_dir(),
    ));
    let mut p = EvaluatePanel::new(EvaluateState::default(), quantscape::jobs::no_waker());
    p.model_dir = Some(model);
    p.configs = vec![Config::new("mxfp4", "16", "rtn")];
    p.settings.data = data.display().to_string();
    p.settings.windows = 8;
    p.settings.ctx = 24;
    p.start();
    wait("the evaluation", || {
        p.poll();
        p.running().is_some()
    });
    assert!(p.error.is_none(), "{:?}", p.error);
    assert_same(&p.reports[0], &v["report"]);
    assert!(v["report"]["kl_mean"].as_f64().unwrap() > 0.0);
}

#[cfg(feature = "gui")]
#[test]
fn quantize_gives_the_same_report_in_the_cli_and_the_quantize_view() {
    use quantscape::app::quantize::QuantizePanel;
    use quantscape::session::QuantizeState;
    let model = tiny("llama");
    let dir = tempfile::tempdir().unwrap();
    let out = dir.path().join("q");
    let v = json(&qs(
        &[
            "quantize",
            "--model",
            model.to_str().unwrap(),
            "--format",
            "elem=e2m1,scale=e8m0",
            "--block",
            "16",
            "--out",
            out.to_str().unwrap(),
            "--json",
            "--quiet",
        ],
        dir.path(),
    ));
    assert!(out.join("config.json").is_file());
    let mut p = QuantizePanel::new(QuantizeState::default(), quantscape::jobs::no_waker());
    p.model_dir = Some(model);
    p.spelling = "elem=e2m1,scale=e8m0".into();
    p.qb = "16".into();
    p.start();
    wait("the quantization", || {
        p.poll();
        p.running().is_some()
    });
    assert!(p.error.is_none(), "{:?}", p.error);
    assert_same(&p.results, &v["tensors"]);
    assert_eq!(p.results.len(), 14);
}

#[cfg(feature = "gui")]
#[test]
fn fit_gives_the_same_report_in_the_cli_and_the_laws_view() {
    use quantscape::app::laws::LawsPanel;
    use quantscape::session::LawsState;
    let store = PathBuf::from(env!("CARGO_MANIFEST_DIR")).join("assets/demo/demo.sqlite");
    // The Laws view's default selection of the demo store: layer · mxint4 · bf16, qs-llama.
    let mut p = LawsPanel::new(
        LawsState {
            bootstrap: 8,
            ..LawsState::default()
        },
        quantscape::jobs::no_waker(),
    );
    wait("the fit", || {
        p.poll();
        p.fitting()
    });
    assert!(p.error.is_none(), "{:?}", p.error);
    let slice = p.st.store_slice.clone().unwrap();
    let family = p.st.store_family.only().map(str::to_string);
    let mut args = vec![
        "fit".to_string(),
        store.display().to_string(),
        "--bootstrap".into(),
        "8".into(),
        "--json".into(),
    ];
    for (col, val) in slice.filters(family.as_deref()) {
        args.push("--where".into());
        args.push(format!("{col}={val}"));
    }
    let args: Vec<&str> = args.iter().map(String::as_str).collect();
    let v = json(&qs(&args, &data_dir()));
    let report = p.st.report.clone().unwrap();
    assert_same(&report, &v);
    assert!(report.n_points > 10, "{}", report.n_points);
}

#[test]
fn one_gpu_context_per_process() {
    use quantscape::tasks::engine::{gpu_open_attempts, shared_gpu};
    let handles: Vec<_> = (0..8)
        .map(|_| std::thread::spawn(|| shared_gpu().map(|g| g as *const _ as usize)))
        .collect();
    let got: Vec<_> = handles.into_iter().map(|h| h.join().unwrap()).collect();
    assert!(got.windows(2).all(|w| w[0] == w[1]), "{got:?}");
    // Tasks on `auto` reuse it (or its error) too.
    let req = quantscape::tasks::quantize::QuantizeRequest {
        model: tiny("llama").display().to_string(),
        format: "mxfp4".parse().unwrap(),
        method: quantscape::codecs::Method::Rtn,
        calib: Default::default(),
        device: quantscape::tasks::Device::Auto,
        out: None,
    };
    let ctx = quantscape::jobs::JobCtx::quiet();
    for _ in 0..2 {
        let r = quantscape::tasks::quantize::run(&req, &ctx).unwrap();
        assert!(r.device.starts_with("gpu: ") || r.notice.is_some(), "{r:?}");
    }
    assert_eq!(gpu_open_attempts(), 1);
}

/// `quantscape pareto --json` and the Hardware view's preparation give one table; on the demo
/// store the format-aware law tells MXFP4, NVFP4, MXINT4 and INT4 apart at equal Qb, and its
/// ΔL falls with Qb wherever the measured ε does (κ > 0).
#[cfg(feature = "gui")]
#[test]
fn pareto_gives_the_same_table_in_the_cli_and_the_hardware_view() {
    use quantscape::tasks::pareto::{prepare, ParetoRequest};
    let store = PathBuf::from(env!("CARGO_MANIFEST_DIR")).join("assets/demo/demo.sqlite");
    let reference = "bundled:qs-llama-s2-2M";
    let v = json(&qs(
        &[
            "pareto",
            store.to_str().unwrap(),
            "--n",
            "7e9",
            "--reference",
            reference,
            "--bootstrap",
            "20",
            "--json",
        ],
        &data_dir(),
    ));
    let mut p = quantscape::app::hardware::HardwarePanel::new(
        quantscape::session::HardwareState {
            reference: Some(reference.into()),
            ..Default::default()
        },
        quantscape::jobs::no_waker(),
    );
    let mut req = ParetoRequest::new(store.clone());
    req.reference = Some(reference.into());
    req.bootstrap = 20;
    // The panel's own request uses the CLI's defaults but 200 resamples; compare at 20.
    let prepared = prepare(&req, &quantscape::jobs::JobCtx::quiet()).unwrap();
    p.prepared = Some(prepared);
    let report = p.report().unwrap();
    assert_same(&report, &v);

    let at = |f: &str, qb: usize| {
        report
            .rows
            .iter()
            .find(|r| r.format == f && r.qb == qb)
            .unwrap()
            .clone()
    };
    for qb in [16, 32, 128] {
        let dl: Vec<f64> = ["mxfp4", "nvfp4", "mxint4", "int4_sym"]
            .iter()
            .map(|f| at(f, qb).delta_loss)
            .collect();
        for i in 0..dl.len() {
            for j in 0..i {
                assert!(
                    (dl[i] / dl[j] - 1.0).abs() > 1e-3,
                    "Qb {qb}: formats {i} and {j} predict the same ΔL {dl:?}"
                );
            }
        }
    }
    let kappa = report.params.iter().find(|p| p.name == "kappa").unwrap();
    assert!(kappa.value > 0.0, "{kappa:?}");
    for f in ["mxfp4", "nvfp4", "mxint4", "int4_sym", "int4_asym", "nf4"] {
        for pair in [8, 16, 32, 64, 128, 256].windows(2) {
            let (small, large) = (at(f, pair[0]), at(f, pair[1]));
            assert_eq!(
                small.eps < large.eps,
                small.delta_loss < large.delta_loss,
                "{f} Qb {} → {}: ΔL must follow ε",
                pair[0],
                pair[1]
            );
        }
    }
    assert!(report.extrapolation_decades > 3.0);
    assert!(report.notices.iter().any(|n| n.contains("decades outside")));
}
