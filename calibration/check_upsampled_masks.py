"""The real engine's masks at an image's size against PyTorch's on the same logits.

`mtlseg infer --logits --class-ids` writes, per task, the logits of the model's output grid and the
masks at the image's size that mtlseg makes of them (MaskUpsampler, as the daemon does for HELLO
`mask_size`). This script makes test images of several sizes, runs infer on each, and compares its
masks pixel for pixel with torch's F.interpolate(mode="bilinear", align_corners=False).argmax on those
logits (HF's post_process_semantic_segmentation). A differing pixel where the two classes' resized
logits are equal within float rounding (1e-5 relative, in float64) is a tie and is counted; any other
difference fails (exit status 1).

    swift build -c release --product mtlseg
    ~/.venvs/mtlseg-calib/bin/python calibration/check_upsampled_masks.py \\
        [--mtlseg .build/release/mtlseg] [--model calibration/demo/crops-int8.safetensors] [--sizes 640x480,1280x720,333x201]
"""

from __future__ import annotations

import argparse
import subprocess
import sys
import tempfile
from pathlib import Path

import numpy as np
import torch
import torch.nn.functional as F
from PIL import Image

from check_parity import per_task_path  # where infer writes a task's logits (InferCommand.perTaskPath)
from export import parse_size  # 'WxH' with mtlseg's limits, one line for a malformed size

REPO = Path(__file__).resolve().parents[1]


def resized64(logits: np.ndarray, width: int, height: int) -> np.ndarray:
    """The bilinear resize (align_corners=False, source clamped at 0) in float64: [K, height, width]."""
    k, h, w = logits.shape

    def taps(out: int, size: int):
        i = np.arange(out, dtype=np.float64)
        if out == size:
            return i.astype(np.int64), i.astype(np.int64), np.zeros(out)
        src = np.maximum((i + 0.5) * size / out - 0.5, 0)
        lo = np.minimum(np.floor(src).astype(np.int64), size - 1)
        return lo, np.minimum(lo + 1, size - 1), np.clip(src - lo, 0, 1)

    x0, x1, wx = taps(width, w)
    y0, y1, wy = taps(height, h)
    v = logits.astype(np.float64)
    rows = v[:, :, x0] * (1 - wx) + v[:, :, x1] * wx
    return rows[:, y0, :] * (1 - wy)[:, None] + rows[:, y1, :] * wy[:, None]


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--mtlseg", default=str(REPO / ".build" / "release" / "mtlseg"))
    parser.add_argument("--model", default=str(REPO / "calibration" / "demo" / "crops-int8.safetensors"))
    parser.add_argument("--image", default=str(REPO / "calibration" / "examples" / "field.png"))
    parser.add_argument("--sizes", default="640x480,1280x720,333x201")
    args = parser.parse_args()
    torch.set_num_threads(1)
    failed = False
    total_ties = total_pixels = 0
    with tempfile.TemporaryDirectory() as folder:
        out = Path(folder)
        for text in args.sizes.split(","):
            try:
                width, height = parse_size(text)
            except argparse.ArgumentTypeError as error:
                parser.error(f"--sizes {text!r}: {error}")
            image = out / f"frame-{width}x{height}.png"
            Image.open(args.image).convert("RGB").resize((width, height), Image.BILINEAR).save(image)
            logits_path = out / f"logits-{width}x{height}.npy"
            subprocess.run([args.mtlseg, "infer", "--model", args.model, "--image", str(image), "--out", str(out),
                            "--logits", str(logits_path), "--class-ids"], check=True, stdout=subprocess.DEVNULL)
            masks = sorted(out.glob(f"{image.stem}.*.classes.png"))
            if not masks:
                # Nothing to compare is no pass: infer's names changed, or it wrote nowhere this script looks.
                failed = True
                print(f"  {width}x{height}: mtlseg infer wrote no {image.stem}.<task>.classes.png in {out}")
            for classes_png in masks:
                task = classes_png.name[len(image.stem) + 1:-len(".classes.png")]
                task_logits = per_task_path(logits_path, task)
                if not task_logits.exists():
                    task_logits = logits_path  # a one-task model writes PATH itself
                logits = np.load(task_logits)
                ours = np.asarray(Image.open(classes_png))
                reference = F.interpolate(torch.from_numpy(logits)[None], size=(height, width), mode="bilinear",
                                          align_corners=False)[0].argmax(0).numpy()
                differ = np.argwhere(ours != reference)
                exact = resized64(logits, width, height)
                ties = 0
                for y, x in differ:
                    a, b = exact[ours[y, x], y, x], exact[reference[y, x], y, x]
                    if abs(a - b) <= 1e-5 * max(1.0, abs(a)):
                        ties += 1
                    else:
                        failed = True
                        print(f"  {task} {width}x{height} ({x}, {y}): mtlseg {ours[y, x]} ({a}), torch {reference[y, x]} ({b})")
                print(f"{task}: {logits.shape[2]}x{logits.shape[1]} logits -> {width}x{height}: "
                      f"{len(differ) - ties} difference(s), {ties} tie(s) in {ours.size} pixels")
                total_ties += ties
                total_pixels += ours.size
    if total_pixels == 0:
        failed = True  # no size given, or no mask found: an "ok" would claim a comparison that never ran
    print(f"{'FAILED' if failed else 'ok'}: {total_ties} tie(s) in {total_pixels} pixels" + ("" if failed else ", no other difference"))
    return 1 if failed else 0


if __name__ == "__main__":
    sys.exit(main())
