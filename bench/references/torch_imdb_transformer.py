"""strata's `imdb_transformer` in PyTorch: token + learned position embeddings (32), one
encoder block with Keras's MultiHeadAttention sizes (2 heads of key_dim 32, so 32 -> 64 -> 32
projections; scaled_dot_product_attention), residual + LayerNorm(eps 1e-6), feed-forward 32,
dropout 0.1, mean pooling, Linear 20, Linear 2; Adam(1e-3, eps 1e-7 as Keras), batch 32.
Usage: python torch_imdb_transformer.py EPOCHS [BATCH]"""
import torch
from torch import nn
from torch.nn import functional as F
from torch_support import train_epoch, accuracy, info
from common import args, imdb, report


class Encoder(nn.Module):
    def __init__(self, dim=32, heads=2, key_dim=32, hidden=32, dropout=0.1):
        super().__init__()
        self.heads, self.key_dim = heads, key_dim
        self.query, self.key, self.value = (nn.Linear(dim, heads * key_dim) for _ in range(3))
        self.output = nn.Linear(heads * key_dim, dim)
        self.feed_forward = nn.Sequential(nn.Linear(dim, hidden), nn.ReLU(), nn.Linear(hidden, dim))
        self.norm1, self.norm2 = nn.LayerNorm(dim, eps=1e-6), nn.LayerNorm(dim, eps=1e-6)
        self.dropout = nn.Dropout(dropout)

    def forward(self, x):
        n, t, _ = x.shape
        split = lambda y: y.view(n, t, self.heads, self.key_dim).transpose(1, 2)
        attended = F.scaled_dot_product_attention(split(self.query(x)), split(self.key(x)), split(self.value(x)))
        attended = self.output(attended.transpose(1, 2).reshape(n, t, -1))
        x = self.norm1(x + self.dropout(attended))
        return self.norm2(x + self.dropout(self.feed_forward(x)))


class Classifier(nn.Module):
    def __init__(self, maxlen=200, vocab=20000, dim=32):
        super().__init__()
        self.tokens, self.positions = nn.Embedding(vocab, dim), nn.Embedding(maxlen, dim)
        self.encoder = Encoder(dim)
        self.head = nn.Sequential(nn.Dropout(0.1), nn.Linear(dim, 20), nn.ReLU(), nn.Dropout(0.1), nn.Linear(20, 2))

    def forward(self, ids):
        x = self.tokens(ids) + self.positions(torch.arange(ids.shape[1]))
        return self.head(self.encoder(x).mean(1))


epochs, batch = args(32)
(x_train, y_train), (x_test, y_test) = [(torch.from_numpy(x), torch.from_numpy(y)) for x, y in imdb(20000, 200)]
model = Classifier()
optimizer = torch.optim.Adam(model.parameters(), lr=1e-3, eps=1e-7)
times = []
for epoch in range(epochs):
    times.append(train_epoch(model, optimizer, nn.CrossEntropyLoss(), x_train, y_train, batch))
    print(f"epoch {epoch + 1}: {times[-1]:.2f}s", flush=True)
report("torch", "imdb_transformer", batch, times, len(x_train), accuracy(model, x_test, y_test), **info())
