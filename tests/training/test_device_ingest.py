"""benchmarks/device_ingest.py's pieces that the dry run (tests/training/test_device_check.py) cannot check: that
its stage list is the ingest flow's, and that DA3's export-only imports are stubbed where they are missing."""
from __future__ import annotations

import subprocess
import sys
from pathlib import Path

ROOT = Path(__file__).resolve().parents[2]


def test_its_stages_are_the_ingest_flows() -> None:
    from benchmarks.device_ingest import ingest_stages
    from flows.curate import INGEST

    assert ingest_stages() == INGEST.stages


def test_export_only_modules_are_stubbed_and_the_device_absent_ones_hidden() -> None:
    script = (
        "import sys, importlib.util; sys.path.insert(0, 'benchmarks')\n"
        "from device_ingest import stub_export_only_modules\n"
        "print(stub_export_only_modules(True))\n"
        "import moviepy.editor as mpy; from evo.core.trajectory import PosePath3D; import pycolmap\n"
        "try:\n    PosePath3D()\nexcept RuntimeError as exc:\n    print('refused:', exc)\n"
        "print(importlib.util.find_spec('prefect'), importlib.util.find_spec('ray'))\n"
        "try:\n    import prefect\nexcept ImportError:\n    print('no prefect')\n")
    out = subprocess.run([sys.executable, "-c", script], cwd=ROOT, capture_output=True, text=True, timeout=60,
                         check=True).stdout
    assert "['moviepy', 'pycolmap', 'trimesh', 'evo', 'plyfile']" in out
    assert "refused: evo.core.trajectory.PosePath3D is a stub" in out
    assert "None None" in out and "no prefect" in out
