//! Block-error reductions on the GPU for the Quantize view and reports: per-block MSE, max
//! |error| and SQNR (per-tensor formats report per row), and the tensor's totals.
//!
//! Units: errors in weight units (MSE squared), SQNR in dB. The `block_errors` kernel sums in
//! fp32 within a block and the host sums blocks in f64, so the figures equal
//! `codecs::ErrorStats::compute` to fp32 rounding (tests: relative 1e-5), not bit for bit; the
//! fake-quantized values themselves stay bit-identical.

use super::codec::{Output, Prepared};
use super::context::GpuContext;
use crate::codecs::{BlockSize, ErrorStats, Format};
use crate::Result;

/// Quantization error of one block (per-tensor formats: of one row).
#[derive(Clone, Copy, Debug, Default, PartialEq)]
pub struct BlockError {
    /// Mean squared error over the block's finite pairs.
    pub mse: f32,
    /// Largest |x − q|.
    pub max_abs_err: f32,
    /// Signal-to-quantization-noise ratio in dB (+∞ for an exact block).
    pub sqnr_db: f32,
    /// Pairs skipped because either side is NaN or infinite.
    pub n_nonfinite: u32,
}

/// Fake-quantizes on the GPU and reduces the errors there: the fake-quantized tensor, the error
/// of every block (row-major block order; per-tensor formats report rows) and the tensor's
/// [`ErrorStats`] (blocks summed in f64). Errors are fp32 sums within a block, so they match
/// `ErrorStats::compute` to fp32 rounding, not bit for bit.
pub fn fake_quant_with_errors(
    ctx: &GpuContext,
    w: &[f32],
    rows: usize,
    cols: usize,
    format: &Format,
) -> Result<(Vec<f32>, Vec<BlockError>, ErrorStats)> {
    crate::codecs::tensor::check_shape("gpu codec", w.len(), rows, cols)?;
    let prep = Prepared::new(ctx, w, cols, format)?;
    let mut values = Vec::with_capacity(w.len());
    let mut blocks = Vec::new();
    let (mut n_ok, mut bad, mut se, mut sp, mut worst) = (0usize, 0usize, 0f64, 0f64, 0f64);
    let bpr = crate::codecs::tensor::blocks_per_row(format, cols);
    for chunk in w.chunks(prep.chunk_rows * cols.max(1)) {
        let n_rows = chunk.len() / cols;
        let src = ctx.upload("weights", chunk);
        let mut enc = ctx.encoder();
        let (dst, errs, n_err) =
            prep.record(ctx, &mut enc, &src, n_rows, cols, Output::FakeWithErrors)?;
        values.extend(
            ctx.submit_and_read(enc, &dst, chunk.len())?
                .into_iter()
                .map(f32::from_bits),
        );
        let words = ctx.submit_and_read(ctx.encoder(), &errs, n_err * 4)?;
        let blen = format.block.block_len(cols).max(1);
        for (b, e) in words.chunks_exact(4).enumerate() {
            let c0 = (b % bpr) * blen;
            let len = if format.block == BlockSize::PerTensor {
                cols
            } else {
                blen.min(cols - c0)
            };
            let n_bad = e[3] as usize;
            let n_fin = len.saturating_sub(n_bad);
            let (bse, bmax, bsp) = (
                f32::from_bits(e[0]),
                f32::from_bits(e[1]),
                f32::from_bits(e[2]),
            );
            n_ok += n_fin;
            bad += n_bad;
            se += f64::from(bse);
            sp += f64::from(bsp);
            worst = worst.max(f64::from(bmax));
            let mse = if n_fin > 0 { bse / n_fin as f32 } else { 0.0 };
            blocks.push(BlockError {
                mse,
                max_abs_err: bmax,
                sqnr_db: if bse == 0.0 {
                    f32::INFINITY
                } else {
                    10.0 * (bsp / bse).log10()
                },
                n_nonfinite: e[3],
            });
        }
    }
    let n = n_ok.max(1) as f64;
    let stats = ErrorStats {
        n_values: n_ok,
        n_nonfinite: bad,
        mse: se / n,
        max_abs_err: worst,
        signal_power: sp / n,
    };
    Ok((values, blocks, stats))
}
