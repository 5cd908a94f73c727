"""No silent downgrade of what a config asks for: DA3 cameras without depth_anything_3, or LPIPS without its package,
are refused in one line naming the install command, before any engine starts or any output is written. (The cut
detector's own case: tests/prefilter/test_cut_detector_install.py.)"""
from __future__ import annotations

import os
import subprocess
import sys
from pathlib import Path

import pytest

REPO = Path(__file__).resolve().parents[1]


def _cli(tmp_path: Path, blocked: str, *args: str) -> subprocess.CompletedProcess:
    """The command line in a fresh interpreter where ``blocked`` cannot be imported (as if not installed)."""
    site = tmp_path / "site"
    site.mkdir()
    (site / "sitecustomize.py").write_text(f"import sys\nsys.modules[{blocked!r}] = None\n")
    env = {**os.environ, "PYTHONPATH": os.pathsep.join([str(site), str(REPO)]),
           "PREFECT_HOME": str(tmp_path / "prefect-home"), "PREFECT_API_URL": ""}
    return subprocess.run([sys.executable, "-m", "remind_curate.cli", *args], cwd=REPO, capture_output=True,
                          text=True, timeout=150, env=env)


def _one_line(proc: subprocess.CompletedProcess, command: str) -> str:
    lines = proc.stderr.splitlines()
    assert proc.returncode == 2 and len(lines) == 1, proc.stderr[-3000:]
    assert lines[0].startswith(f"remind-curate {command}: error: "), lines[0]
    return lines[0]


@pytest.mark.timeout(180)
def test_da3_cameras_without_depth_anything_3_are_refused_naming_the_install(tmp_path: Path) -> None:
    (tmp_path / "da3.yaml").write_text("geometry:\n  backend: da3\n")
    proc = _cli(tmp_path, "depth_anything_3", "ingest", "--source", "synthetic:1", "--out", str(tmp_path / "out"),
                "--config", str(tmp_path / "da3.yaml"))
    line = _one_line(proc, "ingest")
    assert "geometry.backend da3 needs depth_anything_3" in line
    assert "pip install --no-deps -r requirements/nodeps.txt" in line
    assert not (tmp_path / "out").exists() and not list((tmp_path / "prefect-home").rglob("*.db"))


@pytest.mark.timeout(180)
def test_lpips_asked_for_without_its_package_is_refused_naming_the_install(tmp_path: Path) -> None:
    weights = tmp_path / "alex.pth"
    weights.write_bytes(b"weights")
    (tmp_path / "evaluate.yaml").write_text("vlm:\n  backend: openai\n  model: m\n  base_url: http://127.0.0.1:9/v1\n"
                                            f"protocol:\n  lpips_weights: {weights}\n")
    videos = tmp_path / "videos"
    videos.mkdir()
    proc = _cli(tmp_path, "lpips", "evaluate", "--videos", str(videos), "--out", str(tmp_path / "out"),
                "--config", str(tmp_path / "evaluate.yaml"))
    assert "protocol.lpips_weights needs the lpips package, not installed: pip install lpips" in \
        _one_line(proc, "evaluate")
    assert not (tmp_path / "out").exists()
