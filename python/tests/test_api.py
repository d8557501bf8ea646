"""The Keras surface around the programs: imports, weights, callbacks, summary, saving,
freezing, the functional API, Ctrl-C."""

import json
import os
import pathlib
import shutil
import subprocess
import signal
import threading
import _thread
import time
import zipfile

import numpy as np
import pytest

import strata
import strata.keras as keras
from strata.keras import layers


def small_mlp(units=16):
    model = keras.Sequential([keras.Input((28, 28)), layers.Flatten(), layers.Dense(units, activation="relu"),
                              layers.Dense(10, activation="softmax")])
    model.compile("adam", "sparse_categorical_crossentropy", metrics=["accuracy"])
    return model


def test_the_import_spellings_resolve():
    import strata as tf
    from strata.keras import layers as keras_layers, models
    from strata.keras.optimizers import RMSprop
    from strata.keras.callbacks import EarlyStopping  # noqa: F401

    assert tf.keras.Sequential is models.Sequential
    assert tf.keras.layers.Dense is keras_layers.Dense
    assert callable(tf.keras.datasets.mnist.load_data) and callable(tf.keras.utils.to_categorical)
    assert RMSprop().learning_rate == 0.001
    with pytest.raises(NotImplementedError, match="NoSuchLayer"):
        tf.keras.layers.NoSuchLayer(3)


def test_mnist_loads_as_keras_returns_it():
    (x_train, y_train), (x_test, y_test) = keras.datasets.mnist.load_data()
    assert x_train.shape == (60000, 28, 28) and x_train.dtype == np.uint8 and x_train.max() == 255
    assert y_train.shape == (60000,) and set(np.unique(y_test)) == set(range(10))
    assert x_test.shape == (10000, 28, 28)


def test_weights_round_trip_through_numpy(mnist_small):
    (x_train, y_train), (x_test, _) = mnist_small
    model = small_mlp()
    model.fit(x_train[:1000], y_train[:1000], epochs=1, verbose=0)
    weights = model.get_weights()
    assert [w.shape for w in weights] == [(784, 16), (16,), (16, 10), (10,)]
    assert all(w.dtype == np.float32 for w in weights)
    dense = model.layers[1]
    assert dense.name.startswith("dense") and [w.shape for w in dense.get_weights()] == [(784, 16), (16,)]
    other = small_mlp()
    assert not np.allclose(other.predict(x_test[:50], verbose=0), model.predict(x_test[:50], verbose=0))
    other.set_weights(weights)
    np.testing.assert_array_equal(other.predict(x_test[:50], verbose=0), model.predict(x_test[:50], verbose=0))
    kernel, bias = dense.get_weights()
    dense.set_weights([np.zeros_like(kernel), np.ones_like(bias)])
    np.testing.assert_array_equal(model.layers[1].get_weights()[1], np.ones(16, np.float32))
    with pytest.raises(ValueError, match=r"shape"):
        dense.set_weights([np.zeros((3, 3)), bias])
    with pytest.raises(ValueError, match="expects 4 weights"):
        model.set_weights(weights[:2])


def test_a_python_callback_sees_every_epoch():
    class Recorder(keras.callbacks.Callback):
        def __init__(self):
            super().__init__()
            self.calls, self.batches = [], 0

        def on_train_begin(self, logs=None):
            self.calls.append(("train_begin",))

        def on_epoch_begin(self, epoch, logs=None):
            self.calls.append(("epoch_begin", epoch))

        def on_epoch_end(self, epoch, logs=None):
            self.calls.append(("epoch_end", epoch, dict(logs)))
            # The model is usable from a hook while fit runs.
            assert len(self.model.get_weights()) == 2

        def on_batch_end(self, batch, logs=None):
            self.batches += 1
            assert "loss" in logs

        def on_train_end(self, logs=None):
            self.calls.append(("train_end", dict(logs)))

    x = np.random.default_rng(0).normal(size=(100, 3)).astype("float32")
    y = x @ np.array([[1.0], [2.0], [3.0]], dtype="float32")
    model = keras.Sequential([layers.Dense(1, input_shape=(3,))])
    model.compile(keras.optimizers.SGD(0.05), "mse")
    recorder = Recorder()
    history = model.fit(x, y, epochs=3, batch_size=10, validation_split=0.2, callbacks=[recorder], verbose=0)
    assert recorder.batches == 3 * 8
    assert [c[:2] for c in recorder.calls] == [("train_begin",), ("epoch_begin", 0), ("epoch_end", 0),
                                                ("epoch_begin", 1), ("epoch_end", 1), ("epoch_begin", 2),
                                                ("epoch_end", 2), ("train_end", recorder.calls[-1][1])]
    for i, epoch in enumerate([c for c in recorder.calls if c[0] == "epoch_end"]):
        assert set(epoch[2]) >= {"loss", "val_loss"}
        assert epoch[2]["loss"] == pytest.approx(history.history["loss"][i])


def test_a_callback_stops_training_and_sets_the_learning_rate():
    class StopAtTwo(keras.callbacks.Callback):
        def on_epoch_end(self, epoch, logs=None):
            if epoch == 1:
                self.model.stop_training = True

    x = np.ones((32, 2), "float32")
    model = keras.Sequential([layers.Dense(1, input_shape=(2,))])
    model.compile(keras.optimizers.SGD(0.01), "mse")
    rates = []
    schedule = keras.callbacks.LearningRateScheduler(lambda epoch, lr: rates.append(lr) or 0.1 / (epoch + 1))
    history = model.fit(x, x[:, :1], epochs=10, callbacks=[schedule, StopAtTwo()], verbose=0)
    assert len(history.history["loss"]) == 2
    assert rates[0] == pytest.approx(0.01)
    assert model.optimizer.learning_rate == pytest.approx(0.05)
    assert history.history["learning_rate"] == pytest.approx([0.1, 0.05])


def test_an_exception_in_a_callback_reaches_the_caller():
    class Boom(keras.callbacks.Callback):
        def on_epoch_end(self, epoch, logs=None):
            raise ZeroDivisionError("from the callback")

    model = keras.Sequential([layers.Dense(1, input_shape=(2,))])
    model.compile("sgd", "mse")
    with pytest.raises(ZeroDivisionError, match="from the callback"):
        model.fit(np.ones((8, 2)), np.ones((8, 1)), epochs=3, callbacks=[Boom()], verbose=0)
    assert model.predict(np.ones((1, 2)), verbose=0).shape == (1, 1)


def test_ctrl_c_stops_fit_with_keyboard_interrupt_after_a_batch():
    x = np.random.default_rng(0).normal(size=(4096, 32)).astype("float32")
    model = keras.Sequential([layers.Dense(256, activation="relu", input_shape=(32,)), layers.Dense(1)])
    model.compile("adam", "mse")
    # A process started in the background of a non-interactive shell ignores SIGINT, and then
    # `interrupt_main` does nothing: Python's own handler, as an interactive run has it.
    previous = signal.signal(signal.SIGINT, signal.default_int_handler)
    timer = threading.Timer(0.5, _thread.interrupt_main)
    timer.start()
    started = time.monotonic()
    try:
        with pytest.raises(KeyboardInterrupt):
            model.fit(x, x[:, :1], epochs=10_000, batch_size=8, verbose=0)
    finally:
        timer.cancel()
        signal.signal(signal.SIGINT, previous)
    assert time.monotonic() - started < 30
    assert model.predict(x[:2], verbose=0).shape == (2, 1)


def test_summary_prints_the_keras_table(capsys):
    model = small_mlp(128)
    model.summary()
    text = capsys.readouterr().out
    assert "Dense" in text and "Total params: 101,770" in text


def test_evaluate_return_forms(mnist_small):
    (x_train, y_train), _ = mnist_small
    model = small_mlp()
    model.fit(x_train[:500], y_train[:500], epochs=1, verbose=0)
    loss, accuracy = model.evaluate(x_train[:200], y_train[:200], verbose=0)
    as_dict = model.evaluate(x_train[:200], y_train[:200], verbose=0, return_dict=True)
    assert as_dict == {"loss": pytest.approx(loss), "accuracy": pytest.approx(accuracy)}


def test_functional_model_with_two_inputs():
    left, right = keras.Input(shape=(4,), name="left"), keras.Input(shape=(3,), name="right")
    merged = layers.Concatenate()([layers.Dense(8, activation="relu")(left), right])
    output = layers.Dense(1, activation="sigmoid")(merged)
    model = keras.Model(inputs=[left, right], outputs=output)
    model.compile(keras.optimizers.Adam(0.01), "binary_crossentropy", metrics=["accuracy"])
    rng = np.random.default_rng(0)
    xl, xr = rng.normal(size=(512, 4)), rng.normal(size=(512, 3))
    y = (xl[:, 0] + xr[:, 0] > 0).astype("int32")
    model.fit([xl, xr], y, epochs=20, verbose=0)
    _, accuracy = model.evaluate([xl, xr], y, verbose=0)
    assert accuracy > 0.9
    assert model.predict([xl[:3], xr[:3]], verbose=0).shape == (3, 1)
    assert [layer.name for layer in model.layers][-1] == output._layer.name


def test_wrappers_take_their_layer_positionally():
    # Keras's spellings: Bidirectional(LSTM(4)), TimeDistributed(Dense(5)); the positional
    # arguments come from strata's layer registry.
    model = keras.Sequential([keras.Input((6, 3)), layers.TimeDistributed(layers.Dense(5)),
                              layers.Bidirectional(layers.LSTM(4), "sum"), layers.Dense(1)])
    # Keras's count_params: Dense 3*5+5; each LSTM 4*(4*(5+4)+4); Dense 4+1 ("sum" keeps 4 wide).
    assert model.count_params() == 20 + 2 * 160 + 5
    assert model.predict(np.zeros((2, 6, 3), np.float32), verbose=0).shape == (2, 1)
    with pytest.raises(TypeError, match="at most 2 positional"):
        layers.Bidirectional(layers.LSTM(4), "sum", None)


def test_frozen_layer_keeps_its_weights(mnist_small):
    (x_train, y_train), _ = mnist_small
    model = small_mlp()
    first = model.layers[1]
    before = first.get_weights()[0].copy()
    first.trainable = False
    assert first.trainable is False
    model.compile("adam", "sparse_categorical_crossentropy", metrics=["accuracy"])
    model.fit(x_train[:500], y_train[:500], epochs=1, verbose=0)
    np.testing.assert_array_equal(first.get_weights()[0], before)
    assert not np.array_equal(model.layers[2].get_weights()[0], small_mlp().layers[2].get_weights()[0])


def strata_command():
    """The `strata` binary: $STRATA_BIN, else the release build of this checkout."""
    if os.environ.get("STRATA_BIN"):
        return os.environ["STRATA_BIN"]
    root = pathlib.Path(__file__).resolve().parents[2]
    target = pathlib.Path(os.environ.get("CARGO_TARGET_DIR", root / "target"))
    candidate = target / "release" / "strata"
    return str(candidate) if candidate.exists() else shutil.which("strata")


def test_a_model_saved_from_python_loads_in_the_cli_and_back(mnist, tmp_path):
    command = strata_command()
    if command is None:
        pytest.skip("no strata binary (set STRATA_BIN or build with cargo build --release)")
    (x_train, y_train), (x_test, y_test) = mnist
    model = small_mlp(64)
    model.fit(x_train, y_train, epochs=1, verbose=0)
    _, accuracy = model.evaluate(x_test, y_test, verbose=0)
    path = tmp_path / "mlp.safetensors"
    model.save(path)
    repo = pathlib.Path(__file__).resolve().parents[2]
    evaluated = subprocess.run([command, "evaluate", "--model", str(path), "--json"], cwd=repo,
                               capture_output=True, text=True, check=True)
    report = json.loads(evaluated.stdout)
    assert report["test_accuracy"] == pytest.approx(accuracy, abs=1e-4), report
    resumed = tmp_path / "resumed.safetensors"
    subprocess.run([command, "train", "--resume", str(path), "--epochs", "2", "--verbose", "0",
                    "--save", str(resumed)], cwd=repo, capture_output=True, text=True, check=True)
    loaded = keras.models.load_model(resumed)
    assert [layer.name for layer in loaded.layers] == [layer.name for layer in model.layers]
    _, accuracy_after = loaded.evaluate(x_test, y_test, verbose=0)
    assert accuracy_after > 0.95
    again = keras.models.load_model(path)
    np.testing.assert_array_equal(again.predict(x_test[:10], verbose=0), model.predict(x_test[:10], verbose=0))
    again.fit(x_train[:500], y_train[:500], epochs=1, verbose=0)


def test_native_callbacks_write_their_files(tmp_path):
    x = np.random.default_rng(0).normal(size=(64, 2)).astype("float32")
    model = keras.Sequential([layers.Dense(1, input_shape=(2,))])
    model.compile("sgd", "mse")
    callbacks = [keras.callbacks.CSVLogger(tmp_path / "log.csv"),
                 keras.callbacks.ModelCheckpoint(tmp_path / "best.safetensors", monitor="loss", save_best_only=True),
                 keras.callbacks.ReduceLROnPlateau(monitor="loss", patience=1), keras.callbacks.TerminateOnNaN()]
    model.fit(x, x[:, :1], epochs=3, callbacks=callbacks, verbose=0)
    assert (tmp_path / "log.csv").read_text().startswith("epoch")
    assert keras.models.load_model(tmp_path / "best.safetensors").predict(x[:1], verbose=0).shape == (1, 1)


def test_keras_files_round_trip(tmp_path):
    x = np.random.default_rng(1).normal(size=(32, 6)).astype("float32")
    y = (x.sum(axis=1) > 0).astype("int64")
    model = keras.Sequential([keras.Input((6,)), layers.Dense(8, activation="relu"), layers.Dropout(0.2),
                              layers.Dense(2, activation="softmax")])
    model.compile(keras.optimizers.Adam(0.01), "sparse_categorical_crossentropy", metrics=["accuracy"])
    checkpoint = keras.callbacks.ModelCheckpoint(tmp_path / "best.keras", monitor="loss", save_best_only=True)
    model.fit(x, y, epochs=2, callbacks=[checkpoint], verbose=0)
    expected = model.predict(x, verbose=0)
    for name in ["model.keras", "model.h5"]:
        model.save(tmp_path / name)
        loaded = keras.models.load_model(tmp_path / name)
        np.testing.assert_array_equal(loaded.predict(x, verbose=0), expected)
        for saved, restored in zip(model.get_weights(), loaded.get_weights()):
            np.testing.assert_array_equal(saved, restored)
        # Compiled as it was saved: evaluate gives the loss and the accuracy.
        assert len(loaded.evaluate(x, y, verbose=0)) == 2
    with zipfile.ZipFile(tmp_path / "model.keras") as archive:
        assert sorted(archive.namelist()) == ["config.json", "metadata.json", "model.weights.h5"]
        config = json.loads(archive.read("config.json"))
    assert config["class_name"] == "Sequential"
    assert [layer["class_name"] for layer in config["config"]["layers"]] == ["InputLayer", "Dense", "Dropout", "Dense"]
    assert config["compile_config"]["loss"] == "sparse_categorical_crossentropy"
    assert keras.models.load_model(tmp_path / "best.keras").predict(x[:1], verbose=0).shape == (1, 2)


def test_version_and_module_layout():
    assert strata.__version__
    assert keras.layers.Conv2D(8, 3).get_config()["kernel_size"] == 3


def test_fit_releases_the_gil():
    x = np.random.default_rng(0).normal(size=(8192, 256)).astype("float32")
    model = keras.Sequential([layers.Dense(512, activation="relu", input_shape=(256,)), layers.Dense(1)])
    model.compile("adam", "mse")
    ticks, done = [0], threading.Event()

    def count():
        while not done.is_set():
            ticks[0] += 1
            time.sleep(0.001)

    counter = threading.Thread(target=count)
    counter.start()
    started, fits = time.monotonic(), 0
    # Fit for at least half a second whatever the machine's speed: a fast one finishes an
    # epoch in well under 0.1 s.
    while time.monotonic() - started < 0.5:
        model.fit(x, x[:, :1], epochs=1, batch_size=32, verbose=0)
        fits += 1
    elapsed = time.monotonic() - started
    done.set()
    counter.join()
    # With the GIL held inside fit, the thread could tick only between the fit calls.
    assert ticks[0] > 100 + 2 * fits, (ticks, fits, elapsed)


def test_regression_and_classifier_metrics_as_keras_names_them():
    rng = np.random.default_rng(1)
    x = rng.normal(size=(256, 3)).astype("float32")
    y = (x @ np.array([1.5, -2.0, 0.5]) + 0.3).astype("float32")
    model = keras.Sequential([keras.Input((3,)), layers.Dense(1)])
    model.compile(keras.optimizers.Adam(0.05), "mse",
                  metrics=["mae", keras.metrics.RootMeanSquaredError(name="rmse")])
    history = model.fit(x, y, epochs=5, validation_split=0.25, verbose=0)
    assert {"loss", "mae", "rmse", "val_loss", "val_mae", "val_rmse"} <= set(history.history)
    results = model.evaluate(x, y, verbose=0, return_dict=True)
    assert list(results) == ["loss", "mae", "rmse"]
    errors = model.predict(x, verbose=0).ravel() - y
    np.testing.assert_allclose(results["mae"], np.abs(errors).mean(), rtol=1e-5)
    np.testing.assert_allclose(results["rmse"], np.sqrt((errors ** 2).mean()), rtol=1e-5)
    assert model.evaluate(x, y, verbose=0) == pytest.approx([results["loss"], results["mae"], results["rmse"]])

    labels = (x[:, 0] > 0).astype("int32")
    classifier = keras.Sequential([keras.Input((3,)), layers.Dense(1, activation="sigmoid")])
    classifier.compile("adam", "binary_crossentropy", metrics=["accuracy", keras.metrics.AUC(), "Precision"])
    classifier.fit(x, labels, epochs=3, verbose=0)
    assert list(classifier.evaluate(x, labels, verbose=0, return_dict=True)) == ["loss", "accuracy", "auc",
                                                                                 "precision"]
    with pytest.raises(NotImplementedError, match="AUC"):
        keras.metrics.AUC(curve="PR")


def test_a_lambda_of_arithmetic_and_activations_runs_as_strata_layers():
    x = np.random.default_rng(0).uniform(-2, 2, size=(5, 4)).astype(np.float32)
    # Sequential: x / 255.0 runs as one Rescaling named as the Lambda.
    model = keras.Sequential([keras.Input((4,)), layers.Lambda(lambda t: t / 255.0, name="scale")])
    np.testing.assert_allclose(model.predict(x, verbose=0), x / 255.0, rtol=1e-6)
    assert model.get_layer("scale") is not None
    # Functional: relu(2x - 1) as Rescaling then Activation; keras.activations too.
    inputs = keras.Input((4,))
    outputs = layers.Lambda(lambda t: keras.ops.relu(t * 2 - 1))(inputs)
    outputs = layers.Lambda(lambda t, k: keras.activations.sigmoid(k - t), arguments={"k": 0.5})(outputs)
    model = keras.Model(inputs, outputs)
    expected = 1 / (1 + np.exp(-(0.5 - np.maximum(2 * x - 1, 0))))
    np.testing.assert_allclose(model.predict(x, verbose=0), expected, rtol=1e-5, atol=1e-6)


def test_a_lambda_strata_cannot_run_names_the_layer_and_what_to_use():
    with pytest.raises(NotImplementedError, match=r"Lambda 'first'.*Rescaling"):
        layers.Lambda(lambda t: t[:, 0], name="first")
    with pytest.raises(NotImplementedError, match=r"Lambda 'square'.*Rescaling"):
        layers.Lambda(lambda t: t * t, name="square")
    with pytest.raises(NotImplementedError, match=r"keras.ops.mean"):
        keras.ops.mean


def test_layer_weights_exist_as_soon_as_the_model_knows_its_input_shape():
    """Keras builds a model whose input shape is known at once: a layer's weights can be read
    and set before the model is compiled or called, and a layer added to a built Sequential is
    built on the spot (the others keep their weights)."""
    inputs = keras.Input((4,))
    hidden = layers.Dense(3, name="hidden")(inputs)
    model = keras.Model(inputs, layers.Dense(2, name="out")(hidden))
    # A functional model lists its InputLayer first, as Keras 3.
    assert model.layers[0].get_weights() == []
    assert [w.shape for w in model.layers[1].get_weights()] == [(4, 3), (3,)]
    model.layers[2].set_weights([np.ones((3, 2), np.float32), np.zeros(2, np.float32)])
    np.testing.assert_array_equal(model.get_weights()[2], np.ones((3, 2), np.float32))
    assert len(model.layers[2].trainable_weights) == 2

    stack = keras.Sequential([keras.Input((4,)), layers.Dense(3)])
    first = stack.layers[0].get_weights()[0].copy()
    stack.add(layers.Dense(2, trainable=False))
    assert [w.shape for w in stack.layers[1].get_weights()] == [(3, 2), (2,)]
    np.testing.assert_array_equal(stack.layers[0].get_weights()[0], first)
    assert len(stack.trainable_weights) == 2 and len(stack.non_trainable_weights) == 2

    unbuilt = keras.Sequential([layers.Dense(3)])
    assert unbuilt.layers[0].get_weights() == []
    unbuilt.add(layers.Dense(2))
    unbuilt.build((None, 5))
    assert [w.shape for layer in unbuilt.layers for w in layer.get_weights()] == [(5, 3), (3,), (3, 2), (2,)]


def test_label_smoothing_is_kerass():
    """``CategoricalCrossentropy(label_smoothing=0.2)``: called on arrays it gives Keras 3.15's
    value; compiled, ``evaluate`` computes the same loss in Rust; the sparse loss refuses it."""
    y_true = np.array([[0, 1, 0], [0, 0, 1]], "float32")
    y_pred = np.array([[0.05, 0.95, 0], [0.1, 0.8, 0.1]], "float32")
    loss = keras.losses.CategoricalCrossentropy(label_smoothing=0.2)
    assert abs(float(loss(y_true, y_pred)) - 1.7413325309753418) < 1e-5
    binary = keras.losses.BinaryCrossentropy(label_smoothing=0.2)
    value = binary(np.array([[0, 1], [1, 0]], "float32"), np.array([[0.6, 0.4], [0.3, 0.7]], "float32"))
    assert abs(float(value) - 0.9974936842918396) < 1e-5
    with pytest.raises(NotImplementedError, match="label_smoothing"):
        keras.losses.SparseCategoricalCrossentropy(label_smoothing=0.1)

    model = keras.Sequential([keras.Input((4,)), layers.Dense(3, activation="softmax")])
    x = np.random.default_rng(0).uniform(-1, 1, (8, 4)).astype("float32")
    y = np.eye(3, dtype="float32")[np.arange(8) % 3]
    model.compile(optimizer="adam", loss=loss)
    evaluated = model.evaluate(x, y, verbose=0)
    assert abs(evaluated - float(loss(y, model.predict(x, verbose=0)))) < 1e-5
