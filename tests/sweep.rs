//! Sweeps end to end through the binary: kill -9 at random moments then resume gives exactly
//! the rows of an uninterrupted run; shards cover the sweep without overlap and merge into it;
//! merge is idempotent; Qr accounting; determinism; bad input is refused with nothing written.

use std::path::{Path, PathBuf};
use std::process::{Command, Output};
use std::time::Duration;

use quantscape::model::Transformer;
use quantscape::search::assign::{qr_of, sites};
use quantscape::search::{Granularity, Operands, Store, TrialRow};
use rand::{Rng as _, SeedableRng as _};

use crate::util::{data_dir, qs};

fn tiny(name: &str) -> PathBuf {
    data_dir().join("tiny").join(name)
}

/// A spec over two tiny models, both granularities; `windows` sets the cost of a trial.
fn spec(dir: &Path, windows: usize, trials: usize) -> PathBuf {
    let text = format!(
        r#"SweepSpec(
    name: "test",
    models: ["{}", "{}"],
    granularities: [layer, matmul],
    low_formats: ["mxint4", "int4_asym"],
    high_formats: ["mxint8"],
    block_sizes: ["32", "channel"],
    qr: [0.0, 0.3, 0.6, 1.0],
    trials: {trials},
    qr_tolerance: 0.1,
    seed: 3,
    eval: (windows: {windows}, ctx: 32, resamples: 50, top_k: 8),
)"#,
        tiny("llama").display(),
        tiny("gpt_neox").display()
    );
    let p = dir.join("spec.ron");
    std::fs::write(&p, text).unwrap();
    p
}

/// Rows without the wall-time column, for comparing runs.
fn rows(db: &Path) -> Vec<TrialRow> {
    let (s, _) = Store::open_existing(db).unwrap();
    s.trials()
        .unwrap()
        .into_iter()
        .map(|mut t| {
            t.seconds = 0.0;
            t
        })
        .collect()
}

fn sweep(dir: &Path, out: &str, extra: &[&str]) -> Output {
    let mut a = vec!["sweep", "spec.ron", "--out", out, "--quiet"];
    a.extend_from_slice(extra);
    qs(&a, dir)
}

#[test]
fn killed_sweeps_resume_to_the_uninterrupted_rows() {
    let tmp = tempfile::tempdir().unwrap();
    let dir = tmp.path();
    spec(dir, 12, 6);
    let o = sweep(dir, "full.sqlite", &[]);
    assert!(o.status.success(), "{}", String::from_utf8_lossy(&o.stderr));
    let full = rows(&dir.join("full.sqlite"));
    assert_eq!(full.len(), 2 * 2 * 2 * 2 * (1 + 6 + 6 + 1));
    // ε of every (model, low format) is stored with the sweep, equal to RTN's on the weights,
    // and joined into the summary the laws read.
    let (store, _) = Store::open_existing(&dir.join("full.sqlite")).unwrap();
    let feats = store.features().unwrap();
    let mut pairs: Vec<(String, String)> = full
        .iter()
        .map(|t| (t.model.clone(), t.low.clone()))
        .collect();
    pairs.sort();
    pairs.dedup();
    assert_eq!(pairs.len(), 2 * 2 * 2);
    for (model, low) in &pairs {
        let f = feats
            .iter()
            .find(|f| {
                &f.model == model
                    && f.feature == "rtn_sqnr_db"
                    && f.direction == format!("{low}|rtn")
            })
            .unwrap_or_else(|| panic!("no ε for {model} {low}"));
        assert!(f.value.is_finite() && f.value > 5.0, "{f:?}");
    }
    let m = Transformer::load(&tiny("llama")).unwrap();
    let ws: Vec<(Vec<f32>, usize, usize)> = m
        .linears
        .iter()
        .enumerate()
        .map(|(i, s)| {
            let w = m
                .linear(i)
                .unwrap()
                .weight
                .flatten_all()
                .unwrap()
                .to_vec1::<f32>()
                .unwrap();
            (w, s.out_features, s.in_features)
        })
        .collect();
    let fmt = quantscape::codecs::Format::parse("mxint4").unwrap();
    let eps =
        quantscape::codecs::relative_error(ws.iter().map(|(w, r, c)| (w.as_slice(), *r, *c)), &fmt)
            .unwrap();
    let summary = quantscape::search::export::read_store(&dir.join("full.sqlite"))
        .unwrap()
        .summary;
    let row = summary
        .iter()
        .find(|c| c.model == tiny("llama").display().to_string() && c.low == "mxint4")
        .unwrap();
    assert!((row.eps / eps - 1.0).abs() < 1e-9, "{} vs {eps}", row.eps);
    assert!(summary
        .iter()
        .all(|c| c.eps.is_finite() && c.man_bits == 3.0));
    drop(store);
    // Determinism: a second uninterrupted run draws and measures the same.
    assert!(sweep(dir, "again.sqlite", &[]).status.success());
    assert_eq!(rows(&dir.join("again.sqlite")), full);

    let mut rng = rand::rngs::StdRng::seed_from_u64(11);
    let mut kills = 0;
    for _ in 0..30 {
        let mut child = Command::new(env!("CARGO_BIN_EXE_quantscape"))
            .args(["sweep", "spec.ron", "--out", "killed.sqlite", "--quiet"])
            .current_dir(dir)
            .stdout(std::process::Stdio::null())
            .stderr(std::process::Stdio::null())
            .spawn()
            .unwrap();
        std::thread::sleep(Duration::from_millis(rng.random_range(50..1500)));
        if child.try_wait().unwrap().is_some() {
            break;
        }
        child.kill().unwrap(); // SIGKILL
        child.wait().unwrap();
        kills += 1;
    }
    assert!(kills > 0, "no run was killed: make the trials slower");
    let o = sweep(dir, "killed.sqlite", &[]);
    assert!(o.status.success(), "{}", String::from_utf8_lossy(&o.stderr));
    assert!(String::from_utf8_lossy(&o.stdout).contains("0 evaluated"));
    assert_eq!(
        rows(&dir.join("killed.sqlite")),
        full,
        "after {kills} kills"
    );
    let conn = rusqlite::Connection::open(dir.join("killed.sqlite")).unwrap();
    let ok: String = conn
        .query_row("PRAGMA integrity_check", [], |r| r.get(0))
        .unwrap();
    assert_eq!(ok, "ok");
}

/// Relative tolerance of a GPU trial's NLL against the CPU's (as the GPU eval tests).
const GPU_NLL_REL_TOL: f64 = 1e-5;

/// With a GPU (lavapipe in CI), layer-wise trials run there against a base reference computed
/// there and agree with the CPU sweep to fp32 rounding; matmul-wise trials (activation formats)
/// stay on the CPU, bit for bit. The store lists both devices. Without an adapter `auto` runs
/// everything on the CPU and says so.
#[test]
fn gpu_sweeps_agree_with_the_cpu_and_keep_activation_trials_there() {
    let tmp = tempfile::tempdir().unwrap();
    let dir = tmp.path();
    spec(dir, 2, 2);
    assert!(sweep(dir, "cpu.sqlite", &[]).status.success());
    let o = sweep(dir, "gpu.sqlite", &["--device", "auto"]);
    let (out, err) = (
        String::from_utf8_lossy(&o.stdout),
        String::from_utf8_lossy(&o.stderr),
    );
    assert!(o.status.success(), "{err}");
    let (store, _) = Store::open_existing(&dir.join("gpu.sqlite")).unwrap();
    let devices = store.meta().unwrap()["devices"].clone();
    assert!(out.contains(&format!("evaluated on: {devices}")), "{out}");
    let (cpu, gpu) = (rows(&dir.join("cpu.sqlite")), rows(&dir.join("gpu.sqlite")));
    assert_eq!(cpu.len(), gpu.len());
    if !devices.contains("gpu: ") {
        eprintln!("skipping the GPU comparison: no adapter ({})", err.trim());
        assert_eq!(devices, "cpu");
        assert_eq!(cpu, gpu);
        return;
    }
    assert!(devices.split("; ").any(|d| d == "cpu"), "{devices}");
    for (c, g) in cpu.iter().zip(&gpu) {
        assert_eq!((&c.config_key, c.trial_seed), (&g.config_key, g.trial_seed));
        if c.granularity == "matmul" {
            assert_eq!(c, g, "matmul-wise trials stay on the CPU");
            continue;
        }
        assert_eq!(c.assignment, g.assignment);
        for (what, a, b) in [("base NLL", c.nll_base, g.nll_base), ("NLL", c.nll, g.nll)] {
            assert!(
                (a - b).abs() <= GPU_NLL_REL_TOL * a,
                "{}: {what} cpu {a} gpu {b}",
                c.config_key
            );
        }
        assert!((c.delta_nll - g.delta_nll).abs() <= 2.0 * GPU_NLL_REL_TOL * c.nll);
    }
}

/// A model the GPU cannot hold (storage bindings capped below its weights) is evaluated on the
/// CPU, said in the run's notes, rather than aborting the sweep; its rows are the CPU sweep's.
#[cfg(feature = "gpu")]
#[test]
fn a_model_the_gpu_cannot_hold_runs_on_the_cpu() {
    use quantscape::gpu::{GpuContext, GpuOptions};
    use quantscape::search::runner::{bundled_models_dir, expand_models, run};
    use quantscape::search::{Shard, SweepSpec};
    let opts = GpuOptions {
        max_binding_bytes: Some(4096),
        ..Default::default()
    };
    let gpu = match GpuContext::new(&opts) {
        Ok(g) => g,
        Err(e) => {
            eprintln!("skipping: no GPU adapter ({e})");
            return;
        }
    };
    let tmp = tempfile::tempdir().unwrap();
    let dir = tmp.path();
    let spec_path = spec(dir, 2, 1);
    assert!(sweep(dir, "cpu.sqlite", &[]).status.success());
    let sweep_spec = SweepSpec::load(&spec_path).unwrap();
    let models = expand_models(&sweep_spec, &bundled_models_dir()).unwrap();
    let db = dir.join("capped.sqlite");
    let store = Store::open(&db, &sweep_spec, &Default::default()).unwrap();
    let s = run(
        &sweep_spec,
        &models,
        &store,
        Shard::ALL,
        1 << 26,
        Some(&gpu),
        &mut |_| true,
    )
    .unwrap();
    assert_eq!(s.notes.len(), models.len(), "{:?}", s.notes);
    for (n, m) in s.notes.iter().zip(&models) {
        assert!(
            n.starts_with(&format!("{}: evaluated on the CPU", m.spec))
                && n.contains("largest storage binding"),
            "{n}"
        );
    }
    assert_eq!(s.devices, ["cpu"]);
    drop(store);
    assert_eq!(rows(&db), rows(&dir.join("cpu.sqlite")));
}

#[test]
fn shards_cover_the_sweep_and_merge_idempotently() {
    let tmp = tempfile::tempdir().unwrap();
    let dir = tmp.path();
    spec(dir, 2, 3);
    assert!(sweep(dir, "full.sqlite", &[]).status.success());
    let full = rows(&dir.join("full.sqlite"));
    let mut seen = std::collections::HashSet::new();
    for i in 0..3 {
        let out = format!("s{i}.sqlite");
        let o = sweep(dir, &out, &["--shard", &format!("{i}/3")]);
        assert!(o.status.success(), "{}", String::from_utf8_lossy(&o.stderr));
        for r in rows(&dir.join(&out)) {
            assert!(seen.insert((r.config_key.clone(), r.trial_seed)), "overlap");
        }
    }
    assert_eq!(seen.len(), full.len(), "union of shards = whole sweep");
    let merge = |dir: &Path| {
        qs(
            &[
                "merge",
                "s0.sqlite",
                "s1.sqlite",
                "s2.sqlite",
                "--out",
                "all.sqlite",
            ],
            dir,
        )
    };
    let o = merge(dir);
    assert!(o.status.success(), "{}", String::from_utf8_lossy(&o.stderr));
    assert_eq!(rows(&dir.join("all.sqlite")), full);
    let o = merge(dir);
    assert!(String::from_utf8_lossy(&o.stdout).contains("0 trials added"));
    assert_eq!(rows(&dir.join("all.sqlite")), full);
    // Export: one row per trial, one per configuration.
    let o = qs(&["export", "all.sqlite", "--csv", "all.csv"], dir);
    assert!(o.status.success(), "{}", String::from_utf8_lossy(&o.stderr));
    let n_lines = |p: &str| {
        std::fs::read_to_string(dir.join(p))
            .unwrap()
            .lines()
            .count()
    };
    assert_eq!(n_lines("all.csv"), full.len() + 1);
    assert_eq!(n_lines("all.summary.csv"), 2 * 2 * 2 * 2 * 4 + 1);
    // `fit` reads a results store directly: the same points as the exported summary.
    let fit = |data: &str, filters: &[&str]| {
        let mut a = vec![
            "fit",
            data,
            "--law",
            "unified-weak",
            "--bootstrap",
            "0",
            "--json",
        ];
        for f in filters {
            a.extend(["--where", f]);
        }
        let o = qs(&a, dir);
        assert!(o.status.success(), "{}", String::from_utf8_lossy(&o.stderr));
        let v: serde_json::Value = serde_json::from_slice(&o.stdout).unwrap();
        (v["n_points"].clone(), v["params"].clone())
    };
    let from_store = fit("all.sqlite", &[]);
    assert!(
        from_store.0.as_u64().is_some_and(|n| n > 0),
        "{from_store:?}"
    );
    assert_eq!(from_store, fit("all.summary.csv", &[]));
    // The library reads a store as a store whatever its file is called; `from_path` goes by
    // the extension.
    use quantscape::laws::{Dataset, Target};
    std::fs::copy(dir.join("all.sqlite"), dir.join("all.results")).unwrap();
    let by_ext = Dataset::from_path(&dir.join("all.sqlite"), None, Target::DeltaLoss).unwrap();
    let renamed =
        Dataset::from_results_store(&dir.join("all.results"), None, Target::DeltaLoss).unwrap();
    assert!(!by_ext.is_empty());
    assert_eq!((renamed.len(), &renamed.y), (by_ext.len(), &by_ext.y));
    assert!(Dataset::from_path(&dir.join("all.results"), None, Target::DeltaLoss).is_err());
    // `--where` keeps one slice of one family: the summary rows it names with ΔL > 0 (log
    // residuals drop the rest); a format matches without its block override.
    let slice = [
        "granularity=layer",
        "low=mxint4",
        "architecture=LlamaForCausalLM",
    ];
    let one = fit("all.sqlite", &slice);
    assert_eq!(one, fit("all.summary.csv", &slice));
    let mut rdr = csv::Reader::from_path(dir.join("all.summary.csv")).unwrap();
    let h = rdr.headers().unwrap().clone();
    let col = |name: &str| h.iter().position(|c| c == name).unwrap();
    let (g, low, arch, dl) = (
        col("granularity"),
        col("low"),
        col("architecture"),
        col("delta_loss"),
    );
    let want = rdr
        .records()
        .map(|r| r.unwrap())
        .filter(|r| {
            &r[g] == "layer"
                && r[low].split(',').next() == Some("mxint4")
                && &r[arch] == "LlamaForCausalLM"
                && r[dl].parse::<f64>().unwrap() > 0.0
        })
        .count();
    assert!(want > 0 && (want as u64) < from_store.0.as_u64().unwrap());
    assert_eq!(one.0.as_u64(), Some(want as u64));
    // A filter naming no column, or matching nothing, is an error that says what there is.
    let bad = |f: &str| {
        let o = qs(&["fit", "all.sqlite", "--where", f], dir);
        assert!(!o.status.success());
        String::from_utf8_lossy(&o.stderr).to_string()
    };
    let e = bad("colour=red");
    assert!(
        e.contains("no column `colour`") && e.contains("all.sqlite"),
        "{e}"
    );
    let e = bad("low=mxfp4");
    assert!(
        e.contains("no row matches low=mxfp4") && e.contains("int4_asym"),
        "{e}"
    );
    assert!(bad("granularity").contains("expected COLUMN=VALUE"));
}

#[test]
fn qr_accounting_matches_the_sites() {
    let tmp = tempfile::tempdir().unwrap();
    let dir = tmp.path();
    spec(dir, 2, 3);
    assert!(sweep(dir, "r.sqlite", &[]).status.success());
    for r in rows(&dir.join("r.sqlite")) {
        let model = Transformer::load(Path::new(&r.model)).unwrap();
        let g = match r.granularity.as_str() {
            "layer" => Granularity::Layer,
            _ => Granularity::Matmul,
        };
        let s = sites(&model, g, Operands::legacy(g), 32);
        let low: Vec<bool> = r.assignment.chars().map(|c| c == '1').collect();
        assert_eq!(low.len(), s.len());
        assert!((qr_of(&s, &low) - r.qr_achieved).abs() < 1e-12);
        assert!((r.qr_achieved - r.qr_target).abs() <= 0.1 + 1e-12, "{r:?}");
        if r.qr_target == 0.0 {
            assert!(r.bits_per_weight > 8.0, "all high precision: {r:?}");
        }
    }
}

#[test]
fn bad_specs_and_foreign_results_are_refused_untouched() {
    let tmp = tempfile::tempdir().unwrap();
    let dir = tmp.path();
    let good = std::fs::read_to_string(spec(dir, 2, 2)).unwrap();
    assert!(sweep(dir, "r.sqlite", &[]).status.success());
    let before = std::fs::read(dir.join("r.sqlite")).unwrap();
    let cases = [
        (good.replace("\"mxint4\"", "\"mxint5x\""), "mxint5x"),
        (good.replace("[0.0, 0.3, 0.6, 1.0]", "[]"), "`qr` is empty"),
        (good.replace("0.6, 1.0]", "0.6, 1.5]"), "outside [0, 1]"),
        (good.replace("tiny/llama", "tiny/nope"), "nope"),
        (good.replace("seed: 3", "seed: 4"), "another sweep spec"),
    ];
    for (text, want) in cases {
        std::fs::write(dir.join("spec.ron"), text).unwrap();
        let o = sweep(dir, "r.sqlite", &[]);
        assert_eq!(o.status.code(), Some(2), "{want}");
        let err = String::from_utf8_lossy(&o.stderr);
        assert!(err.contains(want), "{want}: {err}");
        assert_eq!(
            std::fs::read(dir.join("r.sqlite")).unwrap(),
            before,
            "{want}"
        );
    }
    // A newer schema.
    std::fs::write(dir.join("spec.ron"), &good).unwrap();
    let conn = rusqlite::Connection::open(dir.join("r.sqlite")).unwrap();
    conn.execute_batch("PRAGMA user_version = 99;").unwrap();
    drop(conn);
    let o = sweep(dir, "r.sqlite", &[]);
    assert_eq!(o.status.code(), Some(2));
    assert!(String::from_utf8_lossy(&o.stderr).contains("newer"));
    // Bad shard.
    let o = sweep(dir, "x.sqlite", &["--shard", "3/3"]);
    assert_eq!(o.status.code(), Some(2));
    assert!(!dir.join("x.sqlite").exists());
}

#[test]
fn prefix_reuse_is_bit_identical_to_a_full_forward() {
    use quantscape::codecs::{Format, Method};
    use quantscape::eval::windows::{make_windows, WindowSpec};
    use quantscape::eval::{Evaluator, PrefixCache};
    use quantscape::model::quantized::{quantize_linear, Overrides};
    use quantscape::model::Tokenizer;
    for arch in ["llama", "gpt2", "gpt_neox"] {
        let dir = tiny(arch);
        let model = Transformer::load(&dir).unwrap();
        let tok = Tokenizer::load(&dir).unwrap();
        let text = std::fs::read_to_string(data_dir().join("tiny/sample.txt")).unwrap();
        let spec = WindowSpec {
            ctx: 24,
            stride: None,
            n_windows: 6,
            seed: 0,
        };
        let w = make_windows(&tok.encode(&text).unwrap(), tok.bos, &spec, "sample").unwrap();
        let mut ev = Evaluator::new(&model, &w).unwrap();
        ev.max_batch_tokens = 2 * 24; // 3 batches
        let base = ev.base(8, &mut |_, _| true).unwrap();
        let f = Format::preset("mxint4").unwrap();
        let q: Vec<_> = (0..model.linears.len())
            .map(|i| quantize_linear(&model, i, &f, &Method::Rtn).unwrap().weight)
            .collect();
        let n_blocks = model.blocks.len();
        let mut prefix = PrefixCache::new();
        // Quantize the last block only, then also the first, then the last only again.
        for low_blocks in [
            vec![n_blocks - 1],
            vec![0, n_blocks - 1],
            vec![n_blocks - 1],
            vec![],
        ] {
            let mut o = Overrides {
                weights: vec![None; model.linears.len()],
                operands: Vec::new(),
            };
            for (i, l) in model.linears.iter().enumerate() {
                if low_blocks.contains(&l.layer) {
                    o.weights[i] = Some(q[i].clone());
                }
            }
            let sigs: Vec<String> = (0..n_blocks)
                .map(|b| format!("{}", low_blocks.contains(&b)))
                .collect();
            let want = ev.compare(&base, &o, 20, 0, &mut |_, _| true).unwrap();
            let got = ev
                .compare_prefix(&base, &o, &sigs, &mut prefix, 20, 0)
                .unwrap();
            assert_eq!(got, want, "{arch} {low_blocks:?}");
        }
        assert!(
            prefix.blocks_computed < prefix.blocks_total,
            "{arch}: nothing reused"
        );
    }
}

#[test]
fn bundled_sweep_specs_are_valid() {
    let dir = Path::new(env!("CARGO_MANIFEST_DIR")).join("assets/sweeps");
    let mut n = 0;
    for e in std::fs::read_dir(&dir).unwrap() {
        let p = e.unwrap().path();
        if p.extension().is_some_and(|x| x == "ron") {
            let text = std::fs::read_to_string(&p).unwrap();
            let spec = quantscape::search::SweepSpec::from_ron(&text, "spec").unwrap();
            spec.validate().unwrap();
            let configs = spec.configurations(&["m".to_string()]).unwrap();
            assert!(!configs.is_empty(), "{}", p.display());
            n += 1;
        }
    }
    assert!(n >= 2);
}

/// A model whose checkpoint changed under the same name (retrained) is refused on resume and
/// on merge, naming the model and `forget`; `forget` drops its rows and the sweep then redoes
/// exactly them.
#[test]
fn a_changed_checkpoint_is_refused_until_forgotten() {
    let tmp = tempfile::tempdir().unwrap();
    let dir = tmp.path();
    spec(dir, 2, 2);
    assert!(sweep(dir, "r.sqlite", &[]).status.success());
    assert!(sweep(dir, "b.sqlite", &[]).status.success());
    let full = rows(&dir.join("r.sqlite"));
    let model = full[0].model.clone();
    let n_model = full.iter().filter(|t| t.model == model).count();
    // As if `model` had been retrained after its trials were stored, and one trial were left.
    let conn = rusqlite::Connection::open(dir.join("r.sqlite")).unwrap();
    conn.execute(
        "UPDATE models SET nll_base = nll_base + 0.01 WHERE model = ?1",
        [&model],
    )
    .unwrap();
    conn.execute(
        "DELETE FROM trials WHERE rowid = (SELECT min(rowid) FROM trials WHERE model = ?1)",
        [&model],
    )
    .unwrap();
    drop(conn);
    let o = sweep(dir, "r.sqlite", &[]);
    let e = String::from_utf8_lossy(&o.stderr);
    assert!(!o.status.success());
    assert!(
        e.contains(&model) && e.contains("checkpoint changed") && e.contains("quantscape forget"),
        "{e}"
    );
    assert_eq!(rows(&dir.join("r.sqlite")).len(), full.len() - 1);
    let o = qs(&["merge", "b.sqlite", "r.sqlite", "--out", "m.sqlite"], dir);
    let e = String::from_utf8_lossy(&o.stderr);
    assert!(
        !o.status.success() && e.contains("another checkpoint"),
        "{e}"
    );
    // An unknown model is an error listing the store's models; nothing is removed.
    let o = qs(&["forget", "r.sqlite", "--model", "nope*"], dir);
    let e = String::from_utf8_lossy(&o.stderr);
    assert!(!o.status.success() && e.contains(&model), "{e}");
    assert_eq!(rows(&dir.join("r.sqlite")).len(), full.len() - 1);
    let o = qs(&["forget", "r.sqlite", "--model", &model], dir);
    assert!(o.status.success(), "{}", String::from_utf8_lossy(&o.stderr));
    let out = String::from_utf8_lossy(&o.stdout);
    assert!(
        out.contains(&format!("{model}: {} trials removed", n_model - 1)),
        "{out}"
    );
    assert_eq!(rows(&dir.join("r.sqlite")).len(), full.len() - n_model);
    // The forgotten model's measured ε (the sweep stores one per low format) went with it; the
    // other model's stay.
    let conn = rusqlite::Connection::open(dir.join("r.sqlite")).unwrap();
    let count = |sql: &str| -> i64 { conn.query_row(sql, [&model], |r| r.get(0)).unwrap() };
    assert_eq!(count("SELECT count(*) FROM features WHERE model = ?1"), 0);
    assert!(
        count("SELECT count(*) FROM features WHERE model != ?1 AND feature = 'rtn_sqnr_db'") > 0
    );
    drop(conn);
    let o = sweep(dir, "r.sqlite", &[]);
    assert!(o.status.success(), "{}", String::from_utf8_lossy(&o.stderr));
    assert_eq!(rows(&dir.join("r.sqlite")), full);
}
