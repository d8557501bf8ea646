//! [`Callback`]: hooks into `fit`, as Keras's `keras.callbacks.Callback`.

use super::{EpochLogs, History, Model};
use crate::error::Result;

/// What a callback asks `fit` to do next.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Control {
    /// Keep training.
    Continue,
    /// Stop after this batch or epoch (Keras's `model.stop_training = True`).
    Stop,
}

/// Code run by `fit` at the start and end of training, of each epoch and of each batch. Every
/// hook has a default that does nothing. A callback gets the model mutably, so it can save it
/// or change the learning rate (`model.optimizer_mut()`); the `*_end` hooks of batches and
/// epochs can stop training. Epochs and batches are numbered from 1.
///
/// ```
/// use strata::prelude::*;
/// use strata::model::EpochLogs;
///
/// /// Halves the learning rate after every epoch.
/// struct Halve;
/// impl Callback for Halve {
///     fn on_epoch_end(&mut self, model: &mut Model, _logs: &EpochLogs) -> strata::Result<Control> {
///         if let Some(optimizer) = model.optimizer_mut() {
///             let lr = optimizer.learning_rate();
///             optimizer.set_learning_rate(lr / 2.0);
///         }
///         Ok(Control::Continue)
///     }
/// }
/// ```
pub trait Callback {
    /// Before the first epoch.
    fn on_train_begin(&mut self, _model: &mut Model) -> Result<()> {
        Ok(())
    }

    /// After the last epoch, or when training stopped early, with the epochs completed.
    fn on_train_end(&mut self, _model: &mut Model, _history: &History) -> Result<()> {
        Ok(())
    }

    /// Before epoch `epoch`.
    fn on_epoch_begin(&mut self, _model: &mut Model, _epoch: usize) -> Result<()> {
        Ok(())
    }

    /// After each epoch, with its logs (validation included).
    fn on_epoch_end(&mut self, _model: &mut Model, _logs: &EpochLogs) -> Result<Control> {
        Ok(Control::Continue)
    }

    /// Before batch `batch` of epoch `epoch`.
    fn on_batch_begin(&mut self, _model: &mut Model, _epoch: usize, _batch: usize) -> Result<()> {
        Ok(())
    }

    /// After batch `batch` of epoch `epoch`, with the batch's loss (which may be NaN: `fit`
    /// reports a non-finite loss as an error unless a callback stops training on it, as
    /// [`TerminateOnNaN`](crate::callbacks::TerminateOnNaN) does).
    fn on_batch_end(&mut self, _model: &mut Model, _epoch: usize, _batch: usize, _loss: f32) -> Result<Control> {
        Ok(Control::Continue)
    }
}
