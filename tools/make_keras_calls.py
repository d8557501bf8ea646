"""Writes tests/fixtures/keras/calls/: a small functional model whose layers are called with
Keras's call arguments besides their inputs, random weights, and what Keras's `predict` returned
for a fixed batch, for tests/keras_calls.rs to check `strata::io::import_keras_file` against:

- `MultiHeadAttention(x, x, use_causal_mask=True)`;
- `MultiHeadAttention(query=..., value=..., key=..., attention_mask=mask)`, every argument by
  keyword, the mask an input of the model;
- `Attention([q, v], use_causal_mask=True)`.

Written as a `.keras` archive by Keras 3 (calls_k3.keras: `{"args": [...], "kwargs": {...}}`
in config.json; Keras 3's legacy `.h5` writes its model_config alike), and as a legacy `.h5` by
tf.keras 2 (calls_k2.h5: the keyword arguments as the fourth element of each inbound
reference), each with NAME.json beside it ({"inputs", "outputs"}: shapes and values). Run by
hand with a Python holding TensorFlow, Keras 3 and tf_keras:

    /tmp/tfvenv/bin/python tools/make_keras_calls.py             # calls_k3.keras
    /tmp/tfvenv/bin/python tools/make_keras_calls.py --tf-keras  # calls_k2.h5
"""

import json
import os
import pathlib
import sys

os.environ.setdefault("TF_CPP_MIN_LOG_LEVEL", "3")

TF_KERAS = "--tf-keras" in sys.argv
if TF_KERAS:
    import tf_keras as keras  # noqa: E402
else:
    import keras  # noqa: E402
import numpy as np  # noqa: E402

OUT = pathlib.Path(__file__).resolve().parent.parent / "tests" / "fixtures" / "keras" / "calls"
layers = keras.layers
STEPS, WIDTH = 5, 4


def model():
    x = keras.Input((STEPS, WIDTH), name="x")
    mask = keras.Input((STEPS, STEPS), name="mask")
    causal = layers.MultiHeadAttention(2, 3, name="causal")(x, x, use_causal_mask=True)
    key = layers.Dense(3, name="key_projection")(x)
    keyword = layers.MultiHeadAttention(1, 2, name="keyword")
    masked = keyword(query=causal, value=x, key=key, attention_mask=mask)
    outputs = layers.Attention(name="dot_causal")([masked, x], use_causal_mask=True)
    return keras.Model([x, mask], outputs, name="calls")


def main():
    OUT.mkdir(parents=True, exist_ok=True)
    rng = np.random.default_rng(41)
    m = model()
    m.set_weights([rng.uniform(-0.8, 0.8, w.shape) for w in m.get_weights()])
    x = rng.normal(size=(3, STEPS, WIDTH)).astype("float32")
    mask = (rng.random((3, STEPS, STEPS)) > 0.3).astype("float32")
    mask[:, :, 0] = 1  # every query sees at least one step
    y = m.predict([x, mask], verbose=0)
    tensor = lambda t: {"shape": list(t.shape), "values": [float(v) for v in np.ravel(t)]}  # noqa: E731
    fixture = {"inputs": [tensor(x), tensor(mask)], "outputs": [tensor(y)]}
    names = ["calls_k2.h5"] if TF_KERAS else ["calls_k3.keras"]
    for name in names:
        m.save(OUT / name)
        stem = name.split(".")[0]
        (OUT / f"{stem}.json").write_text(json.dumps(fixture) + "\n")
        print(name, (OUT / name).stat().st_size, "bytes")


if __name__ == "__main__":
    main()
