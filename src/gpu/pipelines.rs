//! Everything compiled once per [`super::GpuContext`]: the WGSL sources (`shaders/*.wgsl`), the
//! bind-group layouts — each kernel family's "function signature" — and the compute pipelines of
//! the codec kernels, the matmul and the forward-pass ops. A leaf of the `gpu` module: the
//! context owns these, the kernels' host code (`codec.rs`, `matmul.rs`, `forward.rs`) uses them.

/// The codec module as compiled: soft-float helpers, element kernels, block-parameter passes.
pub(crate) fn codec_source() -> String {
    format!("{SOFTFLOAT_WGSL}\n{CODEC_WGSL}\n{CODEC_PARAMS_WGSL}")
}

/// The soft-float helpers (`shaders/softfloat.wgsl`).
pub const SOFTFLOAT_WGSL: &str = include_str!("../../shaders/softfloat.wgsl");
/// The codec kernels (`shaders/codec.wgsl`; needs the soft-float helpers).
pub const CODEC_WGSL: &str = include_str!("../../shaders/codec.wgsl");
/// The block statistics and parameter passes (`shaders/codec_params.wgsl`; appended to the codec
/// kernels).
pub const CODEC_PARAMS_WGSL: &str = include_str!("../../shaders/codec_params.wgsl");
/// The matmul kernels (`shaders/matmul.wgsl`).
pub const MATMUL_WGSL: &str = include_str!("../../shaders/matmul.wgsl");

/// The forward-pass ops (`shaders/forward.wgsl`).
pub const FORWARD_WGSL: &str = include_str!("../../shaders/forward.wgsl");

/// Every shader module as compiled: (name, full WGSL source). The naga test validates these.
pub fn shader_modules() -> Vec<(&'static str, String)> {
    vec![
        ("codec", codec_source()),
        ("matmul", MATMUL_WGSL.to_string()),
        ("forward", FORWARD_WGSL.to_string()),
    ]
}

/// The codec pipelines, built once per context.
pub(crate) struct CodecPipelines {
    pub(crate) layout: wgpu::BindGroupLayout,
    pub(crate) stats: wgpu::ComputePipeline,
    pub(crate) params: wgpu::ComputePipeline,
    pub(crate) codes: wgpu::ComputePipeline,
    pub(crate) fake: wgpu::ComputePipeline,
    pub(crate) dequant: wgpu::ComputePipeline,
    pub(crate) errors: wgpu::ComputePipeline,
}

/// A storage-buffer binding of a compute layout.
pub(crate) fn storage_entry(binding: u32, read_only: bool) -> wgpu::BindGroupLayoutEntry {
    wgpu::BindGroupLayoutEntry {
        binding,
        visibility: wgpu::ShaderStages::COMPUTE,
        ty: wgpu::BindingType::Buffer {
            ty: wgpu::BufferBindingType::Storage { read_only },
            has_dynamic_offset: false,
            min_binding_size: None,
        },
        count: None,
    }
}

/// A uniform-buffer binding of a compute layout.
pub(crate) fn uniform_entry(binding: u32) -> wgpu::BindGroupLayoutEntry {
    wgpu::BindGroupLayoutEntry {
        binding,
        visibility: wgpu::ShaderStages::COMPUTE,
        ty: wgpu::BindingType::Buffer {
            ty: wgpu::BufferBindingType::Uniform,
            has_dynamic_offset: false,
            min_binding_size: None,
        },
        count: None,
    }
}

/// Compute pipelines for the named entry points of one module with one explicit layout.
pub(crate) fn build_pipelines<const N: usize>(
    device: &wgpu::Device,
    label: &str,
    source: String,
    layout: &wgpu::BindGroupLayout,
    entries: [&str; N],
) -> [wgpu::ComputePipeline; N] {
    let module = device.create_shader_module(wgpu::ShaderModuleDescriptor {
        label: Some(label),
        source: wgpu::ShaderSource::Wgsl(source.into()),
    });
    let pl = device.create_pipeline_layout(&wgpu::PipelineLayoutDescriptor {
        label: Some(label),
        bind_group_layouts: &[Some(layout)],
        immediate_size: 0,
    });
    entries.map(|entry| {
        device.create_compute_pipeline(&wgpu::ComputePipelineDescriptor {
            label: Some(entry),
            layout: Some(&pl),
            module: &module,
            entry_point: Some(entry),
            compilation_options: Default::default(),
            cache: None,
        })
    })
}

impl CodecPipelines {
    pub(crate) fn new(device: &wgpu::Device) -> Self {
        // The "function signature" of every codec kernel (see shaders/codec.wgsl).
        let layout = device.create_bind_group_layout(&wgpu::BindGroupLayoutDescriptor {
            label: Some("codec"),
            entries: &[
                uniform_entry(0),
                storage_entry(1, true),
                storage_entry(2, false),
                storage_entry(3, false),
                storage_entry(4, false),
                storage_entry(5, true),
            ],
        });
        let [stats, params, codes, fake, dequant, errors] = build_pipelines(
            device,
            "codec",
            codec_source(),
            &layout,
            [
                "block_stats",
                "block_params",
                "quantize_codes",
                "fake_quant",
                "dequantize",
                "block_errors",
            ],
        );
        Self {
            layout,
            stats,
            params,
            codes,
            fake,
            dequant,
            errors,
        }
    }
}

/// The matmul pipelines, built once per context.
pub(crate) struct MatmulPipelines {
    pub(crate) layout: wgpu::BindGroupLayout,
    pub(crate) gemm: wgpu::ComputePipeline,
}

impl MatmulPipelines {
    pub(crate) fn new(device: &wgpu::Device) -> Self {
        // gemm_nt(uniform Mm, A, B, C).
        let layout = device.create_bind_group_layout(&wgpu::BindGroupLayoutDescriptor {
            label: Some("matmul"),
            entries: &[
                uniform_entry(0),
                storage_entry(1, true),
                storage_entry(2, true),
                storage_entry(3, false),
                storage_entry(4, true),
            ],
        });
        let [gemm] = build_pipelines(
            device,
            "matmul",
            MATMUL_WGSL.to_string(),
            &layout,
            ["gemm_nt"],
        );
        Self { layout, gemm }
    }
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
