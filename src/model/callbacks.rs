//! [`Callback`]: hooks into `fit`, as Keras's `keras.callbacks.Callback`.

use super::{EpochLogs, Sequential};
use crate::error::Result;

/// What a callback asks `fit` to do next.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Control {
    /// Keep training.
    Continue,
    /// Stop after this batch or epoch (Keras's `model.stop_training = True`).
    Stop,
}

/// Code run by `fit` at the end of each batch and epoch. Every hook has a default that does
/// nothing; a callback gets the model mutably, so it can save it or change the optimizer's
/// learning rate.
pub trait Callback {
    /// After batch `batch` (1-based) of epoch `epoch` (1-based), with the batch's loss.
    fn on_batch_end(&mut self, _model: &mut Sequential, _epoch: usize, _batch: usize, _loss: f32) -> Result<Control> {
        Ok(Control::Continue)
    }

    /// After each epoch, with its logs (validation included).
    fn on_epoch_end(&mut self, _model: &mut Sequential, _logs: &EpochLogs) -> Result<Control> {
        Ok(Control::Continue)
    }
}
