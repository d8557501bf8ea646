"""strata's `imdb_transformer` in Keras (keras.io "Text classification with Transformer"):
token + position embeddings (32), one encoder block (2 heads, feed-forward 32, dropout 0.1),
global average pooling, Dense 20, Dense 2 softmax; Adam, sparse categorical cross-entropy,
batch 32, 200 tokens from 20,000 words. Usage: python keras_imdb_transformer.py EPOCHS [BATCH]"""
from keras_support import keras, EpochTimer, info
from common import args, imdb, report

L = keras.layers
epochs, batch = args(32)
(x_train, y_train), (x_test, y_test) = imdb(20000, 200)


class TokenAndPositionEmbedding(L.Layer):
    def __init__(self, maxlen, vocab_size, embed_dim):
        super().__init__()
        self.token_emb = L.Embedding(vocab_size, embed_dim)
        self.pos_emb = L.Embedding(maxlen, embed_dim)

    def call(self, x):
        positions = keras.ops.arange(0, keras.ops.shape(x)[-1], 1)
        return self.token_emb(x) + self.pos_emb(positions)


inputs = keras.Input((200,))
x = TokenAndPositionEmbedding(200, 20000, 32)(inputs)
attention = L.MultiHeadAttention(num_heads=2, key_dim=32)(x, x)
x = L.LayerNormalization(epsilon=1e-6)(x + L.Dropout(0.1)(attention))
feed_forward = L.Dense(32)(L.Dense(32, activation="relu")(x))
x = L.LayerNormalization(epsilon=1e-6)(x + L.Dropout(0.1)(feed_forward))
x = L.Dropout(0.1)(L.GlobalAveragePooling1D()(x))
x = L.Dropout(0.1)(L.Dense(20, activation="relu")(x))
model = keras.Model(inputs, L.Dense(2, activation="softmax")(x))
model.compile(optimizer="adam", loss="sparse_categorical_crossentropy", metrics=["accuracy"])
timer = EpochTimer()
model.fit(x_train, y_train, epochs=epochs, batch_size=batch, verbose=2, callbacks=[timer])
_, accuracy = model.evaluate(x_test, y_test, verbose=0)
report("keras", "imdb_transformer", batch, timer.times, len(x_train), accuracy, **info())
