"""The process runtime shared by ingest and training: process defaults, what a Ray job ships, one Ray start-up.

Process defaults (Prefect and Ray settings) are applied before either is imported; an explicit setting wins.

Our packages travel to Ray workers as ``py_modules`` (Ray zips them from the driver and puts them first on the
workers' ``sys.path``): every node runs exactly the driver's code and needs no checkout. The dependencies are
installed on the nodes (the image, or ``pip install remind-curate``) or, with ``pip=True``, installed by Ray into a
per-job environment from the same pins as ``pyproject.toml``. depth-anything-3 is never in that list (a --no-deps
install); GPU nodes that run DA3 need it in their image.
"""
from __future__ import annotations

import contextlib
import importlib
import importlib.metadata
import logging
import os
import shutil
import tempfile
import tomllib
from collections.abc import Iterator
from pathlib import Path
from typing import Any

from engine.pids import alive

PROCESS_DEFAULTS = {
    "PREFECT_SERVER_ANALYTICS_ENABLED": "false",  # no DNS lookups on a closed network
    "PREFECT_SERVER_EPHEMERAL_STARTUP_TIMEOUT_SECONDS": "90",  # the default 20 s is too tight on 2 cores
    "PREFECT_LOGGING_LEVEL": "WARNING",
    "PREFECT_UI_ENABLED": "false",
    "RAY_USAGE_STATS_ENABLED": "0",
    "RAY_AUTH_MODE": "disabled",
    # Ray Data keeps each run's resource reservation in a cluster-wide detached actor until the request expires
    # (180 s by default, refreshed every 10 s while the run lives). A SIGKILLed driver cannot cancel its own, so the
    # rerun saw "Cluster resources are not enough" for 3+ minutes; 30 s bounds that wait. Read when ray.data is
    # imported, hence a process default.
    "RAY_DATA_AUTOSCALING_REQUEST_EXPIRE_TIME_S": "30",
    "RAY_TRAIN_ENABLE_PRINT_PATCH": "0",
    "TOKENIZERS_PARALLELISM": "false",
}
LOCAL_TEMP_ROOT = "/tmp"  # a local Ray's session folders (short paths: Ray's socket paths are length-capped)
TEMP_PREFIX, OWNER_FILE = "rc-ray-", "owner.pid"
PACKAGES = ("schemas", "engine", "tasks", "flows", "taxonomy", "training", "remind_curate")
DISTRIBUTION = "remind-curate"


def configure_process() -> None:
    for key, value in PROCESS_DEFAULTS.items():
        os.environ.setdefault(key, value)
    home = Path(os.environ.setdefault("PREFECT_HOME", str(Path.home() / ".prefect")))
    # Task results stay out of the user's other projects (and out of outputs): one store per Prefect home.
    os.environ.setdefault("PREFECT_RESULTS_LOCAL_STORAGE_PATH", str(home / "remind-curate-results"))


def worker_env_vars() -> dict[str, str]:
    """What every Ray worker gets in its environment: the process defaults as this driver has them, and the Prefect
    API this command talks to (else each worker would start its own temporary server on first Prefect use)."""
    values = {key: os.environ.get(key, default) for key, default in PROCESS_DEFAULTS.items()}
    if os.environ.get("PREFECT_API_URL"):
        values["PREFECT_API_URL"] = os.environ["PREFECT_API_URL"]
    return values


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


def sweep_stale_temp_dirs(root: str = LOCAL_TEMP_ROOT) -> list[str]:
    """Remove the folders of local Rays whose command died without cleaning up (a SIGKILLed driver): those whose
    ``owner.pid`` names no live process. Folders without one, or of a live command, are left alone."""
    removed = []
    for folder in Path(root).glob(TEMP_PREFIX + "*"):
        try:
            owner = int((folder / OWNER_FILE).read_text().strip())
        except (OSError, ValueError):
            continue
        if owner == os.getpid() or alive(owner):
            continue
        shutil.rmtree(folder, ignore_errors=True)
        removed.append(str(folder))
    return removed


@contextlib.contextmanager
def ray_session(address: str | None, *, num_cpus: float = 0, min_free_disk_gib: float = 1.0,
                env_vars: dict[str, str] | None = None, pip: bool = False, num_gpus: int | None = None,
                object_store_bytes: int | None = None, log_to_driver: bool = True) -> Iterator[bool]:
    """Ray for the block; yields True when this call started or connected it (and so shuts it down after).

    Ray already up in this process: used as it is. ``address`` "auto" or "ray://...": that cluster. Otherwise
    (None, "" or "local") a local Ray of its own, never someone else's on this machine, with ``num_cpus`` logical
    CPUs (0: every core), a session folder that is removed when the block ends (or by the next start, when this
    command is SIGKILLed), and spills refused by free disk space (``disk_system_config``)."""
    import ray

    if ray.is_initialized():
        yield False
        return
    configure_process()  # RAY_AUTH_MODE etc. before Ray starts: its workers get the same values
    runtime_env = job_runtime_env(env_vars if env_vars is not None else worker_env_vars(), pip=pip)
    temp_dir = None
    if address and address != "local":
        ray.init(address=address, runtime_env=runtime_env, logging_level=logging.WARNING, log_to_driver=log_to_driver)
    else:
        sweep_stale_temp_dirs()
        system_config = disk_system_config(LOCAL_TEMP_ROOT, min_free_disk_gib)  # before any folder is made
        temp_dir = tempfile.mkdtemp(prefix=TEMP_PREFIX, dir=LOCAL_TEMP_ROOT)
        Path(temp_dir, OWNER_FILE).write_text(str(os.getpid()))
        ray.init(address="local", num_cpus=int(-(-num_cpus // 1)) or os.cpu_count() or 1, num_gpus=num_gpus,
                 include_dashboard=False, logging_level=logging.WARNING, object_store_memory=object_store_bytes,
                 runtime_env=runtime_env, _temp_dir=temp_dir, _system_config=system_config,
                 log_to_driver=log_to_driver)
    try:
        yield True
    finally:
        ray.shutdown()  # an interrupted driver leaves no worker running (the ledger is the truth on rerun)
        if temp_dir:
            shutil.rmtree(temp_dir, ignore_errors=True)
