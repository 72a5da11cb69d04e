//! The parameters of a law: name, bounds, multi-start values and how each enters the law
//! ([`Role`]: scale, linear, or nonlinear). Shared by the built-in laws ([`super::forms`]) and
//! typed formulas ([`super::formula`]).

/// How a parameter enters the law.
#[derive(Clone, Copy, Debug, PartialEq, Eq, serde::Serialize)]
pub enum Role {
    /// Multiplies the whole law (C, C_T, k): positive, profiled out in log-space fits.
    Scale,
    /// Enters linearly (A, B, E of Chinchilla): initialised by least squares at each start.
    Linear,
    /// Everything else: exponents, offsets. The start grid spans these.
    Nonlinear,
}

/// One parameter of a law.
#[derive(Clone, Debug, serde::Serialize)]
pub struct ParamSpec {
    /// Name as printed (`gamma_N`).
    pub name: String,
    /// Lower bound (inclusive).
    pub lower: f64,
    /// Upper bound (inclusive).
    pub upper: f64,
    /// Starting values tried by the multi-start fit (ignored for Scale and Linear).
    pub starts: Vec<f64>,
    /// How the parameter enters the law.
    pub role: Role,
}

impl ParamSpec {
    pub(crate) fn new(name: &str, lower: f64, upper: f64, starts: &[f64], role: Role) -> Self {
        Self {
            name: name.to_string(),
            lower,
            upper,
            starts: starts.to_vec(),
            role,
        }
    }
}
