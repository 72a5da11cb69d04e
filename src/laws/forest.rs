//! Random-forest regression (Breiman) for the PTQ predictor of Xu et al. (arXiv 2410.12119):
//! predict NLL or ΔL after quantization from N, the pre-trained loss, format descriptors, RTN
//! SQNR and, when present, local loss-landscape features (flatness, curvature).
//!
//! Trees are CART regression trees (variance reduction; split thresholds halfway between
//! sorted distinct values), grown on bootstrap samples with `max_features` candidate features
//! per split; predictions average the trees. Feature importance is the total variance
//! reduction per feature, normalised to sum to 1. Each tree has its own seeded RNG, so a forest
//! is the same for a given seed whatever the thread count. Features must be finite (encode a
//! missing landscape feature as a constant, e.g. −1, and say so in the feature name).
//! [`leave_one_group_out`] holds out one family at a time and compares against a size-only
//! baseline: least squares of the target on [1, feature `size_feature`].

use rand::{Rng as _, SeedableRng as _};
use rayon::prelude::*;

use crate::{Error, Result};

/// Forest settings.
#[derive(Clone, Debug, serde::Serialize)]
pub struct ForestConfig {
    /// Number of trees.
    pub n_trees: usize,
    /// Maximum depth.
    pub max_depth: usize,
    /// Minimum samples in a leaf.
    pub min_samples_leaf: usize,
    /// Candidate features per split (`None`: ⌈p/3⌉, the regression default).
    pub max_features: Option<usize>,
    /// Seed.
    pub seed: u64,
}

impl Default for ForestConfig {
    fn default() -> Self {
        Self {
            n_trees: 200,
            max_depth: 16,
            min_samples_leaf: 2,
            max_features: None,
            seed: 0,
        }
    }
}

#[derive(Clone, Debug)]
enum Node {
    Leaf(f64),
    Split {
        feature: usize,
        threshold: f64,
        left: usize,
        right: usize,
    },
}

#[derive(Clone, Debug)]
struct Tree {
    nodes: Vec<Node>,
}

impl Tree {
    fn predict(&self, x: &[f64]) -> f64 {
        let mut i = 0;
        loop {
            match self.nodes.get(i) {
                Some(Node::Leaf(v)) => return *v,
                Some(&Node::Split {
                    feature,
                    threshold,
                    left,
                    right,
                }) => {
                    i = if x.get(feature).copied().unwrap_or(0.0) <= threshold {
                        left
                    } else {
                        right
                    }
                }
                None => return f64::NAN,
            }
        }
    }
}

/// A trained forest.
#[derive(Clone, Debug)]
pub struct RandomForest {
    trees: Vec<Tree>,
    n_features: usize,
    /// Normalised variance-reduction importance per feature.
    pub importances: Vec<f64>,
}

struct Grower<'a> {
    x: &'a [Vec<f64>],
    y: &'a [f64],
    cfg: &'a ForestConfig,
    mtry: usize,
    nodes: Vec<Node>,
    gain: Vec<f64>,
}

impl Grower<'_> {
    fn grow(&mut self, idx: &mut [usize], depth: usize, rng: &mut rand::rngs::StdRng) -> usize {
        let me = self.nodes.len();
        let n = idx.len() as f64;
        let mean = idx.iter().map(|&i| self.y[i]).sum::<f64>() / n;
        self.nodes.push(Node::Leaf(mean));
        if depth >= self.cfg.max_depth || idx.len() < 2 * self.cfg.min_samples_leaf {
            return me;
        }
        let sse: f64 = idx.iter().map(|&i| (self.y[i] - mean).powi(2)).sum();
        if sse <= 1e-24 {
            return me;
        }
        let p = self.x[0].len();
        // Sample mtry distinct features (partial Fisher–Yates).
        let mut feats: Vec<usize> = (0..p).collect();
        for k in 0..self.mtry.min(p) {
            let j = rng.random_range(k..p);
            feats.swap(k, j);
        }
        let mut best: Option<(f64, usize, f64)> = None;
        let leaf = self.cfg.min_samples_leaf;
        let mut order: Vec<usize> = idx.to_vec();
        let total: f64 = idx.iter().map(|&i| self.y[i]).sum();
        for &f in &feats[..self.mtry.min(p)] {
            order.sort_by(|&a, &b| self.x[a][f].total_cmp(&self.x[b][f]));
            let mut left_sum = 0.0;
            for k in 0..order.len() - 1 {
                left_sum += self.y[order[k]];
                let nl = (k + 1) as f64;
                let nr = n - nl;
                let (v, next) = (self.x[order[k]][f], self.x[order[k + 1]][f]);
                if k + 1 < leaf || order.len() - (k + 1) < leaf || v == next {
                    continue;
                }
                // SSE reduction = nl·ml² + nr·mr² − n·m².
                let right_sum = total - left_sum;
                let gain =
                    left_sum * left_sum / nl + right_sum * right_sum / nr - total * total / n;
                if best.is_none_or(|(g, _, _)| gain > g) {
                    // Halfway, but never rounded onto `next` (adjacent floats): v ≤ t < next.
                    let mid = v + 0.5 * (next - v);
                    best = Some((gain, f, if mid < next { mid } else { v }));
                }
            }
        }
        let Some((gain, feature, threshold)) = best else {
            return me;
        };
        if gain <= 1e-12 * sse {
            return me;
        }
        let mut split = 0;
        for k in 0..idx.len() {
            if self.x[idx[k]][feature] <= threshold {
                idx.swap(k, split);
                split += 1;
            }
        }
        if split == 0 || split == idx.len() {
            return me;
        }
        self.gain[feature] += gain;
        let (l, r) = idx.split_at_mut(split);
        let left = self.grow(l, depth + 1, rng);
        let right = self.grow(r, depth + 1, rng);
        self.nodes[me] = Node::Split {
            feature,
            threshold,
            left,
            right,
        };
        me
    }
}

impl RandomForest {
    /// Trains on rows `x` (all the same length, finite) and targets `y`.
    pub fn fit(x: &[Vec<f64>], y: &[f64], cfg: &ForestConfig) -> Result<Self> {
        let p = x.first().map_or(0, Vec::len);
        if x.is_empty() || x.len() != y.len() || p == 0 {
            return Err(Error::Input(format!(
                "forest: need matching non-empty rows and targets ({} rows, {} targets, {p} features)",
                x.len(),
                y.len()
            )));
        }
        if let Some(i) = x
            .iter()
            .position(|r| r.len() != p || r.iter().any(|v| !v.is_finite()))
        {
            return Err(Error::Input(format!(
                "forest: row {i} has a wrong length or a non-finite feature"
            )));
        }
        if let Some(i) = y.iter().position(|v| !v.is_finite()) {
            return Err(Error::Input(format!("forest: target {i} is not finite")));
        }
        crate::limits::TREES.check(cfg.n_trees)?;
        if cfg.n_trees == 0 || cfg.min_samples_leaf == 0 {
            return Err(Error::Input(
                "forest: need at least one tree and one sample per leaf".into(),
            ));
        }
        let mtry = cfg.max_features.unwrap_or(p.div_ceil(3)).clamp(1, p);
        let grown: Vec<(Tree, Vec<f64>)> = (0..cfg.n_trees)
            .into_par_iter()
            .map(|t| {
                let mut rng = rand::rngs::StdRng::seed_from_u64(
                    cfg.seed.wrapping_mul(0x9E37_79B9).wrapping_add(t as u64),
                );
                let mut idx: Vec<usize> =
                    (0..x.len()).map(|_| rng.random_range(0..x.len())).collect();
                let mut g = Grower {
                    x,
                    y,
                    cfg,
                    mtry,
                    nodes: Vec::new(),
                    gain: vec![0.0; p],
                };
                g.grow(&mut idx, 0, &mut rng);
                (Tree { nodes: g.nodes }, g.gain)
            })
            .collect();
        let mut importances = vec![0.0; p];
        for (_, g) in &grown {
            for (a, b) in importances.iter_mut().zip(g) {
                *a += b;
            }
        }
        let total: f64 = importances.iter().sum();
        if total > 0.0 {
            importances.iter_mut().for_each(|v| *v /= total);
        }
        Ok(Self {
            trees: grown.into_iter().map(|(t, _)| t).collect(),
            n_features: p,
            importances,
        })
    }

    /// Mean of the trees' predictions.
    pub fn predict(&self, x: &[f64]) -> Result<f64> {
        if x.len() != self.n_features {
            return Err(Error::Input(format!(
                "forest: expected {} features, got {}",
                self.n_features,
                x.len()
            )));
        }
        Ok(self.trees.iter().map(|t| t.predict(x)).sum::<f64>() / self.trees.len() as f64)
    }
}

/// Held-out errors for one group.
#[derive(Clone, Debug, serde::Serialize)]
pub struct GroupScore {
    /// The held-out group.
    pub group: String,
    /// Points in it.
    pub n_points: usize,
    /// RMSE of the forest.
    pub rmse_forest: f64,
    /// RMSE of the size-only baseline.
    pub rmse_baseline: f64,
}

/// Leave-one-group-out evaluation.
#[derive(Clone, Debug, serde::Serialize)]
pub struct GroupOutReport {
    /// One entry per group, in first-appearance order.
    pub groups: Vec<GroupScore>,
    /// RMSE of the forest over every held-out prediction.
    pub rmse_forest: f64,
    /// RMSE of the baseline over every held-out prediction.
    pub rmse_baseline: f64,
}

/// Holds out each group in turn, trains a forest and the size-only baseline on the rest.
pub fn leave_one_group_out(
    x: &[Vec<f64>],
    y: &[f64],
    groups: &[String],
    size_feature: usize,
    cfg: &ForestConfig,
) -> Result<GroupOutReport> {
    if groups.len() != y.len() {
        return Err(Error::Input(
            "forest: one group label per row is needed".into(),
        ));
    }
    let mut names: Vec<&String> = Vec::new();
    for g in groups {
        if !names.contains(&g) {
            names.push(g);
        }
    }
    if names.len() < 2 {
        return Err(Error::Input(
            "leave-one-group-out needs at least two groups".into(),
        ));
    }
    let mut out = Vec::new();
    let (mut se_f, mut se_b, mut count) = (0.0, 0.0, 0usize);
    for name in names {
        let (train, test): (Vec<usize>, Vec<usize>) =
            (0..y.len()).partition(|&i| groups[i] != *name);
        let tx: Vec<Vec<f64>> = train.iter().map(|&i| x[i].clone()).collect();
        let ty: Vec<f64> = train.iter().map(|&i| y[i]).collect();
        let forest = RandomForest::fit(&tx, &ty, cfg)?;
        let (a, b) = least_squares_line(&tx, &ty, size_feature)?;
        let (mut ef, mut eb) = (0.0, 0.0);
        for &i in &test {
            ef += (forest.predict(&x[i])? - y[i]).powi(2);
            eb += (a + b * x[i][size_feature] - y[i]).powi(2);
        }
        se_f += ef;
        se_b += eb;
        count += test.len();
        let m = test.len().max(1) as f64;
        out.push(GroupScore {
            group: name.clone(),
            n_points: test.len(),
            rmse_forest: (ef / m).sqrt(),
            rmse_baseline: (eb / m).sqrt(),
        });
    }
    let m = count.max(1) as f64;
    Ok(GroupOutReport {
        groups: out,
        rmse_forest: (se_f / m).sqrt(),
        rmse_baseline: (se_b / m).sqrt(),
    })
}

fn least_squares_line(x: &[Vec<f64>], y: &[f64], f: usize) -> Result<(f64, f64)> {
    if x.first().is_none_or(|r| f >= r.len()) {
        return Err(Error::Input(format!(
            "forest: size feature {f} is out of range"
        )));
    }
    let n = y.len() as f64;
    let mx = x.iter().map(|r| r[f]).sum::<f64>() / n;
    let my = y.iter().sum::<f64>() / n;
    let sxx: f64 = x.iter().map(|r| (r[f] - mx).powi(2)).sum();
    let sxy: f64 = x.iter().zip(y).map(|(r, v)| (r[f] - mx) * (v - my)).sum();
    let b = if sxx > 0.0 { sxy / sxx } else { 0.0 };
    Ok((my - b * mx, b))
}

/// The predictor's inputs for one quantized model (Xu et al.'s feature set), as a fixed-order
/// feature row: log10 N, pre-trained loss, element/exponent/mantissa bits, log2 Qb, bits per
/// weight, Qr, RTN SQNR (dB), and the landscape's flatness, sharpness, top eigenvalue, trace
/// and curvature along the quantization direction (−1 when not measured).
#[derive(Clone, Copy, Debug, Default, serde::Serialize)]
pub struct PtqFeatures {
    /// Non-embedding parameter count.
    pub n_params: f64,
    /// NLL of the unquantized model, nats per token.
    pub base_loss: f64,
    /// Element bits of the format.
    pub element_bits: f64,
    /// Exponent bits (0 for integer formats).
    pub exponent_bits: f64,
    /// Mantissa bits (element bits − 1 for integers).
    pub mantissa_bits: f64,
    /// Block size Qb (the row length for per-channel).
    pub block_size: f64,
    /// Bits per weight including scales.
    pub bits_per_weight: f64,
    /// Fraction of the quantizable weights in the low format (1 for a fully quantized model).
    pub qr: f64,
    /// SQNR of round-to-nearest quantization of the weights, dB (−1 when not measured).
    pub rtn_sqnr_db: Option<f64>,
    /// Loss-landscape flatness radius, when measured.
    pub flatness: Option<f64>,
    /// Loss-landscape sharpness (nats), when measured.
    pub sharpness: Option<f64>,
    /// Top Hessian eigenvalue, when measured.
    pub top_eigenvalue: Option<f64>,
    /// Hessian trace, when measured.
    pub trace: Option<f64>,
    /// Curvature uᵀHu/‖u‖² along the format's quantization direction, when measured.
    pub curvature_u: Option<f64>,
}

impl PtqFeatures {
    /// Names of the entries of [`PtqFeatures::row`].
    pub const NAMES: [&'static str; 14] = [
        "log10_N",
        "base_loss",
        "element_bits",
        "exponent_bits",
        "mantissa_bits",
        "log2_Qb",
        "bits_per_weight",
        "Qr",
        "rtn_sqnr_db (-1 = absent)",
        "flatness (-1 = absent)",
        "sharpness (-1 = absent)",
        "top_eigenvalue (-1 = absent)",
        "trace (-1 = absent)",
        "curvature_u (-1 = absent)",
    ];
    /// Index of the size feature (for the size-only baseline of [`leave_one_group_out`]).
    pub const SIZE_FEATURE: usize = 0;
    /// Indices of the loss-landscape features (flatness … curvature along u).
    pub const LANDSCAPE: std::ops::Range<usize> = 9..14;

    /// The feature row in [`PtqFeatures::NAMES`] order.
    pub fn row(&self) -> Vec<f64> {
        let or = |v: Option<f64>| v.filter(|x| x.is_finite()).unwrap_or(-1.0);
        vec![
            self.n_params.log10(),
            self.base_loss,
            self.element_bits,
            self.exponent_bits,
            self.mantissa_bits,
            self.block_size.log2(),
            self.bits_per_weight,
            self.qr,
            or(self.rtn_sqnr_db),
            or(self.flatness),
            or(self.sharpness),
            or(self.top_eigenvalue),
            or(self.trace),
            or(self.curvature_u),
        ]
    }

    /// (element, exponent, mantissa) bits of a format: integers count no exponent and
    /// element − 1 mantissa bits; NF4 counts as 4 / 0 / 3.
    pub fn format_bits(format: &crate::codecs::Format) -> (f64, f64, f64) {
        let (e, m) = format.element.exp_man_bits();
        (f64::from(format.element.bits()), f64::from(e), f64::from(m))
    }
}
