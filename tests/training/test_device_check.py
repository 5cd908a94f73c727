"""benchmarks/device_check.sh --dry-run: the GPU script's code paths (every training speed change of the config,
the generation step, rollouts and VAE decode, the ingest end to end) on the CPU at tiny shapes, so the script cannot
rot between GPU runs."""
from __future__ import annotations

import re
import subprocess
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[2]


@pytest.mark.timeout(360)
def test_device_check_dry_run_prints_every_figure() -> None:
    result = subprocess.run(["bash", str(ROOT / "benchmarks" / "device_check.sh"), "--dry-run"], cwd=ROOT,
                            capture_output=True, text=True, timeout=350)
    assert result.returncode == 0, result.stderr[-3000:]
    out = result.stdout
    for line in ("baseline (checkpointing every block", "+ no gradient checkpointing:", "+ compiled blocks:",
                 "+ fused AdamW:", "+ no host syncs in the step:", "1-chunk denoising step", "81-frame video",
                 "VAE decode of one video", "device_check:"):
        assert line in out, (line, out)
    assert out.count("tokens/s, MFU") == 5 and out.count("81-frame video (7 chunks)") == 2
    ingest = out[out.index("ingest on the CPU: configs/gpu.yaml, local executor"):]
    for line in ("RANDOM WEIGHTS: throughput only", "DA3 export-only modules stubbed",
                 "models loaded (from_pretrained)", "(accepted 1)", "output clips/s (1 written)", "per-stage seconds",
                 "GPU stages' busy fraction", "(random weights: throughput only, not quality)"):
        assert line in ingest, (line, ingest)
    for stage in ("decode-source", "detect-scene-cuts", "measure-motion", "judge-events", "estimate-cameras",
                  "write-samples"):  # every stage ran its one clip (DA3 and the encoder too: the window was kept)
        assert re.search(rf"^    {stage} +[0-9.]+ s +[0-9.]+ s/item .* 1 items, 1 batches", ingest, re.M), \
            (stage, ingest)
    for stage in ("detect-scene-cuts", "judge-events", "estimate-cameras"):
        assert re.search(rf"^    {stage} +busy [01]\.[0-9]{{2}} of the wall, [01]\.[0-9]{{2}} of its active span",
                         ingest, re.M), (stage, ingest)
