"""A local Ray's temp folder outlives a SIGKILLed command; the next local start removes it (engine/ray_data.py)."""
from __future__ import annotations

import os
import subprocess
import sys

from engine.runtime import OWNER_FILE, TEMP_PREFIX, sweep_stale_temp_dirs


def _folder(root, name: str, owner: str | None):
    folder = root / f"{TEMP_PREFIX}{name}"
    (folder / "session_latest" / "logs").mkdir(parents=True)
    (folder / "session_latest" / "logs" / "raylet.out").write_text("log")
    if owner is not None:
        (folder / OWNER_FILE).write_text(owner)
    return folder


def test_only_folders_of_dead_commands_are_removed(tmp_path) -> None:
    dead = subprocess.Popen([sys.executable, "-c", "pass"])
    dead.wait()  # a pid that no longer runs (reaped)
    alive = subprocess.Popen([sys.executable, "-c", "import time; time.sleep(30)"])
    try:
        stale = _folder(tmp_path, "stale", str(dead.pid))
        running = _folder(tmp_path, "running", str(alive.pid))
        mine = _folder(tmp_path, "mine", str(os.getpid()))
        unknown = _folder(tmp_path, "unknown", None)  # not ours to judge (an older version, someone else's)
        garbled = _folder(tmp_path, "garbled", "not a pid")
        other = tmp_path / "unrelated"
        other.mkdir()
        (other / OWNER_FILE).write_text(str(dead.pid))
        assert sweep_stale_temp_dirs(str(tmp_path)) == [str(stale)]
        assert not stale.exists()
        assert running.exists() and mine.exists() and unknown.exists() and garbled.exists() and other.exists()
    finally:
        alive.kill()
        alive.wait()
