#!/usr/bin/env python3
"""Draws calibration/examples/field.png: a small top-down picture of crop rows
on soil, the kind of image mtlseg's models segment. check_upsampled_masks.py
and the README's size measurements read it (the README's first command infers on
a synthetic capture instead). (The full synthetic-field generator for the demo model is
separate work; this image only needs to look like a field.)

    python3 calibration/make_example_image.py
"""
import os

import numpy as np
from PIL import Image, ImageDraw, ImageFilter

HERE = os.path.dirname(os.path.abspath(__file__))


def main(size=256, seed=7):
    rng = np.random.default_rng(seed)
    soil = np.array([122, 92, 62], dtype=np.float64)
    noise = rng.normal(0, 12, (size, size, 1))
    base = np.clip(soil + noise, 0, 255).astype(np.uint8)
    img = Image.fromarray(base, "RGB")
    draw = ImageDraw.Draw(img)
    for row in range(6):
        y0 = 20 + row * 42
        for x in range(8, size, 18):
            if rng.random() < 0.12:  # a gap in the row
                continue
            cx = x + rng.normal(0, 2)
            cy = y0 + 0.08 * x + rng.normal(0, 2)
            r = rng.uniform(5, 9)
            green = (int(rng.uniform(40, 70)), int(rng.uniform(120, 170)), int(rng.uniform(30, 60)))
            draw.ellipse([cx - r, cy - r, cx + r, cy + r], fill=green)
    img = img.filter(ImageFilter.GaussianBlur(0.8))
    out = os.path.join(HERE, "examples", "field.png")
    os.makedirs(os.path.dirname(out), exist_ok=True)
    img.save(out, optimize=True)
    print(out, os.path.getsize(out), "bytes")


if __name__ == "__main__":
    main()
