"""PyTorch reference of MTLSegFormer: the executable definition of the model.

The Swift engine must reproduce `MTLSegFormer.forward` numerically. The trunk
is HF `transformers.SegformerModel` itself (so the trunk matches HF by
construction); the shared all-MLP fusion reuses HF's per-stage `SegformerMLP`;
the multi-task heads follow "Task heads" in the repository's Sources/ARCHITECTURE.md.

Parameter names are the ones transformers >= 5 gives these modules
(`segformer.stages.…`, `decode_head.linear_projections.…`) plus `mtl_head.…`.
`model_file.py` renames them to the transformers 4 names that the model file
uses (MODEL_FORMAT.md).

The model is built from, and describes itself as, the JSON description stored
in a model file's `__metadata__["mtlseg"]` (MODEL_FORMAT.md).
"""

from __future__ import annotations

import copy

import torch
from torch import nn
from torch.nn import functional as F
from transformers import SegformerConfig, SegformerModel
from transformers.models.segformer.modeling_segformer import SegformerMLP

FORMAT = "mtlseg-model"
FORMAT_VERSION = 1
IMAGENET_MEAN = [0.485, 0.456, 0.406]
IMAGENET_STD = [0.229, 0.224, 0.225]
# HF builds every LayerNorm (and we every BatchNorm) with PyTorch's default eps,
# whatever `SegformerConfig.layer_norm_eps` says (it is unused; 1e-6 by default).
NORM_EPS = 1e-5
# Dropout before the classifiers (training only), as HF's classifier_dropout_prob.
CLASSIFIER_DROPOUT = 0.1

ENCODER_KEYS = (
    "num_channels", "hidden_sizes", "depths", "num_attention_heads",
    "sr_ratios", "patch_sizes", "strides", "mlp_ratios",
)

# The published MiT variants (as in HF's SegFormer configs), used only to fill
# the informative `variant` field; the engine always reads `encoder`.
_COMMON = {"num_channels": 3, "num_attention_heads": [1, 2, 5, 8], "sr_ratios": [8, 4, 2, 1],
           "patch_sizes": [7, 3, 3, 3], "strides": [4, 2, 2, 2], "mlp_ratios": [4, 4, 4, 4]}
_WIDE = [64, 128, 320, 512]
VARIANTS = {
    "b0": ({**_COMMON, "hidden_sizes": [32, 64, 160, 256], "depths": [2, 2, 2, 2]}, 256),
    "b1": ({**_COMMON, "hidden_sizes": _WIDE, "depths": [2, 2, 2, 2]}, 256),
    "b2": ({**_COMMON, "hidden_sizes": _WIDE, "depths": [3, 4, 6, 3]}, 768),
    "b3": ({**_COMMON, "hidden_sizes": _WIDE, "depths": [3, 4, 18, 3]}, 768),
    "b4": ({**_COMMON, "hidden_sizes": _WIDE, "depths": [3, 8, 27, 3]}, 768),
    "b5": ({**_COMMON, "hidden_sizes": _WIDE, "depths": [3, 6, 40, 3]}, 768),
}


def infer_variant(encoder: dict, decoder_hidden_size: int) -> str:
    """encoder: with lists (not tuples), as make_description normalises it."""
    for name, (enc, dec) in VARIANTS.items():
        if dec == decoder_hidden_size and all(encoder[k] == enc[k] for k in ENCODER_KEYS):
            return name
    return "custom"


def make_description(encoder: dict, decoder_hidden_size: int, tasks: list[dict], *,
                     name: str = "model", input_size: tuple[int, int] | None = None,
                     mean: list[float] | None = None, std: list[float] | None = None) -> dict:
    """Builds a complete description dict (MODEL_FORMAT.md). input_size is (width, height)."""
    encoder = {k: (list(encoder[k]) if isinstance(encoder[k], (list, tuple)) else int(encoder[k]))
               for k in ENCODER_KEYS}
    return {
        "format": FORMAT,
        "format_version": FORMAT_VERSION,
        "name": name,
        "variant": infer_variant(encoder, decoder_hidden_size),
        "encoder": encoder,
        "decoder_hidden_size": int(decoder_hidden_size),
        "layer_norm_eps": NORM_EPS,
        "tasks": copy.deepcopy(tasks),
        "input": None if input_size is None else {"width": int(input_size[0]), "height": int(input_size[1])},
        # None only: an empty list given is kept, for the checks to refuse, not taken for "the default".
        "mean": list(IMAGENET_MEAN if mean is None else mean),
        "std": list(IMAGENET_STD if std is None else std),
    }


def validate_description(desc: dict) -> None:
    """Rejects descriptions the reference cannot represent exactly."""
    if desc.get("format") != FORMAT or desc.get("format_version") != FORMAT_VERSION:
        raise ValueError(f"not an {FORMAT} v{FORMAT_VERSION} description: "
                         f"format={desc.get('format')!r} format_version={desc.get('format_version')!r}")
    enc = desc["encoder"]
    missing = [k for k in ENCODER_KEYS if k not in enc]
    if missing:
        raise ValueError(f"encoder is missing {missing}")
    n = len(enc["hidden_sizes"])
    for k in ENCODER_KEYS[1:]:
        if len(enc[k]) != n:
            raise ValueError(f"encoder.{k} has {len(enc[k])} entries, hidden_sizes has {n}")
    if float(desc.get("layer_norm_eps", NORM_EPS)) != NORM_EPS:
        raise ValueError(f"layer_norm_eps must be {NORM_EPS} (HF SegFormer hard-codes it)")
    tasks = desc["tasks"]
    if not tasks:
        raise ValueError("tasks is empty")
    names = [t["name"] for t in tasks]
    if len(set(names)) != len(names):
        raise ValueError(f"duplicate task names {names}")
    for t in tasks:
        if len(t["classes"]) < 1:
            raise ValueError(f"task {t['name']!r} has no classes")


def segformer_config(desc: dict, num_labels: int = 1) -> SegformerConfig:
    enc = desc["encoder"]
    return SegformerConfig(
        num_channels=enc["num_channels"],
        num_encoder_blocks=len(enc["hidden_sizes"]),
        hidden_sizes=list(enc["hidden_sizes"]),
        depths=list(enc["depths"]),
        num_attention_heads=list(enc["num_attention_heads"]),
        sr_ratios=list(enc["sr_ratios"]),
        patch_sizes=list(enc["patch_sizes"]),
        strides=list(enc["strides"]),
        mlp_ratios=list(enc["mlp_ratios"]),
        decoder_hidden_size=desc["decoder_hidden_size"],
        hidden_act="gelu",
        hidden_dropout_prob=0.0,
        attention_probs_dropout_prob=0.0,
        classifier_dropout_prob=CLASSIFIER_DROPOUT,
        drop_path_rate=0.0,
        reshape_last_stage=True,
        num_labels=num_labels,
    )


class AllMLPFusion(nn.Module):
    """SegFormer's all-MLP decoder up to and including linear_fuse + BN + ReLU.

    With one task it also holds the classifier, because plain SegFormer keeps
    it at `decode_head.classifier`.
    """

    def __init__(self, config: SegformerConfig, num_classes: int | None):
        super().__init__()
        d = config.decoder_hidden_size
        self.linear_projections = nn.ModuleList(SegformerMLP(config, input_dim=c) for c in config.hidden_sizes)
        self.linear_fuse = nn.Conv2d(d * len(config.hidden_sizes), d, kernel_size=1, bias=False)
        self.batch_norm = nn.BatchNorm2d(d, eps=NORM_EPS)
        self.dropout = nn.Dropout(CLASSIFIER_DROPOUT)
        self.classifier = nn.Conv2d(d, num_classes, kernel_size=1) if num_classes is not None else None

    def fuse(self, stage_maps: list[torch.Tensor]) -> torch.Tensor:
        """stage_maps: the encoder's per-stage [B, C_i, H_i, W_i] maps; returns F [B, D, H_1, W_1]."""
        size = stage_maps[0].shape[2:]
        projected = []
        for x, proj in zip(stage_maps, self.linear_projections):
            b, _, h, w = x.shape
            y = proj(x).transpose(1, 2).reshape(b, -1, h, w)  # SegformerMLP works on [B, HW, C]
            projected.append(F.interpolate(y, size=size, mode="bilinear", align_corners=False))
        x = self.linear_fuse(torch.cat(projected[::-1], dim=1))  # order: stage4, stage3, stage2, stage1
        return F.relu(self.batch_norm(x))

    def classify(self, fused: torch.Tensor) -> torch.Tensor:
        return self.classifier(self.dropout(fused))


class ConvBNReLU(nn.Module):
    """1x1 conv without bias, BatchNorm, ReLU (names: .conv, .bn)."""

    def __init__(self, c_in: int, c_out: int):
        super().__init__()
        self.conv = nn.Conv2d(c_in, c_out, kernel_size=1, bias=False)
        self.bn = nn.BatchNorm2d(c_out, eps=NORM_EPS)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return F.relu(self.bn(self.conv(x)))


class MTLHead(nn.Module):
    """MTLSegFormer task heads, "Task heads" in Sources/ARCHITECTURE.md (T >= 2).

    F_t      = ReLU(BN(Conv1x1_t(F)))
    a_{t<-j} = sigmoid(Conv1x1_{t,j}(cat[F_t, F_j]))   j != t, one channel
    G_t      = sum_{j != t} a_{t<-j} * F_j
    Z_t      = ReLU(BN(Conv1x1(cat[F_t, G_t])))
    logits_t = Conv1x1(Z_t)                             with bias
    """

    def __init__(self, d: int, class_counts: list[int]):
        super().__init__()
        t_count = len(class_counts)
        self.task = nn.ModuleList(ConvBNReLU(d, d) for _ in range(t_count))
        # gate.{t}.{j}: ModuleDict keyed by j so the names skip j == t.
        self.gate = nn.ModuleList(
            nn.ModuleDict({str(j): nn.Conv2d(2 * d, 1, kernel_size=1) for j in range(t_count) if j != t})
            for t in range(t_count))
        self.combine = nn.ModuleList(ConvBNReLU(2 * d, d) for _ in range(t_count))
        self.dropout = nn.Dropout(CLASSIFIER_DROPOUT)
        self.classifier = nn.ModuleList(nn.Conv2d(d, k, kernel_size=1) for k in class_counts)

    def forward(self, fused: torch.Tensor) -> list[torch.Tensor]:
        task_maps = [task(fused) for task in self.task]
        logits = []
        for t, f_t in enumerate(task_maps):
            g_t = torch.zeros_like(f_t)
            for j, f_j in enumerate(task_maps):
                if j != t:
                    a = torch.sigmoid(self.gate[t][str(j)](torch.cat([f_t, f_j], dim=1)))  # [B, 1, H, W]
                    g_t = g_t + a * f_j
            z_t = self.combine[t](torch.cat([f_t, g_t], dim=1))
            logits.append(self.classifier[t](self.dropout(z_t)))
        return logits


class MTLSegFormer(nn.Module):
    """SegFormer trunk + shared all-MLP fusion + one head per task.

    forward(pixel_values [B, C, H, W]) -> {task name: logits [B, K_t, ceil(H/4), ceil(W/4)]}.
    With one task it is exactly HF's SegformerForSemanticSegmentation.
    """

    def __init__(self, description: dict):
        super().__init__()
        validate_description(description)
        self.description = copy.deepcopy(description)
        tasks = self.description["tasks"]
        class_counts = [len(t["classes"]) for t in tasks]
        single = len(tasks) == 1
        config = segformer_config(self.description, num_labels=class_counts[0] if single else 1)
        self.segformer = SegformerModel(config)
        self.decode_head = AllMLPFusion(config, class_counts[0] if single else None)
        self.mtl_head = None if single else MTLHead(config.decoder_hidden_size, class_counts)

    @classmethod
    def from_description(cls, description: dict) -> "MTLSegFormer":
        return cls(description)

    def to_description(self) -> dict:
        return copy.deepcopy(self.description)

    @property
    def task_names(self) -> list[str]:
        return [t["name"] for t in self.description["tasks"]]

    def forward(self, pixel_values: torch.Tensor) -> dict[str, torch.Tensor]:
        stage_maps = self.segformer(pixel_values, output_hidden_states=True).hidden_states
        fused = self.decode_head.fuse(list(stage_maps))
        if self.mtl_head is None:
            logits = [self.decode_head.classify(fused)]
        else:
            logits = self.mtl_head(fused)
        return dict(zip(self.task_names, logits))
