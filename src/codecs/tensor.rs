//! Whole-tensor entry points: quantize to real storage, dequantize, and the fused fake-quant.
//!
//! Shapes: a weight is row-major `rows × cols` f32 with the reduction dimension K = `cols`
//! (a Hugging Face `Linear.weight` is `[out, in]`, so K = in). Blocks run along each row; a row
//! that is not a multiple of Qb ends with a shorter block; `PerTensor` has one block for all.
//! Rows are processed in parallel (rayon); nothing is allocated per block.
//!
//! `fake_quant(w) == dequantize(quantize(w))` bit for bit, for every format and method.

use rayon::prelude::*;
use serde::{Deserialize, Serialize};

use super::format::{BlockSize, Format, ZeroPoint};
use super::hqq;
use super::isa::{self, Isa};
use super::kernel::{BlockParams, BlockStats, Kernel};
use super::method::Method;
use super::pack::{BitReader, BitWriter, PackedCodes};
use crate::{Error, Result};

/// A quantized tensor in real storage: packed codes, scales and zero points in their own types.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
pub struct QuantizedTensor {
    /// The format.
    pub format: Format,
    /// Rows (output features).
    pub rows: usize,
    /// Columns (K, input features).
    pub cols: usize,
    /// Element codes, `rows × cols` at the element's bit width.
    pub codes: PackedCodes,
    /// Block scale codes (`rows × blocks_per_row`, or `1 × 1` per tensor); `None` for casts.
    pub scales: Option<PackedCodes>,
    /// Zero-point codes, same layout as `scales`.
    pub zeros: Option<PackedCodes>,
    /// The per-tensor FP32 global scale (NVFP4).
    pub global_scale: Option<f32>,
}

impl QuantizedTensor {
    /// Bytes actually stored (codes with row padding, scales, zeros, global scale).
    pub fn stored_bytes(&self) -> usize {
        self.codes.n_bytes()
            + self.scales.as_ref().map_or(0, PackedCodes::n_bytes)
            + self.zeros.as_ref().map_or(0, PackedCodes::n_bytes)
            + if self.global_scale.is_some() { 4 } else { 0 }
    }

    /// Stored bits per weight, row padding included.
    pub fn stored_bits_per_weight(&self) -> f64 {
        let n = self.rows * self.cols;
        if n == 0 {
            return 0.0;
        }
        (self.stored_bytes() * 8) as f64 / n as f64
    }
}

/// Validates `w.len() == rows * cols`.
pub(crate) fn check_shape(op: &'static str, len: usize, rows: usize, cols: usize) -> Result<()> {
    if rows.checked_mul(cols) != Some(len) {
        return Err(Error::Shape {
            op,
            detail: format!("{len} values cannot be a {rows} × {cols} matrix"),
        });
    }
    Ok(())
}

/// Rows per rayon task: about 64 KiB of input each.
fn min_rows(cols: usize) -> usize {
    (16_384 / cols.max(1)).max(1)
}

/// How the block parameters of a tensor are obtained.
enum Plan {
    /// Computed block by block while the block is in cache (RTN, per-block scales).
    Fused { global: Option<f32> },
    /// Precomputed (per-tensor scale, HQQ); indexed by `row * blocks_per_row + block`.
    Table {
        global: Option<f32>,
        params: Vec<BlockParams>,
        per_tensor: bool,
    },
}

pub(crate) fn blocks_per_row(format: &Format, cols: usize) -> usize {
    match format.block {
        BlockSize::PerTensor => 1,
        b => cols.div_ceil(b.block_len(cols)).max(usize::from(cols > 0)),
    }
}

pub(crate) fn tensor_stats(w: &[f32], cols: usize) -> BlockStats {
    /// The statistics of one chunk, compiled once per instruction set.
    struct Stats<'a>(&'a [f32]);
    impl isa::Body for Stats<'_> {
        type Out = BlockStats;
        #[inline(always)]
        fn run(self) -> BlockStats {
            BlockStats::of(self.0)
        }
    }
    let isa = Isa::detect();
    w.par_chunks(cols.max(1) * min_rows(cols))
        .map(|c| isa::run(isa, Stats(c)))
        .reduce(|| BlockStats::EMPTY, BlockStats::merge)
}

fn plan(k: &Kernel, w: &[f32], rows: usize, cols: usize, method: &Method) -> Result<Plan> {
    let f = &k.format;
    let global = if f.global_scale {
        k.global_scale(&tensor_stats(w, cols))
    } else {
        None
    };
    match method {
        Method::Rtn => {
            if f.block == BlockSize::PerTensor && f.scale.is_some() {
                let p = k.params_rtn(&tensor_stats(w, cols), global);
                Ok(Plan::Table {
                    global,
                    params: vec![p],
                    per_tensor: true,
                })
            } else {
                Ok(Plan::Fused { global })
            }
        }
        Method::Gptq(_) | Method::Awq(_) => Err(Error::InvalidMethod(format!(
            "`{method}` needs calibration activations: quantize through \
             `model::calibrated` (CLI: --method {method} with --calib)"
        ))),
        Method::Hqq(hp) => {
            let params = hqq::optimize(k, w, rows, cols, hp, global)?;
            Ok(Plan::Table {
                global,
                per_tensor: f.block == BlockSize::PerTensor,
                params,
            })
        }
    }
}

impl Plan {
    #[inline(always)]
    fn params(&self, k: &Kernel, row: usize, b: usize, bpr: usize, xs: &[f32]) -> BlockParams {
        match self {
            // Casts (no scale) need no statistics: skip the pass over the block.
            Plan::Fused { global } if k.format.scale.is_none() => {
                k.params_rtn(&BlockStats::EMPTY, *global)
            }
            // Without a zero point the scale depends on max |x| alone.
            Plan::Fused { global } if k.format.zero == ZeroPoint::None => {
                k.params_rtn(&BlockStats::abs_of(xs), *global)
            }
            Plan::Fused { global } => k.params_rtn(&BlockStats::of(xs), *global),
            Plan::Table {
                params, per_tensor, ..
            } => {
                let i = if *per_tensor { 0 } else { row * bpr + b };
                params
                    .get(i)
                    .copied()
                    .unwrap_or_else(|| k.params_rtn(&BlockStats::of(xs), None))
            }
        }
    }

    fn global(&self) -> Option<f32> {
        match self {
            Plan::Fused { global } | Plan::Table { global, .. } => *global,
        }
    }
}

/// Fake-quantizes `w` (`rows × cols`, row-major) into `out`: every value replaced by the
/// dequantized value of its code.
pub fn fake_quant_into(
    w: &[f32],
    rows: usize,
    cols: usize,
    format: &Format,
    method: &Method,
    out: &mut [f32],
) -> Result<()> {
    fake_quant_into_isa(Isa::detect(), w, rows, cols, format, method, out)
}

/// [`fake_quant_into`] with the element loops compiled for `isa` (when this CPU has it; else
/// the baseline). The result is the same bit for bit on every instruction set; this entry
/// point exists so tests and benchmarks can compare them.
pub fn fake_quant_into_isa(
    isa: Isa,
    w: &[f32],
    rows: usize,
    cols: usize,
    format: &Format,
    method: &Method,
    out: &mut [f32],
) -> Result<()> {
    check_shape("fake_quant", w.len(), rows, cols)?;
    check_shape("fake_quant (output)", out.len(), rows, cols)?;
    if w.is_empty() {
        return Ok(());
    }
    let k = Kernel::new(format)?;
    let plan = plan(&k, w, rows, cols, method)?;
    let blen = format.block.block_len(cols);
    let bpr = blocks_per_row(format, cols);
    out.par_chunks_mut(cols)
        .zip(w.par_chunks(cols))
        .enumerate()
        .with_min_len(min_rows(cols))
        .for_each(|(row, (out, w))| {
            isa::run(
                isa,
                FakeRow {
                    k: &k,
                    plan: &plan,
                    row,
                    bpr,
                    blen,
                    w,
                    out,
                },
            );
        });
    Ok(())
}

/// One row of [`fake_quant_into_isa`], compiled once per instruction set.
struct FakeRow<'a> {
    k: &'a Kernel,
    plan: &'a Plan,
    row: usize,
    bpr: usize,
    blen: usize,
    w: &'a [f32],
    out: &'a mut [f32],
}

impl isa::Body for FakeRow<'_> {
    type Out = ();
    #[inline(always)]
    fn run(self) {
        let blocks = self.w.chunks(self.blen).zip(self.out.chunks_mut(self.blen));
        for (b, (xb, ob)) in blocks.enumerate() {
            let p = self.plan.params(self.k, self.row, b, self.bpr, xb);
            self.k.fake_block(xb, &p, ob);
        }
    }
}

/// Fake-quantizes `w` into a new vector. See [`fake_quant_into`].
pub fn fake_quant(
    w: &[f32],
    rows: usize,
    cols: usize,
    format: &Format,
    method: &Method,
) -> Result<Vec<f32>> {
    let mut out = vec![0.0; w.len()];
    fake_quant_into(w, rows, cols, format, method, &mut out)?;
    Ok(out)
}

/// Quantizes `w` (`rows × cols`, row-major) to packed storage.
pub fn quantize(
    w: &[f32],
    rows: usize,
    cols: usize,
    format: &Format,
    method: &Method,
) -> Result<QuantizedTensor> {
    check_shape("quantize", w.len(), rows, cols)?;
    let k = Kernel::new(format)?;
    let bits = format.element.bits();
    let mut codes = PackedCodes::zeros(bits, rows, cols);
    let per_tensor = format.block == BlockSize::PerTensor;
    let bpr = blocks_per_row(format, cols);
    let (scale_rows, scale_cols) = if per_tensor {
        (usize::from(!w.is_empty()), usize::from(!w.is_empty()))
    } else {
        (rows, bpr)
    };
    let mut scales = format
        .scale
        .map(|s| PackedCodes::zeros(s.bits(), scale_rows, scale_cols));
    let mut zeros = (format.zero != ZeroPoint::None)
        .then(|| PackedCodes::zeros(format.zero_bits(), scale_rows, scale_cols));
    if w.is_empty() {
        return Ok(QuantizedTensor {
            format: *format,
            rows,
            cols,
            codes,
            scales,
            zeros,
            global_scale: None,
        });
    }
    let plan = plan(&k, w, rows, cols, method)?;
    let blen = format.block.block_len(cols);
    // Element codes and, per row, the block parameters used.
    let row_params: Vec<Vec<BlockParams>> = codes
        .rows_mut()
        .collect::<Vec<_>>()
        .into_par_iter()
        .zip(w.par_chunks(cols))
        .enumerate()
        .with_min_len(min_rows(cols))
        .map(|(row, (bytes, x))| {
            let mut wr = BitWriter::new(bytes, bits);
            let mut used = Vec::with_capacity(if per_tensor { 0 } else { bpr });
            for (b, xb) in x.chunks(blen).enumerate() {
                let p = plan.params(&k, row, b, bpr, xb);
                k.encode_block(xb, &p, &mut wr);
                if !per_tensor {
                    used.push(p);
                }
            }
            wr.finish();
            used
        })
        .collect();
    let all_params: Vec<BlockParams> = if per_tensor {
        match &plan {
            Plan::Table { params, .. } => params.clone(),
            Plan::Fused { .. } => Vec::new(),
        }
    } else {
        row_params.into_iter().flatten().collect()
    };
    let sbits = format.scale_bits();
    let zbits = format.zero_bits();
    fill_codes(scales.as_mut(), sbits, &all_params, |p| p.scale_code);
    fill_codes(zeros.as_mut(), zbits, &all_params, |p| p.zero_code);
    Ok(QuantizedTensor {
        format: *format,
        rows,
        cols,
        codes,
        scales,
        zeros,
        global_scale: plan.global(),
    })
}

fn fill_codes(
    store: Option<&mut PackedCodes>,
    bits: u32,
    params: &[BlockParams],
    code_of: impl Fn(&BlockParams) -> u32,
) {
    let Some(st) = store else { return };
    let per = st.per_row.max(1);
    for (bytes, ps) in st.rows_mut().zip(params.chunks(per)) {
        let mut wr = BitWriter::new(bytes, bits);
        for p in ps {
            wr.push(code_of(p));
        }
        wr.finish();
    }
}

/// Dequantizes into `out` (`rows × cols`).
pub fn dequantize_into(q: &QuantizedTensor, out: &mut [f32]) -> Result<()> {
    check_shape("dequantize", out.len(), q.rows, q.cols)?;
    if out.is_empty() {
        return Ok(());
    }
    let k = Kernel::new(&q.format)?;
    let cols = q.cols;
    let blen = q.format.block.block_len(cols);
    let per_tensor = q.format.block == BlockSize::PerTensor;
    let bits = q.format.element.bits();
    let params_of = |row: usize, b: usize| {
        let (r, i) = if per_tensor { (0, 0) } else { (row, b) };
        let s = q.scales.as_ref().map_or(0, |s| s.get(r, i));
        let z = q.zeros.as_ref().map_or(0, |z| z.get(r, i));
        k.params_from_codes(s, z, q.global_scale)
    };
    out.par_chunks_mut(cols)
        .zip(q.codes.rows_iter().collect::<Vec<_>>())
        .enumerate()
        .with_min_len(min_rows(cols))
        .for_each(|(row, (o, bytes))| {
            let mut rd = BitReader::new(bytes, bits);
            for (b, ob) in o.chunks_mut(blen).enumerate() {
                let p = params_of(row, b);
                k.decode_block(&mut rd, &p, ob);
            }
        });
    Ok(())
}

/// Dequantizes into a new vector.
pub fn dequantize(q: &QuantizedTensor) -> Result<Vec<f32>> {
    let mut out = vec![0.0; q.rows * q.cols];
    dequantize_into(q, &mut out)?;
    Ok(out)
}
