//! quantscape: post-training quantization (PTQ) of language models, measured and modelled.
//!
//! One crate, two faces: the `quantscape` explorer (feature `gui`) and its headless CLI twin.
//! Modules follow DESIGN §2 and may only use the modules to their left:
//! `model` → `codecs` (pure CPU reference kernels) → `gpu` → `eval` → `search` → `laws` →
//! `landscape` → `jobs` → `app`/`cli`. Only `app` imports egui.
//!
//! Present today: [`codecs`] (every block format, RTN and HQQ) and [`model::checkpoint`]
//! (safetensors reading and writing with bounds checks). The rest lands issue by issue.

pub mod codecs;
pub mod error;
pub mod model;

pub use error::{Error, Result};
