//! Element types: what one stored code means once its block scale is applied.
//!
//! | element | code | value (before the block scale) |
//! |---|---|---|
//! | `Float(ExMy)` | sign-magnitude minifloat | see `minifloat.rs` |
//! | `Int { bits, Sym }` | two's complement q, −qmax..=qmax, qmax = 2^(k−1)−1 | q |
//! | `Int { bits, Asym }` | unsigned q, 0..=2^k−1, with a per-block zero point z | q − z |
//! | `MxInt { bits }` | two's complement k, −(2^(b−1)−1)..=2^(b−1)−1 | k·2^−(b−2) (OCP MXINT) |
//! | `Nf4` | index into the 16 normal-quantile values | `NF4_TABLE[code]` |
//!
//! Integer codes never hold NaN: a block with NaN/Inf input is marked through its scale (every
//! scale type has a NaN code), so its dequantized values are NaN.

use serde::{Deserialize, Serialize};

use super::minifloat::Minifloat;
use crate::{Error, Result};

/// Whether an integer element has a zero point.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum IntKind {
    /// Symmetric: q in −qmax..=qmax, no zero point.
    Sym,
    /// Asymmetric: q in 0..=2^k−1 and a per-block zero point.
    Asym,
}

/// The NF4 table (QLoRA / bitsandbytes): 16 quantiles of N(0, 1) normalised to [−1, 1],
/// with an exact zero. Values as bitsandbytes stores them (float32).
pub const NF4_TABLE: [f32; 16] = [
    -1.0,
    -0.696_192_8,
    -0.525_073_05,
    -0.394_917_5,
    -0.284_441_38,
    -0.184_773_43,
    -0.091_050_036,
    0.0,
    0.079_580_3,
    0.160_930_2,
    0.246_112_3,
    0.337_915_24,
    0.440_709_83,
    0.562_617,
    0.722_956_84,
    1.0,
];

/// An element type.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum ElementType {
    /// A minifloat ExMy.
    Float(Minifloat),
    /// An integer with k = `bits` (2..=8) bits.
    Int {
        /// Bits per code.
        bits: u8,
        /// Symmetric or asymmetric.
        kind: IntKind,
    },
    /// OCP MXINT: fixed point with b−2 fraction bits (MXINT8 = k·2^−6).
    MxInt {
        /// Bits per code (2..=8).
        bits: u8,
    },
    /// NormalFloat4.
    Nf4,
}

impl ElementType {
    /// Validates the parameters.
    pub fn validate(self) -> Result<Self> {
        match self {
            ElementType::Float(mf) => {
                Minifloat::new(mf.exp_bits, mf.man_bits, mf.special)?;
            }
            ElementType::Int { bits, .. } | ElementType::MxInt { bits } => {
                if !(2..=8).contains(&bits) {
                    return Err(Error::InvalidFormat(format!(
                        "integer elements need 2..=8 bits, got {bits}"
                    )));
                }
            }
            ElementType::Nf4 => {}
        }
        Ok(self)
    }

    /// Bits per stored code.
    pub fn bits(self) -> u32 {
        match self {
            ElementType::Float(mf) => mf.bits(),
            ElementType::Int { bits, .. } | ElementType::MxInt { bits } => u32::from(bits),
            ElementType::Nf4 => 4,
        }
    }

    /// The element's descriptor (exponent bits E, mantissa bits M) for descriptor laws: a
    /// minifloat's own; for integer, MX-integer and NF4 codes E = 0 and M = bits − 1 (the sign
    /// takes one bit).
    pub fn exp_man_bits(self) -> (u32, u32) {
        match self {
            ElementType::Float(mf) => (u32::from(mf.exp_bits), u32::from(mf.man_bits)),
            other => (0, other.bits().saturating_sub(1)),
        }
    }

    /// Largest magnitude the element grid reaches (before the block scale). For asymmetric
    /// integers this is the code range 2^k − 1.
    pub fn max_value(self) -> f32 {
        match self {
            ElementType::Float(mf) => mf.max_value(),
            ElementType::Int { bits, kind } => match kind {
                IntKind::Sym => ((1i32 << (bits - 1)) - 1) as f32,
                IntKind::Asym => ((1i32 << bits) - 1) as f32,
            },
            ElementType::MxInt { bits } => {
                ((1i32 << (bits - 1)) - 1) as f32 / (1i32 << (bits - 2)) as f32
            }
            ElementType::Nf4 => 1.0,
        }
    }

    /// floor(log2(max_value)): the `emax_elem` subtracted from a shared E8M0 exponent.
    pub fn emax(self) -> i32 {
        super::minifloat::floor_log2(self.max_value())
    }

    /// Mantissa bits used by the E8M0 `even` scale rule (round amax to this precision first).
    pub fn mantissa_bits(self) -> u32 {
        match self {
            ElementType::Float(mf) => u32::from(mf.man_bits),
            ElementType::Int { bits, .. } | ElementType::MxInt { bits } => u32::from(bits) - 2,
            ElementType::Nf4 => 3,
        }
    }

    /// Number of distinct codes.
    pub fn n_codes(self) -> u32 {
        1u32 << self.bits()
    }

    /// The value of a code before the block scale (asymmetric ints: q, the zero is separate).
    pub fn decode(self, code: u32) -> f32 {
        match self {
            ElementType::Float(mf) => mf.decode(code),
            ElementType::Int { bits, kind } => match kind {
                IntKind::Sym => sign_extend(code, bits) as f32,
                IntKind::Asym => code as f32,
            },
            ElementType::MxInt { bits } => {
                sign_extend(code, bits) as f32 / (1i32 << (bits - 2)) as f32
            }
            ElementType::Nf4 => NF4_TABLE[(code & 15) as usize],
        }
    }

    /// Spelling used in format strings.
    pub fn id(self) -> String {
        match self {
            ElementType::Float(mf) => mf.id(),
            ElementType::Int { bits, kind } => match kind {
                IntKind::Sym => format!("int{bits}"),
                IntKind::Asym => format!("uint{bits}"),
            },
            ElementType::MxInt { bits } => format!("mxint{bits}"),
            ElementType::Nf4 => "nf4".to_string(),
        }
    }

    /// Parses [`ElementType::id`]: `e4m3`, `e3m3_fn`, `int4`, `uint4`, `mxint8`, `nf4`,
    /// `fp16`, `bf16`.
    pub fn from_id(s: &str) -> Result<Self> {
        let bad = |reason: &str| Error::InvalidFormat(format!("element `{s}`: {reason}"));
        let parse_bits = |t: &str| t.parse::<u8>().map_err(|_| bad("bad bit count"));
        let el = if s == "nf4" {
            ElementType::Nf4
        } else if s == "fp16" {
            ElementType::Float(Minifloat::FP16)
        } else if s == "bf16" {
            ElementType::Float(Minifloat::BF16)
        } else if let Some(t) = s.strip_prefix("mxint") {
            ElementType::MxInt {
                bits: parse_bits(t)?,
            }
        } else if let Some(t) = s.strip_prefix("uint") {
            ElementType::Int {
                bits: parse_bits(t)?,
                kind: IntKind::Asym,
            }
        } else if let Some(t) = s.strip_prefix("int") {
            ElementType::Int {
                bits: parse_bits(t)?,
                kind: IntKind::Sym,
            }
        } else if let Some(t) = s.strip_prefix('e') {
            let (em, suffix) = t.split_once('_').unwrap_or((t, ""));
            let (e, m) = em
                .split_once('m')
                .ok_or_else(|| bad("expected eXmY (e.g. e2m1)"))?;
            let (e, m) = (parse_bits(e)?, parse_bits(m)?);
            let special = match suffix {
                "" => Minifloat::default_special(e, m),
                "ieee" => super::minifloat::Special::Ieee,
                "fn" => super::minifloat::Special::Fn,
                "finite" => super::minifloat::Special::Finite,
                _ => return Err(bad("suffix must be _ieee, _fn or _finite")),
            };
            ElementType::Float(Minifloat::new(e, m, special)?)
        } else {
            return Err(bad(
                "unknown element (eXmY[_ieee|_fn|_finite], intK, uintK, mxintK, nf4, fp16, bf16)",
            ));
        };
        el.validate()
    }
}

/// Sign-extends a `bits`-wide two's complement code.
#[inline(always)]
pub fn sign_extend(code: u32, bits: u8) -> i32 {
    let shift = 32 - u32::from(bits);
    ((code << shift) as i32) >> shift
}
