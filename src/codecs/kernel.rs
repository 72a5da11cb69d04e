//! The block kernel: per-block parameters (scale and zero point, already rounded to their
//! storage types) and the element pass (encode to codes, decode, or both fused = fake-quant).
//!
//! Invariants:
//! - The fused fake-quant of a block is bit-identical to decoding the codes it would store:
//!   `fake(x) == (value(code(x)) − zero) · mul`, with `mul` and `zero` decoded from the stored
//!   scale/zero codes (the NaN-block rule included).
//! - A block with any NaN or ±Inf input (and any block whose E8M0 exponent overflows) is a NaN
//!   block: its scale holds the scale type's NaN code, its element codes are 0 and every
//!   dequantized value is NaN (OCP MX rule, applied to every scaled format). Plain casts
//!   (`scale=none`: fp16, bf16) convert element by element instead (NaN→NaN, ±Inf→±Inf).
//! - No allocation per block; the element loop is chosen once per block.
//!
//! Mapping x to the element domain: E8M0 scales multiply by 2^−e (exact); other scales divide
//! by the decoded scale s in f32 (as torchao does); s = 0 (an all-zero block, or a scale that
//! underflowed its type) maps every element to 0.

pub use super::block_stats::BlockStats;
use super::element::{ElementType, IntKind, NF4_TABLE};
use super::format::{Format, ZeroPoint};
use super::minifloat::{pow2, Minifloat};
use super::pack::{BitReader, BitWriter};
use super::rounding::{Overflow, Rounding};
use super::scale::{e8m0_exponent, ScaleType, E8M0_BIAS};
use crate::Result;

mod fused;
use fused::{fake_cast16, fake_float_rne, fake_nf4};

/// Parameters of one block, decoded from (or about to be stored as) its scale and zero codes.
#[derive(Clone, Copy, Debug, PartialEq)]
pub struct BlockParams {
    /// Stored scale code (0 when the format has no scale).
    pub scale_code: u32,
    /// Stored zero-point code (0 without a zero point).
    pub zero_code: u32,
    /// Dequantization multiplier: decoded scale × global scale (NaN for a NaN block).
    pub mul: f32,
    /// Zero point in code units (0 without one).
    pub zero: f32,
    /// Quantization maps x to `x * to_elem` when `pow2`, else to `x / to_elem`.
    pub to_elem: f32,
    /// Whether `to_elem` is an exact power-of-two multiplier.
    pub pow2: bool,
    /// NaN block: codes are 0 and every value is NaN.
    pub nan: bool,
}

/// A format prepared for fast block processing.
#[derive(Clone, Debug)]
pub struct Kernel {
    /// The format.
    pub format: Format,
    /// Element value of every code (before scale and zero); empty for 16-bit casts.
    lut: Vec<f32>,
    /// Largest integer code magnitude (int elements).
    qmax: i32,
    /// Code mask.
    code_mask: u32,
    /// Element constants used per block: floor(log2 max), mantissa bits, max value.
    elem_emax: i32,
    elem_mbits: u32,
    elem_max: f32,
}

impl Kernel {
    /// Prepares a kernel for `format` (validated).
    pub fn new(format: &Format) -> Result<Self> {
        let format = format.validate()?;
        let bits = format.element.bits();
        let lut = if bits <= 8 {
            (0..1u32 << bits)
                .map(|c| format.element.decode(c))
                .collect()
        } else {
            Vec::new()
        };
        let qmax = match format.element {
            ElementType::Int {
                bits,
                kind: IntKind::Sym,
            }
            | ElementType::MxInt { bits } => (1i32 << (bits - 1)) - 1,
            ElementType::Int {
                bits,
                kind: IntKind::Asym,
            } => (1i32 << bits) - 1,
            _ => 0,
        };
        Ok(Self {
            format,
            lut,
            qmax,
            code_mask: if bits >= 32 {
                u32::MAX
            } else {
                (1u32 << bits) - 1
            },
            elem_emax: format.element.emax(),
            elem_mbits: format.element.mantissa_bits(),
            elem_max: format.element.max_value(),
        })
    }

    /// The per-tensor global scale (NVFP4: amax / (448 · element max)), when the format has one.
    /// Non-finite inputs are ignored; an all-zero tensor uses 1.
    pub fn global_scale(&self, all: &BlockStats) -> Option<f32> {
        if !self.format.global_scale {
            return None;
        }
        let g = all.amax / (448.0 * self.format.element.max_value());
        Some(if g > 0.0 && g.is_finite() { g } else { 1.0 })
    }

    #[inline]
    fn nan_params(&self) -> BlockParams {
        BlockParams {
            scale_code: self.format.scale.map_or(0, ScaleType::nan_code),
            zero_code: 0,
            mul: f32::NAN,
            zero: 0.0,
            to_elem: 1.0,
            pow2: true,
            nan: true,
        }
    }

    /// Round-to-nearest parameters for a block with stats `st`.
    #[inline(always)]
    pub fn params_rtn(&self, st: &BlockStats, global: Option<f32>) -> BlockParams {
        let Some(scale) = self.format.scale else {
            return BlockParams {
                scale_code: 0,
                zero_code: 0,
                mul: 1.0,
                zero: 0.0,
                to_elem: 1.0,
                pow2: true,
                nan: false,
            };
        };
        if !st.finite {
            return self.nan_params();
        }
        if let ScaleType::E8m0 { rule } = scale {
            return match e8m0_exponent(
                rule,
                st.amax,
                self.elem_emax,
                self.elem_mbits,
                self.elem_max,
            ) {
                Some(e) => self.params_from_codes((e + E8M0_BIAS) as u32, 0, global),
                None => self.nan_params(),
            };
        }
        match self.format.zero {
            ZeroPoint::None => {
                let mut raw = st.amax / self.elem_max;
                if let Some(g) = global {
                    raw /= g;
                }
                self.params_from_codes(scale.encode_value(raw), 0, global)
            }
            ZeroPoint::Int => {
                // GPTQ convention: the range always contains 0, the zero point is an integer.
                // Strict comparisons, not `f32::min`: the sign of a zero bound is then defined
                // (+0), which the GPU kernel reproduces bit for bit.
                let lo = if st.min < 0.0 { st.min } else { 0.0 };
                let hi = if st.max > 0.0 { st.max } else { 0.0 };
                let raw = (hi - lo) / self.qmax as f32;
                let s_code = scale.encode_value(raw);
                let s = scale.decode(s_code);
                let z = if s > 0.0 {
                    // −lo / s ≥ 0; limiting it to qmax + 1 first changes nothing after the
                    // clamp to qmax, and keeps it where the branch-free rounding is exact.
                    let v = (-lo / s).min(self.qmax as f32 + 1.0);
                    (self.format.rounding.round_small(v) as i32).clamp(0, self.qmax)
                } else {
                    0
                };
                self.params_from_codes(s_code, z as u32, global)
            }
            ZeroPoint::Float(zt) => {
                // HQQ convention: min/max of the block, float zero = −min / s.
                let (lo, hi) = if st.min <= st.max {
                    (st.min, st.max)
                } else {
                    (0.0, 0.0)
                };
                let raw = (hi - lo) / self.qmax as f32;
                let s_code = scale.encode_value(raw);
                let s = scale.decode(s_code);
                let z = if s > 0.0 { -lo / s } else { 0.0 };
                self.params_from_codes(s_code, zt.encode_value_signed(z), global)
            }
        }
    }

    /// Parameters from raw (unrounded) total scale and zero values, as an optimiser proposes
    /// them; they are rounded to their storage types here (E8M0: nearest power of two in the
    /// log domain; with a global scale the block part is `scale_raw / global`).
    pub fn params_from_values(
        &self,
        scale_raw: f32,
        zero_raw: f32,
        global: Option<f32>,
    ) -> BlockParams {
        let Some(scale) = self.format.scale else {
            return self.params_rtn(&BlockStats::EMPTY, global);
        };
        let s_code = match scale {
            // Nearest power of two in the log domain (the projection of a free scale onto E8M0).
            ScaleType::E8m0 { .. } if scale_raw > 0.0 && scale_raw.is_finite() => {
                let e = (f64::from(scale_raw).log2().round() as i32).clamp(-E8M0_BIAS, E8M0_BIAS);
                (e + E8M0_BIAS) as u32
            }
            ScaleType::E8m0 { .. } => 0,
            _ => {
                let raw = match global {
                    Some(g) => scale_raw / g,
                    None => scale_raw,
                };
                scale.encode_value(raw.max(0.0))
            }
        };
        let z_code = match self.format.zero {
            ZeroPoint::None => 0,
            ZeroPoint::Int => self
                .format
                .rounding
                .round_to_int(zero_raw.clamp(-1e9, 1e9))
                .clamp(0, self.qmax) as u32,
            ZeroPoint::Float(zt) => zt.encode_value_signed(zero_raw),
        };
        self.params_from_codes(s_code, z_code, global)
    }

    /// Parameters from stored codes (what dequantization sees).
    #[inline(always)]
    pub fn params_from_codes(
        &self,
        scale_code: u32,
        zero_code: u32,
        global: Option<f32>,
    ) -> BlockParams {
        let Some(scale) = self.format.scale else {
            return self.params_rtn(&BlockStats::EMPTY, global);
        };
        let s = scale.decode(scale_code);
        if s.is_nan() {
            return self.nan_params();
        }
        let zero = match self.format.zero {
            ZeroPoint::None => 0.0,
            ZeroPoint::Int => zero_code as f32,
            ZeroPoint::Float(zt) => zt.decode(zero_code),
        };
        if let ScaleType::E8m0 { .. } = scale {
            let e = scale_code as i32 - E8M0_BIAS;
            return BlockParams {
                scale_code,
                zero_code,
                mul: s,
                zero,
                to_elem: pow2(-e),
                pow2: true,
                nan: false,
            };
        }
        let total = match global {
            Some(g) => g * s,
            None => s,
        };
        BlockParams {
            scale_code,
            zero_code,
            mul: total,
            zero,
            to_elem: if total > 0.0 { total } else { f32::INFINITY },
            pow2: false,
            nan: false,
        }
    }

    /// Element value of a code before scale and zero point.
    #[inline(always)]
    pub fn value(&self, code: u32) -> f32 {
        match self.lut.get(code as usize) {
            Some(v) => *v,
            None => self.format.element.decode(code),
        }
    }

    /// Dequantized value of a code in a block.
    #[inline(always)]
    pub fn dequant(&self, code: u32, p: &BlockParams) -> f32 {
        (self.value(code) - p.zero) * p.mul
    }

    /// Runs `sink(i, code)` over the codes of a block. The element loop is chosen once.
    #[inline(always)]
    fn for_codes<S: FnMut(usize, u32)>(&self, xs: &[f32], p: &BlockParams, sink: S) {
        if p.nan {
            let mut sink = sink;
            for i in 0..xs.len() {
                sink(i, 0);
            }
            return;
        }
        let f = &self.format;
        match (f.element, f.rounding) {
            (ElementType::Float(mf), Rounding::Even) => self.float_codes::<0, S>(mf, xs, p, sink),
            (ElementType::Float(mf), Rounding::Away) => self.float_codes::<1, S>(mf, xs, p, sink),
            (ElementType::Float(mf), Rounding::Zero) => self.float_codes::<2, S>(mf, xs, p, sink),
            (el, r) => self.other_codes(el, r, xs, p, sink),
        }
    }

    #[inline(always)]
    fn float_codes<const R: u8, S: FnMut(usize, u32)>(
        &self,
        mf: Minifloat,
        xs: &[f32],
        p: &BlockParams,
        mut sink: S,
    ) {
        let rounding = match R {
            0 => Rounding::Even,
            1 => Rounding::Away,
            _ => Rounding::Zero,
        };
        let overflow = self.format.overflow;
        if self.format.scale.is_none() {
            for (i, &x) in xs.iter().enumerate() {
                sink(i, mf.encode(x, rounding, overflow));
            }
            return;
        }
        // Scaled blocks hold only finite values here (NaN blocks were handled above).
        let sign_shift = u32::from(mf.exp_bits) + u32::from(mf.man_bits);
        let max_mag = mf.max_code_mag();
        let over_mag = match overflow {
            Overflow::Saturate => max_mag,
            Overflow::InfNan => mf.inf_code_mag().or(mf.nan_code_mag()).unwrap_or(max_mag),
        };
        let (to_elem, is_pow2) = (p.to_elem, p.pow2);
        for (i, &x) in xs.iter().enumerate() {
            let v = if is_pow2 { x * to_elem } else { x / to_elem };
            let b = v.to_bits();
            let mag = mf.encode_finite_mag(b & 0x7fff_ffff, rounding);
            let mag = if mag > max_mag { over_mag } else { mag };
            sink(i, ((b >> 31) << sign_shift) | mag);
        }
    }

    #[inline(always)]
    fn other_codes<S: FnMut(usize, u32)>(
        &self,
        el: ElementType,
        rounding: Rounding,
        xs: &[f32],
        p: &BlockParams,
        mut sink: S,
    ) {
        let (to_elem, is_pow2) = (p.to_elem, p.pow2);
        let to_v = |x: f32| if is_pow2 { x * to_elem } else { x / to_elem };
        let qmax = self.qmax;
        let qmax_f = qmax as f32;
        let mask = self.code_mask;
        match el {
            ElementType::Int {
                kind: IntKind::Sym, ..
            } => {
                for (i, &x) in xs.iter().enumerate() {
                    let q = rounding.round_to_int(to_v(x).clamp(-qmax_f, qmax_f));
                    sink(i, (q as u32) & mask);
                }
            }
            ElementType::Int {
                kind: IntKind::Asym,
                ..
            } => match self.format.zero {
                ZeroPoint::Int => {
                    let z = p.zero as i32;
                    for (i, &x) in xs.iter().enumerate() {
                        let q = rounding.round_to_int(to_v(x).clamp(-16_777_216.0, 16_777_216.0));
                        sink(i, (q + z).clamp(0, qmax) as u32);
                    }
                }
                _ => {
                    let z = p.zero;
                    for (i, &x) in xs.iter().enumerate() {
                        let q = rounding.round_to_int((to_v(x) + z).clamp(0.0, qmax_f));
                        sink(i, q as u32);
                    }
                }
            },
            ElementType::MxInt { bits } => {
                let frac = pow2(i32::from(bits) - 2);
                for (i, &x) in xs.iter().enumerate() {
                    let q = rounding.round_to_int((to_v(x) * frac).clamp(-qmax_f, qmax_f));
                    sink(i, (q as u32) & mask);
                }
            }
            ElementType::Nf4 => {
                for (i, &x) in xs.iter().enumerate() {
                    sink(i, nf4_code(to_v(x), rounding));
                }
            }
            ElementType::Float(_) => {}
        }
    }

    /// Fused fake-quant of one block: `out[i] = dequant(code(xs[i]))`.
    #[inline(always)]
    pub fn fake_block(&self, xs: &[f32], p: &BlockParams, out: &mut [f32]) {
        if p.nan {
            out.iter_mut().for_each(|o| *o = f32::NAN);
            return;
        }
        let (zero, mul) = (p.zero, p.mul);
        if self.lut.is_empty() {
            let el = self.format.element;
            if let (ElementType::Float(mf), None, Rounding::Even) =
                (el, self.format.scale, self.format.rounding)
            {
                if (mf == Minifloat::BF16 || mf == Minifloat::FP16) && xs.len() == out.len() {
                    fake_cast16(mf, self.format.overflow, xs, out);
                    return;
                }
            }
            self.for_codes(xs, p, |i, c| {
                if let Some(o) = out.get_mut(i) {
                    *o = (el.decode(c) - zero) * mul;
                }
            });
            return;
        }
        let lut = &self.lut[..];
        let mask = self.code_mask as usize;
        if let (ElementType::Float(mf), Some(_)) = (self.format.element, self.format.scale) {
            let fast = self.format.rounding == Rounding::Even
                && self.format.overflow == Overflow::Saturate
                && mf.emin() - i32::from(mf.man_bits) >= -126;
            if fast {
                fake_float_rne(mf, self.elem_max, xs, p, out);
                return;
            }
            match self.format.rounding {
                Rounding::Even => self.fake_float::<0>(mf, xs, p, out),
                Rounding::Away => self.fake_float::<1>(mf, xs, p, out),
                Rounding::Zero => self.fake_float::<2>(mf, xs, p, out),
            }
            return;
        }
        if self.format.element == ElementType::Nf4 && xs.len() == out.len() {
            fake_nf4(self.format.rounding, xs, p, out);
            return;
        }
        if matches!(
            self.format.element,
            ElementType::Int { .. } | ElementType::MxInt { .. }
        ) && xs.len() == out.len()
        {
            match (self.format.rounding, p.pow2) {
                (Rounding::Even, true) => self.fake_int::<0, true>(xs, p, out),
                (Rounding::Even, false) => self.fake_int::<0, false>(xs, p, out),
                (Rounding::Away, true) => self.fake_int::<1, true>(xs, p, out),
                (Rounding::Away, false) => self.fake_int::<1, false>(xs, p, out),
                (Rounding::Zero, true) => self.fake_int::<2, true>(xs, p, out),
                (Rounding::Zero, false) => self.fake_int::<2, false>(xs, p, out),
            }
            return;
        }
        self.for_codes(xs, p, |i, c| {
            let v = lut.get(c as usize & mask).copied().unwrap_or(0.0);
            if let Some(o) = out.get_mut(i) {
                *o = (v - zero) * mul;
            }
        });
    }

    /// The fused minifloat loop of a scaled block: magnitude code, table lookup, sign, scale.
    #[inline(always)]
    fn fake_float<const R: u8>(&self, mf: Minifloat, xs: &[f32], p: &BlockParams, out: &mut [f32]) {
        let rounding = match R {
            0 => Rounding::Even,
            1 => Rounding::Away,
            _ => Rounding::Zero,
        };
        let max_mag = mf.max_code_mag();
        let over_mag = match self.format.overflow {
            Overflow::Saturate => max_mag,
            Overflow::InfNan => mf.inf_code_mag().or(mf.nan_code_mag()).unwrap_or(max_mag),
        };
        // Magnitude table: decoded |value| of every magnitude code.
        let n_mag = (mf.max_code_mag() as usize + 1).max(over_mag as usize + 1);
        let lut = &self.lut[..n_mag.min(self.lut.len())];
        let (to_elem, mul) = (p.to_elem, p.mul);
        if p.pow2 {
            for (o, &x) in out.iter_mut().zip(xs) {
                let b = (x * to_elem).to_bits();
                let mag = mf.encode_finite_mag(b & 0x7fff_ffff, rounding);
                let mag = if mag > max_mag { over_mag } else { mag };
                let v = lut.get(mag as usize).copied().unwrap_or(f32::NAN);
                *o = f32::from_bits(v.to_bits() | (b & 0x8000_0000)) * mul;
            }
        } else {
            for (o, &x) in out.iter_mut().zip(xs) {
                let b = (x / to_elem).to_bits();
                let mag = mf.encode_finite_mag(b & 0x7fff_ffff, rounding);
                let mag = if mag > max_mag { over_mag } else { mag };
                let v = lut.get(mag as usize).copied().unwrap_or(f32::NAN);
                *o = f32::from_bits(v.to_bits() | (b & 0x8000_0000)) * mul;
            }
        }
    }

    /// Encodes one block into `w`.
    #[inline]
    pub fn encode_block(&self, xs: &[f32], p: &BlockParams, w: &mut BitWriter<'_>) {
        self.for_codes(xs, p, |_, c| w.push(c));
    }

    /// Decodes `out.len()` codes of one block from `r`.
    #[inline]
    pub fn decode_block(&self, r: &mut BitReader<'_>, p: &BlockParams, out: &mut [f32]) {
        for o in out.iter_mut() {
            let c = r.next_code();
            *o = if p.nan { f32::NAN } else { self.dequant(c, p) };
        }
    }

    /// The element code of a single value in a block (for tests and tools).
    pub fn encode_one(&self, x: f32, p: &BlockParams) -> u32 {
        let mut code = 0;
        self.for_codes(std::slice::from_ref(&x), p, |_, c| code = c);
        code
    }
}

/// Nearest NF4 table index; ties follow `rounding` (even index, away from zero, toward zero).
#[inline]
fn nf4_code(v: f32, rounding: Rounding) -> u32 {
    let v = f64::from(v);
    // Index of the first table entry >= v (table is sorted).
    let hi = NF4_TABLE.partition_point(|&t| f64::from(t) < v);
    if hi == 0 {
        return 0;
    }
    if hi >= NF4_TABLE.len() {
        return 15;
    }
    let lo = hi - 1;
    let (a, b) = (f64::from(NF4_TABLE[lo]), f64::from(NF4_TABLE[hi]));
    let (da, db) = (v - a, b - v);
    let pick_hi = if da != db {
        db < da
    } else {
        match rounding {
            Rounding::Even => hi % 2 == 0,
            Rounding::Away => b.abs() > a.abs(),
            Rounding::Zero => b.abs() < a.abs(),
        }
    };
    (if pick_hi { hi } else { lo }) as u32
}

impl ScaleType {
    /// Encodes a signed value (a float zero point) in a float storage type, round to nearest even.
    pub fn encode_value_signed(self, v: f32) -> u32 {
        match self {
            ScaleType::Fp16 => u32::from(half::f16::from_f32(v).to_bits()),
            ScaleType::Bf16 => u32::from(half::bf16::from_f32(v).to_bits()),
            _ => v.to_bits(),
        }
    }
}
