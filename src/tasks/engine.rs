//! Where work runs: the [`Device`] a request asks for and the [`Engine`] it resolves to.
//!
//! Invariant: one process opens at most one GPU context. [`shared_gpu`] opens it on first use
//! (never on a UI thread: tasks call it inside their job) and every later caller — the CLI, every
//! panel of the explorer, the sweep runner — gets the same `&'static` context, or the same reason
//! why there is none. [`gpu_open_attempts`] counts the openings so a test can hold us to it.
//!
//! `Device::Cpu` is the reference path; `Device::Gpu` is an error when no adapter works or the
//! work cannot run there; `Device::Auto` takes the GPU when it works and says why not otherwise
//! (the [`Opened::notice`], printed once by the CLI and shown by the panel).

use std::fmt;
use std::str::FromStr;
use std::sync::atomic::{AtomicUsize, Ordering};

use serde::{Deserialize, Serialize};

use crate::error::{Error, Result};

/// The device a request asks for.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum Device {
    /// The CPU reference.
    #[default]
    Cpu,
    /// The wgpu engine; an error when it cannot run.
    Gpu,
    /// The GPU when it works and the work can run there, else the CPU with a notice.
    Auto,
}

impl FromStr for Device {
    type Err = Error;
    fn from_str(s: &str) -> Result<Self> {
        match s {
            "cpu" => Ok(Self::Cpu),
            "gpu" => Ok(Self::Gpu),
            "auto" => Ok(Self::Auto),
            other => Err(Error::Input(format!(
                "device `{other}`: expected cpu, gpu or auto"
            ))),
        }
    }
}

impl fmt::Display for Device {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(match self {
            Self::Cpu => "cpu",
            Self::Gpu => "gpu",
            Self::Auto => "auto",
        })
    }
}

/// The process's GPU context type (uninhabited in a build without the `gpu` feature).
pub use crate::search::runner::Gpu;

static OPEN_ATTEMPTS: AtomicUsize = AtomicUsize::new(0);

#[cfg(feature = "gpu")]
static SHARED: std::sync::OnceLock<std::result::Result<Gpu, String>> = std::sync::OnceLock::new();

/// The process's one GPU context, opened on the first call; the same error string every time
/// when there is none.
pub fn shared_gpu() -> std::result::Result<&'static Gpu, String> {
    #[cfg(feature = "gpu")]
    {
        SHARED
            .get_or_init(|| {
                OPEN_ATTEMPTS.fetch_add(1, Ordering::Relaxed);
                Gpu::try_new()
            })
            .as_ref()
            .map_err(Clone::clone)
    }
    #[cfg(not(feature = "gpu"))]
    {
        OPEN_ATTEMPTS.fetch_add(0, Ordering::Relaxed);
        Err("this build has no `gpu` feature".to_string())
    }
}

/// How many times this process tried to open a GPU context (0 or 1).
pub fn gpu_open_attempts() -> usize {
    OPEN_ATTEMPTS.load(Ordering::Relaxed)
}

/// A resolved device.
#[derive(Clone, Copy)]
pub enum Engine {
    /// The CPU reference path.
    Cpu,
    /// The shared wgpu context.
    Gpu(&'static Gpu),
}

impl fmt::Debug for Engine {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(&self.describe())
    }
}

/// An engine and, when `auto` fell back to the CPU, why.
#[derive(Debug)]
pub struct Opened {
    /// Where the work runs.
    pub engine: Engine,
    /// Why `auto` (or a CPU-only piece of work) stayed on the CPU.
    pub notice: Option<String>,
}

impl Device {
    /// Resolves the device. `cpu_only` says why this work must stay on the CPU (a calibrated
    /// method, activation formats): an error for `gpu`, a notice for `auto`.
    pub fn open(self, cpu_only: Option<String>) -> Result<Opened> {
        let cpu = |notice| Opened {
            engine: Engine::Cpu,
            notice,
        };
        if self == Device::Cpu {
            return Ok(cpu(None));
        }
        if let Some(why) = cpu_only {
            if self == Device::Gpu {
                return Err(Error::Input(format!(
                    "device gpu: {why} (use device auto or cpu)"
                )));
            }
            return Ok(cpu(Some(format!("{why}; on the CPU"))));
        }
        match shared_gpu() {
            Ok(g) => Ok(Opened {
                engine: Engine::Gpu(g),
                notice: None,
            }),
            Err(why) if self == Device::Auto => Ok(cpu(Some(format!("no GPU: {why}; on the CPU")))),
            Err(why) => Err(Error::Gpu(why)),
        }
    }
}

impl Engine {
    /// "cpu" or "gpu: ADAPTER (BACKEND, TYPE)".
    pub fn describe(&self) -> String {
        match self {
            Engine::Cpu => "cpu".into(),
            #[cfg(feature = "gpu")]
            Engine::Gpu(g) => format!("gpu: {}", g.describe()),
            #[cfg(not(feature = "gpu"))]
            Engine::Gpu(g) => match **g {},
        }
    }

    /// The GPU context when this engine is the GPU.
    pub fn gpu(&self) -> Option<&'static Gpu> {
        match self {
            Engine::Cpu => None,
            Engine::Gpu(g) => Some(g),
        }
    }

    /// Fake-quantizes one `[rows, cols]` weight: RTN on the GPU (bit-identical to the CPU
    /// reference), everything else on the CPU.
    pub fn fake_quant(
        &self,
        w: &[f32],
        rows: usize,
        cols: usize,
        format: &crate::codecs::Format,
        method: &crate::codecs::Method,
    ) -> Result<Vec<f32>> {
        match self {
            #[cfg(feature = "gpu")]
            Engine::Gpu(g) if matches!(method, crate::codecs::Method::Rtn) => {
                crate::gpu::fake_quant(g, w, rows, cols, format)
            }
            _ => crate::codecs::fake_quant(w, rows, cols, format, method),
        }
    }

    /// Runs `f` with the batch-logits function of `model` under `hooks` on this engine (on the
    /// GPU, the model is uploaded once for the whole of `f`).
    pub fn with_logits<T>(
        &self,
        model: &crate::model::Transformer,
        hooks: &dyn crate::model::Hooks,
        f: impl FnOnce(&mut crate::eval::BatchLogits<'_>) -> Result<T>,
    ) -> Result<T> {
        match self {
            Engine::Cpu => f(&mut |_, ids, b| {
                Ok(crate::eval::BatchOut::Hidden(
                    model.hidden_states(ids, b, hooks)?,
                ))
            }),
            #[cfg(feature = "gpu")]
            Engine::Gpu(g) => {
                let gm = crate::gpu::GpuModel::new(g, model, hooks)?;
                f(&mut |_, ids, b| Ok(crate::eval::BatchOut::Logits(gm.logits(ids, b)?)))
            }
            #[cfg(not(feature = "gpu"))]
            Engine::Gpu(g) => match **g {},
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn device_spellings_and_cpu_only_work() {
        for d in [Device::Cpu, Device::Gpu, Device::Auto] {
            assert_eq!(d.to_string().parse::<Device>().unwrap(), d);
        }
        assert!("tpu"
            .parse::<Device>()
            .unwrap_err()
            .to_string()
            .contains("tpu"));
        let why = || Some("activation formats run on the CPU".to_string());
        assert!(Device::Gpu.open(why()).is_err());
        let o = Device::Auto.open(why()).unwrap();
        assert!(matches!(o.engine, Engine::Cpu));
        assert!(o.notice.unwrap().contains("activation formats"));
        assert!(Device::Cpu.open(None).unwrap().notice.is_none());
    }
}
