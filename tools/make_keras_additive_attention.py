"""Writes tests/fixtures/attention/additive_attention{,_causal}.json: Keras 3's
AdditiveAttention (Bahdanau) on fixed inputs, for tests/additive_attention.rs. The first has a
learned scale (set to fixed values), a key other than the value and a padding mask on the
value; the second no scale and a causal mask. Each holds the config, the scale, the inputs,
and what Keras returned (output and attention scores). Run with the Keras 3 venv:

    /tmp/kerasvenv/bin/python tools/make_keras_additive_attention.py
"""

import json
import os

os.environ.setdefault("KERAS_BACKEND", "tensorflow")
os.environ.setdefault("TF_CPP_MIN_LOG_LEVEL", "3")

import keras  # noqa: E402
import numpy as np  # noqa: E402

OUT = os.path.join(os.path.dirname(__file__), "..", "tests", "fixtures", "attention")
rng = np.random.default_rng(24)


def tensor(shape):
    return rng.normal(size=shape).astype("float32")


def listed(a):
    return np.asarray(a, dtype="float32").reshape(-1).tolist()


def write(name, layer, inputs, output, scores):
    fixture = {
        "config": layer.get_config(),
        "weights": [{"shape": list(w.shape), "values": listed(w.numpy())} for w in layer.weights],
        "inputs": {role: {"shape": list(t.shape), "values": listed(t)} for role, t in inputs},
        "output": {"shape": list(output.shape), "values": listed(output)},
        "scores": {"shape": list(scores.shape), "values": listed(scores)},
    }
    with open(os.path.join(OUT, f"{name}.json"), "w") as f:
        json.dump(fixture, f)
    print(name, output.shape, scores.shape)


def masked_with_key():
    layer = keras.layers.AdditiveAttention(name="additive_attention")
    query, value, key = tensor((2, 3, 4)), tensor((2, 5, 3)), tensor((2, 5, 4))
    value_mask = np.ones((2, 5), dtype=bool)
    value_mask[1, 3:] = False
    call = lambda: layer([query, value, key], mask=[None, value_mask], return_attention_scores=True)
    call()
    layer.set_weights([tensor((4,))])
    output, scores = call()
    inputs = (("query", query), ("value", value), ("key", key), ("value_mask", value_mask))
    write("additive_attention", layer, inputs, output, scores)


def causal_without_scale():
    layer = keras.layers.AdditiveAttention(use_scale=False, name="additive_attention")
    query, value, key = tensor((2, 4, 3)), tensor((2, 4, 2)), tensor((2, 4, 3))
    output, scores = layer([query, value, key], use_causal_mask=True, return_attention_scores=True)
    inputs = (("query", query), ("value", value), ("key", key))
    write("additive_attention_causal", layer, inputs, output, scores)


if __name__ == "__main__":
    masked_with_key()
    causal_without_scale()
