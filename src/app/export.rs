//! Exports of what the explorer shows: a figure as CSV, SVG or PNG (the figure alone, drawn by
//! [`crate::figures::svg`] and [`crate::figures::raster`], the same code as `quantscape
//! figures`), a table as CSV, and a rendered screen region as PNG.
//!
//! Every file is written atomically ([`crate::io::write_atomic`]); [`write_export`] refuses to
//! replace an existing file unless the caller says the user agreed.

use std::path::Path;

pub use crate::figures::svg::{figure_csv, figure_svg, figure_svg_sized, table_csv};
use crate::{Error, Result};

/// Writes `bytes` to `path`; an existing file is replaced only when `overwrite` is true.
pub fn write_export(path: &Path, bytes: &[u8], overwrite: bool) -> Result<()> {
    if overwrite {
        crate::io::write_atomic(path, bytes)
    } else {
        crate::io::write_new_atomic(path, bytes)
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
    use super::*;

    #[test]
    fn png_round_trips_and_exports_refuse_to_overwrite() {
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
