//! Where the loader's tensors come from ([`Source`]): an opened checkpoint read with checks
//! (every tensor present with the shape the config implies, finite values), the same checks
//! without keeping the values (validation), or a seeded initialisation. Used by
//! [`super::transformer::Transformer`]'s loader; [`super::trainable`] builds on it.

use std::path::Path;

use candle_core::{Device, Tensor};
use rand::SeedableRng as _;

use super::checkpoint::Checkpoint;
use super::config::ArchConfig;
use crate::error::{Error, Result};

/// Where the loader's tensors come from.
pub(crate) enum Source<'a> {
    /// An opened checkpoint.
    Checkpoint(&'a Checkpoint),
    /// A fresh seeded initialisation.
    Init(Init),
    /// An opened checkpoint, only checked: every tensor the architecture reads must exist with
    /// its shape, a float dtype and finite values, but the model keeps no weights (each comes
    /// back as a broadcast zero, so validating a 7B checkpoint holds one tensor at a time).
    Validate(&'a Checkpoint),
}

/// Seeded initialisation rules.
pub(crate) struct Init {
    pub(crate) seed: u64,
    pub(crate) std: f64,
    pub(crate) n_layers: usize,
}

impl Init {
    /// Draws the initial value of `name`.
    pub(crate) fn draw(&mut self, name: &str, shape: &[usize], device: &Device) -> Result<Tensor> {
        let n: usize = shape.iter().product();
        let last = name.rsplit('.').nth(1).unwrap_or("");
        let is_norm = last.contains("norm") || last.ends_with("_ln") || last.starts_with("ln_");
        let values: Vec<f32> = if name.ends_with(".bias") {
            vec![0.0; n]
        } else if is_norm || shape.len() == 1 {
            vec![1.0; n]
        } else {
            let residual_out = ["o_proj", "down_proj", "dense", "dense_4h_to_h", "c_proj"];
            let std = if residual_out.contains(&last) {
                self.std / (2.0 * self.n_layers.max(1) as f64).sqrt()
            } else {
                self.std
            };
            let mut rng = rand::rngs::StdRng::seed_from_u64(self.seed ^ fnv1a(name));
            (0..n)
                .map(|_| (std * standard_normal(&mut rng)) as f32)
                .collect()
        };
        Ok(Tensor::from_vec(values, shape, device)?)
    }
}

fn fnv1a(s: &str) -> u64 {
    s.bytes().fold(0xcbf2_9ce4_8422_2325, |h, b| {
        (h ^ u64::from(b)).wrapping_mul(0x0100_0000_01b3)
    })
}

/// One N(0, 1) draw (Box–Muller).
pub fn standard_normal(rng: &mut impl rand::Rng) -> f64 {
    let u1: f64 = rng.random::<f64>().max(f64::MIN_POSITIVE);
    let u2: f64 = rng.random();
    (-2.0 * u1.ln()).sqrt() * (std::f64::consts::TAU * u2).cos()
}

/// Reads `name` from `ck`, checking its shape against the config and its values for NaN/Inf.
pub(crate) fn read_checked(
    ck: &Checkpoint,
    cfg: &ArchConfig,
    name: &str,
    shape: &[usize],
    device: &Device,
) -> Result<Tensor> {
    let data = read_finite(ck, name, checked_file(ck, cfg, name, shape)?)?;
    Ok(Tensor::from_vec(data, shape, device)?)
}

/// [`read_checked`] without keeping the values: a broadcast zero of `shape` (no allocation).
pub(crate) fn validate_checked(
    ck: &Checkpoint,
    cfg: &ArchConfig,
    name: &str,
    shape: &[usize],
    device: &Device,
) -> Result<Tensor> {
    drop(read_finite(ck, name, checked_file(ck, cfg, name, shape)?)?);
    Ok(Tensor::zeros((), candle_core::DType::F32, device)?.broadcast_as(shape)?)
}

/// The file holding `name`, after checking that the tensor exists with exactly `shape`.
fn checked_file<'a>(
    ck: &'a Checkpoint,
    cfg: &ArchConfig,
    name: &str,
    shape: &[usize],
) -> Result<&'a Path> {
    let entry = ck.tensors.get(name).ok_or_else(|| {
        Error::checkpoint(
            &ck.dir,
            format!("missing tensor `{name}` for {}", cfg.architecture),
        )
    })?;
    let path = ck
        .files
        .get(entry.file)
        .map_or(ck.dir.as_path(), |p| p.as_path());
    if entry.shape != shape {
        return Err(Error::checkpoint(
            path,
            format!(
                "tensor `{name}` has shape {:?}, config.json implies {shape:?}",
                entry.shape
            ),
        ));
    }
    Ok(path)
}

fn read_finite(ck: &Checkpoint, name: &str, path: &Path) -> Result<Vec<f32>> {
    let data = ck.read_f32(name)?;
    if let Some(i) = data.iter().position(|x| !x.is_finite()) {
        return Err(Error::checkpoint(
            path,
            format!("tensor `{name}` holds a non-finite value at index {i}"),
        ));
    }
    Ok(data)
}
