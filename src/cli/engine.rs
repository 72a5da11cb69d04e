//! `--device cpu|gpu|auto`, shared by `quantize` and `eval`: the CPU reference, the wgpu
//! engine (an error when it cannot run), or the GPU when it works with one warning otherwise.

use anyhow::bail;

/// Where a command's work runs.
pub(crate) enum Engine {
    /// The CPU reference path.
    Cpu,
    /// The wgpu engine.
    #[cfg(feature = "gpu")]
    Gpu(Box<quantscape::gpu::GpuContext>),
}

impl Engine {
    /// Opens the engine for `--device` (`cpu`, `gpu`, `auto`). `cpu_only` says why this run
    /// must stay on the CPU (a calibrated method, activation formats); `what` names the work in
    /// messages ("quantizing", "evaluating").
    pub(crate) fn open(device: &str, cpu_only: Option<String>, what: &str) -> anyhow::Result<Self> {
        if device == "cpu" {
            return Ok(Engine::Cpu);
        }
        if let Some(why) = cpu_only {
            if device == "gpu" {
                bail!("--device gpu: {why} (use --device auto or cpu)");
            }
            eprintln!("warning: {why}; {what} on the CPU");
            return Ok(Engine::Cpu);
        }
        #[cfg(feature = "gpu")]
        {
            match quantscape::gpu::GpuContext::try_new() {
                Ok(ctx) => {
                    eprintln!("{what} on {}", ctx.describe());
                    Ok(Engine::Gpu(Box::new(ctx)))
                }
                Err(why) if device == "auto" => {
                    eprintln!("warning: {why}; {what} on the CPU");
                    Ok(Engine::Cpu)
                }
                Err(why) => bail!("--device gpu: {why}"),
            }
        }
        #[cfg(not(feature = "gpu"))]
        {
            if device == "gpu" {
                bail!("--device gpu: this build has no `gpu` feature");
            }
            eprintln!("warning: this build has no `gpu` feature; {what} on the CPU");
            Ok(Engine::Cpu)
        }
    }

    /// "cpu" or "gpu: ADAPTER (BACKEND, TYPE)".
    pub(crate) fn describe(&self) -> String {
        match self {
            Engine::Cpu => "cpu".into(),
            #[cfg(feature = "gpu")]
            Engine::Gpu(ctx) => format!("gpu: {}", ctx.describe()),
        }
    }
}
