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

use bytemuck::{Pod, Zeroable};

use super::context::{shader_source, GpuContext, CODEC_WGSL};
use crate::codecs::element::NF4_TABLE;
use crate::codecs::minifloat::Special;
use crate::codecs::pack::BitWriter;
use crate::codecs::scale::E8m0Rule;
use crate::codecs::{
    BlockParams, BlockSize, BlockStats, ElementType, Format, IntKind, Kernel, Minifloat, Overflow,
    PackedCodes, QuantizedTensor, Rounding, ScaleType, ZeroPoint,
};
use crate::{Error, Result};

/// Elements per partial-statistics segment for tensor-level scalars.
const SEGMENT: usize = 4096;

/// The codec parameter block (WGSL `struct Codec`, same field order).
#[repr(C)]
#[derive(Clone, Copy, Debug, Default, Pod, Zeroable)]
pub struct CodecUniform {
    n_rows: u32,
    n_cols: u32,
    blen: u32,
    bpr: u32,
    per_tensor: u32,
    elem_kind: u32,
    exp_bits: u32,
    man_bits: u32,
    emin: i32,
    bias: i32,
    special: u32,
    max_mag: u32,
    over_mag: u32,
    nan_mag: u32,
    sign_shift: u32,
    rounding: u32,
    scale_kind: u32,
    e8m0_rule: u32,
    zero_kind: u32,
    zero_type: u32,
    has_global: u32,
    global_bits: u32,
    qmax: i32,
    code_mask: u32,
    elem_emax: i32,
    elem_mbits: u32,
    elem_max_bits: u32,
    inv_elem_max_bits: u32,
    qmax_f_bits: u32,
    mxint_frac_bits: u32,
    n_blocks: u32,
    pad0: u32,
}

/// Block parameters as the kernels store them (WGSL `struct BlockP`).
#[repr(C)]
#[derive(Clone, Copy, Debug, Default, PartialEq, Pod, Zeroable)]
struct GpuBlockParams {
    scale_code: u32,
    zero_code: u32,
    mul: u32,
    zero: u32,
    to_elem: u32,
    flags: u32,
    pad0: u32,
    pad1: u32,
}

impl From<&BlockParams> for GpuBlockParams {
    fn from(p: &BlockParams) -> Self {
        Self {
            scale_code: p.scale_code,
            zero_code: p.zero_code,
            mul: p.mul.to_bits(),
            zero: p.zero.to_bits(),
            to_elem: p.to_elem.to_bits(),
            flags: u32::from(p.pow2) | (u32::from(p.nan) << 1),
            pad0: 0,
            pad1: 0,
        }
    }
}

fn scale_kind(s: Option<ScaleType>) -> (u32, u32) {
    match s {
        None => (0, 0),
        Some(ScaleType::E8m0 { rule }) => (
            1,
            match rule {
                E8m0Rule::Floor => 0,
                E8m0Rule::Ceil => 1,
                E8m0Rule::Even => 2,
                E8m0Rule::Rceil => 3,
            },
        ),
        Some(ScaleType::Fp16) => (2, 0),
        Some(ScaleType::Bf16) => (3, 0),
        Some(ScaleType::Fp32) => (4, 0),
        Some(ScaleType::E4m3) => (5, 0),
    }
}

fn float_type_code(t: ScaleType) -> u32 {
    match t {
        ScaleType::Fp16 => 2,
        ScaleType::Bf16 => 3,
        _ => 4,
    }
}

impl CodecUniform {
    /// The parameter block of `format` for a `rows × cols` chunk (global scale: bits or None).
    fn new(format: &Format, rows: usize, cols: usize, global: Option<f32>) -> Result<Self> {
        let f = format.validate()?;
        let el = f.element;
        let mf = match el {
            ElementType::Float(mf) => mf,
            _ => Minifloat::E2M1,
        };
        let over_mag = match f.overflow {
            Overflow::Saturate => mf.max_code_mag(),
            Overflow::InfNan => mf
                .inf_code_mag()
                .or(mf.nan_code_mag())
                .unwrap_or(mf.max_code_mag()),
        };
        let (elem_kind, qmax) = match el {
            ElementType::Float(_) => (0, 0),
            ElementType::Int {
                bits,
                kind: IntKind::Sym,
            } => (1, (1i32 << (bits - 1)) - 1),
            ElementType::Int {
                bits,
                kind: IntKind::Asym,
            } => (2, (1i32 << bits) - 1),
            ElementType::MxInt { bits } => (3, (1i32 << (bits - 1)) - 1),
            ElementType::Nf4 => (4, 0),
        };
        let (scale_kind, e8m0_rule) = scale_kind(f.scale);
        let (zero_kind, zero_type) = match f.zero {
            ZeroPoint::None => (0, 0),
            ZeroPoint::Int => (1, 0),
            ZeroPoint::Float(t) => (2, float_type_code(t)),
        };
        let bits = el.bits();
        let per_tensor = f.block == BlockSize::PerTensor;
        let blen = f.block.block_len(cols);
        let bpr = if per_tensor { 1 } else { cols.div_ceil(blen) };
        let n_blocks = if per_tensor { 1 } else { rows * bpr };
        let u = |n: usize, what: &str| {
            u32::try_from(n).map_err(|_| Error::Gpu(format!("{what} {n} exceeds 2^32")))
        };
        let mxint_frac = match el {
            ElementType::MxInt { bits } => crate::codecs::minifloat::pow2(i32::from(bits) - 2),
            _ => 1.0,
        };
        Ok(Self {
            n_rows: u(rows, "rows")?,
            n_cols: u(cols, "columns")?,
            blen: u(blen, "block length")?,
            bpr: u(bpr, "blocks per row")?,
            per_tensor: u32::from(per_tensor),
            elem_kind,
            exp_bits: u32::from(mf.exp_bits),
            man_bits: u32::from(mf.man_bits),
            emin: mf.emin(),
            bias: mf.bias(),
            special: match mf.special {
                Special::Ieee => 0,
                Special::Fn => 1,
                Special::Finite => 2,
            },
            max_mag: mf.max_code_mag(),
            over_mag,
            nan_mag: mf.nan_code_mag().unwrap_or(u32::MAX),
            sign_shift: u32::from(mf.exp_bits) + u32::from(mf.man_bits),
            rounding: match f.rounding {
                Rounding::Even => 0,
                Rounding::Away => 1,
                Rounding::Zero => 2,
            },
            scale_kind,
            e8m0_rule,
            zero_kind,
            zero_type,
            has_global: u32::from(global.is_some()),
            global_bits: global.unwrap_or(1.0).to_bits(),
            qmax,
            code_mask: if bits >= 32 {
                u32::MAX
            } else {
                (1u32 << bits) - 1
            },
            elem_emax: el.emax(),
            elem_mbits: el.mantissa_bits(),
            elem_max_bits: el.max_value().to_bits(),
            inv_elem_max_bits: (1.0 / el.max_value()).to_bits(),
            qmax_f_bits: (qmax as f32).to_bits(),
            mxint_frac_bits: mxint_frac.to_bits(),
            n_blocks: u(n_blocks, "blocks")?,
            pad0: 0,
        })
    }

    /// The same format viewed as segments of `SEGMENT` elements over a flat `n`-element chunk
    /// (for partial statistics).
    fn segments(mut self, n: usize) -> Result<Self> {
        let n_seg = n.div_ceil(SEGMENT);
        self.n_rows = 1;
        self.n_cols = u32::try_from(n).map_err(|_| Error::Gpu("chunk exceeds 2^32".into()))?;
        self.blen = SEGMENT as u32;
        self.bpr = n_seg as u32;
        self.n_blocks = n_seg as u32;
        self.per_tensor = 0;
        Ok(self)
    }
}

/// The smallest f32 (in total order) that `pick` maps to a code above `lo`, searching (a, b].
fn first_above(a: f32, b: f32, pick: impl Fn(f32) -> bool) -> f32 {
    // Ordered keys: monotone in the value for the finite range used here.
    let key = |x: f32| {
        let b = x.to_bits() as i64;
        if b >> 31 == 1 {
            -(b & 0x7fff_ffff)
        } else {
            b
        }
    };
    let from_key = |k: i64| {
        if k < 0 {
            f32::from_bits((-k) as u32 | 0x8000_0000)
        } else {
            f32::from_bits(k as u32)
        }
    };
    let (mut lo, mut hi) = (key(a), key(b));
    while hi - lo > 1 {
        let mid = lo + (hi - lo) / 2;
        if pick(from_key(mid)) {
            hi = mid;
        } else {
            lo = mid;
        }
    }
    from_key(hi)
}

/// Value table (256 words, element values of non-float codes) and the 15 NF4 thresholds: the
/// smallest f32 whose NF4 code is i + 1, found from the reference encoder itself.
fn tables(format: &Format) -> Result<Vec<u32>> {
    let mut t = vec![0u32; 256 + 16];
    let el = format.element;
    if !matches!(el, ElementType::Float(_)) {
        for (c, slot) in t
            .iter_mut()
            .take(el.n_codes().min(256) as usize)
            .enumerate()
        {
            *slot = el.decode(c as u32).to_bits();
        }
    }
    if el == ElementType::Nf4 {
        // Codes of an NF4 block with unit scale: the reference encoder decides ties.
        let probe = Format {
            scale: Some(ScaleType::Fp32),
            ..*format
        };
        let k = Kernel::new(&probe)?;
        let p = k.params_from_codes(1.0f32.to_bits(), 0, None);
        for i in 0..15 {
            let (a, b) = (NF4_TABLE[i], NF4_TABLE[i + 1]);
            let th = first_above(a, b, |v| k.encode_one(v, &p) > i as u32);
            t[256 + i] = th.to_bits();
        }
    }
    Ok(t)
}

/// The codec pipelines, built once per context.
pub(crate) struct CodecPipelines {
    layout: wgpu::BindGroupLayout,
    stats: wgpu::ComputePipeline,
    params: wgpu::ComputePipeline,
    codes: wgpu::ComputePipeline,
    fake: wgpu::ComputePipeline,
    dequant: wgpu::ComputePipeline,
}

fn storage_entry(binding: u32, read_only: bool) -> wgpu::BindGroupLayoutEntry {
    wgpu::BindGroupLayoutEntry {
        binding,
        visibility: wgpu::ShaderStages::COMPUTE,
        ty: wgpu::BindingType::Buffer {
            ty: wgpu::BufferBindingType::Storage { read_only },
            has_dynamic_offset: false,
            min_binding_size: None,
        },
        count: None,
    }
}

pub(crate) fn uniform_entry(binding: u32) -> wgpu::BindGroupLayoutEntry {
    wgpu::BindGroupLayoutEntry {
        binding,
        visibility: wgpu::ShaderStages::COMPUTE,
        ty: wgpu::BindingType::Buffer {
            ty: wgpu::BufferBindingType::Uniform,
            has_dynamic_offset: false,
            min_binding_size: None,
        },
        count: None,
    }
}

/// Compute pipelines for the named entry points of one module with one explicit layout.
pub(crate) fn build_pipelines<const N: usize>(
    device: &wgpu::Device,
    label: &str,
    source: String,
    layout: &wgpu::BindGroupLayout,
    entries: [&str; N],
) -> [wgpu::ComputePipeline; N] {
    let module = device.create_shader_module(wgpu::ShaderModuleDescriptor {
        label: Some(label),
        source: wgpu::ShaderSource::Wgsl(source.into()),
    });
    let pl = device.create_pipeline_layout(&wgpu::PipelineLayoutDescriptor {
        label: Some(label),
        bind_group_layouts: &[Some(layout)],
        immediate_size: 0,
    });
    entries.map(|entry| {
        device.create_compute_pipeline(&wgpu::ComputePipelineDescriptor {
            label: Some(entry),
            layout: Some(&pl),
            module: &module,
            entry_point: Some(entry),
            compilation_options: Default::default(),
            cache: None,
        })
    })
}

impl CodecPipelines {
    pub(crate) fn new(device: &wgpu::Device) -> Self {
        // The "function signature" of every codec kernel (see shaders/codec.wgsl).
        let layout = device.create_bind_group_layout(&wgpu::BindGroupLayoutDescriptor {
            label: Some("codec"),
            entries: &[
                uniform_entry(0),
                storage_entry(1, true),
                storage_entry(2, false),
                storage_entry(3, false),
                storage_entry(4, false),
                storage_entry(5, true),
            ],
        });
        let [stats, params, codes, fake, dequant] = build_pipelines(
            device,
            "codec",
            shader_source(CODEC_WGSL),
            &layout,
            [
                "block_stats",
                "block_params",
                "quantize_codes",
                "fake_quant",
                "dequantize",
            ],
        );
        Self {
            layout,
            stats,
            params,
            codes,
            fake,
            dequant,
        }
    }
}

/// What the element pass produces.
#[derive(Clone, Copy, PartialEq)]
pub(crate) enum Output {
    /// Fake-quantized values (f32 bits).
    Fake,
    /// Element codes.
    Codes,
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
        let entries = [
            &self.uniform,
            &self.src,
            &self.stats,
            &self.params,
            &self.dst,
            &self.tables,
        ];
        let entries: Vec<wgpu::BindGroupEntry> = entries
            .iter()
            .enumerate()
            .map(|(i, b)| wgpu::BindGroupEntry {
                binding: i as u32,
                resource: b.as_entire_binding(),
            })
            .collect();
        ctx.device.create_bind_group(&wgpu::BindGroupDescriptor {
            label: Some("codec"),
            layout: &ctx.codec.layout,
            entries: &entries,
        })
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
        let bufs = ChunkBuffers {
            uniform: ctx.uniform("codec", &u),
            src: src.clone(),
            stats: ctx.scratch("stats", n_blocks * 4),
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
            Output::Fake => &ctx.codec.fake,
            Output::Codes => &ctx.codec.codes,
        };
        ctx.dispatch(enc, pipeline, &bg, n);
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
