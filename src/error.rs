//! The crate-wide error type.
//!
//! Every library function returns [`Result`]. Messages name the offending file or value and the
//! problem in one line; paths come last (`cannot read header: truncated (model.safetensors)`).
//! Binaries wrap these with `anyhow` context and print them with `{:#}`.

use std::path::PathBuf;

/// Everything that can go wrong inside the quantscape library.
#[derive(Debug, thiserror::Error)]
pub enum Error {
    // --- Formats and codecs -------------------------------------------------------------------
    /// A format spelling could not be parsed (unknown preset, bad key, bad value).
    #[error("invalid format `{spec}`: {reason}")]
    FormatParse {
        /// The text that was parsed.
        spec: String,
        /// What is wrong with it.
        reason: String,
    },
    /// A format is well spelled but not meaningful (e.g. E9M2, int1, block size 0).
    #[error("invalid format: {0}")]
    InvalidFormat(String),
    /// A quantization method name or its parameters are invalid or not available.
    #[error("invalid method: {0}")]
    InvalidMethod(String),
    /// A tensor does not have the shape an operation needs.
    #[error("shape mismatch in {op}: {detail}")]
    Shape {
        /// The operation that checked the shape.
        op: &'static str,
        /// Expected versus found.
        detail: String,
    },

    // --- Checkpoints ----------------------------------------------------------------------------
    /// A checkpoint file is malformed (bad header, out-of-bounds offsets, unsupported dtype).
    #[error("{reason} ({})", path.display())]
    Checkpoint {
        /// What is wrong.
        reason: String,
        /// The file.
        path: PathBuf,
    },
    /// An input or output path is unusable (missing, exists when it must not, not a folder).
    #[error("{reason} ({})", path.display())]
    Path {
        /// What is wrong.
        reason: String,
        /// The path.
        path: PathBuf,
    },
    /// An I/O error while touching `path`.
    #[error("{op}: {source} ({})", path.display())]
    Io {
        /// What was being done (`read`, `write`, `rename`…).
        op: &'static str,
        /// The file or folder.
        path: PathBuf,
        /// The underlying error.
        #[source]
        source: std::io::Error,
    },
    /// A JSON document (config, index, header) could not be parsed.
    #[error("invalid JSON: {source} ({})", path.display())]
    Json {
        /// The file.
        path: PathBuf,
        /// The parser error.
        #[source]
        source: serde_json::Error,
    },
    // --- Forward pass and evaluation ---------------------------------------------------------
    /// A tensor operation of the forward pass failed (candle's message).
    #[error("forward pass: {0}")]
    Tensor(String),
    /// Input that cannot be evaluated: empty text, a context longer than the model allows, …
    #[error("{0}")]
    Input(String),
    /// A numerical method failed (an indefinite Hessian, non-finite activations).
    #[error("numerical failure: {0}")]
    Numerical(String),
    // --- GPU -------------------------------------------------------------------------------
    /// No usable GPU adapter, a device request or a pipeline that failed, a lost device.
    #[error("GPU: {0}")]
    Gpu(String),
    /// Long work was cancelled by the user.
    #[error("cancelled")]
    Cancelled,
}

impl Error {
    /// Helper for I/O errors that remembers the path and the operation.
    pub fn io(op: &'static str, path: impl Into<PathBuf>, source: std::io::Error) -> Self {
        Self::Io {
            op,
            path: path.into(),
            source,
        }
    }

    /// Helper for malformed checkpoint files.
    pub fn checkpoint(path: impl Into<PathBuf>, reason: impl Into<String>) -> Self {
        Self::Checkpoint {
            reason: reason.into(),
            path: path.into(),
        }
    }
}

impl From<candle_core::Error> for Error {
    fn from(e: candle_core::Error) -> Self {
        Self::Tensor(candle_message(&e))
    }
}

/// candle's message on one line: without the backtrace candle attaches when `RUST_BACKTRACE` is
/// set, and with its context chain joined by `: `.
pub fn candle_message(e: &candle_core::Error) -> String {
    match e {
        candle_core::Error::WithBacktrace { inner, .. } => candle_message(inner),
        candle_core::Error::Context { inner, context } => {
            format!("{context}: {}", candle_message(inner))
        }
        other => other.to_string().replace('\n', "; "),
    }
}

/// `Result` with the crate's [`Error`].
pub type Result<T, E = Error> = std::result::Result<T, E>;

/// Runs third-party parsing code (`tokenizers`, candle's GGUF reader) that may panic on input
/// it did not expect, turning a panic into an error that names `path` and what was being done.
/// Our own validation runs first wherever we know the panic's cause; this is the backstop.
/// The panic is caught on this thread without the panic hook's report on stderr (a hook that
/// stays silent only while this thread is inside a guard is installed once); panics elsewhere
/// are reported as before.
pub fn guard_panics<T>(
    path: &std::path::Path,
    what: &str,
    f: impl FnOnce() -> Result<T>,
) -> Result<T> {
    use std::cell::Cell;
    thread_local! {
        static GUARDED: Cell<bool> = const { Cell::new(false) };
    }
    static QUIET_HOOK: std::sync::Once = std::sync::Once::new();
    QUIET_HOOK.call_once(|| {
        let report = std::panic::take_hook();
        std::panic::set_hook(Box::new(move |info| {
            if !GUARDED.with(Cell::get) {
                report(info);
            }
        }));
    });
    let was = GUARDED.with(|g| g.replace(true));
    let caught = std::panic::catch_unwind(std::panic::AssertUnwindSafe(f));
    GUARDED.with(|g| g.set(was));
    match caught {
        Ok(r) => r,
        Err(payload) => {
            let msg = payload
                .downcast_ref::<&str>()
                .map(|s| (*s).to_string())
                .or_else(|| payload.downcast_ref::<String>().cloned())
                .unwrap_or_else(|| "unknown cause".into());
            Err(Error::checkpoint(
                path,
                format!("{what}: the parser failed on this input ({msg})"),
            ))
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    #[allow(clippy::panic)]
    fn a_panic_in_a_guarded_parser_is_an_error_naming_the_file() {
        let p = std::path::Path::new("m/tokenizer.json");
        let e = guard_panics::<()>(p, "loading the tokenizer", || {
            panic!("index 7 out of range")
        })
        .unwrap_err()
        .to_string();
        assert!(
            e.contains("tokenizer.json")
                && e.contains("loading the tokenizer")
                && e.contains("index 7"),
            "{e}"
        );
        assert_eq!(guard_panics(p, "x", || Ok(3)).unwrap(), 3);
    }
}
