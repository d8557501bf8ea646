"""Single-sample and batch-32 inference latency of the classic MNIST mlp and cnn in one Python
framework, p50 and p99 over many calls, printed as one JSON line per model, batch and way of
calling (what bench/inference.sh collects beside strata's examples/predict_latency.rs).

Usage: python inference.py FRAMEWORK MODEL CALLS [MODEL.onnx]
  FRAMEWORK: keras (TensorFlow backend), keras-jax, torch, or ort (ONNX Runtime, on the ONNX file
  `strata export` wrote: strata's own model). Two threads everywhere (TF intra-op 2 / inter-op 1,
  torch.set_num_threads(2), ORT intra-op 2; XLA's CPU pool is one thread per core, 2 here).

Random weights: the latency of these dense computations does not depend on the values. Each
framework is timed in its fastest documented way to run a model on a small batch (a compiled
call: `tf.function`, `jax.jit` of `stateless_call`, `torch.inference_mode`, `InferenceSession.run`),
and Keras also through `model.predict`, what its users call first.
"""
import json, os, sys, time

os.environ.setdefault("TF_CPP_MIN_LOG_LEVEL", "2")
framework, model_name, calls = sys.argv[1], sys.argv[2], int(sys.argv[3])
onnx_path = sys.argv[4] if len(sys.argv) > 4 else None
if framework in ("keras", "keras-jax"):
    os.environ["KERAS_BACKEND"] = "jax" if framework == "keras-jax" else "tensorflow"

import numpy as np

BATCHES = (1, 32)
WARM_UP = 20


def percentiles(fn, n):
    for _ in range(WARM_UP):
        fn()
    times = []
    for _ in range(n):
        started = time.perf_counter()
        fn()
        times.append(1e3 * (time.perf_counter() - started))
    times.sort()
    rank = lambda p: times[max(1, int(np.ceil(p / 100 * len(times)))) - 1]
    return rank(50), rank(99), len(times)


def report(call, batch, fn, n=calls, **info):
    p50, p99, count = percentiles(fn, n)
    print(json.dumps({"framework": framework, "model": model_name, "batch": batch, "call": call,
                      "calls": count, "p50_ms": round(p50, 4), "p99_ms": round(p99, 4), **info}), flush=True)


def inputs(batch, channels_first=False):
    shape = (batch, 28, 28) if model_name == "mlp" else (batch, 28, 28, 1)
    x = np.random.default_rng(0).random(shape, dtype=np.float32)
    return x.transpose(0, 3, 1, 2).copy() if channels_first and model_name == "cnn" else x


def keras_model(keras):
    L = keras.layers
    if model_name == "mlp":
        layers = [keras.Input((28, 28)), L.Flatten(), L.Dense(128, activation="relu"),
                  L.Dense(10, activation="softmax")]
    else:
        layers = [keras.Input((28, 28, 1)),
                  L.Conv2D(32, (3, 3), activation="relu"), L.MaxPooling2D((2, 2)),
                  L.Conv2D(64, (3, 3), activation="relu"), L.MaxPooling2D((2, 2)),
                  L.Conv2D(64, (3, 3), activation="relu"),
                  L.Flatten(), L.Dense(64, activation="relu"), L.Dense(10, activation="softmax")]
    return keras.Sequential(layers)


if framework == "keras":
    import tensorflow as tf
    tf.config.threading.set_intra_op_parallelism_threads(2)
    tf.config.threading.set_inter_op_parallelism_threads(1)
    import keras
    model = keras_model(keras)
    compiled = tf.function(lambda x: model(x, training=False))
    info = dict(tensorflow=tf.__version__, keras=keras.__version__)
    for batch in BATCHES:
        x = inputs(batch)
        tx = tf.constant(x)
        report("compiled", batch, lambda: compiled(tx).numpy(), **info)
        report("predict", batch, lambda: model.predict(x, batch_size=batch, verbose=0), max(calls // 5, 20), **info)
elif framework == "keras-jax":
    import jax
    import keras
    model = keras_model(keras)

    @jax.jit
    def compiled(trainable, non_trainable, x):
        return model.stateless_call(trainable, non_trainable, x, training=False)[0]

    info = dict(jax=jax.__version__, keras=keras.__version__)
    for batch in BATCHES:
        x = inputs(batch)
        jx = jax.numpy.asarray(x)
        # Read afresh: `model.predict` replaces (and deletes) the arrays behind the variables.
        trainable = [v.value for v in model.trainable_variables]
        non_trainable = [v.value for v in model.non_trainable_variables]
        report("compiled", batch, lambda: np.asarray(compiled(trainable, non_trainable, jx)), **info)
        report("predict", batch, lambda: model.predict(x, batch_size=batch, verbose=0), max(calls // 5, 20), **info)
elif framework == "torch":
    import torch
    from torch import nn
    torch.set_num_threads(2)
    torch.manual_seed(0)
    if model_name == "mlp":
        model = nn.Sequential(nn.Flatten(), nn.Linear(784, 128), nn.ReLU(), nn.Linear(128, 10), nn.Softmax(1))
    else:
        model = nn.Sequential(
            nn.Conv2d(1, 32, 3), nn.ReLU(), nn.MaxPool2d(2),
            nn.Conv2d(32, 64, 3), nn.ReLU(), nn.MaxPool2d(2),
            nn.Conv2d(64, 64, 3), nn.ReLU(),
            nn.Flatten(), nn.Linear(64 * 3 * 3, 64), nn.ReLU(), nn.Linear(64, 10), nn.Softmax(1))
    model.eval()
    info = dict(torch=torch.__version__, torch_threads=torch.get_num_threads())
    for batch in BATCHES:
        x = torch.from_numpy(inputs(batch, channels_first=True))

        def call():
            with torch.inference_mode():
                return model(x).numpy()

        report("compiled", batch, call, **info)
elif framework == "ort":
    import onnxruntime as ort
    options = ort.SessionOptions()
    options.intra_op_num_threads = 2
    options.inter_op_num_threads = 1
    session = ort.InferenceSession(onnx_path, options, providers=["CPUExecutionProvider"])
    name = session.get_inputs()[0].name
    info = dict(onnxruntime=ort.__version__, intra_op_threads=2)
    for batch in BATCHES:
        feed = {name: inputs(batch)}
        report("compiled", batch, lambda: session.run(None, feed), **info)
else:
    sys.exit(f"unknown framework {framework!r}: keras, keras-jax, torch or ort")
