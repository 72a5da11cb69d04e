//! Building blocks of the forward pass (candle on CPU, fp32) and the hooks it offers.
//!
//! Shapes: activations are `[B, T, d]` (batch, tokens, width); attention works on
//! `[B, H, T, head_dim]`; every linear weight is stored `[out, in]` (GPT-2's `Conv1D` weights
//! are transposed at load), so the reduction dimension K of every matmul is the last dimension
//! of both operands' rows, and codec blocks run along it.
//!
//! Hooks ([`Hooks`]): (1) a per-linear weight override (a fake-quantized or perturbed `[out, in]`
//! weight, swapped in without reloading); (2) a per-matmul operand format: the activation
//! operand of a linear layer, and both operands of Q·Kᵀ and attention·V, are fake-quantized
//! along K with a codec [`Format`] (for a linear layer the weight operand is quantized once by
//! the caller and passed through (1), so a sweep never re-quantizes weights per forward);
//! (3) capture of each linear layer's input `[B·T, in]` (GPTQ calibration, Hessians).
//! [`NoHooks`] answers `None`/`false` everywhere, and each hook is consulted once per matmul
//! with no tensor work when it declines, so a forward pass without hooks costs nothing extra.

use candle_core::{Device, Tensor, D};

use super::kernels::CausalSoftmax;
use crate::codecs::{fake_quant, Format, Method};
use crate::error::{Error, Result};

/// Hooks into the forward pass. Every method has a do-nothing default.
pub trait Hooks: Sync {
    /// Replacement for linear site `linear`'s weight (same `[out, in]` shape), or `None`.
    fn weight(&self, _linear: usize) -> Option<&Tensor> {
        None
    }
    /// Format the operands of matmul site `matmul` are fake-quantized to along K, or `None`.
    fn operand_format(&self, _matmul: usize) -> Option<&Format> {
        None
    }
    /// Whether [`Hooks::capture`] wants linear inputs (checked before any copy is made).
    fn captures(&self) -> bool {
        false
    }
    /// Receives linear site `linear`'s input, `[B·T, in]`.
    fn capture(&self, _linear: usize, _input: &Tensor) -> Result<()> {
        Ok(())
    }
}

/// No hooks: the plain forward pass.
#[derive(Clone, Copy, Debug, Default)]
pub struct NoHooks;

impl Hooks for NoHooks {}

/// Fake-quantizes `x` along its last dimension (K) with `format` (round to nearest).
pub fn quantize_last_dim(x: &Tensor, format: &Format) -> Result<Tensor> {
    let dims = x.dims().to_vec();
    let k = dims.last().copied().unwrap_or(0);
    if k == 0 || x.elem_count() == 0 {
        return Ok(x.clone());
    }
    let flat = x.flatten_all()?.to_vec1::<f32>()?;
    let rows = flat.len() / k;
    let q = fake_quant(&flat, rows, k, format, &Method::Rtn)?;
    Ok(Tensor::from_vec(q, dims, x.device())?)
}

/// A linear layer `y = x·Wᵀ + b`, weight `[out, in]`.
#[derive(Clone, Debug)]
pub struct Linear {
    /// Index among the model's linear sites (hook key).
    pub site: usize,
    /// Index among the model's matmul sites.
    pub matmul: usize,
    /// `[out, in]`.
    pub weight: Tensor,
    /// `[out]`.
    pub bias: Option<Tensor>,
}

impl Linear {
    /// Applies the layer to `x` `[.., in]` → `[.., out]`, consulting the hooks.
    pub fn forward(&self, x: &Tensor, hooks: &dyn Hooks) -> Result<Tensor> {
        let dims = x.dims().to_vec();
        let k = dims.last().copied().unwrap_or(0);
        let rows = x.elem_count() / k.max(1);
        let mut x2 = x.reshape((rows, k))?;
        if hooks.captures() {
            hooks.capture(self.site, &x2)?;
        }
        if let Some(f) = hooks.operand_format(self.matmul) {
            x2 = quantize_last_dim(&x2, f)?;
        }
        let w = hooks.weight(self.site).unwrap_or(&self.weight);
        let mut y = x2.matmul(&w.t()?)?;
        if let Some(b) = &self.bias {
            y = y.broadcast_add(b)?;
        }
        let mut out = dims;
        if let Some(last) = out.last_mut() {
            *last = w.dim(0)?;
        }
        Ok(y.reshape(out)?)
    }
}

/// RMSNorm (Llama) or LayerNorm (GPT-2, GPT-NeoX), over the last dimension, in fp32.
#[derive(Clone, Debug)]
pub enum Norm {
    /// `x / sqrt(mean(x²) + eps) · w`.
    Rms {
        /// Gain `[d]`.
        weight: Tensor,
        /// Epsilon.
        eps: f32,
    },
    /// `(x − mean) / sqrt(var + eps) · w + b`.
    Layer {
        /// Gain `[d]`.
        weight: Tensor,
        /// Bias `[d]`.
        bias: Tensor,
        /// Epsilon.
        eps: f32,
    },
}

impl Norm {
    /// Normalizes `x` `[.., d]`: fused kernels, or (`differentiable`) ops with gradients.
    pub fn forward_ad(&self, x: &Tensor, differentiable: bool) -> Result<Tensor> {
        if !differentiable {
            return self.forward(x);
        }
        Ok(match self {
            Norm::Rms { weight, eps } => candle_nn::ops::rms_norm_slow(x, weight, *eps)?,
            Norm::Layer { weight, bias, eps } => {
                candle_nn::ops::layer_norm_slow(x, weight, bias, *eps)?
            }
        })
    }

    /// Normalizes `x` `[.., d]` (fused kernels; no gradients).
    pub fn forward(&self, x: &Tensor) -> Result<Tensor> {
        Ok(match self {
            Norm::Rms { weight, eps } => candle_nn::ops::rms_norm(&x.contiguous()?, weight, *eps)?,
            Norm::Layer { weight, bias, eps } => {
                candle_nn::ops::layer_norm(&x.contiguous()?, weight, bias, *eps)?
            }
        })
    }
}

/// Rotary embedding tables for the first `dims` dims of each head (rotate-half convention).
#[derive(Clone, Debug)]
pub struct Rope {
    /// Rotated dims per head (even).
    pub dims: usize,
    cos: Tensor,
    sin: Tensor,
}

impl Rope {
    /// Tables for positions `0..min(max_positions, limits::ROPE_TABLE_POSITIONS,
    /// limits::ROPE_TABLE_ELEMENTS / (dims / 2))` with base
    /// `theta` (a config may declare millions of positions; contexts beyond the table are
    /// refused by [`Self::apply`], never allocated).
    pub fn new(dims: usize, theta: f64, max_positions: usize, device: &Device) -> Result<Self> {
        let half = dims / 2;
        let max_positions = max_positions
            .min(crate::limits::ROPE_TABLE_POSITIONS)
            .min(crate::limits::ROPE_TABLE_ELEMENTS / half.max(1));
        let mut cos = Vec::with_capacity(max_positions * half);
        let mut sin = Vec::with_capacity(max_positions * half);
        // transformers computes inv_freq in fp32 and the angles as an fp32 outer product.
        let inv: Vec<f32> = (0..half)
            .map(|i| (1.0 / theta.powf((2 * i) as f64 / dims as f64)) as f32)
            .collect();
        for p in 0..max_positions {
            for f in &inv {
                let a = p as f32 * f;
                cos.push(a.cos());
                sin.push(a.sin());
            }
        }
        Ok(Self {
            dims,
            cos: Tensor::from_vec(cos, (max_positions, half), device)?,
            sin: Tensor::from_vec(sin, (max_positions, half), device)?,
        })
    }

    /// The cos and sin tables, each `[max_positions, dims / 2]` row-major (the GPU path).
    pub fn tables(&self) -> Result<(Vec<f32>, Vec<f32>)> {
        Ok((
            self.cos.flatten_all()?.to_vec1::<f32>()?,
            self.sin.flatten_all()?.to_vec1::<f32>()?,
        ))
    }

    /// Rotates `x` `[B, H, T, head_dim]` (positions 0..T); `differentiable` uses ops with
    /// gradients instead of the fused kernel.
    pub fn apply(&self, x: &Tensor, differentiable: bool) -> Result<Tensor> {
        let (_, _, t, hd) = x.dims4()?;
        let rows = self.cos.dim(0)?;
        if t > rows {
            return Err(Error::Input(format!(
                "a context of {t} tokens exceeds the {rows} positions quantscape rotates"
            )));
        }
        let cos = self.cos.narrow(0, 0, t)?;
        let sin = self.sin.narrow(0, 0, t)?;
        let rope = |x: &Tensor| -> Result<Tensor> {
            Ok(if differentiable {
                candle_nn::rotary_emb::rope_slow(x, &cos, &sin)?
            } else {
                candle_nn::rotary_emb::rope(x, &cos, &sin)?
            })
        };
        if self.dims == hd {
            return rope(&x.contiguous()?);
        }
        let rot = x.narrow(D::Minus1, 0, self.dims)?.contiguous()?;
        let pass = x.narrow(D::Minus1, self.dims, hd - self.dims)?;
        let rot = rope(&rot)?;
        Ok(Tensor::cat(&[&rot, &pass], D::Minus1)?)
    }
}

/// Additive causal mask `[T, T]`: 0 on and below the diagonal, −∞ above.
pub fn causal_mask(t: usize, device: &Device) -> Result<Tensor> {
    let m: Vec<f32> = (0..t)
        .flat_map(|i| (0..t).map(move |j| if j <= i { 0.0 } else { f32::NEG_INFINITY }))
        .collect();
    Ok(Tensor::from_vec(m, (t, t), device)?)
}

/// Query positions per block of the inference attention path: block j multiplies only the
/// keys `0..(j + 1)·128`, so a 512-token window does 62.5 % of the full Q·Kᵀ and P·V work.
pub const ATTN_QUERY_BLOCK: usize = 128;

/// Scaled dot-product causal attention on `[B, H, T, hd]` queries and `[B, KV, T, hd]` keys
/// and values (GQA: KV divides H). `qk` and `av` are the matmul-site indices of Q·Kᵀ and
/// attention·V for the operand hook; `differentiable` uses candle ops with gradients (K/V
/// repeated per head, scale, mask add, softmax) instead of the inference path. `mask` is the
/// additive causal mask `[T, T]`. Returns `[B, T, H·hd]`.
///
/// Inference path: the `rep = H/KV` query heads of a group become `rep` consecutive rows per
/// position of one `[B, KV, T·rep, hd]` matrix, so each K/V head is multiplied once and never
/// copied per query head; blocks of [`ATTN_QUERY_BLOCK`] positions multiply only the keys
/// they can see; [`CausalSoftmax`] applies scale, mask and softmax in one pass. Operand
/// formats act per row along K, so a quantized K/V row is the same whether or not it is
/// repeated; with an attention·V operand format the probabilities are quantized along whole
/// rows of T keys (one block), exactly as the unblocked product does.
pub fn attention(
    q: &Tensor,
    k: &Tensor,
    v: &Tensor,
    mask: &Tensor,
    (qk, av): (usize, usize),
    hooks: &dyn Hooks,
    differentiable: bool,
) -> Result<Tensor> {
    let (b, h, t, hd) = q.dims4()?;
    let kv = k.dim(1)?;
    if kv == 0 || h % kv != 0 {
        return Err(Error::Input(format!(
            "{h} query heads do not split into groups over {kv} key/value heads"
        )));
    }
    let rep = h / kv;
    let scale = 1.0 / (hd as f64).sqrt();
    if differentiable {
        let expand = |x: &Tensor| -> Result<Tensor> {
            Ok(x.unsqueeze(2)?
                .broadcast_as((b, kv, rep, t, hd))?
                .reshape((b, h, t, hd))?)
        };
        let (mut q, mut k, mut v) = (q.contiguous()?, expand(k)?, expand(v)?);
        if let Some(f) = hooks.operand_format(qk) {
            q = quantize_last_dim(&q, f)?;
            k = quantize_last_dim(&k, f)?;
        }
        let scores = (q.matmul(&k.t()?)? * scale)?.broadcast_add(mask)?;
        let mut p = candle_nn::ops::softmax(&scores, D::Minus1)?;
        if let Some(f) = hooks.operand_format(av) {
            p = quantize_last_dim(&p, f)?;
            v = quantize_last_dim(&v.t()?.contiguous()?, f)?.t()?;
        }
        let y = p.matmul(&v.contiguous()?)?;
        return Ok(y.transpose(1, 2)?.reshape((b, t, h * hd))?);
    }
    // [B, H, T, hd] → [B, KV, rep, T, hd] → [B, KV, T, rep, hd] → [B, KV, T·rep, hd]: row
    // p·rep + r is position p of head g·rep + r.
    let mut q = q
        .reshape((b, kv, rep, t, hd))?
        .transpose(2, 3)?
        .contiguous()?
        .reshape((b, kv, t * rep, hd))?;
    let (mut k, mut v) = (k.contiguous()?, v.contiguous()?);
    if let Some(f) = hooks.operand_format(qk) {
        q = quantize_last_dim(&q, f)?;
        k = quantize_last_dim(&k, f)?;
    }
    let av_format = hooks.operand_format(av);
    if let Some(f) = av_format {
        // attention·V reduces over keys: V's token dim (and P's last dim, below).
        v = quantize_last_dim(&v.t()?.contiguous()?, f)?
            .t()?
            .contiguous()?;
    }
    let block = if av_format.is_some() {
        t
    } else {
        ATTN_QUERY_BLOCK
    };
    let mut outs = Vec::with_capacity(t.div_ceil(block.max(1)));
    let mut p0 = 0;
    while p0 < t {
        let p1 = (p0 + block).min(t);
        let qb = q.narrow(2, p0 * rep, (p1 - p0) * rep)?;
        let kb = k.narrow(2, 0, p1)?;
        let scores = qb.matmul(&kb.t()?)?;
        let mut p = scores.apply_op1_no_bwd(&CausalSoftmax {
            scale: scale as f32,
            rep,
            offset: p0,
        })?;
        if let Some(f) = av_format {
            p = quantize_last_dim(&p, f)?;
        }
        outs.push(p.matmul(&v.narrow(2, 0, p1)?)?);
        p0 = p1;
    }
    let y = if outs.len() == 1 {
        outs.pop().unwrap_or(q)
    } else {
        Tensor::cat(&outs, 2)?
    };
    // [B, KV, T·rep, hd] → [B, KV, T, rep, hd] → [B, T, KV, rep, hd] = [B, T, H·hd].
    Ok(y.reshape((b, kv, t, rep, hd))?
        .transpose(1, 2)?
        .contiguous()?
        .reshape((b, t, h * hd))?)
}

/// Splits `[B, T, n·hd]` into heads `[B, n, T, hd]`.
pub fn heads(x: &Tensor, n: usize, hd: usize) -> Result<Tensor> {
    let (b, t, _) = x.dims3()?;
    Ok(x.reshape((b, t, n, hd))?.transpose(1, 2)?.contiguous()?)
}

#[cfg(test)]
mod tests {
    use super::*;

    /// Operand formats on the attention matmuls only.
    struct AttnOperands(Option<Format>, Option<Format>);

    impl Hooks for AttnOperands {
        fn operand_format(&self, matmul: usize) -> Option<&Format> {
            match matmul {
                0 => self.0.as_ref(),
                1 => self.1.as_ref(),
                _ => None,
            }
        }
    }

    fn randn(shape: (usize, usize, usize, usize), seed: u64) -> Tensor {
        let n = shape.0 * shape.1 * shape.2 * shape.3;
        let mut s = seed;
        let v: Vec<f32> = (0..n)
            .map(|_| {
                s = s
                    .wrapping_mul(6364136223846793005)
                    .wrapping_add(1442695040888963407);
                ((s >> 40) as f32 / (1u64 << 24) as f32 - 0.5) * 3.0
            })
            .collect();
        Tensor::from_vec(v, shape, &Device::Cpu).unwrap()
    }

    /// The inference path (GQA groups stacked, query blocks, fused causal softmax) equals the
    /// differentiable reference (K/V repeated, full scores, mask, softmax) within 2e−6 (up to rare
    /// rounding-level flips once the probabilities are quantized), over
    /// more than two query blocks with a partial last one, with and without operand formats.
    #[test]
    fn inference_attention_matches_the_reference_path() {
        let (b, h, kv, t, hd) = (2, 6, 2, 2 * ATTN_QUERY_BLOCK + 45, 8);
        let (q, k, v) = (
            randn((b, h, t, hd), 1),
            randn((b, kv, t, hd), 2),
            randn((b, kv, t, hd), 3),
        );
        let mask = causal_mask(t, &Device::Cpu).unwrap();
        let fmt = || Format::parse("mxint8").ok();
        for hooks in [
            AttnOperands(None, None),
            AttnOperands(fmt(), None),
            AttnOperands(None, fmt()),
            AttnOperands(fmt(), fmt()),
        ] {
            let fast = attention(&q, &k, &v, &mask, (0, 1), &hooks, false).unwrap();
            let slow = attention(&q, &k, &v, &mask, (0, 1), &hooks, true).unwrap();
            assert_eq!(fast.dims(), &[b, t, h * hd]);
            let d: Vec<f32> = (fast - slow)
                .unwrap()
                .abs()
                .unwrap()
                .flatten_all()
                .unwrap()
                .to_vec1()
                .unwrap();
            let worst = d.iter().copied().fold(0.0f32, f32::max);
            let off = d.iter().filter(|&&x| x > 2e-6).count();
            if hooks.1.is_none() {
                assert!(worst <= 2e-6, "max difference {worst} with {:?}", hooks.0);
            } else {
                // Quantized probabilities: a score that differs in its last bit can round to the
                // neighbouring MXINT8 level (a step of ≤ 2^-6 of the block max), which moves
                // outputs by up to a step times |v| ≤ 1.5; such flips are rare.
                assert!(worst <= 3e-2, "max difference {worst}");
                assert!(off * 1000 <= d.len(), "{off} of {} outputs differ", d.len());
            }
        }
    }
}
