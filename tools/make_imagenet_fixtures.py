"""ImageNet helpers' data: the embedded class list and Keras's own outputs to test against.

    python tools/make_imagenet_fixtures.py classes timm-1.0.31-py3-none-any.whl
        writes src/applications/imagenet_classes.txt from timm's wheel (Apache-2.0; fetch it
        with `pip download timm --no-deps`): one "wnid name" line per class, in ImageNet-1k's
        order, the name being the synset's first lemma with spaces as underscores, which is
        how Keras's imagenet_class_index.json names every one of the 1000 classes.

    python tools/make_imagenet_fixtures.py fixtures
        writes tests/fixtures/keras/imagenet_utils.json: Keras's preprocess_input in its three
        modes on a small image, and Keras's decode_predictions on fixed probability vectors.
        decode_predictions reads ~/.keras/models/imagenet_class_index.json (Keras downloads it;
        where that is impossible, put a copy there: Keras accepts it when its MD5 is
        c2c37ea517e94d9795004a39431a14cb, which Keras checks).

Run with the Keras 3 of /tmp/kerasvenv (TensorFlow backend).
"""

import json
import sys
import zipfile
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent


def classes(wheel):
    with zipfile.ZipFile(wheel) as archive:
        synsets = archive.read("timm/data/_info/imagenet_synsets.txt").decode().split()
        lemmas = dict(
            line.split("\t", 1)
            for line in archive.read("timm/data/_info/imagenet_synset_to_lemma.txt").decode().splitlines()
        )
    assert len(synsets) == 1000
    lines = [f"{s} {lemmas[s].split(', ')[0].replace(' ', '_')}\n" for s in synsets]
    (ROOT / "src/applications/imagenet_classes.txt").write_text("".join(lines))


def fixtures():
    import keras
    import numpy as np
    from keras.applications import imagenet_utils

    rng = np.random.default_rng(7)
    image = rng.integers(0, 256, size=(2, 3, 2, 3)).astype("float32")
    preprocessed = {
        mode: imagenet_utils.preprocess_input(image.copy(), mode=mode).tolist() for mode in ("caffe", "tf", "torch")
    }
    predictions = rng.random((3, 1000)).astype("float32")
    predictions /= predictions.sum(axis=1, keepdims=True)
    predictions[1, 999] = 0.5  # the last class on top of one sample
    predictions[2, 0] = 0.25  # the first class on top of another
    decoded = [
        [[wnid, name, float(score)] for wnid, name, score in sample]
        for sample in imagenet_utils.decode_predictions(predictions, top=5)
    ]
    pipelines = {}
    # What `strata predict` must give for an imported application: Keras's model.predict on
    # preprocess_input of the image's pixels (mode "none" is MobileNetV3's own rescaling).
    for name, mode in (("mobilenetv3small_a035", None), ("nested_mobilenetv2", "tf")):
        model = keras.saving.load_model(ROOT / f"tests/fixtures/keras/applications/{name}.keras")
        size = model.input_shape[1]
        pixels = rng.integers(0, 256, size=(size, size, 3)).astype("float32")
        x = pixels[None].copy() if mode is None else imagenet_utils.preprocess_input(pixels[None].copy(), mode=mode)
        pipelines[name] = {
            "mode": mode or "none",
            "pixels": pixels.astype("uint8").tolist(),
            "predictions": model.predict(x, verbose=0)[0].tolist(),
        }
    fixture = {
        "pipelines": pipelines,
        "image": image.tolist(),
        "preprocessed": preprocessed,
        "predictions": predictions.tolist(),
        "decoded_top5": decoded,
    }
    out = ROOT / "tests/fixtures/keras/imagenet_utils.json"
    out.write_text(json.dumps(fixture) + "\n")
    print(out, out.stat().st_size, "bytes")


if __name__ == "__main__":
    if sys.argv[1:2] == ["classes"]:
        classes(sys.argv[2])
    else:
        fixtures()
