//! `quantscape analyze RESULTS.sqlite`: the papers' takeaways tested on a results store (see
//! `quantscape::search::analysis`), as a Markdown table (`--json` for the whole analysis).

use std::path::PathBuf;
use std::process::ExitCode;

use anyhow::Context as _;
use quantscape::search::analysis::analyze;
use quantscape::search::export::read_store;
use quantscape::search::Metric;

/// Arguments of `analyze`.
#[derive(clap::Args, Debug)]
pub struct AnalyzeArgs {
    /// Results database.
    pub results: PathBuf,
    /// `delta_nll` (ΔL) or `kl` (KL(base, quantized)).
    #[arg(long, default_value = "delta_nll")]
    pub metric: String,
    /// Keep only the trials whose COLUMN (granularity, low, high, method, qb, model) holds
    /// VALUE (repeatable, all must hold; a format matches with or without its block override),
    /// e.g. `--where low=mxint4`.
    #[arg(long = "where", value_name = "COLUMN=VALUE")]
    pub filters: Vec<String>,
    /// Print JSON.
    #[arg(long)]
    pub json: bool,
}

/// The trial field a `--where` column names.
fn field<'t>(t: &'t quantscape::search::TrialRow, column: &str) -> anyhow::Result<&'t str> {
    Ok(match column {
        "granularity" => &t.granularity,
        "low" => &t.low,
        "high" => &t.high,
        "method" => &t.method,
        "qb" => &t.qb,
        "model" => &t.model,
        other => {
            anyhow::bail!("--where {other}: expected granularity, low, high, method, qb or model")
        }
    })
}

/// Runs `analyze`.
pub fn run(a: &AnalyzeArgs) -> anyhow::Result<ExitCode> {
    let metric: Metric = a.metric.parse()?;
    let mut c =
        read_store(&a.results).with_context(|| format!("reading {}", a.results.display()))?;
    let filters = super::laws::parse_filters(&a.filters)?;
    for (col, _) in &filters {
        if let Some(t) = c.trials.first() {
            field(t, col)?;
        }
    }
    c.trials.retain(|t| {
        filters.iter().all(|(col, v)| {
            field(t, col).is_ok_and(|cell| quantscape::laws::data::cell_matches(cell, v))
        })
    });
    if c.trials.is_empty() {
        anyhow::bail!("{}: no trial matches the filters", a.results.display());
    }
    let r = analyze(&c, metric);
    if a.json {
        outln!("{}", serde_json::to_string_pretty(&r)?);
        return Ok(ExitCode::SUCCESS);
    }
    if !a.filters.is_empty() {
        outln!("filters: {}", a.filters.join(", "));
    }
    outln!(
        "{}: {} trials, {} configurations, {}–{} scored tokens per trial, median SE of a configuration mean {:.2e} ({}); p < {} two-sided",
        a.results.display(),
        r.n_trials,
        r.n_configurations,
        r.tokens_per_trial[0],
        r.tokens_per_trial[1],
        r.median_config_se,
        r.metric,
        quantscape::search::analysis::ALPHA
    );
    outln!();
    outln!("| | claim | verdict | groups | agree | agree, p < 0.05 | against, p < 0.05 | test |");
    outln!("|---|---|---|---|---|---|---|---|");
    for t in &r.takeaways {
        outln!(
            "| {} | {} | {} | {} | {} | {} | {} | {} |",
            t.id,
            t.claim,
            t.verdict,
            t.groups,
            t.agree,
            t.agree_significant,
            t.against_significant,
            t.test
        );
    }
    Ok(ExitCode::SUCCESS)
}
