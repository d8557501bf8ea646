"""``keras.datasets.reuters``: 11,228 newswires in 46 topics as word-id sequences."""

from ._sequences import load_sequences, word_index


def load_data(path="reuters.npz", num_words=None, skip_top=0, maxlen=None, test_split=0.2, seed=113, start_char=1,
              oov_char=2, index_from=3):
    """``((x_train, y_train), (x_test, y_test))`` as Keras returns them."""
    return load_sequences("reuters", path, num_words=num_words, skip_top=skip_top, maxlen=maxlen, seed=seed,
                          start_char=start_char, oov_char=oov_char, index_from=index_from,
                          test_split=float(test_split))


def get_word_index(path="reuters_word_index.json"):
    """The word index: ``{word: rank}``."""
    return word_index("reuters", path)
