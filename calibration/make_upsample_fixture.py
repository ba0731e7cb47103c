"""Generates Tests/MTLSegCoreTests/Fixtures/upsample-argmax.safetensors: the reference for masks at a
size other than the model's output grid (the daemon's HELLO `mask_size`, `mtlseg infer`'s masks).

Each case is seeded float32 logits [K, h, w] and what HF's post_process_semantic_segmentation makes of
them for a target size: torch's F.interpolate(size=(H, W), mode="bilinear", align_corners=False), then
argmax over the classes. Deterministic: a rerun rewrites the same tensors; the file is byte-identical only under
the same torch build, whose version the metadata records.

    ~/.venvs/mtlseg-calib/bin/python calibration/make_upsample_fixture.py [--out FILE]

Per case i:
  case<i>.logits  F32 [K, h, w]   seeded normal values (σ = 2)
  case<i>.size    I64 [2]         target width, height
  case<i>.mask    U8 [n]          torch's mask, run-length coded as the wire's rle (class u8, run u16 LE)
"""

from __future__ import annotations

import argparse
from pathlib import Path

import numpy as np
import torch
import torch.nn.functional as F
from safetensors.numpy import save_file

REPO = Path(__file__).resolve().parents[1]
DEFAULT_OUT = REPO / "Tests" / "MTLSegCoreTests" / "Fixtures" / "upsample-argmax.safetensors"

# (classes, logits h, logits w, target width, target height): non-integer scale factors, downscales,
# one dimension kept, and a model grid that is not square.
CASES = [
    (3, 64, 64, 640, 480),     # 10 × 7.5
    (2, 64, 64, 1280, 720),    # 20 × 11.25
    (4, 64, 64, 40, 30),       # downscale (an output this small takes torch's other CPU kernel)
    (2, 72, 96, 80, 60),       # downscale by 1.2
    (3, 19, 26, 102, 75),      # the 102×75 input's 26×19 grid back to the input size
    (2, 64, 64, 64, 200),      # width kept (torch copies along it)
]


def run_length(mask: np.ndarray) -> np.ndarray:
    flat = mask.reshape(-1)
    out = bytearray()
    i = 0
    while i < flat.size:
        value = int(flat[i])
        j = i + 1
        while j < flat.size and j - i < 65535 and flat[j] == value:
            j += 1
        run = j - i
        out += bytes((value, run & 0xFF, run >> 8))
        i = j
    return np.frombuffer(bytes(out), dtype=np.uint8)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--out", type=Path, default=DEFAULT_OUT)
    args = parser.parse_args()
    torch.set_num_threads(1)
    rng = np.random.default_rng(20261206)
    tensors = {}
    for i, (k, h, w, width, height) in enumerate(CASES):
        logits = (rng.standard_normal((k, h, w)) * 2).astype(np.float32)
        resized = F.interpolate(torch.from_numpy(logits)[None], size=(height, width), mode="bilinear", align_corners=False)
        mask = resized[0].argmax(dim=0).to(torch.uint8).numpy()
        tensors[f"case{i}.logits"] = logits
        tensors[f"case{i}.size"] = np.array([width, height], dtype=np.int64)
        tensors[f"case{i}.mask"] = run_length(mask)
        print(f"case {i}: {k} classes {w}x{h} -> {width}x{height}, {tensors[f'case{i}.mask'].size} bytes of runs")
    # One metadata key: safetensors writes several in no fixed order.
    save_file(tensors, str(args.out), metadata={"made_by": f"calibration/make_upsample_fixture.py, torch {torch.__version__}"})
    print(f"wrote {args.out} ({args.out.stat().st_size} bytes)")


if __name__ == "__main__":
    main()
