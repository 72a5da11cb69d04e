//! Tensors resident on the GPU and the operations that keep them there: upload once, run codec
//! and matmul passes buffer to buffer, read back only what is needed. The building blocks of
//! the resident forward pass and of `cargo bench --bench gpu` (which times GPU work without
//! transfers).
//!
//! A [`GpuTensor`] is one storage buffer holding a row-major `rows × cols` f32 matrix; it must
//! fit one storage binding ([`GpuContext::max_binding_bytes`]) — larger tensors go through the
//! chunked host-slice functions in `codec` and `matmul`.

use super::codec::{Output, Prepared};
use super::context::GpuContext;
use crate::codecs::Format;
use crate::{Error, Result};

/// A row-major f32 matrix in a GPU storage buffer.
pub struct GpuTensor {
    pub(crate) buf: wgpu::Buffer,
    /// Rows.
    pub rows: usize,
    /// Columns (the reduction dimension K for weights).
    pub cols: usize,
}

impl GpuTensor {
    /// Number of values.
    pub fn len(&self) -> usize {
        self.rows * self.cols
    }

    /// Whether it holds no value.
    pub fn is_empty(&self) -> bool {
        self.len() == 0
    }

    /// Size in bytes.
    pub fn n_bytes(&self) -> u64 {
        self.len() as u64 * 4
    }
}

impl GpuContext {
    /// Uploads `w` (`rows × cols`); an error names the size when it exceeds one binding.
    pub fn upload_tensor(&self, w: &[f32], rows: usize, cols: usize) -> Result<GpuTensor> {
        crate::codecs::tensor::check_shape("upload", w.len(), rows, cols)?;
        let bytes = w.len() as u64 * 4;
        if bytes > self.max_binding_bytes() {
            return Err(Error::Gpu(format!(
                "a resident {rows} × {cols} tensor ({bytes} bytes) exceeds the adapter's largest \
                 storage binding ({} bytes); use the chunked functions",
                self.max_binding_bytes()
            )));
        }
        Ok(GpuTensor {
            buf: self.upload("tensor", w),
            rows,
            cols,
        })
    }

    /// Reads a resident tensor back (waits for the GPU).
    pub fn read_tensor(&self, t: &GpuTensor) -> Result<Vec<f32>> {
        let words = self.submit_and_read(self.encoder(), &t.buf, t.len())?;
        Ok(words.into_iter().map(f32::from_bits).collect())
    }

    /// A buffer-to-buffer copy of `t` (submitted, not waited for): the bandwidth baseline.
    pub fn copy_tensor(&self, t: &GpuTensor) -> GpuTensor {
        let dst = self.scratch("copy", t.len());
        let mut enc = self.encoder();
        enc.copy_buffer_to_buffer(&t.buf, 0, &dst, 0, t.n_bytes().max(16));
        self.queue.submit([enc.finish()]);
        GpuTensor {
            buf: dst,
            rows: t.rows,
            cols: t.cols,
        }
    }

    /// Waits until every submitted command has finished.
    pub fn wait(&self) -> Result<()> {
        self.device
            .poll(wgpu::PollType::wait_indefinitely())
            .map(|_| ())
            .map_err(|e| Error::Gpu(format!("waiting for the GPU: {e}")))
    }
}

/// A format prepared for one tensor (its tensor-level scalars computed once).
pub struct CodecPlan {
    prep: Prepared,
}

impl CodecPlan {
    /// Prepares `format` for the tensor whose host copy is `w` (`cols` columns).
    pub fn new(ctx: &GpuContext, w: &[f32], cols: usize, format: &Format) -> Result<Self> {
        Ok(Self {
            prep: Prepared::new(ctx, w, cols, format)?,
        })
    }

    /// Fake-quantizes a resident tensor into a new one (submitted, not waited for).
    pub fn fake_quant(&self, ctx: &GpuContext, t: &GpuTensor) -> Result<GpuTensor> {
        let mut enc = ctx.encoder();
        let (dst, _, _) = self
            .prep
            .record(ctx, &mut enc, &t.buf, t.rows, t.cols, Output::Fake)?;
        ctx.queue.submit([enc.finish()]);
        Ok(GpuTensor {
            buf: dst,
            rows: t.rows,
            cols: t.cols,
        })
    }
}

/// `C = A·Bᵀ` on resident tensors (`a`: `m × k`, `b`: `n × k`; submitted, not waited for).
pub fn gemm_resident(ctx: &GpuContext, a: &GpuTensor, b: &GpuTensor) -> Result<GpuTensor> {
    if a.cols != b.cols {
        return Err(Error::Shape {
            op: "gemm",
            detail: format!(
                "A is {} × {} but B is {} × {} (both must run along the same K)",
                a.rows, a.cols, b.rows, b.cols
            ),
        });
    }
    let mut enc = ctx.encoder();
    let c = super::matmul::record_gemm(ctx, &mut enc, &a.buf, &b.buf, a.rows, a.cols, b.rows);
    ctx.queue.submit([enc.finish()]);
    Ok(GpuTensor {
        buf: c,
        rows: a.rows,
        cols: b.rows,
    })
}
