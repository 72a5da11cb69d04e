//! quantscape: post-training quantization (PTQ) of language models, measured and modelled.
//!
//! One crate, two faces: the `quantscape` explorer (feature `gui`) and its headless CLI twin.
//! Modules follow DESIGN §2 and may only use the modules to their left:
//! `model` → `codecs` (pure CPU reference kernels) → `gpu` → `eval` → `search` → `laws` →
//! `landscape` → `jobs` → `app`/`cli`. Only `app` imports egui.
//!
//! Present today: [`codecs`] (every block format; RTN, HQQ, GPTQ and AWQ), [`model`] (Hugging
//! Face checkpoints of the Llama, GPT-2 and GPT-NeoX families and llama GGUF files, tokenizers,
//! the CPU forward pass with its hooks, sequential calibration), [`eval`] (NLL, ΔL with bootstrap
//! CI, KL, top-1; the bundled corpus), [`train`] (the bundled families' trainer), [`search`]
//! (mixed-precision sweeps and their SQLite store), [`laws`] (scaling-law forms, robust fits with
//! bootstrap CIs, random-forest predictor, grids and isolines), [`jobs`] (background work),
//! [`io`] (crash-safe writes) and, with feature `gui`, `app` (the explorer: Models, Laws and
//! Hardware views, sessions, exports), [`landscape`] (loss slices) and, with feature `gpu`,
//! `gpu` (wgpu codec kernels bit-identical to `codecs`, GEMM and MX matmul). The resident GPU
//! forward pass lands with the GPU issue.

#[cfg(feature = "gui")]
pub mod app;
pub mod codecs;
pub mod error;
pub mod eval;
#[cfg(feature = "gpu")]
pub mod gpu;
pub mod io;
pub mod jobs;
pub mod landscape;
pub mod laws;
pub mod limits;
pub mod model;
pub mod search;
pub mod session;
pub mod tasks;
pub mod train;

pub use error::{Error, Result};
