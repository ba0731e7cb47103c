"""Generates the committed model fixtures of Tests/MTLSegCoreTests/Fixtures/.

Deterministic: fixed seeds, so a rerun rewrites the same tensors (config.json records the
transformers version, so it differs under another transformers build).

    ~/.venvs/mtlseg-calib/bin/python calibration/make_fixtures.py [--out DIR]

Writes (tiny custom MiT encoder, input 75x102, i.e. non-square and not a
multiple of 32, so the engine's padding/rounding paths are exercised):

  segformer-tiny-hf/{config.json,model.safetensors}  HF checkpoint (transformers 5 names), 3 labels
  segformer-tiny.safetensors                         the same weights as an mtlseg model file
  segformer-tiny.reference.safetensors               logits.segmentation, computed by HF itself
  mtl2-tiny.safetensors + .reference.safetensors     tasks plants (2), rows (3)
  mtl3-tiny.safetensors + .reference.safetensors     tasks plants (2), rows (3), gaps (4)

A reference file holds `image` (U8 [H, W, 3], RGB), `pixel_values` (F32
[1, 3, H, W], the image normalised with ImageNet mean/std) and one
`logits.<task>` (F32 [K, ceil(H/4), ceil(W/4)]) per task. Logits are computed
in float64 from the stored float32 weights and inputs and then rounded, so they
are the exact answer for what the engine reads, not one float32 run of it.
"""

from __future__ import annotations

import argparse
import copy
import hashlib
import sys
from pathlib import Path

import torch
from safetensors.torch import save_file
from transformers import SegformerForSemanticSegmentation

from export import export
from model_file import read_hf_checkpoint, read_model_file, write_model_file
from mtlsegformer import IMAGENET_MEAN, IMAGENET_STD, MTLSegFormer, make_description, segformer_config

REPO = Path(__file__).resolve().parents[1]
DEFAULT_OUT = REPO / "Tests" / "MTLSegCoreTests" / "Fixtures"
HEIGHT, WIDTH = 75, 102
TINY_ENCODER = dict(num_channels=3, hidden_sizes=[8, 16, 24, 32], depths=[1, 2, 1, 2],
                    num_attention_heads=[1, 2, 3, 4], sr_ratios=[8, 4, 2, 1], patch_sizes=[7, 3, 3, 3],
                    strides=[4, 2, 2, 2], mlp_ratios=[4, 4, 4, 4])
DECODER_WIDTH = 16
MARGIN = 1e-3
# How closely the float32 reference model must reproduce the float64 logits
# (a sanity bound for this generator, not the engine's tolerance).
F32_TOLERANCE = 1e-4

PLANTS = {"name": "plants", "classes": ["background", "plant"], "colors": [[0, 0, 0], [0, 200, 0]]}
ROWS = {"name": "rows", "classes": ["background", "row", "furrow"],
        "colors": [[0, 0, 0], [255, 200, 0], [120, 80, 40]]}
GAPS = {"name": "gaps", "classes": ["none", "small", "medium", "large"]}  # no colors: default palette


def randomize(model: torch.nn.Module, seed: int) -> None:
    """Random weights with non-trivial activations everywhere (default init leaves
    BN at identity and biases at zero, which would hide bugs in the engine)."""
    g = torch.Generator().manual_seed(seed)
    with torch.no_grad():
        for name, t in model.state_dict().items():
            if not t.is_floating_point():
                continue
            if name.endswith("running_mean"):
                t.copy_(torch.randn(t.shape, generator=g) * 0.2)
            elif name.endswith("running_var"):
                t.copy_(torch.rand(t.shape, generator=g) + 0.5)
            elif name.endswith("weight") and t.ndim == 1:  # LayerNorm / BatchNorm scale
                t.copy_(torch.rand(t.shape, generator=g) * 0.4 + 0.8)
            elif name.endswith("weight"):  # linear / conv
                t.copy_(torch.randn(t.shape, generator=g) * 0.2)
            elif name.endswith("bias"):
                t.copy_(torch.randn(t.shape, generator=g) * 0.05)
            else:
                raise AssertionError(f"unexpected tensor {name}")


def make_input(seed: int) -> tuple[torch.Tensor, torch.Tensor]:
    """A random RGB u8 image [H, W, 3] and its pixel_values [1, 3, H, W] (float32)."""
    g = torch.Generator().manual_seed(seed)
    image = torch.randint(0, 256, (HEIGHT, WIDTH, 3), generator=g, dtype=torch.uint8)
    x = image.to(torch.float64).permute(2, 0, 1) / 255.0
    mean = torch.tensor(IMAGENET_MEAN, dtype=torch.float64).view(3, 1, 1)
    std = torch.tensor(IMAGENET_STD, dtype=torch.float64).view(3, 1, 1)
    return image, ((x - mean) / std).unsqueeze(0).to(torch.float32)


def float64_logits(model: MTLSegFormer, pixel_values: torch.Tensor) -> dict[str, torch.Tensor]:
    exact = copy.deepcopy(model).double().eval()
    with torch.no_grad():
        return {k: v[0] for k, v in exact(pixel_values.double()).items()}


def margin_fraction(logits: torch.Tensor) -> float:
    """Fraction of pixels whose best and second-best logits differ by more than MARGIN."""
    top2 = logits.topk(2, dim=0).values
    return ((top2[0] - top2[1]) > MARGIN).double().mean().item()


def write_reference(path: Path, image: torch.Tensor, pixel_values: torch.Tensor,
                    logits: dict[str, torch.Tensor]) -> None:
    tensors = {"image": image.contiguous(), "pixel_values": pixel_values.contiguous()}
    tensors.update({f"logits.{task}": v.to(torch.float32).contiguous() for task, v in logits.items()})
    save_file(tensors, str(path))


def check_f32(model: MTLSegFormer, pixel_values: torch.Tensor, reference: dict[str, torch.Tensor], what: str):
    """The float32 model as reloaded from disk agrees with the float64 reference."""
    with torch.no_grad():
        got = model.eval()(pixel_values)
    assert list(got) == list(reference), (what, list(got))
    for task, expected in reference.items():
        diff = (got[task][0].double() - expected).abs().max().item()
        assert diff < F32_TOLERANCE, f"{what}: {task} differs from the float64 reference by {diff}"


def write_hf_checkpoint(hf: SegformerForSemanticSegmentation, directory: Path) -> None:
    """config.json via save_pretrained; the weights with transformers >= 5 names.

    transformers 5.24's save_pretrained converts names back to the transformers 4
    generation, so its own model.safetensors would not exercise the engine's
    renaming. The state dict is written directly instead (as the shared b0
    anchor was), I64 num_batches_tracked included.
    """
    directory.mkdir(parents=True, exist_ok=True)
    hf.config.save_pretrained(str(directory))
    save_file({k: v.contiguous() for k, v in hf.state_dict().items()}, str(directory / "model.safetensors"),
              metadata={"format": "pt"})


def single_task_fixtures(out: Path, image, pixel_values) -> dict:
    desc = make_description(TINY_ENCODER, DECODER_WIDTH,
                            [{"name": "segmentation", "classes": ["LABEL_0", "LABEL_1", "LABEL_2"]}],
                            name="segformer-tiny")
    model = MTLSegFormer(desc).eval()
    randomize(model, seed=100)

    # The same weights in HF's own model: with one task the reference must be
    # plain SegFormer, and the reference logits come from HF itself.
    hf = SegformerForSemanticSegmentation(segformer_config(desc, num_labels=3)).eval()
    hf.load_state_dict(model.state_dict(), strict=True)
    write_hf_checkpoint(hf, out / "segformer-tiny-hf")
    with torch.no_grad():
        hf_logits = copy.deepcopy(hf).double()(pixel_values=pixel_values.double()).logits[0]
    ours = float64_logits(model, pixel_values)["segmentation"]
    diff = (ours - hf_logits).abs().max().item()
    assert diff < 1e-10, f"single-task reference differs from HF SegformerForSemanticSegmentation by {diff}"

    # The mtlseg file is made from the HF directory by export.py, as a user would.
    export(out / "segformer-tiny-hf", out / "segformer-tiny.safetensors", name="segformer-tiny")
    reference = {"segmentation": hf_logits}
    write_reference(out / "segformer-tiny.reference.safetensors", image, pixel_values, reference)
    check_f32(read_model_file(out / "segformer-tiny.safetensors"), pixel_values, reference, "segformer-tiny")
    check_f32(read_hf_checkpoint(out / "segformer-tiny-hf"), pixel_values, reference, "segformer-tiny-hf")
    return reference


def mtl_fixtures(out: Path, name: str, tasks: list[dict], seed: int, image, pixel_values) -> dict:
    desc = make_description(TINY_ENCODER, DECODER_WIDTH, tasks, name=name, input_size=(WIDTH, HEIGHT))
    model = MTLSegFormer(desc).eval()
    randomize(model, seed=seed)
    reference = float64_logits(model, pixel_values)
    write_model_file(model, out / f"{name}.safetensors")
    write_reference(out / f"{name}.reference.safetensors", image, pixel_values, reference)
    check_f32(read_model_file(out / f"{name}.safetensors"), pixel_values, reference, name)
    return reference


def summarize(out: Path, references: dict[str, dict]) -> None:
    total = 0
    for path in sorted(p for p in out.rglob("*") if p.is_file()):
        size = path.stat().st_size
        total += size
        digest = hashlib.sha256(path.read_bytes()).hexdigest()[:12]
        print(f"  {str(path.relative_to(out)):45s} {size:8d} B  sha256 {digest}")
    print(f"  total {total} B")
    for fixture, logits in references.items():
        for task, v in logits.items():
            print(f"  {fixture:15s} {task:13s} shape {list(v.shape)}  max|logit| {v.abs().max().item():7.3f}"
                  f"  top-2 margin > {MARGIN}: {margin_fraction(v):.4f}")


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description="Generate the model test fixtures.")
    parser.add_argument("--out", type=Path, default=DEFAULT_OUT)
    args = parser.parse_args(argv)
    args.out.mkdir(parents=True, exist_ok=True)
    torch.use_deterministic_algorithms(True)

    image, pixel_values = make_input(seed=7)
    references = {
        "segformer-tiny": single_task_fixtures(args.out, image, pixel_values),
        "mtl2-tiny": mtl_fixtures(args.out, "mtl2-tiny", [PLANTS, ROWS], 200, image, pixel_values),
        "mtl3-tiny": mtl_fixtures(args.out, "mtl3-tiny", [PLANTS, ROWS, GAPS], 300, image, pixel_values),
    }
    for fixture, logits in references.items():
        for task, v in logits.items():
            assert margin_fraction(v) > 0.95, f"{fixture}/{task}: too many near-ties for a stable argmax test"
    print(f"fixtures in {args.out}:")
    summarize(args.out, references)
    return 0


if __name__ == "__main__":
    sys.exit(main())
