//! [`plot_history`]: loss and accuracy per epoch, side by side, as Keras tutorials plot a
//! `History` with matplotlib.

use super::{Canvas, Drawn, TRAINING_COLOR, VALIDATION_COLOR, render_png, text_style};
use crate::error::{Error, Result};
use crate::model::{EpochLogs, History};
use plotters::prelude::*;
use plotters::style::text_anchor::{HPos, Pos, VPos};
use std::path::Path;

/// Width and height in pixels of the image [`plot_history`] writes.
pub const HISTORY_SIZE: (u32, u32) = (1000, 400);

/// One chart: a metric's training curve and, when there is validation data, its validation curve.
struct Panel {
    title: &'static str,
    metric: &'static str,
    training: Vec<(i32, f64)>,
    validation: Vec<(i32, f64)>,
    legend: SeriesLabelPosition,
}

impl Panel {
    fn new(
        title: &'static str,
        metric: &'static str,
        history: &History,
        training: fn(&EpochLogs) -> Option<f32>,
        validation: fn(&EpochLogs) -> Option<f32>,
        legend: SeriesLabelPosition,
    ) -> Self {
        Panel {
            title,
            metric,
            training: points(history, training),
            validation: points(history, validation),
            legend,
        }
    }

    fn is_empty(&self) -> bool {
        self.training.is_empty() && self.validation.is_empty()
    }
}

/// Writes a PNG of [`HISTORY_SIZE`] to `path` with two charts: loss per epoch (training, and
/// validation when the history has it) and accuracy per epoch likewise. When no accuracy was
/// recorded the right half says so instead. The file is replaced atomically.
///
/// Errors: a history without epochs or without a finite loss ([`Error::Data`]), a path not ending
/// in `.png` ([`Error::InvalidArgument`]), a folder that does not exist ([`Error::File`]), and
/// write failures ([`Error::Io`]).
pub fn plot_history(history: &History, path: &Path) -> Result<()> {
    if history.epochs.is_empty() {
        return Err(Error::Data("the history has no epochs to plot".into()));
    }
    let loss = Panel::new(
        "Loss",
        "loss",
        history,
        |e| Some(e.loss),
        |e| e.val_loss,
        SeriesLabelPosition::UpperRight,
    );
    if loss.is_empty() {
        return Err(Error::Data("the history has no finite loss value to plot".into()));
    }
    let accuracy = Panel::new(
        "Accuracy",
        "accuracy",
        history,
        |e| e.accuracy,
        |e| e.val_accuracy,
        SeriesLabelPosition::LowerRight,
    );
    let epochs = history.epochs.iter().map(|e| epoch_coordinate(e.epoch));
    let first = epochs.clone().min().unwrap_or(1);
    let last = epochs.max().unwrap_or(1);
    render_png(path, HISTORY_SIZE, |canvas| {
        let (left, right) = canvas.split_horizontally(HISTORY_SIZE.0 / 2);
        draw_panel(&left, &loss, first, last)?;
        if accuracy.is_empty() {
            draw_note(
                &right,
                accuracy.title,
                "no accuracy recorded (compile with metrics [\"accuracy\"])",
            )
        } else {
            draw_panel(&right, &accuracy, first, last)
        }
    })
}

/// The finite values of one metric, as (epoch, value) points.
fn points(history: &History, metric: fn(&EpochLogs) -> Option<f32>) -> Vec<(i32, f64)> {
    history
        .epochs
        .iter()
        .filter_map(|e| metric(e).map(|v| (epoch_coordinate(e.epoch), f64::from(v))))
        .filter(|(_, v)| v.is_finite())
        .collect()
}

fn epoch_coordinate(epoch: usize) -> i32 {
    i32::try_from(epoch).unwrap_or(i32::MAX)
}

/// A y range holding every value with a 5% margin; a flat curve gets a small band around it.
fn value_range(panel: &Panel) -> (f64, f64) {
    let values = panel.training.iter().chain(&panel.validation).map(|&(_, v)| v);
    let low = values.clone().fold(f64::INFINITY, f64::min);
    let high = values.fold(f64::NEG_INFINITY, f64::max);
    let margin = if high - low > 1e-9 {
        (high - low) * 0.05
    } else {
        (high.abs() * 0.05).max(0.01)
    };
    (low - margin, high + margin)
}

fn draw_panel<'a>(area: &Canvas<'a>, panel: &Panel, first: i32, last: i32) -> Drawn<'a> {
    // A single epoch would make an empty x range; show it between its neighbours.
    let epochs = if first == last {
        first - 1..last + 1
    } else {
        first..last
    };
    let (low, high) = value_range(panel);
    let mut chart = ChartBuilder::on(area)
        .caption(panel.title, text_style(22))
        .margin(15)
        .x_label_area_size(45)
        .y_label_area_size(65)
        .build_cartesian_2d(epochs, low..high)?;
    chart
        .configure_mesh()
        .x_desc("epoch")
        .y_desc(panel.metric)
        .x_labels(10)
        .y_labels(8)
        .label_style(text_style(14))
        .axis_desc_style(text_style(16))
        .light_line_style(RGBColor(240, 240, 240))
        .bold_line_style(RGBColor(215, 215, 215))
        .draw()?;
    let curves = [
        ("training", TRAINING_COLOR, &panel.training),
        ("validation", VALIDATION_COLOR, &panel.validation),
    ];
    for (name, color, curve) in curves {
        if curve.is_empty() {
            continue;
        }
        chart
            .draw_series(LineSeries::new(curve.iter().copied(), color.stroke_width(2)).point_size(3))?
            .label(format!("{name} {}", panel.metric))
            .legend(move |(x, y)| PathElement::new([(x, y), (x + 24, y)], color.stroke_width(2)));
    }
    chart
        .configure_series_labels()
        .position(panel.legend.clone())
        .label_font(text_style(14))
        .background_style(WHITE.mix(0.9))
        .border_style(RGBColor(160, 160, 160))
        .draw()
}

/// A titled panel with one line of text in place of a chart.
fn draw_note<'a>(area: &Canvas<'a>, title: &str, note: &str) -> Drawn<'a> {
    // The same margin as the charts, so this title lines up with theirs.
    let body = area.margin(15, 15, 15, 15).titled(title, text_style(22))?;
    let (width, height) = body.dim_in_pixel();
    let centered = text_style(15)
        .color(&RGBColor(90, 90, 90))
        .pos(Pos::new(HPos::Center, VPos::Center));
    body.draw(&Text::new(note, (width as i32 / 2, height as i32 / 2), centered))
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::plot::test_support::{count_color, decode, scratch_dir};

    fn history(epochs: usize, validation: bool, accuracy: bool) -> History {
        History {
            epochs: (1..=epochs)
                .map(|epoch| {
                    let t = epoch as f32;
                    EpochLogs {
                        epoch,
                        loss: 1.0 / t,
                        accuracy: accuracy.then_some(1.0 - 0.5 / t),
                        val_loss: validation.then_some(1.2 / t),
                        val_accuracy: (validation && accuracy).then_some(1.0 - 0.6 / t),
                        seconds: 1.0,
                        ..EpochLogs::default()
                    }
                })
                .collect(),
        }
    }

    const TRAINING: [u8; 3] = [31, 119, 180];
    const VALIDATION: [u8; 3] = [255, 127, 14];

    #[test]
    fn draws_training_and_validation_curves_in_both_panels() {
        let path = scratch_dir("history-full").join("history.png");
        plot_history(&history(12, true, true), &path).unwrap();
        let image = decode(&path);
        assert_eq!(image.dimensions(), HISTORY_SIZE);
        let (left, right) = (0..HISTORY_SIZE.0 / 2, HISTORY_SIZE.0 / 2..HISTORY_SIZE.0);
        for color in [TRAINING, VALIDATION] {
            assert!(
                count_color(&image, color, left.clone()) > 100,
                "{color:?} missing from the loss panel"
            );
            assert!(
                count_color(&image, color, right.clone()) > 100,
                "{color:?} missing from the accuracy panel"
            );
        }
    }

    #[test]
    fn leaves_out_what_the_history_does_not_have() {
        let path = scratch_dir("history-loss-only").join("loss.png");
        plot_history(&history(1, false, false), &path).unwrap();
        let image = decode(&path);
        assert_eq!(image.dimensions(), HISTORY_SIZE);
        let (left, right) = (0..HISTORY_SIZE.0 / 2, HISTORY_SIZE.0 / 2..HISTORY_SIZE.0);
        assert!(
            count_color(&image, TRAINING, left.clone()) > 10,
            "a single epoch is drawn as a point"
        );
        assert_eq!(count_color(&image, VALIDATION, 0..HISTORY_SIZE.0), 0);
        assert_eq!(count_color(&image, TRAINING, right), 0);
    }

    #[test]
    fn refuses_an_empty_history_and_unusable_paths() {
        let dir = scratch_dir("history-errors");
        let empty = History::default();
        assert!(matches!(plot_history(&empty, &dir.join("a.png")), Err(Error::Data(_))));
        let mut nan = history(2, false, false);
        nan.epochs.iter_mut().for_each(|e| e.loss = f32::NAN);
        assert!(matches!(plot_history(&nan, &dir.join("a.png")), Err(Error::Data(_))));
        let full = history(3, true, true);
        assert!(matches!(
            plot_history(&full, &dir.join("missing").join("a.png")),
            Err(Error::File { .. })
        ));
        assert!(matches!(
            plot_history(&full, &dir.join("a.jpg")),
            Err(Error::InvalidArgument { .. })
        ));
        assert_eq!(std::fs::read_dir(&dir).unwrap().count(), 0, "nothing written on error");
    }

    #[test]
    fn replaces_an_existing_file_whole() {
        let dir = scratch_dir("history-replace");
        let path = dir.join("history.png");
        std::fs::write(&path, b"an older file").unwrap();
        plot_history(&history(3, true, false), &path).unwrap();
        assert_eq!(decode(&path).dimensions(), HISTORY_SIZE);
        assert_eq!(std::fs::read_dir(&dir).unwrap().count(), 1, "no temporary file left");
    }
}
