//! The one integration-test binary (one module per topic), as ripgrep does.

mod checkpoint;
mod cli;
mod codecs;
mod oracles;
mod util;
