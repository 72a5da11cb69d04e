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
use crate::search::export::{read_store, StoreContents};

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

pub use crate::figures::laws::{
    default_family, default_slice, family_of, selection_label, store_families, store_slices,
};

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
