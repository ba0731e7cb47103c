# Runs an ONNX model with ONNX Runtime on one thread, ITERATIONS times on one fixed input, for
# inference_cost.sh, which counts the guest instructions of this process under qemu-user with 1 and
# 3 iterations (the difference is two inferences; loading and the first inference drop out).
#   python3 ort_infer.py MODEL.onnx ITERATIONS SIZE
# The input is every float input of the model at 1×C×SIZE×SIZE (dimensions the model leaves open
# take 1 for the batch, SIZE for the rest), filled from a fixed seed: the instruction count of an
# int8 graph does not depend on the values. Keep this file alone in its folder: Python lists the
# script's folder on import, and other files there would change the count.
import sys

import numpy as np
import onnxruntime as ort

model, iterations, size = sys.argv[1], int(sys.argv[2]), int(sys.argv[3])
options = ort.SessionOptions()
options.graph_optimization_level = ort.GraphOptimizationLevel.ORT_ENABLE_ALL
options.intra_op_num_threads, options.inter_op_num_threads = 1, 1
options.execution_mode = ort.ExecutionMode.ORT_SEQUENTIAL
options.add_session_config_entry("session.intra_op.allow_spinning", "0")
session = ort.InferenceSession(model, options, providers=["CPUExecutionProvider"])

rng = np.random.default_rng(12345)
feeds = {}
for i in session.get_inputs():
    shape = [d if isinstance(d, int) else (1 if k == 0 else size) for k, d in enumerate(i.shape)]
    feeds[i.name] = rng.uniform(-2, 2, size=shape).astype(np.float32)
for _ in range(iterations):
    session.run(None, feeds)
