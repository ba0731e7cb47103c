#!/usr/bin/env python3
"""The peers for the mission model: the demo MTLSegFormer under ONNX Runtime and OpenVINO.

The b0 peers (SegFormer-b0, one task) are measured by the shared anchors' own
script; this does the same for the model mtlseg exists for, the multi-task
MTLSegFormer of `demo/` (b0 trunk, tasks plants + rows), so that mtlseg's
int8 engine can be compared with the peers' int8 on the same network:

  export   the PyTorch reference (mtlsegformer.py with demo/crops-fp32.safetensors)
           to ONNX (opset 17, fixed 1x3xSxS input `pixel_values`, one output per
           task), checked against torch on an eval image            (needs torch)
  prepare  quantizes each ONNX file as the b0 peers are quantized: ONNX Runtime
           static QDQ (per-channel s8 weights, u8 activations) and OpenVINO NNCF
           post-training int8 (default preset), both on the demo's 64 calibration
           images                                   (needs onnxruntime, openvino, nncf)
  agree    argmax agreement of each int8 peer with the fp32 ONNX model, per task,
           on the demo's 50 eval images at 256x256 (OpenVINO also with f32 where it
           would otherwise compute in bf16)
  time     median latency (of --runs, after --warmup), median CPU time of the process
           per run (all its threads: on a loaded machine it leaves out the time other
           processes held the CPU) and peak RSS of each variant, each in a fresh process,
           on one preprocessed eval image: one JSON line each

  python calibration/peers_mtl.py export  --sizes 256,512   # ~/.venvs/mtlseg-calib
  python calibration/peers_mtl.py prepare --sizes 256,512
  python calibration/peers_mtl.py agree
  python calibration/peers_mtl.py time --size 256 --threads 1

Generated models go to $PEERS_CACHE/mtl (default ~/.cache/mtlseg-peers/mtl), never
into the repository. Images are normalised as mtlseg does for the demo model: x/255,
ImageNet mean/std (the demo's own; the constants below, not read from the model's
description), CHW; at 512x512 the 256x256 images are scaled up with PIL bilinear
(the timing does not depend on the content).
"""
import argparse, json, os, resource, statistics, subprocess, sys, time

HERE = os.path.dirname(os.path.abspath(__file__))
DEMO = os.path.join(HERE, "demo")
MODEL = os.path.join(DEMO, "crops-fp32.safetensors")
CALIB_IMAGES = os.path.join(DEMO, "data", "calib", "images")
EVAL_IMAGES = os.path.join(DEMO, "data", "eval", "images")
CACHE = os.path.join(os.environ.get("PEERS_CACHE", os.path.expanduser("~/.cache/mtlseg-peers")), "mtl")
# The demo model's normalisation (its description's mean/std: ImageNet's).
MEAN = (0.485, 0.456, 0.406)
STD = (0.229, 0.224, 0.225)
TASKS = ("plants", "rows")
VARIANTS = ("ort_fp32", "ort_int8", "ov_int8")
# The ONNX export must match torch within this fraction of the largest |logit| (fp32 rounding only).
EXPORT_TOLERANCE = 1e-4


# `time --model b0` times the shared b0 anchor's peer models instead (made by its peers.py prepare, in the
# cache's top folder; the fp32 ONNX in $PEERS_DIR/models), on its bench image, so that both models' rows
# come from the same timing code.
MODEL_SET = "demo"


def model_file(variant, size):
    name = {"ort_fp32": "fp32.onnx", "ort_int8": "ort_qdq_u8s8.onnx", "ov_int8": "ov_int8.xml", "ov_int8_f32": "ov_int8.xml"}[variant]
    if MODEL_SET == "b0":
        if variant == "ort_fp32":
            return os.path.join(os.environ.get("PEERS_DIR", "."), "models", f"segformer_b0_{size}_fp32.onnx")
        return os.path.join(os.path.dirname(CACHE), f"segformer_b0_{size}_{name}")
    return os.path.join(CACHE, f"demo_crops_{size}_{name}")


def bench_image(size):
    if MODEL_SET == "b0":
        return os.path.join(os.path.dirname(CACHE), "images", f"bench-{size}", "bench-000.png")
    return images(EVAL_IMAGES)[0]


def images(folder):
    return sorted(os.path.join(folder, f) for f in os.listdir(folder) if f.endswith((".png", ".jpg")))


def to_input(path, size):
    import numpy as np
    from PIL import Image
    image = Image.open(path).convert("RGB")
    if image.size != (size, size):
        image = image.resize((size, size), Image.BILINEAR)
    a = np.asarray(image, dtype=np.float32) / 255.0
    a = (a - np.array(MEAN, dtype=np.float32)) / np.array(STD, dtype=np.float32)
    return np.ascontiguousarray(a.transpose(2, 0, 1)[None])


def export(sizes):
    import numpy as np
    import torch
    sys.path.insert(0, HERE)
    from model_file import read_model_file

    model = read_model_file(MODEL).eval()
    if tuple(model.task_names) != TASKS:
        raise SystemExit(f"{MODEL}: tasks {model.task_names}, expected {list(TASKS)}")

    class Outputs(torch.nn.Module):
        """The reference returns a dict; ONNX wants a tuple in a fixed order."""

        def __init__(self, inner):
            super().__init__()
            self.inner = inner

        def forward(self, pixel_values):
            logits = self.inner(pixel_values)
            return tuple(logits[t] for t in TASKS)

    # eval() on the wrapper too: the exporter restores the wrapper's training mode afterwards,
    # and a wrapper left in training mode would switch the model's dropout and BatchNorm on.
    wrapper = Outputs(model).eval()
    os.makedirs(CACHE, exist_ok=True)
    import onnxruntime as ort
    for size in sizes:
        x = to_input(images(EVAL_IMAGES)[0], size)
        path = model_file("ort_fp32", size)
        with torch.no_grad():
            expected = [t.numpy() for t in wrapper(torch.from_numpy(x))]
            # The TorchScript exporter (dynamo=False): the dynamo one needs onnxscript.
            torch.onnx.export(wrapper, (torch.from_numpy(x),), path, input_names=["pixel_values"],
                              output_names=list(TASKS), opset_version=17, dynamo=False)
        got = ort.InferenceSession(path, providers=["CPUExecutionProvider"]).run(None, {"pixel_values": x})
        for task, e, g in zip(TASKS, expected, got):
            diff = float(np.abs(e - g).max())
            scale = float(np.abs(e).max())
            agreement = float((e[0].argmax(0) == g[0].argmax(0)).mean())
            print(json.dumps({"exported": size, "task": task, "max_abs_diff": diff, "max_abs_logit": scale,
                              "argmax_agreement": agreement}), flush=True)
            if diff > EXPORT_TOLERANCE * scale + 1e-5:
                raise SystemExit(f"ONNX export of {size}x{size} differs from torch on {task}: "
                                 f"max |diff| {diff:.3g} > {EXPORT_TOLERANCE} x {scale:.3g}")


def prepare(sizes):
    for size in sizes:
        if not os.path.exists(model_file("ort_fp32", size)):
            raise SystemExit(f"no {model_file('ort_fp32', size)}: run `peers_mtl.py export` (with torch) first")
        calib = [to_input(p, size) for p in images(CALIB_IMAGES)]
        # ONNX Runtime: static QDQ, per-channel s8 weights, u8 activations (as the b0 peer).
        from onnxruntime.quantization import CalibrationDataReader, QuantFormat, QuantType, quantize_static
        from onnxruntime.quantization.shape_inference import quant_pre_process

        class Reader(CalibrationDataReader):
            def __init__(self):
                self.it = iter({"pixel_values": x} for x in calib)

            def get_next(self):
                return next(self.it, None)
        pre = os.path.join(CACHE, f"demo_crops_{size}_fp32pre.onnx")
        quant_pre_process(model_file("ort_fp32", size), pre, skip_symbolic_shape=False)
        quantize_static(pre, model_file("ort_int8", size), Reader(), quant_format=QuantFormat.QDQ,
                        per_channel=True, activation_type=QuantType.QUInt8, weight_type=QuantType.QInt8)
        # OpenVINO: NNCF post-training quantization, default preset (as the b0 peer).
        import nncf, openvino as ov
        q = nncf.quantize(ov.convert_model(model_file("ort_fp32", size)), nncf.Dataset(calib),
                          subset_size=len(calib))
        ov.save_model(q, model_file("ov_int8", size), compress_to_fp16=False)
        print(json.dumps({"prepared": size, "cache": CACHE}), flush=True)


def make_runner(variant, size, threads):
    if variant.startswith("ort"):
        import onnxruntime as ort
        so = ort.SessionOptions()
        so.graph_optimization_level = ort.GraphOptimizationLevel.ORT_ENABLE_ALL
        so.intra_op_num_threads, so.inter_op_num_threads = threads, 1
        so.execution_mode = ort.ExecutionMode.ORT_SEQUENTIAL
        s = ort.InferenceSession(model_file(variant, size), so, providers=["CPUExecutionProvider"])
        return lambda x: s.run(None, {"pixel_values": x})
    import openvino as ov
    # ov_int8 keeps OpenVINO's default precision for what is not quantized (bf16 where the CPU has it), as the
    # b0 peer; ov_int8_f32 forces it to f32.
    cfg = {"INFERENCE_NUM_THREADS": threads, "NUM_STREAMS": 1, "PERFORMANCE_HINT": "LATENCY"}
    if variant == "ov_int8_f32":
        cfg["INFERENCE_PRECISION_HINT"] = "f32"
    compiled = ov.Core().compile_model(model_file(variant, size), "CPU", cfg)
    req = compiled.create_infer_request()
    # The demo's outputs in the tasks' order, found by name (the b0 has one, `logits`).
    order = list(range(len(compiled.outputs))) if MODEL_SET == "b0" else \
        [next(i for i, o in enumerate(compiled.outputs) if task in o.get_names()) for task in TASKS]

    def run(x):
        req.infer({0: x}, share_inputs=True)
        return [req.get_output_tensor(i).data.copy() for i in order]
    return run


def time_one(variant, size, threads, runs, warmup):
    x = to_input(bench_image(size), size)
    t0 = time.perf_counter()
    run = make_runner(variant, size, threads)
    load_s = time.perf_counter() - t0
    for _ in range(warmup):
        run(x)
    ts, cpu = [], []
    for _ in range(runs):
        c0, t0 = time.process_time(), time.perf_counter()
        run(x)
        ts.append((time.perf_counter() - t0) * 1e3)
        cpu.append((time.process_time() - c0) * 1e3)
    print(json.dumps({"variant": variant, "size": size, "threads": threads, "runs": runs,
                      "median_ms": round(statistics.median(ts), 3), "min_ms": round(min(ts), 3),
                      "median_cpu_ms": round(statistics.median(cpu), 3),
                      "load_s": round(load_s, 3),
                      "peak_rss_mb": round(resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024, 1)}),
          flush=True)


def agree(size):
    import numpy as np
    inputs = [to_input(p, size) for p in images(EVAL_IMAGES)]
    reference = make_runner("ort_fp32", size, 2)
    expected = [[o[0].argmax(0) for o in reference(x)] for x in inputs]
    for variant in ("ort_int8", "ov_int8", "ov_int8_f32"):
        run = make_runner(variant, size, 2)
        got = [[o[0].argmax(0) for o in run(x)] for x in inputs]
        row = {"variant": variant, "size": size, "images": len(inputs)}
        for i, task in enumerate(TASKS):
            row[task] = round(float(np.mean([(g[i] == e[i]).mean() for g, e in zip(got, expected)])), 4)
        print(json.dumps(row), flush=True)


def main():
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("command", choices=("export", "prepare", "agree", "time", "_one"))
    ap.add_argument("--sizes", default="256,512", help="export/prepare: comma-separated square sizes")
    ap.add_argument("--size", type=int, default=256)
    ap.add_argument("--threads", type=int, default=1)
    ap.add_argument("--runs", type=int, default=20)
    ap.add_argument("--warmup", type=int, default=3)
    ap.add_argument("--variants", default=",".join(VARIANTS))
    ap.add_argument("--variant")
    ap.add_argument("--model", choices=("demo", "b0"), default="demo", help="time: whose peer models")
    a = ap.parse_args()
    global MODEL_SET
    MODEL_SET = a.model
    os.environ.setdefault("OPENVINO_TELEMETRY_DISABLE", "1")
    sizes = [int(s) for s in a.sizes.split(",")]
    if a.command == "export":
        export(sizes)
    elif a.command == "prepare":
        prepare(sizes)
    elif a.command == "agree":
        agree(a.size)
    elif a.command == "_one":
        time_one(a.variant, a.size, a.threads, a.runs, a.warmup)
    else:
        for v in a.variants.split(","):
            subprocess.run([sys.executable, __file__, "_one", "--model", a.model, "--variant", v, "--size", str(a.size),
                            "--threads", str(a.threads), "--runs", str(a.runs), "--warmup", str(a.warmup)],
                           check=True)


if __name__ == "__main__":
    main()
