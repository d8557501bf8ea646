"""strata's `cifar10_cnn` in PyTorch (channels-first, PyTorch's own layout): Conv 32-32-64-64
with MaxPool and Dropout, Linear 512; RMSprop(1e-4, alpha 0.9, eps 1e-7 as Keras), cross-entropy
on logits, batch 32. Usage: python torch_cifar10_cnn.py EPOCHS [BATCH]"""
import torch
from torch import nn
from torch_support import train_epoch, accuracy, info
from common import args, cifar10, report

epochs, batch = args(32)
(x_train, y_train), (x_test, y_test) = cifar10()
images = lambda x: torch.from_numpy(x.transpose(0, 3, 1, 2).astype("float32") / 255).contiguous()
labels = lambda y: torch.from_numpy(y.reshape(-1).astype("int64"))
x_train, x_test, y_train, y_test = images(x_train), images(x_test), labels(y_train), labels(y_test)
model = nn.Sequential(
    nn.Conv2d(3, 32, 3, padding=1), nn.ReLU(), nn.Conv2d(32, 32, 3), nn.ReLU(),
    nn.MaxPool2d(2), nn.Dropout(0.25),
    nn.Conv2d(32, 64, 3, padding=1), nn.ReLU(), nn.Conv2d(64, 64, 3), nn.ReLU(),
    nn.MaxPool2d(2), nn.Dropout(0.25),
    nn.Flatten(), nn.Linear(64 * 6 * 6, 512), nn.ReLU(), nn.Dropout(0.5), nn.Linear(512, 10))
optimizer = torch.optim.RMSprop(model.parameters(), lr=1e-4, alpha=0.9, eps=1e-7)
times = []
for epoch in range(epochs):
    times.append(train_epoch(model, optimizer, nn.CrossEntropyLoss(), x_train, y_train, batch))
    print(f"epoch {epoch + 1}: {times[-1]:.2f}s", flush=True)
report("torch", "cifar10_cnn", batch, times, len(x_train), accuracy(model, x_test, y_test), **info())
