//! PTQ scaling laws: law forms as data, robust fitting, uncertainty, prediction, grids, contours.
//!
//! Pure: no model, GPU or file-system code besides reading a CSV from any `Read` (DESIGN §2), so
//! a refit is cheap enough to run on every slider move.
//!
//! - [`forms`]: the built-in laws (unified weak/strong of Cao et al., Kumar's δ_PTQ and base
//!   law with N_eff, the QAT law with group size, the floating-point "Capybara" law) as
//!   [`Law`] values: name, parameters with bounds and start grids, value and analytic gradient.
//! - [`formula`]: a law typed as text (`C*exp(A*Qr)*N^(-g)`), parameters detected.
//! - [`mod@fit`]: Huber (or least squares) on log or linear residuals, Levenberg–Marquardt from a grid
//!   of starts with variable projection of the scale parameter; R², RMSE, MAPE, covariance,
//!   leave-one-size-out, parallel bootstrap CIs.
//! - [`forest`]: random-forest predictor (Xu et al.) with leave-one-family-out evaluation.
//! - [`grid`]: a law on a 2-D grid, isolines (the `contour` crate), ΔL budget curves.
//!
//! Data layout: one [`Row`] of the nine law variables per measured point (a variable a dataset
//! lacks is NaN), plus the target (ΔL in nats per token, or a loss) and a family label.
//! Units: N and D are counts (parameters, tokens); Qr is a fraction in [0, 1]; Qb elements;
//! P, E, M and `bits` are bits; `eps` is a ratio of energies (1/SQNR, dimensionless).

pub mod data;
pub mod diagnose;
pub mod fit;
pub mod forest;
pub mod forms;
pub mod formula;
pub mod grid;
mod optim;
pub mod params;
pub mod per_format;

pub use data::{grid_rows, is_results_store, synthesize, Dataset};
pub use fit::{fit, predict, FitOptions, FitReport, Loss, Space};
pub use forms::{Law, ParamSpec, Target};

/// Number of law variables (the length of a [`Row`]).
pub const N_VARS: usize = 9;

/// One point's variables, indexed by [`Var`]; NaN where a dataset has no such column.
pub type Row = [f64; N_VARS];

/// A row with every variable missing.
pub const EMPTY_ROW: Row = [f64::NAN; N_VARS];

/// A variable a law may depend on.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash, PartialOrd, Ord, serde::Serialize)]
pub enum Var {
    /// Non-embedding parameter count.
    N,
    /// Training tokens seen.
    D,
    /// Fraction of quantizable weights (or matmuls) in the low-precision format, in [0, 1].
    Qr,
    /// Block size: elements sharing one scale (the group size G of the QAT law, B of the FP law).
    Qb,
    /// Precision after quantization in bits (Kumar's P; element bits of the low format).
    P,
    /// Exponent bits of a floating-point element format.
    E,
    /// Mantissa bits of a floating-point element format.
    M,
    /// Bits per weight including the shared-scale overhead.
    Bits,
    /// Relative quantization error of the low format at its Qb on the model's quantizable
    /// weights, ε = ‖W_q − W‖²/‖W‖² = 1/SQNR (RTN; the format-aware laws' measured input).
    Eps,
}

impl Var {
    /// Every variable in [`Row`] order.
    pub const ALL: [Var; N_VARS] = [
        Var::N,
        Var::D,
        Var::Qr,
        Var::Qb,
        Var::P,
        Var::E,
        Var::M,
        Var::Bits,
        Var::Eps,
    ];

    /// Position in a [`Row`].
    pub fn index(self) -> usize {
        self as usize
    }

    /// The canonical spelling (`N`, `D`, `Qr`, `Qb`, `P`, `E`, `M`, `bits`, `eps`).
    pub fn name(self) -> &'static str {
        match self {
            Var::N => "N",
            Var::D => "D",
            Var::Qr => "Qr",
            Var::Qb => "Qb",
            Var::P => "P",
            Var::E => "E",
            Var::M => "M",
            Var::Bits => "bits",
            Var::Eps => "eps",
        }
    }

    /// Parses a canonical spelling or a common column alias (case-insensitive).
    pub fn parse(name: &str) -> Option<Var> {
        let lower = name.trim().to_ascii_lowercase();
        Some(match lower.as_str() {
            "n" | "n_params" | "params" | "n_nonembed" | "non_embedding_params" => Var::N,
            // Not `n_tokens`: result tables use it for the scored (evaluation) tokens.
            "d" | "tokens" | "train_tokens" => Var::D,
            "qr" | "q_r" | "ratio" | "low_ratio" => Var::Qr,
            "qb" | "q_b" | "block" | "block_size" | "group" | "group_size" | "g" | "b" => Var::Qb,
            "p" | "precision" | "element_bits" => Var::P,
            "e" | "exp_bits" | "exponent_bits" => Var::E,
            "m" | "man_bits" | "mantissa_bits" => Var::M,
            "bits" | "bits_per_weight" | "bpw" => Var::Bits,
            "eps" | "epsilon" | "rel_error" | "quant_error" => Var::Eps,
            _ => return None,
        })
    }

    /// Whether plots and grids use a log axis for this variable by default.
    pub fn is_log_scale(self) -> bool {
        matches!(self, Var::N | Var::D | Var::Qb | Var::Eps)
    }
}

impl std::fmt::Display for Var {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str(self.name())
    }
}

/// Builds a [`Row`] from `(variable, value)` pairs; the rest stay NaN.
pub fn row(values: &[(Var, f64)]) -> Row {
    let mut r = EMPTY_ROW;
    for &(v, x) in values {
        r[v.index()] = x;
    }
    r
}
