"""Writes tests/fixtures/attention/*.json: Keras 3's MultiHeadAttention on fixed inputs with
random weights (biases too), for tests/attention.rs to compare strata's layer against.

Each file holds the layer's config, its weights in Keras's order (query, key, value,
attention_output; kernel then bias), the call's inputs, and what Keras returned (the output,
and the attention scores). Run with the Keras 3 venv:

    /tmp/kerasvenv/bin/python tools/make_keras_attention.py
"""

import json
import os

os.environ.setdefault("KERAS_BACKEND", "tensorflow")
os.environ.setdefault("TF_CPP_MIN_LOG_LEVEL", "3")

import keras  # noqa: E402
import numpy as np  # noqa: E402

OUT = os.path.join(os.path.dirname(__file__), "..", "tests", "fixtures", "attention")
rng = np.random.default_rng(18)


def tensor(shape):
    return rng.normal(size=shape).astype("float32")


def case(name, layer_args, query, value, key=None, mask=None, causal=False):
    layer = keras.layers.MultiHeadAttention(**layer_args, name="mha")
    kwargs = {"return_attention_scores": True, "use_causal_mask": causal}
    if key is not None:
        kwargs["key"] = key
    if mask is not None:
        kwargs["attention_mask"] = mask
    layer(query, value, **kwargs)  # builds the layer
    layer.set_weights([0.5 * tensor(w.shape) for w in layer.weights])
    output, scores = layer(query, value, **kwargs)
    listed = lambda a: np.asarray(a, dtype="float32").reshape(-1).tolist()
    fixture = {
        "config": layer.get_config(),
        "use_causal_mask": causal,
        "weights": [{"name": w.path, "shape": list(w.shape), "values": listed(w.numpy())} for w in layer.weights],
        "inputs": {
            role: {"shape": list(t.shape), "values": listed(t)}
            for role, t in (("query", query), ("value", value), ("key", key), ("attention_mask", mask))
            if t is not None
        },
        "output": {"shape": list(output.shape), "values": listed(output)},
        "scores": {"shape": list(scores.shape), "values": listed(scores)},
    }
    with open(os.path.join(OUT, f"{name}.json"), "w") as f:
        json.dump(fixture, f)
    print(name, output.shape, scores.shape)


def main():
    os.makedirs(OUT, exist_ok=True)
    x = tensor((2, 4, 5))
    case("self_attention", {"num_heads": 2, "key_dim": 3}, x, x)
    case(
        "cross_attention",
        {"num_heads": 2, "key_dim": 3, "value_dim": 4, "output_shape": 6},
        tensor((2, 3, 5)),
        tensor((2, 4, 7)),
        key=tensor((2, 4, 6)),
    )
    case("causal", {"num_heads": 3, "key_dim": 2, "use_bias": False}, x, x, causal=True)
    mask = (rng.uniform(size=(2, 3, 4)) > 0.4).astype("float32")
    mask[:, :, 0] = 1.0  # every query attends to something
    case("explicit_mask", {"num_heads": 2, "key_dim": 4}, tensor((2, 3, 5)), tensor((2, 4, 5)), mask=mask)


if __name__ == "__main__":
    main()


def dot_attention():
    """Keras's Attention(use_scale=True) over a key and a value with a padding mask, scale 0.7."""
    layer = keras.layers.Attention(use_scale=True, name="attention")
    query, value, key = tensor((2, 3, 4)), tensor((2, 5, 3)), tensor((2, 5, 4))
    value_mask = np.ones((2, 5), dtype=bool)
    value_mask[1, 3:] = False
    call = lambda: layer([query, value, key], mask=[None, value_mask], return_attention_scores=True)
    call()
    layer.set_weights([np.array(0.7, dtype="float32")])
    output, scores = call()
    listed = lambda a: np.asarray(a, dtype="float32").reshape(-1).tolist()
    fixture = {
        "config": layer.get_config(),
        "inputs": {
            role: {"shape": list(t.shape), "values": listed(t)}
            for role, t in (("query", query), ("value", value), ("key", key), ("value_mask", value_mask))
        },
        "output": {"shape": list(output.shape), "values": listed(output)},
        "scores": {"shape": list(scores.shape), "values": listed(scores)},
    }
    with open(os.path.join(OUT, "dot_attention.json"), "w") as f:
        json.dump(fixture, f)
    print("dot_attention", output.shape, scores.shape)


if __name__ == "__main__":
    dot_attention()
