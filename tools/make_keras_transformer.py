"""Writes tests/fixtures/keras/transformer_classifier{,_masked}.{keras,json}: a tiny Transformer
text classifier built with Keras 3's functional API (Embedding → MultiHeadAttention
self-attention → Add → LayerNormalization → Dense → GlobalAveragePooling1D → Dense), random
weights, and what Keras's `predict` returned for a fixed batch of token ids, for
tests/keras_import.rs to check `strata::io::load_model` against (issue #18). The `_masked`
model's Embedding has `mask_zero=True` and its ids end in padding, so the mask reaches the
attention and the pooling. Vocabulary 50, width 16, 10 steps. `attention_layers` has Keras's
dot-product `Attention(use_scale=True)` and `AdditiveAttention` over a masked embedding. Run with the Keras 3 venv:

    /tmp/kerasvenv/bin/python tools/make_keras_transformer.py
"""

import json
import os
from pathlib import Path

os.environ.setdefault("KERAS_BACKEND", "tensorflow")
os.environ.setdefault("TF_CPP_MIN_LOG_LEVEL", "3")

import keras  # noqa: E402
import numpy as np  # noqa: E402
from keras import layers  # noqa: E402

OUT = Path(__file__).resolve().parent.parent / "tests" / "fixtures" / "keras"
VOCABULARY, WIDTH, STEPS = 50, 16, 10


def classifier(name, mask_zero):
    inputs = keras.Input((STEPS,), name="tokens")
    x = layers.Embedding(VOCABULARY, WIDTH, mask_zero=mask_zero, name="embedding")(inputs)
    attention = layers.MultiHeadAttention(num_heads=2, key_dim=8, name="attention")(x, x)
    x = layers.LayerNormalization(epsilon=1e-6, name="norm")(layers.Add(name="residual")([x, attention]))
    x = layers.Dense(WIDTH, activation="relu", name="feed_forward")(x)
    x = layers.GlobalAveragePooling1D(name="pool")(x)
    outputs = layers.Dense(3, activation="softmax", name="classes")(x)
    return keras.Model(inputs, outputs, name=name)


def attention_layers():
    inputs = keras.Input((STEPS,), name="tokens")
    x = layers.Embedding(VOCABULARY, WIDTH, mask_zero=True, name="embedding")(inputs)
    x = layers.Attention(use_scale=True, name="dot")([x, x])
    x = layers.AdditiveAttention(name="additive")([x, x])
    x = layers.GlobalAveragePooling1D(name="pool")(x)
    outputs = layers.Dense(3, activation="softmax", name="classes")(x)
    return keras.Model(inputs, outputs, name="attention_layers")


def main():
    OUT.mkdir(parents=True, exist_ok=True)
    rng = np.random.default_rng(24)
    cases = [("transformer_classifier", False), ("transformer_classifier_masked", True), ("attention_layers", True)]
    for name, mask_zero in cases:
        model = attention_layers() if name == "attention_layers" else classifier(name, mask_zero)
        # Random everything (LayerNormalization's gamma and beta too), small enough that the
        # softmax stays away from 0 and 1.
        model.set_weights([rng.uniform(-0.5, 0.5, w.shape) for w in model.weights])
        ids = rng.integers(1, VOCABULARY, (4, STEPS))
        if mask_zero:
            # Padding at the end of three samples (one with none), as pad_sequences(padding="post").
            for row, real in enumerate([10, 7, 4, 1]):
                ids[row, real:] = 0
        x = ids.astype("float32")
        y = model.predict(x, verbose=0)
        fixture = {
            "input_shape": list(x.shape),
            "input": [float(v) for v in x.ravel()],
            "output_shape": list(y.shape),
            "output": [float(v) for v in y.ravel()],
        }
        model.save(OUT / f"{name}.keras")
        (OUT / f"{name}.json").write_text(json.dumps(fixture) + "\n")
        print(name, (OUT / f"{name}.keras").stat().st_size, "bytes")


if __name__ == "__main__":
    main()
