//! Matmul on the GPU: a tiled fp32 GEMM in the "NT" layout (C = A·Bᵀ, both operands row-major
//! along K) and the MX matmul, whose operands are first fake-quantized per block along K with
//! any two formats by the codec kernels — on resident buffers, no readback in between — and
//! then multiplied with fp32 accumulation. That is the kernel matmul-wise mixed precision needs
//! (X·Wᵀ, Q·Kᵀ, and attention·V with V passed transposed).
//!
//! Shapes: `a` is `m × k`, `b` is `n × k`, the result `m × n`, all row-major f32. Operands
//! larger than one storage binding are split into row chunks of A and B; results are exact
//! fp32 sums in k order within a 16-wide k tile (tests compare with the CPU in f64 to a named
//! relative tolerance).

use bytemuck::{Pod, Zeroable};

use super::codec::{Output, Prepared};
use super::context::GpuContext;
use crate::codecs::Format;
use crate::{Error, Result};

/// Output tile edge of `gemm_nt` (WGSL `TILE`).
const TILE: u32 = 64;

/// WGSL `struct Mm`.
#[repr(C)]
#[derive(Clone, Copy, Debug, Pod, Zeroable)]
struct MmUniform {
    m: u32,
    n: u32,
    k: u32,
    has_bias: u32,
}

/// Records `C = A·Bᵀ` for resident `a` (`m × k`) and `b` (`n × k`); returns C's buffer.
pub(crate) fn record_gemm(
    ctx: &GpuContext,
    enc: &mut wgpu::CommandEncoder,
    a: &wgpu::Buffer,
    b: &wgpu::Buffer,
    m: usize,
    k: usize,
    n: usize,
) -> wgpu::Buffer {
    let c = ctx.scratch("c", m * n);
    record_gemm_into(ctx, enc, (a, b, None), &c, (m, k, n));
    c
}

/// Records `C = A·Bᵀ (+ bias)` into `c` (`m × n`).
pub(crate) fn record_gemm_into(
    ctx: &GpuContext,
    enc: &mut wgpu::CommandEncoder,
    (a, b, bias): (&wgpu::Buffer, &wgpu::Buffer, Option<&wgpu::Buffer>),
    c: &wgpu::Buffer,
    (m, k, n): (usize, usize, usize),
) {
    let u = MmUniform {
        m: m as u32,
        n: n as u32,
        k: k as u32,
        has_bias: u32::from(bias.is_some()),
    };
    let uniform = ctx.uniform("mm", &u);
    let bias = bias.unwrap_or(a);
    let bg = ctx.bind_buffers("matmul", &ctx.matmul.layout, &[&uniform, a, b, c, bias]);
    let mut pass = enc.begin_compute_pass(&wgpu::ComputePassDescriptor {
        label: Some("gemm_nt"),
        timestamp_writes: None,
    });
    pass.set_pipeline(&ctx.matmul.gemm);
    pass.set_bind_group(0, &bg, &[]);
    pass.dispatch_workgroups(
        (n as u32).div_ceil(TILE).max(1),
        (m as u32).div_ceil(TILE).max(1),
        1,
    );
}

fn check(op: &'static str, len: usize, rows: usize, cols: usize) -> Result<()> {
    crate::codecs::tensor::check_shape(op, len, rows, cols)
}

/// Operand formats of an MX matmul (`None`: that operand stays fp32).
#[derive(Clone, Copy, Debug, Default)]
pub struct MxFormats<'a> {
    /// Format of A (activations), blocked along K.
    pub a: Option<&'a Format>,
    /// Format of B (weights, `n × k`), blocked along K.
    pub b: Option<&'a Format>,
}

/// `C = A·Bᵀ` in fp32 on the GPU (`a`: `m × k`, `b`: `n × k`, result `m × n`).
pub fn gemm(
    ctx: &GpuContext,
    a: &[f32],
    b: &[f32],
    m: usize,
    k: usize,
    n: usize,
) -> Result<Vec<f32>> {
    mx_matmul(ctx, a, b, m, k, n, MxFormats::default())
}

/// The MX matmul: A and B fake-quantized per block along K (each with its own format, RTN),
/// then multiplied in fp32. Equals `gemm(fake_quant(A), fake_quant(B))` (the codec passes are
/// bit-identical to the CPU reference).
pub fn mx_matmul(
    ctx: &GpuContext,
    a: &[f32],
    b: &[f32],
    m: usize,
    k: usize,
    n: usize,
    formats: MxFormats<'_>,
) -> Result<Vec<f32>> {
    check("matmul (A)", a.len(), m, k)?;
    check("matmul (B)", b.len(), n, k)?;
    let mut c = vec![0.0f32; m * n];
    if m * n == 0 {
        return Ok(c);
    }
    let prep_a = formats.a.map(|f| Prepared::new(ctx, a, k, f)).transpose()?;
    let prep_b = formats.b.map(|f| Prepared::new(ctx, b, k, f)).transpose()?;
    let max_words = (ctx.max_binding_bytes() / 4) as usize;
    let b_rows = ctx.rows_per_chunk(k)?.min(n);
    let a_rows = ctx
        .rows_per_chunk(k)?
        .min((max_words / b_rows.max(1)).max(1))
        .min(m);
    if k == 0 {
        return Ok(c);
    }
    // Resident operand chunks (fake-quantized where a format is given).
    let resident = |data: &[f32], prep: &Option<Prepared>, rows: usize| -> Result<wgpu::Buffer> {
        let raw = ctx.upload("operand", data);
        match prep {
            None => Ok(raw),
            Some(p) => {
                let mut enc = ctx.encoder();
                let (dst, _, _) = p.record(ctx, &mut enc, &raw, rows, k, Output::Fake)?;
                ctx.queue.submit([enc.finish()]);
                Ok(dst)
            }
        }
    };
    let b_chunks: Vec<(usize, usize, wgpu::Buffer)> = (0..n)
        .step_by(b_rows)
        .map(|r0| {
            let rows = b_rows.min(n - r0);
            resident(&b[r0 * k..(r0 + rows) * k], &prep_b, rows).map(|buf| (r0, rows, buf))
        })
        .collect::<Result<_>>()?;
    for r0 in (0..m).step_by(a_rows) {
        let rows = a_rows.min(m - r0);
        let abuf = resident(&a[r0 * k..(r0 + rows) * k], &prep_a, rows)?;
        for (c0, cols, bbuf) in &b_chunks {
            let mut enc = ctx.encoder();
            let cbuf = record_gemm(ctx, &mut enc, &abuf, bbuf, rows, k, *cols);
            let block = ctx.submit_and_read(enc, &cbuf, rows * cols)?;
            for (i, row) in block.chunks_exact(*cols).enumerate() {
                let dst = (r0 + i) * n + c0;
                let Some(out) = c.get_mut(dst..dst + cols) else {
                    return Err(Error::Gpu("matmul chunk outside the result".into()));
                };
                for (o, &v) in out.iter_mut().zip(row) {
                    *o = f32::from_bits(v);
                }
            }
        }
    }
    Ok(c)
}
