"""What a Ray job ships to its workers, so a cluster node needs no checkout of this repository.

Our packages travel as ``py_modules`` (Ray zips them from the driver and puts them first on the workers'
``sys.path``): every node runs exactly the driver's code. The dependencies are either installed on the nodes (the
image, or ``pip install remind-curate``) or, with ``pip=True`` (``ray.runtime_env_pip: true``), installed by Ray
into a per-job environment from the same pins as ``pyproject.toml``. depth-anything-3 is never in that list (it is
a --no-deps install); GPU nodes that run DA3 need it in their image.
"""
from __future__ import annotations

import importlib
import importlib.metadata
import tomllib
from pathlib import Path
from typing import Any

PACKAGES = ("schemas", "engine", "tasks", "flows", "taxonomy", "training", "remind_curate")
DISTRIBUTION = "remind-curate"


def package_dirs() -> list[str]:
    """The folders of our packages, as the driver imports them."""
    return [str(Path(importlib.import_module(name).__file__ or "").resolve().parent) for name in PACKAGES]


def dependencies() -> list[str]:
    """The default (non-extra) requirements of this package, with their pins."""
    pyproject = Path(__file__).resolve().parent.parent / "pyproject.toml"
    if pyproject.is_file():  # a checkout: the file is the truth (the installed metadata may be older)
        return list(tomllib.loads(pyproject.read_text())["project"]["dependencies"])
    requires = importlib.metadata.requires(DISTRIBUTION) or []
    return [r for r in requires if "extra ==" not in r]


def job_runtime_env(env_vars: dict[str, str] | None = None, pip: bool = False) -> dict[str, Any]:
    """The ``runtime_env`` of ``ray.init``: our code as py_modules, the environment, and optionally the deps."""
    env: dict[str, Any] = {"py_modules": package_dirs(), "excludes": ["__pycache__", "*.pyc"]}
    if env_vars:
        env["env_vars"] = dict(env_vars)
    if pip:
        env["pip"] = {"packages": dependencies(), "pip_check": False}
    return env
