//! Pipelines and the parameter block of the forward-pass ops (`shaders/forward.wgsl`), built
//! once per context; [`FwUniform`] mirrors WGSL `struct Fw` word for word (16 words).

use bytemuck::{Pod, Zeroable};

use super::codec::{build_pipelines, storage_entry, uniform_entry};
use super::context::FORWARD_WGSL;

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

/// The forward-op pipelines, built once per context.
pub(crate) struct ForwardPipelines {
    pub(crate) layout: wgpu::BindGroupLayout,
    pub(crate) embed: wgpu::ComputePipeline,
    pub(crate) norm: wgpu::ComputePipeline,
    pub(crate) to_heads: wgpu::ComputePipeline,
    pub(crate) rope: wgpu::ComputePipeline,
    pub(crate) attention: wgpu::ComputePipeline,
    pub(crate) act: wgpu::ComputePipeline,
    pub(crate) add: wgpu::ComputePipeline,
}

impl ForwardPipelines {
    pub(crate) fn new(device: &wgpu::Device) -> Self {
        // op(uniform Fw, a, b, c, out, ids).
        let layout = device.create_bind_group_layout(&wgpu::BindGroupLayoutDescriptor {
            label: Some("forward"),
            entries: &[
                uniform_entry(0),
                storage_entry(1, true),
                storage_entry(2, true),
                storage_entry(3, true),
                storage_entry(4, false),
                storage_entry(5, true),
            ],
        });
        let [embed, norm, to_heads, rope, attention, act, add] = build_pipelines(
            device,
            "forward",
            FORWARD_WGSL.to_string(),
            &layout,
            [
                "embed",
                "norm",
                "to_heads",
                "rope",
                "attention",
                "act",
                "add",
            ],
        );
        Self {
            layout,
            embed,
            norm,
            to_heads,
            rope,
            attention,
            act,
            add,
        }
    }
}
