//! The results store: one SQLite database per sweep (DESIGN §5).
//!
//! WAL journal, `synchronous = FULL`, one transaction per finished trial, primary key
//! (configuration key, trial seed): a rerun skips finished trials, and killing the process at
//! any instant loses at most the trial in flight, never corrupting or duplicating a row. The
//! canonical spec (and its hash), the schema version (`PRAGMA user_version`), the quantscape
//! version, git revision and machine are stored in `meta`; a file written for another spec, or
//! by a newer schema, is refused before anything is written.
//!
//! Tables: `meta(key, value)`, `models(model, …, nll_base)` (one row per model evaluated),
//! `trials(config_key, trial_seed, …)` (one row per finished trial). [`Store::merge_from`]
//! copies another store of the same spec with `INSERT OR IGNORE` (idempotent) and refuses a
//! model whose base NLL differs from this store's (another checkpoint under the same name);
//! [`Store::forget_model`] drops one model's rows so that a retrained model can be swept again.

use std::collections::{BTreeMap, HashSet};
use std::path::{Path, PathBuf};

use rusqlite::{params, Connection, OptionalExtension};
use serde::Serialize;

use super::spec::{fnv1a, SweepSpec};
use crate::error::{Error, Result};

/// Schema version written by this build.
pub const SCHEMA_VERSION: i64 = 2;

/// Schema 1 → 2: each trial's standard errors and per-window ΔL. Rows of schema 1 get the SE
/// of ΔL from their 95 % bootstrap interval, (hi − lo)/3.92, and no KL SE or windows.
const MIGRATE_1_TO_2: &str = "
ALTER TABLE trials ADD COLUMN delta_nll_se REAL;
ALTER TABLE trials ADD COLUMN kl_se REAL;
ALTER TABLE trials ADD COLUMN window_delta BLOB;
UPDATE trials SET delta_nll_se = (ci_hi - ci_lo) / 3.92 WHERE delta_nll_se IS NULL;
INSERT OR REPLACE INTO meta (key, value) VALUES ('schema', '2');
INSERT OR REPLACE INTO meta (key, value) VALUES ('migrated_from_schema_1',
  'delta_nll_se of earlier trials = (ci_hi - ci_lo) / 3.92 from their bootstrap interval; no kl_se, no window_delta');
PRAGMA user_version = 2;
";

const SCHEMA: &str = "
CREATE TABLE IF NOT EXISTS meta (key TEXT PRIMARY KEY, value TEXT NOT NULL);
CREATE TABLE IF NOT EXISTS models (
  model TEXT PRIMARY KEY, path TEXT NOT NULL, architecture TEXT NOT NULL,
  n_params_non_embedding INTEGER NOT NULL, n_params_total INTEGER NOT NULL,
  train_tokens INTEGER, nll_base REAL NOT NULL, n_windows INTEGER NOT NULL, ctx INTEGER NOT NULL
);
CREATE TABLE IF NOT EXISTS trials (
  config_key TEXT NOT NULL, trial_seed INTEGER NOT NULL, trial_index INTEGER NOT NULL,
  model TEXT NOT NULL, granularity TEXT NOT NULL, low TEXT NOT NULL, high TEXT NOT NULL,
  method TEXT NOT NULL, qb TEXT NOT NULL, qr_target REAL NOT NULL, qr_achieved REAL NOT NULL,
  qr_weighting TEXT NOT NULL, bits_per_weight REAL NOT NULL, nll_base REAL NOT NULL,
  nll REAL NOT NULL, delta_nll REAL NOT NULL, ci_lo REAL NOT NULL, ci_hi REAL NOT NULL,
  kl_mean REAL NOT NULL, top1 REAL NOT NULL, n_tokens INTEGER NOT NULL, seconds REAL NOT NULL,
  assignment TEXT NOT NULL, delta_nll_se REAL, kl_se REAL, window_delta BLOB,
  PRIMARY KEY (config_key, trial_seed)
);
";

/// One finished trial.
#[derive(Clone, Debug, PartialEq, Serialize)]
pub struct TrialRow {
    /// Configuration key.
    pub config_key: String,
    /// Trial seed (stored as the same 64 bits, signed).
    pub trial_seed: u64,
    /// Trial index within the configuration.
    pub trial_index: usize,
    /// Model (spec string).
    pub model: String,
    /// Granularity id.
    pub granularity: String,
    /// Low format.
    pub low: String,
    /// High format.
    pub high: String,
    /// Method.
    pub method: String,
    /// Qb.
    pub qb: String,
    /// Target Qr.
    pub qr_target: f64,
    /// Achieved Qr.
    pub qr_achieved: f64,
    /// What Qr weighs (`parameters`, `MACs per token`).
    pub qr_weighting: String,
    /// Parameter-weighted bits per quantized weight.
    pub bits_per_weight: f64,
    /// Base NLL (nats/token).
    pub nll_base: f64,
    /// Quantized NLL.
    pub nll: f64,
    /// ΔL.
    pub delta_nll: f64,
    /// 95% CI of ΔL (paired bootstrap over windows).
    pub ci_lo: f64,
    /// Upper end of the CI.
    pub ci_hi: f64,
    /// Mean KL(base‖quant) per token.
    pub kl_mean: f64,
    /// Top-1 agreement with the base model.
    pub top1: f64,
    /// Scored tokens.
    pub n_tokens: usize,
    /// Wall time of the trial.
    pub seconds: f64,
    /// Low/high per site (`0`/`1`), in site order.
    pub assignment: String,
    /// Standard error of ΔL over windows (NaN when not measured).
    pub delta_nll_se: f64,
    /// Standard error of the mean KL over windows (NaN when not measured).
    pub kl_se: f64,
    /// Mean ΔL per window, in window order (empty for trials of schema 1): paired comparisons
    /// between the configurations of one model, which share windows.
    #[serde(skip)]
    pub window_delta: Vec<f32>,
}

/// One model evaluated by the sweep.
#[derive(Clone, Debug, PartialEq, Serialize)]
pub struct ModelRow {
    /// Model (spec string).
    pub model: String,
    /// Resolved folder.
    pub path: String,
    /// `architectures[0]`.
    pub architecture: String,
    /// N.
    pub n_params_non_embedding: usize,
    /// Total parameters.
    pub n_params_total: usize,
    /// Training tokens D, when the folder says (train.json).
    pub train_tokens: Option<u64>,
    /// Base NLL on the sweep's windows.
    pub nll_base: f64,
    /// Windows.
    pub n_windows: usize,
    /// Tokens per window.
    pub ctx: usize,
}

/// The landscape-features table (created on first write; stores from before it lack it).
const FEATURES_TABLE: &str = "
CREATE TABLE IF NOT EXISTS features (
  model TEXT NOT NULL, feature TEXT NOT NULL, direction TEXT NOT NULL, value REAL NOT NULL,
  settings TEXT NOT NULL,
  PRIMARY KEY (model, feature, direction)
);
";

/// The feature holding a low format's measured SQNR (dB) on a model's quantizable weights,
/// direction `low|method` (ε = 10^(−SQNR/10) for the format-aware laws).
pub const SQNR_FEATURE: &str = "rtn_sqnr_db";

/// One landscape feature of a model (`quantscape features`): `direction` is empty for features
/// of the model alone, or the key of a quantization configuration (`LOW|METHOD`, the canonical
/// low format with its Qb and the method spelling) for features along its direction.
#[derive(Clone, Debug, PartialEq, Serialize)]
pub struct FeatureRow {
    /// Model (spec string, as in `models`).
    pub model: String,
    /// Feature name (`sharpness`, `flatness`, `top_eigenvalue`, `trace`, `curvature_u`, …).
    pub feature: String,
    /// Direction key, or empty.
    pub direction: String,
    /// Value.
    pub value: f64,
    /// JSON of the measurement settings.
    pub settings: String,
}

/// An open results database.
pub struct Store {
    conn: Connection,
    path: PathBuf,
}

fn db(path: &Path, e: rusqlite::Error) -> Error {
    Error::checkpoint(path, format!("results database: {e}"))
}

mod integrity;

impl Store {
    /// Opens or creates the store for `spec` at `path`. `info` (git revision, machine, version)
    /// is recorded when the file is created.
    pub fn open(path: &Path, spec: &SweepSpec, info: &BTreeMap<String, String>) -> Result<Self> {
        let existed = path.exists();
        let conn = Connection::open(path).map_err(|e| db(path, e))?;
        let s = Self {
            conn,
            path: path.to_path_buf(),
        };
        let version: i64 = s
            .conn
            .query_row("PRAGMA user_version", [], |r| r.get(0))
            .map_err(|e| db(path, e))?;
        if version > SCHEMA_VERSION {
            return Err(Error::checkpoint(
                path,
                format!("results written by a newer quantscape (schema {version}, this build reads ≤ {SCHEMA_VERSION})"),
            ));
        }
        if existed && version == 0 {
            let tables: i64 = s
                .conn
                .query_row("SELECT count(*) FROM sqlite_master", [], |r| r.get(0))
                .map_err(|e| db(path, e))?;
            if tables > 0 {
                return Err(Error::checkpoint(path, "not a quantscape results database"));
            }
        }
        let hash = format!("{:016x}", fnv1a(spec.canonical().as_bytes()));
        if version >= 1 {
            let stored: Option<String> = s
                .conn
                .query_row("SELECT value FROM meta WHERE key = 'spec_hash'", [], |r| {
                    r.get(0)
                })
                .optional()
                .map_err(|e| db(path, e))?;
            if stored.as_deref() != Some(hash.as_str()) {
                return Err(Error::checkpoint(
                    path,
                    "these results belong to another sweep spec (use a new --out, or the spec that wrote them)",
                ));
            }
        }
        s.conn
            .execute_batch("PRAGMA journal_mode = WAL; PRAGMA synchronous = FULL;")
            .map_err(|e| db(path, e))?;
        if version == 1 {
            let tx = s.conn.unchecked_transaction().map_err(|e| db(path, e))?;
            tx.execute_batch(MIGRATE_1_TO_2).map_err(|e| {
                Error::checkpoint(
                    path,
                    format!("upgrading the results database (schema 1 → 2): {e}"),
                )
            })?;
            tx.commit().map_err(|e| db(path, e))?;
        }
        if version == 0 {
            let tx = s.conn.unchecked_transaction().map_err(|e| db(path, e))?;
            tx.execute_batch(SCHEMA).map_err(|e| db(path, e))?;
            let mut meta = info.clone();
            meta.insert("spec".into(), spec.canonical());
            meta.insert("spec_hash".into(), hash);
            meta.insert("spec_name".into(), spec.name.clone());
            meta.insert("schema".into(), SCHEMA_VERSION.to_string());
            for (k, v) in &meta {
                tx.execute(
                    "INSERT OR REPLACE INTO meta (key, value) VALUES (?1, ?2)",
                    params![k, v],
                )
                .map_err(|e| db(path, e))?;
            }
            tx.execute_batch(&format!("PRAGMA user_version = {SCHEMA_VERSION};"))
                .map_err(|e| db(path, e))?;
            tx.commit().map_err(|e| db(path, e))?;
        }
        Ok(s)
    }

    /// Opens an existing store read-only-ish (no spec check), returning it and its spec.
    pub fn open_existing(path: &Path) -> Result<(Self, SweepSpec)> {
        if !path.is_file() {
            return Err(Error::Path {
                reason: "no such results database".into(),
                path: path.to_path_buf(),
            });
        }
        let conn = Connection::open(path).map_err(|e| db(path, e))?;
        let s = Self {
            conn,
            path: path.to_path_buf(),
        };
        let text: Option<String> = s
            .conn
            .query_row("SELECT value FROM meta WHERE key = 'spec'", [], |r| {
                r.get(0)
            })
            .optional()
            .map_err(|e| db(path, e))?;
        let text = text.ok_or_else(|| Error::checkpoint(path, "no sweep spec stored"))?;
        let spec: SweepSpec = serde_json::from_str(&text).map_err(|source| Error::Json {
            path: path.to_path_buf(),
            source,
        })?;
        let s = Self::open(path, &spec, &BTreeMap::new())?;
        Ok((s, spec))
    }

    /// The database file.
    pub fn path(&self) -> &Path {
        &self.path
    }

    /// `meta` as a map.
    pub fn meta(&self) -> Result<BTreeMap<String, String>> {
        let p = &self.path;
        let mut st = self
            .conn
            .prepare("SELECT key, value FROM meta")
            .map_err(|e| db(p, e))?;
        let rows = st
            .query_map([], |r| Ok((r.get(0)?, r.get(1)?)))
            .map_err(|e| db(p, e))?;
        rows.collect::<std::result::Result<_, _>>()
            .map_err(|e| db(p, e))
    }

    /// Sets one `meta` entry (e.g. `pilot:MODEL`, what a precision pilot measured).
    pub fn set_meta(&self, key: &str, value: &str) -> Result<()> {
        self.conn
            .execute(
                "INSERT OR REPLACE INTO meta (key, value) VALUES (?1, ?2)",
                params![key, value],
            )
            .map_err(|e| db(&self.path, e))?;
        Ok(())
    }

    /// Adds `devices` to the store's `devices` entry (`; `-separated, each listed once): what
    /// evaluated its trials.
    pub fn add_devices(&self, devices: &[String]) -> Result<()> {
        let p = &self.path;
        let mut all: Vec<String> = self
            .meta()?
            .get("devices")
            .map(|d| d.split("; ").map(str::to_string).collect())
            .unwrap_or_default();
        for d in devices {
            if !d.is_empty() && !all.contains(d) {
                all.push(d.clone());
            }
        }
        self.conn
            .execute(
                "INSERT OR REPLACE INTO meta (key, value) VALUES ('devices', ?1)",
                params![all.join("; ")],
            )
            .map_err(|e| db(p, e))?;
        Ok(())
    }

    /// Keys of the finished trials.
    pub fn finished(&self) -> Result<HashSet<(String, u64)>> {
        let p = &self.path;
        let mut st = self
            .conn
            .prepare("SELECT config_key, trial_seed FROM trials")
            .map_err(|e| db(p, e))?;
        let rows = st
            .query_map([], |r| {
                Ok((r.get::<_, String>(0)?, r.get::<_, i64>(1)? as u64))
            })
            .map_err(|e| db(p, e))?;
        rows.collect::<std::result::Result<_, _>>()
            .map_err(|e| db(p, e))
    }

    /// Records (or refreshes) a model row.
    pub fn put_model(&self, m: &ModelRow) -> Result<()> {
        insert_model(&self.conn, m, "INSERT OR REPLACE").map_err(|e| db(&self.path, e))?;
        Ok(())
    }

    /// Appends one finished trial in its own transaction (a duplicate key is ignored).
    pub fn put_trial(&self, t: &TrialRow) -> Result<()> {
        let tx = self
            .conn
            .unchecked_transaction()
            .map_err(|e| db(&self.path, e))?;
        insert_trial(&tx, t).map_err(|e| db(&self.path, e))?;
        tx.commit().map_err(|e| db(&self.path, e))
    }

    /// Every trial, ordered by configuration key and trial index.
    pub fn trials(&self) -> Result<Vec<TrialRow>> {
        let p = &self.path;
        let mut st = self
            .conn
            .prepare("SELECT * FROM trials ORDER BY config_key, trial_index")
            .map_err(|e| db(p, e))?;
        let rows = st
            .query_map([], |r| {
                Ok(TrialRow {
                    config_key: r.get(0)?,
                    trial_seed: r.get::<_, i64>(1)? as u64,
                    trial_index: r.get::<_, i64>(2)? as usize,
                    model: r.get(3)?,
                    granularity: r.get(4)?,
                    low: r.get(5)?,
                    high: r.get(6)?,
                    method: r.get(7)?,
                    qb: r.get(8)?,
                    qr_target: r.get(9)?,
                    qr_achieved: r.get(10)?,
                    qr_weighting: r.get(11)?,
                    bits_per_weight: r.get(12)?,
                    nll_base: r.get(13)?,
                    nll: r.get(14)?,
                    delta_nll: r.get(15)?,
                    ci_lo: r.get(16)?,
                    ci_hi: r.get(17)?,
                    kl_mean: r.get(18)?,
                    top1: r.get(19)?,
                    n_tokens: r.get::<_, i64>(20)? as usize,
                    seconds: r.get(21)?,
                    assignment: r.get(22)?,
                    delta_nll_se: r.get::<_, Option<f64>>(23)?.unwrap_or(f64::NAN),
                    kl_se: r.get::<_, Option<f64>>(24)?.unwrap_or(f64::NAN),
                    window_delta: r
                        .get::<_, Option<Vec<u8>>>(25)?
                        .map(|b| blob_f32(&b))
                        .unwrap_or_default(),
                })
            })
            .map_err(|e| db(p, e))?;
        rows.collect::<std::result::Result<_, _>>()
            .map_err(|e| db(p, e))
    }

    /// Every model row.
    pub fn models(&self) -> Result<Vec<ModelRow>> {
        let p = &self.path;
        let mut st = self
            .conn
            .prepare("SELECT * FROM models ORDER BY n_params_non_embedding, model")
            .map_err(|e| db(p, e))?;
        let rows = st
            .query_map([], |r| {
                Ok(ModelRow {
                    model: r.get(0)?,
                    path: r.get(1)?,
                    architecture: r.get(2)?,
                    n_params_non_embedding: r.get::<_, i64>(3)? as usize,
                    n_params_total: r.get::<_, i64>(4)? as usize,
                    train_tokens: r.get::<_, Option<i64>>(5)?.map(|t| t as u64),
                    nll_base: r.get(6)?,
                    n_windows: r.get::<_, i64>(7)? as usize,
                    ctx: r.get::<_, i64>(8)? as usize,
                })
            })
            .map_err(|e| db(p, e))?;
        rows.collect::<std::result::Result<_, _>>()
            .map_err(|e| db(p, e))
    }

    /// Removes `model`'s trials, model row and features (one transaction); returns the number
    /// of trials removed.
    pub fn forget_model(&self, model: &str) -> Result<usize> {
        let p = &self.path;
        let tx = self.conn.unchecked_transaction().map_err(|e| db(p, e))?;
        let n = tx
            .execute("DELETE FROM trials WHERE model = ?1", params![model])
            .map_err(|e| db(p, e))?;
        tx.execute("DELETE FROM models WHERE model = ?1", params![model])
            .map_err(|e| db(p, e))?;
        if self.has_features_table()? {
            tx.execute("DELETE FROM features WHERE model = ?1", params![model])
                .map_err(|e| db(p, e))?;
        }
        tx.commit().map_err(|e| db(p, e))?;
        Ok(n)
    }

    /// Replaces the features of `model` by `rows` (one transaction). Measured format errors
    /// (`rtn_sqnr_db`, a function of the weights and the format alone, which the sweep stores
    /// for the format-aware laws) are kept unless `rows` measures them again.
    pub fn put_features(&self, model: &str, rows: &[FeatureRow]) -> Result<()> {
        let p = &self.path;
        let tx = self.conn.unchecked_transaction().map_err(|e| db(p, e))?;
        tx.execute_batch(FEATURES_TABLE).map_err(|e| db(p, e))?;
        tx.execute(
            "DELETE FROM features WHERE model = ?1 AND feature != ?2",
            params![model, SQNR_FEATURE],
        )
        .map_err(|e| db(p, e))?;
        for r in rows {
            insert_feature(&tx, r, "INSERT OR REPLACE").map_err(|e| db(p, e))?;
        }
        tx.commit().map_err(|e| db(p, e))
    }

    /// Adds (or replaces, by model, feature and direction) feature rows, one transaction.
    pub fn add_features(&self, rows: &[FeatureRow]) -> Result<()> {
        let p = &self.path;
        let tx = self.conn.unchecked_transaction().map_err(|e| db(p, e))?;
        tx.execute_batch(FEATURES_TABLE).map_err(|e| db(p, e))?;
        for r in rows {
            insert_feature(&tx, r, "INSERT OR REPLACE").map_err(|e| db(p, e))?;
        }
        tx.commit().map_err(|e| db(p, e))
    }

    fn has_features_table(&self) -> Result<bool> {
        self.conn
            .query_row(
                "SELECT count(*) FROM sqlite_master WHERE type = 'table' AND name = 'features'",
                [],
                |r| r.get::<_, i64>(0),
            )
            .map(|n| n > 0)
            .map_err(|e| db(&self.path, e))
    }

    /// Every stored feature (none when the store has no features table).
    pub fn features(&self) -> Result<Vec<FeatureRow>> {
        let p = &self.path;
        if !self.has_features_table()? {
            return Ok(Vec::new());
        }
        let mut stmt = self
            .conn
            .prepare(
                "SELECT model, feature, direction, value, settings FROM features
                 ORDER BY model, feature, direction",
            )
            .map_err(|e| db(p, e))?;
        let rows = stmt
            .query_map([], |r| {
                Ok(FeatureRow {
                    model: r.get(0)?,
                    feature: r.get(1)?,
                    direction: r.get(2)?,
                    value: r.get(3)?,
                    settings: r.get(4)?,
                })
            })
            .map_err(|e| db(p, e))?;
        rows.collect::<std::result::Result<_, _>>()
            .map_err(|e| db(p, e))
    }

    /// Copies the models, trials and landscape features of `other` (same spec) into this store;
    /// returns the number of trials added. Running it twice adds nothing the second time.
    pub fn merge_from(&self, other: &Path) -> Result<usize> {
        let (o, _) = Store::open_existing(other)?;
        let mine = self.meta()?.get("spec_hash").cloned();
        let theirs = o.meta()?.get("spec_hash").cloned();
        if mine != theirs {
            return Err(Error::checkpoint(
                other,
                "results of another sweep spec cannot be merged",
            ));
        }
        let mine_models = self.models()?;
        for m in o.models()? {
            if let Some(had) = mine_models.iter().find(|h| h.model == m.model) {
                if !same_base(had.nll_base, m.nll_base) {
                    return Err(Error::checkpoint(
                        other,
                        format!(
                            "{} has base NLL {:.6} there but {:.6} in {}: another checkpoint \
                             under the same name (run `quantscape forget` on one of them)",
                            m.model,
                            m.nll_base,
                            had.nll_base,
                            self.path.display()
                        ),
                    ));
                }
            }
        }
        let before = self.finished()?.len();
        let tx = self
            .conn
            .unchecked_transaction()
            .map_err(|e| db(&self.path, e))?;
        for m in o.models()? {
            insert_model(&tx, &m, "INSERT OR IGNORE").map_err(|e| db(&self.path, e))?;
        }
        for t in o.trials()? {
            insert_trial(&tx, &t).map_err(|e| db(&self.path, e))?;
        }
        let features = o.features()?;
        if !features.is_empty() {
            tx.execute_batch(FEATURES_TABLE)
                .map_err(|e| db(&self.path, e))?;
            for f in &features {
                insert_feature(&tx, f, "INSERT OR IGNORE").map_err(|e| db(&self.path, e))?;
            }
        }
        tx.commit().map_err(|e| db(&self.path, e))?;
        if let Some(d) = o.meta()?.get("devices") {
            let theirs: Vec<String> = d.split("; ").map(str::to_string).collect();
            self.add_devices(&theirs)?;
        }
        Ok(self.finished()?.len() - before)
    }
}

fn insert_trial(conn: &Connection, t: &TrialRow) -> rusqlite::Result<usize> {
    conn.execute(
        "INSERT OR IGNORE INTO trials VALUES (?1, ?2, ?3, ?4, ?5, ?6, ?7, ?8, ?9, ?10, ?11, ?12,
         ?13, ?14, ?15, ?16, ?17, ?18, ?19, ?20, ?21, ?22, ?23, ?24, ?25, ?26)",
        params![
            t.config_key,
            t.trial_seed as i64,
            t.trial_index as i64,
            t.model,
            t.granularity,
            t.low,
            t.high,
            t.method,
            t.qb,
            t.qr_target,
            t.qr_achieved,
            t.qr_weighting,
            t.bits_per_weight,
            t.nll_base,
            t.nll,
            t.delta_nll,
            t.ci_lo,
            t.ci_hi,
            t.kl_mean,
            t.top1,
            t.n_tokens as i64,
            t.seconds,
            t.assignment,
            finite(t.delta_nll_se),
            finite(t.kl_se),
            (!t.window_delta.is_empty()).then(|| f32_blob(&t.window_delta))
        ],
    )
}

/// NULL for a value that was not measured.
fn finite(x: f64) -> Option<f64> {
    x.is_finite().then_some(x)
}

/// Little-endian f32s.
fn f32_blob(xs: &[f32]) -> Vec<u8> {
    xs.iter().flat_map(|x| x.to_le_bytes()).collect()
}

/// The f32s of a little-endian blob (a trailing partial value is dropped).
fn blob_f32(b: &[u8]) -> Vec<f32> {
    b.chunks_exact(4)
        .map(|c| f32::from_le_bytes([c[0], c[1], c[2], c[3]]))
        .collect()
}

fn insert_feature(conn: &Connection, f: &FeatureRow, verb: &str) -> rusqlite::Result<usize> {
    conn.execute(
        &format!("{verb} INTO features VALUES (?1, ?2, ?3, ?4, ?5)"),
        params![f.model, f.feature, f.direction, f.value, f.settings],
    )
}

fn insert_model(conn: &Connection, m: &ModelRow, verb: &str) -> rusqlite::Result<usize> {
    conn.execute(
        &format!("{verb} INTO models VALUES (?1, ?2, ?3, ?4, ?5, ?6, ?7, ?8, ?9)"),
        params![
            m.model,
            m.path,
            m.architecture,
            m.n_params_non_embedding as i64,
            m.n_params_total as i64,
            m.train_tokens.map(|t| t as i64),
            m.nll_base,
            m.n_windows as i64,
            m.ctx as i64
        ],
    )
}

/// Whether two base NLLs are one model's (equal up to summation order: 1e-5 relative); a
/// retrained or otherwise changed checkpoint differs by far more.
pub fn same_base(a: f64, b: f64) -> bool {
    (a - b).abs() <= 1e-5 * a.abs().max(b.abs())
}
