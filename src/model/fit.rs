//! `fit`, `evaluate` and `predict`: the training loop over mini-batches.

use super::progress::EpochProgress;
use super::{Callback, Compiled, Control, EpochLogs, History, Sequential};
use crate::autograd::Graph;
use crate::data::ImageAugmentation;
use crate::error::{Error, Result, keras_shape};
use crate::losses::Loss;
use crate::metrics::Accuracy;
use crate::rng::Rng;
use crate::tensor::Tensor;
use std::time::Instant;

/// The arguments of `fit`, with Keras's defaults: 1 epoch, batch 32, shuffling, verbose 1.
///
/// ```
/// use strata::model::FitOptions;
/// let options = FitOptions::default().epochs(10).batch_size(64).validation_split(0.1);
/// assert_eq!(options.epochs, 10);
/// ```
#[derive(Clone, Debug)]
pub struct FitOptions<'a> {
    /// Passes over the training data.
    pub epochs: usize,
    /// Samples per gradient update.
    pub batch_size: usize,
    /// Data to evaluate at the end of each epoch.
    pub validation_data: Option<(&'a Tensor, &'a Tensor)>,
    /// Fraction of the training data, taken from its end before shuffling, held out for
    /// validation (ignored when `validation_data` is given).
    pub validation_split: f32,
    /// Whether to shuffle the training samples before each epoch.
    pub shuffle: bool,
    /// 0 silent, 1 progress bar, 2 one line per epoch.
    pub verbose: u8,
    /// Seed of the shuffling order; `None` draws it from the model's seed.
    pub seed: Option<u64>,
    /// Epoch to start after (Keras's `initial_epoch`): training runs epochs
    /// `initial_epoch + 1 ..= epochs`, with the shuffling order those epochs would have had in
    /// one uninterrupted run, so a resumed run matches it exactly.
    pub initial_epoch: usize,
    /// Batches of epoch `initial_epoch + 1` already trained (resuming a run stopped mid-epoch):
    /// that epoch skips them, in the same shuffled order.
    pub initial_batch: usize,
    /// Random transforms applied to each training batch's images (never to validation data):
    /// `x` must be images `(N, H, W)` or `(N, H, W, C)`.
    pub augmentation: Option<ImageAugmentation>,
}

impl Default for FitOptions<'_> {
    fn default() -> Self {
        FitOptions {
            epochs: 1,
            batch_size: 32,
            validation_data: None,
            validation_split: 0.0,
            shuffle: true,
            verbose: 1,
            seed: None,
            initial_epoch: 0,
            initial_batch: 0,
            augmentation: None,
        }
    }
}

impl<'a> FitOptions<'a> {
    /// Sets the number of epochs.
    pub fn epochs(mut self, epochs: usize) -> Self {
        self.epochs = epochs;
        self
    }

    /// Sets the batch size.
    pub fn batch_size(mut self, batch_size: usize) -> Self {
        self.batch_size = batch_size;
        self
    }

    /// Sets validation data `(x, y)`.
    pub fn validation_data(mut self, x: &'a Tensor, y: &'a Tensor) -> Self {
        self.validation_data = Some((x, y));
        self
    }

    /// Holds out the last `fraction` of the training data for validation.
    pub fn validation_split(mut self, fraction: f32) -> Self {
        self.validation_split = fraction;
        self
    }

    /// Turns shuffling on or off.
    pub fn shuffle(mut self, shuffle: bool) -> Self {
        self.shuffle = shuffle;
        self
    }

    /// Sets the verbosity (0, 1 or 2).
    pub fn verbose(mut self, verbose: u8) -> Self {
        self.verbose = verbose;
        self
    }

    /// Starts after `epoch` epochs (to resume a saved run).
    pub fn initial_epoch(mut self, epoch: usize) -> Self {
        self.initial_epoch = epoch;
        self
    }

    /// Skips the first `batch` batches of the first epoch run (to resume mid-epoch).
    pub fn initial_batch(mut self, batch: usize) -> Self {
        self.initial_batch = batch;
        self
    }

    /// Augments each training batch with `augmentation` (seeded from the model's seed and the
    /// step, so runs and resumed runs repeat exactly).
    pub fn augmentation(mut self, augmentation: ImageAugmentation) -> Self {
        self.augmentation = Some(augmentation);
        self
    }

    /// Sets the shuffling seed.
    pub fn seed(mut self, seed: u64) -> Self {
        self.seed = Some(seed);
        self
    }
}

/// The result of `evaluate`: mean loss and, if compiled with it, accuracy.
#[derive(Clone, Copy, Debug, PartialEq)]
pub struct Scores {
    /// Mean loss over the samples.
    pub loss: f32,
    /// Accuracy, when compiled with `"accuracy"`.
    pub accuracy: Option<f32>,
}

/// Running sums of loss and correct predictions over batches.
#[derive(Default)]
struct Totals {
    loss: f64,
    samples: usize,
    correct: usize,
    predictions: usize,
}

impl Totals {
    fn add(&mut self, loss: f32, rows: usize, correct: usize, predictions: usize) {
        self.loss += loss as f64 * rows as f64;
        self.samples += rows;
        self.correct += correct;
        self.predictions += predictions;
    }

    fn mean_loss(&self) -> f32 {
        (self.loss / self.samples.max(1) as f64) as f32
    }

    fn accuracy(&self, tracked: bool) -> Option<f32> {
        tracked.then(|| self.correct as f32 / self.predictions.max(1) as f32)
    }
}

impl Sequential {
    /// Trains the model for `options.epochs` passes over `(x, y)`, as Keras's `fit`.
    ///
    /// `x` has one row per sample (`(N, ...)` matching the input shape); `y` holds class
    /// indices `(N)` for sparse cross-entropy, or arrays shaped like the output otherwise.
    pub fn fit(&mut self, x: &Tensor, y: &Tensor, options: FitOptions) -> Result<History> {
        self.fit_with_callbacks(x, y, options, &mut [])
    }

    /// [`Sequential::fit`] with callbacks run after every batch and epoch; a callback can stop
    /// training early.
    pub fn fit_with_callbacks(
        &mut self,
        x: &Tensor,
        y: &Tensor,
        options: FitOptions,
        callbacks: &mut [&mut dyn Callback],
    ) -> Result<History> {
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
        let y = self.prepare(x, y)?;
        let held_out;
        let (train_rows, validation) = match options.validation_data {
            Some((vx, vy)) => (x.rows(), Some((vx, self.prepare(vx, vy)?))),
            None if options.validation_split > 0.0 => {
                // Through the decimal text, so 0.2f32 means 0.2 and not 0.2000000030: Keras
                // holds out exactly 200 of 1,000 samples.
                let split: f64 = options.validation_split.to_string().parse().unwrap_or(0.0);
                let keep = ((1.0 - split) * x.rows() as f64).floor() as usize;
                held_out = (x.slice_rows(keep, x.rows()), y.slice_rows(keep, y.rows()));
                (keep, Some((&held_out.0, held_out.1.clone())))
            }
            None => (x.rows(), None),
        };
        if train_rows == 0 {
            return Err(Error::Data(
                "no training samples left (x is empty, or validation_split takes them all)".into(),
            ));
        }
        let mut augmentation = match &options.augmentation {
            Some(augmentation) => {
                augmentation.validate()?;
                let image_shape = match *x.shape() {
                    [_, h, w] => [h, w, 1],
                    [_, h, w, c] => [h, w, c],
                    ref other => {
                        return Err(Error::Data(format!(
                            "augmentation needs images shaped (N, height, width) or (N, height, width, channels), got {other:?}"
                        )));
                    }
                };
                Some((augmentation.clone(), image_shape))
            }
            None => None,
        };
        let mut order: Vec<usize> = (0..train_rows).collect();
        let mut shuffle_rng = Rng::new(options.seed.unwrap_or(self.seed.wrapping_add(1)));
        let steps = train_rows.div_ceil(options.batch_size);
        let mut history = History::default();
        for _ in 0..options.initial_epoch.min(options.epochs) {
            // Replay the skipped epochs' shuffles so the order continues where it left off.
            if options.shuffle {
                shuffle_rng.shuffle(&mut order);
            }
        }
        for callback in callbacks.iter_mut() {
            callback.on_train_begin(self)?;
        }
        for epoch in options.initial_epoch + 1..=options.epochs {
            let started = Instant::now();
            if options.shuffle {
                shuffle_rng.shuffle(&mut order);
            }
            for callback in callbacks.iter_mut() {
                callback.on_epoch_begin(self, epoch)?;
            }
            let mut progress = EpochProgress::start(options.verbose, epoch, options.epochs, steps);
            let mut totals = Totals::default();
            let tracked = self.compiled.as_ref().is_some_and(|c| c.accuracy.is_some());
            let skip = if epoch == options.initial_epoch + 1 {
                options.initial_batch
            } else {
                0
            };
            let mut stop = false;
            for (step, batch) in order.chunks(options.batch_size).enumerate().skip(skip) {
                for callback in callbacks.iter_mut() {
                    callback.on_batch_begin(self, epoch, step + 1)?;
                }
                let (loss, correct, predictions) = self.train_step(x, &y, batch, augmentation.as_mut())?;
                self.batches_into_epoch = step + 1;
                for callback in callbacks.iter_mut() {
                    stop |= callback.on_batch_end(self, epoch, step + 1, loss)? == Control::Stop;
                }
                if !loss.is_finite() && !stop {
                    return Err(Error::NonFiniteLoss {
                        epoch,
                        batch: step + 1,
                        value: loss,
                    });
                }
                totals.add(loss, batch.len(), correct, predictions);
                progress.step(step + 1, totals.mean_loss(), totals.accuracy(tracked));
                if stop {
                    break;
                }
            }
            if stop {
                break;
            }
            let mut logs = EpochLogs {
                epoch,
                loss: totals.mean_loss(),
                accuracy: totals.accuracy(tracked),
                learning_rate: self.optimizer().map(|o| o.learning_rate()),
                ..EpochLogs::default()
            };
            if let Some((vx, vy)) = &validation {
                let scores = self.evaluate_prepared(vx, vy, options.batch_size)?;
                logs.val_loss = Some(scores.loss);
                logs.val_accuracy = scores.accuracy;
            }
            logs.seconds = started.elapsed().as_secs_f64();
            progress.finish(&logs);
            self.epochs_trained = epoch;
            self.batches_into_epoch = 0;
            for callback in callbacks.iter_mut() {
                stop |= callback.on_epoch_end(self, &logs)? == Control::Stop;
            }
            history.epochs.push(logs);
            if stop {
                break;
            }
        }
        for callback in callbacks.iter_mut() {
            callback.on_train_end(self, &history)?;
        }
        crate::autograd::profile::report();
        Ok(history)
    }

    /// One forward, backward and optimizer step on the samples `batch` of `(x, y)`.
    /// Returns the batch's loss, correct predictions and predictions counted.
    fn train_step(
        &mut self,
        x: &Tensor,
        y: &Tensor,
        batch: &[usize],
        augmentation: Option<&mut (ImageAugmentation, [usize; 3])>,
    ) -> Result<(f32, usize, usize)> {
        let compiled = self
            .compiled
            .as_mut()
            .expect("prepare checked that the model is compiled");
        // Noise (dropout masks) follows the step count, so a resumed run draws the same masks.
        let noise_seed = crate::rng::mix(self.seed, compiled.optimizer.iterations());
        let (loss, stats) = {
            let mut graph = Graph::new(&mut self.tape, &self.params, true).with_noise_seed(noise_seed);
            let mut augmented = Ok(());
            let input = graph.constant_with(|buffer| {
                x.gather_rows_into(batch, buffer);
                if let Some((augmentation, image_shape)) = augmentation {
                    // Seeded by the step, like dropout, so a resumed run sees the same images.
                    let mut rng = crate::rng::Rng::new(crate::rng::mix(noise_seed, AUGMENTATION_SALT));
                    augmented = augmentation.augment_images(buffer.data_mut(), *image_shape, &mut rng);
                }
            });
            augmented?;
            let target = graph.constant_with(|buffer| y.gather_rows_into(batch, buffer));
            let output = Self::forward_calls(&self.layers, &self.calls, &mut graph, input, &mut self.call_outputs)?;
            let loss = compiled.loss.compute(&mut graph, output, target)?;
            let loss = graph.add_penalties(loss)?;
            let stats = batch_stats(compiled, graph.value(output), graph.value(target));
            (loss, (graph.value(loss).item(), stats.0, stats.1))
        };
        self.tape.backward(loss, &mut self.params);
        self.tape.apply_moving_updates(&mut self.params);
        crate::autograd::profile::time("optimizer", true, || compiled.optimizer.step(&mut self.params));
        Ok(stats)
    }

    /// Mean loss (and accuracy) over `(x, y)`, in batches of `batch_size`, as Keras's `evaluate`.
    pub fn evaluate(&mut self, x: &Tensor, y: &Tensor, batch_size: usize) -> Result<Scores> {
        let y = self.prepare(x, y)?;
        self.evaluate_prepared(x, &y, batch_size)
    }

    fn evaluate_prepared(&mut self, x: &Tensor, y: &Tensor, batch_size: usize) -> Result<Scores> {
        if batch_size == 0 {
            return Err(Error::invalid("batch_size", 0, "must be at least 1"));
        }
        let compiled = self
            .compiled
            .as_ref()
            .expect("prepare checked that the model is compiled");
        let mut totals = Totals::default();
        let mut start = 0;
        while start < x.rows() {
            let end = (start + batch_size).min(x.rows());
            let mut graph = Graph::new(&mut self.tape, &self.params, false);
            let input = graph.constant_with(|buffer| x.slice_rows_into(start, end, buffer));
            let target = graph.constant_with(|buffer| y.slice_rows_into(start, end, buffer));
            let output = Self::forward_calls(&self.layers, &self.calls, &mut graph, input, &mut self.call_outputs)?;
            let loss = compiled.loss.compute(&mut graph, output, target)?;
            let loss = graph.add_penalties(loss)?;
            let (correct, predictions) = batch_stats(compiled, graph.value(output), graph.value(target));
            totals.add(graph.value(loss).item(), end - start, correct, predictions);
            start = end;
        }
        Ok(Scores {
            loss: totals.mean_loss(),
            accuracy: totals.accuracy(compiled.accuracy.is_some()),
        })
    }

    /// The model's outputs for `x`, computed in batches of `batch_size`, as Keras's `predict`.
    pub fn predict(&mut self, x: &Tensor, batch_size: usize) -> Result<Tensor> {
        if batch_size == 0 {
            return Err(Error::invalid("batch_size", 0, "must be at least 1"));
        }
        self.check_input(x)?;
        let output_shape = self.output_shape().expect("check_input built the model").to_vec();
        let mut values = Vec::with_capacity(x.rows() * output_shape.iter().product::<usize>());
        let mut start = 0;
        while start < x.rows() {
            let end = (start + batch_size).min(x.rows());
            let mut graph = Graph::new(&mut self.tape, &self.params, false);
            let input = graph.constant_with(|buffer| x.slice_rows_into(start, end, buffer));
            let output = Self::forward_calls(&self.layers, &self.calls, &mut graph, input, &mut self.call_outputs)?;
            values.extend_from_slice(graph.value(output).data());
            start = end;
        }
        let mut shape = vec![x.rows()];
        shape.extend(output_shape);
        Tensor::from_vec(shape, values)
    }

    /// Builds the model for `x` if needed and checks that `x` fits its input.
    fn check_input(&mut self, x: &Tensor) -> Result<()> {
        if x.rank() == 0 {
            return Err(Error::Data("x must have a batch axis: shape (samples, ...)".into()));
        }
        let sample_shape = &x.shape()[1..];
        if !self.build_if_declared()? {
            self.build(sample_shape)?;
        }
        let expected = self.input_shape.as_deref().expect("built above");
        if expected != sample_shape {
            let first = self.layers.iter().find(|l| !l.is_input()).map_or("input", |l| l.name());
            return Err(Error::LayerShape {
                layer: first.to_string(),
                expected: keras_shape(expected),
                received: keras_shape(sample_shape),
            });
        }
        Ok(())
    }

    /// Checks `(x, y)` against the model and the loss, and returns `y` shaped for the loss.
    fn prepare(&mut self, x: &Tensor, y: &Tensor) -> Result<Tensor> {
        if self.compiled.is_none() {
            return Err(Error::Usage(
                "the model must be compiled before fit/evaluate: call `model.compile(...)`".into(),
            ));
        }
        self.check_input(x)?;
        if x.rows() != y.rows() {
            return Err(Error::Data(format!(
                "x and y have different numbers of samples: x has {} (shape {:?}), y has {} (shape {:?})",
                x.rows(),
                x.shape(),
                y.rows(),
                y.shape()
            )));
        }
        let output_shape = self.output_shape().expect("built by check_input").to_vec();
        let loss = self.compiled.as_ref().expect("checked above").loss;
        let mut target_shape = vec![y.rows()];
        if loss.sparse_targets() {
            if y.row_len() != 1 {
                return Err(Error::Data(format!(
                    "{} expects one integer label per sample, but y has shape {:?}; use categorical_crossentropy for one-hot labels",
                    loss.name(),
                    y.shape()
                )));
            }
            let classes = output_shape.iter().product::<usize>();
            if let Some(bad) = y
                .data()
                .iter()
                .find(|&&l| l.fract() != 0.0 || l < 0.0 || l as usize >= classes)
            {
                return Err(Error::Data(format!(
                    "label {bad} is not a class index of the model's {classes} outputs (expected an integer in 0..{classes})"
                )));
            }
        } else {
            target_shape.extend(&output_shape);
            if y.len() != target_shape.iter().product::<usize>() {
                return Err(Error::Data(format!(
                    "y has shape {:?} but the model's output is {} per sample (loss {}); {}",
                    y.shape(),
                    keras_shape(&output_shape),
                    loss.name(),
                    if matches!(loss, Loss::CategoricalCrossentropy { .. }) {
                        "one-hot encode the labels with to_categorical, or use sparse_categorical_crossentropy"
                    } else {
                        "give one target per output"
                    }
                )));
            }
        }
        if y.data().iter().any(|v| !v.is_finite()) {
            return Err(Error::Data("y contains NaN or infinite values".into()));
        }
        y.clone().reshape(&target_shape)
    }
}

/// Separates the augmentation's random stream from the dropout layers' of the same step.
const AUGMENTATION_SALT: u64 = 0xa06_3e47;

/// Correct predictions and predictions counted in one batch.
fn batch_stats(compiled: &Compiled, output: &Tensor, target: &Tensor) -> (usize, usize) {
    let Some(accuracy) = compiled.accuracy else {
        return (0, 0);
    };
    let threshold = if compiled.loss.from_logits() && accuracy == Accuracy::Binary {
        0.0
    } else {
        0.5
    };
    let correct = accuracy.count_correct(output, target, threshold);
    (correct, output.rows() * accuracy.per_sample(output.row_len().max(1)))
}
