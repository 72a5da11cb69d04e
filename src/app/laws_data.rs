//! Where the Laws view's points come from: the bundled demo sweep or any results store (one
//! point per configuration of one granularity × low format × high format slice: N, D, achieved
//! Qr, Qb, bits per weight → mean ΔL over its trials), a CSV, or points drawn from the strong law
//! with known parameters (σ = 0.08 log-normal noise) when nothing else is there.

use super::session::Source;
use crate::laws::{grid_rows, synthesize, Dataset, Law, Target, Var};
use crate::search::export::ConfigSummary;

/// The bundled demo sweep's results store.
pub fn demo_store() -> std::path::PathBuf {
    std::path::Path::new(env!("CARGO_MANIFEST_DIR")).join("assets/demo/demo.sqlite")
}

/// The synthetic dataset: 6 sizes × 9 ratios × 5 block sizes from the strong law, σ = 0.08.
pub fn synthetic_data() -> Dataset {
    let law = strong();
    let sizes: Vec<f64> = (0..6).map(|i| 2.5e4 * 2.2f64.powi(i)).collect();
    let ratios: Vec<f64> = (1..=9).map(|i| f64::from(i) / 10.0).collect();
    let blocks = [16.0, 32.0, 64.0, 128.0, 256.0];
    let rows = grid_rows(&[(Var::N, &sizes), (Var::Qr, &ratios), (Var::Qb, &blocks)]);
    synthesize(&law, &[0.6, 2.2, 0.35, 8.0, 0.4], rows, 0.08, 7)
        .unwrap_or_else(|_| Dataset::new(Vec::new(), Vec::new()))
}

/// The strong unified law (the first built-in if it were ever renamed).
pub fn strong() -> Law {
    Law::by_id("unified-strong").unwrap_or_else(|| Law::builtins().remove(0))
}

/// The granularity, low format (without its block override) and high format of a configuration.
pub fn slice_of(c: &ConfigSummary) -> (String, String, String) {
    let low = c.low.split(',').next().unwrap_or("").to_string();
    (c.granularity.clone(), low, c.high.clone())
}

/// Every (granularity, low, high) slice of a store's configurations, sorted.
pub fn store_slices(summary: &[ConfigSummary]) -> Vec<(String, String, String)> {
    let mut v: Vec<_> = summary.iter().map(slice_of).collect();
    v.sort();
    v.dedup();
    v
}

/// The slice fitted by default: layer × mxfp4 × bf16 when present, else the first.
pub fn default_slice(summary: &[ConfigSummary]) -> Option<(String, String, String)> {
    let all = store_slices(summary);
    let want = ("layer".to_string(), "mxfp4".to_string(), "bf16".to_string());
    all.iter().find(|s| **s == want).or(all.first()).cloned()
}

/// One point per configuration of `slice` (N, D, achieved Qr, Qb, bits per weight → mean ΔL;
/// the model as the family label).
pub fn store_dataset(summary: &[ConfigSummary], slice: &(String, String, String)) -> Dataset {
    let mut d = Dataset::new(Vec::new(), Vec::new());
    for c in summary.iter().filter(|c| &slice_of(c) == slice) {
        let mut r = crate::laws::EMPTY_ROW;
        r[Var::N.index()] = c.n_params.map_or(f64::NAN, |n| n as f64);
        r[Var::D.index()] = c.train_tokens.map_or(f64::NAN, |t| t as f64);
        r[Var::Qr.index()] = c.qr;
        r[Var::Qb.index()] = c.qb;
        r[Var::Bits.index()] = c.bits_per_weight;
        d.rows.push(r);
        d.y.push(c.delta_loss);
        d.family.push(c.model.clone());
    }
    d.target_name = "delta_loss".into();
    d
}

fn is_store(path: &std::path::Path) -> bool {
    let ext = path.extension().and_then(|e| e.to_str()).unwrap_or("");
    matches!(
        ext.to_ascii_lowercase().as_str(),
        "sqlite" | "db" | "sqlite3"
    )
}

/// Loads the points of `source`: (data, a note saying what they are, what was read from the
/// store when it is a results store). A store is filtered to `slice` (or its default slice).
pub fn load_source(
    source: &Source,
    slice: &mut Option<(String, String, String)>,
) -> crate::Result<(Dataset, String, Option<super::sweep::Loaded>)> {
    let store = match source {
        Source::Demo if demo_store().is_file() => Some(demo_store()),
        Source::Csv(p) if is_store(std::path::Path::new(p)) => Some(std::path::PathBuf::from(p)),
        _ => None,
    };
    if let Some(path) = store {
        let loaded = super::sweep::load_store(&path)?;
        let summary = &loaded.summary;
        let valid = slice
            .as_ref()
            .is_some_and(|s| store_slices(summary).contains(s));
        if !valid {
            *slice = default_slice(summary);
        }
        let Some(sl) = slice.clone() else {
            return Err(crate::Error::Input(format!(
                "{}: no configurations",
                path.display()
            )));
        };
        let d = store_dataset(summary, &sl);
        let what = if matches!(source, Source::Demo) {
            "demo sweep".to_string()
        } else {
            path.display().to_string()
        };
        let note = format!(
            "{what}: {} · {} · {} ({} configurations)",
            sl.0,
            sl.1,
            sl.2,
            d.len()
        );
        return Ok((d, note, Some(loaded)));
    }
    let (d, n) = load_plain(source)?;
    Ok((d, n, None))
}

fn load_plain(source: &Source) -> crate::Result<(Dataset, String)> {
    let synthetic = || {
        let d = synthetic_data();
        let note = format!("synthetic: strong law, σ = 0.08 ({} points)", d.len());
        (d, note)
    };
    match source {
        Source::Synthetic => Ok(synthetic()),
        Source::Demo => Ok(synthetic()),
        Source::Csv(path) => {
            let d = Dataset::from_path(std::path::Path::new(path), None, Target::DeltaLoss)?;
            Ok((d.clone(), format!("{path} ({} points)", d.len())))
        }
    }
}
