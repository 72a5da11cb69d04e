//! The explorer's saved state (a headless module, so the CLI, tests and the fuzz targets read it
//! without the `gui` feature): which view is open, the presenter/theme settings, and each
//! panel's choices — all seven views: data source, law, fitted or what-if parameters, slider
//! values, excluded sizes, selected model, hardware targets, the Quantize and Evaluate
//! configurations, the sweep spec and store, the landscape settings, each view's device. Runtime things (jobs, caches, loaded tensors) are
//! not part of it; they are rebuilt from it.
//!
//! Format: RON with a `version` field. Every struct is `#[serde(default)]`, so a file written by
//! an older build (missing fields) still loads with defaults for what it lacks, and fields this
//! build does not know are ignored. A file from a newer format version, a file that does not
//! parse, or one that holds non-finite slider values is a clear error naming the file; the app
//! shows it and keeps running. Saves are atomic ([`crate::io::write_atomic`]).

use std::path::Path;

use crate::laws::{FitReport, Var};
use crate::{Error, Result};

/// The session format this build writes (and the newest it reads).
pub const SESSION_VERSION: u32 = 1;

/// Views of the explorer.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq, serde::Serialize, serde::Deserialize)]
pub enum View {
    /// Bundled families and the tensors of one checkpoint.
    Models,
    /// Scaling-law contours.
    #[default]
    Laws,
    /// Quantize one checkpoint: per-tensor errors and the format's grid.
    Quantize,
    /// Compare configurations of one checkpoint side by side.
    Evaluate,
    /// Mixed-precision sweeps: run, resume, watch trials stream in.
    Sweep,
    /// Loss along the quantization direction and random directions.
    Landscape,
    /// Bits per weight against predicted ΔL, block-size trade-offs and memory footprints.
    Hardware,
}

impl View {
    /// Every view, in tab order.
    pub const ALL: [View; 7] = [
        View::Models,
        View::Quantize,
        View::Evaluate,
        View::Laws,
        View::Sweep,
        View::Landscape,
        View::Hardware,
    ];

    /// Tab label.
    pub fn label(self) -> &'static str {
        match self {
            View::Models => "Models",
            View::Laws => "Laws",
            View::Quantize => "Quantize",
            View::Evaluate => "Evaluate",
            View::Sweep => "Sweep",
            View::Hardware => "Hardware",
            View::Landscape => "Landscape",
        }
    }
}

/// Where the Laws view's points come from.
#[derive(Clone, Debug, Default, PartialEq, serde::Serialize, serde::Deserialize)]
pub enum Source {
    /// The bundled demo sweep's summary (`assets/demo/demo_summary.csv`) when present, else
    /// points drawn from the strong law with known parameters.
    #[default]
    Demo,
    /// Drawn from the strong law with known parameters.
    Synthetic,
    /// A CSV file (a sweep's `export` summary, or any table `quantscape fit` reads).
    Csv(String),
}

/// The two variables of the Laws map (the third gets a slider).
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq, serde::Serialize, serde::Deserialize)]
pub enum Plane {
    /// N across, Qr up, Qb on the slider.
    #[default]
    NQr,
    /// N across, Qb up, Qr on the slider.
    NQb,
    /// Qr across, Qb up, N on the slider.
    QrQb,
}

impl Plane {
    /// Every plane.
    pub const ALL: [Plane; 3] = [Plane::NQr, Plane::NQb, Plane::QrQb];

    /// (x, y, slider) variables.
    pub fn vars(self) -> (Var, Var, Var) {
        match self {
            Plane::NQr => (Var::N, Var::Qr, Var::Qb),
            Plane::NQb => (Var::N, Var::Qb, Var::Qr),
            Plane::QrQb => (Var::Qr, Var::Qb, Var::N),
        }
    }

    /// Selector label.
    pub fn label(self) -> &'static str {
        match self {
            Plane::NQr => "N × Qr",
            Plane::NQb => "N × Qb",
            Plane::QrQb => "Qr × Qb",
        }
    }
}

/// The Laws view's choices.
#[derive(Clone, Debug, PartialEq, serde::Serialize, serde::Deserialize)]
#[serde(default)]
pub struct LawsState {
    /// Data source.
    pub source: Source,
    /// Law id (`unified-strong`, `unified-weak`, or `formula` for the typed law).
    pub law_id: String,
    /// The typed law's text (used when `law_id` is `formula`).
    pub formula: String,
    /// Current parameters (fitted, or edited in what-if mode); empty = the law's start values.
    pub params: Vec<f64>,
    /// Edit parameters by hand instead of showing the fit.
    pub what_if: bool,
    /// Variables of the map.
    pub plane: Plane,
    /// Qb of the map when Qb is on the slider, and of the budget curves.
    pub qb: f64,
    /// Qr of the map when Qr is on the slider.
    pub qr: f64,
    /// N of the map when N is on the slider.
    pub n: f64,
    /// Model sizes (N) left out of the fit.
    pub excluded: Vec<f64>,
    /// Bootstrap resamples of a fit.
    pub bootstrap: usize,
    /// ΔL budget (nats/token) of the budget curves.
    pub budget: f64,
    /// Which configurations of a results store are fitted; None = layer × mxfp4 × bf16 or
    /// whatever the store has. (Sessions written before the task layer hold a tuple: read too.)
    pub store_slice: Option<crate::laws::data::StoreSlice>,
    /// Which model family (architecture) of the store is fitted.
    pub store_family: FamilyChoice,
    /// What a results store's points measure: ΔL or KL.
    pub metric: crate::search::Metric,
    /// Which statistic of a configuration's trials is fitted.
    pub statistic: crate::search::Statistic,
    /// The last fit, restored without refitting.
    pub report: Option<FitReport>,
}

impl Default for LawsState {
    fn default() -> Self {
        Self {
            source: Source::Demo,
            law_id: "unified-strong".into(),
            formula: String::new(),
            params: Vec::new(),
            what_if: false,
            plane: Plane::NQr,
            qb: 32.0,
            qr: 1.0,
            n: 1e6,
            excluded: Vec::new(),
            bootstrap: 200,
            budget: 0.05,
            store_slice: None,
            store_family: FamilyChoice::Auto,
            metric: crate::search::Metric::DeltaNll,
            statistic: crate::search::Statistic::Mean,
            report: None,
        }
    }
}

/// Which model family of a results store the Laws view fits.
#[derive(Clone, Debug, Default, PartialEq, Eq, serde::Serialize, serde::Deserialize)]
pub enum FamilyChoice {
    /// Not chosen: all when the store holds one family, else the family with the most sizes.
    #[default]
    Auto,
    /// Every family in one fit.
    All,
    /// One architecture (`LlamaForCausalLM`, …).
    Only(String),
}

impl FamilyChoice {
    /// The family to filter on (None: all).
    pub fn only(&self) -> Option<&str> {
        match self {
            FamilyChoice::Only(f) => Some(f),
            _ => None,
        }
    }
}

/// The Models view's choices.
#[derive(Clone, Debug, Default, PartialEq, serde::Serialize, serde::Deserialize)]
#[serde(default)]
pub struct ModelsState {
    /// Folder of the checkpoint whose tensors are shown.
    pub selected: Option<String>,
    /// Tensor whose histogram is shown.
    pub tensor: Option<String>,
}

/// The Hardware view's choices.
#[derive(Clone, Debug, PartialEq, serde::Serialize, serde::Deserialize)]
#[serde(default)]
pub struct HardwareState {
    /// Target model size N for predictions and footprints.
    pub target_n: f64,
    /// Fraction of the target's weights in the low format.
    pub qr: f64,
    /// The results store the format-aware law is fitted on (None: the bundled demo sweep).
    #[serde(default)]
    pub results: Option<std::path::PathBuf>,
    /// The model ε is measured on (None: SmolLM2-135M when cached, else the store's largest).
    #[serde(default)]
    pub reference: Option<String>,
}

impl Default for HardwareState {
    fn default() -> Self {
        Self {
            target_n: 7e9,
            qr: 1.0,
            results: None,
            reference: None,
        }
    }
}

/// One configuration row of the Evaluate view, as typed.
#[derive(Clone, Debug, PartialEq, Eq, serde::Serialize, serde::Deserialize)]
pub struct EvalConfig {
    /// Format spelling.
    pub format: String,
    /// Qb spelling.
    pub qb: String,
    /// Method spelling (`rtn`, `hqq`).
    pub method: String,
}

impl EvalConfig {
    /// A row.
    pub fn new(format: &str, qb: &str, method: &str) -> Self {
        Self {
            format: format.into(),
            qb: qb.into(),
            method: method.into(),
        }
    }

    /// `mxfp4 · 32 · rtn`.
    pub fn label(&self) -> String {
        format!("{} · {} · {}", self.format, self.qb, self.method)
    }

    /// The format (with this Qb) and method the row spells.
    pub fn parse(&self) -> Result<(crate::codecs::Format, crate::codecs::Method)> {
        let f = crate::codecs::Format::parse(&self.format)?
            .with_block(self.qb.parse::<crate::codecs::BlockSize>()?);
        Ok((f, self.method.parse()?))
    }
}

/// The Evaluate view's held-out data settings.
#[derive(Clone, Debug, PartialEq, Eq, serde::Serialize, serde::Deserialize)]
#[serde(default)]
pub struct EvalSettings {
    /// Bundled split or text file.
    pub data: String,
    /// Windows.
    pub windows: usize,
    /// Tokens per window.
    pub ctx: usize,
    /// Window and bootstrap seed.
    pub seed: u64,
}

impl Default for EvalSettings {
    fn default() -> Self {
        Self {
            data: "eval_austen".into(),
            windows: 32,
            ctx: 128,
            seed: 0,
        }
    }
}

/// The Evaluate view's choices.
#[derive(Clone, Debug, PartialEq, serde::Serialize, serde::Deserialize)]
#[serde(default)]
pub struct EvaluateState {
    /// Configurations compared.
    pub configs: Vec<EvalConfig>,
    /// Held-out data.
    pub settings: EvalSettings,
    /// Where the forward passes run.
    pub device: crate::tasks::Device,
}

impl Default for EvaluateState {
    fn default() -> Self {
        Self {
            configs: vec![
                EvalConfig::new("mxfp4", "32", "rtn"),
                EvalConfig::new("mxint4", "32", "rtn"),
                EvalConfig::new("nvfp4", "16", "rtn"),
                EvalConfig::new("int4_asym", "128", "rtn"),
            ],
            settings: EvalSettings::default(),
            device: crate::tasks::Device::Cpu,
        }
    }
}

/// The Quantize view's choices.
#[derive(Clone, Debug, PartialEq, Eq, serde::Serialize, serde::Deserialize)]
#[serde(default)]
pub struct QuantizeState {
    /// Format spelling (a preset name or `key=value` list).
    pub spelling: String,
    /// Block size choice.
    pub qb: String,
    /// Method spelling (`rtn`, `hqq`).
    pub method: String,
    /// Where RTN runs.
    pub device: crate::tasks::Device,
}

impl Default for QuantizeState {
    fn default() -> Self {
        Self {
            spelling: "mxfp4".into(),
            qb: "32".into(),
            method: "rtn".into(),
            device: crate::tasks::Device::Cpu,
        }
    }
}

/// The Sweep view's choices (None: the bundled demo spec and store).
#[derive(Clone, Debug, Default, PartialEq, serde::Serialize, serde::Deserialize)]
#[serde(default)]
pub struct SweepState {
    /// The sweep spec.
    pub spec_path: Option<std::path::PathBuf>,
    /// The results store.
    pub results: Option<std::path::PathBuf>,
    /// Where weight-only trials run.
    pub device: crate::tasks::Device,
}

/// Settings of a loss-landscape computation (the Landscape view).
#[derive(Clone, Debug, PartialEq, serde::Serialize, serde::Deserialize)]
#[serde(default)]
pub struct LandscapeSettings {
    /// First direction spelling.
    pub direction: String,
    /// Second direction spelling (empty: 1-D).
    pub direction2: String,
    /// Range along each direction.
    pub range: (f64, f64),
    /// Points per axis.
    pub grid: usize,
    /// Windows per point.
    pub windows: usize,
    /// Restrict the directions (and the Hessian probe) to these blocks (`0,2-3`; empty: all).
    pub layers: String,
    /// … and to these tensor kinds (`q_proj,mlp`; empty: all).
    pub kinds: String,
}

impl Default for LandscapeSettings {
    fn default() -> Self {
        Self {
            direction: "quant:mxfp4:32".into(),
            direction2: String::new(),
            range: (-0.5, 2.0),
            grid: 11,
            windows: 16,
            layers: String::new(),
            kinds: String::new(),
        }
    }
}

/// Everything the explorer saves.
#[derive(Clone, Debug, PartialEq, serde::Serialize, serde::Deserialize)]
#[serde(default)]
pub struct Session {
    /// Format version ([`SESSION_VERSION`] when written by this build).
    pub version: u32,
    /// Open view.
    pub view: View,
    /// Presenter mode: large fonts, one prediction slider, no editing chrome.
    pub presenter: bool,
    /// Dark theme (else light).
    pub dark: bool,
    /// Laws view.
    pub laws: LawsState,
    /// Models view.
    pub models: ModelsState,
    /// Hardware view.
    pub hardware: HardwareState,
    /// Quantize view.
    pub quantize: QuantizeState,
    /// Evaluate view.
    pub evaluate: EvaluateState,
    /// Sweep view.
    pub sweep: SweepState,
    /// Landscape view.
    pub landscape: LandscapeSettings,
}

impl Default for Session {
    fn default() -> Self {
        Self {
            version: SESSION_VERSION,
            view: View::Laws,
            presenter: false,
            dark: true,
            laws: LawsState::default(),
            models: ModelsState::default(),
            hardware: HardwareState::default(),
            quantize: QuantizeState::default(),
            evaluate: EvaluateState::default(),
            sweep: SweepState::default(),
            landscape: LandscapeSettings::default(),
        }
    }
}

impl Session {
    /// Parses a session written by this or an older build; `origin` names it in errors.
    pub fn from_ron(text: &str, origin: &str) -> Result<Self> {
        let s: Session = ron::from_str(text)
            .map_err(|e| Error::Input(format!("{origin}: not a quantscape session: {e}")))?;
        if s.version > SESSION_VERSION {
            return Err(Error::Input(format!(
                "{origin}: session format {} is newer than this build reads ({SESSION_VERSION}); \
                 update quantscape",
                s.version
            )));
        }
        let l = &s.laws;
        let finite = l.qb.is_finite()
            && l.qb > 0.0
            && l.n.is_finite()
            && l.n > 0.0
            && (0.0..=1.0).contains(&l.qr)
            && l.budget.is_finite()
            && l.params.iter().all(|v| v.is_finite())
            && s.hardware.target_n.is_finite()
            && s.hardware.target_n > 0.0
            && (0.0..=1.0).contains(&s.hardware.qr)
            && s.landscape.range.0.is_finite()
            && s.landscape.range.1.is_finite();
        if !finite {
            return Err(Error::Input(format!(
                "{origin}: the session holds an out-of-range slider value (NaN, Inf, Qb ≤ 0, N ≤ 0 \
                 or Qr outside [0, 1])"
            )));
        }
        Ok(Self {
            version: SESSION_VERSION,
            ..s
        })
    }

    /// The session as RON text.
    pub fn to_ron(&self) -> Result<String> {
        ron::ser::to_string_pretty(self, ron::ser::PrettyConfig::default())
            .map_err(|e| Error::Input(format!("cannot serialize the session: {e}")))
    }

    /// Reads a session file.
    pub fn load(path: &Path) -> Result<Self> {
        let text = std::fs::read_to_string(path).map_err(|e| Error::io("read", path, e))?;
        Self::from_ron(&text, &path.display().to_string())
    }

    /// Writes the session atomically.
    pub fn save(&self, path: &Path) -> Result<()> {
        crate::io::write_atomic(path, self.to_ron()?.as_bytes())
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn round_trips_and_old_files_load_with_defaults() {
        let mut s = Session {
            view: View::Hardware,
            ..Session::default()
        };
        s.laws.qb = 128.0;
        s.laws.excluded = vec![1e5];
        s.hardware.target_n = 70e9;
        let dir = tempfile::tempdir().unwrap();
        let p = dir.path().join("s.ron");
        s.save(&p).unwrap();
        assert_eq!(Session::load(&p).unwrap(), s);
        // A minimal file from version 1 with an unknown future field.
        let old = Session::from_ron("(version: 1, view: Models, future_knob: 3)", "old").unwrap();
        assert_eq!(old.view, View::Models);
        assert_eq!(old.laws, LawsState::default());
        // The committed fixture of the first format keeps loading.
        let fixture = Path::new(env!("CARGO_MANIFEST_DIR")).join("tests/data/session_v1.ron");
        let f = Session::load(&fixture).unwrap();
        assert_eq!(f.laws.law_id, "unified-weak");
        assert_eq!(f.laws.qb, 64.0);
    }

    #[test]
    fn every_view_is_saved_and_the_old_slice_tuple_still_loads() {
        let mut s = Session::default();
        s.quantize.spelling = "nvfp4".into();
        s.quantize.device = crate::tasks::Device::Auto;
        s.evaluate.configs.truncate(1);
        s.evaluate.settings.windows = 7;
        s.sweep.spec_path = Some("/x/spec.ron".into());
        s.landscape.grid = 5;
        s.laws.store_slice = Some(crate::laws::data::StoreSlice::new(
            "matmul", "mxint4", "bf16",
        ));
        let back = Session::from_ron(&s.to_ron().unwrap(), "mem").unwrap();
        assert_eq!(back, s);
        let old = Session::from_ron(
            "(version: 1, laws: (store_slice: Some((\"layer\", \"mxfp4\", \"bf16\"))))",
            "old",
        )
        .unwrap();
        assert_eq!(
            old.laws.store_slice,
            Some(crate::laws::data::StoreSlice::new("layer", "mxfp4", "bf16"))
        );
        assert_eq!(old.quantize, QuantizeState::default());
        let e = Session::from_ron("(landscape: (range: (0.0, inf)))", "r.ron").unwrap_err();
        assert!(e.to_string().contains("out-of-range"), "{e}");
    }

    #[test]
    fn corrupt_newer_and_out_of_range_files_are_named_errors() {
        let e = Session::from_ron("(version: 1, view: Nope)", "x.ron").unwrap_err();
        assert!(
            e.to_string().starts_with("x.ron: not a quantscape session"),
            "{e}"
        );
        let e = Session::from_ron("(version: 9)", "y.ron").unwrap_err();
        assert!(e.to_string().contains("newer"), "{e}");
        let e = Session::from_ron("(laws: (qb: -1.0))", "z.ron").unwrap_err();
        assert!(e.to_string().contains("out-of-range"), "{e}");
        let e = Session::load(Path::new("/nonexistent/s.ron")).unwrap_err();
        assert!(e.to_string().contains("/nonexistent/s.ron"), "{e}");
    }
}
