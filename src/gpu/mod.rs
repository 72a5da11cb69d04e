//! The GPU engine on wgpu (Vulkan, Metal, DX12, GL): codec kernels and matmul with the same
//! signatures and results as the CPU path (DESIGN §2, §6).
//!
//! - [`GpuContext`] (`context.rs`): adapter choice (`WGPU_BACKEND`, an adapter name, else the
//!   best device type), device with the adapter's limits, pipelines built once, one upload and
//!   one readback helper. [`GpuContext::try_new`] says why when there is no adapter; callers then
//!   use the CPU path with one warning.
//! - [`codec`]: fake-quant, quantize and dequantize for every `Format` (RTN), **bit-identical**
//!   to `codecs` — every value that decides a code is kept as its binary32 bit pattern and
//!   computed with exact integer soft-float (`shaders/softfloat.wgsl`), because WGSL lets
//!   devices flush subnormals and gives division 2.5 ULP.
//! - [`matmul`]: tiled fp32 GEMM (C = A·Bᵀ) and the MX matmul (both operands fake-quantized per
//!   block along K with any two formats, fp32 accumulation).
//! - [`forward`]: the resident forward pass ([`GpuModel`]: weights uploaded once, logits
//!   read back) behind `eval --device gpu`.
//! - [`errors`]: per-block MSE / max |error| / SQNR reduced on the GPU.
//! - [`resident`]: tensors kept on the GPU between passes (upload once, read back what is needed).
//!
//! Units: element counts and row-major shapes as in `codecs`; tensors that exceed one storage
//! binding run in row chunks. Shaders: `shaders/*.wgsl`, validated by naga in tests/gpu.rs.
//! Blocking: every call waits for the GPU; run it off the UI thread (the explorer uses jobs).

pub mod codec;
pub mod context;
pub mod errors;
pub mod forward;
mod forward_ops;
pub mod matmul;
mod pipelines;
pub mod resident;
pub mod uniform;

pub use codec::{dequantize, fake_quant, quantize};
pub use context::{shader_modules, GpuContext, GpuOptions};
pub use errors::{fake_quant_with_errors, BlockError};
pub use forward::GpuModel;
pub use matmul::{gemm, mx_matmul, MxFormats};
pub use resident::{gemm_resident, CodecPlan, GpuTensor};
