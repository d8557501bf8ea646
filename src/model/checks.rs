//! The checks of the data given to `fit`, `evaluate` and `predict`: clear errors for inputs
//! and targets that do not fit the model, before any step runs.

use super::{Model, Source};
use crate::error::{Error, Result, array_shape, keras_shape};
use crate::losses::Loss;
use crate::tensor::Tensor;

impl Model {
    /// Builds the model for `xs` if needed and checks that they fit its inputs.
    pub(super) fn check_inputs(&mut self, xs: &[&Tensor]) -> Result<()> {
        if xs.len() != self.network.inputs {
            return Err(Error::Data(format!(
                "the model takes {} input(s), but {} x tensor(s) were given",
                self.network.inputs,
                xs.len()
            )));
        }
        if let Some(x) = xs.iter().find(|x| x.rank() == 0) {
            return Err(Error::Data(format!(
                "x must have a batch axis: shape (samples, ...), got {}",
                array_shape(x.shape())
            )));
        }
        if let Some(x) = xs.iter().find(|x| x.rows() != xs[0].rows()) {
            return Err(Error::Data(format!(
                "the inputs have different numbers of samples: {} and {}",
                xs[0].rows(),
                x.rows()
            )));
        }
        // Off the heap: `predict` of one sample checks its input on every call.
        let sample_shapes: smallvec::SmallVec<[&[usize]; 4]> = xs.iter().map(|x| &x.shape()[1..]).collect();
        if !self.build_if_declared()? {
            self.build_inputs(&sample_shapes)?;
        } else if self
            .network
            .input_shapes
            .iter()
            .map(Vec::as_slice)
            .ne(sample_shapes.iter().copied())
        {
            // Another length of a sequence the model leaves open: if the layers take it with
            // their weights; the check below names the shapes when they do not.
            self.replan_with_same_weights(&sample_shapes);
        }
        for (i, (expected, given)) in self.network.input_shapes.iter().zip(&sample_shapes).enumerate() {
            if expected.as_slice() != *given {
                return Err(Error::LayerShape {
                    layer: self.reader_of_input(i).to_string(),
                    expected: keras_shape(expected),
                    received: keras_shape(given),
                });
            }
        }
        Ok(())
    }

    /// The name of the layer that reads model input `input`: past an Input layer, the first
    /// one it feeds.
    fn reader_of_input(&self, input: usize) -> &str {
        let name_of = |call: usize| self.network.layers[self.network.calls[call].layer].name();
        let Some(at) = self
            .network
            .calls
            .iter()
            .position(|c| c.inputs == [Source::ModelInput(input)])
        else {
            return "input";
        };
        if !self.network.layers[self.network.calls[at].layer].is_input() {
            return name_of(at);
        }
        let fed = Source::Output(self.network.calls[at].first_output);
        match self.network.calls.iter().position(|c| c.inputs.contains(&fed)) {
            Some(reader) => name_of(reader),
            None => name_of(at),
        }
    }

    /// Checks `(xs, ys)` against the model and its losses, and returns each `y` shaped for its
    /// output's loss.
    pub(super) fn prepare(&mut self, xs: &[&Tensor], ys: &[&Tensor]) -> Result<Vec<Tensor>> {
        if self.training.compiled.is_none() {
            return Err(Error::Usage(
                "the model must be compiled before fit/evaluate: call `model.compile(...)`".into(),
            ));
        }
        self.check_inputs(xs)?;
        let names: Vec<String> = self.output_names().iter().map(|n| n.to_string()).collect();
        if ys.len() != names.len() {
            return Err(Error::Data(format!(
                "the model has {} output(s) ({}), but {} y tensor(s) were given: give one per output",
                names.len(),
                names.join(", "),
                ys.len()
            )));
        }
        let output_shapes: Vec<Vec<usize>> = self.output_shapes().iter().map(|s| s.to_vec()).collect();
        let losses = self.training.compiled.as_ref().expect("checked above").losses.clone();
        let mut prepared = Vec::with_capacity(ys.len());
        for (((y, output_shape), loss), name) in ys.iter().zip(&output_shapes).zip(losses).zip(&names) {
            // With one output the messages stay as they were: "y" needs no output's name.
            let which = if names.len() > 1 {
                format!("y for output '{name}'")
            } else {
                "y".to_string()
            };
            prepared.push(prepare_target(xs[0], y, output_shape, loss, &which)?);
        }
        Ok(prepared)
    }
}

/// Checks `y` (called `which` in errors) against `x` and the output's shape and loss, and
/// returns it shaped for the loss.
fn prepare_target(x: &Tensor, y: &Tensor, output_shape: &[usize], loss: Loss, which: &str) -> Result<Tensor> {
    if x.rows() != y.rows() {
        return Err(Error::Data(format!(
            "x and {which} have different numbers of samples: x has {} (shape {}), {which} has {} (shape {})",
            x.rows(),
            array_shape(x.shape()),
            y.rows(),
            array_shape(y.shape())
        )));
    }
    let mut target_shape = vec![y.rows()];
    if loss.sparse_targets() {
        check_class_indices(y, output_shape, loss, which)?;
    } else {
        target_shape.extend(output_shape);
        check_dense_targets(y, &target_shape, output_shape, loss, which)?;
    }
    if let Some((row, value)) = first_row_where(y, |v| !v.is_finite()) {
        return Err(Error::Data(format!(
            "{which} contains {value} at row {row}: {} needs finite targets",
            loss.name()
        )));
    }
    if matches!(loss, Loss::BinaryCrossentropy { .. })
        && let Some((row, value)) = first_row_where(y, |v| !(0.0..=1.0).contains(&v))
    {
        return Err(Error::Data(format!(
            "{which} holds {value} at row {row}, but {} takes targets in [0, 1] (probabilities or 0/1 labels)",
            loss.name()
        )));
    }
    y.clone().reshape(&target_shape)
}

/// The first value of `y` for which `bad` holds, with its row (0-based sample index).
fn first_row_where(y: &Tensor, bad: impl Fn(f32) -> bool) -> Option<(usize, f32)> {
    let width = y.row_len().max(1);
    y.data()
        .iter()
        .position(|&v| bad(v))
        .map(|at| (at / width, y.data()[at]))
}

/// Checks that `y` holds one class index of the output per sample.
fn check_class_indices(y: &Tensor, output_shape: &[usize], loss: Loss, which: &str) -> Result<()> {
    if y.row_len() != 1 {
        return Err(Error::Data(format!(
            "{} expects one integer label per sample, but {which} has shape {}; use categorical_crossentropy for one-hot labels",
            loss.name(),
            array_shape(y.shape())
        )));
    }
    let classes = output_shape.iter().product::<usize>();
    if let Some((row, bad)) = first_row_where(y, |l| {
        !l.is_finite() || l.fract() != 0.0 || l < 0.0 || l as usize >= classes
    }) {
        return Err(Error::Data(format!(
            "{which} holds label {bad} at row {row}, which is not a class index of the model's {classes} outputs \
             ({} expects an integer from 0 to {})",
            loss.name(),
            classes.saturating_sub(1)
        )));
    }
    Ok(())
}

/// Checks that `y` holds one target per output value (`target_shape`, samples first).
fn check_dense_targets(
    y: &Tensor,
    target_shape: &[usize],
    output_shape: &[usize],
    loss: Loss,
    which: &str,
) -> Result<()> {
    if y.len() == target_shape.iter().product::<usize>() {
        return Ok(());
    }
    Err(Error::Data(format!(
        "{which} has shape {} but the model's output is {} per sample (loss {}); {}",
        array_shape(y.shape()),
        keras_shape(output_shape),
        loss.name(),
        if output_shape.len() > y.shape().len().saturating_sub(1).max(1) {
            // Dense layers on images or sequences act on each position (as Keras's do).
            "a classifier needs a Flatten (or a global pooling) layer before its Dense layers"
        } else if matches!(loss, Loss::CategoricalCrossentropy { .. }) {
            "one-hot encode the labels with to_categorical, or use sparse_categorical_crossentropy"
        } else {
            "give one target per output"
        }
    )))
}
