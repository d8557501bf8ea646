"""``keras.applications``: the architectures built by strata with Keras's arguments, Keras's
weight files loaded into them, each family's ``preprocess_input`` and ``decode_predictions``,
and the transfer-learning recipe of Keras's guide on a built base."""

import gzip
import json
import pathlib
import shutil

import numpy as np
import pytest

import strata.keras as keras
from strata.keras import layers

FIXTURES = pathlib.Path(__file__).resolve().parents[2] / "tests" / "fixtures" / "keras" / "applications"


def small_v3(tmp_path, **kwargs):
    """keras.applications.MobileNetV3Small as tests/fixtures/keras/applications/
    mobilenetv3small_min.* was made (Keras 3's save_weights of it), and the fixture's batch."""
    weights = tmp_path / "mobilenetv3small_min.weights.h5"
    with gzip.open(FIXTURES / "mobilenetv3small_min.weights.h5.gz") as packed, open(weights, "wb") as out:
        shutil.copyfileobj(packed, out)
    fixture = json.loads((FIXTURES / "mobilenetv3small_min.json").read_text())
    x = np.array(fixture["input"], "float32").reshape(fixture["input_shape"])
    y = np.array(fixture["output"], "float32").reshape(fixture["output_shape"])
    base = keras.applications.MobileNetV3Small(input_shape=(32, 32, 3), alpha=0.35, minimalistic=True,
                                               include_top=False, pooling="avg", weights=weights, **kwargs)
    return base, x, y


def test_an_application_with_a_keras_weights_file_predicts_as_keras(tmp_path):
    base, x, y = small_v3(tmp_path)
    np.testing.assert_allclose(base.predict(x, verbose=0), y, atol=1e-4)
    assert base.name == "MobileNetV3Small"
    assert keras.applications.mobilenet_v3.MobileNetV3Small is keras.applications.MobileNetV3Small


def test_the_transfer_learning_recipe_trains_the_head_only(tmp_path):
    base, x, _ = small_v3(tmp_path, name="base")
    base.trainable = False
    inputs = keras.Input((32, 32, 3))
    features = base(inputs, training=False)
    outputs = layers.Dense(3, activation="softmax", name="head")(layers.Dropout(0.2)(features))
    model = keras.Model(inputs, outputs)
    model.compile(optimizer="adam", loss="sparse_categorical_crossentropy", metrics=["accuracy"])
    # Keras's counts: the head's kernel and bias train; the base's weights and every
    # BatchNormalization's moving statistics do not.
    assert [w.shape for w in model.trainable_weights] == [(192, 3), (3,)]
    assert len(model.non_trainable_weights) == len(base.get_weights())
    norm = next(layer for layer in base.layers if type(layer).__name__ == "BatchNormalization")
    assert (len(norm.trainable_weights), len(norm.non_trainable_variables)) == (0, 4)
    base.trainable = True
    assert (len(norm.trainable_weights), len(norm.non_trainable_weights)) == (2, 2)
    base.trainable = False
    before = {layer.name: [np.array(w) for w in layer.get_weights()] for layer in base.layers}
    head_before = [np.array(w) for w in model.get_layer("head").get_weights()]
    model.fit(x, np.arange(len(x)) % 3, epochs=2, verbose=0)
    for layer in base.layers:
        for old, new in zip(before[layer.name], layer.get_weights()):
            np.testing.assert_array_equal(old, new, err_msg=layer.name)
    assert all(not np.array_equal(a, b) for a, b in zip(head_before, model.get_layer("head").get_weights()))
    lines = []
    model.summary(print_fn=lines.append)
    assert any("Nested model: base" in line for line in lines), lines


def test_imagenet_weights_come_from_kerass_cache_or_the_error_names_the_file(tmp_path, monkeypatch):
    monkeypatch.setenv("KERAS_HOME", str(tmp_path))
    monkeypatch.setenv("HOME", str(tmp_path))
    with pytest.raises(OSError, match="mobilenet_v2_weights_tf_dim_ordering_tf_kernels_0.35_96_no_top.h5"):
        keras.applications.MobileNetV2(input_shape=(96, 96, 3), alpha=0.35, include_top=False)
    model = keras.applications.MobileNetV2(input_shape=(96, 96, 3), alpha=0.35, include_top=False, weights=None)
    assert model.count_params() == 410208
    with pytest.raises(NotImplementedError, match="input_tensor"):
        keras.applications.ResNet50(weights=None, input_tensor=keras.Input((64, 64, 3)))


def test_preprocess_input_and_decode_predictions_follow_keras():
    pixels = np.array([[[[0.0, 127.5, 255.0]]]], "float32")
    np.testing.assert_allclose(keras.applications.mobilenet_v2.preprocess_input(pixels), [[[[-1, 0, 1]]]])
    np.testing.assert_allclose(keras.applications.resnet50.preprocess_input(pixels),
                               [[[[255 - 103.939, 127.5 - 116.779, 0 - 123.68]]]], rtol=1e-6)
    np.testing.assert_allclose(keras.applications.densenet.preprocess_input(pixels),
                               [[[[(0 - 0.485) / 0.229, (0.5 - 0.456) / 0.224, (1 - 0.406) / 0.225]]]], rtol=1e-6)
    np.testing.assert_array_equal(keras.applications.efficientnet.preprocess_input(pixels), pixels)
    preds = np.zeros((1, 1000), "float32")
    preds[0, 281], preds[0, 285] = 0.7, 0.2
    decoded = keras.applications.imagenet_utils.decode_predictions(preds, top=2)
    assert [(wnid, name) for wnid, name, _ in decoded[0]] == [("n02123045", "tabby"), ("n02124075", "Egyptian_cat")]
    assert decoded[0][0][2] == pytest.approx(0.7)


def test_preprocess_input_on_a_symbolic_tensor_is_the_layers_that_compute_it():
    rng = np.random.default_rng(0)
    pixels = rng.uniform(0, 255, (2, 4, 4, 3)).astype("float32")
    for family in ["mobilenet_v2", "densenet"]:
        module = getattr(keras.applications, family)
        inputs = keras.Input((4, 4, 3))
        model = keras.Model(inputs, module.preprocess_input(inputs))
        np.testing.assert_allclose(model.predict(pixels, verbose=0), module.preprocess_input(pixels),
                                   rtol=1e-5, atol=1e-5, err_msg=family)
    inputs = keras.Input((4, 4, 3))
    assert keras.applications.efficientnet.preprocess_input(inputs) is inputs
    with pytest.raises(NotImplementedError, match="caffe"):
        keras.applications.resnet50.preprocess_input(inputs)
