//! Codec kernels on the GPU: fake-quant, quantize to codes and dequantize for every [`Format`]
//! (RTN), bit-identical to the CPU reference in `codecs` (tests/gpu.rs checks every preset on
//! edge shapes and NaN/Inf/subnormal inputs).
//!
//! Passes per row chunk (rows that fit one storage binding): `block_stats` (one thread per
//! block) → `block_params` (scale and zero point rounded to their storage types) →
//! `fake_quant` / `quantize_codes` / `dequantize` (one thread per element). Tensor-level scalars
//! (NVFP4's global scale, the parameters of a per-tensor block) come from GPU partial statistics
//! over 4096-element segments, merged on the host with the reference's own `BlockStats::merge`
//! and `Kernel::params_rtn` — a handful of scalars, not a per-element path.
//!
//! [`CodecUniform`] mirrors WGSL `struct Codec` word for word (48 words, 16-byte multiple).

use super::context::GpuContext;
use super::uniform::{tables, CodecUniform, GpuBlockParams};
use crate::codecs::pack::BitWriter;
use crate::codecs::{
    BlockSize, BlockStats, Format, Kernel, PackedCodes, QuantizedTensor, ZeroPoint,
};
use crate::Result;

/// What the element pass produces.
#[derive(Clone, Copy, PartialEq)]
pub(crate) enum Output {
    /// Fake-quantized values (f32 bits).
    Fake,
    /// Element codes.
    Codes,
    /// Fake-quantized values, then per-block errors (returned in place of the parameters).
    FakeWithErrors,
}

struct ChunkBuffers {
    uniform: wgpu::Buffer,
    src: wgpu::Buffer,
    stats: wgpu::Buffer,
    params: wgpu::Buffer,
    dst: wgpu::Buffer,
    tables: wgpu::Buffer,
}

impl ChunkBuffers {
    fn bind(&self, ctx: &GpuContext) -> wgpu::BindGroup {
        ctx.bind_buffers(
            "codec",
            &ctx.codec.layout,
            &[
                &self.uniform,
                &self.src,
                &self.stats,
                &self.params,
                &self.dst,
                &self.tables,
            ],
        )
    }
}

/// Tensor-level scalars from GPU partial statistics: (tensor stats, global scale).
fn tensor_scalars(
    ctx: &GpuContext,
    k: &Kernel,
    w: &[f32],
    cols: usize,
    chunk_rows: usize,
) -> Result<BlockStats> {
    let mut all = BlockStats::EMPTY;
    let tables = ctx.upload("tables", &[0u32; 4]);
    for chunk in w.chunks(chunk_rows * cols.max(1)) {
        let u = CodecUniform::new(&k.format, chunk.len() / cols.max(1), cols, None)?
            .segments(chunk.len())?;
        let n_seg = u.n_blocks as usize;
        let bufs = ChunkBuffers {
            uniform: ctx.uniform("codec", &u),
            src: ctx.upload("weights", chunk),
            stats: ctx.scratch("stats", n_seg * 4),
            params: ctx.scratch("params", 8),
            dst: ctx.scratch("dst", 4),
            tables: tables.clone(),
        };
        let bg = bufs.bind(ctx);
        let mut enc = ctx.encoder();
        ctx.dispatch(&mut enc, &ctx.codec.stats, &bg, n_seg);
        let words = ctx.submit_and_read(enc, &bufs.stats, n_seg * 4)?;
        for s in words.chunks_exact(4) {
            all = all.merge(BlockStats {
                amax: f32::from_bits(s[0]),
                min: f32::from_bits(s[1]),
                max: f32::from_bits(s[2]),
                finite: s[3] != 0,
            });
        }
    }
    Ok(all)
}

/// Everything a format needs before its row chunks run: the reference kernel, tensor-level
/// scalars (global scale, per-tensor block parameters) and the value/threshold table.
pub(crate) struct Prepared {
    format: Format,
    global: Option<f32>,
    fixed: Option<GpuBlockParams>,
    tables: wgpu::Buffer,
    /// Rows per chunk (one chunk fits one storage binding).
    pub(crate) chunk_rows: usize,
}

impl Prepared {
    /// Prepares `format` for the `rows × cols` tensor `w` (reads `w` once more on the GPU only
    /// when a tensor-level scalar is needed).
    pub(crate) fn new(ctx: &GpuContext, w: &[f32], cols: usize, format: &Format) -> Result<Self> {
        let k = Kernel::new(format)?;
        let chunk_rows = ctx.rows_per_chunk(cols)?;
        let per_tensor = k.format.block == BlockSize::PerTensor && k.format.scale.is_some();
        let (global, fixed) = if (k.format.global_scale || per_tensor) && !w.is_empty() {
            let all = tensor_scalars(ctx, &k, w, cols, chunk_rows)?;
            let g = k.global_scale(&all);
            let fixed = per_tensor.then(|| GpuBlockParams::from(&k.params_rtn(&all, g)));
            (g, fixed)
        } else {
            (None, None)
        };
        Ok(Self {
            format: k.format,
            global,
            fixed,
            tables: ctx.upload("tables", &tables(&k.format)?),
            chunk_rows,
        })
    }

    /// Records the passes for one chunk of `n_rows × cols` values resident in `src`; returns
    /// the output buffer (`n_rows·cols` words) and the block-parameter buffer with its length.
    pub(crate) fn record(
        &self,
        ctx: &GpuContext,
        enc: &mut wgpu::CommandEncoder,
        src: &wgpu::Buffer,
        n_rows: usize,
        cols: usize,
        out: Output,
    ) -> Result<(wgpu::Buffer, wgpu::Buffer, usize)> {
        let u = CodecUniform::new(&self.format, n_rows, cols, self.global)?;
        let n_blocks = u.n_blocks as usize;
        let n = n_rows * cols;
        // Error blocks: the format's blocks, or each row of a per-tensor format.
        let mut ue = u;
        if ue.per_tensor != 0 {
            ue.per_tensor = 0;
            ue.bpr = 1;
            ue.n_blocks = u.n_rows;
        }
        let n_err = ue.n_blocks as usize;
        let bufs = ChunkBuffers {
            uniform: ctx.uniform("codec", &u),
            src: src.clone(),
            stats: ctx.scratch("stats", n_blocks.max(n_err) * 4),
            params: match self.fixed {
                Some(p) => ctx.upload("params", &[p]),
                None => ctx.scratch("params", n_blocks * 8),
            },
            dst: ctx.scratch("dst", n),
            tables: self.tables.clone(),
        };
        let bg = bufs.bind(ctx);
        if self.fixed.is_none() {
            ctx.dispatch(enc, &ctx.codec.stats, &bg, n_blocks);
            ctx.dispatch(enc, &ctx.codec.params, &bg, n_blocks);
        }
        let pipeline = match out {
            Output::Fake | Output::FakeWithErrors => &ctx.codec.fake,
            Output::Codes => &ctx.codec.codes,
        };
        ctx.dispatch(enc, pipeline, &bg, n);
        if out == Output::FakeWithErrors {
            // Per-block errors replace the statistics (no longer needed) in `stats`.
            let err_bufs = ChunkBuffers {
                uniform: ctx.uniform("codec errors", &ue),
                ..bufs
            };
            let bg = err_bufs.bind(ctx);
            ctx.dispatch(enc, &ctx.codec.errors, &bg, n_err);
            return Ok((err_bufs.dst, err_bufs.stats, n_err));
        }
        Ok((bufs.dst, bufs.params, n_blocks))
    }
}

/// Runs the codec passes over every row chunk; returns the element outputs, the block
/// parameters read back (only when `want_params`) and the global scale.
fn run(
    ctx: &GpuContext,
    w: &[f32],
    rows: usize,
    cols: usize,
    format: &Format,
    out: Output,
    want_params: bool,
) -> Result<(Vec<u32>, Vec<GpuBlockParams>, Option<f32>)> {
    crate::codecs::tensor::check_shape("gpu codec", w.len(), rows, cols)?;
    let prep = Prepared::new(ctx, w, cols, format)?;
    if w.is_empty() {
        return Ok((Vec::new(), Vec::new(), None));
    }
    let mut values = Vec::with_capacity(w.len());
    let mut params_out = Vec::new();
    for chunk in w.chunks(prep.chunk_rows * cols) {
        let src = ctx.upload("weights", chunk);
        let mut enc = ctx.encoder();
        let (dst, params, n_blocks) =
            prep.record(ctx, &mut enc, &src, chunk.len() / cols, cols, out)?;
        values.extend(ctx.submit_and_read(enc, &dst, chunk.len())?);
        if want_params {
            let words = ctx.submit_and_read(ctx.encoder(), &params, n_blocks * 8)?;
            params_out.extend_from_slice(bytemuck::cast_slice::<u32, GpuBlockParams>(&words));
        }
    }
    Ok((values, params_out, prep.global))
}

/// Fake-quantizes a row-major `rows × cols` tensor (RTN) on the GPU: `dequantize(quantize(w))`,
/// bit-identical to [`crate::codecs::fake_quant`] with `Method::Rtn`.
pub fn fake_quant(
    ctx: &GpuContext,
    w: &[f32],
    rows: usize,
    cols: usize,
    format: &Format,
) -> Result<Vec<f32>> {
    let (bits, _, _) = run(ctx, w, rows, cols, format, Output::Fake, false)?;
    Ok(bits.into_iter().map(f32::from_bits).collect())
}

/// Quantizes to storage on the GPU (RTN); equal to [`crate::codecs::quantize`] field for field.
pub fn quantize(
    ctx: &GpuContext,
    w: &[f32],
    rows: usize,
    cols: usize,
    format: &Format,
) -> Result<QuantizedTensor> {
    let format = format.validate()?;
    let (codes, params, global) = run(ctx, w, rows, cols, &format, Output::Codes, true)?;
    let bits = format.element.bits();
    let mut packed = PackedCodes::zeros(bits, rows, cols);
    for (bytes, row) in packed.rows_mut().zip(codes.chunks(cols.max(1))) {
        let mut wr = BitWriter::new(bytes, bits);
        row.iter().for_each(|&c| wr.push(c));
        wr.finish();
    }
    let per_tensor = format.block == BlockSize::PerTensor;
    let (srows, scols) = if per_tensor {
        (usize::from(!w.is_empty()), usize::from(!w.is_empty()))
    } else {
        (rows, crate::codecs::tensor::blocks_per_row(&format, cols))
    };
    let pack = |bits: u32, code: fn(&GpuBlockParams) -> u32| {
        let mut st = PackedCodes::zeros(bits, srows, scols);
        for (bytes, ps) in st.rows_mut().zip(params.chunks(scols.max(1))) {
            let mut wr = BitWriter::new(bytes, bits);
            ps.iter().for_each(|p| wr.push(code(p)));
            wr.finish();
        }
        st
    };
    let scales = format.scale.map(|s| pack(s.bits(), |p| p.scale_code));
    let zeros = (format.zero != ZeroPoint::None).then(|| pack(format.zero_bits(), |p| p.zero_code));
    Ok(QuantizedTensor {
        format,
        rows,
        cols,
        codes: packed,
        scales,
        zeros,
        global_scale: global,
    })
}

/// Dequantizes stored codes on the GPU; bit-identical to [`crate::codecs::dequantize`]. Block
/// parameters are decoded from their stored codes with the reference (one per block).
pub fn dequantize(ctx: &GpuContext, q: &QuantizedTensor) -> Result<Vec<f32>> {
    let (rows, cols) = (q.rows, q.cols);
    if rows * cols == 0 {
        return Ok(Vec::new());
    }
    let k = Kernel::new(&q.format)?;
    let per_tensor = q.format.block == BlockSize::PerTensor;
    let bpr = crate::codecs::tensor::blocks_per_row(&q.format, cols);
    let params_of = |r: usize, i: usize| {
        let s = q.scales.as_ref().map_or(0, |s| s.get(r, i));
        let z = q.zeros.as_ref().map_or(0, |z| z.get(r, i));
        GpuBlockParams::from(&k.params_from_codes(s, z, q.global_scale))
    };
    let tables = ctx.upload("tables", &tables(&q.format)?);
    let chunk_rows = ctx.rows_per_chunk(cols)?;
    let mut out = Vec::with_capacity(rows * cols);
    let mut row0 = 0;
    while row0 < rows {
        let n_rows = chunk_rows.min(rows - row0);
        let codes: Vec<u32> = (row0..row0 + n_rows)
            .flat_map(|r| (0..cols).map(move |c| (r, c)))
            .map(|(r, c)| q.codes.get(r, c))
            .collect();
        let params: Vec<GpuBlockParams> = if per_tensor {
            vec![params_of(0, 0)]
        } else {
            (row0..row0 + n_rows)
                .flat_map(|r| (0..bpr).map(move |i| (r, i)))
                .map(|(r, i)| params_of(r, i))
                .collect()
        };
        let u = CodecUniform::new(&q.format, n_rows, cols, q.global_scale)?;
        let bufs = ChunkBuffers {
            uniform: ctx.uniform("codec", &u),
            src: ctx.upload("codes", &codes),
            stats: ctx.scratch("stats", 4),
            params: ctx.upload("params", &params),
            dst: ctx.scratch("dst", codes.len()),
            tables: tables.clone(),
        };
        let bg = bufs.bind(ctx);
        let mut enc = ctx.encoder();
        ctx.dispatch(&mut enc, &ctx.codec.dequant, &bg, codes.len());
        out.extend(
            ctx.submit_and_read(enc, &bufs.dst, codes.len())?
                .into_iter()
                .map(f32::from_bits),
        );
        row0 += n_rows;
    }
    Ok(out)
}
