//! [`plot_confusion_matrix`]: a heat map of a [`ConfusionMatrix`], counts written in the cells.

use super::{Canvas, Drawn, FONT_FAMILY, register_font, render_png, text_style};
use crate::error::{Error, Result};
use crate::metrics::ConfusionMatrix;
use plotters::prelude::*;
use plotters::style::text_anchor::{HPos, Pos, VPos};
use std::path::Path;

/// Width and height in pixels of the image [`plot_confusion_matrix`] writes.
pub const CONFUSION_MATRIX_SIZE: (u32, u32) = (720, 640);
/// Beyond this, cells would be too small to tell apart on the fixed-size image.
const MAX_CLASSES: usize = 100;
/// Class names longer than this are cut, so one name cannot squeeze the grid.
const MAX_NAME_CHARS: usize = 16;

const MARGIN: i32 = 16;
const TITLE_HEIGHT: i32 = 52;
const AXIS_DESC_SIZE: u32 = 18;
const LABEL_SIZE: u32 = 16;
/// Space between the grid and its labels, and between the labels and the axis description.
const GAP: i32 = 8;
/// Matplotlib's "Blues" colormap, from its lightest to its darkest color.
const LIGHTEST: (f64, f64, f64) = (247.0, 251.0, 255.0);
const DARKEST: (f64, f64, f64) = (8.0, 48.0, 107.0);

/// Writes a PNG of [`CONFUSION_MATRIX_SIZE`] to `path`: true classes as rows, predicted classes
/// as columns, each cell shaded by its count (darker is more) with the count written in it when
/// it fits. The file is replaced atomically.
///
/// Errors: more than 100 classes ([`Error::InvalidArgument`]), a path not ending in `.png`
/// ([`Error::InvalidArgument`]), a folder that does not exist ([`Error::File`]), and write
/// failures ([`Error::Io`]).
pub fn plot_confusion_matrix(matrix: &ConfusionMatrix, path: &Path) -> Result<()> {
    let classes = matrix.num_classes();
    if classes > MAX_CLASSES {
        return Err(Error::invalid(
            "num_classes",
            classes,
            format!("a confusion-matrix chart shows at most {MAX_CLASSES} classes"),
        ));
    }
    register_font()?;
    let names: Vec<String> = matrix.class_names().iter().map(|n| shorten(n)).collect();
    let layout = Layout::new(&names, matrix)?;
    render_png(path, CONFUSION_MATRIX_SIZE, |canvas| {
        draw(canvas, matrix, &names, &layout)
    })
}

/// Where the grid goes and which texts fit, worked out before drawing.
struct Layout {
    /// Pixel position of the grid's top-left corner.
    left: i32,
    top: i32,
    /// Side of one cell in pixels.
    cell: i32,
    /// Column names run upwards when they are wider than a cell.
    rotate_columns: bool,
    /// Height in pixels of the column names under the grid.
    column_label_height: i32,
    /// Class names fit beside the rows and under the columns.
    show_names: bool,
    /// Font size of the counts, when they fit in the cells.
    count_size: Option<u32>,
}

impl Layout {
    fn new(names: &[String], matrix: &ConfusionMatrix) -> Result<Self> {
        let (width, height) = (CONFUSION_MATRIX_SIZE.0 as i32, CONFUSION_MATRIX_SIZE.1 as i32);
        let classes = names.len() as i32;
        let mut widest_name = 0;
        for name in names {
            widest_name = widest_name.max(text_width(name, LABEL_SIZE)?);
        }
        let left = MARGIN + AXIS_DESC_SIZE as i32 + GAP + widest_name + GAP;
        let cell_for = |column_label_height: i32| {
            let bottom = GAP + column_label_height + GAP + AXIS_DESC_SIZE as i32 + MARGIN;
            ((width - left - MARGIN).min(height - TITLE_HEIGHT - bottom) / classes).max(1)
        };
        let mut cell = cell_for(LABEL_SIZE as i32);
        let rotate_columns = widest_name + 4 > cell;
        let column_label_height = if rotate_columns { widest_name } else { LABEL_SIZE as i32 };
        if rotate_columns {
            cell = cell_for(column_label_height);
        }
        let largest_count = matrix.counts().iter().flatten().max().copied().unwrap_or(0);
        let count_size = (cell as u32 * 2 / 5).min(22);
        let count_fits = count_size >= 8 && text_width(&largest_count.to_string(), count_size)? + 4 <= cell;
        Ok(Layout {
            // Centre the grid in the room right of the row names.
            left: left + (width - left - MARGIN - cell * classes) / 2,
            top: TITLE_HEIGHT,
            cell,
            rotate_columns,
            column_label_height,
            show_names: cell >= 10,
            count_size: count_fits.then_some(count_size),
        })
    }

    /// Top-left pixel of the cell in `row`, `column`.
    fn corner(&self, row: usize, column: usize) -> (i32, i32) {
        (self.left + column as i32 * self.cell, self.top + row as i32 * self.cell)
    }
}

fn draw<'a>(canvas: &Canvas<'a>, matrix: &ConfusionMatrix, names: &[String], layout: &Layout) -> Drawn<'a> {
    let (width, height) = (CONFUSION_MATRIX_SIZE.0 as i32, CONFUSION_MATRIX_SIZE.1 as i32);
    let classes = names.len();
    let side = layout.cell * classes as i32;
    let centered = |size: u32| text_style(size).pos(Pos::new(HPos::Center, VPos::Center));
    let title = format!(
        "Confusion matrix: accuracy {:.4} on {} samples",
        matrix.accuracy(),
        matrix.total()
    );
    canvas.draw(&Text::new(title, (width / 2, TITLE_HEIGHT / 2), centered(22)))?;

    let largest = matrix.counts().iter().flatten().max().copied().unwrap_or(0).max(1);
    for (row, counts) in matrix.counts().iter().enumerate() {
        for (column, &count) in counts.iter().enumerate() {
            let (x, y) = layout.corner(row, column);
            let shade = count as f64 / largest as f64;
            let fill = blend(shade);
            canvas.draw(&Rectangle::new(
                [(x, y), (x + layout.cell, y + layout.cell)],
                fill.filled(),
            ))?;
            if let Some(size) = layout.count_size {
                // Dark cells get white text, as matplotlib's ConfusionMatrixDisplay does.
                let ink = if shade > 0.5 { WHITE } else { BLACK };
                let center = (x + layout.cell / 2, y + layout.cell / 2);
                canvas.draw(&Text::new(count.to_string(), center, centered(size).color(&ink)))?;
            }
        }
    }
    let border = RGBColor(120, 120, 120);
    canvas.draw(&Rectangle::new(
        [(layout.left, layout.top), (layout.left + side, layout.top + side)],
        border,
    ))?;

    let grid_bottom = layout.top + side;
    if layout.show_names {
        for (class, name) in names.iter().enumerate() {
            let (x, y) = layout.corner(class, class);
            let middle = layout.cell / 2;
            let row_label = text_style(LABEL_SIZE).pos(Pos::new(HPos::Right, VPos::Center));
            canvas.draw(&Text::new(name.as_str(), (layout.left - GAP, y + middle), row_label))?;
            if layout.rotate_columns {
                // Rotated a quarter turn anticlockwise, the text's right end is its top.
                let upwards = text_style(LABEL_SIZE)
                    .transform(FontTransform::Rotate270)
                    .pos(Pos::new(HPos::Right, VPos::Center));
                canvas.draw(&Text::new(name.as_str(), (x + middle, grid_bottom + GAP), upwards))?;
            } else {
                let below = text_style(LABEL_SIZE).pos(Pos::new(HPos::Center, VPos::Top));
                canvas.draw(&Text::new(name.as_str(), (x + middle, grid_bottom + GAP), below))?;
            }
        }
    }
    let description_y =
        (grid_bottom + GAP + layout.column_label_height + GAP + AXIS_DESC_SIZE as i32 / 2).min(height - MARGIN);
    let grid_middle_x = layout.left + side / 2;
    canvas.draw(&Text::new(
        "predicted label",
        (grid_middle_x, description_y),
        centered(AXIS_DESC_SIZE),
    ))?;
    let sideways = centered(AXIS_DESC_SIZE).transform(FontTransform::Rotate270);
    let true_label_x = MARGIN + AXIS_DESC_SIZE as i32 / 2;
    canvas.draw(&Text::new(
        "true label",
        (true_label_x, layout.top + side / 2),
        sideways,
    ))
}

/// The color `shade` (0 to 1) of the way from the lightest to the darkest blue.
fn blend(shade: f64) -> RGBColor {
    let channel = |from: f64, to: f64| (from + (to - from) * shade).round() as u8;
    RGBColor(
        channel(LIGHTEST.0, DARKEST.0),
        channel(LIGHTEST.1, DARKEST.1),
        channel(LIGHTEST.2, DARKEST.2),
    )
}

/// A class name cut to [`MAX_NAME_CHARS`], marking the cut with an ellipsis.
fn shorten(name: &str) -> String {
    if name.chars().count() <= MAX_NAME_CHARS {
        return name.to_string();
    }
    let mut short: String = name.chars().take(MAX_NAME_CHARS - 1).collect();
    short.push('…');
    short
}

/// Width in pixels of `text` in the bundled font at `size`.
fn text_width(text: &str, size: u32) -> Result<i32> {
    let (width, _) = (FONT_FAMILY, size)
        .into_font()
        .box_size(text)
        .map_err(|e| Error::Usage(format!("cannot measure chart text: {e}")))?;
    Ok(width as i32)
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::plot::test_support::{count_color, decode, scratch_dir};

    fn example() -> ConfusionMatrix {
        ConfusionMatrix::from_indices(&[0, 0, 1, 1, 2, 2, 2, 2], &[0, 1, 1, 1, 2, 0, 2, 1], 3).unwrap()
    }

    #[test]
    fn shades_cells_from_lightest_for_zero_to_darkest_for_the_largest_count() {
        let path = scratch_dir("confusion").join("matrix.png");
        plot_confusion_matrix(&example(), &path).unwrap();
        let image = decode(&path);
        assert_eq!(image.dimensions(), CONFUSION_MATRIX_SIZE);
        let everywhere = 0..CONFUSION_MATRIX_SIZE.0;
        // Counts [[1,1,0],[0,2,0],[1,1,2]]: two cells hold the largest count (2), three hold 0,
        // and the cells hold more than the digits drawn over them.
        let layout = Layout::new(&["0".into(), "1".into(), "2".into()], &example()).unwrap();
        let cell_area = (layout.cell * layout.cell) as usize;
        let darkest = count_color(&image, [8, 48, 107], everywhere.clone());
        assert!(
            darkest > cell_area && darkest <= 2 * cell_area,
            "{darkest} darkest pixels"
        );
        let lightest = count_color(&image, [247, 251, 255], everywhere.clone());
        assert!(
            lightest > 2 * cell_area && lightest <= 3 * cell_area,
            "{lightest} lightest pixels"
        );
        // A count of 1 is halfway: (247+8)/2, (251+48)/2, (255+107)/2, rounded.
        let halfway = count_color(&image, [128, 150, 181], everywhere);
        assert!(
            halfway > 3 * cell_area && halfway <= 4 * cell_area,
            "{halfway} halfway pixels"
        );
    }

    #[test]
    fn long_names_and_many_classes_still_fit() {
        let dir = scratch_dir("confusion-names");
        let names = [
            "airplane",
            "automobile",
            "bird",
            "a class with a very long name",
            "deer",
        ];
        let labels: Vec<usize> = (0..50).map(|i| i % 5).collect();
        let predictions: Vec<usize> = (0..50).map(|i| (i * 7 / 3) % 5).collect();
        let matrix = ConfusionMatrix::from_indices(&labels, &predictions, 5)
            .unwrap()
            .with_class_names(&names)
            .unwrap();
        plot_confusion_matrix(&matrix, &dir.join("named.png")).unwrap();
        assert_eq!(decode(&dir.join("named.png")).dimensions(), CONFUSION_MATRIX_SIZE);
        // CIFAR-10's names are wider than its cells, so the column names run upwards.
        let cifar = [
            "airplane",
            "automobile",
            "bird",
            "cat",
            "deer",
            "dog",
            "frog",
            "horse",
            "ship",
            "truck",
        ];
        let labels: Vec<usize> = (0..500).map(|i| i % 10).collect();
        let predictions: Vec<usize> = (0..500)
            .map(|i| if i % 7 == 0 { (i + 3) % 10 } else { i % 10 })
            .collect();
        let matrix = ConfusionMatrix::from_indices(&labels, &predictions, 10)
            .unwrap()
            .with_class_names(&cifar)
            .unwrap();
        let names: Vec<String> = cifar.iter().map(|n| n.to_string()).collect();
        assert!(Layout::new(&names, &matrix).unwrap().rotate_columns);
        plot_confusion_matrix(&matrix, &dir.join("cifar.png")).unwrap();
        assert_eq!(decode(&dir.join("cifar.png")).dimensions(), CONFUSION_MATRIX_SIZE);
        let hundred: Vec<usize> = (0..1000).map(|i| i % 100).collect();
        let wide = ConfusionMatrix::from_indices(&hundred, &hundred, 100).unwrap();
        plot_confusion_matrix(&wide, &dir.join("wide.png")).unwrap();
        assert_eq!(decode(&dir.join("wide.png")).dimensions(), CONFUSION_MATRIX_SIZE);
    }

    #[test]
    fn refuses_too_many_classes_and_unusable_paths() {
        let dir = scratch_dir("confusion-errors");
        let many = ConfusionMatrix::from_indices(&[0], &[0], MAX_CLASSES + 1).unwrap();
        assert!(matches!(
            plot_confusion_matrix(&many, &dir.join("m.png")),
            Err(Error::InvalidArgument { .. })
        ));
        assert!(matches!(
            plot_confusion_matrix(&example(), &dir.join("no-such-folder/m.png")),
            Err(Error::File { .. })
        ));
        assert_eq!(std::fs::read_dir(&dir).unwrap().count(), 0);
    }

    #[test]
    fn shortens_long_names_with_an_ellipsis() {
        assert_eq!(shorten("a class with a very long name"), "a class with a …");
        assert_eq!(shorten("bird"), "bird");
    }
}
