"""Models used as layers, as Keras's transfer-learning guide writes them: a base with branches
called on a tensor (``x = base(inputs, training=False)``) or first in a ``Sequential``, frozen
with ``base.trainable = False``, called twice (a Siamese encoder), saved and loaded."""

import numpy as np

import strata.keras as keras
from strata.keras import layers


def residual_base(rng, name="base"):
    """A base with branches (a skip connection), its weights drawn from `rng`."""
    pixels = keras.Input((6,), name=f"{name}_pixels")
    hidden = layers.Dense(6, activation="tanh", name=f"{name}_dense")(pixels)
    joined = layers.Add(name=f"{name}_skip")([pixels, hidden])
    base = keras.Model(pixels, layers.Dense(4, activation="relu", name=f"{name}_out")(joined), name=name)
    base.set_weights([rng.uniform(-1, 1, w.shape).astype("float32") for w in base.get_weights()])
    return base


def randomize(layer, rng):
    weights = [rng.uniform(-1, 1, w.shape).astype("float32") for w in layer.get_weights()]
    layer.set_weights(weights)
    return weights


def test_a_called_base_runs_as_its_layers_and_trains_frozen(tmp_path):
    rng = np.random.default_rng(0)
    base = residual_base(rng)
    x = rng.uniform(-1, 1, (5, 6)).astype("float32")
    features = np.asarray(base.predict(x, verbose=0))
    inputs = keras.Input((6,), name="image")
    model = keras.Model(inputs, layers.Dense(2, name="head")(base(inputs, training=False)), name="outer")
    model.count_params()
    kernel, bias = randomize(model.get_layer("head"), rng)
    np.testing.assert_allclose(model.predict(x, verbose=0), features @ kernel + bias, atol=1e-5)
    assert [layer.name for layer in model.layers] == ["image", "base", "head"]
    assert model.count_params() == 42 + 28 + 10

    base.trainable = False
    model.compile("adam", "mse")
    before = [np.array(w) for w in model.get_weights()]
    model.fit(x, rng.uniform(-1, 1, (5, 2)).astype("float32"), epochs=2, verbose=0)
    changed = [not np.array_equal(a, b) for a, b in zip(before, model.get_weights())]
    assert changed == [False] * 4 + [True] * 2
    lines = []
    model.summary(print_fn=lines.append)
    assert any("Nested model: base (Functional)" in line and "frozen" in line for line in lines), lines

    for name in ["m.keras", "m.safetensors"]:
        model.save(tmp_path / name)
        again = keras.models.load_model(tmp_path / name)
        np.testing.assert_allclose(again.predict(x, verbose=0), model.predict(x, verbose=0), atol=1e-6)


def test_a_base_with_branches_comes_first_in_a_sequential():
    rng = np.random.default_rng(1)
    for loaded in [False, True]:
        base = residual_base(rng)
        if loaded:
            # A base read from a file (its layers made from the file's config).
            import tempfile, os

            path = os.path.join(tempfile.mkdtemp(), "base.keras")
            base.save(path)
            base = keras.models.load_model(path)
        x = rng.uniform(-1, 1, (5, 6)).astype("float32")
        features = np.asarray(base.predict(x, verbose=0))
        model = keras.Sequential([base, layers.Dense(3, activation="softmax", name="classes")])
        model.count_params()
        kernel, bias = randomize(model.get_layer("classes"), rng)
        logits = features @ kernel + bias
        expected = np.exp(logits - logits.max(1, keepdims=True))
        expected /= expected.sum(1, keepdims=True)
        np.testing.assert_allclose(model.predict(x, verbose=0), expected, atol=1e-5)
        assert [layer.name for layer in model.layers] == ["base", "classes"]


def test_a_siamese_encoder_shares_its_weights():
    rng = np.random.default_rng(2)
    encoder = residual_base(rng, "encoder")
    left, right = keras.Input((6,), name="left"), keras.Input((6,), name="right")
    distance = layers.Subtract(name="distance")([encoder(left), encoder(right)])
    model = keras.Model([left, right], layers.Dense(1, name="score")(distance))
    assert model.count_params() == 70 + 5
    kernel, bias = randomize(model.get_layer("score"), rng)
    a, b = (rng.uniform(-1, 1, (5, 6)).astype("float32") for _ in range(2))
    expected = (np.asarray(encoder.predict(a, verbose=0)) - np.asarray(encoder.predict(b, verbose=0))) @ kernel + bias
    np.testing.assert_allclose(model.predict([a, b], verbose=0), expected, atol=1e-5)


def test_a_base_with_branches_after_other_layers_is_refused_by_name():
    rng = np.random.default_rng(3)
    base = residual_base(rng)
    try:
        keras.Sequential([keras.Input((6,)), layers.Dense(6), base])
    except NotImplementedError as error:
        assert "'base' has branches" in str(error) and "first layer" in str(error)
    else:
        raise AssertionError("a branched model after other layers was accepted")


def test_an_augmentation_sequential_without_an_input_is_called_on_a_tensor():
    # TensorFlow's tutorial: data_augmentation = Sequential([RandomFlip(...), RandomRotation(...)]),
    # x = data_augmentation(inputs); the layers act in training only.
    rng = np.random.default_rng(4)
    augmentation = keras.Sequential([layers.RandomFlip("horizontal"), layers.RandomRotation(0.2)])
    inputs = keras.Input((4, 4, 3))
    outputs = layers.Dense(2, name="head")(layers.Flatten()(augmentation(inputs)))
    model = keras.Model(inputs, outputs)
    model.count_params()
    kernel, bias = randomize(model.get_layer("head"), rng)
    x = rng.uniform(0, 1, (3, 4, 4, 3)).astype("float32")
    np.testing.assert_allclose(model.predict(x, verbose=0), x.reshape(3, -1) @ kernel + bias, atol=1e-5)
    model.compile("adam", "mse")
    history = model.fit(x, rng.uniform(-1, 1, (3, 2)).astype("float32"), epochs=1, verbose=0)
    assert np.isfinite(history.history["loss"][0])
