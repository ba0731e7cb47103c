#!/usr/bin/env python3
"""Rewrites a model file with its float tensors stored as F16, keeping the metadata.

The repository ships the demo's fp32 model this way (half the bytes, inside the
20 MiB budget); mtlseg widens F16 to fp32 on load, so it still computes in fp32.
The int8 model is calibrated from the F16-stored file, so the two ship consistent.

    python calibration/demo/store_f16.py IN.safetensors OUT.safetensors
"""
import json
import struct
import sys

import numpy as np
from safetensors.numpy import load_file, save_file


def main(source, target):
    with open(source, "rb") as f:
        header = json.loads(f.read(struct.unpack("<Q", f.read(8))[0]))
    tensors = {name: (t.astype(np.float16) if t.dtype == np.float32 else t) for name, t in load_file(source).items()}
    save_file(tensors, target, metadata=header.get("__metadata__"))


if __name__ == "__main__":
    main(*sys.argv[1:3])
