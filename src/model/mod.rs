//! Models: Hugging Face checkpoints (safetensors, shards), and which weights are quantizable.
//!
//! Present: [`checkpoint`] (memory-mapped reading with bounds checks, dtype conversion,
//! crash-safe writing of a new checkpoint folder) and [`sites`] (the quantizable linear weights
//! of a checkpoint, DESIGN §3). Architectures and the forward pass arrive with the checkpoint /
//! forward / evaluation issue.

pub mod checkpoint;
pub mod sites;
