//! Generic minifloat ExMy element codec (1 <= E <= 8, 0 <= M <= 10) with subnormals.
//!
//! Codes are sign-magnitude: bit `E+M` is the sign, then E exponent bits, then M mantissa bits.
//! Three conventions for the top of the range ([`Special`]):
//! - `Ieee`: the all-ones exponent holds Inf (mantissa 0) and NaN (FP8 E5M2, FP16, BF16).
//! - `Fn`: no Inf; only S.1…1.1…1 is NaN, the rest of the top binade is finite (FP8 E4M3).
//! - `Finite`: every code is a finite number (OCP FP6 E3M2/E2M3, FP4 E2M1).
//!
//! Encoding is exact integer arithmetic on the f32 significand: for |v| in binade e, the grid
//! step is 2^(max(e, emin) − M) and the magnitude code is `((max(e, emin) − emin) << M) + q`
//! where q is the significand shifted to that step and rounded ([`Rounding`]); a carry out of the
//! mantissa rolls into the exponent field by construction. Overflow (code above the largest
//! finite code) saturates or becomes Inf/NaN ([`Overflow`]); with `Saturate`, ±Inf inputs map
//! to ±max (CUDA's SATFINITE) and NaN maps to NaN where the format has one (to −0 where it has
//! none, as ml_dtypes does). Negative zero keeps its sign.
//!
//! Where microxcaling differs (checked against its code, `mx/elemwise_ops.py`): it rounds with
//! `floor(|x|·2^k + 0.5)` in float32, which double-rounds exactly one input per binade below the
//! smallest subnormal's midpoint (|x|·2^k = 0.5 − 2^−25 rounds up to 1). The OCP text and this
//! module round that value down. The oracle test lists that value explicitly.

use serde::{Deserialize, Serialize};

use super::rounding::{Overflow, Rounding};
use crate::{Error, Result};

/// Which codes of the top binade are special.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum Special {
    /// IEEE 754 style: top exponent is Inf/NaN.
    Ieee,
    /// "Finite + NaN" (E4M3FN): only the all-ones magnitude is NaN.
    Fn,
    /// No Inf, no NaN: every code is finite.
    Finite,
}

impl Special {
    /// The suffix used in format spellings (`e4m3_fn`).
    pub fn id(self) -> &'static str {
        match self {
            Special::Ieee => "ieee",
            Special::Fn => "fn",
            Special::Finite => "finite",
        }
    }
}

/// A minifloat element type.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash, Serialize, Deserialize)]
pub struct Minifloat {
    /// Exponent bits E.
    pub exp_bits: u8,
    /// Mantissa bits M (without the implicit one).
    pub man_bits: u8,
    /// Inf/NaN convention.
    pub special: Special,
}

impl Minifloat {
    /// OCP FP8 E4M3 (no Inf, NaN = S.1111.111, max 448).
    pub const E4M3: Minifloat = Minifloat::raw(4, 3, Special::Fn);
    /// OCP FP8 E5M2 (IEEE-like, max 57344).
    pub const E5M2: Minifloat = Minifloat::raw(5, 2, Special::Ieee);
    /// OCP FP6 E3M2 (max 28).
    pub const E3M2: Minifloat = Minifloat::raw(3, 2, Special::Finite);
    /// OCP FP6 E2M3 (max 7.5).
    pub const E2M3: Minifloat = Minifloat::raw(2, 3, Special::Finite);
    /// OCP FP4 E2M1 (max 6).
    pub const E2M1: Minifloat = Minifloat::raw(2, 1, Special::Finite);
    /// IEEE binary16.
    pub const FP16: Minifloat = Minifloat::raw(5, 10, Special::Ieee);
    /// bfloat16.
    pub const BF16: Minifloat = Minifloat::raw(8, 7, Special::Ieee);

    const fn raw(exp_bits: u8, man_bits: u8, special: Special) -> Self {
        Self {
            exp_bits,
            man_bits,
            special,
        }
    }

    /// The OCP convention for an ExMy spelling without suffix: E4M3 is `Fn`, E5M2 and wider
    /// exponents with M >= 1 are `Ieee` when E >= 5, everything narrower is `Finite`.
    pub fn default_special(exp_bits: u8, man_bits: u8) -> Special {
        match (exp_bits, man_bits) {
            (4, 3) => Special::Fn,
            (e, m) if e >= 5 && m >= 1 => Special::Ieee,
            _ => Special::Finite,
        }
    }

    /// Builds and validates a minifloat: 1 <= E <= 8, 0 <= M <= 10, a finite f32 range and at
    /// least one nonzero finite code.
    pub fn new(exp_bits: u8, man_bits: u8, special: Special) -> Result<Self> {
        let mf = Self::raw(exp_bits, man_bits, special);
        if !(1..=8).contains(&exp_bits) || man_bits > 10 {
            return Err(Error::InvalidFormat(format!(
                "minifloat e{exp_bits}m{man_bits}: need 1 <= E <= 8 and 0 <= M <= 10"
            )));
        }
        if special == Special::Ieee && (exp_bits < 2 || man_bits < 1) {
            return Err(Error::InvalidFormat(format!(
                "minifloat e{exp_bits}m{man_bits}_ieee: IEEE Inf/NaN needs E >= 2 and M >= 1"
            )));
        }
        if mf.max_code_mag() == 0 {
            return Err(Error::InvalidFormat(format!(
                "minifloat e{exp_bits}m{man_bits}_{}: no nonzero finite value",
                special.id()
            )));
        }
        if !f64::from(mf.max_value()).is_finite() || !mf.max_value().is_finite() {
            return Err(Error::InvalidFormat(format!(
                "minifloat e{exp_bits}m{man_bits}_{}: largest value overflows f32 (use _ieee)",
                special.id()
            )));
        }
        Ok(mf)
    }

    /// Total bits per code (sign + E + M).
    pub fn bits(self) -> u32 {
        1 + u32::from(self.exp_bits) + u32::from(self.man_bits)
    }

    /// Exponent bias 2^(E−1) − 1.
    pub fn bias(self) -> i32 {
        (1i32 << (self.exp_bits - 1)) - 1
    }

    /// Smallest normal exponent, 1 − bias.
    pub fn emin(self) -> i32 {
        1 - self.bias()
    }

    fn mag_mask(self) -> u32 {
        (1u32 << (self.exp_bits + self.man_bits)) - 1
    }

    /// Largest finite magnitude code.
    pub fn max_code_mag(self) -> u32 {
        match self.special {
            Special::Finite => self.mag_mask(),
            Special::Fn => self.mag_mask().saturating_sub(1),
            Special::Ieee => (((1u32 << self.exp_bits) - 1) << self.man_bits).saturating_sub(1),
        }
    }

    /// Magnitude code of NaN, if the format has NaN.
    pub fn nan_code_mag(self) -> Option<u32> {
        match self.special {
            Special::Finite => None,
            Special::Fn => Some(self.mag_mask()),
            // Quiet NaN: all-ones exponent, top mantissa bit set (0x7E for E5M2, 0x7E00 FP16).
            Special::Ieee => {
                Some((((1u32 << self.exp_bits) - 1) << self.man_bits) | (1 << (self.man_bits - 1)))
            }
        }
    }

    /// Magnitude code of Inf, if the format has Inf.
    pub fn inf_code_mag(self) -> Option<u32> {
        match self.special {
            Special::Ieee => Some(((1u32 << self.exp_bits) - 1) << self.man_bits),
            _ => None,
        }
    }

    /// Largest finite value.
    pub fn max_value(self) -> f32 {
        self.decode(self.max_code_mag())
    }

    /// Exponent of the largest finite value, floor(log2(max)) (OCP `emax_elem`).
    pub fn emax(self) -> i32 {
        floor_log2(self.max_value())
    }

    /// Smallest positive (subnormal) value 2^(emin − M).
    pub fn min_subnormal(self) -> f32 {
        self.decode(1)
    }

    /// Decodes a code (sign in bit E+M) to f32. Exact for every valid format.
    #[inline]
    pub fn decode(self, code: u32) -> f32 {
        let m = u32::from(self.man_bits);
        let e_bits = u32::from(self.exp_bits);
        let negative = (code >> (e_bits + m)) & 1 == 1;
        let mag = code & self.mag_mask();
        let exp_field = mag >> m;
        let mant = mag & ((1u32 << m) - 1);
        let top = (1u32 << e_bits) - 1;
        let v = match self.special {
            Special::Ieee if exp_field == top => {
                if mant == 0 {
                    f32::INFINITY
                } else {
                    f32::NAN
                }
            }
            Special::Fn if mag == self.mag_mask() => f32::NAN,
            _ => {
                let (sig, e) = if exp_field == 0 {
                    (mant, self.emin())
                } else {
                    (mant | (1 << m), exp_field as i32 - self.bias())
                };
                // sig < 2^11 and the exponent lies within f64's normal range: exact, then exact
                // in f32 because validated formats fit f32 (subnormals down to 2^-133
                // included). 2^k is built from its bits (`powi` is a libm call per decode).
                let k = e - m as i32;
                (f64::from(sig) * f64::from_bits(((k + 1023) as u64) << 52)) as f32
            }
        };
        if negative {
            -v
        } else {
            v
        }
    }

    /// Encodes `v` onto this grid with the given rounding and overflow rules.
    #[inline(always)]
    pub fn encode(self, v: f32, rounding: Rounding, overflow: Overflow) -> u32 {
        let bits = v.to_bits();
        let sign_code = (bits >> 31) << (u32::from(self.exp_bits) + u32::from(self.man_bits));
        let abs = bits & 0x7fff_ffff;
        if abs >= 0x7f80_0000 {
            // Inf or NaN input.
            // A format without NaN has no code for it: like ml_dtypes, NaN becomes −0.
            let mag = if abs > 0x7f80_0000 {
                let Some(nan) = self.nan_code_mag() else {
                    return 1 << (u32::from(self.exp_bits) + u32::from(self.man_bits));
                };
                nan
            } else {
                self.overflow_mag(overflow)
            };
            return sign_code | mag;
        }
        let mag = self.encode_finite_mag(abs, rounding);
        let mag = if mag > self.max_code_mag() {
            self.overflow_mag(overflow)
        } else {
            mag
        };
        sign_code | mag
    }

    /// Magnitude code for a finite |v| given as f32 bits (may exceed the largest finite code:
    /// callers compare with [`Minifloat::max_code_mag`]).
    #[inline(always)]
    pub fn encode_finite_mag(self, abs_bits: u32, rounding: Rounding) -> u32 {
        let m = i32::from(self.man_bits);
        let emin = self.emin();
        let fexp = (abs_bits >> 23) as i32;
        let (sig, e) = if fexp == 0 {
            (abs_bits & 0x7f_ffff, -126)
        } else {
            ((abs_bits & 0x7f_ffff) | 0x80_0000, fexp - 127)
        };
        let ec = e.max(emin);
        // Shift from the f32 step 2^(e-23) to the target step 2^(ec-m); >= 13 since m <= 10.
        let shift = (23 + ec - e - m).min(31) as u32;
        let q = rounding.shift_right(sig, shift);
        (((ec - emin) as u32) << m) + q
    }

    #[inline(always)]
    fn overflow_mag(self, overflow: Overflow) -> u32 {
        match overflow {
            Overflow::Saturate => self.max_code_mag(),
            Overflow::InfNan => self
                .inf_code_mag()
                .or(self.nan_code_mag())
                .unwrap_or(self.max_code_mag()),
        }
    }

    /// The spelling `eXmY` with a suffix when the convention is not the default one.
    pub fn id(self) -> String {
        if self.special == Self::default_special(self.exp_bits, self.man_bits) {
            format!("e{}m{}", self.exp_bits, self.man_bits)
        } else {
            format!("e{}m{}_{}", self.exp_bits, self.man_bits, self.special.id())
        }
    }
}

/// floor(log2(|x|)) of a finite nonzero f32, exact (subnormals included). Returns −150 for 0.
#[inline]
pub fn floor_log2(x: f32) -> i32 {
    let abs = x.to_bits() & 0x7fff_ffff;
    let fexp = (abs >> 23) as i32;
    if fexp != 0 {
        fexp - 127
    } else if abs == 0 {
        -150
    } else {
        // Subnormal: value = mant * 2^-149.
        (31 - abs.leading_zeros() as i32) - 149
    }
}

/// 2^e as f32 for −149 <= e <= 127 (exact, subnormals included).
#[inline(always)]
pub fn pow2(e: i32) -> f32 {
    if e >= -126 {
        f32::from_bits(((e + 127) as u32) << 23)
    } else {
        f32::from_bits(1u32 << (e + 149).clamp(0, 22))
    }
}
