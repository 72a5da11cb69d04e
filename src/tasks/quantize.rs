//! The quantize task: fake-quantize every quantizable 2-D weight of a checkpoint and report, per
//! tensor, its error statistics, bits per weight, a histogram of its weights and the grid of
//! representable values in the block that holds its largest |w| — and, when asked, write a new
//! checkpoint folder in the input's dtype. `quantscape quantize` writes; the Quantize view draws.
//!
//! Invariants: the input is never modified; the output is built in a temporary folder renamed
//! into place only when everything succeeded (nothing partial is left behind). Blocks run along K
//! (GPT-2's Conv1D weights, stored `[in, out]`, are transposed first). RTN runs on the request's
//! device, bit-identical to the CPU reference; calibrated methods run on the CPU.
//! Units: errors in weight units (MSE in squared units), bits per stored weight including the
//! tensor's scale/zero overhead.

use std::collections::{BTreeMap, HashMap};
use std::path::PathBuf;

use serde::{Deserialize, Serialize};

use super::calibrate::{quantize_model, CalibSettings};
use super::engine::Device;
use crate::codecs::{BlockSize, ErrorStats, Format, Method};
use crate::error::{Error, Result};
use crate::jobs::JobCtx;
use crate::model::checkpoint::{
    bytes_to_f32, copy_side_files, f32_to_bytes, write_safetensors, Checkpoint, OutDir, OutTensor,
};
use crate::model::sites::{quantizable, Layout};
use crate::model::{hub, Tokenizer, Transformer};

/// Bins of a weight histogram over [−absmax, absmax].
pub const HIST_BINS: usize = 61;

/// What to quantize and where to put it.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
pub struct QuantizeRequest {
    /// Checkpoint folder, `org/name` in the Hugging Face cache, or a llama `.gguf` file.
    pub model: String,
    /// The weights' format (block size and rounding included).
    pub format: Format,
    /// The method.
    pub method: Method,
    /// Calibration of GPTQ/AWQ.
    pub calib: CalibSettings,
    /// Where RTN runs.
    pub device: Device,
    /// Output folder (must not exist); None: report only.
    pub out: Option<PathBuf>,
}

/// One quantized tensor.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
pub struct TensorReport {
    /// Checkpoint name.
    pub name: String,
    /// Shape as stored.
    pub shape: Vec<usize>,
    /// `[rows, cols]` with blocks along cols (K).
    pub shape_k: [usize; 2],
    /// Stored bits per weight of this tensor.
    pub bits_per_weight: f64,
    /// Error statistics.
    pub stats: ErrorStats,
    /// Counts of the original weights in [`HIST_BINS`] bins over ±absmax.
    pub histogram: Vec<u64>,
    /// Largest |w|.
    pub absmax: f64,
    /// Distinct dequantized values in the block holding the largest |w|.
    pub grid: Vec<f32>,
}

/// The quantization.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
pub struct QuantizeReport {
    /// The resolved checkpoint folder.
    pub model: PathBuf,
    /// The format's spelling.
    pub format: String,
    /// The method's spelling.
    pub method: String,
    /// Where RTN ran.
    pub device: String,
    /// Why the request's device was not used, if it was not.
    pub notice: Option<String>,
    /// Quantized tensors in checkpoint order.
    pub tensors: Vec<TensorReport>,
    /// The folder written, if any.
    pub written: Option<PathBuf>,
}

impl QuantizeReport {
    /// Over all quantized weights: (count, MSE, SQNR dB, bits per weight).
    pub fn totals(&self) -> (usize, f64, f64, f64) {
        let (mut se, mut sp, mut n, mut bits) = (0.0, 0.0, 0usize, 0.0);
        for r in &self.tensors {
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
        (n, se / nf, sqnr, bits / nf)
    }
}

/// Counts of `values` in [`HIST_BINS`] bins over [−absmax, absmax], and absmax.
pub fn histogram(values: &[f32]) -> (Vec<u64>, f64) {
    let absmax = values.iter().fold(0f64, |m, v| m.max(f64::from(v.abs())));
    let mut h = vec![0u64; HIST_BINS];
    if absmax > 0.0 && absmax.is_finite() {
        for v in values.iter().filter(|v| v.is_finite()) {
            let t = (f64::from(*v) / absmax + 1.0) / 2.0;
            let b = ((t * HIST_BINS as f64) as usize).min(HIST_BINS - 1);
            h[b] += 1;
        }
    }
    (h, absmax)
}

/// The distinct finite values of `q` in the block of `w`'s largest |w| (`[rows, cols]`).
fn max_block_grid(w: &[f32], q: &[f32], cols: usize, block: BlockSize) -> Vec<f32> {
    let imax = w
        .iter()
        .enumerate()
        .max_by(|a, b| a.1.abs().total_cmp(&b.1.abs()))
        .map_or(0, |(i, _)| i);
    let blen = block.block_len(cols).max(1);
    let (r, c) = (imax / cols.max(1), imax % cols.max(1));
    let (start, end) = match block {
        BlockSize::PerTensor => (0, q.len()),
        _ => {
            let s = r * cols + (c / blen) * blen;
            (s, (s + blen).min((r + 1) * cols))
        }
    };
    let mut grid: Vec<f32> = q.get(start..end).unwrap_or_default().to_vec();
    grid.retain(|v| v.is_finite());
    grid.sort_by(f32::total_cmp);
    grid.dedup();
    grid
}

/// Every value the RTN codec can give in the block of `w`'s largest |w| (`[rows, cols]`), not
/// only the values its weights happen to use: probe rows that keep the block's extremes (so its
/// scale, zero point and NVFP4's tensor scale are the block's own) and fill the rest with values
/// spread uniformly and log-uniformly over the block's range — symmetric around 0 for formats
/// without a zero point, [min, max] of the block otherwise — quantized with the same format.
/// Falls back to the used values ([`max_block_grid`]) if the probe cannot be quantized.
fn full_block_grid(w: &[f32], q: &[f32], cols: usize, format: &Format) -> Vec<f32> {
    let used = || max_block_grid(w, q, cols, format.block);
    let Some((imax, &wmax)) = w
        .iter()
        .enumerate()
        .filter(|(_, v)| v.is_finite())
        .max_by(|a, b| a.1.abs().total_cmp(&b.1.abs()))
    else {
        return used();
    };
    if wmax == 0.0 || cols == 0 {
        return used();
    }
    let blen = format.block.block_len(cols).max(1);
    let (r, c) = (imax / cols, imax % cols);
    let start = r * cols + (c / blen) * blen;
    let block = &w[start..(start + blen).min((r + 1) * cols)];
    let (bmin, bmax) = block
        .iter()
        .filter(|v| v.is_finite())
        .fold((f32::INFINITY, f32::NEG_INFINITY), |(a, b), v| {
            (a.min(*v), b.max(*v))
        });
    let asym = format.zero != crate::codecs::ZeroPoint::None;
    let (lo, hi) = if asym {
        (bmin, bmax)
    } else {
        (-wmax.abs(), wmax.abs())
    };
    // Row heads keep the scale: the max-|w| element, and for affine formats the other extreme.
    let mut head = vec![wmax];
    if asym {
        head.push(if wmax == bmax { bmin } else { bmax });
    }
    if blen <= head.len() {
        return used();
    }
    let mut probes: Vec<f32> = (0..=4096)
        .map(|i| lo + (hi - lo) * i as f32 / 4096.0)
        .collect();
    let amax = lo.abs().max(hi.abs());
    for k in 0..(40 * 16) {
        let m = amax * 2f32.powf(-(k as f32) / 16.0);
        probes.extend([m, -m]);
    }
    probes.retain(|v| *v >= lo && *v <= hi);
    let per_row = blen - head.len();
    let n_rows = probes.len().div_ceil(per_row);
    let mut probe = Vec::with_capacity(n_rows * blen);
    for chunk in probes.chunks(per_row) {
        probe.extend_from_slice(&head);
        probe.extend_from_slice(chunk);
        probe.resize(probe.len() + per_row - chunk.len(), wmax);
    }
    match crate::codecs::fake_quant(&probe, n_rows, blen, format, &Method::Rtn) {
        Ok(pq) => {
            let mut grid: Vec<f32> = pq.into_iter().filter(|v| v.is_finite()).collect();
            grid.sort_by(f32::total_cmp);
            grid.dedup();
            grid
        }
        Err(_) => used(),
    }
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

/// Calibrated weights by checkpoint name (`[out, in]`), for GPTQ and AWQ.
fn calibrated_weights(
    dir: &std::path::Path,
    req: &QuantizeRequest,
    ctx: &JobCtx,
) -> Result<HashMap<String, (Vec<f32>, ErrorStats)>> {
    let mut out = HashMap::new();
    if !req.method.needs_calibration() {
        return Ok(out);
    }
    let model = Transformer::load(dir)?;
    let tok = Tokenizer::load(dir)?;
    let (o, stats, _) = quantize_model(
        &model,
        &tok,
        &req.format,
        &req.method,
        &req.calib,
        None,
        ctx,
    )?;
    for ((site, w), st) in model.linears.iter().zip(o.weights).zip(stats) {
        if let Some(w) = w {
            out.insert(site.name.clone(), (w.flatten_all()?.to_vec1::<f32>()?, st));
        }
    }
    Ok(out)
}

/// The metadata of a written checkpoint file.
fn meta(format: &Format, method: &Method) -> BTreeMap<String, String> {
    let mut meta = BTreeMap::new();
    meta.insert("format".to_string(), "pt".to_string());
    meta.insert("quantscape_format".to_string(), format.to_string());
    meta.insert("quantscape_method".to_string(), method.spelling());
    meta
}

fn file_name(path: &std::path::Path) -> Result<String> {
    Ok(path
        .file_name()
        .ok_or_else(|| {
            Error::Input(format!(
                "checkpoint file without a name ({})",
                path.display()
            ))
        })?
        .to_string_lossy()
        .to_string())
}

/// Quantizes one quantizable tensor of `ckpt`: its report and its fake-quantized values in the
/// stored layout (calibrated weights come from `calibrated`; RTN runs on `engine`).
#[allow(clippy::too_many_arguments)]
fn quantize_tensor(
    ckpt: &Checkpoint,
    name: &str,
    layout: Layout,
    path: &std::path::Path,
    format: &Format,
    req: &QuantizeRequest,
    engine: super::Engine,
    calibrated: &mut HashMap<String, (Vec<f32>, ErrorStats)>,
) -> Result<(TensorReport, Vec<f32>)> {
    let entry = &ckpt.tensors[name];
    if !entry.dtype.is_float() {
        return Err(Error::Input(format!(
            "tensor `{name}` has dtype {} and cannot be quantized ({})",
            entry.dtype.name(),
            path.display()
        )));
    }
    let raw = bytes_to_f32(ckpt.raw_bytes(name)?, entry.dtype).ok_or_else(|| {
        Error::Input(format!(
            "tensor `{name}`: cannot read dtype {} as floats ({})",
            entry.dtype.name(),
            path.display()
        ))
    })?;
    let (r, c) = (entry.shape[0], entry.shape[1]);
    let (w, rows_k, cols_k) = match layout {
        Layout::OutIn => (raw, r, c),
        Layout::InOut => (transpose(&raw, r, c), c, r),
    };
    let (q, stats) = match calibrated.remove(name) {
        Some(done) => done,
        None if req.method.needs_calibration() => {
            return Err(Error::Input(format!(
                "`{name}` is not a linear layer of the loaded model, so {} cannot calibrate it \
                 ({})",
                req.method,
                path.display()
            )))
        }
        None => {
            let q = engine.fake_quant(&w, rows_k, cols_k, format, &req.method)?;
            let stats = ErrorStats::compute(&w, &q);
            (q, stats)
        }
    };
    let (histogram, absmax) = histogram(&w);
    // RTN's grid is known in full; calibrated and HQQ scales are the block's own, so their grid
    // is the values the block uses.
    let grid = if matches!(req.method, Method::Rtn) {
        full_block_grid(&w, &q, cols_k, format)
    } else {
        max_block_grid(&w, &q, cols_k, format.block)
    };
    let report = TensorReport {
        name: name.to_string(),
        shape: entry.shape.clone(),
        shape_k: [rows_k, cols_k],
        bits_per_weight: format.bits_per_weight(rows_k, cols_k),
        stats,
        histogram,
        absmax,
        grid,
    };
    let q = match layout {
        Layout::OutIn => q,
        Layout::InOut => transpose(&q, rows_k, cols_k),
    };
    Ok((report, q))
}

/// Runs the quantization (stage `quantize`, one unit per quantizable tensor).
pub fn run(req: &QuantizeRequest, ctx: &JobCtx) -> Result<QuantizeReport> {
    let format = req.format.validate()?;
    if let Some(out) = &req.out {
        if out.exists() {
            return Err(Error::Input(format!(
                "output folder already exists (choose a new one) ({})",
                out.display()
            )));
        }
    }
    let cpu_only = (!matches!(req.method, Method::Rtn))
        .then(|| format!("the GPU runs RTN only and {} runs on the CPU", req.method));
    let opened = req.device.open(cpu_only)?;
    let dir = hub::resolve(&req.model)?;
    // The input must load as `info` and `eval` load it (config within range, every tensor
    // present, float and finite) before anything is written: success means the output loads.
    Transformer::validate_folder(&dir)?;
    let ckpt = Checkpoint::open(&dir)?;
    let model_type = ckpt.model_type();
    let mut calibrated = calibrated_weights(&dir, req, ctx)?;
    let n_quant = ckpt
        .tensors
        .iter()
        .filter(|(n, e)| quantizable(&model_type, n, &e.shape).is_some())
        .count();
    if n_quant == 0 {
        return Err(Error::Input(format!(
            "no quantizable 2-D weights inside transformer blocks ({})",
            dir.display()
        )));
    }
    let out = req.out.as_deref().map(OutDir::create).transpose()?;
    let mut tensors = Vec::with_capacity(n_quant);
    ctx.report("quantize", 0, n_quant);
    for (i, path) in ckpt.files.iter().enumerate() {
        let mut outs = Vec::new();
        for name in ckpt.tensors_in_file(i) {
            ctx.check()?;
            let entry = &ckpt.tensors[name];
            let Some(layout) = quantizable(&model_type, name, &entry.shape) else {
                if out.is_some() {
                    outs.push(OutTensor {
                        name: name.to_string(),
                        dtype: entry.dtype,
                        shape: entry.shape.clone(),
                        data: ckpt.raw_bytes(name)?.to_vec(),
                    });
                }
                continue;
            };
            let (report, q) = quantize_tensor(
                &ckpt,
                name,
                layout,
                path,
                &format,
                req,
                opened.engine,
                &mut calibrated,
            )?;
            if out.is_some() {
                outs.push(OutTensor {
                    name: name.to_string(),
                    dtype: entry.dtype,
                    shape: entry.shape.clone(),
                    data: f32_to_bytes(&q, entry.dtype).ok_or_else(|| {
                        Error::Input(format!(
                            "tensor `{name}`: cannot write dtype {}",
                            entry.dtype.name()
                        ))
                    })?,
                });
            }
            tensors.push(report);
            ctx.report("quantize", tensors.len(), n_quant);
        }
        if let Some(o) = &out {
            write_safetensors(
                &o.join(&file_name(path)?),
                &outs,
                Some(meta(&format, &req.method)),
            )?;
        }
    }
    let written = match out {
        Some(o) => {
            copy_side_files(&ckpt.dir, &o)?;
            Some(o.commit()?)
        }
        None => None,
    };
    Ok(QuantizeReport {
        model: dir,
        format: format.to_string(),
        method: req.method.spelling(),
        device: opened.engine.describe(),
        notice: opened.notice,
        tensors,
        written,
    })
}
