"""benchmarks/device_check.sh --dry-run: the GPU script's code paths (every training speed change of the config,
the generation step, rollouts and VAE decode) on the CPU at tiny shapes, so the script cannot rot between GPU runs."""
from __future__ import annotations

import subprocess
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[2]


@pytest.mark.timeout(240)
def test_device_check_dry_run_prints_every_figure() -> None:
    result = subprocess.run(["bash", str(ROOT / "benchmarks" / "device_check.sh"), "--dry-run"], cwd=ROOT,
                            capture_output=True, text=True, timeout=230)
    assert result.returncode == 0, result.stderr[-3000:]
    out = result.stdout
    for line in ("baseline (checkpointing every block", "+ no gradient checkpointing:", "+ compiled blocks:",
                 "+ fused AdamW:", "+ no host syncs in the step:", "1-chunk denoising step", "81-frame video",
                 "VAE decode of one video", "device_check:"):
        assert line in out, (line, out)
    assert out.count("tokens/s, MFU") == 5 and out.count("81-frame video (7 chunks)") == 2
