//! Command-line interface: clap definitions and thin handlers over the library.
//!
//! Every GUI action gets a twin here (DESIGN §1.8). Handlers validate their arguments into
//! library types (`Format`, `Method`, `BlockSize`) before doing any work, so bad input fails
//! fast with one line and exit code 2.

use std::process::ExitCode;

use clap::{CommandFactory as _, Parser, Subcommand};

mod formats;
mod quantize;

/// quantscape: quantize language models with block formats, measure the cost, fit PTQ laws.
#[derive(Parser, Debug)]
#[command(name = "quantscape", version, about, long_about = None)]
pub struct Cli {
    /// What to do; without a subcommand the explorer opens (prints this help until it lands).
    #[command(subcommand)]
    pub command: Option<Command>,
}

/// Subcommands.
#[derive(Subcommand, Debug)]
pub enum Command {
    /// Fake-quantize every quantizable weight of a checkpoint into a new checkpoint folder.
    Quantize(quantize::QuantizeArgs),
    /// List every format preset with its bits per weight.
    Formats(formats::FormatsArgs),
}

/// Runs the parsed command line.
pub fn run(cli: Cli) -> anyhow::Result<ExitCode> {
    match cli.command {
        Some(Command::Quantize(a)) => quantize::run(&a),
        Some(Command::Formats(a)) => formats::run(&a),
        None => {
            Cli::command().print_help()?;
            println!();
            Ok(ExitCode::SUCCESS)
        }
    }
}
