"""Exports the same PyTorch models through both exporters at several opsets, and the
architectures people export, for ONNX import's survey (issue 17): which graphs strata reads.

    /tmp/venv-onnx/bin/python tools/onnx_general_fixtures.py --survey OUT [NAME ... | zoo | hf]
    STRATA_ONNX_LARGE=OUT cargo test --release --test onnx_import -- --ignored torchvision --nocapture
    STRATA_ONNX_SURVEY=OUT cargo test --release --test onnx_gaps -- --ignored survey --nocapture
    /tmp/venv-onnx/bin/python tools/onnx_general_fixtures.py --table OUT
    /tmp/venv-onnx/bin/python tools/onnx_general_fixtures.py tests/fixtures/onnx_general [NAME ...]

The venv needs torch, torchvision, onnx, onnxruntime, onnxscript, numpy and transformers (as for
tools/onnx_import_fixtures.py, whose small models this reuses). `--survey` writes, for each
model and each exporter and opset it is exported at, OUT/MODEL_EXPORTER_OPSET.onnx (EXPORTER
`ts`, the TorchScript exporter, `dynamo=False`, or `dynamo`, `torch.export`), its input and ONNX
Runtime's output (the layout the ignored test of tests/onnx_import.rs checks within 1e-4), and
OUT/survey.txt: what exported and what the exporter refused. `zoo` stands for the rest of
torchvision's classifiers (ZOO), `hf` for Hugging Face's text and image models (HF). The
ignored `survey_the_exported_zoo` of tests/onnx_gaps.rs
imports each file and writes OUT/strata.txt (within 1e-4 of ONNX Runtime relative to the
outputs' deviation, or why strata refused), and `--table OUT` joins the two. Without `--survey` it writes the
small fixtures tests/onnx_import.rs checks (committed, a few hundred KB together): the opset
spread of small models and the architectures that are small enough at a small size, and in
masked/ Hugging Face models exported with an attention mask input (`write_masked`).
"""

import os
import re
import sys
import tempfile
import time

import numpy as np
import onnx
import onnxruntime
import torch

from onnx_import_fixtures import Ops, SmallCnn, TinyResNet, randomize_batch_norms, tiny_bert, tiny_mobilenet

# Opsets of each exporter: the TorchScript exporter's spread, and torch.export's (18 is its
# own; older ones go through ONNX's version converter, newer ones are its newest).
TS_OPSETS = [11, 13, 17, 18, 20]
DYNAMO_OPSETS = [18, 20, 23]


def torchvision_model(name, **options):
    """A torchvision classifier with random weights (no download)."""
    import torchvision

    return lambda: getattr(torchvision.models, name)(weights=None, **options)


def tiny_convnext():
    """torchvision's ConvNeXt with two narrow stages of one block each: its depthwise 7x7
    convolutions, per-pixel Linear layers, LayerNorm2d and the pooled map torch.export writes
    as an `as_strided` (a Reshape to [-1] and a Gather by indices computed from the batch size)."""
    from torchvision.models.convnext import CNBlockConfig, ConvNeXt

    return ConvNeXt([CNBlockConfig(8, 16, 1), CNBlockConfig(16, None, 1)], num_classes=5)


def distilbert(classifier):
    """A Hugging Face DistilBERT with random weights: dim 32, 4 heads, 2 layers, 16 tokens."""
    import transformers

    config = transformers.DistilBertConfig(vocab_size=100, dim=32, n_layers=2, n_heads=4, hidden_dim=64,
                                           max_position_embeddings=32, num_labels=3, initializer_range=0.3,
                                           attn_implementation="eager")
    if classifier:
        return Logits(transformers.DistilBertForSequenceClassification(config))
    return Hidden(transformers.DistilBertModel(config))


class Normalizations(torch.nn.Module):
    """Images through GroupNorm (a Reshape to (N, G, -1), InstanceNormalization and a Reshape
    back, with both exporters) and InstanceNorm2d with its affine weights."""

    def __init__(self):
        super().__init__()
        self.conv = torch.nn.Conv2d(3, 8, 3)
        self.group = torch.nn.GroupNorm(4, 8)
        self.instance = torch.nn.InstanceNorm2d(8, affine=True)
        self.head = torch.nn.Conv2d(8, 4, 1)
        for norm in (self.group, self.instance):
            torch.nn.init.normal_(norm.weight, 1.0, 0.5)
            torch.nn.init.normal_(norm.bias, 0.0, 0.5)

    def forward(self, x):
        return self.head(self.instance(torch.relu(self.group(self.conv(x)))))


class Sequences(torch.nn.Module):
    """(N, C, L) sequences: Conv1d, MaxPool1d, GroupNorm over the steps, AvgPool1d, the mean
    over the steps repeated with `expand`."""

    def __init__(self):
        super().__init__()
        self.conv = torch.nn.Conv1d(3, 8, 3)
        self.norm = torch.nn.GroupNorm(2, 8)
        torch.nn.init.normal_(self.norm.weight, 1.0, 0.5)
        torch.nn.init.normal_(self.norm.bias, 0.0, 0.5)

    def forward(self, x):
        x = torch.nn.functional.avg_pool1d(self.norm(torch.nn.functional.max_pool1d(self.conv(x), 2)), 2)
        return x + x.mean(dim=2, keepdim=True).expand(-1, -1, x.shape[2])


class Hidden(torch.nn.Module):
    """A transformer's last hidden state from token ids (or images) alone."""

    def __init__(self, inner):
        super().__init__()
        self.inner = inner

    def forward(self, ids):
        return self.inner(ids).last_hidden_state


class Logits(torch.nn.Module):
    """A transformer's logits from token ids (or images) alone."""

    def __init__(self, inner):
        super().__init__()
        self.inner = inner

    def forward(self, ids):
        return self.inner(ids).logits


def hugging_face(family, head="hidden", **sizes):
    """A Hugging Face model of `family` (`transformers.{family}Config` / `{family}Model`, or
    `{family}{head}` for a head, such as `ForSequenceClassification`, or another model class
    such as `EncoderModel`) with random weights at a tiny size: hidden 32, 4 heads, 2
    layers, a 100-token vocabulary, eager attention, weights of standard deviation 0.3."""
    import transformers

    def make():
        options = dict(vocab_size=100, hidden_size=32, num_hidden_layers=2, num_attention_heads=4,
                       intermediate_size=64, max_position_embeddings=64, num_labels=3, initializer_range=0.3,
                       attn_implementation="eager")
        options.update(sizes)
        # None leaves a size to the family's own default (Swin derives its width per stage).
        options = {k: v for k, v in options.items() if v is not None}
        config = getattr(transformers, f"{family}Config")(**options)
        if head in ("hidden", "EncoderModel"):
            return Hidden(getattr(transformers, family + ("Model" if head == "hidden" else head))(config))
        return Logits(getattr(transformers, f"{family}{head}")(config))

    return make


class Masked(torch.nn.Module):
    """A Hugging Face model called as exported for serving: token ids and an attention mask (1
    for a token, 0 for padding), its logits or last hidden state out."""

    def __init__(self, inner):
        super().__init__()
        self.inner = inner

    def forward(self, ids, mask):
        out = self.inner(input_ids=ids, attention_mask=mask)
        return out.logits if hasattr(out, "logits") else out.last_hidden_state


def write_masked(name, make, shape, tokens, exporter, opset, folder):
    """Exports `make()` (wrapped by `Masked`) with two inputs, `input_ids` and `attention_mask`
    (the first sample padded in its last 5 steps, the second not), and writes NAME.onnx,
    NAME.input.npy, NAME.mask.npy and ONNX Runtime's NAME.output.npy."""
    torch.manual_seed(0)
    model = Masked(make().inner).eval()
    generator = torch.Generator().manual_seed(sum(map(ord, name)))
    ids = torch.randint(0, tokens, shape, generator=generator)
    mask = torch.ones(shape, dtype=torch.long)
    mask[0, -5:] = 0
    stem = f"{name}_{exporter}{opset}"
    path = os.path.join(folder, stem + ".onnx")
    names = ["input_ids", "attention_mask"]
    if exporter == "ts":
        axes = {"input_ids": {0: "N"}, "attention_mask": {0: "N"}, "output": {0: "N"}}
        torch.onnx.export(model, (ids, mask), path, dynamo=False, opset_version=opset, input_names=names,
                          output_names=["output"], dynamic_axes=axes)
    else:
        batch = torch.export.Dim("N", min=1, max=1024)
        torch.onnx.export(model, (ids, mask), path, dynamo=True, opset_version=opset, input_names=names,
                          output_names=["output"], dynamic_shapes=({0: batch}, {0: batch}), external_data=False)
    session = onnxruntime.InferenceSession(path, providers=["CPUExecutionProvider"])
    (output,) = session.run(None, {"input_ids": ids.numpy(), "attention_mask": mask.numpy()})
    with torch.no_grad():
        agree = float(np.max(np.abs(output - model(ids, mask).numpy())))
    np.save(os.path.join(folder, stem + ".input.npy"), ids.numpy().astype(np.float32))
    np.save(os.path.join(folder, stem + ".mask.npy"), mask.numpy().astype(np.float32))
    np.save(os.path.join(folder, stem + ".output.npy"), output.astype(np.float32))
    return f"{stem}: {os.path.getsize(path)} bytes, output {output.shape}, torch vs ONNX Runtime {agree:.2g}"


# name: (make the model, input shape, token count for id inputs or None, opsets per exporter).
SPREAD = {"ts": TS_OPSETS, "dynamo": DYNAMO_OPSETS}
LIGHT = {"ts": [17], "dynamo": [18]}
OLD_AND_NEW = {"ts": [11, 17], "dynamo": [18]}
MODELS = {
    "normalizations": (Normalizations, (2, 3, 10, 10), None, LIGHT),
    "sequences": (Sequences, (2, 3, 22), None, LIGHT),
    "small_cnn": (SmallCnn, (2, 3, 12, 12), None, SPREAD),
    "ops": (Ops, (2, 3, 8, 8), None, SPREAD),
    "tiny_resnet": (TinyResNet, (2, 3, 32, 32), None, SPREAD),
    "tiny_mobilenet": (tiny_mobilenet, (2, 3, 32, 32), None, SPREAD),
    "tiny_convnext": (tiny_convnext, (2, 3, 16, 16), None, OLD_AND_NEW),
    "tiny_bert": (lambda: tiny_bert("eager"), (2, 16), 100, SPREAD),
    "distilbert": (lambda: distilbert(False), (2, 16), 100, OLD_AND_NEW),
    "distilbert_classifier": (lambda: distilbert(True), (2, 16), 100, LIGHT),
    "mobilenet_v3_small": (torchvision_model("mobilenet_v3_small"), (2, 3, 64, 64), None, OLD_AND_NEW),
    "efficientnet_b0": (torchvision_model("efficientnet_b0"), (2, 3, 64, 64), None, LIGHT),
    "shufflenet_v2_x0_5": (torchvision_model("shufflenet_v2_x0_5"), (2, 3, 64, 64), None, SPREAD),
    "mnasnet0_5": (torchvision_model("mnasnet0_5"), (2, 3, 64, 64), None, SPREAD),
    "regnet_y_400mf": (torchvision_model("regnet_y_400mf"), (2, 3, 64, 64), None, LIGHT),
    "convnext_tiny": (torchvision_model("convnext_tiny"), (2, 3, 64, 64), None, OLD_AND_NEW),
    "googlenet": (torchvision_model("googlenet", aux_logits=False, init_weights=True), (2, 3, 64, 64), None, LIGHT),
    "mobilenet_v3_large": (torchvision_model("mobilenet_v3_large"), (2, 3, 64, 64), None, LIGHT),
    # Its adaptive pooling to 7x7 exports at 224x224 only (the 7x7 map it already is).
    "vgg11": (torchvision_model("vgg11"), (2, 3, 224, 224), None, {"ts": [17], "dynamo": [18]}),
}

# The rest of torchvision's classification zoo (`--survey OUT zoo`), one model per family, at
# the smallest input each architecture takes (64x64 where it can; VGG and AlexNet end in an
# adaptive pooling to the 7x7 or 6x6 map they have at 224x224 only; Inception v3 needs 75x75;
# MaxViT's windows need multiples of 224), through both exporters at their usual opsets.
ZOO = {
    "resnet18": (torchvision_model("resnet18"), (2, 3, 64, 64), None, LIGHT),
    "resnet50": (torchvision_model("resnet50"), (2, 3, 64, 64), None, LIGHT),
    "resnext50_32x4d": (torchvision_model("resnext50_32x4d"), (2, 3, 64, 64), None, LIGHT),
    "wide_resnet50_2": (torchvision_model("wide_resnet50_2"), (2, 3, 64, 64), None, LIGHT),
    "regnet_x_400mf": (torchvision_model("regnet_x_400mf"), (2, 3, 64, 64), None, LIGHT),
    "regnet_y_400mf": MODELS["regnet_y_400mf"],
    "mnasnet0_5": (torchvision_model("mnasnet0_5"), (2, 3, 64, 64), None, LIGHT),
    "mobilenet_v2": (torchvision_model("mobilenet_v2"), (2, 3, 64, 64), None, LIGHT),
    "mobilenet_v3_small": (torchvision_model("mobilenet_v3_small"), (2, 3, 64, 64), None, LIGHT),
    "mobilenet_v3_large": MODELS["mobilenet_v3_large"],
    "efficientnet_b0": MODELS["efficientnet_b0"],
    "efficientnet_v2_s": (torchvision_model("efficientnet_v2_s"), (2, 3, 64, 64), None, LIGHT),
    "shufflenet_v2_x1_0": (torchvision_model("shufflenet_v2_x1_0"), (2, 3, 64, 64), None, LIGHT),
    "squeezenet1_0": (torchvision_model("squeezenet1_0"), (2, 3, 64, 64), None, LIGHT),
    "squeezenet1_1": (torchvision_model("squeezenet1_1"), (2, 3, 64, 64), None, LIGHT),
    "googlenet": MODELS["googlenet"],
    "inception_v3": (torchvision_model("inception_v3", aux_logits=False, init_weights=True), (2, 3, 75, 75), None,
                     LIGHT),
    "densenet121": (torchvision_model("densenet121"), (2, 3, 64, 64), None, LIGHT),
    "vgg11_bn": (torchvision_model("vgg11_bn"), (2, 3, 224, 224), None, LIGHT),
    "alexnet": (torchvision_model("alexnet"), (2, 3, 224, 224), None, LIGHT),
    "convnext_tiny": (torchvision_model("convnext_tiny"), (2, 3, 64, 64), None, LIGHT),
    "swin_t": (torchvision_model("swin_t"), (2, 3, 64, 64), None, LIGHT),
    "vit_b_16": (torchvision_model("vit_b_16", image_size=64), (2, 3, 64, 64), None, LIGHT),
    "maxvit_t": (torchvision_model("maxvit_t"), (2, 3, 224, 224), None, LIGHT),
}

# Hugging Face's text and image models as people export them (`--survey OUT hf`), at a tiny
# size with random weights, token ids (or images) as the one input.
HF = {
    "hf_bert_classifier": (hugging_face("Bert", "ForSequenceClassification"), (2, 16), 100, LIGHT),
    "hf_roberta": (hugging_face("Roberta", pad_token_id=1), (2, 16), 100, LIGHT),
    "hf_albert": (hugging_face("Albert", embedding_size=16), (2, 16), 100, LIGHT),
    "hf_electra_classifier": (hugging_face("Electra", "ForSequenceClassification", embedding_size=16), (2, 16), 100,
                              LIGHT),
    "hf_gpt2_lm": (hugging_face("GPT2", "LMHeadModel", n_embd=32, n_layer=2, n_head=4, n_positions=64), (2, 16), 100,
                   LIGHT),
    "hf_vit_classifier": (hugging_face("ViT", "ForImageClassification", image_size=32, patch_size=8), (2, 3, 32, 32),
                          None, LIGHT),
    "hf_opt_lm": (hugging_face("OPT", "ForCausalLM", ffn_dim=64, word_embed_proj_dim=32, pad_token_id=1), (2, 16),
                  100, LIGHT),
    # GPT-Neo alternates global and local (sliding-window) attention; strata's attention has
    # no window: the global-only variant imports, the usual one is refused by name.
    "hf_gpt_neo_lm": (hugging_face("GPTNeo", "ForCausalLM", num_layers=2, num_heads=4,
                                   attention_types=[[["global", "local"], 1]], window_size=8), (2, 16), 100, LIGHT),
    "hf_gpt_neo_global_lm": (hugging_face("GPTNeo", "ForCausalLM", num_layers=2, num_heads=4,
                                          attention_types=[[["global"], 2]]), (2, 16), 100, LIGHT),
    "hf_llama_lm": (hugging_face("Llama", "ForCausalLM", num_key_value_heads=2), (2, 16), 100, LIGHT),
    "hf_t5_encoder": (hugging_face("T5", "EncoderModel", d_model=32, d_kv=8, d_ff=64, num_layers=2, num_heads=4),
                      (2, 16), 100, LIGHT),
    "hf_mobilebert": (hugging_face("MobileBert", embedding_size=16, intra_bottleneck_size=16, true_hidden_size=16,
                                   initializer_range=0.02), (2, 16), 100, LIGHT),
    "hf_deit_classifier": (hugging_face("DeiT", "ForImageClassification", image_size=32, patch_size=8), (2, 3, 32, 32),
                           None, LIGHT),
    "hf_resnet_classifier": (hugging_face("ResNet", "ForImageClassification", embedding_size=8, hidden_sizes=[8, 16],
                                          depths=[1, 1]), (2, 3, 32, 32), None, LIGHT),
    "hf_convnext_classifier": (hugging_face("ConvNext", "ForImageClassification", hidden_sizes=[8, 16], depths=[1, 1],
                                            num_stages=2), (2, 3, 32, 32), None, LIGHT),
}



def export_file(model, x, path, exporter, opset):
    """Writes `model` on example `x` to `path` with a dynamic batch axis."""
    if exporter == "ts":
        torch.onnx.export(model, (x,), path, dynamo=False, opset_version=opset, input_names=["input"],
                          output_names=["output"], dynamic_axes={"input": {0: "N"}, "output": {0: "N"}})
    else:
        batch = torch.export.Dim("N", min=1, max=1024)
        torch.onnx.export(model, (x,), path, dynamo=True, opset_version=opset, input_names=["input"],
                          output_names=["output"], dynamic_shapes=({0: batch},), external_data=False)


def write(name, make, shape, tokens, exporter, opset, folder):
    """Exports one model at one opset into `folder` with its input and ONNX Runtime's output;
    returns a line for the survey."""
    start = time.perf_counter()
    torch.manual_seed(0)
    model = make().eval()
    generator = torch.Generator().manual_seed(sum(map(ord, name)))
    with torch.no_grad():
        randomize_batch_norms(model, generator)
    x = torch.randint(0, tokens, shape, generator=generator) if tokens else torch.rand(*shape, generator=generator)
    stem = f"{name}_{exporter}{opset}"
    path = os.path.join(folder, stem + ".onnx")
    try:
        with tempfile.TemporaryDirectory() as scratch:
            # The exporters write external data beside big models: load it back into one file.
            raw = os.path.join(scratch, "model.onnx")
            export_file(model, x, raw, exporter, opset)
            proto = onnx.load(raw)
        onnx.save(proto, path)
    except Exception as e:  # noqa: BLE001 - any exporter failure is a survey line
        reason = str(e).strip().splitlines()[0][:200] if str(e).strip() else type(e).__name__
        return f"{stem}: the exporter refuses: {reason}"
    opsets = {o.domain or "ai.onnx": o.version for o in proto.opset_import}
    session = onnxruntime.InferenceSession(path, providers=["CPUExecutionProvider"])
    (output,) = session.run(None, {session.get_inputs()[0].name: x.numpy()})
    with torch.no_grad():
        reference = model(x).numpy()
    agree = float(np.max(np.abs(output - reference)))
    np.save(os.path.join(folder, stem + ".input.npy"), x.numpy().astype(np.float32))
    np.save(os.path.join(folder, stem + ".output.npy"), output.astype(np.float32))
    ops = sorted({n.op_type for n in proto.graph.node})
    return (f"{stem}: {os.path.getsize(path)} bytes, opsets {opsets}, output {output.shape} deviation "
            f"{np.std(output):.3g}, torch vs ONNX Runtime {agree:.2g}, {time.perf_counter() - start:.1f} s, ops {ops}")


def survey(folder, names):
    """Every model of `names` at each of its exporters and opsets."""
    for name in names:
        make, shape, tokens, opsets = MODELS.get(name) or ZOO.get(name) or HF[name]
        for exporter, versions in opsets.items():
            for opset in versions:
                line = write(name, make, shape, tokens, exporter, opset, folder)
                print(line, flush=True)
                # Line by line: a survey of the zoo takes a while, and may be stopped.
                with open(os.path.join(folder, "survey.txt"), "a") as f:
                    f.write(line + "\n")


# The committed fixtures: (model, exporter, opset) small enough to keep.
COMMITTED = [
    ("tiny_mobilenet", "ts", 11),
    ("ops", "ts", 11),
    ("ops", "dynamo", 18),
    ("tiny_bert", "ts", 13),
    ("tiny_bert", "dynamo", 18),
    ("distilbert", "ts", 11),
    ("tiny_convnext", "dynamo", 18),
    ("hf_gpt2_lm", "ts", 17),
    ("hf_gpt2_lm", "dynamo", 18),
    ("hf_opt_lm", "ts", 17),
    ("hf_gpt_neo_global_lm", "ts", 17),
    ("hf_mobilebert", "ts", 17),
    ("normalizations", "ts", 17),
    ("normalizations", "dynamo", 18),
    ("sequences", "ts", 17),
    ("sequences", "dynamo", 18),
]

# Hugging Face models with an attention mask input (`write_masked`), each with both exporters.
MASKED = ["hf_bert_classifier", "hf_gpt2_lm", "hf_roberta"]


def table(folder):
    """Joins OUT/survey.txt (what each exporter wrote) and OUT/strata.txt (what strata made of
    it: the ignored test `survey_the_exported_zoo` of tests/onnx_gaps.rs) into one line per
    model and exporter, for the README's list."""
    verdicts = {}
    for path in ("survey.txt", "strata.txt"):
        with open(os.path.join(folder, path)) as f:
            for line in f:
                stem, _, rest = line.strip().partition(": ")
                if path == "survey.txt" and "the exporter refuses" not in rest:
                    verdicts.setdefault(stem, "exported, not run by strata")
                else:
                    verdicts[stem] = rest
    for stem in sorted(verdicts):
        verdict = verdicts[stem]
        # strata names every node of an unsupported operator: the operators are enough here.
        if "does not import:" in verdict:
            ops = dict.fromkeys(re.findall(r"(\w+) \(node '", verdict))
            verdict = "refused: operators " + ", ".join(ops)
        print(f"{stem}: {verdict[:300]}")


def main():
    args = sys.argv[1:]
    if not args:
        print(__doc__)
        return 1
    if args[0] == "--table":
        table(args[1])
        return 0
    if args[0] == "--survey":
        folder = args[1]
        os.makedirs(folder, exist_ok=True)
        names = args[2:] or list(MODELS)
        groups = {"zoo": ZOO, "hf": HF}
        survey(folder, [n for name in names for n in groups.get(name, [name])])
        return 0
    folder = args[0]
    os.makedirs(folder, exist_ok=True)
    wanted = set(args[1:])
    for name, exporter, opset in COMMITTED:
        if not wanted or name in wanted:
            make, shape, tokens, _ = MODELS.get(name) or HF[name]
            print(write(name, make, shape, tokens, exporter, opset, folder))
    masked_folder = os.path.join(folder, "masked")
    os.makedirs(masked_folder, exist_ok=True)
    for name in MASKED:
        if not wanted or name + "_masked" in wanted:
            make, shape, tokens, _ = HF[name]
            for exporter, opset in (("ts", 17), ("dynamo", 18)):
                print(write_masked(name + "_masked", make, shape, tokens, exporter, opset, masked_folder))
    return 0


if __name__ == "__main__":
    sys.exit(main())
