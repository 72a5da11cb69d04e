//! The parameter block of the forward-pass ops (`shaders/forward.wgsl`; their pipelines are
//! built in `pipelines.rs`): [`FwUniform`] mirrors WGSL `struct Fw` word for word (16 words).

use bytemuck::{Pod, Zeroable};

/// WGSL `struct Fw`.
#[repr(C)]
#[derive(Clone, Copy, Debug, Default, Pod, Zeroable)]
pub(crate) struct FwUniform {
    pub(crate) rows: u32,
    pub(crate) cols: u32,
    pub(crate) t: u32,
    pub(crate) n_heads: u32,
    pub(crate) n_kv: u32,
    pub(crate) hd: u32,
    pub(crate) rot: u32,
    pub(crate) mode: u32,
    pub(crate) eps: f32,
    pub(crate) scale: f32,
    pub(crate) base: u32,
    pub(crate) stride_h: u32,
    pub(crate) src_cols: u32,
    pub(crate) pad0: u32,
    pub(crate) pad1: u32,
    pub(crate) pad2: u32,
}
