"""Details a Keras program reads back from its model and callbacks, with the values Keras 3
gives (checked against Keras 3.15)."""

import numpy as np
import pytest

import strata.keras as keras
from strata.keras import layers


def test_a_functional_model_lists_its_input_layers_in_keras_order(tmp_path):
    inputs = keras.Input((4,), name="in")
    hidden = layers.Dense(3, name="hid")(inputs)
    model = keras.Model(inputs, layers.Dense(1, name="o")(hidden))
    assert [layer.name for layer in model.layers] == ["in", "hid", "o"]
    assert model.layers[1].name == "hid" and model.get_layer(index=1).name == "hid"
    assert type(model.layers[0]).__name__ == "InputLayer" and model.layers[0].get_weights() == []
    assert [w.shape for w in model.layers[1].get_weights()] == [(4, 3), (3,)]
    model.trainable = False
    assert not model.trainable and not model.layers[1].trainable
    model.trainable = True
    # Per-layer weights line up with the model's list, as Keras's.
    assert [w.shape for layer in model.layers for w in layer.get_weights()] == \
        [w.shape for w in model.get_weights()]

    # Keras 3's order: deepest first, one depth in the order a walk from the outputs meets it
    # (Keras 3.15: ['a', 'f', 'b', 'e', 'g', 'ad'] and ['b', 'a', 'd1', 'd2', 'c']).
    a, b = keras.Input((3,), name="a"), keras.Input((3,), name="b")
    left = layers.Dense(2, name="e")(layers.Dense(2, name="f")(a))
    added = layers.Add(name="ad")([left, layers.Dense(2, name="g")(b)])
    assert [layer.name for layer in keras.Model([a, b], added).layers] == ["a", "f", "b", "e", "g", "ad"]
    joined = layers.Concatenate(name="c")([layers.Dense(2, name="d1")(b), layers.Dense(2, name="d2")(a)])
    two = keras.Model([a, b], joined)
    assert [layer.name for layer in two.layers] == ["b", "a", "d1", "d2", "c"]
    assert [w.shape for layer in two.layers for w in layer.get_weights()] == [w.shape for w in two.get_weights()]

    # A Sequential model leaves its InputLayer out; a loaded model lists what its kind lists.
    stack = keras.Sequential([keras.Input((4,)), layers.Dense(2, name="only")])
    assert [layer.name for layer in stack.layers] == ["only"]
    model.save(tmp_path / "f.keras")
    stack.save(tmp_path / "s.keras")
    assert [layer.name for layer in keras.models.load_model(tmp_path / "f.keras").layers] == ["in", "hid", "o"]
    assert [layer.name for layer in keras.models.load_model(tmp_path / "s.keras").layers] == ["only"]


def test_calling_a_model_with_training_true_is_refused_not_ignored():
    model = keras.Sequential([keras.Input((4,)), layers.Dropout(0.9)])
    x = np.ones((2, 4), "float32")
    np.testing.assert_array_equal(np.asarray(model(x)), x)
    np.testing.assert_array_equal(np.asarray(model(x, training=False)), x)
    with pytest.raises(NotImplementedError, match="training=True"):
        model(x, training=True)
    inputs = keras.Input((4,))
    with pytest.raises(NotImplementedError, match="training=True"):
        model(inputs, training=True)


def test_inputs_declared_with_numeric_dtypes_run_in_float32():
    assert keras.Input(shape=(10,), dtype="int32").shape == (None, 10)
    for dtype in ["int32", "int64", "float64", "uint8", "bool", np.int16, np.dtype("float16")]:
        tensor = keras.Input(shape=(3,), dtype=dtype)
        assert tensor.dtype == np.dtype(dtype).name
    assert keras.Input(shape=(3,)).dtype == "float32"
    for dtype in ["string", "complex64", "no_such_type"]:
        with pytest.raises(NotImplementedError, match="dtype="):
            keras.Input(shape=(3,), dtype=dtype)
    # Token ids as int32, as keras.io's text programs declare them.
    tokens = keras.Input(shape=(5,), dtype="int32")
    pooled = layers.GlobalAveragePooling1D()(layers.Embedding(20, 4)(tokens))
    model = keras.Model(tokens, layers.Dense(1)(pooled))
    model.compile(optimizer="adam", loss="mse")
    ids = np.arange(10, dtype="int32").reshape(2, 5)
    assert model.predict(ids, verbose=0).shape == (2, 1)
    model.fit(ids, np.zeros((2, 1)), epochs=1, verbose=0)
    # Layers other than the input still compute in float32 only.
    with pytest.raises(NotImplementedError, match="float64"):
        layers.Dense(2, dtype="float64")


def test_the_packages_activation_functions_are_layer_activations():
    import strata as tf

    x = np.random.default_rng(0).normal(size=(3, 4)).astype("float32")
    for function, name in [(tf.nn.relu, "relu"), (tf.nn.softmax, "softmax"), (tf.nn.sigmoid, "sigmoid"),
                           (tf.nn.tanh, "tanh"), (tf.nn.leaky_relu, "leaky_relu"), (tf.nn.gelu, "gelu"),
                           (tf.nn.silu, "silu"), (keras.activations.relu, "relu"), (keras.ops.relu, "relu"),
                           (keras.ops.exp, "exponential"), (tf.keras.activations.softmax, "softmax")]:
        model = keras.Sequential([keras.Input((4,)), layers.Dense(3, activation=function)])
        assert model.count_params() == 15
        assert model.get_config()["config"]["layers"][1]["config"]["activation"] == name
        by_name = keras.Sequential([keras.Input((4,)), layers.Dense(3, activation=name)])
        by_name.set_weights(model.get_weights())
        np.testing.assert_allclose(model.predict(x, verbose=0), by_name.predict(x, verbose=0), atol=1e-6)
    with pytest.raises(NotImplementedError, match="'my_activation'"):
        def my_activation(t):
            return t
        keras.Sequential([keras.Input((4,)), layers.Dense(3, activation=my_activation)]).count_params()


def test_the_lowercase_merge_functions_make_the_merge_layers():
    a, b = keras.Input((3,), name="a"), keras.Input((3,), name="b")
    x = np.arange(6, dtype="float32").reshape(2, 3)
    y = np.ones((2, 3), "float32")
    expected = {"add": x + y, "subtract": x - y, "multiply": x * y, "average": (x + y) / 2,
                "maximum": np.maximum(x, y), "minimum": np.minimum(x, y)}
    for name, value in expected.items():
        merged = getattr(layers, name)([a, b], name=f"m_{name}")
        model = keras.Model([a, b], merged)
        assert model.layers[-1].name == f"m_{name}"
        np.testing.assert_allclose(model.predict([x, y], verbose=0), value)
    joined = keras.Model([a, b], layers.concatenate([a, b], axis=-1))
    assert type(joined.layers[-1]).__name__ == "Concatenate"
    np.testing.assert_allclose(joined.predict([x, y], verbose=0), np.concatenate([x, y], axis=-1))
    with pytest.raises(NotImplementedError, match="Dot"):
        layers.dot([a, b], axes=1)


def test_model_shapes_metric_names_and_layer_attributes():
    model = keras.Sequential([keras.Input((4,)), layers.Dense(3, activation="relu", name="d"),
                              layers.Dense(2, name="e")])
    assert (model.input_shape, model.output_shape) == ((None, 4), (None, 2))
    assert model.metrics_names == []
    model.compile(optimizer="adam", loss="mse")
    assert model.metrics_names == ["loss"]
    model.compile(optimizer="adam", loss="mse", metrics=["mae"])
    assert model.metrics_names == ["loss", "compile_metrics"]  # Keras 3.15's names
    dense = model.layers[0]
    assert dense.units == 3 and dense.use_bias is True and dense.activation is keras.activations.relu
    assert model.layers[1].activation is keras.activations.linear
    with pytest.raises(AttributeError):
        dense.no_such_attribute
    unbuilt = keras.Sequential([layers.Dense(3)])
    with pytest.raises(AttributeError, match="no defined input shape"):
        unbuilt.input_shape
    with pytest.raises(NotImplementedError, match="model.input"):
        model.input

    a, b = keras.Input((3,), name="a"), keras.Input((5,), name="b")
    two = keras.Model([a, b], [layers.Dense(2)(a), layers.Dense(1)(b)])
    assert two.input_shape == [(None, 3), (None, 5)] and two.output_shape == [(None, 2), (None, 1)]
    assert two.input == [a, b] and isinstance(two.output, list)


def test_sequential_pop_keeps_the_other_layers_weights_and_compile():
    model = keras.Sequential([keras.Input((4,)), layers.Dense(3, name="d"), layers.Dense(2, name="e")])
    model.compile(optimizer="adam", loss="mse")
    before = model.layers[0].get_weights()
    popped = model.pop()
    assert popped.name == "e" and [layer.name for layer in model.layers] == ["d"]
    assert model.output_shape == (None, 3) and model.count_params() == 15
    for old, new in zip(before, model.layers[0].get_weights()):
        np.testing.assert_array_equal(old, new)
    model.fit(np.ones((4, 4)), np.ones((4, 3)), epochs=1, verbose=0)
    model.add(layers.Dense(1, name="f"))
    assert model.output_shape == (None, 1)
    unbuilt = keras.Sequential([layers.Dense(3), layers.Dense(2)])
    unbuilt.pop()
    assert len(unbuilt.layers) == 1


def test_a_feature_extractor_shares_the_trained_weights():
    """keras.io's recipe ``keras.Model(model.input, model.get_layer("hid").output)``: the layers
    are the trained model's, and so are their weights (Keras shares them)."""
    rng = np.random.default_rng(0)
    x = rng.normal(size=(64, 5)).astype("float32")
    inputs = keras.Input((5,), name="in")
    hidden = layers.Dense(8, activation="relu", name="hid")(inputs)
    model = keras.Model(inputs, layers.Dense(1, name="o")(hidden))
    model.compile(optimizer="adam", loss="mse")
    model.fit(x, x[:, :1], epochs=2, verbose=0)
    assert model.layers[1].output is not None and model.input is inputs
    features = keras.Model(model.input, model.get_layer("hid").output)
    kernel, bias = model.get_layer("hid").get_weights()
    np.testing.assert_allclose(features.predict(x, verbose=0), np.maximum(x @ kernel + bias, 0), atol=1e-5)
    # Trained further, the model's hidden layer is the extractor's too, and the other way round.
    model.fit(x, x[:, :1], epochs=2, verbose=0)
    kernel, bias = model.get_layer("hid").get_weights()
    np.testing.assert_allclose(features.predict(x, verbose=0), np.maximum(x @ kernel + bias, 0), atol=1e-5)
    features.compile(optimizer="sgd", loss="mse")
    features.fit(x, np.zeros((64, 8)), epochs=1, verbose=0)
    np.testing.assert_array_equal(features.get_weights()[0], model.get_layer("hid").get_weights()[0])
    np.testing.assert_array_equal(features.get_weights()[0], model.get_weights()[0])


def test_early_stopping_answers_keras_attributes_after_fit():
    # Keras 3.15's values for these epochs' logs (its callback driven by hand).
    cases = [(dict(patience=2), [1.0, 0.8, 0.85, 0.9], "val_loss", (3, 0.8, 2, 1)),
             (dict(patience=1, monitor="val_accuracy", min_delta=0.01, mode="max"), [0.5, 0.6, 0.605],
              "val_accuracy", (2, 0.6, 1, 1)),
             (dict(patience=0, baseline=0.5), [0.9, 0.8], "val_loss", (0, 0.8, 2, 1)),
             (dict(patience=5), [0.9, 0.8], "val_loss", (0, 0.8, 0, 1))]
    for arguments, values, monitor, expected in cases:
        stop = keras.callbacks.EarlyStopping(**arguments)
        assert (stop.stopped_epoch, stop.best, stop.wait) == (0, None, 0)
        stop._after_fit(list(range(len(values))), [{monitor: v, "loss": 1.0} for v in values])
        assert (stop.stopped_epoch, stop.best, stop.wait, stop.best_epoch) == pytest.approx(expected)

    rng = np.random.default_rng(0)
    x = rng.normal(size=(64, 3)).astype("float32")
    model = keras.Sequential([keras.Input((3,)), layers.Dense(1)])
    model.compile(optimizer=keras.optimizers.SGD(1e-9), loss="mse")
    stop = keras.callbacks.EarlyStopping(monitor="loss", patience=1, min_delta=1.0)
    history = model.fit(x, np.ones((64, 1)), epochs=10, callbacks=[stop], verbose=0)
    # Nothing improves by 1.0: Keras stops at the second epoch (index 1).
    assert len(history.epoch) == 2 and stop.stopped_epoch == 1 and stop.wait == 1
    assert stop.best == pytest.approx(history.history["loss"][0])


def test_every_requested_metric_keeps_its_keras_name():
    rng = np.random.default_rng(0)
    x = rng.normal(size=(60, 4)).astype("float32")
    y = keras.utils.to_categorical(rng.integers(0, 3, 60), 3)
    model = keras.Sequential([keras.Input((4,)), layers.Dense(3, activation="softmax")])
    model.compile(optimizer="adam", loss="categorical_crossentropy",
                  metrics=["accuracy", "top_k_categorical_accuracy", keras.metrics.CategoricalAccuracy(name="cat_acc")])
    history = model.fit(x, y, epochs=1, validation_split=0.2, verbose=0)
    assert sorted(history.history) == ["accuracy", "cat_acc", "loss", "top_k_categorical_accuracy", "val_accuracy",
                                       "val_cat_acc", "val_loss", "val_top_k_categorical_accuracy"]
    assert history.history["accuracy"] == history.history["cat_acc"]
    results = model.evaluate(x, y, verbose=0, return_dict=True)
    assert sorted(results) == ["accuracy", "cat_acc", "loss", "top_k_categorical_accuracy"]
    # Keras's order: the loss, then the metrics as compile listed them.
    assert list(results) == ["loss", "accuracy", "top_k_categorical_accuracy", "cat_acc"]
    assert model.evaluate(x, y, verbose=0) == list(results.values())
    with pytest.raises(NotImplementedError, match="one accuracy per output"):
        model.compile(optimizer="adam", loss="categorical_crossentropy", metrics=["accuracy", "binary_accuracy"])
    with pytest.raises(NotImplementedError, match="one accuracy per output"):
        model.compile(optimizer="adam", loss="mse", metrics=["binary_accuracy", "categorical_accuracy"])


def test_callbacks_see_the_logs_and_params_keras_gives_them():
    # Keras 3.15 on this program: params {'verbose': 0, 'epochs': 1, 'steps': 3} and epoch logs
    # {'accuracy', 'loss', 'val_accuracy', 'val_loss'} in that order, no learning rate.
    x = np.random.default_rng(0).random((64, 4)).astype("float32")
    y = (x.sum(1) > 2).astype("int32")
    model = keras.Sequential([keras.Input((4,)), layers.Dense(2, activation="softmax")])
    model.compile("adam", "sparse_categorical_crossentropy", metrics=[keras.metrics.SparseCategoricalAccuracy(name="acc")])
    seen = {}

    class Record(keras.callbacks.Callback):
        def on_epoch_end(self, epoch, logs=None):
            seen["epoch"] = list(logs)
            seen["params"] = dict(self.params)

    history = model.fit(x, y, epochs=1, batch_size=16, verbose=0, validation_split=0.25, callbacks=[Record()])
    assert seen["params"] == {"verbose": 0, "epochs": 1, "steps": 3}
    assert seen["epoch"] == ["acc", "loss", "val_acc", "val_loss"]
    assert list(history.history) == ["acc", "loss", "val_acc", "val_loss"]
    # A learning-rate callback adds the rate to the logs, as Keras's do.
    schedule = keras.callbacks.LearningRateScheduler(lambda epoch, rate: rate)
    model.fit(x, y, epochs=1, batch_size=16, verbose=0, callbacks=[schedule, Record()])
    assert seen["epoch"] == ["acc", "learning_rate", "loss"]


def test_statistics_adapted_before_the_model_is_built_are_its_weights():
    # TensorFlow's regression tutorial: adapt, then the layer in a model with an Input. Keras
    # 3.15: 11 weights, the layer's three weights (3,), (3,), () and these predictions.
    x = np.arange(12, dtype="float32").reshape(4, 3) ** 1.5
    norm = layers.Normalization(axis=-1)
    norm.adapt(x)
    model = keras.Sequential([keras.Input((3,)), norm, layers.Dense(1, kernel_initializer="ones")])
    assert model.count_params() == 11
    assert [w.shape for w in norm.get_weights()] == [(3,), (3,), ()]
    np.testing.assert_allclose(norm.get_weights()[0], x.mean(0), rtol=1e-6)
    np.testing.assert_allclose(np.asarray(norm.variance), x.var(0), rtol=1e-5)
    np.testing.assert_allclose(model.predict(x, verbose=0).ravel(), [-3.5568, -1.7844, 0.9567, 4.3845], atol=1e-3)
    assert len(model.get_weights()) == 5


def test_to_categorical_gives_keras_s_float64_rows():
    one_hot = keras.utils.to_categorical(np.array([[2], [0]]), 3)
    assert one_hot.dtype == np.float64 and one_hot.tolist() == [[0, 0, 1], [1, 0, 0]]
