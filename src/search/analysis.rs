//! The papers' takeaways tested on a results store (`quantscape analyze`): each as *held*,
//! *not held* or *inconclusive*, with the counts and the test behind it.
//!
//! Unit of comparison: two configurations of one model (same windows). Their difference
//! D = mean_A − mean_B (of ΔL or KL over trials) has variance s_A²/T_A + s_B²/T_B (which sites
//! the trials drew) plus var_w(ā_w − b̄_w)/W, the paired window term, where ā_w is A's ΔL on
//! window w averaged over its trials: the text noise shared by both configurations cancels in
//! ā_w − b̄_w. For KL, and for trials stored without per-window ΔL, the window term is the two
//! configurations' window SEs in quadrature (conservative: it ignores the shared noise). A
//! difference is *significant* when the two-sided normal p < 0.05. Tests:
//!
//! - (a) *ΔL grows exponentially in Qr* (Cao et al.): on each curve with Qr levels 0 … 1, the
//!   curvature c = [y(1) − y(1 − h)] − [y(h) − y(0)] (h the first step) is > 0 for a convex
//!   (accelerating, as e^{A·Qr}) curve, 0 for a linear one.
//! - (b) *larger N loses less at fixed Qr* (Cao): for each size-adjacent pair of one family at
//!   the same configuration and Qr > 0, the larger model's ΔL is lower.
//! - (c) *smaller Qb lowers ΔL* (Cao): per model, low format and Qr ≥ 0.6, ΔL(Qb 16) <
//!   ΔL(Qb 128); and *its benefit shrinks with N*: the ratio ΔL(128)/ΔL(16) at Qr = 1 falls
//!   with N (Spearman ρ < 0 per family and format).
//! - (d) *finer granularity tolerates a higher Qr* (Cao, first version): at equal Qr, ΔL is
//!   lower at the finer of two granularities (matmul < layer < block) of one operands rule.
//! - (e) *at fixed N, more training tokens degrade more* (Kumar et al.): for checkpoints of one
//!   family and size on adjacent token budgets D, same configuration, Qr > 0, the one trained
//!   longer loses more.
//! - Power: adjacent Qr levels of a curve differ significantly.
//!
//! Shapes: every count is over groups as described; an empty count means the store lacks the
//! configurations (e.g. one granularity only), and the verdict says so.

use std::collections::BTreeMap;

use serde::Serialize;

use super::export::StoreContents;
use super::store::TrialRow;
use super::{Granularity, Metric};

/// Significance level of every test.
pub const ALPHA: f64 = 0.05;

/// One configuration's trials, reduced.
#[derive(Clone, Debug)]
struct Cell {
    mean: f64,
    /// Variance of the mean from the trials' spread (0 for one trial).
    trial_var: f64,
    /// Mean window SE of the trials.
    window_se: f64,
    /// Per-window value averaged over trials (empty when not stored, or for KL).
    windows: Vec<f64>,
    n_params: f64,
    /// Training tokens D (NaN when unknown).
    train_tokens: f64,
    family: String,
}

/// The verdict of one takeaway.
#[derive(Clone, Debug, Serialize)]
pub struct Takeaway {
    /// Short id (`a`, `b`, …).
    pub id: String,
    /// The claim tested.
    pub claim: String,
    /// `held`, `not held` or `inconclusive`.
    pub verdict: String,
    /// Groups compared.
    pub groups: usize,
    /// Groups going the claimed way (any significance).
    pub agree: usize,
    /// Groups going the claimed way at p < 0.05.
    pub agree_significant: usize,
    /// Groups going against it at p < 0.05.
    pub against_significant: usize,
    /// What was compared, in words.
    pub test: String,
}

/// The analysis of a store.
#[derive(Clone, Debug, Serialize)]
pub struct Analysis {
    /// `delta_nll` or `kl`.
    pub metric: String,
    /// Trials and configurations read.
    pub n_trials: usize,
    /// Configurations.
    pub n_configurations: usize,
    /// Scored tokens per trial (smallest, largest).
    pub tokens_per_trial: [usize; 2],
    /// Median SE of a configuration mean.
    pub median_config_se: f64,
    /// The takeaways.
    pub takeaways: Vec<Takeaway>,
}

/// Two-sided normal p-value of z.
pub fn p_two_sided(z: f64) -> f64 {
    if !z.is_finite() {
        return if z.is_nan() { f64::NAN } else { 0.0 };
    }
    erfc(z.abs() / std::f64::consts::SQRT_2)
}

/// Complementary error function (W. J. Cody's rational Chebyshev form as in Numerical Recipes
/// `erfcc`, relative error < 1.2e−7).
fn erfc(x: f64) -> f64 {
    let z = x.abs();
    let t = 1.0 / (1.0 + 0.5 * z);
    let poly = -z * z - 1.265_512_23
        + t * (1.000_023_68
            + t * (0.374_091_96
                + t * (0.096_784_18
                    + t * (-0.186_288_06
                        + t * (0.278_868_07
                            + t * (-1.135_203_98
                                + t * (1.488_515_87 + t * (-0.822_152_23 + t * 0.170_872_77))))))));
    let r = t * poly.exp();
    if x >= 0.0 {
        r
    } else {
        2.0 - r
    }
}

/// A configuration: model, `granularity|low name|high|method`, Qb, Qr in millionths.
type Key = (String, String, String, u64);

/// The configuration a trial belongs to.
fn key_of(t: &TrialRow) -> Key {
    let low = t.low.split(',').next().unwrap_or("");
    (
        t.model.clone(),
        format!("{}|{low}|{}|{}", t.granularity, t.high, t.method),
        t.qb.clone(),
        (t.qr_target * 1e6).round() as u64,
    )
}

fn cells(c: &StoreContents, metric: Metric) -> BTreeMap<Key, Cell> {
    let mut by: BTreeMap<Key, Vec<&TrialRow>> = BTreeMap::new();
    for t in &c.trials {
        let key = key_of(t);
        by.entry(key).or_default().push(t);
    }
    let model = |m: &str| c.models.iter().find(|r| r.model == m);
    by.into_iter()
        .map(|(k, ts)| {
            let (vals, ses): (Vec<f64>, Vec<f64>) = ts
                .iter()
                .map(|t| match metric {
                    Metric::DeltaNll => (t.delta_nll, t.delta_nll_se),
                    Metric::Kl => (t.kl_mean, t.kl_se),
                })
                .unzip();
            let n = vals.len() as f64;
            let mean = vals.iter().sum::<f64>() / n;
            let trial_var = if vals.len() > 1 {
                vals.iter().map(|v| (v - mean).powi(2)).sum::<f64>() / (n - 1.0) / n
            } else {
                0.0
            };
            let window_se = ses.iter().sum::<f64>() / n;
            let w = ts[0].window_delta.len();
            let windows = if metric == Metric::DeltaNll
                && w > 1
                && ts.iter().all(|t| t.window_delta.len() == w)
            {
                (0..w)
                    .map(|i| ts.iter().map(|t| f64::from(t.window_delta[i])).sum::<f64>() / n)
                    .collect()
            } else {
                Vec::new()
            };
            let m = model(&k.0);
            let cell = Cell {
                mean,
                trial_var,
                window_se,
                windows,
                n_params: m.map_or(f64::NAN, |m| m.n_params_non_embedding as f64),
                train_tokens: m
                    .and_then(|m| m.train_tokens)
                    .map_or(f64::NAN, |d| d as f64),
                family: m.map_or_else(String::new, |m| m.architecture.clone()),
            };
            (k, cell)
        })
        .collect()
}

/// z of mean_a − mean_b (see the module docs); `paired` when both cells share windows.
fn z_of(a: &Cell, b: &Cell, paired: bool) -> f64 {
    let window_var = if paired && !a.windows.is_empty() && a.windows.len() == b.windows.len() {
        let d: Vec<f64> = a
            .windows
            .iter()
            .zip(&b.windows)
            .map(|(x, y)| x - y)
            .collect();
        let se = super::super::eval::metrics::standard_error(&d);
        se * se
    } else {
        a.window_se.powi(2) + b.window_se.powi(2)
    };
    let var = a.trial_var + b.trial_var + window_var;
    (a.mean - b.mean) / var.sqrt()
}

/// Tallies comparisons where `claim` is that `z < 0` (a lower than b).
#[derive(Default)]
struct Tally {
    groups: usize,
    agree: usize,
    agree_sig: usize,
    against_sig: usize,
}

impl Tally {
    fn add_lower(&mut self, z: f64) {
        if !z.is_finite() {
            return;
        }
        self.groups += 1;
        let sig = p_two_sided(z) < ALPHA;
        if z < 0.0 {
            self.agree += 1;
            self.agree_sig += usize::from(sig);
        } else if sig {
            self.against_sig += 1;
        }
    }

    fn verdict(&self, id: &str, claim: &str, test: String) -> Takeaway {
        let verdict = if self.groups == 0 {
            "inconclusive (no such comparisons with measured SEs in this store)"
        } else if self.agree_sig * 2 > self.groups && self.against_sig * 10 < self.groups {
            "held"
        } else if self.against_sig * 2 > self.groups
            || (self.agree * 2 < self.groups && self.against_sig > self.agree_sig)
        {
            "not held"
        } else {
            "inconclusive"
        };
        Takeaway {
            id: id.into(),
            claim: claim.into(),
            verdict: verdict.into(),
            groups: self.groups,
            agree: self.agree,
            agree_significant: self.agree_sig,
            against_significant: self.against_sig,
            test,
        }
    }
}

/// Cells by (model, configuration, Qb, Qr).
type Cells = BTreeMap<Key, Cell>;

/// (a) convexity of each curve and the power to tell adjacent Qr levels apart.
fn curve_tallies(cells: &Cells) -> (Tally, Tally) {
    // Curves: (model, base, Qb) → the cells by Qr, ascending.
    let mut curves: BTreeMap<(&str, &str, &str), Vec<&Cell>> = BTreeMap::new();
    for (k, v) in cells {
        curves.entry((&k.0, &k.1, &k.2)).or_default().push(v);
    }
    // (a) convexity and adjacent-level power.
    let (mut convex, mut power) = (Tally::default(), Tally::default());
    for l in curves.values() {
        if l.len() >= 4 {
            let y = |i: usize| l[i];
            let n = l.len();
            let c_val = (y(n - 1).mean - y(n - 2).mean) - (y(1).mean - y(0).mean);
            let var: f64 = [y(n - 1), y(n - 2), y(1), y(0)]
                .iter()
                .map(|c| c.trial_var + c.window_se.powi(2))
                .sum();
            // Claim: c > 0, tallied as "−c lower than 0".
            convex.add_lower(-c_val / var.sqrt());
        }
        for w in l.windows(2) {
            // Claim: the higher Qr loses more, i.e. the lower level is lower.
            power.add_lower(z_of(w[0], w[1], true));
        }
    }
    (convex, power)
}

/// Pairs of cells that share a family, a configuration, Qb and Qr > 0, and the quantity
/// `fixed` (rounded to an integer; unknown values form one group), adjacent in `order`
/// (ascending; cells where it is unknown are left out): (lower, higher).
fn adjacent_pairs(
    cells: &Cells,
    fixed: impl Fn(&Cell) -> f64,
    order: impl Fn(&Cell) -> f64,
) -> Vec<(&Cell, &Cell)> {
    let mut by: BTreeMap<(&str, u64, &str, &str, u64), Vec<&Cell>> = BTreeMap::new();
    for (k, v) in cells {
        let f = fixed(v);
        let f = if f.is_finite() {
            f.round() as u64
        } else {
            u64::MAX
        };
        if k.3 > 0 && order(v).is_finite() {
            by.entry((&v.family, f, &k.1, &k.2, k.3))
                .or_default()
                .push(v);
        }
    }
    let mut pairs = Vec::new();
    for group in by.values_mut() {
        group.sort_by(|a, b| order(a).total_cmp(&order(b)));
        pairs.extend(group.windows(2).map(|w| (w[0], w[1])));
    }
    pairs
}

/// (b) size-adjacent models of one family and token budget: the larger one loses less.
fn size_tally(cells: &Cells) -> Tally {
    let mut size = Tally::default();
    for (small, large) in adjacent_pairs(cells, |c| c.train_tokens, |c| c.n_params) {
        size.add_lower(z_of(large, small, false));
    }
    size
}

/// (e) checkpoints of one family and size trained on adjacent token budgets, same
/// configuration and Qr > 0: the one trained longer loses more.
fn budget_tally(cells: &Cells) -> Tally {
    let mut budget = Tally::default();
    for (short, long) in adjacent_pairs(cells, |c| c.n_params, |c| c.train_tokens) {
        budget.add_lower(z_of(short, long, false));
    }
    budget
}

/// (c) Qb 16 against Qb 128, and the ratio's trend in N.
fn qb_tallies(cells: &Cells) -> (Tally, Tally) {
    // (c) Qb 16 < Qb 128 at Qr ≥ 0.6; the ratio at Qr = 1 against N.
    let mut qb = Tally::default();
    let mut ratios: BTreeMap<(String, String), Vec<(f64, f64)>> = BTreeMap::new();
    for (k, v) in cells {
        if k.2 != "16" {
            continue;
        }
        let other = (k.0.clone(), k.1.clone(), "128".to_string(), k.3);
        if let Some(b) = cells.get(&other) {
            if k.3 >= 600_000 {
                qb.add_lower(z_of(v, b, true));
            }
            if k.3 == 1_000_000 && v.mean > 0.0 && b.mean > 0.0 {
                let fam_fmt = (
                    v.family.clone(),
                    k.1.split('|').nth(1).unwrap_or("").to_string(),
                );
                ratios
                    .entry(fam_fmt)
                    .or_default()
                    .push((v.n_params, b.mean / v.mean));
            }
        }
    }
    let mut shrink = Tally::default();
    for pts in ratios.values() {
        if pts.len() >= 3 {
            let rho = spearman(pts);
            // Claim: ρ < 0; no SE for a rank correlation of ≤ 5 points: significant when
            // |ρ| = 1 with 5 points (exact p = 2/120).
            shrink.groups += 1;
            if rho < 0.0 {
                shrink.agree += 1;
                shrink.agree_sig += usize::from(rho <= -1.0 + 1e-12 && pts.len() >= 5);
            } else if rho >= 1.0 - 1e-12 && pts.len() >= 5 {
                shrink.against_sig += 1;
            }
        }
    }
    (qb, shrink)
}

/// (d) finer against coarser granularity under one operands rule; the pairs compared.
fn granularity_tally(
    cells: &Cells,
    spec: &super::SweepSpec,
) -> (Tally, Vec<(&'static str, &'static str)>) {
    // (d) granularity: finer lower at equal Qr (0 < Qr < 1).
    let mut gran = Tally::default();
    // Only granularities under the same operands rule are compared (the legacy rule gave
    // matmul sites activations and layer sites none).
    let finer: Vec<(&'static str, &'static str)> = [
        (Granularity::Matmul, Granularity::Layer),
        (Granularity::Layer, Granularity::Block),
    ]
    .into_iter()
    .filter(|(f, co)| spec.operands_for(*f) == spec.operands_for(*co))
    .map(|(f, co)| (f.id(), co.id()))
    .collect();
    for (k, v) in cells {
        if k.3 == 0 || k.3 == 1_000_000 {
            continue;
        }
        for &(fine, coarse) in &finer {
            if k.1.starts_with(&format!("{fine}|")) {
                let other = (k.0.clone(), k.1.replacen(fine, coarse, 1), k.2.clone(), k.3);
                if let Some(b) = cells.get(&other) {
                    gran.add_lower(z_of(v, b, true));
                }
            }
        }
    }
    (gran, finer)
}

/// Tests the takeaways on `c` with `metric`.
pub fn analyze(c: &StoreContents, metric: Metric) -> Analysis {
    let cells = cells(c, metric);
    let (convex, power) = curve_tallies(&cells);
    let size = size_tally(&cells);
    let (qb, shrink) = qb_tallies(&cells);
    let (gran, finer) = granularity_tally(&cells, &c.spec);
    let budget = budget_tally(&cells);
    let label = match metric {
        Metric::DeltaNll => "ΔL",
        Metric::Kl => "KL",
    };
    let takeaways = vec![
        convex.verdict(
            "a",
            &format!("{label} grows with Qr exponentially (convex), not linearly (Cao et al.)"),
            "per curve: c = [y(1) − y(1−h)] − [y(h) − y(0)] > 0, z from the four levels' SEs".into(),
        ),
        size.verdict(
            "b",
            &format!("at fixed Qr a larger model loses less {label} (Cao et al.)"),
            "size-adjacent models of one family, same configuration, Qr > 0".into(),
        ),
        qb.verdict(
            "c1",
            &format!("Qb 16 gives lower {label} than Qb 128 (Cao et al.)"),
            "per model, low format and Qr ≥ 0.6, paired over windows".into(),
        ),
        shrink.verdict(
            "c2",
            "the benefit of small blocks shrinks as N grows (Cao et al.)",
            format!("per family and format: Spearman ρ of {label}(Qb 128)/{label}(Qb 16) at Qr = 1 against N < 0 (significant only at ρ = −1 over 5 sizes)"),
        ),
        gran.verdict(
            "d",
            &format!("finer granularity gives lower {label} at equal Qr (Cao et al., first version)"),
            format!(
                "per model and 0 < Qr < 1, paired over windows: {} (pairs under different operands rules are not compared)",
                if finer.is_empty() {
                    "no pair of granularities shares an operands rule".to_string()
                } else {
                    finer.iter().map(|(f, co)| format!("{f} vs {co}")).collect::<Vec<_>>().join(", ")
                }
            ),
        ),
        budget.verdict(
            "e",
            &format!("at fixed N, a checkpoint trained on more tokens loses more {label} (Kumar et al.)"),
            "checkpoints of one family and size on adjacent token budgets, same configuration, Qr > 0".into(),
        ),
        power.verdict(
            "power",
            "adjacent Qr levels are told apart",
            "per curve, each pair of adjacent Qr levels, paired over windows".into(),
        ),
    ];
    let tokens: Vec<usize> = c.trials.iter().map(|t| t.n_tokens).collect();
    let mut ses: Vec<f64> = cells
        .values()
        .map(|c| (c.trial_var + c.window_se.powi(2)).sqrt())
        .filter(|s| s.is_finite())
        .collect();
    ses.sort_by(f64::total_cmp);
    Analysis {
        metric: metric.id().into(),
        n_trials: c.trials.len(),
        n_configurations: cells.len(),
        tokens_per_trial: [
            tokens.iter().copied().min().unwrap_or(0),
            tokens.iter().copied().max().unwrap_or(0),
        ],
        median_config_se: ses.get(ses.len() / 2).copied().unwrap_or(f64::NAN),
        takeaways,
    }
}

/// Spearman rank correlation of (x, y) pairs (no ties expected).
fn spearman(pts: &[(f64, f64)]) -> f64 {
    let rank = |v: Vec<f64>| -> Vec<f64> {
        let mut idx: Vec<usize> = (0..v.len()).collect();
        idx.sort_by(|&a, &b| v[a].total_cmp(&v[b]));
        let mut r = vec![0.0; v.len()];
        for (k, &i) in idx.iter().enumerate() {
            r[i] = k as f64;
        }
        r
    };
    let rx = rank(pts.iter().map(|p| p.0).collect());
    let ry = rank(pts.iter().map(|p| p.1).collect());
    let n = pts.len() as f64;
    let d2: f64 = rx.iter().zip(&ry).map(|(a, b)| (a - b).powi(2)).sum();
    1.0 - 6.0 * d2 / (n * (n * n - 1.0))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn p_values_match_the_normal_table() {
        assert!((p_two_sided(1.959_964) - 0.05).abs() < 1e-6);
        assert!((p_two_sided(0.0) - 1.0).abs() < 1e-6);
        assert!((p_two_sided(-2.575_829) - 0.01).abs() < 1e-6);
        assert!(p_two_sided(40.0) < 1e-300 || p_two_sided(40.0) == 0.0);
    }

    /// A store of one family, three sizes, Qb 16/128, Qr 0…1 in steps of 0.25, 4 trials of 16
    /// windows: ΔL = size·qb·e^{2·Qr}·0.01 − 0.01·size·qb (0 at Qr = 0) × `effect`, plus
    /// per-window noise of sd 0.002 shared by every configuration of a model and per-trial
    /// noise of sd 0.0005.
    fn synthetic(effect: f64) -> StoreContents {
        use rand::{Rng as _, SeedableRng as _};
        let mut rng = rand::rngs::StdRng::seed_from_u64(7);
        let mut normal = move || {
            let u1: f64 = 1.0 - rng.random::<f64>();
            let u2: f64 = rng.random::<f64>();
            (-2.0 * u1.ln()).sqrt() * (std::f64::consts::TAU * u2).cos()
        };
        let mut c = StoreContents::default();
        for (i, n) in [1e4, 1e5, 1e6].into_iter().enumerate() {
            let model = format!("m{i}");
            c.models.push(super::super::ModelRow {
                model: model.clone(),
                path: String::new(),
                architecture: "Fam".into(),
                n_params_non_embedding: n as usize,
                n_params_total: n as usize,
                train_tokens: None,
                nll_base: 4.0,
                n_windows: 16,
                ctx: 32,
            });
            let text: Vec<f64> = (0..16).map(|_| 0.002 * normal()).collect();
            for qb in ["16", "128"] {
                let size = 1.0 / (1.0 + i as f64);
                let qbf = if qb == "16" { 1.0 } else { 2.0 };
                for q in [0.0f64, 0.25, 0.5, 0.75, 1.0] {
                    let truth = effect * 0.01 * size * qbf * ((2.0 * q).exp() - 1.0);
                    for t in 0..4 {
                        let trial = 0.0005 * normal() * effect;
                        let w: Vec<f32> = text
                            .iter()
                            .map(|x| (truth + trial + x * (q > 0.0) as u8 as f64) as f32)
                            .collect();
                        let mean = w.iter().map(|&x| f64::from(x)).sum::<f64>() / 16.0;
                        let se = crate::eval::metrics::standard_error(
                            &w.iter().map(|&x| f64::from(x)).collect::<Vec<_>>(),
                        );
                        c.trials.push(TrialRow {
                            config_key: format!("{model}|{qb}|{q}"),
                            trial_seed: t,
                            trial_index: t as usize,
                            model: model.clone(),
                            granularity: "layer".into(),
                            low: format!("mxint4,block={qb}"),
                            high: "bf16".into(),
                            method: "rtn".into(),
                            qb: qb.into(),
                            qr_target: q,
                            qr_achieved: q,
                            qr_weighting: "parameters".into(),
                            bits_per_weight: 4.0,
                            nll_base: 4.0,
                            nll: 4.0 + mean,
                            delta_nll: mean,
                            ci_lo: mean - 2.0 * se,
                            ci_hi: mean + 2.0 * se,
                            kl_mean: truth.abs(),
                            top1: 0.9,
                            n_tokens: 16 * 31,
                            seconds: 0.0,
                            assignment: String::new(),
                            delta_nll_se: if se.is_finite() { se } else { 0.0 },
                            kl_se: 1e-4,
                            window_delta: w,
                        });
                    }
                }
            }
        }
        c
    }

    #[test]
    fn planted_effects_are_found_and_absent_ones_are_not() {
        let a = analyze(&synthetic(1.0), Metric::DeltaNll);
        let v = |id: &str| {
            a.takeaways
                .iter()
                .find(|t| t.id == id)
                .map(|t| t.verdict.clone())
                .unwrap()
        };
        assert_eq!(v("a"), "held", "{a:#?}");
        assert_eq!(v("b"), "held", "{a:#?}");
        assert_eq!(v("c1"), "held", "{a:#?}");
        assert_eq!(v("power"), "held", "{a:#?}");
        // One granularity only: nothing to compare.
        assert!(v("d").starts_with("inconclusive"));
        // No effect at all: nothing is held.
        let null = analyze(&synthetic(0.0), Metric::DeltaNll);
        for t in &null.takeaways {
            assert_ne!(t.verdict, "held", "{t:#?}");
        }
        // Reversed sizes: larger models lose more → (b) not held.
        let mut rev = synthetic(1.0);
        for m in &mut rev.models {
            m.n_params_non_embedding = 10_000_000 / m.n_params_non_embedding;
        }
        let r = analyze(&rev, Metric::DeltaNll);
        assert_eq!(r.takeaways[1].verdict, "not held", "{:#?}", r.takeaways[1]);
        // (b) compares sizes only within one token budget: three budgets, no pairs.
        let mut budgets = synthetic(1.0);
        for (i, m) in budgets.models.iter_mut().enumerate() {
            m.train_tokens = Some(1_000_000 << i);
        }
        let b = analyze(&budgets, Metric::DeltaNll);
        assert_eq!(b.takeaways[1].groups, 0, "{:#?}", b.takeaways[1]);
    }

    #[test]
    fn spearman_of_monotone_pairs() {
        let up = [(1.0, 2.0), (2.0, 3.0), (3.0, 7.0)];
        assert!((spearman(&up) - 1.0).abs() < 1e-12);
        let down = [(1.0, 9.0), (2.0, 3.0), (3.0, 1.0), (4.0, 0.5)];
        assert!((spearman(&down) + 1.0).abs() < 1e-12);
    }
}
