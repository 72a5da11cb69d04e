//! Measured points for fitting: a [`Row`] of law variables, a target and a family per point.
//!
//! CSV input: a header row; columns are matched to variables by [`Var::parse`] (so `N`,
//! `n_params`, `Qb`, `block_size`, `bits_per_weight`… all work), unknown columns are ignored.
//! The target column is named by the caller or found by name: for ΔL laws the first of
//! `delta_loss`, `dl`, `delta_l`, `dL`; for loss laws `loss`, `nll`, `L`. A `family` (or `model`)
//! column labels points for leave-one-family-out evaluation. Empty cells are NaN. A malformed
//! number is an error naming the file, the line and the column. [`Dataset::from_path_where`]
//! keeps the rows whose columns hold given values (`granularity=layer`, `low=mxfp4`), so one
//! slice of a results store is fitted rather than every configuration at once.

use std::io::Read;
use std::path::Path;

use super::{Row, Target, Var, EMPTY_ROW};
use crate::{Error, Result};

/// Points to fit.
#[derive(Clone, Debug, Default)]
pub struct Dataset {
    /// Variables per point (NaN where absent).
    pub rows: Vec<Row>,
    /// Target per point (ΔL or loss, nats per token).
    pub y: Vec<f64>,
    /// Family label per point (empty when unknown).
    pub family: Vec<String>,
    /// Low-format label per point, without its block override (`mxfp4`; empty when unknown):
    /// the groups of leave-one-format-out.
    pub format: Vec<String>,
    /// Name of the target column.
    pub target_name: String,
    /// Standard error of each target (from a `<target>_se` column; NaN when unknown).
    pub se: Vec<f64>,
}

const DELTA_NAMES: [&str; 5] = ["delta_loss", "dl", "delta_l", "deltal", "δl"];
const LOSS_NAMES: [&str; 3] = ["loss", "nll", "l"];
const FAMILY_NAMES: [&str; 3] = ["family", "model_family", "model"];
const FORMAT_NAMES: [&str; 3] = ["low", "format", "low_format"];

impl Dataset {
    /// A dataset from rows and targets (family labels empty).
    pub fn new(rows: Vec<Row>, y: Vec<f64>) -> Self {
        let family = vec![String::new(); rows.len()];
        Self {
            se: vec![f64::NAN; rows.len()],
            rows,
            y,
            format: family.clone(),
            family,
            target_name: "y".into(),
        }
    }

    /// Number of points.
    pub fn len(&self) -> usize {
        self.rows.len()
    }

    /// Whether there are no points.
    pub fn is_empty(&self) -> bool {
        self.rows.is_empty()
    }

    /// The points where every one of `vars` is finite (all of them when none is missing).
    pub fn with_vars(&self, vars: &[Var]) -> Self {
        let keep: Vec<usize> = (0..self.rows.len())
            .filter(|&i| vars.iter().all(|v| self.rows[i][v.index()].is_finite()))
            .collect();
        let pick = |v: &[String]| {
            if v.len() == self.rows.len() {
                keep.iter().map(|&i| v[i].clone()).collect()
            } else {
                v.to_vec()
            }
        };
        Self {
            rows: keep.iter().map(|&i| self.rows[i]).collect(),
            y: keep.iter().map(|&i| self.y[i]).collect(),
            family: pick(&self.family),
            format: pick(&self.format),
            target_name: self.target_name.clone(),
            se: if self.se.len() == self.rows.len() {
                keep.iter().map(|&i| self.se[i]).collect()
            } else {
                self.se.clone()
            },
        }
    }

    /// Whether every point has a finite value of `var`.
    pub fn has(&self, var: Var) -> bool {
        !self.rows.is_empty() && self.rows.iter().all(|r| r[var.index()].is_finite())
    }

    /// Reads a CSV file (see the module docs).
    pub fn from_csv_path(path: &Path, target: Option<&str>, kind: Target) -> Result<Self> {
        let file = std::fs::File::open(path).map_err(|e| Error::io("open", path, e))?;
        Self::from_csv_reader(file, target, kind).map_err(|e| match e {
            Error::Input(msg) => Error::Input(format!("{msg} ({})", path.display())),
            other => other,
        })
    }

    /// Reads a sweep's SQLite results store, whatever its file is called: one point per
    /// configuration, as `quantscape export` summarises it (N, D, Qr achieved, Qb, bits per
    /// weight, mean ΔL over trials).
    pub fn from_results_store(path: &Path, target: Option<&str>, kind: Target) -> Result<Self> {
        Self::from_csv_bytes(path, &store_csv(path)?, target, kind, &[])
    }

    /// Reads a CSV file or, by extension ([`is_results_store`]), a results store.
    pub fn from_path(path: &Path, target: Option<&str>, kind: Target) -> Result<Self> {
        Self::from_path_where(path, target, kind, &[])
    }

    /// [`Dataset::from_path`] keeping only the rows where every `(column, value)` of `filters`
    /// matches ([`cell_matches`]). An unknown column, or no row left, is an error naming the
    /// file and the values the column holds.
    pub fn from_path_where(
        path: &Path,
        target: Option<&str>,
        kind: Target,
        filters: &[(String, String)],
    ) -> Result<Self> {
        let bytes = if is_results_store(path) {
            store_csv(path)?
        } else {
            std::fs::read(path).map_err(|e| Error::io("read", path, e))?
        };
        Self::from_csv_bytes(path, &bytes, target, kind, filters)
    }

    /// The rows of CSV `bytes` read from `path` (named in errors) that pass `filters`.
    fn from_csv_bytes(
        path: &Path,
        bytes: &[u8],
        target: Option<&str>,
        kind: Target,
        filters: &[(String, String)],
    ) -> Result<Self> {
        let in_file = |e: Error| match e {
            Error::Input(msg) => Error::Input(format!("{msg} ({})", path.display())),
            other => other,
        };
        let kept = filter_csv(bytes, filters).map_err(in_file)?;
        Self::from_csv_reader(kept.as_slice(), target, kind).map_err(in_file)
    }

    /// Reads CSV from any reader.
    pub fn from_csv_reader<R: Read>(reader: R, target: Option<&str>, kind: Target) -> Result<Self> {
        let (mut rdr, headers) = csv_with_header(reader)?;
        let lower: Vec<String> = headers.iter().map(|h| h.to_lowercase()).collect();
        let find = |names: &[&str]| names.iter().find_map(|n| lower.iter().position(|h| h == n));
        let target_col = match target {
            Some(t) => lower
                .iter()
                .position(|h| *h == t.to_lowercase())
                .ok_or_else(|| {
                    Error::Input(format!(
                        "no target column `{t}` (columns: {})",
                        join(&headers)
                    ))
                })?,
            None => {
                let names: &[&str] = match kind {
                    Target::DeltaLoss => &DELTA_NAMES,
                    Target::Loss => &LOSS_NAMES,
                };
                find(names).ok_or_else(|| {
                    Error::Input(format!(
                        "no target column: expected one of {} (or pass --target); columns: {}",
                        names.join(", "),
                        join(&headers)
                    ))
                })?
            }
        };
        let family_col = find(&FAMILY_NAMES);
        let format_col = find(&FORMAT_NAMES);
        let se_name = format!("{}_se", lower[target_col]);
        let se_col = lower.iter().position(|h| *h == se_name);
        let var_cols: Vec<(usize, Var)> = headers
            .iter()
            .enumerate()
            .filter(|&(i, _)| {
                i != target_col
                    && Some(i) != family_col
                    && Some(i) != format_col
                    && Some(i) != se_col
            })
            .filter_map(|(i, h)| Var::parse(h).map(|v| (i, v)))
            .collect();
        // Two columns naming one variable would let the later one win silently.
        for (k, &(i, v)) in var_cols.iter().enumerate() {
            if let Some(&(j, _)) = var_cols[..k].iter().find(|(_, w)| *w == v) {
                return Err(Error::Input(format!(
                    "columns `{}` and `{}` both name {v}: keep one",
                    headers.get(j).unwrap_or("?"),
                    headers.get(i).unwrap_or("?")
                )));
            }
        }
        let mut out = Dataset {
            target_name: headers.get(target_col).unwrap_or("y").to_string(),
            ..Default::default()
        };
        for (line, rec) in rdr.records().enumerate() {
            let line = line + 2;
            let rec = rec.map_err(|e| Error::Input(format!("CSV line {line}: {e}")))?;
            let num = |col: usize| -> Result<f64> {
                let cell = rec.get(col).unwrap_or("");
                if cell.is_empty() {
                    return Ok(f64::NAN);
                }
                cell.parse::<f64>().map_err(|_| {
                    Error::Input(format!(
                        "CSV line {line}, column {}: `{cell}` is not a number",
                        headers.get(col).unwrap_or("?")
                    ))
                })
            };
            let mut row = EMPTY_ROW;
            for &(col, var) in &var_cols {
                row[var.index()] = num(col)?;
            }
            out.rows.push(row);
            out.y.push(num(target_col)?);
            out.se.push(match se_col {
                Some(c) => num(c)?,
                None => f64::NAN,
            });
            out.family.push(
                family_col
                    .and_then(|c| rec.get(c))
                    .unwrap_or("")
                    .to_string(),
            );
            let format = format_col.and_then(|c| rec.get(c)).unwrap_or("");
            out.format
                .push(format.split(',').next().unwrap_or("").to_string());
        }
        if out.rows.is_empty() {
            return Err(Error::Input("the CSV has a header but no rows".into()));
        }
        Ok(out)
    }

    /// Writes the dataset as CSV (variables present in every row, the target, the family).
    pub fn to_csv(&self) -> String {
        let vars: Vec<Var> = Var::ALL.into_iter().filter(|&v| self.has(v)).collect();
        let mut s: String = vars.iter().map(|v| format!("{v},")).collect();
        s.push_str(&self.target_name);
        s.push_str(",family\n");
        for ((row, y), fam) in self.rows.iter().zip(&self.y).zip(&self.family) {
            for v in &vars {
                s.push_str(&format!("{},", row[v.index()]));
            }
            s.push_str(&format!("{y},{fam}\n"));
        }
        s
    }
}

/// Whether `path` names a results store (`.sqlite`, `.db` or `.sqlite3`, any case) rather
/// than a CSV file.
pub fn is_results_store(path: &Path) -> bool {
    let ext = path.extension().and_then(|e| e.to_str()).unwrap_or("");
    matches!(
        ext.to_ascii_lowercase().as_str(),
        "sqlite" | "db" | "sqlite3"
    )
}

/// A results store's per-configuration summary (`quantscape export`'s columns) as CSV bytes.
fn store_csv(path: &Path) -> Result<Vec<u8>> {
    let summary = crate::search::export::read_store(path)?.summary;
    let csv_err = |e: csv::Error| Error::Input(format!("{}: {e}", path.display()));
    let mut w = csv::Writer::from_writer(Vec::new());
    for row in &summary {
        w.serialize(row).map_err(csv_err)?;
    }
    w.into_inner()
        .map_err(|e| Error::Input(format!("{}: {e}", path.display())))
}

/// A CSV reader (cells trimmed) over `reader` and its header row.
fn csv_with_header<R: Read>(reader: R) -> Result<(csv::Reader<R>, csv::StringRecord)> {
    let mut rdr = csv::ReaderBuilder::new()
        .trim(csv::Trim::All)
        .from_reader(reader);
    let headers = rdr
        .headers()
        .map_err(|e| Error::Input(format!("cannot read the CSV header: {e}")))?
        .clone();
    Ok((rdr, headers))
}

/// Whether a CSV cell matches a `--where` value: equal (ASCII case-insensitive), or a format
/// spec with overrides whose name is the value (`mxfp4,block=32` matches `mxfp4`).
pub fn cell_matches(cell: &str, value: &str) -> bool {
    cell.eq_ignore_ascii_case(value)
        || cell
            .split_once(',')
            .is_some_and(|(name, _)| name.eq_ignore_ascii_case(value))
}

/// The CSV `bytes` with only the rows where every `(column, value)` matches; the header stays.
pub fn filter_csv(bytes: &[u8], filters: &[(String, String)]) -> Result<Vec<u8>> {
    if filters.is_empty() {
        return Ok(bytes.to_vec());
    }
    let (mut rdr, headers) = csv_with_header(bytes)?;
    let cols = filters
        .iter()
        .map(|(col, _)| {
            headers
                .iter()
                .position(|h| h.eq_ignore_ascii_case(col))
                .ok_or_else(|| {
                    Error::Input(format!(
                        "no column `{col}` to filter on (columns: {})",
                        join(&headers)
                    ))
                })
        })
        .collect::<Result<Vec<usize>>>()?;
    let mut w = csv::Writer::from_writer(Vec::new());
    let csv_err = |e: csv::Error| Error::Input(format!("CSV: {e}"));
    w.write_record(&headers).map_err(csv_err)?;
    let mut seen: Vec<std::collections::BTreeSet<String>> = vec![Default::default(); cols.len()];
    let mut kept = 0;
    for rec in rdr.records() {
        let rec = rec.map_err(csv_err)?;
        let mut all = true;
        for (k, (&c, (_, value))) in cols.iter().zip(filters).enumerate() {
            let cell = rec.get(c).unwrap_or("");
            seen[k].insert(cell.split(',').next().unwrap_or("").to_string());
            all &= cell_matches(cell, value);
        }
        if all {
            w.write_record(&rec).map_err(csv_err)?;
            kept += 1;
        }
    }
    if kept == 0 {
        let held: Vec<String> = filters
            .iter()
            .zip(&seen)
            .map(|((col, value), s)| {
                let vals: Vec<&str> = s.iter().map(String::as_str).collect();
                format!("{col}={value} (it holds {})", vals.join(", "))
            })
            .collect();
        return Err(Error::Input(format!(
            "no row matches {}",
            held.join(" and ")
        )));
    }
    w.into_inner()
        .map_err(|e| Error::Input(format!("CSV: {e}")))
}

fn join(headers: &csv::StringRecord) -> String {
    headers.iter().collect::<Vec<_>>().join(", ")
}

/// Every combination of the given variable values (Cartesian product), other variables NaN.
pub fn grid_rows(axes: &[(Var, &[f64])]) -> Vec<Row> {
    let mut rows = vec![EMPTY_ROW];
    for &(var, values) in axes {
        rows = rows
            .into_iter()
            .flat_map(|r| {
                values.iter().map(move |&v| {
                    let mut r = r;
                    r[var.index()] = v;
                    r
                })
            })
            .collect();
    }
    rows
}

/// Synthetic measurements drawn from a law: y = law(p, x)·exp(σ·z), z ~ N(0, 1), seeded.
/// For tests, benchmarks and the explorer's "synthetic data" mode.
pub fn synthesize(
    law: &super::Law,
    p: &[f64],
    rows: Vec<Row>,
    sigma: f64,
    seed: u64,
) -> Result<Dataset> {
    use rand::{Rng as _, SeedableRng as _};
    law.check_params(p)?;
    let mut rng = rand::rngs::StdRng::seed_from_u64(seed);
    let y = rows
        .iter()
        .map(|r| {
            // Box–Muller: one standard normal from two uniforms in (0, 1].
            let u1: f64 = 1.0 - rng.random::<f64>();
            let u2: f64 = rng.random::<f64>();
            let z = (-2.0 * u1.ln()).sqrt() * (std::f64::consts::TAU * u2).cos();
            law.eval(p, r) * (sigma * z).exp()
        })
        .collect();
    Ok(Dataset::new(rows, y))
}

/// One slice of a results store the laws are fitted on: the configurations of one granularity,
/// one low format (without its block override: every Qb of it) and one high format.
#[derive(Clone, Debug, PartialEq, Eq, PartialOrd, Ord, Hash, serde::Serialize)]
pub struct StoreSlice {
    /// `layer`, `block` or `matmul`.
    pub granularity: String,
    /// The low format's name (`mxfp4`).
    pub low: String,
    /// The high format (`bf16`).
    pub high: String,
}

/// How a slice was written: as a struct, or (sessions before the task layer) as a tuple.
#[derive(serde::Deserialize)]
#[serde(untagged)]
enum StoreSliceForm {
    Named {
        granularity: String,
        low: String,
        high: String,
    },
    Tuple(String, String, String),
}

impl<'de> serde::Deserialize<'de> for StoreSlice {
    fn deserialize<D: serde::Deserializer<'de>>(d: D) -> std::result::Result<Self, D::Error> {
        Ok(match StoreSliceForm::deserialize(d)? {
            StoreSliceForm::Named {
                granularity,
                low,
                high,
            }
            | StoreSliceForm::Tuple(granularity, low, high) => Self {
                granularity,
                low,
                high,
            },
        })
    }
}

impl StoreSlice {
    /// A slice from its three parts.
    pub fn new(granularity: &str, low: &str, high: &str) -> Self {
        Self {
            granularity: granularity.into(),
            low: low.into(),
            high: high.into(),
        }
    }

    /// The slice a configuration belongs to.
    pub fn of(c: &crate::search::export::ConfigSummary) -> Self {
        let low = c.low.split(',').next().unwrap_or("");
        Self::new(&c.granularity, low, &c.high)
    }

    /// The `--where` filters selecting this slice of one model family (its architecture; all
    /// families when None) from a store's summary: what `fit --where …` is given.
    pub fn filters(&self, family: Option<&str>) -> Vec<(String, String)> {
        let mut f = vec![
            ("granularity".to_string(), self.granularity.clone()),
            ("low".to_string(), self.low.clone()),
            ("high".to_string(), self.high.clone()),
        ];
        if let Some(a) = family {
            f.push(("architecture".to_string(), a.to_string()));
        }
        f
    }
}

impl std::fmt::Display for StoreSlice {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(f, "{} · {} · {}", self.granularity, self.low, self.high)
    }
}
