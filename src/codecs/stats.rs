//! Weight-error statistics of a quantized tensor against its original: MSE, RMSE, SQNR (dB),
//! max |error|, all accumulated in f64. Non-finite pairs (NaN blocks, Inf inputs) are counted
//! and excluded.

use rayon::prelude::*;
use serde::{Deserialize, Serialize};

/// Error statistics of `quantized` against `original`.
#[derive(Clone, Copy, Debug, Default, PartialEq, Serialize, Deserialize)]
pub struct ErrorStats {
    /// Values compared.
    pub n_values: usize,
    /// Values skipped because either side is NaN or infinite.
    pub n_nonfinite: usize,
    /// Mean squared error.
    pub mse: f64,
    /// Largest |original − quantized|.
    pub max_abs_err: f64,
    /// Mean of original² (signal power).
    pub signal_power: f64,
}

impl ErrorStats {
    /// Compares two equally long slices.
    pub fn compute(original: &[f32], quantized: &[f32]) -> Self {
        #[derive(Default, Clone, Copy)]
        struct Acc {
            n: usize,
            bad: usize,
            se: f64,
            sp: f64,
            max: f64,
        }
        let acc = original
            .par_chunks(1 << 14)
            .zip(quantized.par_chunks(1 << 14))
            .map(|(a, b)| {
                let mut acc = Acc::default();
                for (&x, &y) in a.iter().zip(b) {
                    if !x.is_finite() || !y.is_finite() {
                        acc.bad += 1;
                        continue;
                    }
                    let d = f64::from(x) - f64::from(y);
                    acc.n += 1;
                    acc.se += d * d;
                    acc.sp += f64::from(x) * f64::from(x);
                    acc.max = acc.max.max(d.abs());
                }
                acc
            })
            .reduce(Acc::default, |a, b| Acc {
                n: a.n + b.n,
                bad: a.bad + b.bad,
                se: a.se + b.se,
                sp: a.sp + b.sp,
                max: a.max.max(b.max),
            });
        let n = acc.n.max(1) as f64;
        Self {
            n_values: acc.n,
            n_nonfinite: acc.bad,
            mse: acc.se / n,
            max_abs_err: acc.max,
            signal_power: acc.sp / n,
        }
    }

    /// Root mean squared error.
    pub fn rmse(&self) -> f64 {
        self.mse.sqrt()
    }

    /// Signal-to-quantization-noise ratio in dB (+inf when the error is zero).
    pub fn sqnr_db(&self) -> f64 {
        if self.mse == 0.0 {
            f64::INFINITY
        } else {
            10.0 * (self.signal_power / self.mse).log10()
        }
    }
}

/// (Σ(W_q − W)², ΣW²) of round-to-nearest with `format` on one `[rows, cols]` row-major tensor
/// (blocks along the columns), non-finite values excluded as in [`ErrorStats`]; `scratch` is
/// reused between calls. Summed over tensors, the ratio is [`relative_error`].
pub fn rtn_error_energy(
    w: &[f32],
    rows: usize,
    cols: usize,
    format: &super::Format,
    scratch: &mut Vec<f32>,
) -> crate::Result<(f64, f64)> {
    scratch.resize(w.len(), 0.0);
    super::tensor::fake_quant_into(w, rows, cols, format, &super::Method::Rtn, scratch)?;
    let s = ErrorStats::compute(w, scratch);
    let kept = s.n_values as f64;
    Ok((s.mse * kept, s.signal_power * kept))
}

/// ε = Σ‖W_q − W‖² / Σ‖W‖² of round-to-nearest with `format` over `tensors` (`(weights, rows,
/// cols)`): the relative quantization error (1/SQNR) that the format-aware laws read. An error
/// for a shape that does not match its weights, or weights with no energy.
pub fn relative_error<'a>(
    tensors: impl IntoIterator<Item = (&'a [f32], usize, usize)>,
    format: &super::Format,
) -> crate::Result<f64> {
    let (mut err, mut signal) = (0.0f64, 0.0f64);
    let mut q = Vec::new();
    for (w, rows, cols) in tensors {
        let (e, s) = rtn_error_energy(w, rows, cols, format, &mut q)?;
        err += e;
        signal += s;
    }
    energy_ratio(err, signal)
}

/// err/signal, or an error when the signal has no finite energy.
pub fn energy_ratio(err: f64, signal: f64) -> crate::Result<f64> {
    if signal > 0.0 && signal.is_finite() {
        Ok(err / signal)
    } else {
        Err(crate::Error::Input(
            "the weights have no finite energy: ε = ‖W_q − W‖²/‖W‖² is undefined".into(),
        ))
    }
}
