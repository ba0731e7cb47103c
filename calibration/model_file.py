"""The mtlseg model file (MODEL_FORMAT.md): tensor naming, writing and reading.

* Tensor names: the file holds transformers 4 names; the reference model (built
  from transformers >= 5 modules) uses transformers 5 names. `to_transformers4_names`
  and `to_transformers5_names` convert between them with the fixed rename table
  of MODEL_FORMAT.md (the same renames as transformers' conversion_mapping.py).
* `write_model_file` / `read_model_file`: F32 safetensors + JSON description in
  `__metadata__["mtlseg"]`.
* `read_hf_checkpoint`: a `save_pretrained` directory (config.json +
  model.safetensors, either naming generation) as a single-task model.
"""

from __future__ import annotations

import json
import re
from pathlib import Path

import torch
from safetensors import safe_open
from safetensors.torch import load_file, save_file

from mtlsegformer import ENCODER_KEYS, MTLSegFormer, make_description

METADATA_KEY = "mtlseg"

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


def write_model_file(model: MTLSegFormer, path: str | Path) -> None:
    tensors = to_transformers4_names(_float_weights(model.state_dict()))
    metadata = {METADATA_KEY: json.dumps(model.to_description(), indent=None)}
    save_file(dict(sorted(tensors.items())), str(path), metadata=metadata)


def read_model_file(path: str | Path) -> MTLSegFormer:
    with safe_open(str(path), framework="pt") as f:
        metadata = f.metadata() or {}
    if METADATA_KEY not in metadata:
        raise ValueError(f"{path}: no __metadata__[{METADATA_KEY!r}]")
    return load_into_model(json.loads(metadata[METADATA_KEY]), load_file(str(path)))


def hf_description(config: dict, *, name: str, task_name: str = "segmentation",
                   classes: list[str] | None = None, input_size: tuple[int, int] | None = None,
                   mean: list[float] | None = None, std: list[float] | None = None) -> dict:
    """Description of an HF SegformerForSemanticSegmentation config.json (one task)."""
    if config.get("hidden_act", "gelu") != "gelu" or not config.get("reshape_last_stage", True):
        raise ValueError("only hidden_act 'gelu' and reshape_last_stage true are supported")
    if classes is None:
        id2label = config.get("id2label") or {str(i): f"LABEL_{i}" for i in range(config.get("num_labels", 2))}
        classes = [id2label[k] for k in sorted(id2label, key=int)]
    encoder = {k: config.get(k, 3 if k == "num_channels" else None) for k in ENCODER_KEYS}
    if any(v is None for v in encoder.values()):
        raise ValueError(f"config.json lacks {[k for k, v in encoder.items() if v is None]}")
    # Note: config.json's layer_norm_eps is not used by HF's SegFormer (every
    # LayerNorm is built with eps 1e-5), so it is deliberately not copied.
    return make_description(encoder, config["decoder_hidden_size"], [{"name": task_name, "classes": classes}],
                            name=name, input_size=input_size, mean=mean, std=std)


def read_hf_checkpoint(directory: str | Path, *, name: str | None = None, task_name: str = "segmentation",
                       classes: list[str] | None = None,
                       input_size: tuple[int, int] | None = None) -> MTLSegFormer:
    directory = Path(directory)
    config = json.loads((directory / "config.json").read_text())
    mean = std = None
    preprocessor = directory / "preprocessor_config.json"
    if preprocessor.exists():  # the checkpoint's own normalisation, when it ships one
        pre = json.loads(preprocessor.read_text())
        mean, std = pre.get("image_mean"), pre.get("image_std")
    desc = hf_description(config, name=name or directory.name, task_name=task_name, classes=classes,
                          input_size=input_size, mean=mean, std=std)
    return load_into_model(desc, load_file(str(directory / "model.safetensors")))
