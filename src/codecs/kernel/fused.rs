//! The kernel's fused, branch-free element loops (fake-quant without codes in between):
//! round-to-nearest-even minifloats, integer elements with the rounding rule and the kind of
//! scale fixed at compile time, and the bf16/fp16 casts. Each is bit-identical to encoding and
//! decoding the stored codes (tests/codecs.rs compares them; tests/oracles.rs checks both).

use super::{BlockParams, Kernel};
use crate::codecs::element::{ElementType, IntKind};
use crate::codecs::format::ZeroPoint;
use crate::codecs::minifloat::{pow2, Minifloat};
use crate::codecs::rounding::{Overflow, Rounding};

impl Kernel {
    /// The fused integer loop (int sym/asym, MX int) with the rounding rule `R` and the kind of
    /// scale (`POW2`: multiply by an exact power of two, else divide) fixed at compile time and
    /// no code or table in between: the value a code decodes to is the rounded integer
    /// itself (÷ 2^(bits−2) for MX int, an exact power of two), so
    /// `out = (q − zero) · mul` is bit-identical to decoding the stored code. Branch-free, so
    /// the compiler vectorizes it (the generic code loop matched the rounding per element).
    #[inline(always)]
    pub(super) fn fake_int<const R: u8, const POW2: bool>(
        &self,
        xs: &[f32],
        p: &BlockParams,
        out: &mut [f32],
    ) {
        let (zero, mul, to_elem) = (p.zero, p.mul, p.to_elem);
        let qmax_f = self.qmax as f32;
        let to_v = |x: f32| if POW2 { x * to_elem } else { x / to_elem };
        match self.format.element {
            ElementType::Int {
                kind: IntKind::Sym, ..
            } => map_block(xs, out, |x| {
                (round_int::<R>(to_v(x).clamp(-qmax_f, qmax_f)) - zero) * mul
            }),
            ElementType::Int {
                kind: IntKind::Asym,
                ..
            } => match self.format.zero {
                ZeroPoint::Int => {
                    // Beyond ±2^22 the code clamps to 0 or qmax either way (the zero point is
                    // at most qmax), and below it the add-and-subtract rounding is exact.
                    let z = p.zero;
                    map_block(xs, out, |x| {
                        let q = round_int::<R>(to_v(x).clamp(-4_194_304.0, 4_194_304.0));
                        ((q + z).clamp(0.0, qmax_f) - zero) * mul
                    })
                }
                _ => map_block(xs, out, |x| {
                    (round_int::<R>((to_v(x) + p.zero).clamp(0.0, qmax_f)) - zero) * mul
                }),
            },
            ElementType::MxInt { bits } => {
                let frac = pow2(i32::from(bits) - 2);
                map_block(xs, out, |x| {
                    (round_int::<R>((to_v(x) * frac).clamp(-qmax_f, qmax_f)) / frac - zero) * mul
                })
            }
            ElementType::Float(_) | ElementType::Nf4 => {}
        }
    }
}

/// Branch-free (SIMD-friendly) minifloat fake-quant for round-to-nearest-even with saturation.
/// For v in binade e the grid step is 2^(max(e, emin) − M); t = v / step is exact and below
/// 2^(M+2), so `(t + 1.5·2^23) − 1.5·2^23` rounds it to nearest even exactly; `copysign` keeps
/// −0. Bit-identical to the integer path (tests compare both against the oracles).
#[inline(never)]
pub(super) fn fake_float_rne(mf: Minifloat, xs: &[f32], p: &BlockParams, out: &mut [f32]) {
    const MAGIC: f32 = 12_582_912.0; // 1.5 · 2^23
    let emin = mf.emin();
    let m = i32::from(mf.man_bits);
    let maxv = mf.max_value();
    let (to_elem, mul) = (p.to_elem, p.mul);
    let quant = |v: f32| {
        let e = (((v.to_bits() >> 23) & 0xff) as i32 - 127).max(emin);
        let step = f32::from_bits(((e - m + 127) as u32) << 23);
        let inv = f32::from_bits(((127 - (e - m)) as u32) << 23);
        let t = v * inv;
        let r = ((t + MAGIC) - MAGIC).copysign(t);
        (r * step).clamp(-maxv, maxv) * mul
    };
    if p.pow2 {
        for (o, &x) in out.iter_mut().zip(xs) {
            *o = quant(x * to_elem);
        }
    } else {
        for (o, &x) in out.iter_mut().zip(xs) {
            *o = quant(x / to_elem);
        }
    }
}

/// Round-to-nearest-even casts to bf16 and fp16 and back, on bits (bf16: add 0x7fff plus the
/// lowest kept bit, truncate; fp16: `half`'s conversion, RNE with subnormals), bit-identical to
/// encoding and decoding the 16-bit code: a finite value that rounds past the largest finite
/// one saturates or becomes ±Inf by the overflow rule, and non-finite inputs take the code path
/// (one branch, rarely taken). The code path decodes through f64 per element, ~50× slower.
#[inline(never)]
pub(super) fn fake_cast16(mf: Minifloat, overflow: Overflow, xs: &[f32], out: &mut [f32]) {
    let max = mf.max_value();
    let slow = |x: f32| mf.decode(mf.encode(x, Rounding::Even, overflow));
    let saturate = overflow == Overflow::Saturate;
    let fix = |x: f32, r: f32| {
        if r.is_infinite() && saturate {
            max.copysign(x)
        } else {
            r
        }
    };
    if mf == Minifloat::BF16 {
        for (o, &x) in out.iter_mut().zip(xs) {
            let b = x.to_bits();
            *o = if b & 0x7fff_ffff >= 0x7f80_0000 {
                slow(x)
            } else {
                let r = b.wrapping_add(0x7fff + ((b >> 16) & 1)) & 0xffff_0000;
                fix(x, f32::from_bits(r))
            };
        }
    } else {
        for (o, &x) in out.iter_mut().zip(xs) {
            *o = if x.is_finite() {
                fix(x, half::f16::from_f32(x).to_f32())
            } else {
                slow(x)
            };
        }
    }
}

/// `out[i] = f(xs[i])`, written so the loop vectorizes (equal lengths, no bounds checks).
#[inline(always)]
fn map_block(xs: &[f32], out: &mut [f32], f: impl Fn(f32) -> f32) {
    for (o, &x) in out.iter_mut().zip(xs) {
        *o = f(x);
    }
}

/// `v` (|v| ≤ 2^22, already clamped) rounded to an integer by rule `R` (0 even, 1 away, 2
/// toward zero), as an f32 (never −0). Equal to [`Rounding::round_to_int`] on that range:
/// adding and subtracting 1.5·2^23 rounds to nearest even exactly below 2^22 (and gives +0 for
/// (−0.5, 0]); `round` is ties-away and `trunc` toward zero, both exact.
#[inline(always)]
fn round_int<const R: u8>(v: f32) -> f32 {
    const MAGIC: f32 = 12_582_912.0; // 1.5 · 2^23
                                     // `+ 0.0` turns −0 into +0: the code of a value rounded to zero decodes to +0.
    match R {
        0 => (v + MAGIC) - MAGIC,
        1 => v.round() + 0.0,
        _ => v.trunc() + 0.0,
    }
}
