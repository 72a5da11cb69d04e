//! The one integration-test binary (one module per topic), as ripgrep does.

// Tests may unwrap: a panic is the failure report.
#![allow(clippy::unwrap_used, clippy::expect_used)]

mod architecture;
mod checkpoint;
mod cli;
mod codecs;
mod corpus;
mod eval;
mod features;
mod forward;
mod gguf;
mod gptq;
#[cfg(feature = "gpu")]
mod gpu;
mod hardening;
mod landscape;
mod laws;
mod oracles;
mod precision;
mod sweep;
mod tasks;
mod train;
mod util;
