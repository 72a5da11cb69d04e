//! quantscape: post-training quantization (PTQ) of language models, measured and modelled.
//!
//! One crate, two faces: the `quantscape` explorer (feature `gui`) and its headless CLI twin.
//! Both sit on one task layer ([`tasks`]): a typed request per action (quantize, evaluate, fit,
//! sweep…) and one `run(&Request, &JobCtx) -> Result<Report>`. ARCHITECTURE.md maps the code;
//! its layer table — each module uses only modules on lower rows — is checked by
//! `tests/architecture.rs`:
//!
//! `error` → `io`, `limits`, `jobs` → `codecs` → `model` → `gpu` → `eval` → `search` → `laws` →
//! `landscape`, `train` → `tasks` → `session` → `figures` → `app` (and the binary's `cli` on top).
//! Only `app` imports egui.
//!
//! [`codecs`] holds every block format (RTN, HQQ, GPTQ, AWQ; the CPU reference that every fast
//! path is tested against), [`model`] the checkpoints (Hugging Face folders of the Llama, GPT-2
//! and GPT-NeoX families, llama GGUF), tokenizers and the CPU forward pass with its hooks,
//! `gpu` (feature `gpu`) the wgpu kernels bit-identical to `codecs`, GEMM, MX matmul and the
//! resident forward pass, [`eval`] NLL, ΔL with bootstrap CI, KL and top-1 on the bundled corpus,
//! [`search`] mixed-precision sweeps and their SQLite store, [`laws`] scaling-law forms, robust
//! fits with bootstrap CIs and the random-forest predictor, [`landscape`] loss slices, Hessian
//! probes and landscape features, [`train`] the bundled families' trainer, [`jobs`] background
//! work, [`alloc`] the binaries' allocator tuning, [`io`] crash-safe writes, [`limits`] caps on every work size, [`session`] what the
//! explorer saves, [`figures`] every plot as data and as SVG/PNG/CSV (no egui), and `app` (feature `gui`) the explorer's seven views.

pub mod alloc;
#[cfg(feature = "gui")]
pub mod app;
pub mod codecs;
pub mod error;
pub mod eval;
pub mod figures;
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
