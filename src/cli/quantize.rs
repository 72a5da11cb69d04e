//! `quantscape quantize`: fake-quantize every quantizable 2-D weight of a checkpoint and write a
//! new checkpoint folder in the input's dtype, with a per-tensor error table.
//!
//! The input is never modified; the output is built in a temporary folder and renamed into place
//! only when everything succeeded (nothing partial is left behind on error).

use std::collections::{BTreeMap, HashMap};
use std::fmt::Write as _;
use std::path::PathBuf;
use std::process::ExitCode;

use anyhow::{bail, Context as _};
use indicatif::{ProgressBar, ProgressStyle};
use quantscape::codecs::{self, ErrorStats, Format, Method};

use super::engine::Engine;
use quantscape::model::checkpoint::{
    bytes_to_f32, copy_side_files, f32_to_bytes, write_safetensors, Checkpoint, OutDir, OutTensor,
};
use quantscape::model::sites::{quantizable, Layout};
use quantscape::model::{Tokenizer, Transformer};

/// Arguments of `quantize`.
#[derive(clap::Args, Debug)]
pub struct QuantizeArgs {
    /// Checkpoint folder (config.json, *.safetensors or a sharded index, tokenizer.json), `org/name`
    /// in the Hugging Face cache, or a llama `.gguf` file (converted once into the cache).
    #[arg(long)]
    pub model: PathBuf,
    /// Format: a preset (`quantscape formats`) or a spelling like `elem=e3m2,scale=e8m0,block=32`.
    #[arg(long)]
    pub format: String,
    /// Block size, method, rounding.
    #[command(flatten)]
    pub codec: super::CodecArgs,
    /// Calibration (gptq, awq).
    #[command(flatten)]
    pub calib: super::calib::CalibArgs,
    /// Output folder (must not exist).
    #[arg(long)]
    pub out: PathBuf,
    /// Also write the per-tensor table as CSV.
    #[arg(long)]
    pub csv: Option<PathBuf>,
    /// Where RTN runs: `cpu` (the reference), `gpu` (wgpu; an error without an adapter) or
    /// `auto` (the GPU when one works, else the CPU with one warning). Results are
    /// bit-identical; calibrated methods (gptq, awq, hqq) always run on the CPU.
    #[arg(long, default_value = "cpu", value_parser = ["cpu", "gpu", "auto"])]
    pub device: String,
    /// Hide the progress bar.
    #[arg(long)]
    pub quiet: bool,
}

/// Fake-quantizes one weight on `engine` (RTN on the GPU; the CPU reference otherwise).
fn engine_fake_quant(
    engine: &Engine,
    w: &[f32],
    (rows, cols): (usize, usize),
    format: &Format,
    method: &Method,
) -> quantscape::Result<Vec<f32>> {
    match engine {
        Engine::Cpu => codecs::fake_quant(w, rows, cols, format, method),
        #[cfg(feature = "gpu")]
        Engine::Gpu(ctx) => quantscape::gpu::fake_quant(ctx, w, rows, cols, format),
    }
}

/// One row of the report.
struct Row {
    name: String,
    shape: Vec<usize>,
    stats: ErrorStats,
    bits_per_weight: f64,
}

/// Runs the command.
pub fn run(a: &QuantizeArgs) -> anyhow::Result<ExitCode> {
    let format = super::resolve_format(
        &a.format,
        a.codec.block.as_deref(),
        a.codec.rounding.as_deref(),
    )?;
    let method: Method = a.codec.method.parse()?;
    if a.out.exists() {
        bail!(
            "output folder already exists (choose a new one) ({})",
            a.out.display()
        );
    }
    let cpu_only = (!matches!(method, Method::Rtn))
        .then(|| format!("the GPU runs RTN only and {method} runs on the CPU"));
    let engine = Engine::open(&a.device, cpu_only, "quantizing")?;
    if let Some(csv) = &a.csv {
        if csv == &a.out || csv.starts_with(&a.out) {
            bail!(
                "--csv must lie outside the output folder ({})",
                csv.display()
            );
        }
    }
    let dir = quantscape::model::hub::resolve(&a.model.to_string_lossy())?;
    // The input must load as `info` and `eval` load it (config within range, every tensor
    // present, float and finite) before anything is written: exit 0 means the output loads.
    Transformer::validate_folder(&dir)?;
    let ckpt = Checkpoint::open(&dir)?;
    let model_type = ckpt.model_type();
    // Calibrated methods quantize through the forward pass: weights by checkpoint name, [out, in].
    let mut calibrated: HashMap<String, (Vec<f32>, ErrorStats)> = HashMap::new();
    if method.needs_calibration() {
        let model = Transformer::load(&dir)?;
        let tok = Tokenizer::load(&dir)?;
        let (o, stats, _) =
            super::calib::quantize_model(&model, &tok, &format, &method, &a.calib, None, a.quiet)?;
        for ((site, w), st) in model.linears.iter().zip(o.weights).zip(stats) {
            if let Some(w) = w {
                calibrated.insert(site.name.clone(), (w.flatten_all()?.to_vec1::<f32>()?, st));
            }
        }
    }
    let out = OutDir::create(&a.out)?;
    let n_quant = ckpt
        .tensors
        .iter()
        .filter(|(n, e)| quantizable(&model_type, n, &e.shape).is_some())
        .count();
    if n_quant == 0 {
        bail!(
            "no quantizable 2-D weights inside transformer blocks ({})",
            dir.display()
        );
    }
    let bar = if a.quiet {
        ProgressBar::hidden()
    } else {
        ProgressBar::new(n_quant as u64)
    };
    bar.set_style(
        ProgressStyle::with_template("{spinner} [{bar:30}] {pos}/{len} {msg} ({elapsed})")
            .unwrap_or_else(|_| ProgressStyle::default_bar()),
    );
    let mut rows = Vec::new();
    for (i, path) in ckpt.files.iter().enumerate() {
        let mut outs = Vec::new();
        for name in ckpt.tensors_in_file(i) {
            let entry = &ckpt.tensors[name];
            let layout = quantizable(&model_type, name, &entry.shape);
            let Some(layout) = layout else {
                outs.push(OutTensor {
                    name: name.to_string(),
                    dtype: entry.dtype,
                    shape: entry.shape.clone(),
                    data: ckpt.raw_bytes(name)?.to_vec(),
                });
                continue;
            };
            if !entry.dtype.is_float() {
                bail!(
                    "tensor `{name}` has dtype {} and cannot be quantized ({})",
                    entry.dtype.name(),
                    path.display()
                );
            }
            bar.set_message(name.to_string());
            let raw = bytes_to_f32(ckpt.raw_bytes(name)?, entry.dtype)
                .with_context(|| format!("tensor `{name}` ({})", path.display()))?;
            let (r, c) = (entry.shape[0], entry.shape[1]);
            // Blocks run along K: transpose GPT-2 Conv1D weights ([in, out]) first.
            let (w, rows_k, cols_k) = match layout {
                Layout::OutIn => (raw.clone(), r, c),
                Layout::InOut => (transpose(&raw, r, c), c, r),
            };
            let (q, stats) = match calibrated.remove(name) {
                Some(done) => done,
                None if method.needs_calibration() => bail!(
                    "`{name}` is not a linear layer of the loaded model, so {method} cannot \
                     calibrate it ({})",
                    path.display()
                ),
                None => {
                    let q = engine_fake_quant(&engine, &w, (rows_k, cols_k), &format, &method)
                        .with_context(|| format!("quantizing `{name}`"))?;
                    let stats = ErrorStats::compute(&w, &q);
                    (q, stats)
                }
            };
            let q = match layout {
                Layout::OutIn => q,
                Layout::InOut => transpose(&q, rows_k, cols_k),
            };
            rows.push(Row {
                name: name.to_string(),
                shape: entry.shape.clone(),
                stats,
                bits_per_weight: format.bits_per_weight(rows_k, cols_k),
            });
            outs.push(OutTensor {
                name: name.to_string(),
                dtype: entry.dtype,
                shape: entry.shape.clone(),
                data: f32_to_bytes(&q, entry.dtype).context("output dtype")?,
            });
            bar.inc(1);
        }
        let file_name = path
            .file_name()
            .context("checkpoint file without a name")?
            .to_string_lossy()
            .to_string();
        let mut meta = BTreeMap::new();
        meta.insert("format".to_string(), "pt".to_string());
        meta.insert("quantscape_format".to_string(), format.to_string());
        meta.insert("quantscape_method".to_string(), method.spelling());
        write_safetensors(&out.join(&file_name), &outs, Some(meta))?;
    }
    bar.finish_and_clear();
    copy_side_files(&ckpt.dir, &out)?;
    let table = report(&rows, &format, &method);
    let csv_created = a.csv.as_deref().map(super::Created::file);
    if let Some(csv) = &a.csv {
        quantscape::io::write_atomic(csv, csv_text(&rows).as_bytes())
            .with_context(|| format!("writing CSV ({})", csv.display()))?;
    }
    let dest = out.commit()?;
    if let Some(c) = csv_created {
        c.keep();
    }
    print!("{table}");
    outln!(
        "wrote {} ({} quantized tensors; embeddings, norms, biases and LM head kept in the input dtype)",
        dest.display(),
        rows.len()
    );
    Ok(ExitCode::SUCCESS)
}

fn transpose(w: &[f32], rows: usize, cols: usize) -> Vec<f32> {
    let mut t = vec![0.0; w.len()];
    for r in 0..rows {
        for c in 0..cols {
            t[c * rows + r] = w[r * cols + c];
        }
    }
    t
}

fn report(rows: &[Row], format: &Format, method: &Method) -> String {
    let mut s = String::new();
    let _ = writeln!(s, "format {format}  method {}", method.spelling());
    let _ = writeln!(
        s,
        "{:<48} {:>14} {:>12} {:>9} {:>12} {:>8}",
        "tensor", "shape", "mse", "sqnr_db", "max_abs_err", "bits/w"
    );
    let (mut se, mut sp, mut n, mut bits) = (0.0, 0.0, 0usize, 0.0);
    for r in rows {
        let shape = format!("{:?}", r.shape);
        let _ = writeln!(
            s,
            "{:<48} {:>14} {:>12.4e} {:>9.2} {:>12.4e} {:>8.4}",
            r.name,
            shape,
            r.stats.mse,
            r.stats.sqnr_db(),
            r.stats.max_abs_err,
            r.bits_per_weight
        );
        let k = r.stats.n_values as f64;
        se += r.stats.mse * k;
        sp += r.stats.signal_power * k;
        bits += r.bits_per_weight * k;
        n += r.stats.n_values;
    }
    let nf = n.max(1) as f64;
    let sqnr = if se == 0.0 {
        f64::INFINITY
    } else {
        10.0 * (sp / se).log10()
    };
    let _ = writeln!(
        s,
        "{:<48} {:>14} {:>12.4e} {:>9.2} {:>12} {:>8.4}",
        "all quantized weights",
        n,
        se / nf,
        sqnr,
        "",
        bits / nf
    );
    s
}

fn csv_text(rows: &[Row]) -> String {
    let mut s = String::from("tensor,rows,cols,n_values,mse,sqnr_db,max_abs_err,bits_per_weight\n");
    for r in rows {
        let _ = writeln!(
            s,
            "{},{},{},{},{:e},{},{:e},{}",
            r.name,
            r.shape.first().copied().unwrap_or(0),
            r.shape.get(1).copied().unwrap_or(0),
            r.stats.n_values,
            r.stats.mse,
            r.stats.sqnr_db(),
            r.stats.max_abs_err,
            r.bits_per_weight
        );
    }
    s
}
