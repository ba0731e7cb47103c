"""Compares logits written by the Swift engine (.npy) with the PyTorch reference.

    # against a committed reference file
    python calibration/check_parity.py --reference R.safetensors --task rows --logits rows.npy
    # against logits saved as .npy (e.g. peers.py reference); needs only numpy
    python calibration/check_parity.py --expected ref.npy --logits mine.npy
    # against the reference model run on an image (float64)
    python calibration/check_parity.py --model M.safetensors|HF_DIR --image img.png --task rows --logits rows.npy

The .npy holds [K, H/4, W/4] (or [1, K, H/4, W/4]) float logits. Prints the
max abs difference, the difference relative to max |reference logit|, and the
argmax agreement; exits 1 when max |diff| exceeds tolerance·max|reference| + 1e-5
(the project's parity criterion), 2 when the shapes differ.
"""

from __future__ import annotations

import argparse
import copy
import sys
from pathlib import Path

import numpy as np


def reference_from_image(model_path: Path, image_path: Path, task: str) -> np.ndarray:
    # torch and the model code are needed only here, so the other modes run with numpy alone.
    import torch
    from PIL import Image

    from model_file import read_hf_checkpoint, read_model_file

    model = read_hf_checkpoint(model_path) if model_path.is_dir() else read_model_file(model_path)
    desc = model.description
    image = Image.open(image_path).convert("RGB")
    if desc.get("input") and image.size != (desc["input"]["width"], desc["input"]["height"]):
        # PIL's bilinear is not necessarily the engine's resize: compare at the
        # model's input size when the result must be exact.
        print(f"warning: resizing {image.size} to the model input with PIL bilinear", file=sys.stderr)
        image = image.resize((desc["input"]["width"], desc["input"]["height"]), Image.BILINEAR)
    x = torch.from_numpy(np.asarray(image, dtype=np.float64) / 255.0).permute(2, 0, 1)
    mean = torch.tensor(desc.get("mean") or [0.485, 0.456, 0.406], dtype=torch.float64).view(3, 1, 1)
    std = torch.tensor(desc.get("std") or [0.229, 0.224, 0.225], dtype=torch.float64).view(3, 1, 1)
    pixel_values = ((x - mean) / std).to(torch.float32).double().unsqueeze(0)  # what an F32 engine sees
    with torch.no_grad():
        return copy.deepcopy(model).double().eval()(pixel_values)[task][0].numpy()


def compare(reference: np.ndarray, logits: np.ndarray) -> dict[str, float]:
    if logits.ndim == 4 and logits.shape[0] == 1:
        logits = logits[0]
    if logits.shape != reference.shape:
        raise ValueError(f"shape {list(logits.shape)} != reference {list(reference.shape)}")
    diff = np.abs(logits.astype(np.float64) - reference.astype(np.float64))
    scale = max(float(np.abs(reference).max()), 1e-12)
    return {
        "max_abs_diff": float(diff.max()),
        "max_abs_reference": scale,
        "relative": float(diff.max()) / scale,
        "argmax_agreement": float((logits.argmax(0) == reference.argmax(0)).mean()),
    }


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description="Compare engine logits with the PyTorch reference.")
    source = parser.add_mutually_exclusive_group(required=True)
    source.add_argument("--reference", type=Path, help="reference .safetensors (logits.<task>)")
    source.add_argument("--expected", type=Path, help="reference logits as .npy")
    source.add_argument("--model", type=Path, help="model file or HF directory (needs --image)")
    parser.add_argument("--image", type=Path)
    parser.add_argument("--task", help="task name (with --reference or --model)")
    parser.add_argument("--logits", type=Path, required=True, help=".npy written by the engine")
    parser.add_argument("--tolerance", type=float, default=1e-4, help="allowed max |diff| as a fraction of max |reference| (plus 1e-5)")
    args = parser.parse_args(argv)

    if args.expected:
        reference = np.load(args.expected).astype(np.float64)
        if reference.ndim == 4 and reference.shape[0] == 1:
            reference = reference[0]
    elif not args.task:
        parser.error("--task is needed with --reference or --model")
    elif args.reference:
        from safetensors.numpy import load_file
        reference = load_file(str(args.reference))[f"logits.{args.task}"].astype(np.float64)
    elif args.image:
        reference = reference_from_image(args.model, args.image, args.task)
    else:
        parser.error("--model needs --image")
    try:
        result = compare(reference, np.load(args.logits))
    except ValueError as error:
        print(f"check_parity: {error}", file=sys.stderr)
        return 2
    print("  ".join(f"{k} {v:.3g}" for k, v in result.items()) + f"  tolerance {args.tolerance:g}")
    return 0 if result["max_abs_diff"] <= args.tolerance * result["max_abs_reference"] + 1e-5 else 1


if __name__ == "__main__":
    sys.exit(main())
