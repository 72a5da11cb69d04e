//! `quantscape quantize`: fake-quantize every quantizable 2-D weight of a checkpoint and write a
//! new checkpoint folder in the input's dtype, with a per-tensor error table.
//!
//! The input is never modified; the output is built in a temporary folder and renamed into place
//! only when everything succeeded (nothing partial is left behind on error).

use std::fmt::Write as _;
use std::path::PathBuf;
use std::process::ExitCode;

use anyhow::{bail, Context as _};
use quantscape::codecs::Method;
use quantscape::tasks::quantize::{self, QuantizeReport, QuantizeRequest};

/// Arguments of `quantize`.
#[derive(clap::Args, Debug)]
pub struct QuantizeArgs {
    /// Checkpoint folder (config.json, *.safetensors or a sharded index, tokenizer.json), `org/name`
    /// in the Hugging Face cache, or a llama `.gguf` file (converted once into the cache).
    #[arg(long)]
    pub model: PathBuf,
    /// Format: a preset (`quantscape formats`) or a spelling like `elem=e3m2,scale=e8m0,block=32`.
    #[arg(long)]
    pub format: String,
    /// Block size, method, rounding.
    #[command(flatten)]
    pub codec: super::CodecArgs,
    /// Calibration (gptq, awq).
    #[command(flatten)]
    pub calib: super::calib::CalibArgs,
    /// Output folder (must not exist).
    #[arg(long)]
    pub out: PathBuf,
    /// Also write the per-tensor table as CSV.
    #[arg(long)]
    pub csv: Option<PathBuf>,
    /// Where RTN runs: `cpu` (the reference), `gpu` (wgpu; an error without an adapter) or
    /// `auto` (the GPU when one works, else the CPU with one warning). Results are
    /// bit-identical; calibrated methods (gptq, awq, hqq) always run on the CPU.
    #[arg(long, default_value = "cpu", value_parser = ["cpu", "gpu", "auto"])]
    pub device: String,
    /// Print the report (per-tensor statistics, histograms, grids) as JSON instead of a table.
    #[arg(long)]
    pub json: bool,
    /// Hide the progress bar.
    #[arg(long)]
    pub quiet: bool,
}

/// Runs the command.
pub fn run(a: &QuantizeArgs) -> anyhow::Result<ExitCode> {
    let format = super::resolve_format(
        &a.format,
        a.codec.block.as_deref(),
        a.codec.rounding.as_deref(),
    )?;
    let method: Method = a.codec.method.parse()?;
    if let Some(csv) = &a.csv {
        if csv == &a.out || csv.starts_with(&a.out) {
            bail!(
                "--csv must lie outside the output folder ({})",
                csv.display()
            );
        }
    }
    let req = QuantizeRequest {
        model: a.model.to_string_lossy().into_owned(),
        format,
        method,
        calib: a.calib.settings(),
        device: a.device.parse()?,
        out: Some(a.out.clone()),
    };
    let csv_created = a.csv.as_deref().map(super::Created::file);
    let rep = super::run_task(a.quiet, super::unit_of, |ctx| quantize::run(&req, ctx))?;
    if let Some(n) = &rep.notice {
        eprintln!("warning: {n}");
    }
    let dest = rep
        .written
        .clone()
        .context("the quantize task wrote no folder")?;
    // The folder is in place; a CSV that cannot be written removes it again (exit 0 means every
    // output can be read back).
    if let Some(csv) = &a.csv {
        if let Err(e) = quantscape::io::write_atomic(csv, csv_text(&rep).as_bytes()) {
            let _ = std::fs::remove_dir_all(&dest);
            return Err(anyhow::Error::from(e).context(format!("writing CSV ({})", csv.display())));
        }
    }
    if let Some(c) = csv_created {
        c.keep();
    }
    if a.json {
        outln!("{}", serde_json::to_string_pretty(&rep)?);
        return Ok(ExitCode::SUCCESS);
    }
    print!("{}", report(&rep));
    outln!(
        "wrote {} ({} quantized tensors; embeddings, norms, biases and LM head kept in the input dtype)",
        dest.display(),
        rep.tensors.len()
    );
    Ok(ExitCode::SUCCESS)
}

fn report(rep: &QuantizeReport) -> String {
    let mut s = String::new();
    let _ = writeln!(s, "format {}  method {}", rep.format, rep.method);
    let _ = writeln!(
        s,
        "{:<48} {:>14} {:>12} {:>9} {:>12} {:>8}",
        "tensor", "shape", "mse", "sqnr_db", "max_abs_err", "bits/w"
    );
    for r in &rep.tensors {
        let shape = format!("{:?}", r.shape);
        let _ = writeln!(
            s,
            "{:<48} {:>14} {:>12.4e} {:>9.2} {:>12.4e} {:>8.4}",
            r.name,
            shape,
            r.stats.mse,
            r.stats.sqnr_db(),
            r.stats.max_abs_err,
            r.bits_per_weight
        );
    }
    let (n, mse, sqnr, bits) = rep.totals();
    let _ = writeln!(
        s,
        "{:<48} {:>14} {:>12.4e} {:>9.2} {:>12} {:>8.4}",
        "all quantized weights", n, mse, sqnr, "", bits
    );
    s
}

fn csv_text(rep: &QuantizeReport) -> String {
    let mut s = String::from("tensor,rows,cols,n_values,mse,sqnr_db,max_abs_err,bits_per_weight\n");
    for r in &rep.tensors {
        let _ = writeln!(
            s,
            "{},{},{},{},{:e},{},{:e},{}",
            r.name,
            r.shape.first().copied().unwrap_or(0),
            r.shape.get(1).copied().unwrap_or(0),
            r.stats.n_values,
            r.stats.mse,
            r.stats.sqnr_db(),
            r.stats.max_abs_err,
            r.bits_per_weight
        );
    }
    s
}
