//! `quantscape formats`: every preset, its full spelling and its bits per weight.

use std::io::Write as _;
use std::process::ExitCode;

use anyhow::Context as _;
use quantscape::codecs::{BlockSize, Format, PRESET_NAMES};

/// Arguments of `formats`.
#[derive(clap::Args, Debug)]
pub struct FormatsArgs {
    /// Block size for the bits-per-weight column: a number, `channel` or `tensor` (default:
    /// each preset's own block size). Per-channel is shown for rows of `--row-len` elements.
    #[arg(long)]
    pub block: Option<String>,
    /// Row length used for per-channel / per-tensor accounting.
    #[arg(long, default_value_t = 4096)]
    pub row_len: usize,
}

/// Prints the table.
pub fn run(a: &FormatsArgs) -> anyhow::Result<ExitCode> {
    let block: Option<BlockSize> = a
        .block
        .as_deref()
        .map(str::parse)
        .transpose()
        .context("--block")?;
    let mut out = std::io::stdout().lock();
    writeln!(
        out,
        "{:<12} {:>5} {:>9} {:>9}  spelling",
        "preset", "bits", "block", "bits/w"
    )?;
    for name in PRESET_NAMES {
        let Some(preset) = Format::preset(name) else {
            continue;
        };
        let f = match block {
            Some(b) if preset.scale.is_some() => preset.with_block(b),
            _ => preset,
        };
        let qb = match f.block {
            BlockSize::Elements(n) => n as usize,
            BlockSize::PerChannel => a.row_len,
            BlockSize::PerTensor => a.row_len * a.row_len,
        };
        let bpw = if f.scale.is_some() {
            f.bits_per_weight_at(qb)
        } else {
            f64::from(f.element.bits())
        };
        writeln!(
            out,
            "{:<12} {:>5} {:>9} {:>9.4}  {}",
            name,
            f.element.bits(),
            f.block.id(),
            bpw,
            full_spelling(&f)
        )?;
    }
    Ok(ExitCode::SUCCESS)
}

fn full_spelling(f: &Format) -> String {
    format!(
        "elem={},scale={},block={},round={}{}",
        f.element.id(),
        f.scale.map_or("none".to_string(), |s| s.id()),
        f.block.id(),
        f.rounding.id(),
        if f.global_scale { ",global=fp32" } else { "" }
    )
}
