"""Writes an mtlseg model file (MODEL_FORMAT.md) from PyTorch weights.

Sources:
  * an HF checkpoint directory (config.json + model.safetensors, transformers 4
    or >= 5 names): a single-task SegFormer;
  * a checkpoint of the reference MTLSegFormer: a .pt/.pth holding
    {"description": <description dict>, "state_dict": <state dict>}.

The weights are loaded into the reference model first, so a file is only
written when its tensors match its description exactly.

    python calibration/export.py SOURCE OUT.safetensors [--name N] [--input WxH]
                                 [--task-name T] [--classes a,b,c]
"""

from __future__ import annotations

import argparse
import sys
from pathlib import Path

import torch

from model_file import load_into_model, read_hf_checkpoint, write_model_file
from mtlsegformer import MTLSegFormer


def parse_size(text: str) -> tuple[int, int]:
    """'WxH' -> (width, height)."""
    try:
        w, h = (int(v) for v in text.lower().split("x"))
    except ValueError:
        raise argparse.ArgumentTypeError(f"expected WxH, got {text!r}") from None
    if w <= 0 or h <= 0:
        raise argparse.ArgumentTypeError(f"size must be positive, got {text!r}")
    return w, h


def load_source(source: str | Path, *, name: str | None = None, input_size: tuple[int, int] | None = None,
                task_name: str | None = None, classes: list[str] | None = None) -> MTLSegFormer:
    """Loads an HF directory or a reference .pt checkpoint; options override the description."""
    source = Path(source)
    if source.is_dir():
        return read_hf_checkpoint(source, name=name, task_name=task_name or "segmentation",
                                  classes=classes, input_size=input_size)
    if task_name is not None or classes is not None:
        raise ValueError("--task-name/--classes apply to HF checkpoint directories only")
    checkpoint = torch.load(source, map_location="cpu", weights_only=True)
    description = dict(checkpoint["description"])
    if name is not None:
        description["name"] = name
    if input_size is not None:
        description["input"] = {"width": input_size[0], "height": input_size[1]}
    return load_into_model(description, checkpoint["state_dict"])


def export(source: str | Path, out: str | Path, **options) -> MTLSegFormer:
    model = load_source(source, **options)
    write_model_file(model, out)
    return model


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("source", help="HF checkpoint directory, or .pt/.pth reference checkpoint")
    parser.add_argument("out", help="model file to write (.safetensors)")
    parser.add_argument("--name", help="model name in the description (default: source's name)")
    parser.add_argument("--input", type=parse_size, metavar="WxH", help="fixed input size (default: none)")
    parser.add_argument("--task-name", help="HF input: the task's name (default: segmentation)")
    parser.add_argument("--classes", help="HF input: comma-separated class names (default: id2label)")
    args = parser.parse_args(argv)
    classes = args.classes.split(",") if args.classes else None
    try:
        model = export(args.source, args.out, name=args.name, input_size=args.input,
                       task_name=args.task_name, classes=classes)
    except (OSError, KeyError, ValueError) as error:
        print(f"export: {error}", file=sys.stderr)
        return 1
    tasks = ", ".join(f"{t['name']} ({len(t['classes'])})" for t in model.description["tasks"])
    print(f"wrote {args.out}: {model.description['variant']}, tasks {tasks}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
