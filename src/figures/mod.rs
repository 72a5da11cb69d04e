//! Figures as data: every plot of the explorer and of `quantscape figures` is first computed as
//! a [`Figure`] (heatmap, lines, points, text labels, in plot coordinates), then drawn by
//! egui_plot (`app::plots`), or written as SVG, PNG or CSV ([`svg`], [`raster`]). Drawing never
//! computes; the same data feeds the screen and the files. No egui here.
//!
//! Coordinates: an axis marked log stores log10 of the value (ticks are labelled with the value);
//! CSV exports convert back. Colours are sRGB triples. Heatmap values are row-major, bottom row
//! first (y ascending), `nx` per row, already in the colour scale's units ([`Heat::log_values`]
//! says whether those units are log10 of the quantity, so colour bars can label values).

pub mod gallery;
pub mod hardware;
pub mod laws;
pub mod raster;
pub mod svg;
pub mod sweep;

/// How a series is drawn.
#[derive(Clone, Copy, Debug, PartialEq)]
pub enum Mark {
    /// A polyline of the given width (points).
    Line(f32),
    /// Dots of the given radius (points).
    Dots(f32),
    /// Filled bars from 0 to each point's y, centred on its x, of the given width (plot units).
    Bars(f32),
}

/// One named series.
#[derive(Clone, Debug, PartialEq)]
pub struct Series {
    /// Legend name (series of the same name share one legend entry).
    pub name: String,
    /// Line or dots.
    pub mark: Mark,
    /// sRGB colour.
    pub rgb: [u8; 3],
    /// Points in plot coordinates.
    pub points: Vec<[f64; 2]>,
}

/// A heatmap under the series.
#[derive(Clone, Debug, PartialEq)]
pub struct Heat {
    /// Legend name (what the colour means).
    pub name: String,
    /// Values, row-major from the bottom row; NaN cells are left blank.
    pub values: Vec<f64>,
    /// Cells per row.
    pub nx: usize,
    /// Lower-left corner in plot coordinates.
    pub origin: [f64; 2],
    /// Width and height in plot coordinates.
    pub size: [f64; 2],
    /// Colour scale range.
    pub range: [f64; 2],
    /// The values are log10 of the quantity named (colour bars label 10^v).
    pub log_values: bool,
}

/// A text label placed in plot coordinates.
#[derive(Clone, Debug, PartialEq)]
pub struct Label {
    /// Position.
    pub at: [f64; 2],
    /// Text.
    pub text: String,
}

/// A complete plot.
#[derive(Clone, Debug, Default, PartialEq)]
pub struct Figure {
    /// Stable id (egui id, export file stem).
    pub id: String,
    /// Title (SVG header).
    pub title: String,
    /// X axis label.
    pub x_label: String,
    /// Y axis label.
    pub y_label: String,
    /// X stores log10 of the value.
    pub x_log: bool,
    /// Y stores log10 of the value.
    pub y_log: bool,
    /// X (a log axis) is ticked at powers of two (block sizes).
    pub x_base2: bool,
    /// Y (a log axis) is ticked at powers of two.
    pub y_base2: bool,
    /// Optional heatmap drawn first.
    pub heat: Option<Heat>,
    /// Series drawn in order over the heatmap.
    pub series: Vec<Series>,
    /// Text labels drawn last.
    pub labels: Vec<Label>,
    /// Names of categorical x positions (a bar chart's configurations): x ticks at these
    /// positions are labelled with the names instead of numbers.
    pub x_names: Vec<(f64, String)>,
    /// The on-screen legend goes to the left corner (with `legend_top`: top left, else bottom
    /// left), where a falling front leaves room.
    pub legend_left: bool,
    /// The on-screen legend goes top right (falling curves) instead of bottom right.
    pub legend_top: bool,
    /// What a hover on a data point adds to the readout, by the point's plot coordinates
    /// (the Pareto figure's "Qb 32 · ΔL 0.012 [0.010, 0.015]").
    pub notes: Vec<([f64; 2], String)>,
}

impl Figure {
    /// An empty figure with axes.
    pub fn new(id: &str, title: &str, x_label: &str, y_label: &str) -> Self {
        Self {
            id: id.into(),
            title: title.into(),
            x_label: x_label.into(),
            y_label: y_label.into(),
            ..Self::default()
        }
    }

    /// Adds a series.
    pub fn push(&mut self, name: &str, mark: Mark, rgb: [u8; 3], points: Vec<[f64; 2]>) {
        self.series.push(Series {
            name: name.into(),
            mark,
            rgb,
            points,
        });
    }

    /// Bounds of everything drawn: ([x0, y0], [x1, y1]); None when nothing is finite.
    pub fn bounds(&self) -> Option<([f64; 2], [f64; 2])> {
        let mut lo = [f64::INFINITY; 2];
        let mut hi = [f64::NEG_INFINITY; 2];
        let mut add = |p: [f64; 2]| {
            if p[0].is_finite() && p[1].is_finite() {
                for k in 0..2 {
                    lo[k] = lo[k].min(p[k]);
                    hi[k] = hi[k].max(p[k]);
                }
            }
        };
        if let Some(h) = &self.heat {
            add(h.origin);
            add([h.origin[0] + h.size[0], h.origin[1] + h.size[1]]);
        }
        for s in &self.series {
            for p in &s.points {
                add(*p);
                if let Mark::Bars(w) = s.mark {
                    // Bars stand on 0 and are as wide as they say.
                    add([p[0] - f64::from(w) / 2.0, 0.0]);
                    add([p[0] + f64::from(w) / 2.0, 0.0]);
                }
            }
        }
        (lo[0] <= hi[0] && lo[1] <= hi[1]).then_some((lo, hi))
    }
}

impl Figure {
    /// The hover readout at plot coordinates (x, y): both axes by their short names, in data
    /// units, and the heatmap's value under the cursor (10^v for log values) — "N = 1.2M · Qr =
    /// 0.40 · ΔL = 0.0123". `near` names the series of the nearest point, when there is one.
    pub fn readout(&self, x: f64, y: f64, near: Option<&str>) -> String {
        let short = |label: &str| label.split(" (").next().unwrap_or(label).to_string();
        let val = |v: f64, log: bool| svg::value_text(if log { 10f64.powf(v) } else { v });
        let mut parts = vec![
            format!("{} = {}", short(&self.x_label), val(x, self.x_log)),
            format!("{} = {}", short(&self.y_label), val(y, self.y_log)),
        ];
        if let Some(h) = &self.heat {
            if let Some(v) = h.value_at(x, y) {
                let name = h.name.strip_prefix("log10 ").unwrap_or(&h.name);
                parts.push(format!("{name} = {}", val(v, h.log_values)));
            }
        }
        if near.is_some() {
            // The note of the point under the cursor (hover positions are the point's own).
            let tol = 1e-9 * (1.0 + x.abs().max(y.abs()));
            if let Some((_, note)) = self
                .notes
                .iter()
                .find(|(p, _)| (p[0] - x).abs() <= tol && (p[1] - y).abs() <= tol)
            {
                parts.push(note.clone());
            }
        }
        let text = parts.join(" · ");
        match near {
            Some(n) if !n.is_empty() => format!("{n}\n{text}"),
            _ => text,
        }
    }
}

impl Heat {
    /// The cell value at plot coordinates (x, y); None outside the map or on a blank cell.
    pub fn value_at(&self, x: f64, y: f64) -> Option<f64> {
        let nx = self.nx.max(1);
        let ny = self.values.len() / nx;
        let fx = (x - self.origin[0]) / self.size[0];
        let fy = (y - self.origin[1]) / self.size[1];
        if !((0.0..=1.0).contains(&fx) && (0.0..=1.0).contains(&fy)) || ny == 0 {
            return None;
        }
        let cx = ((fx * nx as f64) as usize).min(nx - 1);
        let cy = ((fy * ny as f64) as usize).min(ny - 1);
        self.values
            .get(cy * nx + cx)
            .copied()
            .filter(|v| v.is_finite())
    }

    /// Colour-bar ticks: (position in [0, 1] from the bottom, label in the quantity's units).
    pub fn bar_ticks(&self) -> Vec<(f64, String)> {
        let [r0, r1] = self.range;
        let span = (r1 - r0).max(1e-12);
        svg::axis_ticks(r0, r1, self.log_values, false)
            .into_iter()
            .map(|(t, s)| ((t - r0) / span, s))
            .collect()
    }
}

/// Tick positions on a log10 axis over [lo, hi]: decades, else 1-2-5 values (the SVG's ticks).
pub fn log_marks(lo: f64, hi: f64) -> Vec<f64> {
    svg::axis_ticks(lo, hi, true, false)
        .into_iter()
        .map(|(t, _)| t)
        .collect()
}

/// Tick positions at powers of two on a log10 axis over [lo, hi] (block sizes).
pub fn pow2_marks(lo: f64, hi: f64) -> Vec<f64> {
    svg::pow2_ticks(lo, hi)
}

/// Runs of consecutive finite points (each at least one point long).
pub fn finite_pieces(points: &[[f64; 2]]) -> Vec<Vec<[f64; 2]>> {
    points
        .split(|p| !(p[0].is_finite() && p[1].is_finite()))
        .filter(|s| !s.is_empty())
        .map(<[[f64; 2]]>::to_vec)
        .collect()
}

/// Up to 7 isoline levels at 1-2-5 steps spanning the positive values.
pub fn nice_levels(values: &[f64]) -> Vec<f64> {
    let (lo, hi) = values
        .iter()
        .filter(|v| v.is_finite() && **v > 0.0)
        .fold((f64::INFINITY, 0f64), |(a, b), v| (a.min(*v), b.max(*v)));
    if !(lo.is_finite() && hi > lo) {
        return Vec::new();
    }
    let mut out = Vec::new();
    let (e0, e1) = (lo.log10().floor() as i32, hi.log10().ceil() as i32);
    for e in e0..=e1 {
        for m in [1.0, 2.0, 5.0] {
            let v = m * 10f64.powi(e);
            if v > lo && v < hi {
                out.push(v);
            }
        }
    }
    while out.len() > 7 {
        out = out.into_iter().step_by(2).collect();
    }
    out
}

/// Series colours (sRGB), distinguishable on dark and light backgrounds.
pub const PALETTE: [[u8; 3]; 9] = [
    [90, 160, 240],
    [240, 170, 60],
    [120, 210, 120],
    [220, 110, 200],
    [230, 90, 80],
    [160, 130, 230],
    [90, 200, 200],
    [200, 200, 90],
    [180, 180, 180],
];

/// The `i`-th series colour (cycling).
pub fn colour(i: usize) -> [u8; 3] {
    PALETTE[i % PALETTE.len()]
}

/// Stops of the sequential palette for ordered series (model sizes): blue → purple → red →
/// orange, every stop readable on white and on the explorer's dark background.
pub const SEQUENTIAL_RGB: [[u8; 3]; 4] = [
    [60, 120, 235],
    [150, 90, 220],
    [225, 70, 120],
    [245, 160, 40],
];

/// The colour of the `i`-th of `k` ordered series (smallest first): distinct and ordered like
/// the legend, never repeating (unlike [`colour`]).
pub fn sequential(i: usize, k: usize) -> [u8; 3] {
    let t = if k > 1 {
        i as f64 / (k - 1) as f64
    } else {
        0.0
    };
    lerp_stops(&SEQUENTIAL_RGB, t)
}

/// The colour at `t` in [0, 1] of a palette linear between its stops (non-finite t: the first).
fn lerp_stops(stops: &[[u8; 3]], t: f64) -> [u8; 3] {
    let t = if t.is_finite() {
        t.clamp(0.0, 1.0)
    } else {
        0.0
    };
    let x = t * (stops.len() - 1) as f64;
    let i = (x.floor() as usize).min(stops.len() - 2);
    let f = x - i as f64;
    let (a, b) = (stops[i], stops[i + 1]);
    std::array::from_fn(|k| {
        (f64::from(a[k]) + f * (f64::from(b[k]) - f64::from(a[k]))).round() as u8
    })
}

/// The viridis palette at six stops (dark blue → green → yellow), sRGB.
pub const VIRIDIS_RGB: [[u8; 3]; 6] = [
    [68, 1, 84],
    [65, 68, 135],
    [42, 120, 142],
    [34, 168, 132],
    [122, 209, 81],
    [253, 231, 37],
];

/// The palette colour of `t` in [0, 1] (linear between stops), as egui's heatmap draws it.
pub fn viridis(t: f64) -> [u8; 3] {
    lerp_stops(&VIRIDIS_RGB, t)
}

/// Tick label: on a log axis `t` is log10 of the value and only integer and half decades are
/// labelled; on a linear axis the value itself.
pub fn tick(t: f64, log: bool) -> String {
    if !log {
        return trim_number(t);
    }
    if (t * 2.0 - (t * 2.0).round()).abs() < 1e-6 {
        // "10M", "31.6K", "0.000316": no trailing zeros, never an exponent.
        svg::value_text(10f64.powf(t))
    } else {
        String::new()
    }
}

fn trim_number(v: f64) -> String {
    // Three decimals, or three significant digits below 0.01 (log axes reach 10⁻⁴ and less).
    let decimals = if v != 0.0 && v.abs() < 0.01 {
        ((2.0 - v.abs().log10().floor()) as usize).min(15)
    } else {
        3
    };
    let s = format!("{v:.decimals$}");
    let s = s.trim_end_matches('0').trim_end_matches('.');
    if s == "-0" {
        "0".into()
    } else {
        s.into()
    }
}

/// A count in K/M/B/T units ("213.6K", "7.00B").
pub fn human(n: f64) -> String {
    let a = n.abs();
    if a >= 1e12 {
        format!("{:.2}T", n / 1e12)
    } else if a >= 1e9 {
        format!("{:.2}B", n / 1e9)
    } else if a >= 1e6 {
        format!("{:.2}M", n / 1e6)
    } else if a >= 1e3 {
        format!("{:.1}K", n / 1e3)
    } else {
        trim_number(n)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    /// A hover on a point adds that point's note (the Pareto figure's format, Qb and band);
    /// a hover away from points, or on a point without a note, does not.
    #[test]
    fn a_hovered_point_reads_its_note() {
        let mut f = Figure::new("t", "t", "bits per weight", "predicted ΔL (nats/token)");
        f.y_log = true;
        f.push(
            "nvfp4",
            Mark::Dots(3.0),
            [0, 0, 0],
            vec![[4.0625, -3.3], [4.5, -3.4]],
        );
        f.notes
            .push(([4.0625, -3.3], "nvfp4 Qb 128 · ΔL 5e-4".into()));
        let on = f.readout(4.0625, -3.3, Some("nvfp4"));
        assert!(
            on.starts_with("nvfp4\n") && on.ends_with(" · nvfp4 Qb 128 · ΔL 5e-4"),
            "{on}"
        );
        assert!(!f.readout(4.0625, -3.3, None).contains("Qb 128"));
        assert!(!f.readout(4.5, -3.4, Some("nvfp4")).contains("Qb"));
    }

    #[test]
    fn levels_ticks_and_palette() {
        assert_eq!(nice_levels(&[0.013, 0.9]), vec![0.02, 0.05, 0.1, 0.2, 0.5]);
        assert!(nice_levels(&[]).is_empty());
        assert_eq!(tick(5.0, true), "100K");
        assert_eq!(tick(7.0, true), "10M");
        assert_eq!(tick(4.5, true), "31.6K");
        assert_eq!(tick(5.25, true), "");
        assert_eq!(tick(0.25, false), "0.25");
        // Small values keep three significant digits (ΔL axes reach 10⁻⁴).
        assert_eq!(tick(-3.5, true), "0.000316");
        assert_eq!(tick(-4.0, true), "0.0001");
        assert_eq!(tick(-2.0, true), "0.01");
        assert_eq!(tick(-0.0004, false), "-0.0004");
        assert_eq!(human(7e9), "7.00B");
        assert_eq!(viridis(0.0), VIRIDIS_RGB[0]);
        assert_eq!(viridis(1.0), VIRIDIS_RGB[5]);
        assert_eq!(viridis(0.1), [67, 35, 110]);
        let nan = [f64::NAN, 0.0];
        let pieces = finite_pieces(&[nan, [1.0, 1.0], [2.0, 2.0], nan, nan, [3.0, 3.0], nan]);
        assert_eq!(pieces, vec![vec![[1.0, 1.0], [2.0, 2.0]], vec![[3.0, 3.0]]]);
        let mut f = Figure::new("f", "t", "x", "y");
        assert!(f.bounds().is_none());
        f.push(
            "a",
            Mark::Dots(2.0),
            [0, 0, 0],
            vec![[1.0, 2.0], [f64::NAN, 0.0], [3.0, -1.0]],
        );
        assert_eq!(f.bounds(), Some(([1.0, -1.0], [3.0, 2.0])));
    }

    #[test]
    fn hover_readout_names_the_axes_and_the_value_under_the_cursor() {
        let mut f = Figure::new(
            "m",
            "t",
            "N (non-embedding parameters)",
            "Qr (low-precision fraction)",
        );
        f.x_log = true;
        f.heat = Some(Heat {
            name: "log10 ΔL".into(),
            // Bottom row: 10^-3, 10^-2; top row: NaN, 10^-1.
            values: vec![-3.0, -2.0, f64::NAN, -1.0],
            nx: 2,
            origin: [4.0, 0.0],
            size: [2.0, 1.0],
            range: [-3.0, -1.0],
            log_values: true,
        });
        assert_eq!(
            f.readout(5.5, 0.25, None),
            "N = 316.2K · Qr = 0.25 · ΔL = 0.01"
        );
        assert_eq!(
            f.readout(5.5, 0.75, Some("measured")),
            "measured\nN = 316.2K · Qr = 0.75 · ΔL = 0.1"
        );
        // A blank cell and outside the map: no value.
        assert_eq!(f.readout(4.5, 0.75, None), "N = 31.6K · Qr = 0.75");
        assert_eq!(f.readout(7.0, 0.5, None), "N = 10M · Qr = 0.5");
        let h = f.heat.as_ref().unwrap();
        let ticks = h.bar_ticks();
        assert_eq!(ticks.first().map(|t| t.1.as_str()), Some("0.001"));
        assert_eq!(ticks.last().map(|t| t.1.as_str()), Some("0.1"));
        assert!((ticks.last().unwrap().0 - 1.0).abs() < 1e-9);
        assert_eq!(pow2_marks(1.0, 2.0).len(), 3, "16, 32, 64");
    }
}
