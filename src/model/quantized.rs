//! Quantized weights as a forward-pass hook: every quantizable linear weight fake-quantized
//! with one codec (format × method × block size), held as `[out, in]` tensors and swapped in
//! through [`Hooks::weight`] without touching the loaded model.
//!
//! Blocks run along K (the input dimension), as DESIGN §3 requires, for every architecture:
//! the model holds GPT-2's `Conv1D` weights already transposed to `[out, in]`.

use candle_core::Tensor;
use rayon::prelude::*;

use super::layers::Hooks;
use super::transformer::Transformer;
use crate::codecs::{fake_quant, ErrorStats, Format, Method};
use crate::error::Result;

/// Per-linear weight overrides (`None` keeps the model's weight) and matmul operand formats.
#[derive(Clone, Debug, Default)]
pub struct Overrides {
    /// Indexed like [`Transformer::linears`].
    pub weights: Vec<Option<Tensor>>,
    /// Indexed like [`Transformer::matmuls`].
    pub operands: Vec<Option<Format>>,
}

impl Hooks for Overrides {
    fn weight(&self, linear: usize) -> Option<&Tensor> {
        self.weights.get(linear)?.as_ref()
    }
    fn operand_format(&self, matmul: usize) -> Option<&Format> {
        self.operands.get(matmul)?.as_ref()
    }
}

/// One linear weight quantized: the tensor and its error statistics.
pub struct QuantizedLinear {
    /// `[out, in]` fake-quantized weight.
    pub weight: Tensor,
    /// Error against the original.
    pub stats: ErrorStats,
}

/// Fake-quantizes linear site `i` of `model`.
pub fn quantize_linear(
    model: &Transformer,
    i: usize,
    format: &Format,
    method: &Method,
) -> Result<QuantizedLinear> {
    let lin = model.linear(i)?;
    let w = lin.weight.flatten_all()?.to_vec1::<f32>()?;
    let (rows, cols) = lin.weight.dims2()?;
    let q = fake_quant(&w, rows, cols, format, method)?;
    let stats = ErrorStats::compute(&w, &q);
    Ok(QuantizedLinear {
        weight: Tensor::from_vec(q, (rows, cols), lin.weight.device())?,
        stats,
    })
}

/// Every linear site of `model` quantized with the same codec (sites in parallel).
pub fn quantize_all(
    model: &Transformer,
    format: &Format,
    method: &Method,
) -> Result<(Overrides, Vec<ErrorStats>)> {
    let done: Vec<QuantizedLinear> = (0..model.linears.len())
        .into_par_iter()
        .map(|i| quantize_linear(model, i, format, method))
        .collect::<Result<_>>()?;
    let stats = done.iter().map(|q| q.stats).collect();
    let weights = done.into_iter().map(|q| Some(q.weight)).collect();
    Ok((
        Overrides {
            weights,
            operands: Vec::new(),
        },
        stats,
    ))
}
