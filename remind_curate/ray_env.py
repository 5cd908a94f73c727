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
import os
import tomllib
from pathlib import Path
from typing import Any

LOCAL_TEMP_ROOT = "/tmp"  # a local Ray's session folders (short paths: Ray's socket paths are length-capped)
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


class DiskTooSmallError(ValueError):
    """``min_free_disk_gib`` asks for more free space than the disk under Ray's session folder holds in all."""


def disk_system_config(path: str, min_free_gib: float) -> dict[str, float]:
    """The ``_system_config`` of a local Ray: it refuses to create or spill objects only when the disk under
    ``path`` has less than ``min_free_gib`` free.

    Ray's own rule is a fraction of the disk's size (``local_fs_capacity_threshold``, 0.95): on a large shared
    disk it refuses with many GiB free (a 250 GB disk with 12 GB free fails every spill, with
    ``OutOfDiskError``), and on a small one it lets the disk fill to the last few hundred MB. Free space is what
    a spill needs, so that is the setting; Ray takes it as the fraction it means on this disk."""
    stat = os.statvfs(path)
    capacity = stat.f_frsize * stat.f_blocks
    min_free = min_free_gib * (1 << 30)
    if min_free >= capacity:
        raise DiskTooSmallError(f"ray.min_free_disk_gib is {min_free_gib:g} GiB but the disk under {path} holds "
                                f"{capacity / (1 << 30):.1f} GiB in all; lower it")
    return {"local_fs_capacity_threshold": 1.0 - min_free / capacity}
