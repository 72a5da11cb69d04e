//! The resident forward pass on the GPU: every weight of a [`Transformer`] uploaded once (with
//! the hooks' weight overrides — fake-quantized or perturbed weights — in place of the
//! originals), then embedding → blocks → final norm → LM head run buffer to buffer
//! (`shaders/forward.wgsl` + the GEMM), and only the logits read back for the evaluator.
//!
//! Architectures: whatever `model` loads (Llama/Qwen2 separate QKV with GQA, GPT-2 fused
//! blocks with learned positions, GPT-NeoX fused per-head QKV with partial rotary and parallel
//! residuals; RMSNorm or LayerNorm; SiLU, GELU tanh/erf, ReLU; gated or plain MLP; biases).
//! Not here: per-matmul activation formats (`Hooks::operand_format`); a model with those is
//! refused with an error naming the CPU path. Context length ≤ 2048 (workgroup memory).
//!
//! Accuracy: fp32 throughout with a different summation order than candle's, so logits agree
//! to fp32 rounding, and the mean NLL to a relative 1e-5 (tests/gpu.rs). Shapes: activations
//! `[B·T, d]`, heads `[B, H, T, hd]`, logits `[B, T, V]` (candle tensor, CPU).

use candle_core::Tensor;

use super::context::GpuContext;
use super::forward_ops::FwUniform;
use super::matmul::record_gemm_into;
use crate::model::config::Activation;
use crate::model::layers::{Hooks, Linear, Norm};
use crate::model::transformer::{Mlp, Qkv};
use crate::model::Transformer;
use crate::{Error, Result};

/// Longest context the attention kernel holds in workgroup memory (WGSL `MAX_T`).
pub const MAX_CONTEXT: usize = 2048;

struct GpuLinear {
    w: wgpu::Buffer,
    bias: Option<wgpu::Buffer>,
    n_out: usize,
}

struct GpuNorm {
    w: wgpu::Buffer,
    bias: Option<wgpu::Buffer>,
    eps: f32,
}

enum GpuQkv {
    Separate(GpuLinear, GpuLinear, GpuLinear),
    FusedBlocks(GpuLinear),
    FusedPerHead(GpuLinear),
}

enum GpuMlp {
    Gated(GpuLinear, GpuLinear, GpuLinear),
    Plain(GpuLinear, GpuLinear),
}

struct GpuBlock {
    ln1: GpuNorm,
    ln2: GpuNorm,
    qkv: GpuQkv,
    o: GpuLinear,
    mlp: GpuMlp,
}

/// A model resident on the GPU.
pub struct GpuModel<'c> {
    ctx: &'c GpuContext,
    embed: wgpu::Buffer,
    positions: Option<wgpu::Buffer>,
    blocks: Vec<GpuBlock>,
    final_norm: GpuNorm,
    lm_head: wgpu::Buffer,
    rope: Option<(wgpu::Buffer, wgpu::Buffer, usize)>,
    dummy: wgpu::Buffer,
    d: usize,
    vocab: usize,
    n_heads: usize,
    n_kv: usize,
    hd: usize,
    max_positions: usize,
    act_kind: u32,
    parallel: bool,
}

fn host(t: &Tensor) -> Result<Vec<f32>> {
    Ok(t.flatten_all()?.to_vec1::<f32>()?)
}

impl<'c> GpuModel<'c> {
    /// Uploads `model` with `hooks`' weight overrides; refuses activation (operand) formats.
    pub fn new(ctx: &'c GpuContext, model: &Transformer, hooks: &dyn Hooks) -> Result<Self> {
        if let Some(m) = (0..model.matmuls.len()).find(|&m| hooks.operand_format(m).is_some()) {
            return Err(Error::Gpu(format!(
                "matmul {m} has an activation format; the GPU forward pass runs weight formats \
                 only (use the CPU path for activation quantization)"
            )));
        }
        let cfg = &model.config;
        let up = |label: &str, t: &Tensor| -> Result<wgpu::Buffer> {
            let v = host(t)?;
            if v.len() as u64 * 4 > ctx.max_binding_bytes() {
                return Err(Error::Gpu(format!(
                    "{label} ({} values) exceeds the adapter's largest storage binding",
                    v.len()
                )));
            }
            Ok(ctx.upload(label, &v))
        };
        let linear = |l: &Linear| -> Result<GpuLinear> {
            let w = hooks.weight(l.site).unwrap_or(&l.weight);
            Ok(GpuLinear {
                w: up("weight", w)?,
                bias: l.bias.as_ref().map(|b| up("bias", b)).transpose()?,
                n_out: w.dim(0)?,
            })
        };
        let norm = |n: &Norm| -> Result<GpuNorm> {
            Ok(match n {
                Norm::Rms { weight, eps } => GpuNorm {
                    w: up("norm", weight)?,
                    bias: None,
                    eps: *eps,
                },
                Norm::Layer { weight, bias, eps } => GpuNorm {
                    w: up("norm", weight)?,
                    bias: Some(up("norm bias", bias)?),
                    eps: *eps,
                },
            })
        };
        let blocks = model
            .blocks
            .iter()
            .map(|bl| {
                Ok(GpuBlock {
                    ln1: norm(&bl.ln1)?,
                    ln2: norm(&bl.ln2)?,
                    qkv: match &bl.qkv {
                        Qkv::Separate(q, k, v) => {
                            GpuQkv::Separate(linear(q)?, linear(k)?, linear(v)?)
                        }
                        Qkv::FusedBlocks(l) => GpuQkv::FusedBlocks(linear(l)?),
                        Qkv::FusedPerHead(l) => GpuQkv::FusedPerHead(linear(l)?),
                    },
                    o: linear(&bl.o)?,
                    mlp: match &bl.mlp {
                        Mlp::Gated { gate, up, down } => {
                            GpuMlp::Gated(linear(gate)?, linear(up)?, linear(down)?)
                        }
                        Mlp::Plain { fc, proj } => GpuMlp::Plain(linear(fc)?, linear(proj)?),
                    },
                })
            })
            .collect::<Result<Vec<_>>>()?;
        let rope = match &model.rope {
            Some(r) => {
                let (cos, sin) = r.tables()?;
                Some((ctx.upload("cos", &cos), ctx.upload("sin", &sin), r.dims))
            }
            None => None,
        };
        Ok(Self {
            ctx,
            embed: up("embedding", &model.embed)?,
            positions: model
                .positions
                .as_ref()
                .map(|p| up("positions", p))
                .transpose()?,
            blocks,
            final_norm: norm(&model.final_norm)?,
            lm_head: up("lm head", &model.lm_head)?,
            rope,
            dummy: ctx.upload("dummy", &[0u32; 4]),
            d: cfg.hidden_size,
            vocab: cfg.vocab_size,
            n_heads: cfg.n_heads,
            n_kv: cfg.n_kv_heads,
            hd: cfg.head_dim,
            max_positions: cfg.max_positions,
            act_kind: match cfg.activation {
                Activation::Silu => 0,
                Activation::GeluTanh => 1,
                Activation::GeluErf => 2,
                Activation::Relu => 3,
            },
            parallel: cfg.parallel_residual,
        })
    }

    /// Records one forward op: `out = op(a, b, c)` over `n_threads` threads.
    #[allow(clippy::too_many_arguments)]
    fn op(
        &self,
        enc: &mut wgpu::CommandEncoder,
        pipeline: &wgpu::ComputePipeline,
        u: FwUniform,
        inputs: [Option<&wgpu::Buffer>; 3],
        out: &wgpu::Buffer,
        ids: Option<&wgpu::Buffer>,
        n_threads: usize,
    ) {
        let ctx = self.ctx;
        let uniform = ctx.uniform("fw", &u);
        let [a, b, c] = inputs.map(|x| x.unwrap_or(&self.dummy));
        let bufs = [&uniform, a, b, c, out, ids.unwrap_or(&self.dummy)];
        let bg = ctx.bind_buffers("forward", &ctx.forward.layout, &bufs);
        ctx.dispatch(enc, pipeline, &bg, n_threads);
    }

    fn linear(
        &self,
        enc: &mut wgpu::CommandEncoder,
        x: &wgpu::Buffer,
        l: &GpuLinear,
        rows: usize,
        k: usize,
    ) -> wgpu::Buffer {
        let y = self.ctx.scratch("linear", rows * l.n_out);
        record_gemm_into(
            self.ctx,
            enc,
            (x, &l.w, l.bias.as_ref()),
            &y,
            (rows, k, l.n_out),
        );
        y
    }

    fn norm(
        &self,
        enc: &mut wgpu::CommandEncoder,
        x: &wgpu::Buffer,
        n: &GpuNorm,
        rows: usize,
    ) -> wgpu::Buffer {
        let y = self.ctx.scratch("norm", rows * self.d);
        let u = FwUniform {
            rows: rows as u32,
            cols: self.d as u32,
            mode: u32::from(n.bias.is_some()),
            eps: n.eps,
            ..Default::default()
        };
        let p = &self.ctx.forward.norm;
        self.op(
            enc,
            p,
            u,
            [Some(x), Some(&n.w), n.bias.as_ref()],
            &y,
            None,
            rows * 256,
        );
        y
    }

    /// Heads `[B, n, T, hd]` from a linear output with `src_cols` columns.
    #[allow(clippy::too_many_arguments)]
    fn heads(
        &self,
        enc: &mut wgpu::CommandEncoder,
        src: &wgpu::Buffer,
        (rows, t): (usize, usize),
        n: usize,
        src_cols: usize,
        base: usize,
        stride_h: usize,
    ) -> wgpu::Buffer {
        let y = self.ctx.scratch("heads", rows * n * self.hd);
        let u = FwUniform {
            rows: rows as u32,
            t: t as u32,
            n_heads: n as u32,
            hd: self.hd as u32,
            base: base as u32,
            stride_h: stride_h as u32,
            src_cols: src_cols as u32,
            ..Default::default()
        };
        let p = &self.ctx.forward.to_heads;
        self.op(
            enc,
            p,
            u,
            [Some(src), None, None],
            &y,
            None,
            rows * n * self.hd,
        );
        y
    }

    fn rope(&self, enc: &mut wgpu::CommandEncoder, x: &wgpu::Buffer, rows: usize, t: usize) {
        let Some((cos, sin, rot)) = &self.rope else {
            return;
        };
        let u = FwUniform {
            rows: rows as u32,
            t: t as u32,
            hd: self.hd as u32,
            rot: *rot as u32,
            ..Default::default()
        };
        let p = &self.ctx.forward.rope;
        self.op(
            enc,
            p,
            u,
            [None, Some(cos), Some(sin)],
            x,
            None,
            rows * rot / 2,
        );
    }

    fn elementwise(
        &self,
        enc: &mut wgpu::CommandEncoder,
        pipeline: &wgpu::ComputePipeline,
        inputs: [Option<&wgpu::Buffer>; 3],
        (rows, cols, mode): (usize, usize, u32),
    ) -> wgpu::Buffer {
        let y = self.ctx.scratch("elementwise", rows * cols);
        let u = FwUniform {
            rows: rows as u32,
            cols: cols as u32,
            mode,
            ..Default::default()
        };
        self.op(enc, pipeline, u, inputs, &y, None, rows * cols);
        y
    }

    fn attention_block(
        &self,
        enc: &mut wgpu::CommandEncoder,
        bl: &GpuBlock,
        h: &wgpu::Buffer,
        (rows, t): (usize, usize),
    ) -> wgpu::Buffer {
        let (nh, nkv, hd, d) = (self.n_heads, self.n_kv, self.hd, self.d);
        let (q, k, v) = match &bl.qkv {
            GpuQkv::Separate(lq, lk, lv) => {
                let (yq, yk, yv) = (
                    self.linear(enc, h, lq, rows, d),
                    self.linear(enc, h, lk, rows, d),
                    self.linear(enc, h, lv, rows, d),
                );
                (
                    self.heads(enc, &yq, (rows, t), nh, nh * hd, 0, hd),
                    self.heads(enc, &yk, (rows, t), nkv, nkv * hd, 0, hd),
                    self.heads(enc, &yv, (rows, t), nkv, nkv * hd, 0, hd),
                )
            }
            GpuQkv::FusedBlocks(l) => {
                let y = self.linear(enc, h, l, rows, d);
                let part = |i: usize, enc: &mut wgpu::CommandEncoder| {
                    self.heads(enc, &y, (rows, t), nh, 3 * nh * hd, i * nh * hd, hd)
                };
                (part(0, enc), part(1, enc), part(2, enc))
            }
            GpuQkv::FusedPerHead(l) => {
                let y = self.linear(enc, h, l, rows, d);
                let part = |i: usize, enc: &mut wgpu::CommandEncoder| {
                    self.heads(enc, &y, (rows, t), nh, 3 * nh * hd, i * hd, 3 * hd)
                };
                (part(0, enc), part(1, enc), part(2, enc))
            }
        };
        let n_kv = if matches!(bl.qkv, GpuQkv::Separate(..)) {
            nkv
        } else {
            nh
        };
        self.rope(enc, &q, rows * nh, t);
        self.rope(enc, &k, rows * n_kv, t);
        let y = self.ctx.scratch("attention", rows * nh * hd);
        let u = FwUniform {
            rows: rows as u32,
            t: t as u32,
            n_heads: nh as u32,
            n_kv: n_kv as u32,
            hd: hd as u32,
            scale: (1.0 / (hd as f64).sqrt()) as f32,
            ..Default::default()
        };
        let p = &self.ctx.forward.attention;
        self.op(
            enc,
            p,
            u,
            [Some(&q), Some(&k), Some(&v)],
            &y,
            None,
            rows * nh * 256,
        );
        self.linear(enc, &y, &bl.o, rows, nh * hd)
    }

    fn mlp(
        &self,
        enc: &mut wgpu::CommandEncoder,
        mlp: &GpuMlp,
        x: &wgpu::Buffer,
        rows: usize,
    ) -> wgpu::Buffer {
        let act = &self.ctx.forward.act;
        match mlp {
            GpuMlp::Gated(gate, up, down) => {
                let g = self.linear(enc, x, gate, rows, self.d);
                let u = self.linear(enc, x, up, rows, self.d);
                let m = self.elementwise(
                    enc,
                    act,
                    [Some(&g), Some(&u), None],
                    (rows, gate.n_out, self.act_kind | 256),
                );
                self.linear(enc, &m, down, rows, gate.n_out)
            }
            GpuMlp::Plain(fc, proj) => {
                let f = self.linear(enc, x, fc, rows, self.d);
                let m = self.elementwise(
                    enc,
                    act,
                    [Some(&f), None, None],
                    (rows, fc.n_out, self.act_kind),
                );
                self.linear(enc, &m, proj, rows, fc.n_out)
            }
        }
    }

    /// Logits `[B, T, V]` for `ids` (`batch` rows of equal length), as the CPU path's
    /// `Transformer::forward` returns them.
    pub fn logits(&self, ids: &[u32], batch: usize) -> Result<Tensor> {
        if batch == 0 || ids.is_empty() || !ids.len().is_multiple_of(batch) {
            return Err(Error::Input(format!(
                "{} token ids do not split into {batch} equal rows",
                ids.len()
            )));
        }
        let t = ids.len() / batch;
        if t > self.max_positions.min(MAX_CONTEXT) {
            return Err(Error::Input(format!(
                "context of {t} tokens exceeds the GPU path's maximum of {}",
                self.max_positions.min(MAX_CONTEXT)
            )));
        }
        if let Some(&bad) = ids.iter().find(|&&i| i as usize >= self.vocab) {
            return Err(Error::Input(format!(
                "token id {bad} is outside the vocabulary of {}",
                self.vocab
            )));
        }
        let ctx = self.ctx;
        let rows = ids.len();
        let (d, v) = (self.d, self.vocab);
        let rows_per_chunk = ((ctx.max_binding_bytes() / 4) as usize / v.max(1)).max(1);
        if rows_per_chunk < t {
            return Err(Error::Gpu(format!(
                "one window of logits ({t} × {v}) exceeds the adapter's largest storage binding"
            )));
        }
        let mut enc = ctx.encoder();
        let id_buf = ctx.upload("ids", ids);
        let mut x = ctx.scratch("x", rows * d);
        let u = FwUniform {
            rows: rows as u32,
            cols: d as u32,
            t: t as u32,
            mode: u32::from(self.positions.is_some()),
            ..Default::default()
        };
        let p = &ctx.forward.embed;
        self.op(
            &mut enc,
            p,
            u,
            [Some(&self.embed), self.positions.as_ref(), None],
            &x,
            Some(&id_buf),
            rows * d,
        );
        let add = &ctx.forward.add;
        for bl in &self.blocks {
            let h = self.norm(&mut enc, &x, &bl.ln1, rows);
            let a = self.attention_block(&mut enc, bl, &h, (rows, t));
            x = if self.parallel {
                let h2 = self.norm(&mut enc, &x, &bl.ln2, rows);
                let m = self.mlp(&mut enc, &bl.mlp, &h2, rows);
                self.elementwise(&mut enc, add, [Some(&x), Some(&a), Some(&m)], (rows, d, 1))
            } else {
                let x1 = self.elementwise(&mut enc, add, [Some(&x), Some(&a), None], (rows, d, 0));
                let h2 = self.norm(&mut enc, &x1, &bl.ln2, rows);
                let m = self.mlp(&mut enc, &bl.mlp, &h2, rows);
                self.elementwise(&mut enc, add, [Some(&x1), Some(&m), None], (rows, d, 0))
            };
        }
        let hf = self.norm(&mut enc, &x, &self.final_norm, rows);
        ctx.queue.submit([enc.finish()]);
        // The LM head in window-aligned row chunks that fit one binding.
        let chunk = (rows_per_chunk / t * t).max(t);
        let mut logits = Vec::with_capacity(rows * v);
        let mut r0 = 0;
        while r0 < rows {
            let n = chunk.min(rows - r0);
            let mut enc = ctx.encoder();
            let h_chunk = ctx.scratch("head rows", n * d);
            enc.copy_buffer_to_buffer(&hf, (r0 * d * 4) as u64, &h_chunk, 0, (n * d * 4) as u64);
            let out = ctx.scratch("logits", n * v);
            record_gemm_into(
                ctx,
                &mut enc,
                (&h_chunk, &self.lm_head, None),
                &out,
                (n, d, v),
            );
            logits.extend(
                ctx.submit_and_read(enc, &out, n * v)?
                    .into_iter()
                    .map(f32::from_bits),
            );
            r0 += n;
        }
        Ok(Tensor::from_vec(
            logits,
            (batch, t, v),
            &candle_core::Device::Cpu,
        )?)
    }
}
