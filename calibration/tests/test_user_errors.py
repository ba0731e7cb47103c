"""Tests of what export.py and check_parity.py tell a user who gives them something they cannot use.

Each such input must end in one line naming the file and what to do, never in a traceback, and
export must refuse what mtlseg would refuse at load (Sources/MTLSegCore/ModelDescription.swift,
TaskNameRules.swift, ModelSource.swift) rather than write a file the engine then refuses.

Run from the repository root:
    ~/.venvs/mtlseg-calib/bin/python -m unittest discover -s calibration/tests
"""

from __future__ import annotations

import contextlib
import io
import json
import shutil
import struct
import subprocess
import sys
import tempfile
import traceback
import unittest
import zlib
from pathlib import Path

import numpy as np
import torch
from PIL import Image
from safetensors.numpy import save_file as save_numpy

CALIBRATION = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(CALIBRATION))

import check_parity  # noqa: E402
import export  # noqa: E402
from model_file import engine_problem, task_name_problem, write_model_file  # noqa: E402
from mtlsegformer import MTLSegFormer, make_description  # noqa: E402

FIXTURES = CALIBRATION.parent / "Tests" / "MTLSegCoreTests" / "Fixtures"
TINY_ENCODER = dict(num_channels=3, hidden_sizes=[8, 16, 24, 32], depths=[1, 2, 1, 2],
                    num_attention_heads=[1, 2, 3, 4], sr_ratios=[8, 4, 2, 1], patch_sizes=[7, 3, 3, 3],
                    strides=[4, 2, 2, 2], mlp_ratios=[4, 4, 4, 4])
TASKS = [{"name": "plants", "classes": ["background", "plant"]}, {"name": "rows", "classes": ["a", "b", "c"]}]


def tiny_model(tasks=TASKS, **options) -> MTLSegFormer:
    torch.manual_seed(0)
    return MTLSegFormer(make_description(TINY_ENCODER, 16, tasks, name="tiny", **options)).eval()


def run(main, argv: list[str]) -> tuple[int, str]:
    """main(argv)'s exit status (argparse's too) and what it wrote to stderr.

    An exception that escapes main is what a user would see as a traceback: it is written to the returned
    stderr as Python would print it, with exit status 1, so that the tests' "no Traceback" checks can fail.
    """
    err = io.StringIO()
    with contextlib.redirect_stderr(err), contextlib.redirect_stdout(io.StringIO()):
        try:
            rc = main(argv)
        except SystemExit as exit_:
            rc = exit_.code
        except Exception:  # noqa: BLE001 -- reported as the script's uncaught exception would be
            traceback.print_exc()
            rc = 1
    return rc, err.getvalue()


SCRIPT_PYTHON = sys.executable  # the Python the tests run under (~/.venvs/peers/bin/python on the dev box)


def run_script(script: str, argv: list) -> subprocess.CompletedProcess:
    """The script run as a user runs it, in its own interpreter: what reaches the terminal, tracebacks included."""
    return subprocess.run([SCRIPT_PYTHON, str(CALIBRATION / script)] + [str(a) for a in argv],
                          capture_output=True, text=True, timeout=300)


def write_png16(path: Path, samples: np.ndarray, color_type: int) -> None:
    """A 16-bit PNG written by hand (PIL writes 16-bit grey only): colour type 0 grey, 2 RGB,
    4 grey+alpha, 6 RGBA; samples [H, W] or [H, W, C] uint16."""
    h, w = samples.shape[:2]
    raw = b"".join(b"\x00" + samples[y].astype(">u2").tobytes() for y in range(h))

    def chunk(tag: bytes, data: bytes) -> bytes:
        return struct.pack(">I", len(data)) + tag + data + struct.pack(">I", zlib.crc32(tag + data))

    path.write_bytes(b"\x89PNG\r\n\x1a\n" + chunk(b"IHDR", struct.pack(">IIBBBBB", w, h, 16, color_type, 0, 0, 0))
                     + chunk(b"IDAT", zlib.compress(raw)) + chunk(b"IEND", b""))


class TaskNameRuleTests(unittest.TestCase):
    """TaskNameRules.problem, case by case."""

    def test_refused(self):
        for name in ["", "crop/weed", "crop\\weed", "..", "a..b", "a\tb", "a\nb", "a\x7fb", "a\x85b", "a\u2028b",
                     "x" * 65, "é" * 33]:
            self.assertIsNotNone(task_name_problem(name), repr(name))

    def test_accepted(self):
        for name in ["plants", "crop-weed_1", "a.b", "é" * 32, "x" * 64, "Pflanzen (grün)"]:
            self.assertIsNone(task_name_problem(name), repr(name))

    def test_names_equal_as_swift_strings_repeat(self):
        """Swift compares strings by canonical equivalence: "é" precomposed and decomposed are one name."""
        desc = make_description(TINY_ENCODER, 16, [{"name": "\u00e9", "classes": ["a"]},
                                                   {"name": "e\u0301", "classes": ["a"]}])
        self.assertEqual(engine_problem(desc), ("tasks", "task names repeat"))


class ExportRefusalTests(unittest.TestCase):
    def setUp(self):
        self.tmp = Path(tempfile.mkdtemp())
        self.addCleanup(shutil.rmtree, self.tmp)
        self.out = self.tmp / "out.safetensors"

    def assert_refused(self, argv, *phrases, out: Path | None = None):
        """`out`: the output path the refused export must not have written (default self.out)."""
        rc, err = run(export.main, [str(a) for a in argv])
        self.assertNotEqual(rc, 0, err)
        self.assertNotIn("Traceback", err)
        for phrase in phrases:
            self.assertIn(phrase, err)
        self.assertFalse((out or self.out).exists(), "a refused export wrote its output")
        return err

    def test_bare_state_dict(self):
        pt = self.tmp / "state.pt"
        torch.save(tiny_model().state_dict(), pt)
        err = self.assert_refused([pt, self.out], str(pt), "bare state_dict", "save_pretrained", "README")
        self.assertEqual(len(err.strip().splitlines()), 1, err)

    def test_pickled_model_object(self):
        pt = self.tmp / "whole.pt"
        torch.save(torch.nn.Sequential(torch.nn.Linear(2, 2)), pt)
        self.assert_refused([pt, self.out], str(pt), "torch.save(model)", "to_description")

    def test_checkpoint_dict_holding_other_objects(self):
        """{description, state_dict, args: Namespace} is the right dict with one value that is not plain
        data: the message names that class, not torch.save(model)."""
        import argparse
        model = tiny_model()
        for extra, class_name in [(argparse.Namespace(lr=0.1), "argparse.Namespace"), (np.float64(1.0), "numpy")]:
            pt = self.tmp / "m.pt"
            torch.save({"description": model.to_description(), "state_dict": model.state_dict(), "args": extra}, pt)
            err = self.assert_refused([pt, self.out], str(pt), class_name, "'description'")
            self.assertNotIn("torch.save(model)", err)
            self.assertEqual(len(err.strip().splitlines()), 1, err)

    def test_mtlseg_model_file_as_source(self):
        model_file = self.tmp / "crops.safetensors"
        write_model_file(tiny_model(), model_file)
        self.assert_refused([model_file, self.out], str(model_file), "already an mtlseg model file")

    def test_missing_output_folder(self):
        pt = self.tmp / "m.pt"
        model = tiny_model()
        torch.save({"description": model.to_description(), "state_dict": model.state_dict()}, pt)
        out = self.tmp / "no-such-folder" / "out.safetensors"
        self.assert_refused([pt, out], str(out.parent), "does not exist", out=out)

    def test_output_is_the_source(self):
        """export x.pt x.pt would replace the training checkpoint by its export."""
        pt = self.tmp / "m.pt"
        model = tiny_model()
        torch.save({"description": model.to_description(), "state_dict": model.state_dict()}, pt)
        before = pt.read_bytes()
        (self.tmp / "link.pt").symlink_to(pt)
        for out in [pt, self.tmp / ".." / self.tmp.name / "m.pt", self.tmp / "link.pt"]:
            rc, err = run(export.main, [str(pt), str(out)])
            self.assertEqual(rc, 1, err)
            self.assertIn("overwrite the checkpoint", err)
            self.assertEqual(len(err.strip().splitlines()), 1, err)
        self.assertEqual(pt.read_bytes(), before)
        hf = self.tmp / "hf"
        shutil.copytree(FIXTURES / "segformer-tiny-hf", hf)
        weights = (hf / "model.safetensors").read_bytes()
        rc, err = run(export.main, [str(hf), str(hf / "model.safetensors")])
        self.assertEqual(rc, 1, err)
        self.assertEqual((hf / "model.safetensors").read_bytes(), weights)

    def test_hf_model_type_other_than_segformer(self):
        hf = self.tmp / "hf"
        shutil.copytree(FIXTURES / "segformer-tiny-hf", hf)
        config = json.loads((hf / "config.json").read_text())
        config["model_type"] = "upernet"
        (hf / "config.json").write_text(json.dumps(config))
        self.assert_refused([hf, self.out], "'upernet'", "'segformer'")

    def test_input_size_outside_engine_range(self):
        self.assert_refused([FIXTURES / "segformer-tiny-hf", self.out, "--input", "20000x20000"], "1...16384")
        self.assert_refused([FIXTURES / "segformer-tiny-hf", self.out, "--input", "512x16385"], "1...16384")
        self.assertEqual(export.parse_size("16384x1"), (16384, 1))

    def test_task_name_option(self):
        for name in ["crop/weed", "a..b", "", "x" * 65, "a\tb"]:
            self.assert_refused([FIXTURES / "segformer-tiny-hf", self.out, "--task-name", name], "task name")

    def test_checkpoint_description_the_engine_refuses(self):
        """A .pt whose own description breaks the engine's rules: nothing is written."""
        model = tiny_model()
        for change, phrase in [({"tasks": [dict(TASKS[0], name="crop/weed"), TASKS[1]]}, "tasks[0].name"),
                               ({"input": {"width": 20000, "height": 64}}, "1...16384"),
                               # JSON types mtlseg's typed decoder refuses, whatever the value
                               ({"tasks": [dict(TASKS[0], classes=[0, 1]), TASKS[1]]}, "'tasks[0].classes[0]'"),
                               ({"input": {"width": 512.5, "height": 512}}, "'input.width'"),
                               ({"input": {"width": 512.0, "height": 512}}, "'input.width'"),
                               ({"name": 5}, "'name'"),
                               ({"mean": [0.5, "0.5", 0.5]}, "'mean'"),
                               ({"mean": [float("nan"), 0.5, 0.5]}, "'mean': values must be finite"),
                               ({"std": [0.2, float("inf"), 0.2]}, "'std': values must be finite"),
                               ({"mean": [1e40, 0.5, 0.5]}, "within a 32-bit float's range"),
                               ({"tasks": [dict(TASKS[0], colors=[[0, 0, 0], [255, 0.5, 0]]), TASKS[1]]},
                                "'tasks[0].colors'")]:
            pt = self.tmp / "m.pt"
            torch.save({"description": {**model.to_description(), **change}, "state_dict": model.state_dict()}, pt)
            self.assert_refused([pt, self.out], phrase)

    def test_valid_export_still_writes(self):
        rc, err = run(export.main, [str(FIXTURES / "segformer-tiny-hf"), str(self.out), "--task-name", "plants.v2",
                                    "--input", "16384x16384"])
        self.assertEqual(rc, 0, err)
        self.assertTrue(self.out.exists())


class CheckParityMessageTests(unittest.TestCase):
    def setUp(self):
        self.tmp = Path(tempfile.mkdtemp())
        self.addCleanup(shutil.rmtree, self.tmp)

    def assert_message(self, argv, *phrases):
        rc, err = run(check_parity.main, [str(a) for a in argv])
        self.assertEqual(rc, 2, err)
        self.assertNotIn("Traceback", err)
        for phrase in phrases:
            self.assertIn(phrase, err)

    def test_unknown_task_in_reference_file(self):
        reference = self.tmp / "r.safetensors"
        save_numpy({"logits.plants": np.zeros((2, 4, 4), np.float32), "logits.rows": np.zeros((3, 4, 4), np.float32)},
                   str(reference))
        np.save(self.tmp / "x.npy", np.zeros((2, 4, 4), np.float32))
        self.assert_message(["--reference", reference, "--task", "weeds", "--logits", self.tmp / "x.npy"],
                            "'weeds'", "plants, rows")

    def test_unknown_task_of_model(self):
        model_file = self.tmp / "m.safetensors"
        write_model_file(tiny_model(), model_file)
        Image.new("RGB", (32, 32)).save(self.tmp / "i.png")
        np.save(self.tmp / "x.npy", np.zeros((2, 8, 8), np.float32))
        self.assert_message(["--model", model_file, "--image", self.tmp / "i.png", "--task", "weeds",
                             "--logits", self.tmp / "x.npy"], "'weeds'", "plants, rows")

    def test_logits_of_a_multi_task_model_are_per_task(self):
        """mtlseg infer --logits out/crops.npy writes out/crops.<task>.npy for each of several tasks."""
        reference = self.tmp / "r.safetensors"
        save_numpy({"logits.rows": np.zeros((3, 4, 4), np.float32)}, str(reference))
        np.save(self.tmp / "crops.rows.npy", np.zeros((3, 4, 4), np.float32))
        self.assert_message(["--reference", reference, "--task", "rows", "--logits", self.tmp / "crops.npy"],
                            str(self.tmp / "crops.rows.npy"))
        self.assertEqual(check_parity.per_task_path(Path("out/crops.npy"), "rows"), Path("out/crops.rows.npy"))
        self.assertEqual(check_parity.per_task_path(Path("out/crops"), "rows"), Path("out/crops.rows.npy"))

    def test_empty_logits(self):
        np.save(self.tmp / "x.npy", np.zeros((3, 4, 4), np.float32))
        np.save(self.tmp / "x0.npy", np.zeros((0, 4, 4), np.float32))
        self.assert_message(["--expected", self.tmp / "x0.npy", "--logits", self.tmp / "x.npy"],
                            str(self.tmp / "x0.npy"), "empty")
        self.assert_message(["--expected", self.tmp / "x.npy", "--logits", self.tmp / "x0.npy"],
                            str(self.tmp / "x0.npy"), "empty")

    def test_model_with_other_than_three_channels(self):
        model_file = self.tmp / "grey.safetensors"
        torch.manual_seed(0)
        write_model_file(MTLSegFormer(make_description(dict(TINY_ENCODER, num_channels=1), 16, TASKS,
                                                       mean=[0.5], std=[0.25])).eval(), model_file)
        Image.new("RGB", (32, 32)).save(self.tmp / "i.png")
        np.save(self.tmp / "x.npy", np.zeros((2, 8, 8), np.float32))
        self.assert_message(["--model", model_file, "--image", self.tmp / "i.png", "--task", "plants",
                             "--logits", self.tmp / "x.npy"], str(model_file), "1 input channels")

    def test_int8_model_file(self):
        """An int8 file (mtlseg calibrate's output) carries __metadata__["mtlseg_quantization"]."""
        int8 = self.tmp / "crops-int8.safetensors"
        desc = tiny_model().to_description()
        save_numpy({"w": np.zeros(1, np.int8)}, str(int8),
                   metadata={"mtlseg": json.dumps(desc), "mtlseg_quantization": "{}"})
        Image.new("RGB", (32, 32)).save(self.tmp / "i.png")
        np.save(self.tmp / "x.npy", np.zeros((2, 8, 8), np.float32))
        self.assert_message(["--model", int8, "--image", self.tmp / "i.png", "--task", "plants",
                             "--logits", self.tmp / "x.npy"], "int8", "fp32")


class SixteenBitPNGTests(unittest.TestCase):
    """mtlseg's PNG decoder keeps a 16-bit sample's high byte (png_set_strip_16): 0x12FF is 0x12, not
    rounded to 0x13, and never saturated to 255."""

    def setUp(self):
        self.tmp = Path(tempfile.mkdtemp())
        self.addCleanup(shutil.rmtree, self.tmp)
        rng = np.random.default_rng(0)
        self.samples = rng.integers(0, 65536, (32, 40, 4)).astype(np.uint16)
        self.samples[0, :4, :] = [[0x12FF] * 4, [0x0080] * 4, [0xFFFF] * 4, [0x00FF] * 4]

    def test_grey_grey_alpha_rgb_rgba(self):
        high = (self.samples >> 8).astype(np.uint8)
        grey = np.repeat(high[:, :, :1], 3, axis=2)
        for color_type, channels, expected in [(0, 1, grey), (4, 2, grey), (2, 3, high[:, :, :3]), (6, 4, high[:, :, :3])]:
            path = self.tmp / f"t{color_type}.png"
            write_png16(path, self.samples[:, :, :channels].squeeze(2) if channels == 1 else self.samples[:, :, :channels],
                        color_type)
            got = np.asarray(check_parity.load_rgb8(path))
            self.assertEqual(got.dtype, np.uint8)
            np.testing.assert_array_equal(got, expected, err_msg=f"colour type {color_type}")

    def test_reference_on_16_bit_grey_equals_its_8_bit_conversion(self):
        model_file = self.tmp / "m.safetensors"
        write_model_file(tiny_model(), model_file)
        grey16 = self.samples[:, :, 0]
        write_png16(self.tmp / "g16.png", grey16, 0)
        Image.fromarray((grey16 >> 8).astype(np.uint8)).save(self.tmp / "g8.png")
        for task in ("plants", "rows"):
            np.testing.assert_array_equal(check_parity.reference_from_image(model_file, self.tmp / "g16.png", task),
                                          check_parity.reference_from_image(model_file, self.tmp / "g8.png", task))


class BadInputScriptTests(unittest.TestCase):
    """Inputs that once ended in a traceback, a bare word ('export: 101') or wrong advice: one line on stderr
    that names the file and what is wrong, no traceback, and for check_parity exit 2 ("an input cannot be
    used"), never 1 ("parity failed"). A few run as a user runs the scripts, in their own interpreter; the
    rest run main() in-process (run() reports an escaping exception as a traceback), since each
    interpreter that imports torch costs seconds."""

    def setUp(self):
        self.tmp = Path(tempfile.mkdtemp())
        self.addCleanup(shutil.rmtree, self.tmp)
        self.out = self.tmp / "out.safetensors"

    def hf_copy(self, name: str) -> Path:
        hf = self.tmp / name
        shutil.copytree(FIXTURES / "segformer-tiny-hf", hf)
        return hf

    def edit_config(self, hf: Path, change) -> None:
        config = json.loads((hf / "config.json").read_text())
        change(config)
        (hf / "config.json").write_text(json.dumps(config))

    def assert_one_line(self, result, rc: int, *phrases) -> None:
        """result: a CompletedProcess, or run()'s (exit status, stderr)."""
        got_rc, err = (result.returncode, result.stderr) if hasattr(result, "stderr") else result
        self.assertEqual(got_rc, rc, err)
        self.assertNotIn("Traceback", err)
        self.assertEqual(len(err.strip().splitlines()), 1, err)
        for phrase in phrases:
            self.assertIn(phrase, err)
        return err

    def test_export_bad_inputs(self):
        hf = self.hf_copy("corrupt")
        (hf / "model.safetensors").write_text("junk\n")  # an interrupted download
        text = self.tmp / "notes.txt"
        text.write_text("hello\n")  # torch's unpickler once raised KeyError(101) on it: 'export: 101'
        for source, named, phrase in [(hf, str(hf / "model.safetensors"), "not a readable safetensors file"),
                                      (text, str(text), "is not a torch checkpoint")]:
            with self.subTest(source=source.name, process="own"):
                self.assert_one_line(run_script("export.py", [source, self.out]), 1, named, phrase)
                self.assertFalse(self.out.exists())
        cases = []
        hf = self.hf_copy("nodepths")
        self.edit_config(hf, lambda c: c.pop("depths"))
        cases.append((hf, str(hf / "config.json"), "depths"))
        hf = self.hf_copy("gap")
        self.edit_config(hf, lambda c: c.update(id2label={"0": "x", "1": "y", "5": "z"}))
        cases.append((hf, str(hf / "config.json"), "0..<3"))
        hf = self.hf_copy("labels")
        self.edit_config(hf, lambda c: c.update(id2label={"a": "x", "b": "y", "c": "z"}))
        cases.append((hf, str(hf / "config.json"), "'id2label.a'"))
        hf = self.hf_copy("sizes")
        self.edit_config(hf, lambda c: c.update(hidden_sizes="8,16"))
        cases.append((hf, str(hf / "config.json"), "'hidden_sizes'"))
        for i, (content, phrase) in enumerate([("{bad", "not valid JSON"), ('{"image_mean": 0.5}', "'image_mean'"),
                                               ("[1]", "not a JSON object")]):
            hf = self.hf_copy(f"pre{i}")
            (hf / "preprocessor_config.json").write_text(content)
            cases.append((hf, str(hf / "preprocessor_config.json"), phrase))
        pt = self.tmp / "types.pt"
        model = tiny_model()
        torch.save({"description": {**model.to_description(), "tasks": [dict(TASKS[0], classes=[0, 1]), TASKS[1]]},
                    "state_dict": model.state_dict()}, pt)
        cases.append((pt, str(pt), "'tasks[0].classes[0]'"))
        for source, named, phrase in cases:
            with self.subTest(source=source.name):
                self.assert_one_line(run(export.main, [str(source), str(self.out)]), 1, named, phrase)
                self.assertFalse(self.out.exists())

    def test_export_takes_mtlseg_defaults_for_absent_config_keys(self):
        """mtlseg loads a config.json without patch_sizes, strides, mlp_ratios (HFConfig's defaults): export
        must write it too."""
        hf = self.hf_copy("defaults")
        config = json.loads((hf / "config.json").read_text())
        # The fixture's values are the defaults, so the weights still fit once the keys are gone.
        self.assertEqual([config.get(k) for k in ("patch_sizes", "strides", "mlp_ratios")],
                         [[7, 3, 3, 3], [4, 2, 2, 2], [4, 4, 4, 4]])
        self.edit_config(hf, lambda c: [c.pop(k) for k in ("patch_sizes", "strides", "mlp_ratios")])
        rc, err = run(export.main, [str(hf), str(self.out)])
        self.assertEqual(rc, 0, err)

    def test_export_onto_its_source(self):
        pt = self.tmp / "m.pt"
        model = tiny_model()
        torch.save({"description": model.to_description(), "state_dict": model.state_dict()}, pt)
        before = pt.read_bytes()
        self.assert_one_line(run_script("export.py", [pt, pt]), 1, str(pt), "overwrite")
        self.assertEqual(pt.read_bytes(), before)

    def test_check_parity_bad_inputs(self):
        np.save(self.tmp / "x.npy", np.zeros((3, 8, 8), np.float32))
        Image.new("RGB", (32, 32)).save(self.tmp / "i.png")
        folder = self.tmp / "folder"
        folder.mkdir()
        corrupt = self.hf_copy("corrupt")
        (corrupt / "model.safetensors").write_text("junk\n")
        badpre = self.hf_copy("badpre")
        (badpre / "preprocessor_config.json").write_text("{bad")
        image = ["--image", self.tmp / "i.png", "--task", "segmentation", "--logits", self.tmp / "x.npy"]
        for argv, named, phrase in [
                (["--reference", folder, "--task", "rows", "--logits", self.tmp / "x.npy"], str(folder), "folder"),
                (["--expected", self.tmp / "x.npy", "--logits", folder], str(folder), "folder"),
                (["--model", corrupt] + image, str(corrupt / "model.safetensors"), "not a readable safetensors"),
                (["--model", badpre] + image, str(badpre / "preprocessor_config.json"), "not valid JSON")]:
            with self.subTest(argv=[str(a) for a in argv[:2]]):
                # Only the folder cases and one --model case in their own interpreter: --model imports torch.
                own = argv[1] is folder or argv[1] is corrupt
                result = run_script("check_parity.py", argv) if own else run(check_parity.main, [str(a) for a in argv])
                err = self.assert_one_line(result, 2, named, phrase)
                self.assertNotIn("export a .pt", err)


class MissingDependencyTests(unittest.TestCase):
    """Run by a Python without the requirements, the scripts say what to install (README.md, Setup).
    The packages are hidden from a child interpreter: None in sys.modules makes their import fail
    with ModuleNotFoundError, as on a Python that lacks them."""

    def run_without(self, hidden: list[str], script: str, argv: list[str]) -> subprocess.CompletedProcess:
        code = ("import runpy, sys\n"
                f"for name in {hidden!r}: sys.modules[name] = None\n"
                f"sys.path.insert(0, {str(CALIBRATION)!r})\n"
                f"sys.argv = [{script!r}] + {argv!r}\n"
                f"runpy.run_path({str(CALIBRATION / script)!r}, run_name='__main__')\n")
        return subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, timeout=120)

    def assert_install_advice(self, result, package):
        self.assertNotEqual(result.returncode, 0)
        self.assertNotIn("Traceback", result.stderr)
        self.assertIn(f"'{package}'", result.stderr)
        self.assertIn("pip install -r calibration/requirements.txt", result.stderr)

    def test_export_without_torch(self):
        self.assert_install_advice(self.run_without(["torch"], "export.py", ["m.pt", "out.safetensors"]), "torch")

    def test_check_parity_model_mode_without_torch(self):
        with tempfile.TemporaryDirectory() as tmp:
            np.save(Path(tmp) / "x.npy", np.zeros((2, 4, 4), np.float32))
            Image.new("RGB", (16, 16)).save(Path(tmp) / "i.png")
            result = self.run_without(["torch"], "check_parity.py",
                                      ["--model", str(FIXTURES / "mtl2-tiny.safetensors"), "--image",
                                       str(Path(tmp) / "i.png"), "--task", "rows", "--logits", str(Path(tmp) / "x.npy")])
        self.assert_install_advice(result, "torch")

    def test_check_parity_reference_mode_without_safetensors(self):
        with tempfile.TemporaryDirectory() as tmp:
            np.save(Path(tmp) / "x.npy", np.zeros((3, 19, 26), np.float32))
            result = self.run_without(["safetensors"], "check_parity.py",
                                      ["--reference", str(FIXTURES / "mtl2-tiny.reference.safetensors"),
                                       "--task", "rows", "--logits", str(Path(tmp) / "x.npy")])
        self.assert_install_advice(result, "safetensors")

    def test_check_parity_expected_mode_needs_numpy_only(self):
        with tempfile.TemporaryDirectory() as tmp:
            np.save(Path(tmp) / "x.npy", np.ones((2, 4, 4), np.float32))
            result = self.run_without(["torch", "safetensors", "transformers", "PIL"], "check_parity.py",
                                      ["--expected", str(Path(tmp) / "x.npy"), "--logits", str(Path(tmp) / "x.npy")])
        self.assertEqual(result.returncode, 0, result.stderr)
        self.assertIn("max_abs_diff 0", result.stdout)


if __name__ == "__main__":
    unittest.main()
