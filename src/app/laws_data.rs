//! Where the Laws view's points come from: the bundled demo sweep or any results store (one
//! point per configuration of one granularity × low format × high format slice, of one model
//! family (architecture) or all: N, D, achieved Qr, Qb, bits per weight → mean ΔL over its
//! trials), a CSV, or points drawn from the strong law with known parameters (σ = 0.08
//! log-normal noise) when nothing else is there. The unified law has no family term, so a store
//! of several families is fitted one family at a time by default.

use super::session::{FamilyChoice, Source};
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
    slice: &(String, String, String),
) -> Option<String> {
    if families.len() < 2 {
        return None;
    }
    let models = |f: &str| {
        summary
            .iter()
            .filter(|c| family_of(c) == f && &slice_of(c) == slice)
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
pub fn selection_label(slice: &(String, String, String), family: Option<&str>) -> String {
    let base = format!("{} · {} · {}", slice.0, slice.1, slice.2);
    match family {
        Some(f) => format!("{base} · {f}"),
        None => base,
    }
}

/// One point per configuration of `slice` and `family` (all when None) (N, D, achieved Qr, Qb,
/// bits per weight → mean ΔL; the model as the family label).
pub fn store_dataset(
    summary: &[ConfigSummary],
    slice: &(String, String, String),
    family: Option<&str>,
) -> Dataset {
    let mut d = Dataset::new(Vec::new(), Vec::new());
    let chosen =
        |c: &&ConfigSummary| &slice_of(c) == slice && family.is_none_or(|f| family_of(c) == f);
    for c in summary.iter().filter(chosen) {
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

/// Loads the points of `source`: (data, a note saying what they are, what was read from the
/// store when it is a results store). A store is filtered to `slice` and `family` (or their
/// defaults when the store has no such slice or family).
pub fn load_source(
    source: &Source,
    slice: &mut Option<(String, String, String)>,
    family: &mut FamilyChoice,
) -> crate::Result<(Dataset, String, Option<super::sweep::Loaded>)> {
    let store = match source {
        Source::Demo if demo_store().is_file() => Some(demo_store()),
        Source::Csv(p) if crate::laws::data::is_results_store(std::path::Path::new(p)) => {
            Some(std::path::PathBuf::from(p))
        }
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
        let d = store_dataset(summary, &sl, family.only());
        let what = if matches!(source, Source::Demo) {
            "demo sweep".to_string()
        } else {
            path.display().to_string()
        };
        let note = format!(
            "{what}: {} ({} configurations)",
            selection_label(&sl, family.only()),
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
