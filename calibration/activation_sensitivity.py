"""Which of the int8 engine's activation grids cost the anchors' SegFormer-b0 its agreement with fp32.

    ~/.venvs/mtlseg-calib/bin/python calibration/activation_sensitivity.py [--anchors ../shared/anchors]
        [--images ~/.cache/mtlseg-peers/images] [--wide 2]

A PyTorch replica of the int8 engine's activation arithmetic on the b0 (HF names, transformers >= 5): every
`QuantPoint` rounded to a u8 grid chosen as `mtlseg calibrate --method mse` chooses it (2048-bin histograms over
the 16 calibration images, clipping ends on every 8th bin edge), keys and values per frame on symmetric s8, the
softmax as round(255·exp(s − max)) — with every weight in fp32. It prints the argmax agreement with fp32 on the 8
eval images with all points rounded (the calibration report's "What limits the accuracy" figure), with one kind of
point at a time, with each stage output alone, and with the `--wide` deepest stages' decoder inputs left unrounded
(as `--wide-decoder-inputs` does, 16 bits being near fp32 here). It is a diagnostic: the Swift calibrator is
what makes the models.
"""

from __future__ import annotations

import argparse
import glob
import math
from pathlib import Path

import numpy as np
import torch
import torch.nn.functional as F
from PIL import Image
from safetensors.torch import load_file

# b0, as the anchors' config.json says.
C, HEADS, SR, PATCH, STRIDE, DEPTH = [32, 64, 160, 256], [1, 2, 5, 8], [8, 4, 2, 1], [7, 3, 3, 3], [4, 2, 2, 2], 2
EPS = 1e-5  # HF builds every LayerNorm with 1e-5 (calibration/README.md, Notes)
MEAN = np.array([0.485, 0.456, 0.406], dtype=np.float32)
STD = np.array([0.229, 0.224, 0.225], dtype=np.float32)
KINDS = ["norm1", "query", "kv", "attention", "norm2", "hidden", "gelu", "output", "fused"]


def load_image(path: str) -> torch.Tensor:
    a = (np.asarray(Image.open(path).convert("RGB"), dtype=np.float32) / 255 - MEAN) / STD
    return torch.from_numpy(a.transpose(2, 0, 1).copy())[None]


def grid(lo: float, hi: float) -> tuple[float, int]:
    """QuantParams(min:max:): an affine u8 grid widened to contain 0."""
    lo, hi = min(lo, 0.0), max(hi, 0.0)
    scale = (hi - lo) / 255 if hi > lo else 1.0
    return scale, max(0, min(255, round(-lo / scale)))


def fake_quantize(x: torch.Tensor, g: tuple[float, int]) -> torch.Tensor:
    s, z = g
    return (torch.clamp(torch.round(x / s) + z, 0, 255) - z) * s


def symmetric_s8(x: torch.Tensor) -> torch.Tensor:
    m = x.abs().max()
    s = m / 127 if m > 0 else torch.tensor(1.0)
    return torch.clamp(torch.round(x / s), -127, 127) * s


def mse_grid(counts: np.ndarray, lo: float, hi: float) -> tuple[float, int]:
    """ActivationHistogram.mseGrid: the clipping range with the least rounding-plus-clipping error."""
    bins = len(counts)
    hi = max(hi, lo + 1e-12)
    width = (hi - lo) / bins
    centers = lo + (np.arange(bins) + 0.5) * width
    s0, s1, s2 = (np.concatenate([[0], np.cumsum(counts * centers**p)]) for p in range(3))
    zero = 0 if lo >= 0 else (bins if hi <= 0 else int(math.floor(-lo / width)))
    step = max(1, bins // 256)
    lasts = np.arange(bins, zero - 1, -step)
    b = np.maximum(lo + lasts * width, 0)
    best = (math.inf, lo, hi)
    for first in range(0, zero + 1, step):
        a = min(lo + first * width, 0)
        below = a * a * s0[first] - 2 * a * s1[first] + s2[first]
        above = (s2[bins] - s2[lasts]) - 2 * b * (s1[bins] - s1[lasts]) + b * b * (s0[bins] - s0[lasts])
        q = np.maximum((b - a) / 255, 1e-12)
        error = below + above + (s0[lasts] - s0[first]) * q * q / 12
        k = int(np.argmin(error))
        if error[k] < best[0]:
            best = (error[k], a, b[k])
    return grid(best[1], best[2])


class Points:
    """Called at every quantization point: observes, and rounds the points `rounds(name)` selects."""

    def __init__(self, grids=None, rounds=lambda name: False, attention_int8=False, observe=None):
        self.grids, self.rounds, self.attention_int8, self.observe = grids or {}, rounds, attention_int8, observe

    def __call__(self, name: str, x: torch.Tensor) -> torch.Tensor:
        if self.observe:
            self.observe(name, x)
        return fake_quantize(x, self.grids[name]) if name in self.grids and self.rounds(name) else x


def forward(w: dict, image: torch.Tensor, q: Points) -> torch.Tensor:
    """The b0 as HF runs it (channels-last tokens), with `q` at every QuantPoint; returns [K, H/4, W/4] logits."""
    x, outputs = image, []
    for i in range(4):
        p = f"segformer.stages.{i}."
        x = F.conv2d(x, w[p + "patch_embeddings.proj.weight"], w[p + "patch_embeddings.proj.bias"], stride=STRIDE[i], padding=PATCH[i] // 2)
        _, c, h, wd = x.shape
        x = F.layer_norm(x.flatten(2).transpose(1, 2)[0], (c,), w[p + "patch_embeddings.layer_norm.weight"], w[p + "patch_embeddings.layer_norm.bias"], EPS)
        for j in range(DEPTH):
            b, a, n = p + f"blocks.{j}.", p + f"blocks.{j}.attention.", f"stage{i}.block{j}."
            n1 = q(n + "norm1", F.layer_norm(x, (c,), w[b + "layernorm_before.weight"], w[b + "layernorm_before.bias"], EPS))
            queries = q(n + "query", F.linear(n1, w[a + "q_proj.weight"], w[a + "q_proj.bias"]))
            kv = n1
            if SR[i] > 1:
                m = F.conv2d(n1.T.reshape(1, c, h, wd), w[a + "sequence_reduction.sequence_reduction.weight"],
                             w[a + "sequence_reduction.sequence_reduction.bias"], stride=SR[i]).flatten(2).transpose(1, 2)[0]
                kv = q(n + "kv", F.layer_norm(m, (c,), w[a + "sequence_reduction.layer_norm.weight"], w[a + "sequence_reduction.layer_norm.bias"], EPS))
            keys, values = F.linear(kv, w[a + "k_proj.weight"], w[a + "k_proj.bias"]), F.linear(kv, w[a + "v_proj.weight"], w[a + "v_proj.bias"])
            if q.attention_int8:
                keys, values = symmetric_s8(keys), symmetric_s8(values)
            d, heads = c // HEADS[i], []
            for head in range(HEADS[i]):
                part = slice(head * d, (head + 1) * d)
                scores = queries[:, part] @ keys[:, part].T / math.sqrt(d)
                if q.attention_int8:
                    e = torch.round(torch.exp(scores - scores.max(1, keepdim=True).values) * 255)
                    heads.append(e @ values[:, part] / e.sum(1, keepdim=True))
                else:
                    heads.append(torch.softmax(scores, 1) @ values[:, part])
            x = x + F.linear(q(n + "attention", torch.cat(heads, 1)), w[a + "o_proj.weight"], w[a + "o_proj.bias"])
            n2 = q(n + "norm2", F.layer_norm(x, (c,), w[b + "layernorm_after.weight"], w[b + "layernorm_after.bias"], EPS))
            hidden = q(n + "hidden", F.linear(n2, w[b + "mlp.fc1.weight"], w[b + "mlp.fc1.bias"]))
            m = hidden.T.reshape(1, -1, h, wd)
            m = F.conv2d(m, w[b + "mlp.dwconv.dwconv.weight"], w[b + "mlp.dwconv.dwconv.bias"], padding=1, groups=m.shape[1])
            x = x + F.linear(q(n + "gelu", F.gelu(m.flatten(2).transpose(1, 2)[0])), w[b + "mlp.fc2.weight"], w[b + "mlp.fc2.bias"])
        x = F.layer_norm(x, (c,), w[p + "layer_norm.weight"], w[p + "layer_norm.bias"], EPS)
        # The u8 stage output feeds the decoder (and stage 4's int8 embedding, which this leaves in fp32).
        outputs.append((q(f"stage{i}.output", x), h, wd))
        x = x.T.reshape(1, c, h, wd)
    h0, w0 = outputs[0][1], outputs[0][2]
    maps = []
    for i, (o, h, wd) in enumerate(outputs):
        m = F.linear(o, w[f"decode_head.linear_projections.{i}.proj.weight"], w[f"decode_head.linear_projections.{i}.proj.bias"]).T.reshape(1, -1, h, wd)
        maps.append(m if i == 0 else F.interpolate(m, size=(h0, w0), mode="bilinear", align_corners=False))
    f = F.conv2d(torch.cat(maps[::-1], 1), w["decode_head.linear_fuse.weight"])
    f = F.batch_norm(f, w["decode_head.batch_norm.running_mean"], w["decode_head.batch_norm.running_var"],
                     w["decode_head.batch_norm.weight"], w["decode_head.batch_norm.bias"], False, 0, EPS)
    f = q("decoder.fused", torch.relu(f).flatten(2).transpose(1, 2)[0]).T.reshape(1, -1, h0, w0)
    return F.conv2d(f, w["decode_head.classifier.weight"], w["decode_head.classifier.bias"])[0]


def calibrate(w: dict, images: list[torch.Tensor], bins: int = 2048) -> dict:
    """Two passes, as Calibrator.measure: min/max, then histograms over that range."""
    ranges: dict = {}

    def extend(name, x):
        lo, hi = x.min().item(), x.max().item()
        a, b = ranges.get(name, (lo, hi))
        ranges[name] = (min(a, lo), max(b, hi))

    for image in images:
        forward(w, image, Points(observe=extend))
    histograms = {name: torch.zeros(bins, dtype=torch.float64) for name in ranges}

    def count(name, x):
        lo, hi = ranges[name]
        histograms[name] += torch.histc(x.double(), bins, lo, max(hi, lo + 1e-12))

    for image in images:
        forward(w, image, Points(observe=count))
    return {name: mse_grid(histograms[name].numpy(), *ranges[name]) for name in ranges}


def main() -> None:
    root = Path(__file__).resolve().parent.parent
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--anchors", type=Path, default=root.parent / "shared" / "anchors")
    parser.add_argument("--images", type=Path, default=Path.home() / ".cache" / "mtlseg-peers" / "images")
    parser.add_argument("--wide", type=int, default=2, help="deepest stages whose decoder input is left unrounded")
    args = parser.parse_args()
    torch.set_num_threads(1)
    w = load_file(str(args.anchors / "models" / "segformer-b0-seed0" / "model.safetensors"))
    calibration = [load_image(p) for p in sorted(glob.glob(str(args.images / "calib-512" / "*.png")))]
    evaluation = [load_image(p) for p in sorted(glob.glob(str(args.images / "eval-512" / "*.png")))]
    with torch.no_grad():
        grids = calibrate(w, calibration)
        reference = [forward(w, x, Points()).argmax(0) for x in evaluation]

        def agreement(**points) -> float:
            same = sum((forward(w, x, Points(grids, **points)).argmax(0) == r).sum().item() for x, r in zip(evaluation, reference))
            return 100 * same / sum(r.numel() for r in reference)

        print(f"all points, int8 attention: {agreement(rounds=lambda n: True, attention_int8=True):.2f} %")
        print(f"int8 attention's keys, values and softmax only: {agreement(attention_int8=True):.2f} %")
        for kind in KINDS:
            print(f"only {kind}: {agreement(rounds=lambda n, k=kind: n.endswith('.' + k)):.2f} %")
        for i in range(4):
            print(f"only stage{i}.output: {agreement(rounds=lambda n, i=i: n == f'stage{i}.output'):.2f} %")
        wide = {f"stage{i}.output" for i in range(4 - args.wide, 4)}
        print(f"all but {sorted(wide)}: {agreement(rounds=lambda n: n not in wide, attention_int8=True):.2f} %")


if __name__ == "__main__":
    main()
