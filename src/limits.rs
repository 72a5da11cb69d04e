//! Bounds on every size a user sets (top-k, bootstrap resamples, trials, windows, grid points…)
//! and on what a checkpoint's `config.json` may claim, checked before anything is allocated.
//!
//! Invariant: no input — a CLI flag, a sweep spec, a session, a config — makes quantscape
//! allocate or loop without bound. A value above its cap is an error that names the setting, the
//! value, the cap and why it exists; `--allow-large` (the CLI's global flag, which calls
//! [`set_allow_large`]) lifts the caps on user-set work sizes for a user who means it. Caps on
//! what a *file* claims ([`ConfigBound`]) are never lifted: no real checkpoint exceeds them, and
//! a forged one must not be able to reserve terabytes.

use std::sync::atomic::{AtomicBool, Ordering};

use crate::error::{Error, Result};

static ALLOW_LARGE: AtomicBool = AtomicBool::new(false);

/// Lifts (or restores) the caps of every [`Cap`] for this process (`--allow-large`).
pub fn set_allow_large(allow: bool) {
    ALLOW_LARGE.store(allow, Ordering::Relaxed);
}

/// Whether `--allow-large` is in force.
pub fn allow_large() -> bool {
    ALLOW_LARGE.load(Ordering::Relaxed)
}

/// A cap on a user-set work size.
#[derive(Clone, Copy, Debug)]
pub struct Cap {
    /// The setting as the user spells it (`--top-k`, `eval.resamples`).
    pub what: &'static str,
    /// Largest accepted value without `--allow-large`.
    pub max: usize,
    /// Why the cap is where it is (shown in the error).
    pub why: &'static str,
}

impl Cap {
    /// `Ok` when `value` is within the cap (or `--allow-large` is in force).
    pub fn check(&self, value: usize) -> Result<usize> {
        if value <= self.max || allow_large() {
            return Ok(value);
        }
        Err(Error::Input(format!(
            "{} {value} exceeds the cap of {} ({}); pass --allow-large to run it anyway",
            self.what, self.max, self.why
        )))
    }

    /// The same cap under another spelling (a spec field instead of a flag).
    pub const fn named(self, what: &'static str) -> Self {
        Cap {
            what,
            max: self.max,
            why: self.why,
        }
    }
}

/// Base log-probabilities kept per token for KL.
pub const TOP_K: Cap = Cap {
    what: "--top-k",
    max: 4096,
    why: "k entries are stored for every scored token",
};
/// Bootstrap resamples of an evaluation's ΔL interval.
pub const RESAMPLES: Cap = Cap {
    what: "--resamples",
    max: 100_000,
    why: "each resample sums every window; 10,000 already fixes a 95 % interval to ~1 %",
};
/// Evaluation windows.
pub const WINDOWS: Cap = Cap {
    what: "--windows",
    max: 65_536,
    why: "every window is a forward pass",
};
/// Tokens per window.
pub const CTX: Cap = Cap {
    what: "--ctx",
    max: 1 << 17,
    why: "attention memory grows with the square of the context",
};
/// Trials per sweep configuration.
pub const TRIALS: Cap = Cap {
    what: "trials",
    max: 10_000,
    why: "each trial is a full evaluation; the paper uses 100",
};
/// Bootstrap refits of a law fit.
pub const FIT_BOOTSTRAP: Cap = Cap {
    what: "--bootstrap",
    max: 100_000,
    why: "each resample is a full nonlinear fit",
};
/// Points per axis of a loss-landscape slice.
pub const GRID: Cap = Cap {
    what: "--grid",
    max: 1025,
    why: "each point is a forward pass over the held-out windows (and a 2-D slice squares it)",
};
/// Random directions, Hessian-vector iterations, probe samples and the like.
pub const ITERATIONS: Cap = Cap {
    what: "iterations",
    max: 100_000,
    why: "each iteration is at least one forward pass",
};
/// Trees of a random forest.
pub const TREES: Cap = Cap {
    what: "--trees",
    max: 100_000,
    why: "each tree is grown on the whole data set",
};

/// The largest value a `config.json` (or GGUF metadata) may give a size. Generous: the largest
/// released models are far inside every bound.
#[derive(Clone, Copy, Debug)]
pub struct ConfigBound {
    /// The key as the config spells it.
    pub key: &'static str,
    /// Largest accepted value.
    pub max: usize,
}

/// Vocabulary entries.
pub const VOCAB: ConfigBound = ConfigBound {
    key: "vocab_size",
    max: 1 << 22,
};
/// Model width.
pub const HIDDEN: ConfigBound = ConfigBound {
    key: "hidden_size",
    max: 1 << 17,
};
/// Transformer blocks.
pub const LAYERS: ConfigBound = ConfigBound {
    key: "num_hidden_layers",
    max: 1024,
};
/// Attention heads (query or key/value).
pub const HEADS: ConfigBound = ConfigBound {
    key: "num_attention_heads",
    max: 4096,
};
/// Width of one head.
pub const HEAD_DIM: ConfigBound = ConfigBound {
    key: "head_dim",
    max: 4096,
};
/// MLP inner width.
pub const INTERMEDIATE: ConfigBound = ConfigBound {
    key: "intermediate_size",
    max: 1 << 20,
};
/// Longest context a config may declare (the RoPE table is built for at most
/// [`ROPE_TABLE_POSITIONS`] of them).
pub const POSITIONS: ConfigBound = ConfigBound {
    key: "max_position_embeddings",
    max: 1 << 24,
};
/// Rows of the precomputed RoPE cos/sin tables (contexts beyond it are refused, not computed).
pub const ROPE_TABLE_POSITIONS: usize = CTX.max;
/// Entries of each RoPE table (64 MiB of f32): a forged head width cannot make it larger; real
/// heads (≤ 256 wide) get all [`ROPE_TABLE_POSITIONS`] rows.
pub const ROPE_TABLE_ELEMENTS: usize = 1 << 24;

impl ConfigBound {
    /// `Ok(value)` when 1 ≤ value ≤ max; otherwise an error naming the key (under the name the
    /// file used, `key`) and the file.
    pub fn check(&self, key: &str, value: usize, path: &std::path::Path) -> Result<usize> {
        if value == 0 || value > self.max {
            return Err(Error::checkpoint(
                path,
                format!(
                    "{key} = {value} is outside 1..={} (the sane range for {})",
                    self.max, self.key
                ),
            ));
        }
        Ok(value)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn caps_refuse_above_and_name_the_setting() {
        assert_eq!(TOP_K.check(4096).unwrap(), 4096);
        let e = TOP_K.check(1 << 32).unwrap_err().to_string();
        assert!(e.contains("--top-k") && e.contains("4294967296") && e.contains("--allow-large"));
        let e = TRIALS
            .named("trials (sweep spec)")
            .check(1_000_000)
            .unwrap_err();
        assert!(e.to_string().contains("trials (sweep spec)"), "{e}");
        let p = std::path::Path::new("x/config.json");
        assert!(LAYERS.check("n_layer", 0, p).is_err());
        let e = LAYERS.check("n_layer", 1 << 31, p).unwrap_err().to_string();
        assert!(e.contains("n_layer") && e.contains("config.json"), "{e}");
        assert_eq!(LAYERS.check("n_layer", 32, p).unwrap(), 32);
    }
}
