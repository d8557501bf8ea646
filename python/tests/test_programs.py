"""The classic Keras programs, written as a Keras user writes them with the one changed import,
each reaching the accuracy its Rust counterpart asserts."""

import numpy as np
import pytest

import strata.keras as keras
from strata.keras import layers


def test_mlp_sparse_labels_adam(mnist):
    (x_train, y_train), (x_test, y_test) = mnist
    model = keras.Sequential([
        keras.Input(shape=(28, 28)),
        layers.Flatten(),
        layers.Dense(128, activation="relu"),
        layers.Dense(10, activation="softmax"),
    ])
    model.compile(optimizer="adam", loss="sparse_categorical_crossentropy", metrics=["accuracy"])
    history = model.fit(x_train, y_train, epochs=2, batch_size=32, verbose=0)
    assert sorted(history.history) == ["accuracy", "loss"]
    assert history.history["loss"][1] < history.history["loss"][0]
    loss, accuracy = model.evaluate(x_test, y_test, verbose=0)
    assert accuracy > 0.95, accuracy
    predictions = model.predict(x_test[:5], verbose=0)
    assert predictions.shape == (5, 10) and predictions.dtype == np.float32
    np.testing.assert_allclose(predictions.sum(axis=1), 1.0, atol=1e-5)


def test_two_hidden_layers_one_hot_with_validation(mnist_small):
    (x_train, y_train), (x_test, y_test) = mnist_small
    x_train, x_test = x_train.reshape(-1, 784), x_test.reshape(-1, 784)
    y_train, y_test = keras.utils.to_categorical(y_train, 10), keras.utils.to_categorical(y_test, 10)
    model = keras.models.Sequential()
    model.add(layers.Dense(128, activation="relu", input_shape=(784,)))
    model.add(layers.Dense(64, activation="relu"))
    model.add(layers.Dense(10, activation="softmax"))
    model.compile(loss="categorical_crossentropy", optimizer=keras.optimizers.Adam(learning_rate=0.001),
                  metrics=["accuracy"])
    history = model.fit(x_train, y_train, batch_size=64, epochs=3, verbose=0, validation_split=0.1)
    assert set(history.history) == {"loss", "accuracy", "val_loss", "val_accuracy"}
    assert len(history.history["val_accuracy"]) == 3 and history.epoch == [0, 1, 2]
    assert history.history["val_accuracy"][-1] > 0.9
    scores = model.evaluate(x_test, y_test, verbose=0, return_dict=True)
    assert set(scores) == {"loss", "accuracy"} and scores["accuracy"] > 0.92, scores
    history = model.fit(x_train[:2000], y_train[:2000], epochs=1, verbose=0, validation_data=(x_test, y_test))
    assert "val_accuracy" in history.history


def test_mnist_cnn_rmsprop(mnist_small):
    (x_train, y_train), (x_test, y_test) = mnist_small
    x_train, x_test = x_train[:6000, ..., None], x_test[:1000, ..., None]
    y_train, y_test = keras.utils.to_categorical(y_train[:6000]), keras.utils.to_categorical(y_test[:1000])
    model = keras.Sequential([
        layers.Conv2D(32, (3, 3), activation="relu", input_shape=(28, 28, 1)),
        layers.MaxPooling2D((2, 2)),
        layers.Conv2D(64, (3, 3), activation="relu"),
        layers.MaxPooling2D((2, 2)),
        layers.Conv2D(64, (3, 3), activation="relu"),
        layers.Flatten(),
        layers.Dense(64, activation="relu"),
        layers.Dense(10, activation="softmax"),
    ])
    assert model.count_params() == 93_322
    model.compile(optimizer=keras.optimizers.RMSprop(learning_rate=0.001), loss="categorical_crossentropy",
                  metrics=["accuracy"])
    model.fit(x_train, y_train, epochs=2, batch_size=64, verbose=0)
    _, accuracy = model.evaluate(x_test, y_test, verbose=0)
    assert accuracy > 0.9, accuracy


def test_one_neuron_linear_regression_sgd_mse():
    rng = np.random.default_rng(0)
    x = rng.uniform(-1, 1, size=(256, 1))  # float64, as NumPy makes it: converted as Keras does
    y = 2.0 * x + 1.0 + rng.normal(0, 0.01, size=(256, 1))
    model = keras.Sequential([layers.Dense(1, input_dim=1)])
    model.compile(optimizer=keras.optimizers.SGD(learning_rate=0.1), loss="mse")
    model.fit(x, y, epochs=40, batch_size=32, verbose=0)
    kernel, bias = model.get_weights()
    assert kernel.shape == (1, 1) and bias.shape == (1,)
    assert abs(kernel[0, 0] - 2.0) < 0.05 and abs(bias[0] - 1.0) < 0.05, (kernel, bias)
    loss = model.evaluate(x, y, verbose=0)
    assert isinstance(loss, float) and loss < 1e-3


def test_dropout_l2_early_stopping(mnist_small):
    (x_train, y_train), (x_test, y_test) = mnist_small
    model = keras.Sequential([
        layers.Flatten(input_shape=(28, 28)),
        layers.Dense(128, activation="relu", kernel_regularizer=keras.regularizers.l2(1e-4)),
        layers.Dropout(0.2),
        layers.Dense(10, activation="softmax"),
    ])
    model.compile(optimizer="adam", loss="sparse_categorical_crossentropy", metrics=["acc"])
    stop = keras.callbacks.EarlyStopping(monitor="val_loss", patience=1, restore_best_weights=True)
    history = model.fit(x_train, y_train, epochs=30, validation_split=0.2, callbacks=[stop], verbose=0)
    epochs = len(history.history["loss"])
    assert 2 <= epochs < 30, epochs
    assert "val_acc" in history.history
    _, accuracy = model.evaluate(x_test, y_test, verbose=0)
    assert accuracy > 0.92, accuracy


class TransformerBlock(layers.Layer):
    """keras.io's "Text classification with Transformer", verbatim: subclassed layers whose
    ``call`` strata runs once on symbolic tensors."""

    def __init__(self, embed_dim, num_heads, ff_dim, rate=0.1):
        super().__init__()
        self.att = layers.MultiHeadAttention(num_heads=num_heads, key_dim=embed_dim)
        self.ffn = keras.Sequential([layers.Dense(ff_dim, activation="relu"), layers.Dense(embed_dim)])
        self.layernorm1 = layers.LayerNormalization(epsilon=1e-6)
        self.layernorm2 = layers.LayerNormalization(epsilon=1e-6)
        self.dropout1 = layers.Dropout(rate)
        self.dropout2 = layers.Dropout(rate)

    def call(self, inputs, training=None):
        attn_output = self.att(inputs, inputs)
        attn_output = self.dropout1(attn_output, training=training)
        out1 = self.layernorm1(inputs + attn_output)
        ffn_output = self.ffn(out1)
        ffn_output = self.dropout2(ffn_output, training=training)
        return self.layernorm2(out1 + ffn_output)


class TokenAndPositionEmbedding(layers.Layer):
    def __init__(self, maxlen, vocab_size, embed_dim):
        super().__init__()
        self.token_emb = layers.Embedding(input_dim=vocab_size, output_dim=embed_dim)
        self.pos_emb = layers.Embedding(input_dim=maxlen, output_dim=embed_dim)

    def call(self, x):
        maxlen = keras.ops.shape(x)[-1]
        positions = keras.ops.arange(start=0, stop=maxlen, step=1)
        positions = self.pos_emb(positions)
        x = self.token_emb(x)
        return x + positions


def test_keras_io_transformer_text_classifier_with_subclassed_layers():
    rng = np.random.default_rng(0)
    vocab_size, maxlen = 200, 20
    x_train = rng.integers(0, vocab_size, (1200, maxlen))
    y_train = ((x_train < 100).sum(axis=1) > 10).astype("int64")
    embed_dim, num_heads, ff_dim = 32, 2, 32
    inputs = layers.Input(shape=(maxlen,))
    x = TokenAndPositionEmbedding(maxlen, vocab_size, embed_dim)(inputs)
    x = TransformerBlock(embed_dim, num_heads, ff_dim)(x)
    x = layers.GlobalAveragePooling1D()(x)
    x = layers.Dropout(0.1)(x)
    x = layers.Dense(20, activation="relu")(x)
    x = layers.Dropout(0.1)(x)
    outputs = layers.Dense(2, activation="softmax")(x)
    model = keras.Model(inputs=inputs, outputs=outputs)
    model.compile(optimizer="adam", loss="sparse_categorical_crossentropy", metrics=["accuracy"])
    # Keras's count for these sizes: embeddings 6,400 + 640, attention 8,416, feed-forward
    # 2,112, normalizations 128, head 660 + 42.
    assert model.count_params() == 18398
    history = model.fit(x_train, y_train, batch_size=32, epochs=10, validation_split=0.2, verbose=0)
    assert history.history["val_accuracy"][-1] > 0.85, history.history["val_accuracy"]
    names = [layer.__class__.__name__ for layer in model.layers]
    assert names.count("PositionEmbedding") == 1 and names.count("MultiHeadAttention") == 1, names


def test_arithmetic_on_symbolic_tensors_is_layers():
    inputs = keras.Input(shape=(3,))
    same = layers.Activation("linear")(inputs)
    outputs = (inputs + same) * 0.5 - 1.0 + inputs / 4.0 - (2.0 - inputs)
    model = keras.Model(inputs, outputs)
    x = np.array([[1.0, -2.0, 4.0]], dtype="float32")
    np.testing.assert_allclose(model.predict(x, verbose=0), (x + x) * 0.5 - 1.0 + x / 4.0 - (2.0 - x), rtol=1e-6)
    with pytest.raises(NotImplementedError, match="symbolic tensors"):
        inputs @ inputs


class WithOwnWeights(layers.Layer):
    def build(self, input_shape):
        self.w = self.add_weight(shape=(input_shape[-1], 2))

    def call(self, inputs):
        return inputs


def test_a_subclassed_layer_with_its_own_weights_is_refused_by_name():
    layer = WithOwnWeights(name="own")
    with pytest.raises(NotImplementedError, match="own"):
        layer.build((None, 3))


def test_keras_io_multi_input_multi_output_model_with_dicts():
    # keras.io's functional API guide (ticket priority and department), with fixed lengths:
    # inputs and outputs given as dicts, losses, loss weights and metrics keyed by output name,
    # fit and evaluate on dicts keyed by input and output name, predict giving a dict.
    num_tags, num_words, num_departments = 12, 100, 4
    title_input = keras.Input(shape=(10,), name="title")
    body_input = keras.Input(shape=(20,), name="body")
    tags_input = keras.Input(shape=(num_tags,), name="tags")
    title_features = keras.layers.LSTM(16)(keras.layers.Embedding(num_words, 8)(title_input))
    body_features = keras.layers.LSTM(8)(keras.layers.Embedding(num_words, 8)(body_input))
    x = keras.layers.concatenate([title_features, body_features, tags_input])
    priority = keras.layers.Dense(1, name="priority")(x)
    department = keras.layers.Dense(num_departments, name="department")(x)
    model = keras.Model(inputs={"title": title_input, "body": body_input, "tags": tags_input},
                        outputs={"priority": priority, "department": department})
    with pytest.raises(ValueError, match="no output is named 'dept'"):
        model.compile(optimizer="rmsprop", loss={"priority": "mse", "dept": "mse"})
    model.compile(optimizer=keras.optimizers.RMSprop(1e-3),
                  loss={"priority": keras.losses.BinaryCrossentropy(from_logits=True),
                        "department": keras.losses.CategoricalCrossentropy(from_logits=True)},
                  loss_weights={"priority": 1.0, "department": 0.2},
                  metrics={"department": ["accuracy"]})
    rng = np.random.default_rng(0)
    inputs = {"title": rng.integers(num_words, size=(64, 10)), "body": rng.integers(num_words, size=(64, 20)),
              "tags": rng.integers(2, size=(64, num_tags)).astype("float32")}
    targets = {"priority": rng.random(size=(64, 1)),
               "department": np.eye(num_departments)[rng.integers(num_departments, size=64)]}
    history = model.fit(inputs, targets, epochs=2, batch_size=16, verbose=0)
    assert {"loss", "priority_loss", "department_loss", "department_accuracy"} <= set(history.history)
    results = model.evaluate(inputs, targets, return_dict=True, verbose=0)
    # The total is the weighted sum of the outputs' losses, as Keras adds them.
    assert results["loss"] == pytest.approx(results["priority_loss"] + 0.2 * results["department_loss"], rel=1e-4)
    predicted = model.predict({k: v[:3] for k, v in inputs.items()}, verbose=0)
    assert set(predicted) == {"priority", "department"}
    assert predicted["priority"].shape == (3, 1) and predicted["department"].shape == (3, num_departments)
    # A list in the dicts' order is the same inputs.
    listed = model.predict([inputs["title"][:3], inputs["body"][:3], inputs["tags"][:3]], verbose=0)
    np.testing.assert_array_equal(listed["department"], predicted["department"])
    with pytest.raises(ValueError, match="'title', 'body', 'tags'"):
        model.predict({"title": inputs["title"], "tags": inputs["tags"]})
