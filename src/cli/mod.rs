//! Command-line interface: clap definitions and thin handlers over the library.
//!
//! Every GUI action gets a twin here (DESIGN §1.8). Handlers validate their arguments into
//! library types (`Format`, `Method`, `BlockSize`) before doing any work, so bad input fails
//! fast with one line and exit code 2.

use std::process::ExitCode;

use std::io::Write as _;

use anyhow::Context as _;
use clap::{Parser, Subcommand};
use quantscape::codecs::{BlockSize, Format, Rounding};

/// `println!` that returns the write error (a closed pipe ends the program quietly with exit 0
/// in `main`, instead of the panic `println!` gives).
macro_rules! outln {
    () => {
        $crate::cli::write_stdout(format_args!(""))?
    };
    ($($t:tt)*) => {
        $crate::cli::write_stdout(format_args!($($t)*))?
    };
}

mod analyze;
mod calib;
mod convert;
mod corpus;
mod eval;
mod features;
mod figures;
mod formats;
mod heldout;
mod hessian;
mod info;
mod landscape;
mod laws;
mod pareto;
mod quantize;
mod sweep;
mod train;

/// quantscape: quantize language models with block formats, measure the cost, fit PTQ laws.
#[derive(Parser, Debug)]
#[command(name = "quantscape", version, about, long_about = None)]
pub struct Cli {
    /// What to do; without a subcommand the explorer opens (builds without `gui` print this help).
    #[command(subcommand)]
    pub command: Option<Command>,
    /// Open the explorer on this saved session (`.ron`, File → Save session).
    #[arg(long, value_name = "FILE")]
    pub session: Option<std::path::PathBuf>,
    /// Lift the caps on work sizes (--top-k, --resamples, --windows, trials, --bootstrap,
    /// --grid…); without it a value above its cap is an error that names the cap.
    #[arg(long, global = true)]
    pub allow_large: bool,
}

/// Subcommands.
#[derive(Subcommand, Debug)]
pub enum Command {
    /// Fake-quantize every quantizable weight of a checkpoint into a new checkpoint folder.
    Quantize(quantize::QuantizeArgs),
    /// List every format preset with its bits per weight.
    Formats(formats::FormatsArgs),
    /// Describe a checkpoint: architecture, parameter counts, dtypes, tensors.
    Info(info::InfoArgs),
    /// Measure NLL, ΔL (with a bootstrap CI), KL and top-1 agreement of a quantized model.
    Eval(eval::EvalArgs),
    /// Convert a GGUF checkpoint (llama architecture) into a Hugging Face folder.
    Convert(convert::ConvertArgs),
    /// Build, verify or tokenize the bundled corpus (Austen + KJV).
    Corpus(corpus::CorpusArgs),
    /// Train a model family from a recipe (resumable; exports Hugging Face folders).
    Train(train::TrainArgs),
    /// Run a mixed-precision sweep into a SQLite results store (resumable, --shard i/n).
    Sweep(sweep::SweepArgs),
    /// Merge the result stores of one sweep's shards.
    Merge(sweep::MergeArgs),
    /// Export a results store as CSV (per trial and per configuration).
    Export(sweep::ExportArgs),
    /// Test the papers' takeaways on a results store (held / not held / inconclusive).
    Analyze(analyze::AnalyzeArgs),
    /// Drop models' trials, model rows and features from a results store (e.g. after retraining).
    Forget(sweep::ForgetArgs),
    /// List the built-in scaling laws with their parameters and bounds.
    Laws(laws::LawsArgs),
    /// Fit a scaling law to measured points (CSV) with bootstrap CIs and held-out errors.
    Fit(laws::FitArgs),
    /// Evaluate a law at given N, D, Qr, Qb… (comma lists form a grid).
    Predict(laws::PredictArgs),
    /// Format × block-size table at a target N from the format-aware law: bits per weight,
    /// predicted ΔL with its band, Pareto front.
    Pareto(pareto::ParetoArgs),
    /// The standard figures of a results store as SVG/PNG/CSV (no display needed): ΔL vs Qr,
    /// Qb and N, the trials, the law map, measured vs predicted, the Pareto front, overheads.
    Figures(figures::FiguresArgs),
    /// Loss along the quantization direction and random directions (1-D or 2-D slices).
    Landscape(landscape::LandscapeArgs),
    /// Hessian probes: top eigenvalue, trace (per layer), curvature and ΔL prediction along u.
    Hessian(hessian::HessianArgs),
    /// Measure loss-landscape features of a sweep's models into its results store.
    Features(features::FeaturesArgs),
    /// Evaluate the random-forest PTQ predictor on a results store (held-out models).
    Forest(features::ForestArgs),
}

/// A progress bar counting `unit`, labelled `what` (hidden when `quiet`).
pub(crate) fn bar(quiet: bool, what: &str, unit: &str) -> indicatif::ProgressBar {
    if quiet {
        return indicatif::ProgressBar::hidden();
    }
    let b = indicatif::ProgressBar::new(0);
    if let Ok(s) = indicatif::ProgressStyle::with_template(&format!(
        "{{prefix:>10}} [{{bar:30}}] {{pos}}/{{len}} {unit} {{elapsed}} {{msg}}"
    )) {
        b.set_style(s.progress_chars("=> "));
    }
    b.set_prefix(what.to_string());
    b
}

/// Runs a task on this thread with a progress bar per stage (hidden when `quiet`): the CLI's
/// face of [`quantscape::jobs::JobCtx`].
pub(crate) fn run_task<T>(
    quiet: bool,
    unit_of: fn(&str) -> &'static str,
    work: impl FnOnce(&quantscape::jobs::JobCtx) -> quantscape::Result<T>,
) -> quantscape::Result<T> {
    type Current = Option<(String, indicatif::ProgressBar)>;
    let current: std::sync::Arc<std::sync::Mutex<Current>> = Default::default();
    let seen = current.clone();
    let ctx =
        quantscape::jobs::JobCtx::inline(std::sync::Arc::new(move |stage, done, total, detail| {
            let Ok(mut cur) = seen.lock() else { return };
            if cur.as_ref().is_none_or(|(s, _)| s != stage) {
                if let Some((_, b)) = cur.take() {
                    b.finish_and_clear();
                }
                *cur = Some((stage.to_string(), bar(quiet, stage, unit_of(stage))));
            }
            if let Some((_, b)) = cur.as_ref() {
                b.set_length(total as u64);
                b.set_position(done as u64);
                if let Some(d) = detail {
                    b.set_message(d.to_string());
                }
            }
        }));
    let out = work(&ctx);
    if let Ok(mut cur) = current.lock() {
        if let Some((_, b)) = cur.take() {
            b.finish_and_clear();
        }
    }
    out
}

/// Units of the stages tasks report: calibration counts layers, everything else windows or items.
pub(crate) fn unit_of(stage: &str) -> &'static str {
    match stage {
        "gptq" | "awq" | "hqq" | "rtn" => "layers",
        "quantize" => "tensors",
        "fit" => "fits",
        "trials" => "trials",
        _ => "windows",
    }
}

/// Runs the parsed command line.
pub fn run(cli: Cli) -> anyhow::Result<ExitCode> {
    if cli.session.is_some() && cli.command.is_some() {
        anyhow::bail!("--session opens the explorer; it takes no subcommand");
    }
    quantscape::limits::set_allow_large(cli.allow_large);
    match cli.command {
        Some(Command::Quantize(a)) => quantize::run(&a),
        Some(Command::Formats(a)) => formats::run(&a),
        Some(Command::Info(a)) => info::run(&a),
        Some(Command::Eval(a)) => eval::run(&a),
        Some(Command::Convert(a)) => convert::run(&a),
        Some(Command::Corpus(a)) => corpus::run(&a),
        Some(Command::Train(a)) => train::run(&a),
        Some(Command::Sweep(a)) => sweep::run_sweep(&a),
        Some(Command::Merge(a)) => sweep::run_merge(&a),
        Some(Command::Export(a)) => sweep::run_export(&a),
        Some(Command::Analyze(a)) => analyze::run(&a),
        Some(Command::Forget(a)) => sweep::run_forget(&a),
        Some(Command::Laws(a)) => laws::run_laws(&a),
        Some(Command::Fit(a)) => laws::run_fit(&a),
        Some(Command::Predict(a)) => laws::run_predict(&a),
        Some(Command::Pareto(a)) => pareto::run(&a),
        Some(Command::Figures(a)) => figures::run(&a),
        Some(Command::Landscape(a)) => landscape::run(&a),
        Some(Command::Hessian(a)) => hessian::run(&a),
        Some(Command::Features(a)) => features::run_features(&a),
        Some(Command::Forest(a)) => features::run_forest(&a),
        #[cfg(feature = "gui")]
        None => {
            quantscape::app::run(cli.session)?;
            Ok(ExitCode::SUCCESS)
        }
        #[cfg(not(feature = "gui"))]
        None => {
            <Cli as clap::CommandFactory>::command().print_help()?;
            outln!();
            Ok(ExitCode::SUCCESS)
        }
    }
}

/// How a weight format is applied: the options `quantize` and `eval` share.
#[derive(clap::Args, Debug)]
pub struct CodecArgs {
    /// Block size Qb: a positive integer, `per-channel` or `per-tensor` (default: the format's).
    #[arg(long)]
    pub block: Option<String>,
    /// Method: `rtn`, `hqq`, `gptq` or `awq` (options after a colon: `gptq:act_order=false`).
    #[arg(long, default_value = "rtn")]
    pub method: String,
    /// Element rounding: `even`, `away` or `zero` (default: the format's, ties-to-even).
    #[arg(long)]
    pub rounding: Option<String>,
}

/// Builds a validated format from `--format`, `--block` and `--rounding`.
pub fn resolve_format(
    format: &str,
    block: Option<&str>,
    rounding: Option<&str>,
) -> anyhow::Result<Format> {
    let mut f: Format = format.parse()?;
    if let Some(b) = block {
        let block: BlockSize = b.parse().context("--block")?;
        f = f.with_block(block);
    }
    if let Some(r) = rounding {
        let r = Rounding::from_id(r)
            .with_context(|| format!("--rounding `{r}`: expected even, away or zero"))?;
        f = f.with_rounding(r);
    }
    Ok(f.validate()?)
}

/// Writes one line to stdout, returning the I/O error (see `outln!`).
pub fn write_stdout(args: std::fmt::Arguments<'_>) -> std::io::Result<()> {
    let mut o = std::io::stdout().lock();
    o.write_fmt(args)?;
    o.write_all(b"\n")
}

/// Files a command creates, removed again unless the command [`Created::keep`]s them: a failed
/// command leaves nothing behind. Paths that existed before are never tracked (a resumed store
/// or an extended merge keeps what it had).
pub(crate) struct Created {
    paths: Vec<std::path::PathBuf>,
}

impl Created {
    /// Tracks `path` if it does not exist yet.
    pub(crate) fn file(path: &std::path::Path) -> Self {
        Self {
            paths: (!path.exists())
                .then(|| path.to_path_buf())
                .into_iter()
                .collect(),
        }
    }

    /// Tracks a SQLite database and its `-wal`, `-shm` and `-journal` companions if the
    /// database does not exist yet.
    pub(crate) fn sqlite(path: &std::path::Path) -> Self {
        if path.exists() {
            return Self { paths: Vec::new() };
        }
        let with = |suffix: &str| {
            let mut s = path.as_os_str().to_os_string();
            s.push(suffix);
            std::path::PathBuf::from(s)
        };
        Self {
            paths: vec![
                path.to_path_buf(),
                with("-wal"),
                with("-shm"),
                with("-journal"),
            ],
        }
    }

    /// The command succeeded (or wrote results worth keeping): nothing is removed.
    pub(crate) fn keep(mut self) {
        self.paths.clear();
    }
}

impl Drop for Created {
    fn drop(&mut self) {
        for p in &self.paths {
            let _ = std::fs::remove_file(p);
        }
    }
}
