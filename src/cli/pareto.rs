//! `quantscape pareto`: the format × block-size table of the format-aware law at a target N —
//! bits per weight, ε measured on a reference checkpoint, predicted ΔL with its bootstrap band,
//! and the Pareto front — through [`quantscape::tasks::pareto`], as the Hardware view shows it.

use std::path::PathBuf;
use std::process::ExitCode;

use quantscape::tasks::pareto::{self, ParetoReport, ParetoRequest};

/// Arguments of `pareto`.
#[derive(clap::Args, Debug)]
pub struct ParetoArgs {
    /// A sweep's results store (its ε are measured by `quantscape sweep`).
    pub results: PathBuf,
    /// Target model size N (non-embedding parameters).
    #[arg(long, default_value_t = 7e9)]
    pub n: f64,
    /// Fraction of the target's quantizable weights in the low format.
    #[arg(long, default_value_t = 1.0)]
    pub qr: f64,
    /// Model whose weights ε is measured on: `bundled:NAME`, a folder or `org/name` in the
    /// Hugging Face cache (default: HuggingFaceTB/SmolLM2-135M when cached, else the store's
    /// largest model).
    #[arg(long)]
    pub reference: Option<String>,
    /// The slice fitted (repeatable; default `granularity=layer high=bf16 method=rtn`).
    #[arg(long = "where", value_name = "COLUMN=VALUE")]
    pub filters: Vec<String>,
    /// Candidate formats (comma list of presets).
    #[arg(long, value_delimiter = ',')]
    pub formats: Vec<String>,
    /// Candidate block sizes (comma list).
    #[arg(long, value_delimiter = ',')]
    pub blocks: Vec<usize>,
    /// Bootstrap resamples of the fit (the band).
    #[arg(long, default_value_t = 200)]
    pub bootstrap: usize,
    /// Seed of the bootstrap.
    #[arg(long, default_value_t = 0)]
    pub seed: u64,
    /// Print the report as JSON.
    #[arg(long)]
    pub json: bool,
}

impl ParetoArgs {
    /// The request these flags describe.
    pub fn request(&self) -> anyhow::Result<ParetoRequest> {
        let mut req = ParetoRequest::new(self.results.clone());
        if !self.filters.is_empty() {
            req.filters = super::laws::parse_filters(&self.filters)?;
        }
        req.reference = self.reference.clone();
        if !self.formats.is_empty() {
            req.formats = self.formats.clone();
        }
        if !self.blocks.is_empty() {
            req.blocks = self.blocks.clone();
        }
        req.bootstrap = self.bootstrap;
        req.seed = self.seed;
        req.validate()?;
        Ok(req)
    }
}

/// Builds and prints the table.
pub fn run(a: &ParetoArgs) -> anyhow::Result<ExitCode> {
    let req = a.request()?;
    let report = super::run_task(a.json, unit_of, |ctx| pareto::run(&req, a.n, a.qr, ctx))?;
    if a.json {
        outln!("{}", serde_json::to_string_pretty(&report)?);
    } else {
        print(&report)?;
    }
    Ok(ExitCode::SUCCESS)
}

fn unit_of(stage: &str) -> &'static str {
    match stage {
        "eps" => "matrices",
        _ => "fits",
    }
}

fn print(r: &ParetoReport) -> anyhow::Result<()> {
    outln!("law {}: {}", r.law, r.formula);
    let filters: Vec<String> = r.filters.iter().map(|(c, v)| format!("{c}={v}")).collect();
    outln!(
        "fitted on {} ({}), {} points, formats {}; R² log {:.4}",
        r.results.display(),
        filters.join(" "),
        r.n_points,
        r.fitted_formats.join(", "),
        r.r2_log
    );
    for p in &r.params {
        let ci = match (p.ci_low, p.ci_high) {
            (Some(l), Some(h)) => format!("95% CI [{l:.4}, {h:.4}]"),
            _ => "no CI".into(),
        };
        outln!("  {:<8} {:>11.4}  {ci}", p.name, p.value);
    }
    for h in &r.held_out {
        outln!(
            "  leave-one-{}-out: median |rel err| {:.1} %, p90 {:.1} % ({} points)",
            h.by,
            100.0 * h.median_abs_rel,
            100.0 * h.p90_abs_rel,
            h.n_points
        );
    }
    outln!(
        "ε measured on {}; target N = {:.3e}, Qr = {}",
        r.reference,
        r.n,
        r.qr
    );
    for n in &r.notices {
        outln!("NOTICE {n}");
    }
    outln!(
        "{:<12} {:>5} {:>8} {:>10} {:>12} {:>27} {:>6}",
        "format",
        "Qb",
        "bits/w",
        "ε",
        "ΔL",
        "95% band",
        "front"
    );
    for row in &r.rows {
        let band = row
            .ci
            .map_or("-".into(), |[l, h]| format!("[{l:.3e}, {h:.3e}]"));
        outln!(
            "{:<12} {:>5} {:>8.3} {:>10.3e} {:>12.4e} {:>27} {:>6}{}",
            row.format,
            row.qb,
            row.bits_per_weight,
            row.eps,
            row.delta_loss,
            band,
            if row.pareto { "*" } else { "" },
            if row.eps_outside_fit {
                "  (ε outside fit)"
            } else {
                ""
            }
        );
    }
    Ok(())
}
