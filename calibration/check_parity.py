"""Compares logits written by the Swift engine (.npy) with the PyTorch reference.

    # against a committed reference file (needs numpy and safetensors)
    python calibration/check_parity.py --reference R.safetensors --task rows --logits rows.npy
    # against logits saved as .npy (e.g. peers.py reference); needs only numpy
    python calibration/check_parity.py --expected ref.npy --logits mine.npy
    # against the reference model run on an image (float64; needs requirements.txt)
    python calibration/check_parity.py --model M.safetensors|HF_DIR --image img.png --task rows --logits rows.npy

The .npy holds [K, H/4, W/4] (or [1, K, H/4, W/4]) float logits: what
`mtlseg infer --logits PATH` writes to PATH for a one-task model, and to PATH
with the task's name before the extension (rows.plants.npy) for each task of
several. Prints the max abs difference, the difference relative to max
|reference logit|, and the argmax agreement; exits 1 when max |diff| exceeds
tolerance·max|reference| + 1e-5 (the project's parity criterion), 2 when the
shapes differ or an input cannot be used.
"""

from __future__ import annotations

import argparse
import copy
import glob
import sys
from pathlib import Path

from dependencies import missing_package_message

try:
    import numpy as np
except ModuleNotFoundError as _error:
    # Run as a script by a Python without the requirements: say what to install instead of a traceback.
    _message = missing_package_message("check_parity", _error)
    if __name__ != "__main__" or _message is None:
        raise
    sys.exit(_message)

# PIL's modes of 16-bit grey images (and "I", which older Pillows open a 16-bit grey PNG as).
GREY16_MODES = ("I;16", "I;16B", "I;16L", "I;16N")


class InputError(Exception):
    """An input the comparison cannot use; main reports it in one line (exit 2)."""


def per_task_path(path: Path, task: str) -> Path:
    """Where `mtlseg infer --logits PATH` writes a task's logits when the model has several tasks:
    x.npy -> x.<task>.npy, x -> x.<task>.npy (InferCommand.perTaskPath)."""
    if path.suffix:
        return path.with_name(f"{path.stem}.{task}{path.suffix}")
    return path.with_name(f"{path.name}.{task}.npy")


def check_logits_path(path: Path, task: str | None) -> None:
    if path.is_file():
        return
    if path.is_dir():
        raise InputError(f"--logits {path} is a folder; give the .npy file mtlseg infer --logits wrote")
    hint = ""
    if task and per_task_path(path, task).is_file():
        hint = (f"; for a model with several tasks mtlseg infer writes one file per task: "
                f"give --logits {per_task_path(path, task)}")
    else:
        pattern = f"{glob.escape(path.stem)}.*{path.suffix or '.npy'}"
        siblings = sorted(path.parent.glob(pattern)) if path.parent.is_dir() else []
        if siblings:
            hint = (f"; for a model with several tasks mtlseg infer writes one file per task, here "
                    f"{', '.join(str(p) for p in siblings[:8])}")
    raise InputError(f"--logits {path} does not exist{hint}")


def load_npy(path: Path, option: str) -> np.ndarray:
    try:
        return np.load(path)
    except (OSError, ValueError) as error:  # not an .npy, or one holding pickled objects
        raise InputError(f"{option} {path} is not a readable .npy ({error})") from None


def load_rgb8(image_path: Path):
    """The image as a PIL RGB image of 8-bit samples, as mtlseg's decoder gives them.

    mtlseg's PNG decoder (Sources/CImageCodecs/png_decode.c) keeps a 16-bit sample's high byte
    (png_set_strip_16). PIL does the same for 16-bit RGB, RGBA and grey+alpha PNGs (its RGB;16B,
    RGBA;16B and LA;16B unpackers), but opens 16-bit grey as mode I;16, whose convert("RGB")
    saturates every sample above 255 to 255: those are converted here.
    """
    from PIL import Image, UnidentifiedImageError

    try:
        image = Image.open(image_path)
    except (OSError, UnidentifiedImageError) as error:
        raise InputError(f"--image {image_path}: cannot read it ({error})") from None
    if image.mode in GREY16_MODES or (image.mode == "I" and image.format == "PNG"):
        grey = (np.asarray(image).astype(np.uint32) >> 8).astype(np.uint8)
        return Image.fromarray(np.repeat(grey[:, :, None], 3, axis=2))  # [H, W, 3] uint8: RGB
    return image.convert("RGB")


def load_reference_model(model_path: Path):
    from safetensors import SafetensorError

    from model_file import read_hf_checkpoint, read_model_file

    try:
        return read_hf_checkpoint(model_path) if model_path.is_dir() else read_model_file(model_path)
    except SafetensorError as error:  # a file only: an HF directory's unreadable weights come as ValueError
        raise InputError(f"--model {model_path} is neither an mtlseg model file nor an HF checkpoint directory "
                         f"({error}); export a .pt checkpoint with export.py first") from None
    except (OSError, ValueError) as error:  # not a model, an int8 one, tensors that do not match
        message = str(error)
        if not message.startswith(str(model_path)):
            message = f"{model_path}: {message}"
        raise InputError(f"--model {message}") from None


def reference_from_image(model_path: Path, image_path: Path, task: str) -> np.ndarray:
    # torch and the model code are needed only here, so the other modes run with numpy alone.
    import torch
    from PIL import Image

    model = load_reference_model(model_path)
    if task not in model.task_names:
        raise InputError(f"--task {task!r}: the model has no such task; its tasks: {', '.join(model.task_names)}")
    desc = model.description
    channels = desc["encoder"]["num_channels"]
    if channels != 3:  # an image gives RGB; mtlseg infer refuses such a model too (InferCommand)
        raise InputError(f"--model {model_path}: the model takes {channels} input channels; images give 3 (RGB)")
    image = load_rgb8(image_path)
    pixels = np.asarray(image, dtype=np.float64)
    if desc.get("input") and image.size != (desc["input"]["width"], desc["input"]["height"]):
        # As the engine resizes (ModelInputPreprocessor): PIL's bilinear on floats, channel by channel ("F" mode).
        # On the 8-bit image PIL would round twice, which HF's processor does and the engine does not.
        size = (desc["input"]["width"], desc["input"]["height"])
        print(f"note: resizing {image.size} to the model input {size[0]}x{size[1]} as mtlseg does (PIL bilinear on floats)",
              file=sys.stderr)
        pixels = np.stack([np.asarray(channel.convert("F").resize(size, Image.BILINEAR), dtype=np.float64)
                           for channel in image.split()], axis=-1)
    x = torch.from_numpy(pixels / 255.0).permute(2, 0, 1)
    mean = torch.tensor(desc.get("mean") or [0.485, 0.456, 0.406], dtype=torch.float64).view(3, 1, 1)
    std = torch.tensor(desc.get("std") or [0.229, 0.224, 0.225], dtype=torch.float64).view(3, 1, 1)
    pixel_values = ((x - mean) / std).to(torch.float32).double().unsqueeze(0)  # what an F32 engine sees
    with torch.no_grad():
        return copy.deepcopy(model).double().eval()(pixel_values)[task][0].numpy()


def reference_from_file(reference_path: Path, task: str) -> np.ndarray:
    from safetensors import SafetensorError
    from safetensors.numpy import load_file

    try:
        tensors = load_file(str(reference_path))
    except (SafetensorError, OSError) as error:  # OSError: a folder, an unreadable file
        raise InputError(f"--reference {reference_path} is not a safetensors file ({error})") from None
    if f"logits.{task}" not in tensors:
        tasks = [name.removeprefix("logits.") for name in tensors if name.startswith("logits.")]
        raise InputError(f"--task {task!r}: {reference_path} has no logits.{task}; its tasks: "
                         f"{', '.join(tasks) or 'none (no logits.<task> tensors)'}")
    return tensors[f"logits.{task}"].astype(np.float64)


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
    source.add_argument("--model", type=Path, help="fp32 model file or HF directory (needs --image)")
    parser.add_argument("--image", type=Path)
    parser.add_argument("--task", help="task name (with --reference or --model)")
    parser.add_argument("--logits", type=Path, required=True,
                        help=".npy written by the engine (mtlseg infer --logits; one per task: NAME.<task>.npy)")
    parser.add_argument("--tolerance", type=float, default=1e-4, help="allowed max |diff| as a fraction of max |reference| (plus 1e-5)")
    args = parser.parse_args(argv)
    if not args.expected and not args.task:
        parser.error("--task is needed with --reference or --model")
    if args.model and not args.image:
        parser.error("--model needs --image")

    try:
        for option, path in (("--reference", args.reference), ("--expected", args.expected),
                             ("--model", args.model), ("--image", args.image)):
            if path is not None and not path.exists():
                raise InputError(f"{option} {path} does not exist")
            # A folder is an input only as --model's HF checkpoint directory; elsewhere it would fail later
            # with an OSError, or a traceback, instead of exit 2.
            if path is not None and path.is_dir() and option != "--model":
                raise InputError(f"{option} {path} is a folder; give a file")
        check_logits_path(args.logits, args.task)
        if args.expected:
            reference = load_npy(args.expected, "--expected").astype(np.float64)
            if reference.ndim == 4 and reference.shape[0] == 1:
                reference = reference[0]
        elif args.reference:
            reference = reference_from_file(args.reference, args.task)
        else:
            reference = reference_from_image(args.model, args.image, args.task)
        logits = load_npy(args.logits, "--logits")
        # An empty array has no max to compare: say which file, not numpy's "zero-size array to reduction".
        for option, path, array in (("--logits", args.logits, logits),
                                    ("--expected" if args.expected else "--reference" if args.reference else "--model",
                                     args.expected or args.reference or args.model, reference)):
            if array.size == 0:
                raise InputError(f"{option} {path}: the logits are empty (shape {list(array.shape)})")
    except ModuleNotFoundError as error:
        message = missing_package_message("check_parity", error)
        if message is None:
            raise
        print(message, file=sys.stderr)
        return 2
    except InputError as error:
        print(f"check_parity: {error}", file=sys.stderr)
        return 2
    try:
        result = compare(reference, logits)
    except ValueError as error:
        print(f"check_parity: {error}", file=sys.stderr)
        return 2
    print("  ".join(f"{k} {v:.3g}" for k, v in result.items()) + f"  tolerance {args.tolerance:g}")
    return 0 if result["max_abs_diff"] <= args.tolerance * result["max_abs_reference"] + 1e-5 else 1


if __name__ == "__main__":
    sys.exit(main())
