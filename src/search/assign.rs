//! Sites of a model at a granularity, and random mixed-precision assignments reaching a target
//! Qr (DESIGN §3).
//!
//! Qr = Σ weight(low sites) / Σ weight(all sites), with weight = parameters (layer- and
//! block-wise) or multiply–accumulates per token at the evaluation context (matmul-wise, causal
//! attention averaged over positions). A trial draws a seeded random order of the sites and
//! takes them greedily while the low share stays ≤ target + tolerance; the draw is accepted when
//! |achieved − target| ≤ tolerance, else redrawn (at most [`MAX_DRAWS`] times). A target no
//! draw reaches (few, unequal sites) makes the trial unreachable: it is reported, not run.

use rand::seq::SliceRandom as _;
use rand::SeedableRng as _;

use super::spec::{Granularity, Operands};
use crate::model::transformer::macs_per_token;
use crate::model::{MatmulKind, Transformer};

/// Redraws per trial before a target counts as unreachable.
pub const MAX_DRAWS: usize = 256;

/// One site: what it covers and its weight in Qr.
#[derive(Clone, Debug, PartialEq)]
pub struct Site {
    /// Name (checkpoint weight name, `layers.N` for blocks, `layers.N.attn.qk` …).
    pub name: String,
    /// Parameters or MACs per token.
    pub weight: f64,
    /// Linear sites whose weights it covers.
    pub linears: Vec<usize>,
    /// Matmul sites whose activation operands it covers (with
    /// [`Operands::WeightsAndActivations`] only).
    pub matmuls: Vec<usize>,
}

/// The sites of `model` at granularity `g` under the operands rule `ops` (see [`Operands`];
/// `ctx` weighs attention matmuls).
pub fn sites(model: &Transformer, g: Granularity, ops: Operands, ctx: usize) -> Vec<Site> {
    let acts = ops == Operands::WeightsAndActivations;
    // The matmul of each linear.
    let matmul_of = |i: usize| {
        model
            .matmuls
            .iter()
            .position(|m| matches!(m.kind, MatmulKind::Linear(j) if j == i))
    };
    match g {
        Granularity::Layer => model
            .linears
            .iter()
            .enumerate()
            .map(|(i, l)| Site {
                name: l.name.clone(),
                weight: l.n_params() as f64,
                linears: vec![i],
                matmuls: if acts {
                    matmul_of(i).into_iter().collect()
                } else {
                    Vec::new()
                },
            })
            .collect(),
        Granularity::Block => (0..model.blocks.len())
            .map(|b| {
                let linears: Vec<usize> = model
                    .linears
                    .iter()
                    .enumerate()
                    .filter(|(_, l)| l.layer == b)
                    .map(|(i, _)| i)
                    .collect();
                let matmuls = if acts {
                    (0..model.matmuls.len())
                        .filter(|&m| model.matmuls[m].layer == b)
                        .collect()
                } else {
                    Vec::new()
                };
                Site {
                    name: format!("layers.{b}"),
                    weight: linears
                        .iter()
                        .map(|&i| model.linears[i].n_params() as f64)
                        .sum(),
                    linears,
                    matmuls,
                }
            })
            .collect(),
        Granularity::Matmul => model
            .matmuls
            .iter()
            .enumerate()
            .filter(|(_, s)| acts || matches!(s.kind, MatmulKind::Linear(_)))
            .map(|(m, s)| Site {
                name: s.name.clone(),
                weight: macs_per_token(s, &model.config, &model.linears, ctx),
                linears: match s.kind {
                    MatmulKind::Linear(i) => vec![i],
                    _ => Vec::new(),
                },
                matmuls: if acts { vec![m] } else { Vec::new() },
            })
            .collect(),
    }
}

/// Which sites are low precision, and the Qr achieved.
#[derive(Clone, Debug, PartialEq)]
pub struct Assignment {
    /// Per site: low precision?
    pub low: Vec<bool>,
    /// Achieved Qr.
    pub qr: f64,
}

impl Assignment {
    /// `0`/`1` per site, e.g. `0110…` (stored with each trial).
    pub fn bits(&self) -> String {
        self.low
            .iter()
            .map(|l| if *l { '1' } else { '0' })
            .collect()
    }
}

/// Qr of `low` over `sites`.
pub fn qr_of(sites: &[Site], low: &[bool]) -> f64 {
    let total: f64 = sites.iter().map(|s| s.weight).sum();
    if total <= 0.0 {
        return 0.0;
    }
    sites
        .iter()
        .zip(low)
        .filter(|(_, l)| **l)
        .map(|(s, _)| s.weight)
        .sum::<f64>()
        / total
}

/// A seeded random assignment with |Qr − target| ≤ tol, or `None` when no draw reaches it.
pub fn assign(sites: &[Site], target: f64, tol: f64, seed: u64) -> Option<Assignment> {
    let n = sites.len();
    let total: f64 = sites.iter().map(|s| s.weight).sum();
    if target <= 0.0 || total <= 0.0 {
        return Some(Assignment {
            low: vec![false; n],
            qr: 0.0,
        });
    }
    if target >= 1.0 {
        return Some(Assignment {
            low: vec![true; n],
            qr: 1.0,
        });
    }
    let mut rng = rand::rngs::StdRng::seed_from_u64(seed);
    let mut order: Vec<usize> = (0..n).collect();
    let cap = (target + tol) * total;
    for _ in 0..MAX_DRAWS {
        order.shuffle(&mut rng);
        let mut low = vec![false; n];
        let mut cum = 0.0;
        for &i in &order {
            if cum + sites[i].weight <= cap * (1.0 + 1e-12) {
                low[i] = true;
                cum += sites[i].weight;
            }
        }
        let qr = cum / total;
        if (qr - target).abs() <= tol + 1e-12 {
            return Some(Assignment { low, qr });
        }
    }
    None
}

#[cfg(test)]
mod tests {
    use super::*;

    fn equal(n: usize) -> Vec<Site> {
        (0..n)
            .map(|i| Site {
                name: format!("s{i}"),
                weight: 1.0,
                linears: vec![i],
                matmuls: Vec::new(),
            })
            .collect()
    }

    #[test]
    fn reaches_targets_within_tolerance_and_is_seeded() {
        let s = equal(40);
        for t in [0.0, 0.1, 0.33, 0.5, 0.9, 1.0] {
            let a = assign(&s, t, 0.03, 7).unwrap();
            assert!((a.qr - t).abs() <= 0.03, "{t}: {}", a.qr);
            assert!((qr_of(&s, &a.low) - a.qr).abs() < 1e-12);
            assert_eq!(assign(&s, t, 0.03, 7), Some(a.clone()));
        }
        let a = assign(&s, 0.5, 0.03, 1).unwrap();
        let b = assign(&s, 0.5, 0.03, 2).unwrap();
        assert_ne!(a.low, b.low, "different seeds, different draws");
    }

    #[test]
    fn unreachable_targets_are_none() {
        // Two sites of weight 1 and 9: Qr ∈ {0, 0.1, 0.9, 1}.
        let mut s = equal(2);
        s[1].weight = 9.0;
        assert!(assign(&s, 0.5, 0.05, 0).is_none());
        assert!((assign(&s, 0.12, 0.05, 0).unwrap().qr - 0.1).abs() < 1e-12);
    }
}
