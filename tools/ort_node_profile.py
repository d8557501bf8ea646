"""Per-node times of an ONNX model in ONNX Runtime, for comparing with strata's
`STRATA_PROFILE=nodes` (docs/PERFORMANCE.md, "Per node against ONNX Runtime").

Usage: python tools/ort_node_profile.py MODEL.onnx [CALLS] [BATCH] [THREADS]

Runs CALLS (default 200) calls on random NCHW images of the model's input size with ONNX
Runtime's profiler on, then prints each node's operator, median and fastest time (µs) and its
output shape, in execution order, and the sum of the medians.
"""
import collections
import json
import os
import sys

import numpy as np
import onnxruntime

path = sys.argv[1]
calls = int(sys.argv[2]) if len(sys.argv) > 2 else 200
batch = int(sys.argv[3]) if len(sys.argv) > 3 else 1
threads = int(sys.argv[4]) if len(sys.argv) > 4 else 2
options = onnxruntime.SessionOptions()
options.intra_op_num_threads, options.inter_op_num_threads = threads, 1
options.enable_profiling = True
session = onnxruntime.InferenceSession(path, options, providers=["CPUExecutionProvider"])
declared = session.get_inputs()[0]
shape = [batch] + [d if isinstance(d, int) else 224 for d in declared.shape[1:]]
images = np.random.default_rng(0).uniform(-1, 1, shape).astype("float32")
for _ in range(calls):
    session.run(None, {declared.name: images})
profile = session.end_profiling()
with open(profile) as file:
    events = json.load(file)
os.remove(profile)
times, order, info = collections.defaultdict(list), [], {}
for event in events:
    if event.get("cat") == "Node" and event["name"].endswith("_kernel_time"):
        node = event["name"][: -len("_kernel_time")]
        if node not in times:
            order.append(node)
        times[node].append(event["dur"])
        info[node] = (event["args"].get("op_name"), event["args"].get("output_type_shape"))
total = 0
for node in order:
    durations = sorted(times[node])
    median = durations[len(durations) // 2]
    total += median
    op, output = info[node]
    print(f"{op:<20} {median:>8} {durations[0]:>8}  {json.dumps(output)[:60]}  {node[:70]}")
print(f"sum of the medians: {total} µs")
