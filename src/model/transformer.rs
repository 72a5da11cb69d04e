//! The decoder-only transformer every supported architecture loads into, and its sites.
//!
//! `Transformer::load(dir)` reads `config.json` ([`ArchConfig`]) and the safetensors weights
//! (memory-mapped, converted to fp32 once) and hands the family's file under `model/arch/` a
//! [`Loader`] that checks every shape against the config before use, so a wrong checkpoint is an
//! error naming the tensor and file, never a panic inside a matmul.
//!
//! Sites (DESIGN §3): [`LinearSite`]s are the quantizable linear layers, in forward order, named
//! as in the checkpoint; [`MatmulSite`]s are every matmul inside the blocks — the linear layers
//! plus Q·Kᵀ and attention·V per layer. The LM head and embeddings are not sites (they stay in
//! high precision). Shapes: ids `[B, T]` → logits `[B, T, V]`, fp32.

use std::path::Path;

use candle_core::{Device, Tensor, Var};

use super::arch;
use super::checkpoint::Checkpoint;
use super::config::{Activation, ArchConfig, Family};
use super::layers::{attention, causal_mask, heads, Hooks, Linear, Norm, Rope};
use super::sites::Layout;
use super::source::{read_checked, validate_checked, Source};
use crate::error::{Error, Result};

/// A quantizable linear layer.
#[derive(Clone, Debug, PartialEq)]
pub struct LinearSite {
    /// Checkpoint tensor name of the weight (`model.layers.0.self_attn.q_proj.weight`).
    pub name: String,
    /// Transformer block index.
    pub layer: usize,
    /// Output features (rows of the `[out, in]` weight).
    pub out_features: usize,
    /// Input features K.
    pub in_features: usize,
    /// How the checkpoint stores it (GPT-2 `Conv1D` is `[in, out]`).
    pub layout: Layout,
}

impl LinearSite {
    /// Parameter count.
    pub fn n_params(&self) -> usize {
        self.out_features * self.in_features
    }
}

/// What a matmul site multiplies.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum MatmulKind {
    /// Activations × a linear layer's weight (index into the linear sites).
    Linear(usize),
    /// Queries × keysᵀ (K = head_dim).
    QueryKey,
    /// Attention probabilities × values (K = tokens).
    AttnValue,
}

/// One matmul of the forward pass.
#[derive(Clone, Debug, PartialEq)]
pub struct MatmulSite {
    /// `layers.3.attn.qk`, or the linear weight's name.
    pub name: String,
    /// Transformer block index.
    pub layer: usize,
    /// Operand kind.
    pub kind: MatmulKind,
}

/// Multiply–accumulates of a matmul site per token at context `ctx` (causal attention averaged
/// over positions: (ctx + 1)/2 keys per query).
pub fn macs_per_token(
    site: &MatmulSite,
    cfg: &ArchConfig,
    linears: &[LinearSite],
    ctx: usize,
) -> f64 {
    let keys = (ctx as f64 + 1.0) / 2.0;
    match site.kind {
        MatmulKind::Linear(i) => linears.get(i).map_or(0.0, |l| l.n_params() as f64),
        MatmulKind::QueryKey | MatmulKind::AttnValue => keys * (cfg.n_heads * cfg.head_dim) as f64,
    }
}

/// Attention input projections.
#[derive(Clone, Debug)]
pub enum Qkv {
    /// Separate q, k, v (Llama family).
    Separate(Linear, Linear, Linear),
    /// One `[3d, d]` weight whose output is `[q | k | v]` (GPT-2 `c_attn`).
    FusedBlocks(Linear),
    /// One weight whose output is per head `[q_h | k_h | v_h]` (GPT-NeoX).
    FusedPerHead(Linear),
}

/// The MLP.
#[derive(Clone, Debug)]
pub enum Mlp {
    /// down(act(gate x) · up x).
    Gated {
        /// Gate projection.
        gate: Linear,
        /// Up projection.
        up: Linear,
        /// Down projection.
        down: Linear,
    },
    /// proj(act(fc x)).
    Plain {
        /// Input projection.
        fc: Linear,
        /// Output projection.
        proj: Linear,
    },
}

/// One transformer block.
#[derive(Clone, Debug)]
pub struct Block {
    /// Norm before attention.
    pub ln1: Norm,
    /// Norm before the MLP.
    pub ln2: Norm,
    /// Q, K, V projections.
    pub qkv: Qkv,
    /// Attention output projection.
    pub o: Linear,
    /// MLP.
    pub mlp: Mlp,
    /// Matmul-site indices of Q·Kᵀ and attention·V.
    pub attn_sites: (usize, usize),
}

impl Block {
    /// The block's linear layers in forward order.
    pub fn linears(&self) -> Vec<&Linear> {
        let mut v = match &self.qkv {
            Qkv::Separate(q, k, v) => vec![q, k, v],
            Qkv::FusedBlocks(l) | Qkv::FusedPerHead(l) => vec![l],
        };
        v.push(&self.o);
        match &self.mlp {
            Mlp::Gated { gate, up, down } => v.extend([gate, up, down]),
            Mlp::Plain { fc, proj } => v.extend([fc, proj]),
        }
        v
    }
}

/// A loaded model.
pub struct Transformer {
    /// Parsed `config.json`.
    pub config: ArchConfig,
    /// Token embedding `[V, d]`.
    pub embed: Tensor,
    /// Learned positions `[max_positions, d]` (GPT-2).
    pub positions: Option<Tensor>,
    /// Blocks in order.
    pub blocks: Vec<Block>,
    /// Final norm.
    pub final_norm: Norm,
    /// LM head `[V, d]` (the embedding when tied).
    pub lm_head: Tensor,
    /// Rotary tables (None for GPT-2).
    pub rope: Option<Rope>,
    /// Quantizable linear sites in forward order.
    pub linears: Vec<LinearSite>,
    /// Every matmul site inside the blocks.
    pub matmuls: Vec<MatmulSite>,
    /// Total parameters (embeddings and head counted once when tied).
    pub n_params_total: usize,
    /// Non-embedding parameters N (blocks and final norm).
    pub n_params_non_embedding: usize,
    /// Use ops with gradients (training) instead of the fused inference kernels.
    pub differentiable: bool,
}

/// Reads checked tensors from a checkpoint and registers sites while an architecture loads.
pub struct Loader<'a> {
    source: Source<'a>,
    /// When set, every tensor read becomes a trainable variable, recorded with its name.
    vars: Option<Vec<(String, Var)>>,
    cfg: &'a ArchConfig,
    /// Device the tensors go to.
    pub device: Device,
    linears: Vec<LinearSite>,
    matmuls: Vec<MatmulSite>,
    n_params: usize,
    n_embedding: usize,
}

impl<'a> Loader<'a> {
    /// Whether the checkpoint has `name` (a fresh initialisation has no optional tensors).
    pub fn has(&self, name: &str) -> bool {
        match &self.source {
            Source::Checkpoint(ck) | Source::Validate(ck) => ck.tensors.contains_key(name),
            Source::Init(_) => false,
        }
    }

    /// Reads `name`, which must have exactly `shape`, as an fp32 tensor (or draws it, for a
    /// fresh initialisation).
    pub fn tensor(&mut self, name: &str, shape: &[usize]) -> Result<Tensor> {
        let t = match &mut self.source {
            Source::Checkpoint(ck) => read_checked(ck, self.cfg, name, shape, &self.device)?,
            Source::Init(init) => init.draw(name, shape, &self.device)?,
            Source::Validate(ck) => validate_checked(ck, self.cfg, name, shape, &self.device)?,
        };
        self.n_params += t.elem_count();
        match &mut self.vars {
            Some(vars) => {
                let var = Var::from_tensor(&t)?;
                let t = var.as_tensor().clone();
                vars.push((name.to_string(), var));
                Ok(t)
            }
            None => Ok(t),
        }
    }

    /// Reads an embedding-like tensor (counted as embedding parameters).
    pub fn embedding(&mut self, name: &str, shape: &[usize]) -> Result<Tensor> {
        let t = self.tensor(name, shape)?;
        self.n_embedding += t.elem_count();
        Ok(t)
    }

    /// Reads a linear layer `prefix.weight` (+ `prefix.bias`) as `[out, in]` and registers it as
    /// a site of block `layer`.
    pub fn linear(
        &mut self,
        prefix: &str,
        layer: usize,
        (out_f, in_f): (usize, usize),
        bias: bool,
        layout: Layout,
    ) -> Result<Linear> {
        let wname = format!("{prefix}.weight");
        let weight = match layout {
            Layout::OutIn => self.tensor(&wname, &[out_f, in_f])?,
            Layout::InOut if matches!(self.source, Source::Validate(_)) => {
                self.tensor(&wname, &[in_f, out_f])?.t()?
            }
            Layout::InOut => self.tensor(&wname, &[in_f, out_f])?.t()?.contiguous()?,
        };
        let bias = if bias {
            Some(self.tensor(&format!("{prefix}.bias"), &[out_f])?)
        } else {
            None
        };
        let site = self.linears.len();
        self.linears.push(LinearSite {
            name: wname.clone(),
            layer,
            out_features: out_f,
            in_features: in_f,
            layout,
        });
        let matmul = self.matmuls.len();
        self.matmuls.push(MatmulSite {
            name: wname,
            layer,
            kind: MatmulKind::Linear(site),
        });
        Ok(Linear {
            site,
            matmul,
            weight,
            bias,
        })
    }

    /// A norm: RMSNorm reads `prefix.weight`; LayerNorm also `prefix.bias`.
    pub fn norm(&mut self, prefix: &str, layer_norm: bool) -> Result<Norm> {
        let d = self.cfg.hidden_size;
        let eps = self.cfg.norm_eps as f32;
        let weight = self.tensor(&format!("{prefix}.weight"), &[d])?;
        Ok(if layer_norm {
            Norm::Layer {
                weight,
                bias: self.tensor(&format!("{prefix}.bias"), &[d])?,
                eps,
            }
        } else {
            Norm::Rms { weight, eps }
        })
    }

    /// Assembles the parts; the LM head is `head` when stored, else the embedding if tied.
    pub fn finish(
        &mut self,
        embed: Tensor,
        positions: Option<Tensor>,
        blocks: Vec<Block>,
        final_norm: Norm,
        head: &str,
    ) -> Result<Parts> {
        let (v, d) = (self.cfg.vocab_size, self.cfg.hidden_size);
        let lm_head = if self.cfg.tie_word_embeddings && !self.has(head) {
            embed.clone()
        } else {
            self.embedding(head, &[v, d])?
        };
        Ok(Parts {
            embed,
            positions,
            blocks,
            final_norm,
            lm_head,
        })
    }

    /// Registers the Q·Kᵀ and attention·V sites of block `layer`.
    pub fn attention_sites(&mut self, layer: usize) -> (usize, usize) {
        let qk = self.matmuls.len();
        self.matmuls.push(MatmulSite {
            name: format!("layers.{layer}.attn.qk"),
            layer,
            kind: MatmulKind::QueryKey,
        });
        self.matmuls.push(MatmulSite {
            name: format!("layers.{layer}.attn.av"),
            layer,
            kind: MatmulKind::AttnValue,
        });
        (qk, qk + 1)
    }
}

/// What an architecture file returns.
pub struct Parts {
    /// Token embedding `[V, d]`.
    pub embed: Tensor,
    /// Learned positions.
    pub positions: Option<Tensor>,
    /// Blocks.
    pub blocks: Vec<Block>,
    /// Final norm.
    pub final_norm: Norm,
    /// LM head `[V, d]`.
    pub lm_head: Tensor,
}

impl Transformer {
    /// Loads the Hugging Face checkpoint folder `dir`.
    pub fn load(dir: &Path) -> Result<Self> {
        let config = ArchConfig::load(dir)?;
        let ck = Checkpoint::open(dir)?;
        Self::from_checkpoint(config, &ck)
    }

    /// Checks that the folder `dir` loads — config within its sane ranges, every tensor the
    /// architecture reads present with its shape, a float dtype and finite values — exactly as
    /// [`Self::load`] would, holding one tensor at a time. Returns the config.
    pub fn validate_folder(dir: &Path) -> Result<ArchConfig> {
        let ck = Checkpoint::open(dir)?;
        let config = ArchConfig::load(dir)?;
        Ok(Self::build(config, Source::Validate(&ck), false)?.0.config)
    }

    /// Builds the model from an opened checkpoint and its config.
    pub fn from_checkpoint(config: ArchConfig, ck: &Checkpoint) -> Result<Self> {
        Ok(Self::build(config, Source::Checkpoint(ck), false)?.0)
    }

    /// Builds the model from `source`; with `trainable`, every parameter is a [`Var`] (returned
    /// with its checkpoint name, tied tensors once) and the forward pass is differentiable.
    pub(crate) fn build(
        config: ArchConfig,
        source: Source<'_>,
        trainable: bool,
    ) -> Result<(Self, Vec<(String, Var)>)> {
        let mut ld = Loader {
            source,
            vars: trainable.then(Vec::new),
            cfg: &config,
            device: Device::Cpu,
            linears: Vec::new(),
            matmuls: Vec::new(),
            n_params: 0,
            n_embedding: 0,
        };
        let parts = match config.family {
            Family::Llama => arch::llama::load(&mut ld, &config)?,
            Family::Gpt2 => arch::gpt2::load(&mut ld, &config)?,
            Family::GptNeox => arch::gpt_neox::load(&mut ld, &config)?,
        };
        let rope = match config.rotary_dims {
            0 => None,
            dims => Some(Rope::new(
                dims,
                config.rope_theta,
                config.max_positions,
                &ld.device,
            )?),
        };
        let (n_params, n_embedding) = (ld.n_params, ld.n_embedding);
        let vars = ld.vars.unwrap_or_default();
        let model = Self {
            embed: parts.embed,
            positions: parts.positions,
            blocks: parts.blocks,
            final_norm: parts.final_norm,
            lm_head: parts.lm_head,
            rope,
            linears: ld.linears,
            matmuls: ld.matmuls,
            n_params_total: n_params,
            n_params_non_embedding: n_params - n_embedding,
            differentiable: trainable,
            config,
        };
        Ok((model, vars))
    }

    /// Linear site `i`'s layer (weight `[out, in]`, bias).
    pub fn linear(&self, i: usize) -> Result<&Linear> {
        let layer = self.linears.get(i).map(|l| l.layer);
        layer
            .and_then(|l| self.blocks.get(l))
            .and_then(|b| b.linears().into_iter().find(|x| x.site == i))
            .ok_or_else(|| {
                Error::Input(format!(
                    "no linear site {i} (the model has {})",
                    self.linears.len()
                ))
            })
    }

    /// Logits `[B, T, V]` for `ids` (`batch` rows of equal length, row-major).
    pub fn forward(&self, ids: &[u32], batch: usize, hooks: &dyn Hooks) -> Result<Tensor> {
        let mut x = self.embed_ids(ids, batch)?;
        let mask = causal_mask(x.dim(1)?, x.device())?;
        for block in &self.blocks {
            x = self.block(block, &x, &mask, hooks)?;
        }
        self.head(&x)
    }

    /// Logits `[B, T, V]` from the output of the last block (final norm, then the LM head).
    pub fn head(&self, x: &Tensor) -> Result<Tensor> {
        let h = self.final_norm.forward_ad(x, self.differentiable)?;
        let (b, t, d) = h.dims3()?;
        let logits = h.reshape((b * t, d))?.matmul(&self.lm_head.t()?)?;
        Ok(logits.reshape((b, t, self.config.vocab_size))?)
    }

    /// Final hidden states `[B, T, d]` (after the final norm).
    pub fn hidden_states(&self, ids: &[u32], batch: usize, hooks: &dyn Hooks) -> Result<Tensor> {
        let mut x = self.embed_ids(ids, batch)?;
        let mask = causal_mask(x.dim(1)?, x.device())?;
        for block in &self.blocks {
            x = self.block(block, &x, &mask, hooks)?;
        }
        self.final_norm.forward_ad(&x, self.differentiable)
    }

    /// The input of block 0, `[B, T, d]`: token embeddings (+ learned positions), after checking
    /// that `ids` split into `batch` rows no longer than the model allows, inside the vocabulary.
    pub fn embed_ids(&self, ids: &[u32], batch: usize) -> Result<Tensor> {
        let cfg = &self.config;
        if batch == 0 || ids.is_empty() || !ids.len().is_multiple_of(batch) {
            return Err(Error::Input(format!(
                "{} token ids do not split into {batch} equal rows",
                ids.len()
            )));
        }
        let t = ids.len() / batch;
        if t > cfg.max_positions {
            return Err(Error::Input(format!(
                "context of {t} tokens exceeds the model's maximum of {}",
                cfg.max_positions
            )));
        }
        if let Some(&bad) = ids.iter().find(|&&i| i as usize >= cfg.vocab_size) {
            return Err(Error::Input(format!(
                "token id {bad} is outside the vocabulary of {}",
                cfg.vocab_size
            )));
        }
        let dev = self.embed.device();
        let ids_t = Tensor::from_slice(ids, (batch * t,), dev)?;
        let mut x = self
            .embed
            .index_select(&ids_t, 0)?
            .reshape((batch, t, cfg.hidden_size))?;
        if let Some(pos) = &self.positions {
            x = x.broadcast_add(&pos.narrow(0, 0, t)?)?;
        }
        Ok(x)
    }

    /// Block `i` applied to `x` `[B, T, d]` (causal), consulting the hooks: the unit that
    /// sequential calibration (GPTQ, AWQ) advances by.
    pub fn block_forward(&self, i: usize, x: &Tensor, hooks: &dyn Hooks) -> Result<Tensor> {
        let bl = self.blocks.get(i).ok_or_else(|| {
            Error::Input(format!(
                "no block {i} (the model has {})",
                self.blocks.len()
            ))
        })?;
        let mask = causal_mask(x.dim(1)?, x.device())?;
        self.block(bl, x, &mask, hooks)
    }

    fn block(&self, bl: &Block, x: &Tensor, mask: &Tensor, hooks: &dyn Hooks) -> Result<Tensor> {
        let diff = self.differentiable;
        let a = self.attn(bl, &bl.ln1.forward_ad(x, diff)?, mask, hooks)?;
        if self.config.parallel_residual {
            let m = self.mlp(&bl.mlp, &bl.ln2.forward_ad(x, diff)?, hooks)?;
            return Ok(((x + a)? + m)?);
        }
        let x = (x + a)?;
        let m = self.mlp(&bl.mlp, &bl.ln2.forward_ad(&x, diff)?, hooks)?;
        Ok((x + m)?)
    }

    fn attn(&self, bl: &Block, x: &Tensor, mask: &Tensor, hooks: &dyn Hooks) -> Result<Tensor> {
        let cfg = &self.config;
        let (nh, nkv, hd) = (cfg.n_heads, cfg.n_kv_heads, cfg.head_dim);
        let (q, k, v) = match &bl.qkv {
            Qkv::Separate(q, k, v) => (
                heads(&q.forward(x, hooks)?, nh, hd)?,
                heads(&k.forward(x, hooks)?, nkv, hd)?,
                heads(&v.forward(x, hooks)?, nkv, hd)?,
            ),
            Qkv::FusedBlocks(l) => {
                let y = l.forward(x, hooks)?;
                let part = |i: usize| heads(&y.narrow(2, i * nh * hd, nh * hd)?, nh, hd);
                (part(0)?, part(1)?, part(2)?)
            }
            Qkv::FusedPerHead(l) => {
                let y = l.forward(x, hooks)?;
                let (b, t, _) = y.dims3()?;
                let y = y.reshape((b, t, nh, 3 * hd))?.transpose(1, 2)?;
                let part =
                    |i: usize| -> Result<Tensor> { Ok(y.narrow(3, i * hd, hd)?.contiguous()?) };
                (part(0)?, part(1)?, part(2)?)
            }
        };
        let (q, k) = match &self.rope {
            Some(r) => (
                r.apply(&q, self.differentiable)?,
                r.apply(&k, self.differentiable)?,
            ),
            None => (q, k),
        };
        let y = attention(&q, &k, &v, mask, bl.attn_sites, hooks, self.differentiable)?;
        bl.o.forward(&y, hooks)
    }

    fn mlp(&self, mlp: &Mlp, x: &Tensor, hooks: &dyn Hooks) -> Result<Tensor> {
        let act = |y: Tensor| -> Result<Tensor> {
            Ok(match self.config.activation {
                Activation::Silu => y.silu()?,
                Activation::GeluTanh => y.gelu()?,
                Activation::GeluErf => y.gelu_erf()?,
                Activation::Relu => y.relu()?,
            })
        };
        match mlp {
            Mlp::Gated { gate, up, down } => {
                let g = act(gate.forward(x, hooks)?)?;
                down.forward(&(g * up.forward(x, hooks)?)?, hooks)
            }
            Mlp::Plain { fc, proj } => proj.forward(&act(fc.forward(x, hooks)?)?, hooks),
        }
    }
}
