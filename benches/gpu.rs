//! `cargo bench --bench gpu`: the GPU engine on the adapter it finds, each figure beside a
//! baseline measured in the same run:
//! - fake-quant throughput per preset (GB/s of f32 input) on a resident tensor, as a ratio to a
//!   buffer-to-buffer copy of the same tensor on the same GPU, and to the CPU reference;
//! - fp32 GEMM GFLOP/s (C = A·Bᵀ), and the MX matmul (mxfp4 weights × mxint8 activations,
//!   quantization passes included) as a ratio to that GEMM.
//!
//! Targets on a real GPU (issue #6): codec kernels >= 0.7x copy bandwidth; GEMM >= 0.5x the
//! vendor's fp32 peak. Software adapters (lavapipe) get small sizes; figures there are only a
//! smoke test. `QS_BENCH_MB` sets the codec tensor size, `QS_BENCH_GEMM` the GEMM edge,
//! `QS_BENCH_ONLY=mxfp4,nvfp4` some presets only. Without an adapter it prints why and exits 0.

// A benchmark aborts on error: that is its report.
#![allow(clippy::expect_used)]

use std::time::Instant;

use quantscape::codecs::{fake_quant_into, Format, Method, PRESET_NAMES};
use quantscape::gpu::{gemm_resident, CodecPlan, GpuContext};

fn best_secs(reps: usize, mut f: impl FnMut()) -> f64 {
    f();
    (0..reps)
        .map(|_| {
            let t = Instant::now();
            f();
            t.elapsed().as_secs_f64()
        })
        .fold(f64::INFINITY, f64::min)
}

fn env_usize(name: &str) -> Option<usize> {
    std::env::var(name).ok().and_then(|s| s.parse().ok())
}

fn noise(n: usize, seed: u64, amp: f32) -> Vec<f32> {
    let mut state = seed | 1;
    (0..n)
        .map(|_| {
            state ^= state << 13;
            state ^= state >> 7;
            state ^= state << 17;
            ((state >> 40) as f32 / (1u64 << 24) as f32 - 0.5) * amp
        })
        .collect()
}

fn main() {
    let ctx = match GpuContext::try_new() {
        Ok(c) => c,
        Err(why) => {
            println!("no GPU benchmark: {why}");
            return;
        }
    };
    let soft = ctx.is_software();
    println!(
        "adapter: {}{}",
        ctx.describe(),
        if soft {
            " (software: smoke-test sizes)"
        } else {
            ""
        }
    );
    let mb = env_usize("QS_BENCH_MB").unwrap_or(if soft { 4 } else { 256 });
    let cols = 4096;
    let rows = ((mb << 20) / 4 / cols).max(1);
    let n = rows * cols;
    let gb = (n * 4) as f64 / 1e9;
    let w = noise(n, 0x9E37_79B9_7F4A_7C15, 0.04);
    let t = ctx.upload_tensor(&w, rows, cols).expect("upload");
    let reps = if soft { 2 } else { 10 };
    let copy = best_secs(reps, || {
        let _c = ctx.copy_tensor(&t);
        ctx.wait().expect("wait");
    });
    println!(
        "tensor {rows} x {cols} f32 ({:.0} MiB); GPU copy {:.1} GB/s",
        (n * 4) as f64 / (1 << 20) as f64,
        gb / copy
    );
    let only: Option<Vec<String>> = std::env::var("QS_BENCH_ONLY")
        .ok()
        .map(|s| s.split(',').map(str::to_string).collect());
    println!(
        "{:<12} {:>10} {:>10} {:>10} {:>10}",
        "preset", "GPU GB/s", "vs copy", "CPU GB/s", "GPU/CPU"
    );
    let mut out = vec![0.0f32; n];
    for name in PRESET_NAMES {
        if only.as_ref().is_some_and(|o| !o.iter().any(|x| x == name)) {
            continue;
        }
        let f = Format::parse(name).expect("preset");
        let plan = CodecPlan::new(&ctx, &w, cols, &f).expect("plan");
        let secs = best_secs(reps, || {
            let _q = plan.fake_quant(&ctx, &t).expect("fake-quant");
            ctx.wait().expect("wait");
        });
        let cpu = best_secs(1, || {
            fake_quant_into(&w, rows, cols, &f, &Method::Rtn, &mut out).expect("cpu");
        });
        println!(
            "{name:<12} {:>10.2} {:>9.2}x {:>10.2} {:>9.2}x",
            gb / secs,
            copy / secs,
            gb / cpu,
            cpu / secs
        );
    }
    let edge = env_usize("QS_BENCH_GEMM").unwrap_or(if soft { 256 } else { 4096 });
    let a = noise(edge * edge, 7, 2.0);
    let b = noise(edge * edge, 11, 2.0);
    let ta = ctx.upload_tensor(&a, edge, edge).expect("upload");
    let tb = ctx.upload_tensor(&b, edge, edge).expect("upload");
    let flops = 2.0 * (edge as f64).powi(3);
    let gemm = best_secs(reps, || {
        let _c = gemm_resident(&ctx, &ta, &tb).expect("gemm");
        ctx.wait().expect("wait");
    });
    let wf = Format::parse("mxfp4").expect("preset");
    let af = Format::parse("mxint8").expect("preset");
    let plan_a = CodecPlan::new(&ctx, &a, edge, &af).expect("plan");
    let plan_b = CodecPlan::new(&ctx, &b, edge, &wf).expect("plan");
    let mx = best_secs(reps, || {
        let qa = plan_a.fake_quant(&ctx, &ta).expect("quantize A");
        let qb = plan_b.fake_quant(&ctx, &tb).expect("quantize B");
        let _c = gemm_resident(&ctx, &qa, &qb).expect("gemm");
        ctx.wait().expect("wait");
    });
    println!(
        "gemm {edge}^3: fp32 {:.1} GFLOP/s; MX (mxint8 x mxfp4, quantization included) {:.1} \
         GFLOP/s = {:.2}x fp32",
        flops / gemm / 1e9,
        flops / mx / 1e9,
        gemm / mx
    );
    // Eval: logits of a bundled model, resident GPU forward vs the candle CPU path.
    let dir = std::path::Path::new(env!("CARGO_MANIFEST_DIR")).join("assets/models/qs-llama-s4-2M");
    let model = quantscape::model::Transformer::load(&dir).expect("bundled model");
    let (batch, t) = (8, model.config.max_positions.min(128));
    let v = model.config.vocab_size as u32;
    let ids: Vec<u32> = (0..batch * t).map(|i| (i as u32 * 7919 + 13) % v).collect();
    let hooks = quantscape::model::NoHooks;
    let gm = quantscape::gpu::GpuModel::new(&ctx, &model, &hooks).expect("upload");
    let gpu_secs = best_secs(reps, || {
        gm.logits(&ids, batch).expect("gpu forward");
    });
    let cpu_secs = best_secs(reps, || {
        model.forward(&ids, batch, &hooks).expect("cpu forward");
    });
    let tokens = (batch * t) as f64;
    println!(
        "eval forward (qs-llama-s4-2M, {batch} x {t} tokens, logits read back): GPU {:.0} tokens/s, \
         CPU {:.0} tokens/s = {:.2}x",
        tokens / gpu_secs,
        tokens / cpu_secs,
        cpu_secs / gpu_secs
    );
}
