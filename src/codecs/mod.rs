//! Codecs: the CPU reference for every block format, any block size (pure Rust + rayon).
//!
//! A quantized tensor is [`Format`] × [`Method`] × block size Qb (DESIGN §3). This module is
//! the oracle every other path (GPU kernels, sweeps) is tested against, so it is exact:
//! integer rounding on significands, scales rounded to their storage types before use, and
//! `fake_quant == dequantize ∘ quantize` bit for bit.
//!
//! Layout: `minifloat` (ExMy codec), `element` (element types), `scale` (scale types and E8M0
//! rules), `rounding`, `format` (Format, presets, spelling, bits per weight), `kernel` (block
//! parameters, element loops), `tensor` (quantize / dequantize / fake-quant of a matrix),
//! `isa` (run-time choice of AVX2 for the element loops), `hqq`, `gptq` and `awq` (calibrated methods, given H), `pack` (bit packing), `stats` (MSE, SQNR), `method`.
//!
//! Shapes and units: weights are row-major `rows × cols` f32 with blocks along `cols` (the
//! reduction dimension K); bits are per weight; SQNR in dB.

pub mod awq;
pub mod block_stats;
pub mod element;
pub mod format;
pub mod gptq;
pub mod hqq;
pub mod isa;
pub mod kernel;
mod linalg;
pub mod method;
pub mod minifloat;
pub mod pack;
pub mod rounding;
pub mod scale;
pub mod stats;
pub mod tensor;

pub use awq::{awq, AwqLayer, AwqOutput, AwqParams};
pub use element::{ElementType, IntKind, NF4_TABLE};
pub use format::{BlockSize, Format, ZeroPoint, PRESET_NAMES};
pub use gptq::{gptq, gptq_factored, GptqFactor, GptqOutput, GptqParams};
pub use kernel::{BlockParams, BlockStats, Kernel};
pub use method::{HqqParams, Method};
pub use minifloat::{Minifloat, Special};
pub use pack::PackedCodes;
pub use rounding::{Overflow, Rounding};
pub use scale::{E8m0Rule, ScaleType};
pub use stats::{energy_ratio, relative_error, rtn_error_energy, ErrorStats};
pub use tensor::{
    dequantize, dequantize_into, fake_quant, fake_quant_into, fake_quant_into_isa, quantize,
    QuantizedTensor,
};
