"""Keras-side helpers: seed, per-epoch wall clock, versions. KERAS_BACKEND=jax runs the same
scripts on JAX."""
import os, time
os.environ.setdefault("TF_CPP_MIN_LOG_LEVEL", "2")
import keras

keras.utils.set_random_seed(0)


class EpochTimer(keras.callbacks.Callback):
    def __init__(self):
        super().__init__()
        self.times = []

    def on_epoch_begin(self, epoch, logs=None):
        self.start = time.perf_counter()

    def on_epoch_end(self, epoch, logs=None):
        self.times.append(time.perf_counter() - self.start)


def info():
    return dict(keras=keras.__version__, backend=keras.backend.backend())
