//! Mixed-precision sweeps (Cao et al., arXiv 2410.06722): sites, random assignments reaching a
//! target Qr, the sweep runner with its weight cache, and the crash-safe SQLite results store.
//!
//! Flow: a [`SweepSpec`] (RON) → [`SweepSpec::configurations`] (model × granularity × low ×
//! high × method × Qb × Qr) → [`runner::run`] evaluates the trials of a shard that the
//! [`Store`] does not hold yet, one transaction per trial → [`export`] writes per-trial and
//! per-configuration CSV. Units: Qr is a fraction in [0, 1] of parameters (layer-/block-wise) or
//! of MACs per token (matmul-wise); ΔL and NLL in nats per token; seconds of wall time.

pub mod analysis;
pub mod assign;
pub mod cache;
pub mod export;
pub mod models;
pub mod provenance;
pub mod runner;
pub mod spec;
pub mod store;

pub use spec::{
    Configuration, EvalSpec, Granularity, Metric, Operands, Precision, Shard, Statistic, SweepSpec,
};
pub use store::{ModelRow, Store, TrialRow};
