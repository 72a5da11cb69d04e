//! `quantscape convert`: a GGUF file (llama architecture) → a Hugging Face folder.

use std::path::PathBuf;
use std::process::ExitCode;

use anyhow::Context as _;
use quantscape::model::gguf;

/// Arguments of `convert`.
#[derive(clap::Args, Debug)]
pub struct ConvertArgs {
    /// The .gguf file.
    pub gguf: PathBuf,
    /// Output folder (must not exist).
    #[arg(long)]
    pub out: PathBuf,
}

/// Runs `convert`.
pub fn run(a: &ConvertArgs) -> anyhow::Result<ExitCode> {
    let rep = gguf::convert(&a.gguf, &a.out)
        .with_context(|| format!("converting {}", a.gguf.display()))?;
    let dtypes: Vec<String> = rep.dtypes.iter().map(|(k, v)| format!("{v} {k}")).collect();
    outln!(
        "{} ({}): {} tensors, {} parameters; source storage: {}",
        a.out.display(),
        rep.name,
        rep.n_tensors,
        rep.n_params,
        dtypes.join(", ")
    );
    outln!("reference weights = the dequantized GGUF values (see PROVENANCE.json)");
    Ok(ExitCode::SUCCESS)
}
