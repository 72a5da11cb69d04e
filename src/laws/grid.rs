//! A fitted law on a 2-D grid over two variables, its isolines, and ΔL budget curves.
//!
//! Grid values are row-major, `ny` rows of `nx`: `values[j·nx + i]` is the law at
//! (x_i, y_j). Log axes are spaced evenly in log10. Isolines come from the `contour` crate
//! (marching squares with linear interpolation), whose value i sits at coordinate i + ½; we
//! map that back onto the axes and drop the segments the crate draws along the grid frame, so
//! every returned point lies on the level set inside the grid. Polylines are in data units.

use super::{Law, Row, Var};
use crate::{Error, Result};
use rayon::prelude::*;

/// One grid axis.
#[derive(Clone, Copy, Debug, PartialEq, serde::Serialize)]
pub struct Axis {
    /// The variable along the axis.
    pub var: Var,
    /// First value.
    pub min: f64,
    /// Last value.
    pub max: f64,
    /// Number of samples (≥ 2).
    pub n: usize,
    /// Spaced evenly in log10 (needs min > 0).
    pub log: bool,
}

impl Axis {
    /// An axis with the variable's default scale (log for N, D, Qb).
    pub fn new(var: Var, min: f64, max: f64, n: usize) -> Self {
        Self {
            var,
            min,
            max,
            n,
            log: var.is_log_scale(),
        }
    }

    fn value_to_t(self, v: f64) -> f64 {
        if self.log {
            v.log10()
        } else {
            v
        }
    }

    fn t_to_value(self, t: f64) -> f64 {
        if self.log {
            10f64.powf(t)
        } else {
            t
        }
    }

    /// The sample positions.
    pub fn values(self) -> Vec<f64> {
        let (a, b) = (self.value_to_t(self.min), self.value_to_t(self.max));
        let steps = (self.n - 1).max(1) as f64;
        (0..self.n)
            .map(|i| self.t_to_value(a + (b - a) * i as f64 / steps))
            .collect()
    }

    fn check(self) -> Result<()> {
        let ok = self.n >= 2
            && self.min.is_finite()
            && self.max.is_finite()
            && self.min < self.max
            && (!self.log || self.min > 0.0);
        if ok {
            Ok(())
        } else {
            Err(Error::Input(format!(
                "axis {}: need 2+ samples and min < max (and min > 0 on a log axis), got {}..{} × {}",
                self.var, self.min, self.max, self.n
            )))
        }
    }
}

/// A law sampled on a grid.
#[derive(Clone, Debug, serde::Serialize)]
pub struct GridValues {
    /// Horizontal axis.
    pub x: Axis,
    /// Vertical axis.
    pub y: Axis,
    /// Sample positions along x.
    pub xs: Vec<f64>,
    /// Sample positions along y.
    pub ys: Vec<f64>,
    /// Row-major values, `ys.len()` rows of `xs.len()`.
    pub values: Vec<f64>,
}

/// One isoline level: its polylines (data units) and where to put its label.
#[derive(Clone, Debug, serde::Serialize)]
pub struct Isoline {
    /// The level.
    pub level: f64,
    /// Polylines of (x, y) points.
    pub lines: Vec<Vec<[f64; 2]>>,
    /// A point on the longest polyline for the label, if any line exists.
    pub label_at: Option<[f64; 2]>,
    /// The label text (`ΔL = 0.05`).
    pub label: String,
}

/// Evaluates `law` with parameters `p` over `x` × `y`; other variables come from `base`.
pub fn evaluate(law: &Law, p: &[f64], x: Axis, y: Axis, base: &Row) -> Result<GridValues> {
    x.check()?;
    y.check()?;
    if x.var == y.var {
        return Err(Error::Input(format!("both grid axes are {}", x.var)));
    }
    law.check_params(p)?;
    let (xs, ys) = (x.values(), y.values());
    let mut values = vec![0.0; xs.len() * ys.len()];
    // Rows in parallel: a 200 × 200 map is re-evaluated every frame while a slider moves.
    values
        .par_chunks_mut(xs.len().max(1))
        .zip(&ys)
        .for_each(|(out, &yv)| {
            let mut row = *base;
            row[y.var.index()] = yv;
            for (o, &xv) in out.iter_mut().zip(&xs) {
                row[x.var.index()] = xv;
                *o = law.eval(p, &row);
            }
        });
    Ok(GridValues {
        x,
        y,
        xs,
        ys,
        values,
    })
}

impl GridValues {
    /// Isolines at `levels` (non-finite grid values are treated as below every level).
    pub fn isolines(&self, levels: &[f64], label_prefix: &str) -> Result<Vec<Isoline>> {
        let (nx, ny) = (self.xs.len(), self.ys.len());
        let vals: Vec<f64> = self
            .values
            .iter()
            .map(|v| if v.is_finite() { *v } else { f64::MIN })
            .collect();
        // One level per task (the levels are independent).
        let lines: Vec<contour::Line> = levels
            .par_iter()
            .map(|l| {
                contour::ContourBuilder::new(nx, ny, true)
                    .lines(&vals, std::slice::from_ref(l))
                    .map_err(|e| Error::Input(format!("contouring failed: {e:?}")))
            })
            .collect::<Result<Vec<_>>>()?
            .into_iter()
            .flatten()
            .collect();
        let (tx0, tx1) = (self.x.value_to_t(self.x.min), self.x.value_to_t(self.x.max));
        let (ty0, ty1) = (self.y.value_to_t(self.y.min), self.y.value_to_t(self.y.max));
        let sx = (tx1 - tx0) / (nx - 1) as f64;
        let sy = (ty1 - ty0) / (ny - 1) as f64;
        let eps = 1e-9;
        let inside = |cx: f64, cy: f64| {
            cx >= 0.5 - eps
                && cx <= nx as f64 - 0.5 + eps
                && cy >= 0.5 - eps
                && cy <= ny as f64 - 0.5 + eps
        };
        Ok(lines
            .into_iter()
            .map(|line| {
                let level = line.threshold();
                let mut polylines: Vec<Vec<[f64; 2]>> = Vec::new();
                for ls in &line.geometry().0 {
                    let mut cur: Vec<[f64; 2]> = Vec::new();
                    for c in &ls.0 {
                        if inside(c.x, c.y) {
                            let x = self.x.t_to_value(tx0 + (c.x - 0.5) * sx);
                            let y = self.y.t_to_value(ty0 + (c.y - 0.5) * sy);
                            cur.push([x, y]);
                        } else if !cur.is_empty() {
                            polylines.push(std::mem::take(&mut cur));
                        }
                    }
                    if !cur.is_empty() {
                        polylines.push(cur);
                    }
                }
                polylines.retain(|l| l.len() >= 2);
                let label_at = polylines
                    .iter()
                    .max_by_key(|l| l.len())
                    .and_then(|l| l.get(l.len() / 2).copied());
                Isoline {
                    level,
                    lines: polylines,
                    label_at,
                    label: format!("{label_prefix}{}", format_level(level)),
                }
            })
            .collect())
    }
}

fn format_level(v: f64) -> String {
    if v != 0.0 && (v.abs() < 1e-3 || v.abs() >= 1e4) {
        format!("{v:.2e}")
    } else {
        format!("{}", (v * 1e4).round() / 1e4)
    }
}

/// For each N in `ns`, the largest value of `var` in [lo, hi] whose predicted ΔL stays within
/// `budget` (other variables from `base`): `None` when even `lo` exceeds the budget. Assumes
/// the law increases with `var` (true of the unified laws with A > 0 and γ_c > 0; a scan of 64
/// points finds the first crossing otherwise, then bisection refines it).
pub fn budget_curve(
    law: &Law,
    p: &[f64],
    base: &Row,
    var: Var,
    range: (f64, f64),
    budget: f64,
    ns: &[f64],
) -> Result<Vec<Option<f64>>> {
    law.check_params(p)?;
    let (lo, hi) = range;
    let log = var.is_log_scale() && lo > 0.0;
    let t = |v: f64| if log { v.ln() } else { v };
    let inv = |u: f64| if log { u.exp() } else { u };
    Ok(ns
        .iter()
        .map(|&n| {
            let mut row = *base;
            row[Var::N.index()] = n;
            let f = |v: f64| {
                let mut r = row;
                r[var.index()] = v;
                law.eval(p, &r)
            };
            let within = |v: f64| f(v) <= budget;
            if !within(lo) {
                return None;
            }
            let (a, b) = (t(lo), t(hi));
            let steps = 64;
            let mut prev = a;
            for s in 1..=steps {
                let u = a + (b - a) * s as f64 / steps as f64;
                if !within(inv(u)) {
                    let (mut l, mut h) = (prev, u);
                    for _ in 0..60 {
                        let m = 0.5 * (l + h);
                        if within(inv(m)) {
                            l = m;
                        } else {
                            h = m;
                        }
                    }
                    return Some(inv(l));
                }
                prev = u;
            }
            Some(hi)
        })
        .collect())
}
