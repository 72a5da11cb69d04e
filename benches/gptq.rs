//! `cargo bench --bench gptq`: GPTQ seconds per million weights and its ratio to RTN (plain
//! fake-quant of the same layer, same run, same threads), per layer shape and format; then a
//! whole bundled model: sequential calibration (forward passes + H + GPTQ/AWQ) against
//! `quantize_all` with RTN.
//!
//! Layer shapes are SmolLM2-135M's (576², 1536 × 576, 576 × 1536) and one 2048² layer;
//! `QS_BENCH_BIG=4096` adds a 4096² layer (minutes: nalgebra's unblocked Cholesky is O(n³)
//! in one thread). H comes from 4·cols correlated inputs.

// A benchmark aborts on error: that is its report.
#![allow(clippy::expect_used)]

use std::hint::black_box;
use std::path::Path;
use std::time::Instant;

use quantscape::codecs::gptq::inverse_cholesky_upper;
use quantscape::codecs::{fake_quant, gptq, Format, GptqParams, Method};
use quantscape::eval::corpus;
use quantscape::eval::windows::{make_windows, WindowSpec};
use quantscape::model::calibrated::quantize_calibrated;
use quantscape::model::quantized::quantize_all;
use quantscape::model::{Tokenizer, Transformer};

fn secs(mut f: impl FnMut()) -> f64 {
    let t = Instant::now();
    f();
    t.elapsed().as_secs_f64()
}

fn best_secs(reps: usize, mut f: impl FnMut()) -> f64 {
    (0..reps)
        .map(|_| secs(&mut f))
        .fold(f64::INFINITY, f64::min)
}

/// Deterministic pseudo-random values in [−0.5, 0.5).
fn noise(n: usize, seed: u64) -> Vec<f32> {
    let mut s = seed | 1;
    (0..n)
        .map(|_| {
            s ^= s << 13;
            s ^= s >> 7;
            s ^= s << 17;
            (s >> 40) as f32 / (1u64 << 24) as f32 - 0.5
        })
        .collect()
}

/// H = 2XᵀX/n for n = 4·cols inputs with a shared low-rank component (correlated channels).
fn hessian(cols: usize) -> Vec<f64> {
    let n = 4 * cols;
    let z = noise(n * cols, 3);
    let common = noise(n * 8, 5);
    let x: Vec<f32> = (0..n * cols)
        .map(|i| {
            let (r, c) = (i / cols, i % cols);
            z[i] + common[r * 8 + c % 8] * 2.0
        })
        .collect();
    let mut h = vec![0f64; cols * cols];
    for row in x.chunks(cols) {
        for i in 0..cols {
            let xi = f64::from(row[i]);
            for j in 0..cols {
                h[i * cols + j] += xi * f64::from(row[j]);
            }
        }
    }
    h.iter_mut().for_each(|v| *v *= 2.0 / n as f64);
    h
}

fn main() {
    println!(
        "GPTQ per layer ({} threads; RTN = plain fake-quant of the same layer)",
        rayon::current_num_threads()
    );
    println!(
        "{:>11} {:>16} {:>10} {:>12} {:>12} {:>10} {:>10}",
        "layer", "format", "H⁻¹ s", "GPTQ s", "s / Mweight", "RTN s", "GPTQ/RTN"
    );
    let mut shapes = vec![(576, 576), (1536, 576), (576, 1536), (2048, 2048)];
    if std::env::var("QS_BENCH_BIG").ok().as_deref() == Some("4096") {
        shapes.push((4096, 4096));
    }
    for (rows, cols) in shapes {
        let w: Vec<f32> = noise(rows * cols, 7).iter().map(|v| v * 0.08).collect();
        let h = hessian(cols);
        let chol = secs(|| {
            black_box(inverse_cholesky_upper(&h, cols, 0.01).expect("factor"));
        });
        for spec in ["int4_asym,block=128", "mxfp4", "nvfp4"] {
            let f: Format = spec.parse().expect("format");
            let p = GptqParams::default();
            let g = best_secs(2, || {
                black_box(gptq(&w, rows, cols, &h, &f, &p).expect("gptq"));
            });
            let r = best_secs(5, || {
                black_box(fake_quant(&w, rows, cols, &f, &Method::Rtn).expect("rtn"));
            });
            println!(
                "{:>11} {:>16} {:>10.3} {:>12.3} {:>12.3} {:>10.5} {:>9.0}×",
                format!("{rows}x{cols}"),
                spec,
                chol,
                g,
                g / (rows * cols) as f64 * 1e6,
                r,
                g / r
            );
        }
    }

    // Whole model: calibration included.
    let dir = Path::new(env!("CARGO_MANIFEST_DIR")).join("assets/models/qs-llama-s2-1M");
    let model = Transformer::load(&dir).expect("bundled model");
    let tok = Tokenizer::load(&dir).expect("tokenizer");
    let text = corpus::load(&corpus::bundled_dir(), corpus::Split::Calib).expect("calib split");
    let ctx = model.config.max_positions;
    let spec = WindowSpec {
        ctx,
        stride: None,
        n_windows: 128,
        seed: 0,
    };
    let tokens = tok.encode(&text).expect("tokens");
    let ids = make_windows(&tokens, tok.bos, &spec, "calib")
        .expect("windows")
        .ids;
    let f: Format = "int4_asym,block=32".parse().expect("format");
    let n_weights: usize = model.linears.iter().map(|l| l.n_params()).sum();
    let rtn = best_secs(3, || {
        black_box(quantize_all(&model, &f, &Method::Rtn).expect("rtn"));
    });
    println!(
        "\nwhole model {} (N = {n_weights} quantized weights), 128 × {ctx} calibration tokens, {f}",
        dir.display()
    );
    println!("  rtn   {rtn:.4} s");
    for m in ["gptq", "awq"] {
        let method: Method = m.parse().expect("method");
        let t = best_secs(2, || {
            black_box(
                quantize_calibrated(&model, &ids, ctx, &f, &method, &mut |_, _| true)
                    .expect("calibrated"),
            );
        });
        println!(
            "  {m:<5} {t:.4} s  ({:.1} s per million weights, {:.0}× RTN)",
            t / n_weights as f64 * 1e6,
            t / rtn
        );
    }
}
