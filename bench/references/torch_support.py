"""PyTorch-side helpers: seeds, 2 threads, shuffled mini-batches, accuracy, versions."""
import time
import numpy as np
import torch

torch.manual_seed(0)
np.random.seed(0)
torch.set_num_threads(2)


def train_epoch(model, optimizer, loss_fn, x, y, batch):
    model.train()
    start = time.perf_counter()
    order = torch.randperm(len(x))
    for i in range(0, len(x), batch):
        index = order[i:i + batch]
        optimizer.zero_grad()
        loss_fn(model(x[index]), y[index]).backward()
        optimizer.step()
    return time.perf_counter() - start


@torch.no_grad()
def accuracy(model, x, y, batch=500):
    model.eval()
    correct = sum((model(x[i:i + batch]).argmax(1) == y[i:i + batch]).sum().item()
                  for i in range(0, len(x), batch))
    return correct / len(x)


def info():
    return dict(torch=torch.__version__, torch_threads=torch.get_num_threads())
