//! `cargo bench --bench sweep`: the cost of one sweep trial against a plain
//! quantize-then-evaluate of the same configuration, measured in the same run (target ≤ 0.3×).
//!
//! Plain = what `quantscape eval` does for one mixed assignment: load the model and tokenizer,
//! cut the windows, evaluate the base model, quantize every linear weight (low or high format
//! per the assignment), evaluate the quantized model. Trial = the runner's cost per trial over
//! `QS_BENCH_TRIALS` (default 100, a sweep's default T) trials of the same configuration, everything included (model
//! preparation amortised, weight cache, prefix reuse, SQLite commit). Model: the largest bundled
//! qs-llama checkpoint present (or `QS_BENCH_MODEL`, a bundled name); `QS_BENCH_SITES=layer`
//! or `matmul` runs one granularity.

// A benchmark aborts on error: that is its report.
#![allow(clippy::expect_used)]

use std::time::Instant;

use quantscape::codecs::{Format, Method};
use quantscape::eval::corpus;
use quantscape::eval::windows::{make_windows, WindowSpec};
use quantscape::eval::Evaluator;
use quantscape::model::quantized::{quantize_linear, Overrides};
use quantscape::model::{Tokenizer, Transformer};
use quantscape::search::assign::{assign, sites};
use quantscape::search::runner::{bundled_models_dir, expand_models, run};
use quantscape::search::{EvalSpec, Granularity, Operands, Shard, Store, SweepSpec};

/// The binary's allocator (src/main.rs), so that the figures are the CLI's.
#[global_allocator]
static ALLOCATOR: mimalloc::MiMalloc = mimalloc::MiMalloc;

/// One quantize-then-evaluate from scratch: load, tokenize, base pass, quantize the
/// assignment drawn with `seed`, compare (what a trial would cost without the sweep's reuse).
fn plain_trial(
    dir: &std::path::Path,
    eval: &EvalSpec,
    g: Granularity,
    (low, high): (&Format, &Format),
    seed: u64,
) {
    let model = Transformer::load(dir).expect("load");
    let tok = Tokenizer::load(dir).expect("tokenizer");
    let text = corpus::load(&corpus::bundled_dir(), corpus::Split::EvalAusten).expect("split");
    let ws = WindowSpec {
        ctx: eval.ctx.min(model.config.max_positions),
        stride: None,
        n_windows: eval.windows,
        seed: 0,
    };
    let w =
        make_windows(&tok.encode(&text).expect("tokens"), tok.bos, &ws, "eval").expect("windows");
    let ev = Evaluator::new(&model, &w).expect("evaluator");
    let base = ev.base(eval.top_k, &mut |_, _| true).expect("base");
    let s = sites(&model, g, Operands::legacy(g), ws.ctx);
    let a = assign(&s, 0.5, 0.1, seed).expect("assignment");
    let mut o = Overrides {
        weights: vec![None; model.linears.len()],
        operands: Vec::new(),
    };
    for (site, l) in s.iter().zip(&a.low) {
        let f = if *l { low } else { high };
        for &i in &site.linears {
            o.weights[i] = Some(
                quantize_linear(&model, i, f, &Method::Rtn)
                    .expect("quantize")
                    .weight,
            );
        }
    }
    if g == Granularity::Matmul {
        let mut ops = vec![None; model.matmuls.len()];
        for (site, l) in s.iter().zip(&a.low) {
            for &m in &site.matmuls {
                ops[m] = Some(if *l { *low } else { *high });
            }
        }
        o.operands = ops;
    }
    ev.compare(&base, &o, eval.resamples, 0, &mut |_, _| true)
        .expect("compare");
}

fn main() {
    quantscape::alloc::keep_freed_memory();
    let root = bundled_models_dir();
    let name = std::env::var("QS_BENCH_MODEL").unwrap_or_else(|_| {
        let mut best = (0usize, String::new());
        for e in std::fs::read_dir(&root).expect("assets/models").flatten() {
            let n = e.file_name().to_string_lossy().to_string();
            if !n.starts_with("qs-llama") {
                continue;
            }
            if let Ok(t) = std::fs::read_to_string(e.path().join("train.json")) {
                let v: serde_json::Value = serde_json::from_str(&t).expect("train.json");
                let np = v["n_params_non_embedding"].as_u64().unwrap_or(0) as usize;
                if np > best.0 {
                    best = (np, n);
                }
            }
        }
        best.1
    });
    let trials: usize = std::env::var("QS_BENCH_TRIALS")
        .ok()
        .and_then(|s| s.parse().ok())
        .unwrap_or(100);
    let eval = EvalSpec {
        windows: 32,
        ctx: 128,
        ..EvalSpec::default()
    };
    println!(
        "model bundled:{name}; {} windows × {} tokens; {trials} trials per configuration; {} threads",
        eval.windows,
        eval.ctx,
        rayon::current_num_threads()
    );
    println!(
        "{:>8} {:>12} {:>12} {:>8} {:>14}",
        "sites", "plain s", "trial s", "ratio", "blocks saved"
    );
    let only = std::env::var("QS_BENCH_SITES").unwrap_or_default();
    for g in [Granularity::Layer, Granularity::Matmul] {
        if !only.is_empty() && only != g.id() {
            continue;
        }
        let spec = SweepSpec {
            name: "bench".into(),
            models: vec![format!("bundled:{name}")],
            granularities: vec![g],
            low_formats: vec!["mxint4".into()],
            high_formats: vec!["mxint8".into()],
            methods: vec!["rtn".into()],
            block_sizes: vec!["32".into()],
            qr: vec![0.5],
            trials,
            qr_tolerance: 0.1,
            seed: 0,
            eval: eval.clone(),
            ..SweepSpec::default()
        };
        let models = expand_models(&spec, &root).expect("model");
        let dir = models[0].dir.clone();
        let low = Format::parse("mxint4").expect("format");
        let high = Format::parse("mxint8").expect("format");

        // Plain: one full quantize-then-evaluate per assignment.
        let plain_reps = 3;
        let t0 = Instant::now();
        for rep in 0..plain_reps {
            plain_trial(&dir, &eval, g, (&low, &high), rep as u64);
        }
        let plain = t0.elapsed().as_secs_f64() / plain_reps as f64;

        // Sweep trials.
        let tmp =
            std::env::temp_dir().join(format!("qs-bench-sweep-{}.sqlite", std::process::id()));
        let _ = std::fs::remove_file(&tmp);
        let store = Store::open(&tmp, &spec, &Default::default()).expect("store");
        let s = run(
            &spec,
            &models,
            &store,
            Shard::ALL,
            1 << 30,
            None,
            &mut |_| true,
        )
        .expect("sweep");
        drop(store);
        for ext in ["", "-wal", "-shm"] {
            let _ = std::fs::remove_file(format!("{}{ext}", tmp.display()));
        }
        let per_trial = s.elapsed_secs / trials as f64;
        let saved = if s.blocks_total > 0 {
            1.0 - s.blocks_computed as f64 / s.blocks_total as f64
        } else {
            0.0
        };
        println!(
            "{:>8} {:>12.3} {:>12.3} {:>7.2}× {:>13.0}%",
            g.id(),
            plain,
            per_trial,
            per_trial / plain,
            100.0 * saved
        );
    }
}
