//! The kernel's fused, branch-free element loops (fake-quant without codes in between):
//! round-to-nearest-even minifloats, integer elements with the rounding rule and the kind of
//! scale fixed at compile time, NF4 without a table search, and the bf16/fp16 casts. Each is bit-identical to encoding and
//! decoding the stored codes (tests/codecs.rs compares them; tests/oracles.rs checks both).

use super::{BlockParams, Kernel};
use crate::codecs::element::{ElementType, IntKind, NF4_TABLE};
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
        // Explicit loops (not closures handed to a helper): each body inlines and vectorizes.
        macro_rules! each {
            (|$x:ident| $body:expr) => {
                for (o, &$x) in out.iter_mut().zip(xs) {
                    let $x = if POW2 { $x * to_elem } else { $x / to_elem };
                    *o = $body;
                }
            };
        }
        match self.format.element {
            ElementType::Int {
                kind: IntKind::Sym, ..
            } => each!(|v| (round_int::<R>(clamp(v, -qmax_f, qmax_f)) - zero) * mul),
            ElementType::Int {
                kind: IntKind::Asym,
                ..
            } => match self.format.zero {
                ZeroPoint::Int => {
                    // Beyond ±2^22 the code clamps to 0 or qmax either way (the zero point is
                    // at most qmax), and below it the add-and-subtract rounding is exact.
                    let z = p.zero;
                    each!(|v| {
                        let q = round_int::<R>(clamp(v, -4_194_304.0, 4_194_304.0));
                        (clamp(q + z, 0.0, qmax_f) - zero) * mul
                    });
                }
                _ => {
                    let z = p.zero;
                    each!(|v| (round_int::<R>(clamp(v + z, 0.0, qmax_f)) - zero) * mul);
                }
            },
            ElementType::MxInt { bits } => {
                let frac = pow2(i32::from(bits) - 2);
                each!(|v| (round_int::<R>(clamp(v * frac, -qmax_f, qmax_f)) / frac - zero) * mul);
            }
            ElementType::Float(_) | ElementType::Nf4 => {}
        }
    }
}

/// Branch-free (SIMD-friendly) minifloat fake-quant for round-to-nearest-even with saturation at
/// `maxv` (the element's largest value, computed once per kernel).
/// For v in binade e the grid step is 2^(max(e, emin) − M); t = v / step is exact and below
/// 2^(M+2), so `(t + 1.5·2^23) − 1.5·2^23` rounds it to nearest even exactly; `copysign` keeps
/// −0. Bit-identical to the integer path (tests compare both against the oracles).
#[inline(always)]
pub(super) fn fake_float_rne(
    mf: Minifloat,
    maxv: f32,
    xs: &[f32],
    p: &BlockParams,
    out: &mut [f32],
) {
    const MAGIC: f32 = 12_582_912.0; // 1.5 · 2^23
    let emin = mf.emin();
    let m = i32::from(mf.man_bits);
    let (to_elem, mul) = (p.to_elem, p.mul);
    let quant = |v: f32| {
        let e = (((v.to_bits() >> 23) & 0xff) as i32 - 127).max(emin);
        let step = f32::from_bits(((e - m + 127) as u32) << 23);
        let inv = f32::from_bits(((127 - (e - m)) as u32) << 23);
        let t = v * inv;
        let r = ((t + MAGIC) - MAGIC).copysign(t);
        clamp(r * step, -maxv, maxv) * mul
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

/// Round-to-nearest-even casts to bf16 and fp16 and back, on bits, bit-identical to encoding
/// and decoding the 16-bit code. One branch-free pass over the block (vectorizes): bf16 adds
/// 0x7fff plus the lowest kept bit and truncates; fp16 rounds normal magnitudes the same way at
/// 13 dropped bits and subnormal ones (|x| < 2^−14) to a multiple of 2^−24 by adding and
/// subtracting 0.75 (whose ulp is 2^−24); a finite value that rounds past the largest finite one
/// saturates or becomes ±Inf by the overflow rule. Then, only when the block holds a NaN or ±Inf
/// (the pass tracks the largest |x| bits), those elements take the code path.
#[inline(always)]
pub(super) fn fake_cast16(mf: Minifloat, overflow: Overflow, xs: &[f32], out: &mut [f32]) {
    let max = mf.max_value();
    let saturate = overflow == Overflow::Saturate;
    // |result| at or past this is an overflow (+Inf bits, or fp16's 65536).
    let (over_bits, max_bits) = (
        if mf == Minifloat::BF16 {
            0x7f80_0000
        } else {
            0x4780_0000
        },
        max.to_bits(),
    );
    let over_to = if saturate { max_bits } else { 0x7f80_0000 };
    // The largest |x| bits ride along in the same pass: at or above +Inf's bits the block
    // holds a NaN or ±Inf, which the code path then redoes.
    let mut abs_max = 0u32;
    if mf == Minifloat::BF16 {
        for (o, &x) in out.iter_mut().zip(xs) {
            let a = x.to_bits() & 0x7fff_ffff;
            abs_max = abs_max.max(a);
            let r = a.wrapping_add(0x7fff + ((a >> 16) & 1)) & 0xffff_0000;
            let r = if r >= over_bits { over_to } else { r };
            *o = f32::from_bits(r | (x.to_bits() & 0x8000_0000));
        }
    } else {
        for (o, &x) in out.iter_mut().zip(xs) {
            let a = x.to_bits() & 0x7fff_ffff;
            abs_max = abs_max.max(a);
            let normal = a.wrapping_add(0xfff + ((a >> 13) & 1)) & 0xffff_e000;
            let sub = ((f32::from_bits(a) + 0.75) - 0.75).to_bits();
            let r = if a < 0x3880_0000 { sub } else { normal };
            let r = if r >= over_bits { over_to } else { r };
            *o = f32::from_bits(r | (x.to_bits() & 0x8000_0000));
        }
    }
    if abs_max >= 0x7f80_0000 {
        for (o, &x) in out.iter_mut().zip(xs) {
            if !x.is_finite() {
                *o = mf.decode(mf.encode(x, Rounding::Even, overflow));
            }
        }
    }
}

/// Fused NF4 fake-quant of a finite block, bit-identical to [`super::nf4_code`] then the table.
/// The reference picks, between the neighbours t_k < v ≤ t_{k+1}, the nearer one by comparing
/// v − t_k with t_{k+1} − v in f64 — exact for these magnitudes wherever the two are close — so
/// it passes boundary k exactly when v lies above the real midpoint m_k (or on it, when the tie
/// rule picks t_{k+1}). Each boundary therefore is one f32 threshold L_k, the largest f32 that
/// stays below it: v > L_k. The loop is 15 compares and selects per element, no search and no
/// table gather, so it vectorizes; NaN passes no boundary (code 0), as in the reference.
#[inline(always)]
pub(super) fn fake_nf4(rounding: Rounding, xs: &[f32], p: &BlockParams, out: &mut [f32]) {
    let (to_elem, zero, mul, pow2) = (p.to_elem, p.zero, p.mul, p.pow2);
    let values: [u32; 16] = NF4_TABLE.map(|v| ((v - zero) * mul).to_bits());
    let limits = nf4_limits(rounding);
    let to_v = |x: f32| if pow2 { x * to_elem } else { x / to_elem };
    // Eight lanes at a time, selects as bit masks: the compiler keeps them in vector registers.
    const LANES: usize = 8;
    let pick = |v: &[f32; LANES], o: &mut [f32]| {
        let mut r = [values[0]; LANES];
        for (lim, nv) in limits.iter().zip(&values[1..]) {
            for (ri, vi) in r.iter_mut().zip(v) {
                let m = u32::from(*vi > *lim).wrapping_neg();
                *ri = (nv & m) | (*ri & !m);
            }
        }
        for (oi, ri) in o.iter_mut().zip(&r) {
            *oi = f32::from_bits(*ri);
        }
    };
    let mut xc = xs.chunks_exact(LANES);
    let mut oc = out.chunks_exact_mut(LANES);
    for (xb, ob) in (&mut xc).zip(&mut oc) {
        let mut v = [0.0f32; LANES];
        for (vi, &x) in v.iter_mut().zip(xb) {
            *vi = to_v(x);
        }
        pick(&v, ob);
    }
    let (xr, or) = (xc.remainder(), oc.into_remainder());
    let mut v = [f32::NAN; LANES];
    for (vi, &x) in v.iter_mut().zip(xr) {
        *vi = to_v(x);
    }
    let mut tail = [0.0f32; LANES];
    pick(&v, &mut tail);
    or.copy_from_slice(&tail[..or.len()]);
}

/// The f32 thresholds of [`fake_nf4`]: L_k is the largest f32 below the midpoint of t_k and
/// t_{k+1}, or the midpoint itself when it is an f32 and a tie stays at t_k.
pub(super) fn nf4_limits(rounding: Rounding) -> [f32; 15] {
    let below = |x: f32| {
        if x > 0.0 {
            f32::from_bits(x.to_bits() - 1)
        } else if x < 0.0 {
            f32::from_bits(x.to_bits() + 1)
        } else {
            -f32::from_bits(1)
        }
    };
    std::array::from_fn(|k| {
        let (a, b) = (f64::from(NF4_TABLE[k]), f64::from(NF4_TABLE[k + 1]));
        let mid = 0.5 * (a + b);
        let tie_hi = match rounding {
            Rounding::Even => (k + 1) % 2 == 0,
            Rounding::Away => b.abs() > a.abs(),
            Rounding::Zero => b.abs() < a.abs(),
        };
        let m = mid as f32;
        if f64::from(m) == mid {
            if tie_hi {
                below(m)
            } else {
                m
            }
        } else if f64::from(m) < mid {
            m
        } else {
            below(m)
        }
    })
}

/// `v` limited to [lo, hi] (lo < hi) as two vectorizable min/max instructions: `f32::clamp`
/// carries an assertion that kept the loops scalar. Equal to `v.clamp(lo, hi)` for finite `v`
/// except that a zero at a zero bound may come back with either sign, which every caller
/// removes (`round_int` returns +0, and ±maxv bounds are never zero).
#[inline(always)]
fn clamp(v: f32, lo: f32, hi: f32) -> f32 {
    v.max(lo).min(hi)
}

/// `v` (|v| ≤ 2^22, already clamped) rounded to an integer by rule `R` (0 even, 1 away, 2
/// toward zero), as an f32 (never −0): [`Rounding::round_small`] with the rule fixed at
/// compile time.
#[inline(always)]
fn round_int<const R: u8>(v: f32) -> f32 {
    match R {
        0 => Rounding::Even.round_small(v),
        1 => Rounding::Away.round_small(v),
        _ => Rounding::Zero.round_small(v),
    }
}
