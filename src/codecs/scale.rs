//! Scale types: how a block's shared scale (and the optional per-tensor global scale) is chosen,
//! rounded to its storage type and stored.
//!
//! - `E8m0 { rule }`: a power of two 2^e, e in −127..=127, stored as e + 127 in 8 bits; 0xFF is
//!   NaN. With amax the block's largest finite magnitude and `emax` the element's
//!   floor(log2(max)) (see `ElementType::emax`):
//!   - `floor` (OCP MX v1.0, microxcaling): e = floor(log2 amax) − emax;
//!   - `ceil`: e = ceil(log2 amax) − emax (torchao CEIL);
//!   - `even`: amax is first rounded half-up to the element's mantissa bits, then `floor`
//!     (torchao EVEN);
//!   - `rceil`: e = ceil(log2(amax · (1/max))) with the product rounded in f32 (NVIDIA/cuBLAS
//!     and torchao RCEIL; never saturates elements).
//!
//!   An all-zero block uses amax = 2^−126 (microxcaling); e > 127 makes the block NaN and
//!   e < −127 clamps to −127.
//!
//!   microxcaling computes floor(log2 amax) with a float32 `torch.log2`, which rounds up to the
//!   next integer for amax within about 2^−22 (relative) below a power of two when |log2 amax|
//!   >= 2, giving a scale twice as large; the OCP text (and this module) use the exact floor.
//! - `Fp16`, `Bf16`, `Fp32`: s = amax / max rounded to nearest even in the storage type; an
//!   overflowing scale saturates to the type's largest finite value.
//! - `E4m3`: as NVFP4 in torchao: s = amax / max (divided by the global scale when there is
//!   one), clamped to [2^−6, 448] and rounded to FP8 E4M3 (unsigned use).
//!
//! The dequantization multiplier of a block is the decoded scale (times the global scale).

use serde::{Deserialize, Serialize};

use super::minifloat::{floor_log2, Minifloat};
use super::rounding::{Overflow, Rounding};

/// How a shared power-of-two exponent is chosen from the block's amax.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq, Hash, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum E8m0Rule {
    /// OCP: floor(log2 amax) − emax.
    #[default]
    Floor,
    /// ceil(log2 amax) − emax.
    Ceil,
    /// Round amax to the element's mantissa bits, then floor.
    Even,
    /// ceil(log2(amax / max)).
    Rceil,
}

impl E8m0Rule {
    /// All rules.
    pub const ALL: [E8m0Rule; 4] = [
        E8m0Rule::Floor,
        E8m0Rule::Ceil,
        E8m0Rule::Even,
        E8m0Rule::Rceil,
    ];

    /// Spelling.
    pub fn id(self) -> &'static str {
        match self {
            E8m0Rule::Floor => "floor",
            E8m0Rule::Ceil => "ceil",
            E8m0Rule::Even => "even",
            E8m0Rule::Rceil => "rceil",
        }
    }
}

/// The storage type of a block scale.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum ScaleType {
    /// Power of two, 8 bits.
    E8m0 {
        /// Exponent selection rule.
        rule: E8m0Rule,
    },
    /// IEEE half.
    Fp16,
    /// bfloat16.
    Bf16,
    /// IEEE single.
    Fp32,
    /// FP8 E4M3 (NVFP4 block scales).
    E4m3,
}

/// Bias of the E8M0 exponent.
pub const E8M0_BIAS: i32 = 127;
/// The E8M0 NaN code.
pub const E8M0_NAN: u32 = 0xFF;

impl ScaleType {
    /// Bits per stored scale.
    pub fn bits(self) -> u32 {
        match self {
            ScaleType::E8m0 { .. } | ScaleType::E4m3 => 8,
            ScaleType::Fp16 | ScaleType::Bf16 => 16,
            ScaleType::Fp32 => 32,
        }
    }

    /// Spelling (`e8m0`, `e8m0_ceil`, `fp16`, …).
    pub fn id(self) -> String {
        match self {
            ScaleType::E8m0 { rule } => match rule {
                E8m0Rule::Floor => "e8m0".to_string(),
                r => format!("e8m0_{}", r.id()),
            },
            ScaleType::Fp16 => "fp16".into(),
            ScaleType::Bf16 => "bf16".into(),
            ScaleType::Fp32 => "fp32".into(),
            ScaleType::E4m3 => "e4m3".into(),
        }
    }

    /// Parses [`ScaleType::id`]; `e8m0:ceil` is accepted too.
    pub fn from_id(s: &str) -> Option<Self> {
        let s = s.replace(':', "_");
        Some(match s.as_str() {
            "e8m0" | "e8m0_floor" => ScaleType::E8m0 {
                rule: E8m0Rule::Floor,
            },
            "e8m0_ceil" => ScaleType::E8m0 {
                rule: E8m0Rule::Ceil,
            },
            "e8m0_even" => ScaleType::E8m0 {
                rule: E8m0Rule::Even,
            },
            "e8m0_rceil" => ScaleType::E8m0 {
                rule: E8m0Rule::Rceil,
            },
            "fp16" => ScaleType::Fp16,
            "bf16" => ScaleType::Bf16,
            "fp32" => ScaleType::Fp32,
            "e4m3" => ScaleType::E4m3,
            _ => return None,
        })
    }

    /// Decodes a stored scale code to its f32 value (NaN for NaN codes).
    #[inline(always)]
    pub fn decode(self, code: u32) -> f32 {
        match self {
            ScaleType::E8m0 { .. } => {
                if code == E8M0_NAN {
                    f32::NAN
                } else {
                    super::minifloat::pow2(code as i32 - E8M0_BIAS)
                }
            }
            ScaleType::Fp16 => half::f16::from_bits(code as u16).to_f32(),
            ScaleType::Bf16 => half::bf16::from_bits(code as u16).to_f32(),
            ScaleType::Fp32 => f32::from_bits(code),
            ScaleType::E4m3 => Minifloat::E4M3.decode(code),
        }
    }

    /// The NaN code of this scale type (marks a block holding NaN/Inf input).
    #[inline]
    pub fn nan_code(self) -> u32 {
        match self {
            ScaleType::E8m0 { .. } => E8M0_NAN,
            ScaleType::Fp16 => 0x7e00,
            ScaleType::Bf16 => 0x7fc0,
            ScaleType::Fp32 => 0x7fc0_0000,
            ScaleType::E4m3 => 0x7f,
        }
    }

    /// Rounds a positive finite raw scale to this (non-E8M0) type and returns its code.
    /// Overflow saturates to the largest finite value; E4M3 clamps to [2^−6, 448] first.
    #[inline(always)]
    pub fn encode_value(self, raw: f32) -> u32 {
        match self {
            ScaleType::E8m0 { .. } => {
                // Power-of-two scales come from `e8m0_exponent`; round log2 down as a fallback.
                (floor_log2(raw).clamp(-E8M0_BIAS, E8M0_BIAS) + E8M0_BIAS) as u32
            }
            ScaleType::Fp16 => {
                let h = half::f16::from_f32(raw);
                if h.is_infinite() {
                    half::f16::MAX.to_bits().into()
                } else {
                    h.to_bits().into()
                }
            }
            ScaleType::Bf16 => {
                let h = half::bf16::from_f32(raw);
                if h.is_infinite() {
                    half::bf16::MAX.to_bits().into()
                } else {
                    h.to_bits().into()
                }
            }
            ScaleType::Fp32 => raw.to_bits(),
            ScaleType::E4m3 => {
                let clamped = raw.clamp(E4M3_MIN_SCALE, 448.0);
                Minifloat::E4M3.encode(clamped, Rounding::Even, Overflow::Saturate)
            }
        }
    }
}

/// Smallest E4M3 block scale (torchao clamps at the smallest normal E4M3, 2^−6).
pub const E4M3_MIN_SCALE: f32 = 0.015_625;

/// The unbiased E8M0 exponent for a block with largest finite magnitude `amax`, or `None` when
/// the exponent overflows (block becomes NaN). `elem_emax` is `ElementType::emax`,
/// `elem_mbits` is `ElementType::mantissa_bits`, `elem_max` is `ElementType::max_value`.
#[inline(always)]
pub fn e8m0_exponent(
    rule: E8m0Rule,
    amax: f32,
    elem_emax: i32,
    elem_mbits: u32,
    elem_max: f32,
) -> Option<i32> {
    // microxcaling: an all-zero block uses amax = FP32_MIN_NORMAL = 2^-126.
    let amax = if amax == 0.0 { f32::MIN_POSITIVE } else { amax };
    let e = match rule {
        E8m0Rule::Floor => floor_log2(amax) - elem_emax,
        E8m0Rule::Ceil => ceil_log2(amax) - elem_emax,
        E8m0Rule::Even => {
            let bits = amax.to_bits();
            let shift = 23u32.saturating_sub(elem_mbits);
            let rounded = if shift == 0 {
                bits
            } else {
                (bits + (1u32 << (shift - 1))) & 0xff80_0000
            };
            let r = f32::from_bits(rounded);
            if !r.is_finite() {
                return None;
            }
            if rounded & 0x7f80_0000 == 0 {
                // Still subnormal after rounding: floor(log2) of the rounded value.
                floor_log2(r.max(f32::from_bits(1))) - elem_emax
            } else {
                floor_log2(r) - elem_emax
            }
        }
        E8m0Rule::Rceil => {
            let descale = amax * (1.0 / elem_max);
            if !descale.is_finite() {
                return None;
            }
            let b = descale.to_bits();
            let biased = (b >> 23) as i32;
            let mant = b & 0x7f_ffff;
            let up = if biased == 0 {
                mant > 0x40_0000
            } else {
                mant != 0
            };
            biased + i32::from(up) - E8M0_BIAS
        }
    };
    if e > E8M0_BIAS {
        None
    } else {
        Some(e.max(-E8M0_BIAS))
    }
}

/// ceil(log2(x)) for finite positive x, exact.
#[inline(always)]
fn ceil_log2(x: f32) -> i32 {
    let f = floor_log2(x);
    let bits = x.to_bits();
    let is_pow2 = if bits >> 23 != 0 {
        bits & 0x7f_ffff == 0
    } else {
        bits.is_power_of_two()
    };
    if is_pow2 {
        f
    } else {
        f + 1
    }
}
