"""Writes the demo's calibration and held-out images with per-task label maps.

    python calibration/demo/make_data.py

calibration/demo/data/
  calib/images/NNN.jpg (64; JPEG q95 to keep the repo small: only activation ranges are taken from them)
  calib/labels/<task>/NNN.png
  eval/images/NNN.png  (50; PNG, exact)
  eval/labels/<task>/NNN.png
Labels are 8-bit grey PNGs, grey level = class id (0 background, 1 plant / row), as
`mtlseg calibrate --labels` reads them. Images are 256x256 (the model input).
Calibration: 40 frames of the ported daemon camera (tile seeds 2001-2010, 640x480 -> 256x256) and
24 general fields (seeds (7001, i)). Eval: 30 daemon frames (tile seeds 1-5, the same frames as
train.py's `daemon` set: 1 is the daemon's default seed) and 20 general fields (the first 20 of
train.py's `test` set). None of these seeds is used in training.
"""

from __future__ import annotations

import sys
from pathlib import Path

import numpy as np
from PIL import Image

HERE = Path(__file__).resolve().parent
sys.path.insert(0, str(HERE))
from field_generator import TASK_NAMES, SwiftTile, render_field, swift_frame  # noqa: E402


def write(root: Path, items, ext: str):
    (root / "images").mkdir(parents=True, exist_ok=True)
    for t in TASK_NAMES:
        (root / "labels" / t).mkdir(parents=True, exist_ok=True)
    for i, (img, lab) in enumerate(items):
        im = Image.fromarray(img)
        if ext == "jpg":
            im.save(root / "images" / f"{i:03d}.jpg", quality=95)
        else:
            im.save(root / "images" / f"{i:03d}.png", optimize=True)
        for t in TASK_NAMES:
            Image.fromarray(lab[t], mode="L").save(root / "labels" / t / f"{i:03d}.png", optimize=True)


def main():
    out = HERE / "data"
    calib = []
    for seed in range(2001, 2011):
        tile = SwiftTile(seed=seed)
        calib += [swift_frame(tile, 13 + 151 * i) for i in range(4)]
    calib += [render_field(np.random.default_rng([7001, i]), 256, 256) for i in range(24)]
    write(out / "calib", calib, "jpg")
    ev = []
    for seed in range(1, 6):
        tile = SwiftTile(seed=seed)
        ev += [swift_frame(tile, 40 + 97 * i) for i in range(6)]
    ev += [render_field(np.random.default_rng([999, i]), 256, 256) for i in range(20)]
    write(out / "eval", ev, "png")
    total = sum(f.stat().st_size for f in out.rglob("*") if f.is_file())
    print(f"wrote {len(calib)} calibration and {len(ev)} eval images to {out}: {total / 1e6:.2f} MB")


if __name__ == "__main__":
    main()
