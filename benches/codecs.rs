//! `cargo bench --bench codecs`: fake-quant throughput (GB/s of f32 input) for every preset at
//! Qb = 32 and per-channel, printed beside a memcpy of the same buffer measured in the same run,
//! as a ratio. Uses all cores (rayon), like the library. Target (issue #3): ratio >= 0.5 for
//! mxfp4, mxint8 and int4_asym on a 2-core machine.
//!
//! Each row is measured twice in the same run: with the element loops compiled for the build's
//! baseline (`portable`, x86-64: SSE2) and for the instruction set the library picks at run time
//! (`codecs::isa`, AVX2 where the CPU has it); the ratio to memcpy is the latter's.
//!
//! Set `QS_BENCH_MB` to change the buffer size (default 64 MiB of f32, well beyond the caches)
//! `QS_BENCH_ONLY=mxfp4,nvfp4` to run some presets only and `QS_BENCH_BLOCK=32` (or
//! `channel`) one block size.

// A benchmark aborts on error: that is its report.
#![allow(clippy::expect_used)]

use std::hint::black_box;
use std::time::Instant;

use quantscape::codecs::isa::Isa;
use quantscape::codecs::{fake_quant_into_isa, BlockSize, Format, Method, PRESET_NAMES};
use rayon::prelude::*;

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

fn main() {
    let mb: usize = std::env::var("QS_BENCH_MB")
        .ok()
        .and_then(|s| s.parse().ok())
        .unwrap_or(64);
    let cols = 4096;
    let rows = (mb << 20) / 4 / cols;
    let n = rows * cols;
    let gb = (n * 4) as f64 / 1e9;
    let mut state = 0x9E37_79B9_7F4A_7C15u64;
    let w: Vec<f32> = (0..n)
        .map(|_| {
            state ^= state << 13;
            state ^= state >> 7;
            state ^= state << 17;
            ((state >> 40) as f32 / (1u64 << 24) as f32 - 0.5) * 0.04
        })
        .collect();
    let mut out = vec![0.0f32; n];
    // Baseline: a parallel memcpy of the same buffer (read w, write out), same threads.
    let memcpy = best_secs(5, || {
        out.par_chunks_mut(1 << 16)
            .zip(w.par_chunks(1 << 16))
            .for_each(|(o, i)| o.copy_from_slice(i));
        black_box(&out);
    });
    println!(
        "buffer {:.0} MiB ({rows} x {cols} f32), {} threads; memcpy {:.2} GB/s",
        (n * 4) as f64 / (1 << 20) as f64,
        rayon::current_num_threads(),
        gb / memcpy
    );
    let isa = Isa::detect();
    println!(
        "{:<12} {:>10} {:>10} {:>10} {:>8}",
        "preset",
        "block",
        "portable",
        isa.name(),
        "x memcpy"
    );
    let only = std::env::var("QS_BENCH_ONLY").unwrap_or_default();
    for name in PRESET_NAMES {
        if !only.is_empty() && !only.split(',').any(|o| o == name) {
            continue;
        }
        let Some(p) = Format::preset(name) else {
            continue;
        };
        let mut blocks: Vec<BlockSize> = if p.scale.is_some() {
            vec![BlockSize::Elements(32), BlockSize::PerChannel]
        } else {
            vec![p.block]
        };
        if let Ok(only) = std::env::var("QS_BENCH_BLOCK") {
            blocks.retain(|b| b.id() == only);
        }
        for b in blocks {
            let f = p.with_block(b);
            let mut time = |isa: Isa| {
                best_secs(3, || {
                    fake_quant_into_isa(isa, &w, rows, cols, &f, &Method::Rtn, &mut out)
                        .expect("fake-quant");
                    black_box(&out);
                })
            };
            let portable = time(Isa::Portable);
            let secs = time(isa);
            println!(
                "{:<12} {:>10} {:>10.2} {:>10.2} {:>8.2}",
                name,
                b.id(),
                gb / portable,
                gb / secs,
                memcpy / secs
            );
        }
    }
}
