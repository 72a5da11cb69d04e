//! Rounding rules shared by every codec: ties-to-even, ties-away-from-zero, toward zero.
//!
//! All rounding here is exact: it works on integer significands, never on `x + 0.5` in floating
//! point (which double-rounds for some inputs; see `minifloat.rs` for where microxcaling does).

use serde::{Deserialize, Serialize};

/// How a value between two grid points is rounded.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq, Hash, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum Rounding {
    /// Round to nearest, ties to even (IEEE default; what hardware converts with).
    #[default]
    Even,
    /// Round to nearest, ties away from zero (microxcaling's `nearest`).
    Away,
    /// Truncate toward zero.
    Zero,
}

impl Rounding {
    /// Every rounding rule, in display order.
    pub const ALL: [Rounding; 3] = [Rounding::Even, Rounding::Away, Rounding::Zero];

    /// The snake_case id used by the CLI, RON and the format spelling.
    pub fn id(self) -> &'static str {
        match self {
            Rounding::Even => "even",
            Rounding::Away => "away",
            Rounding::Zero => "zero",
        }
    }

    /// Parses [`Rounding::id`] (also accepts `nearest`/`rne` aliases).
    pub fn from_id(s: &str) -> Option<Self> {
        match s {
            "even" | "rne" | "ties_even" => Some(Rounding::Even),
            "away" | "nearest" | "ties_away" => Some(Rounding::Away),
            "zero" | "trunc" | "toward_zero" => Some(Rounding::Zero),
            _ => None,
        }
    }

    /// `sig >> shift`, rounded by this rule. `sig < 2^31`, `1 <= shift <= 31`.
    #[inline(always)]
    pub fn shift_right(self, sig: u32, shift: u32) -> u32 {
        let q = sig >> shift;
        let rem = sig & ((1u32 << shift) - 1);
        let half = 1u32 << (shift - 1);
        match self {
            Rounding::Even => q + u32::from(rem > half || (rem == half && (q & 1) == 1)),
            Rounding::Away => q + u32::from(rem >= half),
            Rounding::Zero => q,
        }
    }

    /// Rounds `v` (|v| ≤ 2^22) to an integer by this rule, branch-free, as an f32 (never −0).
    /// Equal to [`Rounding::round_to_int`] on that range: adding and subtracting 1.5·2^23
    /// rounds to nearest even exactly there; `round` (ties away) and `trunc` are exact.
    #[inline(always)]
    pub fn round_small(self, v: f32) -> f32 {
        const MAGIC: f32 = 12_582_912.0; // 1.5 · 2^23
                                         // `+ 0.0` turns −0 into +0.
        match self {
            Rounding::Even => (v + MAGIC) - MAGIC,
            Rounding::Away => v.round() + 0.0,
            Rounding::Zero => v.trunc() + 0.0,
        }
    }

    /// Rounds `v` to an integer by this rule. `|v|` must be below 2^30 (callers clamp first).
    #[inline(always)]
    pub fn round_to_int(self, v: f32) -> i32 {
        // Truncation is exact for |v| < 2^31, and so is the fraction `v - t`.
        let t = v as i32;
        let frac = (v - t as f32).abs();
        let step = if v < 0.0 { -1 } else { 1 };
        match self {
            Rounding::Even => {
                let up = frac > 0.5 || (frac == 0.5 && (t & 1) != 0);
                t + step * i32::from(up)
            }
            Rounding::Away => t + step * i32::from(frac >= 0.5),
            Rounding::Zero => t,
        }
    }
}

/// What happens to a finite value beyond a format's largest finite magnitude.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq, Hash, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum Overflow {
    /// Clamp to ±max (OCP MX conversion; the default).
    #[default]
    Saturate,
    /// Become Inf (formats with Inf) or NaN (formats with only NaN); formats with neither
    /// saturate anyway.
    InfNan,
}

impl Overflow {
    /// The snake_case id.
    pub fn id(self) -> &'static str {
        match self {
            Overflow::Saturate => "saturate",
            Overflow::InfNan => "infnan",
        }
    }

    /// Parses [`Overflow::id`].
    pub fn from_id(s: &str) -> Option<Self> {
        match s {
            "saturate" | "sat" => Some(Overflow::Saturate),
            "infnan" | "inf" | "ieee" => Some(Overflow::InfNan),
            _ => None,
        }
    }
}
