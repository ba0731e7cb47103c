"""What to tell a user whose Python lacks a package the calibration scripts need.

The scripts run under the venv of README.md's "Setup". Run by another python3,
an import fails deep inside a module with a bare ModuleNotFoundError, which
says neither which package to install nor how. This module uses the standard
library only, so that it can say so whatever is missing.
"""

from __future__ import annotations

import sys

# Import name -> the name requirements.txt installs it under.
PACKAGES = {"torch": "torch", "transformers": "transformers", "safetensors": "safetensors",
            "numpy": "numpy", "PIL": "pillow", "onnx": "onnx", "onnxruntime": "onnxruntime"}


def missing_package_message(tool: str, error: ModuleNotFoundError) -> str | None:
    """One line naming the missing package and how to install it; None when `error` is not about one of
    requirements.txt's packages (a module of our own, say), which the caller should then re-raise."""
    package = PACKAGES.get((error.name or "").split(".")[0])
    if package is None:
        return None
    return (f"{tool}: this Python ({sys.executable}) has no {package!r} package: install calibration/requirements.txt "
            f"into a venv (python3 -m venv ~/.venvs/mtlseg-calib && ~/.venvs/mtlseg-calib/bin/pip install -r "
            f"calibration/requirements.txt) and run {tool}.py with ~/.venvs/mtlseg-calib/bin/python; "
            f"see calibration/README.md, Setup")
