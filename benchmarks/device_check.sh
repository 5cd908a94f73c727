#!/usr/bin/env bash
# Every GPU figure of issue 25 item 5 that this script covers, in one run on one H200 (budget: 8 minutes):
#   training at the Wan2.1-1.3B shape, bf16: tokens/s and MFU, baseline then each speed change of the training config;
#   generation: the 1-chunk denoising step's MFU and seconds per 81-frame video at 8 and 20 steps;
#   ingest end to end (configs/gpu.yaml, local executor, real footage): real decoding, TransNetV2 on CUDA, DA3 at the
#   DA3-LARGE shape and the judge at the full Qwen3-VL-8B shape, in random weights (throughput only): clips/s, each
#   stage's seconds and each GPU stage's busy fraction (target: the judge's >= 0.8). INGEST_TIME_CAP (default 120 s)
#   bounds its timed run; building and loading the random 8B bundle takes about a minute more.
#
#   bash benchmarks/device_check.sh              # on the GPU machine (wheels from benchmarks/device_wheels.sh in .whl)
#   bash benchmarks/device_check.sh --dry-run    # the same code paths on this CPU at tiny shapes (a CI test runs it)
set -euo pipefail
cd "$(dirname "$0")/.."
PYTHON=${PYTHON:-python3}
[ -x .venv/bin/python ] && [ "${1:-}" = "--dry-run" ] && PYTHON=.venv/bin/python
if [ -d .whl ] && ! "$PYTHON" -c "import diffusers, pydantic, av" 2>/dev/null; then
  "$PYTHON" -m pip install -q --no-index --no-deps --no-compile --no-cache-dir --upgrade --target /tmp/site .whl/*.whl
  export PYTHONPATH=/tmp/site${PYTHONPATH:+:$PYTHONPATH}
fi
export PYTHONUNBUFFERED=1
started=$(date +%s)
if [ "${1:-}" != "--dry-run" ]; then nvidia-smi --query-gpu=name,memory.total,driver_version --format=csv,noheader; fi
"$PYTHON" benchmarks/device_train.py "$@"
"$PYTHON" benchmarks/device_ingest.py --time-cap "${INGEST_TIME_CAP:-120}" "$@"
echo "device_check: $(( $(date +%s) - started )) s in all (budget 480 s on one H200)"
