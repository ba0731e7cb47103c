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
import os
import pickle
import pickletools
import re
import sys
import zipfile
from pathlib import Path

from dependencies import missing_package_message

try:
    import torch
    from safetensors import safe_open

    from model_file import (METADATA_KEY, check_output_path, input_size_problem,
                            load_into_model, read_hf_checkpoint, task_name_problem, type_problem,
                            write_model_file)
    from mtlsegformer import MTLSegFormer
except ModuleNotFoundError as _error:
    # Run as a script by a Python without the requirements: say what to install instead of a traceback.
    _message = missing_package_message("export", _error)
    if __name__ != "__main__" or _message is None:
        raise
    sys.exit(_message)

# What a source may be, for the messages about files that are something else.
SOURCES = ("export reads an HF checkpoint directory (save_pretrained: config.json + model.safetensors) or a .pt/.pth "
           "holding {'description': model.to_description(), 'state_dict': model.state_dict()} of the reference "
           "MTLSegFormer; see calibration/README.md")

# The files export reads in an HF checkpoint directory (read_hf_checkpoint).
HF_FILES = ("config.json", "model.safetensors", "preprocessor_config.json")


def parse_size(text: str) -> tuple[int, int]:
    """'WxH' -> (width, height), within the sides mtlseg accepts."""
    try:
        w, h = (int(v) for v in text.lower().split("x"))
    except ValueError:
        raise argparse.ArgumentTypeError(f"expected WxH, got {text!r}") from None
    problem = input_size_problem(w, h)
    if problem:
        raise argparse.ArgumentTypeError(f"{problem} (mtlseg's limit per side)")
    return w, h


def parse_task_name(text: str) -> str:
    problem = task_name_problem(text)
    if problem:
        raise argparse.ArgumentTypeError(f"task name {problem} (mtlseg takes 1 to 64 bytes without '/', '\\', "
                                         "'..' or control characters)")
    return text


def _is_safetensors(path: Path) -> bool:
    """A safetensors file starts with its JSON header's length (8 bytes, little-endian), then '{'."""
    with open(path, "rb") as f:
        head = f.read(9)
    return len(head) == 9 and head[8:] == b"{"


def _is_state_dict(value) -> bool:
    return isinstance(value, dict) and bool(value) and all(isinstance(v, torch.Tensor) for v in value.values())


def _top_level_is_object(source: Path) -> bool:
    """Whether the pickle in a torch.save zip is an object of some class (torch.save(model)) rather than a
    dict or list holding one; read from the opcodes, without unpickling. True when it cannot be told."""
    try:
        with zipfile.ZipFile(source) as archive:
            name = next(n for n in archive.namelist() if n.endswith("/data.pkl") or n == "data.pkl")
            data = archive.read(name)
        for opcode, _, _ in pickletools.genops(data):
            if opcode.name in ("PROTO", "FRAME"):
                continue
            # The first object built is the top-level one for a container: its empty dict/list comes first.
            return opcode.name not in ("EMPTY_DICT", "EMPTY_LIST", "MARK", "EMPTY_TUPLE")
    except (OSError, StopIteration, ValueError, zipfile.BadZipFile):
        pass
    return True


def read_checkpoint(source: Path) -> tuple[dict, dict]:
    """(description, state_dict) of a reference checkpoint file; a ValueError saying what the file is otherwise.

    torch.load runs with weights_only=True: a checkpoint is data, and unpickling anything else runs the
    code the file names.
    """
    if _is_safetensors(source):
        with safe_open(str(source), framework="pt") as f:
            metadata = f.metadata() or {}
        if METADATA_KEY in metadata:
            raise ValueError(f"{source} is already an mtlseg model file: mtlseg reads it as it is, there is nothing "
                             f"to export")
        if (source.parent / "config.json").is_file():
            raise ValueError(f"{source} holds an HF checkpoint's weights: export its directory, {source.parent}, "
                             f"which holds its config.json")
        raise ValueError(f"{source} holds tensors but no model description: {SOURCES}")
    try:
        checkpoint = torch.load(source, map_location="cpu", weights_only=True)
    except pickle.UnpicklingError as error:
        found = re.search(r"GLOBAL (\S+) was not an allowed global", str(error))
        if found or "GLOBAL" in str(error):  # weights_only met a class: the file pickles objects, not just tensors
            class_name = found.group(1) if found else "unknown"
            if not _top_level_is_object(source):
                # A checkpoint dict that also keeps e.g. args=Namespace(...) or numpy values: the dict is right,
                # one value in it is not plain data.
                raise ValueError(
                    f"{source} holds an object of class {class_name} besides plain data, which export does "
                    f"not unpickle: save a dict of only 'description' (plain lists, numbers, strings) and 'state_dict' (tensors); "
                    f"see calibration/README.md") from None
            raise ValueError(
                f"{source} holds a pickled {class_name} object (torch.save(model)), which export does not "
                f"unpickle: save {{'description': model.to_description(), 'state_dict': model.state_dict()}} "
                f"for an MTLSegFormer, or model.save_pretrained(DIR) for an HF SegFormer, and export that; "
                f"see calibration/README.md") from None
        # torch's own message is about weights_only, not about the file.
        raise ValueError(f"{source} is not a torch checkpoint: {SOURCES}") from None
    except (KeyError, ValueError, TypeError, IndexError):
        # Torch's unpickler reading bytes that are no pickle (a text file: KeyError(101), 'e' read as an opcode).
        raise ValueError(f"{source} is not a torch checkpoint: {SOURCES}") from None
    except (RuntimeError, EOFError) as error:  # a truncated or foreign zip, an empty file
        reason = str(error).split(". ")[0] or "the file ends early"  # torch's first sentence; the rest is advice
        raise ValueError(f"{source} is not a checkpoint torch.load can read ({reason}): {SOURCES}") from None
    if _is_state_dict(checkpoint):
        raise ValueError(
            f"{source} is a bare state_dict (torch.save(model.state_dict())), which has no model description: "
            f"for an HF SegFormer, load it into the model and save_pretrained(DIR), then export DIR; for an "
            f"MTLSegFormer, save {{'description': model.to_description(), 'state_dict': model.state_dict()}}; "
            f"see calibration/README.md")
    if not isinstance(checkpoint, dict):
        raise ValueError(f"{source} holds a {type(checkpoint).__name__}: {SOURCES}")
    missing = [key for key in ("description", "state_dict") if key not in checkpoint]
    if missing:
        raise ValueError(f"{source} has no {' or '.join(map(repr, missing))} entry (it holds "
                         f"{sorted(map(str, checkpoint))[:8]}): {SOURCES}")
    if not isinstance(checkpoint["description"], dict) or not _is_state_dict(checkpoint["state_dict"]):
        raise ValueError(f"{source}: 'description' must be a dict (model.to_description()) and 'state_dict' "
                         f"a dict of tensors (model.state_dict())")
    return dict(checkpoint["description"]), checkpoint["state_dict"]


def load_source(source: str | Path, *, name: str | None = None, input_size: tuple[int, int] | None = None,
                task_name: str | None = None, classes: list[str] | None = None) -> MTLSegFormer:
    """Loads an HF directory or a reference .pt checkpoint; options override the description."""
    source = Path(source)
    if not source.exists():
        raise FileNotFoundError(f"{source} does not exist")
    if source.is_dir():
        return read_hf_checkpoint(source, name=name, task_name=task_name or "segmentation",
                                  classes=classes, input_size=input_size)
    if task_name is not None or classes is not None:
        raise ValueError("--task-name/--classes apply to HF checkpoint directories only")
    description, state_dict = read_checkpoint(source)
    if name is not None:
        description["name"] = name
    if input_size is not None:
        description["input"] = {"width": input_size[0], "height": input_size[1]}
    # Before the model is built from it: a field of the wrong JSON type would otherwise be written as it is
    # (mtlseg's typed decoder then refuses the file) or fail inside the model code with a traceback.
    problem = type_problem(description)
    if problem:
        raise ValueError(f"{source}: mtlseg would refuse this model: description field {problem[0]!r}: {problem[1]}")
    try:
        return load_into_model(description, state_dict)
    except KeyError as error:  # a hand-made description without one of its fields
        raise ValueError(f"{source}: the description has no {error.args[0]!r} field") from None


def check_not_source(source: str | Path, out: str | Path) -> None:
    """Refuses an output that is the source, or one of the files export reads in a source directory: writing
    it would destroy the checkpoint being read (mtlseg refuses the same, OutputPaths.refuseOverwriting).
    samefile: a link, a '..' or another spelling of the path must not hide that it is the same file."""
    source, out = Path(source), Path(out)
    if not out.exists():
        return
    read = [source / name for name in HF_FILES] if source.is_dir() else [source]
    for path in read:
        if path.exists() and os.path.samefile(path, out):
            raise ValueError(f"{out} is the source {path}: export would overwrite the checkpoint it reads; "
                             f"give another output path")


def export(source: str | Path, out: str | Path, **options) -> MTLSegFormer:
    check_output_path(out)  # before loading, which can take a while (write_model_file checks it again)
    check_not_source(source, out)
    model = load_source(source, **options)
    write_model_file(model, out)  # refuses what mtlseg would refuse at load
    return model


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("source", help="HF checkpoint directory, or .pt/.pth reference checkpoint")
    parser.add_argument("out", help="model file to write (.safetensors)")
    parser.add_argument("--name", help="model name in the description (default: the .pt description's own name, "
                                         "or the HF directory's name)")
    parser.add_argument("--input", type=parse_size, metavar="WxH", help="fixed input size (default: none)")
    parser.add_argument("--task-name", type=parse_task_name, help="HF input: the task's name (default: segmentation)")
    parser.add_argument("--classes", help="HF input: comma-separated class names (default: id2label)")
    args = parser.parse_args(argv)
    # `is not None`: --classes '' is one empty class name, which the class-name checks then refuse, not "use id2label".
    classes = args.classes.split(",") if args.classes is not None else None
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
