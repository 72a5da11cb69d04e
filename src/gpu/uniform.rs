//! The parameter blocks the codec kernels read: [`CodecUniform`] (WGSL `struct Codec`, one per
//! format and chunk shape), `GpuBlockParams` (WGSL `struct BlockP`, one per block) and the
//! value / NF4-threshold table — all derived from the CPU reference's own definitions, so the
//! kernels never re-derive a constant.
//!
//! Layout rule: `#[repr(C)]`, 4-byte scalars only, field order identical to the WGSL struct,
//! total a multiple of 16 bytes (`CodecUniform` 128 bytes, `GpuBlockParams` 32).

use bytemuck::{Pod, Zeroable};

use crate::codecs::element::NF4_TABLE;
use crate::codecs::minifloat::Special;
use crate::codecs::scale::E8m0Rule;
use crate::codecs::{
    BlockParams, BlockSize, ElementType, Format, IntKind, Kernel, Minifloat, Overflow, Rounding,
    ScaleType, ZeroPoint,
};
use crate::{Error, Result};

/// Elements per partial-statistics segment for tensor-level scalars.
pub(crate) const SEGMENT: usize = 4096;

/// The codec parameter block (WGSL `struct Codec`, same field order).
#[repr(C)]
#[derive(Clone, Copy, Debug, Default, Pod, Zeroable)]
pub struct CodecUniform {
    pub(crate) n_rows: u32,
    pub(crate) n_cols: u32,
    pub(crate) blen: u32,
    pub(crate) bpr: u32,
    pub(crate) per_tensor: u32,
    pub(crate) elem_kind: u32,
    pub(crate) exp_bits: u32,
    pub(crate) man_bits: u32,
    pub(crate) emin: i32,
    pub(crate) bias: i32,
    pub(crate) special: u32,
    pub(crate) max_mag: u32,
    pub(crate) over_mag: u32,
    pub(crate) nan_mag: u32,
    pub(crate) sign_shift: u32,
    pub(crate) rounding: u32,
    pub(crate) scale_kind: u32,
    pub(crate) e8m0_rule: u32,
    pub(crate) zero_kind: u32,
    pub(crate) zero_type: u32,
    pub(crate) has_global: u32,
    pub(crate) global_bits: u32,
    pub(crate) qmax: i32,
    pub(crate) code_mask: u32,
    pub(crate) elem_emax: i32,
    pub(crate) elem_mbits: u32,
    pub(crate) elem_max_bits: u32,
    pub(crate) inv_elem_max_bits: u32,
    pub(crate) qmax_f_bits: u32,
    pub(crate) mxint_frac_bits: u32,
    pub(crate) n_blocks: u32,
    pub(crate) pad0: u32,
}

/// Block parameters as the kernels store them (WGSL `struct BlockP`).
#[repr(C)]
#[derive(Clone, Copy, Debug, Default, PartialEq, Pod, Zeroable)]
pub(crate) struct GpuBlockParams {
    pub(crate) scale_code: u32,
    pub(crate) zero_code: u32,
    mul: u32,
    zero: u32,
    to_elem: u32,
    flags: u32,
    pad0: u32,
    pad1: u32,
}

impl From<&BlockParams> for GpuBlockParams {
    fn from(p: &BlockParams) -> Self {
        Self {
            scale_code: p.scale_code,
            zero_code: p.zero_code,
            mul: p.mul.to_bits(),
            zero: p.zero.to_bits(),
            to_elem: p.to_elem.to_bits(),
            flags: u32::from(p.pow2) | (u32::from(p.nan) << 1),
            pad0: 0,
            pad1: 0,
        }
    }
}

fn scale_kind(s: Option<ScaleType>) -> (u32, u32) {
    match s {
        None => (0, 0),
        Some(ScaleType::E8m0 { rule }) => (
            1,
            match rule {
                E8m0Rule::Floor => 0,
                E8m0Rule::Ceil => 1,
                E8m0Rule::Even => 2,
                E8m0Rule::Rceil => 3,
            },
        ),
        Some(ScaleType::Fp16) => (2, 0),
        Some(ScaleType::Bf16) => (3, 0),
        Some(ScaleType::Fp32) => (4, 0),
        Some(ScaleType::E4m3) => (5, 0),
    }
}

fn float_type_code(t: ScaleType) -> u32 {
    match t {
        ScaleType::Fp16 => 2,
        ScaleType::Bf16 => 3,
        _ => 4,
    }
}

impl CodecUniform {
    /// The parameter block of `format` for a `rows × cols` chunk (global scale: bits or None).
    pub(crate) fn new(
        format: &Format,
        rows: usize,
        cols: usize,
        global: Option<f32>,
    ) -> Result<Self> {
        let f = format.validate()?;
        let el = f.element;
        let mf = match el {
            ElementType::Float(mf) => mf,
            _ => Minifloat::E2M1,
        };
        let over_mag = match f.overflow {
            Overflow::Saturate => mf.max_code_mag(),
            Overflow::InfNan => mf
                .inf_code_mag()
                .or(mf.nan_code_mag())
                .unwrap_or(mf.max_code_mag()),
        };
        let (elem_kind, qmax) = match el {
            ElementType::Float(_) => (0, 0),
            ElementType::Int {
                bits,
                kind: IntKind::Sym,
            } => (1, (1i32 << (bits - 1)) - 1),
            ElementType::Int {
                bits,
                kind: IntKind::Asym,
            } => (2, (1i32 << bits) - 1),
            ElementType::MxInt { bits } => (3, (1i32 << (bits - 1)) - 1),
            ElementType::Nf4 => (4, 0),
        };
        let (scale_kind, e8m0_rule) = scale_kind(f.scale);
        let (zero_kind, zero_type) = match f.zero {
            ZeroPoint::None => (0, 0),
            ZeroPoint::Int => (1, 0),
            ZeroPoint::Float(t) => (2, float_type_code(t)),
        };
        let bits = el.bits();
        let per_tensor = f.block == BlockSize::PerTensor;
        let blen = f.block.block_len(cols);
        let bpr = crate::codecs::tensor::blocks_per_row(&f, cols);
        let n_blocks = if per_tensor { 1 } else { rows * bpr };
        let u = |n: usize, what: &str| {
            u32::try_from(n).map_err(|_| Error::Gpu(format!("{what} {n} exceeds 2^32")))
        };
        let mxint_frac = match el {
            ElementType::MxInt { bits } => crate::codecs::minifloat::pow2(i32::from(bits) - 2),
            _ => 1.0,
        };
        Ok(Self {
            n_rows: u(rows, "rows")?,
            n_cols: u(cols, "columns")?,
            blen: u(blen, "block length")?,
            bpr: u(bpr, "blocks per row")?,
            per_tensor: u32::from(per_tensor),
            elem_kind,
            exp_bits: u32::from(mf.exp_bits),
            man_bits: u32::from(mf.man_bits),
            emin: mf.emin(),
            bias: mf.bias(),
            special: match mf.special {
                Special::Ieee => 0,
                Special::Fn => 1,
                Special::Finite => 2,
            },
            max_mag: mf.max_code_mag(),
            over_mag,
            nan_mag: mf.nan_code_mag().unwrap_or(u32::MAX),
            sign_shift: u32::from(mf.exp_bits) + u32::from(mf.man_bits),
            rounding: match f.rounding {
                Rounding::Even => 0,
                Rounding::Away => 1,
                Rounding::Zero => 2,
            },
            scale_kind,
            e8m0_rule,
            zero_kind,
            zero_type,
            has_global: u32::from(global.is_some()),
            global_bits: global.unwrap_or(1.0).to_bits(),
            qmax,
            code_mask: if bits >= 32 {
                u32::MAX
            } else {
                (1u32 << bits) - 1
            },
            elem_emax: el.emax(),
            elem_mbits: el.mantissa_bits(),
            elem_max_bits: el.max_value().to_bits(),
            inv_elem_max_bits: (1.0 / el.max_value()).to_bits(),
            qmax_f_bits: (qmax as f32).to_bits(),
            mxint_frac_bits: mxint_frac.to_bits(),
            n_blocks: u(n_blocks, "blocks")?,
            pad0: 0,
        })
    }

    /// The same format viewed as segments of `SEGMENT` elements over a flat `n`-element chunk
    /// (for partial statistics).
    pub(crate) fn segments(mut self, n: usize) -> Result<Self> {
        let n_seg = n.div_ceil(SEGMENT);
        self.n_rows = 1;
        self.n_cols = u32::try_from(n).map_err(|_| Error::Gpu("chunk exceeds 2^32".into()))?;
        self.blen = SEGMENT as u32;
        self.bpr = n_seg as u32;
        self.n_blocks = n_seg as u32;
        self.per_tensor = 0;
        Ok(self)
    }
}

/// The smallest f32 (in total order) that `pick` maps to a code above `lo`, searching (a, b].
fn first_above(a: f32, b: f32, pick: impl Fn(f32) -> bool) -> f32 {
    // Ordered keys: monotone in the value for the finite range used here.
    let key = |x: f32| {
        let b = x.to_bits() as i64;
        if b >> 31 == 1 {
            -(b & 0x7fff_ffff)
        } else {
            b
        }
    };
    let from_key = |k: i64| {
        if k < 0 {
            f32::from_bits((-k) as u32 | 0x8000_0000)
        } else {
            f32::from_bits(k as u32)
        }
    };
    let (mut lo, mut hi) = (key(a), key(b));
    while hi - lo > 1 {
        let mid = lo + (hi - lo) / 2;
        if pick(from_key(mid)) {
            hi = mid;
        } else {
            lo = mid;
        }
    }
    from_key(hi)
}

/// Value table (256 words, element values of non-float codes) and the 15 NF4 thresholds: the
/// smallest f32 whose NF4 code is i + 1, found from the reference encoder itself.
pub(crate) fn tables(format: &Format) -> Result<Vec<u32>> {
    let mut t = vec![0u32; 256 + 16];
    let el = format.element;
    if !matches!(el, ElementType::Float(_)) {
        for (c, slot) in t
            .iter_mut()
            .take(el.n_codes().min(256) as usize)
            .enumerate()
        {
            *slot = el.decode(c as u32).to_bits();
        }
    }
    if el == ElementType::Nf4 {
        // Codes of an NF4 block with unit scale: the reference encoder decides ties.
        let probe = Format {
            scale: Some(ScaleType::Fp32),
            ..*format
        };
        let k = Kernel::new(&probe)?;
        let p = k.params_from_codes(1.0f32.to_bits(), 0, None);
        for i in 0..15 {
            let (a, b) = (NF4_TABLE[i], NF4_TABLE[i + 1]);
            let th = first_above(a, b, |v| k.encode_one(v, &p) > i as u32);
            t[256 + i] = th.to_bits();
        }
    }
    Ok(t)
}
