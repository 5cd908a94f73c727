"""A tiny DA3 backbone that records each time it is built, i.e. each time the checkpoint is loaded.

``count_loads(model_dir, log)`` points a ``build_tiny_da3`` bundle's architecture file at this class, so the
production loader (``DepthAnything3.from_pretrained``) loads the same weights and appends the loading process's
pid to ``log`` once per load, whichever process (a Ray actor) does it.
"""
from __future__ import annotations

import os
from pathlib import Path

from tasks.geometry.da3_tiny import ARCH_FILE, TinyDinoV2


class CountingTinyDinoV2(TinyDinoV2):
    def __init__(self, load_log: str, **kwargs: object) -> None:
        super().__init__(**kwargs)
        with open(load_log, "a") as handle:
            handle.write(f"{os.getpid()}\n")


def count_loads(model_dir: Path, log: Path) -> Path:
    arch = Path(model_dir) / ARCH_FILE
    text = arch.read_text()
    old = "    path: tasks.geometry.da3_tiny\n    name: TinyDinoV2\n    args: as_params\n"
    assert old in text, "the tiny DA3 architecture file changed: update tests/geometry/counting_da3.py"
    arch.write_text(text.replace(old, "    path: tests.geometry.counting_da3\n    name: CountingTinyDinoV2\n"
                                      f"    args: as_params\n  load_log: {log}\n"))
    return log


def loads(log: Path) -> list[int]:
    return [int(line) for line in log.read_text().split()] if log.exists() else []
