//! Exports of what the explorer shows: a [`Figure`] as CSV (the plotted data, in data units) or
//! SVG (vector, real `<text>`), a table as CSV, and a rendered screen region as PNG.
//!
//! Every file is written atomically ([`crate::io::write_atomic`]); [`write_export`] refuses to
//! replace an existing file unless the caller says the user agreed. SVG geometry: 860 × 540 px,
//! plot area inset by fixed margins; log axes are drawn with ticks at integer decades.

use std::fmt::Write as _;
use std::path::Path;

use super::plots::{finite_pieces, human, viridis, Figure, Mark};
use crate::{Error, Result};

/// Writes `bytes` to `path`; an existing file is replaced only when `overwrite` is true.
pub fn write_export(path: &Path, bytes: &[u8], overwrite: bool) -> Result<()> {
    if overwrite {
        crate::io::write_atomic(path, bytes)
    } else {
        crate::io::write_new_atomic(path, bytes)
    }
}

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

/// Tick positions over [lo, hi]: integer decades on a log axis (when at least two fall inside),
/// else about six 1-2-5 steps.
fn ticks(lo: f64, hi: f64, log: bool) -> Vec<f64> {
    if log {
        let d: Vec<f64> = ((lo.ceil() as i64)..=(hi.floor() as i64))
            .map(|k| k as f64)
            .collect();
        if d.len() >= 2 {
            return d;
        }
    }
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
        out.push(t);
        t += step;
    }
    out
}

fn tick_text(t: f64, log: bool) -> String {
    if log {
        human(10f64.powf(t))
    } else {
        let s = format!("{t:.3}");
        s.trim_end_matches('0').trim_end_matches('.').to_string()
    }
}

/// The figure as a standalone SVG document.
pub fn figure_svg(f: &Figure) -> Result<String> {
    let (lo, hi) = f
        .bounds()
        .ok_or_else(|| Error::Input(format!("figure `{}` has nothing to export", f.id)))?;
    let fr = SvgFrame::new(lo, hi);
    let (w, h, ml, mt, pw, ph) = (fr.w, fr.h, fr.ml, fr.mt, fr.pw, fr.ph);
    let mut s = String::new();
    let _ = writeln!(
        s,
        r#"<svg xmlns="http://www.w3.org/2000/svg" width="{w}" height="{h}" viewBox="0 0 {w} {h}" font-family="sans-serif" font-size="12">"#
    );
    let _ = writeln!(s, r#"<rect width="{w}" height="{h}" fill="white"/>"#);
    let _ = writeln!(
        s,
        r#"<text x="{}" y="24" font-size="16" text-anchor="middle">{}</text>"#,
        ml + pw / 2.0,
        xml(&f.title)
    );
    let _ = writeln!(
        s,
        r#"<clipPath id="plot"><rect x="{ml}" y="{mt}" width="{pw}" height="{ph}"/></clipPath>"#
    );
    let _ = writeln!(s, r#"<g clip-path="url(#plot)">"#);
    if let Some(hm) = &f.heat {
        svg_heat(&mut s, &fr, hm);
    }
    svg_series(&mut s, &fr, f);
    let _ = writeln!(s, "</g>");
    svg_axes(&mut s, &fr, f);
    svg_legend(&mut s, &fr, f);
    s.push_str("</svg>\n");
    Ok(s)
}

/// The page and plot area of an SVG figure, and the data → page mapping.
struct SvgFrame {
    w: f64,
    h: f64,
    ml: f64,
    mr: f64,
    mt: f64,
    pw: f64,
    ph: f64,
    lo: [f64; 2],
    hi: [f64; 2],
}

impl SvgFrame {
    fn new(lo: [f64; 2], hi: [f64; 2]) -> Self {
        let (w, h) = (860.0, 540.0);
        let (ml, mr, mt, mb) = (80.0, 200.0, 40.0, 60.0);
        Self {
            w,
            h,
            ml,
            mr,
            mt,
            pw: w - ml - mr,
            ph: h - mt - mb,
            lo,
            hi,
        }
    }

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

fn svg_heat(s: &mut String, fr: &SvgFrame, hm: &super::plots::Heat) {
    let nx = hm.nx.max(1);
    let ny = hm.values.len() / nx;
    let (dx, dy) = (hm.size[0] / nx as f64, hm.size[1] / ny.max(1) as f64);
    let r = (hm.range[1] - hm.range[0]).max(1e-12);
    for (i, v) in hm.values.iter().enumerate() {
        if !v.is_finite() {
            continue;
        }
        let (cx, cy) = ((i % nx) as f64, (i / nx) as f64);
        let (x0, y1) = (fr.px(hm.origin[0] + cx * dx), fr.py(hm.origin[1] + cy * dy));
        let (x1, y0) = (
            fr.px(hm.origin[0] + (cx + 1.0) * dx),
            fr.py(hm.origin[1] + (cy + 1.0) * dy),
        );
        let _ = writeln!(
            s,
            r#"<rect x="{x0:.2}" y="{y0:.2}" width="{:.2}" height="{:.2}" fill="{}"/>"#,
            x1 - x0 + 0.3,
            y1 - y0 + 0.3,
            rgb(viridis((v - hm.range[0]) / r))
        );
    }
}

fn svg_series(s: &mut String, fr: &SvgFrame, f: &Figure) {
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
                        r#"<polyline fill="none" stroke="{c}" stroke-width="{width}" points="{}"/>"#,
                        pts.join(" ")
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
                        r#"<circle cx="{:.2}" cy="{:.2}" r="{radius}" fill="{c}"/>"#,
                        fr.px(p[0]),
                        fr.py(p[1])
                    );
                }
            }
        }
    }
    for l in &f.labels {
        let _ = writeln!(
            s,
            r#"<text x="{:.2}" y="{:.2}" fill="white" font-size="11">{}</text>"#,
            fr.px(l.at[0]),
            fr.py(l.at[1]),
            xml(&l.text)
        );
    }
}

fn svg_axes(s: &mut String, fr: &SvgFrame, f: &Figure) {
    let (h, ml, mt, pw, ph) = (fr.h, fr.ml, fr.mt, fr.pw, fr.ph);
    let _ = writeln!(
        s,
        r#"<rect x="{ml}" y="{mt}" width="{pw}" height="{ph}" fill="none" stroke="black"/>"#
    );
    for t in ticks(fr.lo[0], fr.hi[0], f.x_log) {
        let x = fr.px(t);
        let _ = writeln!(
            s,
            r#"<line x1="{x:.2}" y1="{}" x2="{x:.2}" y2="{}" stroke="black"/><text x="{x:.2}" y="{}" text-anchor="middle">{}</text>"#,
            mt + ph,
            mt + ph + 5.0,
            mt + ph + 18.0,
            xml(&tick_text(t, f.x_log))
        );
    }
    for t in ticks(fr.lo[1], fr.hi[1], f.y_log) {
        let y = fr.py(t);
        let _ = writeln!(
            s,
            r#"<line x1="{}" y1="{y:.2}" x2="{ml}" y2="{y:.2}" stroke="black"/><text x="{}" y="{:.2}" text-anchor="end">{}</text>"#,
            ml - 5.0,
            ml - 8.0,
            y + 4.0,
            xml(&tick_text(t, f.y_log))
        );
    }
    let _ = writeln!(
        s,
        r#"<text x="{}" y="{}" text-anchor="middle">{}</text>"#,
        ml + pw / 2.0,
        h - 15.0,
        xml(&f.x_label)
    );
    let _ = writeln!(
        s,
        r#"<text transform="translate(20,{}) rotate(-90)" text-anchor="middle">{}</text>"#,
        mt + ph / 2.0,
        xml(&f.y_label)
    );
}

/// One legend entry per series name.
fn svg_legend(s: &mut String, fr: &SvgFrame, f: &Figure) {
    let mut names: Vec<(&str, [u8; 3])> = Vec::new();
    for ser in &f.series {
        if !names.iter().any(|(n, _)| *n == ser.name) {
            names.push((&ser.name, ser.rgb));
        }
    }
    for (i, (n, c)) in names.iter().enumerate() {
        let y = fr.mt + 10.0 + 18.0 * i as f64;
        let _ = writeln!(
            s,
            r#"<rect x="{}" y="{}" width="10" height="10" fill="{}"/><text x="{}" y="{}">{}</text>"#,
            fr.w - fr.mr + 15.0,
            y - 9.0,
            rgb(*c),
            fr.w - fr.mr + 30.0,
            y,
            xml(n)
        );
    }
}

/// Encodes an RGBA image (row-major, `width` × `height`) as PNG bytes.
pub fn png_bytes(rgba: &[u8], width: u32, height: u32) -> Result<Vec<u8>> {
    let img = image::RgbaImage::from_raw(width, height, rgba.to_vec()).ok_or_else(|| {
        Error::Input(format!(
            "a {width}×{height} image needs {} bytes",
            width * height * 4
        ))
    })?;
    let mut out = std::io::Cursor::new(Vec::new());
    img.write_to(&mut out, image::ImageFormat::Png)
        .map_err(|e| Error::Input(format!("PNG encoding failed: {e}")))?;
    Ok(out.into_inner())
}

#[cfg(test)]
mod tests {
    use super::super::plots::Heat;
    use super::*;

    fn figure() -> Figure {
        let mut f = Figure::new("map", "ΔL <map>", "N", "Qr");
        f.x_log = true;
        f.heat = Some(Heat {
            name: "log10 ΔL".into(),
            values: vec![0.0, 1.0, f64::NAN, 2.0],
            nx: 2,
            origin: [4.0, 0.0],
            size: [2.0, 1.0],
            range: [0.0, 2.0],
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
    fn csv_holds_data_units_and_svg_is_vector_with_text() {
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
        assert_eq!(svg.matches("<circle").count(), 1);
        // Three finite heat cells + background + frame + legend swatches (2).
        assert_eq!(svg.matches("<rect").count(), 3 + 1 + 1 + 2 + 1);
        assert!(
            svg.contains("ΔL &lt;map&gt;") && svg.contains(">100.0K<"),
            "{svg}"
        );
        assert!(figure_svg(&Figure::new("e", "", "", "")).is_err());
    }

    #[test]
    fn tables_quote_and_png_round_trips() {
        let t = table_csv(
            &["name", "note"],
            &[vec!["a,b".into(), "say \"hi\"".into()]],
        );
        assert_eq!(t, "name,note\n\"a,b\",\"say \"\"hi\"\"\"\n");
        let png = png_bytes(&[255, 0, 0, 255, 0, 255, 0, 255], 2, 1).unwrap();
        let back = image::load_from_memory(&png).unwrap().to_rgba8();
        assert_eq!(back.dimensions(), (2, 1));
        assert_eq!(back.get_pixel(1, 0).0, [0, 255, 0, 255]);
        assert!(png_bytes(&[0; 3], 2, 1).is_err());
        let dir = tempfile::tempdir().unwrap();
        let p = dir.path().join("t.csv");
        write_export(&p, b"1", false).unwrap();
        assert!(write_export(&p, b"2", false).is_err());
        write_export(&p, b"2", true).unwrap();
        assert_eq!(std::fs::read(&p).unwrap(), b"2");
    }
}
