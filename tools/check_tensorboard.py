"""Reads a `strata train --tensorboard` run with TensorBoard's own reader and checks it.

    python check_tensorboard.py RUN_FOLDER HISTORY.json

RUN_FOLDER is the run's folder (with train/ and validation/), HISTORY.json the same run's
`--history` file. Checks that TensorBoard's EventAccumulator finds every epoch scalar at every
step with the History's value, a histogram and an image of every weight at every epoch, and
that an event file cut mid-record (a run killed while writing) still reads up to its last whole
record. Exits 1 with the differences otherwise. Needs only `pip install tensorboard`.
"""

import json
import os
import struct
import sys
import tempfile

from tensorboard.backend.event_processing import event_accumulator as ea

SIZE_GUIDANCE = {ea.SCALARS: 0, ea.HISTOGRAMS: 0, ea.IMAGES: 0, ea.TENSORS: 0}


def load(folder):
    accumulator = ea.EventAccumulator(folder, size_guidance=SIZE_GUIDANCE)
    accumulator.Reload()
    return accumulator


def f32(value):
    """`value` rounded to float32, as the event files store it."""
    return struct.unpack("f", struct.pack("f", value))[0]


def check_scalars(accumulator, tags, history, where, problems):
    epochs = len(history["epoch"])
    for tag, key in tags.items():
        if key not in history:
            continue
        if tag not in accumulator.Tags()["scalars"]:
            problems.append(f"{where}: no scalar {tag}")
            continue
        events = accumulator.Scalars(tag)
        steps = [e.step for e in events]
        if steps != list(range(epochs)):
            problems.append(f"{where}/{tag}: steps {steps}, expected 0..{epochs - 1}")
        values = [e.value for e in events]
        expected = [f32(v) for v in history[key]]
        if values != expected:
            problems.append(f"{where}/{tag}: {values} != History's {expected}")


def check_weights(accumulator, epochs, problems):
    tags = accumulator.Tags()
    histograms = [t for t in tags["histograms"] if t.endswith("/histogram")]
    images = [t for t in tags["images"] if t.endswith("/image")]
    if not histograms or len(images) != len(histograms):
        problems.append(f"train: histograms {histograms}, images {images}")
    for tag in histograms:
        events = accumulator.Histograms(tag)
        if [e.step for e in events] != list(range(epochs)):
            problems.append(f"train/{tag}: steps {[e.step for e in events]}")
        for event in events:
            h = event.histogram_value
            if sum(h.bucket) != h.num or h.num == 0 or not h.min <= h.max:
                problems.append(f"train/{tag} step {event.step}: {h}")
    for tag in images:
        for event in accumulator.Images(tag):
            if not event.encoded_image_string.startswith(b"\x89PNG") or event.width * event.height == 0:
                problems.append(f"train/{tag} step {event.step}: not a PNG image")


def check_cut_file(train_folder, problems):
    """A copy of the training event file cut inside its last record reads all the others."""
    (name,) = [n for n in os.listdir(train_folder) if "tfevents" in n][:1]
    whole = load(train_folder).Scalars("epoch_loss")
    with tempfile.TemporaryDirectory() as scratch:
        data = open(os.path.join(train_folder, name), "rb").read()
        last_start = 0
        offset = 0
        while offset < len(data):
            last_start = offset
            (length,) = struct.unpack("<Q", data[offset : offset + 8])
            offset += 16 + length
        with open(os.path.join(scratch, name), "wb") as cut:
            cut.write(data[: last_start + 20])
        steps = [e.step for e in load(scratch).Scalars("epoch_loss")]
        if steps != [e.step for e in whole][:-1]:
            problems.append(f"cut file: epoch_loss steps {steps}, expected all but the last")


def main():
    run, history_path = sys.argv[1], sys.argv[2]
    history = json.load(open(history_path))
    epochs = len(history["epoch"])
    problems = []
    train = load(os.path.join(run, "train"))
    check_scalars(
        train,
        {"epoch_loss": "loss", "epoch_accuracy": "accuracy", "epoch_learning_rate": "learning_rate"},
        history,
        "train",
        problems,
    )
    if len(train.Scalars("epoch_steps_per_second")) != epochs:
        problems.append("train: epoch_steps_per_second missing at some epoch")
    validation = load(os.path.join(run, "validation"))
    check_scalars(validation, {"epoch_loss": "val_loss", "epoch_accuracy": "val_accuracy"}, history, "validation", problems)
    check_weights(train, epochs, problems)
    check_cut_file(os.path.join(run, "train"), problems)
    if problems:
        print("TensorBoard reads differently:\n  " + "\n  ".join(problems))
        sys.exit(1)
    print(f"TensorBoard reads {run}: {epochs} epochs of scalars, histograms and images, as History says")


if __name__ == "__main__":
    main()
