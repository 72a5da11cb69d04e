//! A [`Figure`] as a paper figure: a standalone SVG document (vector axes, ticks, text, lines and
//! points; a heatmap as ONE embedded PNG image, not a rectangle per cell; a colour bar with
//! numeric labels in the quantity's units), or its data as CSV; a table as CSV.
//!
//! Geometry: a page of `width × height` px (default [`PAGE`]), the plot area inset by fixed
//! margins on the left/top/bottom and by the colour bar and the legend on the right, so neither
//! ever covers the data. Tick labels: a log axis is labelled with values (decades, else 1-2-5
//! steps), a base-2 axis ([`Figure::x_base2`]) with powers of two, counts in K/M/B/T.

use std::fmt::Write as _;

use base64::Engine as _;

use super::{finite_pieces, human, viridis, Figure, Heat, Mark, VIRIDIS_RGB};
use crate::{Error, Result};

/// Default page size in px (CSS pixels, 96 per inch).
pub const PAGE: [f64; 2] = [860.0, 540.0];

fn csv_field(s: &str) -> String {
    if s.contains([',', '"', '\n']) {
        format!("\"{}\"", s.replace('"', "\"\""))
    } else {
        s.to_string()
    }
}

fn unlog(v: f64, log: bool) -> f64 {
    if log {
        10f64.powf(v)
    } else {
        v
    }
}

/// The figure's data as CSV: `series,x,y,z` (z: the heatmap value; x/y in data units).
pub fn figure_csv(f: &Figure) -> String {
    let mut out = String::from("series,x,y,z\n");
    if let Some(h) = &f.heat {
        let ny = h.values.len() / h.nx.max(1);
        let (dx, dy) = (h.size[0] / h.nx.max(1) as f64, h.size[1] / ny.max(1) as f64);
        for (i, v) in h.values.iter().enumerate() {
            let (cx, cy) = (i % h.nx.max(1), i / h.nx.max(1));
            let x = unlog(h.origin[0] + (cx as f64 + 0.5) * dx, f.x_log);
            let y = unlog(h.origin[1] + (cy as f64 + 0.5) * dy, f.y_log);
            let _ = writeln!(out, "{},{x},{y},{v}", csv_field(&h.name));
        }
    }
    for s in &f.series {
        for p in &s.points {
            let (x, y) = (unlog(p[0], f.x_log), unlog(p[1], f.y_log));
            let _ = writeln!(out, "{},{x},{y},", csv_field(&s.name));
        }
    }
    out
}

/// A table as CSV.
pub fn table_csv(header: &[&str], rows: &[Vec<String>]) -> String {
    let mut out = header
        .iter()
        .map(|h| csv_field(h))
        .collect::<Vec<_>>()
        .join(",");
    out.push('\n');
    for r in rows {
        out.push_str(&r.iter().map(|c| csv_field(c)).collect::<Vec<_>>().join(","));
        out.push('\n');
    }
    out
}

fn xml(s: &str) -> String {
    s.replace('&', "&amp;")
        .replace('<', "&lt;")
        .replace('>', "&gt;")
        .replace('"', "&quot;")
}

fn rgb(c: [u8; 3]) -> String {
    format!("#{:02x}{:02x}{:02x}", c[0], c[1], c[2])
}

/// 1-2-5 steps over [lo, hi] (about six), linear.
fn linear_ticks(lo: f64, hi: f64) -> Vec<f64> {
    let span = (hi - lo).max(1e-12);
    let raw = span / 6.0;
    let mag = 10f64.powf(raw.log10().floor());
    let step = [1.0, 2.0, 5.0, 10.0]
        .iter()
        .map(|m| m * mag)
        .find(|s| *s >= raw)
        .unwrap_or(10.0 * mag);
    let mut t = (lo / step).ceil() * step;
    let mut out = Vec::new();
    while t <= hi + 1e-9 * span && out.len() < 20 {
        // Snap -0.0 and accumulated error (0.30000000000000004) to the step's grid.
        out.push(((t / step).round() * step) + 0.0);
        t += step;
    }
    out
}

/// Ticks on a log10 axis (positions are log10 of values in [lo, hi]): integer decades when at
/// least two fall inside (every k-th when there are many), else 1-2-5 × 10^k, else 1…9 × 10^k.
fn log_ticks(lo: f64, hi: f64) -> Vec<f64> {
    let decades: Vec<f64> = ((lo.ceil() as i64)..=(hi.floor() as i64))
        .map(|k| k as f64)
        .collect();
    if decades.len() >= 2 {
        let every = decades.len().div_ceil(8);
        return decades.into_iter().step_by(every).collect();
    }
    for mantissas in [
        &[1.0, 2.0, 5.0][..],
        &[1.0, 2.0, 3.0, 4.0, 5.0, 6.0, 7.0, 8.0, 9.0],
    ] {
        let mut out = Vec::new();
        for e in (lo.floor() as i64)..=(hi.ceil() as i64) {
            for m in mantissas {
                let t = (m * 10f64.powi(e as i32)).log10();
                if t >= lo - 1e-9 && t <= hi + 1e-9 {
                    out.push(t);
                }
            }
        }
        if out.len() >= 2 {
            return out;
        }
    }
    linear_ticks(lo, hi)
}

/// Ticks at powers of two on a log10 axis (every other one when there are more than ten).
pub(crate) fn pow2_ticks(lo: f64, hi: f64) -> Vec<f64> {
    let l2 = std::f64::consts::LOG10_2;
    let ks: Vec<i64> =
        (((lo / l2) - 1e-9).ceil() as i64..=((hi / l2) + 1e-9).floor() as i64).collect();
    let every = ks.len().div_ceil(10).max(1);
    ks.into_iter()
        .step_by(every)
        .map(|k| k as f64 * l2)
        .collect()
}

/// A value as a tick label: counts in K/M/B/T without trailing zeros, small values with three
/// significant digits, never an exponent.
pub fn value_text(v: f64) -> String {
    if v.abs() >= 1e3 {
        let h = human(v);
        let split = h.find(|c: char| c.is_ascii_alphabetic()).unwrap_or(h.len());
        let (num, unit) = h.split_at(split);
        let num = if num.contains('.') {
            num.trim_end_matches('0').trim_end_matches('.')
        } else {
            num
        };
        return format!("{num}{unit}");
    }
    if v == 0.0 {
        return "0".into();
    }
    let decimals = ((2.0 - v.abs().log10().floor()).max(0.0) as usize).min(15);
    let s = format!("{v:.decimals$}");
    let s = if s.contains('.') {
        s.trim_end_matches('0').trim_end_matches('.').to_string()
    } else {
        s
    };
    if s == "-0" {
        "0".into()
    } else {
        s
    }
}

/// A power of two on a log10 axis as its integer (`1024`, not `1K`).
pub fn pow2_text(t: f64) -> String {
    format!("{}", 10f64.powf(t).round() as u64)
}

/// Tick positions and labels of one axis over [lo, hi] (plot coordinates).
pub(crate) fn axis_ticks(lo: f64, hi: f64, log: bool, base2: bool) -> Vec<(f64, String)> {
    if log && base2 {
        let t = pow2_ticks(lo, hi);
        if t.len() >= 2 {
            return t.into_iter().map(|t| (t, pow2_text(t))).collect();
        }
    }
    if log {
        return log_ticks(lo, hi)
            .into_iter()
            .map(|t| (t, value_text(10f64.powf(t))))
            .collect();
    }
    linear_ticks(lo, hi)
        .into_iter()
        .map(|t| (t, value_text(t)))
        .collect()
}

/// The page and plot area of an SVG figure, and the data → page mapping.
struct Frame {
    h: f64,
    ml: f64,
    mt: f64,
    pw: f64,
    ph: f64,
    lo: [f64; 2],
    hi: [f64; 2],
}

impl Frame {
    fn span(&self, k: usize) -> f64 {
        (self.hi[k] - self.lo[k]).max(1e-12)
    }

    fn px(&self, x: f64) -> f64 {
        self.ml + (x - self.lo[0]) / self.span(0) * self.pw
    }

    fn py(&self, y: f64) -> f64 {
        self.mt + self.ph - (y - self.lo[1]) / self.span(1) * self.ph
    }
}

/// Legend entries: one per series name, in insertion order, with the first series' colour and
/// mark.
fn legend_entries(f: &Figure) -> Vec<(&str, [u8; 3], Mark)> {
    let mut names: Vec<(&str, [u8; 3], Mark)> = Vec::new();
    for ser in &f.series {
        if !names.iter().any(|(n, _, _)| *n == ser.name) {
            names.push((&ser.name, ser.rgb, ser.mark));
        }
    }
    names
}

/// Width in px of `text` at `size` px (a sans-serif average of 0.55 em per character).
fn text_width(text: &str, size: f64) -> f64 {
    text.chars().count() as f64 * size * 0.55
}

/// The figure as a standalone SVG document on the default page.
pub fn figure_svg(f: &Figure) -> Result<String> {
    figure_svg_sized(f, PAGE)
}

/// The figure as a standalone SVG document on a page of `size` px (each at least 320 × 240).
pub fn figure_svg_sized(f: &Figure, size: [f64; 2]) -> Result<String> {
    let (mut lo, mut hi) = f
        .bounds()
        .ok_or_else(|| Error::Input(format!("figure `{}` has nothing to export", f.id)))?;
    // Points on the edge stay whole: 4 % of padding, except around a heatmap (it fills the plot).
    if f.heat.is_none() {
        for k in 0..2 {
            let pad = 0.04 * (hi[k] - lo[k]).max(1e-9);
            lo[k] -= pad;
            hi[k] += pad;
        }
    }
    if !(size[0] >= 320.0 && size[1] >= 240.0 && size[0] <= 20_000.0 && size[1] <= 20_000.0) {
        return Err(Error::Input(format!(
            "figure size {}×{} px is outside 320×240 … 20000×20000",
            size[0], size[1]
        )));
    }
    let (w, h) = (size[0], size[1]);
    let legend = legend_entries(f);
    let legend_w = legend
        .iter()
        .map(|(n, _, _)| text_width(n, 12.0))
        .fold(0.0, f64::max)
        .min(w * 0.3);
    let legend_w = if legend.is_empty() {
        0.0
    } else {
        legend_w + 40.0
    };
    let bar_w = if f.heat.is_some() { 90.0 } else { 0.0 };
    let (ml, mt, mb) = (84.0, 48.0, 56.0);
    let mr = 20.0 + bar_w + legend_w;
    let fr = Frame {
        h,
        ml,
        mt,
        pw: (w - ml - mr).max(100.0),
        ph: (h - mt - mb).max(100.0),
        lo,
        hi,
    };
    let mut s = String::new();
    let _ = writeln!(
        s,
        r#"<svg xmlns="http://www.w3.org/2000/svg" width="{w}" height="{h}" viewBox="0 0 {w} {h}" font-family="Ubuntu, sans-serif" font-size="13">"#
    );
    let _ = writeln!(s, r#"<rect width="{w}" height="{h}" fill="white"/>"#);
    let title_size = if text_width(&f.title, 16.0) > w - 20.0 {
        (16.0 * (w - 20.0) / text_width(&f.title, 16.0)).max(10.0)
    } else {
        16.0
    };
    let _ = writeln!(
        s,
        r#"<text x="{}" y="28" font-size="{title_size:.1}" text-anchor="middle">{}</text>"#,
        w / 2.0,
        xml(&f.title)
    );
    let _ = writeln!(
        s,
        r#"<clipPath id="plot"><rect x="{ml}" y="{mt}" width="{}" height="{}"/></clipPath>"#,
        fr.pw, fr.ph
    );
    let _ = writeln!(s, r#"<g clip-path="url(#plot)">"#);
    if let Some(hm) = &f.heat {
        svg_heat(&mut s, &fr, hm)?;
    }
    svg_series(&mut s, &fr, f);
    let _ = writeln!(s, "</g>");
    svg_labels(&mut s, &fr, f);
    svg_axes(&mut s, &fr, f);
    if let Some(hm) = &f.heat {
        svg_colour_bar(&mut s, &fr, hm);
    }
    svg_legend(&mut s, &fr, &legend, ml + fr.pw + 20.0 + bar_w);
    s.push_str("</svg>\n");
    Ok(s)
}

/// The heatmap's cells as RGBA pixels, top row first (images run top-down); NaN cells clear.
pub fn heat_pixels(hm: &Heat) -> (usize, usize, Vec<u8>) {
    let nx = hm.nx.max(1);
    let ny = hm.values.len() / nx;
    let span = (hm.range[1] - hm.range[0]).max(1e-12);
    let mut px = Vec::with_capacity(nx * ny * 4);
    for row in (0..ny).rev() {
        for v in &hm.values[row * nx..(row + 1) * nx] {
            if v.is_finite() {
                let c = viridis((v - hm.range[0]) / span);
                px.extend_from_slice(&[c[0], c[1], c[2], 255]);
            } else {
                px.extend_from_slice(&[0, 0, 0, 0]);
            }
        }
    }
    (nx, ny, px)
}

/// RGBA pixels (straight alpha, fully opaque or fully clear) as PNG bytes.
pub fn rgba_png(width: usize, height: usize, rgba: &[u8]) -> Result<Vec<u8>> {
    let size = resvg::tiny_skia::IntSize::from_wh(width as u32, height as u32)
        .filter(|_| rgba.len() == width * height * 4)
        .ok_or_else(|| {
            Error::Input(format!(
                "a {width}×{height} image needs {} bytes, got {}",
                width * height * 4,
                rgba.len()
            ))
        })?;
    let pixmap = resvg::tiny_skia::Pixmap::from_vec(rgba.to_vec(), size)
        .ok_or_else(|| Error::Input(format!("a {width}×{height} image could not be made")))?;
    pixmap
        .encode_png()
        .map_err(|e| Error::Input(format!("PNG encoding failed: {e}")))
}

fn svg_heat(s: &mut String, fr: &Frame, hm: &Heat) -> Result<()> {
    let (nx, ny, px) = heat_pixels(hm);
    if ny == 0 {
        return Ok(());
    }
    let png = rgba_png(nx, ny, &px)?;
    let (x0, x1) = (fr.px(hm.origin[0]), fr.px(hm.origin[0] + hm.size[0]));
    let (y0, y1) = (fr.py(hm.origin[1] + hm.size[1]), fr.py(hm.origin[1]));
    let _ = writeln!(
        s,
        r#"<image x="{x0:.2}" y="{y0:.2}" width="{:.2}" height="{:.2}" preserveAspectRatio="none" href="data:image/png;base64,{}"/>"#,
        x1 - x0,
        y1 - y0,
        base64::engine::general_purpose::STANDARD.encode(png)
    );
    Ok(())
}

/// The colour bar right of the plot: the palette as a vector gradient (viridis is linear between
/// its six stops, so the gradient is the exact scale), ticks labelled with values (10^v when
/// the heat holds log10 values), and the heat's name.
fn svg_colour_bar(s: &mut String, fr: &Frame, hm: &Heat) {
    let (x, y, bw, bh) = (fr.ml + fr.pw + 14.0, fr.mt, 14.0, fr.ph);
    let _ = writeln!(
        s,
        r#"<linearGradient id="cbar" x1="0" y1="1" x2="0" y2="0">"#
    );
    for (i, c) in VIRIDIS_RGB.iter().enumerate() {
        let _ = writeln!(
            s,
            r#"<stop offset="{:.3}" stop-color="{}"/>"#,
            i as f64 / (VIRIDIS_RGB.len() - 1) as f64,
            rgb(*c)
        );
    }
    let _ = writeln!(s, "</linearGradient>");
    let _ = writeln!(
        s,
        r#"<rect class="colour-bar" x="{x}" y="{y}" width="{bw}" height="{bh}" fill="url(#cbar)" stroke="black" stroke-width="0.5"/>"#
    );
    let [r0, r1] = hm.range;
    let span = (r1 - r0).max(1e-12);
    for (t, text) in axis_ticks(r0, r1, hm.log_values, false) {
        let ty = y + bh - (t - r0) / span * bh;
        let _ = writeln!(
            s,
            r#"<line x1="{}" y1="{ty:.2}" x2="{}" y2="{ty:.2}" stroke="black"/><text x="{}" y="{:.2}">{}</text>"#,
            x + bw,
            x + bw + 4.0,
            x + bw + 6.0,
            ty + 4.0,
            xml(&text)
        );
    }
    let name = hm
        .name
        .strip_prefix("log10 ")
        .unwrap_or(&hm.name)
        .to_string();
    let _ = writeln!(
        s,
        r#"<text transform="translate({},{}) rotate(90)" text-anchor="middle">{}</text>"#,
        x + bw + 62.0,
        y + bh / 2.0,
        xml(&name)
    );
}

fn svg_series(s: &mut String, fr: &Frame, f: &Figure) {
    for ser in &f.series {
        let c = rgb(ser.rgb);
        match ser.mark {
            Mark::Line(width) => {
                // A non-finite point breaks the line.
                for piece in finite_pieces(&ser.points) {
                    let pts: Vec<String> = piece
                        .iter()
                        .map(|p| format!("{:.2},{:.2}", fr.px(p[0]), fr.py(p[1])))
                        .collect();
                    let _ = writeln!(
                        s,
                        r#"<polyline fill="none" stroke="{c}" stroke-width="{width}" stroke-linejoin="round" points="{}"/>"#,
                        pts.join(" ")
                    );
                }
            }
            Mark::Bars(width) => {
                for p in ser
                    .points
                    .iter()
                    .filter(|p| p[0].is_finite() && p[1].is_finite())
                {
                    let half = f64::from(width) / 2.0;
                    let (x0, x1) = (fr.px(p[0] - half), fr.px(p[0] + half));
                    let (y0, y1) = (fr.py(p[1].max(0.0)), fr.py(p[1].min(0.0)));
                    let _ = writeln!(
                        s,
                        r#"<rect class="bar" x="{x0:.2}" y="{y0:.2}" width="{:.2}" height="{:.2}" fill="{c}" stroke="black" stroke-width="0.4"/>"#,
                        (x1 - x0).max(0.5),
                        (y1 - y0).max(0.0)
                    );
                }
            }
            Mark::Dots(radius) => {
                for p in ser
                    .points
                    .iter()
                    .filter(|p| p[0].is_finite() && p[1].is_finite())
                {
                    let _ = writeln!(
                        s,
                        r#"<circle cx="{:.2}" cy="{:.2}" r="{radius}" fill="{c}" stroke="black" stroke-width="0.4"/>"#,
                        fr.px(p[0]),
                        fr.py(p[1])
                    );
                }
            }
        }
    }
}

/// Text labels, dark on a white halo so they read on the heatmap and on white alike.
fn svg_labels(s: &mut String, fr: &Frame, f: &Figure) {
    for l in f
        .labels
        .iter()
        .filter(|l| l.at[0].is_finite() && l.at[1].is_finite())
    {
        let (x, y) = (fr.px(l.at[0]) + 4.0, fr.py(l.at[1]) - 4.0);
        if x < fr.ml || x > fr.ml + fr.pw || y < fr.mt || y > fr.mt + fr.ph {
            continue;
        }
        // Labels near the right edge end at their point instead of running off the plot.
        let (x, anchor) = if x > fr.ml + 0.8 * fr.pw {
            (x - 8.0, "end")
        } else {
            (x, "start")
        };
        let _ = writeln!(
            s,
            r#"<text x="{x:.2}" y="{y:.2}" font-size="12" text-anchor="{anchor}" fill="black" stroke="white" stroke-width="3" paint-order="stroke">{}</text>"#,
            xml(&l.text)
        );
    }
}

fn svg_axes(s: &mut String, fr: &Frame, f: &Figure) {
    let (h, ml, mt, pw, ph) = (fr.h, fr.ml, fr.mt, fr.pw, fr.ph);
    let _ = writeln!(
        s,
        r#"<rect x="{ml}" y="{mt}" width="{pw}" height="{ph}" fill="none" stroke="black"/>"#
    );
    let x_ticks = if f.x_names.is_empty() {
        axis_ticks(fr.lo[0], fr.hi[0], f.x_log, f.x_base2)
    } else {
        f.x_names.clone()
    };
    for (t, text) in x_ticks {
        let x = fr.px(t);
        let _ = writeln!(
            s,
            r#"<line x1="{x:.2}" y1="{}" x2="{x:.2}" y2="{}" stroke="black"/><text x="{x:.2}" y="{}" text-anchor="middle">{}</text>"#,
            mt + ph,
            mt + ph + 5.0,
            mt + ph + 19.0,
            xml(&text)
        );
    }
    for (t, text) in axis_ticks(fr.lo[1], fr.hi[1], f.y_log, f.y_base2) {
        let y = fr.py(t);
        let _ = writeln!(
            s,
            r#"<line x1="{}" y1="{y:.2}" x2="{ml}" y2="{y:.2}" stroke="black"/><text x="{}" y="{:.2}" text-anchor="end">{}</text>"#,
            ml - 5.0,
            ml - 8.0,
            y + 4.0,
            xml(&text)
        );
    }
    let _ = writeln!(
        s,
        r#"<text x="{}" y="{}" text-anchor="middle">{}</text>"#,
        ml + pw / 2.0,
        h - 14.0,
        xml(&f.x_label)
    );
    let _ = writeln!(
        s,
        r#"<text transform="translate(18,{}) rotate(-90)" text-anchor="middle">{}</text>"#,
        mt + ph / 2.0,
        xml(&f.y_label)
    );
}

/// One legend entry per series name, right of the plot (and of the colour bar): a short line
/// for lines, a dot for dots.
fn svg_legend(s: &mut String, fr: &Frame, entries: &[(&str, [u8; 3], Mark)], x: f64) {
    for (i, (n, c, mark)) in entries.iter().enumerate() {
        let y = fr.mt + 10.0 + 19.0 * i as f64;
        if y > fr.h - 10.0 {
            let _ = writeln!(
                s,
                r#"<text x="{x}" y="{y}">… {} more</text>"#,
                entries.len() - i
            );
            break;
        }
        // A white series (isolines on a heatmap) gets a grey swatch on the white page.
        let c = if c.iter().all(|v| *v > 235) {
            rgb([150, 150, 150])
        } else {
            rgb(*c)
        };
        match mark {
            Mark::Line(width) => {
                let _ = writeln!(
                    s,
                    r#"<line class="legend" x1="{x}" y1="{}" x2="{}" y2="{}" stroke="{c}" stroke-width="{}"/>"#,
                    y - 4.0,
                    x + 18.0,
                    y - 4.0,
                    width.max(2.0)
                );
            }
            Mark::Bars(_) => {
                let _ = writeln!(
                    s,
                    r#"<rect class="legend" x="{x}" y="{}" width="14" height="10" fill="{c}"/>"#,
                    y - 9.0
                );
            }
            Mark::Dots(_) => {
                let _ = writeln!(
                    s,
                    r#"<circle class="legend" cx="{}" cy="{}" r="4" fill="{c}" stroke="black" stroke-width="0.4"/>"#,
                    x + 9.0,
                    y - 4.0
                );
            }
        }
        let _ = writeln!(s, r#"<text x="{}" y="{y}">{}</text>"#, x + 24.0, xml(n));
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    pub(crate) fn figure() -> Figure {
        let mut f = Figure::new("map", "ΔL <map>", "N", "Qr");
        f.x_log = true;
        f.heat = Some(Heat {
            name: "log10 ΔL".into(),
            values: vec![0.0, 1.0, f64::NAN, 2.0],
            nx: 2,
            origin: [4.0, 0.0],
            size: [2.0, 1.0],
            range: [-3.0, 0.0],
            log_values: true,
        });
        f.push(
            "ΔL = 0.1",
            Mark::Line(1.0),
            [255, 255, 255],
            vec![
                [4.5, 0.2],
                [5.5, 0.8],
                [f64::NAN, f64::NAN],
                [4.6, 0.3],
                [5.0, 0.4],
            ],
        );
        f.push("measured", Mark::Dots(3.0), [0, 200, 0], vec![[5.0, 0.5]]);
        f
    }

    #[test]
    fn csv_holds_data_units_and_svg_is_vector_with_text_and_one_raster() {
        let f = figure();
        let csv = figure_csv(&f);
        let lines: Vec<&str> = csv.lines().collect();
        assert_eq!(lines[0], "series,x,y,z");
        assert_eq!(lines.len(), 1 + 4 + 5 + 1);
        // First heat cell centre: x = 10^4.5, y = 0.25.
        let cell: Vec<f64> = lines[1]
            .split(',')
            .skip(1)
            .map(|v| v.parse().unwrap())
            .collect();
        assert!((cell[0] - 10f64.powf(4.5)).abs() < 1e-6 && cell[1] == 0.25 && cell[2] == 0.0);
        assert_eq!(lines[10], "measured,100000,0.5,");
        let svg = figure_svg(&f).unwrap();
        assert!(svg.starts_with("<svg") && svg.trim_end().ends_with("</svg>"));
        assert_eq!(
            svg.matches("<polyline").count(),
            2,
            "the NaN breaks the line"
        );
        // The measured dot and its legend dot.
        assert_eq!(svg.matches("<circle").count(), 2);
        // The heatmap is one image, whatever its cell count; no rect per cell.
        assert_eq!(svg.matches("<image").count(), 1);
        assert_eq!(svg.matches("<rect").count(), 4, "page, clip, frame, bar");
        // The colour bar is labelled with values, not exponents: 0.001 … 1.
        assert!(svg.contains("class=\"colour-bar\""));
        for v in [">0.001<", ">0.01<", ">0.1<", ">1<"] {
            assert!(svg.contains(v), "colour bar label {v}: {svg}");
        }
        assert!(
            svg.contains("ΔL &lt;map&gt;") && svg.contains(">100K<"),
            "{svg}"
        );
        assert!(figure_svg(&Figure::new("e", "", "", "")).is_err());
        assert!(figure_svg_sized(&f, [10.0, 10.0]).is_err());
    }

    #[test]
    fn ticks_read_as_values() {
        let labels = |v: Vec<(f64, String)>| v.into_iter().map(|(_, t)| t).collect::<Vec<_>>();
        // Qb from 4 to 1024 on a base-2 axis.
        assert_eq!(
            labels(axis_ticks(4f64.log10(), 1024f64.log10(), true, true)),
            ["4", "8", "16", "32", "64", "128", "256", "512", "1024"]
        );
        // Less than two decades: 1-2-5 values, not 3.162.
        assert_eq!(
            labels(axis_ticks(1.2, 2.9, true, false)),
            ["20", "50", "100", "200", "500"]
        );
        assert_eq!(
            labels(axis_ticks(4.0, 9.0, true, false)),
            ["10K", "100K", "1M", "10M", "100M", "1B"]
        );
        assert_eq!(
            labels(axis_ticks(0.0, 1.0, false, false))[..3],
            ["0", "0.2", "0.4"]
        );
        assert_eq!(value_text(0.000316), "0.000316");
        assert_eq!(value_text(31_600.0), "31.6K");
        assert_eq!(value_text(-0.0), "0");
    }

    #[test]
    fn tables_quote() {
        let t = table_csv(
            &["name", "note"],
            &[vec!["a,b".into(), "say \"hi\"".into()]],
        );
        assert_eq!(t, "name,note\n\"a,b\",\"say \"\"hi\"\"\"\n");
        assert!(rgba_png(2, 1, &[0; 3]).is_err());
        assert!(rgba_png(2, 1, &[255; 8]).unwrap().starts_with(b"\x89PNG"));
    }
}
