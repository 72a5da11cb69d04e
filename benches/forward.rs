//! `cargo bench --bench forward`: tokens/s of NLL evaluation (forward pass, the LM head fused
//! with log-softmax, and the base record: NLL, argmax, top-64) with random weights written to a
//! temporary fp32 checkpoint, on `QS_THREADS` threads (default 2), for two shapes:
//!
//! - `bench`: Llama, d_model 512, 8 layers, 8 heads, MLP 1408, vocab 32000, untied head;
//! - `smollm2`: SmolLM2-135M's shape — d 576, 30 layers, 9 query / 3 key-value heads (GQA),
//!   MLP 1536, vocab 49152, tied embeddings, rope θ 100000.
//!
//! Both at ctx 512 in batches of 4 windows. When `python3` (or `QS_PYTHON`) imports torch and
//! transformers, the same checkpoint and windows run through transformers (fp32, equal
//! `torch.set_num_threads`, log-softmax + target gather) in the same run and the ratio is
//! printed (target ≥ 1.0). Each side's GFLOP/s is printed as a fraction of the machine's
//! fp32 sgemm peak, measured in the same run (2048³: the `gemm` crate through candle, and
//! torch's when importable; the larger is the peak). Also printed: where our time goes (blocks
//! vs LM head + metrics) and the evaluation's peak RSS above the loaded model.
//!
//! `QS_BENCH_WINDOWS` (default 8) sets the number of 512-token windows; `QS_BENCH_SHAPE`
//! (`bench`, `smollm2`, default both) picks a shape.

#![allow(clippy::expect_used, clippy::unwrap_used)]

use std::path::Path;
use std::process::Command;
use std::time::Instant;

use quantscape::eval::windows::Windows;
use quantscape::eval::Evaluator;
use quantscape::model::checkpoint::{f32_to_bytes, write_safetensors, DType, OutTensor};
use quantscape::model::{NoHooks, Transformer};

const CTX: usize = 512;

/// A Llama-family shape.
struct Shape {
    name: &'static str,
    d: usize,
    layers: usize,
    heads: usize,
    kv_heads: usize,
    ff: usize,
    vocab: usize,
    tied: bool,
    rope_theta: f64,
}

const SHAPES: [Shape; 2] = [
    Shape {
        name: "bench",
        d: 512,
        layers: 8,
        heads: 8,
        kv_heads: 8,
        ff: 1408,
        vocab: 32000,
        tied: false,
        rope_theta: 10000.0,
    },
    Shape {
        name: "smollm2",
        d: 576,
        layers: 30,
        heads: 9,
        kv_heads: 3,
        ff: 1536,
        vocab: 49152,
        tied: true,
        rope_theta: 100000.0,
    },
];

impl Shape {
    /// Multiply–adds per scored token: the linear layers, the LM head, and causal attention
    /// (Q·Kᵀ and P·V over (ctx + 1)/2 keys on average).
    fn macs_per_token(&self) -> f64 {
        let hd = self.d / self.heads;
        let kv = self.kv_heads * hd;
        let linear = self.d * (self.d + 2 * kv) + self.d * self.d + 3 * self.d * self.ff;
        let attn = 2.0 * (CTX as f64 + 1.0) / 2.0 * self.d as f64;
        self.layers as f64 * (linear as f64 + attn) + (self.vocab * self.d) as f64
    }
}

fn write_model(dir: &Path, sh: &Shape) -> usize {
    let mut state = 0x2545_F491_4F6C_DD1Du64;
    let mut rand = |n: usize, std: f32| -> Vec<f32> {
        (0..n)
            .map(|_| {
                state ^= state << 13;
                state ^= state >> 7;
                state ^= state << 17;
                ((state >> 40) as f32 / (1u64 << 24) as f32 - 0.5) * 3.46 * std
            })
            .collect()
    };
    let mut ts = Vec::new();
    let mut add = |name: String, shape: Vec<usize>, v: Vec<f32>| {
        ts.push(OutTensor {
            name,
            dtype: DType::F32,
            shape,
            data: f32_to_bytes(&v, DType::F32).unwrap(),
        });
    };
    let (d, ff, v) = (sh.d, sh.ff, sh.vocab);
    let kv = sh.kv_heads * (d / sh.heads);
    add(
        "model.embed_tokens.weight".into(),
        vec![v, d],
        rand(v * d, 0.02),
    );
    if !sh.tied {
        add("lm_head.weight".into(), vec![v, d], rand(v * d, 0.02));
    }
    add("model.norm.weight".into(), vec![d], vec![1.0; d]);
    for i in 0..sh.layers {
        let p = format!("model.layers.{i}");
        for n in ["input_layernorm", "post_attention_layernorm"] {
            add(format!("{p}.{n}.weight"), vec![d], vec![1.0; d]);
        }
        for (n, rows) in [("q_proj", d), ("k_proj", kv), ("v_proj", kv), ("o_proj", d)] {
            add(
                format!("{p}.self_attn.{n}.weight"),
                vec![rows, d],
                rand(rows * d, 0.04),
            );
        }
        add(
            format!("{p}.mlp.gate_proj.weight"),
            vec![ff, d],
            rand(ff * d, 0.04),
        );
        add(
            format!("{p}.mlp.up_proj.weight"),
            vec![ff, d],
            rand(ff * d, 0.04),
        );
        add(
            format!("{p}.mlp.down_proj.weight"),
            vec![d, ff],
            rand(ff * d, 0.03),
        );
    }
    let bytes: usize = ts.iter().map(|t| t.data.len()).sum();
    write_safetensors(&dir.join("model.safetensors"), &ts, None).unwrap();
    let cfg = serde_json::json!({
        "architectures": ["LlamaForCausalLM"], "model_type": "llama", "hidden_size": d,
        "intermediate_size": ff, "num_hidden_layers": sh.layers,
        "num_attention_heads": sh.heads, "num_key_value_heads": sh.kv_heads, "vocab_size": v,
        "max_position_embeddings": CTX, "rms_norm_eps": 1e-5, "rope_theta": sh.rope_theta,
        "tie_word_embeddings": sh.tied, "hidden_act": "silu", "torch_dtype": "float32",
        "bos_token_id": 1, "eos_token_id": 2,
    });
    std::fs::write(
        dir.join("config.json"),
        serde_json::to_string_pretty(&cfg).unwrap(),
    )
    .unwrap();
    bytes
}

/// A `/proc/self/status` field in MiB (`VmHWM:` is the peak resident set, `VmRSS:` the
/// current one).
fn status_mib(field: &str) -> Option<f64> {
    let s = std::fs::read_to_string("/proc/self/status").ok()?;
    let line = s.lines().find(|l| l.starts_with(field))?;
    let kb: f64 = line.split_whitespace().nth(1)?.parse().ok()?;
    Some(kb / 1024.0)
}

const TORCH: &str = r#"
import sys, time, json
import torch
from transformers import AutoModelForCausalLM
d, n, ctx, threads = sys.argv[1], int(sys.argv[2]), int(sys.argv[3]), int(sys.argv[4])
torch.set_num_threads(threads)
if d == "sgemm":
    a, b = torch.randn(2048, 2048), torch.randn(2048, 2048)
    a @ b
    best = min((lambda t0: (a @ b, time.perf_counter() - t0)[1])(time.perf_counter()) for _ in range(5))
    print(2 * 2048 ** 3 / best / 1e9)
    sys.exit(0)
ids = torch.tensor(json.load(open(d + "/ids.json")), dtype=torch.long).reshape(n, ctx)
m = AutoModelForCausalLM.from_pretrained(d, torch_dtype=torch.float32).eval()
def run():
    tot = 0.0
    with torch.inference_mode():
        for w in range(0, n, BATCH):
            x = ids[w:w + BATCH]
            lp = torch.log_softmax(m(input_ids=x).logits[:, :-1].float(), -1)
            tot += -lp.gather(-1, x[:, 1:, None]).sum().item()
    return tot
run()
best = min((lambda t0: (run(), time.perf_counter() - t0)[1])(time.perf_counter()) for _ in range(3))
print(n * (ctx - 1) / best)
"#;

/// The binary's allocator (src/main.rs), so that the figures are the CLI's.
#[global_allocator]
static ALLOCATOR: mimalloc::MiMalloc = mimalloc::MiMalloc;

/// Runs the PyTorch script with `args`; its last stdout line as a number, or why not.
fn torch_run(py: &str, script: &str, args: &[String]) -> Result<f64, String> {
    let out = Command::new(py)
        .arg("-c")
        .arg(script)
        .args(args)
        .output()
        .map_err(|e| format!("{py}: {e}"))?;
    if !out.status.success() {
        return Err(format!(
            "{py} cannot run torch+transformers: {}",
            String::from_utf8_lossy(&out.stderr)
                .trim()
                .lines()
                .last()
                .unwrap_or("")
        ));
    }
    String::from_utf8_lossy(&out.stdout)
        .trim()
        .lines()
        .last()
        .unwrap_or("")
        .parse()
        .map_err(|e| format!("{py} printed no number: {e}"))
}

/// fp32 sgemm GFLOP/s of a 2048³ product through candle (the `gemm` crate), best of 5.
fn candle_sgemm_gflops() -> f64 {
    let n = 2048;
    let a = candle_core::Tensor::ones((n, n), candle_core::DType::F32, &candle_core::Device::Cpu)
        .unwrap();
    let _ = a.matmul(&a).unwrap();
    let mut best = f64::INFINITY;
    for _ in 0..5 {
        let t = Instant::now();
        std::hint::black_box(a.matmul(&a).unwrap());
        best = best.min(t.elapsed().as_secs_f64());
    }
    2.0 * (n as f64).powi(3) / best / 1e9
}

fn main() {
    quantscape::alloc::keep_freed_memory();
    let threads: usize = std::env::var("QS_THREADS")
        .ok()
        .and_then(|s| s.parse().ok())
        .unwrap_or(2);
    // candle's matmuls and our rayon loops both read this before their pools start.
    std::env::set_var("RAYON_NUM_THREADS", threads.to_string());
    let n: usize = std::env::var("QS_BENCH_WINDOWS")
        .ok()
        .and_then(|s| s.parse().ok())
        .unwrap_or(8);
    let only = std::env::var("QS_BENCH_SHAPE").ok();
    let py = std::env::var("QS_PYTHON").unwrap_or_else(|_| "python3".into());
    let ours_peak = candle_sgemm_gflops();
    let sgemm_args = [
        "sgemm".to_string(),
        "0".into(),
        "0".into(),
        threads.to_string(),
    ];
    let torch_peak = torch_run(&py, TORCH, &sgemm_args).ok();
    let peak = torch_peak.unwrap_or(0.0).max(ours_peak);
    println!(
        "fp32 sgemm 2048^3 on {threads} threads: gemm crate (candle) {ours_peak:.0} GFLOP/s{}; peak = {peak:.0}",
        torch_peak.map_or(String::new(), |t| format!(", PyTorch {t:.0} GFLOP/s"))
    );
    for sh in SHAPES
        .iter()
        .filter(|sh| only.as_deref().is_none_or(|o| o == sh.name))
    {
        run_shape(sh, n, threads, &py, peak);
    }
}

fn run_shape(sh: &Shape, n: usize, threads: usize, py: &str, peak: f64) {
    let dir = tempfile::tempdir().unwrap();
    let weight_bytes = write_model(dir.path(), sh);
    let model = Transformer::load(dir.path()).unwrap();
    let loaded_mib = status_mib("VmRSS:");
    let load_peak_mib = status_mib("VmHWM:");
    // Restart the peak-RSS count from here (Linux: "5" resets VmHWM), so the peak below is the
    // evaluation's.
    let hwm_reset = std::fs::write("/proc/self/clear_refs", "5").is_ok();
    let mut s = 7u64;
    let ids: Vec<u32> = (0..n * CTX)
        .map(|_| {
            s = s
                .wrapping_mul(6364136223846793005)
                .wrapping_add(1442695040888963407);
            ((s >> 33) % sh.vocab as u64) as u32
        })
        .collect();
    std::fs::write(
        dir.path().join("ids.json"),
        serde_json::to_string(&ids).unwrap(),
    )
    .unwrap();
    let windows = Windows {
        ctx: CTX,
        ids,
        starts: (0..n).collect(),
        n_candidates: n,
    };
    let mut ev = Evaluator::new(&model, &windows).unwrap();
    // Same batch for both sides: 4 windows.
    let batch = 4usize.min(n);
    ev.max_batch_tokens = batch * CTX;
    let tokens = (n * (CTX - 1)) as f64;
    let mut best = f64::INFINITY;
    for _ in 0..3 {
        let t = Instant::now();
        let base = ev.base(64, &mut |_, _| true).unwrap();
        best = best.min(t.elapsed().as_secs_f64());
        assert_eq!(base.n_tokens(), n * (CTX - 1));
    }
    let ours = tokens / best;
    // Where the time goes: the blocks alone (hidden states), the rest is the LM head + metrics.
    let mut blocks_secs = f64::INFINITY;
    for _ in 0..2 {
        let t = Instant::now();
        for w in (0..n).step_by(batch) {
            let b = batch.min(n - w);
            let h = model
                .hidden_states(&windows.ids[w * CTX..(w + b) * CTX], b, &NoHooks)
                .unwrap();
            assert_eq!(h.dims3().unwrap(), (b, CTX, sh.d));
        }
        blocks_secs = blocks_secs.min(t.elapsed().as_secs_f64());
    }
    let gflop_per_token = 2.0 * sh.macs_per_token() / 1e9;
    println!(
        "forward+NLL [{}], Llama d={} L={} heads {}/{} V={} ctx={CTX}, {n} windows, batch {batch}, {threads} threads ({:.3} GFLOP/token)",
        sh.name, sh.d, sh.layers, sh.heads, sh.kv_heads, sh.vocab, gflop_per_token
    );
    println!(
        "  quantscape (candle CPU fp32): {ours:.0} tokens/s = {:.0} GFLOP/s, {:.0} % of sgemm peak",
        ours * gflop_per_token,
        100.0 * ours * gflop_per_token / peak
    );
    println!(
        "    blocks {:.0} % of the time, LM head + log-softmax + top-k {:.0} %",
        100.0 * blocks_secs / best,
        100.0 * (1.0 - blocks_secs / best)
    );
    match (status_mib("VmHWM:"), loaded_mib, load_peak_mib) {
        (Some(peak_rss), Some(loaded), Some(load_peak)) if hwm_reset => {
            let w = weight_bytes as f64 / 1048576.0;
            // The largest activation of one batch: the attention scores B·H·T², or the LM
            // head's chunk of rows × V, whichever is larger.
            let act = ((batch * sh.heads * CTX * CTX)
                .max(quantscape::eval::HEAD_CHUNK_ROWS * sh.vocab)
                * 4) as f64
                / 1048576.0;
            let rest = peak_rss - loaded;
            println!(
                "  RSS: fp32 weights {w:.0} MiB; loaded model {loaded:.0} MiB (peak while loading \
                 {load_peak:.0}: the checkpoint's pages are mapped then); evaluation peak \
                 {peak_rss:.0} MiB = loaded + {rest:.0}; target <= 1.5 x the largest activation \
                 ({act:.0} MiB) = {:.0} MiB: {}",
                1.5 * act,
                if rest <= 1.5 * act { "met" } else { "MISSED" }
            );
        }
        _ => println!("  peak RSS: /proc/self/status or clear_refs unavailable"),
    }
    let script = TORCH.replace("BATCH", &batch.to_string());
    let args = [
        dir.path().to_str().unwrap().to_string(),
        n.to_string(),
        CTX.to_string(),
        threads.to_string(),
    ];
    match torch_run(py, &script, &args) {
        Ok(torch) => {
            println!(
                "  PyTorch transformers fp32:    {torch:.0} tokens/s = {:.0} GFLOP/s, {:.0} % of sgemm peak",
                torch * gflop_per_token,
                100.0 * torch * gflop_per_token / peak
            );
            println!(
                "  ratio quantscape/PyTorch: {:.2}x (target >= 1.0)",
                ours / torch
            );
        }
        Err(why) => println!("  PyTorch baseline skipped ({why})"),
    }
}
