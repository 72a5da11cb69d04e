//! Argument groups shared by the commands that evaluate a checkpoint on held-out windows
//! (`landscape`, `hessian`, `features`): the text and its windows, and the site restriction.

use quantscape::landscape::SiteFilter;

/// Held-out text and the fixed windows drawn from it.
#[derive(clap::Args, Debug)]
pub struct HeldOutArgs {
    /// Held-out text: a bundled split name or a file.
    #[arg(long, default_value = "eval_austen")]
    pub data: String,
    /// Windows (evaluated as one batch).
    #[arg(long, default_value_t = 16)]
    pub windows: usize,
    /// Tokens per window.
    #[arg(long, default_value_t = 128)]
    pub ctx: usize,
    /// Seed of the windows (and of the random directions or probe vectors).
    #[arg(long, default_value_t = 0)]
    pub seed: u64,
}

/// Restriction to some transformer blocks and tensor kinds.
#[derive(clap::Args, Debug)]
pub struct SitesArgs {
    /// Only the weights of these transformer blocks (`0,2-3`).
    #[arg(long)]
    pub layers: Option<String>,
    /// Only these tensor kinds (`q_proj,down_proj`, or the groups `attention`, `mlp`).
    #[arg(long)]
    pub kinds: Option<String>,
}

impl SitesArgs {
    /// The parsed filter (checked against a model later).
    pub fn filter(&self) -> quantscape::Result<SiteFilter> {
        SiteFilter::parse(self.layers.as_deref(), self.kinds.as_deref())
    }
}
