//! `quantscape`: with no subcommand the explorer (builds without the `gui` feature print the
//! help); with a subcommand the headless CLI twin.
//!
//! Exit codes: 0 success (the output can be read back), 2 any error (bad input, I/O, a failed
//! computation; one line on stderr naming the file and the problem). A closed pipe exits 0.

use std::process::ExitCode;

use clap::Parser as _;

mod cli;

/// mimalloc keeps freed activation buffers for reuse (see Cargo.toml).
#[global_allocator]
static ALLOCATOR: mimalloc::MiMalloc = mimalloc::MiMalloc;

fn main() -> ExitCode {
    quantscape::alloc::keep_freed_memory();
    let args = cli::Cli::parse();
    match cli::run(args) {
        Ok(code) => code,
        Err(err) => {
            if is_broken_pipe(&err) {
                return ExitCode::SUCCESS;
            }
            eprintln!("error: {err:#}");
            ExitCode::from(2)
        }
    }
}

fn is_broken_pipe(err: &anyhow::Error) -> bool {
    err.chain().any(|e| {
        e.downcast_ref::<std::io::Error>()
            .is_some_and(|io| io.kind() == std::io::ErrorKind::BrokenPipe)
    })
}
