"""Tests of the Python side: naming, reference model vs HF, model file round trips.

Run from the repository root:
    ~/.venvs/mtlseg-calib/bin/python -m unittest discover -s calibration/tests
"""

from __future__ import annotations

import json
import os
import subprocess
import sys
import tempfile
import unittest
from pathlib import Path

import torch
from safetensors.torch import load_file, save_file
from transformers import SegformerForSemanticSegmentation

CALIBRATION = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(CALIBRATION))

import export  # noqa: E402
import make_fixtures  # noqa: E402
from model_file import (read_hf_checkpoint, read_model_file, to_transformers4_names,  # noqa: E402
                        to_transformers5_names, write_model_file)
from mtlsegformer import MTLSegFormer, make_description  # noqa: E402

# The peers' SegFormer-b0 checkpoint (PEERS_DIR, as calibration/compare_with_peers.sh takes it); the tests that
# read it skip where it is absent.
ANCHOR = Path(os.environ.get("PEERS_DIR", CALIBRATION.parent.parent / "shared" / "anchors")) / "models" / "segformer-b0-seed0"
TINY_ENCODER = dict(num_channels=3, hidden_sizes=[8, 16, 24, 32], depths=[1, 2, 1, 2],
                    num_attention_heads=[1, 2, 3, 4], sr_ratios=[8, 4, 2, 1], patch_sizes=[7, 3, 3, 3],
                    strides=[4, 2, 2, 2], mlp_ratios=[4, 4, 4, 4])
UPSAMPLE_FIXTURE = CALIBRATION.parent / "Tests" / "MTLSegCoreTests" / "Fixtures" / "upsample-argmax.safetensors"
# Always present (unlike ANCHOR): the tests of naming and HF parity also run on it, on any clone.
HF_FIXTURE = CALIBRATION.parent / "Tests" / "MTLSegCoreTests" / "Fixtures" / "segformer-tiny-hf"
T5_FRAGMENTS = ("stages", "blocks", "layernorm_", "q_proj", "k_proj", "v_proj", "o_proj",
                "sequence_reduction", "fc1", "fc2", "linear_projections")


def randomize(model: torch.nn.Module, seed: int) -> None:
    """Non-trivial BatchNorm statistics, so that eval-mode BN is really exercised."""
    g = torch.Generator().manual_seed(seed)
    with torch.no_grad():
        for name, t in model.state_dict().items():
            if name.endswith("running_mean"):
                t.copy_(torch.randn(t.shape, generator=g) * 0.2)
            elif name.endswith("running_var"):
                t.copy_(torch.rand(t.shape, generator=g) + 0.5)


def tiny_mtl(class_counts=(2, 3, 4), seed=1) -> MTLSegFormer:
    torch.manual_seed(seed)
    tasks = [{"name": f"task{t}", "classes": [f"c{k}" for k in range(n)]} for t, n in enumerate(class_counts)]
    model = MTLSegFormer(make_description(TINY_ENCODER, 16, tasks, name="tiny")).eval()
    randomize(model, seed)
    return model


class NamingTests(unittest.TestCase):
    @unittest.skipUnless(ANCHOR.exists(), "shared anchor checkpoint absent")
    def test_anchor_names_map_to_transformers4_and_back(self):
        t5 = load_file(str(ANCHOR / "model.safetensors"))
        t4 = to_transformers4_names(t5)
        self.assertEqual(len(t4), len(t5))
        for name in t4:
            self.assertFalse(any(f in name for f in T5_FRAGMENTS), name)
        self.assertEqual(to_transformers5_names(t4).keys(), t5.keys())
        # Idempotent on names already in the target generation.
        self.assertEqual(to_transformers4_names(t4).keys(), t4.keys())
        self.assertIn("segformer.encoder.block.3.1.attention.self.query.weight", t4)
        self.assertIn("segformer.encoder.block.0.0.attention.self.sr.weight", t4)
        self.assertIn("segformer.encoder.patch_embeddings.2.layer_norm.bias", t4)
        self.assertIn("segformer.encoder.layer_norm.3.weight", t4)
        self.assertIn("decode_head.linear_c.0.proj.weight", t4)

    @unittest.skipUnless(ANCHOR.exists(), "shared anchor checkpoint absent")
    def test_transformers_accepts_our_transformers4_names(self):
        """HF's own conversion_mapping loads our renamed file without missing or unexpected keys."""
        self.check_transformers_accepts(ANCHOR)

    def test_transformers_accepts_our_transformers4_names_on_fixture(self):
        self.check_transformers_accepts(HF_FIXTURE)

    def check_transformers_accepts(self, checkpoint: Path):
        t5 = load_file(str(checkpoint / "model.safetensors"))
        with tempfile.TemporaryDirectory() as tmp:
            (Path(tmp) / "config.json").write_text((checkpoint / "config.json").read_text())
            save_file(to_transformers4_names(t5), str(Path(tmp) / "model.safetensors"))
            hf, info = SegformerForSemanticSegmentation.from_pretrained(tmp, output_loading_info=True)
        self.assertFalse(info["missing_keys"] or info["unexpected_keys"] or info["mismatched_keys"], info)
        state = hf.state_dict()
        for name, t in t5.items():
            self.assertTrue(torch.equal(state[name], t), name)


class ReferenceTests(unittest.TestCase):
    @unittest.skipUnless(ANCHOR.exists(), "shared anchor checkpoint absent")
    def test_single_task_equals_hf_on_anchor(self):
        self.check_single_task_equals_hf(ANCHOR)

    def test_single_task_equals_hf_on_fixture(self):
        self.check_single_task_equals_hf(HF_FIXTURE)

    def check_single_task_equals_hf(self, checkpoint: Path):
        hf = SegformerForSemanticSegmentation.from_pretrained(str(checkpoint)).eval()
        ours = read_hf_checkpoint(checkpoint)
        x = torch.randn(1, 3, 64, 96, generator=torch.Generator().manual_seed(0))
        with torch.no_grad():
            expected = hf(pixel_values=x).logits
            got = ours(x)["segmentation"]
        self.assertEqual(got.shape, (1, hf.config.num_labels, 16, 24))
        self.assertLess((got - expected).abs().max().item(), 1e-5)

    def test_mtl_output_shapes_round_up(self):
        model = tiny_mtl()
        with torch.no_grad():
            out = model(torch.randn(2, 3, 75, 102))
        self.assertEqual(list(out), ["task0", "task1", "task2"])
        for logits, k in zip(out.values(), (2, 3, 4)):
            self.assertEqual(logits.shape, (2, k, 19, 26))

    def test_invalid_description_rejected(self):
        desc = make_description(TINY_ENCODER, 16, [{"name": "a", "classes": ["x"]}])
        with self.assertRaises(ValueError):
            MTLSegFormer({**desc, "layer_norm_eps": 1e-6})
        with self.assertRaises(ValueError):
            MTLSegFormer({**desc, "tasks": [{"name": "a", "classes": ["x"]}] * 2})


class ModelFileTests(unittest.TestCase):
    def test_round_trip_mtl(self):
        model = tiny_mtl()
        x = torch.randn(1, 3, 40, 52)
        with tempfile.TemporaryDirectory() as tmp:
            path = Path(tmp) / "m.safetensors"
            write_model_file(model, path)
            names = load_file(str(path)).keys()
            back = read_model_file(path)
        self.assertIn("mtl_head.gate.2.0.weight", names)
        self.assertIn("mtl_head.combine.1.bn.running_var", names)
        self.assertNotIn("decode_head.classifier.weight", names)
        self.assertFalse(any(n.endswith("num_batches_tracked") for n in names))
        self.assertEqual(back.to_description(), model.to_description())
        with torch.no_grad():
            for task, logits in model(x).items():
                self.assertTrue(torch.equal(back(x)[task], logits), task)

    def test_export_cli_from_torch_checkpoint(self):
        model = tiny_mtl(class_counts=(2, 3))
        with tempfile.TemporaryDirectory() as tmp:
            pt, out = Path(tmp) / "m.pt", Path(tmp) / "m.safetensors"
            torch.save({"description": model.to_description(), "state_dict": model.state_dict()}, pt)
            rc = export.main([str(pt), str(out), "--name", "crops", "--input", "102x75"])
            self.assertEqual(rc, 0)
            from safetensors import safe_open
            with safe_open(str(out), framework="pt") as f:
                desc = json.loads(f.metadata()["mtlseg"])
        self.assertEqual(desc["name"], "crops")
        self.assertEqual(desc["input"], {"width": 102, "height": 75})
        self.assertEqual(desc["variant"], "custom")

    def test_wrong_class_count_is_a_clear_error(self):
        model = tiny_mtl(class_counts=(2, 3))
        desc = model.to_description()
        desc["tasks"][1]["classes"] = ["a", "b"]
        with tempfile.TemporaryDirectory() as tmp:
            pt = Path(tmp) / "m.pt"
            torch.save({"description": desc, "state_dict": model.state_dict()}, pt)
            with self.assertRaisesRegex(ValueError, "mtl_head.classifier.1.weight"):
                export.load_source(pt)


class FixtureTests(unittest.TestCase):
    @unittest.skipUnless(make_fixtures.DEFAULT_OUT.joinpath("mtl3-tiny.safetensors").exists(), "no fixtures")
    def test_committed_fixtures_are_current(self):
        """The generator is deterministic and the committed files are its output."""
        committed = make_fixtures.DEFAULT_OUT
        with tempfile.TemporaryDirectory() as tmp:
            make_fixtures.main(["--out", tmp])
            generated = {p.relative_to(tmp) for p in Path(tmp).rglob("*") if p.is_file()}
            # Non-empty and equal sets: a loop over what the generator wrote passes on nothing written, and
            # never sees a committed fixture the generator no longer writes.
            self.assertTrue(generated, "make_fixtures wrote nothing")
            others = {UPSAMPLE_FIXTURE.relative_to(committed)}  # make_upsample_fixture.py's output
            on_disk = {p.relative_to(committed) for p in committed.rglob("*") if p.is_file()} - others
            self.assertEqual(on_disk, generated, "committed fixtures differ from what make_fixtures.py writes")
            for path in sorted(generated):
                twin = committed / path
                self.assertTrue(comparable(twin) == comparable(Path(tmp) / path),
                                f"{twin} is stale: rerun calibration/make_fixtures.py")

    @unittest.skipUnless(UPSAMPLE_FIXTURE.exists(), "no upsample fixture")
    def test_committed_upsample_fixture_is_current(self):
        """Same tensors as a rerun of make_upsample_fixture.py (the metadata names the torch build, so bytes
        may differ under another one)."""
        with tempfile.TemporaryDirectory() as tmp:
            out = Path(tmp) / "u.safetensors"
            subprocess.run([sys.executable, str(CALIBRATION / "make_upsample_fixture.py"), "--out", str(out)],
                           check=True, capture_output=True, timeout=300)
            fresh, committed = load_file(str(out)), load_file(str(UPSAMPLE_FIXTURE))
        self.assertEqual(fresh.keys(), committed.keys(), "rerun calibration/make_upsample_fixture.py")
        for name in fresh:
            self.assertTrue(torch.equal(fresh[name], committed[name]),
                            f"{UPSAMPLE_FIXTURE} {name} is stale: rerun calibration/make_upsample_fixture.py")


def comparable(path: Path):
    """A fixture's content, less what names the installed library: an HF config.json records the
    transformers version that wrote it, which says nothing of the fixture."""
    if path.name != "config.json":
        return path.read_bytes()
    config = json.loads(path.read_text())
    config.pop("transformers_version", None)
    return config


if __name__ == "__main__":
    unittest.main()
