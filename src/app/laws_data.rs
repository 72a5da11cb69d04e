//! Where the Laws view's points come from: the bundled demo sweep or any results store (one
//! point per configuration of one granularity × low format × high format slice, of one model
//! family (architecture) or all: N, D, achieved Qr, Qb, bits per weight → mean ΔL over its
//! trials), a CSV, or points drawn from the strong law with known parameters (σ = 0.08
//! log-normal noise) when nothing else is there. The unified law has no family term, so a store
//! of several families is fitted one family at a time by default.

use std::path::Path;

use super::session::{FamilyChoice, Source};
pub use crate::laws::data::StoreSlice;
use crate::laws::{grid_rows, synthesize, Dataset, Law, Target, Var};
use crate::search::export::{read_store, ConfigSummary, StoreContents};

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

/// Every slice of a store's configurations, sorted.
pub fn store_slices(summary: &[ConfigSummary]) -> Vec<StoreSlice> {
    let mut v: Vec<_> = summary.iter().map(StoreSlice::of).collect();
    v.sort();
    v.dedup();
    v
}

/// The slice fitted by default: layer × mxint4 × bf16 when present (a format whose ΔL moves
/// with Qb, so the granularity term has something to fit), else layer × mxfp4 × bf16, else the
/// first.
pub fn default_slice(summary: &[ConfigSummary]) -> Option<StoreSlice> {
    let all = store_slices(summary);
    ["mxint4", "mxfp4"]
        .iter()
        .find_map(|low| {
            let want = StoreSlice::new("layer", low, "bf16");
            all.iter().find(|s| **s == want)
        })
        .or(all.first())
        .cloned()
}

/// A configuration's model family: its architecture (`unknown` when the store lacks it).
pub fn family_of(c: &ConfigSummary) -> &str {
    c.architecture.as_deref().unwrap_or("unknown")
}

/// Every model family of a store's configurations, sorted.
pub fn store_families(summary: &[ConfigSummary]) -> Vec<String> {
    let mut v: Vec<String> = summary.iter().map(|c| family_of(c).to_string()).collect();
    v.sort();
    v.dedup();
    v
}

/// The family fitted by default among `families` (the store's, sorted): all (None) when there
/// is one; else the family with the most model sizes in `slice`, ties going to the family of
/// the first model by name (so the order of the sweep's model names decides, not the
/// architecture's spelling).
pub fn default_family(
    summary: &[ConfigSummary],
    families: &[String],
    slice: &StoreSlice,
) -> Option<String> {
    if families.len() < 2 {
        return None;
    }
    let models = |f: &str| {
        summary
            .iter()
            .filter(|c| family_of(c) == f && &StoreSlice::of(c) == slice)
            .map(|c| c.model.as_str())
            .collect::<std::collections::BTreeSet<_>>()
    };
    families
        .iter()
        .map(|f| (f, models(f)))
        .max_by(|(_, a), (_, b)| {
            a.len()
                .cmp(&b.len())
                .then_with(|| b.first().cmp(&a.first()))
        })
        .map(|(f, _)| f.clone())
}

/// What a store selection is called: `layer · mxfp4 · bf16` (`… · LlamaForCausalLM`).
pub fn selection_label(slice: &StoreSlice, family: Option<&str>) -> String {
    match family {
        Some(f) => format!("{slice} · {f}"),
        None => slice.to_string(),
    }
}

/// What the points of a results store measure: a metric and a statistic over trials.
pub type Measure = (crate::search::Metric, crate::search::Statistic);

/// How the data line names a measure (`ΔL, mean over trials`).
pub fn measure_label((metric, stat): Measure) -> String {
    let m = match metric {
        crate::search::Metric::DeltaNll => "ΔL",
        crate::search::Metric::Kl => "KL",
    };
    format!("{m}, {}", stat.label())
}

/// One point per configuration of `slice` and `family` (all when None) of the store at `path`,
/// read exactly as `quantscape fit PATH --where … --metric … --statistic …` reads it (N, D,
/// achieved Qr, Qb, bits per weight → the measure's column, with its SE; the model as the
/// family label).
pub fn store_dataset(
    path: &Path,
    slice: &StoreSlice,
    family: Option<&str>,
    (metric, stat): Measure,
) -> crate::Result<Dataset> {
    // A store without architectures labels its configurations `unknown`: an empty cell.
    let family = family.map(|f| if f == "unknown" { "" } else { f });
    let column = metric.column(stat);
    Dataset::from_path_where(
        path,
        Some(column),
        Target::DeltaLoss,
        &slice.filters(family),
    )
}

/// A results store's file and what was read from it.
pub type OpenedStore = (std::path::PathBuf, StoreContents);

/// Loads the points of `source`: (data, a note saying what they are, what was read from the
/// store when it is a results store). A store is filtered to `slice` and `family` (or their
/// defaults when the store has no such slice or family).
pub fn load_source(
    source: &Source,
    slice: &mut Option<StoreSlice>,
    family: &mut FamilyChoice,
    measure: Measure,
) -> crate::Result<(Dataset, String, Option<OpenedStore>)> {
    let store = match source {
        Source::Demo if demo_store().is_file() => Some(demo_store()),
        Source::Csv(p) if crate::laws::data::is_results_store(std::path::Path::new(p)) => {
            Some(std::path::PathBuf::from(p))
        }
        _ => None,
    };
    if let Some(path) = store {
        let loaded = read_store(&path)?;
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
        let families = store_families(summary);
        let keep = match &*family {
            FamilyChoice::Auto => false,
            FamilyChoice::All => true,
            FamilyChoice::Only(f) => families.contains(f),
        };
        if !keep {
            *family = default_family(summary, &families, &sl)
                .map_or(FamilyChoice::All, FamilyChoice::Only);
        }
        let d = store_dataset(&path, &sl, family.only(), measure)?;
        let what = if matches!(source, Source::Demo) {
            "demo sweep".to_string()
        } else {
            path.display().to_string()
        };
        let note = format!(
            "{what}: {} ({} configurations; {})",
            selection_label(&sl, family.only()),
            d.len(),
            measure_label(measure)
        );
        return Ok((d, note, Some((path, loaded))));
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
