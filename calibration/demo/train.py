"""Trains one variant on the procedural crop fields and evaluates it on the held-out sets.

Variants (all SegFormer-b0 trunk + all-MLP fusion, decoder width 256, from scratch):
  mtl            MTLSegFormer (the task heads of Sources/ARCHITECTURE.md, with cross-task gates), tasks plants + rows
  hard           hard sharing: same trunk and fusion, per task ConvBNReLU -> ConvBNReLU -> classifier,
                 no cross-task gates (MTLSegFormer with the gates and G_t removed)
  single-plants  plain SegFormer-b0 (MTLSegFormer with one task) on plants
  single-rows    plain SegFormer-b0 on rows

Training: random 128x128 crops at the model input's pixel scale (the nets are resolution-agnostic;
128^2 is ~7x cheaper per image than 256^2 on CPU), batch 16, AdamW lr 6e-4 wd 0.01, 5% linear
warmup then cosine, CE summed over tasks, logits upsampled bilinearly to the labels (as HF).
Data: generated on the fly, step s uses numpy seed (1, s); 25% of samples are crops of frames of
the port of the daemon's synthetic camera (tile seeds 1001-1012, never the eval seeds).
Evaluation (256x256, argmax of the logits upsampled to 256): `test` = 200 general fields (seeds
(999, i)); `daemon` = 50 frames of the ported synthetic camera, tile seeds 1-5 (1 = daemon default),
640x480 resized to 256x256. Metrics are pooled over the set: IoU and F1 of the positive class, mIoU.

    python calibration/demo/train.py --variant mtl --steps 360
"""

from __future__ import annotations

import argparse
import json
import math
import sys
import time
from pathlib import Path

import numpy as np
import torch
from torch import nn
from torch.nn import functional as F

HERE = Path(__file__).resolve().parent
sys.path.insert(0, str(HERE.parent))
sys.path.insert(0, str(HERE))

from field_generator import TASKS, make_swift_pool, render_field, sample, swift_frame, SwiftTile  # noqa: E402
from mtlsegformer import (IMAGENET_MEAN, IMAGENET_STD, MTLSegFormer, AllMLPFusion, ConvBNReLU,  # noqa: E402
                          CLASSIFIER_DROPOUT, VARIANTS, make_description, segformer_config)
from transformers import SegformerModel  # noqa: E402

WORK = Path("/tmp/mtlseg-demo")
MEAN = torch.tensor(IMAGENET_MEAN).view(1, 3, 1, 1)
STD = torch.tensor(IMAGENET_STD).view(1, 3, 1, 1)


def description(tasks):
    enc, dec = VARIANTS["b0"]
    return make_description(enc, dec, tasks, name="demo-crops", input_size=(256, 256))


class HardSharing(nn.Module):
    """Shared trunk + fusion; independent per-task heads (no cross-task exchange)."""

    def __init__(self, desc):
        super().__init__()
        self.task_names = [t["name"] for t in desc["tasks"]]
        config = segformer_config(desc, num_labels=1)
        d = config.decoder_hidden_size
        self.segformer = SegformerModel(config)
        self.decode_head = AllMLPFusion(config, None)
        self.task = nn.ModuleList(ConvBNReLU(d, d) for _ in desc["tasks"])
        self.refine = nn.ModuleList(ConvBNReLU(d, d) for _ in desc["tasks"])
        self.dropout = nn.Dropout(CLASSIFIER_DROPOUT)
        self.classifier = nn.ModuleList(nn.Conv2d(d, len(t["classes"]), 1) for t in desc["tasks"])

    def forward(self, x):
        fused = self.decode_head.fuse(list(self.segformer(x, output_hidden_states=True).hidden_states))
        return {n: c(self.dropout(r(t(fused))))
                for n, t, r, c in zip(self.task_names, self.task, self.refine, self.classifier)}


def build(variant):
    if variant == "mtl":
        desc = description(TASKS)
        return MTLSegFormer(desc), desc
    if variant == "hard":
        desc = description(TASKS)
        return HardSharing(desc), desc
    if variant.startswith("single-"):
        desc = description([t for t in TASKS if t["name"] == variant[7:]])
        return MTLSegFormer(desc), desc
    raise ValueError(variant)


def to_input(images: np.ndarray) -> torch.Tensor:
    x = torch.from_numpy(images).permute(0, 3, 1, 2).float() / 255
    return (x - MEAN) / STD


def batch(step, size, n, pool, task_names):
    rng = np.random.default_rng([1, step])
    samples = [sample(rng, size, size, pool, 0.25) for _ in range(n)]
    x = to_input(np.stack([s[0] for s in samples]))
    y = {t: torch.from_numpy(np.stack([s[1][t] for s in samples]).astype(np.int64)) for t in task_names}
    return x, y


def eval_sets():
    """The held-out sets, cached in WORK (deterministic)."""
    path = WORK / "eval_sets.npz"
    if path.exists():
        z = np.load(path)
        return {k: (z[f"{k}_x"], {t["name"]: z[f"{k}_{t['name']}"] for t in TASKS}) for k in ("test", "daemon")}
    sets = {}
    items = [render_field(np.random.default_rng([999, i]), 256, 256) for i in range(200)]
    sets["test"] = items
    items = []
    for seed in range(1, 6):
        tile = SwiftTile(seed=seed)
        items += [swift_frame(tile, 40 + 97 * i) for i in range(10)]
    sets["daemon"] = items
    out, flat = {}, {}
    for k, items in sets.items():
        x = np.stack([i[0] for i in items])
        labs = {t["name"]: np.stack([i[1][t["name"]] for i in items]) for t in TASKS}
        out[k] = (x, labs)
        flat[f"{k}_x"] = x
        flat.update({f"{k}_{n}": v for n, v in labs.items()})
    WORK.mkdir(parents=True, exist_ok=True)
    np.savez_compressed(path, **flat)
    return out


@torch.no_grad()
def evaluate(model, task_names, sets, bs=10):
    model.eval()
    results = {}
    for name, (x, labs) in sets.items():
        conf = {t: np.zeros((2, 2), np.int64) for t in task_names}
        for i in range(0, len(x), bs):
            out = model(to_input(x[i:i + bs]))
            for t in task_names:
                pred = F.interpolate(out[t], size=x.shape[1:3], mode="bilinear", align_corners=False).argmax(1).numpy()
                gt = labs[t][i:i + bs]
                conf[t] += np.bincount(gt.ravel() * 2 + pred.ravel(), minlength=4).reshape(2, 2)
        res = {}
        for t, c in conf.items():
            tp, fp, fn, tn = c[1, 1], c[0, 1], c[1, 0], c[0, 0]
            iou1 = tp / max(1, tp + fp + fn)
            iou0 = tn / max(1, tn + fp + fn)
            res[t] = {"iou": float(iou1), "f1": float(2 * tp / max(1, 2 * tp + fp + fn)),
                      "miou": float((iou0 + iou1) / 2)}
        results[name] = res
    model.train()
    return results


def main():
    p = argparse.ArgumentParser()
    p.add_argument("--variant", required=True)
    p.add_argument("--steps", type=int, default=360)
    p.add_argument("--batch", type=int, default=16)
    p.add_argument("--crop", type=int, default=128)
    p.add_argument("--lr", type=float, default=6e-4)
    p.add_argument("--max-minutes", type=float, default=20)
    args = p.parse_args()
    torch.set_num_threads(1)
    torch.manual_seed(0)
    model, desc = build(args.variant)
    task_names = [t["name"] for t in desc["tasks"]]
    print(f"{args.variant}: {sum(p.numel() for p in model.parameters()) / 1e6:.2f} M parameters", flush=True)
    sets = eval_sets()
    pool = make_swift_pool(range(1001, 1009)) + make_swift_pool(range(1009, 1011), [(1280, 720)]) \
        + make_swift_pool(range(1011, 1013), [(320, 240)])
    opt = torch.optim.AdamW(model.parameters(), lr=args.lr, weight_decay=0.01)
    warm = max(1, args.steps // 20)
    sched = torch.optim.lr_scheduler.LambdaLR(
        opt, lambda s: (s + 1) / warm if s < warm else 0.5 * (1 + math.cos(math.pi * (s - warm) / (args.steps - warm))))
    t0 = time.time()
    model.train()
    losses = []
    for step in range(args.steps):
        x, y = batch(step, args.crop, args.batch, pool, task_names)
        out = model(x)
        loss = sum(F.cross_entropy(F.interpolate(out[t], size=y[t].shape[1:], mode="bilinear", align_corners=False), y[t])
                   for t in task_names)
        opt.zero_grad()
        loss.backward()
        opt.step()
        sched.step()
        losses.append(loss.item())
        if step % 20 == 0 or step == args.steps - 1:
            print(f"step {step} loss {np.mean(losses[-20:]):.4f} {time.time() - t0:.0f}s", flush=True)
        if time.time() - t0 > args.max_minutes * 60:
            print(f"stopping at step {step + 1}: wall limit", flush=True)
            break
    train_s = time.time() - t0
    steps_done = step + 1
    t1 = time.time()
    results = evaluate(model, task_names, sets)
    print(json.dumps(results, indent=1))
    WORK.mkdir(parents=True, exist_ok=True)
    torch.save({"description": desc, "state_dict": model.state_dict()}, WORK / f"{args.variant}.pt")
    runs = HERE / "runs"
    runs.mkdir(exist_ok=True)
    record = {"variant": args.variant, "steps": steps_done, "batch": args.batch, "crop": args.crop, "lr": args.lr,
              "params_m": sum(p.numel() for p in model.parameters()) / 1e6, "train_s": train_s,
              "eval_s": time.time() - t1, "final_loss": float(np.mean(losses[-20:])),
              "command": "~/.venvs/mtlseg-calib/bin/python calibration/demo/train.py " + " ".join(sys.argv[1:]),
              "results": results}
    (runs / f"{args.variant}.json").write_text(json.dumps(record, indent=1) + "\n")


if __name__ == "__main__":
    main()
