//! `Format` = element type × scale type × zero point × block size × rounding × overflow, the
//! named presets, the text spelling, and bit accounting.
//!
//! Spelling (CLI, RON, GUI): comma-separated; the first item may be a preset name, the rest are
//! `key=value` overrides, e.g. `mxfp4`, `mxfp4,block=64,round=away`,
//! `elem=e3m3,scale=e8m0_rceil,block=32`, `elem=uint3,scale=fp16,zero=int,block=128`.
//! Keys: `elem`, `scale` (`e8m0[_floor|_ceil|_even|_rceil]`, `fp16`, `bf16`, `fp32`, `e4m3`,
//! `none`), `zero` (`int`, `fp16`, `bf16`, `fp32`, `none`), `global` (`fp32`, `none`), `block`
//! (a positive integer, `channel`, `tensor`), `round` (`even`, `away`, `zero`), `overflow`
//! (`saturate`, `infnan`). `Display` prints the preset name plus the keys that differ from it,
//! and parsing that text gives the same `Format` back.
//!
//! Bits per weight = element bits + (scale bits + zero bits) / Qb + global bits / tensor size
//! (DESIGN §3); [`Format::bits_per_weight`] counts a tensor's actual blocks (partial ones too).

use std::fmt;
use std::str::FromStr;

use serde::{Deserialize, Serialize};

use super::element::{ElementType, IntKind};
use super::minifloat::Minifloat;
use super::rounding::{Overflow, Rounding};
use super::scale::{E8m0Rule, ScaleType};
use crate::{Error, Result};

/// How many consecutive elements along the reduction dimension share one scale.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum BlockSize {
    /// Qb consecutive elements of a row; the last block of a row may be shorter.
    Elements(u32),
    /// One scale per row (Qb = row length).
    PerChannel,
    /// One scale for the whole tensor.
    PerTensor,
}

impl BlockSize {
    /// Spelling: the number, `channel` or `tensor`.
    pub fn id(self) -> String {
        match self {
            BlockSize::Elements(n) => n.to_string(),
            BlockSize::PerChannel => "channel".into(),
            BlockSize::PerTensor => "tensor".into(),
        }
    }

    /// Elements per block in a row of `cols` elements (for `PerTensor`: the whole row too; the
    /// block then spans every row).
    pub fn block_len(self, cols: usize) -> usize {
        match self {
            BlockSize::Elements(n) => (n as usize).min(cols.max(1)),
            BlockSize::PerChannel | BlockSize::PerTensor => cols.max(1),
        }
    }

    /// Number of scale blocks in a `rows × cols` tensor.
    pub fn n_blocks(self, rows: usize, cols: usize) -> usize {
        match self {
            BlockSize::Elements(n) => rows * cols.div_ceil(n as usize),
            BlockSize::PerChannel => rows,
            BlockSize::PerTensor => usize::from(rows * cols > 0),
        }
    }
}

impl FromStr for BlockSize {
    type Err = Error;

    fn from_str(s: &str) -> Result<Self> {
        match s {
            "channel" | "per-channel" | "per_channel" | "row" => Ok(BlockSize::PerChannel),
            "tensor" | "per-tensor" | "per_tensor" => Ok(BlockSize::PerTensor),
            _ => match s.parse::<u32>() {
                Ok(0) => Err(Error::InvalidFormat(
                    "block size must be positive, got 0".into(),
                )),
                Ok(n) => Ok(BlockSize::Elements(n)),
                Err(_) => Err(Error::InvalidFormat(format!(
                    "block size `{s}`: expected a positive integer, `channel` or `tensor`"
                ))),
            },
        }
    }
}

/// Storage of an asymmetric element's zero point.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum ZeroPoint {
    /// No zero point (symmetric elements).
    None,
    /// An integer in the element's code range, stored at the element's bit width (GPTQ/AWQ).
    Int,
    /// A float zero point (HQQ), stored in the given type (`Fp16`, `Bf16` or `Fp32`).
    Float(ScaleType),
}

impl ZeroPoint {
    fn id(self) -> String {
        match self {
            ZeroPoint::None => "none".into(),
            ZeroPoint::Int => "int".into(),
            ZeroPoint::Float(t) => t.id(),
        }
    }
}

/// A complete quantization format.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash, Serialize, Deserialize)]
pub struct Format {
    /// Element type.
    pub element: ElementType,
    /// Block scale type; `None` means elements are a plain cast (fp16, bf16).
    pub scale: Option<ScaleType>,
    /// Zero point storage (asymmetric integers only).
    pub zero: ZeroPoint,
    /// Second-level per-tensor FP32 scale (NVFP4).
    pub global_scale: bool,
    /// Block size Qb.
    pub block: BlockSize,
    /// Element rounding rule.
    pub rounding: Rounding,
    /// Element overflow rule.
    pub overflow: Overflow,
}

/// Every named preset, in display order.
pub const PRESET_NAMES: [&str; 18] = [
    "mxfp8_e4m3",
    "mxfp8_e5m2",
    "mxfp6_e3m2",
    "mxfp6_e2m3",
    "mxfp4",
    "mxint8",
    "mxint6",
    "mxint4",
    "nvfp4",
    "int8",
    "int4_sym",
    "int4_asym",
    "int3_asym",
    "int2_asym",
    "nf4",
    "fp8_e4m3",
    "bf16",
    "fp16",
];

impl Format {
    fn mx(element: ElementType) -> Self {
        Self {
            element,
            scale: Some(ScaleType::E8m0 {
                rule: E8m0Rule::Floor,
            }),
            zero: ZeroPoint::None,
            global_scale: false,
            block: BlockSize::Elements(32),
            rounding: Rounding::Even,
            overflow: Overflow::Saturate,
        }
    }

    fn scaled(element: ElementType, scale: ScaleType, block: BlockSize) -> Self {
        let zero = match element {
            ElementType::Int {
                kind: IntKind::Asym,
                ..
            } => ZeroPoint::Int,
            _ => ZeroPoint::None,
        };
        Self {
            element,
            scale: Some(scale),
            zero,
            global_scale: false,
            block,
            rounding: Rounding::Even,
            overflow: Overflow::Saturate,
        }
    }

    fn cast(mf: Minifloat) -> Self {
        Self {
            element: ElementType::Float(mf),
            scale: None,
            zero: ZeroPoint::None,
            global_scale: false,
            block: BlockSize::PerTensor,
            rounding: Rounding::Even,
            overflow: Overflow::InfNan,
        }
    }

    /// A named preset, or `None`.
    pub fn preset(name: &str) -> Option<Self> {
        let int = |bits, kind| ElementType::Int { bits, kind };
        let g128 = BlockSize::Elements(128);
        Some(match name {
            "mxfp8_e4m3" => Self::mx(ElementType::Float(Minifloat::E4M3)),
            "mxfp8_e5m2" => Self::mx(ElementType::Float(Minifloat::E5M2)),
            "mxfp6_e3m2" => Self::mx(ElementType::Float(Minifloat::E3M2)),
            "mxfp6_e2m3" => Self::mx(ElementType::Float(Minifloat::E2M3)),
            "mxfp4" => Self::mx(ElementType::Float(Minifloat::E2M1)),
            "mxint8" => Self::mx(ElementType::MxInt { bits: 8 }),
            "mxint6" => Self::mx(ElementType::MxInt { bits: 6 }),
            "mxint4" => Self::mx(ElementType::MxInt { bits: 4 }),
            "nvfp4" => Self {
                global_scale: true,
                ..Self::scaled(
                    ElementType::Float(Minifloat::E2M1),
                    ScaleType::E4m3,
                    BlockSize::Elements(16),
                )
            },
            "int8" => Self::scaled(int(8, IntKind::Sym), ScaleType::Fp16, BlockSize::PerChannel),
            "int4_sym" => Self::scaled(int(4, IntKind::Sym), ScaleType::Fp16, g128),
            "int4_asym" => Self::scaled(int(4, IntKind::Asym), ScaleType::Fp16, g128),
            "int3_asym" => Self::scaled(int(3, IntKind::Asym), ScaleType::Fp16, g128),
            "int2_asym" => Self::scaled(int(2, IntKind::Asym), ScaleType::Fp16, g128),
            "nf4" => Self::scaled(ElementType::Nf4, ScaleType::Fp32, BlockSize::Elements(64)),
            "fp8_e4m3" => Self::scaled(
                ElementType::Float(Minifloat::E4M3),
                ScaleType::Fp32,
                BlockSize::PerChannel,
            ),
            "bf16" => Self::cast(Minifloat::BF16),
            "fp16" => Self::cast(Minifloat::FP16),
            _ => return None,
        })
    }

    /// Validates the combination (element/zero/scale agreement, block size).
    pub fn validate(self) -> Result<Self> {
        self.element.validate()?;
        let asym = matches!(
            self.element,
            ElementType::Int {
                kind: IntKind::Asym,
                ..
            }
        );
        match (asym, self.zero) {
            (true, ZeroPoint::None) => {
                return Err(Error::InvalidFormat(
                    "asymmetric integer elements need a zero point (zero=int or zero=fp16)".into(),
                ))
            }
            (false, z) if z != ZeroPoint::None => {
                return Err(Error::InvalidFormat(format!(
                    "zero={} needs an asymmetric integer element (uintK)",
                    z.id()
                )))
            }
            (_, ZeroPoint::Float(t))
                if !matches!(t, ScaleType::Fp16 | ScaleType::Bf16 | ScaleType::Fp32) =>
            {
                return Err(Error::InvalidFormat(
                    "a float zero point is stored as fp16, bf16 or fp32".into(),
                ))
            }
            _ => {}
        }
        if self.scale.is_none() {
            if !matches!(self.element, ElementType::Float(_)) {
                return Err(Error::InvalidFormat(format!(
                    "element {} needs a block scale",
                    self.element.id()
                )));
            }
            if self.global_scale {
                return Err(Error::InvalidFormat(
                    "a global scale needs block scales".into(),
                ));
            }
        }
        if self.global_scale && self.scale != Some(ScaleType::E4m3) {
            return Err(Error::InvalidFormat(
                "the two-level global scale is defined for e4m3 block scales (NVFP4)".into(),
            ));
        }
        if let BlockSize::Elements(0) = self.block {
            return Err(Error::InvalidFormat("block size must be positive".into()));
        }
        Ok(self)
    }

    /// The preset this format equals, if any.
    pub fn preset_name(&self) -> Option<&'static str> {
        PRESET_NAMES
            .iter()
            .copied()
            .find(|n| Format::preset(n).as_ref() == Some(self))
    }

    /// Returns a copy with another block size.
    pub fn with_block(mut self, block: BlockSize) -> Self {
        self.block = block;
        self
    }

    /// Returns a copy with another block scale type.
    pub fn with_scale(mut self, scale: ScaleType) -> Self {
        self.scale = Some(scale);
        self
    }

    /// Returns a copy with another element rounding rule.
    pub fn with_rounding(mut self, rounding: Rounding) -> Self {
        self.rounding = rounding;
        self
    }

    /// Bits of one zero point.
    pub fn zero_bits(&self) -> u32 {
        match self.zero {
            ZeroPoint::None => 0,
            ZeroPoint::Int => self.element.bits(),
            ZeroPoint::Float(t) => t.bits(),
        }
    }

    /// Bits of one block scale.
    pub fn scale_bits(&self) -> u32 {
        self.scale.map_or(0, ScaleType::bits)
    }

    /// Nominal bits per weight at block length `qb` elements (ignoring the global scale):
    /// element bits + (scale bits + zero bits) / qb.
    pub fn bits_per_weight_at(&self, qb: usize) -> f64 {
        f64::from(self.element.bits())
            + f64::from(self.scale_bits() + self.zero_bits()) / qb.max(1) as f64
    }

    /// Exact bits per weight of a `rows × cols` tensor (partial blocks and global scale included).
    pub fn bits_per_weight(&self, rows: usize, cols: usize) -> f64 {
        let n = (rows * cols) as f64;
        if n == 0.0 {
            return f64::from(self.element.bits());
        }
        let blocks = if self.scale.is_some() {
            self.block.n_blocks(rows, cols) as f64
        } else {
            0.0
        };
        let global = if self.global_scale { 32.0 } else { 0.0 };
        f64::from(self.element.bits())
            + blocks * f64::from(self.scale_bits() + self.zero_bits()) / n
            + global / n
    }

    /// Parses the spelling described in the module docs.
    pub fn parse(spec: &str) -> Result<Self> {
        let err = |reason: String| Error::FormatParse {
            spec: spec.to_string(),
            reason,
        };
        let spec_l = spec.trim().to_ascii_lowercase();
        let mut items = spec_l.split(',').map(str::trim).filter(|s| !s.is_empty());
        let mut fmt: Option<Format> = None;
        let mut rest: Vec<&str> = Vec::new();
        if let Some(first) = items.next() {
            if first.contains('=') {
                rest.push(first);
            } else {
                fmt = Some(Format::preset(first).ok_or_else(|| {
                    err(format!(
                        "unknown preset `{first}` (presets: {})",
                        PRESET_NAMES.join(", ")
                    ))
                })?);
            }
        }
        rest.extend(items);
        // Without a preset, start from the element with sensible defaults.
        if fmt.is_none() {
            let elem = rest
                .iter()
                .find_map(|kv| kv.strip_prefix("elem="))
                .ok_or_else(|| err("needs a preset name or elem=…".into()))?;
            let element = ElementType::from_id(elem).map_err(|e| err(e.to_string()))?;
            fmt = Some(match element {
                ElementType::Float(_) | ElementType::MxInt { .. } => Format::mx(element),
                _ => Format::scaled(element, ScaleType::Fp16, BlockSize::Elements(128)),
            });
        }
        let mut f = fmt.ok_or_else(|| err("empty format".into()))?;
        for kv in rest {
            let (k, v) = kv
                .split_once('=')
                .ok_or_else(|| err(format!("expected key=value, got `{kv}`")))?;
            match k {
                "elem" => {
                    f.element = ElementType::from_id(v).map_err(|e| err(e.to_string()))?;
                    if matches!(
                        f.element,
                        ElementType::Int {
                            kind: IntKind::Asym,
                            ..
                        }
                    ) && f.zero == ZeroPoint::None
                    {
                        f.zero = ZeroPoint::Int;
                    }
                }
                "scale" => {
                    f.scale = if v == "none" {
                        None
                    } else {
                        Some(
                            ScaleType::from_id(v)
                                .ok_or_else(|| err(format!("unknown scale type `{v}`")))?,
                        )
                    }
                }
                "zero" => {
                    f.zero = match v {
                        "none" => ZeroPoint::None,
                        "int" => ZeroPoint::Int,
                        _ => ZeroPoint::Float(
                            ScaleType::from_id(v)
                                .ok_or_else(|| err(format!("unknown zero type `{v}`")))?,
                        ),
                    }
                }
                "global" => {
                    f.global_scale = match v {
                        "fp32" => true,
                        "none" => false,
                        _ => return Err(err(format!("global must be fp32 or none, got `{v}`"))),
                    }
                }
                "block" => f.block = v.parse().map_err(|e: Error| err(e.to_string()))?,
                "round" => {
                    f.rounding = Rounding::from_id(v)
                        .ok_or_else(|| err(format!("unknown rounding `{v}` (even, away, zero)")))?
                }
                "overflow" => {
                    f.overflow = Overflow::from_id(v)
                        .ok_or_else(|| err(format!("unknown overflow `{v}` (saturate, infnan)")))?
                }
                _ => return Err(err(format!("unknown key `{k}`"))),
            }
        }
        f.validate().map_err(|e| err(e.to_string()))
    }

    fn keys(&self) -> Vec<(&'static str, String)> {
        vec![
            ("elem", self.element.id()),
            ("scale", self.scale.map_or("none".into(), ScaleType::id)),
            ("zero", self.zero.id()),
            (
                "global",
                if self.global_scale { "fp32" } else { "none" }.into(),
            ),
            ("block", self.block.id()),
            ("round", self.rounding.id().into()),
            ("overflow", self.overflow.id().into()),
        ]
    }

    /// The nearest preset (same element and scale) used as the base of [`Display`].
    fn base_preset(&self) -> Option<(&'static str, Format)> {
        PRESET_NAMES
            .iter()
            .filter_map(|n| Format::preset(n).map(|p| (*n, p)))
            .filter(|(_, p)| p.element == self.element)
            .min_by_key(|(_, p)| {
                p.keys()
                    .iter()
                    .zip(self.keys())
                    .filter(|(a, b)| **a != *b)
                    .count()
            })
    }
}

impl fmt::Display for Format {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        let mine = self.keys();
        match self.base_preset() {
            Some((name, preset)) => {
                write!(f, "{name}")?;
                for (a, b) in preset.keys().iter().zip(mine) {
                    if *a != b {
                        write!(f, ",{}={}", b.0, b.1)?;
                    }
                }
                Ok(())
            }
            None => {
                let parts: Vec<String> = mine.iter().map(|(k, v)| format!("{k}={v}")).collect();
                write!(f, "{}", parts.join(","))
            }
        }
    }
}

impl FromStr for Format {
    type Err = Error;

    fn from_str(s: &str) -> Result<Self> {
        Format::parse(s)
    }
}
