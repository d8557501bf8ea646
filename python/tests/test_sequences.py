"""The word-sequence data sets (IMDB, Reuters) as Keras returns them, and ``pad_sequences``."""

import json
import pathlib

import numpy as np
import pytest

import strata.keras as keras


def _write_imdb(folder):
    """A small ``imdb.npz`` in Keras's format (object arrays of word-id lists) and its word index."""
    folder.mkdir(parents=True, exist_ok=True)
    rng = np.random.default_rng(0)

    def sequences(count):
        array = np.empty(count, dtype=object)
        array[:] = [list(rng.integers(1, 40, size=rng.integers(3, 12)).tolist()) for _ in range(count)]
        return array

    np.savez(folder / "imdb.npz", x_train=sequences(20), y_train=rng.integers(0, 2, 20),
             x_test=sequences(10), y_test=rng.integers(0, 2, 10))
    (folder / "imdb_word_index.json").write_text(json.dumps({"the": 1, "and": 2, "a": 3}))


def test_imdb_loads_as_keras_returns_it(tmp_path, monkeypatch):
    _write_imdb(tmp_path / "datasets")
    monkeypatch.setenv("KERAS_HOME", str(tmp_path))
    (x_train, y_train), (x_test, y_test) = keras.datasets.imdb.load_data(num_words=20)
    assert x_train.dtype == object and x_train.shape == (20,) and isinstance(x_train[0], list)
    assert x_test.shape == (10,) and y_train.dtype == np.int64 and set(y_train.tolist()) <= {0, 1}
    # Keras's marks: every sequence starts with 1; ids at or above num_words become 2 (out of vocabulary).
    assert all(sequence[0] == 1 for sequence in x_train)
    assert max(max(sequence) for sequence in x_train) < 20
    assert keras.datasets.imdb.get_word_index() == {"the": 1, "and": 2, "a": 3}
    with pytest.raises(ValueError, match="num_words must be positive"):
        keras.datasets.imdb.load_data(num_words=0)


def test_a_missing_data_set_says_where_strata_looked(tmp_path, monkeypatch):
    monkeypatch.setenv("KERAS_HOME", str(tmp_path / "nowhere"))
    monkeypatch.setenv("STRATA_DATA", str(tmp_path / "nowhere-either"))
    # Any download attempt goes to a closed local port: tests never touch the internet.
    monkeypatch.setenv("STRATA_DATASETS_URL", "http://127.0.0.1:9")
    with pytest.raises((OSError, ValueError), match="imdb.npz"):
        keras.datasets.imdb.load_data()


def test_pad_sequences_gives_keras_arrays():
    sequences = [[1, 2, 3], [4, 5, 6, 7, 8, 9, 10, 11, 12], []]
    # The arrays Keras 3's keras.utils.pad_sequences returns for the same calls.
    np.testing.assert_array_equal(keras.utils.pad_sequences(sequences, maxlen=8),
                                  [[0, 0, 0, 0, 0, 1, 2, 3], [5, 6, 7, 8, 9, 10, 11, 12], [0] * 8])
    np.testing.assert_array_equal(
        keras.preprocessing.sequence.pad_sequences(sequences[:2], maxlen=4, padding="post", truncating="post",
                                                   value=-1),
        [[1, 2, 3, -1], [4, 5, 6, 7]])
    assert keras.utils.pad_sequences(sequences).shape == (3, 9)
    assert keras.utils.pad_sequences(sequences).dtype == np.int32
    with pytest.raises(ValueError, match="padding"):
        keras.utils.pad_sequences(sequences, padding="middle")


def test_a_sequence_input_of_any_length_as_keras_io_declares_it():
    # keras.io's "Bidirectional LSTM on IMDB": keras.Input(shape=(None,), dtype="int32"). The
    # model is built for the first data's length and runs other lengths with the same weights.
    inputs = keras.Input(shape=(None,), dtype="int32")
    x = keras.layers.Embedding(100, 8)(inputs)
    x = keras.layers.Bidirectional(keras.layers.LSTM(4, return_sequences=True))(x)
    x = keras.layers.Bidirectional(keras.layers.LSTM(4))(x)
    outputs = keras.layers.Dense(1, activation="sigmoid")(x)
    model = keras.Model(inputs, outputs)
    model.compile(optimizer="adam", loss="binary_crossentropy", metrics=["accuracy"])
    rng = np.random.default_rng(0)
    x_train = rng.integers(1, 100, size=(64, 12))
    y_train = (x_train[:, 0] > 50).astype("float32")
    model.fit(x_train, y_train, batch_size=16, epochs=1, verbose=0)
    assert model.input_shape == (None, 12)
    assert model.count_params() == 800 + 2 * 4 * 4 * (8 + 4 + 1) + 2 * 4 * 4 * (8 + 4 + 1) + 9
    long = model.predict(x_train[:3], verbose=0)
    short = model.predict(x_train[:3, :5], verbose=0)
    assert short.shape == (3, 1) and not np.allclose(short, long)
    np.testing.assert_array_equal(model.predict(x_train[:3], verbose=0), long)


def test_a_keras_file_with_a_sequence_of_any_length_predicts_as_keras():
    fixture = pathlib.Path(__file__).resolve().parents[2] / "tests" / "fixtures" / "keras"
    model = keras.models.load_model(fixture / "any_length.keras")
    expected = json.loads((fixture / "any_length.json").read_text())
    x = np.array(expected["input"], dtype="float32").reshape(expected["input_shape"])
    y = model.predict(x, verbose=0)
    np.testing.assert_allclose(y.ravel(), expected["output"], atol=1e-5)
