//! Trainable models: the same [`Transformer`] (same architecture files, same names and shapes)
//! with every parameter a candle [`Var`] and a differentiable forward pass.
//!
//! A model comes from a checkpoint folder ([`load_trainable`], to resume or fine-tune) or from a
//! seeded initialisation ([`init`]): matrices and embeddings N(0, σ²) with σ = `init_std`,
//! residual-output projections (`o_proj`, `down_proj`, `attention.dense`, `dense_4h_to_h`)
//! σ/√(2·layers) (GPT-2's scaled init), norm gains 1, biases 0. Each tensor's draw is seeded by
//! (seed, tensor name), so it does not depend on load order or thread count.
//! Tied embeddings are one variable. [`save`] writes the variables under their checkpoint
//! names (fp32 for training state, bf16 for releases).

use std::path::Path;

use candle_core::{Tensor, Var};

use super::checkpoint::{f32_to_bytes, write_safetensors, Checkpoint, DType, OutTensor};
use super::config::ArchConfig;
pub use super::source::standard_normal;
use super::source::{Init, Source};
use super::transformer::Transformer;
use crate::error::{Error, Result};

/// Named trainable parameters in load order.
pub type Vars = Vec<(String, Var)>;

/// A freshly initialised trainable model for `config` (see the module header for the rules).
pub fn init(config: ArchConfig, seed: u64, init_std: f64) -> Result<(Transformer, Vars)> {
    let n_layers = config.n_layers;
    Transformer::build(
        config,
        Source::Init(Init {
            seed,
            std: init_std,
            n_layers,
        }),
        true,
    )
}

/// The checkpoint folder `dir` as a trainable model.
pub fn load_trainable(dir: &Path) -> Result<(Transformer, Vars)> {
    let config = ArchConfig::load(dir)?;
    let ck = Checkpoint::open(dir)?;
    Transformer::build(config, Source::Checkpoint(&ck), true)
}

/// Writes `vars` (and `extra` tensors, e.g. optimiser moments) as one safetensors file in
/// `dtype` (F32, F16 or BF16), atomically.
pub fn save(
    path: &Path,
    vars: &[(String, Tensor)],
    dtype: DType,
    metadata: Option<std::collections::BTreeMap<String, String>>,
) -> Result<()> {
    let tensors = vars
        .iter()
        .map(|(name, t)| {
            let values = t.flatten_all()?.to_vec1::<f32>()?;
            let data = f32_to_bytes(&values, dtype).ok_or_else(|| {
                Error::Input(format!("cannot store `{name}` as {}", dtype.name()))
            })?;
            Ok(OutTensor {
                name: name.clone(),
                dtype,
                shape: t.dims().to_vec(),
                data,
            })
        })
        .collect::<Result<Vec<_>>>()?;
    let tmp = path.with_extension("tmp");
    write_safetensors(&tmp, &tensors, metadata)?;
    std::fs::rename(&tmp, path).map_err(|e| Error::io("rename", path, e))
}
