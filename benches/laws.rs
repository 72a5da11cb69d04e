//! `cargo bench --bench laws`: speed of the strong unified law fit on 10 000 synthetic points
//! (10 sizes × 20 ratios × 50 block sizes, log-normal noise σ = 0.05), Huber δ = 1e-3, log
//! residuals, on `QS_THREADS` threads (default 2). Targets (issue 9): warm refit ≤ 5 ms, cold
//! multi-start ≤ 200 ms, 1000 bootstrap resamples ≤ 2 s. When `python3` (or `QS_PYTHON`) can
//! import scipy, scripts/bench_laws_scipy.py fits the same CSV with
//! scipy.optimize.least_squares in the same run and the ratios are printed; otherwise that line
//! says it was skipped.

#![allow(clippy::expect_used, clippy::unwrap_used)]

use std::process::Command;
use std::time::Instant;

use quantscape::laws::{fit, grid_rows, synthesize, FitOptions, Law, Var};

fn median_ms(runs: usize, mut f: impl FnMut()) -> f64 {
    let mut t: Vec<f64> = (0..runs)
        .map(|_| {
            let s = Instant::now();
            f();
            s.elapsed().as_secs_f64() * 1e3
        })
        .collect();
    t.sort_by(f64::total_cmp);
    t[t.len() / 2]
}

fn main() {
    let threads: usize = std::env::var("QS_THREADS")
        .ok()
        .and_then(|v| v.parse().ok())
        .unwrap_or(2);
    rayon::ThreadPoolBuilder::new()
        .num_threads(threads)
        .build_global()
        .unwrap();
    let law = Law::by_id("unified-strong").unwrap();
    let sizes: Vec<f64> = (0..10).map(|i| 1e7 * 10f64.powf(i as f64 / 3.0)).collect();
    let ratios: Vec<f64> = (1..=20).map(|i| i as f64 / 20.0).collect();
    let blocks: Vec<f64> = (0..50).map(|i| 8.0 * 2f64.powf(i as f64 / 7.0)).collect();
    let rows = grid_rows(&[(Var::N, &sizes), (Var::Qr, &ratios), (Var::Qb, &blocks)]);
    let truth = [1.0, 2.5, 0.3, 8.0, 0.45];
    let data = synthesize(&law, &truth, rows, 0.05, 1).unwrap();
    println!(
        "laws bench: strong unified law, {} points, {threads} threads",
        data.len()
    );

    let cold_opts = FitOptions {
        leave_one_size_out: false,
        ..Default::default()
    };
    let mut best = None;
    let cold = median_ms(5, || best = Some(fit(&law, &data, &cold_opts).unwrap()));
    let best = best.unwrap();
    let warm_opts = FitOptions {
        start: Some(best.values()),
        ..cold_opts.clone()
    };
    let warm = median_ms(20, || {
        fit(&law, &data, &warm_opts).unwrap();
    });
    let boot_opts = FitOptions {
        bootstrap: 1000,
        ..warm_opts.clone()
    };
    let boot = median_ms(1, || {
        fit(&law, &data, &boot_opts).unwrap();
    }) - warm;
    println!(
        "  cold multi-start ({} starts): {cold:.1} ms (target <= 200), {} at the best optimum, objective {:.6}",
        best.starts_total, best.starts_at_best, best.objective
    );
    println!(
        "  warm refit:                   {warm:.2} ms (target <= 5), {} iterations",
        best.iterations
    );
    println!(
        "  1000 bootstrap resamples:     {:.0} ms (target <= 2000)",
        boot
    );

    let dir = tempfile::tempdir().unwrap();
    let csv = dir.path().join("strong.csv");
    let mut text = String::from("N,Qr,Qb,dL\n");
    for (r, y) in data.rows.iter().zip(&data.y) {
        text.push_str(&format!("{},{},{},{}\n", r[0], r[2], r[3], y));
    }
    std::fs::write(&csv, text).unwrap();
    let py = std::env::var("QS_PYTHON").unwrap_or_else(|_| "python3".into());
    let script = concat!(env!("CARGO_MANIFEST_DIR"), "/scripts/bench_laws_scipy.py");
    let start: Vec<String> = best.values().iter().map(|v| v.to_string()).collect();
    let out = Command::new(&py)
        .env("OMP_NUM_THREADS", threads.to_string())
        .env("OPENBLAS_NUM_THREADS", threads.to_string())
        .args([script, csv.to_str().unwrap(), "1e-3", &start.join(",")])
        .output();
    match out {
        Ok(o) if o.status.success() => {
            let v: serde_json::Value = serde_json::from_slice(&o.stdout).unwrap_or_default();
            let (w, c) = (
                v["warm_ms"].as_f64().unwrap_or(f64::NAN),
                v["cold_ms"].as_f64().unwrap_or(f64::NAN),
            );
            println!(
                "  scipy least_squares (trf, huber): warm {w:.1} ms, cold {c:.0} ms ({} starts), cost {:.6}",
                v["starts"], v["cost"].as_f64().unwrap_or(f64::NAN)
            );
            println!(
                "  speed-up over scipy: warm {:.1}x, cold {:.1}x",
                w / warm,
                c / cold
            );
        }
        Ok(o) => println!(
            "  scipy baseline skipped ({py}: {})",
            String::from_utf8_lossy(&o.stderr)
                .trim()
                .lines()
                .last()
                .unwrap_or("")
        ),
        Err(e) => println!("  scipy baseline skipped ({py}: {e})"),
    }
}
