"""The mtlseg model file (MODEL_FORMAT.md): tensor naming, writing and reading.

* Tensor names: the file holds transformers 4 names; the reference model (built
  from transformers >= 5 modules) uses transformers 5 names. `to_transformers4_names`
  and `to_transformers5_names` convert between them with the fixed rename table
  of MODEL_FORMAT.md (the same renames as transformers' conversion_mapping.py).
* `write_model_file` / `read_model_file`: F32 safetensors + JSON description in
  `__metadata__["mtlseg"]`.
* `read_hf_checkpoint`: a `save_pretrained` directory (config.json +
  model.safetensors, either naming generation) as a single-task model.
* `engine_problem`: what in a description mtlseg refuses at load, so that no
  file is written that the engine then refuses.
"""

from __future__ import annotations

import json
import math
import re
import unicodedata
from pathlib import Path

import torch
from safetensors import SafetensorError, safe_open
from safetensors.torch import load_file, save_file

from mtlsegformer import ENCODER_KEYS, MTLSegFormer, make_description

METADATA_KEY = "mtlseg"
# Present in int8 files only (mtlseg calibrate's output, MODEL_FORMAT.md "int8 models").
QUANTIZATION_KEY = "mtlseg_quantization"
# The engine's limits (Sources/MTLSegCore/ModelDescription.swift, validate; TaskNameRules.swift).
MAX_TASK_NAME_BYTES = 64
MAX_INPUT_SIDE = 16384

# (transformers >= 5, transformers 4). {i}/{j} are stage/block indices. Each
# pattern is a whole dotted-path fragment, so no rule can match inside another
# rule's output, and applying either direction to names already in the target
# generation leaves them unchanged.
_RENAMES = [
    ("segformer.stages.{i}.patch_embeddings.", "segformer.encoder.patch_embeddings.{i}."),
    ("segformer.stages.{i}.blocks.{j}.", "segformer.encoder.block.{i}.{j}."),
    ("segformer.stages.{i}.layer_norm.", "segformer.encoder.layer_norm.{i}."),
    (".layernorm_before.", ".layer_norm_1."),
    (".layernorm_after.", ".layer_norm_2."),
    (".attention.q_proj.", ".attention.self.query."),
    (".attention.k_proj.", ".attention.self.key."),
    (".attention.v_proj.", ".attention.self.value."),
    (".attention.o_proj.", ".attention.output.dense."),
    (".attention.sequence_reduction.sequence_reduction.", ".attention.self.sr."),
    (".attention.sequence_reduction.layer_norm.", ".attention.self.layer_norm."),
    (".mlp.fc1.", ".mlp.dense1."),
    (".mlp.fc2.", ".mlp.dense2."),
    ("decode_head.linear_projections.", "decode_head.linear_c."),
]


def _compile(src: str, dst: str) -> tuple[re.Pattern, str]:
    pattern = re.escape(src).replace(r"\{i\}", r"(?P<i>\d+)").replace(r"\{j\}", r"(?P<j>\d+)")
    if src.startswith(("segformer.", "decode_head.")):
        pattern = "^" + pattern  # top-level prefixes only match at the start
    return re.compile(pattern), dst.replace("{i}", r"\g<i>").replace("{j}", r"\g<j>")


_TO_T4 = [_compile(t5, t4) for t5, t4 in _RENAMES]
_TO_T5 = [_compile(t4, t5) for t5, t4 in _RENAMES]


def _rename(name: str, rules) -> str:
    for pattern, repl in rules:
        name = pattern.sub(repl, name)
    return name


def to_transformers4_name(name: str) -> str:
    return _rename(name, _TO_T4)


def to_transformers5_name(name: str) -> str:
    return _rename(name, _TO_T5)


def to_transformers4_names(tensors: dict) -> dict:
    return {to_transformers4_name(k): v for k, v in tensors.items()}


def to_transformers5_names(tensors: dict) -> dict:
    return {to_transformers5_name(k): v for k, v in tensors.items()}


def _float_weights(state: dict) -> dict[str, torch.Tensor]:
    """F32, contiguous; drops integer buffers (num_batches_tracked), which the engine ignores."""
    return {k: v.detach().to(torch.float32).contiguous() for k, v in state.items() if v.is_floating_point()}


def _control(character: str) -> bool:
    """C0, DEL, C1 and the Unicode line and paragraph separators (TaskNameRules.isUnsafe)."""
    value = ord(character)
    return value < 0x20 or 0x7F <= value <= 0x9F or value in (0x2028, 0x2029)


def task_name_problem(name) -> str | None:
    """Why mtlseg refuses `name` as a task's name, in its words; None when it takes it.

    Task names become parts of file names (`infer` writes `<image>.<task>.mask.png`) and appear in
    logs, so the engine refuses them at load (TaskNameRules.problem); the same rules here keep
    export from writing a file the engine then refuses.
    """
    if not isinstance(name, str):
        return f"{name!r} is not a string"
    if not name:
        return "empty"
    if len(name.encode("utf-8", "surrogatepass")) > MAX_TASK_NAME_BYTES:
        return f"longer than {MAX_TASK_NAME_BYTES} bytes"
    if "/" in name or "\\" in name:
        return f"{name!r} contains a path separator; task names become file names"
    if ".." in name:
        return f"{name!r} contains '..'; task names become file names"
    if any(_control(c) for c in name):
        return f"{name!r} contains a control character"
    return None


def input_size_problem(width: int, height: int) -> str | None:
    if not (1 <= width <= MAX_INPUT_SIDE and 1 <= height <= MAX_INPUT_SIDE):
        return f"size {width}x{height} is outside 1...{MAX_INPUT_SIDE}"
    return None


def _is_int(value) -> bool:
    return isinstance(value, int) and not isinstance(value, bool)  # JSON true is no Int to Swift's decoder


def _is_number(value) -> bool:
    return isinstance(value, (int, float)) and not isinstance(value, bool)


def _is_list_of(value, check) -> bool:
    return isinstance(value, list) and all(check(v) for v in value)


def type_problem(desc) -> tuple[str, str] | None:
    """(field, reason) for the first field of `desc` whose JSON type mtlseg's typed decoder refuses.

    ModelDescription (Swift) decodes with Codable: name and class names are String, sizes and colours
    Int, mean/std [Float]; a value of another type fails the whole load, however right its value is.
    Optional fields (decodeIfPresent) may be absent or null. An integral float (512.0) is refused too:
    mtlseg's reader would take it (Foundation decodes 512.0 into an Int), but json.dumps would write
    512.0 where MODEL_FORMAT.md says an integer, and other readers of the format need not be as lenient.
    """
    if not isinstance(desc, dict):
        return "mtlseg", "not a JSON object"
    for key, check, expected in [("format", lambda v: isinstance(v, str), "String"),
                                 ("format_version", _is_int, "Int"), ("name", lambda v: isinstance(v, str), "String"),
                                 ("variant", lambda v: isinstance(v, str), "String"),
                                 ("layer_norm_eps", _is_number, "a number"),
                                 ("mean", lambda v: _is_list_of(v, _is_number), "a list of numbers"),
                                 ("std", lambda v: _is_list_of(v, _is_number), "a list of numbers")]:
        if desc.get(key) is not None and not check(desc[key]):
            return key, f"expected {expected}, got {desc[key]!r}"
    encoder = desc.get("encoder")
    if not isinstance(encoder, dict):
        return "encoder", "expected an object" if encoder is not None else "missing"
    for key in ENCODER_KEYS:
        if key not in encoder:
            return f"encoder.{key}", "missing"
        check, expected = (_is_int, "Int") if key == "num_channels" else \
            (lambda v: _is_list_of(v, _is_int), "a list of Int")
        if not check(encoder[key]):
            return f"encoder.{key}", f"expected {expected}, got {encoder[key]!r}"
    if not _is_int(desc.get("decoder_hidden_size")):
        return "decoder_hidden_size", f"expected Int, got {desc.get('decoder_hidden_size')!r}"
    tasks = desc.get("tasks")
    if not isinstance(tasks, list):
        return "tasks", f"expected a list of tasks, got {tasks!r}"
    for t, task in enumerate(tasks):
        if not isinstance(task, dict):
            return f"tasks[{t}]", f"expected an object, got {task!r}"
        if not isinstance(task.get("name"), str):
            return f"tasks[{t}].name", f"expected String, got {task.get('name')!r}"
        classes = task.get("classes")
        if not isinstance(classes, list):
            return f"tasks[{t}].classes", f"expected a list of String, got {classes!r}"
        for c, class_name in enumerate(classes):
            if not isinstance(class_name, str):
                return f"tasks[{t}].classes[{c}]", f"expected String, got {class_name!r}"
        colors = task.get("colors")
        if colors is not None and not _is_list_of(colors, lambda c: _is_list_of(c, _is_int)):
            return f"tasks[{t}].colors", f"expected lists of Int, got {colors!r}"
    size = desc.get("input")
    if size is not None:
        if not isinstance(size, dict):
            return "input", f"expected {{'width': Int, 'height': Int}}, got {size!r}"
        for side in ("width", "height"):
            if not _is_int(size.get(side)):
                return f"input.{side}", f"expected Int, got {size.get(side)!r}"
    return None


FLOAT32_MAX = 3.4028234663852886e38


def engine_problem(desc: dict) -> tuple[str, str] | None:
    """(field, reason) for the first thing in `desc` that mtlseg refuses at load, None when it loads.

    The checks and their order are those of ModelDescription.validate (Swift), past what
    mtlsegformer.validate_description already demands (format, list lengths, layer_norm_eps), after the
    JSON types (type_problem).
    """
    problem = type_problem(desc)
    if problem:
        return problem
    enc = desc["encoder"]
    stages = len(enc["hidden_sizes"])
    if stages < 1:
        return "encoder.hidden_sizes", "no stages"
    for key in ENCODER_KEYS[2:]:
        if len(enc[key]) != stages:
            return f"encoder.{key}", f"has {len(enc[key])} entries, hidden_sizes has {stages}"
        if not all(1 <= v <= 4096 for v in enc[key]):
            return f"encoder.{key}", "values must be between 1 and 4096"
    if not all(1 <= v <= 65536 for v in enc["hidden_sizes"]):
        return "encoder.hidden_sizes", "values must be between 1 and 65536"
    if not 1 <= enc["num_channels"] <= 64:
        return "encoder.num_channels", "must be between 1 and 64"
    for i, (heads, channels) in enumerate(zip(enc["num_attention_heads"], enc["hidden_sizes"])):
        if channels % heads:
            return "encoder.num_attention_heads", f"stage {i}: {heads} heads do not divide {channels} channels"
    if not 1 <= desc["decoder_hidden_size"] <= 65536:
        return "decoder_hidden_size", "must be between 1 and 65536"
    tasks = desc["tasks"]
    if not tasks:
        return "tasks", "no tasks"
    # Swift compares strings by canonical equivalence: "é" precomposed and decomposed are one name.
    if len({unicodedata.normalize("NFC", str(t["name"])) for t in tasks}) != len(tasks):
        return "tasks", "task names repeat"
    for t, task in enumerate(tasks):
        problem = task_name_problem(task["name"])
        if problem:
            return f"tasks[{t}].name", problem
        count = len(task["classes"])
        if not 1 <= count <= 255:
            return f"tasks[{t}].classes", f"{count} classes; masks are u8, so 1 to 255"
        colors = task.get("colors")
        if colors is not None:
            if len(colors) != count:
                return f"tasks[{t}].colors", f"{len(colors)} colours for {count} classes"
            if not all(len(c) == 3 and all(0 <= v <= 255 for v in c) for c in colors):
                return f"tasks[{t}].colors", "each colour must be [r, g, b] in 0...255"
    size = desc.get("input")
    if size is not None:
        problem = input_size_problem(size["width"], size["height"])
        if problem:
            return "input", problem
    channels = enc["num_channels"]
    # mtlseg reads mean and std as Float32 from JSON, which has no NaN or infinity (json.dumps would write them).
    for key in ("mean", "std"):
        if not all(math.isfinite(v) and abs(v) <= FLOAT32_MAX for v in desc[key]):
            return key, "values must be finite and within a 32-bit float's range"
    if len(desc["mean"]) != channels:
        return "mean", f"{len(desc['mean'])} values for {channels} channels"
    # The engine reads std as Float32: a positive double that rounds to 0 there is refused too.
    if len(desc["std"]) != channels or not bool((torch.tensor(desc["std"], dtype=torch.float64).float() > 0).all()):
        return "std", f"needs {channels} positive values"
    return None


def check_engine_rules(desc: dict) -> None:
    """Raises ValueError, naming the field as mtlseg would, for a description mtlseg refuses at load."""
    problem = engine_problem(desc)
    if problem:
        raise ValueError(f"mtlseg would refuse this model: description field {problem[0]!r}: {problem[1]}")


def load_into_model(description: dict, tensors: dict) -> MTLSegFormer:
    """Builds the reference model and loads tensors of either naming generation.

    Strict: every tensor the description implies must be present with its
    shape; floating-point tensors the model does not use are an error too, so
    that a wrong description is caught at export rather than in the engine.
    """
    model = MTLSegFormer(description)
    weights = to_transformers5_names(_float_weights(tensors))
    expected = {k: v.shape for k, v in model.state_dict().items() if v.is_floating_point()}
    missing, unexpected = sorted(expected.keys() - weights.keys()), sorted(weights.keys() - expected.keys())
    if missing or unexpected:
        raise ValueError(f"tensors do not match the description: missing {missing[:8]}, unexpected {unexpected[:8]}")
    for k, shape in expected.items():
        if weights[k].shape != shape:
            raise ValueError(f"{to_transformers4_name(k)}: shape {list(weights[k].shape)}, "
                             f"the description implies {list(shape)}")
    model.load_state_dict(weights, strict=False)  # strict=False only for num_batches_tracked
    return model.eval()


def check_output_path(path: str | Path) -> None:
    """Raises OSError when a model file cannot be written at `path`: safetensors reports a missing folder
    as a SafetensorError about a temporary file of its own, not about the folder the user gave."""
    path = Path(path)
    if not path.parent.is_dir():
        raise FileNotFoundError(f"{path}: the folder {str(path.parent)!r} does not exist; create it first")
    if path.is_dir():
        raise IsADirectoryError(f"{path} is a folder; give the model file's name (e.g. {path / 'model.safetensors'})")


def write_model_file(model: MTLSegFormer, path: str | Path) -> None:
    """Raises ValueError for a description mtlseg refuses, OSError when `path` cannot be written."""
    description = model.to_description()
    check_engine_rules(description)
    check_output_path(path)
    tensors = to_transformers4_names(_float_weights(model.state_dict()))
    metadata = {METADATA_KEY: json.dumps(description, indent=None)}
    try:
        save_file(dict(sorted(tensors.items())), str(path), metadata=metadata)
    except SafetensorError as error:
        raise OSError(f"cannot write {path}: {error}") from None


def read_model_file(path: str | Path) -> MTLSegFormer:
    with safe_open(str(path), framework="pt") as f:
        metadata = f.metadata() or {}
    if QUANTIZATION_KEY in metadata:
        # Its tensors (int8 weights and scales, folded BatchNorm) are not the reference's fp32 ones.
        raise ValueError(f"{path} is an int8 model file (mtlseg calibrate's output); the PyTorch reference runs "
                         f"fp32 weights only: give the fp32 model file it was calibrated from (export.py's output)")
    if METADATA_KEY not in metadata:
        raise ValueError(f"{path}: no __metadata__[{METADATA_KEY!r}], so not an mtlseg model file")
    return load_into_model(json.loads(metadata[METADATA_KEY]), load_file(str(path)))


HF_DEFAULTS = {"num_channels": 3, "patch_sizes": [7, 3, 3, 3], "strides": [4, 2, 2, 2], "mlp_ratios": [4, 4, 4, 4],
               "decoder_hidden_size": 256}


def hf_description(config: dict, *, name: str, task_name: str = "segmentation",
                   classes: list[str] | None = None, input_size: tuple[int, int] | None = None,
                   mean: list[float] | None = None, std: list[float] | None = None) -> dict:
    """Description of an HF SegformerForSemanticSegmentation config.json (one task)."""
    # As mtlseg reads an HF directory (HFConfig, Swift): another model type is another architecture, even
    # where its config.json holds SegFormer's keys (UperNet's backbone, say).
    model_type = config.get("model_type")
    # The messages name the field only: read_hf_checkpoint puts the config.json's path in front.
    if isinstance(model_type, str) and model_type != "segformer":
        raise ValueError(f"model_type is {model_type!r}, not 'segformer': mtlseg runs "
                         f"SegformerForSemanticSegmentation checkpoints only")
    if config.get("hidden_act", "gelu") != "gelu" or not config.get("reshape_last_stage", True):
        raise ValueError("only hidden_act 'gelu' and reshape_last_stage true are supported")
    if classes is None:
        id2label = config.get("id2label") or {str(i): f"LABEL_{i}" for i in range(config.get("num_labels", 2))}
        if not isinstance(id2label, dict):
            raise ValueError(f"field 'id2label': expected an object of index: label, got {id2label!r}")
        bad = [k for k, v in id2label.items()
               if not (isinstance(k, str) and k.strip().lstrip("-").isdigit() and isinstance(v, str))]
        if bad:
            raise ValueError(f"field 'id2label.{bad[0]}': expected an integer key and a string label")
        if sorted(map(int, id2label)) != list(range(len(id2label))):
            raise ValueError(f"field 'id2label': keys are not 0..<{len(id2label)}")
        classes = [id2label[k] for k in sorted(id2label, key=int)]
    # The defaults mtlseg takes for keys a config.json may leave out (HFConfig.description, Swift; they are
    # transformers' SegformerConfig defaults too): a model mtlseg runs must export.
    encoder = {k: config.get(k, HF_DEFAULTS.get(k)) for k in ENCODER_KEYS}
    if any(v is None for v in encoder.values()):
        raise ValueError(f"lacks {[k for k, v in encoder.items() if v is None]}")
    # make_description converts a number to int; its lists are checked as typed JSON after (type_problem).
    if not all(isinstance(encoder[k], list if k != "num_channels" else int) for k in ENCODER_KEYS):
        k = next(k for k in ENCODER_KEYS if not isinstance(encoder[k], list if k != "num_channels" else int))
        raise ValueError(f"field {k!r}: expected {'Int' if k == 'num_channels' else 'a list of Int'}, "
                         f"got {encoder[k]!r}")
    # Note: config.json's layer_norm_eps is not used by HF's SegFormer (every
    # LayerNorm is built with eps 1e-5), so it is deliberately not copied.
    return make_description(encoder, config.get("decoder_hidden_size", HF_DEFAULTS["decoder_hidden_size"]),
                            [{"name": task_name, "classes": classes}],
                            name=name, input_size=input_size, mean=mean, std=std)


def _read_json_object(path: Path) -> dict:
    """The JSON object `path` holds; ValueError naming the file otherwise."""
    try:
        value = json.loads(path.read_text())
    except ValueError as error:
        raise ValueError(f"{path}: not valid JSON ({error})") from None
    if not isinstance(value, dict):
        raise ValueError(f"{path}: not a JSON object")
    return value


def read_preprocessor_config(path: Path) -> tuple[list | None, list | None]:
    """(image_mean, image_std) of an HF preprocessor_config.json; ValueError naming the file otherwise."""
    pre = _read_json_object(path)
    values = []
    for key in ("image_mean", "image_std"):
        value = pre.get(key)
        if value is not None and not _is_list_of(value, _is_number):
            raise ValueError(f"{path}: field {key!r}: not a list of numbers ({value!r})")
        values.append(value)
    return values[0], values[1]


def read_hf_checkpoint(directory: str | Path, *, name: str | None = None, task_name: str = "segmentation",
                       classes: list[str] | None = None,
                       input_size: tuple[int, int] | None = None) -> MTLSegFormer:
    directory = Path(directory)
    config_path, weights_path = directory / "config.json", directory / "model.safetensors"
    if not config_path.is_file():
        raise FileNotFoundError(f"{directory} has no config.json, so is not an HF checkpoint directory "
                                f"(save_pretrained writes config.json + model.safetensors)")
    if not weights_path.is_file():
        other = "; it holds pytorch_model.bin: load it with from_pretrained and save_pretrained it again" \
            if (directory / "pytorch_model.bin").exists() else ""
        raise FileNotFoundError(f"{directory} has no model.safetensors{other}")
    config = _read_json_object(config_path)
    mean = std = None
    preprocessor = directory / "preprocessor_config.json"
    if preprocessor.exists():  # the checkpoint's own normalisation, when it ships one
        mean, std = read_preprocessor_config(preprocessor)
    try:
        desc = hf_description(config, name=name or directory.resolve().name, task_name=task_name,
                              classes=classes, input_size=input_size, mean=mean, std=std)
    except (TypeError, ValueError) as error:  # TypeError: make_description's int() of a value of another type
        raise ValueError(f"{config_path}: {error}") from None
    problem = type_problem(desc)
    if problem:
        # In the file's own names: config.json keeps the encoder's keys at top level.
        field = f"image_{problem[0]}" if problem[0] in ("mean", "std") else problem[0].removeprefix("encoder.")
        where = preprocessor if problem[0] in ("mean", "std") else config_path
        raise ValueError(f"{where}: field {field!r}: {problem[1]}")
    try:
        tensors = load_file(str(weights_path))
    except SafetensorError as error:  # an interrupted download, a file of something else
        raise ValueError(f"{weights_path}: not a readable safetensors file ({error})") from None
    return load_into_model(desc, tensors)
