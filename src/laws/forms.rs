//! Law forms as data: a name, the variables used, parameters with bounds and start grids, and a
//! function returning the value and its gradient with respect to the parameters.
//!
//! Built-ins (DESIGN §8; N non-embedding parameters, D tokens, ΔL in nats per token):
//! - `unified-weak`   ΔL = C·e^{A·Qr}·N^{−γ_N}                         (Cao et al. 2410.06722)
//! - `unified-strong` ΔL = C·e^{A·Qr}·N^{−γ_N}·(Qb + d)^{γ_c}, 0 < γ_c < 1
//! - `kumar-ptq`      δ_PTQ = C_T·D^{γ_D}·N^{−γ_N}·e^{−P/γ_post}          (Kumar et al. 2411.04330)
//! - `chinchilla`     L = A·N^{−α} + B·D^{−β} + E
//! - `kumar-neff`     L = A·N_eff^{−α} + B·D^{−β} + E, N_eff = N·(1 − e^{−P/γ_w}) (weights only)
//! - `qat-group`      δ = k·D^{γ_D}·(log2 G)^{γ_G}·N^{−γ_N}, G = Qb        (seed 004)
//! - `fp-capybara`    L = n·N^{−α} + d·D^{−β} + ε + D^β·N^{−α}·(log2 B)^γ/((E+½)^δ·(M+½)^ν), B = Qb
//! - `format-eps`     ΔL = C·e^{A·Qr}·N^{−γ_N}·ε^κ, ε = 1/SQNR of the low format at its Qb
//!   measured on the model's weights (second order: ΔL ≈ ½uᵀHu with ‖u‖² ∝ ε, so κ ≈ 1)
//! - `format-descriptor` ΔL = C·e^{A·Qr}·N^{−γ_N}·2^{−μ·M}·(log2 Qb)^{γ_B}: the format named
//!   by its mantissa bits and block size instead of a measurement (the comparison for `format-eps`)
//!
//! Parameter roles drive the fitter: a `Scale` parameter multiplies the whole law (profiled out
//! exactly in log space: variable projection); `Linear` parameters enter linearly (initialised
//! by weighted least squares at every start); the `Nonlinear` ones span the start grid.
//! Gradients are analytic and tested against central differences.

use std::sync::Arc;

use super::formula::Formula;
pub use super::params::{ParamSpec, Role};
use super::{Row, Var};

/// What a law predicts.
#[derive(Clone, Copy, Debug, PartialEq, Eq, serde::Serialize, serde::Deserialize)]
pub enum Target {
    /// ΔL = NLL(quantized) − NLL(base), nats per token.
    DeltaLoss,
    /// A loss in nats per token (base or quantized model).
    Loss,
}

#[derive(Clone, Copy, Debug, PartialEq, Eq)]
enum Builtin {
    UnifiedWeak,
    UnifiedStrong,
    KumarPtq,
    Chinchilla,
    KumarNeff,
    QatGroup,
    FpCapybara,
    FormatEps,
    FormatDescriptor,
}

#[derive(Clone, Debug)]
enum Kind {
    Builtin(Builtin),
    Formula(Arc<Formula>),
}

/// A law: metadata plus the function it evaluates.
#[derive(Clone, Debug)]
pub struct Law {
    /// Identifier used on the command line (`unified-strong`).
    pub id: String,
    /// One-line description with the source.
    pub title: String,
    /// The formula as text.
    pub formula: String,
    /// What it predicts.
    pub target: Target,
    /// Variables it reads (in the order they appear in the formula).
    pub vars: Vec<Var>,
    /// Parameters, in the order of every parameter vector.
    pub params: Vec<ParamSpec>,
    kind: Kind,
}

const EXPONENT: (f64, f64) = (-3.0, 5.0);

impl Law {
    /// The nested simpler form of this law, when it has one (the strong unified law without
    /// its granularity term is the weak one).
    pub fn simpler(&self) -> Option<Law> {
        match self.id.as_str() {
            "unified-strong" => Law::by_id("unified-weak"),
            _ => None,
        }
    }

    /// Every built-in law.
    pub fn builtins() -> Vec<Law> {
        [
            Builtin::UnifiedWeak,
            Builtin::UnifiedStrong,
            Builtin::KumarPtq,
            Builtin::Chinchilla,
            Builtin::KumarNeff,
            Builtin::QatGroup,
            Builtin::FpCapybara,
            Builtin::FormatEps,
            Builtin::FormatDescriptor,
        ]
        .into_iter()
        .map(Law::builtin)
        .collect()
    }

    /// A built-in law by id, or `None`.
    pub fn by_id(id: &str) -> Option<Law> {
        Law::builtins().into_iter().find(|l| l.id == id)
    }

    /// A law from a typed formula (see [`Formula`]).
    pub fn from_formula(formula: Formula, target: Target) -> Law {
        let params = formula.params().to_vec();
        Law {
            id: "formula".into(),
            title: "user formula".into(),
            formula: formula.text().to_string(),
            target,
            vars: formula.vars().to_vec(),
            params,
            kind: Kind::Formula(Arc::new(formula)),
        }
    }

    fn builtin(b: Builtin) -> Law {
        use Role::{Linear, Nonlinear, Scale};
        let (lo, hi) = EXPONENT;
        let p = ParamSpec::new;
        let (id, title, formula, target, vars, params) = match b {
            Builtin::UnifiedWeak => (
                "unified-weak",
                "Unified mixed-precision law, weak form (Cao et al., arXiv 2410.06722)",
                "C·exp(A·Qr)·N^(−gamma_N)",
                Target::DeltaLoss,
                vec![Var::N, Var::Qr],
                vec![
                    p("C", 1e-300, 1e300, &[1.0], Scale),
                    p("A", -50.0, 50.0, &[0.5, 2.0, 5.0], Nonlinear),
                    p("gamma_N", lo, hi, &[0.1, 0.3, 0.7], Nonlinear),
                ],
            ),
            Builtin::UnifiedStrong => (
                "unified-strong",
                "Unified mixed-precision law with granularity (Cao et al., arXiv 2410.06722)",
                "C·exp(A·Qr)·N^(−gamma_N)·(Qb + d)^gamma_c",
                Target::DeltaLoss,
                vec![Var::N, Var::Qr, Var::Qb],
                vec![
                    p("C", 1e-300, 1e300, &[1.0], Scale),
                    p("A", -50.0, 50.0, &[0.5, 2.0, 5.0], Nonlinear),
                    p("gamma_N", lo, hi, &[0.1, 0.3, 0.7], Nonlinear),
                    p("d", -0.99, 1e5, &[1.0, 30.0], Nonlinear),
                    p("gamma_c", 1e-6, 1.0 - 1e-6, &[0.3, 0.7], Nonlinear),
                ],
            ),
            Builtin::KumarPtq => (
                "kumar-ptq",
                "PTQ degradation (Kumar et al., arXiv 2411.04330)",
                "C_T·D^gamma_D·N^(−gamma_N)·exp(−P/gamma_post)",
                Target::DeltaLoss,
                vec![Var::N, Var::D, Var::P],
                vec![
                    p("C_T", 1e-300, 1e300, &[1.0], Scale),
                    p("gamma_D", lo, hi, &[0.2, 0.6], Nonlinear),
                    p("gamma_N", lo, hi, &[0.2, 0.6], Nonlinear),
                    p("gamma_post", 0.02, 100.0, &[0.5, 1.5, 4.0], Nonlinear),
                ],
            ),
            Builtin::Chinchilla => (
                "chinchilla",
                "Base loss L(N, D) in the Chinchilla form (Hoffmann et al.; Kumar et al.)",
                "A·N^(−alpha) + B·D^(−beta) + E",
                Target::Loss,
                vec![Var::N, Var::D],
                vec![
                    p("A", 0.0, 1e12, &[], Linear),
                    p("alpha", 0.0, 3.0, &[0.1, 0.3, 0.6], Nonlinear),
                    p("B", 0.0, 1e12, &[], Linear),
                    p("beta", 0.0, 3.0, &[0.1, 0.3, 0.6], Nonlinear),
                    p("E", 0.0, 100.0, &[], Linear),
                ],
            ),
            Builtin::KumarNeff => (
                "kumar-neff",
                "Loss with effective parameters for low-precision weights (Kumar et al.)",
                "A·(N·(1 − exp(−P/gamma_w)))^(−alpha) + B·D^(−beta) + E",
                Target::Loss,
                vec![Var::N, Var::D, Var::P],
                vec![
                    p("A", 0.0, 1e12, &[], Linear),
                    p("alpha", 0.0, 3.0, &[0.15, 0.4], Nonlinear),
                    p("B", 0.0, 1e12, &[], Linear),
                    p("beta", 0.0, 3.0, &[0.15, 0.4], Nonlinear),
                    p("E", 0.0, 100.0, &[], Linear),
                    p("gamma_w", 0.05, 50.0, &[1.0, 3.0], Nonlinear),
                ],
            ),
            Builtin::QatGroup => (
                "qat-group",
                "QAT degradation with group size G = Qb (seed 004)",
                "k·D^gamma_D·(log2 Qb)^gamma_G·N^(−gamma_N)",
                Target::DeltaLoss,
                vec![Var::N, Var::D, Var::Qb],
                vec![
                    p("k", 1e-300, 1e300, &[1.0], Scale),
                    p("gamma_D", lo, hi, &[0.2, 0.6], Nonlinear),
                    p("gamma_G", -10.0, 10.0, &[0.5, 1.5], Nonlinear),
                    p("gamma_N", lo, hi, &[0.2, 0.6], Nonlinear),
                ],
            ),
            Builtin::FpCapybara => (
                "fp-capybara",
                "Floating-point quantization law with exponent, mantissa and block size (seed 004)",
                "n·N^(−alpha) + d·D^(−beta) + eps + D^beta·N^(−alpha)·(log2 Qb)^gamma/((E+0.5)^delta·(M+0.5)^nu)",
                Target::Loss,
                vec![Var::N, Var::D, Var::E, Var::M, Var::Qb],
                vec![
                    p("n", 0.0, 1e12, &[], Linear),
                    p("alpha", 0.0, 3.0, &[0.2, 0.5], Nonlinear),
                    p("d", 0.0, 1e12, &[], Linear),
                    p("beta", 0.0, 3.0, &[0.2, 0.5], Nonlinear),
                    p("eps", 0.0, 100.0, &[], Linear),
                    p("gamma", -10.0, 10.0, &[0.5, 1.5], Nonlinear),
                    p("delta", -10.0, 20.0, &[1.0, 4.0], Nonlinear),
                    p("nu", -10.0, 20.0, &[1.0, 4.0], Nonlinear),
                ],
            ),
            Builtin::FormatEps | Builtin::FormatDescriptor => format_spec(b),
        };
        Law {
            id: id.into(),
            title: title.into(),
            formula: formula.into(),
            target,
            vars,
            params,
            kind: Kind::Builtin(b),
        }
    }

    /// Index of a parameter by name.
    pub fn param_index(&self, name: &str) -> Option<usize> {
        self.params.iter().position(|p| p.name == name)
    }

    /// Index of the scale parameter, if the law has exactly one.
    pub fn scale_index(&self) -> Option<usize> {
        let mut it = self
            .params
            .iter()
            .enumerate()
            .filter(|(_, p)| p.role == Role::Scale);
        match (it.next(), it.next()) {
            (Some((i, _)), None) => Some(i),
            _ => None,
        }
    }

    /// The law's value at `x` with parameters `p` (NaN outside its domain).
    pub fn eval(&self, p: &[f64], x: &Row) -> f64 {
        match &self.kind {
            Kind::Builtin(b) => builtin_eval(*b, p, x, None),
            Kind::Formula(f) => f.eval(p, x),
        }
    }

    /// The value and, in `grad` (length = number of parameters), its gradient.
    pub fn eval_grad(&self, p: &[f64], x: &Row, grad: &mut [f64]) -> f64 {
        match &self.kind {
            Kind::Builtin(b) => builtin_eval(*b, p, x, Some(grad)),
            Kind::Formula(f) => f.eval_grad(p, x, grad),
        }
    }

    /// For laws that are a product of powers and exponentials (unified, Kumar δ_PTQ, QAT):
    /// ln of the value and, in `grad`, ∂ln ŷ/∂p — cheaper and better conditioned than going
    /// through the value. `lx` holds ln of each variable of `x`. `None` for the other laws.
    pub fn ln_eval_grad(&self, p: &[f64], x: &Row, lx: &Row, grad: &mut [f64]) -> Option<f64> {
        let Kind::Builtin(b) = self.kind else {
            return None;
        };
        let v = |var: Var| x[var.index()];
        let lv = |var: Var| lx[var.index()];
        Some(match b {
            Builtin::UnifiedWeak | Builtin::UnifiedStrong => {
                let (c, a, gn) = (p[0], p[1], p[2]);
                let qr = v(Var::Qr);
                let mut out = c.ln() + a * qr - gn * lv(Var::N);
                grad[0] = 1.0 / c;
                grad[1] = qr;
                grad[2] = -lv(Var::N);
                if b == Builtin::UnifiedStrong {
                    let qbd = v(Var::Qb) + p[3];
                    let ln_b = qbd.ln();
                    out += p[4] * ln_b;
                    grad[3] = p[4] / qbd;
                    grad[4] = ln_b;
                }
                out
            }
            Builtin::KumarPtq => {
                let (c, gd, gn, gp) = (p[0], p[1], p[2], p[3]);
                let bits = v(Var::P);
                grad[0] = 1.0 / c;
                grad[1] = lv(Var::D);
                grad[2] = -lv(Var::N);
                grad[3] = bits / (gp * gp);
                c.ln() + gd * lv(Var::D) - gn * lv(Var::N) - bits / gp
            }
            Builtin::QatGroup => {
                let (k, gd, gg, gn) = (p[0], p[1], p[2], p[3]);
                let ln_lg = (lv(Var::Qb) / std::f64::consts::LN_2).ln();
                grad[0] = 1.0 / k;
                grad[1] = lv(Var::D);
                grad[2] = ln_lg;
                grad[3] = -lv(Var::N);
                k.ln() + gd * lv(Var::D) + gg * ln_lg - gn * lv(Var::N)
            }
            Builtin::FormatEps | Builtin::FormatDescriptor => {
                let mut g = [0.0; 5];
                let out = format_ln(b, p, x, &mut g);
                grad.copy_from_slice(&g[..grad.len()]);
                out
            }
            Builtin::Chinchilla | Builtin::KumarNeff | Builtin::FpCapybara => return None,
        })
    }

    /// Checks that `p` has one finite value per parameter, inside its bounds.
    pub fn check_params(&self, p: &[f64]) -> crate::Result<()> {
        if p.len() != self.params.len() {
            return Err(crate::Error::Input(format!(
                "law {} has {} parameters ({}), got {} values",
                self.id,
                self.params.len(),
                self.param_names().join(", "),
                p.len()
            )));
        }
        for (spec, &v) in self.params.iter().zip(p) {
            if !v.is_finite() || v < spec.lower || v > spec.upper {
                return Err(crate::Error::Input(format!(
                    "law {}: parameter {} = {v} is outside [{}, {}]",
                    self.id, spec.name, spec.lower, spec.upper
                )));
            }
        }
        Ok(())
    }

    /// Parameter names in order.
    pub fn param_names(&self) -> Vec<&str> {
        self.params.iter().map(|p| p.name.as_str()).collect()
    }
}

/// A law's id, title, formula, target, variables and parameters.
type Spec = (
    &'static str,
    &'static str,
    &'static str,
    Target,
    Vec<Var>,
    Vec<ParamSpec>,
);

/// The specs of the format-aware laws.
fn format_spec(b: Builtin) -> Spec {
    use Role::{Nonlinear, Scale};
    let (lo, hi) = EXPONENT;
    let p = ParamSpec::new;
    match b {
        Builtin::FormatEps => (
            "format-eps",
            "Format-aware law: the low format and Qb through their measured error ε = 1/SQNR",
            "C·exp(A·Qr)·N^(−gamma_N)·eps^kappa",
            Target::DeltaLoss,
            vec![Var::N, Var::Qr, Var::Eps],
            vec![
                p("C", 1e-300, 1e300, &[1.0], Scale),
                p("A", -50.0, 50.0, &[0.5, 2.0, 5.0], Nonlinear),
                p("gamma_N", lo, hi, &[0.1, 0.3, 0.7], Nonlinear),
                p("kappa", lo, hi, &[0.5, 1.0, 2.0], Nonlinear),
            ],
        ),
        _ => (
            "format-descriptor",
            "Format-aware law from descriptors: mantissa bits M and log2 Qb",
            "C·exp(A·Qr)·N^(−gamma_N)·2^(−mu·M)·(log2 Qb)^gamma_B",
            Target::DeltaLoss,
            vec![Var::N, Var::Qr, Var::M, Var::Qb],
            vec![
                p("C", 1e-300, 1e300, &[1.0], Scale),
                p("A", -50.0, 50.0, &[0.5, 2.0, 5.0], Nonlinear),
                p("gamma_N", lo, hi, &[0.1, 0.3, 0.7], Nonlinear),
                p("mu", -10.0, 10.0, &[0.5, 2.0], Nonlinear),
                p("gamma_B", -10.0, 10.0, &[0.2, 1.0], Nonlinear),
            ],
        ),
    }
}

/// Kumar et al.'s effective parameter count for low-precision training:
/// N_eff = N·(1 − e^{−P_w/γ_w})·(1 − e^{−P_a/γ_a})·(1 − e^{−P_kv/γ_kv}).
pub fn kumar_n_eff(n: f64, bits: [f64; 3], gammas: [f64; 3]) -> f64 {
    bits.iter()
        .zip(gammas)
        .fold(n, |acc, (&b, g)| acc * (1.0 - (-b / g).exp()))
}

/// The token count that minimises the `fp-capybara` loss at fixed N, E, M and B = Qb, from
/// ∂L/∂D = 0: D_crit = [d·N^α·(E+½)^δ·(M+½)^ν / (log2 B)^γ]^{1/(2β)}. (Seed 004 prints a factor
/// γ and the exponent of log2 B differently; this is the stationary point of the law as written,
/// and a test checks it against a numerical minimum.)
pub fn capybara_d_crit(p: &[f64], n: f64, e: f64, m: f64, qb: f64) -> f64 {
    let [_, alpha, d, beta, _, gamma, delta, nu] = p[..] else {
        return f64::NAN;
    };
    let num = d * n.powf(alpha) * (e + 0.5).powf(delta) * (m + 0.5).powf(nu);
    (num / qb.log2().powf(gamma)).powf(1.0 / (2.0 * beta))
}

/// ln of a format-aware law and ∂ln ŷ/∂p in `g` (first `params.len()` entries): both are
/// products of powers, so ln ŷ is linear in every parameter but C.
fn format_ln(b: Builtin, p: &[f64], x: &Row, g: &mut [f64; 5]) -> f64 {
    let v = |var: Var| x[var.index()];
    let (c, a, gn) = (p[0], p[1], p[2]);
    let (qr, ln_n) = (v(Var::Qr), v(Var::N).ln());
    g[0] = 1.0 / c;
    g[1] = qr;
    g[2] = -ln_n;
    let mut out = c.ln() + a * qr - gn * ln_n;
    if b == Builtin::FormatEps {
        let ln_eps = v(Var::Eps).ln();
        g[3] = ln_eps;
        out += p[3] * ln_eps;
    } else {
        let m_ln2 = v(Var::M) * std::f64::consts::LN_2;
        let ln_lb = v(Var::Qb).log2().ln();
        g[3] = -m_ln2;
        g[4] = ln_lb;
        out += -p[3] * m_ln2 + p[4] * ln_lb;
    }
    out
}

/// A format-aware law's value and, in `grad`, ∂y/∂p, from its ln form.
fn format_eval(b: Builtin, p: &[f64], x: &Row, grad: Option<&mut [f64]>) -> f64 {
    let mut g = [0.0; 5];
    let ln_y = format_ln(b, p, x, &mut g);
    let y = ln_y.exp();
    if let Some(grad) = grad {
        // ∂y/∂C = y/C would be 0/0 at C = 0; the product without C is exact.
        grad[0] = (ln_y - p[0].ln()).exp();
        for (o, d) in grad.iter_mut().zip(&g).skip(1) {
            *o = y * d;
        }
    }
    y
}

fn builtin_eval(b: Builtin, p: &[f64], x: &Row, grad: Option<&mut [f64]>) -> f64 {
    let v = |var: Var| x[var.index()];
    match b {
        Builtin::FormatEps | Builtin::FormatDescriptor => format_eval(b, p, x, grad),
        Builtin::UnifiedWeak | Builtin::UnifiedStrong => {
            let (c, a, gn) = (p[0], p[1], p[2]);
            let ln_n = v(Var::N).ln();
            let qr = v(Var::Qr);
            let mut y = c * (a * qr - gn * ln_n).exp();
            let mut ln_b = 0.0;
            let mut qbd = 1.0;
            if b == Builtin::UnifiedStrong {
                qbd = v(Var::Qb) + p[3];
                ln_b = qbd.ln();
                y *= (p[4] * ln_b).exp();
            }
            if let Some(g) = grad {
                g[0] = if c != 0.0 {
                    y / c
                } else {
                    (a * qr - gn * ln_n).exp()
                };
                g[1] = y * qr;
                g[2] = -y * ln_n;
                if b == Builtin::UnifiedStrong {
                    g[3] = y * p[4] / qbd;
                    g[4] = y * ln_b;
                }
            }
            y
        }
        Builtin::KumarPtq => {
            let (c, gd, gn, gp) = (p[0], p[1], p[2], p[3]);
            let (ln_d, ln_n, bits) = (v(Var::D).ln(), v(Var::N).ln(), v(Var::P));
            let h = (gd * ln_d - gn * ln_n - bits / gp).exp();
            let y = c * h;
            if let Some(g) = grad {
                g[0] = h;
                g[1] = y * ln_d;
                g[2] = -y * ln_n;
                g[3] = y * bits / (gp * gp);
            }
            y
        }
        Builtin::Chinchilla | Builtin::KumarNeff => {
            let (a, alpha, bb, beta, e) = (p[0], p[1], p[2], p[3], p[4]);
            let n = v(Var::N);
            let (n_eff, dneff_dgw) = if b == Builtin::KumarNeff {
                let gw = p[5];
                let bits = v(Var::P);
                let t = (-bits / gw).exp();
                (n * (1.0 - t), -n * t * bits / (gw * gw))
            } else {
                (n, 0.0)
            };
            let ln_d = v(Var::D).ln();
            let tn = (-alpha * n_eff.ln()).exp();
            let td = (-beta * ln_d).exp();
            let y = a * tn + bb * td + e;
            if let Some(g) = grad {
                g[0] = tn;
                g[1] = -a * tn * n_eff.ln();
                g[2] = td;
                g[3] = -bb * td * ln_d;
                g[4] = 1.0;
                if b == Builtin::KumarNeff {
                    g[5] = -alpha * a * tn / n_eff * dneff_dgw;
                }
            }
            y
        }
        Builtin::QatGroup => {
            let (k, gd, gg, gn) = (p[0], p[1], p[2], p[3]);
            let (ln_d, ln_n) = (v(Var::D).ln(), v(Var::N).ln());
            let ln_lg = v(Var::Qb).log2().ln();
            let h = (gd * ln_d + gg * ln_lg - gn * ln_n).exp();
            let y = k * h;
            if let Some(g) = grad {
                g[0] = h;
                g[1] = y * ln_d;
                g[2] = y * ln_lg;
                g[3] = -y * ln_n;
            }
            y
        }
        Builtin::FpCapybara => {
            let (nn, alpha, dd, beta, eps, gamma, delta, nu) =
                (p[0], p[1], p[2], p[3], p[4], p[5], p[6], p[7]);
            let (ln_n, ln_d) = (v(Var::N).ln(), v(Var::D).ln());
            let ln_lb = v(Var::Qb).log2().ln();
            let (ln_e, ln_m) = ((v(Var::E) + 0.5).ln(), (v(Var::M) + 0.5).ln());
            let tn = (-alpha * ln_n).exp();
            let td = (-beta * ln_d).exp();
            let q = (beta * ln_d - alpha * ln_n + gamma * ln_lb - delta * ln_e - nu * ln_m).exp();
            let y = nn * tn + dd * td + eps + q;
            if let Some(g) = grad {
                g[0] = tn;
                g[1] = -nn * tn * ln_n - q * ln_n;
                g[2] = td;
                g[3] = -dd * td * ln_d + q * ln_d;
                g[4] = 1.0;
                g[5] = q * ln_lb;
                g[6] = -q * ln_e;
                g[7] = -q * ln_m;
            }
            y
        }
    }
}
