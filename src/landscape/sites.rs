//! Which linear sites a landscape direction or a Hessian probe covers: all of them, or those of
//! chosen transformer blocks and/or tensor kinds.
//!
//! Spelling (CLI `--layers`, `--kinds`): layers as a comma list of indices and inclusive ranges
//! (`0,2-3`); kinds as a comma list of tensor kinds — the weight name's last component before
//! `.weight` (`q_proj`, `down_proj`, `query_key_value`, `dense_4h_to_h`, …) — or the groups
//! `attention` and `mlp`. Empty lists select everything. A filter that selects no site of the
//! model, a layer past the last block or a kind no site has is an input error naming what the
//! model does have. The mask is one `bool` per site, in `Transformer::linears` order.

use crate::model::transformer::LinearSite;
use crate::{Error, Result};

/// A restriction of the linear sites (empty lists: no restriction).
#[derive(Clone, Debug, Default, PartialEq, Eq, serde::Serialize, serde::Deserialize)]
pub struct SiteFilter {
    /// Transformer block indices.
    #[serde(default)]
    pub layers: Vec<usize>,
    /// Tensor kinds or the groups `attention` / `mlp`.
    #[serde(default)]
    pub kinds: Vec<String>,
}

/// The tensor kind of a site: its weight name's component before `.weight`.
pub fn kind(site: &LinearSite) -> &str {
    let name = site.name.strip_suffix(".weight").unwrap_or(&site.name);
    name.rsplit('.').next().unwrap_or(name)
}

fn in_group(site: &LinearSite, group: &str) -> bool {
    let n = &site.name;
    match group {
        "attention" => [".self_attn.", ".attention.", ".attn."]
            .iter()
            .any(|p| n.contains(p)),
        "mlp" => n.contains(".mlp."),
        _ => false,
    }
}

impl SiteFilter {
    /// Parses `--layers` (`0,2-3`) and `--kinds` (`q_proj,mlp`); `None` or empty selects all.
    pub fn parse(layers: Option<&str>, kinds: Option<&str>) -> Result<Self> {
        let mut out = Self::default();
        for part in layers.unwrap_or("").split(',').map(str::trim) {
            if part.is_empty() {
                continue;
            }
            let bad = || Error::Input(format!("layers `{part}`: expected an index or LO-HI"));
            match part.split_once('-') {
                Some((a, b)) => {
                    let (lo, hi): (usize, usize) = (
                        a.trim().parse().map_err(|_| bad())?,
                        b.trim().parse().map_err(|_| bad())?,
                    );
                    if lo > hi {
                        return Err(bad());
                    }
                    out.layers.extend(lo..=hi);
                }
                None => out.layers.push(part.parse().map_err(|_| bad())?),
            }
        }
        out.layers.sort_unstable();
        out.layers.dedup();
        out.kinds = kinds
            .unwrap_or("")
            .split(',')
            .map(str::trim)
            .filter(|k| !k.is_empty())
            .map(str::to_string)
            .collect();
        Ok(out)
    }

    /// True when nothing is restricted.
    pub fn is_all(&self) -> bool {
        self.layers.is_empty() && self.kinds.is_empty()
    }

    /// Whether `site` is selected.
    pub fn selects(&self, site: &LinearSite) -> bool {
        (self.layers.is_empty() || self.layers.contains(&site.layer))
            && (self.kinds.is_empty()
                || self
                    .kinds
                    .iter()
                    .any(|k| k == kind(site) || in_group(site, k)))
    }

    /// One flag per site; errors when the filter names layers or kinds the model lacks or
    /// selects nothing.
    pub fn mask(&self, sites: &[LinearSite]) -> Result<Vec<bool>> {
        let n_layers = sites.iter().map(|s| s.layer + 1).max().unwrap_or(0);
        if let Some(l) = self.layers.iter().find(|l| **l >= n_layers) {
            return Err(Error::Input(format!(
                "layer {l} does not exist (the model has blocks 0–{})",
                n_layers.saturating_sub(1)
            )));
        }
        for k in &self.kinds {
            if !sites.iter().any(|s| kind(s) == k || in_group(s, k)) {
                let mut known: Vec<&str> = sites.iter().map(kind).collect();
                known.sort_unstable();
                known.dedup();
                return Err(Error::Input(format!(
                    "tensor kind `{k}` matches no linear site (this model has: {}, or the \
                     groups attention, mlp)",
                    known.join(", ")
                )));
            }
        }
        let mask: Vec<bool> = sites.iter().map(|s| self.selects(s)).collect();
        if !mask.contains(&true) {
            return Err(Error::Input(format!(
                "sites `{}` select no linear weight of this model",
                self.describe()
            )));
        }
        Ok(mask)
    }

    /// `all`, or e.g. `layers 0,2 · kinds q_proj,mlp`.
    pub fn describe(&self) -> String {
        if self.is_all() {
            return "all".into();
        }
        let mut parts = Vec::new();
        if !self.layers.is_empty() {
            let l: Vec<String> = self.layers.iter().map(usize::to_string).collect();
            parts.push(format!("layers {}", l.join(",")));
        }
        if !self.kinds.is_empty() {
            parts.push(format!("kinds {}", self.kinds.join(",")));
        }
        parts.join(" · ")
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::model::sites::Layout;

    fn site(name: &str, layer: usize) -> LinearSite {
        LinearSite {
            name: name.into(),
            layer,
            out_features: 2,
            in_features: 2,
            layout: Layout::OutIn,
        }
    }

    fn llama() -> Vec<LinearSite> {
        let mut v = Vec::new();
        for l in 0..3 {
            for k in ["self_attn.q_proj", "self_attn.o_proj", "mlp.down_proj"] {
                v.push(site(&format!("model.layers.{l}.{k}.weight"), l));
            }
        }
        v
    }

    #[test]
    fn parses_layer_ranges_and_kinds() {
        let f = SiteFilter::parse(Some("2, 0-1,1"), Some("q_proj, mlp")).unwrap();
        assert_eq!(f.layers, vec![0, 1, 2]);
        assert_eq!(f.kinds, vec!["q_proj", "mlp"]);
        assert_eq!(f.describe(), "layers 0,1,2 · kinds q_proj,mlp");
        assert!(SiteFilter::parse(Some("3-1"), None).is_err());
        assert!(SiteFilter::parse(Some("x"), None).is_err());
        assert!(SiteFilter::parse(None, None).unwrap().is_all());
    }

    #[test]
    fn masks_by_layer_kind_and_group() {
        let s = llama();
        let m = SiteFilter::parse(Some("1"), Some("attention"))
            .unwrap()
            .mask(&s)
            .unwrap();
        let picked: Vec<&str> = s
            .iter()
            .zip(&m)
            .filter(|(_, k)| **k)
            .map(|(s, _)| s.name.as_str())
            .collect();
        assert_eq!(
            picked,
            vec![
                "model.layers.1.self_attn.q_proj.weight",
                "model.layers.1.self_attn.o_proj.weight"
            ]
        );
        let m = SiteFilter::parse(None, Some("down_proj"))
            .unwrap()
            .mask(&s)
            .unwrap();
        assert_eq!(m.iter().filter(|k| **k).count(), 3);
        let e = SiteFilter::parse(Some("3"), None).unwrap().mask(&s);
        assert!(e.unwrap_err().to_string().contains("blocks 0–2"));
        let e = SiteFilter::parse(None, Some("gate_proj")).unwrap().mask(&s);
        assert!(e
            .unwrap_err()
            .to_string()
            .contains("down_proj, o_proj, q_proj"));
    }
}
