"""``keras.callbacks``. EarlyStopping, ModelCheckpoint, ReduceLROnPlateau, CSVLogger and
TerminateOnNaN run as strata's own callbacks inside the Rust training loop; a Python subclass of
``Callback`` has the hooks it overrides called with Keras's arguments (epochs and batches from
0, ``logs`` dicts), the GIL taken only for those hooks."""

import os

# Hooks strata calls, and the Keras names that feed each (Keras 2's on_batch_* are aliases).
_HOOKS = {
    "on_train_begin": ("on_train_begin",),
    "on_train_end": ("on_train_end",),
    "on_epoch_begin": ("on_epoch_begin",),
    "on_epoch_end": ("on_epoch_end",),
    "on_train_batch_begin": ("on_train_batch_begin", "on_batch_begin"),
    "on_train_batch_end": ("on_train_batch_end", "on_batch_end"),
}


class Callback:
    """Keras's ``keras.callbacks.Callback``: subclass it and override hooks. ``self.model`` is
    the model being trained (usable inside hooks: weights, ``save``, learning rate); set
    ``self.model.stop_training = True`` to stop after the epoch or batch."""

    def __init__(self):
        self.model = None
        self.params = {}

    def set_model(self, model):
        self.model = model

    def set_params(self, params):
        self.params = params

    def on_train_begin(self, logs=None):
        pass

    def on_train_end(self, logs=None):
        pass

    def on_epoch_begin(self, epoch, logs=None):
        pass

    def on_epoch_end(self, epoch, logs=None):
        pass

    def on_batch_begin(self, batch, logs=None):
        pass

    def on_batch_end(self, batch, logs=None):
        pass

    def on_train_batch_begin(self, batch, logs=None):
        self.on_batch_begin(batch, logs=logs)

    def on_train_batch_end(self, batch, logs=None):
        self.on_batch_end(batch, logs=logs)

    def on_test_begin(self, logs=None):
        pass

    def on_test_end(self, logs=None):
        pass

    def on_predict_begin(self, logs=None):
        pass

    def on_predict_end(self, logs=None):
        pass

    def _strata_hook(self):
        """What the engine runs: ``("python", self, hooks overridden)``, or None when no hook is
        overridden (nothing to call, no GIL to take)."""
        overridden = [hook for hook, names in _HOOKS.items()
                      if any(getattr(type(self), n) is not getattr(Callback, n) for n in names)]
        return ("python", self, overridden) if overridden else None


class _Native(Callback):
    """A callback strata runs in Rust, from its Keras arguments."""

    def __init__(self, **arguments):
        super().__init__()
        self._arguments = arguments

    def _strata_hook(self):
        return (type(self).__name__, dict(self._arguments), [])


def _mode(mode, callback):
    if mode not in ("auto", "min", "max"):
        raise ValueError(f"{callback}: mode must be 'auto', 'min' or 'max', got {mode!r}")
    return mode


class EarlyStopping(_Native):
    """Runs in Rust; after ``fit`` it answers Keras's ``stopped_epoch``, ``best``, ``wait`` and
    ``best_epoch``, worked out from the epochs' logs by Keras's own rule."""

    def __init__(self, monitor="val_loss", min_delta=0, patience=0, verbose=0, mode="auto", baseline=None,
                 restore_best_weights=False, start_from_epoch=0):
        super().__init__(monitor=monitor, min_delta=float(min_delta), patience=int(patience), verbose=int(verbose),
                         mode=_mode(mode, "EarlyStopping"), baseline=baseline,
                         restore_best_weights=bool(restore_best_weights), start_from_epoch=int(start_from_epoch))
        self.monitor, self.mode, self.patience, self.baseline = monitor, mode, int(patience), baseline
        self.min_delta = abs(float(min_delta))
        self.start_from_epoch = int(start_from_epoch)
        self.restore_best_weights = bool(restore_best_weights)
        self.wait = 0
        self.stopped_epoch = 0
        self.best = None
        self.best_epoch = 0

    def _after_fit(self, epochs, logs):
        """Keras's ``on_train_begin`` and ``on_epoch_end`` replayed over the epochs' logs."""
        self.wait, self.stopped_epoch, self.best, self.best_epoch = 0, 0, None, 0
        name = self.monitor[4:] if self.monitor.startswith("val_") else self.monitor
        lower = self.mode == "min" or (self.mode == "auto" and not _higher_is_better(name))
        delta = -self.min_delta if lower else self.min_delta

        def improves(value, reference):
            if reference is None:
                return True
            return value - delta < reference if lower else value - delta > reference

        for epoch, values in zip(epochs, logs):
            current = values.get(self.monitor)
            if current is None or epoch < self.start_from_epoch:
                continue
            self.wait += 1
            if improves(current, self.best):
                self.best, self.best_epoch = current, epoch
                if self.baseline is None or improves(current, self.baseline):
                    self.wait = 0
                continue
            if self.wait >= self.patience and epoch > 0:
                self.stopped_epoch = epoch


def _higher_is_better(metric):
    """Keras's direction of a metric in ``mode="auto"``: up for accuracies, AUC, precision and
    recall, down for losses and errors."""
    return any(part in metric for part in ("acc", "auc", "precision", "recall"))


class ModelCheckpoint(_Native):
    def __init__(self, filepath, monitor="val_loss", verbose=0, save_best_only=False, save_weights_only=False,
                 mode="auto", save_freq="epoch", initial_value_threshold=None):
        filepath = os.fspath(filepath)
        unsupported = [name for name, bad in [
            ("save_weights_only=True", save_weights_only), ("save_freq other than 'epoch'", save_freq != "epoch"),
            ("initial_value_threshold", initial_value_threshold is not None), (f"mode={mode!r}", mode != "auto"),
            ("a filepath with {placeholders}", "{" in filepath),
        ] if bad]
        if unsupported:
            raise NotImplementedError(f"ModelCheckpoint: {', '.join(unsupported)}")
        super().__init__(filepath=filepath, monitor=monitor, verbose=int(verbose),
                         save_best_only=bool(save_best_only))


class ReduceLROnPlateau(_Native):
    def __init__(self, monitor="val_loss", factor=0.1, patience=10, verbose=0, mode="auto", min_delta=1e-4,
                 cooldown=0, min_lr=0.0, **kwargs):
        if kwargs:
            raise NotImplementedError(f"ReduceLROnPlateau: {', '.join(kwargs)}")
        super().__init__(monitor=monitor, factor=float(factor), patience=int(patience), verbose=int(verbose),
                         mode=_mode(mode, "ReduceLROnPlateau"), min_delta=float(min_delta), cooldown=int(cooldown),
                         min_lr=float(min_lr))


class CSVLogger(_Native):
    def __init__(self, filename, separator=",", append=False):
        super().__init__(filename=os.fspath(filename), separator=separator, append=bool(append))


class TerminateOnNaN(_Native):
    def __init__(self):
        super().__init__()


class LearningRateScheduler(Callback):
    """Keras's ``LearningRateScheduler``: ``schedule(epoch, lr)`` (or ``schedule(epoch)``) sets
    the learning rate before each epoch."""

    def __init__(self, schedule, verbose=0):
        super().__init__()
        self.schedule = schedule
        self.verbose = verbose

    def on_epoch_begin(self, epoch, logs=None):
        optimizer = self.model.optimizer
        try:
            rate = self.schedule(epoch, float(optimizer.learning_rate))
        except TypeError:
            rate = self.schedule(epoch)
        if not isinstance(rate, (float, int)) and not hasattr(rate, "__float__"):
            raise ValueError(f'The output of the "schedule" function should be a float. Got: {rate}')
        optimizer.learning_rate = float(rate)
        if self.verbose > 0:
            print(f"\nEpoch {epoch + 1}: LearningRateScheduler setting learning rate to {float(rate)}.")


class History(Callback):
    """What ``fit`` returns: ``history`` (metric name → one value per epoch) and ``epoch``."""

    def __init__(self):
        super().__init__()
        self.history = {}
        self.epoch = []

    def _record(self, epochs_logs, rename, initial_epoch, shows_learning_rate):
        for index, logs in enumerate(epochs_logs):
            self.epoch.append(initial_epoch + index)
            for key, value in logs.items():
                if key == "learning_rate" and not shows_learning_rate:
                    continue
                for name in rename(key):
                    self.history.setdefault(name, []).append(float(value))
        # Keras's order: its logs are sorted by name.
        self.history = dict(sorted(self.history.items()))


class ProgbarLogger(Callback):
    def __init__(self, *args, **kwargs):
        raise NotImplementedError("ProgbarLogger: fit(verbose=1) shows strata's progress bar")


class TensorBoard(Callback):
    def __init__(self, *args, **kwargs):
        raise NotImplementedError("keras.callbacks.TensorBoard from Python (the strata command has --tensorboard)")


class BackupAndRestore(Callback):
    def __init__(self, *args, **kwargs):
        raise NotImplementedError("BackupAndRestore (the strata command resumes with --resume)")


class LambdaCallback(Callback):
    """Keras's ``LambdaCallback``: hooks given as functions."""

    def __init__(self, on_epoch_begin=None, on_epoch_end=None, on_train_begin=None, on_train_end=None,
                 on_train_batch_begin=None, on_train_batch_end=None, **kwargs):
        super().__init__()
        if kwargs:
            raise NotImplementedError(f"LambdaCallback: {', '.join(kwargs)}")
        given = dict(on_epoch_begin=on_epoch_begin, on_epoch_end=on_epoch_end, on_train_begin=on_train_begin,
                     on_train_end=on_train_end, on_train_batch_begin=on_train_batch_begin,
                     on_train_batch_end=on_train_batch_end)
        self._given = {k: v for k, v in given.items() if v is not None}
        for name, function in self._given.items():
            setattr(self, name, function)

    def _strata_hook(self):
        return ("python", self, list(self._given)) if self._given else None
