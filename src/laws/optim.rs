//! The optimiser behind [`super::fit`]: bounded Levenberg–Marquardt on a Huber (or squared)
//! loss of log or linear residuals, with the scale parameter profiled out in log space.
//!
//! Objective: F(p) = Σ_i w_i·ρ(r_i(p)), w_i = multiplicity of point i (bootstrap and
//! leave-one-size-out set some to 0 or >1 instead of copying rows), ρ the Huber function
//! (ρ(r) = r²/2 for |r| ≤ δ, δ(|r| − δ/2) beyond) or r²/2.
//! Steps solve (JᵀΩJ + λ·diag JᵀΩJ)·s = −JᵀΩr with IRLS weights Ω = w·min(1, δ/|r|), are
//! projected onto the bounds and accepted only when the true objective decreases.
//! Variable projection (log space, laws with one scale parameter C): r_i = ln h_i(θ) + c − ln y_i
//! with c = ln C; for each θ the optimal c solves the 1-D convex problem exactly (safeguarded
//! Newton on the monotone ψ-sum), and the Jacobian is the Ω-weighted projection J − 1·(ΩJ)̄.

use nalgebra::{DMatrix, DVector};

use super::fit::{Loss, Space};
use super::forms::{Law, Role};
use super::Row;

/// A fitting problem over fixed data.
pub(crate) struct Problem<'a> {
    pub law: &'a Law,
    pub rows: &'a [Row],
    pub y: &'a [f64],
    pub ln_y: Vec<f64>,
    pub space: Space,
    pub loss: Loss,
    /// Scale parameter profiled out (log space only).
    pub profile: Option<usize>,
    /// Parameters moved by LM steps.
    pub free: Vec<usize>,
    pub max_iter: usize,
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
    e: Vec<f64>,
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
        let profile = match space {
            Space::Log => law.scale_index(),
            Space::Linear => None,
        };
        let free = (0..law.params.len())
            .filter(|&i| Some(i) != profile)
            .collect();
        Problem {
            law,
            rows,
            y,
            ln_y,
            space,
            loss,
            profile,
            free,
            max_iter: 200,
        }
    }

    fn work(&self) -> Work {
        let n = self.rows.len();
        Work {
            r: vec![0.0; n],
            e: vec![0.0; n],
            jac: vec![0.0; n * self.free.len()],
            grad: vec![0.0; self.law.params.len()],
        }
    }

    fn clamp(&self, i: usize, v: f64) -> f64 {
        let s = &self.law.params[i];
        v.clamp(s.lower, s.upper)
    }

    /// Residuals, Jacobian (of the free parameters) and objective at `p`; updates the profiled
    /// scale in `p`. `None` where the law leaves its domain (non-finite, or ≤ 0 in log space).
    fn eval(&self, p: &mut [f64], w: &[f64], ws: &mut Work) -> Option<f64> {
        let k = self.free.len();
        let mut p_eval = p.to_vec();
        if let Some(s) = self.profile {
            p_eval[s] = 1.0;
        }
        for (i, row) in self.rows.iter().enumerate() {
            let jrow = &mut ws.jac[i * k..(i + 1) * k];
            if w[i] == 0.0 {
                ws.e[i] = 0.0;
                jrow.fill(0.0);
                continue;
            }
            let h = self.law.eval_grad(&p_eval, row, &mut ws.grad);
            match self.space {
                Space::Log => {
                    if !(h > 0.0 && h.is_finite()) {
                        return None;
                    }
                    ws.e[i] = h.ln() - self.ln_y[i];
                    for (j, &f) in self.free.iter().enumerate() {
                        jrow[j] = ws.grad[f] / h;
                    }
                }
                Space::Linear => {
                    if !h.is_finite() {
                        return None;
                    }
                    ws.e[i] = h - self.y[i];
                    for (j, &f) in self.free.iter().enumerate() {
                        jrow[j] = ws.grad[f];
                    }
                }
            }
            if jrow.iter().any(|v| !v.is_finite()) {
                return None;
            }
        }
        if let Some(s) = self.profile {
            let spec = &self.law.params[s];
            let c0 = if p[s] > 0.0 { p[s].ln() } else { 0.0 };
            let c = self
                .offset(&ws.e, w, c0)
                .clamp(spec.lower.max(1e-300).ln(), spec.upper.ln());
            p[s] = c.exp();
            for (r, e) in ws.r.iter_mut().zip(&ws.e) {
                *r = e + c;
            }
            // Project the Jacobian: remove its Ω-weighted mean (the direction c absorbs).
            let mut mean = vec![0.0; k];
            let mut total = 0.0;
            for i in 0..self.rows.len() {
                let om = w[i] * self.loss.weight(ws.r[i]);
                total += om;
                for j in 0..k {
                    mean[j] += om * ws.jac[i * k + j];
                }
            }
            if total > 0.0 {
                for i in 0..self.rows.len() {
                    if w[i] == 0.0 {
                        continue;
                    }
                    for j in 0..k {
                        ws.jac[i * k + j] -= mean[j] / total;
                    }
                }
            }
        } else {
            ws.r.copy_from_slice(&ws.e);
        }
        let f: f64 =
            ws.r.iter()
                .zip(w)
                .map(|(&r, &wi)| wi * self.loss.rho(r))
                .sum();
        f.is_finite().then_some(f)
    }

    /// argmin_c Σ w_i ρ(e_i + c): closed form for least squares, safeguarded Newton otherwise.
    fn offset(&self, e: &[f64], w: &[f64], c0: f64) -> f64 {
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
            return c0;
        }
        let Loss::Huber { delta } = self.loss else {
            return -swe / sw;
        };
        // S(c) = Σ w ψ(e + c) is non-decreasing; bracket the root.
        let (mut lo, mut hi) = (-emax - delta, -emin + delta);
        let mut c = if (lo..=hi).contains(&c0) {
            c0
        } else {
            -swe / sw
        };
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
                role == Role::Linear || (role == Role::Scale && self.profile.is_none())
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

    /// One local solve from `start` with point multiplicities `w`.
    pub fn solve(&self, start: &[f64], w: &[f64], init_linear: bool) -> Solution {
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
        let Some(mut f) = self.eval(&mut p, w, &mut ws) else {
            return fail(p);
        };
        let mut trial = self.work();
        let mut lambda = 1e-3;
        let mut converged = false;
        let mut iterations = 0;
        let mut small_steps = 0;
        while iterations < self.max_iter && !converged {
            iterations += 1;
            let mut a = DMatrix::<f64>::zeros(k, k);
            let mut g = DVector::<f64>::zeros(k);
            for i in 0..self.rows.len() {
                if w[i] == 0.0 {
                    continue;
                }
                let om = w[i] * self.loss.weight(ws.r[i]);
                let jrow = &ws.jac[i * k..(i + 1) * k];
                for x in 0..k {
                    g[x] += om * jrow[x] * ws.r[i];
                    for y in x..k {
                        a[(x, y)] += om * jrow[x] * jrow[y];
                    }
                }
            }
            for x in 0..k {
                for y in 0..x {
                    a[(x, y)] = a[(y, x)];
                }
            }
            if g.amax() <= 1e-14 * (1.0 + f) {
                converged = true;
                break;
            }
            let diag_floor = 1e-12 * a.diagonal().max().max(1e-300);
            loop {
                let mut m = a.clone();
                for x in 0..k {
                    m[(x, x)] += lambda * a[(x, x)].max(diag_floor);
                }
                let Some(step) = m.cholesky().map(|c| c.solve(&(-&g))) else {
                    lambda *= 10.0;
                    if lambda > 1e20 {
                        converged = true;
                        break;
                    }
                    continue;
                };
                let mut q = p.clone();
                let mut moved = 0.0f64;
                let mut size = 0.0f64;
                for (j, &fi) in self.free.iter().enumerate() {
                    q[fi] = self.clamp(fi, p[fi] + step[j]);
                    moved = moved.max((q[fi] - p[fi]).abs());
                    size = size.max(p[fi].abs());
                }
                if moved <= 1e-12 * (size + 1e-12) {
                    converged = true;
                    break;
                }
                match self.eval(&mut q, w, &mut trial) {
                    Some(fq) if fq < f => {
                        let rel = (f - fq) / f.max(1e-300);
                        p = q;
                        f = fq;
                        std::mem::swap(&mut ws, &mut trial);
                        lambda = (lambda * 0.3).max(1e-15);
                        small_steps = if rel < 1e-10 { small_steps + 1 } else { 0 };
                        if small_steps >= 2 {
                            converged = true;
                        }
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
