//! The optimiser behind [`super::fit`]: bounded Levenberg–Marquardt on a Huber (or squared)
//! loss of log or linear residuals.
//!
//! Objective: F(p) = Σ_i w_i·ρ(r_i(p)), w_i = multiplicity of point i (bootstrap and
//! leave-one-size-out set some to 0 or >1 instead of copying rows), ρ the Huber function
//! (ρ(r) = r²/2 for |r| ≤ δ, δ(|r| − δ/2) beyond) or r²/2.
//! Steps solve (JᵀΩJ + λ·diag JᵀΩJ)·s = −JᵀΩr with IRLS weights Ω = w·min(1, δ/|r|), are
//! projected onto the bounds and accepted only when the true objective decreases.
//! The scale parameter C moves in ln C (its Jacobian column is 1 in log space); at each start
//! it is first solved exactly (variable projection: the 1-D convex problem min_c Σ w ρ(e + c)
//! by safeguarded Newton), and linear parameters by weighted least squares, so the start grid
//! spans only the non-linear parameters. Product-form laws are evaluated in log form
//! ([`Law::ln_eval_grad`]) with ln of the variables precomputed.

use nalgebra::{DMatrix, DVector};

use super::forms::{Law, Role};
use super::Row;

/// Robust loss on residuals.
#[derive(Clone, Copy, Debug, PartialEq, serde::Serialize, serde::Deserialize)]
pub enum Loss {
    /// Huber with threshold δ (in residual units: log units in log space).
    Huber {
        /// Threshold between the quadratic and linear parts.
        delta: f64,
    },
    /// Plain least squares.
    LeastSquares,
}

/// Which residuals are minimised.
#[derive(Clone, Copy, Debug, PartialEq, Eq, serde::Serialize, serde::Deserialize)]
pub enum Space {
    /// ln ŷ − ln y (points with y ≤ 0 are excluded).
    Log,
    /// ŷ − y (keeps every point).
    Linear,
}

/// A fitting problem over fixed data.
pub(crate) struct Problem<'a> {
    pub law: &'a Law,
    pub rows: &'a [Row],
    pub y: &'a [f64],
    pub ln_y: Vec<f64>,
    pub space: Space,
    pub loss: Loss,
    /// ln of every variable of every row (NaN where not positive).
    pub ln_rows: Vec<Row>,
    /// The scale parameter: moved in ln C, solved exactly at each start in log space.
    pub scale: Option<usize>,
    /// Parameters moved by LM steps (all of them, in law order).
    pub free: Vec<usize>,
    pub max_iter: usize,
    /// Stop when an accepted step lowers the objective by less than this fraction.
    pub ftol: f64,
    /// Precision weight of every point (inverse variance, mean 1), multiplying the
    /// multiplicities given to [`Problem::solve`]; empty = all equal.
    pub precision: Vec<f64>,
}

/// Result of one local solve.
#[derive(Clone, Debug)]
pub(crate) struct Solution {
    pub params: Vec<f64>,
    pub objective: f64,
    pub iterations: usize,
    pub converged: bool,
}

struct Work {
    r: Vec<f64>,
    jac: Vec<f64>,
    grad: Vec<f64>,
}

impl Loss {
    /// ρ(r).
    pub(crate) fn rho(self, r: f64) -> f64 {
        match self {
            Loss::LeastSquares => 0.5 * r * r,
            Loss::Huber { delta } => {
                let a = r.abs();
                if a <= delta {
                    0.5 * r * r
                } else {
                    delta * (a - 0.5 * delta)
                }
            }
        }
    }

    /// IRLS weight ψ(r)/r.
    fn weight(self, r: f64) -> f64 {
        match self {
            Loss::LeastSquares => 1.0,
            Loss::Huber { delta } => {
                let a = r.abs();
                if a <= delta {
                    1.0
                } else {
                    delta / a
                }
            }
        }
    }

    fn psi(self, r: f64) -> f64 {
        match self {
            Loss::LeastSquares => r,
            Loss::Huber { delta } => r.clamp(-delta, delta),
        }
    }
}

impl<'a> Problem<'a> {
    pub fn new(law: &'a Law, rows: &'a [Row], y: &'a [f64], space: Space, loss: Loss) -> Self {
        let ln_y = y.iter().map(|v| v.ln()).collect();
        let ln_rows = rows
            .iter()
            .map(|r| {
                let mut l = [f64::NAN; super::N_VARS];
                for v in &law.vars {
                    let x = r[v.index()];
                    if x > 0.0 {
                        l[v.index()] = x.ln();
                    }
                }
                l
            })
            .collect();
        Problem {
            law,
            rows,
            y,
            ln_y,
            ln_rows,
            space,
            loss,
            scale: law.scale_index(),
            free: (0..law.params.len()).collect(),
            max_iter: 200,
            ftol: 1e-9,
            precision: Vec::new(),
        }
    }

    fn work(&self) -> Work {
        let n = self.rows.len();
        Work {
            r: vec![0.0; n],
            jac: vec![0.0; n * self.free.len()],
            grad: vec![0.0; self.law.params.len()],
        }
    }

    fn clamp(&self, i: usize, v: f64) -> f64 {
        let s = &self.law.params[i];
        v.clamp(s.lower, s.upper)
    }

    /// Residuals, Jacobian (scale column in ln C) and objective at `p`. `None` where the law
    /// leaves its domain (non-finite, or ≤ 0 in log space).
    fn eval(&self, p: &[f64], w: &[f64], ws: &mut Work) -> Option<f64> {
        let k = self.free.len();
        let log = self.space == Space::Log;
        let mut f = 0.0;
        for (i, ((row, lrow), &wi)) in self.rows.iter().zip(&self.ln_rows).zip(w).enumerate() {
            let jrow = &mut ws.jac[i * k..(i + 1) * k];
            if wi == 0.0 {
                ws.r[i] = 0.0;
                jrow.fill(0.0);
                continue;
            }
            let fast = if log {
                self.law.ln_eval_grad(p, row, lrow, &mut ws.grad)
            } else {
                None
            };
            let (r, div) = match fast {
                Some(lh) => (lh - self.ln_y[i], 1.0),
                None => {
                    let h = self.law.eval_grad(p, row, &mut ws.grad);
                    if log {
                        if !(h > 0.0 && h.is_finite()) {
                            return None;
                        }
                        (h.ln() - self.ln_y[i], h)
                    } else {
                        (h - self.y[i], 1.0)
                    }
                }
            };
            if !r.is_finite() {
                return None;
            }
            for (j, &fi) in self.free.iter().enumerate() {
                let mut d = ws.grad[fi] / div;
                if Some(fi) == self.scale {
                    d *= p[fi];
                }
                jrow[j] = d;
            }
            ws.r[i] = r;
            f += wi * self.loss.rho(r);
        }
        (f.is_finite() && ws.jac.iter().all(|v| v.is_finite())).then_some(f)
    }

    /// argmin_c Σ w_i ρ(e_i + c): closed form for least squares, safeguarded Newton otherwise.
    fn offset(&self, e: &[f64], w: &[f64]) -> f64 {
        let (mut sw, mut swe) = (0.0, 0.0);
        let (mut emin, mut emax) = (f64::INFINITY, f64::NEG_INFINITY);
        for (&ei, &wi) in e.iter().zip(w) {
            if wi > 0.0 {
                sw += wi;
                swe += wi * ei;
                emin = emin.min(ei);
                emax = emax.max(ei);
            }
        }
        if sw == 0.0 {
            return 0.0;
        }
        let Loss::Huber { delta } = self.loss else {
            return -swe / sw;
        };
        // S(c) = Σ w ψ(e + c) is non-decreasing; bracket the root.
        let (mut lo, mut hi) = (-emax - delta, -emin + delta);
        let mut c = -swe / sw;
        for _ in 0..200 {
            let (mut s, mut ds) = (0.0, 0.0);
            for (&ei, &wi) in e.iter().zip(w) {
                let r = ei + c;
                s += wi * self.loss.psi(r);
                if r.abs() <= delta {
                    ds += wi;
                }
            }
            if s.abs() <= 1e-15 * sw * delta {
                break;
            }
            if s > 0.0 {
                hi = c;
            } else {
                lo = c;
            }
            let newton = if ds > 0.0 { c - s / ds } else { f64::NAN };
            c = if newton > lo && newton < hi {
                newton
            } else {
                0.5 * (lo + hi)
            };
            if hi - lo <= 1e-15 * (1.0 + c.abs()) {
                break;
            }
        }
        c
    }

    /// Initial values for linear parameters (weighted least squares on linear residuals with
    /// the others fixed) and, in linear space, for the scale parameter.
    fn init_linear(&self, p: &mut [f64], w: &[f64]) {
        let lin: Vec<usize> = (0..p.len())
            .filter(|&i| {
                let role = self.law.params[i].role;
                role == Role::Linear || (role == Role::Scale && self.space == Space::Linear)
            })
            .collect();
        if lin.is_empty() {
            return;
        }
        let m = lin.len();
        let mut ata = DMatrix::<f64>::zeros(m, m);
        let mut atb = DVector::<f64>::zeros(m);
        let mut grad = vec![0.0; p.len()];
        for (i, row) in self.rows.iter().enumerate() {
            if w[i] == 0.0 {
                continue;
            }
            let v = self.law.eval_grad(p, row, &mut grad);
            // v = rest + Σ p_k φ_k with φ_k = ∂v/∂p_k (exact for linear and scale parameters).
            let phi: Vec<f64> = lin.iter().map(|&k| grad[k]).collect();
            let rest = v - lin.iter().zip(&phi).map(|(&k, f)| p[k] * f).sum::<f64>();
            if !rest.is_finite() || phi.iter().any(|f| !f.is_finite()) {
                return;
            }
            // Relative weighting keeps small losses/ΔL as important as large ones (log fits).
            let scale = match self.space {
                Space::Log => 1.0 / (self.y[i] * self.y[i]).max(1e-300),
                Space::Linear => 1.0,
            };
            for a in 0..m {
                atb[a] += w[i] * scale * phi[a] * (self.y[i] - rest);
                for b in 0..m {
                    ata[(a, b)] += w[i] * scale * phi[a] * phi[b];
                }
            }
        }
        let ridge = 1e-12 * ata.diagonal().max().max(1e-300);
        for a in 0..m {
            ata[(a, a)] += ridge;
        }
        if let Some(sol) = ata.cholesky().map(|c| c.solve(&atb)) {
            for (a, &k) in lin.iter().enumerate() {
                if sol[a].is_finite() {
                    let spec = &self.law.params[k];
                    let lower = if spec.role == Role::Scale {
                        spec.lower.max(1e-300)
                    } else {
                        spec.lower
                    };
                    p[k] = sol[a].clamp(lower, spec.upper);
                }
            }
        }
    }

    /// `p` moved by `t·step` (ln C for the scale parameter), projected onto the bounds.
    fn step(&self, p: &[f64], step: &DVector<f64>, t: f64) -> Vec<f64> {
        let mut q = p.to_vec();
        for (j, &fi) in self.free.iter().enumerate() {
            q[fi] = if Some(fi) == self.scale {
                self.clamp(fi, p[fi] * (t * step[j]).exp())
            } else {
                self.clamp(fi, p[fi] + t * step[j])
            };
        }
        q
    }

    /// Whether `q` differs from `p` by at most 1e-12 relative in every free coordinate.
    fn is_tiny(&self, p: &[f64], q: &[f64]) -> bool {
        self.free.iter().all(|&fi| {
            let rel = if Some(fi) == self.scale {
                (q[fi] / p[fi]).ln().abs()
            } else {
                (q[fi] - p[fi]).abs() / (p[fi].abs() + 1e-12)
            };
            rel <= 1e-12
        })
    }

    /// Accumulates the IRLS normal equations at the current residuals (upper triangles of
    /// `a` = JᵀΩJ and, for Huber, `an` = JᵀWJ over the quadratic zone only; `g` = JᵀΩr);
    /// returns how many points sit in Huber's quadratic zone.
    fn normal_equations(
        &self,
        ws: &Work,
        w: &[f64],
        huber: Option<f64>,
        (a, an, g): (&mut [f64], &mut [f64], &mut [f64]),
    ) -> usize {
        let k = self.free.len();
        a.fill(0.0);
        an.fill(0.0);
        g.fill(0.0);
        let mut n_active = 0usize;
        for ((jrow, &r), &wi) in ws.jac.chunks_exact(k).zip(&ws.r).zip(w) {
            if wi == 0.0 {
                continue;
            }
            let om = wi * self.loss.weight(r);
            let active = huber.is_some_and(|d| r.abs() <= d);
            n_active += usize::from(active);
            for (x, &jx) in jrow.iter().enumerate() {
                let ojx = om * jx;
                g[x] += ojx * r;
                for (y, &jy) in jrow.iter().enumerate().skip(x) {
                    a[x * k + y] += ojx * jy;
                    if active {
                        an[x * k + y] += wi * jx * jy;
                    }
                }
            }
        }
        n_active
    }

    /// One local solve from `start` with point multiplicities `w`.
    pub fn solve(&self, start: &[f64], w: &[f64], init_linear: bool) -> Solution {
        if self.precision.len() == w.len() {
            let weighted: Vec<f64> = w.iter().zip(&self.precision).map(|(a, b)| a * b).collect();
            self.solve_weighted(start, &weighted, init_linear)
        } else {
            self.solve_weighted(start, w, init_linear)
        }
    }

    /// [`Problem::solve`] with the precision weights already applied to `w`.
    fn solve_weighted(&self, start: &[f64], w: &[f64], init_linear: bool) -> Solution {
        let k = self.free.len();
        let mut p: Vec<f64> = start
            .iter()
            .enumerate()
            .map(|(i, &v)| self.clamp(i, v))
            .collect();
        if init_linear {
            self.init_linear(&mut p, w);
        }
        let mut ws = self.work();
        let fail = |p: Vec<f64>| Solution {
            params: p,
            objective: f64::INFINITY,
            iterations: 0,
            converged: false,
        };
        if let (Some(s), Space::Log, true) = (self.scale, self.space, init_linear) {
            // Variable projection at the start: the exact optimal ln C for the other values.
            if self.eval(&p, w, &mut ws).is_none() {
                return fail(p);
            }
            let c = self.offset(&ws.r, w);
            p[s] = self.clamp(s, p[s] * c.exp());
        }
        let Some(mut f) = self.eval(&p, w, &mut ws) else {
            return fail(p);
        };
        let mut trial = self.work();
        let mut lambda = 1e-6;
        let mut converged = false;
        let mut iterations = 0;
        let mut a = vec![0.0; k * k];
        let mut an = vec![0.0; k * k];
        let mut g = vec![0.0; k];
        let huber = match self.loss {
            Loss::Huber { delta } => Some(delta),
            Loss::LeastSquares => None,
        };
        while iterations < self.max_iter && !converged {
            iterations += 1;
            let n_active = self.normal_equations(&ws, w, huber, (&mut a, &mut an, &mut g));
            let mut am = DMatrix::<f64>::from_fn(k, k, |x, y| a[x.min(y) * k + x.max(y)]);
            let gv = DVector::<f64>::from_column_slice(&g);
            if gv.amax() <= 1e-14 * (1.0 + f) {
                converged = true;
                break;
            }
            // Huber: first try a Newton step with the exact Hessian (only the points in the
            // quadratic zone curve the objective). Near the optimum the active set settles and
            // these steps converge in a few iterations where IRLS crawls (the L1-like regime
            // of a small δ). Backtrack twice, then fall back to the damped IRLS step.
            if huber.is_some() && n_active >= k {
                let hm = DMatrix::<f64>::from_fn(k, k, |x, y| an[x.min(y) * k + x.max(y)]);
                if let Some(step) = hm.cholesky().map(|c| c.solve(&(-&gv))) {
                    if self.is_tiny(&p, &self.step(&p, &step, 1.0)) {
                        converged = true;
                        break;
                    }
                    let mut t = 1.0;
                    let mut accepted = false;
                    for _ in 0..3 {
                        let q = self.step(&p, &step, t);
                        if let Some(fq) = self.eval(&q, w, &mut trial).filter(|&fq| fq < f) {
                            let rel = (f - fq) / f.max(1e-300);
                            p = q;
                            f = fq;
                            std::mem::swap(&mut ws, &mut trial);
                            converged = rel < self.ftol;
                            accepted = true;
                            break;
                        }
                        t *= 0.5;
                    }
                    if accepted {
                        continue;
                    }
                }
            }
            let diag: Vec<f64> = (0..k).map(|x| am[(x, x)]).collect();
            let diag_floor = 1e-12 * diag.iter().fold(1e-300f64, |m, &v| m.max(v));
            loop {
                for (x, &d) in diag.iter().enumerate() {
                    am[(x, x)] = d + lambda * d.max(diag_floor);
                }
                let Some(step) = am.clone().cholesky().map(|c| c.solve(&(-&gv))) else {
                    lambda *= 10.0;
                    if lambda > 1e20 {
                        converged = true;
                        break;
                    }
                    continue;
                };
                let q = self.step(&p, &step, 1.0);
                if self.is_tiny(&p, &q) {
                    converged = true;
                    break;
                }
                match self.eval(&q, w, &mut trial) {
                    Some(fq) if fq < f => {
                        let rel = (f - fq) / f.max(1e-300);
                        p = q;
                        f = fq;
                        std::mem::swap(&mut ws, &mut trial);
                        lambda = (lambda * 0.1).max(1e-15);
                        converged = rel < self.ftol;
                        break;
                    }
                    _ => {
                        lambda *= 4.0;
                        if lambda > 1e20 {
                            converged = true;
                            break;
                        }
                    }
                }
            }
        }
        Solution {
            params: p,
            objective: f,
            iterations,
            converged,
        }
    }
}
