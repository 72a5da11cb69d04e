//! Figures as data: every plot of the explorer is first computed as a [`Figure`] (heatmap,
//! lines, points, text labels, in plot coordinates), then drawn by egui_plot here, or written as
//! SVG/CSV by [`super::export`]. Drawing never computes; the same data feeds screen and files.
//!
//! Coordinates: an axis marked log stores log10 of the value (ticks are labelled with the value);
//! CSV exports convert back. Colours are sRGB triples. Heatmap values are row-major, bottom row
//! first (y ascending), `nx` per row, already in the colour scale's units.

use std::hash::{Hash, Hasher};

use egui::{Color32, RichText, TextureHandle, Ui};
use egui_plot::{Legend, Line, Plot, PlotImage, PlotPoint, PlotPoints, Points, Text};

/// How a series is drawn.
#[derive(Clone, Copy, Debug, PartialEq)]
pub enum Mark {
    /// A polyline of the given width (points).
    Line(f32),
    /// Dots of the given radius (points).
    Dots(f32),
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
    /// Optional heatmap drawn first.
    pub heat: Option<Heat>,
    /// Series drawn in order over the heatmap.
    pub series: Vec<Series>,
    /// Text labels drawn last.
    pub labels: Vec<Label>,
    /// The on-screen legend goes top right (falling curves) instead of bottom right.
    pub legend_top: bool,
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
        self.series
            .iter()
            .flat_map(|s| &s.points)
            .for_each(|p| add(*p));
        (lo[0] <= hi[0] && lo[1] <= hi[1]).then_some((lo, hi))
    }

    /// Draws the figure with egui_plot into the remaining space (at most `height` points tall
    /// when given).
    pub fn show(&self, ui: &mut Ui, height: Option<f32>) {
        let (x_log, y_log) = (self.x_log, self.y_log);
        let mut plot =
            Plot::new(self.id.as_str())
                .x_axis_label(self.x_label.as_str())
                .y_axis_label(self.y_label.as_str())
                // Entries in the order the series were added (sizes ascending, formats as listed),
                // not sorted by name ("N = 13.9K" would sort after "N = 100K").
                .legend(Legend::default().follow_insertion_order(true).position(
                    if self.legend_top {
                        egui_plot::Corner::RightTop
                    } else {
                        egui_plot::Corner::RightBottom
                    },
                ))
                .x_axis_formatter(move |m, _| tick(m.value, x_log))
                .y_axis_formatter(move |m, _| tick(m.value, y_log));
        if let Some(h) = height {
            plot = plot.height(h);
        }
        let texture = self.heat.as_ref().map(|h| heat_texture(ui, &self.id, h));
        plot.show(ui, |p| {
            if let (Some(h), Some(tex)) = (&self.heat, &texture) {
                // One textured quad (uploaded when the values change), not a shape per cell.
                p.image(PlotImage::new(
                    h.name.as_str(),
                    tex.id(),
                    PlotPoint::new(h.origin[0] + h.size[0] / 2.0, h.origin[1] + h.size[1] / 2.0),
                    [h.size[0] as f32, h.size[1] as f32],
                ));
            }
            // egui_plot must never see a non-finite coordinate: lines break there (a NaN
            // point separates pieces of one series), dots are dropped.
            for s in &self.series {
                let c = Color32::from_rgb(s.rgb[0], s.rgb[1], s.rgb[2]);
                match s.mark {
                    Mark::Line(w) => {
                        for piece in finite_pieces(&s.points) {
                            p.line(
                                Line::new(s.name.as_str(), PlotPoints::from(piece))
                                    .color(c)
                                    .width(w),
                            );
                        }
                    }
                    Mark::Dots(r) => {
                        let pts: Vec<[f64; 2]> = s
                            .points
                            .iter()
                            .copied()
                            .filter(|q| q[0].is_finite() && q[1].is_finite())
                            .collect();
                        p.points(
                            Points::new(s.name.as_str(), PlotPoints::from(pts))
                                .color(c)
                                .radius(r),
                        );
                    }
                }
            }
            for l in &self.labels {
                p.text(Text::new(
                    "labels",
                    PlotPoint::new(l.at[0], l.at[1]),
                    RichText::new(l.text.as_str()).color(Color32::WHITE).small(),
                ));
            }
        });
    }
}

/// Runs of consecutive finite points (each at least one point long).
pub fn finite_pieces(points: &[[f64; 2]]) -> Vec<Vec<[f64; 2]>> {
    points
        .split(|p| !(p[0].is_finite() && p[1].is_finite()))
        .filter(|s| !s.is_empty())
        .map(<[[f64; 2]]>::to_vec)
        .collect()
}

/// The heatmap as a texture, cached in egui's memory under the figure id and re-uploaded only
/// when the values or the colour range change. Rows are flipped (images run top-down); NaN cells
/// are transparent.
fn heat_texture(ui: &Ui, id: &str, h: &Heat) -> TextureHandle {
    let mut hasher = std::collections::hash_map::DefaultHasher::new();
    h.nx.hash(&mut hasher);
    for v in h.values.iter().chain(&h.range) {
        v.to_bits().hash(&mut hasher);
    }
    let key = hasher.finish();
    let mem = egui::Id::unique(("quantscape_heat", id));
    let cached = ui
        .ctx()
        .data(|d| d.get_temp::<(u64, TextureHandle)>(mem))
        .filter(|(k, _)| *k == key);
    if let Some((_, t)) = cached {
        return t;
    }
    let nx = h.nx.max(1);
    let ny = h.values.len() / nx;
    let span = (h.range[1] - h.range[0]).max(1e-12);
    let mut pixels = Vec::with_capacity(nx * ny);
    for row in (0..ny).rev() {
        for v in &h.values[row * nx..(row + 1) * nx] {
            pixels.push(if v.is_finite() {
                let c = viridis((v - h.range[0]) / span);
                Color32::from_rgb(c[0], c[1], c[2])
            } else {
                Color32::TRANSPARENT
            });
        }
    }
    let image = egui::ColorImage::new([nx, ny], pixels);
    let t = ui
        .ctx()
        .load_texture(format!("{id}_heat"), image, egui::TextureOptions::NEAREST);
    ui.ctx().data_mut(|d| d.insert_temp(mem, (key, t.clone())));
    t
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
    let t = if t.is_finite() {
        t.clamp(0.0, 1.0)
    } else {
        0.0
    };
    let x = t * (VIRIDIS_RGB.len() - 1) as f64;
    let i = (x.floor() as usize).min(VIRIDIS_RGB.len() - 2);
    let f = x - i as f64;
    let (a, b) = (VIRIDIS_RGB[i], VIRIDIS_RGB[i + 1]);
    std::array::from_fn(|k| {
        (f64::from(a[k]) + f * (f64::from(b[k]) - f64::from(a[k]))).round() as u8
    })
}

/// Tick label: on a log axis `t` is log10 of the value and only integer and half decades are
/// labelled; on a linear axis the value itself.
pub fn tick(t: f64, log: bool) -> String {
    if !log {
        return trim_number(t);
    }
    if (t * 2.0 - (t * 2.0).round()).abs() < 1e-6 {
        // "10M", "316.2K": no trailing zeros on ticks.
        let h = human(10f64.powf(t));
        let split = h.find(|c: char| c.is_ascii_alphabetic()).unwrap_or(h.len());
        let (num, unit) = h.split_at(split);
        let num = if num.contains('.') {
            num.trim_end_matches('0').trim_end_matches('.')
        } else {
            num
        };
        format!("{num}{unit}")
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
}
