//! A law typed as text, e.g. `C*exp(A*Qr)*N^(-g)*(Qb+d)^c`, parsed with the `exmex` crate.
//!
//! Identifiers spelled like a law variable (`N`, `D`, `Qr`, `Qb`, `P`, `E`, `M`, `bits`; exact
//! case) read the data; every other identifier not followed by `(` is a parameter, listed in
//! alphabetical order. `E` is the exponent-bit count here, not Euler's number (write `exp(1)`).
//! Functions: exmex's float operators (`exp`, `log`/`ln`, `log2`, `log10`, `sqrt`, `abs`, `^`…).
//! The gradient is numerical (central differences with a step relative to each parameter).
//! Default bounds are ±1e9 and starts {0.1, 1} (one start, 0.5, beyond four parameters);
//! [`Formula::set_param`] changes them.

use exmex::prelude::*;

use super::params::{ParamSpec, Role};
use super::{Row, Var};
use crate::{Error, Result};

/// Where an exmex variable takes its value from.
#[derive(Clone, Copy, Debug)]
enum Source {
    Data(Var),
    Param(usize),
}

/// A parsed user formula.
#[derive(Clone, Debug)]
pub struct Formula {
    text: String,
    expr: FlatEx<f64>,
    sources: Vec<Source>,
    vars: Vec<Var>,
    params: Vec<ParamSpec>,
}

/// At most this many variables plus parameters (values live in a stack array).
const MAX_SYMBOLS: usize = 32;

impl Formula {
    /// Parses `text`; fails with a message naming the problem.
    pub fn parse(text: &str) -> Result<Formula> {
        let bad = |reason: String| Error::Input(format!("formula `{text}`: {reason}"));
        if text.trim().is_empty() {
            return Err(bad("empty".into()));
        }
        let braced = brace_identifiers(text);
        let expr = FlatEx::<f64>::parse(&braced).map_err(|e| bad(e.to_string()))?;
        let mut sources = Vec::new();
        let mut vars = Vec::new();
        let mut names = Vec::new();
        for raw in expr.var_names() {
            let name = raw.trim_start_matches('{').trim_end_matches('}');
            match Var::ALL.iter().find(|v| v.name() == name) {
                Some(&v) => {
                    sources.push(Source::Data(v));
                    vars.push(v);
                }
                None => {
                    sources.push(Source::Param(names.len()));
                    names.push(name.to_string());
                }
            }
        }
        if names.is_empty() {
            return Err(bad(
                "no parameters to fit (every identifier is a variable)".into()
            ));
        }
        if sources.len() > MAX_SYMBOLS {
            return Err(bad(format!("more than {MAX_SYMBOLS} symbols")));
        }
        let starts: &[f64] = if names.len() <= 4 {
            &[0.1, 1.0]
        } else {
            &[0.5]
        };
        let params = names
            .into_iter()
            .map(|name| ParamSpec {
                name,
                lower: -1e9,
                upper: 1e9,
                starts: starts.to_vec(),
                role: Role::Nonlinear,
            })
            .collect();
        Ok(Formula {
            text: text.to_string(),
            expr,
            sources,
            vars,
            params,
        })
    }

    /// Sets the bounds and starting values of parameter `name`.
    pub fn set_param(&mut self, name: &str, lower: f64, upper: f64, starts: &[f64]) -> Result<()> {
        let names: Vec<String> = self.params.iter().map(|p| p.name.clone()).collect();
        let Some(spec) = self.params.iter_mut().find(|p| p.name == name) else {
            return Err(Error::Input(format!(
                "formula `{}` has no parameter `{name}` (parameters: {})",
                self.text,
                names.join(", ")
            )));
        };
        if lower.partial_cmp(&upper).is_none_or(|o| o.is_gt())
            || starts.is_empty()
            || starts.iter().any(|s| !(lower..=upper).contains(s))
        {
            return Err(Error::Input(format!(
                "parameter {name}: need lower ≤ upper and starts inside [{lower}, {upper}]"
            )));
        }
        spec.lower = lower;
        spec.upper = upper;
        spec.starts = starts.to_vec();
        Ok(())
    }

    /// The text as typed.
    pub fn text(&self) -> &str {
        &self.text
    }

    /// Data variables the formula reads.
    pub fn vars(&self) -> &[Var] {
        &self.vars
    }

    /// Detected parameters, alphabetical.
    pub fn params(&self) -> &[ParamSpec] {
        &self.params
    }

    /// Value at `x` with parameters `p`; NaN where exmex reports an error.
    pub fn eval(&self, p: &[f64], x: &Row) -> f64 {
        let mut buf = [0.0; MAX_SYMBOLS];
        for (slot, s) in buf.iter_mut().zip(&self.sources) {
            *slot = match *s {
                Source::Data(v) => x[v.index()],
                Source::Param(i) => p.get(i).copied().unwrap_or(f64::NAN),
            };
        }
        self.expr
            .eval(&buf[..self.sources.len()])
            .unwrap_or(f64::NAN)
    }

    /// Value and central-difference gradient.
    pub fn eval_grad(&self, p: &[f64], x: &Row, grad: &mut [f64]) -> f64 {
        let y = self.eval(p, x);
        let mut q = p.to_vec();
        for (i, g) in grad.iter_mut().enumerate().take(p.len()) {
            let h = 1e-6 * p[i].abs().max(1e-3);
            q[i] = p[i] + h;
            let up = self.eval(&q, x);
            q[i] = p[i] - h;
            let down = self.eval(&q, x);
            q[i] = p[i];
            *g = (up - down) / (2.0 * h);
        }
        y
    }
}

/// Wraps every identifier that is not a function call in `{}` so exmex treats it as a variable
/// (this is what keeps `E` from meaning Euler's number). Numbers (with exponents) pass through.
fn brace_identifiers(text: &str) -> String {
    let chars: Vec<char> = text.chars().collect();
    let mut out = String::with_capacity(text.len() + 16);
    let mut i = 0;
    while i < chars.len() {
        let c = chars[i];
        if c.is_ascii_digit() || (c == '.' && chars.get(i + 1).is_some_and(char::is_ascii_digit)) {
            // A number: digits, a dot, an exponent with an optional sign.
            while i < chars.len() && (chars[i].is_ascii_digit() || chars[i] == '.') {
                out.push(chars[i]);
                i += 1;
            }
            if i < chars.len() && (chars[i] == 'e' || chars[i] == 'E') {
                let mut j = i + 1;
                if j < chars.len() && (chars[j] == '+' || chars[j] == '-') {
                    j += 1;
                }
                if j < chars.len() && chars[j].is_ascii_digit() {
                    while j < chars.len() && chars[j].is_ascii_digit() {
                        j += 1;
                    }
                    out.extend(&chars[i..j]);
                    i = j;
                }
            }
        } else if c.is_alphabetic() || c == '_' {
            let start = i;
            while i < chars.len() && (chars[i].is_alphanumeric() || chars[i] == '_') {
                i += 1;
            }
            let ident: String = chars[start..i].iter().collect();
            let mut j = i;
            while j < chars.len() && chars[j].is_whitespace() {
                j += 1;
            }
            let is_call = chars.get(j) == Some(&'(');
            let is_constant = matches!(ident.as_str(), "PI" | "π" | "τ");
            if is_call || is_constant {
                out.push_str(&ident);
            } else {
                out.push('{');
                out.push_str(&ident);
                out.push('}');
            }
        } else if c == '{' {
            // Already braced by the user: copy through the closing brace.
            while i < chars.len() {
                out.push(chars[i]);
                i += 1;
                if chars[i - 1] == '}' {
                    break;
                }
            }
        } else {
            out.push(c);
            i += 1;
        }
    }
    out
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn braces_identifiers_not_calls_or_numbers() {
        assert_eq!(brace_identifiers("C*exp(A*Qr)"), "{C}*exp({A}*{Qr})");
        assert_eq!(brace_identifiers("1e-3*E+2.5E2"), "1e-3*{E}+2.5E2");
        assert_eq!(brace_identifiers("log2 (Qb)"), "log2 ({Qb})");
    }
}
