//! `quantscape train`: train every (size, budget) run of a family recipe that has no export yet,
//! resuming interrupted runs from their last checkpoint.

use std::path::PathBuf;
use std::process::ExitCode;

use anyhow::Context as _;
use indicatif::{ProgressBar, ProgressStyle};
use quantscape::eval::corpus;
use quantscape::train::recipe::{tokens_label, FamilyRecipe};
use quantscape::train::{Data, Run};

/// Arguments of `train`.
#[derive(clap::Args, Debug)]
pub struct TrainArgs {
    /// Family recipe (RON), e.g. assets/recipes/qs-llama.ron.
    #[arg(long)]
    pub recipe: PathBuf,
    /// Only these sizes (comma list of names; default: all).
    #[arg(long, value_delimiter = ',')]
    pub size: Vec<String>,
    /// Only these budgets in tokens (comma list; default: all).
    #[arg(long, value_delimiter = ',')]
    pub budget: Vec<u64>,
    /// Working folder for resumable state (one sub-folder per run).
    #[arg(long, default_value = "runs")]
    pub work: PathBuf,
    /// Where finished runs are exported (one Hugging Face folder per run).
    #[arg(long, default_value = "assets/models")]
    pub out: PathBuf,
    /// Corpus folder.
    #[arg(long, default_value_os_t = corpus::bundled_dir())]
    pub corpus: PathBuf,
    /// Folder holding tokenizer.json.
    #[arg(long, default_value = "assets/tokenizer")]
    pub tokenizer: PathBuf,
    /// Stop each run after this many steps of this invocation (checkpointed; for measuring
    /// throughput or training in slices).
    #[arg(long)]
    pub max_steps: Option<u64>,
    /// Print the plan (runs, N, steps) and exit.
    #[arg(long)]
    pub plan: bool,
    /// Print the trained family as a table (N, D, losses) with the L(N) fit per budget, and exit.
    #[arg(long)]
    pub report: bool,
    /// No progress bar.
    #[arg(long)]
    pub quiet: bool,
}

/// Runs `train`.
pub fn run(a: &TrainArgs) -> anyhow::Result<ExitCode> {
    let recipe = FamilyRecipe::load(&a.recipe)?;
    if a.report {
        return report(&recipe, &a.out);
    }
    let sizes: Vec<_> = recipe
        .sizes
        .iter()
        .filter(|s| a.size.is_empty() || a.size.contains(&s.name))
        .collect();
    let budgets: Vec<u64> = recipe
        .budgets_tokens
        .iter()
        .copied()
        .filter(|b| a.budget.is_empty() || a.budget.contains(b))
        .collect();
    if sizes.is_empty() || budgets.is_empty() {
        anyhow::bail!("no run matches --size/--budget in {}", a.recipe.display());
    }
    let runs: Vec<Run<'_>> = sizes
        .iter()
        .flat_map(|s| budgets.iter().map(move |b| (*s, *b)))
        .map(|(size, budget_tokens)| {
            let name = recipe.run_name(size, budget_tokens);
            Run {
                recipe: &recipe,
                size,
                budget_tokens,
                work_dir: a.work.join(&name),
                out_dir: a.out.join(&name),
                tokenizer_dir: a.tokenizer.clone(),
            }
        })
        .collect();
    if a.plan {
        return print_plan(&recipe, &runs);
    }
    let data = Data::prepare(&a.corpus, &a.tokenizer, recipe.context, recipe.eval_windows)
        .context("preparing the training data")?;
    for r in runs.iter().filter(|r| !r.is_done()) {
        let bar = if a.quiet {
            ProgressBar::hidden()
        } else {
            ProgressBar::new(recipe.steps_for(r.budget_tokens))
        };
        bar.set_style(
            ProgressStyle::with_template(
                "{prefix:<22} [{bar:25}] {pos}/{len} {msg} ({elapsed}, eta {eta})",
            )
            .unwrap_or_else(|_| ProgressStyle::default_bar())
            .progress_chars("=> "),
        );
        bar.set_prefix(r.name());
        let mut this_call = 0u64;
        let mut last_eval = String::new();
        let result = r.train(&data, &mut |p| {
            bar.set_position(p.step);
            if let Some(probes) = &p.probes {
                last_eval = probes
                    .iter()
                    .map(|(n, v)| format!("{n} {v:.3}"))
                    .collect::<Vec<_>>()
                    .join(", ");
            }
            bar.set_message(format!(
                "loss {:.3} · {:.0} tok/s · {last_eval}",
                p.loss, p.tokens_per_sec
            ));
            this_call += 1;
            a.max_steps.is_none_or(|m| this_call < m)
        });
        bar.finish_and_clear();
        match result {
            Ok(rep) => {
                let losses: Vec<String> = rep
                    .final_losses
                    .iter()
                    .map(|(n, v)| format!("{n} {v:.4}"))
                    .collect();
                outln!(
                    "{}: N = {} ({} total), {} steps, {:.0} s; {}",
                    rep.run,
                    rep.n_params_non_embedding,
                    rep.n_params_total,
                    rep.steps,
                    rep.elapsed_secs,
                    losses.join(", ")
                );
            }
            Err(quantscape::Error::Cancelled) => {
                outln!(
                    "{}: stopped after {this_call} steps (checkpoint saved in {})",
                    r.name(),
                    r.work_dir.display()
                );
            }
            Err(e) => return Err(e).with_context(|| format!("training {}", r.name())),
        }
    }
    Ok(ExitCode::SUCCESS)
}

/// `--plan`: every run with its shape, budget, steps and status.
fn print_plan(recipe: &FamilyRecipe, runs: &[Run<'_>]) -> anyhow::Result<ExitCode> {
    outln!(
        "{:<24} {:>6} {:>7} {:>8} {:>8}  status",
        "run",
        "d",
        "layers",
        "tokens",
        "steps"
    );
    for r in runs {
        let status = if r.is_done() {
            "done"
        } else if r.work_dir.join("ckpt").exists() {
            "partial"
        } else {
            "todo"
        };
        outln!(
            "{:<24} {:>6} {:>7} {:>8} {:>8}  {status}",
            r.name(),
            r.size.d_model,
            r.size.n_layers,
            tokens_label(r.budget_tokens),
            recipe.steps_for(r.budget_tokens)
        );
    }
    Ok(ExitCode::SUCCESS)
}

/// `--report`: the family table (markdown) and the L(N) fits.
fn report(recipe: &FamilyRecipe, out: &std::path::Path) -> anyhow::Result<ExitCode> {
    use quantscape::train::report::{family_report, LOSS_LAW};
    let r = family_report(recipe, out)?;
    outln!("| run | N | D | train | eval Austen | eval KJV | steps | wall time |");
    outln!("|---|---|---|---|---|---|---|---|");
    let loss = |run: &quantscape::train::RunReport, s: &str| {
        run.final_loss(s)
            .map_or("-".to_string(), |v| format!("{v:.3}"))
    };
    for run in &r.runs {
        outln!(
            "| {} | {} | {} | {} | {} | {} | {} | {:.0} min |",
            run.run,
            run.n_params_non_embedding,
            tokens_label(run.budget_tokens),
            loss(run, "train"),
            loss(run, "eval_austen"),
            loss(run, "eval_kjv"),
            run.steps,
            run.elapsed_secs / 60.0
        );
    }
    if !r.stale.is_empty() {
        outln!(
            "\nstale (trained with another size spec or recipe settings than these; retrain): {}",
            r.stale.join(", ")
        );
    }
    if !r.missing.is_empty() {
        outln!("\nnot trained yet: {}", r.missing.join(", "));
    }
    outln!("\nL(N) = {LOSS_LAW} on the final eval_austen losses, per budget:");
    outln!("| D | runs | E | A | α | R² | falls with N |");
    outln!("|---|---|---|---|---|---|---|");
    for f in &r.fits {
        outln!(
            "| {} | {} | {:.3} | {:.3} | {:.3} | {:.3} | {} |",
            tokens_label(f.budget_tokens),
            f.n_runs,
            f.e,
            f.a,
            f.alpha,
            f.r2,
            if f.monotone { "yes" } else { "no" }
        );
    }
    Ok(ExitCode::SUCCESS)
}
