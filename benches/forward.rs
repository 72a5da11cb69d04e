//! `cargo bench --bench forward`: tokens/s of NLL evaluation (forward pass + log-softmax + the
//! base record) on a realistic Llama shape — d_model 512, 8 layers, 8 heads, MLP 1408,
//! vocab 32000, ctx 512 — with random weights written to a temporary checkpoint, on
//! `QS_THREADS` threads (default 2). When `python3` can import torch and transformers, the same
//! checkpoint and windows run through transformers (fp32, `torch.set_num_threads` equal) in the
//! same run and the ratio ours/PyTorch is printed (target ≥ 1.0); otherwise that line says it
//! was skipped. Also printed: peak resident memory against the fp32 weights.
//!
//! `QS_BENCH_WINDOWS` (default 8) sets the number of 512-token windows.

#![allow(clippy::expect_used, clippy::unwrap_used)]

use std::path::Path;
use std::process::Command;
use std::time::Instant;

use quantscape::eval::windows::Windows;
use quantscape::eval::Evaluator;
use quantscape::model::checkpoint::{f32_to_bytes, write_safetensors, DType, OutTensor};
use quantscape::model::{NoHooks, Transformer};

const D: usize = 512;
const LAYERS: usize = 8;
const HEADS: usize = 8;
const FF: usize = 1408;
const VOCAB: usize = 32000;
const CTX: usize = 512;

fn write_model(dir: &Path) -> usize {
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
    add(
        "model.embed_tokens.weight".into(),
        vec![VOCAB, D],
        rand(VOCAB * D, 0.02),
    );
    add(
        "lm_head.weight".into(),
        vec![VOCAB, D],
        rand(VOCAB * D, 0.02),
    );
    add("model.norm.weight".into(), vec![D], vec![1.0; D]);
    for i in 0..LAYERS {
        let p = format!("model.layers.{i}");
        for n in ["input_layernorm", "post_attention_layernorm"] {
            add(format!("{p}.{n}.weight"), vec![D], vec![1.0; D]);
        }
        for n in ["q_proj", "k_proj", "v_proj", "o_proj"] {
            add(
                format!("{p}.self_attn.{n}.weight"),
                vec![D, D],
                rand(D * D, 0.04),
            );
        }
        add(
            format!("{p}.mlp.gate_proj.weight"),
            vec![FF, D],
            rand(FF * D, 0.04),
        );
        add(
            format!("{p}.mlp.up_proj.weight"),
            vec![FF, D],
            rand(FF * D, 0.04),
        );
        add(
            format!("{p}.mlp.down_proj.weight"),
            vec![D, FF],
            rand(FF * D, 0.03),
        );
    }
    let bytes: usize = ts.iter().map(|t| t.data.len()).sum();
    write_safetensors(&dir.join("model.safetensors"), &ts, None).unwrap();
    let cfg = serde_json::json!({
        "architectures": ["LlamaForCausalLM"], "model_type": "llama", "hidden_size": D,
        "intermediate_size": FF, "num_hidden_layers": LAYERS, "num_attention_heads": HEADS,
        "num_key_value_heads": HEADS, "vocab_size": VOCAB, "max_position_embeddings": CTX,
        "rms_norm_eps": 1e-5, "rope_theta": 10000.0, "tie_word_embeddings": false,
        "hidden_act": "silu", "torch_dtype": "float32", "bos_token_id": 1, "eos_token_id": 2,
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

fn main() {
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
    let dir = tempfile::tempdir().unwrap();
    let weight_bytes = write_model(dir.path());
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
            ((s >> 33) % VOCAB as u64) as u32
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
    // Same batch for both sides: 4 windows (B·T·V = 65 Mi logits).
    let batch = 4usize.min(n);
    ev.max_batch_logits = batch * CTX * VOCAB;
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
            assert_eq!(h.dims3().unwrap(), (b, CTX, D));
        }
        blocks_secs = blocks_secs.min(t.elapsed().as_secs_f64());
    }
    println!(
        "forward+NLL, Llama d={D} L={LAYERS} V={VOCAB} ctx={CTX}, {n} windows, batch {batch}, {threads} threads"
    );
    println!("  quantscape (candle CPU fp32): {ours:.0} tokens/s");
    println!(
        "    blocks {:.0} % of the time, LM head + log-softmax + top-k {:.0} %",
        100.0 * blocks_secs / best,
        100.0 * (1.0 - blocks_secs / best)
    );
    match (status_mib("VmHWM:"), loaded_mib, load_peak_mib) {
        (Some(peak), Some(loaded), Some(load_peak)) if hwm_reset => {
            let w = weight_bytes as f64 / 1048576.0;
            // The largest activation of one batch: the attention scores B·H·T², or the LM
            // head's chunk of rows × V, whichever is larger.
            let act = ((batch * HEADS * CTX * CTX).max(quantscape::eval::HEAD_CHUNK_ROWS * VOCAB)
                * 4) as f64
                / 1048576.0;
            let rest = peak - loaded;
            println!(
                "  RSS: fp32 weights {w:.0} MiB; loaded model {loaded:.0} MiB (peak while loading \
                 {load_peak:.0}: the checkpoint's pages are mapped then); evaluation peak \
                 {peak:.0} MiB = loaded + {rest:.0}; target <= 1.5 x the largest activation \
                 ({act:.0} MiB) = {:.0} MiB: {}",
                1.5 * act,
                if rest <= 1.5 * act { "met" } else { "MISSED" }
            );
        }
        _ => println!("  peak RSS: /proc/self/status or clear_refs unavailable"),
    }
    let py = std::env::var("QS_PYTHON").unwrap_or_else(|_| "python3".into());
    let script = TORCH.replace("BATCH", &batch.to_string());
    let out = Command::new(&py)
        .args([
            "-c",
            &script,
            dir.path().to_str().unwrap(),
            &n.to_string(),
            &CTX.to_string(),
            &threads.to_string(),
        ])
        .output();
    match out {
        Ok(o) if o.status.success() => {
            let torch: f64 = String::from_utf8_lossy(&o.stdout)
                .trim()
                .lines()
                .last()
                .unwrap_or("0")
                .parse()
                .unwrap_or(0.0);
            println!("  PyTorch transformers fp32:    {torch:.0} tokens/s");
            println!(
                "  ratio quantscape/PyTorch: {:.2}x (target >= 1.0)",
                ours / torch
            );
        }
        Ok(o) => println!(
            "  PyTorch baseline skipped ({py} cannot run torch+transformers: {})",
            String::from_utf8_lossy(&o.stderr)
                .trim()
                .lines()
                .last()
                .unwrap_or("")
        ),
        Err(e) => println!("  PyTorch baseline skipped ({py}: {e})"),
    }
}
