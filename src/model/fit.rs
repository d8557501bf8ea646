//! `fit`: training in stages. Prepare the data (checks, validation split, the shuffled order),
//! then for each epoch run the steps and sum their results, make the replicas whole, validate,
//! log and call the callbacks. Where the steps run is a [`TrainingStrategy`]: this process
//! alone, or data-parallel over a group of ranks.

use super::distributed::DataParallel;
use super::fit_data::{FitData, SampleOrder};
use super::options::FitOptions;
use super::progress::EpochProgress;
use super::strategy::{LocalTraining, TrainingStrategy};
use super::totals::{StepStats, Totals};
use super::{Callback, Control, EpochLogs, History, Model};
use crate::error::{Error, Result};
use crate::tensor::Tensor;
use std::time::Instant;

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

    /// [`Model::fit_multi`] with callbacks: the recipe of training, each stage a function.
    pub fn fit_multi_with_callbacks(
        &mut self,
        xs: &[&Tensor],
        ys: &[&Tensor],
        options: FitOptions,
        callbacks: &mut [&mut dyn Callback],
    ) -> Result<History> {
        self.refuse_quantized_training()?;
        // The steps then run on this thread as a pool's worker 0, as in the `strata` command.
        crate::kernels::enter_pool();
        let strategy = training_strategy(&options);
        // First: once the ranks agree, every check below fails on all of them or on none.
        strategy.check(self, xs, ys, &options)?;
        let data = self.fit_data(xs, ys, &options)?;
        let batch = options.batch_size.min(data.train_rows);
        self.check_batch_memory(batch, true, "training")?;
        let seed = options.seed.unwrap_or(self.training.seed.wrapping_add(1));
        strategy.begin(self)?;
        let metric_sums = self.compiled().metric_sums();
        let mut run = FitRun::new(&options, &data, strategy.as_ref(), seed, &metric_sums);
        check_start(&options, run.steps)?;
        for callback in callbacks.iter_mut() {
            callback.on_train_begin(self)?;
        }
        let history = self.run_epochs(&mut run, callbacks)?;
        for callback in callbacks.iter_mut() {
            callback.on_train_end(self, &history)?;
        }
        crate::autograd::profile::report();
        Ok(history)
    }

    /// Runs the epochs after `initial_epoch`, until the last or until a callback stops them.
    fn run_epochs(&mut self, run: &mut FitRun, callbacks: &mut [&mut dyn Callback]) -> Result<History> {
        let mut history = History::default();
        for epoch in run.options.initial_epoch + 1..=run.options.epochs {
            run.order.next_epoch();
            if self.run_epoch(run, epoch, callbacks, &mut history)? == Control::Stop {
                break;
            }
        }
        Ok(history)
    }

    /// One epoch: its steps, then (unless a batch stopped training) the replicas made whole,
    /// validation, the logs and the epoch-end callbacks.
    fn run_epoch(
        &mut self,
        run: &mut FitRun,
        epoch: usize,
        callbacks: &mut [&mut dyn Callback],
        history: &mut History,
    ) -> Result<Control> {
        let started = Instant::now();
        for callback in callbacks.iter_mut() {
            callback.on_epoch_begin(self, epoch)?;
        }
        let mut progress = EpochProgress::start(run.verbose, epoch, run.options.epochs, run.steps);
        let (totals, control) = self.run_steps(run, epoch, callbacks, &mut progress)?;
        if control == Control::Stop {
            return Ok(Control::Stop);
        }
        run.strategy.end_epoch(self)?;
        let mut logs = self.epoch_logs(epoch, &totals);
        self.validate(run, &mut logs)?;
        logs.seconds = started.elapsed().as_secs_f64();
        progress.finish(&logs);
        self.training.epochs_trained = epoch;
        self.training.batches_into_epoch = 0;
        let mut control = Control::Continue;
        for callback in callbacks.iter_mut() {
            if callback.on_epoch_end(self, &logs)? == Control::Stop {
                control = Control::Stop;
            }
        }
        history.epochs.push(logs);
        Ok(control)
    }

    /// The steps of one epoch, with the batch callbacks; the epoch's totals, and whether a
    /// callback stopped training.
    fn run_steps(
        &mut self,
        run: &mut FitRun,
        epoch: usize,
        callbacks: &mut [&mut dyn Callback],
        progress: &mut EpochProgress,
    ) -> Result<(Totals, Control)> {
        let tracked = self.tracks_accuracy();
        let mut totals = Totals::new(&self.compiled().metric_sums());
        // A run resumed mid-epoch skips the batches its first epoch already trained.
        let skip = if epoch == run.options.initial_epoch + 1 {
            run.options.initial_batch
        } else {
            0
        };
        let batches = run.order.rows().chunks(run.global_batch);
        let mut next_batches = batches.clone().skip(skip + 1);
        for (step, batch) in batches.enumerate().skip(skip) {
            let number = step + 1;
            // The next batch's samples, scattered over the data set, load while this step runs.
            if let Some(next) = next_batches.next() {
                run.data.xs.iter().for_each(|x| x.prefetch_rows(next));
            }
            for callback in callbacks.iter_mut() {
                callback.on_batch_begin(self, epoch, number)?;
            }
            // The pool's other threads spin between the step's parallel parts instead of
            // yielding to the kernel and falling asleep (docs/PERFORMANCE.md: 9 % of an mlp step).
            crate::kernels::keep_others_awake();
            let loss = run
                .strategy
                .step(self, run.data.xs, &run.data.ys, batch, &mut run.stats)?;
            self.training.batches_into_epoch = number;
            let mut control = Control::Continue;
            for callback in callbacks.iter_mut() {
                if callback.on_batch_end(self, epoch, number, loss)? == Control::Stop {
                    control = Control::Stop;
                }
            }
            if !loss.is_finite() && control == Control::Continue {
                return Err(Error::NonFiniteLoss {
                    epoch,
                    batch: number,
                    value: loss,
                });
            }
            totals.add(loss, batch.len(), &run.stats);
            progress.step(number, totals.mean_loss(), totals.accuracy(0, tracked));
            if control == Control::Stop {
                return Ok((totals, Control::Stop));
            }
        }
        Ok((totals, Control::Continue))
    }

    /// The logs of epoch `epoch` from its training totals.
    fn epoch_logs(&self, epoch: usize, totals: &Totals) -> EpochLogs {
        let scores = self.scores(totals);
        let single = self.network.outputs.len() == 1;
        let mut logs = EpochLogs {
            epoch,
            loss: scores.loss,
            accuracy: scores.accuracy.filter(|_| single),
            learning_rate: self.optimizer().map(|o| o.learning_rate()),
            ..EpochLogs::default()
        };
        logs.add_outputs("", &scores);
        logs
    }

    /// Adds the validation scores to `logs`, when there is validation data.
    fn validate(&mut self, run: &FitRun, logs: &mut EpochLogs) -> Result<()> {
        let Some(validation) = &run.data.validation else {
            return Ok(());
        };
        let xs: Vec<&Tensor> = validation.xs.iter().map(AsRef::as_ref).collect();
        let ys: Vec<&Tensor> = validation.ys.iter().collect();
        let scores = run.strategy.evaluate(self, &xs, &ys, run.options.batch_size)?;
        let single = self.network.outputs.len() == 1;
        logs.val_loss = Some(scores.loss);
        logs.val_accuracy = scores.accuracy.filter(|_| single);
        logs.add_outputs("val_", &scores);
        Ok(())
    }
}

/// What the epochs of one `fit` call share.
struct FitRun<'r, 'a> {
    options: &'r FitOptions<'a>,
    data: &'r FitData<'r>,
    strategy: &'r dyn TrainingStrategy,
    order: SampleOrder,
    /// Samples per step, over all replicas.
    global_batch: usize,
    /// Steps per epoch.
    steps: usize,
    /// The verbosity this process prints with.
    verbose: u8,
    /// The last step's per-output stats, kept between steps to avoid allocating.
    stats: Vec<StepStats>,
}

impl<'r, 'a> FitRun<'r, 'a> {
    /// The shared state of a run of `options` on `data` with `strategy`, shuffling from `seed`,
    /// for a model whose outputs keep `metric_sums` metric sums each.
    fn new(
        options: &'r FitOptions<'a>,
        data: &'r FitData<'r>,
        strategy: &'r dyn TrainingStrategy,
        seed: u64,
        metric_sums: &[usize],
    ) -> Self {
        let mut order = SampleOrder::new(data.train_rows, options.shuffle, seed);
        // Replay the skipped epochs' shuffles so the order continues where it left off.
        (0..options.initial_epoch.min(options.epochs)).for_each(|_| order.next_epoch());
        let global_batch = strategy.global_batch(options.batch_size);
        FitRun {
            options,
            data,
            strategy,
            order,
            global_batch,
            steps: data.train_rows.div_ceil(global_batch),
            verbose: if strategy.prints_progress() { options.verbose } else { 0 },
            stats: StepStats::for_outputs(metric_sums),
        }
    }
}

/// The strategy `options` ask for: data-parallel with a group of ranks, or this process alone.
fn training_strategy<'a>(options: &FitOptions<'a>) -> Box<dyn TrainingStrategy + 'a> {
    match options.distributed {
        Some(world) => Box::new(DataParallel::new(world)),
        None => Box::new(LocalTraining),
    }
}

/// Checks where a resumed run starts: an epoch after which another can be counted, and no
/// more batches into it than it has (a count from another batch size would skip the rest).
fn check_start(options: &FitOptions, steps: usize) -> Result<()> {
    if options.initial_epoch.checked_add(1).is_none() {
        return Err(Error::invalid(
            "initial_epoch",
            options.initial_epoch,
            "leaves no epoch to count after it",
        ));
    }
    if options.initial_batch > steps {
        return Err(Error::invalid(
            "initial_batch",
            options.initial_batch,
            format!(
                "an epoch of batch size {} has {steps} batches here (was the checkpoint made with another batch size?)",
                options.batch_size
            ),
        ));
    }
    Ok(())
}
