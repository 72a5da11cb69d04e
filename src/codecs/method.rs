//! Methods: how values are rounded onto a format's grid (DESIGN §3). `rtn` and `hqq` need no
//! data; calibrated methods (GPTQ) join this enum when they land.

use std::fmt;
use std::str::FromStr;

use serde::{Deserialize, Serialize};

use crate::{Error, Result};

/// Parameters of the HQQ half-quadratic solver (defaults as dropbox/hqq).
#[derive(Clone, Copy, Debug, PartialEq, Serialize, Deserialize)]
#[serde(default)]
pub struct HqqParams {
    /// The lp norm of the sparsity-promoting loss (p < 1).
    pub lp_norm: f32,
    /// Initial penalty β.
    pub beta: f32,
    /// β growth per iteration κ.
    pub kappa: f32,
    /// Maximum iterations.
    pub iters: u32,
    /// Stop when the mean |W − W_r| of the tensor stops improving.
    pub early_stop: bool,
}

impl Default for HqqParams {
    fn default() -> Self {
        Self {
            lp_norm: 0.7,
            beta: 10.0,
            kappa: 1.01,
            iters: 20,
            early_stop: true,
        }
    }
}

/// A quantization method.
#[derive(Clone, Copy, Debug, PartialEq, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
#[non_exhaustive]
pub enum Method {
    /// Round to nearest with the format's rounding rule and its scale rule.
    Rtn,
    /// Half-quadratic optimisation of the zero point (affine formats) or of the scale.
    Hqq(HqqParams),
}

impl Method {
    /// Snake-case id.
    pub fn id(&self) -> &'static str {
        match self {
            Method::Rtn => "rtn",
            Method::Hqq(_) => "hqq",
        }
    }
}

impl fmt::Display for Method {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.id())
    }
}

impl FromStr for Method {
    type Err = Error;

    fn from_str(s: &str) -> Result<Self> {
        match s.trim().to_ascii_lowercase().as_str() {
            "rtn" => Ok(Method::Rtn),
            "hqq" => Ok(Method::Hqq(HqqParams::default())),
            "gptq" | "awq" => Err(Error::InvalidMethod(format!(
                "`{s}` needs calibration data and is not available in this build yet (methods: rtn, hqq)"
            ))),
            _ => Err(Error::InvalidMethod(format!(
                "unknown method `{s}` (methods: rtn, hqq)"
            ))),
        }
    }
}
