//! `quantscape info`: what a checkpoint is — architecture, sizes, parameter counts (N without
//! embeddings, and total), stored dtypes, and every tensor with whether it is quantizable.

use std::collections::BTreeMap;
use std::process::ExitCode;

use quantscape::model::checkpoint::Checkpoint;
use quantscape::model::sites::{quantizable, Layout};
use quantscape::model::{hub, Transformer};

/// Arguments of `info`.
#[derive(clap::Args, Debug)]
pub struct InfoArgs {
    /// Model folder, `org/name` in the local Hugging Face cache, or a llama `.gguf` file.
    #[arg(long)]
    pub model: String,
    /// Print JSON instead of tables.
    #[arg(long)]
    pub json: bool,
}

/// Runs the command.
pub fn run(a: &InfoArgs) -> anyhow::Result<ExitCode> {
    let dir = hub::resolve(&a.model)?;
    let model = Transformer::load(&dir)?;
    let ck = Checkpoint::open(&dir)?;
    let c = &model.config;
    let mut dtypes: BTreeMap<String, usize> = BTreeMap::new();
    for e in ck.tensors.values() {
        *dtypes.entry(e.dtype.name()).or_default() += e.shape.iter().product::<usize>();
    }
    let quant_params: usize = model.linears.iter().map(|l| l.n_params()).sum();
    if a.json {
        let tensors: Vec<_> = ck
            .tensors
            .iter()
            .map(|(n, e)| {
                let q = quantizable(&c.model_type, n, &e.shape);
                serde_json::json!({"name": n, "shape": e.shape, "dtype": e.dtype.name(),
                    "quantizable": q.is_some(), "layout": q.map(|l| format!("{l:?}"))})
            })
            .collect();
        let v = serde_json::json!({
            "path": dir, "architecture": c.architecture, "model_type": c.model_type,
            "vocab_size": c.vocab_size, "hidden_size": c.hidden_size, "n_layers": c.n_layers,
            "n_heads": c.n_heads, "n_kv_heads": c.n_kv_heads, "head_dim": c.head_dim,
            "intermediate_size": c.intermediate_size, "max_positions": c.max_positions,
            "n_params_total": model.n_params_total, "n_params_non_embedding": model.n_params_non_embedding,
            "n_params_quantizable": quant_params, "n_linear_sites": model.linears.len(),
            "n_matmul_sites": model.matmuls.len(), "dtypes": dtypes, "tensors": tensors,
        });
        outln!("{}", serde_json::to_string_pretty(&v)?);
        return Ok(ExitCode::SUCCESS);
    }
    outln!("{}  ({})", c.architecture, dir.display());
    outln!(
        "  layers {}  d_model {}  heads {} (kv {}) × {}  mlp {}  vocab {}  max context {}",
        c.n_layers,
        c.hidden_size,
        c.n_heads,
        c.n_kv_heads,
        c.head_dim,
        c.intermediate_size,
        c.vocab_size,
        c.max_positions
    );
    outln!(
        "  parameters: N (non-embedding) {}  total {}  quantizable {} in {} linear sites ({} matmul sites)",
        human(model.n_params_non_embedding),
        human(model.n_params_total),
        human(quant_params),
        model.linears.len(),
        model.matmuls.len()
    );
    let d: Vec<String> = dtypes
        .iter()
        .map(|(k, v)| format!("{k} {}", human(*v)))
        .collect();
    outln!("  stored dtypes: {}", d.join(", "));
    outln!();
    outln!(
        "{:<56} {:>16} {:>5}  quantizable",
        "tensor",
        "shape",
        "dtype"
    );
    for (n, e) in &ck.tensors {
        let q = match quantizable(&c.model_type, n, &e.shape) {
            Some(Layout::OutIn) => "yes",
            Some(Layout::InOut) => "yes (Conv1D, K = rows)",
            None => "",
        };
        outln!(
            "{n:<56} {:>16} {:>5}  {q}",
            format!("{:?}", e.shape),
            e.dtype.name()
        );
    }
    Ok(ExitCode::SUCCESS)
}

/// 1234567 → "1.23M".
pub fn human(n: usize) -> String {
    let x = n as f64;
    match n {
        0..=9_999 => n.to_string(),
        10_000..=999_999 => format!("{:.1}K", x / 1e3),
        1_000_000..=999_999_999 => format!("{:.2}M", x / 1e6),
        _ => format!("{:.2}B", x / 1e9),
    }
}
