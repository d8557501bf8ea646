"""``keras.datasets.imdb``: the 50,000 movie reviews as word-id sequences."""

from ._sequences import load_sequences, word_index


def load_data(path="imdb.npz", num_words=None, skip_top=0, maxlen=None, seed=113, start_char=1, oov_char=2,
              index_from=3, **kwargs):
    """``((x_train, y_train), (x_test, y_test))`` as Keras returns them: object arrays of word-id
    lists and 0/1 labels, with Keras's arguments and defaults."""
    if kwargs:
        raise TypeError(f"imdb.load_data: unexpected arguments {', '.join(kwargs)}")
    return load_sequences("imdb", path, num_words=num_words, skip_top=skip_top, maxlen=maxlen, seed=seed,
                          start_char=start_char, oov_char=oov_char, index_from=index_from)


def get_word_index(path="imdb_word_index.json"):
    """The word index: ``{word: rank}`` (rank 1 is the most frequent word)."""
    return word_index("imdb", path)
