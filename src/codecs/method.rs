//! Methods: how values are rounded onto a format's grid (DESIGN §3). `rtn` and `hqq` need no
//! data; `gptq` and `awq` need calibration activations (the layer's Hessian H = 2XXᵀ/n, and for
//! AWQ the mean |x| per input channel), which `model::calibrated` collects layer by layer.
//!
//! Spelling: `rtn`, `hqq`, `gptq`, `awq`, with options after a colon:
//! `gptq:damp=0.01,block=128,act_order=true`, `awq:grid=20,duo=true,inner=hqq`.

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
    /// GPTQ error feedback with the calibration Hessian.
    Gptq(GptqParams),
    /// Activation-aware per-input-channel scaling, then RTN (or HQQ).
    Awq(AwqParams),
}

impl Method {
    /// Snake-case id.
    pub fn id(&self) -> &'static str {
        match self {
            Method::Rtn => "rtn",
            Method::Hqq(_) => "hqq",
            Method::Gptq(_) => "gptq",
            Method::Awq(_) => "awq",
        }
    }

    /// Whether the method needs calibration activations.
    pub fn needs_calibration(&self) -> bool {
        matches!(self, Method::Gptq(_) | Method::Awq(_))
    }

    /// The spelling with every option that differs from its default.
    pub fn spelling(&self) -> String {
        let mut opts: Vec<String> = Vec::new();
        match self {
            Method::Rtn | Method::Hqq(_) => {}
            Method::Gptq(p) => {
                let d = GptqParams::default();
                if p.percdamp != d.percdamp {
                    opts.push(format!("damp={}", p.percdamp));
                }
                if p.block_cols != d.block_cols {
                    opts.push(format!("block={}", p.block_cols));
                }
                if p.act_order != d.act_order {
                    opts.push(format!("act_order={}", p.act_order));
                }
            }
            Method::Awq(p) => {
                let d = AwqParams::default();
                if p.n_grid != d.n_grid {
                    opts.push(format!("grid={}", p.n_grid));
                }
                if p.duo_scaling != d.duo_scaling {
                    opts.push(format!("duo={}", p.duo_scaling));
                }
                if p.inner_hqq {
                    opts.push("inner=hqq".into());
                }
            }
        }
        if opts.is_empty() {
            self.id().to_string()
        } else {
            format!("{}:{}", self.id(), opts.join(","))
        }
    }
}

fn parse_bool(key: &str, v: &str) -> Result<bool> {
    match v {
        "true" | "yes" | "1" | "on" => Ok(true),
        "false" | "no" | "0" | "off" => Ok(false),
        _ => Err(Error::InvalidMethod(format!(
            "`{key}={v}`: expected true or false"
        ))),
    }
}

fn parse_num<T: FromStr>(key: &str, v: &str) -> Result<T> {
    v.parse()
        .map_err(|_| Error::InvalidMethod(format!("`{key}={v}`: expected a number")))
}

impl fmt::Display for Method {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.id())
    }
}

impl FromStr for Method {
    type Err = Error;

    fn from_str(s: &str) -> Result<Self> {
        let lower = s.trim().to_ascii_lowercase();
        let (name, opts) = match lower.split_once(':') {
            Some((n, o)) => (n.trim(), o.trim()),
            None => (lower.as_str(), ""),
        };
        let pairs = opts
            .split(',')
            .map(str::trim)
            .filter(|kv| !kv.is_empty())
            .map(|kv| {
                kv.split_once('=')
                    .map(|(k, v)| (k.trim(), v.trim()))
                    .ok_or_else(|| Error::InvalidMethod(format!("expected key=value, got `{kv}`")))
            })
            .collect::<Result<Vec<_>>>()?;
        let unknown = |k: &str, keys: &str| {
            Error::InvalidMethod(format!(
                "unknown option `{k}` for `{name}` (options: {keys})"
            ))
        };
        match name {
            "rtn" | "hqq" if !pairs.is_empty() => Err(Error::InvalidMethod(format!(
                "`{name}` takes no options (got `{opts}`)"
            ))),
            "rtn" => Ok(Method::Rtn),
            "hqq" => Ok(Method::Hqq(HqqParams::default())),
            "gptq" => {
                let mut p = GptqParams::default();
                for (k, v) in pairs {
                    match k {
                        "damp" | "percdamp" => p.percdamp = parse_num(k, v)?,
                        "block" | "block_cols" => p.block_cols = parse_num(k, v)?,
                        "act_order" | "act-order" | "actorder" => p.act_order = parse_bool(k, v)?,
                        _ => return Err(unknown(k, "damp, block, act_order")),
                    }
                }
                if !(p.percdamp >= 0.0 && p.percdamp.is_finite()) || p.block_cols == 0 {
                    return Err(Error::InvalidMethod(format!(
                        "`{s}`: damp must be ≥ 0 and block ≥ 1"
                    )));
                }
                Ok(Method::Gptq(p))
            }
            "awq" => {
                let mut p = AwqParams::default();
                for (k, v) in pairs {
                    match k {
                        "grid" | "n_grid" => p.n_grid = parse_num(k, v)?,
                        "duo" | "duo_scaling" => p.duo_scaling = parse_bool(k, v)?,
                        "inner" => {
                            p.inner_hqq = match v {
                                "hqq" => true,
                                "rtn" => false,
                                _ => {
                                    return Err(Error::InvalidMethod(format!(
                                        "`inner={v}`: expected rtn or hqq"
                                    )))
                                }
                            }
                        }
                        _ => return Err(unknown(k, "grid, duo, inner")),
                    }
                }
                if p.n_grid == 0 {
                    return Err(Error::InvalidMethod("`awq`: grid must be ≥ 1".into()));
                }
                Ok(Method::Awq(p))
            }
            _ => Err(Error::InvalidMethod(format!(
                "unknown method `{s}` (methods: rtn, hqq, gptq, awq)"
            ))),
        }
    }
}

/// GPTQ settings (defaults as the reference implementation, act-order on).
#[derive(Clone, Copy, Debug, PartialEq, serde::Serialize, serde::Deserialize)]
#[serde(default)]
pub struct GptqParams {
    /// Damping as a fraction of the mean diagonal of H.
    pub percdamp: f64,
    /// Columns per lazy block.
    pub block_cols: u32,
    /// Process columns by decreasing H_ii (block parameters become static groups).
    pub act_order: bool,
}

impl Default for GptqParams {
    fn default() -> Self {
        Self {
            percdamp: 0.01,
            block_cols: 128,
            act_order: true,
        }
    }
}

/// AWQ settings (defaults as AutoAWQ).
#[derive(Clone, Copy, Debug, PartialEq, serde::Serialize, serde::Deserialize)]
#[serde(default)]
pub struct AwqParams {
    /// Grid points for α in [0, 1).
    pub n_grid: u32,
    /// Divide by the weight magnitude term w̄^(1−α) too.
    pub duo_scaling: bool,
    /// Round the scaled weights with HQQ instead of round-to-nearest.
    pub inner_hqq: bool,
}

impl Default for AwqParams {
    fn default() -> Self {
        Self {
            n_grid: 20,
            duo_scaling: true,
            inner_hqq: false,
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn spellings_round_trip() {
        for s in [
            "rtn",
            "hqq",
            "gptq",
            "gptq:damp=0.1,act_order=false",
            "awq",
            "awq:grid=10,inner=hqq",
        ] {
            let m: Method = s.parse().unwrap();
            assert_eq!(m.spelling(), s);
            assert_eq!(m.spelling().parse::<Method>().unwrap(), m);
        }
        assert!(Method::Gptq(GptqParams::default()).needs_calibration());
        assert!(!Method::Rtn.needs_calibration());
        for bad in [
            "gptq:damp=-1",
            "gptq:foo=1",
            "awq:grid=0",
            "rtn:x=1",
            "sq",
            "gptq:damp",
        ] {
            assert!(bad.parse::<Method>().is_err(), "{bad}");
        }
    }
}
