//! AdamW with decoupled weight decay, global-norm gradient clipping, and the warmup + cosine
//! learning-rate schedule. The moments are plain tensors so a run can save and resume them.
//!
//! Update per parameter θ with gradient g at step t (1-based):
//! m ← β₁m + (1−β₁)g, v ← β₂v + (1−β₂)g², θ ← θ − lr·(m̂/(√v̂ + ε) + λθ), with m̂ = m/(1−β₁ᵗ),
//! v̂ = v/(1−β₂ᵗ); λ applies to matrices only (not gains, biases).

use candle_core::backprop::GradStore;
use candle_core::{Tensor, Var};

use crate::error::{Error, Result};

/// AdamW hyper-parameters.
#[derive(Clone, Debug, PartialEq, serde::Serialize, serde::Deserialize)]
pub struct AdamWParams {
    /// β₁.
    pub beta1: f64,
    /// β₂.
    pub beta2: f64,
    /// ε.
    pub eps: f64,
    /// Decoupled weight decay λ (matrices only).
    pub weight_decay: f64,
}

impl Default for AdamWParams {
    fn default() -> Self {
        Self {
            beta1: 0.9,
            beta2: 0.95,
            eps: 1e-8,
            weight_decay: 0.1,
        }
    }
}

/// Optimiser state for a list of variables.
pub struct AdamW {
    /// Hyper-parameters.
    pub params: AdamWParams,
    /// First moments, one per variable.
    pub m: Vec<Tensor>,
    /// Second moments.
    pub v: Vec<Tensor>,
    /// Steps taken.
    pub t: u64,
}

impl AdamW {
    /// Zero moments for `vars`.
    pub fn new(vars: &[Var], params: AdamWParams) -> Result<Self> {
        let zeros = |v: &Var| v.as_tensor().zeros_like();
        Ok(Self {
            params,
            m: vars.iter().map(zeros).collect::<candle_core::Result<_>>()?,
            v: vars.iter().map(zeros).collect::<candle_core::Result<_>>()?,
            t: 0,
        })
    }

    /// One update with learning rate `lr`, gradients scaled by `grad_scale` (clipping).
    pub fn step(
        &mut self,
        vars: &[Var],
        grads: &GradStore,
        lr: f64,
        grad_scale: f64,
    ) -> Result<()> {
        self.t += 1;
        let p = &self.params;
        let t = self.t as i32;
        let (c1, c2) = (1.0 - p.beta1.powi(t), 1.0 - p.beta2.powi(t));
        for (i, var) in vars.iter().enumerate() {
            let Some(g) = grads.get(var.as_tensor()) else {
                continue;
            };
            let g = (g * grad_scale)?;
            let m = ((&self.m[i] * p.beta1)? + (&g * (1.0 - p.beta1))?)?;
            let v = ((&self.v[i] * p.beta2)? + (g.sqr()? * (1.0 - p.beta2))?)?;
            let update = ((&m / c1)? / ((&v / c2)?.sqrt()? + p.eps)?)?;
            let theta = var.as_tensor();
            let decay = if theta.rank() >= 2 {
                p.weight_decay
            } else {
                0.0
            };
            let next = ((theta * (1.0 - lr * decay))? - (update * lr)?)?;
            var.set(&next)?;
            self.m[i] = m;
            self.v[i] = v;
        }
        Ok(())
    }
}

/// √(Σ‖g‖²) over the variables' gradients.
pub fn global_grad_norm(vars: &[Var], grads: &GradStore) -> Result<f64> {
    let mut sum = 0.0f64;
    for var in vars {
        if let Some(g) = grads.get(var.as_tensor()) {
            sum += f64::from(g.sqr()?.sum_all()?.to_scalar::<f32>()?);
        }
    }
    if !sum.is_finite() {
        return Err(Error::Input(
            "gradient norm is not finite (training diverged)".into(),
        ));
    }
    Ok(sum.sqrt())
}

/// Linear warmup over `warmup_steps` to `peak`, then cosine decay to `peak·min_ratio` at
/// `total_steps`. `step` is 0-based.
pub fn lr_at(step: u64, total_steps: u64, warmup_steps: u64, peak: f64, min_ratio: f64) -> f64 {
    if step < warmup_steps {
        return peak * (step + 1) as f64 / warmup_steps as f64;
    }
    let span = total_steps.saturating_sub(warmup_steps).max(1) as f64;
    let progress = ((step - warmup_steps) as f64 / span).min(1.0);
    let cosine = 0.5 * (1.0 + (std::f64::consts::PI * progress).cos());
    peak * (min_ratio + (1.0 - min_ratio) * cosine)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn schedule_warms_up_then_decays_to_the_floor() {
        assert!((lr_at(0, 100, 10, 1.0, 0.1) - 0.1).abs() < 1e-12);
        assert!((lr_at(9, 100, 10, 1.0, 0.1) - 1.0).abs() < 1e-12);
        assert!((lr_at(10, 100, 10, 1.0, 0.1) - 1.0).abs() < 1e-12);
        assert!((lr_at(55, 100, 10, 1.0, 0.1) - 0.55).abs() < 1e-12);
        assert!((lr_at(100, 100, 10, 1.0, 0.1) - 0.1).abs() < 1e-12);
        assert!(lr_at(30, 100, 10, 1.0, 0.1) > lr_at(60, 100, 10, 1.0, 0.1));
    }

    #[test]
    fn adamw_minimises_a_quadratic() {
        let x = Var::new(&[3.0f32, -2.0][..], &candle_core::Device::Cpu).unwrap();
        let vars = vec![x.clone()];
        let mut opt = AdamW::new(
            &vars,
            AdamWParams {
                weight_decay: 0.0,
                ..AdamWParams::default()
            },
        )
        .unwrap();
        for _ in 0..500 {
            let loss = x.as_tensor().sqr().unwrap().sum_all().unwrap();
            let grads = loss.backward().unwrap();
            opt.step(&vars, &grads, 0.05, 1.0).unwrap();
        }
        let v = x.as_tensor().to_vec1::<f32>().unwrap();
        assert!(v.iter().all(|a| a.abs() < 1e-2), "{v:?}");
    }
}
