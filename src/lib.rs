//! quantscape: post-training quantization (PTQ) of language models, measured and modelled.
//!
//! One crate, two faces: the `quantscape` explorer (feature `gui`) and its headless CLI twin.
//! Modules follow DESIGN §2 and may only use the modules to their left:
//! `model` → `codecs` (pure CPU reference kernels) → `gpu` → `eval` → `search` → `laws` →
//! `landscape` → `jobs` → `app`/`cli`. Only `app` imports egui.
//!
//! Present today: [`codecs`] (every block format, RTN and HQQ), [`model`] (Hugging Face
//! checkpoints of the Llama, GPT-2 and GPT-NeoX families, tokenizers, the CPU forward pass with
//! its hooks), [`eval`] (NLL, ΔL with bootstrap CI, KL, top-1) and [`laws`] (scaling-law forms,
//! robust fits with bootstrap CIs, random-forest predictor, grids and isolines). The rest lands
//! issue by issue.

pub mod codecs;
pub mod error;
pub mod eval;
pub mod laws;
pub mod model;
pub mod search;
pub mod train;

pub use error::{Error, Result};
