//! Charts as PNG files: loss and accuracy per epoch ([`plot_history`]) and a confusion-matrix
//! heat map ([`plot_confusion_matrix`]).
//!
//! Text is drawn with a font compiled into strata (Go Regular, assets/fonts/), so a chart looks
//! the same on a machine without any system fonts.

mod confusion;
mod history;

pub use confusion::{CONFUSION_MATRIX_SIZE, plot_confusion_matrix};
pub use history::{HISTORY_SIZE, plot_history};

use crate::error::{Error, Result};
use crate::io::picture::{Compression, encode_png};
use crate::io::write_atomic;
use plotters::coord::Shift;
use plotters::prelude::*;
use std::path::Path;
use std::sync::OnceLock;

/// The family every chart's text asks for; plotters' own default labels use this name too.
const FONT_FAMILY: &str = "sans-serif";
/// Go Regular by Bigelow & Holmes, BSD-3-Clause (assets/fonts/LICENSE-Go-Regular.txt).
static FONT: &[u8] = include_bytes!("../../assets/fonts/Go-Regular.ttf");

/// Matplotlib's first two default colors, so the charts read like Keras tutorials' plots.
const TRAINING_COLOR: RGBColor = RGBColor(31, 119, 180);
const VALIDATION_COLOR: RGBColor = RGBColor(255, 127, 14);

/// A canvas to draw a chart on.
type Canvas<'a> = DrawingArea<BitMapBackend<'a>, Shift>;
/// What drawing on a [`Canvas`] returns.
type Drawn<'a> = DrawResult<(), BitMapBackend<'a>>;

/// Makes the bundled font the one plotters finds for [`FONT_FAMILY`]; once per process.
fn register_font() -> Result<()> {
    static REGISTERED: OnceLock<bool> = OnceLock::new();
    let registered =
        *REGISTERED.get_or_init(|| plotters::style::register_font(FONT_FAMILY, FontStyle::Normal, FONT).is_ok());
    if registered {
        Ok(())
    } else {
        Err(Error::Usage(
            "the chart font bundled with strata could not be read".into(),
        ))
    }
}

/// Refuses a target the chart cannot be written to, before any drawing work.
fn check_target(path: &Path) -> Result<()> {
    let is_png = path.extension().is_some_and(|e| e.eq_ignore_ascii_case("png"));
    if !is_png {
        return Err(Error::invalid(
            "path",
            path.display(),
            "charts are written as PNG; give a file name ending in .png",
        ));
    }
    let folder = match path.parent() {
        Some(parent) if !parent.as_os_str().is_empty() => parent,
        _ => Path::new("."),
    };
    if !folder.is_dir() {
        return Err(Error::file(
            path,
            format!("cannot write the chart: the folder {} does not exist", folder.display()),
        ));
    }
    Ok(())
}

/// Draws a `width`×`height` chart with `draw` on a white canvas and writes it to `path` as PNG,
/// atomically.
fn render_png(
    path: &Path,
    (width, height): (u32, u32),
    draw: impl for<'a> FnOnce(&Canvas<'a>) -> Drawn<'a>,
) -> Result<()> {
    check_target(path)?;
    register_font()?;
    let mut pixels = vec![0u8; width as usize * height as usize * 3];
    {
        let canvas = BitMapBackend::with_buffer(&mut pixels, (width, height)).into_drawing_area();
        canvas
            .fill(&WHITE)
            .and_then(|_| draw(&canvas))
            .and_then(|_| canvas.present())
            .map_err(|e| Error::file(path, format!("cannot draw the chart: {e}")))?;
    }
    let png = encode_png(&pixels, width, height, 3, Compression::Balanced)
        .map_err(|e| Error::file(path, format!("cannot encode the chart as PNG: {e}")))?;
    write_atomic(path, &png)
}

/// A text style of the bundled font at `size` pixels.
fn text_style(size: u32) -> TextStyle<'static> {
    TextStyle::from((FONT_FAMILY, size).into_font())
}

#[cfg(test)]
pub(crate) mod test_support {
    use std::path::PathBuf;

    /// A fresh, empty folder for one test's files.
    pub fn scratch_dir(test: &str) -> PathBuf {
        let dir = std::env::temp_dir().join(format!("strata-plot-{}-{test}", crate::fs::test_run_id()));
        let _ = std::fs::remove_dir_all(&dir);
        std::fs::create_dir_all(&dir).unwrap();
        dir
    }

    /// The decoded image, and whether any pixel has exactly `color`.
    pub fn decode(path: &std::path::Path) -> image::RgbImage {
        image::load_from_memory_with_format(&std::fs::read(path).unwrap(), image::ImageFormat::Png)
            .unwrap()
            .to_rgb8()
    }

    /// Number of pixels of exactly `color` whose x lies in `columns`.
    pub fn count_color(image: &image::RgbImage, color: [u8; 3], columns: std::ops::Range<u32>) -> usize {
        image
            .enumerate_pixels()
            .filter(|(x, _, p)| columns.contains(x) && p.0 == color)
            .count()
    }
}
