"""Makes the ONNX import fixtures: small PyTorch models exported to ONNX, with an input and
ONNX Runtime's output for it, for tests/onnx_import.rs.

    python3 -m venv /tmp/venv-onnx && /tmp/venv-onnx/bin/pip install torch torchvision onnx onnxruntime onnxscript numpy
    /tmp/venv-onnx/bin/pip install transformers   # for the tiny BERT and ViT fixtures
    /tmp/venv-onnx/bin/python tools/onnx_import_fixtures.py tests/fixtures/onnx_import [NAME ...]
    /tmp/venv-onnx/bin/python tools/onnx_import_fixtures.py --large /tmp/onnx-large [NAME ...]
    /tmp/venv-onnx/bin/python tools/onnx_import_fixtures.py --torchvision tests/fixtures/onnx_torchvision [NAME ...]
    /tmp/venv-onnx/bin/python tools/onnx_import_fixtures.py --torchvision-dynamo tests/fixtures/onnx_torchvision [NAME ...]

Each model NAME gives NAME.onnx, NAME.input.npy (NCHW, as ONNX takes it) and NAME.output.npy
(ONNX Runtime's output). The small ones (committed, well under 2 MB together) cover every
operator strata imports; `--large` writes torchvision's resnet18 and mobilenet_v2 (or the
torchvision classifiers named after the folder) with random weights at 64x64 (tens of MB, not committed: `cargo test --release --test onnx_import -- --ignored`
with STRATA_ONNX_LARGE=/tmp/onnx-large checks them). `--torchvision` writes the torchvision
classifiers CI checks (TORCHVISION, exported at 224x224) without their weight values
(tools/strip_onnx_weights.py), a few tens of KB each; tools/check_onnx_import_torchvision.py
gives them random weights again without PyTorch. `--torchvision-dynamo` writes the same
classifiers as `torch.onnx.export` writes them by default since PyTorch 2.9 (the torch.export
exporter, opset 18), as NAME_dynamo.onnx.
"""

import math
import os
import sys
import tempfile

import numpy as np
import onnx
import onnxruntime
import torch
import torch.nn as nn
import torch.nn.functional as F


class SmallCnn(nn.Module):
    """conv / batch norm / relu / pool / flatten / linear: the classic classifier, whose
    Flatten of a (C, H, W) map into a Linear is the layout pitfall."""

    def __init__(self):
        super().__init__()
        self.conv1 = nn.Conv2d(3, 6, 3, padding=1)
        self.bn1 = nn.BatchNorm2d(6)
        self.conv2 = nn.Conv2d(6, 8, 3, stride=2, padding=1)
        self.bn2 = nn.BatchNorm2d(8)
        self.fc1 = nn.Linear(8 * 3 * 3, 16)
        self.bn3 = nn.BatchNorm1d(16)
        self.fc2 = nn.Linear(16, 5)

    def forward(self, x):
        x = F.max_pool2d(F.relu(self.conv1(x)), 2)
        x = self.bn1(x)  # after the ReLU: stays a BatchNormalization node
        x = F.relu(self.bn2(self.conv2(x)))  # folded into the Conv by the exporter
        x = torch.flatten(x, 1)
        x = F.relu(self.bn3(self.fc1(x)))
        return F.softmax(self.fc2(x), dim=1)


class Ops(nn.Module):
    """Most other operators: depthwise and transposed convolutions, padding, concatenation,
    activations, arithmetic with constants, a residual Add, average pooling and the
    Shape/Gather/Concat/Reshape chain of `x.view(x.size(0), -1)`."""

    def __init__(self):
        super().__init__()
        self.stem = nn.Conv2d(3, 8, 3, stride=1, padding=1, bias=False)
        self.depthwise = nn.Conv2d(8, 16, 3, padding=1, groups=8)
        self.pointwise = nn.Conv2d(16, 8, 1)
        self.up = nn.ConvTranspose2d(8, 4, 3, stride=2, padding=1, output_padding=1)
        self.side = nn.Conv2d(8, 4, 1)
        self.shift = nn.Parameter(torch.randn(1, 8, 1, 1))
        self.fc = nn.Linear(12 * 4 * 4, 6)
        self.drop = nn.Dropout(0.3)

    def forward(self, x):
        x = (x - 0.5) / 0.25
        x = F.relu6(self.stem(x))
        y = F.hardswish(self.depthwise(x))
        y = F.leaky_relu(self.pointwise(y), 0.1)
        x = x + y  # residual
        x = x * 1.5 + self.shift  # per-channel constant
        up = torch.sigmoid(self.up(x))  # 8x8 -> 16x16
        side = F.pad(self.side(x), (0, 1, 1, 0))  # 8x8 -> 9x9
        side = F.max_pool2d(F.hardsigmoid(torch.tanh(side)), 2)  # 9x9 -> 4x4
        x = torch.cat([F.avg_pool2d(up, 4), F.max_pool2d(up, 4), side], dim=1)  # 12 channels, 4x4
        x = self.drop(x)
        x = x.view(x.size(0), -1)
        return self.fc(x)


class TinyResNet(nn.Module):
    """ResNet's stem (7x7 stride 2, max pooling with pads after a ReLU) and a downsampling
    basic block, global average pooling and a linear head."""

    def __init__(self):
        super().__init__()
        self.conv1 = nn.Conv2d(3, 8, 7, stride=2, padding=3, bias=False)
        self.bn1 = nn.BatchNorm2d(8)
        self.maxpool = nn.MaxPool2d(3, stride=2, padding=1)
        self.a = nn.Conv2d(8, 16, 3, stride=2, padding=1, bias=False)
        self.bn_a = nn.BatchNorm2d(16)
        self.b = nn.Conv2d(16, 16, 3, padding=1, bias=False)
        self.bn_b = nn.BatchNorm2d(16)
        self.down = nn.Sequential(nn.Conv2d(8, 16, 1, stride=2, bias=False), nn.BatchNorm2d(16))
        self.fc = nn.Linear(16, 10)

    def forward(self, x):
        x = self.maxpool(F.relu(self.bn1(self.conv1(x))))
        y = self.bn_b(self.b(F.relu(self.bn_a(self.a(x)))))
        x = F.relu(y + self.down(x))
        x = F.adaptive_avg_pool2d(x, 1)
        return self.fc(torch.flatten(x, 1))


def tiny_mobilenet():
    """torchvision's MobileNetV2 with few, narrow blocks (its depthwise convolutions, ReLU6 as
    Clip, inverted residuals)."""
    import torchvision

    setting = [[1, 8, 1, 1], [6, 8, 2, 2], [6, 16, 1, 2]]
    return torchvision.models.MobileNetV2(num_classes=4, width_mult=0.25, inverted_residual_setting=setting)


class GroupedConvs(nn.Module):
    """Grouped convolutions that are neither plain (group 1) nor depthwise (one group per
    channel): ResNeXt's and ShuffleNet's kind."""

    def __init__(self):
        super().__init__()
        self.stem = nn.Conv2d(3, 8, 3, padding=1)
        self.grouped = nn.Conv2d(8, 12, 3, stride=2, padding=1, groups=4)
        self.bn = nn.BatchNorm2d(12)
        self.pairs = nn.Conv2d(12, 6, 1, groups=2, bias=False)
        self.fc = nn.Linear(6, 5)

    def forward(self, x):
        x = F.relu(self.stem(x))
        x = F.relu(self.bn(self.grouped(x)))
        x = F.adaptive_avg_pool2d(self.pairs(x), 1)
        return self.fc(torch.flatten(x, 1))


class Conv1dNet(nn.Module):
    """1-D convolutions on (N, C, L) sequences: "same", grouped and causal-free "valid"
    padding, batch norm, and the flatten of a (C, L) map into a Linear."""

    def __init__(self):
        super().__init__()
        self.a = nn.Conv1d(4, 8, 3, padding=1)
        self.bn = nn.BatchNorm1d(8)
        self.b = nn.Conv1d(8, 8, 3, padding=1, groups=2)
        self.c = nn.Conv1d(8, 6, 5, stride=2, dilation=1)
        self.fc = nn.Linear(6 * 6, 3)

    def forward(self, x):
        x = F.relu(self.bn(self.a(x)))
        x = F.relu(self.b(x))
        x = torch.tanh(self.c(x))
        return self.fc(torch.flatten(x, 1))


class CausalConv1d(nn.Module):
    """A temporal convolution network's causal convolutions (WaveNet, TCN): each input padded
    on the left by `F.pad` (kernel - 1) · dilation steps, then a "valid" `Conv1d`; the last
    step to a head."""

    def __init__(self):
        super().__init__()
        self.a = nn.Conv1d(3, 6, 3)
        self.b = nn.Conv1d(6, 6, 3, dilation=2)
        self.fc = nn.Linear(6, 2)

    def forward(self, x):
        x = torch.relu(self.a(F.pad(x, (2, 0))))
        x = torch.relu(self.b(F.pad(x, (4, 0))))
        return self.fc(x[:, :, -1])


def tiny_bert(attention, classifier=False):
    """A Hugging Face BERT encoder with random weights: hidden 32, 4 heads, 2 layers, 16 tokens;
    `attention` "eager" (explicit MatMul / Softmax) or "sdpa" (PyTorch's fused attention as
    exported); `classifier` adds the pooler (the first token) and a 3-class head. Weights drawn
    with a standard deviation of 0.3 (BERT's 0.02 would leave the attention nearly uniform and
    the logits near 0, which would check little)."""
    import transformers

    config = transformers.BertConfig(vocab_size=100, hidden_size=32, num_hidden_layers=2, num_attention_heads=4,
                                     intermediate_size=64, max_position_embeddings=32, num_labels=3,
                                     attn_implementation=attention, initializer_range=0.3)
    if classifier:
        return BertLogits(transformers.BertForSequenceClassification(config))
    return BertHidden(transformers.BertModel(config))


class BertHidden(nn.Module):
    """A BertModel's last hidden state, from token ids alone (no attention mask: all tokens)."""

    def __init__(self, bert):
        super().__init__()
        self.bert = bert

    def forward(self, ids):
        return self.bert(input_ids=ids).last_hidden_state


class BertLogits(nn.Module):
    """A BertForSequenceClassification's logits, from token ids alone."""

    def __init__(self, bert):
        super().__init__()
        self.bert = bert

    def forward(self, ids):
        return self.bert(input_ids=ids).logits


def tiny_roberta():
    """A Hugging Face RoBERTa classifier with random weights, sizes as `tiny_bert`: its position
    ids are computed from the token ids (padding, id 1, keeps position 1; the others count
    from 2), which the fixture's input exercises with padding at the end of its first row."""
    import transformers

    config = transformers.RobertaConfig(vocab_size=100, hidden_size=32, num_hidden_layers=2, num_attention_heads=4,
                                        intermediate_size=64, max_position_embeddings=40, num_labels=3,
                                        attn_implementation="sdpa", initializer_range=0.3)
    return BertLogits(transformers.RobertaForSequenceClassification(config))


def tiny_vit():
    """A Hugging Face ViT image classifier with random weights: 32x32 images in 8x8 patches
    (16 steps and the class token), hidden 32, 4 heads, 2 layers, 5 classes, PyTorch's fused
    attention as exported; weights drawn with a standard deviation of 0.3 (see `tiny_bert`)."""
    import transformers

    config = transformers.ViTConfig(image_size=32, patch_size=8, num_channels=3, hidden_size=32, num_hidden_layers=2,
                                    num_attention_heads=4, intermediate_size=64, num_labels=5,
                                    attn_implementation="sdpa", initializer_range=0.3)
    return VitLogits(transformers.ViTForImageClassification(config))


def tiny_deit():
    """A Hugging Face DeiT with its distillation head (two tokens in front of the patches, a
    class and a distillation token, the two heads' logits averaged), sizes as `tiny_vit`."""
    import transformers

    config = transformers.DeiTConfig(image_size=32, patch_size=8, num_channels=3, hidden_size=32, num_hidden_layers=2,
                                     num_attention_heads=4, intermediate_size=64, num_labels=5,
                                     attn_implementation="sdpa", initializer_range=0.3)
    return VitLogits(transformers.DeiTForImageClassificationWithTeacher(config))


class VitLogits(nn.Module):
    """A ViT's (or DeiT's) logits, from the pixels alone."""

    def __init__(self, vit):
        super().__init__()
        self.vit = vit

    def forward(self, pixels):
        return self.vit(pixel_values=pixels).logits


class Activations(nn.Module):
    """The activations PyTorch models use besides ReLU: PReLU with a slope per channel of an
    image and with one slope, ELU, SELU, softplus, softsign, Mish, GELU's tanh form, exp, and
    log_softmax at the end (as PyTorch's MNIST example ends)."""

    def __init__(self):
        super().__init__()
        self.conv = nn.Conv2d(3, 8, 3, padding=1)
        self.prelu_channels = nn.PReLU(8)
        self.prelu_one = nn.PReLU()
        self.fc = nn.ModuleList([nn.Linear(32 if k == 0 else 16, 16) for k in range(7)])
        self.head = nn.Linear(16, 5)
        with torch.no_grad():  # slopes that differ, so each one's place is checked
            self.prelu_channels.weight.copy_(torch.linspace(-0.5, 0.9, 8))
            self.prelu_one.weight.fill_(0.3)
            for linear in [*self.fc, self.head]:  # wide enough that the samples stay apart
                nn.init.normal_(linear.weight, std=1.5 / linear.in_features ** 0.5)

    def forward(self, x):
        x = F.mish(self.prelu_channels(self.conv((x - 0.5) * 4)))
        x = torch.flatten(F.max_pool2d(x, 4), 1)
        fc = iter(self.fc)
        x = F.elu(next(fc)(x), alpha=0.7)
        x = F.selu(next(fc)(x))
        x = F.softplus(next(fc)(x))
        x = F.softsign(next(fc)(x))
        x = F.gelu(next(fc)(x), approximate="tanh")
        x = self.prelu_one(next(fc)(x))
        x = torch.exp(next(fc)(x) * 0.1)
        return F.log_softmax(self.head(x), dim=1)


class Mlp(nn.Module):
    """The classic MNIST MLP of PyTorch's tutorials: a grey image flattened into two Linear
    layers (exported at a fixed batch size of 1, its Flatten is a Reshape to [1, features])."""

    def __init__(self):
        super().__init__()
        self.layers = nn.Sequential(nn.Flatten(), nn.Linear(36, 10), nn.ReLU(), nn.Linear(10, 4))

    def forward(self, x):
        return self.layers(x)


class LstmClassifier(nn.Module):
    """A text classifier as PyTorch tutorials write it: token embeddings, a two-layer LSTM
    (batch_first), the last step's output, a linear head."""

    def __init__(self):
        super().__init__()
        self.embedding = nn.Embedding(50, 8)
        self.lstm = nn.LSTM(8, 12, num_layers=2, batch_first=True)
        self.head = nn.Linear(12, 3)

    def forward(self, x):
        out, _ = self.lstm(self.embedding(x))
        return self.head(out[:, -1, :])


class BidirectionalGru(nn.Module):
    """A bidirectional GRU over feature sequences (batch_first): both directions' outputs at
    the last step joined, plus their mean over the steps; a linear head."""

    def __init__(self):
        super().__init__()
        self.gru = nn.GRU(5, 7, batch_first=True, bidirectional=True)
        self.head = nn.Linear(14, 4)

    def forward(self, x):
        out, _ = self.gru(x)
        return self.head(out[:, -1, :] + out.mean(dim=1))


class BidirectionalLstmStates(nn.Module):
    """A two-layer bidirectional LSTM classifier as sentiment tutorials write it: the last
    layer's final states of both directions joined, `torch.cat((h[-2], h[-1]), dim=1)`."""

    def __init__(self):
        super().__init__()
        self.embedding = nn.Embedding(40, 6)
        self.lstm = nn.LSTM(6, 5, num_layers=2, bidirectional=True, batch_first=True)
        self.head = nn.Linear(10, 2)

    def forward(self, x):
        _, (h, _) = self.lstm(self.embedding(x))
        return self.head(torch.cat((h[-2], h[-1]), dim=1))


class BackwardState(nn.Module):
    """A bidirectional GRU read through `h[-1]` alone, the backward direction's final state (a
    common slip for `torch.cat((h[-2], h[-1]), 1)`, but a model people train and export)."""

    def __init__(self):
        super().__init__()
        self.gru = nn.GRU(5, 7, batch_first=True, bidirectional=True)
        self.head = nn.Linear(7, 3)

    def forward(self, x):
        _, h = self.gru(x)
        return self.head(h[-1])


class RecurrentStates(nn.Module):
    """Time-major sequences (batch_first=False) and final states: an RNN with ReLU whose final
    state `h[-1]` is all that is read, a GRU whose outputs and final state are both read.
    TorchScript's exporter only: torch.export writes `nn.RNN` unrolled, a MatMul per step."""

    def __init__(self):
        super().__init__()
        self.rnn = nn.RNN(5, 6, nonlinearity="relu")
        self.gru = nn.GRU(5, 6)
        self.head = nn.Linear(6, 3)

    def forward(self, x):
        steps = x.transpose(0, 1)
        _, h = self.rnn(steps)
        out, g = self.gru(steps)
        return self.head(h[-1] + out[-1] * g[-1] + out.mean(dim=0))


class TimeMajorTagger(nn.Module):
    """A sequence tagger kept time-major, as `batch_first=False` code is: an LSTM, then per
    step a Linear with ReLU, a residual, LayerNorm, a positional encoding buffer of shape
    (steps, 1, features) added (PyTorch's tutorial's `pe[:x.size(0)]`), GELU, a Linear to the
    tags and log_softmax, transposed back to (N, steps, tags)."""

    def __init__(self):
        super().__init__()
        self.embedding = nn.Embedding(30, 8)
        self.lstm = nn.LSTM(8, 12)
        self.project = nn.Linear(12, 12)
        self.norm = nn.LayerNorm(12)
        self.register_buffer("position", torch.randn(20, 1, 12, generator=torch.Generator().manual_seed(5)) * 0.1)
        self.tags = nn.Linear(12, 5)

    def forward(self, x):
        steps = self.embedding(x).transpose(0, 1)
        y, _ = self.lstm(steps)
        h = self.norm(torch.relu(self.project(y)) + y)
        h = h + self.position[: h.size(0)]
        return F.log_softmax(self.tags(F.gelu(h)), dim=-1).transpose(0, 1)


def randomize_biases(model):
    """Draws every bias (PyTorch starts the attention's at zero): torch.export's optimizer
    would otherwise share one zero initializer among them, and the test could not see each
    bias reach its own layer."""
    generator = torch.Generator().manual_seed(11)
    with torch.no_grad():
        for name, parameter in model.named_parameters():
            if name.endswith("bias"):
                parameter.copy_(torch.randn(parameter.shape, generator=generator) * 0.1)


class TransformerClassifier(nn.Module):
    """A text classifier on PyTorch's own Transformer modules: token embeddings, a learned
    position embedding, `nn.TransformerEncoder` of two `nn.TransformerEncoderLayer`s
    (`batch_first`, 2 heads, ReLU feed-forward, post-norm), the mean over the steps, a head.
    With `time_major`, the same kept (steps, N, features) as `batch_first=False` code is, with
    the tutorial's sinusoidal positional encoding buffer `pe[:x.size(0)]` of shape (steps, 1,
    features) instead of the learned one."""

    def __init__(self, time_major=False):
        super().__init__()
        self.time_major = time_major
        self.embedding = nn.Embedding(40, 16)
        self.position = nn.Parameter(torch.randn(1, 12, 16) * 0.1)
        position = torch.arange(20).unsqueeze(1)
        frequency = torch.exp(torch.arange(0, 16, 2) * (-math.log(10000.0) / 16))
        encoding = torch.zeros(20, 1, 16)
        encoding[:, 0, 0::2] = torch.sin(position * frequency)
        encoding[:, 0, 1::2] = torch.cos(position * frequency)
        self.register_buffer("encoding", encoding)
        layer = nn.TransformerEncoderLayer(16, 2, dim_feedforward=32, dropout=0.1, batch_first=not time_major)
        self.encoder = nn.TransformerEncoder(layer, num_layers=2, enable_nested_tensor=False)
        self.head = nn.Linear(16, 3)
        randomize_biases(self)

    def forward(self, x):
        h = self.embedding(x)
        if self.time_major:
            h = h.transpose(0, 1)
            h = self.encoder(h + self.encoding[: h.size(0)])
            return self.head(h.mean(dim=0))
        h = self.encoder(h + self.position[:, : h.size(1)])
        return self.head(h.mean(dim=1))


def tiny_torchvision_vit():
    """torchvision's `VisionTransformer` (vit_b_16's architecture: class token, learned
    positions, `nn.MultiheadAttention` in pre-norm blocks) at 32×32 with 8×8 patches, hidden
    16, 2 heads, 2 layers, 5 classes; every weight drawn (torchvision starts the head at zero)."""
    import torchvision

    model = torchvision.models.VisionTransformer(image_size=32, patch_size=8, num_layers=2, num_heads=2,
                                                 hidden_dim=16, mlp_dim=32, num_classes=5)
    generator = torch.Generator().manual_seed(3)
    with torch.no_grad():
        for parameter in model.parameters():
            parameter.copy_(torch.randn(parameter.shape, generator=generator) * 0.2)
    return model


class AttentionPooling(nn.Module):
    """`nn.MultiheadAttention` used directly (self-attention, `batch_first`, 4 heads) on
    projected features, as `need_weights=False` calls it (fused attention in the export), or
    with `need_weights` (PyTorch's default: explicit `bmm`s of the heads merged with the batch,
    the averaged weights left unread); the first step's output to a head."""

    def __init__(self, need_weights=False):
        super().__init__()
        self.need_weights = need_weights
        self.project = nn.Linear(6, 16)
        self.attention = nn.MultiheadAttention(16, 4, batch_first=True)
        self.head = nn.Linear(16, 2)
        randomize_biases(self)

    def forward(self, x):
        h = torch.tanh(self.project(x))
        a, _ = self.attention(h, h, h, need_weights=self.need_weights)
        return self.head(a[:, 0] + h[:, 0])


class CausalSelfAttention(nn.Module):
    """A character model's causal self-attention as people write it by hand (nanoGPT's): token
    and learned position embeddings, one packed `Linear` split into queries, keys and values,
    heads by `view` and `transpose`, `masked_fill` of the scores by a lower-triangular buffer
    (`-inf` above the diagonal), softmax, the heads merged back by `view`, a projection, a
    residual and a head; 4 heads of 4 over 8 steps."""

    def __init__(self):
        super().__init__()
        self.embed = nn.Embedding(20, 16)
        self.position = nn.Parameter(torch.randn(1, 8, 16) * 0.5)
        self.qkv = nn.Linear(16, 48)
        self.proj = nn.Linear(16, 16)
        self.head = nn.Linear(16, 5)
        self.register_buffer("mask", torch.tril(torch.ones(8, 8)).view(1, 1, 8, 8))
        randomize_biases(self)

    def forward(self, ids):
        x = self.embed(ids) + self.position
        n, t, c = x.shape
        q, k, v = self.qkv(x).split(c, dim=2)
        q, k, v = (z.view(n, t, 4, c // 4).transpose(1, 2) for z in (q, k, v))
        scores = (q @ k.transpose(-2, -1)) * (1.0 / math.sqrt(c // 4))
        scores = scores.masked_fill(self.mask[:, :, :t, :t] == 0, float("-inf"))
        y = F.softmax(scores, dim=-1) @ v
        y = y.transpose(1, 2).contiguous().view(n, t, c)
        return self.head(self.proj(y) + x)


class Upsampling(nn.Module):
    """A decoder's upsampling as PyTorch writes it: `F.interpolate` by a factor ("nearest") and
    to a size ("nearest", 3x), `nn.Upsample` bilinear (align_corners=False); between them
    `torch.maximum` and `torch.minimum` of two maps (`Max`, `Min`)."""

    def __init__(self):
        super().__init__()
        self.a = nn.Conv2d(3, 4, 3, padding=1)
        self.b = nn.Conv2d(4, 4, 3, padding=1)
        self.up = nn.Upsample(scale_factor=2, mode="bilinear", align_corners=False)
        self.c = nn.Conv2d(4, 2, 3, stride=2)

    def forward(self, x):
        x = F.interpolate(torch.tanh(self.a(x)), scale_factor=2, mode="nearest")  # 4x4 -> 8x8
        y = self.b(x)
        x = torch.minimum(torch.maximum(x, y), torch.sigmoid(y))
        x = F.interpolate(x, size=(24, 24), mode="nearest")  # 8x8 -> 24x24
        return self.c(self.up(x))  # 24x24 -> 48x48 -> 23x23


def randomize_batch_norms(model, generator):
    """Gives batch norms statistics other than 0 and 1, so folding them is checked."""
    for module in model.modules():
        if isinstance(module, (nn.BatchNorm1d, nn.BatchNorm2d)):
            n = module.num_features
            module.running_mean.copy_(torch.randn(n, generator=generator) * 0.3)
            module.running_var.copy_(torch.rand(n, generator=generator) + 0.5)
            module.weight.data.copy_(torch.rand(n, generator=generator) + 0.5)
            module.bias.data.copy_(torch.randn(n, generator=generator) * 0.2)


def export(model, shape, folder, name, dynamo=False, external=False, tokens=None, padding=None, opset=None,
           static_batch=False):
    """Exports `model` on a random input of `shape` (token ids below `tokens` when given, the
    first row ending in three `padding` ids when given) and writes the fixture trio (the ids
    stored as floats, as strata takes them). With `static_batch`, torch.export fixes the batch
    size to the example's, as `torch.onnx.export(model, (x,), path)` does by default."""
    generator = torch.Generator().manual_seed(sum(map(ord, name)))
    with torch.no_grad():
        randomize_batch_norms(model, generator)
    model.eval()
    if tokens:
        x = torch.randint(0, tokens, shape, generator=generator)
        if padding is not None:
            x[0, -3:] = padding
    else:
        x = torch.rand(*shape, generator=generator)
    path = os.path.join(folder, name + ".onnx")
    if dynamo:
        batch = None if static_batch else ({0: torch.export.Dim("N", min=1, max=1024)},)
        torch.onnx.export(model, (x,), path, dynamo=True, opset_version=opset or 18, input_names=["input"],
                          output_names=["output"], dynamic_shapes=batch, external_data=False)
    else:
        torch.onnx.export(model, (x,), path, dynamo=False, opset_version=opset or 17, input_names=["input"],
                          output_names=["output"], dynamic_axes={"input": {0: "N"}, "output": {0: "N"}})
    if external:
        proto = onnx.load(path)
        data = name + ".weights"
        onnx.save_model(proto, path, save_as_external_data=True, all_tensors_to_one_file=True,
                        location=data, size_threshold=0)
    onnx.checker.check_model(path)
    session = onnxruntime.InferenceSession(path, providers=["CPUExecutionProvider"])
    (output,) = session.run(None, {"input": x.numpy()})
    with torch.no_grad():
        reference = model(x).numpy()
    assert np.allclose(output, reference, atol=1e-4), f"{name}: onnxruntime and torch disagree"
    np.save(os.path.join(folder, name + ".input.npy"), x.numpy().astype(np.float32))
    np.save(os.path.join(folder, name + ".output.npy"), output.astype(np.float32))
    print(f"{name}: {os.path.getsize(path)} bytes, input {tuple(shape)}, output {output.shape}")


# The classifiers of issue 17's import parity, which CI checks from their stripped graphs.
TORCHVISION = ["resnet18", "mobilenet_v2", "mobilenet_v3_small", "efficientnet_b0", "squeezenet1_1", "densenet121",
               "resnext50_32x4d"]


def export_stripped(names, folder, dynamo=False):
    """Exports torchvision's `names` at 224x224 (dynamic batch, opset 17, the TorchScript
    exporter as for `--large`; with `dynamo`, opset 18 and the torch.export exporter that
    `torch.onnx.export` uses by default since PyTorch 2.9, as NAME_dynamo.onnx) and writes their
    graphs without weight values to `folder`."""
    import torchvision

    from strip_onnx_weights import strip

    for name in names:
        model = getattr(torchvision.models, name)(num_classes=1000).eval()
        with torch.no_grad():
            # As trained weights would: without, the exporter shares the equal zero and one
            # tensors of fresh batch norms between layers through Identity nodes.
            randomize_batch_norms(model, torch.Generator().manual_seed(sum(map(ord, name))))
        x = torch.rand(1, 3, 224, 224)
        fixture = name + "_dynamo" if dynamo else name
        with tempfile.TemporaryDirectory() as scratch:
            path = os.path.join(scratch, fixture + ".onnx")
            if dynamo:
                batch = ({0: torch.export.Dim("N", min=1, max=1024)},)
                torch.onnx.export(model, (x,), path, dynamo=True, opset_version=18, input_names=["input"],
                                  output_names=["output"], dynamic_shapes=batch, external_data=False)
            else:
                torch.onnx.export(model, (x,), path, dynamo=False, opset_version=17, input_names=["input"],
                                  output_names=["output"], dynamic_axes={"input": {0: "N"}, "output": {0: "N"}})
            proto = onnx.load(path)
        exporter = "torch.export exporter" if dynamo else "TorchScript exporter"
        source = f"torchvision {torchvision.__version__} {name}, torch {torch.__version__}, {exporter}"
        dropped = strip(proto, source)
        out = os.path.join(folder, fixture + ".onnx")
        onnx.save(proto, out)
        print(f"{name}: {os.path.getsize(out)} bytes, {len(proto.graph.node)} nodes, {dropped} weight values stripped")


def main():
    args = sys.argv[1:]
    large = "--large" in args
    stripped = "--torchvision" in args
    stripped_dynamo = "--torchvision-dynamo" in args
    args = [a for a in args if a not in ("--large", "--torchvision", "--torchvision-dynamo")]
    folder = args[0] if args else "tests/fixtures/onnx_import"
    os.makedirs(folder, exist_ok=True)
    torch.manual_seed(0)
    if stripped or stripped_dynamo:
        export_stripped(args[1:] or TORCHVISION, folder, dynamo=stripped_dynamo)
        return
    if large:
        import torchvision

        names = args[1:] or ["resnet18", "mobilenet_v2"]
        for name in names:
            export(getattr(torchvision.models, name)(num_classes=1000), (2, 3, 64, 64), folder, name)
        return
    fixtures = {
        "small_cnn": lambda: export(SmallCnn(), (2, 3, 12, 12), folder, "small_cnn"),
        "small_cnn_dynamo": lambda: export(SmallCnn(), (2, 3, 12, 12), folder, "small_cnn_dynamo", dynamo=True),
        "small_cnn_external": lambda: export(SmallCnn(), (2, 3, 12, 12), folder, "small_cnn_external", external=True),
        "ops": lambda: export(Ops(), (2, 3, 8, 8), folder, "ops"),
        "tiny_resnet": lambda: export(TinyResNet(), (2, 3, 32, 32), folder, "tiny_resnet"),
        "tiny_mobilenet": lambda: export(tiny_mobilenet(), (2, 3, 32, 32), folder, "tiny_mobilenet"),
        "grouped_convs": lambda: export(GroupedConvs(), (2, 3, 8, 8), folder, "grouped_convs"),
        "conv1d": lambda: export(Conv1dNet(), (2, 4, 16), folder, "conv1d"),
        "tiny_bert": lambda: export(tiny_bert("eager"), (2, 16), folder, "tiny_bert", tokens=100),
        "tiny_bert_classifier": lambda: export(tiny_bert("sdpa", classifier=True), (2, 16), folder,
                                               "tiny_bert_classifier", tokens=100),
        "tiny_roberta": lambda: export(tiny_roberta(), (2, 16), folder, "tiny_roberta", tokens=100, padding=1),
        "tiny_roberta_dynamo": lambda: export(tiny_roberta(), (2, 16), folder, "tiny_roberta_dynamo", dynamo=True,
                                              tokens=100, padding=1),
        "tiny_vit": lambda: export(tiny_vit(), (2, 3, 32, 32), folder, "tiny_vit"),
        "tiny_vit_dynamo": lambda: export(tiny_vit(), (2, 3, 32, 32), folder, "tiny_vit_dynamo", dynamo=True),
        "tiny_deit": lambda: export(tiny_deit(), (2, 3, 32, 32), folder, "tiny_deit"),
        "lstm_classifier": lambda: export(LstmClassifier(), (2, 9), folder, "lstm_classifier", tokens=50),
        "lstm_classifier_dynamo": lambda: export(LstmClassifier(), (2, 9), folder, "lstm_classifier_dynamo",
                                                 dynamo=True, tokens=50),
        "bidirectional_gru": lambda: export(BidirectionalGru(), (2, 6, 5), folder, "bidirectional_gru"),
        "bidirectional_gru_dynamo": lambda: export(BidirectionalGru(), (2, 6, 5), folder, "bidirectional_gru_dynamo",
                                                   dynamo=True),
        "bidirectional_lstm_states": lambda: export(BidirectionalLstmStates(), (2, 8), folder,
                                                    "bidirectional_lstm_states", tokens=40),
        "bidirectional_lstm_states_dynamo": lambda: export(BidirectionalLstmStates(), (2, 8), folder,
                                                           "bidirectional_lstm_states_dynamo", dynamo=True, tokens=40),
        "causal_self_attention": lambda: export(CausalSelfAttention(), (2, 8), folder, "causal_self_attention",
                                                tokens=20),
        "causal_self_attention_dynamo": lambda: export(CausalSelfAttention(), (2, 8), folder,
                                                       "causal_self_attention_dynamo", dynamo=True, tokens=20),
        "causal_conv1d": lambda: export(CausalConv1d(), (2, 3, 10), folder, "causal_conv1d"),
        "causal_conv1d_dynamo": lambda: export(CausalConv1d(), (2, 3, 10), folder, "causal_conv1d_dynamo",
                                               dynamo=True),
        "upsampling": lambda: export(Upsampling(), (2, 3, 4, 4), folder, "upsampling"),
        "upsampling_dynamo": lambda: export(Upsampling(), (2, 3, 4, 4), folder, "upsampling_dynamo", dynamo=True),
        "time_major_tagger": lambda: export(TimeMajorTagger(), (2, 7), folder, "time_major_tagger", tokens=30),
        "time_major_tagger_dynamo": lambda: export(TimeMajorTagger(), (2, 7), folder, "time_major_tagger_dynamo",
                                                   dynamo=True, tokens=30),
        "transformer_classifier": lambda: export(TransformerClassifier(), (2, 12), folder, "transformer_classifier",
                                                 tokens=40),
        "transformer_classifier_dynamo": lambda: export(TransformerClassifier(), (2, 12), folder,
                                                        "transformer_classifier_dynamo", dynamo=True, tokens=40),
        "transformer_time_major_dynamo": lambda: export(TransformerClassifier(time_major=True), (2, 12), folder,
                                                        "transformer_time_major_dynamo", dynamo=True, tokens=40),
        "attention_pooling_dynamo": lambda: export(AttentionPooling(), (2, 5, 6), folder, "attention_pooling_dynamo",
                                                   dynamo=True),
        "tiny_torchvision_vit": lambda: export(tiny_torchvision_vit(), (2, 3, 32, 32), folder, "tiny_torchvision_vit"),
        "tiny_torchvision_vit_dynamo": lambda: export(tiny_torchvision_vit(), (2, 3, 32, 32), folder,
                                                      "tiny_torchvision_vit_dynamo", dynamo=True),
        "tiny_torchvision_vit_static_batch": lambda: export(tiny_torchvision_vit(), (2, 3, 32, 32), folder,
                                                            "tiny_torchvision_vit_static_batch", dynamo=True,
                                                            static_batch=True),
        "attention_weights": lambda: export(AttentionPooling(need_weights=True), (2, 5, 6), folder, "attention_weights"),
        "attention_weights_dynamo": lambda: export(AttentionPooling(need_weights=True), (2, 5, 6), folder,
                                                   "attention_weights_dynamo", dynamo=True),
        "backward_state": lambda: export(BackwardState(), (2, 6, 5), folder, "backward_state"),
        "backward_state_dynamo": lambda: export(BackwardState(), (2, 6, 5), folder, "backward_state_dynamo",
                                                dynamo=True),
        "recurrent_states": lambda: export(RecurrentStates(), (2, 6, 5), folder, "recurrent_states"),
        "activations": lambda: export(Activations(), (2, 3, 8, 8), folder, "activations"),
        "activations_dynamo": lambda: export(Activations(), (2, 3, 8, 8), folder, "activations_dynamo", dynamo=True),
        "mlp_static_batch": lambda: export(Mlp(), (1, 1, 6, 6), folder, "mlp_static_batch", dynamo=True,
                                           static_batch=True),
        "lstm_classifier_static_batch": lambda: export(LstmClassifier(), (1, 9), folder,
                                                       "lstm_classifier_static_batch", dynamo=True, tokens=50,
                                                       static_batch=True),
        "activations_opset20": lambda: export(Activations(), (2, 3, 8, 8), folder, "activations_opset20", dynamo=True,
                                              opset=20),
    }
    for name in args[1:] or fixtures:
        fixtures[name]()


if __name__ == "__main__":
    main()
