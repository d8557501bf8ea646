//! `fit`, `evaluate` and `predict`: the training loop over mini-batches.

use super::progress::EpochProgress;
use super::{Callback, Compiled, Control, EpochLogs, History, Model, Source};
use crate::autograd::{Graph, Var};
use crate::distributed::Collective;
use crate::error::{Error, Result, keras_shape};
use crate::losses::Loss;
use crate::metrics::Accuracy;
use crate::rng::Rng;
use crate::tensor::Tensor;
use smallvec::SmallVec;
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
    /// Data to evaluate at the end of each epoch: one `x` per model input, one `y` per output.
    pub validation_data: Option<(Vec<&'a Tensor>, Vec<&'a Tensor>)>,
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
    /// Train data-parallel with the other ranks of this group: see [`FitOptions::distributed`].
    pub distributed: Option<&'a dyn Collective>,
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
            distributed: None,
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
        self.validation_data = Some((vec![x], vec![y]));
        self
    }

    /// Sets validation data for a model with several inputs or outputs: one `x` per input, one
    /// `y` per output.
    pub fn validation_data_multi(mut self, xs: &[&'a Tensor], ys: &[&'a Tensor]) -> Self {
        self.validation_data = Some((xs.to_vec(), ys.to_vec()));
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

    /// Sets the shuffling seed.
    pub fn seed(mut self, seed: u64) -> Self {
        self.seed = Some(seed);
        self
    }

    /// Trains data-parallel with the other ranks of `world` (see [`crate::distributed`]): every
    /// rank calls `fit` with the same model, data and options; each step takes a global batch
    /// of `batch_size × world.size()` samples, of which this rank computes the gradient of its
    /// [`shard`](crate::distributed::shard), and applies the gradient averaged over the ranks.
    /// The result equals training on one process with the global batch size, up to the
    /// summation order of the gradients (and dropout masks, drawn per rank). Only rank 0
    /// prints progress; the logs and history hold the metrics over all ranks. Callbacks run on
    /// every rank with those logs (so `EarlyStopping` stops every rank at the same epoch); give
    /// the ones that write files (`ModelCheckpoint`, `CSVLogger`) to rank 0 only, as Horovod
    /// does: `if world.is_chief() { callbacks.push(&mut checkpoint) }`.
    pub fn distributed(mut self, world: &'a dyn Collective) -> Self {
        self.distributed = Some(world);
        self
    }
}

/// The result of `evaluate`: mean loss and, if compiled with it, accuracy.
#[derive(Clone, Debug, PartialEq)]
pub struct Scores {
    /// Mean loss over the samples: with several outputs, `Σ loss_weight × output loss`, plus
    /// any regularization penalties (as Keras reports it).
    pub loss: f32,
    /// Accuracy (of the first output), when compiled with `"accuracy"`.
    pub accuracy: Option<f32>,
    /// Each output's loss and accuracy, in the model's output order.
    pub outputs: Vec<OutputScores>,
}

/// One output's share of [`Scores`].
#[derive(Clone, Debug, PartialEq)]
pub struct OutputScores {
    /// The output layer's name (Keras's key prefix: `dense_2_loss`).
    pub name: String,
    /// Mean loss of this output (before its loss weight).
    pub loss: f32,
    /// Accuracy of this output, when compiled with `"accuracy"` for it.
    pub accuracy: Option<f32>,
}

/// One output's loss and correct predictions in one batch.
#[derive(Clone, Copy, Default)]
pub(super) struct StepStats {
    pub(super) loss: f32,
    pub(super) correct: usize,
    pub(super) predictions: usize,
}

/// Running sums of loss and correct predictions over batches, overall and per output.
#[derive(Default)]
pub(super) struct Totals {
    pub(super) loss: f64,
    pub(super) samples: usize,
    /// Per output: loss sum, correct predictions, predictions.
    pub(super) outputs: Vec<(f64, usize, usize)>,
}

impl Totals {
    fn new(outputs: usize) -> Self {
        Totals {
            outputs: vec![(0.0, 0, 0); outputs],
            ..Totals::default()
        }
    }

    fn add(&mut self, loss: f32, rows: usize, stats: &[StepStats]) {
        self.loss += loss as f64 * rows as f64;
        self.samples += rows;
        for (total, step) in self.outputs.iter_mut().zip(stats) {
            total.0 += step.loss as f64 * rows as f64;
            total.1 += step.correct;
            total.2 += step.predictions;
        }
    }

    fn mean_loss(&self) -> f32 {
        (self.loss / self.samples.max(1) as f64) as f32
    }

    fn output_loss(&self, output: usize) -> f32 {
        (self.outputs[output].0 / self.samples.max(1) as f64) as f32
    }

    fn accuracy(&self, output: usize, tracked: bool) -> Option<f32> {
        let (_, correct, predictions) = self.outputs.get(output)?;
        tracked.then(|| *correct as f32 / (*predictions).max(1) as f32)
    }

    fn scores(&self, compiled: &Compiled, names: &[&str]) -> Scores {
        let outputs: Vec<OutputScores> = names
            .iter()
            .enumerate()
            .map(|(i, name)| OutputScores {
                name: name.to_string(),
                loss: self.output_loss(i),
                accuracy: self.accuracy(i, compiled.accuracies[i].is_some()),
            })
            .collect();
        Scores {
            loss: self.mean_loss(),
            accuracy: outputs.first().and_then(|o| o.accuracy),
            outputs,
        }
    }
}

impl Model {
    /// Trains the model for `options.epochs` passes over `(x, y)`, as Keras's `fit`.
    ///
    /// `x` has one row per sample (`(N, ...)` matching the input shape); `y` holds class
    /// indices `(N)` for sparse cross-entropy, or arrays shaped like the output otherwise.
    pub fn fit(&mut self, x: &Tensor, y: &Tensor, options: FitOptions) -> Result<History> {
        self.fit_multi_with_callbacks(&[x], &[y], options, &mut [])
    }

    /// [`Model::fit`] with callbacks run after every batch and epoch; a callback can stop
    /// training early.
    pub fn fit_with_callbacks(
        &mut self,
        x: &Tensor,
        y: &Tensor,
        options: FitOptions,
        callbacks: &mut [&mut dyn Callback],
    ) -> Result<History> {
        self.fit_multi_with_callbacks(&[x], &[y], options, callbacks)
    }

    /// [`Model::fit`] for a model with several inputs or outputs, as Keras's
    /// `fit([x1, x2], [y1, y2])`: one `x` per input and one `y` per output, in the order the
    /// model was made with. The logs add each output's loss and accuracy (`dense_2_loss`, ...).
    pub fn fit_multi(&mut self, xs: &[&Tensor], ys: &[&Tensor], options: FitOptions) -> Result<History> {
        self.fit_multi_with_callbacks(xs, ys, options, &mut [])
    }

    /// [`Model::fit_multi`] with callbacks.
    pub fn fit_multi_with_callbacks(
        &mut self,
        xs: &[&Tensor],
        ys: &[&Tensor],
        options: FitOptions,
        callbacks: &mut [&mut dyn Callback],
    ) -> Result<History> {
        let world = options.distributed;
        if let Some(world) = world {
            // First: once the ranks agree, every check below fails on all of them or on none.
            self.check_distributed(world, xs, ys, &options)?;
        }
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
        let ys = self.prepare(xs, ys)?;
        let rows = xs[0].rows();
        let held_out: (Vec<Tensor>, Vec<Tensor>);
        let (train_rows, validation) = match &options.validation_data {
            Some((vx, vy)) => (rows, Some((vx.clone(), self.prepare(vx, vy)?))),
            None if options.validation_split > 0.0 => {
                // Through the decimal text, so 0.2f32 means 0.2 and not 0.2000000030: Keras
                // holds out exactly 200 of 1,000 samples.
                let split: f64 = options.validation_split.to_string().parse().unwrap_or(0.0);
                let keep = ((1.0 - split) * rows as f64).floor() as usize;
                held_out = (
                    xs.iter().map(|x| x.slice_rows(keep, rows)).collect(),
                    ys.iter().map(|y| y.slice_rows(keep, rows)).collect(),
                );
                (keep, Some((held_out.0.iter().collect(), held_out.1.clone())))
            }
            None => (rows, None),
        };
        if train_rows == 0 {
            return Err(Error::Data(
                "no training samples left (x is empty, or validation_split takes them all)".into(),
            ));
        }
        let names: Vec<String> = self.output_names().iter().map(|n| n.to_string()).collect();
        let names: Vec<&str> = names.iter().map(String::as_str).collect();
        let mut order: Vec<usize> = (0..train_rows).collect();
        let mut shuffle_rng = Rng::new(options.seed.unwrap_or(self.seed.wrapping_add(1)));
        if let Some(world) = world {
            self.weights_from_chief(world)?;
        }
        // Data-parallel: each step takes one batch per rank from the one shuffled order.
        let global_batch = options.batch_size * world.map_or(1, |w| w.size());
        let verbose = if world.is_some_and(|w| !w.is_chief()) {
            0
        } else {
            options.verbose
        };
        let steps = train_rows.div_ceil(global_batch);
        let mut history = History::default();
        let mut step_stats = vec![StepStats::default(); names.len()];
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
            let mut progress = EpochProgress::start(verbose, epoch, options.epochs, steps);
            let mut totals = Totals::new(names.len());
            // With several outputs, Keras logs accuracies only per output (`class_accuracy`).
            let tracked = names.len() == 1 && self.compiled.as_ref().is_some_and(|c| c.accuracies[0].is_some());
            let skip = if epoch == options.initial_epoch + 1 {
                options.initial_batch
            } else {
                0
            };
            let mut stop = false;
            for (step, batch) in order.chunks(global_batch).enumerate().skip(skip) {
                for callback in callbacks.iter_mut() {
                    callback.on_batch_begin(self, epoch, step + 1)?;
                }
                let loss = match world {
                    // On a pool thread (see `on_pool`; the `strata` command's main thread is one).
                    None => crate::kernels::on_pool(|| self.train_step(xs, &ys, batch, None, &mut step_stats))?,
                    // MPI's communicator may not leave its thread.
                    Some(_) => self.train_step(xs, &ys, batch, world, &mut step_stats)?,
                };
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
                totals.add(loss, batch.len(), &step_stats);
                progress.step(step + 1, totals.mean_loss(), totals.accuracy(0, tracked));
                if stop {
                    break;
                }
            }
            if stop {
                break;
            }
            if let Some(world) = world {
                self.sync_replicas(world)?;
            }
            let compiled = self
                .compiled
                .as_ref()
                .expect("prepare checked that the model is compiled");
            let scores = totals.scores(compiled, &names);
            let single = names.len() == 1;
            let mut logs = EpochLogs {
                epoch,
                loss: scores.loss,
                accuracy: scores.accuracy.filter(|_| single),
                learning_rate: self.optimizer().map(|o| o.learning_rate()),
                ..EpochLogs::default()
            };
            logs.add_outputs("", &scores);
            if let Some((vx, vy)) = &validation {
                let vy: Vec<&Tensor> = vy.iter().collect();
                let scores = self.evaluate_prepared(vx, &vy, options.batch_size, world)?;
                logs.val_loss = Some(scores.loss);
                logs.val_accuracy = scores.accuracy.filter(|_| single);
                logs.add_outputs("val_", &scores);
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

    /// One forward, backward and optimizer step on the samples `batch` of `(xs, ys)`. Returns
    /// the batch's loss (the weighted sum over outputs, with penalties) and writes each output's
    /// loss and correct predictions into `stats`. With a `world`, `batch` is the global batch:
    /// this rank computes its shard, and the gradients, loss and stats become the global ones.
    fn train_step(
        &mut self,
        xs: &[&Tensor],
        ys: &[Tensor],
        batch: &[usize],
        world: Option<&dyn Collective>,
        stats: &mut [StepStats],
    ) -> Result<f32> {
        let global_rows = batch.len();
        let batch = world.map_or(batch, |w| {
            &batch[crate::distributed::shard(batch.len(), w.rank(), w.size())]
        });
        let compiled = self
            .compiled
            .as_mut()
            .expect("prepare checked that the model is compiled");
        // Noise (dropout masks) follows the step count, so a resumed run draws the same masks;
        // each rank draws its own for its shard.
        let mut noise_seed = crate::rng::mix(self.seed, compiled.optimizer.iterations());
        if let Some(rank) = world.map(|w| w.rank()).filter(|&r| r > 0) {
            noise_seed = crate::rng::mix(noise_seed, rank as u64);
        }
        // A rank whose shard of the last, short global batch is empty still takes part in the
        // reduce and the update.
        let mut value = 0.0;
        if !batch.is_empty() {
            let mut graph = Graph::new(&mut self.tape, &self.params, true).with_noise_seed(noise_seed);
            let mut inputs: SmallVec<[Var; 4]> = SmallVec::new();
            for x in xs {
                inputs.push(graph.constant_with(|buffer| x.gather_rows_into(batch, buffer)));
            }
            let mut targets: SmallVec<[Var; 4]> = SmallVec::new();
            for y in ys {
                targets.push(graph.constant_with(|buffer| y.gather_rows_into(batch, buffer)));
            }
            Self::forward_calls(&self.layers, &self.calls, &mut graph, &inputs, &mut self.call_outputs)?;
            let loss = objective(compiled, &mut graph, &self.outputs, &self.call_outputs, &targets, stats)?;
            let loss = graph.add_penalties(loss)?;
            value = graph.value(loss).item();
            self.tape.backward(loss, &mut self.params);
            self.tape.apply_moving_updates(&mut self.params);
        }
        if let Some(world) = world {
            value = super::distributed::reduce_step(world, &mut self.params, batch.len(), global_rows, value, stats)?;
        }
        crate::autograd::profile::time("optimizer", true, || compiled.optimizer.step(&mut self.params));
        Ok(value)
    }

    /// Mean loss (and accuracy) over `(x, y)`, in batches of `batch_size`, as Keras's `evaluate`.
    pub fn evaluate(&mut self, x: &Tensor, y: &Tensor, batch_size: usize) -> Result<Scores> {
        self.evaluate_multi(&[x], &[y], batch_size)
    }

    /// [`Model::evaluate`] for a model with several inputs or outputs: one `x` per input,
    /// one `y` per output. [`Scores::outputs`] holds each output's loss and accuracy.
    pub fn evaluate_multi(&mut self, xs: &[&Tensor], ys: &[&Tensor], batch_size: usize) -> Result<Scores> {
        let ys = self.prepare(xs, ys)?;
        let ys: Vec<&Tensor> = ys.iter().collect();
        self.evaluate_prepared(xs, &ys, batch_size, None)
    }

    /// [`Model::evaluate`] split over the ranks of `world`, as `fit` validates when
    /// distributed: each rank evaluates its [`shard`](crate::distributed::shard) of `(x, y)`
    /// and every rank returns the scores over all of it. Every rank must call it with the same
    /// data.
    pub fn evaluate_distributed(
        &mut self,
        x: &Tensor,
        y: &Tensor,
        batch_size: usize,
        world: &dyn Collective,
    ) -> Result<Scores> {
        let ys = self.prepare(&[x], &[y])?;
        self.evaluate_prepared(&[x], &[&ys[0]], batch_size, Some(world))
    }

    fn evaluate_prepared(
        &mut self,
        xs: &[&Tensor],
        ys: &[&Tensor],
        batch_size: usize,
        world: Option<&dyn Collective>,
    ) -> Result<Scores> {
        if world.is_none() {
            // On a pool thread, as the training steps (MPI's communicator may not leave its thread).
            return crate::kernels::on_pool(|| self.evaluate_batches(xs, ys, batch_size, None));
        }
        self.evaluate_batches(xs, ys, batch_size, world)
    }

    fn evaluate_batches(
        &mut self,
        xs: &[&Tensor],
        ys: &[&Tensor],
        batch_size: usize,
        world: Option<&dyn Collective>,
    ) -> Result<Scores> {
        if batch_size == 0 {
            return Err(Error::invalid("batch_size", 0, "must be at least 1"));
        }
        let compiled = self
            .compiled
            .as_ref()
            .expect("prepare checked that the model is compiled");
        let names: Vec<String> = self.output_names().iter().map(|n| n.to_string()).collect();
        let names: Vec<&str> = names.iter().map(String::as_str).collect();
        let mut totals = Totals::new(names.len());
        let mut stats = vec![StepStats::default(); names.len()];
        let all_rows = xs[0].rows();
        let shard = world.map_or(0..all_rows, |w| crate::distributed::shard(all_rows, w.rank(), w.size()));
        let (mut start, rows) = (shard.start, shard.end);
        while start < rows {
            let end = (start + batch_size).min(rows);
            let mut graph = Graph::new(&mut self.tape, &self.params, false);
            let inputs: SmallVec<[Var; 4]> = xs
                .iter()
                .map(|x| graph.constant_with(|buffer| x.slice_rows_into(start, end, buffer)))
                .collect();
            let targets: SmallVec<[Var; 4]> = ys
                .iter()
                .map(|y| graph.constant_with(|buffer| y.slice_rows_into(start, end, buffer)))
                .collect();
            Self::forward_calls(&self.layers, &self.calls, &mut graph, &inputs, &mut self.call_outputs)?;
            let loss = objective(
                compiled,
                &mut graph,
                &self.outputs,
                &self.call_outputs,
                &targets,
                &mut stats,
            )?;
            let loss = graph.add_penalties(loss)?;
            totals.add(graph.value(loss).item(), end - start, &stats);
            start = end;
        }
        if let Some(world) = world {
            super::distributed::reduce_totals(world, &mut totals)?;
        }
        Ok(totals.scores(compiled, &names))
    }

    /// The model's outputs for `x`, computed in batches of `batch_size`, as Keras's `predict`.
    /// A model with several inputs or outputs uses [`Model::predict_multi`].
    pub fn predict(&mut self, x: &Tensor, batch_size: usize) -> Result<Tensor> {
        if self.outputs.len() > 1 {
            return Err(Error::Usage(format!(
                "the model has {} outputs ({}): use predict_multi, which returns one tensor per output",
                self.outputs.len(),
                self.output_names().join(", ")
            )));
        }
        let mut outputs = self.predict_multi(&[x], batch_size)?;
        Ok(outputs.remove(0))
    }

    /// The model's outputs for inputs `xs` (one per model input), one tensor per output.
    pub fn predict_multi(&mut self, xs: &[&Tensor], batch_size: usize) -> Result<Vec<Tensor>> {
        if batch_size == 0 {
            return Err(Error::invalid("batch_size", 0, "must be at least 1"));
        }
        self.check_inputs(xs)?;
        let shapes: Vec<Vec<usize>> = self.output_shapes().iter().map(|s| s.to_vec()).collect();
        let rows = xs[0].rows();
        let mut values: Vec<Vec<f32>> = shapes
            .iter()
            .map(|s| Vec::with_capacity(rows * s.iter().product::<usize>()))
            .collect();
        let mut start = 0;
        while start < rows {
            let end = (start + batch_size).min(rows);
            let mut graph = Graph::new(&mut self.tape, &self.params, false);
            let inputs: SmallVec<[Var; 4]> = xs
                .iter()
                .map(|x| graph.constant_with(|buffer| x.slice_rows_into(start, end, buffer)))
                .collect();
            Self::forward_calls(&self.layers, &self.calls, &mut graph, &inputs, &mut self.call_outputs)?;
            for (values, &call) in values.iter_mut().zip(&self.outputs) {
                values.extend_from_slice(graph.value(self.call_outputs[call]).data());
            }
            start = end;
        }
        shapes
            .into_iter()
            .zip(values)
            .map(|(shape, values)| {
                let mut full = vec![rows];
                full.extend(shape);
                Tensor::from_vec(full, values)
            })
            .collect()
    }

    /// Builds the model for `xs` if needed and checks that they fit its inputs.
    fn check_inputs(&mut self, xs: &[&Tensor]) -> Result<()> {
        if xs.len() != self.inputs {
            return Err(Error::Data(format!(
                "the model takes {} input(s), but {} x tensor(s) were given",
                self.inputs,
                xs.len()
            )));
        }
        if let Some(x) = xs.iter().find(|x| x.rank() == 0) {
            return Err(Error::Data(format!(
                "x must have a batch axis: shape (samples, ...), got {:?}",
                x.shape()
            )));
        }
        if let Some(x) = xs.iter().find(|x| x.rows() != xs[0].rows()) {
            return Err(Error::Data(format!(
                "the inputs have different numbers of samples: {} and {}",
                xs[0].rows(),
                x.rows()
            )));
        }
        let sample_shapes: Vec<&[usize]> = xs.iter().map(|x| &x.shape()[1..]).collect();
        if !self.build_if_declared()? {
            self.build_inputs(&sample_shapes)?;
        }
        for (i, (expected, given)) in self.input_shapes.iter().zip(&sample_shapes).enumerate() {
            if expected.as_slice() != *given {
                // The layer that reads this input: past an Input layer, the first one it feeds.
                let layer = match self.calls.iter().position(|c| c.inputs == [Source::ModelInput(i)]) {
                    Some(at) if self.layers[self.calls[at].layer].is_input() => self
                        .calls
                        .iter()
                        .find(|c| c.inputs.contains(&Source::Output(self.calls[at].first_output)))
                        .map_or(self.layers[self.calls[at].layer].name(), |c| {
                            self.layers[c.layer].name()
                        }),
                    Some(at) => self.layers[self.calls[at].layer].name(),
                    None => "input",
                };
                return Err(Error::LayerShape {
                    layer: layer.to_string(),
                    expected: keras_shape(expected),
                    received: keras_shape(given),
                });
            }
        }
        Ok(())
    }

    /// Checks `(xs, ys)` against the model and its losses, and returns each `y` shaped for its
    /// output's loss.
    fn prepare(&mut self, xs: &[&Tensor], ys: &[&Tensor]) -> Result<Vec<Tensor>> {
        if self.compiled.is_none() {
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
        let losses = self.compiled.as_ref().expect("checked above").losses.clone();
        let x = xs[0];
        let mut prepared = Vec::with_capacity(ys.len());
        for (((y, output_shape), loss), name) in ys.iter().zip(&output_shapes).zip(losses).zip(&names) {
            // With one output the messages stay as they were: "y" needs no output's name.
            let which = if names.len() > 1 {
                format!("y for output '{name}'")
            } else {
                "y".to_string()
            };
            if x.rows() != y.rows() {
                return Err(Error::Data(format!(
                    "x and {which} have different numbers of samples: x has {} (shape {:?}), {which} has {} (shape {:?})",
                    x.rows(),
                    x.shape(),
                    y.rows(),
                    y.shape()
                )));
            }
            let mut target_shape = vec![y.rows()];
            if loss.sparse_targets() {
                if y.row_len() != 1 {
                    return Err(Error::Data(format!(
                        "{} expects one integer label per sample, but {which} has shape {:?}; use categorical_crossentropy for one-hot labels",
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
                target_shape.extend(output_shape);
                if y.len() != target_shape.iter().product::<usize>() {
                    return Err(Error::Data(format!(
                        "{which} has shape {:?} but the model's output is {} per sample (loss {}); {}",
                        y.shape(),
                        keras_shape(output_shape),
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
                return Err(Error::Data(format!("{which} contains NaN or infinite values")));
            }
            prepared.push((*y).clone().reshape(&target_shape)?);
        }
        Ok(prepared)
    }
}

/// Records the training objective `Σ weight × loss` over the outputs, and each output's loss
/// and correct predictions into `stats`. One output of weight 1 adds no operation.
fn objective(
    compiled: &Compiled,
    graph: &mut Graph,
    outputs: &[usize],
    call_outputs: &[Var],
    targets: &[Var],
    stats: &mut [StepStats],
) -> Result<Var> {
    let mut total: Option<Var> = None;
    for (i, (&call, &target)) in outputs.iter().zip(targets).enumerate() {
        let output = call_outputs[call];
        let loss = compiled.losses[i].compute(graph, output, target)?;
        let (correct, predictions) = batch_stats(compiled, i, graph.value(output), graph.value(target));
        stats[i] = StepStats {
            loss: graph.value(loss).item(),
            correct,
            predictions,
        };
        let weighted = match compiled.loss_weights[i] {
            1.0 => loss,
            weight => graph.scale(loss, weight),
        };
        total = Some(match total {
            None => weighted,
            Some(sum) => graph.add(sum, weighted)?,
        });
    }
    Ok(total.expect("compile gives every model at least one output"))
}

/// Correct predictions and predictions counted in one batch of output `output`.
fn batch_stats(compiled: &Compiled, output: usize, values: &Tensor, target: &Tensor) -> (usize, usize) {
    let Some(accuracy) = compiled.accuracies[output] else {
        return (0, 0);
    };
    let threshold = if compiled.losses[output].from_logits() && accuracy == Accuracy::Binary {
        0.0
    } else {
        0.5
    };
    let correct = accuracy.count_correct(values, target, threshold);
    (correct, values.rows() * accuracy.per_sample(values.row_len().max(1)))
}
