//! Figures as PNG with no display and no system fonts: the SVG of [`super::svg`] rendered by
//! resvg, text set in the explorer's own bundled fonts (Ubuntu Light, Hack as the fallback), so a
//! figure looks the same on every machine and in CI.
//!
//! Size: the SVG page (CSS px at 96 per inch) scaled by `dpi / 96`; a 860 × 540 figure at 150 dpi
//! is 1344 × 844 pixels. At most [`MAX_PIXELS`] pixels.

use std::sync::{Arc, OnceLock};

use resvg::{tiny_skia, usvg};

use super::svg::figure_svg_sized;
use super::Figure;
use crate::{Error, Result};

/// Largest PNG rendered (pixels): 64 MP, 256 MiB of RGBA.
pub const MAX_PIXELS: u64 = 64 << 20;

/// The font database: the bundled fonts only.
fn fonts() -> Arc<usvg::fontdb::Database> {
    static DB: OnceLock<Arc<usvg::fontdb::Database>> = OnceLock::new();
    DB.get_or_init(|| {
        let mut db = usvg::fontdb::Database::new();
        db.load_font_data(epaint_default_fonts::UBUNTU_LIGHT.to_vec());
        db.load_font_data(epaint_default_fonts::HACK_REGULAR.to_vec());
        let family = db
            .faces()
            .next()
            .and_then(|f| f.families.first().map(|(n, _)| n.clone()))
            .unwrap_or_else(|| "Ubuntu".into());
        db.set_sans_serif_family(family);
        Arc::new(db)
    })
    .clone()
}

/// Renders an SVG document at `dpi` (96 = one pixel per CSS px) to PNG bytes.
pub fn svg_png(svg: &str, dpi: f64) -> Result<Vec<u8>> {
    if !(dpi.is_finite() && (24.0..=1200.0).contains(&dpi)) {
        return Err(Error::Input(format!("dpi {dpi} is outside 24 … 1200")));
    }
    let opt = usvg::Options {
        fontdb: fonts(),
        font_family: "Ubuntu".into(),
        ..usvg::Options::default()
    };
    let tree = usvg::Tree::from_str(svg, &opt)
        .map_err(|e| Error::Input(format!("the figure's SVG does not parse: {e}")))?;
    let scale = (dpi / 96.0) as f32;
    let size = tree.size();
    let (w, h) = (
        (size.width() * scale).ceil() as u32,
        (size.height() * scale).ceil() as u32,
    );
    if u64::from(w) * u64::from(h) > MAX_PIXELS {
        return Err(Error::Input(format!(
            "a {w}×{h} PNG is over the {MAX_PIXELS}-pixel cap; lower the size or the dpi"
        )));
    }
    let mut pixmap = tiny_skia::Pixmap::new(w, h)
        .ok_or_else(|| Error::Input(format!("a {w}×{h} PNG cannot be made")))?;
    resvg::render(
        &tree,
        tiny_skia::Transform::from_scale(scale, scale),
        &mut pixmap.as_mut(),
    );
    pixmap
        .encode_png()
        .map_err(|e| Error::Input(format!("PNG encoding failed: {e}")))
}

/// A figure as PNG: its SVG on a page of `size` CSS px, rendered at `dpi`.
pub fn figure_png(f: &Figure, size: [f64; 2], dpi: f64) -> Result<Vec<u8>> {
    svg_png(&figure_svg_sized(f, size)?, dpi)
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::figures::{Heat, Mark};

    fn decode(png: &[u8]) -> tiny_skia::Pixmap {
        tiny_skia::Pixmap::decode_png(png).unwrap()
    }

    #[test]
    fn a_figure_renders_with_text_heatmap_and_size_from_dpi() {
        let mut f = Figure::new("t", "ΔL · MXINT4 · Qb 32", "N", "Qr");
        f.heat = Some(Heat {
            name: "log10 ΔL".into(),
            values: vec![0.0, 1.0, 2.0, 3.0],
            nx: 2,
            origin: [0.0, 0.0],
            size: [1.0, 1.0],
            range: [0.0, 3.0],
            log_values: true,
        });
        f.push(
            "a",
            Mark::Line(2.0),
            [255, 0, 0],
            vec![[0.0, 0.0], [1.0, 1.0]],
        );
        let png = figure_png(&f, [860.0, 540.0], 192.0).unwrap();
        let img = decode(&png);
        assert_eq!((img.width(), img.height()), (1720, 1080));
        // The heatmap's brightest cell (top right: value 3 → viridis yellow) is drawn.
        let has_yellow = img
            .pixels()
            .iter()
            .any(|p| p.red() > 240 && p.green() > 220 && p.blue() < 60);
        assert!(has_yellow);
        // Text is drawn: the title band (no data there) holds dark pixels.
        let dark_in_title = (0..img.width())
            .flat_map(|x| (20..60).map(move |y| (x, y)))
            .filter(|&(x, y)| img.pixel(x, y).is_some_and(|p| p.red() < 80))
            .count();
        assert!(dark_in_title > 200, "title text pixels: {dark_in_title}");
        assert!(figure_png(&f, [860.0, 540.0], 5.0).is_err());
        assert!(figure_png(&f, [20_000.0, 20_000.0], 1200.0).is_err());
    }
}
