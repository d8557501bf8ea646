"""ONNX Runtime's own time per node of an image classifier, to set beside strata's per-layer
times (`STRATA_PROFILE=1`) when looking for where strata's imported model loses to it.

Usage: python bench/onnx_runtime_profile.py MODEL.onnx [BATCH] [THREADS] [RUNS]
Defaults: batch 1, 2 intra-op threads, 200 runs at batch 1 (5 at larger batches), after 3 to
warm up. Prints the milliseconds per call of each operator type, then of the 60 slowest nodes
with their input shapes. The input is NCHW 224x224 images unless the file says otherwise.
"""
import collections
import json
import os
import sys
import time

import numpy as np
import onnxruntime as ort

path = sys.argv[1]
batch = int(sys.argv[2]) if len(sys.argv) > 2 else 1
threads = int(sys.argv[3]) if len(sys.argv) > 3 else 2
runs = int(sys.argv[4]) if len(sys.argv) > 4 else (200 if batch == 1 else 5)

options = ort.SessionOptions()
options.intra_op_num_threads = threads
options.inter_op_num_threads = 1
options.graph_optimization_level = ort.GraphOptimizationLevel.ORT_ENABLE_ALL
options.enable_profiling = True
session = ort.InferenceSession(path, options, providers=["CPUExecutionProvider"])
first = session.get_inputs()[0]
shape = [batch] + [d if isinstance(d, int) else 224 for d in first.shape[1:]]
x = np.random.default_rng(0).uniform(-1, 1, shape).astype("float32")
for _ in range(3):
    session.run(None, {first.name: x})
start = time.perf_counter()
for _ in range(runs):
    session.run(None, {first.name: x})
print(f"{1e3 * (time.perf_counter() - start) / runs:.3f} ms per call ({runs} calls, batch {batch}, {threads} threads)")

profile = session.end_profiling()
events = [e for e in json.load(open(profile)) if e.get("cat") == "Node" and e["name"].endswith("_kernel_time")]
os.remove(profile)
calls = runs + 3
by_type, nodes, count, shapes = collections.Counter(), collections.Counter(), collections.Counter(), {}
for e in events:
    kind = e["args"].get("op_name")
    by_type[kind] += e["dur"]
    count[kind] += 1
    nodes[e["name"]] += e["dur"]
    shapes[e["name"]] = e["args"].get("input_type_shape") or []
total = sum(by_type.values())
for kind, microseconds in by_type.most_common():
    print(f"{kind:24s} {microseconds / calls / 1e3:8.3f} ms/call {100 * microseconds / total:5.1f}%  "
          f"nodes {count[kind] / calls:.0f}")
for name, microseconds in nodes.most_common(60):
    inputs = " ".join(str(list(s.values())[0]) for s in shapes[name][:2])
    print(f"{microseconds / calls / 1e3:8.3f} {name[:40]:40s} {inputs}")
