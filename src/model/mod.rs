//! Models: Hugging Face checkpoints, their configs and tokenizers, and the CPU forward pass.
//!
//! [`checkpoint`] (memory-mapped safetensors with bounds checks, dtype conversion, crash-safe
//! writing of a new folder) → [`config`] (`config.json` → [`ArchConfig`]) → [`arch`] (one file
//! per family mapping names and shapes) → [`transformer`] (the shared decoder, its linear and
//! matmul sites) built from [`layers`] (candle ops and the [`Hooks`]). [`tokenizer`] encodes
//! text and decides the BOS policy; [`hub`] finds `org/name` in the local Hugging Face cache;
//! [`sites`] says which checkpoint tensors are quantizable (DESIGN §3); [`kernels`] holds the
//! fused CPU kernels (fast exp, causal softmax) the forward pass and the evaluation share.

pub mod arch;
pub mod calibrated;
pub mod checkpoint;
pub mod config;
pub mod gguf;
pub mod gguf_check;
pub mod hub;
pub mod kernels;
pub mod layers;
pub mod quantized;
pub mod sites;
mod source;
pub mod tokenizer;
pub mod trainable;
pub mod transformer;

pub use candle_core::Tensor;
pub use config::{ArchConfig, Family};
pub use layers::{Hooks, NoHooks};
pub use tokenizer::Tokenizer;
pub use transformer::{LinearSite, MatmulKind, MatmulSite, Transformer};
