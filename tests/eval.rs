//! Evaluation: windows and BOS policy, NLL against transformers, exact KL, paired bootstrap,
//! the `eval` and `info` commands, and the Hugging Face cache lookup.

use std::process::Command;

use quantscape::eval::metrics::{bootstrap_ci, log_sum_exp};
use quantscape::eval::windows::{make_windows, WindowSpec, Windows};
use quantscape::eval::Evaluator;
use quantscape::model::quantized::{quantize_all, Overrides};
use quantscape::model::{hub, NoHooks, Tokenizer, Transformer};

use crate::util::{data_dir, read_oracle};

fn tiny(name: &str) -> std::path::PathBuf {
    data_dir().join("tiny").join(name)
}

fn spec(ctx: usize, n: usize) -> WindowSpec {
    WindowSpec {
        ctx,
        stride: None,
        n_windows: n,
        seed: 3,
    }
}

#[test]
fn windows_bos_policy_and_seeded_choice() {
    let llama = Tokenizer::load(&tiny("llama")).unwrap();
    let gpt2 = Tokenizer::load(&tiny("gpt2")).unwrap();
    assert_eq!(llama.bos, Some(1), "the Llama template prepends <s>");
    assert_eq!(gpt2.bos, None);
    let text = std::fs::read_to_string(tiny("sample.txt")).unwrap();
    let toks = llama.encode(&text).unwrap();
    assert!(toks.len() > 200, "{}", toks.len());
    assert_eq!(
        llama.decode(&toks[..5]).unwrap().split_whitespace().next(),
        Some("It")
    );
    let w = make_windows(&toks, llama.bos, &spec(16, 5), "sample").unwrap();
    assert_eq!(w.len(), 5);
    assert!(w.n_candidates > 5);
    for i in 0..w.len() {
        let win = w.window(i);
        assert_eq!(win[0], 1);
        assert_eq!(&win[1..], &toks[w.starts[i]..w.starts[i] + 15]);
    }
    assert!(w
        .starts
        .windows(2)
        .all(|p| p[0] < p[1] && p[1] - p[0] >= 15 && (p[1] - p[0]) % 15 == 0));
    assert_eq!(
        w,
        make_windows(&toks, llama.bos, &spec(16, 5), "sample").unwrap(),
        "seeded"
    );
    let other = make_windows(
        &toks,
        llama.bos,
        &WindowSpec {
            seed: 4,
            ..spec(16, 5)
        },
        "s",
    )
    .unwrap();
    assert_ne!(w.starts, other.starts);
    let all = make_windows(
        &toks,
        None,
        &WindowSpec {
            stride: Some(4),
            ..spec(16, 10_000)
        },
        "s",
    )
    .unwrap();
    assert_eq!(all.len(), (toks.len() - 16) / 4 + 1);
    for (bad, what) in [(&[][..], "empty"), (&toks[..10], "shorter")] {
        let e = make_windows(bad, None, &spec(16, 5), "f.txt")
            .unwrap_err()
            .to_string();
        assert!(e.contains(what) && e.contains("f.txt"), "{e}");
    }
}

fn oracle_windows(name: &str) -> (Windows, f64) {
    let o = read_oracle(&format!("tiny/{name}.logits.bin"));
    let t = o["shape"].f32()[1] as usize;
    let ids: Vec<u32> = o["ids"].f32().iter().map(|&x| x as u32).collect();
    let n = ids.len() / t;
    (
        Windows {
            ctx: t,
            ids,
            starts: (0..n).collect(),
            n_candidates: n,
        },
        f64::from(o["nll"].f32()[0]),
    )
}

#[test]
fn base_nll_matches_transformers_and_self_comparison_is_zero() {
    for name in crate::forward::ARCHS {
        let m = Transformer::load(&tiny(name)).unwrap();
        let (w, nll) = oracle_windows(name);
        let ev = Evaluator::new(&m, &w).unwrap();
        let base = ev.base(8, &mut |_, _| true).unwrap();
        let r = ev
            .compare(&base, &NoHooks, 200, 0, &mut |_, _| true)
            .unwrap();
        assert!(
            (r.nll_base - nll).abs() < 1e-5,
            "{name}: {} vs transformers {nll}",
            r.nll_base
        );
        assert_eq!(r.n_tokens, w.len() * (w.ctx - 1));
        assert_eq!(r.delta_nll, 0.0);
        assert_eq!((r.delta_nll_ci95.lo, r.delta_nll_ci95.hi), (0.0, 0.0));
        assert!(
            r.kl_mean.abs() < 1e-6 && r.kl_p99.abs() < 1e-6,
            "{name}: {}",
            r.kl_mean
        );
        assert_eq!(r.top1_agreement, 1.0);
    }
}

#[test]
fn kl_is_exact_with_full_top_k_and_a_lower_bound_below() {
    let m = Transformer::load(&tiny("qwen2")).unwrap();
    let (w, _) = oracle_windows("qwen2");
    let (hooks, _) = quantize_all(&m, &"mxfp4".parse().unwrap(), &"rtn".parse().unwrap()).unwrap();
    // Direct KL from both models' full logits.
    let lp = |h: &dyn quantscape::model::Hooks| -> Vec<Vec<f64>> {
        let l = m
            .forward(&w.ids, w.len(), h)
            .unwrap()
            .flatten_all()
            .unwrap()
            .to_vec1::<f32>()
            .unwrap();
        let v = m.config.vocab_size;
        (0..w.len() * w.ctx)
            .filter(|i| i % w.ctx != w.ctx - 1)
            .map(|i| {
                let row = &l[i * v..(i + 1) * v];
                let lse = log_sum_exp(row);
                row.iter().map(|&x| f64::from(x) - lse).collect()
            })
            .collect()
    };
    let (p, q) = (lp(&NoHooks), lp(&hooks));
    let exact: f64 = p
        .iter()
        .zip(&q)
        .map(|(a, b)| a.iter().zip(b).map(|(x, y)| x.exp() * (x - y)).sum::<f64>())
        .sum::<f64>()
        / p.len() as f64;
    let ev = Evaluator::new(&m, &w).unwrap();
    let full = ev
        .compare(
            &ev.base(m.config.vocab_size, &mut |_, _| true).unwrap(),
            &hooks,
            100,
            0,
            &mut |_, _| true,
        )
        .unwrap();
    assert!(exact > 1e-3, "mxfp4 moves the distribution: {exact}");
    assert!(
        (full.kl_mean - exact).abs() < 1e-5 * exact.max(1.0),
        "{} vs {exact}",
        full.kl_mean
    );
    let top4 = ev
        .compare(
            &ev.base(4, &mut |_, _| true).unwrap(),
            &hooks,
            100,
            0,
            &mut |_, _| true,
        )
        .unwrap();
    assert!(top4.kl_mean <= full.kl_mean + 1e-7 && top4.kl_mean > 0.0);
    assert_eq!(top4.delta_nll, full.delta_nll, "ΔL does not depend on k");
    assert!(full.kl_p50 <= full.kl_p90 && full.kl_p90 <= full.kl_p99);
    assert!(full.top1_agreement < 1.0 && full.top1_agreement > 0.3);
}

#[test]
fn finer_formats_cost_less_and_cancel_works() {
    let m = Transformer::load(&tiny("gpt_neox")).unwrap();
    let (w, _) = oracle_windows("gpt_neox");
    let ev = Evaluator::new(&m, &w).unwrap();
    let base = ev.base(16, &mut |_, _| true).unwrap();
    let kl = |f: &str| {
        let (h, _) = quantize_all(&m, &f.parse().unwrap(), &"rtn".parse().unwrap()).unwrap();
        ev.compare(&base, &h, 100, 0, &mut |_, _| true)
            .unwrap()
            .kl_mean
    };
    let (k8, k4, k2) = (kl("mxint8"), kl("mxfp4"), kl("int2_asym"));
    assert!(0.0 < k8 && k8 < k4 && k4 < k2, "{k8} {k4} {k2}");
    let e = ev
        .compare(&base, &Overrides::default(), 10, 0, &mut |_, _| false)
        .unwrap_err();
    assert!(matches!(e, quantscape::Error::Cancelled));
}

#[test]
fn bootstrap_interval_is_seeded_and_covers_the_mean() {
    let xs: Vec<f64> = (0..50).map(|i| ((i * 37) % 11) as f64 / 10.0).collect();
    let mean = xs.iter().sum::<f64>() / 50.0;
    let ci = bootstrap_ci(&xs, 2000, 9);
    assert!(
        ci.lo < mean && mean < ci.hi && ci.hi - ci.lo < 0.5,
        "{ci:?} {mean}"
    );
    assert_eq!(ci, bootstrap_ci(&xs, 2000, 9));
    let wider = bootstrap_ci(&xs[..10], 2000, 9);
    assert!(wider.hi - wider.lo > ci.hi - ci.lo);
}

#[test]
fn hub_cache_layout_is_resolved_without_downloading() {
    let root = tempfile::tempdir().unwrap();
    let repo = root.path().join("models--acme--tiny-llama");
    let snap = repo.join("snapshots").join("abc123");
    std::fs::create_dir_all(&snap).unwrap();
    std::fs::create_dir_all(repo.join("refs")).unwrap();
    std::fs::write(repo.join("refs").join("main"), "abc123\n").unwrap();
    assert_eq!(
        hub::resolve_in("acme/tiny-llama", Some(root.path())).unwrap(),
        snap
    );
    let e = hub::resolve_in("acme/missing", Some(root.path()))
        .unwrap_err()
        .to_string();
    assert!(
        e.contains("not in the Hugging Face cache") && e.contains("models--acme--missing"),
        "{e}"
    );
    let e = hub::resolve_in("no/such/path", Some(root.path()))
        .unwrap_err()
        .to_string();
    assert!(e.contains("no such model folder"), "{e}");
}

fn qs(args: &[&str]) -> std::process::Output {
    Command::new(env!("CARGO_BIN_EXE_quantscape"))
        .args(args)
        .env("HF_HUB_CACHE", data_dir())
        .output()
        .unwrap()
}

#[test]
fn eval_and_info_commands() {
    let model = tiny("llama");
    let data = tiny("sample.txt");
    let (m, d) = (model.to_str().unwrap(), data.to_str().unwrap());
    let o = qs(&[
        "eval",
        "--model",
        m,
        "--data",
        d,
        "--format",
        "mxfp4",
        "--ctx",
        "24",
        "--windows",
        "8",
        "--json",
        "--quiet",
    ]);
    assert!(o.status.success(), "{}", String::from_utf8_lossy(&o.stderr));
    let v: serde_json::Value = serde_json::from_slice(&o.stdout).unwrap();
    let r = &v["report"];
    assert_eq!(r["n_windows"], 8);
    assert_eq!(r["n_tokens"], 8 * 23);
    let (dl, lo, hi) = (
        r["delta_nll"].as_f64().unwrap(),
        r["delta_nll_ci95"]["lo"].as_f64().unwrap(),
        r["delta_nll_ci95"]["hi"].as_f64().unwrap(),
    );
    assert!(lo <= dl && dl <= hi && lo < hi, "{dl} [{lo}, {hi}]");
    assert!(r["kl_mean"].as_f64().unwrap() > 0.0);
    assert_eq!(v["bits_per_weight"], 4.25);
    let o = qs(&[
        "eval",
        "--model",
        m,
        "--data",
        d,
        "--format",
        "nvfp4",
        "--method",
        "hqq",
        "--ctx",
        "16",
        "--windows",
        "4",
        "--quiet",
    ]);
    let out = String::from_utf8_lossy(&o.stdout);
    assert!(
        o.status.success() && out.contains("ΔL") && out.contains("top-1") && out.contains("95% CI"),
        "{out}"
    );
    // Bad input: exit 2 and one line naming the problem.
    let empty = tempfile::NamedTempFile::new().unwrap();
    let cases: [(&[&str], &str); 4] = [
        (
            &["eval", "--model", m, "--data", "/nonexistent.txt"],
            "nonexistent.txt",
        ),
        (
            &[
                "eval",
                "--model",
                m,
                "--data",
                empty.path().to_str().unwrap(),
            ],
            "empty",
        ),
        (
            &["eval", "--model", m, "--data", d, "--ctx", "4096"],
            "longer than the model allows",
        ),
        (&["eval", "--model", d, "--data", d], "no such model folder"),
    ];
    for (args, want) in cases {
        let o = qs(args);
        let err = String::from_utf8_lossy(&o.stderr);
        assert_eq!(o.status.code(), Some(2), "{args:?}: {err}");
        assert!(
            err.contains(want) && err.trim().lines().count() == 1,
            "{args:?}: {err}"
        );
    }
    let o = qs(&["info", "--model", tiny("gpt2").to_str().unwrap()]);
    let out = String::from_utf8_lossy(&o.stdout);
    assert!(
        o.status.success() && out.contains("GPT2LMHeadModel") && out.contains("Conv1D"),
        "{out}"
    );
    let o = qs(&["info", "--model", m, "--json"]);
    let v: serde_json::Value = serde_json::from_slice(&o.stdout).unwrap();
    assert_eq!(v["n_linear_sites"], 14);
    assert!(v["n_params_non_embedding"].as_u64().unwrap() < v["n_params_total"].as_u64().unwrap());
}

#[test]
fn top_k_matches_a_full_sort() {
    let row: Vec<f32> = crate::util::gaussian(1000, 1.0, 5);
    let mut sorted: Vec<(u32, f32)> = row
        .iter()
        .enumerate()
        .map(|(i, &x)| (i as u32, x))
        .collect();
    sorted.sort_by(|a, b| b.1.total_cmp(&a.1));
    for k in [1, 7, 64, 1000, 2000] {
        let got = quantscape::eval::metrics::top_k(&row, k);
        assert_eq!(got, sorted[..k.min(1000)].to_vec(), "k = {k}");
    }
    assert!(quantscape::eval::metrics::top_k(&row, 0).is_empty());
}

/// `--act-sites` splits `--act-format` between the linear layers' inputs and the attention
/// matmuls: each alone costs less than both together, the two differ, and it needs a format.
#[test]
fn act_sites_split_the_activation_cost() {
    let model = tiny("llama");
    let data = tiny("sample.txt");
    let (m, d) = (model.to_str().unwrap(), data.to_str().unwrap());
    let dl = |sites: &str| {
        let o = qs(&[
            "eval",
            "--model",
            m,
            "--data",
            d,
            "--act-format",
            "mxint4",
            "--act-sites",
            sites,
            "--ctx",
            "24",
            "--windows",
            "8",
            "--json",
            "--quiet",
        ]);
        assert!(o.status.success(), "{}", String::from_utf8_lossy(&o.stderr));
        let v: serde_json::Value = serde_json::from_slice(&o.stdout).unwrap();
        assert_eq!(v["act_sites"], sites);
        v["report"]["kl_mean"].as_f64().unwrap()
    };
    let (all, linear, attention) = (dl("all"), dl("linear"), dl("attention"));
    assert!(linear > 0.0 && attention > 0.0, "{linear} {attention}");
    assert!(
        linear < all && attention < all,
        "{linear} {attention} {all}"
    );
    assert!((linear - attention).abs() > 1e-6 * all);
    let o = qs(&["eval", "--model", m, "--data", d, "--act-sites", "linear"]);
    assert!(!o.status.success());
    assert!(String::from_utf8_lossy(&o.stderr).contains("--act-sites needs --act-format"));
}
