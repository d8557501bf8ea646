//! What `fit` prepares before its first epoch: the checked training data, the held-out
//! validation data and the shuffled order of the samples.

use super::Model;
use super::options::FitOptions;
use crate::error::{Error, Result};
use crate::rng::Rng;
use crate::tensor::Tensor;
use std::borrow::Cow;

/// The data of one `fit` call, checked against the model.
pub(super) struct FitData<'a> {
    /// One `x` per model input (the validation split's rows included: training reads only
    /// the first `train_rows`).
    pub(super) xs: &'a [&'a Tensor],
    /// One `y` per output, shaped for its loss.
    pub(super) ys: Vec<Tensor>,
    /// The samples training reads: the first `train_rows`.
    pub(super) train_rows: usize,
    /// The data validated on at each epoch end, if any.
    pub(super) validation: Option<Validation<'a>>,
}

/// Validation data: given (borrowed) or held out from the training data (owned).
pub(super) struct Validation<'a> {
    pub(super) xs: Vec<Cow<'a, Tensor>>,
    pub(super) ys: Vec<Tensor>,
}

impl Model {
    /// Checks the options and `(xs, ys)`, and splits off the validation data.
    pub(super) fn fit_data<'a>(
        &mut self,
        xs: &'a [&'a Tensor],
        ys: &[&Tensor],
        options: &FitOptions<'a>,
    ) -> Result<FitData<'a>> {
        check_options(options)?;
        let ys = self.prepare(xs, ys)?;
        let rows = xs[0].rows();
        let (train_rows, validation) = match &options.validation_data {
            Some((vx, vy)) => {
                let given = Validation {
                    xs: vx.iter().map(|&x| Cow::Borrowed(x)).collect(),
                    ys: self.prepare(vx, vy)?,
                };
                (rows, Some(given))
            }
            None if options.validation_split > 0.0 => {
                let keep = rows_kept(options.validation_split, rows);
                let held_out = Validation {
                    xs: xs.iter().map(|x| Cow::Owned(x.slice_rows(keep, rows))).collect(),
                    ys: ys.iter().map(|y| y.slice_rows(keep, rows)).collect(),
                };
                (keep, Some(held_out))
            }
            None => (rows, None),
        };
        if train_rows == 0 {
            return Err(Error::Data(
                "no training samples left (x is empty, or validation_split takes them all)".into(),
            ));
        }
        Ok(FitData {
            xs,
            ys,
            train_rows,
            validation,
        })
    }
}

/// Checks the options a user can get wrong.
fn check_options(options: &FitOptions) -> Result<()> {
    if options.batch_size == 0 {
        return Err(Error::invalid(
            "batch_size",
            0,
            "must be at least 1 (Keras's default is 32)",
        ));
    }
    if !(0.0..1.0).contains(&options.validation_split) {
        return Err(Error::invalid(
            "validation_split",
            options.validation_split,
            "must be in [0, 1)",
        ));
    }
    Ok(())
}

/// The training rows left of `rows` when `split` of them is held out.
fn rows_kept(split: f32, rows: usize) -> usize {
    // Through the decimal text, so 0.2f32 means 0.2 and not 0.2000000030: Keras holds out
    // exactly 200 of 1,000 samples.
    let split: f64 = split.to_string().parse().unwrap_or(0.0);
    ((1.0 - split) * rows as f64).floor() as usize
}

/// The order the samples are visited in, reshuffled before each epoch.
pub(super) struct SampleOrder {
    order: Vec<usize>,
    rng: Rng,
    shuffle: bool,
}

impl SampleOrder {
    /// Rows `0..rows` in order, shuffled (if `shuffle`) from `seed`.
    pub(super) fn new(rows: usize, shuffle: bool, seed: u64) -> Self {
        SampleOrder {
            order: (0..rows).collect(),
            rng: Rng::new(seed),
            shuffle,
        }
    }

    /// Moves on to the next epoch's order.
    pub(super) fn next_epoch(&mut self) {
        if self.shuffle {
            self.rng.shuffle(&mut self.order);
        }
    }

    /// The current epoch's order.
    pub(super) fn rows(&self) -> &[usize] {
        &self.order
    }
}
