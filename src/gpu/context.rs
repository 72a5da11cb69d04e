//! The one `GpuContext`: adapter choice, device and queue, limits, pipelines built once, and the
//! single upload and readback helpers every kernel goes through.
//!
//! Adapter choice: `WGPU_BACKEND` (vulkan, metal, dx12, gl) restricts the backends; an explicit
//! name (`--gpu NAME`, or `WGPU_ADAPTER_NAME`) picks the first adapter whose name contains it;
//! otherwise the best device type wins (discrete > integrated > virtual > CPU, e.g. lavapipe).
//! The device is requested with the adapter's own limits, so large storage bindings work where
//! the hardware allows them; tensors larger than one binding are processed in row chunks.
//!
//! Blocking: `read_*` waits for the queue (`PollType::wait_indefinitely`). Call it from a job
//! thread, never from the UI thread (the explorer runs every GPU call inside a job).

use std::sync::mpsc;

use wgpu::util::DeviceExt;

pub use super::pipelines::{
    shader_modules, CODEC_PARAMS_WGSL, CODEC_WGSL, FORWARD_WGSL, MATMUL_WGSL, SOFTFLOAT_WGSL,
};
use super::pipelines::{CodecPipelines, ForwardPipelines, MatmulPipelines};
use crate::{Error, Result};

/// Workgroup size of every 1-D kernel (WGSL `@workgroup_size(256)`).
pub(crate) const WORKGROUP: u32 = 256;
/// Largest number of workgroups along one dispatch dimension (WebGPU's guaranteed minimum).
const MAX_GROUPS_PER_DIM: u32 = 65_535;

/// How to choose the adapter.
#[derive(Clone, Debug, Default)]
pub struct GpuOptions {
    /// Substring of the adapter name to use (case-insensitive); `None`: the best device type.
    pub adapter_name: Option<String>,
    /// Caps the largest storage binding below the adapter's own limit (bytes), to mimic a
    /// smaller GPU: models and chunks are then sized as they would be there.
    pub max_binding_bytes: Option<u64>,
}

/// A wgpu device with the quantscape pipelines built once.
pub struct GpuContext {
    pub(crate) device: wgpu::Device,
    pub(crate) queue: wgpu::Queue,
    info: wgpu::AdapterInfo,
    limits: wgpu::Limits,
    binding_cap_bytes: Option<u64>,
    pub(crate) codec: CodecPipelines,
    pub(crate) matmul: MatmulPipelines,
    pub(crate) forward: ForwardPipelines,
}

impl std::fmt::Debug for GpuContext {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str(&self.describe())
    }
}

fn type_rank(t: wgpu::DeviceType) -> u8 {
    match t {
        wgpu::DeviceType::DiscreteGpu => 0,
        wgpu::DeviceType::IntegratedGpu => 1,
        wgpu::DeviceType::VirtualGpu => 2,
        wgpu::DeviceType::Cpu => 3,
        wgpu::DeviceType::Other => 4,
    }
}

impl GpuContext {
    /// Opens the adapter chosen by `opts` (see the module docs) and builds every pipeline.
    pub fn new(opts: &GpuOptions) -> Result<Self> {
        let desc = wgpu::InstanceDescriptor::new_without_display_handle_from_env();
        let backends = wgpu::Backends::from_env().unwrap_or(desc.backends);
        let instance = wgpu::Instance::new(desc);
        let adapters = pollster::block_on(instance.enumerate_adapters(backends));
        let wanted = opts
            .adapter_name
            .clone()
            .or_else(|| std::env::var("WGPU_ADAPTER_NAME").ok())
            .map(|s| s.to_lowercase());
        let names: Vec<String> = adapters
            .iter()
            .map(|a| {
                let i = a.get_info();
                format!("{} ({:?}, {:?})", i.name, i.backend, i.device_type)
            })
            .collect();
        let mut candidates: Vec<wgpu::Adapter> = adapters
            .into_iter()
            .filter(|a| {
                let info = a.get_info();
                wanted
                    .as_ref()
                    .is_none_or(|w| info.name.to_lowercase().contains(w))
            })
            .collect();
        candidates.sort_by_key(|a| type_rank(a.get_info().device_type));
        let Some(adapter) = candidates.into_iter().next() else {
            return Err(Error::Gpu(match (&wanted, names.is_empty()) {
                (_, true) => "no GPU adapter found (install a Vulkan, Metal or DX12 driver; \
                              Debian: mesa-vulkan-drivers gives the lavapipe software adapter)"
                    .into(),
                (Some(w), false) => {
                    format!(
                        "no adapter name contains `{w}`; found: {}",
                        names.join(", ")
                    )
                }
                (None, false) => format!("no usable adapter among {}", names.join(", ")),
            }));
        };
        let info = adapter.get_info();
        let limits = adapter.limits();
        let (device, queue) = pollster::block_on(adapter.request_device(&wgpu::DeviceDescriptor {
            label: Some("quantscape"),
            required_features: wgpu::Features::empty(),
            required_limits: limits.clone(),
            ..Default::default()
        }))
        .map_err(|e| Error::Gpu(format!("requesting a device on {}: {e}", info.name)))?;
        let scope = device.push_error_scope(wgpu::ErrorFilter::Validation);
        let codec = CodecPipelines::new(&device);
        let matmul = MatmulPipelines::new(&device);
        let forward = ForwardPipelines::new(&device);
        if let Some(e) = pollster::block_on(scope.pop()) {
            return Err(Error::Gpu(format!(
                "building the compute pipelines on {}: {e}",
                info.name
            )));
        }
        Ok(Self {
            device,
            queue,
            info,
            limits,
            binding_cap_bytes: opts.max_binding_bytes,
            codec,
            matmul,
            forward,
        })
    }

    /// The context with default options, or `None` (with the reason) when no adapter works.
    pub fn try_new() -> std::result::Result<Self, String> {
        Self::new(&GpuOptions::default()).map_err(|e| e.to_string())
    }

    /// Adapter name.
    pub fn adapter_name(&self) -> &str {
        &self.info.name
    }

    /// "NAME (BACKEND, DEVICE TYPE)".
    pub fn describe(&self) -> String {
        format!(
            "{} ({:?}, {:?})",
            self.info.name, self.info.backend, self.info.device_type
        )
    }

    /// Whether this is a software rasterizer (lavapipe, WARP, SwiftShader).
    pub fn is_software(&self) -> bool {
        self.info.device_type == wgpu::DeviceType::Cpu
    }

    /// Largest storage buffer one binding may hold, in bytes.
    pub fn max_binding_bytes(&self) -> u64 {
        self.limits
            .max_storage_buffer_binding_size
            .min(self.limits.max_buffer_size)
            .min(self.binding_cap_bytes.unwrap_or(u64::MAX))
    }

    /// Rows of `cols` f32 values per chunk so that one chunk fits one binding (at least 1).
    pub(crate) fn rows_per_chunk(&self, cols: usize) -> Result<usize> {
        let row_bytes = (cols.max(1) as u64) * 4;
        let max = self.max_binding_bytes();
        if row_bytes > max {
            return Err(Error::Gpu(format!(
                "one row of {cols} values ({row_bytes} bytes) exceeds the adapter's largest \
                 storage binding ({max} bytes)"
            )));
        }
        Ok(((max / row_bytes) as usize).max(1))
    }

    /// A storage buffer holding `data` (at least 16 bytes: WebGPU bindings cannot be empty).
    pub(crate) fn upload<T: bytemuck::Pod>(&self, label: &str, data: &[T]) -> wgpu::Buffer {
        let bytes: &[u8] = bytemuck::cast_slice(data);
        let mut padded;
        let contents = if bytes.len() < 16 {
            padded = bytes.to_vec();
            padded.resize(16, 0);
            &padded[..]
        } else {
            bytes
        };
        self.device
            .create_buffer_init(&wgpu::util::BufferInitDescriptor {
                label: Some(label),
                contents,
                usage: wgpu::BufferUsages::STORAGE
                    | wgpu::BufferUsages::COPY_SRC
                    | wgpu::BufferUsages::COPY_DST,
            })
    }

    /// A uniform buffer holding one parameter struct.
    pub(crate) fn uniform<T: bytemuck::Pod>(&self, label: &str, value: &T) -> wgpu::Buffer {
        self.device
            .create_buffer_init(&wgpu::util::BufferInitDescriptor {
                label: Some(label),
                contents: bytemuck::bytes_of(value),
                usage: wgpu::BufferUsages::UNIFORM,
            })
    }

    /// An uninitialised storage buffer of `n_words` u32 (at least 4 words).
    pub(crate) fn scratch(&self, label: &str, n_words: usize) -> wgpu::Buffer {
        self.device.create_buffer(&wgpu::BufferDescriptor {
            label: Some(label),
            size: (n_words.max(4) * 4) as u64,
            usage: wgpu::BufferUsages::STORAGE
                | wgpu::BufferUsages::COPY_SRC
                | wgpu::BufferUsages::COPY_DST,
            mapped_at_creation: false,
        })
    }

    /// Records one dispatch of `n_threads` threads (2-D grid when needed) into `encoder`.
    pub(crate) fn dispatch(
        &self,
        encoder: &mut wgpu::CommandEncoder,
        pipeline: &wgpu::ComputePipeline,
        bind_group: &wgpu::BindGroup,
        n_threads: usize,
    ) {
        let groups = (n_threads as u64).div_ceil(u64::from(WORKGROUP)).max(1);
        let x = groups.min(u64::from(MAX_GROUPS_PER_DIM)) as u32;
        let y = groups.div_ceil(u64::from(x)) as u32;
        let mut pass = encoder.begin_compute_pass(&wgpu::ComputePassDescriptor {
            label: None,
            timestamp_writes: None,
        });
        pass.set_pipeline(pipeline);
        pass.set_bind_group(0, bind_group, &[]);
        pass.dispatch_workgroups(x, y, 1);
    }

    /// Submits `encoder` and reads the first `n_words` u32 of `buffer` back (the one readback
    /// helper: copy to a staging buffer, map, wait, copy out).
    pub(crate) fn submit_and_read(
        &self,
        mut encoder: wgpu::CommandEncoder,
        buffer: &wgpu::Buffer,
        n_words: usize,
    ) -> Result<Vec<u32>> {
        let size = (n_words * 4) as u64;
        if n_words == 0 {
            self.queue.submit([encoder.finish()]);
            return Ok(Vec::new());
        }
        let staging = self.device.create_buffer(&wgpu::BufferDescriptor {
            label: Some("readback"),
            size,
            usage: wgpu::BufferUsages::MAP_READ | wgpu::BufferUsages::COPY_DST,
            mapped_at_creation: false,
        });
        encoder.copy_buffer_to_buffer(buffer, 0, &staging, 0, size);
        self.queue.submit([encoder.finish()]);
        let slice = staging.slice(..);
        let (tx, rx) = mpsc::channel();
        slice.map_async(wgpu::MapMode::Read, move |r| {
            // The receiver outlives the wait below; a send error cannot be acted on.
            let _ = tx.send(r);
        });
        self.device
            .poll(wgpu::PollType::wait_indefinitely())
            .map_err(|e| Error::Gpu(format!("waiting for the GPU: {e}")))?;
        match rx.recv() {
            Ok(Ok(())) => {}
            Ok(Err(e)) => return Err(Error::Gpu(format!("mapping the readback buffer: {e}"))),
            Err(_) => return Err(Error::Gpu("the readback callback never ran".into())),
        }
        let out = {
            let view = slice
                .get_mapped_range()
                .map_err(|e| Error::Gpu(format!("reading the readback buffer: {e}")))?;
            bytemuck::cast_slice::<u8, u32>(&view).to_vec()
        };
        staging.unmap();
        Ok(out)
    }

    /// A bind group binding `buffers` in order (binding i = buffers[i], whole buffers).
    pub(crate) fn bind_buffers(
        &self,
        label: &str,
        layout: &wgpu::BindGroupLayout,
        buffers: &[&wgpu::Buffer],
    ) -> wgpu::BindGroup {
        let entries: Vec<wgpu::BindGroupEntry> = buffers
            .iter()
            .enumerate()
            .map(|(i, b)| wgpu::BindGroupEntry {
                binding: i as u32,
                resource: b.as_entire_binding(),
            })
            .collect();
        self.device.create_bind_group(&wgpu::BindGroupDescriptor {
            label: Some(label),
            layout,
            entries: &entries,
        })
    }

    /// A fresh command encoder.
    pub(crate) fn encoder(&self) -> wgpu::CommandEncoder {
        self.device
            .create_command_encoder(&wgpu::CommandEncoderDescriptor { label: None })
    }
}
